import { test, expect, waitForHydration } from "./fixtures";

const pages = [
  { path: "/", heading: "Portcullis" },
  { path: "/request", heading: "Request access" },
  { path: "/admin", heading: "Admin dashboard" },
  { path: "/audit", heading: "Audit log" },
];

for (const { path, heading } of pages) {
  test(`${path} renders with its heading and the main navigation`, async ({ strictPage: page }) => {
    await page.goto(path);
    await expect(page.getByRole("heading", { level: 1, name: heading })).toBeVisible();
    const nav = page.getByRole("navigation", { name: "Main" });
    await expect(nav.getByRole("link", { name: "Request access" })).toBeVisible();
    await expect(nav.getByRole("link", { name: "Admin dashboard" })).toBeVisible();
    await expect(nav.getByRole("link", { name: "Audit log" })).toBeVisible();
  });
}

test.describe("an unknown address", () => {
  test.use({ allowedStatuses: [404] });
  test("shows the not-found page with status 404", async ({ strictPage: page }) => {
    const response = await page.goto("/no/such/page");
    expect(response?.status()).toBe(404);
    await expect(page.getByRole("heading", { level: 1, name: "Page not found" })).toBeVisible();
    await page.getByRole("link", { name: "Go to the start page" }).click();
    await expect(page.getByRole("heading", { level: 1, name: "Portcullis" })).toBeVisible();
  });
});

test.describe("on a narrow screen", () => {
  test.use({ viewport: { width: 390, height: 800 } });

  test("the menu button works once the page has hydrated", async ({ strictPage: page }) => {
    await page.goto("/");
    await waitForHydration(page);
    const menu = page.getByRole("button", { name: "Menu" });
    const nav = page.getByRole("navigation", { name: "Main" });
    await expect(menu).toHaveAttribute("aria-expanded", "false");
    await expect(nav.getByRole("link", { name: "Audit log" })).toBeHidden();

    await menu.click();
    await expect(menu).toHaveAttribute("aria-expanded", "true");
    await expect(nav.getByRole("link", { name: "Audit log" })).toBeVisible();

    // Client-side navigation (no full reload) to another page, through the menu: a page of
    // the same (contractor's) bundle; the admin and audit pages load with the full bundle
    // (bundle.spec.ts).
    await nav.getByRole("link", { name: "Request access" }).click();
    await expect(page.getByRole("heading", { level: 1, name: "Request access" })).toBeVisible();
    await expect(page).toHaveURL(/\/request$/);

    // Following a link folds the menu away again; the button still toggles it.
    await expect(menu).toHaveAttribute("aria-expanded", "false");
    await expect(nav.getByRole("link", { name: "Audit log" })).toBeHidden();
    await menu.click();
    await expect(menu).toHaveAttribute("aria-expanded", "true");
    await menu.click();
    await expect(menu).toHaveAttribute("aria-expanded", "false");
  });
});

test("without JavaScript every page still shows its navigation", async ({ browser }) => {
  const context = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 390, height: 800 } });
  const page = await context.newPage();
  await page.goto("/request");
  await expect(page.getByRole("heading", { level: 1, name: "Request access" })).toBeVisible();
  await expect(page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Audit log" })).toBeVisible();
  await context.close();
});
