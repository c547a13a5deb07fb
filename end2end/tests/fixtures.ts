import { test as base, expect, Page } from "@playwright/test";

/**
 * A page that fails the test on any browser console error, uncaught exception or HTTP
 * error response it sees, apart from the statuses a test declares it expects.
 */
export const test = base.extend<{ strictPage: Page; allowedStatuses: number[] }>({
  allowedStatuses: [[], { option: true }],
  strictPage: async ({ page, allowedStatuses }, use) => {
    const problems: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error" && !/status of (\d+)/.test(m.text())) problems.push(`console: ${m.text()}`);
    });
    page.on("pageerror", (e) => problems.push(`page error: ${e}`));
    page.on("response", (r) => {
      if (r.status() >= 400 && !allowedStatuses.includes(r.status())) {
        problems.push(`HTTP ${r.status()} ${r.url()}`);
      }
    });
    await use(page);
    expect(problems, "no browser errors").toEqual([]);
  },
});

/** Waits until the wasm bundle has hydrated the page (the menu button reacts to clicks). */
export async function waitForHydration(page: Page) {
  await page.waitForFunction(() => (window as any).__portcullisHydrated === true, null, {
    timeout: 20_000,
  });
}

export { expect };
