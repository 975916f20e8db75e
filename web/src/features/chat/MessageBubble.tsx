"use client";
import { memo, useState } from "react";
import type { PublicProfile } from "@/api/client";
import { Icon } from "@/components/Icon";
import { timeOfDay } from "@/lib/format";
import { cancelUpload, deleteMessage, discard, pin, react, retry, star } from "./actions";
import { MessageAttachment } from "@/features/media/MediaAttachment";
import { LazyEmojiPicker as EmojiPicker, QUICK_REACTIONS } from "./emoji";
import { ReceiptTicks } from "./ReceiptTicks";
import type { Msg } from "./timeline";

const EDIT_WINDOW_MS = 15 * 60 * 1000;

export interface BubbleActions {
  reply(message: Msg): void;
  edit(message: Msg): void;
  forward(message: Msg): void;
  jump(sequence: number): void;
}

interface Props {
  chatId: string;
  message: Msg;
  me: string;
  group: boolean;
  users: Record<string, PublicProfile>;
  quoted: Msg | null | undefined;
  highlighted: boolean;
  actions: BubbleActions;
}

/** Mentions (@Name of a mentioned member) shown emphasised; the rest as plain text. */
function Body({ text, mentions, users }: { text: string; mentions: string[]; users: Record<string, PublicProfile> }) {
  // Longest first, so "@Anna" is not taken for "@Ann" followed by "a".
  const names = mentions
    .map((id) => users[id]?.display_name)
    .filter((n): n is string => Boolean(n))
    .sort((a, b) => b.length - a.length);
  if (names.length === 0) return <>{text}</>;
  const pattern = new RegExp(`(@(?:${names.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|")}))`, "g");
  return (
    <>
      {text.split(pattern).map((part, i) =>
        i % 2 === 1 ? (
          <strong key={i} className="font-semibold text-brand-700 dark:text-brand-500">
            {part}
          </strong>
        ) : (
          <span key={i}>{part}</span>
        ),
      )}
    </>
  );
}

