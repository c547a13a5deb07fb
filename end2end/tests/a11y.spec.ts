import { test, expect, waitForHydration } from "./fixtures";
import { checkPage } from "./a11y";
import { buyIntegrationLicences, people, readMail, signIn, signOut, submitRequest, unique } from "./flows";

// Every page in its main states, as its users reach it: axe-core finds no serious or
// critical violation, screenshots at 1280 and 390 px go into the report, and at 390 px
// nothing scrolls sideways (checkPage in a11y.ts).

test.describe.configure({ mode: "serial" });

test("the pages anyone can open", async ({ page }, testInfo) => {
  await page.goto("/");
  await waitForHydration(page);
  await checkPage(page, testInfo, "home");

  await page.goto("/request");
  await waitForHydration(page);
  await expect(page.getByRole("heading", { level: 1, name: "Request access" })).toBeVisible();
  await checkPage(page, testInfo, "request form");

  const missing = await page.goto("/no/such/page");
  expect(missing?.status()).toBe(404);
  await waitForHydration(page);
  await checkPage(page, testInfo, "not found");

  await page.goto("/auth/failed?reason=state");
  await waitForHydration(page);
  await expect(page.getByRole("heading", { level: 1, name: "Sign-in failed" })).toBeVisible();
  await checkPage(page, testInfo, "sign-in failed");

  // Signed out, the staff pages ask for a sign-in.
  for (const [path, name] of [
    ["/admin", "admin dashboard, signed out"],
    ["/audit", "audit log, signed out"],
  ]) {
    await page.goto(path);
    await waitForHydration(page);
    await expect(page.getByRole("link", { name: "Log in with Salesforce" })).toBeVisible();
    await checkPage(page, testInfo, name);
  }
});

test("the contractor's and the staff's pages through one request", async ({ page, browser }, testInfo) => {
  test.setTimeout(240_000);
  const company = unique("Axeco");
  const email = `axe.${Date.now()}@vendor.example`;

  // The request, then "Check your email".
  await submitRequest(page, company, email);
  await checkPage(page, testInfo, "request sent, check your email");

  // The emailed confirmation link, before and after confirming.
  const confirm = await readMail(page.context(), email, "Confirm your email");
  const verify = new URL(confirm.match(/https?:\/\/\S+\/verify\/\S+/)![0]).pathname;
  await page.goto(verify);
  await waitForHydration(page);
  await expect(page.getByRole("button", { name: "Confirm my email" })).toBeVisible();
  await checkPage(page, testInfo, "verify link");
  await page.getByRole("button", { name: "Confirm my email" }).click();
  await expect(page.getByRole("status")).toContainText("your email is confirmed");
  await checkPage(page, testInfo, "verify link, confirmed");

  // The contractor's status page.
  const received = await readMail(page.context(), email, "was received");
  const status = new URL(received.match(/https?:\/\/\S+\/status\/\S+/)![0]).pathname;
  await page.goto(status);
  await waitForHydration(page);
  await expect(page.getByRole("heading", { level: 1, name: `${company}'s access request` })).toBeVisible();
  await checkPage(page, testInfo, "status, waiting for review");

  // The approver: the dashboard, the approval page, then the same page once provisioned.
  await buyIntegrationLicences(String(testInfo.project.metadata.sandbox));
  await signIn(page, people.alex);
  await page.goto("/admin");
  await waitForHydration(page);
  await expect(page.getByRole("link", { name: company })).toBeVisible();
  await checkPage(page, testInfo, "admin dashboard");
  await page.getByRole("link", { name: company }).click();
  await waitForHydration(page);
  await expect(page.getByRole("button", { name: "Approve" })).toBeVisible();
  await checkPage(page, testInfo, "approval page");
  await page.getByLabel("Reason for the decision").fill("Needed for the sync");
  await page.getByRole("button", { name: "Approve" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Provisioning: ready" })).toBeVisible({ timeout: 30_000 });
  await page.reload();
  await waitForHydration(page);
  await checkPage(page, testInfo, "approval page, approved");

  // The reveal link, in the contractor's own browser: each step of collecting the credential.
  const mail = await readMail(page.context(), email, "Your API credential");
  const reveal = new URL(mail.match(/https?:\/\/\S+\/reveal\/\S+/)![0]).pathname;
  const contractor = await browser.newContext();
  const tab = await contractor.newPage();
  await tab.goto(reveal);
  await waitForHydration(tab);
  await checkPage(tab, testInfo, "reveal link");
  await tab.getByRole("button", { name: "Email me a code" }).click();
  await expect(tab.getByRole("status").filter({ hasText: "We sent a code to" })).toBeVisible();
  await checkPage(tab, testInfo, "reveal link, code sent");
  await tab.getByLabel("Code from the email").fill("000000");
  await tab.getByRole("button", { name: "Reveal now" }).click();
  await expect(tab.getByRole("alert").filter({ hasText: /\S/ }).first()).toBeVisible();
  await checkPage(tab, testInfo, "reveal link, wrong code");
  const code = (await readMail(contractor, email, "Your code to reveal")).match(/\b(\d{6})\b/)![1];
  await tab.getByLabel("Code from the email").fill(code);
  await tab.getByRole("button", { name: "Reveal now" }).click();
  await expect(tab.getByLabel("Example commands")).toBeVisible();
  await checkPage(tab, testInfo, "reveal link, revealed");
  await tab.reload();
  await waitForHydration(tab);
  await expect(tab.getByRole("status").filter({ hasText: "Already revealed" })).toBeVisible();
  await checkPage(tab, testInfo, "reveal link, already revealed");

  // The contractor's usage page.
  await tab.goto(`${status}/usage`);
  await waitForHydration(tab);
  await expect(tab.getByRole("heading", { level: 1, name: `${company}'s API usage` })).toBeVisible();
  await checkPage(tab, testInfo, "contractor's usage");
  await contractor.close();

  // The owner's other pages.
  await page.goto("/admin/usage");
  await waitForHydration(page);
  await page.getByRole("button", { name: "Collect usage now" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Collected" })).toBeVisible();
  await checkPage(page, testInfo, "usage dashboard");
  await page.goto("/admin/org");
  await waitForHydration(page);
  await expect(page.getByRole("table", { name: "Org checks" })).toBeVisible();
  await checkPage(page, testInfo, "org readiness");
  for (const [path, name] of [
    ["/admin/catalog", "access catalog"],
    ["/admin/settings", "roles and settings"],
    ["/outbox", "mail outbox"],
  ]) {
    await page.goto(path);
    await waitForHydration(page);
    await checkPage(page, testInfo, name);
  }
  await signOut(page);

  // An approver is not shown the audit log; the security reviewer is.
  await signIn(page, people.blake);
  await page.goto("/audit");
  await waitForHydration(page);
  await expect(page.getByRole("heading", { name: "Not authorised" })).toBeVisible();
  await checkPage(page, testInfo, "audit log, not authorised");
  await signOut(page);
  await signIn(page, people.sam, "/audit");
  await page.goto("/audit");
  await waitForHydration(page);
  const entries = page.getByRole("table", { name: "Audit entries" });
  await expect(entries).toBeVisible();
  await checkPage(page, testInfo, "audit log");
  await page.getByRole("button", { name: "Verify chain" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Intact." })).toBeVisible({ timeout: 30_000 });
  await checkPage(page, testInfo, "audit log, chain verified");
  await entries.getByRole("row").nth(1).getByRole("link").first().click();
  await expect(page.getByText("Previous hash")).toBeVisible();
  await waitForHydration(page);
  await checkPage(page, testInfo, "audit entry");
});
