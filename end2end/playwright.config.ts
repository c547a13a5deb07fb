import { defineConfig, devices, type PlaywrightTestConfig } from "@playwright/test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

// Debian's Chromium (or PLAYWRIGHT_CHROMIUM_PATH): Playwright never downloads a browser here.
const chromium =
  process.env.PLAYWRIGHT_CHROMIUM_PATH ??
  (existsSync("/usr/bin/chromium") ? "/usr/bin/chromium" : undefined);

// The portal under test is the freshly built binary, started on its own port with an
// empty database, so every run begins clean: once on SQLite (an empty data directory) and,
// when PostgreSQL answers, once more on a freshly created PostgreSQL database.
const port = Number(process.env.E2E_PORT ?? 3100);
const pgPort = Number(process.env.E2E_POSTGRES_PORT ?? 3101);
const repo = resolve(__dirname, "..");
const binary = process.env.PORTCULLIS_BIN ?? join(repo, "target", "debug", "portcullis");
const siteRoot = process.env.SITE_ROOT ?? join(repo, "target", "site");
const postgresUrl = process.env.E2E_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432";
const required = !!process.env.CI && process.env.CI !== "0";

function postgresAnswers(): boolean {
  const probe = spawnSync("psql", [`${postgresUrl}/postgres`, "-Atqc", "select 1"], {
    timeout: 10_000,
    encoding: "utf8",
  });
  return probe.status === 0 && probe.stdout.trim() === "1";
}

const withPostgres = postgresAnswers();
if (!withPostgres) {
  const message = `PostgreSQL does not answer at ${postgresUrl}`;
  if (required) throw new Error(`${message}; CI requires the PostgreSQL browser tests`);
  console.warn(`\n!!! SKIPPED: the PostgreSQL browser tests (${message})\n`);
}

function server(listen: number, sandbox: number, database: "sqlite" | "postgres") {
  return {
    command: database === "postgres" ? join(__dirname, "serve-postgres.sh") : binary,
    url: `http://127.0.0.1:${listen}/readyz`,
    timeout: 60_000,
    reuseExistingServer: false,
    stdout: "ignore" as const,
    stderr: "pipe" as const,
    env: {
      PORTCULLIS_BIN: binary,
      E2E_POSTGRES_URL: postgresUrl,
      LISTEN_ADDR: `127.0.0.1:${listen}`,
      DATA_DIR: mkdtempSync(join(tmpdir(), `portcullis-e2e-${database}-`)),
      SITE_ROOT: siteRoot,
      SANDBOX_ORG_LISTEN: `127.0.0.1:${sandbox}`,
      LOG_LEVEL: "warn",
      // The usage collector runs when a test presses "Collect usage now", never on its
      // own in the middle of one.
      USAGE_COLLECT_SECONDS: "0",
      // Every test submits from 127.0.0.1: the suite makes more requests than a person
      // would in an hour (the limit itself is tested in the Rust tests).
      SUBMISSIONS_PER_HOUR: "1000",
      // The access reviews spec moves the portal's clock past a due date (and back), and
      // waits for the reviews job to give the unanswered item its default.
      SANDBOX_CLOCK_CONTROL: "1",
      REVIEWS_SECONDS: "2",
    },
  };
}

const chromiumUse = {
  ...devices["Desktop Chrome"],
  // The built-in sandbox org serves HTTPS with a certificate of its own (in DATA_DIR): like
  // a user who accepted it once, the browser takes it.
  ignoreHTTPSErrors: true,
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
};

const sandboxPort = Number(process.env.E2E_SANDBOX_PORT ?? 3190);
const pgSandboxPort = Number(process.env.E2E_POSTGRES_SANDBOX_PORT ?? 3191);
// Each project's sandbox org (its control API sets faults for the tests that need them).
const projects: PlaywrightTestConfig["projects"] = [
  {
    name: "sqlite",
    use: { ...chromiumUse, baseURL: `http://127.0.0.1:${port}` },
    metadata: { sandbox: `https://127.0.0.1:${sandboxPort}` },
  },
];
const webServer = [server(port, sandboxPort, "sqlite")];
if (withPostgres) {
  projects.push({
    name: "postgres",
    use: { ...chromiumUse, baseURL: `http://127.0.0.1:${pgPort}` },
    metadata: { sandbox: `https://127.0.0.1:${pgSandboxPort}` },
  });
  webServer.push(server(pgPort, pgSandboxPort, "postgres"));
}

