// Where an image lies in a square crop frame, in units of the frame's side (the frame is
// 0 to 1 both ways), so the same crop draws at any size on screen and on the canvas. At
// zoom 1 the image's shorter side fills the frame; the image always covers the frame.

export interface Crop {
  zoom: number;
  /** The image's left edge, from the frame's (0 or less). */
  x: number;
  /** The image's top edge, from the frame's (0 or less). */
  y: number;
}

export interface Size {
  width: number;
  height: number;
}

export const MIN_ZOOM = 1;
export const MAX_ZOOM = 4;

/** The image's size on the frame at `zoom`. */
export function shown(image: Size, zoom: number): Size {
  const scale = zoom / Math.min(image.width, image.height);
  return { width: image.width * scale, height: image.height * scale };
}

const clamp = (value: number, low: number, high: number) => Math.min(high, Math.max(low, value));

/** The nearest crop that leaves no part of the frame empty. */
export function fit(image: Size, crop: Crop): Crop {
  const zoom = clamp(crop.zoom, MIN_ZOOM, MAX_ZOOM);
  const size = shown(image, zoom);
  return { zoom, x: clamp(crop.x, 1 - size.width, 0), y: clamp(crop.y, 1 - size.height, 0) };
}

/** The image centred, its shorter side filling the frame. */
export function centred(image: Size): Crop {
  const size = shown(image, MIN_ZOOM);
  return { zoom: MIN_ZOOM, x: (1 - size.width) / 2, y: (1 - size.height) / 2 };
}

/** Moved by `dx`, `dy` (frame sides). */
export function moveBy(image: Size, crop: Crop, dx: number, dy: number): Crop {
  return fit(image, { ...crop, x: crop.x + dx, y: crop.y + dy });
}

/** Zoomed to `zoom` about the frame's centre: what is in the middle stays there. */
export function zoomTo(image: Size, crop: Crop, zoom: number): Crop {
  const next = clamp(zoom, MIN_ZOOM, MAX_ZOOM);
  const ratio = next / crop.zoom;
  return fit(image, { zoom: next, x: 0.5 - (0.5 - crop.x) * ratio, y: 0.5 - (0.5 - crop.y) * ratio });
}

/** The square of the image (in its own pixels) that the frame shows. */
export function source(image: Size, crop: Crop): { x: number; y: number; side: number } {
  const scale = shown(image, crop.zoom).width / image.width;
  return { x: -crop.x / scale, y: -crop.y / scale, side: 1 / scale };
}
