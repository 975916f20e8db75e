import { attach, bubble, chatting, expect, photo, scan, test, TWO_PAGE_PDF } from "./fixtures";

test("a photo: the other side sees its blurred placeholder, then its thumbnail, then the full photo", async ({ browser }) => {
  const [ann, bob] = await chatting(browser);
  // Bob's thumbnails are slow to come, so that the placeholder shows first.
  await bob.page.route("**/thumbnail", async (route) => {
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await route.continue();
  });
  await attach(ann, { name: "garden.jpg", mimeType: "image/jpeg", buffer: await photo(ann.page) }, "the garden", true);
  await expect(bubble(ann.page, "the garden").getByRole("img", { name: /^(Sent|Delivered|Read)$/ })).toBeVisible({ timeout: 20_000 });

  const shown = bubble(bob.page, "the garden").getByRole("button", { name: /^Photo/ });
  await expect(shown).toHaveAttribute("data-stage", "placeholder");
  await expect(shown.locator("img")).toHaveAttribute("src", /^data:image\//);
  await expect(shown).toHaveAttribute("data-stage", "thumbnail");
  await expect(shown.locator("img")).toHaveAttribute("src", /^blob:/);

  await shown.click();
  const viewer = bob.page.getByRole("dialog", { name: "Media viewer" });
  const full = viewer.locator("img[data-full]");
  await expect(full).toBeVisible();
  await expect.poll(() => full.evaluate((img: HTMLImageElement) => img.naturalWidth)).toBe(1600);
  await scan(bob.page, "media viewer");
  await viewer.screenshot({ path: "artifacts/screenshots/media-viewer-desktop.png" });
  await bob.page.keyboard.press("Escape");
  await expect(viewer).toBeHidden();
  await bob.page.screenshot({ path: "artifacts/screenshots/chat-photo-light-desktop.png" });

  await ann.context.close();
  await bob.context.close();
});

test("a document shows its name, size and pages, and downloads under its name", async ({ browser }) => {
  const [ann, bob] = await chatting(browser);
  const pdf = TWO_PAGE_PDF;
  await attach(ann, { name: "minutes.pdf", mimeType: "application/pdf", buffer: pdf });
  const button = bob.page.getByRole("button", { name: "Download minutes.pdf" });
  await expect(button).toBeVisible({ timeout: 20_000 });
  await expect(bob.page.getByRole("log", { name: "Messages" }).getByText("minutes.pdf")).toBeVisible();
  await expect(bob.page.getByRole("log", { name: "Messages" }).getByText(/2 pages · PDF/)).toBeVisible();
  await scan(bob.page, "a document in a chat");
  const [saved] = await Promise.all([bob.page.waitForEvent("download"), button.click()]);
  expect(saved.suggestedFilename()).toBe("minutes.pdf");
  const path = await saved.path();
  const { readFileSync } = await import("node:fs");
  expect(readFileSync(path).equals(pdf)).toBe(true);

  await ann.context.close();
  await bob.context.close();
});

test("a 20 MiB video upload is interrupted, resumes where it was, and arrives", async ({ browser }) => {
  const [ann, bob] = await chatting(browser);
  // An MP4 as far as its header says: the ftyp box, then one mdat box of 20 MiB.
  const size = 20 * 1024 * 1024;
  const video = Buffer.alloc(size);
  video.write("\u0000\u0000\u0000\u0018ftypisom\u0000\u0000\u0002\u0000isommp42", 0, "latin1");
  video.writeUInt32BE(size - 24, 24);
  video.write("mdat", 28, "latin1");
  for (let i = 32; i < size; i += 4096) video[i] = i % 251;

  const patches: number[] = [];
  let heads = 0;
  ann.page.on("request", (request) => {
    if (request.url().includes("/v1/media/uploads/")) {
      if (request.method() === "PATCH") patches.push(Number(request.headers()["upload-offset"]));
      if (request.method() === "HEAD") heads++;
    }
  });
  // The connection drops while the second part is on its way.
  let cut = false;
  await ann.page.route("**/v1/media/uploads/*", async (route) => {
    if (route.request().method() === "PATCH" && Number(route.request().headers()["upload-offset"]) > 0 && !cut) {
      cut = true;
      await route.abort("connectionreset");
      return;
    }
    await route.continue();
  });
  await attach(ann, { name: "holiday.mp4", mimeType: "video/mp4", buffer: video }, "our holiday");
  await expect(ann.page.getByRole("progressbar", { name: "Uploading holiday.mp4" })).toBeVisible();
  await expect(bubble(ann.page, "our holiday").getByRole("img", { name: /^(Sent|Delivered|Read)$/ })).toBeVisible({ timeout: 60_000 });
  expect(cut).toBe(true);
  expect(heads).toBeGreaterThan(0);
  // Each part was sent once, but the one cut off, sent again from the server's offset.
  expect(patches.filter((offset, i) => patches.indexOf(offset) !== i).length).toBe(1);
  await expect(bubble(bob.page, "our holiday").getByRole("button", { name: /^Video/ })).toBeVisible();

  await ann.context.close();
  await bob.context.close();
});

test("a 3-second voice note from the fake microphone: the other side plays it, with its duration", async ({ browser }) => {
  const [ann, bob] = await chatting(browser);
  await ann.page.getByRole("button", { name: "Record a voice message" }).click();
  const recording = ann.page.getByRole("group", { name: "Recording a voice message" });
  await expect(recording).toBeVisible();
  await expect(recording.getByRole("timer")).toHaveText("0:03", { timeout: 10_000 });
  await ann.page.getByRole("button", { name: "Send voice message" }).click();
  await expect(recording).toBeHidden();

  const note = bob.page.getByRole("group", { name: /^Voice message of 0:0[34]$/ });
  await expect(note).toBeVisible({ timeout: 20_000 });
  // Sent without a caption, it shows in the chat list as what it is.
  await expect(bob.page.getByRole("list", { name: "Chat list" }).getByRole("button", { name: /Ann/ })).toContainText("Voice message");
  await note.getByRole("button", { name: "Play voice message" }).click();
  await expect(note.getByRole("button", { name: "Pause voice message" })).toBeVisible();
  await expect.poll(() => note.getByTestId("voice-audio").evaluate((audio: HTMLAudioElement) => audio.currentTime)).toBeGreaterThan(0.2);
  await scan(bob.page, "a voice note in a chat");
  await bob.page.screenshot({ path: "artifacts/screenshots/chat-voice-light-desktop.png" });

  await ann.context.close();
  await bob.context.close();
});
