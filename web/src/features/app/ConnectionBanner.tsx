"use client";
import { useApp } from "@/lib/app-state";

/** Says when messages are not flowing live, and why. */
export function ConnectionBanner() {
  const connection = useApp((s) => s.connection);
  const text = {
    live: null,
    connecting: "Connecting…",
    reconnecting: "Reconnecting…",
    offline: "You're offline. Messages will be sent when you're back.",
  }[connection];
  return (
    <div role="status" aria-live="polite" data-connection={connection}>
      {text && <p className={`px-4 py-1.5 text-center text-sm ${connection === "offline" ? "bg-amber-200 text-amber-950" : "bg-sky-100 text-sky-950 dark:bg-sky-900 dark:text-sky-50"}`}>{text}</p>}
    </div>
  );
}
