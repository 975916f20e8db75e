// What this device keeps for when there is no network, in IndexedDB per user, so that a
// reload or a closed tab loses neither:
// - a snapshot of what the user last saw (their profile, the chat list, the newest
//   messages of their recent chats), from which the app opens offline;
// - the outbox: sends not yet stored, sent again in order with their client_id (stored
//   once however often sent) when there is a session and a network.
// Signing out deletes both: the next person at this browser sees nothing of them.
import type { AppState } from "./app-state";
import { kvDelete, kvGet, kvSet } from "./idb";
import type { Attachment, Timeline } from "@/features/chat/timeline";

const LAST_USER = "last-user";
/** Chats whose newest messages the snapshot keeps, and how many of each. */
const SNAPSHOT_CHATS = 30;
const SNAPSHOT_MESSAGES = 50;

type Snapshot = Pick<AppState, "me" | "chats" | "details" | "users" | "timelines">;

export interface Outgoing {
  chatId: string;
  clientId: string;
  body: string;
  replyTo: number | null;
  mentions: string[];
  sentAt: string;
  /** An uploaded item the message carries (uploads themselves are not kept). */
  attachment?: Attachment | null;
}

const snapshotKey = (userId: string) => `snapshot:${userId}`;
const outboxKey = (userId: string) => `outbox:${userId}`;

/** The snapshot of `state`: stored messages only (sends on their way are the outbox's). */
export function snapshotOf(state: AppState): Snapshot {
  const kept = new Set((state.chats ?? []).slice(0, SNAPSHOT_CHATS).map((c) => c.chat_id));
  const timelines: Record<string, Timeline> = {};
  for (const [chatId, timeline] of Object.entries(state.timelines)) {
    if (!kept.has(chatId) || timeline.hasNewer) continue;
    const stored = timeline.messages.filter((m) => m.status === "stored");
    timelines[chatId] = { messages: stored.slice(-SNAPSHOT_MESSAGES), hasOlder: true, hasNewer: false };
  }
  const details = Object.fromEntries(Object.entries(state.details).filter(([chatId]) => kept.has(chatId)));
  return { me: state.me, chats: state.chats, details, users: state.users, timelines };
}

let saving: ReturnType<typeof setTimeout> | undefined;
let latest: (() => AppState) | null = null;

function saveNow(): void {
  clearTimeout(saving);
  saving = undefined;
  const state = latest?.();
  const userId = state?.me?.user_id;
  if (!state || !userId || state.chats === null) return;
  void Promise.all([kvSet(snapshotKey(userId), snapshotOf(state)), kvSet(LAST_USER, userId)]).catch(() => undefined);
}

/**
 * Keeps the snapshot of the state `read` gives up to date: saved at most once a second
 * (a busy chat changes the state many times a second) and when the page is hidden or
 * closed. Returns the function that stops it.
 */
export function keepSnapshot(read: () => AppState): () => void {
  latest = read;
  const onHide = () => {
    if (saving !== undefined) saveNow();
  };
  window.addEventListener("pagehide", onHide);
  document.addEventListener("visibilitychange", onHide);
  return () => {
    window.removeEventListener("pagehide", onHide);
    document.removeEventListener("visibilitychange", onHide);
    clearTimeout(saving);
    saving = undefined;
    latest = null;
  };
}

/** Notes that the state changed: the snapshot is saved within a second. */
export function snapshotChanged(): void {
  saving ??= setTimeout(saveNow, 1_000);
}

/** The last signed-in user's snapshot, and their user id, if this browser has one. */
export async function lastSnapshot(): Promise<{ userId: string; snapshot: Snapshot } | null> {
  const userId = await kvGet<string>(LAST_USER);
  if (!userId) return null;
  const snapshot = await kvGet<Snapshot>(snapshotKey(userId));
  return snapshot?.me ? { userId, snapshot } : null;
}

/** Deletes everything kept for `userId` (at sign-out). */
export async function forgetUser(userId: string): Promise<void> {
  clearTimeout(saving);
  saving = undefined;
  outboxWrites = outboxWrites.then(async () => {
    await Promise.all([kvDelete(snapshotKey(userId)), kvDelete(outboxKey(userId))]);
    if ((await kvGet<string>(LAST_USER)) === userId) await kvDelete(LAST_USER);
  });
  await outboxWrites.catch(() => undefined);
}

/** Outbox changes, one after the other (each reads, changes and writes the list). */
let outboxWrites: Promise<void> = Promise.resolve();

function changeOutbox(userId: string, change: (items: Outgoing[]) => Outgoing[]): Promise<void> {
  outboxWrites = outboxWrites
    .catch(() => undefined)
    .then(async () => {
      const items = (await kvGet<Outgoing[]>(outboxKey(userId))) ?? [];
      await kvSet(outboxKey(userId), change(items));
    });
  return outboxWrites;
}

export function addToOutbox(userId: string, item: Outgoing): Promise<void> {
  return changeOutbox(userId, (items) => [...items.filter((i) => i.clientId !== item.clientId), item]);
}

export function removeFromOutbox(userId: string, clientId: string): Promise<void> {
  return changeOutbox(userId, (items) => items.filter((i) => i.clientId !== clientId));
}

/** The sends not yet stored, oldest first. */
export async function outbox(userId: string): Promise<Outgoing[]> {
  await outboxWrites.catch(() => undefined);
  return (await kvGet<Outgoing[]>(outboxKey(userId))) ?? [];
}
