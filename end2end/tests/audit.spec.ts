import { test, expect, waitForHydration } from "./fixtures";
import { people, signIn, submitAndVerify, unique } from "./flows";

test("a security reviewer filters the audit log, opens an entry, verifies the chain and exports", async ({ strictPage: page }) => {
  const company = unique("Auditco");
  const email = `audit.${Date.now()}@vendor.example`;
  await submitAndVerify(page, company, email);

  // Approvers do not get the audit log.
  await signIn(page, people.blake);
  await page.goto("/audit");
  await expect(page.getByRole("heading", { name: "Not authorised" })).toBeVisible();
  await page.getByRole("button", { name: "Sign out" }).click();

  await signIn(page, people.sam, "/audit");
  await page.goto("/audit");
  await expect(page.getByRole("table", { name: "Audit entries" })).toBeVisible();

  // Filter: the request events that mention the company (a text search in the details).
  await page.getByLabel("Action").selectOption("request.*");
  await page.getByLabel("Search details").fill(company);
  await page.getByRole("button", { name: "Filter" }).click();
  await expect(page).toHaveURL(/action=request\.\*/);
  const rows = page.getByRole("table", { name: "Audit entries" }).getByRole("row");
  await expect(rows).toHaveCount(2); // the header and request.submitted
  await expect(rows.nth(1)).toContainText("request.submitted");
  await expect(rows.nth(1)).toContainText(`contractor:${email}`);
  // The filter is kept in the form and in the export links.
  await expect(page.getByLabel("Search details")).toHaveValue(company);
  await expect(page.getByRole("link", { name: "Export CSV" })).toHaveAttribute("href", /action=request\.%2A/);

  // The entry in full, with its hashes.
  await rows.nth(1).getByRole("link").first().click();
  await expect(page.getByRole("heading", { level: 2, name: /request\.submitted/ })).toBeVisible();
  await expect(page.getByText("Previous hash")).toBeVisible();
  const hash = (await page.locator("dd code.hash").nth(1).textContent())!.trim();
  expect(hash).toMatch(/^[0-9a-f]{64}$/);

  // Verify a range: checked at once.
  await page.goto("/audit");
  await waitForHydration(page);
  await page.getByLabel("From entry").fill("1");
  await page.getByLabel("To entry").fill("2");
  await page.getByRole("button", { name: "Verify chain" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Entries 1 to 2 (2) match" })).toBeVisible({ timeout: 30_000 });

  // Verify the whole chain: in the background, its result shown when it finishes without a
  // reload (another test may have one running: then the page says so and shows that one's).
  await page.goto("/audit");
  await waitForHydration(page);
  await page.getByRole("button", { name: "Verify chain" }).click();
  await expect(
    page.getByRole("status").filter({ hasText: /started in the background|already running/ }),
  ).toBeVisible();
  const last = page.getByTestId("last-verification");
  await expect(last.getByRole("heading", { name: "Last verification, of the whole log" })).toBeVisible({ timeout: 30_000 });
  await expect(last.getByRole("status").filter({ hasText: "Intact." })).toBeVisible({ timeout: 30_000 });
  await expect(last).toContainText("asked for by");

  // Export the filtered log as CSV: a real download with the matching entry.
  await page.goto(`/audit?action=request.submitted&q=${encodeURIComponent(company)}`);
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("link", { name: "Export CSV" }).click(),
  ]);
  expect(download.suggestedFilename()).toMatch(/^audit-.*\.csv$/);
  const path = await download.path();
  const csv = require("node:fs").readFileSync(path, "utf8") as string;
  const lines = csv.trim().split("\r\n");
  expect(lines[0]).toBe("seq,at,actor,actor_ip,user_agent,action,target_type,target_id,outcome,details,prev_hash,hash");
  expect(lines).toHaveLength(2);
  expect(lines[1]).toContain("request.submitted");
  expect(lines[1]).toContain(company);
});
