import { bubble, expect, openChat, send, signUp, startDirectChat, test } from "./fixtures";

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
