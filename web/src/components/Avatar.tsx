"use client";
import { useState } from "react";
import { useMediaUrl } from "@/features/media/hooks";

const COLORS = ["bg-rose-700", "bg-amber-800", "bg-emerald-800", "bg-sky-800", "bg-violet-700", "bg-teal-800", "bg-fuchsia-800", "bg-orange-800"];

function colorOf(seed: string): string {
  let hash = 0;
  for (const char of seed) hash = (hash * 31 + char.charCodeAt(0)) | 0;
  return COLORS[Math.abs(hash) % COLORS.length] as string;
}

const DIMENSIONS = { sm: "h-8 w-8 text-xs", md: "h-11 w-11 text-sm", lg: "h-16 w-16 text-xl", xl: "h-28 w-28 text-4xl" } as const;

/**
 * The photo (`photo`, a media id: its thumbnail), or initials on a colour of the name's
 * own while it loads, when there is none or it cannot be shown. Decorative: the name is
 * always beside it.
 */
export function Avatar({ name, seed, photo = null, size = "md" }: { name: string; seed: string; photo?: string | null; size?: keyof typeof DIMENSIONS }) {
  // Someone else's photo may be one the caller is not let see: asked once, not again.
  const url = useMediaUrl(photo, "thumbnail", { patient: false });
  const [broken, setBroken] = useState<string | null>(null);
  const initials = name
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((word) => word[0]?.toUpperCase() ?? "")
    .join("");
  const shown = url && broken !== url ? url : null;
  return (
    <span aria-hidden="true" data-photo={photo ?? undefined} className={`${DIMENSIONS[size]} ${colorOf(seed)} relative inline-flex shrink-0 items-center justify-center overflow-hidden rounded-full font-semibold text-white`}>
      {initials || "?"}
      {/* eslint-disable-next-line @next/next/no-img-element */}
      {shown && <img src={shown} alt="" data-avatar-photo="" onError={() => setBroken(shown)} className="absolute inset-0 h-full w-full object-cover" />}
    </span>
  );
}
