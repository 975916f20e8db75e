"use client";
import { type FormEvent, useEffect, useState } from "react";
import { api, type Audience, call, describeProblem, type SessionInfo } from "@/api/client";
import { Avatar } from "@/components/Avatar";
import { Button, ErrorText, Field } from "@/components/form";
import { IconButton } from "@/components/IconButton";
import { notify, useApp } from "@/lib/app-state";
import { signOut, signOutEverywhere } from "@/lib/auth";
import { pushState, type PushState, turnOff, turnOn } from "@/lib/push";
import { navigate } from "@/lib/router";
import { loadMe } from "@/lib/session";
import { ensureUser } from "@/features/chats/actions";
import { PhotoChooser } from "@/features/photos/PhotoChooser";
import { removePhoto, setPhoto } from "./actions";

/** The user's own settings: profile and photo, notifications, privacy, blocked people and sessions. */
export function SettingsPane() {
  return (
    <section aria-label="Settings" className="flex h-full flex-col bg-white dark:bg-gray-900">
      <header className="flex items-center gap-2 bg-gray-100 px-2 py-2 dark:bg-gray-800">
        <IconButton icon="back" label="Back to chats" onClick={() => navigate("/")} />
        <h1 className="text-lg font-medium">Settings</h1>
      </header>
      <div className="min-h-0 flex-1 space-y-8 overflow-y-auto p-4">
        <Profile />
        <Notifications />
        <Privacy />
        <Blocks />
        <Sessions />
      </div>
    </section>
  );
}

function Section({ title, children }: { title: string; children: React.ReactNode }) {
  const id = `settings-${title.toLowerCase().replace(/\W+/g, "-")}`;
  return (
    <section aria-labelledby={id} className="space-y-3">
      <h2 id={id} className="text-sm font-semibold tracking-wide text-brand-700 uppercase dark:text-brand-500">
        {title}
      </h2>
      {children}
    </section>
  );
}

function Profile() {
  const me = useApp((s) => s.me);
  const [name, setName] = useState(me?.display_name ?? "");
  const [about, setAbout] = useState(me?.about ?? "");
  const [error, setError] = useState<string | null>(null);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    try {
      const done = await call(() => api.PATCH("/v1/users/me", { body: { display_name: name.trim(), about } }));
      await loadMe(done.sequence);
      notify("Profile saved.");
    } catch (problem) {
      setError(describeProblem(problem));
    }
  };
  return (
    <Section title="Profile">
      <div className="flex items-center gap-4">
        <Avatar name={me?.display_name ?? ""} seed={me?.user_id ?? ""} photo={me?.photo_media_id} size="xl" />
        <div className="min-w-0 space-y-2">
          <p className="text-sm text-gray-600 dark:text-gray-400">@{me?.handle}</p>
          <PhotoChooser label="photo" cropTitle="Crop your photo" hasPhoto={Boolean(me?.photo_media_id)} onSave={setPhoto} onRemove={removePhoto} />
        </div>
      </div>
      <form onSubmit={submit} className="space-y-3">
        <Field label="Your name" value={name} maxLength={64} onChange={(e) => setName(e.target.value)} />
        <Field label="About" value={about} maxLength={140} onChange={(e) => setAbout(e.target.value)} />
        <ErrorText>{error}</ErrorText>
        <Button type="submit">Save profile</Button>
      </form>
    </Section>
  );
}

const PUSH_TEXT: Record<PushState, string> = {
  unsupported: "This browser can't show notifications from Natter.",
  unavailable: "This server sends no notifications.",
  blocked: "Notifications are blocked. Allow them in your browser's site settings.",
  off: "Get a notification of new messages when Natter isn't open.",
  on: "On for this browser. Muted chats notify only when you're mentioned.",
};

/** Web Push for this browser: permission is asked here, when the user turns it on. */
function Notifications() {
  const [state, setState] = useState<PushState | null>(null);
  const [previews, setPreviews] = useState(true);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    void pushState()
      .then(setState)
      .catch(() => setState("unsupported"));
  }, []);
  if (state === null) return null;
  const change = async (to: "on" | "off") => {
    setBusy(true);
    setError(null);
    try {
      setState(await (to === "on" ? turnOn(previews) : turnOff()));
    } catch (problem) {
      setError(describeProblem(problem));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Section title="Notifications">
      <p className="text-sm text-gray-600 dark:text-gray-400" data-push-state={state}>
        {PUSH_TEXT[state]}
      </p>
      {(state === "off" || state === "on") && (
        <>
          <label className="flex items-center justify-between gap-4 text-sm">
            <span>Show the sender and text</span>
            <input type="checkbox" className="h-5 w-5 accent-brand-700" checked={previews} disabled={busy} onChange={(e) => setPreviews(e.target.checked)} />
          </label>
          <Button type="button" disabled={busy} onClick={() => void change(state === "on" ? "off" : "on")}>
            {state === "on" ? "Turn off notifications" : "Turn on notifications"}
          </Button>
        </>
      )}
      <ErrorText>{error}</ErrorText>
    </Section>
  );
}

