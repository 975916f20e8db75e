"use client";
// What a message carries, in its bubble: an image (its blurred placeholder at once,
// then its thumbnail; a click opens the viewer), a video, a voice note with its
// player, a document to download under its name, a place, or a contact card. While
// this device's file goes up, its preview and the upload's progress.
import { lazy, Suspense, useEffect, useState } from "react";
import { Icon } from "@/components/Icon";
import type { Attachment, Msg } from "@/features/chat/timeline";
import { download, mediaItem, type MediaItem, mediaUrl } from "./media";

const Viewer = lazy(() => import("./Viewer"));

export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export function formatDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}

function useItem(mediaId: string | null): MediaItem | null {
  const [item, setItem] = useState<MediaItem | null>(null);
  useEffect(() => {
    if (!mediaId) return;
    let live = true;
    void mediaItem(mediaId)
      .then((found) => live && setItem(found))
      .catch(() => undefined);
    return () => {
      live = false;
    };
  }, [mediaId]);
  return item;
}

function useBlob(mediaId: string | null, part: "thumbnail" | "content", wanted = true): string | null {
  const [url, setUrl] = useState<string | null>(null);
  useEffect(() => {
    if (!mediaId || !wanted) return;
    let live = true;
    void mediaUrl(mediaId, part)
      .then((found) => live && setUrl(found))
      .catch(() => undefined);
    return () => {
      live = false;
    };
  }, [mediaId, part, wanted]);
  return url;
}

export function MessageAttachment({ chatId, message, onCancel }: { chatId: string; message: Msg; onCancel: () => void }) {
  const attachment = message.attachment;
  if (message.upload && !(attachment && message.sequence !== null)) {
    return <Uploading message={message} onCancel={onCancel} />;
  }
  if (!attachment) return null;
  return <StoredAttachment chatId={chatId} attachment={attachment} />;
}

function Uploading({ message, onCancel }: { message: Msg; onCancel: () => void }) {
  const upload = message.upload;
  if (!upload) return null;
  const percent = Math.round(upload.progress * 100);
  const sending = message.status === "pending" && upload.progress < 1;
  return (
    <div className="mb-1 w-64 max-w-full">
      {upload.previewUrl && upload.kind === "image" ? (
        // eslint-disable-next-line @next/next/no-img-element
        <img src={upload.previewUrl} alt={upload.name} className="max-h-64 w-full rounded-md object-cover" />
      ) : (
        <FileCard name={upload.name} detail={formatSize(upload.size)} />
      )}
      {sending && (
        <div className="mt-1 flex items-center gap-2">
          <div role="progressbar" aria-label={`Uploading ${upload.name}`} aria-valuemin={0} aria-valuemax={100} aria-valuenow={percent} className="h-1.5 flex-1 overflow-hidden rounded-full bg-black/10 dark:bg-white/20">
            <div className="h-full bg-brand-600" style={{ width: `${percent}%` }} />
          </div>
          <button type="button" onClick={onCancel} className="text-xs font-semibold underline">
            Cancel
          </button>
        </div>
      )}
    </div>
  );
}

function FileCard({ name, detail, action }: { name: string; detail: string; action?: React.ReactNode }) {
  return (
    <div className="flex items-center gap-3 rounded-md bg-black/5 p-2 dark:bg-white/10">
      <span aria-hidden="true" className="text-2xl">
        📄
      </span>
      <span className="min-w-0 flex-1">
        <span className="block truncate text-sm font-medium">{name}</span>
        <span className="block text-xs text-gray-600 dark:text-gray-300">{detail}</span>
      </span>
      {action}
    </div>
  );
}

