import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { gzipSync } from "node:zlib";
import type { Page } from "@playwright/test";
import { test, expect, waitForHydration } from "./fixtures";
import { buyIntegrationLicences, people, readMail, signIn, submitRequest, unique } from "./flows";

/**
 * The wasm a contractor's page loads (issue 19, whose target is 300 KB gzip). The contractor's pages
 * get their own bundle (`portcullis-contractor.wasm`, app without its `admin` feature); every
 * other page gets the full one (`portcullis.wasm`).
 *
 * The bytes are what the browser received for each .wasm request, gzipped here (zlib's default
 * level, as `gzip -c`): the portal serves the files uncompressed, so the gzip figure is what a
 * compressing proxy or a precompressed file would send, and the same figure scripts/build
 * writes in pkg/bundles.json and docs/build.md reports.
 *
 * The limit is a release figure: a debug bundle is several times larger and says nothing about
 * what contractors download. `scripts/build --frontend-only --release-contractor` builds the
 * contractor's bundle in release; `make test` builds it in debug for now (docs/build.md says
 * why), and against a site whose contractor bundle is a debug build (pkg/bundles.json says
 * which) the limit test is skipped and says so, and the other checks here still run.
 */
// A ratchet, not yet the issue's 300,000: the contractor's release bundle measured 543,528
// gzip bytes on 6 Dec 2026 (docs/build.md), and this is that plus 3 %. Lower it as the bundle
// shrinks; the issue's target is 300 * 1000.
const LIMIT_GZIP_BYTES = 560_000;
const CONTRACTOR_WASM = "portcullis-contractor.wasm";
const FULL_WASM = "portcullis.wasm";

const siteRoot = process.env.SITE_ROOT ?? resolve(__dirname, "..", "..", "target", "site");
type Bundle = { package: string; profile: string; bytes: number; gzip_bytes: number };
function bundles(): Record<string, Bundle> {
  return JSON.parse(readFileSync(join(siteRoot, "pkg", "bundles.json"), "utf8"));
}
const contractorProfile = bundles()["portcullis-contractor"]?.profile ?? "missing";

/** A wasm file a page loaded: its bytes and their gzip size (-1 until measured; the gzip
 *  size stays -1 when the body could not be read, see `recordWasm`), and when both are in. */
type Loaded = { file: string; bytes: number; gzip: number; measured: Promise<void> };

/** A path as the report shows it, without its token. */
const shown = (path: string) => path.replace(/\/(verify|status|reveal)\/[^/]+/, "/$1/<token>");

/** Records every .wasm response the page receives from now on. */
function recordWasm(page: Page): Loaded[] {
  const loaded: Loaded[] = [];
  page.on("response", (response) => {
    const url = new URL(response.url());
    if (!url.pathname.endsWith(".wasm")) return;
    const entry: Loaded = { file: url.pathname.split("/").pop()!, bytes: -1, gzip: -1, measured: Promise.resolve() };
    entry.measured = (async () => {
      try {
        const body = await response.body();
        entry.bytes = body.length;
        entry.gzip = gzipSync(body).length;
      } catch {
        // A debug build's wasm (tens of MB) is evicted from the browser's inspector cache
        // before it can be read: its size then comes from the transfer, its gzip size stays
        // unknown (the limit test, on a release build, fails on that).
        const sizes = await response.request().sizes().catch(() => null);
        entry.bytes = sizes?.responseBodySize ?? -1;
      }
    })();
    loaded.push(entry);
  });
  return loaded;
}

/** Opens `path` in a fresh tab, waits for hydration and returns the wasm it loaded. */
async function wasmOf(page: Page, path: string): Promise<Loaded[]> {
  const tab = await page.context().newPage();
  const loaded = recordWasm(tab);
  try {
    await tab.goto(path);
    await waitForHydration(tab);
    await expect.poll(() => loaded.length, { message: `${path} loaded its wasm` }).toBeGreaterThan(0);
    await Promise.all(loaded.map((l) => l.measured));
    return [...loaded];
  } finally {
    await tab.close();
  }
}

/** The contractor's pages of one request: the start page, the form, the emailed confirmation
 *  link, the status page, its usage page and the credential's reveal link. */