function MessageBubbleView({ chatId, message, me, group, users, quoted, highlighted, actions }: Props) {
  const [menu, setMenu] = useState(false);
  const [picker, setPicker] = useState(false);
  const mine = message.sender === me;
  const sender = users[message.sender]?.display_name ?? "…";
  const stored = message.sequence !== null;
  const seq = message.sequence ?? 0;
  const editable = mine && stored && !message.deleted && Date.now() - Date.parse(message.sentAt) < EDIT_WINDOW_MS;
  const close = () => setMenu(false);

  return (
    <div
      data-message=""
      data-key={message.key}
      data-sequence={message.sequence ?? undefined}
      className={`group flex px-3 py-0.5 sm:px-[6%] ${mine ? "justify-end" : "justify-start"} ${highlighted ? "highlight-flash" : ""}`}
    >
      <article
        aria-label={`${mine ? "You" : sender}: ${message.deleted ? "deleted message" : message.body}`}
        className={`relative max-w-[85%] rounded-lg px-2.5 pt-1.5 pb-1 shadow-sm sm:max-w-[65%] ${mine ? "bg-[#d9fdd3] dark:bg-[#005c4b]" : "bg-white dark:bg-gray-800"}`}
      >
        {group && !mine && <p className="text-xs font-semibold text-brand-700 dark:text-brand-500">{sender}</p>}
        {message.forwarded > 0 && (
          <p className="flex items-center gap-1 text-xs text-gray-600 italic dark:text-gray-300">
            <Icon name="reply" className="h-3 w-3 -scale-x-100" />
            {message.forwarded > 1 ? "Forwarded many times" : "Forwarded"}
          </p>
        )}
        {message.replyTo !== null && (
          <button
            type="button"
            onClick={() => message.replyTo !== null && actions.jump(message.replyTo)}
            className="mb-1 block w-full rounded border-l-4 border-brand-600 bg-black/5 px-2 py-1 text-left text-xs dark:bg-white/10"
            aria-label={`Quoted message from ${quoted ? (quoted.sender === me ? "you" : (users[quoted.sender]?.display_name ?? "someone")) : "someone"}: go to it`}
          >
            <span className="block font-semibold text-brand-700 dark:text-brand-500">{quoted ? (quoted.sender === me ? "You" : (users[quoted.sender]?.display_name ?? "…")) : "Message"}</span>
            <span className="line-clamp-2 text-gray-700 dark:text-gray-300">{quoted ? (quoted.deleted ? "This message was deleted" : quoted.body) : "Tap to see the message"}</span>
          </button>
        )}
        {!message.deleted && (message.attachment || message.upload) && (
          <MessageAttachment chatId={chatId} message={message} onCancel={() => message.clientId && cancelUpload(chatId, message.clientId)} />
        )}
        <p className={`text-[0.95rem] break-words whitespace-pre-wrap ${message.deleted ? "text-gray-600 italic dark:text-gray-400" : ""}`}>
          {message.deleted ? (mine ? "You deleted this message" : "This message was deleted") : <Body text={message.body} mentions={message.mentions} users={users} />}
          <span className="inline-block w-20" aria-hidden="true" />
        </p>
        <span className="absolute right-2 bottom-1 flex items-center gap-1 text-[0.7rem] text-gray-600 dark:text-gray-300">
          {message.starred && (
            <span role="img" aria-label="Starred">
              <Icon name="star" className="h-3 w-3" />
            </span>
          )}
          {message.pinned && (
            <span role="img" aria-label="Pinned">
              <Icon name="pin" className="h-3 w-3" />
            </span>
          )}
          {message.edited && !message.deleted && <span>Edited</span>}
          <time dateTime={message.sentAt}>{timeOfDay(message.sentAt)}</time>
          {mine && <ReceiptTicks message={message} />}
        </span>
        {message.reactions.length > 0 && (
          <ul aria-label="Reactions" className={`absolute -bottom-3 flex gap-0.5 rounded-full bg-white px-1.5 text-sm shadow ring-1 ring-black/5 dark:bg-gray-700 ${mine ? "right-2" : "left-2"}`}>
            {message.reactions.map((r) => (
              <li key={r.reaction} aria-label={`${r.reaction} ${r.count}`}>
                {r.reaction}
                {r.count > 1 && <span className="text-xs text-gray-600 dark:text-gray-300">{r.count}</span>}
              </li>
            ))}
          </ul>
        )}
        {message.status === "failed" && (
          <span className="mt-1 flex items-center gap-2 text-xs text-red-700 dark:text-red-400">
            {message.error ?? "Not sent."}
            <button type="button" className="font-semibold underline" onClick={() => message.clientId && retry(chatId, message.clientId)}>
              Retry
            </button>
            <button type="button" className="underline" onClick={() => message.clientId && discard(chatId, message.clientId)}>
              Discard
            </button>
          </span>
        )}
        {stored && !message.deleted && (
          <div className={`absolute top-0 ${mine ? "-left-9" : "-right-9"}`}>
            <button
              type="button"
              aria-label="Message actions"
              aria-haspopup="menu"
              aria-expanded={menu}
              onClick={() => setMenu(!menu)}
              className="rounded-full p-1 text-gray-500 opacity-0 group-hover:opacity-100 focus-visible:opacity-100 hover:bg-black/5 aria-expanded:opacity-100 dark:text-gray-400"
            >
              <Icon name="more" className="h-5 w-5" />
            </button>
            {menu && (
              <div
                role="menu"
                aria-label="Message actions"
                onKeyDown={(event) => {
                  if (event.key === "Escape") {
                    event.stopPropagation();
                    close();
                  }
                }}
                className={`absolute top-8 z-30 w-52 rounded-lg bg-white py-1 text-sm shadow-lg ring-1 ring-black/10 dark:bg-gray-800 ${mine ? "left-0" : "right-0"}`}
              >
                <div className="flex justify-between px-2 pb-1" role="group" aria-label="React">
                  {QUICK_REACTIONS.map((emoji) => (
                    <button key={emoji} type="button" role="menuitem" aria-label={`React with ${emoji}`} className="rounded p-1 text-lg hover:bg-gray-100 dark:hover:bg-gray-700" onClick={() => (close(), void react(chatId, seq, emoji))}>
                      {emoji}
                    </button>
                  ))}
                </div>
                <MenuItem label="More reactions…" onClick={() => (close(), setPicker(true))} />
                <MenuItem label="Remove my reaction" onClick={() => (close(), void react(chatId, seq, null))} />
                <MenuItem label="Reply" onClick={() => (close(), actions.reply(message))} />
                <MenuItem label="Forward" onClick={() => (close(), actions.forward(message))} />
                <MenuItem label={message.starred ? "Unstar" : "Star"} onClick={() => (close(), void star(chatId, seq, !message.starred))} />
                <MenuItem label={message.pinned ? "Unpin" : "Pin"} onClick={() => (close(), void pin(chatId, seq, !message.pinned))} />
                {editable && <MenuItem label="Edit" onClick={() => (close(), actions.edit(message))} />}
                <MenuItem label="Delete for me" onClick={() => (close(), void deleteMessage(chatId, seq, "me"))} />
                {mine && <MenuItem label="Delete for everyone" danger onClick={() => (close(), void deleteMessage(chatId, seq, "everyone"))} />}
              </div>
            )}
            {picker && (
              <div className={`absolute top-8 ${mine ? "left-0" : "right-0"}`}>
                <EmojiPicker label="React with an emoji" onClose={() => setPicker(false)} onPick={(emoji) => (setPicker(false), void react(chatId, seq, emoji))} />
              </div>
            )}
          </div>
        )}
      </article>
    </div>
  );
}

function MenuItem({ label, onClick, danger = false }: { label: string; onClick: () => void; danger?: boolean }) {
  return (
    <button type="button" role="menuitem" onClick={onClick} className={`block w-full px-4 py-2 text-left hover:bg-gray-100 dark:hover:bg-gray-700 ${danger ? "text-red-700 dark:text-red-400" : ""}`}>
      {label}
    </button>
  );
}

export const MessageBubble = memo(MessageBubbleView);
