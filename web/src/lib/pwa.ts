// The service worker (/sw.js, written into the export by scripts/sw.mjs): it keeps the
// app shell for opening offline and shows pushes. A click on a push's notification
// opens its chat in this window.
import { navigate } from "./router";

export function registerServiceWorker(): void {
  if (typeof navigator === "undefined" || !("serviceWorker" in navigator)) return;
  // `next dev` serves no /sw.js: only the static export has one.
  if (process.env.NODE_ENV !== "production") return;
  navigator.serviceWorker.register("/sw.js").catch(() => undefined);
  navigator.serviceWorker.addEventListener("message", (event: MessageEvent<{ type?: string; path?: string }>) => {
    if (event.data?.type === "open-chat" && typeof event.data.path === "string" && event.data.path.startsWith("/")) {
      navigate(event.data.path);
    }
  });
}