async function contractorPages(page: Page, sandbox: string): Promise<string[]> {
  const company = unique("Bundleco");
  const email = `bundle.${Date.now()}@vendor.example`;
  await submitRequest(page, company, email);
  const confirm = await readMail(page.context(), email, "Confirm your email");
  const verify = new URL(confirm.match(/https?:\/\/\S+\/verify\/\S+/)![0]).pathname;
  await page.goto(verify);
  await waitForHydration(page);
  await page.getByRole("button", { name: "Confirm my email" }).click();
  await expect(page.getByRole("status")).toContainText("your email is confirmed");
  const received = await readMail(page.context(), email, "was received");
  const status = new URL(received.match(/https?:\/\/\S+\/status\/\S+/)![0]).pathname;

  // Approved, so that a reveal link exists (in a context of its own: the approver's session
  // stays out of the contractor's pages).
  await buyIntegrationLicences(sandbox);
  const approver = await page.context().browser()!.newContext();
  try {
    const admin = await approver.newPage();
    await signIn(admin, people.alex);
    await admin.goto("/admin");
    await admin.getByRole("link", { name: company }).click();
    await waitForHydration(admin);
    await admin.getByLabel("Reason for the decision").fill("Needed for the sync");
    await admin.getByRole("button", { name: "Approve" }).click();
    await expect(admin.getByRole("status").filter({ hasText: "Provisioning: ready" })).toBeVisible({ timeout: 30_000 });
  } finally {
    await approver.close();
  }
  const mail = await readMail(page.context(), email, "Your API credential");
  const reveal = new URL(mail.match(/https?:\/\/\S+\/reveal\/\S+/)![0]).pathname;
  return ["/", "/request", verify, status, `${status}/usage`, reveal];
}

test.describe.configure({ mode: "serial" });

let measured: { path: string; loaded: Loaded[] }[] = [];

test("each contractor's page hydrates with the contractor's bundle only", async ({ strictPage: page }, testInfo) => {
  test.setTimeout(120_000);
  const paths = await contractorPages(page, String(testInfo.project.metadata.sandbox));
  measured = [];
  for (const path of paths) {
    const loaded = await wasmOf(page, path);
    measured.push({ path, loaded });
    expect(loaded.map((l) => l.file), `${path} loads the contractor's bundle and nothing else`).toEqual([CONTRACTOR_WASM]);
  }
  const full = await wasmOf(page, "/admin");
  expect(full.map((l) => l.file), "the admin dashboard loads the full bundle").toEqual([FULL_WASM]);
  expect(measured[0].loaded[0].bytes, "the contractor's bundle's size was measured").toBeGreaterThan(0);
  expect(measured[0].loaded[0].bytes, "the contractor's bundle is smaller than the full one").toBeLessThan(full[0].bytes);

  const lines = measured.map(({ path, loaded }) =>
    `${shown(path)}: ${loaded.map((l) => `${l.file} ${l.bytes} bytes, ${l.gzip} gzip`).join("; ")}`,
  );
  lines.push(`/admin: ${full.map((l) => `${l.file} ${l.bytes} bytes, ${l.gzip} gzip`).join("; ")}`);
  testInfo.annotations.push({ type: "wasm loaded", description: `(${contractorProfile} contractor bundle) ${lines.join(" | ")}` });
});

test(`a contractor's page loads at most ${LIMIT_GZIP_BYTES} bytes of wasm, gzipped (release build)`, async ({}, testInfo) => {
  test.skip(
    contractorProfile === "dev",
    "the contractor's bundle in this site is a debug build; the limit is for release builds (make test builds it in release)",
  );
  expect(measured.length, "the pages were measured by the test before").toBe(6);
  for (const { path, loaded } of measured) {
    expect(loaded.every((l) => l.gzip >= 0), `${path}: every wasm body was read`).toBe(true);
    const gzip = loaded.reduce((sum, l) => sum + l.gzip, 0);
    testInfo.annotations.push({ type: "wasm gzip bytes", description: `${shown(path)}: ${gzip}` });
    expect(gzip, `${path} loads ${gzip} bytes of wasm (gzip)`).toBeLessThanOrEqual(LIMIT_GZIP_BYTES);
  }
});

test("from a contractor's page the menu's admin link loads the admin page with the full bundle", async ({ strictPage: page }) => {
  const loaded = recordWasm(page);
  await page.goto("/request");
  await waitForHydration(page);
  await expect.poll(() => loaded.map((l) => l.file)).toEqual([CONTRACTOR_WASM]);
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Admin dashboard" }).click();
  await expect(page).toHaveURL(/\/admin$/);
  await expect(page.getByRole("heading", { level: 1, name: "Admin dashboard" })).toBeVisible();
  await waitForHydration(page);
  await expect.poll(() => loaded.map((l) => l.file)).toEqual([CONTRACTOR_WASM, FULL_WASM]);
  // The full bundle's router has every page: back to the form without another load.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Request access" }).click();
  await expect(page.getByRole("heading", { level: 1, name: "Request access" })).toBeVisible();
  await expect(page.getByLabel("Company")).toBeVisible();
  expect(loaded.map((l) => l.file)).toEqual([CONTRACTOR_WASM, FULL_WASM]);
});
