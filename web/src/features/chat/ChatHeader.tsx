"use client";
import { useEffect, useState } from "react";
import type { ChatSummary } from "@/api/client";
import { Avatar } from "@/components/Avatar";
import { IconButton } from "@/components/IconButton";
import { useApp } from "@/lib/app-state";
import { lastSeen } from "@/lib/format";
import { navigate } from "@/lib/router";
import { chatPhoto, chatTitle } from "@/features/chats/actions";

/** Who the chat is with, whether they are typing, online or when last seen. */
export function ChatHeader({ chat, onSearch, onInfo }: { chat: ChatSummary; onSearch: () => void; onInfo: () => void }) {
  const users = useApp((s) => s.users);
  const me = useApp((s) => s.me?.user_id);
  const typing = useApp((s) => s.typing[chat.chat_id]);
  const details = useApp((s) => s.details[chat.chat_id]);
  const presence = useApp((s) => (chat.peer_id ? s.presence[chat.peer_id] : undefined));
  const [now, setNow] = useState(() => Date.now());
  const title = chatTitle(chat, users);

  const typists = Object.entries(typing ?? {}).filter(([user, until]) => user !== me && until > now);
  // Typing indicators expire by themselves: look again shortly after the next one ends.
  useEffect(() => {
    if (typists.length === 0) return;
    const next = Math.min(...typists.map(([, until]) => until));
    const timer = setTimeout(() => setNow(Date.now()), Math.max(50, next - Date.now() + 20));
    return () => clearTimeout(timer);
  });
  useEffect(() => {
    setNow(Date.now());
  }, [typing]);

  let status = "";
  if (typists.length > 0) {
    status = chat.kind === "group" ? `${typists.map(([user]) => users[user]?.display_name ?? "Someone").join(", ")} ${typists.length > 1 ? "are" : "is"} typing…` : "typing…";
  } else if (chat.kind === "direct" && presence) {
    status = presence.online ? "online" : lastSeen(presence.lastSeenAt);
  } else if (chat.kind === "group" && details) {
    status = details.members
      .map((m) => (m.user_id === me ? "You" : users[m.user_id]?.display_name))
      .filter(Boolean)
      .join(", ");
  }

  return (
    <header className="flex items-center gap-2 bg-gray-100 px-2 py-1.5 dark:bg-gray-800">
      <IconButton icon="back" label="Back to chats" className="md:hidden" onClick={() => navigate("/")} />
      <button type="button" onClick={onInfo} className="flex min-w-0 flex-1 items-center gap-3 rounded-lg px-1 py-1 text-left">
        <Avatar name={title} seed={chat.chat_id} photo={chatPhoto(chat, users)} />
        <span className="min-w-0">
          <h2 className="truncate font-medium">{title}</h2>
          <p className="truncate text-xs text-gray-600 dark:text-gray-400" aria-live="polite" data-testid="chat-status">
            {status}
          </p>
        </span>
      </button>
      <IconButton icon="search" label="Search in this chat" onClick={onSearch} />
      <IconButton icon="info" label="Chat info" onClick={onInfo} />
    </header>
  );
}
