"use client";
import { useEffect, useRef, useState } from "react";
import { notify, store, useApp } from "@/lib/app-state";
import { currentSession, forget, onSessionChange, refresh } from "@/lib/auth";
import { chatPath, navigate, useRoute } from "@/lib/router";
import { lastSnapshot } from "@/lib/offline";
import { registerServiceWorker } from "@/lib/pwa";
import { startSession } from "@/lib/session";
import { applyTheme, storedTheme, watchSystemTheme } from "@/lib/theme";
import { AuthScreen } from "@/features/auth/AuthScreen";
import { ChatListPane } from "@/features/chats/ChatListPane";
import { ChatView } from "@/features/chat/ChatView";
import { JoinView } from "@/features/groups/JoinView";
import { SettingsPane } from "@/features/settings/SettingsPane";
import { resumeOutbox } from "@/features/chat/actions";
import { ConnectionBanner } from "./ConnectionBanner";
import { Toast } from "./Toast";

type Phase = "restoring" | "signed-out" | "signed-in" | "offline";

/**
 * With no network, the app opens on what this browser kept of the last user (their chat
 * list and recent messages, sends still on their way), marked offline; once back
 * online it signs in again through the refresh cookie. False if nothing was kept.
 */
async function openOffline(): Promise<boolean> {
  const kept = await lastSnapshot().catch(() => null);
  if (!kept) return false;
  store.set((s) => ({ ...s, ...kept.snapshot, connection: "offline" }));
  // Sends still on their way are shown, and queued in their order: they go once there
  // is a session, before anything typed from now on.
  await resumeOutbox(kept.userId).catch(() => undefined);
  return true;
}

/** The whole app: restores the session, then the chat list beside the open chat. */
export function NatterApp() {
  const [phase, setPhase] = useState<Phase>("restoring");
  const notice = useApp((s) => s.notice);

  useEffect(() => {
    applyTheme(storedTheme());
    const unwatch = watchSystemTheme();
    let started = false;
    const stop = onSessionChange((session) => {
      if (session && !started) {
        started = true;
        void startSession()
          .then(() => setPhase("signed-in"))
          .catch(() => {
            // The session could not start (the server is restarting): sign in again.
            started = false;
            forget();
            notify("Can't reach Natter right now. Try again in a moment.");
          });
      } else if (!session) {
        started = false;
        setPhase("signed-out");
      }
    });
    registerServiceWorker();
    const offline = () =>
      openOffline().then((opened) => {
        if (!opened) {
          setPhase("signed-out");
          notify("Can't reach Natter. Check your connection.");
          return;
        }
        setPhase((phase) => (phase === "restoring" ? "offline" : phase));
        // Back online: sign in again (the session listener above takes it from there).
        const online = () => {
          refresh()
            .then((session) => {
              if (!session && !currentSession()) setPhase("signed-out");
            })
            .catch(() => window.addEventListener("online", online, { once: true }));
        };
        window.addEventListener("online", online, { once: true });
      });
    // A reload signs in again through the refresh cookie, if there is one.
    if (typeof navigator !== "undefined" && !navigator.onLine) {
      void offline();
    } else {
      refresh()
        .then((session) => {
          if (!session && !currentSession()) setPhase("signed-out");
        })
        .catch(() => void offline());
    }
    return () => {
      stop();
      unwatch();
    };
  }, []);

  if (phase === "restoring") {
    return (
      <main className="flex h-full items-center justify-center" aria-busy="true">
        <p className="text-lg font-semibold text-brand-700 dark:text-brand-500">Natter</p>
      </main>
    );
  }
  if (phase === "signed-out") return <AuthScreen notice={notice} />;
  // Signed in, or opened offline on what this browser kept.
  return <Shell />;
}

function Shell() {
  const route = useRoute();
  const searchRef = useRef<HTMLInputElement>(null);
  const activeChat = route.name === "chat" ? route.chatId : null;
  useShortcuts(activeChat, searchRef);

  const detail =
    route.name === "chat" ? (
      <ChatView key={route.chatId} chatId={route.chatId} focus={route.focus} />
    ) : route.name === "join" ? (
      <JoinView code={route.code} />
    ) : (
      <div className="hidden h-full flex-col items-center justify-center gap-2 border-l border-gray-200 bg-gray-50 text-center md:flex dark:border-gray-800 dark:bg-gray-900">
        <p className="text-2xl font-light text-gray-700 dark:text-gray-300">Natter</p>
        <p className="text-sm text-gray-600 dark:text-gray-400">Pick a chat, or start a new one.</p>
      </div>
    );
  // One pane on a phone (the list, or the open chat), two on a desktop.
  const showDetailOnPhone = route.name === "chat" || route.name === "join";
  return (
    <div className="flex h-full flex-col">
      <ConnectionBanner />
      <div className="mx-auto flex min-h-0 w-full max-w-[1600px] flex-1 shadow-sm">
        <div className={`w-full border-r border-gray-200 md:w-[30rem] md:max-w-[40%] md:min-w-[18rem] dark:border-gray-800 ${showDetailOnPhone ? "hidden md:block" : ""}`}>
          {route.name === "settings" ? <SettingsPane /> : <ChatListPane activeChat={activeChat} searchRef={searchRef} />}
        </div>
        <main className={`min-w-0 flex-1 ${showDetailOnPhone ? "" : "hidden md:block"}`}>{detail}</main>
      </div>
      <Toast />
    </div>
  );
}

/** Ctrl+K or / searches; Alt+↑/↓ moves between chats; Escape goes back. */
function useShortcuts(activeChat: string | null, searchRef: React.RefObject<HTMLInputElement | null>) {
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      const target = event.target as HTMLElement | null;
      const typing = target?.tagName === "INPUT" || target?.tagName === "TEXTAREA" || target?.isContentEditable;
      if ((event.key === "k" && (event.ctrlKey || event.metaKey)) || (event.key === "/" && !typing)) {
        event.preventDefault();
        if (window.location.pathname === "/settings") navigate("/");
        setTimeout(() => searchRef.current?.focus(), 0);
      } else if (event.altKey && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
        event.preventDefault();
        const chats = (store.get().chats ?? []).filter((c) => !c.archived);
        const index = chats.findIndex((c) => c.chat_id === activeChat);
        const next = chats[index + (event.key === "ArrowDown" ? 1 : -1)] ?? (index < 0 ? chats[0] : undefined);
        if (next) navigate(chatPath(next.chat_id));
      } else if (event.key === "Escape" && !event.defaultPrevented && !document.querySelector("dialog[open]")) {
        if (activeChat && !typing) navigate("/");
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [activeChat, searchRef]);
}
