import { request as playwrightRequest } from "@playwright/test";
import { test, expect, waitForHydration } from "./fixtures";
import { people, readMail, signIn, statusLink, submitAndVerify, unique } from "./flows";

test.describe.configure({ mode: "serial" });

test("a contractor over budget shows on the usage dashboard and on its own usage page", async ({ strictPage: page, browser }) => {
  const company = unique("Overrun");
  const email = `usage.${Date.now()}@vendor.example`;
  await submitAndVerify(page, company, email);
  const status = await statusLink(page.context(), email);

  // Approved with a budget of 100 calls a day that freezes the integration user.
  await signIn(page, people.alex);
  await page.goto("/admin");
  await page.getByRole("link", { name: company }).click();
  await waitForHydration(page);
  await page.getByLabel("Calls per day").fill("100");
  await page.getByLabel("Calls per rolling 7 days").fill("700");
  await page.getByLabel("When the budget is used up").selectOption("freeze");
  await page.getByLabel("Reason for the decision").fill("Nightly sync, small volume");
  await page.getByRole("button", { name: "Approve" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Provisioning: ready" })).toBeVisible({ timeout: 30_000 });

  // The contractor collects the credential and makes 120 calls.
  const mail = await readMail(page.context(), email, "Your API credential");
  const reveal = new URL(mail.match(/https?:\/\/\S+\/reveal\/\S+/)![0]).pathname;
  const contractor = await browser.newContext();
  const tab = await contractor.newPage();
  await tab.goto(reveal);
  await waitForHydration(tab);
  await tab.getByRole("button", { name: "Email me a code" }).click();
  await expect(tab.getByRole("status").filter({ hasText: "We sent a code to" })).toBeVisible();
  const code = (await readMail(contractor, email, "Your code to reveal")).match(/\b(\d{6})\b/)![1];
  await tab.getByLabel("Code from the email").fill(code);
  await tab.getByRole("button", { name: "Reveal now" }).click();
  const key = (await tab.getByLabel("Consumer key", { exact: true }).textContent())!.trim();
  const secret = (await tab.getByLabel("Consumer secret", { exact: true }).textContent())!.trim();
  const tokenUrl = (await tab.getByLabel("Token URL", { exact: true }).textContent())!.trim();
  const org = await playwrightRequest.newContext({ ignoreHTTPSErrors: true });
  const basic = { Authorization: `Basic ${Buffer.from(`${key}:${secret}`).toString("base64")}` };
  const token = await org.post(tokenUrl, { headers: basic, form: { grant_type: "client_credentials" } });
  expect(token.status(), await token.text()).toBe(200);
  const { access_token, instance_url } = await token.json();
  for (let i = 0; i < 120; i++) {
    const call = await org.get(`${instance_url}/services/data/v66.0/query`, {
      params: { q: "SELECT Id, Subject FROM Case LIMIT 1" },
      headers: { Authorization: `Bearer ${access_token}` },
    });
    expect(call.status()).toBe(200);
  }

  // The approver collects usage now: the contractor is over budget, charted and frozen.
  await page.goto("/admin/usage");
  await waitForHydration(page);
  await page.getByRole("button", { name: "Collect usage now" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Collected" })).toContainText("1 budget alert sent");
  const card = page.getByRole("article", { name: company });
  await expect(card.getByText("Over budget", { exact: true })).toBeVisible();
  await expect(card.getByText("Suspended (frozen in Salesforce)")).toBeVisible();
  await expect(card.getByRole("img", { name: new RegExp(`${company}: API calls per day over the last 30 days.*1 day over budget`) })).toBeVisible();
  await expect(page.getByRole("region", { name: "Salesforce Integration licences" })).toContainText("Made by Portcullis");

  // The frozen contractor gets no token.
  const refused = await org.post(tokenUrl, { headers: basic, form: { grant_type: "client_credentials" } });
  expect(refused.status()).toBe(400);

  // The contractor's own page, through the status link, says the same.
  await tab.goto(`${status}/usage`);
  await expect(tab.getByRole("heading", { level: 1, name: `${company}'s API usage` })).toBeVisible();
  await expect(tab.getByRole("alert")).toContainText("Over budget");
  await expect(tab.getByRole("img", { name: new RegExp(`${company}: API calls per day`) })).toBeVisible();
  await expect(tab.getByRole("definition").filter({ hasText: "your calls are refused" })).toBeVisible();

  // The approver lifts the suspension, and the credential works again.
  await card.getByLabel("Reason for lifting the suspension").fill("One-off backfill; budget raised next week");
  await card.getByRole("button", { name: "Lift the suspension" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Lifted" })).toBeVisible();
  await expect(card.getByText("Suspended (frozen in Salesforce)")).toHaveCount(0);
  const again = await org.post(tokenUrl, { headers: basic, form: { grant_type: "client_credentials" } });
  expect(again.status(), await again.text()).toBe(200);
  await org.dispose();
  await contractor.close();
});
