// A chat's info: its gallery (photos and videos, documents, links) and its own
// notification settings.
import { attach, baseURL, bubble, chatting, expect, openChat, photo, registerByApi, scan, send, signIn, test, tokenFor, TWO_PAGE_PDF, uniqueHandle } from "./fixtures";

const SHOTS = "artifacts/screenshots";

test("the gallery: two photos under Media, a document under Docs, a link under Links", async ({ browser }) => {
  const [ann, bob] = await chatting(browser);
  // One after another: an upload's message is sent when its upload ends.
  await attach(ann, { name: "crag.jpg", mimeType: "image/jpeg", buffer: await photo(ann.page) }, "the crag");
  await expect(bubble(bob.page, "the crag")).toBeVisible({ timeout: 20_000 });
  await attach(ann, { name: "wall.jpg", mimeType: "image/jpeg", buffer: await photo(ann.page, 1200, 1600, ["#1d4ed8", "#f472b6"]) }, "the wall");
  await expect(bubble(bob.page, "the wall")).toBeVisible({ timeout: 20_000 });
  await attach(ann, { name: "minutes.pdf", mimeType: "application/pdf", buffer: TWO_PAGE_PDF });
  await expect(bob.page.getByRole("log", { name: "Messages" }).getByRole("button", { name: "Download minutes.pdf" })).toBeVisible({ timeout: 20_000 });
  await send(ann, "The topo is at https://example.com/topo.");
  await expect(bubble(bob.page, "The topo is at https://example.com/topo.")).toBeVisible();

  await bob.page.getByRole("button", { name: "Chat info" }).click();
  await bob.page.getByRole("button", { name: "Media, links and docs" }).click();
  const gallery = bob.page.getByRole("complementary", { name: "Media, links and docs" });
  await expect(gallery.getByRole("button", { name: "Back to chat info" })).toBeFocused();

  // Media: the two photos, newest first; the viewer steps between them.
  const media = gallery.getByRole("tabpanel", { name: "Media" });
  const tiles = media.getByRole("button", { name: /^Photo/ });
  await expect(tiles).toHaveCount(2);
  await expect(tiles.first()).toHaveAttribute("data-stage", "thumbnail");
  await expect(tiles.last()).toHaveAttribute("data-stage", "thumbnail");
  await scan(bob.page, "gallery: media");
  await bob.page.screenshot({ path: `${SHOTS}/gallery-light-desktop.png` });
  await tiles.first().click();
  const viewer = bob.page.getByRole("dialog", { name: "Media viewer" });
  await expect(viewer).toContainText("wall.jpg · 1 of 2");
  await bob.page.keyboard.press("ArrowRight");
  await expect(viewer).toContainText("crag.jpg · 2 of 2");
  await bob.page.keyboard.press("Escape");
  await expect(viewer).toBeHidden();

  // Docs, by the arrow keys from the Media tab: the document, downloaded under its name.
  await gallery.getByRole("tab", { name: "Media" }).focus();
  await bob.page.keyboard.press("ArrowRight");
  await expect(gallery.getByRole("tab", { name: "Docs" })).toHaveAttribute("aria-selected", "true");
  const docs = gallery.getByRole("tabpanel", { name: "Docs" });
  await expect(docs.getByRole("listitem")).toHaveCount(1);
  await expect(docs.getByText(/2 pages · PDF/)).toBeVisible();
  await scan(bob.page, "gallery: docs");
  const [saved] = await Promise.all([bob.page.waitForEvent("download"), docs.getByRole("button", { name: "Download minutes.pdf" }).click()]);
  expect(saved.suggestedFilename()).toBe("minutes.pdf");

  // Links: the message, its address a link that opens apart from the app.
  await gallery.getByRole("tab", { name: "Links" }).click();
  const links = gallery.getByRole("tabpanel", { name: "Links" });
  await expect(links.getByRole("listitem")).toHaveCount(1);
  const link = links.getByRole("link", { name: "https://example.com/topo" });
  await expect(link).toHaveAttribute("href", "https://example.com/topo");
  await expect(link).toHaveAttribute("target", "_blank");
  await expect(link).toHaveAttribute("rel", "noopener noreferrer");
  await expect(links.getByRole("listitem")).toContainText("The topo is at https://example.com/topo.");
  await scan(bob.page, "gallery: links");

  await gallery.getByRole("button", { name: "Back to chat info" }).click();
  await expect(bob.page.getByRole("button", { name: "Media, links and docs" })).toBeFocused();

  await ann.context.close();
  await bob.context.close();
});

test("the gallery pages back: 35 links, a page of 30, the rest once scrolled to the end", async ({ browser }) => {
  const annHandle = uniqueHandle("ann");
  const bobHandle = uniqueHandle("bob");
  const [, bobId] = await Promise.all([registerByApi(annHandle, "Ann"), registerByApi(bobHandle, "Bob")]);
  const token = await tokenFor(annHandle);
  const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
  const opened = await fetch(`${baseURL()}/v1/chats/direct`, { method: "POST", headers, body: JSON.stringify({ user_id: bobId }) });
  const { chat_id: chatId } = (await opened.json()) as { chat_id: string };
  for (let i = 1; i <= 35; i++) {
    const sent = await fetch(`${baseURL()}/v1/chats/${chatId}/messages`, { method: "POST", headers, body: JSON.stringify({ client_id: `link-${i}`, body: `route ${i}: https://example.com/routes/${i}` }) });
    expect(sent.status).toBe(201);
  }

  const bob = await signIn(browser, bobHandle, "Bob");
  await openChat(bob, "Ann");
  await expect(bubble(bob.page, "route 35: https://example.com/routes/35")).toBeVisible();
  await bob.page.getByRole("button", { name: "Chat info" }).click();
  await bob.page.getByRole("button", { name: "Media, links and docs" }).click();
  const gallery = bob.page.getByRole("complementary", { name: "Media, links and docs" });
  await gallery.getByRole("tab", { name: "Links" }).click();
  const links = gallery.getByRole("tabpanel", { name: "Links" });
  await expect(links.getByRole("listitem")).toHaveCount(30);
  await expect(links.getByRole("listitem").first()).toContainText("route 35");
  await links.getByRole("button", { name: "Load more" }).scrollIntoViewIfNeeded();
  await expect(links.getByRole("listitem")).toHaveCount(35);
  await expect(links.getByRole("listitem").last()).toContainText("route 1:");
  await expect(links.getByRole("button", { name: "Load more" })).toHaveCount(0);
  await bob.context.close();
});

test("message previews in notifications, turned off for one chat, stay off after a reload", async ({ browser }) => {
  const [ann, bob] = await chatting(browser);
  await ann.page.getByRole("button", { name: "Chat info" }).click();
  const info = ann.page.getByRole("complementary", { name: "Chat info" });
  const previews = info.getByRole("checkbox", { name: "Show message previews in notifications" });
  await expect(previews).toBeChecked();
  await scan(ann.page, "chat info: notifications");
  await Promise.all([ann.page.waitForResponse((r) => r.url().includes("/settings") && r.request().method() === "PUT" && r.ok()), previews.uncheck()]);
  await expect(previews).not.toBeChecked();

  await ann.page.reload();
  await ann.page.getByRole("button", { name: "Chat info" }).click();
  await expect(ann.page.getByRole("complementary", { name: "Chat info" }).getByRole("checkbox", { name: "Show message previews in notifications" })).not.toBeChecked();

  await ann.context.close();
  await bob.context.close();
});
