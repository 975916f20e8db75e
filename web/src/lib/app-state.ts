// Everything the screens show, in one store. Features change it through their actions;
// the realtime module feeds it events; screens subscribe to slices.
import type { ChatDetails, ChatSummary, OwnProfile, PublicProfile } from "@/api/client";
import type { Timeline } from "@/features/chat/timeline";
import { Store, useSelector } from "./store";

export type ConnectionState = "connecting" | "live" | "reconnecting" | "offline";

export interface Presence {
  online: boolean;
  lastSeenAt: string | null;
}

export interface AppState {
  me: OwnProfile | null;
  connection: ConnectionState;
  /** The chat list as the server orders it (pinned first, then by activity). */
  chats: ChatSummary[] | null;
  details: Record<string, ChatDetails>;
  users: Record<string, PublicProfile>;
  timelines: Record<string, Timeline>;
  /** chat → user → when their typing indicator expires (ms since the epoch). */
  typing: Record<string, Record<string, number>>;
  presence: Record<string, Presence>;
  /** A short message for the user (a toast), or null. */
  notice: string | null;
  /** Counts resyncs: an open chat reloads its newest page when it moves on. */
  resyncs: number;
}

export const initialState: AppState = {
  me: null,
  connection: "connecting",
  chats: null,
  details: {},
  users: {},
  timelines: {},
  typing: {},
  presence: {},
  notice: null,
  resyncs: 0,
};

export const store = new Store<AppState>(initialState);

export function useApp<T>(select: (state: AppState) => T): T {
  return useSelector(store, select);
}

export function notify(notice: string): void {
  store.set((s) => ({ ...s, notice }));
}

let epoch = 0;
const resetters = new Set<() => void>();

/**
 * The signed-in session's generation. An answer that arrives after a sign-out carries
 * an older epoch and is dropped, so the next user never sees the last one's data.
 */
export function currentEpoch(): number {
  return epoch;
}

/** Sets a store change unless the session it was asked for has ended. */
export function setIfCurrent(asked: number, change: (state: AppState) => AppState): void {
  if (asked === epoch) store.set(change);
}

/** Module state to clear at sign-out (timers, caches of what was sent). */
export function onReset(clear: () => void): void {
  resetters.add(clear);
}

export function reset(): void {
  epoch++;
  for (const clear of resetters) clear();
  store.set(() => initialState);
}
