"use client";
import { Fragment, useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from "react";
import type { PublicProfile } from "@/api/client";
import { Icon } from "@/components/Icon";
import { dayLabel } from "@/lib/format";
import { loadAround, loadNewer, loadNewest, loadOlder, markRead } from "./actions";
import { type BubbleActions, MessageBubble } from "./MessageBubble";
import { dayOf, type Msg, type Timeline, unreadDividerKey } from "./timeline";

/** At most this many messages are in the DOM, however long the chat. */
export const MAX_NODES = 120;
const STEP = 40;
const INITIAL = 60;
const EDGE_PX = 600;

interface Window {
  /** The first message shown, or null for "as many as fit before the last". */
  first: string | null;
  /** The last message shown, or null to follow the newest. */
  last: string | null;
}

interface Props {
  chatId: string;
  timeline: Timeline;
  me: string;
  group: boolean;
  users: Record<string, PublicProfile>;
  unreadAtOpen: number;
  focus: number | null;
  actions: Omit<BubbleActions, "jump">;
}

function bounds(messages: Msg[], win: Window): [number, number] {
  const len = messages.length;
  const lastIndex = win.last === null ? -1 : messages.findIndex((m) => m.key === win.last);
  let end = lastIndex < 0 ? len : lastIndex + 1;
  const firstIndex = win.first === null ? -1 : messages.findIndex((m) => m.key === win.first);
  let start = firstIndex < 0 || firstIndex >= end ? Math.max(0, end - INITIAL) : firstIndex;
  if (end - start > MAX_NODES) {
    if (win.last === null) start = end - MAX_NODES;
    else end = start + MAX_NODES;
  }
  return [start, end];
}

/**
 * A chat's messages, virtualised as a sliding window: paging up shows older messages
 * and drops the newest from the DOM, and the reverse, keeping what is on screen still.
 */
export function MessageList({ chatId, timeline, me, group, users, unreadAtOpen, focus, actions }: Props) {
  const messages = timeline.messages;
  const [win, setWin] = useState<Window>({ first: null, last: null });
  const [highlight, setHighlight] = useState<string | null>(null);
  const [divider, setDivider] = useState<string | null | undefined>(undefined);
  const [atBottom, setAtBottom] = useState(true);
  const [focusTarget, setFocusTarget] = useState<number | null>(null);
  const container = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const anchor = useRef<{ key: string; top: number } | null>(null);
  const scrollTo = useRef<{ key: string; block: ScrollLogicalPosition } | null>(null);
  const [start, end] = bounds(messages, win);
  const shown = messages.slice(start, end);
  const following = win.last === null && !timeline.hasNewer;

  // The unread divider is placed once, when the chat first shows messages.
  useEffect(() => {
    if (divider !== undefined || messages.length === 0) return;
    const key = unreadDividerKey(messages, me, unreadAtOpen);
    setDivider(key);
    if (key && unreadAtOpen > 3) {
      stick.current = false;
      scrollTo.current = { key, block: "start" };
    }
  }, [divider, messages, me, unreadAtOpen]);

  const captureAnchor = useCallback(() => {
    const box = container.current;
    if (!box) return;
    const top = box.getBoundingClientRect().top;
    for (const node of box.querySelectorAll<HTMLElement>("[data-message]")) {
      const rect = node.getBoundingClientRect();
      if (rect.bottom > top) {
        anchor.current = { key: node.dataset.key ?? "", top: rect.top - top };
        return;
      }
    }
  }, []);

  const isAtBottom = () => {
    const box = container.current;
    return !box || box.scrollHeight - box.scrollTop - box.clientHeight < 48;
  };

  const checkEdges = useCallback(() => {
    const box = container.current;
    if (!box) return;
    if (box.scrollTop < EDGE_PX) {
      if (start > 0) {
        const newStart = Math.max(0, start - STEP);
        const newEnd = Math.min(end, newStart + MAX_NODES);
        setWin({ first: messages[newStart]?.key ?? null, last: newEnd < end || win.last !== null ? (messages[newEnd - 1]?.key ?? null) : null });
      } else if (timeline.hasOlder && messages.some((m) => m.sequence !== null)) {
        void loadOlder(chatId).catch(() => undefined);
      }
    }
    if (box.scrollHeight - box.scrollTop - box.clientHeight < EDGE_PX) {
      if (end < messages.length) {
        const newEnd = Math.min(messages.length, end + STEP);
        const newStart = Math.max(start, newEnd - MAX_NODES);
        setWin({ first: messages[newStart]?.key ?? null, last: newEnd >= messages.length ? null : (messages[newEnd - 1]?.key ?? null) });
      } else if (timeline.hasNewer) {
        void loadNewer(chatId).catch(() => undefined);
      }
    }
  }, [chatId, start, end, messages, timeline.hasOlder, timeline.hasNewer, win.last]);

  // After every render: keep the bottom in view when following, else keep the anchored
  // message where it was, so loading and dropping messages never moves the view.
  useLayoutEffect(() => {
    const box = container.current;
    if (!box) return;
    if (scrollTo.current) {
      const target = box.querySelector<HTMLElement>(`[data-key="${CSS.escape(scrollTo.current.key)}"]`);
      if (target) {
        target.scrollIntoView({ block: scrollTo.current.block });
        scrollTo.current = null;
      }
    } else if (stick.current && following) {
      box.scrollTop = box.scrollHeight;
    } else if (anchor.current) {
      const node = box.querySelector<HTMLElement>(`[data-key="${CSS.escape(anchor.current.key)}"]`);
      if (node) box.scrollTop += node.getBoundingClientRect().top - box.getBoundingClientRect().top - anchor.current.top;
    }
    captureAnchor();
    const bottom = isAtBottom();
    setAtBottom(bottom);
    if (bottom && following && document.visibilityState === "visible") markRead(chatId);
  });

  // Once loads settle, look at the edges again (a short chat may need another page).
  useEffect(() => {
    checkEdges();
  }, [messages.length, checkEdges]);

  useEffect(() => {
    const onVisible = () => {
      if (document.visibilityState === "visible" && isAtBottom() && following) markRead(chatId);
    };
    document.addEventListener("visibilitychange", onVisible);
    return () => document.removeEventListener("visibilitychange", onVisible);
  }, [chatId, following]);

  const jump = useCallback(
    (sequence: number) => {
      void (async () => {
        await loadAround(chatId, sequence).catch(() => undefined);
        setFocusTarget(sequence);
      })();
    },
    [chatId],
  );
  useEffect(() => {
    if (focus !== null) jump(focus);
  }, [focus, jump]);
  useEffect(() => {
    if (focusTarget === null) return;
    const index = messages.findIndex((m) => m.sequence === focusTarget);
    if (index < 0) return;
    const key = (messages[index] as Msg).key;
    stick.current = false;
    setWin({
      first: messages[Math.max(0, index - 30)]?.key ?? null,
      last: index + 30 >= messages.length - 1 && !timeline.hasNewer ? null : (messages[Math.min(messages.length - 1, index + 30)]?.key ?? null),
    });
    scrollTo.current = { key, block: "center" };
    setHighlight(key);
    setFocusTarget(null);
    const timer = setTimeout(() => setHighlight(null), 2000);
    return () => clearTimeout(timer);
  }, [focusTarget, messages, timeline.hasNewer]);

  const jumpToLatest = () => {
    stick.current = true;
    setWin({ first: null, last: null });
    if (timeline.hasNewer) void loadNewest(chatId).catch(() => undefined);
  };

  const bubbleActions: BubbleActions = useMemo(() => ({ ...actions, jump }), [actions, jump]);

  // A send of the user's own goes to the bottom, as it lands there.
  const ownPending = messages.filter((m) => m.sequence === null && m.sender === me).length;
  const heldPending = useRef(ownPending);
  useEffect(() => {
    if (ownPending > heldPending.current) {
      stick.current = true;
      setWin({ first: null, last: null });
    }
    heldPending.current = ownPending;
  }, [ownPending]);

  // Screen readers hear new messages from others as they come, not pages of history.
  const last = messages[messages.length - 1];
  const [announced, setAnnounced] = useState<string>("");
  const heard = useRef<string | null>(null);
  useEffect(() => {
    if (!last || last.sequence === null || last.key === heard.current) return;
    const first = heard.current === null;
    heard.current = last.key;
    if (!first && last.sender !== me && following) setAnnounced(`${users[last.sender]?.display_name ?? "New message"}: ${last.deleted ? "deleted message" : last.body}`);
  }, [last, me, users, following]);
  const bySequence = (sequence: number) => messages.find((m) => m.sequence === sequence);

  return (
    <div className="relative min-h-0 flex-1">
      <div
        ref={container}
        onScroll={() => {
          stick.current = isAtBottom() && following;
          captureAnchor();
          checkEdges();
          setAtBottom(isAtBottom());
          if (isAtBottom() && following && document.visibilityState === "visible") markRead(chatId);
        }}
        className="timeline h-full overflow-y-auto bg-[#efeae2] py-2 dark:bg-[#0b141a]"
        role="log"
        aria-label="Messages"
        aria-live="off"
        tabIndex={0}
      >
        {start === 0 && !timeline.hasOlder && messages.length > 0 && (
          <p className="mx-auto my-2 w-fit rounded-lg bg-white/80 px-3 py-1 text-xs text-gray-700 dark:bg-gray-800 dark:text-gray-300">This is the start of the chat.</p>
        )}
        {start === 0 && timeline.hasOlder && messages.length > 0 && (
          <p role="status" className="py-2 text-center text-xs text-gray-600 dark:text-gray-400">
            Loading older messages…
          </p>
        )}
        {shown.map((message, i) => {
          const previous = i > 0 ? shown[i - 1] : start > 0 ? messages[start - 1] : undefined;
          const newDay = !previous || dayOf(previous.sentAt) !== dayOf(message.sentAt);
          return (
            <Fragment key={message.key}>
              {newDay && (
                <div className="sticky top-1 z-10 my-2 flex justify-center" role="separator" aria-label={dayLabel(message.sentAt)}>
                  <span className="rounded-lg bg-white px-3 py-1 text-xs text-gray-700 shadow-sm dark:bg-gray-800 dark:text-gray-300">{dayLabel(message.sentAt)}</span>
                </div>
              )}
              {divider === message.key && (
                <div className="my-2 bg-white/60 py-1 text-center text-xs font-medium text-gray-700 dark:bg-gray-800/60 dark:text-gray-300" role="separator" aria-label="Unread messages">
                  Unread messages
                </div>
              )}
              <MessageBubble
                chatId={chatId}
                message={message}
                me={me}
                group={group}
                users={users}
                quoted={message.replyTo !== null ? bySequence(message.replyTo) : null}
                highlighted={highlight === message.key}
                actions={bubbleActions}
              />
              <div className={message.reactions.length > 0 ? "h-4" : "h-0.5"} />
            </Fragment>
          );
        })}
      </div>
      <p className="sr-only" role="status" aria-live="polite">
        {announced}
      </p>
      {(!atBottom || !following) && messages.length > 0 && (
        <button
          type="button"
          onClick={jumpToLatest}
          aria-label="Jump to latest messages"
          className="absolute right-4 bottom-4 flex h-10 w-10 items-center justify-center rounded-full bg-white text-gray-700 shadow-md hover:bg-gray-50 dark:bg-gray-800 dark:text-gray-200"
        >
          <Icon name="down" />
        </button>
      )}
    </div>
  );
}
