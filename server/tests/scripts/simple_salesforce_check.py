"""Runs the simple-salesforce library, unmodified, against an org: a token, a query that
needs nextRecordsUrl paging, create, update, delete and describe.

    python3 simple_salesforce_check.py BASE_URL CLIENT_ID CLIENT_SECRET CA_FILE

simple-salesforce builds its login URLs from `https://{domain}.salesforce.com`, so the
token is fetched with `requests` from the org's own token endpoint (the client credentials
flow, as simple-salesforce itself sends it: HTTP Basic), and handed to the library with
the org's base URL. Everything after that is the library's own code. Prints one JSON line.

Run it with REQUESTS_CA_BUNDLE=CA_FILE: requests gives that variable precedence over a
session's own `verify`, so it is how requests-based clients trust the org's certificate.
"""

import json
import sys

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceResourceNotFound


def main() -> None:
    base_url, client_id, client_secret, ca_file = sys.argv[1:5]
    http = requests.Session()
    http.verify = ca_file

    token = http.post(
        f"{base_url}/services/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, client_secret),
        timeout=30,
    )
    token.raise_for_status()
    token = token.json()

    sf = Salesforce(
        instance_url=token["instance_url"],
        session_id=token["access_token"],
        version="66.0",
        session=http,
    )

    describe = sf.Case.describe()
    field_names = [f["name"] for f in describe["fields"]]

    created = sf.Case.create({"Subject": "simple-salesforce was here", "Priority": "High"})
    case_id = created["id"]

    # A query larger than one batch: simple-salesforce follows nextRecordsUrl itself.
    options = {"Sforce-Query-Options": "batchSize=200"}
    first_page = sf.query("SELECT Id, Subject FROM Case", headers=options)
    everything = sf.query_all("SELECT Id, Subject FROM Case", headers=options)
    ids = {r["Id"] for r in everything["records"]}

    sf.Case.update(case_id, {"Status": "Working", "Subject": "updated by simple-salesforce"})
    reread = sf.Case.get(case_id)

    sf.Case.delete(case_id)
    try:
        sf.Case.get(case_id)
        deleted = False
    except SalesforceResourceNotFound:
        deleted = True

    print(json.dumps({
        "describeHasSubject": "Subject" in field_names,
        "createdId": case_id,
        "firstPageDone": first_page["done"],
        "firstPageSize": len(first_page["records"]),
        "hasNextRecordsUrl": "nextRecordsUrl" in first_page,
        "totalSize": everything["totalSize"],
        "fetched": len(everything["records"]),
        "distinct": len(ids),
        "createdInQuery": case_id in ids,
        "rereadStatus": reread["Status"],
        "rereadSubject": reread["Subject"],
        "deleted": deleted,
        "apiUsage": str(sf.api_usage.get("api-usage")),
    }))


if __name__ == "__main__":
    main()
