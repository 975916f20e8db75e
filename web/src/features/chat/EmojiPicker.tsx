"use client";
import { useEffect, useRef } from "react";

const EMOJI = [
  "😀", "😃", "😄", "😁", "😆", "😅", "🤣", "😂", "🙂", "😉", "😊", "😇", "🥰", "😍", "🤩", "😘",
  "😋", "😜", "🤪", "🤗", "🤔", "🤨", "😐", "😑", "😶", "🙄", "😏", "😬", "😌", "😔", "😴", "😷",
  "🤒", "🥳", "😎", "🤓", "😕", "😟", "😮", "😲", "😳", "🥺", "😢", "😭", "😱", "😤", "😡", "🤯",
  "👍", "👎", "👏", "🙌", "🙏", "💪", "👋", "🤝", "✌️", "🤞", "👌", "👀", "❤️", "🧡", "💛", "💚",
  "💙", "💜", "🖤", "💔", "🔥", "✨", "🎉", "🎂", "☕", "🍕", "⚽", "🚀", "✅", "❌", "⭐", "💯",
];

/**
 * A grid of emoji; Escape or a click outside closes it. Loaded the first time a picker
 * opens (`LazyEmojiPicker`), with its emoji.
 */
export default function EmojiPicker({ onPick, onClose, label = "Choose an emoji" }: { onPick: (emoji: string) => void; onClose: () => void; label?: string }) {
  const ref = useRef<HTMLDivElement>(null);
  const close = useRef(onClose);
  close.current = onClose;
  // Focus moves in once, when it opens: not again whenever the chat re-renders.
  useEffect(() => {
    ref.current?.querySelector("button")?.focus();
    const onDown = (event: MouseEvent) => {
      if (ref.current && !ref.current.contains(event.target as Node)) close.current();
    };
    document.addEventListener("mousedown", onDown);
    return () => document.removeEventListener("mousedown", onDown);
  }, []);
  return (
    <div
      ref={ref}
      role="dialog"
      aria-label={label}
      onKeyDown={(event) => {
        if (event.key === "Escape") {
          event.stopPropagation();
          onClose();
        }
      }}
      className="z-20 grid w-72 grid-cols-8 gap-1 rounded-xl bg-white p-2 shadow-lg ring-1 ring-black/10 dark:bg-gray-800"
    >
      {EMOJI.map((emoji) => (
        <button key={emoji} type="button" aria-label={emoji} onClick={() => onPick(emoji)} className="rounded p-1 text-xl hover:bg-gray-100 dark:hover:bg-gray-700">
          {emoji}
        </button>
      ))}
    </div>
  );
}