// Org mode (issue 14): the portal against the standalone HTTPS sandbox org (`portcullis
// sandbox-org`), as against a real org: once with JWT bearer (plus the consumer secret for
// staff sign-in), once with client credentials. Mail goes to an SMTP sink (org mode has no
// outbox page) whose maildir the test reads.
const orgPort = Number(process.env.E2E_ORG_PORT ?? 3110);
const orgSandboxPort = Number(process.env.E2E_ORG_SANDBOX_PORT ?? 3192);
// Playwright loads this file in the runner (which starts the web servers) and again in every
// worker (which runs the tests): directories the tests read must be made once, so the runner
// makes them and passes the parent down in the environment its workers inherit.
const orgRunDir = (process.env.E2E_ORG_RUN_DIR ??= mkdtempSync(join(tmpdir(), "portcullis-e2e-org-")));
const orgDir = (name: string) => {
  const dir = join(orgRunDir, name);
  mkdirSync(dir, { recursive: true });
  return dir;
};
const orgState = orgDir("sandbox-org");
const orgUrl = `https://127.0.0.1:${orgSandboxPort}`;
const orgModes = [
  { name: "org-jwt", mode: "jwt", port: orgPort, smtp: orgPort + 2 },
  { name: "org-secret", mode: "secret", port: orgPort + 1, smtp: orgPort + 3 },
];
webServer.push({
  command: [
    binary,
    "sandbox-org",
    "--listen",
    `127.0.0.1:${orgSandboxPort}`,
    "--state",
    orgState,
    ...orgModes.flatMap((m) => ["--portal-callback", `http://127.0.0.1:${m.port}/auth/callback`]),
  ].join(" "),
  url: `${orgUrl}/__sandbox`,
  ignoreHTTPSErrors: true,
  timeout: 60_000,
  reuseExistingServer: false,
  stdout: "ignore" as const,
  stderr: "pipe" as const,
} as any);
for (const m of orgModes) {
  const maildir = orgDir(`${m.name}-mail`);
  webServer.push({
    command: `${join(__dirname, "serve-org-mode.sh")} ${m.mode}`,
    url: `http://127.0.0.1:${m.port}/readyz`,
    timeout: 60_000,
    reuseExistingServer: false,
    stdout: "ignore" as const,
    stderr: "pipe" as const,
    env: {
      PORTCULLIS_BIN: binary,
      E2E_ORG_STATE: orgState,
      E2E_ORG_URL: orgUrl,
      E2E_MAILDIR: maildir,
      E2E_SMTP_PORT: String(m.smtp),
      LISTEN_ADDR: `127.0.0.1:${m.port}`,
      DATA_DIR: mkdtempSync(join(tmpdir(), `portcullis-e2e-${m.name}-`)),
      SITE_ROOT: siteRoot,
      LOG_LEVEL: "warn",
      USAGE_COLLECT_SECONDS: "0",
    },
  } as any);
  projects.push({
    name: m.name,
    testMatch: /org-mode\.spec\.ts/,
    use: { ...chromiumUse, baseURL: `http://127.0.0.1:${m.port}` },
    metadata: { sandbox: orgUrl, maildir, orgState, mode: m.mode },
  });
}
// The other projects run every spec but the org-mode one.
for (const p of projects) {
  if (!p.name?.startsWith("org-")) p.testIgnore = /org-mode\.spec\.ts/;
}

export default defineConfig({
  testDir: "./tests",
  timeout: 60_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  forbidOnly: !!process.env.CI,
  retries: 0,
  workers: 1,
  // The HTML report keeps what tests attach (the pages' screenshots at each width, axe
  // findings): `npx playwright show-report` opens it.
  reporter: [["list"], ["html", { open: "never", outputFolder: "playwright-report" }]],
  outputDir: "test-results",
  use: {
    actionTimeout: 10_000,
    screenshot: "only-on-failure",
    trace: "retain-on-failure",
  },
  webServer,
  projects,
});
