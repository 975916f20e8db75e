import { bubble, expect, openChat, send, signUp, startDirectChat, test } from "./fixtures";

test("two people chat live: ticks, typing, replies, edits, reactions and deletes", async ({ browser }) => {
  const ann = await signUp(browser, "Ann");
  const bob = await signUp(browser, "Bob");

  await startDirectChat(ann, bob.handle);
  await send(ann, "Hello Bob");
  const hello = bubble(ann.page, "Hello Bob");
  await expect(hello.getByRole("img", { name: "Sent" })).toBeVisible();

  // Bob sees the chat arrive live, with one unread message.
  const row = bob.page.getByRole("list", { name: "Chat list" }).getByRole("button", { name: /Ann/ });
  await expect(row.getByRole("img", { name: "1 unread message" })).toBeVisible();
  await expect(row).toContainText("Hello Bob");
  await expect(ann.page.getByRole("img", { name: "Delivered" })).toBeVisible();

  // Bob opens it: Ann's ticks turn blue.
  await openChat(bob, "Ann");
  await expect(bubble(bob.page, "Hello Bob")).toBeVisible();
  await expect(hello.getByRole("img", { name: "Read" })).toBeVisible();
  await expect(row.getByRole("img", { name: /unread/ })).toHaveCount(0);

  // Typing shows in Ann's header while Bob types.
  await bob.page.getByRole("textbox", { name: "Message" }).pressSequentially("Hi An", { delay: 20 });
  await expect(ann.page.getByTestId("chat-status")).toHaveText("typing…");
  await bob.page.getByRole("textbox", { name: "Message" }).fill("");

  // A reply, quoted.
  await bubble(bob.page, "Hello Bob").hover();
  await bubble(bob.page, "Hello Bob").getByRole("button", { name: "Message actions" }).click();
  await bob.page.getByRole("menuitem", { name: "Reply" }).click();
  await send(bob, "Hi Ann, good to see you");
  const reply = bubble(ann.page, "Hi Ann, good to see you");
  await expect(reply.getByRole("button", { name: /Quoted message from you/ })).toBeVisible();

  // Ann edits her message; Bob sees the new text, marked edited.
  await hello.hover();
  await hello.getByRole("button", { name: "Message actions" }).click();
  await ann.page.getByRole("menuitem", { name: "Edit" }).click();
  const box = ann.page.getByRole("textbox", { name: "Message" });
  await box.fill("Hello Bob, how are you?");
  await box.press("Enter");
  await expect(bubble(bob.page, "Hello Bob, how are you?")).toContainText("Edited");

  // Bob reacts; Ann sees it.
  const edited = bubble(bob.page, "Hello Bob, how are you?");
  await edited.hover();
  await edited.getByRole("button", { name: "Message actions" }).click();
  await bob.page.getByRole("menuitem", { name: "React with 👍" }).click();
  await expect(bubble(ann.page, "Hello Bob, how are you?").getByRole("list", { name: "Reactions" })).toContainText("👍");

  // Ann deletes for everyone; Bob sees the tombstone.
  const mine = bubble(ann.page, "Hello Bob, how are you?");
  await mine.hover();
  await mine.getByRole("button", { name: "Message actions" }).click();
  await ann.page.getByRole("menuitem", { name: "Delete for everyone" }).click();
  await expect(bubble(bob.page, "deleted message")).toBeVisible();
  await expect(bubble(bob.page, "Hello Bob, how are you?")).toHaveCount(0);

  await ann.context.close();
  await bob.context.close();
});

test("a reload keeps the user signed in, in the chat they had open, and the refresh token is out of the page's reach", async ({ browser }) => {
  const ann = await signUp(browser, "Ann");
  const bob = await signUp(browser, "Bob");
  await startDirectChat(ann, bob.handle);
  await send(ann, "still here after a reload");
  await expect(bubble(ann.page, "still here after a reload").getByRole("img", { name: "Sent" })).toBeVisible();
  expect(new URL(ann.page.url()).pathname).toMatch(/^\/chats\/[0-9a-f-]{36}$/);
  await ann.page.reload();
  await expect(bubble(ann.page, "still here after a reload")).toBeVisible();
  await expect(ann.page.getByRole("navigation", { name: "Chats" })).toBeVisible();
  await bob.context.close();
  const cookies = await ann.page.evaluate(() => document.cookie);
  expect(cookies).not.toContain("natter_refresh");
  const stored = await ann.context.cookies();
  const refresh = stored.find((c) => c.name === "natter_refresh");
  expect(refresh?.httpOnly).toBe(true);
  expect(refresh?.sameSite).toBe("Strict");
  await ann.context.close();
});
