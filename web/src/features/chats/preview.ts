// What the chat list shows of a chat's last message.
import type { Schemas } from "@/api/client";

const ATTACHMENT_LABELS: Record<string, string> = {
  image: "Photo",
  video: "Video",
  voice: "Voice message",
  document: "Document",
  location: "Location",
  contact: "Contact",
};

/** The last message's text; for one sent without a caption, what it carries ("Photo"). */
export function lastMessagePreview(last: Schemas["LastMessage"] | null | undefined): string {
  if (!last) return "No messages yet";
  if (last.deleted) return "This message was deleted";
  if (last.preview || !last.attachment) return last.preview;
  return ATTACHMENT_LABELS[last.attachment] ?? "Attachment";
}
