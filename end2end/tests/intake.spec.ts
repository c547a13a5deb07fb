import { test, expect, waitForHydration } from "./fixtures";
import { people, readMail, signIn, signOut, statusLink, submitAndVerify, unique } from "./flows";

test.describe.configure({ mode: "serial" });

test("a contractor asks, an approver narrows and approves, the contractor sees it approved", async ({ strictPage: page, context }) => {
  const company = unique("Kinetic");
  const email = `kim.${Date.now()}@kinetic.example`;
  await submitAndVerify(page, company, email);
  const status = await statusLink(context, email);

  await signIn(page, people.alex);
  await page.goto("/admin");
  await page.getByRole("link", { name: company }).click();
  await expect(page.getByRole("heading", { level: 1, name: `${company}'s request` })).toBeVisible();
  await waitForHydration(page);
  await expect(page.getByRole("heading", { level: 1, name: `${company}'s request` })).toBeVisible();
  await expect(page.getByRole("table", { name: "Blast radius" })).toContainText("Case");
  // Narrow: no Description.
  await page.getByLabel("Case.Description").selectOption("none");
  await page.getByLabel("Reason for the decision").fill("Subject is enough for the sync");
  await expect(page.getByText(/^State:/)).toContainText("waiting for review");
  await page.getByRole("button", { name: "Approve" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Approved" })).toBeVisible();
  // Right after Approve, without a reload: the state line, the Decide form gone, the
  // decision and the approval in the history (times in words, the exact time in <time>).
  await expect(page.getByText(/^State:/)).toContainText("approved");
  await expect(page.getByText(/^State:/)).not.toContainText("waiting for review");
  await expect(page.getByRole("form", { name: "Decision" })).toHaveCount(0);
  await expect(page.getByRole("heading", { name: "Decide" })).toHaveCount(0);
  await expect(page.getByRole("button", { name: "Approve" })).toHaveCount(0);
  await expect(page.getByRole("region", { name: "Decisions" })).toContainText("Subject is enough for the sync");
  const history = page.getByRole("region", { name: "History" });
  const approval = history.getByRole("listitem").filter({ hasText: "Approved by" });
  await expect(approval).toContainText("Subject is enough for the sync");
  await expect(approval).toContainText(/just now|1 minute ago/);
  await expect(approval.getByRole("time")).toHaveAttribute("datetime", /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  await expect(approval.getByRole("time")).toHaveAttribute("title", / UTC$/);
  // The server provisions it in the sandbox org and proves it, live on this page.
  await expect(page.getByRole("status").filter({ hasText: "Provisioning: ready" })).toBeVisible({ timeout: 30_000 });
  await expect(page.getByRole("table", { name: "Provisioning steps" })).toContainText("Least-privilege proof");
  const proof = page.getByRole("table", { name: "Least-privilege proof" });
  await expect(proof).toContainText("Case: visible fields");
  await expect(proof).not.toContainText("FAIL");

  await page.goto(status);
  await expect(page.getByText("Status:")).toContainText("approved");
  const mail = await readMail(context, email, "approved");
  expect(mail).toContain("Case.Subject");
  expect(mail).not.toContain("Case.Description");
});

test("with two approvals required, a second approver completes the approval", async ({ strictPage: page, context }) => {
  await signIn(page, people.alex);
  await page.goto("/admin/settings");
  await waitForHydration(page);
  await page.getByLabel("Approvals required").selectOption("2");
  await page.getByRole("button", { name: "Save settings" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Settings saved" })).toBeVisible();
  await signOut(page);

  const company = unique("Twofold");
  const email = `two.${Date.now()}@twofold.example`;
  await submitAndVerify(page, company, email);
  const status = await statusLink(context, email);

  await signIn(page, people.alex);
  await page.goto("/admin");
  await page.getByRole("link", { name: company }).click();
  await expect(page.getByRole("heading", { level: 1, name: `${company}'s request` })).toBeVisible();
  await waitForHydration(page);
  // The first approver narrows: Subject only.
  await expect(page.getByLabel("Case.Description")).toHaveValue("read");
  await page.getByLabel("Case.Description").selectOption("none");
  await page.getByLabel("Reason for the decision").fill("Subject is enough");
  await page.getByRole("button", { name: "Approve" }).click();
  await expect(page.getByRole("status").filter({ hasText: "1 of 2" })).toBeVisible();
  // Still waiting for a second approver; the decision and the history show this one at once.
  await expect(page.getByText(/^State:/)).toContainText("waiting for review");
  await expect(page.getByRole("region", { name: "Decisions" })).toContainText("Subject is enough");
  await expect(page.getByRole("region", { name: "History" })).toContainText("Approved by");
  await signOut(page);

  // The second approver's form starts from that approval, not from the wider request,
  // so confirming it as shown completes the approval.
  await signIn(page, people.blake);
  await page.goto("/admin");
  await page.getByRole("link", { name: company }).click();
  await expect(page.getByRole("heading", { level: 1, name: `${company}'s request` })).toBeVisible();
  await waitForHydration(page);
  await expect(page.getByRole("note")).toContainText("starts from");
  await expect(page.getByLabel("Case.Description")).toHaveValue("none");
  await expect(page.getByLabel("Case.Subject")).toHaveValue("read");
  await page.getByLabel("Reason for the decision").fill("Agreed");
  await page.getByRole("button", { name: "Approve" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Approved" })).toBeVisible();
  await signOut(page);

  await page.goto(status);
  await expect(page.getByText("Status:")).toContainText("approved");
  const mail = await readMail(context, email, "approved");
  expect(mail).toContain("Case.Subject");
  expect(mail).not.toContain("Case.Description");

  // Back to one approval for the other tests.
  await signIn(page, people.alex);
  await page.goto("/admin/settings");
  await waitForHydration(page);
  await page.getByLabel("Approvals required").selectOption("1");
  await page.getByRole("button", { name: "Save settings" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Settings saved" })).toBeVisible();
});

test("an approver rejects with a reason, and the contractor sees it", async ({ strictPage: page, context }) => {
  const company = unique("Nope");
  const email = `nope.${Date.now()}@nope.example`;
  await submitAndVerify(page, company, email);
  const status = await statusLink(context, email);
  await signIn(page, people.blake);
  await page.goto("/admin");
  await page.getByRole("link", { name: company }).click();
  await expect(page.getByRole("heading", { level: 1, name: `${company}'s request` })).toBeVisible();
  await waitForHydration(page);
  await page.getByLabel("Reason for the decision").fill("We do not work with this vendor");
  await page.getByRole("button", { name: "Reject" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Rejected" })).toBeVisible();
  await page.goto(status);
  await expect(page.getByText("Status:")).toContainText("rejected");
  await expect(page.getByRole("list").filter({ hasText: "We do not work with this vendor" })).toBeVisible();
});

test("a signed-in person without a role sees that they are not authorised", async ({ strictPage: page }) => {
  await signIn(page, people.nora);
  await page.goto("/admin");
  await expect(page.getByRole("heading", { name: "Not authorised" })).toBeVisible();
});
