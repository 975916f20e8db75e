// The one owner of the WebSocket (`/v1/ws`, docs/realtime.md). It keeps the cursor (the
// last stream sequence applied, persisted in IndexedDB per user), resumes from it after
// any disconnect so nothing is missed or applied twice, reconnects with backoff, and
// publishes its connection state. Screens never touch the socket.
import { currentAccessToken } from "@/api/client";
import { currentSession, refresh } from "./auth";
import { store, type ConnectionState } from "./app-state";
import { kvGet, kvSet } from "./idb";

export interface EventEnvelope {
  event_id: string;
  event_type: string;
  schema_version: number;
  aggregate_type: string;
  aggregate_id: string;
  actor: string | null;
  occurred_at: string;
  payload: Record<string, unknown>;
}

export interface EventFrame {
  type: "event";
  seq: number;
  chat_id: string;
  event: EventEnvelope;
}

export type ServerFrame =
  | { type: "hello"; connection_id: number; user_id: string; heartbeat_secs: number }
  | EventFrame
  | { type: "ready"; cursor: number }
  | { type: "typing"; chat_id: string; user_id: string; state: "start" | "stop"; expires_in_ms: number }
  | { type: "presence"; user_id: string; online: boolean; last_seen_at: string | null }
  | { type: "pong"; id: string }
  | { type: "error"; code: string; detail: string; fatal: boolean };

export type ClientFrame =
  | { type: "resume"; cursor: number | null }
  | { type: "typing"; chat_id: string; state: "start" | "stop" }
  | { type: "delivered"; chat_id: string; up_to: number }
  | { type: "read"; chat_id: string; up_to: number }
  | { type: "presence_subscribe"; user_ids: string[] }
  | { type: "ping"; id: string }
  | { type: "auth"; token: string };

export interface RealtimeHandlers {
  /** A stored event, in stream order, each once. */
  event(frame: EventFrame): void;
  /** Everything up to the cursor has been applied; what follows is live. */
  ready(cursor: number): void;
  /**
   * The cursor could not be resumed (too old, or past the log's end): what is held may
   * be stale or missing. Reload state over REST as of `cursor`, the new starting point.
   */
  resync(cursor: number): Promise<void>;
  typing(frame: Extract<ServerFrame, { type: "typing" }>): void;
  presence(frame: Extract<ServerFrame, { type: "presence" }>): void;
  /** The session is over (revoked elsewhere): sign out. */
  sessionEnded(): void;
  /** The token expired: get a fresh one (resolves when there is one). */
  tokenExpired(): Promise<void>;
}

const PING_EVERY_MS = 20_000;
const PONG_WITHIN_MS = 10_000;

export class Realtime {
  private socket: WebSocket | null = null;
  private userId: string | null = null;
  private cursor: number | null = null;
  private handlers: RealtimeHandlers | null = null;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private pongTimer: ReturnType<typeof setTimeout> | undefined;
  private persistTimer: ReturnType<typeof setTimeout> | undefined;
  private resumed = false;
  private stopped = true;
  private resyncOnReady = false;
  private watched = new Set<string>();

  /** Starts (or restarts) for a user, resuming from their stored cursor. */
  async start(userId: string, handlers: RealtimeHandlers): Promise<void> {
    this.stop();
    this.stopped = false;
    this.userId = userId;
    this.handlers = handlers;
    this.cursor = (await kvGet<number>(this.cursorKey()).catch(() => undefined)) ?? null;
    window.addEventListener("online", this.onOnline);
    window.addEventListener("offline", this.onOffline);
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    window.removeEventListener("online", this.onOnline);
    window.removeEventListener("offline", this.onOffline);
    clearTimeout(this.retryTimer);
    this.closeSocket();
    this.watched.clear();
    this.flushCursor();
  }

  /** Sends a frame if the connection is live; false if it could not be sent. */
  send(frame: ClientFrame): boolean {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN || !this.resumed) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  /** Presence of these users now and on every change, on this and later connections. */
  watchPresence(userIds: string[]): void {
    const fresh = userIds.filter((id) => !this.watched.has(id)).slice(0, 256 - this.watched.size);
    if (fresh.length === 0) return;
    for (const id of fresh) this.watched.add(id);
    for (let i = 0; i < fresh.length; i += 64) this.send({ type: "presence_subscribe", user_ids: fresh.slice(i, i + 64) });
  }

