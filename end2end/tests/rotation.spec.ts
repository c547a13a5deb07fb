import { request as playwrightRequest } from "@playwright/test";
import { test, expect, waitForHydration } from "./fixtures";
import { checkPage } from "./a11y";
import { buyIntegrationLicences, people, signIn, signOut, submitAndVerify, unique, revealCredential } from "./flows";

// "Rotate now" (issue 18, rotation policy): an approver rotates a working credential from
// the request's page; the old pair keeps working while the contractor collects the new one
// from its own reveal link; once collected, "Retire the old secret now" switches: the old
// pair is refused, the new one works. The assurance page lists overdue secrets.

test.describe.configure({ mode: "serial" });

/** A token exchange with a key and secret (client credentials): the HTTP status. */
async function exchange(tokenUrl: string, key: string, secret: string): Promise<number> {
  const api = await playwrightRequest.newContext({ ignoreHTTPSErrors: true });
  try {
    const response = await api.post(tokenUrl, {
      headers: { Authorization: `Basic ${Buffer.from(`${key}:${secret}`).toString("base64")}` },
      form: { grant_type: "client_credentials" },
    });
    return response.status();
  } finally {
    await api.dispose();
  }
}

test("an approver rotates a secret: both pairs work until the old one is retired", async ({
  strictPage: page,
  browser,
}, testInfo) => {
  await buyIntegrationLicences(String(test.info().project.metadata.sandbox));
  const company = unique("Rotateco");
  const email = `rotate.${Date.now()}@vendor.example`;
  await submitAndVerify(page, company, email);

  await signIn(page, people.alex);
  await page.goto("/admin/assurance");
  await waitForHydration(page);
  await expect(page.getByRole("heading", { name: "Overdue secrets" })).toBeVisible();
  await page.goto("/admin");
  await waitForHydration(page);
  await page.getByRole("link", { name: company }).click();
  await waitForHydration(page);
  await page.getByLabel("Reason for the decision").fill("Needed for the sync");
  await page.getByRole("button", { name: "Approve" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Provisioning: ready" })).toBeVisible({ timeout: 30_000 });
  const requestPath = new URL(page.url()).pathname;

  const old = await revealCredential(browser, page, email, "Your API credential");
  expect(await exchange(old.tokenUrl, old.key, old.secret)).toBe(200);

  // Blake presses "Rotate now" on the request's page.
  await signOut(page);
  await signIn(page, people.blake, requestPath);
  await waitForHydration(page);
  const rotation = page.getByRole("region", { name: "Secret rotation" });
  await expect(rotation).toBeVisible({ timeout: 15_000 });
  await expect(rotation.getByText("days (the portal's default)")).toBeVisible();
  await rotation.getByRole("button", { name: "Rotate now" }).click();
  await expect(page.getByRole("status").filter({ hasText: "A rotation is under way" })).toBeVisible();
  await expect(rotation.getByRole("button", { name: "Rotate now" })).toHaveCount(0);
  await checkPage(page, testInfo, "request page, rotation under way");
  expect(await exchange(old.tokenUrl, old.key, old.secret), "the old pair works during the rotation").toBe(200);

  // The contractor collects the new pair from its own link; both work.
  const fresh = await revealCredential(browser, page, email, "A new API credential");
  expect(fresh.key).not.toBe(old.key);
  expect(await exchange(fresh.tokenUrl, fresh.key, fresh.secret)).toBe(200);
  expect(await exchange(old.tokenUrl, old.key, old.secret)).toBe(200);

  // Blake retires the old pair: refused from then on; the new one keeps working.
  await page.reload();
  await waitForHydration(page);
  await expect(page.getByRole("status").filter({ hasText: "The contractor collected the new secret" })).toBeVisible({ timeout: 15_000 });
  await page.getByRole("button", { name: "Retire the old secret now" }).click();
  await expect(page.getByRole("status").filter({ hasText: "The old secret was retired" })).toBeVisible();
  expect(await exchange(old.tokenUrl, old.key, old.secret), "the old pair is refused").not.toBe(200);
  expect(await exchange(fresh.tokenUrl, fresh.key, fresh.secret)).toBe(200);
  await expect(rotation.getByRole("table", { name: "Rotations" })).toContainText("completed");

  // The grant's own maximum age (a bad one is refused on its field: the server test
  // `rotate_now_over_http`; the browser's own min/max stop it here).
  await page.getByLabel(/Maximum secret age \(days/).fill("30");
  await page.getByRole("button", { name: "Save maximum age" }).click();
  await expect(page.getByRole("status").filter({ hasText: "rotated when it is 30 days old" })).toBeVisible();
  await expect(rotation).toContainText("30 days (this grant's own)");
  await checkPage(page, testInfo, "request page, rotation done");
});
