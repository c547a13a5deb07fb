import { request as playwrightRequest, APIRequestContext, Page } from "@playwright/test";
import { test, expect, waitForHydration } from "./fixtures";
import { people, signIn, submitAndVerify, unique } from "./flows";

test.describe.configure({ mode: "serial" });

/** The sandbox org's control API for this project (faults are per org). */
async function sandbox(): Promise<{ api: APIRequestContext; url: string }> {
  const url = String(test.info().project.metadata.sandbox);
  const api = await playwrightRequest.newContext({ ignoreHTTPSErrors: true });
  return { api, url };
}

async function setFaults(rules: object[]) {
  const { api, url } = await sandbox();
  const response = await api.put(`${url}/__sandbox/faults`, { data: { rules } });
  expect(response.ok(), await response.text()).toBeTruthy();
  await api.dispose();
}

/** Submits, confirms and approves a request as asked; stays on the request's page. */
async function approveNew(page: Page, prefix: string) {
  const company = unique(prefix);
  await submitAndVerify(page, company, `${prefix.toLowerCase()}.${Date.now()}@vendor.example`);
  await signIn(page, people.alex);
  await page.goto("/admin");
  await page.getByRole("link", { name: company }).click();
  await expect(page.getByRole("heading", { level: 1, name: `${company}'s request` })).toBeVisible();
  await waitForHydration(page);
  await page.getByLabel("Reason for the decision").fill("Needed for the sync");
  await page.getByRole("button", { name: "Approve" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Approved" })).toBeVisible();
}

test.afterEach(async () => {
  await setFaults([]);
});

test("a run that needs attention is retried once the cause is fixed", async ({ strictPage: page }) => {
  // The org refuses the integration user: no licence left.
  await setFaults([
    {
      path: "/services/data/*/composite",
      methods: ["POST"],
      errorRate: 1,
      errorStatus: 400,
      errorCode: "LICENSE_LIMIT_EXCEEDED",
      errorMessage: "License Limit Exceeded",
    },
  ]);
  await approveNew(page, "Stuckco");
  await expect(page.getByRole("status").filter({ hasText: "Provisioning: needs attention" })).toBeVisible({ timeout: 30_000 });
  await expect(page.getByRole("alert")).toContainText("no free Salesforce Integration licence");

  // The admin frees a licence (here: the fault goes away) and retries.
  await setFaults([]);
  await page.getByRole("button", { name: "Retry the failed step" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Retrying" })).toBeVisible();
  await expect(page.getByRole("status").filter({ hasText: "Provisioning: ready" })).toBeVisible({ timeout: 30_000 });
  await expect(page.getByRole("button", { name: "Cancel and undo in Salesforce" })).toHaveCount(0);
});

test("cancelling a half-done run undoes what it made", async ({ strictPage: page }) => {
  // The app's deploy is refused: the user, permission set and shares are made, then the
  // run stops.
  await setFaults([
    {
      path: "/services/data/*/metadata/deployRequest",
      methods: ["POST"],
      errorRate: 1,
      errorStatus: 400,
      errorCode: "INVALID_CROSS_REFERENCE_KEY",
      errorMessage: "Deploys are switched off in this org",
    },
  ]);
  await approveNew(page, "Halfdone");
  await expect(page.getByRole("status").filter({ hasText: "Provisioning: needs attention" })).toBeVisible({ timeout: 30_000 });
  const steps = page.getByRole("table", { name: "Provisioning steps" });
  await expect(steps.getByRole("row", { name: /Integration user/ })).toContainText("succeeded");

  // The admin gives up on this grant (deploys work again, so the undo can delete the app).
  await setFaults([]);
  await page.getByRole("button", { name: "Cancel and undo in Salesforce" }).click();
  await expect(page.getByRole("status").filter({ hasText: "is being undone" })).toBeVisible();
  await expect(page.getByRole("status").filter({ hasText: "Provisioning: cancelled" })).toBeVisible({ timeout: 30_000 });
  await expect(steps.getByRole("row", { name: /Integration user/ })).toContainText("undone");
  await expect(steps.getByRole("row", { name: /Least-privilege proof/ })).toContainText("cancelled");
  await expect(page.getByRole("button", { name: "Retry the failed step" })).toHaveCount(0);
});

test("record sharing is offered only where the object's sharing model allows it", async ({ strictPage: page }) => {
  // The admin made Case sharing Public Read/Write in Sharing Settings.
  const { api, url } = await sandbox();
  const setDefaults = async (defaults: object) => {
    const response = await api.patch(`${url}/__sandbox/settings`, { data: { orgWideDefaults: defaults } });
    expect(response.ok(), await response.text()).toBeTruthy();
  };
  await setDefaults({ Case: "Edit" });
  try {
    const company = unique("Sharemodel");
    await submitAndVerify(page, company, `sharemodel.${Date.now()}@vendor.example`);
    await signIn(page, people.alex);
    await page.goto("/admin");
    await page.getByRole("link", { name: company }).click();
    await waitForHydration(page);
    const records = page.getByRole("group", { name: "Records", exact: true });
    // Case records are not offered for sharing; the page says why, naming object and model.
    const refused = records.getByRole("list", { name: "Records that cannot be shared" });
    await expect(refused.getByRole("listitem").filter({ hasText: "Case: org-wide default Public Read/Write" })).toContainText(
      "every user sees and edits all Case records; no sharing needed",
    );
    const ids = records.getByLabel("Record ids to share (one per line)");
    await expect(ids).toHaveAccessibleDescription(/Records can be shared for: Account\./);
    await expect(ids).not.toHaveAccessibleDescription(/Case/);
  } finally {
    await setDefaults({ Case: "None" });
    await api.dispose();
  }
});
