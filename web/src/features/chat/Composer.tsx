"use client";
import { type KeyboardEvent, useEffect, useRef, useState } from "react";
import type { PublicProfile } from "@/api/client";
import { Icon } from "@/components/Icon";
import { IconButton } from "@/components/IconButton";
import { realtime } from "@/lib/realtime";
import { edit, send, sendMedia } from "./actions";
import { AttachDialog } from "@/features/media/AttachDialog";
import { VoiceRecorder } from "@/features/media/VoiceRecorder";
import { notify } from "@/lib/app-state";
import { LazyEmojiPicker as EmojiPicker } from "./emoji";
import type { Msg } from "./timeline";

interface Props {
  chatId: string;
  me: string;
  members: PublicProfile[];
  replyTo: Msg | null;
  editing: Msg | null;
  onDone: () => void;
  onEditLast: () => void;
  users: Record<string, PublicProfile>;
}

const TYPING_RENEW_MS = 3_000;

/** Types and sends a message: replies, edits, mentions with autocomplete, emoji. */
export function Composer({ chatId, me, members, replyTo, editing, onDone, onEditLast, users }: Props) {
  const [text, setText] = useState("");
  const [mentions, setMentions] = useState<PublicProfile[]>([]);
  const [suggest, setSuggest] = useState<{ query: string; at: number; index: number } | null>(null);
  const [emoji, setEmoji] = useState(false);
  const [picked, setPicked] = useState<File | null>(null);
  const [recording, setRecording] = useState(false);
  const input = useRef<HTMLTextAreaElement>(null);
  const fileInput = useRef<HTMLInputElement>(null);
  const typingSent = useRef(0);

  useEffect(() => {
    if (editing) setText(editing.body);
    input.current?.focus();
  }, [editing, replyTo, chatId]);

  useEffect(() => {
    setText("");
    setMentions([]);
    return () => {
      if (typingSent.current) realtime.send({ type: "typing", chat_id: chatId, state: "stop" });
      typingSent.current = 0;
    };
  }, [chatId]);

  const candidates = suggest
    ? members.filter((m) => m.user_id !== me && (m.display_name.toLowerCase().startsWith(suggest.query) || m.handle.startsWith(suggest.query))).slice(0, 6)
    : [];

  function typing(value: string) {
    const now = Date.now();
    if (value && now - typingSent.current > TYPING_RENEW_MS) {
      if (realtime.send({ type: "typing", chat_id: chatId, state: "start" })) typingSent.current = now;
    } else if (!value && typingSent.current) {
      realtime.send({ type: "typing", chat_id: chatId, state: "stop" });
      typingSent.current = 0;
    }
  }

  function change(value: string, caret: number) {
    setText(value);
    typing(value);
    const before = value.slice(0, caret);
    const match = /(^|\s)@([\p{L}\p{N}_]*)$/u.exec(before);
    setSuggest(match && members.length > 1 ? { query: (match[2] ?? "").toLowerCase(), at: caret - (match[2] ?? "").length - 1, index: 0 } : null);
  }

  function pick(member: PublicProfile) {
    if (!suggest) return;
    const caret = input.current?.selectionStart ?? text.length;
    const next = `${text.slice(0, suggest.at)}@${member.display_name} ${text.slice(caret)}`;
    setText(next);
    setMentions((held) => (held.some((m) => m.user_id === member.user_id) ? held : [...held, member]));
    setSuggest(null);
    input.current?.focus();
  }

  function submit() {
    const body = text.trim();
    if (!body) return;
    if (editing?.sequence != null) {
      if (body !== editing.body) void edit(chatId, editing.sequence, body);
    } else {
      const named = mentions.filter((m) => body.includes(`@${m.display_name}`)).map((m) => m.user_id);
      send(chatId, { body, replyTo: replyTo?.sequence ?? null, mentions: named });
    }
    setText("");
    setMentions([]);
    if (typingSent.current) realtime.send({ type: "typing", chat_id: chatId, state: "stop" });
    typingSent.current = 0;
    onDone();
  }

  function keyDown(event: KeyboardEvent<HTMLTextAreaElement>) {
    if (suggest && candidates.length > 0) {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        const step = event.key === "ArrowDown" ? 1 : -1;
        setSuggest({ ...suggest, index: (suggest.index + step + candidates.length) % candidates.length });
        return;
      }
      if (event.key === "Enter" || event.key === "Tab") {
        event.preventDefault();
        const chosen = candidates[suggest.index];
        if (chosen) pick(chosen);
        return;
      }
      if (event.key === "Escape") {
        event.stopPropagation();
        setSuggest(null);
        return;
      }
    }
    if (event.key === "Enter" && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      submit();
    } else if (event.key === "ArrowUp" && text === "" && !editing) {
      event.preventDefault();
      onEditLast();
    } else if (event.key === "Escape" && (replyTo || editing)) {
      event.stopPropagation();
      setText("");
      onDone();
    }
  }

  const context = editing ?? replyTo;
  return (
    <footer
      className="relative bg-gray-100 px-3 py-2 dark:bg-gray-800"
      onDragOver={(event) => {
        if (event.dataTransfer.types.includes("Files")) event.preventDefault();
      }}
      onDrop={(event) => {
        const file = event.dataTransfer.files[0];
        if (file) {
          event.preventDefault();
          setPicked(file);
        }
      }}
    >
      {picked && (
        <AttachDialog
          file={picked}
          caption={text}
          onCancel={() => setPicked(null)}
          onSend={(caption) => {
            sendMedia(chatId, picked, caption.trim(), replyTo?.sequence ?? null);
            setPicked(null);
            setText("");
            onDone();
          }}
        />
      )}
      {context && (
        <div className="mb-2 flex items-start gap-2 rounded-lg border-l-4 border-brand-600 bg-white px-3 py-2 text-sm dark:bg-gray-900">
          <div className="min-w-0 flex-1">
            <p className="font-semibold text-brand-700 dark:text-brand-500">
              {editing ? "Edit message" : `Replying to ${context.sender === me ? "yourself" : (users[context.sender]?.display_name ?? "…")}`}
            </p>
            <p className="truncate text-gray-700 dark:text-gray-300">{context.body}</p>
          </div>
          <IconButton
            icon="close"
            label={editing ? "Cancel editing" : "Cancel reply"}
            className="h-8 w-8"
            onClick={() => {
              if (editing) setText("");
              onDone();
            }}
          />
        </div>
      )}
      {suggest && candidates.length > 0 && (
        <ul role="listbox" aria-label="Mention a member" className="absolute bottom-full left-3 mb-1 w-64 rounded-lg bg-white py-1 shadow-lg ring-1 ring-black/10 dark:bg-gray-900">
          {candidates.map((member, i) => (
            <li
              key={member.user_id}
              role="option"
              aria-selected={i === suggest.index}
              onMouseDown={(event) => {
                event.preventDefault();
                pick(member);
              }}
              className={`cursor-pointer px-3 py-2 text-sm ${i === suggest.index ? "bg-gray-100 dark:bg-gray-800" : ""}`}
            >
              {member.display_name} <span className="text-gray-600 dark:text-gray-400">@{member.handle}</span>
            </li>
          ))}
        </ul>
      )}
      {emoji && (
        <div className="absolute bottom-full left-3 mb-1">
          <EmojiPicker
            onClose={() => setEmoji(false)}
            onPick={(chosen) => {
              setText((current) => current + chosen);
              setEmoji(false);
              input.current?.focus();
            }}
          />
        </div>
      )}
      <div className="flex items-end gap-2">
        {!recording && <IconButton icon="smile" label="Emoji" onClick={() => setEmoji(!emoji)} />}
        {!editing && !recording && <IconButton icon="clip" label="Attach a file" onClick={() => fileInput.current?.click()} />}
        <input
          ref={fileInput}
          type="file"
          className="hidden"
          aria-hidden="true"
          tabIndex={-1}
          data-testid="attach-input"
          onChange={(event) => {
            const file = event.target.files?.[0];
            if (file) setPicked(file);
            event.target.value = "";
          }}
        />
        <label className={`min-w-0 flex-1 ${recording ? "hidden" : ""}`}>
          <span className="sr-only">Message</span>
          <textarea
            ref={input}
            rows={1}
            value={text}
            maxLength={65536}
            placeholder="Type a message"
            onChange={(event) => change(event.target.value, event.target.selectionStart)}
            onKeyDown={keyDown}
            onPaste={(event) => {
              const file = [...event.clipboardData.files][0];
              if (file && !editing) {
                event.preventDefault();
                setPicked(file);
              }
            }}
            onBlur={() => {
              if (typingSent.current) realtime.send({ type: "typing", chat_id: chatId, state: "stop" });
              typingSent.current = 0;
            }}
            className="max-h-40 w-full resize-none rounded-lg bg-white px-3 py-2.5 text-[0.95rem] focus:outline-2 focus:outline-brand-600 dark:bg-gray-900"
          />
        </label>
        {!editing && (recording || !text.trim()) ? (
          <VoiceRecorder
            onActive={setRecording}
            onError={notify}
            onRecorded={(file) => {
              sendMedia(chatId, file, "", replyTo?.sequence ?? null);
              onDone();
            }}
          />
        ) : (
          <button
            type="button"
            onClick={submit}
            aria-label={editing ? "Save edit" : "Send"}
            disabled={!text.trim()}
            className="inline-flex h-11 w-11 items-center justify-center rounded-full bg-brand-700 text-white hover:bg-brand-600 disabled:opacity-50"
          >
            <Icon name="send" />
          </button>
        )}
      </div>
    </footer>
  );
}
