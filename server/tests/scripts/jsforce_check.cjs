// Runs the jsforce library, unmodified, against an org: a token (client credentials, from
// the org's own token endpoint, as the seed's curl does), then describe, create, update,
// query with paging (jsforce's autoFetch follows nextRecordsUrl), retrieve and delete.
//
//     NODE_EXTRA_CA_CERTS=CA_FILE node jsforce_check.cjs BASE_URL CLIENT_ID CLIENT_SECRET
//
// NODE_EXTRA_CA_CERTS is how a Node.js user trusts the org's certificate. Prints one JSON line.
const jsforce = require("jsforce");

async function main() {
  const [baseUrl, clientId, clientSecret] = process.argv.slice(2);
  const basic = Buffer.from(`${clientId}:${clientSecret}`).toString("base64");
  const response = await fetch(`${baseUrl}/services/oauth2/token`, {
    method: "POST",
    headers: { Authorization: `Basic ${basic}`, "Content-Type": "application/x-www-form-urlencoded" },
    body: "grant_type=client_credentials",
  });
  if (!response.ok) throw new Error(`token: HTTP ${response.status} ${await response.text()}`);
  const token = await response.json();

  const conn = new jsforce.Connection({
    instanceUrl: token.instance_url,
    accessToken: token.access_token,
    version: "66.0",
  });
  const describe = await conn.sobject("Case").describe();
  const created = await conn.sobject("Case").create({ Subject: "jsforce was here", Priority: "High" });
  await conn.sobject("Case").update({ Id: created.id, Status: "Working", Subject: "updated by jsforce" });
  const reread = await conn.sobject("Case").retrieve(created.id);
  const records = [];
  const query = conn
    .query("SELECT Id, Subject FROM Case")
    .on("record", (r) => records.push(r))
    .run({ autoFetch: true, maxFetch: 100000 });
  const total = await new Promise((resolve, reject) => {
    query.on("end", () => resolve(query.totalSize));
    query.on("error", reject);
  });
  const deleted = await conn.sobject("Case").destroy(created.id);
  console.log(
    JSON.stringify({
      describeHasSubject: describe.fields.some((f) => f.name === "Subject"),
      created: created.success === true,
      rereadStatus: reread.Status,
      rereadSubject: reread.Subject,
      totalSize: total,
      fetched: records.length,
      createdInQuery: records.some((r) => r.Id === created.id),
      deleted: deleted.success === true,
    }),
  );
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
