import { describe, expect, it } from "vitest";
import { centred, moveBy, source, zoomTo } from "./crop";

const landscape = { width: 1600, height: 1200 };

describe("cropping a photo to a square", () => {
  it("starts centred, the shorter side filling the frame", () => {
    const crop = centred(landscape);
    expect(crop.zoom).toBe(1);
    expect(crop.x).toBeCloseTo(-1 / 6);
    expect(crop.y).toBe(0);
    const square = source(landscape, crop);
    expect(square.x).toBeCloseTo(200);
    expect(square.y).toBeCloseTo(0);
    expect(square.side).toBeCloseTo(1200);
  });

  it("never moves the image off the frame", () => {
    const crop = moveBy(landscape, centred(landscape), 5, -5);
    expect(crop.x).toBe(0);
    expect(crop.y).toBe(0);
    const far = moveBy(landscape, crop, -5, 0);
    expect(far.x).toBeCloseTo(-1 / 3);
    expect(source(landscape, far).x).toBeCloseTo(400);
  });

  it("zooms about the frame's centre, within its limits", () => {
    const crop = zoomTo(landscape, centred(landscape), 2);
    const square = source(landscape, crop);
    expect(square.side).toBeCloseTo(600);
    expect(square.x + square.side / 2).toBeCloseTo(800);
    expect(square.y + square.side / 2).toBeCloseTo(600);
    expect(zoomTo(landscape, crop, 10).zoom).toBe(4);
    const back = zoomTo(landscape, crop, 0.2);
    expect(back.zoom).toBe(1);
    expect(back.x).toBeCloseTo(centred(landscape).x);
    expect(back.y).toBeCloseTo(0);
  });
});
