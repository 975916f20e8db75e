// One chat's messages: paging through history, sending (optimistic, kept in the outbox
// and retried safely with the same client_id until stored, in order per chat), and
// acting on messages.
import { api, ApiProblem, call, describeProblem, type Message } from "@/api/client";
import { currentEpoch, notify, onReset, setIfCurrent, store } from "@/lib/app-state";
import { currentSession, onSessionChange } from "@/lib/auth";
import { addToOutbox, outbox, removeFromOutbox, type Outgoing } from "@/lib/offline";
import { newClientId } from "@/lib/ids";
import { realtime } from "@/lib/realtime";
import { kindOf, upload, UploadError } from "@/features/media/media";
import { scheduleChatsReload } from "@/features/chats/actions";
import {
  addPending,
  confirm,
  emptyTimeline,
  fromApi,
  laterReceipt,
  merge,
  newMsg,
  newestSequence,
  oldestSequence,
  remove,
  type Msg,
  type Timeline,
  update,
} from "./timeline";

export const PAGE = 50;

function setTimeline(chatId: string, change: (t: Timeline) => Timeline, epoch = currentEpoch()): void {
  setIfCurrent(epoch, (s) => {
    const current = s.timelines[chatId] ?? emptyTimeline;
    const next = change(current);
    return next === current && s.timelines[chatId] ? s : { ...s, timelines: { ...s.timelines, [chatId]: next } };
  });
}

async function history(chatId: string, query: { before?: number; after?: number; limit?: number; min_sequence?: number }): Promise<{ items: Message[]; has_more: boolean }> {
  return call(() => api.GET("/v1/chats/{chat_id}/messages", { params: { path: { chat_id: chatId }, query } }));
}

/** Stored messages held beyond `sequence`: live events that raced a page's load. */
function newerThan(t: Timeline, sequence: number | undefined): Msg[] {
  return t.messages.filter((m) => m.sequence !== null && (sequence === undefined || m.sequence > sequence));
}

/**
 * The newest page; the timeline then follows live events. The timeline exists before
 * the request leaves, so a live event that comes meanwhile is merged, not dropped, and
 * the page is read as of everything this device has applied.
 */
export async function loadNewest(chatId: string, minSequence = realtime.position()): Promise<void> {
  const epoch = currentEpoch();
  setTimeline(chatId, (t) => t);
  const page = await history(chatId, { limit: PAGE, ...(minSequence ? { min_sequence: minSequence } : {}) });
  setTimeline(
    chatId,
    (t) => {
      const pending = t.messages.filter((m) => m.sequence === null);
      const heldNewest = newestSequence(t);
      const pageOldest = page.items[0]?.sequence;
      const pageNewest = page.items[page.items.length - 1]?.sequence;
      // Start over when nothing is held, after a jump back in history, or when the held
      // messages and the newest page may not touch (a gap would hide messages).
      const gap = heldNewest !== null && pageOldest !== undefined && pageOldest > heldNewest && page.has_more;
      if (heldNewest === null || t.hasNewer || gap) {
        const live = newerThan(t, pageNewest);
        return merge({ messages: pending, hasOlder: page.has_more, hasNewer: false }, [...page.items.map(fromApi), ...live]);
      }
      return merge(t, page.items.map(fromApi));
    },
    epoch,
  );
}

const olderInFlight = new Set<string>();

/** The page before the oldest message held. */
export async function loadOlder(chatId: string): Promise<void> {
  const timeline = store.get().timelines[chatId];
  const oldest = timeline && oldestSequence(timeline);
  if (!timeline || oldest === null || oldest === undefined || !timeline.hasOlder || olderInFlight.has(chatId)) return;
  olderInFlight.add(chatId);
  try {
    const page = await history(chatId, { before: oldest, limit: PAGE });
    setTimeline(chatId, (t) => ({ ...merge(t, page.items.map(fromApi)), hasOlder: page.has_more }));
  } finally {
    olderInFlight.delete(chatId);
  }
}

const newerInFlight = new Set<string>();

/** After a jump into history: the page after the newest message held. */
export async function loadNewer(chatId: string): Promise<void> {
  const timeline = store.get().timelines[chatId];
  const newest = timeline && newestSequence(timeline);
  if (!timeline || newest === null || newest === undefined || !timeline.hasNewer || newerInFlight.has(chatId)) return;
  newerInFlight.add(chatId);
  try {
    const page = await history(chatId, { after: newest, limit: PAGE });
    setTimeline(chatId, (t) => ({ ...merge(t, page.items.map(fromApi)), hasNewer: page.has_more }));
  } finally {
    newerInFlight.delete(chatId);
  }
}

