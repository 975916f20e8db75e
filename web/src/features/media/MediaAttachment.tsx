"use client";
// What a message carries, in its bubble: an image (its blurred placeholder at once,
// then its thumbnail; a click opens the viewer), a video, a voice note with its
// player, a document to download under its name, a place, or a contact card. While
// this device's file goes up, its preview and the upload's progress.
import { lazy, Suspense, useEffect, useRef, useState } from "react";
import { describeProblem } from "@/api/client";
import { Icon } from "@/components/Icon";
import { notify } from "@/lib/app-state";
import { chatPath, navigate } from "@/lib/router";
import { openDirect } from "@/features/chats/actions";
import type { Attachment, Msg } from "@/features/chat/timeline";
import { useMediaItem, useMediaUrl } from "./hooks";
import { download, mediaBlob } from "./media";

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
        {attachment.user_id && <MessageContact userId={attachment.user_id} name={attachment.name} />}
      </div>
    );
  }
  return <Media chatId={chatId} mediaId={attachment.media_id} kind={attachment.kind} />;
}

function Media({ chatId, mediaId, kind }: { chatId: string; mediaId: string; kind: string }) {
  const item = useMediaItem(mediaId);
  const [viewing, setViewing] = useState(false);
  const audio = useMediaUrl(mediaId, "content", { wanted: kind === "voice" });

  if (kind === "image" || kind === "video") {
    const ratio = item?.width && item.height ? `${item.width} / ${item.height}` : "4 / 3";
    return (
      <>
        <VisualTile
          mediaId={mediaId}
          kind={kind}
          onOpen={() => setViewing(true)}
          className="mb-1 w-64 max-w-full rounded-md"
          style={{ aspectRatio: ratio }}
        />
        {viewing && (
          <Suspense fallback={null}>
            <Viewer chatId={chatId} mediaId={mediaId} onClose={() => setViewing(false)} />
          </Suspense>
        )}
      </>
    );
  }
  if (kind === "voice") {
    return <VoicePlayer mediaId={mediaId} url={audio} durationMs={item?.duration_ms ?? null} />;
  }
  return (
    <div className="mb-1 w-64 max-w-full">
      <DocumentCard mediaId={mediaId} />
    </div>
  );
}

/**
 * A photo or video as a button that opens it: its blurred placeholder, then its
 * thumbnail (`data-stage` says which), with a play mark on a video. The chat and the
 * gallery size and shape it.
 */
export function VisualTile({
  mediaId,
  kind,
  onOpen,
  className,
  style,
}: {
  mediaId: string;
  kind: string;
  onOpen: () => void;
  className: string;
  style?: React.CSSProperties;
}) {
  const item = useMediaItem(mediaId);
  const thumbnail = useMediaUrl(mediaId, "thumbnail", { wanted: item?.has_thumbnail ?? false });
  const shown = thumbnail ?? item?.placeholder ?? null;
  return (
    <button
      type="button"
      onClick={onOpen}
      aria-label={kind === "image" ? `Photo${item?.file_name ? ` ${item.file_name}` : ""}: open` : `Video${item?.duration_ms ? ` of ${formatDuration(item.duration_ms)}` : ""}: play`}
      className={`relative block overflow-hidden bg-black/10 ${className}`}
      style={style}
      data-stage={thumbnail ? "thumbnail" : item?.placeholder ? "placeholder" : "loading"}
    >
      {/* eslint-disable-next-line @next/next/no-img-element */}
      {shown && <img src={shown} alt="" className={`h-full w-full object-cover ${thumbnail ? "" : "blur-sm"}`} />}
      {kind === "video" && (
        <span className="absolute inset-0 flex items-center justify-center text-3xl text-white drop-shadow" aria-hidden="true">
          ▶
        </span>
      )}
    </button>
  );
}

/** A document: its name, size, pages and type, and a download under its name. */
export function DocumentCard({ mediaId }: { mediaId: string }) {
  const item = useMediaItem(mediaId);
  const name = item?.file_name ?? "Document";
  const detail = [item ? formatSize(item.size) : null, item?.pages ? `${item.pages} page${item.pages === 1 ? "" : "s"}` : null, item?.content_type.split("/")[1]?.toUpperCase() ?? null]
    .filter(Boolean)
    .join(" · ");
  return (
    <FileCard
      name={name}
      detail={detail}
      action={
        <button type="button" aria-label={`Download ${name}`} onClick={() => void download(mediaId, name)} className="rounded-full p-1.5 hover:bg-black/10 dark:hover:bg-white/10">
          <Icon name="down" />
        </button>
      }
    />
  );
}

