// People using Natter in browsers: each test signs up its own users, each in a browser
// context of their own, against the server global-setup started.
import { type Browser, type BrowserContext, expect, type Page, test as base } from "@playwright/test";

export const baseURL = (): string => {
  const url = process.env.NATTER_E2E_URL;
  if (!url) throw new Error("NATTER_E2E_URL is not set: run through playwright.config.ts");
  return url;
};

let counter = 0;

/** A fresh username: starts with a letter, at most 32 characters. */
export function uniqueHandle(name: string): string {
  counter++;
  return `${name}_${Date.now().toString(36)}${process.pid.toString(36)}${counter}`.slice(0, 32).toLowerCase();
}

export const PASSWORD = "correct horse battery";

export interface Person {
  handle: string;
  name: string;
  context: BrowserContext;
  page: Page;
}

/** Registers through the API (fast), for people whose sign-up is not under test. */
export async function registerByApi(handle: string, name: string): Promise<string> {
  const response = await fetch(`${baseURL()}/v1/users`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ handle, display_name: name, password: PASSWORD }),
  });
  if (response.status !== 201) throw new Error(`register ${handle}: ${response.status} ${await response.text()}`);
  const body = (await response.json()) as { user_id: string };
  return body.user_id;
}

/** Signs in through the API and returns an access token (for seeding data). */
export async function tokenFor(handle: string): Promise<string> {
  const response = await fetch(`${baseURL()}/v1/sessions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ handle, password: PASSWORD, device_name: "seed" }),
  });
  if (response.status !== 201) throw new Error(`login ${handle}: ${response.status}`);
  return ((await response.json()) as { access_token: string }).access_token;
}

export async function newPage(browser: Browser, options: { viewport?: { width: number; height: number }; colorScheme?: "light" | "dark" } = {}): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ baseURL: baseURL(), viewport: options.viewport ?? { width: 1280, height: 800 }, colorScheme: options.colorScheme ?? "light" });
  const page = await context.newPage();
  return { context, page };
}

/** Signs up through the app, as a new user does. */
export async function signUp(browser: Browser, name: string, options: Parameters<typeof newPage>[1] = {}): Promise<Person> {
  const handle = uniqueHandle(name.toLowerCase());
  const { context, page } = await newPage(browser, options);
  await page.goto("/");
  await page.getByRole("button", { name: "Create an account" }).click();
  await page.getByLabel("Username").fill(handle);
  await page.getByLabel("Your name").fill(name);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page.getByRole("navigation", { name: "Chats" })).toBeVisible();
  return { handle, name, context, page };
}

/** Signs in through the app as someone registered before. */
export async function signIn(browser: Browser, handle: string, name: string, options: Parameters<typeof newPage>[1] = {}): Promise<Person> {
  const { context, page } = await newPage(browser, options);
  await page.goto("/");
  await page.getByLabel("Username").fill(handle);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("navigation", { name: "Chats" })).toBeVisible();
  return { handle, name, context, page };
}

/** Opens (or starts) a direct chat with someone by their username. */
export async function startDirectChat(person: Person, handle: string): Promise<void> {
  await person.page.getByRole("button", { name: "New chat" }).click();
  await person.page.getByRole("dialog", { name: "New chat" }).getByLabel("Username").fill(handle);
  await person.page.getByRole("button", { name: "Start chat" }).click();
  await expect(person.page.getByRole("log", { name: "Messages" })).toBeVisible();
}

export async function openChat(person: Person, title: string): Promise<void> {
  await person.page.getByRole("list", { name: "Chat list" }).getByRole("button", { name: new RegExp(title) }).click();
  await expect(person.page.getByRole("log", { name: "Messages" })).toBeVisible();
}

export async function send(person: Person, text: string): Promise<void> {
  const box = person.page.getByRole("textbox", { name: "Message" });
  await box.fill(text);
  await box.press("Enter");
}

/** A message bubble by its text. */
/** A message bubble by its whole text (its accessible name is "<sender>: <text>"). */
export function bubble(page: Page, text: string | RegExp) {
  const log = page.getByRole("log", { name: "Messages" });
  if (text instanceof RegExp) return log.getByRole("article").filter({ hasText: text });
  return log.getByRole("article", { name: new RegExp(`: ${text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`) });
}

export const test = base;
export { expect };
