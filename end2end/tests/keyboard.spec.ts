import { Locator, Page } from "@playwright/test";
import { test, expect, waitForHydration } from "./fixtures";
import { buyIntegrationLicences, daysFromNow, people, readMail, signIn, unique } from "./flows";

// The request form and the reveal flow with the keyboard only: Tab to move, Enter or Space
// to press, typing to fill. Every control reached shows where the focus is.

// Date fields take their parts in the locale's order: month, day, year here.
test.use({ locale: "en-US" });

/** Presses Tab until `target` has the focus (failing after `max` presses), and checks that
 *  the focus can be seen there (an outline or a box shadow). */
async function tabTo(page: Page, target: Locator, max = 80): Promise<void> {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press("Tab");
    if (await target.evaluate((el) => el === document.activeElement)) {
      const ring = await target.evaluate((el) => {
        const style = getComputedStyle(el);
        return { outline: style.outlineStyle, width: style.outlineWidth, shadow: style.boxShadow };
      });
      expect(
        (ring.outline !== "none" && ring.width !== "0px") || ring.shadow !== "none",
        `a visible focus indicator on ${target} (${JSON.stringify(ring)})`,
      ).toBe(true);
      return;
    }
  }
  throw new Error(`${max} presses of Tab never reached ${target}`);
}

test("a contractor asks for access and collects the credential with the keyboard only", async ({ strictPage: page, browser }) => {
  test.setTimeout(120_000);
  const company = unique("Keyco");
  const email = `keys.${Date.now()}@vendor.example`;

  await page.goto("/request");
  await waitForHydration(page);
  // The first stop is the skip link, which takes the focus past the navigation.
  await page.keyboard.press("Tab");
  await expect(page.getByRole("link", { name: "Skip to content" })).toBeFocused();
  await page.keyboard.press("Enter");
  await expect(page.getByRole("main")).toBeFocused();

  await tabTo(page, page.getByLabel("Company"));
  await page.keyboard.type(company);
  await tabTo(page, page.getByLabel("Your name"));
  await page.keyboard.type("Kim Keys");
  await tabTo(page, page.getByLabel("Work email"));
  await page.keyboard.type(email);
  await tabTo(page, page.getByLabel("What the work is"));
  await page.keyboard.type("Overnight sync of support cases into our own CRM.");
  // A closed list picks the option whose label is typed.
  await tabTo(page, page.getByLabel("Access to Case records"));
  await page.keyboard.type("Read and edit");
  await expect(page.getByLabel("Access to Case records")).toHaveValue("edit");
  for (const field of ["Case: Subject", "Case: Description"]) {
    await tabTo(page, page.getByLabel(field));
    await page.keyboard.type("Read");
    await expect(page.getByLabel(field)).toHaveValue("read");
  }
  await tabTo(page, page.getByLabel("Expected API calls per day"));
  await page.keyboard.type("500");
  const until = daysFromNow(60); // yyyy-mm-dd
  await tabTo(page, page.getByLabel("Access needed until"));
  await page.keyboard.type(`${until.slice(5, 7)}${until.slice(8, 10)}${until.slice(0, 4)}`);
  await expect(page.getByLabel("Access needed until")).toHaveValue(until);
  await tabTo(page, page.getByRole("button", { name: "Send request" }));
  await page.keyboard.press("Enter");

  await expect(page.getByRole("heading", { name: "Check your email" })).toBeVisible();
  const code = (await readMail(page.context(), email, "Confirm your email")).match(/\b(\d{6})\b/)![1];
  await tabTo(page, page.getByLabel("Confirmation code"));
  await page.keyboard.type(code);
  await tabTo(page, page.getByRole("button", { name: "Confirm" }));
  await page.keyboard.press(" ");
  await expect(page.getByRole("status")).toContainText("Your email is confirmed");

  // An approver approves (not part of the walk).
  await buyIntegrationLicences(String(test.info().project.metadata.sandbox));
  await signIn(page, people.alex);
  await page.goto("/admin");
  await page.getByRole("link", { name: company }).click();
  await waitForHydration(page);
  await page.getByLabel("Reason for the decision").fill("Needed for the sync");
  await page.getByRole("button", { name: "Approve" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Provisioning: ready" })).toBeVisible({ timeout: 30_000 });
  const mail = await readMail(page.context(), email, "Your API credential");
  const reveal = new URL(mail.match(/https?:\/\/\S+\/reveal\/\S+/)![0]).pathname;

  // The contractor, in their own browser, collects it.
  const contractor = await browser.newContext({ locale: "en-US" });
  await contractor.grantPermissions(["clipboard-read", "clipboard-write"]);
  const tab = await contractor.newPage();
  await tab.goto(reveal);
  await waitForHydration(tab);
  await tabTo(tab, tab.getByRole("button", { name: "Email me a code" }));
  await tab.keyboard.press("Enter");
  await expect(tab.getByRole("status").filter({ hasText: "We sent a code to" })).toBeVisible();
  const revealCode = (await readMail(contractor, email, "Your code to reveal")).match(/\b(\d{6})\b/)![1];
  await tabTo(tab, tab.getByLabel("Code from the email"));
  await tab.keyboard.type(revealCode);
  await tabTo(tab, tab.getByRole("button", { name: "Reveal now" }));
  await tab.keyboard.press(" ");

  const secret = tab.getByLabel("Consumer secret", { exact: true });
  await expect(secret).toBeVisible();
  await tabTo(tab, tab.getByRole("button", { name: "Copy the consumer secret" }));
  await tab.keyboard.press("Enter");
  await expect(tab.getByRole("button", { name: "Copy the consumer secret" })).toHaveText("Copied");
  expect(await tab.evaluate(() => navigator.clipboard.readText())).toBe((await secret.textContent())!.trim());
  await tabTo(tab, tab.getByRole("button", { name: "Copy the example" }));
  await tab.keyboard.press(" ");
  await expect(tab.getByRole("button", { name: "Copy the example" })).toHaveText("Copied");
  expect(await tab.evaluate(() => navigator.clipboard.readText())).toContain("curl");
  await contractor.close();
});
