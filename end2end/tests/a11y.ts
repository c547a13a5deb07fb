import { readFileSync } from "node:fs";
import { expect, Page, TestInfo } from "@playwright/test";

// axe-core (npm, pinned in package.json) is read once and evaluated in each page through the
// DevTools protocol: the portal's Content-Security-Policy forbids inline scripts, and
// evaluating this way is not a page script, so the policy stays on for the test.
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

/** The widths every page is looked at: a laptop, and a contractor on a phone. */
export const widths = [1280, 390] as const;

type Finding = { id: string; impact: string | null; help: string; targets: string[] };

/** What axe finds on the page as it is now (every impact). */
export async function axeFindings(page: Page): Promise<Finding[]> {
  if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(axeSource);
  return page.evaluate(async () => {
    const axe = (window as any).axe;
    const result = await axe.run(document, { resultTypes: ["violations"] });
    return result.violations.map((v: any) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      targets: v.nodes.map((n: any) => n.target.join(" ")),
    }));
  });
}

/**
 * Looks at the page in its current state at each width: axe finds no serious or critical
 * violation, a full-page screenshot goes into the report, and at 390 px nothing scrolls
 * sideways. Soft assertions, so one run lists every page's problems; the test still fails.
 */
export async function checkPage(page: Page, testInfo: TestInfo, name: string): Promise<void> {
  const before = page.viewportSize();
  for (const width of widths) {
    await page.setViewportSize({ width, height: 800 });
    // Let a layout that depends on the width settle before measuring.
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    const findings = await axeFindings(page);
    if (findings.length > 0) {
      await testInfo.attach(`${name} at ${width}px: axe findings`, {
        body: JSON.stringify(findings, null, 2),
        contentType: "application/json",
      });
    }
    const serious = findings
      .filter((f) => f.impact === "serious" || f.impact === "critical")
      .map((f) => `${f.id} (${f.impact}): ${f.help} — ${f.targets.join(", ")}`);
    expect.soft(serious, `${name} at ${width}px: no serious or critical axe violations`).toEqual([]);
    await testInfo.attach(`${name} at ${width}px`, {
      body: await page.screenshot({ fullPage: true }),
      contentType: "image/png",
    });
    if (width === 390) {
      const { scrollWidth, clientWidth, widest } = await page.evaluate(() => {
        const root = document.scrollingElement!;
        // The element that sticks out furthest, to name in the failure.
        let widest = "";
        let right = root.clientWidth;
        for (const el of Array.from(document.body.querySelectorAll("*"))) {
          const r = el.getBoundingClientRect().right;
          if (r > right) {
            right = r;
            widest = `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}${el.className && typeof el.className === "string" ? "." + el.className.trim().replace(/\s+/g, ".") : ""} (right edge ${Math.round(r)}px)`;
          }
        }
        return { scrollWidth: root.scrollWidth, clientWidth: root.clientWidth, widest };
      });
      expect
        .soft(scrollWidth, `${name} at 390px: no horizontal scroll (widest: ${widest || "none"})`)
        .toBeLessThanOrEqual(clientWidth);
    }
  }
  if (before) await page.setViewportSize(before);
}
