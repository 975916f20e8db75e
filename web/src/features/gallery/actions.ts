// A chat's gallery: its messages on one shelf (photos and videos, documents, or links),
// a page at a time, newest first.
import { api, call, type Message } from "@/api/client";
import { realtime } from "@/lib/realtime";

export type Shelf = "media" | "documents" | "links";

const PAGE = 30;

/**
 * The page of `shelf` before the message at `before` (the newest page without it),
 * newest first. The first page is as of everything this device has seen, so a message
 * just shown in the chat is on it.
 */
export async function shelfPage(chatId: string, shelf: Shelf, before?: number): Promise<{ items: Message[]; hasMore: boolean }> {
  const position = realtime.position();
  const query = before === undefined ? { shelf, limit: PAGE, ...(position ? { min_sequence: position } : {}) } : { shelf, limit: PAGE, before };
  const page = await call(() => api.GET("/v1/chats/{chat_id}/messages", { params: { path: { chat_id: chatId }, query } }));
  return { items: [...page.items].reverse(), hasMore: page.has_more };
}
