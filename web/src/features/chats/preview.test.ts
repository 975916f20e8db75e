import { describe, expect, it } from "vitest";
import { lastMessagePreview } from "./preview";

const last = { sequence: 7, sender: "u", preview: "", deleted: false, sent_at: "2026-12-07T12:00:00Z" };

describe("the chat list's preview", () => {
  it("names what a message without a caption carries", () => {
    expect(lastMessagePreview({ ...last, attachment: "image" })).toBe("Photo");
    expect(lastMessagePreview({ ...last, attachment: "voice" })).toBe("Voice message");
    expect(lastMessagePreview({ ...last, attachment: "location" })).toBe("Location");
    expect(lastMessagePreview({ ...last, attachment: "hologram" })).toBe("Attachment");
  });

  it("shows a caption or text as it is, and says when there is nothing", () => {
    expect(lastMessagePreview({ ...last, preview: "the view", attachment: "image" })).toBe("the view");
    expect(lastMessagePreview({ ...last, preview: "hi" })).toBe("hi");
    expect(lastMessagePreview({ ...last, deleted: true, attachment: "image" })).toBe("This message was deleted");
    expect(lastMessagePreview(null)).toBe("No messages yet");
  });
});
