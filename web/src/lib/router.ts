// Client-side routes over the History API. `natter serve` answers every app path with
// the app shell, so a full reload at any of them works.
import { useSyncExternalStore } from "react";

export type Route =
  | { name: "home" }
  | { name: "chat"; chatId: string; focus: number | null }
  | { name: "join"; code: string }
  | { name: "settings" };

const listeners = new Set<() => void>();

/** A path segment as text; a malformed escape (`%E0`) is kept as typed, not thrown. */
function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

export function parseRoute(pathname: string, search: string): Route {
  const parts = pathname.split("/").filter(Boolean).map(decodeSegment);
  if (parts[0] === "chats" && parts[1]) {
    const focus = Number(new URLSearchParams(search).get("m"));
    return { name: "chat", chatId: parts[1], focus: Number.isSafeInteger(focus) && focus > 0 ? focus : null };
  }
  if (parts[0] === "join" && parts[1]) return { name: "join", code: parts[1] };
  if (parts[0] === "settings") return { name: "settings" };
  return { name: "home" };
}

export function navigate(path: string, options: { replace?: boolean } = {}): void {
  if (path === window.location.pathname + window.location.search) return;
  if (options.replace) window.history.replaceState(null, "", path);
  else window.history.pushState(null, "", path);
  for (const listener of listeners) listener();
}

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  window.addEventListener("popstate", listener);
  return () => {
    listeners.delete(listener);
    window.removeEventListener("popstate", listener);
  };
}

let cached: { key: string; route: Route } | null = null;

function snapshot(): Route {
  const key = window.location.pathname + window.location.search;
  if (cached?.key !== key) cached = { key, route: parseRoute(window.location.pathname, window.location.search) };
  return cached.route;
}

const serverRoute: Route = { name: "home" };

export function useRoute(): Route {
  return useSyncExternalStore(subscribe, snapshot, () => serverRoute);
}

export function chatPath(chatId: string, focus?: number): string {
  return `/chats/${encodeURIComponent(chatId)}${focus ? `?m=${focus}` : ""}`;
}