/** Loads the messages around one (a search hit, a quoted reply) unless it is held. */
export async function loadAround(chatId: string, sequence: number): Promise<void> {
  const held = store.get().timelines[chatId]?.messages.some((m) => m.sequence === sequence);
  if (held) return;
  const epoch = currentEpoch();
  const position = realtime.position();
  const consistent = position ? { min_sequence: position } : {};
  const [before, after] = await Promise.all([
    history(chatId, { before: sequence + 1, limit: PAGE / 2, ...consistent }),
    history(chatId, { after: sequence, limit: PAGE / 2, ...consistent }),
  ]);
  setTimeline(
    chatId,
    (t) => {
      const pending = t.messages.filter((m) => m.sequence === null);
      const items = [...before.items, ...after.items].map(fromApi);
      // Reaching the newest message, the window follows live events again: keep any that
      // came while the pages loaded.
      const live = after.has_more ? [] : newerThan(t, items[items.length - 1]?.sequence ?? undefined);
      return merge({ messages: pending, hasOlder: before.has_more, hasNewer: after.has_more }, [...items, ...live]);
    },
    epoch,
  );
}

/** Fetches one message again (after a reaction, whose counts only the server knows). */
export async function reloadMessage(chatId: string, sequence: number, minSequence = realtime.position()): Promise<void> {
  const page = await history(chatId, { after: sequence - 1, limit: 1, ...(minSequence ? { min_sequence: minSequence } : {}) });
  const item = page.items[0];
  if (item && item.sequence === sequence) setTimeline(chatId, (t) => merge(t, [fromApi(item)]));
}

const receiptReloads = new Map<string, { timer: ReturnType<typeof setTimeout>; sequence: number }>();

/**
 * Reloads the receipts of the caller's messages not yet read, soon (coalesced), once
 * the read model has the marker at `sequence`.
 */
export function scheduleReceiptReload(chatId: string, sequence: number): void {
  const held = receiptReloads.get(chatId);
  clearTimeout(held?.timer);
  const upTo = Math.max(sequence, held?.sequence ?? 0);
  receiptReloads.set(chatId, {
    sequence: upTo,
    timer: setTimeout(() => {
      receiptReloads.delete(chatId);
      void reloadReceipts(chatId, upTo).catch(() => undefined);
    }, 100),
  });
}

async function reloadReceipts(chatId: string, minSequence: number): Promise<void> {
  const me = store.get().me?.user_id;
  const timeline = store.get().timelines[chatId];
  if (!me || !timeline) return;
  const waiting = timeline.messages.filter((m) => m.sender === me && m.sequence !== null && m.receipt !== "read");
  const first = waiting[0];
  if (!first || first.sequence === null) return;
  const page = await history(chatId, { after: first.sequence - 1, limit: 100, min_sequence: minSequence });
  const receipts = new Map(page.items.map((m) => [m.sequence, m.receipt as Msg["receipt"]]));
  setTimeline(chatId, (t) =>
    update(
      t,
      (m) => m.sequence !== null && receipts.has(m.sequence),
      (m) => ({ ...m, receipt: laterReceipt(m.receipt, receipts.get(m.sequence as number) ?? null) }),
    ),
  );
}

export interface Draft {
  body: string;
  replyTo: number | null;
  mentions: string[];
}

/** Shows the message at once and sends it until the server stores it or refuses it. */
export function send(chatId: string, draft: Draft): void {
  const me = store.get().me;
  if (!me) return;
  const clientId = newClientId();
  // Sending from back in history goes to the newest messages first, as the send lands
  // there: a window that skipped the messages in between would hide them.
  if (store.get().timelines[chatId]?.hasNewer) {
    setTimeline(chatId, (t) => ({ messages: t.messages.filter((m) => m.sequence === null), hasOlder: true, hasNewer: false }));
    void loadNewest(chatId).catch(() => undefined);
  }
  const outgoing: Outgoing = {
    chatId,
    clientId,
    body: draft.body,
    replyTo: draft.replyTo,
    mentions: draft.mentions,
    sentAt: new Date().toISOString(),
  };
  showPending(outgoing, me.user_id);
  // Kept before it is sent: a tab closed meanwhile sends it the next time.
  keepAndDeliver(me.user_id, outgoing);
}

