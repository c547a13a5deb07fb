import { execFileSync } from "node:child_process";
import { request as playwrightRequest } from "@playwright/test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { test, expect, waitForHydration } from "./fixtures";
import { people, submitAndVerify, unique } from "./flows";

// The portal in org mode (JWT bearer, or client credentials) against the standalone HTTPS
// sandbox org, as a first real deployment would run: staff sign in through the org, approve,
// provisioning reaches ready, the contractor reveals, and the seed article's curl + jq
// commands work with the credential. Mail arrives through SMTP (a maildir sink).
test.describe.configure({ mode: "serial" });

function decode(raw: string): string {
  const [head, ...rest] = raw.split(/\r?\n\r?\n/);
  const body = rest.join("\n\n");
  if (/content-transfer-encoding:\s*base64/i.test(head)) {
    return Buffer.from(body.replace(/\s+/g, ""), "base64").toString("utf8");
  }
  if (/content-transfer-encoding:\s*quoted-printable/i.test(head)) {
    return body
      .replace(/=\r?\n/g, "")
      .replace(/=([0-9A-F]{2})/gi, (_, h) => String.fromCharCode(parseInt(h, 16)));
  }
  return body;
}

/** The newest mail to `to` whose subject contains `subject`, from the SMTP sink's maildir. */
async function readMail(to: string, subject: string): Promise<string> {
  const maildir = String(test.info().project.metadata.maildir);
  let found = "";
  await expect(async () => {
    const files = ["new", "cur"]
      .flatMap((d) => {
        try {
          return readdirSync(join(maildir, d)).map((f) => join(maildir, d, f));
        } catch {
          return [];
        }
      })
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
    for (const file of files) {
      const raw = readFileSync(file, "utf8");
      const head = raw.split(/\r?\n\r?\n/)[0].replace(/\r?\n\s+/g, " ");
      const subjectLine = head.match(/^subject:\s*(.*)$/im)?.[1] ?? "";
      const toLine = head.match(/^to:\s*(.*)$/im)?.[1] ?? "";
      if (toLine.includes(to) && decodeHeader(subjectLine).includes(subject)) {
        found = decode(raw);
        return;
      }
    }
    throw new Error(`no mail to ${to} about "${subject}" yet`);
  }).toPass({ timeout: 20_000 });
  return found;
}

/** RFC 2047 encoded words (=?utf-8?b?...?= / ?q?) in a header. */
function decodeHeader(value: string): string {
  return value.replace(/=\?[^?]+\?([bqBQ])\?([^?]*)\?=/g, (_, kind, text) =>
    kind.toUpperCase() === "B"
      ? Buffer.from(text, "base64").toString("utf8")
      : text.replace(/_/g, " ").replace(/=([0-9A-F]{2})/gi, (__: string, h: string) => String.fromCharCode(parseInt(h, 16))),
  ).replace(/\s+/g, " ");
}


