// Sessions in the browser. The access token is kept in memory only; the refresh token is
// an HttpOnly cookie the page cannot read (the API's cookie transport), so a reload
// signs in again silently by refreshing, and a refresh is scheduled before expiry.
import { api, ApiProblem, call, handleUnauthorized, setAccessToken } from "@/api/client";

export interface Session {
  userId: string;
  sessionId: string;
  accessToken: string;
  expiresAt: number;
}

const COOKIE_TRANSPORT = { "Natter-Token-Transport": "cookie" } as const;
const CSRF = { "Natter-CSRF": "1" } as const;

type Listener = (session: Session | null) => void;

let session: Session | null = null;
/** Moves on at every sign-out, so a refresh that was in flight does not sign back in. */
let generation = 0;
let refreshTimer: ReturnType<typeof setTimeout> | undefined;
let refreshing: Promise<Session | null> | null = null;
const listeners = new Set<Listener>();

export function currentSession(): Session | null {
  return session;
}

export function onSessionChange(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

interface Tokens {
  access_token: string;
  expires_in: number;
  session_id: string;
  user_id: string;
}

function adopt(tokens: Tokens | null): Session | null {
  clearTimeout(refreshTimer);
  session = tokens && {
    userId: tokens.user_id,
    sessionId: tokens.session_id,
    accessToken: tokens.access_token,
    expiresAt: Date.now() + tokens.expires_in * 1000,
  };
  setAccessToken(session?.accessToken ?? null);
  if (tokens) {
    // Refresh at four fifths of the lifetime, so a slow network still has time.
    const delay = Math.max(5_000, tokens.expires_in * 800);
    refreshTimer = setTimeout(refreshOnSchedule, delay);
  }
  for (const listener of listeners) listener(session);
  return session;
}

export async function signIn(handle: string, password: string): Promise<Session> {
  const tokens = await call(() =>
    api.POST("/v1/sessions", {
      body: { handle, password, device_name: deviceName() },
      headers: COOKIE_TRANSPORT,
    }),
  );
  return adopt(tokens) as Session;
}

export async function register(handle: string, displayName: string, password: string): Promise<Session> {
  await call(() => api.POST("/v1/users", { body: { handle, display_name: displayName, password } }));
  return signIn(handle, password);
}

/** A scheduled refresh that fails (the network is down) is tried again shortly. */
function refreshOnSchedule(): void {
  refresh().catch(() => {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refreshOnSchedule, 10_000);
  });
}

/**
 * Exchanges the refresh cookie for a new access token. Two tabs refreshing at once get
 * 409 `refresh_race` for the loser, whose retry then carries the winner's new cookie.
 * Resolves to null when there is no session to restore.
 */
export function refresh(): Promise<Session | null> {
  refreshing ??= (async () => {
    const started = generation;
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          const tokens = await call(() =>
            api.POST("/v1/sessions/refresh", { headers: { ...COOKIE_TRANSPORT, ...CSRF } }),
          );
          // Signed out meanwhile: the answer is for a session the user ended.
          if (generation !== started) return null;
          return adopt(tokens);
        } catch (error) {
          if (error instanceof ApiProblem && error.retryable && attempt < 5) {
            await new Promise((resolve) => setTimeout(resolve, 300 * 2 ** attempt));
            continue;
          }
          if (error instanceof ApiProblem && (error.status === 401 || error.status === 403)) {
            return generation === started ? adopt(null) : null;
          }
          throw error;
        }
      }
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

/**
 * Signs out. Until the server has ended the session (and removed the cookie), the user
 * stays signed in here: a failure is thrown, never hidden by a local sign-out that a
 * reload would undo. A session the server already ended is forgotten.
 */
export async function signOut(): Promise<void> {
  await endOnServer(() => call(() => api.DELETE("/v1/sessions/current")));
}

/** Ends every session of this account, this one included. */
export async function signOutEverywhere(): Promise<void> {
  await endOnServer(() => call(() => api.DELETE("/v1/sessions")));
}

async function endOnServer(request: () => Promise<unknown>): Promise<void> {
  try {
    await request();
  } catch (error) {
    if (!(error instanceof ApiProblem && error.status === 401)) throw error;
  }
  forget();
}

/** The session ended on the server (revoked elsewhere): forget it here. */
export function forget(): void {
  generation++;
  adopt(null);
}

function deviceName(): string {
  const agent = navigator.userAgent;
  const browser = /Edg\//.test(agent) ? "Edge" : /Firefox\//.test(agent) ? "Firefox" : /Chrom/.test(agent) ? "Chrome" : /Safari\//.test(agent) ? "Safari" : "Browser";
  const system = /Android/.test(agent) ? "Android" : /iPhone|iPad/.test(agent) ? "iOS" : /Mac OS/.test(agent) ? "macOS" : /Windows/.test(agent) ? "Windows" : /Linux/.test(agent) ? "Linux" : "";
  return `${browser}${system ? ` on ${system}` : ""}`.slice(0, 64);
}

// A 401 on any call: an expired token is refreshed (and the call retried); a session
// that ended elsewhere is forgotten, which shows the sign-in screen.
handleUnauthorized(async (problem) => {
  if (problem.code === "token_expired") {
    return (await refresh().catch(() => null)) !== null;
  }
  if (problem.code === "session_ended" || problem.code === "invalid_token") forget();
  return false;
});
