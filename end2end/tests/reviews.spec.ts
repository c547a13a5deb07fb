import { request as playwrightRequest, APIRequestContext, Page } from "@playwright/test";
import { test, expect, waitForHydration } from "./fixtures";
import { checkPage } from "./a11y";
import { buyIntegrationLicences, daysFromNow, people, signIn, submitAndVerify, unique, revealCredential, type Credential } from "./flows";

// Access reviews (issue 18, must-show 2): an owner starts a campaign over the live grants;
// the reviewer keeps one, narrows one (the dropped field is no longer readable with the same
// credential), revokes one (its token refused), and the one left unanswered takes the
// campaign's default (revoke) once the portal's and the org's clocks pass the due date.

test.describe.configure({ mode: "serial" });
// A narrowing without a comment is refused with 422 (the page shows why).
test.use({ allowedStatuses: [422] });

const DAY = 86_400;

function sandboxUrl(): string {
  return String(test.info().project.metadata.sandbox);
}

async function api(): Promise<APIRequestContext> {
  return playwrightRequest.newContext({ ignoreHTTPSErrors: true });
}

/** Moves the portal's clock (SANDBOX_CLOCK_CONTROL) and the sandbox org's by `seconds`
 *  (both back to the machine's time with `reset`). */
async function moveClocks(baseURL: string, seconds: number, orgOffset: number): Promise<void> {
  const http = await api();
  try {
    const portal = await http.post(`${baseURL}/__portal/clock`, { data: { advanceSeconds: seconds } });
    expect(portal.ok(), await portal.text()).toBeTruthy();
    const org = await http.patch(`${sandboxUrl()}/__sandbox/settings`, { data: { clockOffsetSeconds: orgOffset } });
    expect(org.ok(), await org.text()).toBeTruthy();
  } finally {
    await http.dispose();
  }
}

/** A token exchange with the contractor's key and secret (client credentials). */
async function token(c: Credential): Promise<{ status: number; body: any }> {
  const http = await api();
  try {
    const response = await http.post(c.tokenUrl, {
      headers: { Authorization: `Basic ${Buffer.from(`${c.key}:${c.secret}`).toString("base64")}` },
      form: { grant_type: "client_credentials" },
    });
    return { status: response.status(), body: await response.json().catch(() => ({})) };
  } finally {
    await http.dispose();
  }
}

/** A query as the contractor with a fresh token from the same credential: the status. */
async function query(c: Credential, soql: string): Promise<number> {
  const t = await token(c);
  expect(t.status, JSON.stringify(t.body)).toBe(200);
  const http = await api();
  try {
    const found = await http.get(`${t.body.instance_url}/services/data/v63.0/query/?q=${encodeURIComponent(soql)}`, {
      headers: { Authorization: `Bearer ${t.body.access_token}` },
    });
    return found.status();
  } finally {
    await http.dispose();
  }
}

/** A request (Case: Subject and Description readable) approved by Alex, sharing the org's
 *  first Case, provisioned and proven. */
