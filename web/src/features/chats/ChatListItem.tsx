"use client";
import type { ChatSummary, PublicProfile } from "@/api/client";
import { Avatar } from "@/components/Avatar";
import { Icon } from "@/components/Icon";
import { listTime } from "@/lib/format";
import { chatPhoto, chatTitle, isMuted } from "./actions";
import { lastMessagePreview } from "./preview";

/** One row of the chat list: who, the last message, and what is unread. */
export function ChatListItem({ chat, users, me, active, typing, onOpen }: { chat: ChatSummary; users: Record<string, PublicProfile>; me: string; active: boolean; typing: boolean; onOpen: () => void }) {
  const title = chatTitle(chat, users);
  const last = chat.last_message;
  const sender = last && chat.kind === "group" ? (last.sender === me ? "You" : users[last.sender]?.display_name) : last?.sender === me ? "You" : null;
  const preview = lastMessagePreview(last);
  const muted = isMuted(chat);
  return (
    <li>
      <button
        type="button"
        onClick={onOpen}
        aria-current={active ? "page" : undefined}
        data-chat-id={chat.chat_id}
        className={`flex w-full items-center gap-3 px-3 py-2.5 text-left hover:bg-gray-100 focus-visible:outline-2 focus-visible:-outline-offset-2 focus-visible:outline-brand-600 dark:hover:bg-gray-800 ${active ? "bg-gray-200 dark:bg-gray-800" : ""}`}
      >
        <Avatar name={title} seed={chat.chat_id} photo={chatPhoto(chat, users)} />
        <span className="min-w-0 flex-1 border-b border-gray-100 pb-2.5 dark:border-gray-800">
          <span className="flex items-baseline justify-between gap-2">
            <span className="truncate font-medium">{title}</span>
            <span className={`shrink-0 text-xs ${chat.unread_count > 0 ? "font-semibold text-brand-700 dark:text-brand-500" : "text-gray-600 dark:text-gray-400"}`}>
              {last ? listTime(last.sent_at) : ""}
            </span>
          </span>
          <span className="mt-0.5 flex items-center justify-between gap-2">
            <span className="truncate text-sm text-gray-600 dark:text-gray-400">
              {typing ? (
                <em className="text-brand-700 not-italic dark:text-brand-500">typing…</em>
              ) : (
                <>
                  {sender ? `${sender}: ` : ""}
                  {preview}
                </>
              )}
            </span>
            <span className="flex shrink-0 items-center gap-1 text-gray-600 dark:text-gray-400">
              {muted && (
                <span role="img" aria-label="Muted">
                  <Icon name="mute" className="h-4 w-4" />
                </span>
              )}
              {chat.pinned && (
                <span role="img" aria-label="Pinned">
                  <Icon name="pin" className="h-4 w-4" />
                </span>
              )}
              {chat.mentioned && (
                <span role="img" aria-label="You were mentioned" className="flex h-5 w-5 items-center justify-center rounded-full bg-brand-700 text-xs font-bold text-white">
                  @
                </span>
              )}
              {chat.unread_count > 0 && (
                <span
                  role="img"
                  aria-label={`${chat.unread_count} unread message${chat.unread_count === 1 ? "" : "s"}`}
                  className={`min-w-5 rounded-full px-1.5 text-center text-xs leading-5 font-semibold text-white ${muted ? "bg-gray-500" : "bg-brand-700"}`}
                >
                  {chat.unread_count > 999 ? "999+" : chat.unread_count}
                </span>
              )}
            </span>
          </span>
        </span>
      </button>
    </li>
  );
}
