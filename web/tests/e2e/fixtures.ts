// People using Natter in browsers: each test signs up its own users, each in a browser
// context of their own, against the server global-setup started.
import AxeBuilder from "@axe-core/playwright";
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

/** No serious or critical accessibility violations on what the page shows now. */
export async function scan(page: Page, screen: string): Promise<void> {
  const results = await new AxeBuilder({ page }).analyze();
  const bad = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  expect(
    bad.map((v) => `${screen}: ${v.id} (${v.impact}) ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`),
    `accessibility violations on ${screen}`,
  ).toEqual([]);
}

/** A JPEG photo drawn in the browser (no image files kept in the repository). */
export async function photo(page: Page, width = 1600, height = 1200, colors: [string, string] = ["#0b7f57", "#f5c542"]): Promise<Buffer> {
  const data = await page.evaluate(
    ([w, h, from, to]) => {
      const canvas = document.createElement("canvas");
      canvas.width = w as number;
      canvas.height = h as number;
      const context = canvas.getContext("2d") as CanvasRenderingContext2D;
      const gradient = context.createLinearGradient(0, 0, w as number, h as number);
      gradient.addColorStop(0, from as string);
      gradient.addColorStop(1, to as string);
      context.fillStyle = gradient;
      context.fillRect(0, 0, w as number, h as number);
      context.fillStyle = "#ffffff";
      context.font = "120px sans-serif";
      context.fillText("Natter", 200, 400);
      return canvas.toDataURL("image/jpeg", 0.92).split(",")[1] as string;
    },
    [width, height, ...colors] as const,
  );
  return Buffer.from(data, "base64");
}

/** A PDF of two pages. */
export const TWO_PAGE_PDF = Buffer.from(
  "%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R 4 0 R]/Count 2>>endobj\n" +
    "3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>endobj\n4 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>endobj\n" +
    "trailer<</Root 1 0 R>>\n%%EOF\n",
);

/** Sends a file from the composer, with a caption; `scanned`: the attach dialog passes axe. */
export async function attach(person: Person, file: { name: string; mimeType: string; buffer: Buffer }, caption = "", scanned = false): Promise<void> {
  await person.page.getByTestId("attach-input").setInputFiles(file);
  const dialog = person.page.getByRole("dialog");
  await expect(dialog).toBeVisible();
  if (scanned) await scan(person.page, "attach dialog");
  if (caption) await dialog.getByPlaceholder("Add a caption").fill(caption);
  await dialog.getByRole("button", { name: "Send" }).click();
}

/** Ann and Bob, signed up, in a direct chat that each has open (Ann said "hi"). */
export async function chatting(browser: Browser): Promise<[Person, Person]> {
  const ann = await signUp(browser, "Ann");
  const bob = await signUp(browser, "Bob");
  await startDirectChat(ann, bob.handle);
  await send(ann, "hi");
  await openChat(bob, "Ann");
  await expect(bubble(bob.page, "hi")).toBeVisible();
  return [ann, bob];
}

export const test = base;
export { expect };
