import { describe, expect, it } from "vitest";
import { rowWindow } from "./templateWindow";

describe("rowWindow", () => {
  const fixed = new Array(150).fill(34);
  it("keeps the rows in view plus the margin, and spacers for the rest", () => {
    // view 640 px from 0, margin 100: rows overlapping [0, 740) are 0..21 (21 * 34 = 714 < 740, 22 * 34 = 748)
    expect(rowWindow(fixed, 0, 640, 100)).toEqual({ first: 0, last: 22, before: 0, after: 128 * 34 });
    // scrolled to 1000: [900, 1740) -> rows 26 (884..918) to 51 (1734..1768)
    const w = rowWindow(fixed, 1000, 640, 100);
    expect(w).toEqual({ first: 26, last: 52, before: 26 * 34, after: (150 - 52) * 34 });
    expect(w.before + (w.last - w.first) * 34 + w.after).toBe(150 * 34);
  });
  it("handles rows of different heights", () => {
    const h = [10, 50, 20, 40, 30];
    expect(rowWindow(h, 55, 10, 0)).toEqual({ first: 1, last: 3, before: 10, after: 70 });
    expect(rowWindow(h, 60, 30, 0)).toEqual({ first: 2, last: 4, before: 60, after: 30 });
  });
  it("past the end keeps the last row; an empty list renders nothing", () => {
    expect(rowWindow([20, 20], 500, 100, 0)).toEqual({ first: 1, last: 2, before: 20, after: 0 });
    expect(rowWindow([], 0, 100, 50)).toEqual({ first: 0, last: 0, before: 0, after: 0 });
  });
});
