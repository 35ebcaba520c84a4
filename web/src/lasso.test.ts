import { describe, expect, it } from "vitest";
import { inPolygon, lassoSelect, type Point } from "./selection";

describe("lassoSelect over flat vertex arrays", () => {
  it("selects exactly the points inPolygon accepts, for a concave, self-crossing lasso", () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const xs = Float32Array.from({ length: 20000 }, () => rand() * 4 - 2);
    const ys = Float32Array.from({ length: 20000 }, () => rand() * 4 - 2);
    // a star (concave) whose last edges cross the first ones (self-crossing, as a hand-drawn lasso can)
    const poly: Point[] = Array.from({ length: 41 }, (_, j) => {
      const a = (2 * Math.PI * j) / 37;
      const r = j % 2 ? 0.6 : 1.6;
      return [r * Math.cos(a), r * Math.sin(a)];
    });
    const expected: number[] = [];
    for (let i = 0; i < xs.length; i++) if (inPolygon(xs[i], ys[i], poly)) expected.push(i);
    expect(expected.length).toBeGreaterThan(1000);
    expect(lassoSelect(xs, ys, poly)).toEqual(expected);
  });
});
