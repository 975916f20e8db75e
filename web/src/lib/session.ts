// A signed-in session's life: the profile, the realtime connection and its handlers.
import { api, ApiProblem, call } from "@/api/client";
import { currentSession, forget, onSessionChange, refresh } from "./auth";
import { currentEpoch, notify, reset, setIfCurrent, store } from "./app-state";
import { realtime } from "./realtime";
import { forgetUser, keepSnapshot, snapshotChanged } from "./offline";
import { loadChats } from "@/features/chats/actions";
import { resumeOutbox } from "@/features/chat/actions";
import { applyEvent, flushDeliveries, reloadEverything } from "@/features/chat/events";

export async function loadMe(minSequence?: number): Promise<void> {
  const epoch = currentEpoch();
  const me = await ownProfile(minSequence);
  setIfCurrent(epoch, (s) => ({ ...s, me, users: { ...s.users, [me.user_id]: { user_id: me.user_id, handle: me.handle, display_name: me.display_name, about: me.about, photo_media_id: me.photo_media_id } } }));
}

/**
 * The caller's profile. Right after signing up, the directory may not show the account
 * yet (404): asked again for a few seconds, as a retryable problem is.
 */
async function ownProfile(minSequence?: number) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call(() => api.GET("/v1/users/me", { params: { query: minSequence ? { min_sequence: minSequence } : {} } }));
    } catch (error) {
      const again = error instanceof ApiProblem && (error.status === 404 || error.retryable);
      if (!again || attempt >= 6) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** attempt));
    }
  }
}

let stopWatching: (() => void) | null = null;
let stopSnapshots: (() => void) | null = null;

/** Starts everything a signed-in user needs; stops it when they sign out. */
export async function startSession(): Promise<void> {
  const session = currentSession();
  if (!session) return;
  await loadMe();
  // What the user sees is kept for opening offline; sends left in the outbox go now.
  stopSnapshots?.();
  const unsubscribe = store.subscribe(snapshotChanged);
  const stopKeeping = keepSnapshot(store.get);
  stopSnapshots = () => {
    unsubscribe();
    stopKeeping();
  };
  snapshotChanged();
  void resumeOutbox(session.userId).catch(() => undefined);
  stopWatching?.();
  stopWatching = onSessionChange((next) => {
    if (next) {
      realtime.renewToken(next.accessToken);
    } else {
      endSession();
    }
  });
  let first = true;
  await realtime.start(session.userId, {
    event: applyEvent,
    ready(cursor) {
      // The chat list as of at least the cursor: live events after it arrive next.
      if (first) void loadChats(cursor).catch(() => undefined);
      first = false;
      flushDeliveries();
    },
    typing(frame) {
      store.set((s) => {
        const chat = { ...(s.typing[frame.chat_id] ?? {}) };
        if (frame.state === "start") chat[frame.user_id] = Date.now() + frame.expires_in_ms;
        else delete chat[frame.user_id];
        return { ...s, typing: { ...s.typing, [frame.chat_id]: chat } };
      });
    },
    presence(frame) {
      store.set((s) => ({
        ...s,
        presence: { ...s.presence, [frame.user_id]: { online: frame.online, lastSeenAt: frame.last_seen_at } },
      }));
    },
    sessionEnded() {
      forget();
      notify("You were signed out.");
    },
    async tokenExpired() {
      await refresh();
    },
    resync: reloadEverything,
  });
  // Until the socket is ready (or if it cannot connect), show the list from REST.
  void loadChats().catch(() => undefined);
}

function endSession(): void {
  realtime.stop();
  stopWatching?.();
  stopWatching = null;
  stopSnapshots?.();
  stopSnapshots = null;
  const userId = store.get().me?.user_id;
  if (userId) void forgetUser(userId);
  const notice = store.get().notice;
  reset();
  if (notice) notify(notice);
}
