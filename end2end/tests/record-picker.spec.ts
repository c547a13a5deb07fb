import { request as playwrightRequest } from "@playwright/test";
import { test, expect, waitForHydration } from "./fixtures";
import { checkPage } from "./a11y";
import { buyIntegrationLicences, people, signIn, submitAndVerify, unique } from "./flows";

// The decision form's record picker (issue 19): an approver finds a Case by its case number
// instead of typing its id, sees it as a chip with name and id, approves, and the grant's
// integration user gets a manual share of exactly that Case.

test.describe.configure({ mode: "serial" });

/** Runs SOQL as the portal's own app (client credentials), as an org admin would look. */
async function soql(query: string): Promise<any[]> {
  const url = String(test.info().project.metadata.sandbox);
  const api = await playwrightRequest.newContext({ ignoreHTTPSErrors: true });
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

test("an approver picks a record by searching, and the grant shares exactly that record", async ({
  strictPage: page,
}, testInfo) => {
  await buyIntegrationLicences(String(test.info().project.metadata.sandbox));
  const company = unique("Pickerco");
  await submitAndVerify(page, company, `picker.${Date.now()}@vendor.example`);
  // The Case to pick: the last by case number (not the first a list shows).
  const [target] = await soql("SELECT Id, CaseNumber FROM Case ORDER BY CaseNumber DESC LIMIT 1");
  expect(target?.CaseNumber, "a Case in the org").toBeTruthy();
  const sharesBefore = await soql(`SELECT Id FROM CaseShare WHERE CaseId = '${target.Id}' AND RowCause = 'Manual'`);

  await signIn(page, people.alex);
  await page.goto("/admin");
  await page.getByRole("link", { name: company }).click();
  await waitForHydration(page);
  const records = page.getByRole("group", { name: "Records", exact: true });
  const picker = records.getByRole("group", { name: "Find records to share" });
  await expect(picker.getByLabel("Object to search")).toHaveValue("Case");

  // Listing all: a page of 20 with the count of every Case.
  await picker.getByRole("button", { name: "Search records" }).click();
  await expect(picker.getByRole("status")).toHaveText(/^Showing 1–20 of \d+ Case records, by Case Number$/);
  await expect(picker.getByRole("list", { name: "Records found" }).getByRole("listitem")).toHaveCount(20);
  await expect(picker.getByRole("button", { name: "Next records" })).toBeVisible();

  // A text no Case has: nothing, said so.
  await picker.getByLabel("Name contains (empty: list all)").fill("no-such-case'%");
  await picker.getByRole("button", { name: "Search records" }).click();
  await expect(picker.getByRole("status")).toHaveText("No Case records match.");

  // The case number (Enter searches, it does not send the decision).
  const search = picker.getByLabel("Name contains (empty: list all)");
  await search.fill(target.CaseNumber);
  await search.press("Enter");
  await expect(picker.getByRole("status")).toHaveText("Showing 1–1 of 1 Case records, by Case Number");
  const found = picker.getByRole("list", { name: "Records found" }).getByRole("listitem");
  await expect(found).toHaveCount(1);
  await expect(found).toContainText(target.Id);
  await picker.getByRole("button", { name: `Add ${target.CaseNumber} (${target.Id})` }).click();
  const chosen = picker.getByRole("list", { name: "Chosen records" }).getByRole("listitem");
  await expect(chosen).toHaveCount(1);
  await expect(chosen).toContainText(`Case ${target.CaseNumber}`);
  await expect(chosen).toContainText(target.Id);
  await expect(picker.getByRole("button", { name: `Add ${target.CaseNumber} (${target.Id})` })).toBeDisabled();
  await checkPage(page, testInfo, "request page, a record picked");

  // Removing and adding again leaves one chip.
  await picker.getByRole("button", { name: `Remove ${target.CaseNumber} (${target.Id})` }).click();
  await expect(chosen).toHaveCount(0);
  await picker.getByRole("button", { name: `Add ${target.CaseNumber} (${target.Id})` }).click();
  await expect(chosen).toHaveCount(1);
  // No id was typed by hand.
  await expect(records.getByLabel("Record ids to share (one per line)")).toHaveValue("");

  await page.getByLabel("Reason for the decision").fill("Needed for the sync");
  await page.getByRole("button", { name: "Approve" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Provisioning: ready" })).toBeVisible({ timeout: 30_000 });

  // The grant's integration user has a manual share of the picked Case.
  const sharesAfter = await soql(
    `SELECT Id, UserOrGroupId FROM CaseShare WHERE CaseId = '${target.Id}' AND RowCause = 'Manual'`,
  );
  const made = sharesAfter.filter((s) => !sharesBefore.some((b) => b.Id === s.Id));
  expect(made, "one new share of the picked Case").toHaveLength(1);
  const [user] = await soql(`SELECT Username FROM User WHERE Id = '${made[0].UserOrGroupId}'`);
  expect(user.Username).toMatch(/@integrations\.portcullis\.invalid$/);
});

test.describe("pasted ids", () => {
  // The refused decision answers 422.
  test.use({ allowedStatuses: [422] });

  test("are still checked: a wrong one is named on the form", async ({ strictPage: page }) => {
    const company = unique("Pastedco");
    await submitAndVerify(page, company, `pasted.${Date.now()}@vendor.example`);
    await signIn(page, people.alex);
    await page.goto("/admin");
    await page.getByRole("link", { name: company }).click();
    await waitForHydration(page);
    await page.getByLabel("Record ids to share (one per line)").fill("500000000000001, not-an-id");
    await page.getByLabel("Reason for the decision").fill("Needed for the sync");
    await page.getByRole("button", { name: "Approve" }).click();
    await expect(page.getByText("'not-an-id' is not a Salesforce record id.")).toBeVisible();
  });
});
