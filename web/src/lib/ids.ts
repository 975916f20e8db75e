// Client ids for sends. A UUIDv7 (RFC 9562) begins with the time it was made, which lets
// the server answer a retry from the event log's deduplication without a database
// lookup; it refuses one dated more than 30 s ahead of its own clock. So ids are dated
// by the server's clock, as its `Date` headers tell it, and are random (v4) until the
// app has heard from the server.

let serverOffsetMs: number | null = null;

/**
 * Learns the server's clock from a response's `Date` header (whole seconds: the middle
 * of that second is taken), received when the local clock read `localNow`.
 */
export function noteServerDate(date: string | null, localNow: number = Date.now()): void {
  if (!date) return;
  const server = Date.parse(date);
  if (Number.isNaN(server)) return;
  serverOffsetMs = server + 500 - localNow;
}

/** A new client id: a UUIDv7 on the server's clock once known, else a UUIDv4. */
export function newClientId(localNow: number = Date.now()): string {
  if (serverOffsetMs === null) return crypto.randomUUID();
  return uuidV7(localNow + serverOffsetMs);
}

/** A UUIDv7 made at `millis` since the Unix epoch, with 74 random bits. */
export function uuidV7(millis: number): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  let time = Math.max(0, Math.floor(millis));
  for (let i = 5; i >= 0; i--) {
    bytes[i] = time % 256;
    time = Math.floor(time / 256);
  }
  bytes[6] = 0x70 | ((bytes[6] ?? 0) & 0x0f);
  bytes[8] = 0x80 | ((bytes[8] ?? 0) & 0x3f);
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
