// A chat's timeline as this device holds it: stored messages in stream order, then the
// user's own sends still on their way. Pure functions, so every rule is unit-tested.
import type { Message } from "@/api/client";

export type Receipt = "sent" | "delivered" | "read";

/** One message from the moment it is typed until it is read: pending, failed, stored. */
export interface Msg {
  /** Stable for React: the client id of a send made here, else `s<sequence>`. */
  key: string;
  sequence: number | null;
  clientId: string | null;
  messageId: string | null;
  status: "pending" | "failed" | "stored";
  error?: string;
  sender: string;
  body: string;
  sentAt: string;
  replyTo: number | null;
  mentions: string[];
  forwarded: number;
  edited: boolean;
  deleted: boolean;
  starred: boolean;
  pinned: boolean;
  reactions: { reaction: string; count: number }[];
  receipt: Receipt | null;
  attachment: Attachment | null;
  /** A file of this device's on its way up, before its message is sent. */
  upload?: UploadProgress;
}

/** What a message carries besides its text (`AttachmentView` in the API). */
export type Attachment =
  | { type: "media"; media_id: string; kind: string; content_type: string }
  | { type: "location"; latitude_e7: number; longitude_e7: number; name?: string | null }
  | { type: "contact"; name: string; phone?: string | null; user_id?: string | null };

export interface UploadProgress {
  name: string;
  kind: string;
  size: number;
  /** The share sent, 0 to 1. */
  progress: number;
  /** The file itself as a blob: URL, for images and videos. */
  previewUrl: string | null;
}

export interface Timeline {
  messages: Msg[];
  /** Older messages exist on the server beyond the first one held. */
  hasOlder: boolean;
  /** Newer messages exist beyond the last one held (after jumping back in history). */
  hasNewer: boolean;
}

export const emptyTimeline: Timeline = { messages: [], hasOlder: true, hasNewer: false };

/** A message with every flag at rest; the caller gives what it knows. */
export function newMsg(
  fields: Pick<Msg, "key" | "sequence" | "clientId" | "messageId" | "status" | "sender" | "body" | "sentAt"> & Partial<Msg>,
): Msg {
  return {
    replyTo: null,
    mentions: [],
    forwarded: 0,
    edited: false,
    deleted: false,
    starred: false,
    pinned: false,
    reactions: [],
    receipt: null,
    attachment: null,
    ...fields,
  };
}

export function fromApi(message: Message): Msg {
  return {
    key: `s${message.sequence}`,
    sequence: message.sequence,
    clientId: null,
    messageId: message.message_id,
    status: "stored",
    sender: message.sender,
    body: message.body,
    sentAt: message.sent_at,
    replyTo: message.reply_to ?? null,
    mentions: message.mentions,
    forwarded: message.forwarded,
    edited: message.edited,
    deleted: message.deleted,
    starred: message.starred,
    pinned: message.pinned,
    reactions: message.reactions,
    receipt: (message.receipt as Receipt | null | undefined) ?? null,
    attachment: (message.attachment as Attachment | null | undefined) ?? null,
  };
}

function stored(messages: Msg[]): Msg[] {
  return messages.filter((m) => m.sequence !== null);
}

function unsent(messages: Msg[]): Msg[] {
  return messages.filter((m) => m.sequence === null);
}

/**
 * Merges stored messages into a timeline: each sequence once, in order; a message that
 * is already held keeps its key (and so its bubble) and takes the newer fields.
 */
export function merge(timeline: Timeline, incoming: Msg[]): Timeline {
  if (incoming.length === 0) return timeline;
  const bySequence = new Map<number, Msg>();
  for (const m of stored(timeline.messages)) bySequence.set(m.sequence as number, m);
  const pending = unsent(timeline.messages);
  for (const m of incoming) {
    if (m.sequence === null) continue;
    const held = bySequence.get(m.sequence);
    const own = held ? undefined : pending.find((p) => p.clientId !== null && p.messageId === m.messageId);
    const key = held?.key ?? own?.key ?? m.key;
    // Receipts only move forward, whichever answer comes last.
    const receipt = laterReceipt(held?.receipt ?? null, m.receipt);
    bySequence.set(m.sequence, { ...m, key, receipt, clientId: held?.clientId ?? own?.clientId ?? m.clientId });
  }
  const messages = [...bySequence.values()].sort((a, b) => (a.sequence as number) - (b.sequence as number));
  const stillPending = pending.filter((p) => !messages.some((m) => m.key === p.key));
  return { ...timeline, messages: [...messages, ...stillPending] };
}

/** Adds a send typed on this device, shown at once. */
export function addPending(timeline: Timeline, message: Msg): Timeline {
  if (timeline.messages.some((m) => m.key === message.key)) return timeline;
  return { ...timeline, messages: [...timeline.messages, message] };
}

/** The server stored a send: it takes its place in stream order under the same key. */
export function confirm(timeline: Timeline, clientId: string, sequence: number, messageId: string): Timeline {
  const own = timeline.messages.find((m) => m.clientId === clientId);
  if (!own) return timeline;
  const rest = timeline.messages.filter((m) => m !== own && m.sequence !== sequence);
  const held = timeline.messages.find((m) => m.sequence === sequence);
  const confirmed: Msg = {
    ...(held ?? own),
    key: own.key,
    clientId,
    sequence,
    messageId,
    status: "stored",
    error: undefined,
    receipt: held?.receipt ?? own.receipt ?? "sent",
  };
  return merge({ ...timeline, messages: rest }, [confirmed]);
}

export function update(timeline: Timeline, match: (m: Msg) => boolean, change: (m: Msg) => Msg): Timeline {
  let changed = false;
  const messages = timeline.messages.map((m) => {
    if (!match(m)) return m;
    changed = true;
    return change(m);
  });
  return changed ? { ...timeline, messages } : timeline;
}

export function remove(timeline: Timeline, sequence: number): Timeline {
  const messages = timeline.messages.filter((m) => m.sequence !== sequence);
  return messages.length === timeline.messages.length ? timeline : { ...timeline, messages };
}

/** The newest stored sequence held, or null. */
export function newestSequence(timeline: Timeline): number | null {
  const all = stored(timeline.messages);
  return all.length ? (all[all.length - 1] as Msg).sequence : null;
}

export function oldestSequence(timeline: Timeline): number | null {
  const first = stored(timeline.messages)[0];
  return first ? first.sequence : null;
}

const RECEIPT_RANK: Record<Receipt, number> = { sent: 0, delivered: 1, read: 2 };

/** Receipts only move forward: a late answer never turns read ticks grey again. */
export function laterReceipt(a: Receipt | null, b: Receipt | null): Receipt | null {
  if (!a) return b;
  if (!b) return a;
  return RECEIPT_RANK[b] > RECEIPT_RANK[a] ? b : a;
}

/** The local calendar day of a timestamp, for day separators. */
export function dayOf(iso: string): string {
  const date = new Date(iso);
  return `${date.getFullYear()}-${date.getMonth() + 1}-${date.getDate()}`;
}

/**
 * Where the unread divider goes: before the `unread`-th newest message of others.
 * Returns that message's key, or null.
 */
export function unreadDividerKey(messages: Msg[], me: string, unread: number): string | null {
  if (unread <= 0) return null;
  let seen = 0;
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i] as Msg;
    if (m.sender !== me && m.sequence !== null && !m.deleted) {
      seen++;
      if (seen === unread) return m.key;
    }
  }
  return messages.find((m) => m.sender !== me)?.key ?? null;
}
