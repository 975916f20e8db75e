import { bubble, expect, registerByApi, send, signIn, signUp, test, uniqueHandle } from "./fixtures";

test("a group of three, renamed, and a fourth member joining by invite link", async ({ browser }) => {
  const ann = await signUp(browser, "Ann");
  const bobHandle = uniqueHandle("bob");
  const cidHandle = uniqueHandle("cid");
  await Promise.all([registerByApi(bobHandle, "Bob"), registerByApi(cidHandle, "Cid")]);
  const [bob, cid] = await Promise.all([signIn(browser, bobHandle, "Bob"), signIn(browser, cidHandle, "Cid")]);

  await ann.page.getByRole("button", { name: "New chat" }).click();
  await ann.page.getByRole("tab", { name: "New group" }).click();
  await ann.page.getByLabel("Group name").fill("Climbing");
  await ann.page.getByLabel("Members").fill(`${bobHandle}, ${cidHandle}`);
  await ann.page.getByRole("button", { name: "Create group" }).click();
  await send(ann, "Tuesday at the wall?");

  for (const person of [bob, cid]) {
    await person.page.getByRole("list", { name: "Chat list" }).getByRole("button", { name: /Climbing/ }).click();
    await expect(bubble(person.page, "Tuesday at the wall?")).toContainText("Ann");
  }
  await send(bob, "I'm in");
  await expect(bubble(ann.page, "I'm in")).toBeVisible();
  await expect(bubble(cid.page, "I'm in")).toBeVisible();

  // Only admins edit the group's info, until Ann lets every member do it.
  await bob.page.getByRole("button", { name: "Chat info" }).click();
  const bobInfo = bob.page.getByRole("complementary", { name: "Chat info" });
  await expect(bobInfo.getByText("3 members")).toBeVisible();
  await expect(bobInfo.getByLabel("Group name")).toHaveCount(0);
  await bobInfo.getByRole("button", { name: "Close chat info" }).click();
  await ann.page.getByRole("button", { name: "Chat info" }).click();
  const info = ann.page.getByRole("complementary", { name: "Chat info" });
  const membersEdit = info.getByLabel("Members can edit the group's name, description and photo");
  await expect(membersEdit).not.toBeChecked();
  await membersEdit.check();
  await expect(membersEdit).toBeChecked();

  // Ann renames the group; the others see the new name.
  await info.getByLabel("Group name").fill("Climbing club");
  await info.getByRole("button", { name: "Save group info" }).click();
  await expect(bob.page.getByRole("list", { name: "Chat list" })).toContainText("Climbing club");
  await bob.page.getByRole("button", { name: "Chat info" }).click();
  await expect(bobInfo.getByLabel("Group name")).toHaveValue("Climbing club");

  // An invite link, opened by someone new, who joins and reads along.
  await info.getByRole("button", { name: "Create invite link" }).click();
  const link = await info.getByRole("textbox", { name: "Invite link" }).inputValue();
  expect(link).toMatch(/\/join\/[\w-]+$/);
  const dee = await signUp(browser, "Dee");
  await dee.page.goto(new URL(link).pathname);
  await dee.page.getByRole("button", { name: "Join group" }).click();
  await expect(dee.page.getByRole("log", { name: "Messages" })).toBeVisible();
  await expect(info.getByText("4 members")).toBeVisible();
  await send(ann, "Welcome Dee");
  await expect(bubble(dee.page, "Welcome Dee")).toBeVisible();

  for (const person of [ann, bob, cid, dee]) await person.context.close();
});
