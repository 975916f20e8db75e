// Notifications for this browser: Web Push through the service worker. Permission is
// asked only when the user turns notifications on (never on first load); the
// subscription is the session's (PUT /v1/sessions/current/push) and ends with it.
import { api, ApiProblem, call } from "@/api/client";

export type PushState =
  /** The browser has no service worker or push, or the page is not secure. */
  | "unsupported"
  /** The server sends no pushes (no VAPID key). */
  | "unavailable"
  /** The user refused permission: only the browser's settings can change that. */
  | "blocked"
  | "off"
  | "on";

function supported(): boolean {
  return typeof window !== "undefined" && window.isSecureContext && "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

async function registration(): Promise<ServiceWorkerRegistration | null> {
  if (!supported()) return null;
  return (await navigator.serviceWorker.getRegistration()) ?? null;
}

export async function pushState(): Promise<PushState> {
  const worker = await registration();
  if (!worker) return "unsupported";
  if (Notification.permission === "denied") return "blocked";
  return (await worker.pushManager.getSubscription()) ? "on" : "off";
}

function keyBytes(base64url: string): Uint8Array<ArrayBuffer> {
  const base64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/** Asks for permission, subscribes this browser, and gives the subscription to the server. */
export async function turnOn(previews: boolean): Promise<PushState> {
  const worker = await registration();
  if (!worker) return "unsupported";
  let key: string;
  try {
    key = (await call(() => api.GET("/v1/push/key"))).public_key;
  } catch (error) {
    if (error instanceof ApiProblem && error.code === "push_disabled") return "unavailable";
    throw error;
  }
  if ((await Notification.requestPermission()) !== "granted") {
    return Notification.permission === "denied" ? "blocked" : "off";
  }
  let subscription = await worker.pushManager.getSubscription();
  const sameKey = subscription?.options.applicationServerKey;
  if (subscription && sameKey && btoa(String.fromCharCode(...new Uint8Array(sameKey))) !== btoa(String.fromCharCode(...keyBytes(key)))) {
    await subscription.unsubscribe();
    subscription = null;
  }
  subscription ??= await worker.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(key) });
  const json = subscription.toJSON();
  await call(() =>
    api.PUT("/v1/sessions/current/push", {
      body: {
        endpoint: json.endpoint ?? subscription.endpoint,
        keys: { p256dh: json.keys?.p256dh ?? "", auth: json.keys?.auth ?? "" },
        previews,
      },
    }),
  );
  return "on";
}

export async function turnOff(): Promise<PushState> {
  await call(() => api.DELETE("/v1/sessions/current/push"));
  const worker = await registration();
  await (await worker?.pushManager.getSubscription())?.unsubscribe();
  return "off";
}
