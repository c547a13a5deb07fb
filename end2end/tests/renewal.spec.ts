import { test, expect, waitForHydration } from "./fixtures";
import { checkPage } from "./a11y";
import { buyIntegrationLicences, dayText, daysFromNow, people, readMail, signIn, statusLink, submitAndVerify, unique } from "./flows";

test.describe.configure({ mode: "serial" });

// Issue 17, renewal: the contractor asks for more time on the status page, an approver finds it
// in the queue as a request for more time and approves it; the status page shows the new end.
test("the contractor asks for more time and an approver approves it", async ({ strictPage: page, browser }) => {
  await buyIntegrationLicences(String(test.info().project.metadata.sandbox));
  const company = unique("Renewco");
  const email = `renew.${Date.now()}@vendor.example`;
  await submitAndVerify(page, company, email);
  const status = await statusLink(page.context(), email);

  // Approved and provisioned (the request asked for 60 days).
  await signIn(page, people.alex);
  await page.goto("/admin");
  await page.getByRole("link", { name: company }).click();
  await waitForHydration(page);
  await page.getByLabel("Reason for the decision").fill("Needed for the sync");
  await page.getByRole("button", { name: "Approve" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Provisioning: ready" })).toBeVisible({ timeout: 30_000 });

  // The contractor, in their own browser, on the status page.
  const contractor = await browser.newContext();
  const tab = await contractor.newPage();
  await tab.goto(status);
  await expect(tab.getByRole("heading", { name: "The end of access" })).toBeVisible();
  await waitForHydration(tab);
  const form = tab.getByRole("form", { name: "Ask for more time" });
  await checkPage(tab, test.info(), "status page with Ask for more time");

  // A reason is required, and the date must be later than the current end.
  await tab.getByLabel("New end date").fill(daysFromNow(70));
  await form.getByRole("button", { name: "Ask for more time" }).click();
  await expect(tab.locator("#reason-error")).toHaveText("Say why the access is needed for longer.");

  await tab.getByLabel("New end date").fill(daysFromNow(90));
  await tab.getByLabel("Reason").fill("The migration runs a month longer.");
  await form.getByRole("button", { name: "Ask for more time" }).click();
  await expect(tab.getByRole("status").filter({ hasText: "Your request for more time is with the approvers" })).toBeVisible();
  await expect(tab.getByRole("list", { name: "Requests for more time" })).toContainText("waiting for approvers");

  // The approver finds it in the queue as a request for more time, and approves it.
  await page.goto("/admin");
  const extensions = page.getByRole("table", { name: "Requests for more time" });
  // Days read as "5 Mar 2027 (in 90 days)", the exact day in the <time> element.
  await expect(extensions).toContainText(dayText(daysFromNow(90)));
  await expect(extensions.getByRole("time").filter({ hasText: dayText(daysFromNow(90)) })).toHaveAttribute("datetime", daysFromNow(90));
  await extensions.getByRole("link", { name: company }).click();
  await expect(page.getByRole("heading", { name: `${company} asks for more time` })).toBeVisible();
  await expect(page.getByRole("note")).toContainText("never widens access");
  await waitForHydration(page);
  await checkPage(page, test.info(), "a request for more time");
  await page.getByLabel("Reason for the decision").fill("The project was extended.");
  await page.getByRole("button", { name: "Approve" }).click();
  await expect(page.getByRole("status").filter({ hasText: "the new end date is set in Salesforce" })).toBeVisible();

  // The contractor is told, and the status page shows the new end.
  const mail = await readMail(contractor, email, "now ends on");
  expect(mail).toContain(daysFromNow(90));
  await tab.reload();
  await waitForHydration(tab);
  await expect(tab.getByText(`Access ends at the end of the day, UTC, on ${dayText(daysFromNow(90))} (in 3 months).`)).toBeVisible();
  await contractor.close();
});
