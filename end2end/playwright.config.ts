import { defineConfig, devices } from "@playwright/test";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

// Debian's Chromium (or PLAYWRIGHT_CHROMIUM_PATH): Playwright never downloads a browser here.
const chromium =
  process.env.PLAYWRIGHT_CHROMIUM_PATH ??
  (existsSync("/usr/bin/chromium") ? "/usr/bin/chromium" : undefined);

// The portal under test is the freshly built binary, started on its own port with an
// empty data directory, so every run begins from a clean database.
const port = Number(process.env.E2E_PORT ?? 3100);
const baseURL = `http://127.0.0.1:${port}`;
const repo = resolve(__dirname, "..");
const binary = process.env.PORTCULLIS_BIN ?? join(repo, "target", "debug", "portcullis");
const dataDir = mkdtempSync(join(tmpdir(), "portcullis-e2e-"));

export default defineConfig({
  testDir: "./tests",
  timeout: 60_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  forbidOnly: !!process.env.CI,
  retries: 0,
  workers: 1,
  reporter: [["list"]],
  outputDir: "test-results",
  use: {
    baseURL,
    actionTimeout: 10_000,
    screenshot: "only-on-failure",
    trace: "retain-on-failure",
  },
  webServer: {
    command: binary,
    url: `${baseURL}/readyz`,
    timeout: 60_000,
    reuseExistingServer: false,
    stdout: "ignore",
    stderr: "pipe",
    env: {
      LISTEN_ADDR: `127.0.0.1:${port}`,
      DATA_DIR: dataDir,
      SITE_ROOT: process.env.SITE_ROOT ?? join(repo, "target", "site"),
      SANDBOX_ORG_LISTEN: `127.0.0.1:${Number(process.env.E2E_SANDBOX_PORT ?? 3190)}`,
      LOG_LEVEL: "warn",
    },
  },
  projects: [
    {
      name: "chromium",
      use: {
        ...devices["Desktop Chrome"],
        launchOptions: chromium
          ? {
              executablePath: chromium,
              args: [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
              ],
            }
          : {},
      },
    },
  ],
});
