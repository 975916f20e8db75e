"use client";
// Before a file is sent: its preview (a photo or video as it will look, other files by
// name and size) and a caption.
import { useEffect, useState } from "react";
import { Dialog } from "@/components/Dialog";
import { Button } from "@/components/form";
import { formatSize } from "./MediaAttachment";
import { kindOf } from "./media";

export function AttachDialog({ file, caption: initial, onSend, onCancel }: { file: File; caption: string; onSend: (caption: string) => void; onCancel: () => void }) {
  const [caption, setCaption] = useState(initial);
  const [preview, setPreview] = useState<string | null>(null);
  const kind = kindOf(file);
  useEffect(() => {
    if (kind !== "image" && kind !== "video") return;
    const url = URL.createObjectURL(file);
    setPreview(url);
    return () => URL.revokeObjectURL(url);
  }, [file, kind]);
  return (
    <Dialog title={{ image: "Send a photo", video: "Send a video", voice: "Send audio", document: "Send a document" }[kind]} onClose={onCancel}>
      <form
        className="space-y-3"
        onSubmit={(event) => {
          event.preventDefault();
          onSend(caption);
        }}
      >
        {preview && kind === "image" && (
          // eslint-disable-next-line @next/next/no-img-element
          <img src={preview} alt={`Preview of ${file.name}`} className="max-h-80 w-full rounded-lg object-contain" />
        )}
        {preview && kind === "video" && <video src={preview} controls className="max-h-80 w-full rounded-lg" aria-label={`Preview of ${file.name}`} />}
        <p className="truncate text-sm text-gray-700 dark:text-gray-300">
          {file.name} · {formatSize(file.size)}
        </p>
        <label className="block text-sm">
          <span className="sr-only">Caption</span>
          <input
            autoFocus
            value={caption}
            maxLength={4096}
            placeholder="Add a caption"
            onChange={(event) => setCaption(event.target.value)}
            className="w-full rounded-lg border border-gray-300 bg-white px-3 py-2 dark:border-gray-700 dark:bg-gray-800"
          />
        </label>
        <div className="flex justify-end gap-2">
          <Button type="button" variant="secondary" onClick={onCancel}>
            Cancel
          </Button>
          <Button type="submit">Send</Button>
        </div>
      </form>
    </Dialog>
  );
}
