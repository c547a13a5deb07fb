import { expect, Browser, Page, BrowserContext, request as playwrightRequest } from "@playwright/test";
import { waitForHydration } from "./fixtures";

/** The people the sandbox org is seeded with. */
export const people = {
  alex: { username: "admin@acme-sandbox.example", password: "Admin-Sandbox-1" },
  blake: { username: "approver@acme-sandbox.example", password: "Approver-Sandbox-2" },
  sam: { username: "security@acme-sandbox.example", password: "Security-Sandbox-3" },
  nora: { username: "nora@acme-sandbox.example", password: "Norole-Sandbox-4" },
};

export function unique(prefix: string): string {
  return `${prefix} ${Date.now().toString(36)}${Math.floor(Math.random() * 1000)}`;
}

export function daysFromNow(days: number): string {
  const d = new Date(Date.now() + days * 86_400_000);
  return d.toISOString().slice(0, 10);
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** A day as the pages show it (`<Time>` in app/src/pages/time.rs): `2027-03-05` → "5 Mar 2027". */
export function dayText(isoDay: string): string {
  const [year, month, day] = isoDay.split("-").map(Number);
  return `${day} ${MONTHS[month - 1]} ${year}`;
}

/** A UTC time's day as the pages show it, without the year ("5 Dec"), and a pattern for the
 *  absolute part ("5 Dec 20:01 UTC", with the year before the page has hydrated). */
export function shownDay(at: Date): { day: string; absolute: RegExp } {
  const day = `${at.getUTCDate()} ${MONTHS[at.getUTCMonth()]}`;
  return { day, absolute: new RegExp(`${day}( ${at.getUTCFullYear()})? \\d\\d:\\d\\d UTC`) };
}

/** Reads the newest mail to `to` whose subject contains `subject`, from the outbox page. */
export async function readMail(context: BrowserContext, to: string, subject: string): Promise<string> {
  const page = await context.newPage();
  try {
    let body = "";
    await expect(async () => {
      await page.goto("/outbox");
      const mail = page.getByRole("article", { name: new RegExp(`Mail to ${to.replace(/[.+]/g, "\\$&")}: .*${subject}`) }).first();
      await expect(mail).toBeVisible({ timeout: 1000 });
      body = (await mail.locator("pre").textContent()) ?? "";
    }).toPass({ timeout: 15_000 });
    return body;
  } finally {
    await page.close();
  }
}

/** A contractor asks for Case access (Subject and Description readable) and confirms the email.
 *  `read` finds a mail by recipient and subject: the sandbox outbox by default; org mode passes
 *  its SMTP sink's reader. */
export async function submitAndVerify(
  page: Page,
  company: string,
  email: string,
  read: (to: string, subject: string) => Promise<string> = (to, subject) => readMail(page.context(), to, subject),
): Promise<void> {
  await submitRequest(page, company, email);

  const mail = await read(email, "Confirm your email");
  const code = mail.match(/\b(\d{6})\b/)?.[1];
  expect(code, "a six-digit code in the mail").toBeTruthy();
  await page.getByLabel("Confirmation code").fill(code!);
  await page.getByRole("button", { name: "Confirm" }).click();
  await expect(page.getByRole("status")).toContainText("Your email is confirmed");
}

/** The request form filled in and sent, up to "Check your email" (the email not yet confirmed). */
export async function submitRequest(page: Page, company: string, email: string): Promise<void> {
  await page.goto("/request");
  await waitForHydration(page);
  await page.getByLabel("Company").fill(company);
  await page.getByLabel("Your name").fill("Kim Kinetic");
  await page.getByLabel("Work email").fill(email);
  await page.getByLabel("What the work is").fill("Overnight sync of support cases into our own CRM.");
  await page.getByLabel("Access to Case records").selectOption("edit");
  await page.getByLabel("Case: Subject").selectOption("read");
  await page.getByLabel("Case: Description").selectOption("read");
  await page.getByLabel("Expected API calls per day").fill("500");
  await page.getByLabel("Access needed until").fill(daysFromNow(60));
  await page.getByRole("button", { name: "Send request" }).click();
  await expect(page.getByRole("heading", { name: "Check your email" })).toBeVisible();
}

/** Signs in through the sandbox org's login page, starting from the current page's button. */
export async function signIn(page: Page, who: { username: string; password: string }, from = "/admin"): Promise<void> {
  await page.goto(from);
  await page.getByRole("link", { name: "Log in with Salesforce" }).click();
  await expect(page.getByRole("heading", { name: /Log in to/ })).toBeVisible();
  await page.getByLabel("Username").fill(who.username);
  await page.getByLabel("Password").fill(who.password);
  await page.getByRole("button", { name: "Log In" }).click();
  await expect(page.getByRole("button", { name: "Sign out" })).toBeVisible();
}

export async function signOut(page: Page): Promise<void> {
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page.getByRole("link", { name: "Sign in" })).toBeVisible();
}

/** The contractor's status link from the confirmation mail. */
export async function statusLink(context: BrowserContext, email: string): Promise<string> {
  const mail = await readMail(context, email, "was received");
  const link = mail.match(/https?:\/\/\S+\/status\/\S+/)?.[0];
  expect(link, "a status link in the mail").toBeTruthy();
  return new URL(link!).pathname;
}

/**
 * The org buys Salesforce Integration seats, as its admin would: the sandbox org is seeded with
 * five and the rest of the suite's approvals use them all, so the specs whose walks approve one
 * more request (a11y, keyboard) first raise the seats to `seats` (idempotent).
 */
export async function buyIntegrationLicences(sandboxUrl: string, seats = 20): Promise<void> {
  const api = await playwrightRequest.newContext({ ignoreHTTPSErrors: true });
  const response = await api.patch(`${sandboxUrl}/__sandbox/settings`, { data: { integrationLicenses: seats } });
  expect(response.ok(), await response.text()).toBeTruthy();
  await api.dispose();
}

/** A credential as the reveal page hands it over. */
export type Credential = { key: string; secret: string; tokenUrl: string };

/** The contractor collects a credential from the newest mail whose subject starts with
 *  `subject`, in a browser of their own: the emailed code, then "Reveal now". */
export async function revealCredential(
  browser: Browser,
  page: Page,
  email: string,
  subject = "Your API credential",
): Promise<Credential> {
  const mail = await readMail(page.context(), email, subject);
  const link = mail.match(/https?:\/\/\S+\/reveal\/\S+/)?.[0];
  expect(link, "a reveal link in the mail").toBeTruthy();
  const contractor = await browser.newContext();
  try {
    const tab = await contractor.newPage();
    await tab.goto(new URL(link!).pathname);
    await waitForHydration(tab);
    await tab.getByRole("button", { name: "Email me a code" }).click();
    await expect(tab.getByRole("status").filter({ hasText: "We sent a code to" })).toBeVisible();
    const code = (await readMail(contractor, email, "Your code to reveal")).match(/\b(\d{6})\b/)?.[1];
    expect(code, "a six-digit code").toBeTruthy();
    await tab.getByLabel("Code from the email").fill(code!);
    await tab.getByRole("button", { name: "Reveal now" }).click();
    const text = async (label: string) => (await tab.getByLabel(label, { exact: true }).textContent())!.trim();
    return { key: await text("Consumer key"), secret: await text("Consumer secret"), tokenUrl: await text("Token URL") };
  } finally {
    await contractor.close();
  }
}
