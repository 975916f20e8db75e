// The chat list, chat details and the people in them: loading and changing.
import { api, call, type ChatSummary, type Schemas } from "@/api/client";
import { currentEpoch, onReset, setIfCurrent, store } from "@/lib/app-state";
import { realtime } from "@/lib/realtime";

let chatsReload: ReturnType<typeof setTimeout> | undefined;
let chatsReloadAt = 0;
let chatsAsked = 0;
let chatsApplied = 0;
onReset(() => {
  clearTimeout(chatsReload);
  chatsReloadAt = 0;
});

/**
 * Loads the chat list as of at least `minSequence` (by default, everything this device
 * has applied). An answer older than one already shown is dropped.
 */
export async function loadChats(minSequence = realtime.position()): Promise<void> {
  const epoch = currentEpoch();
  const asked = ++chatsAsked;
  const chats: ChatSummary[] = [];
  let cursor: string | undefined;
  do {
    const query = {
      limit: CHAT_PAGE,
      ...(cursor ? { cursor } : {}),
      ...(minSequence ? { min_sequence: minSequence } : {}),
    };
    const page = await call(() => api.GET("/v1/chats", { params: { query } }));
    chats.push(...page.items);
    cursor = page.next_cursor ?? undefined;
  } while (cursor);
  if (asked < chatsApplied) return;
  chatsApplied = asked;
  setIfCurrent(epoch, (s) => ({ ...s, chats }));
  for (const chat of chats) {
    if (chat.peer_id) void ensureUser(chat.peer_id);
  }
}

/** The list is shown whole, so it comes in the largest pages the API gives. */
const CHAT_PAGE = 1000;

/**
 * Reloads the chat list soon, once its read model has the event at `sequence`. Counts
 * come from the server, so unread badges stay exact however events and loads interleave.
 */
export function scheduleChatsReload(sequence: number): void {
  chatsReloadAt = Math.max(chatsReloadAt, sequence);
  clearTimeout(chatsReload);
  chatsReload = setTimeout(() => {
    void loadChats(chatsReloadAt).catch(() => undefined);
  }, 80);
}

const detailsInFlight = new Map<string, Promise<void>>();

const detailsAsked = new Map<string, number>();
let detailsCount = 0;

export function loadDetails(chatId: string, minSequence = realtime.position()): Promise<void> {
  const key = `${chatId}:${minSequence ?? ""}`;
  const running = detailsInFlight.get(key);
  if (running) return running;
  const epoch = currentEpoch();
  const asked = ++detailsCount;
  const loading = (async () => {
    try {
      const details = await call(() =>
        api.GET("/v1/chats/{chat_id}", {
          params: { path: { chat_id: chatId }, query: minSequence ? { min_sequence: minSequence } : {} },
        }),
      );
      if (asked < (detailsAsked.get(chatId) ?? 0)) return;
      detailsAsked.set(chatId, asked);
      setIfCurrent(epoch, (s) => ({ ...s, details: { ...s.details, [chatId]: details } }));
      for (const member of details.members) void ensureUser(member.user_id);
    } finally {
      detailsInFlight.delete(key);
    }
  })();
  detailsInFlight.set(key, loading);
  return loading;
}

const usersInFlight = new Map<string, Promise<void>>();

/** Loads a user's public profile once (as their privacy settings allow). */
export function ensureUser(userId: string, force = false): Promise<void> {
  if (!force && store.get().users[userId]) return Promise.resolve();
  const running = usersInFlight.get(userId);
  if (running) return running;
  const epoch = currentEpoch();
  const loading = (async () => {
    try {
      const profile = await call(() => api.GET("/v1/users/{user_id}", { params: { path: { user_id: userId } } }));
      setIfCurrent(epoch, (s) => ({ ...s, users: { ...s.users, [userId]: profile } }));
    } catch {
      // An unknown or deleted user is shown by id.
    } finally {
      usersInFlight.delete(userId);
    }
  })();
  usersInFlight.set(userId, loading);
  return loading;
}

export async function findByHandle(handle: string): Promise<Schemas["PublicProfile"]> {
  const profile = await call(() =>
    api.GET("/v1/users/by-handle/{handle}", { params: { path: { handle: handle.replace(/^@/, "").trim() } } }),
  );
  store.set((s) => ({ ...s, users: { ...s.users, [profile.user_id]: profile } }));
  return profile;
}