async function readyGrant(page: Page, company: string, email: string, caseId: string): Promise<void> {
  await submitAndVerify(page, company, email);
  await page.goto("/admin");
  await page.getByRole("link", { name: company }).click();
  await waitForHydration(page);
  await page.getByLabel("Record ids to share (one per line)").fill(caseId);
  await page.getByLabel("Reason for the decision").fill("Needed for the sync");
  await page.getByRole("button", { name: "Approve" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Provisioning: ready" })).toBeVisible({ timeout: 30_000 });
}

/** The first Case's id, as the org's admin would look it up. */
async function firstCase(): Promise<string> {
  const http = await api();
  try {
    const credentials = await (await http.get(`${sandboxUrl()}/__sandbox/credentials`)).json();
    const t = await http.post(`${sandboxUrl()}/services/oauth2/token`, {
      form: { grant_type: "client_credentials", client_id: credentials.portalClientId, client_secret: credentials.portalClientSecret },
    });
    const found = await http.get(
      `${sandboxUrl()}/services/data/v63.0/query/?q=${encodeURIComponent("SELECT Id FROM Case ORDER BY CaseNumber LIMIT 1")}`,
      { headers: { Authorization: `Bearer ${(await t.json()).access_token}` } },
    );
    return (await found.json()).records[0].Id;
  } finally {
    await http.dispose();
  }
}

test("an access review keeps, narrows and revokes, and the due date applies the default", async ({
  strictPage: page,
  browser,
  baseURL,
}, testInfo) => {
  test.setTimeout(240_000);
  await buyIntegrationLicences(sandboxUrl());
  const caseId = await firstCase();
  const stamp = Date.now();
  const grants = {
    keep: { company: unique("Keepco"), email: `keep.${stamp}@vendor.example` },
    narrow: { company: unique("Narrowco"), email: `narrow.${stamp}@vendor.example` },
    revoke: { company: unique("Revokeco"), email: `revoke.${stamp}@vendor.example` },
    quiet: { company: unique("Quietco"), email: `quiet.${stamp}@vendor.example` },
  };
  await signIn(page, people.alex);
  for (const g of Object.values(grants)) await readyGrant(page, g.company, g.email, caseId);
  const narrowCredential = await revealCredential(browser, page, grants.narrow.email);
  const revokeCredential = await revealCredential(browser, page, grants.revoke.email);
  const quietCredential = await revealCredential(browser, page, grants.quiet.email);
  expect(await query(narrowCredential, "SELECT Id, Subject, Description FROM Case")).toBe(200);

  // Alex (an owner) starts the campaign: every live grant, due tomorrow, default revoke.
  await page.goto("/admin/reviews");
  await waitForHydration(page);
  await expect(page.getByRole("heading", { name: "Access reviews", level: 1 })).toBeVisible();
  const form = page.getByRole("form", { name: "Start an access review" });
  await form.getByLabel("Name", { exact: true }).fill(`Review ${stamp}`);
  await form.getByLabel("Grants to review", { exact: true }).selectOption("all");
  await form.getByLabel("Due date", { exact: true }).fill(daysFromNow(1));
  await form.getByLabel(/^Reviewers/).fill(people.alex.username);
  await form.getByLabel("Unanswered at the due date").selectOption("revoke");
  await form.getByRole("button", { name: "Start the review" }).click();
  await page.getByRole("status").getByRole("link", { name: "Open it" }).click();
  await expect(page.getByRole("heading", { name: `Access review: Review ${stamp}` })).toBeVisible();
  await waitForHydration(page);
  const campaignPath = new URL(page.url()).pathname;
  const item = (company: string) => page.getByRole("region", { name: company });

  // Each item shows the last proof's table.
  await expect(item(grants.narrow.company).getByRole("table", { name: /^Proof of/ })).toContainText("Case: visible fields");
  await checkPage(page, testInfo, "access review, open");

  // Keep.
  await item(grants.keep.company).getByRole("button", { name: "Keep" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Kept" })).toBeVisible();
  await expect(item(grants.keep.company).getByRole("note").filter({ hasText: "Decision: kept by" })).toBeVisible();

  // Narrow: drop Case.Description. The same credential reads Subject, not Description.
  const narrow = item(grants.narrow.company);
  await narrow.getByLabel("Drop Case.Description").check();
  await narrow.getByRole("button", { name: "Narrow" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Comment" })).toBeVisible();
  await narrow.getByLabel("Comment", { exact: true }).fill("Description is not used");
  await narrow.getByLabel("Drop Case.Description").check();
  await narrow.getByRole("button", { name: "Narrow" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Narrowed" })).toBeVisible({ timeout: 30_000 });
  await expect(narrow.getByText("The narrower access is applied and proven.")).toBeVisible();
  await expect(narrow.getByRole("table", { name: /^Proof of/ }).getByRole("row").filter({ hasText: "Case: visible fields" })).toContainText(
    "subject",
  );
  expect(await query(narrowCredential, "SELECT Id, Subject FROM Case")).toBe(200);
  expect(await query(narrowCredential, "SELECT Id, Description FROM Case"), "the dropped field is not readable").toBe(400);

  // Revoke: the token is refused.
  const revoke = item(grants.revoke.company);
  await revoke.getByLabel("Comment", { exact: true }).fill("The contract ended");
  await revoke.getByRole("button", { name: "Revoke" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Revoked" })).toBeVisible();
  await expect(async () => expect((await token(revokeCredential)).status).not.toBe(200)).toPass({ timeout: 20_000 });

  // The teardown finishes before the clocks move (a step's lease is timed by the portal's clock).
  await expect(async () => {
    await page.reload();
    await expect(item(grants.revoke.company).getByText(/Grant: revoked/i)).toBeVisible({ timeout: 1000 });
  }).toPass({ timeout: 30_000 });
  await waitForHydration(page);

  // Items of other tests' grants are kept, so only Quietco is left unanswered.
  for (;;) {
    const others = page
      .getByRole("region")
      .filter({ has: page.getByRole("button", { name: "Keep" }) })
      .filter({ hasNotText: grants.quiet.company });
    if ((await others.count()) === 0) break;
    const before = await others.count();
    await others.first().getByRole("button", { name: "Keep" }).click();
    await expect(others).toHaveCount(before - 1);
  }
  await expect(item(grants.quiet.company).getByRole("button", { name: "Revoke" })).toBeVisible();
  expect((await token(quietCredential)).status).toBe(200);

  // The due date passes on the portal's and the org's clocks: the job revokes Quietco.
  const shift = 3 * DAY;
  await moveClocks(baseURL!, shift, shift);
  try {
    await expect(async () => expect((await token(quietCredential)).status).not.toBe(200)).toPass({ timeout: 30_000 });
  } finally {
    await moveClocks(baseURL!, -shift, 0);
  }
  await page.goto(campaignPath);
  await waitForHydration(page);
  await expect(item(grants.quiet.company).getByRole("note").filter({ hasText: "Decision: revoked by default at the due date" })).toBeVisible();
  await expect(page.getByText(/\(closed\)/)).toBeVisible();
  await checkPage(page, testInfo, "access review, closed");

  // The decisions as CSV.
  const csv = await page.request.get(`${campaignPath}/decisions.csv`);
  expect(csv.status()).toBe(200);
  const text = await csv.text();
  expect(text).toContain(`${grants.narrow.company},${grants.narrow.email},narrow,${people.alex.username}`);
  expect(text).toContain(`${grants.revoke.company},${grants.revoke.email},revoke,${people.alex.username}`);
  expect(text).toContain(`${grants.quiet.company},${grants.quiet.email},revoke,default`);
  expect(text).toContain(`${grants.keep.company},${grants.keep.email},keep,${people.alex.username}`);

  // The campaigns list shows it closed.
  await page.goto("/admin/reviews");
  await expect(page.getByRole("table", { name: "Campaigns" }).getByRole("row").filter({ hasText: `Review ${stamp}` })).toContainText("closed");
});
