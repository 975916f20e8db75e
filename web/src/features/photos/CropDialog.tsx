"use client";
// Cropping a photo to a square, loaded the first time one is chosen: the image in a
// square frame (the circle shows what an avatar keeps), moved by dragging or the arrow
// keys, zoomed by the slider or + and -, then drawn on a canvas as a 640×640 JPEG.
import { type KeyboardEvent, type PointerEvent, useEffect, useId, useRef, useState } from "react";
import { describeProblem } from "@/api/client";
import { Dialog } from "@/components/Dialog";
import { Button, ErrorText } from "@/components/form";
import { UploadError } from "@/features/media/media";
import { centred, type Crop, MAX_ZOOM, MIN_ZOOM, moveBy, shown, type Size, source, zoomTo } from "./crop";

/** The side of the square sent, in pixels. */
const SIDE = 640;
/** An arrow key moves the photo by this share of the frame (with Shift, five times). */
const STEP = 0.02;

function describe(error: unknown): string {
  return error instanceof UploadError ? `The photo could not be uploaded: ${error.message}.` : describeProblem(error);
}

/** The frame's square of the photo, drawn at SIDE × SIDE, as a JPEG. */
function draw(picture: HTMLImageElement, image: Size, crop: Crop): Promise<Blob> {
  const canvas = document.createElement("canvas");
  canvas.width = SIDE;
  canvas.height = SIDE;
  const context = canvas.getContext("2d");
  if (!context) return Promise.reject(new Error("no canvas"));
  const square = source(image, crop);
  context.imageSmoothingQuality = "high";
  context.drawImage(picture, square.x, square.y, square.side, square.side, 0, 0, SIDE, SIDE);
  return new Promise((resolve, reject) => canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("no image"))), "image/jpeg", 0.9));
}

export default function CropDialog({ file, title, onSave, onCancel }: { file: File; title: string; onSave: (photo: Blob) => Promise<void>; onCancel: () => void }) {
  const [url, setUrl] = useState<string | null>(null);
  const [image, setImage] = useState<Size | null>(null);
  const [crop, setCrop] = useState<Crop | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const frame = useRef<HTMLDivElement>(null);
  const picture = useRef<HTMLImageElement>(null);
  const dragging = useRef<{ x: number; y: number } | null>(null);
  const hint = useId();

  useEffect(() => {
    const made = URL.createObjectURL(file);
    setUrl(made);
    return () => URL.revokeObjectURL(made);
  }, [file]);

  const move = (dx: number, dy: number) => image && setCrop((held) => held && moveBy(image, held, dx, dy));
  const zoom = (to: number) => image && setCrop((held) => held && zoomTo(image, held, to));

  const onPointerDown = (event: PointerEvent<HTMLDivElement>) => {
    event.currentTarget.setPointerCapture(event.pointerId);
    dragging.current = { x: event.clientX, y: event.clientY };
  };
  const onPointerMove = (event: PointerEvent<HTMLDivElement>) => {
    const from = dragging.current;
    const side = frame.current?.getBoundingClientRect().width;
    if (!from || !side) return;
    dragging.current = { x: event.clientX, y: event.clientY };
    move((event.clientX - from.x) / side, (event.clientY - from.y) / side);
  };
  const onKeyDown = (event: KeyboardEvent<HTMLDivElement>) => {
    const step = event.shiftKey ? STEP * 5 : STEP;
    const moves: Record<string, [number, number]> = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    const by = moves[event.key];
    if (by) move(...by);
    else if ((event.key === "+" || event.key === "=") && crop) zoom(crop.zoom + 0.1);
    else if (event.key === "-" && crop) zoom(crop.zoom - 0.1);
    else return;
    event.preventDefault();
  };

  const save = async () => {
    if (!picture.current || !image || !crop) return;
    setBusy(true);
    setError(null);
    try {
      await onSave(await draw(picture.current, image, crop));
    } catch (problem) {
      setError(describe(problem));
      setBusy(false);
    }
  };

  const size = image && crop ? shown(image, crop.zoom) : null;
  return (
    <Dialog title={title} onClose={onCancel}>
      <div className="space-y-4">
        <div
          ref={frame}
          tabIndex={0}
          role="group"
          aria-label="Photo position"
          aria-describedby={hint}
          onPointerDown={onPointerDown}
          onPointerMove={onPointerMove}
          onPointerUp={() => (dragging.current = null)}
          onPointerCancel={() => (dragging.current = null)}
          onKeyDown={onKeyDown}
          className="relative mx-auto aspect-square w-72 max-w-full cursor-grab touch-none overflow-hidden rounded-lg bg-gray-900 select-none focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-brand-600 active:cursor-grabbing"
          data-testid="crop-frame"
        >
          {url && (
            // eslint-disable-next-line @next/next/no-img-element
            <img
              ref={picture}
              src={url}
              alt=""
              draggable={false}
              onLoad={(event) => {
                const loaded = { width: event.currentTarget.naturalWidth, height: event.currentTarget.naturalHeight };
                setImage(loaded);
                setCrop(centred(loaded));
              }}
              onError={() => setError("That file can't be shown as a photo. Choose a JPEG, PNG, WebP or GIF image.")}
              className={`pointer-events-none absolute max-w-none ${size ? "" : "invisible"}`}
              style={crop && size ? { left: `${crop.x * 100}%`, top: `${crop.y * 100}%`, width: `${size.width * 100}%`, height: `${size.height * 100}%` } : undefined}
            />
          )}
          <span aria-hidden="true" className="pointer-events-none absolute inset-0 rounded-full shadow-[0_0_0_9999px_rgb(0_0_0/0.5)] ring-2 ring-white/80" />
        </div>
        <p id={hint} className="text-center text-sm text-gray-600 dark:text-gray-400">
          Drag the photo, or use the arrow keys, to choose what shows.
        </p>
        <label className="flex items-center gap-3 text-sm">
          <span className="font-medium">Zoom</span>
          <input
            type="range"
            min={MIN_ZOOM}
            max={MAX_ZOOM}
            step={0.05}
            value={crop?.zoom ?? MIN_ZOOM}
            disabled={!crop}
            aria-valuetext={`${Math.round((crop?.zoom ?? MIN_ZOOM) * 100)}%`}
            onChange={(event) => zoom(Number(event.target.value))}
            className="flex-1 accent-brand-700"
          />
        </label>
        <ErrorText>{error}</ErrorText>
        <div className="flex justify-end gap-2">
          <Button variant="secondary" onClick={onCancel}>
            Cancel
          </Button>
          <Button disabled={!crop || busy} aria-busy={busy} onClick={() => void save()}>
            {busy ? "Saving…" : "Save photo"}
          </Button>
        </div>
      </div>
    </Dialog>
  );
}