function showPending(outgoing: Outgoing, sender: string): void {
  const pending = newMsg({
    key: outgoing.clientId,
    sequence: null,
    clientId: outgoing.clientId,
    messageId: null,
    status: "pending",
    sender,
    body: outgoing.body,
    sentAt: outgoing.sentAt,
    replyTo: outgoing.replyTo,
    mentions: outgoing.mentions,
    attachment: outgoing.attachment ?? null,
  });
  setTimeline(outgoing.chatId, (t) => (t.messages.some((m) => m.clientId === outgoing.clientId) ? t : addPending(t, pending)));
}

/**
 * Sends what the outbox holds, oldest first, once per session: sends from an earlier
 * tab, or made while the app was opened offline.
 */
export async function resumeOutbox(userId: string): Promise<void> {
  for (const outgoing of await outbox(userId)) {
    showPending(outgoing, userId);
    queueDelivery(outgoing.chatId, outgoing.clientId);
  }
}

/** Each chat's sends go one after the other, so they are stored in the order typed. */
const deliveries = new Map<string, Promise<void>>();
const queued = new Set<string>();

function queueDelivery(chatId: string, clientId: string, after: Promise<unknown> = Promise.resolve()): void {
  if (queued.has(clientId)) return;
  queued.add(clientId);
  const previous = deliveries.get(chatId) ?? Promise.resolve();
  const next = Promise.all([previous, after])
    .then(() => deliver(chatId, clientId))
    .catch(() => undefined)
    .finally(() => queued.delete(clientId));
  deliveries.set(chatId, next);
}

/** Sends a pending message again (the same client_id: stored once, however often sent). */
export function retry(chatId: string, clientId: string): void {
  const message = store.get().timelines[chatId]?.messages.find((m) => m.clientId === clientId);
  const me = store.get().me;
  if (!message || !me) return;
  setTimeline(chatId, (t) => update(t, (m) => m.clientId === clientId, (m) => ({ ...m, status: "pending", error: undefined })));
  const file = files.get(clientId);
  if (message.upload && !message.attachment && file) {
    void uploadAndSend(chatId, clientId, file, me.user_id);
    return;
  }
  keepAndDeliver(me.user_id, outgoingOf(chatId, message));
}

/** A held message as the outbox keeps it. */
function outgoingOf(chatId: string, message: Msg): Outgoing {
  const { clientId, body, replyTo, mentions, sentAt, attachment } = message;
  return { chatId, clientId: clientId ?? message.key, body, replyTo, mentions, sentAt, attachment };
}

/** Keeps a send in the outbox, then queues it behind its chat's earlier sends. */
function keepAndDeliver(userId: string, outgoing: Outgoing): void {
  const kept = addToOutbox(userId, outgoing).catch(() => undefined);
  queueDelivery(outgoing.chatId, outgoing.clientId, kept);
}

const UPLOAD_ERRORS: Record<string, string> = {
  network: "Can't reach Natter. Check your connection.",
  upload_too_large: "This file is too large to send.",
  unsupported_format: "This type of file can't be sent.",
  content_mismatch: "This file isn't what its type says.",
  image_undecodable: "This image can't be read.",
  too_many_uploads: "Too many uploads at once. Try again shortly.",
};

/** Files on their way up, and the uploads' cancellers, by the send's client id. */
const files = new Map<string, File>();
const uploading = new Map<string, AbortController>();

/**
 * Sends a file with an optional caption: shown at once with its upload's progress,
 * uploaded (resumable when large), then sent as any message, with its client_id.
 */
export function sendMedia(chatId: string, file: File, caption: string, replyTo: number | null = null): void {
  const me = store.get().me;
  if (!me) return;
  const clientId = newClientId();
  const kind = kindOf(file);
  const previewUrl = kind === "image" || kind === "video" ? URL.createObjectURL(file) : null;
  files.set(clientId, file);
  setTimeline(chatId, (t) =>
    addPending(
      t,
      newMsg({
        key: clientId,
        sequence: null,
        clientId,
        messageId: null,
        status: "pending",
        sender: me.user_id,
        body: caption,
        sentAt: new Date().toISOString(),
        replyTo,
        upload: { name: file.name, kind, size: file.size, progress: 0, previewUrl },
      }),
    ),
  );
  void uploadAndSend(chatId, clientId, file, me.user_id);
}

