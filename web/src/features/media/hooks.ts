"use client";
// An item's details and bytes for a component: asked when it mounts (or the id changes),
// from the page-wide caches of media.ts; null until they arrive, or if they cannot.
import { useEffect, useState } from "react";
import { mediaItem, type MediaItem, mediaUrl } from "./media";

export function useMediaItem(mediaId: string | null): MediaItem | null {
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
  return item && item.media_id === mediaId ? item : null;
}

/**
 * `/thumbnail` or `/content` as a blob: URL, when `wanted`. With `patient` false a
 * failure is final at once (a photo the caller may not see), instead of asked again
 * for a few seconds (a message's item a live event announced before the read models).
 */
export function useMediaUrl(mediaId: string | null | undefined, part: "thumbnail" | "content", { wanted = true, patient = true } = {}): string | null {
  const [url, setUrl] = useState<{ id: string; url: string } | null>(null);
  useEffect(() => {
    if (!mediaId || !wanted) return;
    let live = true;
    void mediaUrl(mediaId, part, patient)
      .then((found) => live && setUrl({ id: mediaId, url: found }))
      .catch(() => undefined);
    return () => {
      live = false;
    };
  }, [mediaId, part, wanted, patient]);
  // A URL of the item before (a photo just changed) is not shown for the new one.
  return url && url.id === mediaId ? url.url : null;
}
