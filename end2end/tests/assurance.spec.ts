import { request as playwrightRequest, APIRequestContext } from "@playwright/test";
import { test, expect, waitForHydration } from "./fixtures";
import { checkPage } from "./a11y";
import { buyIntegrationLicences, people, signIn, submitAndVerify, unique } from "./flows";

// Drift detection (issue 18): a provisioned grant is widened by hand in the org (an admin
// shares a second Case with its integration user); an approver presses "Re-prove all grants
// now" on /admin/assurance and sees the drift there, without a reload, with the expected and
// observed records; the request's page shows the drift table too.

test.describe.configure({ mode: "serial" });

async function org(): Promise<{ api: APIRequestContext; url: string }> {
  const url = String(test.info().project.metadata.sandbox);
  const api = await playwrightRequest.newContext({ ignoreHTTPSErrors: true });
  return { api, url };
}

/** A REST call as the portal's own app (client credentials), as an org admin would make it. */
async function asAdmin(method: "GET" | "POST", path: string, body?: unknown): Promise<any> {
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
    const headers = { Authorization: `Bearer ${(await token.json()).access_token}` };
    const response =
      method === "GET"
        ? await api.get(`${url}/services/data/v63.0${path}`, { headers })
        : await api.post(`${url}/services/data/v63.0${path}`, { headers, data: body });
    expect(response.ok(), await response.text()).toBeTruthy();
    return await response.json();
  } finally {
    await api.dispose();
  }
}

async function soql(query: string): Promise<any[]> {
  return (await asAdmin("GET", `/query/?q=${encodeURIComponent(query)}`)).records ?? [];
}

/** The integration user's username prefix, as the portal names it after the company. */
function usernamePrefix(company: string): string {
  const slug = company
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w[0].toUpperCase() + w.slice(1))
    .join("")
    .slice(0, 30);
  return (/^[A-Za-z]/.test(slug) ? slug : `C${slug}`).toLowerCase();
}

test("a grant widened by hand in the org shows as drift after 'Re-prove all grants now'", async ({
  strictPage: page,
}, testInfo) => {
  test.setTimeout(120_000);
  await buyIntegrationLicences(String(test.info().project.metadata.sandbox));
  const company = unique("Driftco");
  const email = `drift.${Date.now()}@vendor.example`;
  await submitAndVerify(page, company, email);
  const [first, second] = await soql("SELECT Id FROM Case ORDER BY CaseNumber LIMIT 2");

  // Alex approves, sharing one Case; the portal provisions and proves the grant.
  await signIn(page, people.alex);
  await page.goto("/admin");
  await page.getByRole("link", { name: company }).click();
  await waitForHydration(page);
  await page.getByLabel("Record ids to share (one per line)").fill(first.Id);
  await page.getByLabel("Reason for the decision").fill("Needed for the sync");
  await page.getByRole("button", { name: "Approve" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Provisioning: ready" })).toBeVisible({ timeout: 30_000 });
  const requestPath = new URL(page.url()).pathname;

  // An admin shares a second Case with the integration user, by hand.
  const [user] = await soql(`SELECT Id FROM User WHERE Username LIKE '${usernamePrefix(company)}.%'`);
  expect(user?.Id, "the grant's integration user").toBeTruthy();
  await asAdmin("POST", "/sobjects/CaseShare", { CaseId: second.Id, UserOrGroupId: user.Id, CaseAccessLevel: "Read" });

  // The assurance page (linked from the admin pages): re-prove now, and the drift shows
  // without a reload.
  await page.goto("/admin");
  await waitForHydration(page);
  await page.getByRole("navigation", { name: "Admin" }).getByRole("link", { name: "Assurance" }).click();
  await expect(page.getByRole("heading", { level: 1, name: "Assurance" })).toBeVisible();
  await waitForHydration(page);
  const row = page.getByRole("table", { name: "Grants and their last proof" }).getByRole("row").filter({ hasText: company });
  await expect(row).toContainText("never");
  await page.getByRole("button", { name: "Re-prove all grants now" }).click();
  await expect(page.getByRole("status").filter({ hasText: /Re-proved \d+ grants/ })).toBeVisible({ timeout: 60_000 });
  await expect(row).toContainText("drift");
  await expect(row).toContainText("records shared with the integration user");
  await expect(row).toContainText(second.Id);
  await checkPage(page, testInfo, "assurance page, drift");

  // The grant's page: the drift table, expected and observed.
  await page.goto(requestPath);
  await waitForHydration(page);
  const drift = page.getByRole("table", { name: "Drift: expected and observed" });
  await expect(drift.getByRole("row").filter({ hasText: "records shared" })).toContainText(second.Id);
  await expect(page.getByLabel("When drift is found")).toHaveValue("alert");
  await checkPage(page, testInfo, "request page, drift");
});