function StoredAttachment({ chatId, attachment }: { chatId: string; attachment: Attachment }) {
  if (attachment.type === "location") {
    const lat = attachment.latitude_e7 / 1e7;
    const lon = attachment.longitude_e7 / 1e7;
    return (
      <a
        className="mb-1 block rounded-md bg-black/5 p-2 text-sm underline dark:bg-white/10"
        href={`https://www.openstreetmap.org/?mlat=${lat}&mlon=${lon}#map=16/${lat}/${lon}`}
        target="_blank"
        rel="noreferrer noopener"
      >
        📍 {attachment.name ? `${attachment.name} ` : ""}({lat.toFixed(5)}, {lon.toFixed(5)})
      </a>
    );
  }
  if (attachment.type === "contact") {
    return (
      <div className="mb-1 rounded-md bg-black/5 p-2 text-sm dark:bg-white/10">
        <p className="font-medium">👤 {attachment.name}</p>
        {attachment.phone && <p className="text-xs">{attachment.phone}</p>}
      </div>
    );
  }
  return <Media chatId={chatId} mediaId={attachment.media_id} kind={attachment.kind} />;
}

function Media({ chatId, mediaId, kind }: { chatId: string; mediaId: string; kind: string }) {
  const item = useItem(mediaId);
  const [viewing, setViewing] = useState(false);
  const thumbnail = useBlob(mediaId, "thumbnail", item?.has_thumbnail ?? false);
  const audio = useBlob(mediaId, "content", kind === "voice");
  const name = item?.file_name ?? (kind === "document" ? "Document" : kind);

  if (kind === "image" || kind === "video") {
    const ratio = item?.width && item.height ? `${item.width} / ${item.height}` : "4 / 3";
    const shown = thumbnail ?? item?.placeholder ?? null;
    return (
      <>
        <button
          type="button"
          onClick={() => setViewing(true)}
          aria-label={kind === "image" ? `Photo${item?.file_name ? ` ${item.file_name}` : ""}: open` : `Video${item?.duration_ms ? ` of ${formatDuration(item.duration_ms)}` : ""}: play`}
          className="relative mb-1 block w-64 max-w-full overflow-hidden rounded-md bg-black/10"
          style={{ aspectRatio: ratio }}
          data-stage={thumbnail ? "thumbnail" : item?.placeholder ? "placeholder" : "loading"}
        >
          {/* eslint-disable-next-line @next/next/no-img-element */}
          {shown && <img src={shown} alt="" className={`h-full w-full object-cover ${thumbnail ? "" : "blur-sm"}`} />}
          {kind === "video" && (
            <span className="absolute inset-0 flex items-center justify-center text-4xl text-white drop-shadow" aria-hidden="true">
              ▶
            </span>
          )}
        </button>
        {viewing && (
          <Suspense fallback={null}>
            <Viewer chatId={chatId} mediaId={mediaId} onClose={() => setViewing(false)} />
          </Suspense>
        )}
      </>
    );
  }
  if (kind === "voice") {
    return (
      <div className="mb-1 flex w-64 max-w-full items-center gap-2" aria-label={`Voice message${item?.duration_ms ? ` of ${formatDuration(item.duration_ms)}` : ""}`} role="group">
        {audio ? <audio controls src={audio} className="h-9 w-full" /> : <span className="text-sm">🎤 …</span>}
        {item?.duration_ms ? <span className="text-xs text-gray-600 dark:text-gray-300">{formatDuration(item.duration_ms)}</span> : null}
      </div>
    );
  }
  const detail = [item ? formatSize(item.size) : null, item?.pages ? `${item.pages} page${item.pages === 1 ? "" : "s"}` : null, item?.content_type.split("/")[1]?.toUpperCase() ?? null]
    .filter(Boolean)
    .join(" · ");
  return (
    <div className="mb-1 w-64 max-w-full">
      <FileCard
        name={name}
        detail={detail}
        action={
          <button type="button" aria-label={`Download ${name}`} onClick={() => void download(mediaId, name)} className="rounded-full p-1.5 hover:bg-black/10 dark:hover:bg-white/10">
            <Icon name="down" />
          </button>
        }
      />
    </div>
  );
}
