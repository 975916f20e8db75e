// Media for the app: items' details, their bytes as blob: URLs (media answers only to a
// bearer token, which an <img src> cannot carry), and uploads with progress. Files of
// up to 16 MiB go in one request; larger ones through the resumable (tus) endpoint, in
// parts, going on from the server's offset after a dropped connection.
import { api, call, currentAccessToken, type Schemas } from "@/api/client";

export type MediaItem = Schemas["MediaItem"];
export type Kind = "image" | "voice" | "video" | "document";

/** The largest file sent in one request; larger ones are resumable uploads. */
const SINGLE_REQUEST = 16 * 1024 * 1024;
/** The bytes of one resumable part. */
const PART = 4 * 1024 * 1024;

/** The kind a file is sent as, by its type. */
export function kindOf(file: File): Kind {
  if (file.type.startsWith("image/") && file.type !== "image/svg+xml") return "image";
  if (file.type.startsWith("video/")) return "video";
  if (file.type.startsWith("audio/")) return "voice";
  return "document";
}

const details = new Map<string, Promise<MediaItem>>();

/**
 * Tries `ask` again a few times over about six seconds while it fails: a message's
 * item is visible to its members once the read models have the message, which a live
 * event can come before.
 */
async function patiently<T>(ask: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await ask();
    } catch (error) {
      if (attempt >= 5) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200 * 2 ** attempt));
    }
  }
}

/** An item's details, asked once per page. */
export function mediaItem(mediaId: string): Promise<MediaItem> {
  let held = details.get(mediaId);
  if (!held) {
    held = patiently(() => call(() => api.GET("/v1/media/{media_id}", { params: { path: { media_id: mediaId } } })));
    held.catch(() => details.delete(mediaId));
    details.set(mediaId, held);
  }
  return held;
}

/** Bytes by media path, with their blob: URL, the newest last; the oldest are let go past
 * the limit. */
const blobs = new Map<string, Promise<{ blob: Blob; url: string }>>();
const BLOBS_KEPT = 200;

function mediaBytes(mediaId: string, part: "thumbnail" | "content", patient = true): Promise<{ blob: Blob; url: string }> {
  const path = `/v1/media/${mediaId}/${part}`;
  let held = blobs.get(path);
  if (!held) {
    const fetchOnce = async () => {
      const response = await fetch(path, { headers: { authorization: `Bearer ${currentAccessToken() ?? ""}` } });
      if (!response.ok) throw new Error(`${path}: ${response.status}`);
      const blob = await response.blob();
      return { blob, url: URL.createObjectURL(blob) };
    };
    held = patient ? patiently(fetchOnce) : fetchOnce();
    held.catch(() => blobs.delete(path));
    blobs.set(path, held);
    if (blobs.size > BLOBS_KEPT) {
      const [oldest, bytes] = blobs.entries().next().value as [string, Promise<{ blob: Blob; url: string }>];
      blobs.delete(oldest);
      void bytes.then(({ url }) => URL.revokeObjectURL(url)).catch(() => undefined);
    }
  }
  return held;
}

/**
 * `/v1/media/{id}/thumbnail` or `/content` as a blob: URL for this page. `patient`: asked
 * again for a few seconds while it fails (see `patiently`).
 */
export async function mediaUrl(mediaId: string, part: "thumbnail" | "content", patient = true): Promise<string> {
  return (await mediaBytes(mediaId, part, patient)).url;
}

/** An item's bytes (read once per page, as `mediaUrl` reads them). */
export async function mediaBlob(mediaId: string): Promise<Blob> {
  return (await mediaBytes(mediaId, "content")).blob;
}

/** Saves an item under its name, as a download. */
export async function download(mediaId: string, name: string): Promise<void> {
  const url = await mediaUrl(mediaId, "content");
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
}

export class UploadError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

interface Sent {
  status: number;
  body: string;
  header: (name: string) => string | null;
}

