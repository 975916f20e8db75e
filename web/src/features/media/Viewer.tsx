"use client";
// The media viewer, loaded the first time a photo or video is opened: the item at full
// size, the chat's other photos and videos (those of its timeline, or `items` given, as
// the gallery gives its own) a key (← →) or a button away, zoom on a click, and a
// download under the item's name.
import { useEffect, useRef, useState } from "react";
import { useApp } from "@/lib/app-state";
import { download, mediaItem, type MediaItem, mediaUrl } from "./media";

export default function Viewer({ chatId, mediaId, items: given, onClose }: { chatId: string; mediaId: string; items?: string[]; onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const timeline = useApp((s) => s.timelines[chatId]);
  const items =
    given ??
    (timeline?.messages ?? []).flatMap((m) =>
      m.attachment?.type === "media" && (m.attachment.kind === "image" || m.attachment.kind === "video") && !m.deleted ? [m.attachment.media_id] : [],
    );
  const [current, setCurrent] = useState(mediaId);
  const [item, setItem] = useState<MediaItem | null>(null);
  const [url, setUrl] = useState<string | null>(null);
  const [zoomed, setZoomed] = useState(false);
  const index = items.indexOf(current);

  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
    return () => dialog?.close();
  }, []);

  useEffect(() => {
    let live = true;
    setUrl(null);
    setZoomed(false);
    void mediaItem(current).then((found) => live && setItem(found)).catch(() => undefined);
    void mediaUrl(current, "content").then((found) => live && setUrl(found)).catch(() => undefined);
    return () => {
      live = false;
    };
  }, [current]);

  const step = (by: number) => {
    const next = items[index + by];
    if (next) setCurrent(next);
  };

  const name = item?.file_name ?? (item?.kind === "video" ? "video" : "photo");
  return (
    <dialog
      ref={ref}
      aria-label="Media viewer"
      onCancel={(event) => {
        event.preventDefault();
        onClose();
      }}
      onKeyDown={(event) => {
        if (event.key === "ArrowLeft") step(-1);
        else if (event.key === "ArrowRight") step(1);
      }}
      className="m-0 h-full max-h-none w-full max-w-none bg-black/95 p-0 text-white backdrop:bg-black/80"
    >
      <div className="flex h-full flex-col">
        <div className="flex items-center justify-between gap-2 px-4 py-2">
          <p className="truncate text-sm">
            {name}
            {items.length > 1 && index >= 0 ? ` · ${index + 1} of ${items.length}` : ""}
          </p>
          <div className="flex gap-2">
            <button type="button" className="rounded px-3 py-1 text-sm hover:bg-white/10" onClick={() => void download(current, name)}>
              Download
            </button>
            <button type="button" aria-label="Close" className="rounded px-3 py-1 text-xl hover:bg-white/10" onClick={onClose}>
              ×
            </button>
          </div>
        </div>
        <div className="relative flex min-h-0 flex-1 items-center justify-center overflow-auto">
          {index > 0 && (
            <button type="button" aria-label="Previous" onClick={() => step(-1)} className="absolute left-2 z-10 rounded-full bg-white/10 px-3 py-2 text-2xl hover:bg-white/20">
              ‹
            </button>
          )}
          {!url ? (
            <p role="status">Loading…</p>
          ) : item?.kind === "video" ? (
            <video src={url} controls autoPlay className="max-h-full max-w-full" aria-label={name} />
          ) : (
            // eslint-disable-next-line @next/next/no-img-element
            <img
              src={url}
              alt={name}
              data-full=""
              onClick={() => setZoomed((z) => !z)}
              className={`max-w-none transition-transform ${zoomed ? "scale-200 cursor-zoom-out" : "max-h-full max-w-full cursor-zoom-in"}`}
            />
          )}
          {index >= 0 && index < items.length - 1 && (
            <button type="button" aria-label="Next" onClick={() => step(1)} className="absolute right-2 z-10 rounded-full bg-white/10 px-3 py-2 text-2xl hover:bg-white/20">
              ›
            </button>
          )}
        </div>
      </div>
    </dialog>
  );
}
