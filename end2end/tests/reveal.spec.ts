import { request as playwrightRequest } from "@playwright/test";
import { test, expect, waitForHydration } from "./fixtures";
import { people, readMail, signIn, submitAndVerify, unique } from "./flows";

test.describe.configure({ mode: "serial" });

test("the contractor collects the credential once, and it works against the org", async ({ strictPage: page, browser }) => {
  const company = unique("Revealco");
  const email = `reveal.${Date.now()}@vendor.example`;
  await submitAndVerify(page, company, email);

  // An approver approves; the portal provisions and proves the grant.
  await signIn(page, people.alex);
  await page.goto("/admin");
  await page.getByRole("link", { name: company }).click();
  await waitForHydration(page);
  await page.getByLabel("Reason for the decision").fill("Needed for the sync");
  await page.getByRole("button", { name: "Approve" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Provisioning: ready" })).toBeVisible({ timeout: 30_000 });
  await expect(page.getByRole("status").filter({ hasText: "Link sent; waiting for the contractor" })).toBeVisible();

  // The link arrives by mail.
  const mail = await readMail(page.context(), email, "Your API credential");
  expect(mail).toContain("The API access Acme (Sandbox Org) approved for");
  const link = mail.match(/https?:\/\/\S+\/reveal\/\S+/)?.[0];
  expect(link, "a reveal link in the mail").toBeTruthy();
  const path = new URL(link!).pathname;

  // A mail scanner opens it (GET only): nothing is used up.
  const scanner = await playwrightRequest.newContext({ baseURL: page.url() });
  for (let i = 0; i < 2; i++) {
    const response = await scanner.get(path);
    expect(response.status()).toBe(200);
    expect(response.headers()["cache-control"]).toBe("no-store");
    expect(response.headers()["referrer-policy"]).toBe("no-referrer");
  }
  await scanner.dispose();

  // The contractor, in their own browser (no portal session).
  const contractor = await browser.newContext();
  await contractor.grantPermissions(["clipboard-read", "clipboard-write"]);
  const tab = await contractor.newPage();
  const errors: string[] = [];
  tab.on("pageerror", (e) => errors.push(String(e)));
  await tab.goto(path);
  await expect(tab.getByRole("heading", { level: 1, name: "Your API credential" })).toBeVisible();
  await expect(tab.getByText(company)).toBeVisible();
  // The org is called by its name as Salesforce gives it (the sandbox org's Organization Name).
  await expect(tab.getByText("This link hands over the API credential Acme (Sandbox Org) set up for")).toBeVisible();
  // The access in people's words (the org's labels), each API name beside it.
  const access = tab.getByRole("list", { name: "The credential's access" });
  await expect(access.getByRole("listitem").filter({ hasText: "Case — Description (read)" })).toContainText("Case.Description");
  await expect(access.getByRole("listitem").filter({ hasText: "Case (edit)" })).toBeVisible();
  await waitForHydration(tab);
  await tab.getByRole("button", { name: "Email me a code" }).click();
  await expect(tab.getByRole("status").filter({ hasText: "We sent a code to" })).toBeVisible();
  const codeMail = await readMail(contractor, email, "Your code to reveal");
  const code = codeMail.match(/\b(\d{6})\b/)?.[1];
  expect(code, "a six-digit code").toBeTruthy();
  await tab.getByLabel("Code from the email").fill(code!);
  await tab.getByRole("button", { name: "Reveal now" }).click();

  const key = (await tab.getByLabel("Consumer key", { exact: true }).textContent())!.trim();
  const secret = (await tab.getByLabel("Consumer secret", { exact: true }).textContent())!.trim();
  const tokenUrl = (await tab.getByLabel("Token URL", { exact: true }).textContent())!.trim();
  expect(key.length).toBeGreaterThan(20);
  expect(secret.length).toBeGreaterThan(20);
  expect(tokenUrl).toMatch(/\/services\/oauth2\/token$/);
  await expect(tab.getByLabel("Example commands")).toContainText(`--user '${key}:${secret}'`);
  await expect(tab.getByLabel("Example commands")).toContainText(`BASE_URL='${new URL(tokenUrl).origin}'`);

  // The copy button puts the secret on the clipboard.
  await tab.getByRole("button", { name: "Copy the consumer secret" }).click();
  await expect(tab.getByRole("button", { name: "Copy the consumer secret" })).toHaveText("Copied");
  expect(await tab.evaluate(() => navigator.clipboard.readText())).toBe(secret);

  // The key and secret work: the org hands out a token for them (client credentials).
  const org = await playwrightRequest.newContext({ ignoreHTTPSErrors: true });
  const token = await org.post(tokenUrl, {
    headers: { Authorization: `Basic ${Buffer.from(`${key}:${secret}`).toString("base64")}` },
    form: { grant_type: "client_credentials" },
  });
  expect(token.status(), await token.text()).toBe(200);
  expect((await token.json()).access_token).toBeTruthy();
  await org.dispose();

  // Reloading: already revealed, with the way to report it.
  await tab.reload();
  await expect(tab.getByRole("status").filter({ hasText: "Already revealed" })).toBeVisible();
  await expect(tab.getByRole("button", { name: "I did not do this" })).toBeVisible();
  await expect(tab.getByText(secret)).toHaveCount(0);
  expect(errors).toEqual([]);
  await contractor.close();

  // The approver sees it collected, on a full load of the request's page, which hydrates
  // (the page fails on any browser error) and stays interactive.
  const requestPage = page.url();
  await page.reload();
  await waitForHydration(page);
  expect(page.url()).toBe(requestPage);
  await expect(page.getByRole("status").filter({ hasText: "Collected by the contractor" })).toBeVisible();
  await expect(page.getByRole("status").filter({ hasText: "Provisioning: active" })).toBeVisible();

  // "I did not do this", back in the contractor's browser: it takes a code mailed for the
  // report (the code that revealed the secret does not do), then changes the secret.
  const reporter = await browser.newContext();
  const report = await reporter.newPage();
  report.on("pageerror", (e) => errors.push(String(e)));
  await report.goto(path);
  await waitForHydration(report);
  await report.getByLabel("Code from the email").fill(code!);
  await report.getByRole("button", { name: "I did not do this" }).click();
  await expect(report.getByRole("alert").filter({ hasText: "Ask for a code first" })).toBeVisible();
  await report.getByRole("button", { name: "Email me a code to report it" }).click();
  await expect(report.getByRole("status").filter({ hasText: "We sent a code to" })).toBeVisible();
  const reportMail = await readMail(reporter, email, "Your code to report");
  const reportCode = reportMail.match(/\b(\d{6})\b/)?.[1];
  expect(reportCode, "a six-digit report code").toBeTruthy();
  expect(reportCode).not.toBe(code);
  await report.getByLabel("Code from the email").fill(reportCode!);
  await report.getByRole("button", { name: "I did not do this" }).click();
  await expect(report.getByRole("status").filter({ hasText: "The secret was changed" })).toBeVisible();
  await expect(report.getByRole("button", { name: "I did not do this" })).toHaveCount(0);
  expect(errors).toEqual([]);
  await reporter.close();

  // The revealed pair no longer works, and the approver sees the report.
  const after = await playwrightRequest.newContext({ ignoreHTTPSErrors: true });
  const refused = await after.post(tokenUrl, {
    headers: { Authorization: `Basic ${Buffer.from(`${key}:${secret}`).toString("base64")}` },
    form: { grant_type: "client_credentials" },
  });
  expect(refused.status()).not.toBe(200);
  await after.dispose();
  await page.reload();
  await waitForHydration(page);
  await expect(page.getByRole("status").filter({ hasText: "did not reveal it; the secret was changed" })).toBeVisible();
});
