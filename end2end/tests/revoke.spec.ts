import { request as playwrightRequest, APIRequestContext } from "@playwright/test";
import { test, expect, waitForHydration } from "./fixtures";
import { checkPage } from "./a11y";
import { buyIntegrationLicences, people, signIn, signOut, shownDay, statusLink, submitAndVerify, unique, revealCredential } from "./flows";

// "Revoke access now" (issue 17): a provisioned, revealed credential that works is revoked by
// an approver with a reason; within 10 s Salesforce refuses its token, the integration user
// is inactive, its app and its shares are gone, and both the request's page and the
// contractor's status page say "Revoked" — without a reload.

test.describe.configure({ mode: "serial" });

/** The sandbox org of this project, and a context for its APIs. */
async function org(): Promise<{ api: APIRequestContext; url: string }> {
  const url = String(test.info().project.metadata.sandbox);
  const api = await playwrightRequest.newContext({ ignoreHTTPSErrors: true });
  return { api, url };
}

/** Runs SOQL as the portal's own app (client credentials), as an org admin would look. */
async function soql(query: string): Promise<any[]> {
  const { api, url } = await org();
  try {
    const credentials = await (await api.get(`${url}/__sandbox/credentials`)).json();
    const token = await api.post(`${url}/services/oauth2/token`, {
      form: {
        grant_type: "client_credentials",
        client_id: credentials.portalClientId,
        client_secret: credentials.portalClientSecret,
      },
    });
    expect(token.ok(), await token.text()).toBeTruthy();
    const found = await api.get(`${url}/services/data/v63.0/query/?q=${encodeURIComponent(query)}`, {
      headers: { Authorization: `Bearer ${(await token.json()).access_token}` },
    });
    expect(found.ok(), await found.text()).toBeTruthy();
    return (await found.json()).records ?? [];
  } finally {
    await api.dispose();
  }
}

/** The developer names of the org's apps (Setup's App Manager), from the control API. */
async function appNames(): Promise<string[]> {
  const { api, url } = await org();
  try {
    const apps = await (await api.get(`${url}/__sandbox/apps`)).json();
    return apps.apps.map((a: any) => a.developerName);
  } finally {
    await api.dispose();
  }
}

/** A token exchange with the contractor's key and secret (client credentials): the response. */
async function exchange(tokenUrl: string, key: string, secret: string): Promise<{ status: number; body: any }> {
  const api = await playwrightRequest.newContext({ ignoreHTTPSErrors: true });
  try {
    const response = await api.post(tokenUrl, {
      headers: { Authorization: `Basic ${Buffer.from(`${key}:${secret}`).toString("base64")}` },
      form: { grant_type: "client_credentials" },
    });
    return { status: response.status(), body: await response.json().catch(() => ({})) };
  } finally {
    await api.dispose();
  }
}