const BARS = 36;

/** The loudness of an item's sound in `BARS` slices, 0 to 1. */
async function waveform(mediaId: string): Promise<number[]> {
  const bytes = await (await mediaBlob(mediaId)).arrayBuffer();
  const context = new AudioContext();
  try {
    const samples = (await context.decodeAudioData(bytes)).getChannelData(0);
    const slice = Math.max(1, Math.floor(samples.length / BARS));
    const levels = Array.from({ length: BARS }, (_, bar) => {
      let sum = 0;
      for (let i = bar * slice; i < Math.min(samples.length, (bar + 1) * slice); i++) sum += (samples[i] ?? 0) ** 2;
      return Math.sqrt(sum / slice);
    });
    const loudest = Math.max(...levels, 1e-6);
    return levels.map((level) => level / loudest);
  } finally {
    void context.close();
  }
}

/** A voice note: play and pause, its waveform filling as it plays, its duration. */
function VoicePlayer({ mediaId, url, durationMs }: { mediaId: string; url: string | null; durationMs: number | null }) {
  const audio = useRef<HTMLAudioElement>(null);
  const [playing, setPlaying] = useState(false);
  const [played, setPlayed] = useState(0);
  const [levels, setLevels] = useState<number[]>([]);
  useEffect(() => {
    if (!url) return;
    let live = true;
    void waveform(mediaId)
      .then((found) => live && setLevels(found))
      .catch(() => undefined);
    return () => {
      live = false;
    };
  }, [mediaId, url]);
  const duration = durationMs ? formatDuration(durationMs) : null;
  return (
    <div className="mb-1 flex w-64 max-w-full items-center gap-2" role="group" aria-label={`Voice message${duration ? ` of ${duration}` : ""}`}>
      {url && (
        <audio
          ref={audio}
          src={url}
          preload="metadata"
          data-testid="voice-audio"
          onPlay={() => setPlaying(true)}
          onPause={() => setPlaying(false)}
          onEnded={() => (setPlaying(false), setPlayed(0))}
          onTimeUpdate={(event) => {
            const element = event.currentTarget;
            const total = durationMs ? durationMs / 1000 : element.duration;
            if (total > 0 && Number.isFinite(total)) setPlayed(Math.min(1, element.currentTime / total));
          }}
        />
      )}
      <button
        type="button"
        disabled={!url}
        aria-label={playing ? "Pause voice message" : "Play voice message"}
        onClick={() => (playing ? audio.current?.pause() : void audio.current?.play())}
        className="inline-flex h-9 w-9 shrink-0 items-center justify-center rounded-full bg-brand-700 text-white disabled:opacity-50"
      >
        <span aria-hidden="true">{playing ? "❚❚" : "▶"}</span>
      </button>
      <span aria-hidden="true" className="flex h-8 flex-1 items-center gap-px">
        {(levels.length ? levels : Array.from({ length: BARS }, () => 0.15)).map((level, i) => (
          <span key={i} className={`w-1 rounded-full ${i / BARS < played ? "bg-brand-700 dark:bg-brand-500" : "bg-gray-400 dark:bg-gray-500"}`} style={{ height: `${Math.max(12, level * 100)}%` }} />
        ))}
      </span>
      {duration && <span className="text-xs text-gray-600 tabular-nums dark:text-gray-300">{duration}</span>}
    </div>
  );
}

/** Opens (or starts) a direct chat with a contact card's Natter user. */
function MessageContact({ userId, name }: { userId: string; name: string }) {
  const [busy, setBusy] = useState(false);
  return (
    <button
      type="button"
      disabled={busy}
      className="mt-1 text-xs font-semibold text-brand-700 underline dark:text-brand-500"
      onClick={() => {
        setBusy(true);
        void openDirect(userId)
          .then((chatId) => navigate(chatPath(chatId)))
          .catch((error: unknown) => notify(describeProblem(error)))
          .finally(() => setBusy(false));
      }}
    >
      Message {name}
    </button>
  );
}
