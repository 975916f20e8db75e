"use client";
// A photo for oneself or a group: a file chosen, cropped to a square in a dialog (loaded
// the first time one is chosen), uploaded as an image and handed to `onSave` by its
// media id; or removed.
import { lazy, Suspense, useRef, useState } from "react";
import { describeProblem } from "@/api/client";
import { Button, ErrorText } from "@/components/form";
import { kindOf, upload } from "@/features/media/media";

const CropDialog = lazy(() => import("./CropDialog"));

/**
 * `label` names the photo in the buttons ("photo": "Choose photo", "Remove photo");
 * `cropTitle` is the crop dialog's.
 */
export function PhotoChooser({ label, cropTitle, hasPhoto, onSave, onRemove }: { label: string; cropTitle: string; hasPhoto: boolean; onSave: (mediaId: string) => Promise<void>; onRemove: () => Promise<void> }) {
  const input = useRef<HTMLInputElement>(null);
  const [picked, setPicked] = useState<File | null>(null);
  const [removing, setRemoving] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const save = async (photo: Blob) => {
    const item = await upload(new File([photo], "photo.jpg", { type: "image/jpeg" }), "image", () => undefined, new AbortController().signal);
    await onSave(item.media_id);
    setPicked(null);
  };
  const remove = async () => {
    setRemoving(true);
    setError(null);
    try {
      await onRemove();
    } catch (problem) {
      setError(describeProblem(problem));
    } finally {
      setRemoving(false);
    }
  };

  return (
    <div className="space-y-2">
      <input
        ref={input}
        type="file"
        accept="image/jpeg,image/png,image/webp,image/gif"
        className="hidden"
        aria-hidden="true"
        tabIndex={-1}
        onChange={(event) => {
          const file = event.target.files?.[0];
          event.target.value = "";
          if (!file) return;
          setError(kindOf(file) === "image" ? null : "Choose a photo: a JPEG, PNG, WebP or GIF image.");
          if (kindOf(file) === "image") setPicked(file);
        }}
      />
      <div className="flex flex-wrap gap-2">
        <Button variant="secondary" onClick={() => input.current?.click()}>
          {hasPhoto ? `Change ${label}` : `Choose ${label}`}
        </Button>
        {hasPhoto && (
          <Button variant="secondary" disabled={removing} onClick={() => void remove()}>
            Remove {label}
          </Button>
        )}
      </div>
      <ErrorText>{error}</ErrorText>
      {picked && (
        <Suspense fallback={null}>
          <CropDialog file={picked} title={cropTitle} onSave={save} onCancel={() => setPicked(null)} />
        </Suspense>
      )}
    </div>
  );
}
