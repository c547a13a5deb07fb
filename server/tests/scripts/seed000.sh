#!/bin/sh
# The commands of seed article 000 ("How To Give 3rd Parties API Access to Salesforce",
# Steps 2 and 3), run as written with curl and jq against an org, plus the two requests a
# least-privilege setup must refuse. Only --cacert is added (the sandbox org's certificate).
#
#   seed000.sh BASE_URL CONSUMER_KEY CONSUMER_SECRET CA_FILE
#
# Output: sections headed "== name", each followed by jq's compact output.
set -eu
BASE_URL=$1
KEY=$2
SECRET=$3
CA=$4
curl() { command curl --cacert "$CA" "$@"; }

ACCESS_TOKEN=$(curl "$BASE_URL/services/oauth2/token" \
    --silent \
    --user "$KEY:$SECRET" \
    --data "grant_type=client_credentials" | jq --raw-output '.access_token')
echo "== token"
echo "$ACCESS_TOKEN" | cut -c1-3

echo "== sobjects"
curl "$BASE_URL/services/data/v63.0/sobjects/" \
    --silent \
    --header "Authorization: Bearer $ACCESS_TOKEN" | \
jq -c ".sobjects[] | {name}"

echo "== describe"
curl "$BASE_URL/services/data/v63.0/sobjects/Case/describe" \
    --silent \
    --header "Authorization: Bearer $ACCESS_TOKEN" | \
jq -c ".fields[] | {name}"

echo "== query"
QUERY="SELECT+Id,Subject,Description,Priority,Status+from+Case"
curl "$BASE_URL/services/data/v63.0/query/?q=$QUERY" \
    --silent \
    --header "Authorization: Bearer $ACCESS_TOKEN" | \
jq -c ".records[] | {Id, Subject, Description, Priority, Status}"

CASE_ID=$(curl "$BASE_URL/services/data/v63.0/query/?q=$QUERY" \
    --silent \
    --header "Authorization: Bearer $ACCESS_TOKEN" | jq --raw-output ".records[0].Id")

echo "== patch status"
curl $BASE_URL/services/data/v63.0/sobjects/Case/$CASE_ID \
    --silent \
    --request PATCH \
    --header "Authorization: Bearer $ACCESS_TOKEN" \
    --header "Content-Type: application/json" \
    --data '{"Status": "In Progress"}' \
    --write-out '%{http_code}\n'

echo "== reread"
curl $BASE_URL/services/data/v63.0/sobjects/Case/$CASE_ID \
    --silent \
    --header "Authorization: Bearer $ACCESS_TOKEN" | \
jq -c "{Id, Status}"

echo "== query origin"
curl "$BASE_URL/services/data/v63.0/query/?q=SELECT+Id,Origin+from+Case" \
    --silent \
    --header "Authorization: Bearer $ACCESS_TOKEN" | \
jq -c ".[0] | {errorCode}"

echo "== patch subject"
curl $BASE_URL/services/data/v63.0/sobjects/Case/$CASE_ID \
    --silent \
    --request PATCH \
    --header "Authorization: Bearer $ACCESS_TOKEN" \
    --header "Content-Type: application/json" \
    --data '{"Subject": "Changed by the contractor"}' | \
jq -c ".[0] | {errorCode}"
