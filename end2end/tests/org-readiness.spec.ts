import { test, expect, waitForHydration } from "./fixtures";
import { people, signIn } from "./flows";

// The owners' org-readiness page runs the doctor's checks against the portal's org (the
// embedded sandbox org here, which is complete) and runs them again on request.
test("an owner checks the org's readiness and checks again", async ({ strictPage: page }) => {
  await signIn(page, people.alex);
  await page.getByRole("link", { name: "Org readiness" }).click();
  await expect(page.getByRole("heading", { name: "Org readiness" })).toBeVisible();
  await waitForHydration(page);
  const checks = page.getByRole("table", { name: "Org checks" });
  // The first cell of a check's row is its result: ok, warn or FAIL.
  const result = (id: string) => checks.getByRole("row").filter({ hasText: id }).getByRole("cell").first();
  await expect(result("portal-token")).toHaveText("ok");
  await expect(result("integration-licences")).toHaveText("ok");
  await page.getByRole("button", { name: "Check again" }).click();
  await expect(result("portal-token")).toHaveText("ok");
});
