"use client";
import { type FormEvent, lazy, Suspense, useEffect, useRef, useState } from "react";
import { api, call, type ChatSummary, describeProblem } from "@/api/client";
import { Avatar } from "@/components/Avatar";
import { Button, ErrorText, Field } from "@/components/form";
import { IconButton } from "@/components/IconButton";
import { notify, useApp } from "@/lib/app-state";
import { navigate } from "@/lib/router";
import { PhotoChooser } from "@/features/photos/PhotoChooser";
import {
  addMembers,
  changeSettings,
  chatPhoto,
  chatTitle,
  createInvite,
  editGroup,
  findByHandle,
  isMuted,
  listInvites,
  loadDetails,
  removeMember,
  revokeInvite,
  setAdmin,
} from "@/features/chats/actions";

const Gallery = lazy(() => import("@/features/gallery/Gallery"));

/**
 * A chat's info: its photo, gallery and settings here, and for a group its name, photo,
 * members and invite links.
 */
export function ChatInfo({ chat, onClose }: { chat: ChatSummary; onClose: () => void }) {
  const details = useApp((s) => s.details[chat.chat_id]);
  const users = useApp((s) => s.users);
  const me = useApp((s) => s.me?.user_id ?? "");
  const [error, setError] = useState<string | null>(null);
  const [gallery, setGallery] = useState<"closed" | "open" | "left">("closed");
  const galleryButton = useRef<HTMLButtonElement>(null);

  // Back from the gallery, focus returns to the button that opened it.
  useEffect(() => {
    if (gallery === "left") galleryButton.current?.focus();
  }, [gallery]);

  useEffect(() => {
    void loadDetails(chat.chat_id).catch((problem: unknown) => setError(describeProblem(problem)));
  }, [chat.chat_id]);

  const run = async (action: () => Promise<unknown>) => {
    setError(null);
    try {
      await action();
    } catch (problem) {
      setError(describeProblem(problem));
    }
  };

  const amAdmin = details?.members.some((m) => m.user_id === me && m.admin) ?? false;
  const canEdit = amAdmin || (details?.members_can_edit_info ?? false);
  const title = chatTitle(chat, users);
  const peer = chat.peer_id ? users[chat.peer_id] : undefined;

  if (gallery === "open") {
    return (
      <Suspense fallback={<p role="status" className="p-4 text-sm">Loading…</p>}>
        <Gallery chatId={chat.chat_id} onBack={() => setGallery("left")} />
      </Suspense>
    );
  }

  return (
    <aside aria-label="Chat info" className="flex h-full flex-col bg-white dark:bg-gray-900">
      <header className="flex items-center gap-2 bg-gray-100 px-2 py-2 dark:bg-gray-800">
        <IconButton icon="close" label="Close chat info" onClick={onClose} />
        <h2 className="font-medium">{chat.kind === "group" ? "Group info" : "Contact info"}</h2>
      </header>
      <div className="min-h-0 flex-1 space-y-6 overflow-y-auto p-4">
        <div className="flex flex-col items-center gap-2 text-center">
          <Avatar name={title} seed={chat.chat_id} photo={chatPhoto(chat, users)} size="xl" />
          <p className="text-xl font-medium">{title}</p>
          {peer && <p className="text-sm text-gray-600 dark:text-gray-400">@{peer.handle}</p>}
          {peer?.about && <p className="text-sm">{peer.about}</p>}
          {details && chat.kind === "group" && details.description && <p className="text-sm whitespace-pre-wrap">{details.description}</p>}
        </div>
        <ErrorText>{error}</ErrorText>
        {chat.kind === "group" && details && canEdit && (
          <PhotoChooser
            label="group photo"
            cropTitle="Crop the group photo"
            hasPhoto={Boolean(details.avatar_media_id)}
            onSave={(mediaId) => editGroup(chat.chat_id, { avatar_media_id: mediaId })}
            onRemove={() => editGroup(chat.chat_id, { avatar_media_id: null })}
          />
        )}
        <button
          ref={galleryButton}
          type="button"
          onClick={() => setGallery("open")}
          className="flex w-full items-center justify-between rounded-lg bg-gray-50 px-3 py-2.5 text-left text-sm font-medium hover:bg-gray-100 focus-visible:outline-2 focus-visible:outline-brand-600 dark:bg-gray-800 dark:hover:bg-gray-700"
        >
          Media, links and docs
          <span aria-hidden="true" className="text-lg text-gray-500">
            ›
          </span>
        </button>
        {chat.kind === "group" && details && canEdit && <EditGroup key={`${details.name}:${details.description}`} chatId={chat.chat_id} name={details.name ?? ""} description={details.description} run={run} />}
        {chat.kind === "group" && details && amAdmin && <MembersEditInfo chatId={chat.chat_id} allowed={details.members_can_edit_info} run={run} />}
        <ChatSettings chat={chat} run={run} />
        {chat.kind === "group" && details && (
          <section aria-labelledby="members-heading" className="space-y-2">
            <h3 id="members-heading" className="text-sm font-semibold text-gray-700 dark:text-gray-300">
              {details.members.length} members
            </h3>
            {amAdmin && <AddMember chatId={chat.chat_id} run={run} />}
            <ul className="divide-y divide-gray-100 dark:divide-gray-800">
              {details.members.map((member) => {
                const name = member.user_id === me ? "You" : (users[member.user_id]?.display_name ?? "…");
                return (
                  <li key={member.user_id} className="flex items-center gap-3 py-2">
                    <Avatar name={name} seed={member.user_id} photo={users[member.user_id]?.photo_media_id} size="sm" />
                    <span className="min-w-0 flex-1 truncate">{name}</span>
                    {member.admin && <span className="rounded bg-brand-50 px-1.5 text-xs text-brand-700 dark:bg-brand-700 dark:text-white">Admin</span>}
                    {amAdmin && member.user_id !== me && (
                      <span className="flex gap-1">
                        <button type="button" className="text-xs underline" onClick={() => void run(() => setAdmin(chat.chat_id, member.user_id, !member.admin))}>
                          {member.admin ? `Dismiss ${name} as admin` : `Make ${name} admin`}
                        </button>
                        <button type="button" className="text-xs text-red-700 underline dark:text-red-400" onClick={() => void run(() => removeMember(chat.chat_id, member.user_id))}>
                          Remove {name}
                        </button>
                      </span>
                    )}
                  </li>
                );
              })}
            </ul>
          </section>
        )}
        {chat.kind === "group" && amAdmin && <Invites chatId={chat.chat_id} run={run} />}
        {chat.kind === "group" && (
          <Button
            variant="danger"
            onClick={() =>
              void run(async () => {
                await removeMember(chat.chat_id, me);
                navigate("/");
              })
            }
          >
            Leave group
          </Button>
        )}
        {chat.kind === "direct" && chat.peer_id && <BlockButton userId={chat.peer_id} name={title} run={run} />}
      </div>
    </aside>
  );
}

