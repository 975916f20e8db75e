"use client";
// What the chat needs of emoji before a picker opens: the quick reactions, and the
// picker itself, loaded (with its emoji) the first time one opens.
import { type ComponentProps, lazy, Suspense } from "react";

export const QUICK_REACTIONS = ["👍", "❤️", "😂", "😮", "😢", "🙏"];

const Picker = lazy(() => import("./EmojiPicker"));

export function LazyEmojiPicker(props: ComponentProps<typeof Picker>) {
  return (
    <Suspense fallback={null}>
      <Picker {...props} />
    </Suspense>
  );
}
