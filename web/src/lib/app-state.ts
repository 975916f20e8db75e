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
};

export const store = new Store<AppState>(initialState);

export function useApp<T>(select: (state: AppState) => T): T {
  return useSelector(store, select);
}

export function notify(notice: string): void {
  store.set((s) => ({ ...s, notice }));
}

export function reset(): void {
  store.set(() => initialState);
}