type Run = (action: () => Promise<unknown>) => Promise<void>;

function EditGroup({ chatId, name, description, run }: { chatId: string; name: string; description: string; run: Run }) {
  const [newName, setName] = useState(name);
  const [newDescription, setDescription] = useState(description);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    void run(async () => {
      await editGroup(chatId, {
        ...(newName.trim() !== name ? { name: newName.trim() } : {}),
        ...(newDescription !== description ? { description: newDescription } : {}),
      });
      notify("Group updated.");
    });
  };
  return (
    <form onSubmit={submit} className="space-y-3">
      <Field label="Group name" value={newName} maxLength={100} onChange={(e) => setName(e.target.value)} />
      <Field label="Description" value={newDescription} maxLength={512} onChange={(e) => setDescription(e.target.value)} />
      <Button type="submit" variant="secondary" disabled={newName.trim() === name && newDescription === description}>
        Save group info
      </Button>
    </form>
  );
}

/** An admin's switch: whether members who are not admins may edit the group's info. */
function MembersEditInfo({ chatId, allowed, run }: { chatId: string; allowed: boolean; run: Run }) {
  // The switch shows the choice at once; the reloaded details settle it.
  const [wanted, setWanted] = useState<boolean | null>(null);
  return (
    <label className="flex items-center justify-between gap-4 text-sm">
      <span>Members can edit the group's name, description and photo</span>
      <input
        type="checkbox"
        className="h-5 w-5 shrink-0 accent-brand-700"
        checked={wanted ?? allowed}
        onChange={(event) => {
          const choice = event.target.checked;
          setWanted(choice);
          void run(() => editGroup(chatId, { members_can_edit_info: choice })).finally(() => setWanted(null));
        }}
      />
    </label>
  );
}

