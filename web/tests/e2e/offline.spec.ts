import { bubble, expect, openChat, type Person, send, signUp, startDirectChat, test } from "./fixtures";

test("offline while the other sends 20 messages: all 20 arrive, in order, once", async ({ browser }) => {
  const ann = await signUp(browser, "Ann");
  const bob = await signUp(browser, "Bob");
  await startDirectChat(ann, bob.handle);
  await send(ann, "before");
  await openChat(bob, "Ann");
  await expect(bubble(bob.page, "before")).toBeVisible();

  await bob.context.setOffline(true);
  await expect(bob.page.getByText("You're offline")).toBeVisible();
  const texts = Array.from({ length: 20 }, (_, i) => `offline message ${String(i + 1).padStart(2, "0")}`);
  for (const text of texts) await send(ann, text);
  await expect(bubble(ann.page, texts[19] as string).getByRole("img", { name: "Sent" })).toBeVisible();

  await bob.context.setOffline(false);
  await expect(bubble(bob.page, texts[19] as string)).toBeVisible();
  const shown = await bob.page.getByRole("log", { name: "Messages" }).getByRole("article").filter({ hasText: "offline message" }).allTextContents();
  const bodies = shown.map((s) => /offline message \d\d/.exec(s)?.[0]);
  expect(bodies).toEqual(texts);
  await expect(bob.page.locator("[data-connection=live]")).toBeAttached();

  await ann.context.close();
  await bob.context.close();
});

/** Takes the network away from the page and its service worker, or gives it back. */
async function setNetwork(person: Person, online: boolean): Promise<void> {
  if (online) {
    await person.context.unroute("**");
    await person.context.setOffline(false);
  } else {
    await person.context.setOffline(true);
    await person.context.route("**", (route) => (route.request().serviceWorker() ? route.abort("internetdisconnected") : route.continue()));
  }
}

/** Waits until the service worker controls the page and has the app shell cached. */
async function installed(person: Person): Promise<void> {
  await person.page.evaluate(() => navigator.serviceWorker.ready);
  await expect.poll(() => person.page.evaluate(() => navigator.serviceWorker.controller !== null), { timeout: 15_000 }).toBe(true);
  await expect
    .poll(() => person.page.evaluate(async () => (await caches.keys()).some((name) => name.startsWith("natter-shell-"))))
    .toBe(true);
}

test("the app shell opens with the network off, with the chats this browser kept", async ({ browser }) => {
  const ann = await signUp(browser, "Ann");
  const bob = await signUp(browser, "Bob");
  await startDirectChat(ann, bob.handle);
  await send(ann, "kept for later");
  await expect(bubble(ann.page, "kept for later").getByRole("img", { name: /^(Sent|Delivered|Read)$/ })).toBeVisible();
  await installed(ann);
  // The snapshot is saved a second after the last change.
  await ann.page.waitForTimeout(1_500);

  await setNetwork(ann, false);
  const response = await ann.page.reload();
  expect(response?.fromServiceWorker()).toBe(true);
  await expect(ann.page.getByText("You're offline")).toBeVisible();
  await expect(ann.page.getByRole("list", { name: "Chat list" }).getByRole("button", { name: /Bob/ })).toBeVisible();
  await expect(bubble(ann.page, "kept for later")).toBeVisible();

  await ann.context.close();
  await bob.context.close();
});

test("offline with 5 sends, a reload among them, then online: all 5 delivered once, in order", async ({ browser }) => {
  const ann = await signUp(browser, "Ann");
  const bob = await signUp(browser, "Bob");
  await startDirectChat(ann, bob.handle);
  await send(ann, "before");
  await openChat(bob, "Ann");
  await expect(bubble(bob.page, "before")).toBeVisible();
  await installed(ann);
  await ann.page.waitForTimeout(1_500);

  await setNetwork(ann, false);
  await expect(ann.page.getByText("You're offline")).toBeVisible();
  const texts = Array.from({ length: 5 }, (_, i) => `from the train ${i + 1}`);
  for (const text of texts.slice(0, 3)) await send(ann, text);
  await expect(bubble(ann.page, texts[2] as string).getByRole("img", { name: "Sending" })).toBeVisible();
  // The tab goes away and comes back, still offline: the outbox keeps the sends.
  await ann.page.reload();
  await expect(bubble(ann.page, texts[2] as string)).toBeVisible();
  for (const text of texts.slice(3)) await send(ann, text);

  await setNetwork(ann, true);
  await expect(bubble(ann.page, texts[4] as string).getByRole("img", { name: /^(Sent|Delivered|Read)$/ })).toBeVisible({ timeout: 20_000 });
  await expect(bubble(bob.page, texts[4] as string)).toBeVisible();
  const shown = await bob.page.getByRole("log", { name: "Messages" }).getByRole("article").filter({ hasText: "from the train" }).allTextContents();
  expect(shown.map((s) => /from the train \d/.exec(s)?.[0])).toEqual(texts);

  await ann.context.close();
  await bob.context.close();
});
