// Profile photos and group photos: chosen, cropped to a square, seen by others where
// their avatar is; removed, the initials again.
import type { Locator, Page } from "@playwright/test";
import { expect, openChat, type Person, photo, registerByApi, scan, send, signIn, signUp, startDirectChat, test, uniqueHandle } from "./fixtures";

const SHOTS = "artifacts/screenshots";

/** The photo an avatar shows: its thumbnail, a blob: URL. */
function avatarPhoto(where: Locator): Locator {
  return where.locator("img[data-avatar-photo]");
}

/** Chooses a file with the button named `button`, as the file chooser would. */
async function choose(page: Page, button: string, buffer: Buffer): Promise<void> {
  const [chooser] = await Promise.all([page.waitForEvent("filechooser"), page.getByRole("button", { name: button }).click()]);
  await chooser.setFiles({ name: "portrait.jpg", mimeType: "image/jpeg", buffer });
}

/** In the crop dialog: zoom in, drag the photo left, nudge it up by keyboard, save. */
async function cropAndSave(person: Person, title: string, screenshot?: string): Promise<void> {
  const dialog = person.page.getByRole("dialog", { name: title });
  const zoom = dialog.getByRole("slider", { name: "Zoom" });
  await expect(zoom).toBeEnabled();
  await zoom.fill("2");
  const frame = dialog.getByRole("group", { name: "Photo position" });
  const box = await frame.boundingBox();
  if (!box) throw new Error("the crop frame is not shown");
  await person.page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await person.page.mouse.down();
  await person.page.mouse.move(box.x + box.width / 2 - 60, box.y + box.height / 2, { steps: 5 });
  await person.page.mouse.up();
  await frame.focus();
  await person.page.keyboard.press("ArrowUp");
  await person.page.keyboard.press("Shift+ArrowRight");
  if (screenshot) {
    await scan(person.page, "crop dialog");
    await dialog.screenshot({ path: `${SHOTS}/${screenshot}` });
  }
  await dialog.getByRole("button", { name: "Save photo" }).click();
  await expect(dialog).toBeHidden();
}

test("a profile photo, cropped square: the other side sees it; removed, the initials come back", async ({ browser }) => {
  const ann = await signUp(browser, "Ann");
  const bob = await signUp(browser, "Bob");
  await startDirectChat(bob, ann.handle);
  await send(bob, "hi Ann");

  await ann.page.getByRole("button", { name: "Settings" }).click();
  await choose(ann.page, "Choose photo", await photo(ann.page, 1600, 1200));
  await cropAndSave(ann, "Crop your photo", "crop-photo-light-desktop.png");
  const settings = ann.page.getByRole("region", { name: "Settings" });
  const own = avatarPhoto(settings.getByRole("region", { name: "Profile" }));
  await expect(own).toHaveAttribute("src", /^blob:/);
  // The square the canvas drew, as its thumbnail.
  await expect.poll(() => own.evaluate((img: HTMLImageElement) => [img.naturalWidth, img.naturalHeight])).toEqual([320, 320]);
  await scan(ann.page, "settings with a photo");

  // Bob looks at his settings, then opens the chat again: Ann's photo in its header and
  // in his chat list.
  await bob.page.getByRole("button", { name: "Settings" }).click();
  await bob.page.getByRole("button", { name: "Back to chats" }).click();
  await openChat(bob, "Ann");
  const header = bob.page.getByRole("region", { name: "Chat" }).locator("header");
  const row = bob.page.getByRole("list", { name: "Chat list" }).getByRole("button", { name: /Ann/ });
  await expect(avatarPhoto(header)).toHaveAttribute("src", /^blob:/);
  await expect(avatarPhoto(row)).toHaveAttribute("src", /^blob:/);

  await settings.getByRole("button", { name: "Remove photo" }).click();
  await expect(settings.getByRole("button", { name: "Choose photo" })).toBeVisible();
  await expect(own).toHaveCount(0);

  // Opened again, the chat shows Ann's initials.
  await bob.page.reload();
  await expect(header).toContainText("Ann");
  await expect(header.locator("[data-photo]")).toHaveCount(0);
  await expect(avatarPhoto(header)).toHaveCount(0);
  await expect(header.getByText("A", { exact: true })).toBeAttached();

  await ann.context.close();
  await bob.context.close();
});

test("a group admin sets the group photo, the members see it, and removes it", async ({ browser }) => {
  const ann = await signUp(browser, "Ann");
  const bobHandle = uniqueHandle("bob");
  await registerByApi(bobHandle, "Bob");
  const bob = await signIn(browser, bobHandle, "Bob");
  await ann.page.getByRole("button", { name: "New chat" }).click();
  await ann.page.getByRole("tab", { name: "New group" }).click();
  await ann.page.getByLabel("Group name").fill("Climbing");
  await ann.page.getByLabel("Members").fill(bobHandle);
  await ann.page.getByRole("button", { name: "Create group" }).click();
  await send(ann, "Welcome!");
  await openChat(bob, "Climbing");

  await ann.page.getByRole("button", { name: "Chat info" }).click();
  const info = ann.page.getByRole("complementary", { name: "Chat info" });
  await choose(ann.page, "Choose group photo", await photo(ann.page, 900, 1400, ["#1d4ed8", "#f472b6"]));
  await cropAndSave(ann, "Crop the group photo");
  await expect(avatarPhoto(info)).toHaveAttribute("src", /^blob:/);
  await scan(ann.page, "group info with a photo");

  const row = bob.page.getByRole("list", { name: "Chat list" }).getByRole("button", { name: /Climbing/ });
  await expect(avatarPhoto(row)).toHaveAttribute("src", /^blob:/);
  await expect(avatarPhoto(bob.page.getByRole("region", { name: "Chat" }).locator("header"))).toHaveAttribute("src", /^blob:/);
  // Bob is not an admin, and members may not edit the group's info: no photo buttons.
  await bob.page.getByRole("button", { name: "Chat info" }).click();
  await expect(bob.page.getByRole("complementary", { name: "Chat info" }).getByRole("heading", { name: "2 members" })).toBeVisible();
  await expect(bob.page.getByRole("button", { name: /group photo/ })).toHaveCount(0);

  await info.getByRole("button", { name: "Remove group photo" }).click();
  await expect(avatarPhoto(row)).toHaveCount(0);
  await expect(info.getByRole("button", { name: "Choose group photo" })).toBeVisible();

  await ann.context.close();
  await bob.context.close();
});