async function uploadAndSend(chatId: string, clientId: string, file: File, userId: string): Promise<void> {
  const controller = new AbortController();
  uploading.set(clientId, controller);
  const kind = kindOf(file);
  const progress = (share: number) =>
    setTimeline(chatId, (t) => update(t, (m) => m.clientId === clientId && m.upload !== undefined, (m) => ({ ...m, upload: m.upload && { ...m.upload, progress: share } })));
  try {
    const item = await upload(file, kind, progress, controller.signal);
    const attachment = { type: "media" as const, media_id: item.media_id, kind: item.kind, content_type: item.content_type };
    setTimeline(chatId, (t) => update(t, (m) => m.clientId === clientId, (m) => ({ ...m, attachment, upload: m.upload && { ...m.upload, progress: 1 } })));
    const message = store.get().timelines[chatId]?.messages.find((m) => m.clientId === clientId);
    if (!message) return;
    files.delete(clientId);
    keepAndDeliver(userId, outgoingOf(chatId, message));
  } catch (error) {
    if (error instanceof DOMException && error.name === "AbortError") return;
    const text = error instanceof UploadError ? (UPLOAD_ERRORS[error.code] ?? error.message) : describeProblem(error);
    setTimeline(chatId, (t) => update(t, (m) => m.clientId === clientId, (m) => ({ ...m, status: "failed", error: text })));
  } finally {
    uploading.delete(clientId);
  }
}

/** Stops an upload on its way and drops its message. */
export function cancelUpload(chatId: string, clientId: string): void {
  uploading.get(clientId)?.abort();
  files.delete(clientId);
  setTimeline(chatId, (t) => ({ ...t, messages: t.messages.filter((m) => m.clientId !== clientId) }));
}

/** Resolves once there is a session to send with (the app may have opened offline). */
function signedIn(): Promise<void> {
  if (currentSession()) return Promise.resolve();
  return new Promise((resolve) => {
    const stop = onSessionChange((session) => {
      if (session) {
        stop();
        resolve();
      }
    });
  });
}

async function deliver(chatId: string, clientId: string): Promise<void> {
  const userId = store.get().me?.user_id;
  for (let attempt = 0; ; attempt++) {
    await signedIn();
    const message = store.get().timelines[chatId]?.messages.find((m) => m.clientId === clientId);
    if (!message || message.status !== "pending") return;
    try {
      const sent = await call(() =>
        api.POST("/v1/chats/{chat_id}/messages", {
          params: { path: { chat_id: chatId } },
          body: {
            client_id: clientId,
            body: message.body,
            reply_to: message.replyTo,
            mentions: message.mentions,
            ...(message.attachment?.type === "media" ? { attachment: { type: "media" as const, media_id: message.attachment.media_id } } : {}),
          },
        }),
      );
      setTimeline(chatId, (t) => confirm(t, clientId, sent.sequence, sent.message_id));
      if (userId) await removeFromOutbox(userId, clientId).catch(() => undefined);
      scheduleChatsReload(sent.sequence);
      return;
    } catch (error) {
      if (error instanceof ApiProblem && error.retryable) {
        await waitToRetry(attempt);
        continue;
      }
      setTimeline(chatId, (t) =>
        update(t, (m) => m.clientId === clientId, (m) => ({ ...m, status: "failed", error: describeProblem(error) })),
      );
      if (userId) await removeFromOutbox(userId, clientId).catch(() => undefined);
      return;
    }
  }
}

async function waitToRetry(attempt: number): Promise<void> {
  if (typeof navigator !== "undefined" && !navigator.onLine) {
    await new Promise((resolve) => window.addEventListener("online", resolve, { once: true }));
  }
  const delay = Math.min(15_000, 400 * 2 ** attempt) * (0.5 + Math.random() / 2);
  await new Promise((resolve) => setTimeout(resolve, delay));
}

/** Drops a failed send the user gave up on. */
export function discard(chatId: string, clientId: string): void {
  setTimeline(chatId, (t) => ({ ...t, messages: t.messages.filter((m) => m.clientId !== clientId || m.status !== "failed") }));
}