  /** A fresh access token for the open connection, so it is not closed at expiry. */
  renewToken(token: string): void {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify({ type: "auth", token }));
  }

  /** The last stream sequence applied: a consistency token for REST reads. */
  position(): number | undefined {
    return this.cursor ?? undefined;
  }

  /** Forgets the cursor: the next connection starts from now. */
  async resetCursor(): Promise<void> {
    this.cursor = null;
    await kvSet(this.cursorKey(), null).catch(() => undefined);
  }

  private cursorKey(): string {
    return `cursor:${this.userId ?? ""}`;
  }

  private setState(connection: ConnectionState): void {
    store.set((s) => (s.connection === connection ? s : { ...s, connection }));
  }

  private connect(): void {
    void this.connectFresh();
  }

  /** Connects with a token that will not expire in the handshake's face. */
  private async connectFresh(): Promise<void> {
    const session = currentSession();
    if (session && session.expiresAt - Date.now() < 30_000) await refresh().catch(() => null);
    const token = currentAccessToken();
    if (this.stopped || !token || this.socket) return;
    if (typeof navigator !== "undefined" && !navigator.onLine) {
      this.setState("offline");
      return;
    }
    this.setState(this.attempt === 0 ? "connecting" : "reconnecting");
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${window.location.host}/v1/ws?access_token=${encodeURIComponent(token)}`);
    this.socket = socket;
    this.resumed = false;
    socket.onmessage = (message) => {
      if (this.socket !== socket || typeof message.data !== "string") return;
      this.receive(socket, JSON.parse(message.data) as ServerFrame);
    };
    socket.onclose = (close) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.stopHeartbeat();
      void this.closed(close.code);
    };
  }

  private receive(socket: WebSocket, frame: ServerFrame): void {
    this.armPong();
    switch (frame.type) {
      case "hello":
        socket.send(JSON.stringify({ type: "resume", cursor: this.cursor }));
        this.startHeartbeat(socket);
        break;
      case "event":
        // The gateway sends each event once; a client that applied it anyway skips it.
        if (this.cursor !== null && frame.seq <= this.cursor) return;
        this.handlers?.event(frame);
        this.advance(frame.seq);
        break;
      case "ready": {
        this.resumed = true;
        this.attempt = 0;
        if (this.cursor === null || frame.cursor > this.cursor) this.advance(frame.cursor);
        this.setState("live");
        const watched = [...this.watched];
        for (let i = 0; i < watched.length; i += 64) this.send({ type: "presence_subscribe", user_ids: watched.slice(i, i + 64) });
        if (this.resyncOnReady) {
          this.resyncOnReady = false;
          void this.handlers?.resync(frame.cursor).catch(() => undefined);
        }
        this.handlers?.ready(frame.cursor);
        break;
      }
      case "typing":
        this.handlers?.typing(frame);
        break;
      case "presence":
        this.handlers?.presence(frame);
        break;
      case "pong":
        break;
      case "error":
        // Fatal errors are followed by a close frame, handled in `closed`.
        break;
    }
  }

  private async closed(code: number): Promise<void> {
    if (this.stopped) return;
    switch (code) {
      case 4001:
        this.handlers?.sessionEnded();
        return;
      case 4002:
        await this.handlers?.tokenExpired().catch(() => undefined);
        this.connect();
        return;
      case 4010:
      case 4011:
        // Resume from now, then reload over REST as of the new cursor: no gap between.
        await this.resetCursor();
        this.resyncOnReady = true;
        this.connect();
        return;
      default:
        if (typeof navigator !== "undefined" && !navigator.onLine) {
          this.setState("offline");
          return;
        }
        this.scheduleReconnect();
    }
  }

  private scheduleReconnect(): void {
    clearTimeout(this.retryTimer);
    this.setState("reconnecting");
    const delay = Math.min(15_000, 500 * 2 ** this.attempt) * (0.5 + Math.random() / 2);
    this.attempt++;
    this.retryTimer = setTimeout(() => {
      // A token refreshed while we waited is the one to use; an expired one gets 401.
      this.connect();
    }, delay);
  }

  private onOnline = (): void => {
    this.attempt = 0;
    clearTimeout(this.retryTimer);
    if (!this.socket) this.connect();
  };

  private onOffline = (): void => {
    // Closing at once makes the resume explicit: whatever comes while offline is
    // replayed from the cursor when the network is back.
    this.closeSocket();
    this.setState("offline");
  };

  private closeSocket(): void {
    this.stopHeartbeat();
    const socket = this.socket;
    this.socket = null;
    this.resumed = false;
    if (socket && socket.readyState <= WebSocket.OPEN) socket.close(1000);
  }

  private startHeartbeat(socket: WebSocket): void {
    this.stopHeartbeat();
    this.pingTimer = setInterval(() => {
      if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "ping", id: String(Date.now()) }));
    }, PING_EVERY_MS);
    this.armPong();
  }

  /** Anything from the server proves the connection; silence after a ping does not. */
  private armPong(): void {
    clearTimeout(this.pongTimer);
    if (!this.pingTimer) return;
    this.pongTimer = setTimeout(() => {
      const socket = this.socket;
      if (!socket) return;
      this.socket = null;
      this.stopHeartbeat();
      socket.close(4000);
      this.scheduleReconnect();
    }, PING_EVERY_MS + PONG_WITHIN_MS);
  }

  private stopHeartbeat(): void {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    this.pingTimer = undefined;
  }

  private advance(sequence: number): void {
    this.cursor = sequence;
    clearTimeout(this.persistTimer);
    this.persistTimer = setTimeout(() => this.flushCursor(), 250);
  }

  private flushCursor(): void {
    clearTimeout(this.persistTimer);
    if (this.userId && this.cursor !== null) void kvSet(this.cursorKey(), this.cursor).catch(() => undefined);
  }
}

export const realtime = new Realtime();