/** One request with upload progress (fetch reports none), bearer-authenticated. */
function request(method: string, url: string, headers: Record<string, string>, body: Blob | null, onProgress: (loaded: number) => void, signal: AbortSignal): Promise<Sent> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    xhr.setRequestHeader("authorization", `Bearer ${currentAccessToken() ?? ""}`);
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => onProgress(event.loaded);
    xhr.onload = () => resolve({ status: xhr.status, body: xhr.responseText, header: (name) => xhr.getResponseHeader(name) });
    xhr.onerror = () => reject(new UploadError(0, "network", "no connection to the server"));
    xhr.onabort = () => reject(new DOMException("cancelled", "AbortError"));
    signal.addEventListener("abort", () => xhr.abort(), { once: true });
    xhr.send(body);
  });
}

function refused(sent: Sent): UploadError {
  try {
    const problem = JSON.parse(sent.body) as { code?: string; detail?: string };
    return new UploadError(sent.status, problem.code ?? "upload_failed", problem.detail ?? `the upload failed (${sent.status})`);
  } catch {
    return new UploadError(sent.status, "upload_failed", `the upload failed (${sent.status})`);
  }
}

async function waitForNetwork(attempt: number, signal: AbortSignal): Promise<void> {
  if (!navigator.onLine) await new Promise((resolve) => window.addEventListener("online", resolve, { once: true }));
  const delay = Math.min(10_000, 500 * 2 ** attempt);
  await new Promise((resolve) => setTimeout(resolve, delay));
  if (signal.aborted) throw new DOMException("cancelled", "AbortError");
}

/** Uploads `file` as `kind`; `onProgress` gets the share sent (0 to 1). */
export async function upload(file: File, kind: Kind, onProgress: (share: number) => void, signal: AbortSignal): Promise<MediaItem> {
  const query = new URLSearchParams({ kind, name: file.name.slice(0, 255) || "file" });
  if (file.size <= SINGLE_REQUEST) {
    const sent = await request("POST", `/v1/media?${query}`, { "content-type": "application/octet-stream" }, file, (loaded) => onProgress(loaded / Math.max(1, file.size)), signal);
    if (sent.status !== 200 && sent.status !== 201) throw refused(sent);
    return JSON.parse(sent.body) as MediaItem;
  }
  return resumable(file, query, onProgress, signal);
}

async function resumable(file: File, query: URLSearchParams, onProgress: (share: number) => void, signal: AbortSignal): Promise<MediaItem> {
  const tus = { "tus-resumable": "1.0.0" };
  const created = await request("POST", `/v1/media/uploads?${query}`, { ...tus, "upload-length": String(file.size) }, null, () => undefined, signal);
  if (created.status !== 201) throw refused(created);
  const location = created.header("location");
  if (!location) throw new UploadError(created.status, "upload_failed", "the server named no upload");
  signal.addEventListener("abort", () => void fetch(location, { method: "DELETE", headers: { ...tus, authorization: `Bearer ${currentAccessToken() ?? ""}` } }).catch(() => undefined), { once: true });
  let offset = 0;
  let mediaId: string | null = null;
  for (let attempt = 0; mediaId === null; ) {
    try {
      const part = file.slice(offset, Math.min(file.size, offset + PART));
      const sent = await request("PATCH", location, { ...tus, "upload-offset": String(offset), "content-type": "application/offset+octet-stream" }, part, (loaded) => onProgress((offset + loaded) / file.size), signal);
      if (sent.status === 409) {
        offset = Number(sent.header("upload-offset") ?? offset);
      } else if (sent.status !== 204) {
        throw refused(sent);
      } else {
        offset = Number(sent.header("upload-offset") ?? offset + part.size);
        mediaId = sent.header("natter-media-id");
        attempt = 0;
      }
    } catch (error) {
      if (!(error instanceof UploadError) || (error.status !== 0 && error.status < 500)) throw error;
      // The connection dropped: what arrived is kept; go on from the server's offset.
      await waitForNetwork(attempt++, signal);
      const head = await request("HEAD", location, tus, null, () => undefined, signal).catch(() => null);
      if (head?.status === 200) {
        offset = Number(head.header("upload-offset") ?? offset);
        mediaId = head.header("natter-media-id");
      }
    }
    onProgress(offset / file.size);
  }
  return mediaItem(mediaId);
}