const AUDIENCES: { value: Audience; label: string }[] = [
  { value: "everyone", label: "Everyone" },
  { value: "contacts", label: "My contacts" },
  { value: "nobody", label: "Nobody" },
];

function Privacy() {
  const privacy = useApp((s) => s.me?.privacy);
  const [error, setError] = useState<string | null>(null);
  if (!privacy) return null;
  const change = async (patch: Record<string, Audience | boolean>) => {
    setError(null);
    try {
      const done = await call(() => api.PUT("/v1/users/me/privacy", { body: patch }));
      await loadMe(done.sequence);
    } catch (problem) {
      setError(describeProblem(problem));
    }
  };
  const select = (key: "last_seen" | "profile_photo" | "about", label: string) => (
    <label className="flex items-center justify-between gap-4 text-sm">
      <span>{label}</span>
      <select value={privacy[key]} onChange={(e) => void change({ [key]: e.target.value as Audience })} className="rounded-lg border border-gray-300 bg-white px-2 py-1 dark:border-gray-700 dark:bg-gray-800">
        {AUDIENCES.map((a) => (
          <option key={a.value} value={a.value}>
            {a.label}
          </option>
        ))}
      </select>
    </label>
  );
  return (
    <Section title="Privacy">
      {select("last_seen", "Who sees my last seen and online")}
      {select("profile_photo", "Who sees my profile photo")}
      {select("about", "Who sees my about")}
      <label className="flex items-center justify-between gap-4 text-sm">
        <span>Read receipts</span>
        <input type="checkbox" className="h-5 w-5 accent-brand-700" checked={privacy.read_receipts} onChange={(e) => void change({ read_receipts: e.target.checked })} />
      </label>
      <ErrorText>{error}</ErrorText>
    </Section>
  );
}

function Blocks() {
  const users = useApp((s) => s.users);
  const [blocked, setBlocked] = useState<string[] | null>(null);
  const reload = () =>
    void call(() => api.GET("/v1/users/me/blocks"))
      .then((list) => {
        setBlocked(list.items.map((b) => b.user_id));
        for (const b of list.items) void ensureUser(b.user_id);
      })
      .catch(() => setBlocked([]));
  useEffect(reload, []);
  return (
    <Section title="Blocked">
      {blocked?.length === 0 && <p className="text-sm text-gray-600 dark:text-gray-400">You have not blocked anyone.</p>}
      <ul className="space-y-2">
        {(blocked ?? []).map((id) => {
          const name = users[id]?.display_name ?? "…";
          return (
            <li key={id} className="flex items-center justify-between text-sm">
              {name}
              <Button variant="secondary" onClick={() => void call(() => api.DELETE("/v1/users/me/blocks/{user_id}", { params: { path: { user_id: id } } })).then(reload, (p: unknown) => notify(describeProblem(p)))}>
                Unblock {name}
              </Button>
            </li>
          );
        })}
      </ul>
    </Section>
  );
}

function Sessions() {
  const [sessions, setSessions] = useState<SessionInfo[] | null>(null);
  const reload = () =>
    void call(() => api.GET("/v1/sessions"))
      .then((list) => setSessions(list.items))
      .catch(() => setSessions([]));
  useEffect(reload, []);
  return (
    <Section title="Sessions">
      <ul className="space-y-2">
        {(sessions ?? []).map((session) => (
          <li key={session.session_id} className="flex items-center justify-between gap-2 text-sm">
            <span>
              {session.device_name || "Unnamed device"}
              {session.current && <span className="ml-2 rounded bg-brand-50 px-1.5 text-xs text-brand-700 dark:bg-brand-700 dark:text-white">This device</span>}
              <span className="block text-xs text-gray-600 dark:text-gray-400">Last active {new Date(session.last_used_at).toLocaleString()}</span>
            </span>
            {!session.current && (
              <Button
                variant="secondary"
                onClick={() =>
                  void call(() => api.DELETE("/v1/sessions/{session_id}", { params: { path: { session_id: session.session_id } } })).then(reload, (p: unknown) => notify(describeProblem(p)))
                }
              >
                Sign out {session.device_name || "device"}
              </Button>
            )}
          </li>
        ))}
      </ul>
      <div className="flex flex-wrap gap-2">
        <Button variant="secondary" onClick={() => void signOut().catch((p: unknown) => notify(describeProblem(p)))}>
          Sign out
        </Button>
        <Button variant="danger" onClick={() => void signOutEverywhere().catch((p: unknown) => notify(describeProblem(p)))}>
          Sign out everywhere
        </Button>
      </div>
    </Section>
  );
}
