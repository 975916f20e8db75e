"use client";
import { useEffect, useState } from "react";
import { describeProblem, type SearchHit } from "@/api/client";
import { useApp } from "@/lib/app-state";
import { listTime } from "@/lib/format";
import { chatPath, navigate } from "@/lib/router";
import { chatTitle } from "@/features/chats/actions";
import { searchMessages } from "./actions";
import { Snippet } from "./Snippet";

/** Messages matching a query, across chats or in one; a hit opens it in context. */
export function SearchResults({ query, chatId, onOpen }: { query: string; chatId?: string; onOpen?: () => void }) {
  const [hits, setHits] = useState<SearchHit[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const chats = useApp((s) => s.chats);
  const users = useApp((s) => s.users);

  useEffect(() => {
    const q = query.trim();
    if (q.length === 0) {
      setHits(null);
      return;
    }
    let current = true;
    const timer = setTimeout(() => {
      searchMessages(q.slice(0, 200), chatId)
        .then((found) => current && (setHits(found), setError(null)))
        .catch((problem: unknown) => current && setError(describeProblem(problem)));
    }, 200);
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, [query, chatId]);

  if (error) return <p className="p-4 text-sm text-red-700 dark:text-red-400">{error}</p>;
  if (!hits) return null;
  return (
    <section aria-label="Messages found">
      <h2 className="px-4 pt-3 pb-1 text-xs font-semibold tracking-wide text-brand-700 uppercase dark:text-brand-500">Messages</h2>
      {hits.length === 0 && <p className="px-4 py-2 text-sm text-gray-600 dark:text-gray-400">No messages found.</p>}
      <ul>
        {hits.map((hit) => {
          const chat = chats?.find((c) => c.chat_id === hit.chat_id);
          const sender = users[hit.sender]?.display_name ?? "";
          return (
            <li key={`${hit.chat_id}:${hit.sequence}`}>
              <button
                type="button"
                className="w-full px-4 py-2 text-left hover:bg-gray-100 focus-visible:bg-gray-100 dark:hover:bg-gray-800 dark:focus-visible:bg-gray-800"
                onClick={() => {
                  navigate(chatPath(hit.chat_id, hit.sequence));
                  onOpen?.();
                }}
              >
                <span className="flex justify-between text-xs text-gray-600 dark:text-gray-400">
                  <span>{chat ? chatTitle(chat, users) : ""}{sender ? ` · ${sender}` : ""}</span>
                  <span>{listTime(hit.sent_at)}</span>
                </span>
                <span className="block truncate text-sm">
                  <Snippet text={hit.snippet} />
                </span>
              </button>
            </li>
          );
        })}
      </ul>
    </section>
  );
}
