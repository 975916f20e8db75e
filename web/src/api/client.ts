// The one typed API client, generated from docs/openapi.json (`npm run api:generate`).
// Every request carries the in-memory access token; problems become `ApiProblem`s.
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema";
import { noteServerDate } from "@/lib/ids";

export type Schemas = components["schemas"];
export type ChatSummary = Schemas["ChatSummary"];
export type ChatDetails = Schemas["ChatDetails"];
export type Message = Schemas["Message"];
export type OwnProfile = Schemas["OwnProfile"];
export type PublicProfile = Schemas["PublicProfile"];
export type SearchHit = Schemas["SearchHit"];
export type SessionInfo = Schemas["SessionInfo"];
export type PrivacySettings = Schemas["PrivacySettings"];
export type Audience = Schemas["Audience"];

let accessToken: string | null = null;

/** The access token lives here, in memory only. */
export function setAccessToken(token: string | null): void {
  accessToken = token;
}

export function currentAccessToken(): string | null {
  return accessToken;
}

const bearer: Middleware = {
  onRequest({ request }) {
    if (accessToken && !request.headers.has("Authorization")) {
      request.headers.set("Authorization", `Bearer ${accessToken}`);
    }
    return request;
  },
};

export const api = createClient<paths>({ baseUrl: "", credentials: "same-origin" });
api.use(bearer);

/** A problem answer (`application/problem+json`), with its stable code. */
export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    detail: string,
  ) {
    super(detail);
    this.name = "ApiProblem";
  }

  /** Worth retrying unchanged: the server or the network may do better later. */
  get retryable(): boolean {
    return this.status === 0 || this.status >= 500 || this.status === 429 || this.code === "refresh_race";
  }
}

interface ProblemBody {
  code?: unknown;
  detail?: unknown;
  title?: unknown;
}

/** Turns an openapi-fetch result into its data, or throws an ApiProblem. */
export function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.response.ok && result.data !== undefined) {
    return result.data;
  }
  if (result.response.ok) {
    return undefined as T;
  }
  const body = (result.error ?? {}) as ProblemBody;
  const code = typeof body.code === "string" ? body.code : `http_${result.response.status}`;
  const detail = typeof body.detail === "string" ? body.detail : typeof body.title === "string" ? body.title : "";
  throw new ApiProblem(result.response.status, code, detail);
}

type Unauthorized = (problem: ApiProblem) => Promise<boolean>;
let onUnauthorized: Unauthorized = async () => false;

/**
 * What to do with a 401: the session module refreshes an expired token (true: try the
 * request again) or forgets a session that ended (false).
 */
export function handleUnauthorized(handler: Unauthorized): void {
  onUnauthorized = handler;
}

async function attempt<T>(request: () => Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  let result;
  try {
    result = await request();
  } catch {
    throw new ApiProblem(0, "network", "no connection to the server");
  }
  noteServerDate(result.response.headers.get("Date"));
  return unwrap(result);
}

/**
 * Calls the API, turning a network failure into a retryable problem. An access token
 * that expired meanwhile (a laptop asleep) is refreshed once and the call made again.
 */
export async function call<T>(request: () => Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  try {
    return await attempt(request);
  } catch (error) {
    if (error instanceof ApiProblem && error.status === 401 && accessToken && (await onUnauthorized(error))) {
      return attempt(request);
    }
    throw error;
  }
}

const messages: Record<string, string> = {
  network: "Can't reach Natter. Check your connection.",
  invalid_credentials: "Wrong username or password.",
  handle_taken: "That username is taken.",
  already_registered: "That username is taken.",
  invalid_handle: "Usernames are 3 to 32 letters, digits or underscores, starting with a letter.",
  invalid_password: "Choose a password of 8 to 128 characters.",
  invalid_display_name: "Enter a name of up to 64 characters.",
  invalid_about: "The about text is too long.",
  invalid_name: "Enter a group name of up to 100 characters.",
  invalid_description: "The description is too long.",
  invalid_body: "Messages can't be blank or longer than 64 KiB.",
  invalid_body_text: "Messages can't be blank or longer than 64 KiB.",
  invalid_reaction: "That reaction can't be used.",
  rate_limited: "Too many attempts. Wait a minute and try again.",
  unknown_user: "No one has that username.",
  not_found: "Not found.",
  not_admin: "Only group admins can do that.",
  not_author: "Only the sender can do that.",
  not_a_group: "That works in groups only.",
  last_admin: "A group needs an admin: make someone else admin first.",
  cannot_chat_with_self: "That's you.",
  cannot_block_self: "You can't block yourself.",
  cannot_remove_self: "Leave the group instead.",
  edit_window_closed: "Messages can only be edited within 15 minutes.",
  message_deleted: "That message was deleted.",
  reply_not_in_chat: "You can only reply to a message of this chat.",
  client_id_ahead: "This device's clock is ahead of Natter's. Set it right and send again.",
  invite_not_found: "This invite link is not valid any more.",
  too_many_members: "This group is full.",
  too_many_invites: "This group has too many open invite links.",
  too_many_pinned: "Only three messages can be pinned.",
  too_many_mentions: "Too many mentions in one message.",
  too_many_blocked: "You have blocked too many people.",
  session_ended: "You were signed out. Sign in again.",
  invalid_token: "You were signed out. Sign in again.",
  token_expired: "Your sign-in expired. Sign in again.",
  invalid_refresh_token: "Your sign-in expired. Sign in again.",
  refresh_token_reused: "You were signed out for your safety. Sign in again.",
  outcome_unknown: "Not sure it was sent; retrying.",
  csrf_rejected: "The request was refused for your safety. Reload the page.",
  client_id_reused: "That message was already sent with different content.",
};

/** Words for a user, by the problem's code. */
export function describeProblem(error: unknown): string {
  if (error instanceof ApiProblem) {
    return messages[error.code] ?? (error.message || `Something went wrong (${error.code}).`);
  }
  return "Something went wrong.";
}
