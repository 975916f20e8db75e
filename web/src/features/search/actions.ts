import { api, call, type SearchHit } from "@/api/client";

export async function searchMessages(q: string, chatId?: string): Promise<SearchHit[]> {
  const page = await call(() =>
    api.GET("/v1/search/messages", { params: { query: { q, limit: 30, ...(chatId ? { chat_id: chatId } : {}) } } }),
  );
  return page.items;
}
