// Natter's service worker. `scripts/sw.mjs` writes it into the export as /sw.js after
// `next build`, with the export's files in SHELL and their digest in VERSION.
//
// - The app shell (every file of the export) is cached at install, so the app opens with
//   no network; a new build is a new cache, and the old one is deleted once the new
//   worker takes over.
// - Pages are fetched from the network first and fall back to the cached shell (the app
//   routes on the client). Hashed assets come from the cache. The API, the WebSocket and
//   media are never cached here: the app keeps its own data (IndexedDB).
// - A push shows a notification per chat (a newer one replaces it); a click opens that
//   chat, in a window of the app that is already open if there is one.
/* global self, caches, clients */
const VERSION = "__VERSION__";
const SHELL = __SHELL__;
const CACHE = `natter-shell-${VERSION}`;
const NEVER = [/^\/v1\//, /^\/healthz$/, /^\/readyz$/, /^\/metrics$/, /^\/openapi\.json$/, /^\/asyncapi\.json$/, /^\/docs/];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      // The page itself must be cached; a file that fails alone is fetched when asked.
      .then((cache) => cache.add("/").then(() => Promise.all(SHELL.map((file) => cache.add(file).catch(() => undefined)))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((name) => name.startsWith("natter-shell-") && name !== CACHE).map((name) => caches.delete(name))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || NEVER.some((pattern) => pattern.test(url.pathname))) return;
  if (request.mode === "navigate") {
    event.respondWith(
      fetch(request).catch(async () => {
        const cache = await caches.open(CACHE);
        return (await cache.match(url.pathname, { ignoreSearch: true })) ?? (await cache.match("/"));
      }),
    );
    return;
  }
  event.respondWith(
    caches.open(CACHE).then(async (cache) => (await cache.match(request, { ignoreSearch: true })) ?? fetch(request)),
  );
});

/** The notification a push shows: who or which group, and what, as far as allowed. */
function notification(push) {
  const count = push.count ?? 1;
  const many = count > 1 ? `${count} new messages` : "New message";
  const what = push.text ?? (push.attachment ? { image: "📷 Photo", video: "🎥 Video", voice: "🎤 Voice message", document: "📄 Document", location: "📍 Location", contact: "👤 Contact" }[push.attachment] ?? many : many);
  const title = push.chat_kind === "group" ? (push.chat_name ?? "Natter") : (push.sender_name ?? "Natter");
  const body = push.chat_kind === "group" && push.sender_name ? `${push.sender_name}: ${what}` : what;
  return {
    title,
    options: {
      body: count > 1 && push.text ? `${body} (${count} new)` : body,
      tag: `chat-${push.chat_id}`,
      renotify: true,
      icon: "/icons/icon-192.png",
      badge: "/icons/icon-192.png",
      data: { chatId: push.chat_id, sequence: push.sequence },
    },
  };
}

self.addEventListener("push", (event) => {
  let push;
  try {
    push = event.data ? event.data.json() : null;
  } catch {
    push = null;
  }
  if (!push || push.type !== "messages") return;
  const { title, options } = notification(push);
  event.waitUntil(self.registration.showNotification(title, options));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const chatId = event.notification.data && event.notification.data.chatId;
  const path = chatId ? `/chats/${chatId}` : "/";
  event.waitUntil(
    clients.matchAll({ type: "window", includeUncontrolled: true }).then(async (windows) => {
      const open = windows.find((client) => new URL(client.url).origin === self.location.origin);
      if (open) {
        await open.focus();
        open.postMessage({ type: "open-chat", path });
        return;
      }
      await clients.openWindow(path);
    }),
  );
});
