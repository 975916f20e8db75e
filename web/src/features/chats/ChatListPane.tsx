"use client";
import { useEffect, useMemo, useState } from "react";
import { Icon } from "@/components/Icon";
import { IconButton } from "@/components/IconButton";
import { useApp } from "@/lib/app-state";
import { chatPath, navigate } from "@/lib/router";
import { SearchResults } from "@/features/search/SearchResults";
import { ChatListItem } from "./ChatListItem";
import { chatTitle } from "./actions";
import { NewChatDialog } from "./NewChatDialog";
import { ThemeToggle } from "@/features/app/ThemeToggle";

/** The left pane: the user's chats, a search box, the archive, and a new chat. */
export function ChatListPane({ activeChat, searchRef }: { activeChat: string | null; searchRef: React.RefObject<HTMLInputElement | null> }) {
  const chats = useApp((s) => s.chats);
  const users = useApp((s) => s.users);
  const me = useApp((s) => s.me);
  const typing = useApp((s) => s.typing);
  const [query, setQuery] = useState("");
  const [archived, setArchived] = useState(false);
  const [creating, setCreating] = useState(false);

  const shown = useMemo(() => {
    const q = query.trim().toLowerCase();
    return (chats ?? []).filter((chat) => chat.archived === archived && (!q || chatTitle(chat, users).toLowerCase().includes(q)));
  }, [chats, users, query, archived]);
  const archivedCount = useMemo(() => (chats ?? []).filter((c) => c.archived).length, [chats]);
  const now = useNow(Object.keys(typing).length > 0);
  const unread = useMemo(() => (chats ?? []).filter((c) => !c.archived && c.unread_count > 0).length, [chats]);
  useEffect(() => {
    document.title = unread > 0 ? `(${unread}) Natter` : "Natter";
  }, [unread]);

  return (
    <nav aria-label="Chats" className="flex h-full flex-col bg-white dark:bg-gray-900">
      <header className="flex items-center justify-between bg-gray-100 px-4 py-2 dark:bg-gray-800">
        <h1 className="text-xl font-bold text-brand-700 dark:text-brand-500">Natter</h1>
        <div className="flex items-center">
          <ThemeToggle />
          <IconButton icon="plus" label="New chat" onClick={() => setCreating(true)} />
          <IconButton icon="gear" label="Settings" onClick={() => navigate("/settings")} />
        </div>
      </header>
      <div className="px-3 py-2">
        <label className="relative block">
          <span className="sr-only">Search chats and messages</span>
          <span className="pointer-events-none absolute inset-y-0 left-3 flex items-center text-gray-500">
            <Icon name="search" className="h-4 w-4" />
          </span>
          <input
            ref={searchRef}
            type="search"
            value={query}
            onChange={(e) => setQuery(e.target.value)}
            placeholder="Search or start a new chat"
            className="w-full rounded-lg bg-gray-100 py-2 pr-3 pl-9 text-sm focus:outline-2 focus:outline-brand-600 dark:bg-gray-800"
          />
        </label>
      </div>
      <div className="min-h-0 flex-1 overflow-y-auto">
        {(archivedCount > 0 || archived) && (
          <button
            type="button"
            onClick={() => setArchived(!archived)}
            className="flex w-full items-center gap-3 px-5 py-3 text-left text-sm font-medium hover:bg-gray-100 dark:hover:bg-gray-800"
          >
            <Icon name={archived ? "back" : "archive"} className="h-5 w-5 text-brand-700 dark:text-brand-500" />
            {archived ? "Back to chats" : `Archived (${archivedCount})`}
          </button>
        )}
        {chats === null ? (
          <p className="p-4 text-sm text-gray-600 dark:text-gray-400" role="status">
            Loading chats…
          </p>
        ) : (
          <ul aria-label={archived ? "Archived chats" : "Chat list"}>
            {shown.map((chat) => (
              <ChatListItem
                key={chat.chat_id}
                chat={chat}
                users={users}
                me={me?.user_id ?? ""}
                active={chat.chat_id === activeChat}
                typing={Object.entries(typing[chat.chat_id] ?? {}).some(([user, until]) => user !== me?.user_id && until > now)}
                onOpen={() => navigate(chatPath(chat.chat_id))}
              />
            ))}
          </ul>
        )}
        {chats !== null && shown.length === 0 && !query && (
          <p className="p-6 text-center text-sm text-gray-600 dark:text-gray-400">{archived ? "No archived chats." : "No chats yet. Start one with the + button."}</p>
        )}
        <SearchResults query={query} />
      </div>
      {creating && <NewChatDialog onClose={() => setCreating(false)} />}
    </nav>
  );
}

/** The time now, ticking each second while `ticking` (typing indicators expire). */
function useNow(ticking: boolean): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!ticking) return;
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [ticking]);
  return ticking ? now : Date.now();
}