test("org mode: sign in, approve, provision, reveal, and the seed's curl + jq work", async ({ strictPage: page, browser }) => {
  const company = unique("Orgmode");
  const email = `orgmode.${Date.now()}@vendor.example`;

  // The contractor asks and confirms the email with the mailed code.
  await submitAndVerify(page, company, email, readMail);

  // Staff sign in through the org's own login page (the web-server flow, with the secret).
  await page.goto("/admin");
  await page.getByRole("link", { name: "Log in with Salesforce" }).click();
  await expect(page.getByRole("heading", { name: /Log in to/ })).toBeVisible();
  await page.getByLabel("Username").fill(people.alex.username);
  await page.getByLabel("Password").fill(people.alex.password);
  await page.getByRole("button", { name: "Log In" }).click();
  await expect(page.getByRole("button", { name: "Sign out" })).toBeVisible();

  // An admin looks up a new Case to share with the contractor (as they would in Setup),
  // through the portal app's own client credentials.
  const caseId = await newCaseId();

  // Approve, sharing that Case; provisioning reaches ready against the org.
  await page.goto("/admin");
  await page.getByRole("link", { name: company }).click();
  await waitForHydration(page);
  await page.getByLabel("Record ids to share (one per line)").fill(caseId);
  await page.getByLabel("Reason for the decision").fill("Needed for the sync");
  await page.getByRole("button", { name: "Approve" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Provisioning: ready" })).toBeVisible({ timeout: 45_000 });

  // The contractor reveals the credential in their own browser.
  const mail = await readMail(email, "Your API credential");
  const link = mail.match(/https?:\/\/\S+\/reveal\/\S+/)?.[0];
  expect(link, "a reveal link in the mail").toBeTruthy();
  const contractor = await browser.newContext();
  const tab = await contractor.newPage();
  await tab.goto(new URL(link!).pathname);
  await waitForHydration(tab);
  await tab.getByRole("button", { name: "Email me a code" }).click();
  await expect(tab.getByRole("status").filter({ hasText: "We sent a code to" })).toBeVisible();
  const codeMail = await readMail(email, "Your code to reveal");
  const revealCode = codeMail.match(/\b(\d{6})\b/)?.[1];
  expect(revealCode, "a six-digit code").toBeTruthy();
  await tab.getByLabel("Code from the email").fill(revealCode!);
  await tab.getByRole("button", { name: "Reveal now" }).click();
  const key = (await tab.getByLabel("Consumer key", { exact: true }).textContent())!.trim();
  const secret = (await tab.getByLabel("Consumer secret", { exact: true }).textContent())!.trim();
  const tokenUrl = (await tab.getByLabel("Token URL", { exact: true }).textContent())!.trim();
  expect(key.length).toBeGreaterThan(20);
  expect(secret.length).toBeGreaterThan(20);
  await contractor.close();

  // The seed article's commands (Step 2), as written, with the credential: curl + jq.
  const ca = join(String(test.info().project.metadata.orgState), "cert.pem");
  const base = new URL(tokenUrl).origin;
  const script = `
set -eu
curl() { command curl --cacert "$CA" "$@"; }
ACCESS_TOKEN=$(curl "$BASE_URL/services/oauth2/token" --silent --user "$KEY:$SECRET" --data "grant_type=client_credentials" | jq --raw-output '.access_token')
echo "== token"; echo "$ACCESS_TOKEN" | cut -c1-3
echo "== sobjects"
curl "$BASE_URL/services/data/v63.0/sobjects/" --silent --header "Authorization: Bearer $ACCESS_TOKEN" | jq -c ".sobjects[] | {name}"
echo "== describe"
curl "$BASE_URL/services/data/v63.0/sobjects/Case/describe" --silent --header "Authorization: Bearer $ACCESS_TOKEN" | jq -c ".fields[] | {name}"
echo "== query"
curl "$BASE_URL/services/data/v63.0/query/?q=SELECT+Id,Subject+from+Case" --silent --header "Authorization: Bearer $ACCESS_TOKEN" | jq -c "{totalSize}"
echo "== update"
curl $BASE_URL/services/data/v63.0/sobjects/Case/$CASE_ID \
--silent \
--request PATCH \
--header "Authorization: Bearer $ACCESS_TOKEN" \
--header "Content-Type: application/json" \
--data '{"Status": "In Progress"}' \
--write-out "%{http_code}\n"
echo "== read back"
curl $BASE_URL/services/data/v63.0/sobjects/Case/$CASE_ID \
    --silent \
    --header "Authorization: Bearer $ACCESS_TOKEN" | \
jq -c "{Status}"
`;
  // The credential may need a moment to become active (a new app), as on a real org.
  let out = "";
  await expect(async () => {
    out = execFileSync("bash", ["-c", script], {
      env: { ...process.env, CA: ca, BASE_URL: base, KEY: key, SECRET: secret, CASE_ID: caseId },
      encoding: "utf8",
    });
    expect(out).toContain("== token\n00D");
  }).toPass({ timeout: 30_000 });
  expect(out).toContain('{"name":"Case"}');
  expect(out).not.toContain('{"name":"Account"}');
  expect(out).toContain('{"name":"Subject"}');
  expect(out).toContain('{"totalSize":1}');
  // The seed's Step 2 update (a PATCH of the shared Case's Status), confirmed by reading
  // the record back.
  expect(out).toContain("== update\n204\n");
  expect(out).toContain('== read back\n{"Status":"In Progress"}');
});

/** The id of a Case still New, read as the portal's own app (client credentials). */
async function newCaseId(): Promise<string> {
  const orgUrl = String(test.info().project.metadata.sandbox);
  const api = await playwrightRequest.newContext({ ignoreHTTPSErrors: true });
  try {
    const credentials = await (await api.get(`${orgUrl}/__sandbox/credentials`)).json();
    const token = await api.post(`${orgUrl}/services/oauth2/token`, {
      form: {
        grant_type: "client_credentials",
        client_id: credentials.portalClientId,
        client_secret: credentials.portalClientSecret,
      },
    });
    expect(token.ok(), await token.text()).toBeTruthy();
    const accessToken = (await token.json()).access_token;
    const query = encodeURIComponent("SELECT Id FROM Case WHERE Status = 'New' ORDER BY CaseNumber LIMIT 1");
    const found = await api.get(`${orgUrl}/services/data/v63.0/query/?q=${query}`, {
      headers: { Authorization: `Bearer ${accessToken}` },
    });
    expect(found.ok(), await found.text()).toBeTruthy();
    const id = (await found.json()).records?.[0]?.Id;
    expect(id, "a New case in the org").toBeTruthy();
    return id;
  } finally {
    await api.dispose();
  }
}
