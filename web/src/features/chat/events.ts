// Applies the log's events, as the realtime module delivers them, to what the screens
// show. Messages are keyed by sequence, so an event applied twice changes nothing.
import { onReset, store } from "@/lib/app-state";
import { realtime, type EventFrame } from "@/lib/realtime";
import { loadChats, loadDetails, scheduleChatsReload } from "@/features/chats/actions";
import { reloadMessage, scheduleReceiptReload, setTimeline } from "./actions";
import { type Attachment, merge, newMsg, remove, update } from "./timeline";

const CHAT_EVENTS = new Set([
  "GroupCreated",
  "MembersAdded",
  "MemberRemoved",
  "MemberLeft",
  "MemberJoined",
  "AdminChanged",
  "GroupRenamed",
  "GroupDescribed",
  "GroupAvatarChanged",
  "GroupPermissionsChanged",
  "DirectChatCreated",
  "DirectChatBlockChanged",
]);

const deliveredTimers = new Map<string, ReturnType<typeof setTimeout>>();

function str(value: unknown): string {
  return typeof value === "string" ? value : "";
}

function num(value: unknown): number {
  return typeof value === "number" ? value : 0;
}

export function applyEvent(frame: EventFrame): void {
  const { chat_id: chatId, seq, event } = frame;
  const payload = event.payload;
  const me = store.get().me?.user_id;
  const held = store.get().timelines[chatId];
  switch (event.event_type) {
    case "MessageSent": {
      const sender = str(payload.sender);
      if (held && !held.hasNewer) {
        const message = newMsg({
          key: `s${seq}`,
          sequence: seq,
          clientId: null,
          messageId: str(payload.message_id),
          status: "stored",
          sender,
          body: str(payload.body),
          sentAt: event.occurred_at,
          replyTo: typeof payload.reply_to_sequence === "number" ? payload.reply_to_sequence : null,
          mentions: Array.isArray(payload.mentions) ? payload.mentions.filter((m): m is string => typeof m === "string") : [],
          forwarded: num(payload.forwarded),
          receipt: sender === me ? "sent" : null,
          attachment: (payload.attachment as Attachment | null | undefined) ?? null,
        });
        // A send of this device keeps its bubble: match it by client id.
        const own = sender === me ? held.messages.find((m) => m.clientId === str(payload.client_id)) : undefined;
        setTimeline(chatId, (t) =>
          merge(t, [own ? { ...message, key: own.key, clientId: own.clientId, receipt: own.receipt ?? "sent" } : message]),
        );
      }
      if (sender !== me) acknowledgeDelivery(chatId, seq);
      scheduleChatsReload(seq);
      break;
    }
    case "MessageEdited":
      setTimeline(chatId, (t) =>
        update(t, (m) => m.sequence === num(payload.sequence), (m) => ({ ...m, body: str(payload.body), edited: true })),
      );
      scheduleChatsReload(seq);
      break;
    case "MessageDeleted":
      setTimeline(chatId, (t) =>
        update(t, (m) => m.sequence === num(payload.sequence), (m) => ({ ...m, body: "", deleted: true, reactions: [] })),
      );
      scheduleChatsReload(seq);
      break;
    case "MessageHidden":
      setTimeline(chatId, (t) => remove(t, num(payload.sequence)));
      scheduleChatsReload(seq);
      break;
    case "ReactionSet":
      if (held?.messages.some((m) => m.sequence === num(payload.sequence))) void reloadMessage(chatId, num(payload.sequence), seq).catch(() => undefined);
      break;
    case "MessageStarred":
      setTimeline(chatId, (t) => update(t, (m) => m.sequence === num(payload.sequence), (m) => ({ ...m, starred: payload.starred === true })));
      break;
    case "MessagePinned":
      setTimeline(chatId, (t) => update(t, (m) => m.sequence === num(payload.sequence), (m) => ({ ...m, pinned: payload.pinned === true })));
      if (store.get().details[chatId]) void loadDetails(chatId, seq).catch(() => undefined);
      break;
    case "ReadMarked":
    case "DeliveredMarked":
      if (str(payload.user) === me) {
        if (event.event_type === "ReadMarked") scheduleChatsReload(seq);
      } else if (held) {
        scheduleReceiptReload(chatId, seq);
      }
      break;
    default:
      if (CHAT_EVENTS.has(event.event_type)) {
        scheduleChatsReload(seq);
        if (store.get().details[chatId]) void loadDetails(chatId, seq).catch(() => undefined);
      }
  }
}

/** The highest sequence of each chat this device has and has not yet acknowledged. */
const undelivered = new Map<string, number>();
onReset(() => {
  for (const timer of deliveredTimers.values()) clearTimeout(timer);
  deliveredTimers.clear();
  undelivered.clear();
});

/**
 * Tells the sender's ticks that this device has the message (coalesced per chat). An
 * acknowledgement the socket cannot take yet (during a replay, or offline) is kept
 * and sent once the connection is live: `flushDeliveries`.
 */
function acknowledgeDelivery(chatId: string, upTo: number): void {
  undelivered.set(chatId, Math.max(upTo, undelivered.get(chatId) ?? 0));
  clearTimeout(deliveredTimers.get(chatId));
  deliveredTimers.set(
    chatId,
    setTimeout(() => {
      deliveredTimers.delete(chatId);
      flushDeliveries();
    }, 50),
  );
}

export function flushDeliveries(): void {
  for (const [chatId, upTo] of undelivered) {
    if (realtime.send({ type: "delivered", chat_id: chatId, up_to: upTo })) undelivered.delete(chatId);
  }
}

/**
 * After a resync (the cursor could not be resumed), everything held may be stale: load
 * it again as of the new cursor. Sends still on their way are kept, and go on.
 */
export async function reloadEverything(cursor: number): Promise<void> {
  store.set((s) => ({
    ...s,
    details: {},
    resyncs: s.resyncs + 1,
    timelines: Object.fromEntries(
      Object.entries(s.timelines).map(([chatId, t]) => [chatId, { messages: t.messages.filter((m) => m.sequence === null), hasOlder: true, hasNewer: false }]),
    ),
  }));
  await loadChats(cursor);
}