test("an approver revokes access now: within 10 s the credential is dead and everything is gone", async ({
  strictPage: page,
  browser,
}, testInfo) => {
  // The suite's other approvals use the org's five seeded licences.
  await buyIntegrationLicences(String(test.info().project.metadata.sandbox));
  const company = unique("Revokeco");
  const email = `revoke.${Date.now()}@vendor.example`;
  await submitAndVerify(page, company, email);
  const status = await statusLink(page.context(), email);
  const [caseRecord] = await soql("SELECT Id FROM Case ORDER BY CaseNumber LIMIT 1");
  expect(caseRecord?.Id, "a Case in the org").toBeTruthy();
  const appsBefore = await appNames();

  // Alex approves, sharing one Case record; the portal provisions and proves the grant.
  await signIn(page, people.alex);
  await page.goto("/admin");
  await page.getByRole("link", { name: company }).click();
  await waitForHydration(page);
  await page.getByLabel("Record ids to share (one per line)").fill(caseRecord.Id);
  await page.getByLabel("Reason for the decision").fill("Needed for the sync");
  await page.getByRole("button", { name: "Approve" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Provisioning: ready" })).toBeVisible({ timeout: 30_000 });
  const requestPath = new URL(page.url()).pathname;

  // The contractor collects the credential, and it works.
  const { key, secret, tokenUrl } = await revealCredential(browser, page, email);
  const working = await exchange(tokenUrl, key, secret);
  expect(working.status, JSON.stringify(working.body)).toBe(200);
  const userId = String(working.body.id).split("/").pop()!;
  expect((await soql(`SELECT IsActive FROM User WHERE Id = '${userId}'`))[0].IsActive).toBe(true);
  expect((await soql(`SELECT Id FROM CaseShare WHERE UserOrGroupId = '${userId}'`)).length, "the Case is shared").toBeGreaterThan(0);
  const appsMade = (await appNames()).filter((name) => !appsBefore.includes(name));
  expect(appsMade, "the grant's app").toHaveLength(1);

  // Blake (an approver) revokes it now, with a reason; the page follows without a reload.
  await signOut(page);
  await signIn(page, people.blake, requestPath);
  await waitForHydration(page);
  await expect(page.getByRole("status").filter({ hasText: "Provisioning: active" })).toBeVisible();
  await page.getByRole("button", { name: "Revoke access now" }).click();
  await page.getByLabel("Reason for revoking").fill("The contract ended early");
  await checkPage(page, testInfo, "request page, revoke form open");
  const pressed = Date.now();
  await page.getByRole("button", { name: "Confirm: revoke access" }).click();
  const left = () => Math.max(1, pressed + 10_000 - Date.now());

  // Within 10 s of the press: the token is refused, the user inactive, the app and the
  // share gone.
  await expect(async () => {
    const refused = await exchange(tokenUrl, key, secret);
    expect(refused.status).not.toBe(200);
  }).toPass({ timeout: left(), intervals: [100] });
  await expect(async () => {
    expect((await soql(`SELECT IsActive FROM User WHERE Id = '${userId}'`))[0].IsActive).toBe(false);
  }).toPass({ timeout: left(), intervals: [200] });
  await expect(async () => {
    expect(await soql(`SELECT Id FROM CaseShare WHERE UserOrGroupId = '${userId}'`)).toHaveLength(0);
  }).toPass({ timeout: left(), intervals: [200] });
  await expect(async () => {
    expect(await appNames()).not.toContain(appsMade[0]);
  }).toPass({ timeout: left(), intervals: [200] });
  console.log(`revoke → token refused, user inactive, share and app gone: ${Date.now() - pressed} ms`);

  // The request's page, without a reload: revoked, the button gone, the history says so.
  await expect(page.getByRole("status").filter({ hasText: "Access: Revoked" })).toBeVisible({ timeout: 15_000 });
  await expect(page.getByRole("status").filter({ hasText: "Provisioning: revoked" })).toBeVisible();
  const ended = page.getByRole("region", { name: "Access ended" });
  await expect(ended).toContainText("The contract ended early");
  await expect(ended).toContainText(people.blake.username);
  await expect(page.getByRole("button", { name: "Revoke access now" })).toHaveCount(0);
  await expect(page.getByRole("region", { name: "History" })).toContainText(/revoked/i);
  await checkPage(page, testInfo, "request page, revoked");

  // The usage page counts the licence the teardown gave back, and names the grant.
  await page.goto("/admin/usage");
  await waitForHydration(page);
  const given = page.getByRole("table", { name: "Licences given back" });
  await expect(given.getByRole("row").filter({ hasText: company })).toContainText("Revoked");
  await checkPage(page, testInfo, "usage page, a licence given back");

  // The contractor's status page: revoked, when and why, and the credential no longer works.
  const contractor = await browser.newContext();
  try {
    const tab = await contractor.newPage();
    await tab.goto(status);
    await expect(tab.getByRole("status").filter({ hasText: "Access: Revoked" })).toBeVisible();
    const facts = tab.getByRole("region", { name: "Access ended" });
    await expect(facts).toContainText("The contract ended early");
    await expect(facts).toContainText(new RegExp(`Revoked on ${shownDay(new Date()).absolute.source}`));
    await expect(facts).not.toContainText(people.blake.username);
    await expect(facts.getByText("The credential no longer works")).toBeVisible();
    await expect(tab.getByRole("listitem").filter({ hasText: "Access revoked: The contract ended early" })).toBeVisible();
    await checkPage(tab, testInfo, "status page, revoked");
  } finally {
    await contractor.close();
  }
});
