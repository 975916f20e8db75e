import { bubble, expect, send, signUp, startDirectChat, test } from "./fixtures";

test("search finds a message across chats and opens it in context, highlighted", async ({ browser }) => {
  const ann = await signUp(browser, "Ann");
  const bob = await signUp(browser, "Bob");
  await startDirectChat(ann, bob.handle);
  const word = `zebra${Date.now().toString(36)}`;
  await send(ann, `the ${word} crossed the road`);
  for (let i = 0; i < 5; i++) await send(ann, `filler ${i}`);
  await expect(bubble(ann.page, "filler 4").getByRole("img", { name: "Sent" })).toBeVisible();

  await bob.page.keyboard.press("Control+k");
  await expect(bob.page.getByRole("searchbox", { name: "Search chats and messages" })).toBeFocused();
  await bob.page.keyboard.type(word);
  const results = bob.page.getByRole("region", { name: "Messages found" });
  await expect(results.locator("mark")).toHaveText(word);
  await results.getByRole("button").first().click();
  const hit = bubble(bob.page, `the ${word} crossed the road`);
  await expect(hit).toBeVisible();
  await expect(bob.page.locator(".highlight-flash")).toHaveCount(1);

  // Within one chat too.
  await bob.page.getByRole("button", { name: "Search in this chat" }).click();
  await bob.page.getByRole("searchbox", { name: "Search messages in this chat" }).fill("filler");
  await expect(bob.page.getByRole("complementary", { name: "Search in this chat" }).locator("mark").first()).toHaveText("filler");

  await ann.context.close();
  await bob.context.close();
});