async function act(run: () => Promise<unknown>): Promise<void> {
  try {
    await run();
  } catch (error) {
    notify(describeProblem(error));
  }
}

function messagePath(chatId: string, sequence: number) {
  return { params: { path: { chat_id: chatId, sequence } } };
}

export function edit(chatId: string, sequence: number, body: string): Promise<void> {
  return act(async () => {
    await call(() => api.PATCH("/v1/chats/{chat_id}/messages/{sequence}", { ...messagePath(chatId, sequence), body: { body } }));
    setTimeline(chatId, (t) => update(t, (m) => m.sequence === sequence, (m) => ({ ...m, body, edited: true })));
  });
}

export function deleteMessage(chatId: string, sequence: number, scope: "everyone" | "me"): Promise<void> {
  return act(async () => {
    await call(() =>
      api.DELETE("/v1/chats/{chat_id}/messages/{sequence}", {
        params: { path: { chat_id: chatId, sequence }, query: { scope } },
      }),
    );
    setTimeline(chatId, (t) =>
      scope === "me" ? remove(t, sequence) : update(t, (m) => m.sequence === sequence, (m) => ({ ...m, deleted: true, body: "" })),
    );
  });
}

export function react(chatId: string, sequence: number, reaction: string | null): Promise<void> {
  return act(async () => {
    await call(() =>
      reaction
        ? api.PUT("/v1/chats/{chat_id}/messages/{sequence}/reaction", { ...messagePath(chatId, sequence), body: { reaction } })
        : api.DELETE("/v1/chats/{chat_id}/messages/{sequence}/reaction", messagePath(chatId, sequence)),
    );
    await reloadMessage(chatId, sequence);
  });
}

export function star(chatId: string, sequence: number, starred: boolean): Promise<void> {
  return act(async () => {
    await call(() =>
      starred
        ? api.PUT("/v1/chats/{chat_id}/messages/{sequence}/star", messagePath(chatId, sequence))
        : api.DELETE("/v1/chats/{chat_id}/messages/{sequence}/star", messagePath(chatId, sequence)),
    );
    setTimeline(chatId, (t) => update(t, (m) => m.sequence === sequence, (m) => ({ ...m, starred })));
  });
}

export function pin(chatId: string, sequence: number, pinned: boolean): Promise<void> {
  return act(async () => {
    await call(() =>
      pinned
        ? api.PUT("/v1/chats/{chat_id}/messages/{sequence}/pin", messagePath(chatId, sequence))
        : api.DELETE("/v1/chats/{chat_id}/messages/{sequence}/pin", messagePath(chatId, sequence)),
    );
    setTimeline(chatId, (t) => update(t, (m) => m.sequence === sequence, (m) => ({ ...m, pinned })));
  });
}

export function forward(fromChat: string, sequence: number, toChat: string): Promise<void> {
  return act(async () => {
    const sent = await call(() =>
      api.POST("/v1/chats/{chat_id}/messages", {
        params: { path: { chat_id: toChat } },
        body: { client_id: newClientId(), forward: { chat_id: fromChat, sequence } },
      }),
    );
    scheduleChatsReload(sent.sequence);
    notify("Forwarded.");
  });
}

const lastRead = new Map<string, number>();
onReset(() => {
  for (const controller of uploading.values()) controller.abort();
  uploading.clear();
  files.clear();
  deliveries.clear();
  lastRead.clear();
  for (const { timer } of receiptReloads.values()) clearTimeout(timer);
  receiptReloads.clear();
});

/** Everything held in the chat has been seen: say so once per new sequence. */
export function markRead(chatId: string): void {
  const timeline = store.get().timelines[chatId];
  const newest = timeline && !timeline.hasNewer ? newestSequence(timeline) : null;
  if (newest === null || newest === undefined || (lastRead.get(chatId) ?? 0) >= newest) return;
  lastRead.set(chatId, newest);
  store.set((s) => ({
    ...s,
    chats: s.chats?.map((c) => (c.chat_id === chatId ? { ...c, unread_count: 0, mentioned: false } : c)) ?? null,
  }));
  if (!realtime.send({ type: "read", chat_id: chatId, up_to: newest })) {
    void call(() => api.POST("/v1/chats/{chat_id}/read", { params: { path: { chat_id: chatId } }, body: { up_to: newest } })).catch(() => lastRead.delete(chatId));
  }
}

export { setTimeline };
