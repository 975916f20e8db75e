const COLORS = ["bg-rose-700", "bg-amber-800", "bg-emerald-800", "bg-sky-800", "bg-violet-700", "bg-teal-800", "bg-fuchsia-800", "bg-orange-800"];

function colorOf(seed: string): string {
  let hash = 0;
  for (const char of seed) hash = (hash * 31 + char.charCodeAt(0)) | 0;
  return COLORS[Math.abs(hash) % COLORS.length] as string;
}

/** Initials on a colour of the name's own; decorative (the name is always beside it). */
export function Avatar({ name, seed, size = "md" }: { name: string; seed: string; size?: "sm" | "md" | "lg" }) {
  const initials = name
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((word) => word[0]?.toUpperCase() ?? "")
    .join("");
  const dimension = size === "sm" ? "h-8 w-8 text-xs" : size === "lg" ? "h-16 w-16 text-xl" : "h-11 w-11 text-sm";
  return (
    <span aria-hidden="true" className={`${dimension} ${colorOf(seed)} inline-flex shrink-0 items-center justify-center rounded-full font-semibold text-white`}>
      {initials || "?"}
    </span>
  );
}