function ChatSettings({ chat, run }: { chat: ChatSummary; run: Run }) {
  const muted = isMuted(chat);
  // The switch shows the choice at once; the chat list's answer settles it.
  const [previews, setPreviews] = useState<boolean | null>(null);
  return (
    <section aria-label="Chat settings" className="space-y-4">
      <div className="flex flex-wrap gap-2">
        <Button variant="secondary" onClick={() => void run(() => changeSettings(chat.chat_id, { pinned: !chat.pinned }))}>
          {chat.pinned ? "Unpin chat" : "Pin chat"}
        </Button>
        <Button variant="secondary" onClick={() => void run(() => changeSettings(chat.chat_id, { archived: !chat.archived }))}>
          {chat.archived ? "Unarchive chat" : "Archive chat"}
        </Button>
      </div>
      <div role="group" aria-labelledby="chat-notifications-heading" className="space-y-2">
        <h3 id="chat-notifications-heading" className="text-sm font-semibold text-gray-700 dark:text-gray-300">
          Notifications
        </h3>
        <div className="flex flex-wrap gap-2">
          {muted ? (
            <Button variant="secondary" onClick={() => void run(() => changeSettings(chat.chat_id, { muted_until: new Date(0).toISOString() }))}>
              Unmute
            </Button>
          ) : (
            <>
              <Button variant="secondary" onClick={() => void run(() => changeSettings(chat.chat_id, { muted_until: new Date(Date.now() + 8 * 3_600_000).toISOString() }))}>
                Mute for 8 hours
              </Button>
              <Button variant="secondary" onClick={() => void run(() => changeSettings(chat.chat_id, { muted_until: "9999-12-31T00:00:00Z" }))}>
                Mute always
              </Button>
            </>
          )}
        </div>
        <label className="flex items-center justify-between gap-4 text-sm">
          <span>Show message previews in notifications</span>
          <input
            type="checkbox"
            className="h-5 w-5 shrink-0 accent-brand-700"
            checked={previews ?? chat.previews}
            onChange={(event) => {
              const wanted = event.target.checked;
              setPreviews(wanted);
              void run(() => changeSettings(chat.chat_id, { previews: wanted })).finally(() => setPreviews(null));
            }}
          />
        </label>
      </div>
    </section>
  );
}

function AddMember({ chatId, run }: { chatId: string; run: Run }) {
  const [handle, setHandle] = useState("");
  return (
    <form
      className="flex items-end gap-2"
      onSubmit={(event) => {
        event.preventDefault();
        void run(async () => {
          const user = await findByHandle(handle);
          await addMembers(chatId, [user.user_id]);
          setHandle("");
        });
      }}
    >
      <div className="flex-1">
        <Field label="Add a member" placeholder="@username" value={handle} onChange={(e) => setHandle(e.target.value)} />
      </div>
      <Button type="submit" disabled={!handle.trim()}>
        Add
      </Button>
    </form>
  );
}

function Invites({ chatId, run }: { chatId: string; run: Run }) {
  const [codes, setCodes] = useState<string[] | null>(null);
  useEffect(() => {
    void listInvites(chatId)
      .then(setCodes)
      .catch(() => setCodes([]));
  }, [chatId]);
  const link = (code: string) => `${window.location.origin}/join/${code}`;
  return (
    <section aria-labelledby="invites-heading" className="space-y-2">
      <h3 id="invites-heading" className="text-sm font-semibold text-gray-700 dark:text-gray-300">
        Invite links
      </h3>
      <ul className="space-y-2">
        {(codes ?? []).map((code) => (
          <li key={code} className="flex items-center gap-2 text-sm">
            <input readOnly aria-label="Invite link" value={link(code)} className="min-w-0 flex-1 rounded border border-gray-300 bg-gray-50 px-2 py-1 text-xs dark:border-gray-700 dark:bg-gray-800" onFocus={(e) => e.target.select()} />
            <button type="button" className="text-xs underline" onClick={() => void navigator.clipboard?.writeText(link(code)).then(() => notify("Link copied."))}>
              Copy
            </button>
            <button
              type="button"
              className="text-xs text-red-700 underline dark:text-red-400"
              onClick={() =>
                void run(async () => {
                  await revokeInvite(chatId, code);
                  setCodes((held) => (held ?? []).filter((c) => c !== code));
                })
              }
            >
              Revoke
            </button>
          </li>
        ))}
      </ul>
      <Button
        variant="secondary"
        onClick={() =>
          void run(async () => {
            const code = await createInvite(chatId);
            setCodes((held) => [...(held ?? []), code]);
          })
        }
      >
        Create invite link
      </Button>
    </section>
  );
}

function BlockButton({ userId, name, run }: { userId: string; name: string; run: Run }) {
  const [blocked, setBlocked] = useState<boolean | null>(null);
  useEffect(() => {
    void call(() => api.GET("/v1/users/me/blocks"))
      .then((list) => setBlocked(list.items.some((b) => b.user_id === userId)))
      .catch(() => setBlocked(null));
  }, [userId]);
  if (blocked === null) return null;
  const path = { params: { path: { user_id: userId } } };
  return (
    <Button
      variant={blocked ? "secondary" : "danger"}
      onClick={() =>
        void run(async () => {
          await call(() => (blocked ? api.DELETE("/v1/users/me/blocks/{user_id}", path) : api.PUT("/v1/users/me/blocks/{user_id}", path)));
          setBlocked(!blocked);
        })
      }
    >
      {blocked ? `Unblock ${name}` : `Block ${name}`}
    </Button>
  );
}
