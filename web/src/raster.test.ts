import { describe, expect, it } from "vitest";
import { dotStamp, rasterise, type RasterTarget } from "./raster";

const BG: [number, number, number] = [252, 252, 253];
const ID = { sx: 1, sy: 1, ox: 0, oy: 0 };

function target(w: number, h: number): RasterTarget {
  return { data: new Uint8ClampedArray(w * h * 4), width: w, height: h };
}
function px(t: RasterTarget, x: number, y: number): number[] {
  const p = (y * t.width + x) * 4;
  return Array.from(t.data.slice(p, p + 4));
}

describe("software point rasteriser", () => {
  it("stamps the dot the fragment shader draws", () => {
    // 2.6 px: the centre and its 4 neighbours (r = 1/2.6^2 < 0.16, full cover); diagonals lie outside (r > 0.25)
    const s = dotStamp(2.6);
    const cells = Array.from(s.dx, (dx, j) => `${dx},${s.dy[j]}:${s.cover[j]}`).sort();
    expect(cells).toEqual(["-1,0:1", "0,-1:1", "0,0:1", "0,1:1", "1,0:1"]);
    // a wide dot has a soft edge: coverage falls from 1 inside to near 0 at the rim
    const big = dotStamp(10);
    const at = (x: number, y: number) => big.cover[Array.from(big.dx).findIndex((dx, j) => dx === x && big.dy[j] === y)];
    expect(at(0, 0)).toBe(1);
    // (4, 2): r = 20/100 = 0.2, smoothstep(0.25, 0.16, 0.2) = 0.5556^2 * (3 - 2 * 0.5556) = 0.583
    expect(at(4, 2)).toBeCloseTo(0.583, 3);
    expect(Array.from(big.dx).some((dx, j) => dx === 5 && big.dy[j] === 5)).toBe(false);
  });

  it("places dots as the WebGL viewport does, y up, and blends in order", () => {
    const t = target(11, 11);
    // data (0, 0) -> clip (0, 0) -> pixel (5, 5); data (0, 0.5) -> row floor(0.25 * 11) = 2
    rasterise(t, [0, 0, 0, 0.5, NaN, 0, 40, 40], [255, 0, 0, 255, 0, 0, 255, 128, 0, 255, 0, 255, 0, 255, 0, 255], 4, ID, 2.6, BG);
    expect(px(t, 5, 5)).toEqual([255, 0, 0, 255]);
    expect(px(t, 6, 5)).toEqual([255, 0, 0, 255]);
    expect(px(t, 6, 6)).toEqual([252, 252, 253, 255]); // diagonal: background
    // blue at alpha 128/255 over the background: 252 - 252 * 0.502 = 125.5 -> 126; 253 + 2 * 0.502 -> 254
    expect(px(t, 5, 2)).toEqual([126, 126, 254, 255]);
    // the NaN and the far-away dots drew nothing
    const green = Array.from({ length: 121 }, (_, i) => px(t, i % 11, Math.floor(i / 11))).filter((c) => c[1] === 255 && c[0] === 0);
    expect(green).toEqual([]);
    // the later of two dots at one place is on top
    const u = target(5, 5);
    rasterise(u, [0, 0, 0, 0], [255, 0, 0, 255, 0, 0, 255, 255], 2, ID, 1, BG);
    expect(px(u, 2, 2)).toEqual([0, 0, 255, 255]);
  });

  it("applies the pan/zoom transform and clips at the edges", () => {
    const t = target(10, 10);
    // scale 2, offset -1: data (1, 1) -> clip (1, 1): the top-right corner, drawn partly (clipped, no error)
    rasterise(t, [1, 1], [10, 20, 30, 255], 1, { sx: 2, sy: 2, ox: -1, oy: -1 }, 3, BG);
    expect(px(t, 9, 0)).toEqual([10, 20, 30, 255]);
    expect(px(t, 0, 9)).toEqual([252, 252, 253, 255]);
  });
});

describe("robustMaxAbs on a typed sort", () => {
  it("gives the q-quantile of |values|, ignoring null and non-finite values", async () => {
    const { robustMaxAbs } = await import("./colors");
    const values = [null, NaN, Infinity, ...Array.from({ length: 101 }, (_, i) => (i % 2 ? -i : i) / 10)];
    // |values| are 0.0, 0.1, ..., 10.0; the 0.95 quantile is the 95th of 0..100 -> 9.5
    expect(robustMaxAbs(values, 0.95)).toBeCloseTo(9.5, 10);
    expect(robustMaxAbs([-3, 0, 0, 0], 0.5)).toBe(3); // a zero quantile falls back to the largest
    expect(robustMaxAbs([null, NaN])).toBe(0);
  });
});