export async function openDirect(userId: string): Promise<string> {
  const created = await call(() => api.POST("/v1/chats/direct", { body: { user_id: userId } }));
  await loadChats(created.sequence);
  return created.chat_id;
}

export async function createGroup(name: string, members: string[]): Promise<string> {
  const created = await call(() => api.POST("/v1/chats/groups", { body: { name, members } }));
  await loadChats(created.sequence);
  return created.chat_id;
}

export async function changeSettings(chatId: string, settings: Schemas["SettingsRequest"]): Promise<void> {
  const done = await call(() =>
    api.PUT("/v1/chats/{chat_id}/settings", { params: { path: { chat_id: chatId } }, body: settings }),
  );
  await loadChats(done.sequence);
}

export async function editGroup(chatId: string, edit: Schemas["EditGroupRequest"]): Promise<void> {
  const done = await call(() => api.PATCH("/v1/chats/{chat_id}", { params: { path: { chat_id: chatId } }, body: edit }));
  await Promise.all([loadDetails(chatId, done.sequence), loadChats(done.sequence)]);
}

export async function addMembers(chatId: string, userIds: string[]): Promise<void> {
  const done = await call(() =>
    api.POST("/v1/chats/{chat_id}/members", { params: { path: { chat_id: chatId } }, body: { user_ids: userIds } }),
  );
  await loadDetails(chatId, done.sequence);
}

export async function removeMember(chatId: string, userId: string): Promise<void> {
  const done = await call(() =>
    api.DELETE("/v1/chats/{chat_id}/members/{user_id}", { params: { path: { chat_id: chatId, user_id: userId } } }),
  );
  if (userId === store.get().me?.user_id) {
    await loadChats(done.sequence);
  } else {
    await loadDetails(chatId, done.sequence);
  }
}

export async function setAdmin(chatId: string, userId: string, admin: boolean): Promise<void> {
  const path = { params: { path: { chat_id: chatId, user_id: userId } } };
  const done = await call(() =>
    admin ? api.PUT("/v1/chats/{chat_id}/admins/{user_id}", path) : api.DELETE("/v1/chats/{chat_id}/admins/{user_id}", path),
  );
  await loadDetails(chatId, done.sequence);
}

export async function listInvites(chatId: string): Promise<string[]> {
  const list = await call(() => api.GET("/v1/chats/{chat_id}/invites", { params: { path: { chat_id: chatId } } }));
  return list.codes;
}

export async function createInvite(chatId: string): Promise<string> {
  const created = await call(() => api.POST("/v1/chats/{chat_id}/invites", { params: { path: { chat_id: chatId } } }));
  return created.code;
}

export async function revokeInvite(chatId: string, code: string): Promise<void> {
  await call(() =>
    api.DELETE("/v1/chats/{chat_id}/invites/{code}", { params: { path: { chat_id: chatId, code } } }),
  );
}

export async function joinByInvite(code: string): Promise<string> {
  const joined = await call(() => api.POST("/v1/invites/{code}", { params: { path: { code } } }));
  await loadChats(joined.sequence);
  return joined.chat_id;
}

/** What a chat is called here: the group's name, or the other person's. */
export function chatTitle(chat: Pick<ChatSummary, "kind" | "name" | "peer_id">, users: Record<string, Schemas["PublicProfile"]>): string {
  if (chat.kind === "group") return chat.name ?? "Group";
  const peer = chat.peer_id ? users[chat.peer_id] : undefined;
  return peer?.display_name ?? "…";
}

/** The chat's photo, a media id: the group's avatar, or the other person's photo. */
export function chatPhoto(chat: Pick<ChatSummary, "kind" | "avatar_media_id" | "peer_id">, users: Record<string, Schemas["PublicProfile"]>): string | null {
  if (chat.kind === "group") return chat.avatar_media_id ?? null;
  return (chat.peer_id ? users[chat.peer_id]?.photo_media_id : null) ?? null;
}

export function isMuted(chat: ChatSummary, now = Date.now()): boolean {
  return chat.muted_until != null && Date.parse(chat.muted_until) > now;
}
