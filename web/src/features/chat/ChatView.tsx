"use client";
import { useCallback, useEffect, useMemo, useState } from "react";
import { describeProblem, type PublicProfile } from "@/api/client";
import { IconButton } from "@/components/IconButton";
import { useApp } from "@/lib/app-state";
import { realtime } from "@/lib/realtime";
import { chatPath, navigate } from "@/lib/router";
import { ensureUser, loadDetails } from "@/features/chats/actions";
import { ChatInfo } from "@/features/groups/ChatInfo";
import { SearchResults } from "@/features/search/SearchResults";
import { loadNewest } from "./actions";
import { ChatHeader } from "./ChatHeader";
import { Composer } from "./Composer";
import { ForwardDialog } from "./ForwardDialog";
import { MessageList } from "./MessageList";
import { emptyTimeline, type Msg } from "./timeline";

/** One chat: its header, pinned messages, history and the composer. */
export function ChatView({ chatId, focus }: { chatId: string; focus: number | null }) {
  const chat = useApp((s) => s.chats?.find((c) => c.chat_id === chatId));
  const chatsLoaded = useApp((s) => s.chats !== null);
  const timeline = useApp((s) => s.timelines[chatId]) ?? emptyTimeline;
  const details = useApp((s) => s.details[chatId]);
  const users = useApp((s) => s.users);
  const me = useApp((s) => s.me?.user_id ?? "");
  const [replyTo, setReplyTo] = useState<Msg | null>(null);
  const [editing, setEditing] = useState<Msg | null>(null);
  const [forwarding, setForwarding] = useState<Msg | null>(null);
  const [panel, setPanel] = useState<"none" | "info" | "search">("none");
  const [query, setQuery] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [unreadAtOpen] = useState(() => chat?.unread_count ?? 0);
  const resyncs = useApp((s) => s.resyncs);

  useEffect(() => {
    setReplyTo(null);
    setEditing(null);
    setPanel("none");
    setError(null);
    if (focus === null) void loadNewest(chatId).catch((problem: unknown) => setError(describeProblem(problem)));
    void loadDetails(chatId).catch(() => undefined);
  }, [chatId, focus, resyncs]);

  useEffect(() => {
    if (chat?.peer_id) {
      // Their profile as of now: a new name or photo shows when the chat is opened.
      void ensureUser(chat.peer_id, true);
      realtime.watchPresence([chat.peer_id]);
    }
  }, [chat?.peer_id]);

  const members = useMemo(
    () => (details?.members ?? []).map((m) => users[m.user_id]).filter((u): u is PublicProfile => Boolean(u)),
    [details, users],
  );

  const editLast = useCallback(() => {
    const window = 15 * 60 * 1000;
    const last = [...timeline.messages].reverse().find((m) => m.sender === me && m.sequence !== null && !m.deleted);
    if (last && Date.now() - Date.parse(last.sentAt) < window) setEditing(last);
  }, [timeline.messages, me]);

  const actions = useMemo(
    () => ({
      reply: (m: Msg) => (setEditing(null), setReplyTo(m)),
      edit: (m: Msg) => (setReplyTo(null), setEditing(m)),
      forward: (m: Msg) => setForwarding(m),
    }),
    [],
  );

  if (!chat) {
    return (
      <section className="flex h-full items-center justify-center bg-gray-50 p-6 text-center dark:bg-gray-900" aria-label="Chat">
        <p className="text-gray-600 dark:text-gray-400" role="status">
          {chatsLoaded ? "This chat is not in your list." : "Loading…"}
        </p>
      </section>
    );
  }

  const pinned = details?.pinned_messages ?? [];
  return (
    <div className="flex h-full min-w-0">
      <section aria-label="Chat" className={`flex h-full min-w-0 flex-1 flex-col ${panel !== "none" ? "hidden lg:flex" : ""}`}>
        <ChatHeader chat={chat} onSearch={() => setPanel(panel === "search" ? "none" : "search")} onInfo={() => setPanel(panel === "info" ? "none" : "info")} />
        {pinned.length > 0 && (
          <nav aria-label="Pinned messages" className="flex gap-2 overflow-x-auto border-b border-gray-200 bg-white px-3 py-1.5 text-sm dark:border-gray-800 dark:bg-gray-900">
            {pinned.map((p) => {
              const held = timeline.messages.find((m) => m.sequence === p.sequence);
              return (
                <a key={p.sequence} href={chatPath(chatId, p.sequence)} onClick={(event) => (event.preventDefault(), navigate(chatPath(chatId, p.sequence)))} className="max-w-xs truncate rounded bg-gray-100 px-2 py-0.5 dark:bg-gray-800">
                  📌 {held ? held.body || "Message" : "Pinned message"}
                </a>
              );
            })}
          </nav>
        )}
        {error && (
          <p role="alert" className="bg-red-50 px-4 py-2 text-sm text-red-800 dark:bg-red-900/30 dark:text-red-200">
            {error}
          </p>
        )}
        <MessageList key={chatId} chatId={chatId} timeline={timeline} me={me} group={chat.kind === "group"} users={users} unreadAtOpen={unreadAtOpen} focus={focus} actions={actions} />
        <Composer
          chatId={chatId}
          me={me}
          members={members}
          users={users}
          replyTo={replyTo}
          editing={editing}
          onDone={() => (setReplyTo(null), setEditing(null))}
          onEditLast={editLast}
        />
      </section>
      {panel === "info" && (
        <div className="w-full border-l border-gray-200 lg:w-96 dark:border-gray-800">
          <ChatInfo chat={chat} onClose={() => setPanel("none")} />
        </div>
      )}
      {panel === "search" && (
        <aside aria-label="Search in this chat" className="flex w-full flex-col border-l border-gray-200 bg-white lg:w-96 dark:border-gray-800 dark:bg-gray-900">
          <header className="flex items-center gap-2 bg-gray-100 px-2 py-2 dark:bg-gray-800">
            <IconButton icon="close" label="Close search" onClick={() => setPanel("none")} />
            <label className="flex-1">
              <span className="sr-only">Search messages in this chat</span>
              <input autoFocus type="search" value={query} onChange={(e) => setQuery(e.target.value)} placeholder="Search…" className="w-full rounded-lg bg-white px-3 py-1.5 text-sm dark:bg-gray-900" />
            </label>
          </header>
          <div className="min-h-0 flex-1 overflow-y-auto">
            <SearchResults query={query} chatId={chatId} onOpen={() => setPanel("none")} />
          </div>
        </aside>
      )}
      {forwarding && <ForwardDialog chatId={chatId} message={forwarding} onClose={() => setForwarding(null)} />}
    </div>
  );
}
