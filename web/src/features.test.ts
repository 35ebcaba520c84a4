import { describe, expect, it } from "vitest";
import { categoryColor, featureOrder, mdsHistogram, visibleWindow } from "./featureStats";
import { MODALITY_COLORS } from "./colors";

describe("features view logic", () => {
  it("histogram stacks categories in language, cross-modal, vision order and drops NaN", () => {
    const h = mdsHistogram([0.05, 0.1, 0.95, 0.5, null, 1.0], ["language", "language", "vision", "cross-modal", "inactive", "vision"], 10);
    expect(h.categories).toEqual(["language", "cross-modal", "vision"]);
    expect(h.counts[0]).toEqual([1, 0, 0]);
    expect(h.counts[1]).toEqual([1, 0, 0]);
    expect(h.counts[5]).toEqual([0, 1, 0]);
    expect(h.counts[9]).toEqual([0, 0, 2]); // 1.0 falls in the last bin
    expect(h.counts.flat().reduce((a, b) => a + b, 0)).toBe(5);
  });
  it("category colours follow the modality palette", () => {
    expect(categoryColor("vision")).toBe(MODALITY_COLORS.image);
    expect(categoryColor("language")).toBe(MODALITY_COLORS.text);
  });
  it("orders features by a column with NaN last, filters by category, MDS range and number", () => {
    const cols = { feature: [0, 1, 2, 3], mds: [0.9, null, 0.1, 0.5], category: ["vision", "inactive", "language", "cross-modal"], frequency: [0.1, 0, 0.3, 0.2] };
    expect(featureOrder(cols, { sort: "mds", dir: "desc", category: "all", mdsRange: null, query: "" })).toEqual([0, 3, 2, 1]);
    expect(featureOrder(cols, { sort: "mds", dir: "asc", category: "all", mdsRange: null, query: "" })).toEqual([2, 3, 0, 1]);
    expect(featureOrder(cols, { sort: "frequency", dir: "desc", category: "vision", mdsRange: null, query: "" })).toEqual([0]);
    expect(featureOrder(cols, { sort: "feature", dir: "asc", category: "all", mdsRange: [0.4, 1], query: "" })).toEqual([0, 3]);
    expect(featureOrder(cols, { sort: "category", dir: "asc", category: "all", mdsRange: null, query: "" })).toEqual([3, 1, 2, 0]);
    expect(featureOrder(cols, { sort: "feature", dir: "asc", category: "all", mdsRange: null, query: "2" })).toEqual([2]);
  });
  it("virtual window covers the viewport plus overscan, clamped", () => {
    expect(visibleWindow(0, 520, 26, 1000, 8)).toEqual([0, 28]);
    expect(visibleWindow(2600, 520, 26, 1000, 8)).toEqual([92, 128]);
    expect(visibleWindow(26000, 520, 26, 1000, 8)).toEqual([992, 1000]);
  });
});

import { categorize, densityHistogram, examplesByLevel, quantile, replicateShares, shares, stability } from "./featureStats";

describe("categories recomputed in the browser", () => {
  const mds = [0.95, 0.9, 0.5, 0.55, 0.45, 0.5, 0.1, null];
  it("thresholds are mean ± k·sd (population sd) over the features that fire", () => {
    const live = mds.filter((v): v is number => v != null);
    const mu = live.reduce((a, b) => a + b, 0) / live.length;
    const sd = Math.sqrt(live.reduce((a, b) => a + (b - mu) ** 2, 0) / live.length);
    const c = categorize(mds, 1);
    expect(c.mu).toBeCloseTo(mu, 12);
    expect(c.sd).toBeCloseTo(sd, 12);
    expect(c.hi).toBeCloseTo(mu + sd, 12);
    expect(c.categories).toEqual(["vision", "vision", "cross-modal", "cross-modal", "cross-modal", "cross-modal", "language", "inactive"]);
    expect(categorize(mds, 3).categories.filter((x) => x === "cross-modal").length).toBe(7);
    const s = shares(c.categories);
    expect(s.vision).toBeCloseTo(2 / 7, 12);
    expect(s.language).toBeCloseTo(1 / 7, 12);
  });
  it("a category is stable only when the interval lies inside its region and enough pairs fire", () => {
    const cats = ["vision", "vision", "language", "cross-modal", "cross-modal"];
    const st = stability(cats, [0.8, 0.6, 0.05, 0.35, 0.2], [0.99, 0.9, 0.2, 0.6, 0.6], [50, 50, 50, 50, 5], 0.3, 0.7, 10);
    expect(st).toEqual([true, false, true, true, false]);
  });
  it("quantile matches numpy's linear rule", () => {
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantile([4, 1, 3, 2], 0.025)).toBeCloseTo(1.075, 12);
  });
  it("replicate shares: thresholds recomputed per replicate, or fixed", () => {
    const reps = [
      [0.9, 0.5, 0.5, 0.1],
      [0.9, 0.5, 0.5, 0.5],
    ];
    const r = replicateShares(reps, 1, 0.95);
    expect(r.vision.mean).toBeCloseTo((0.25 + 0.25) / 2, 12);
    expect(r.language.low).toBeCloseTo(0.025 * 0.25, 12); // numpy's linear quantile of [0, 0.25]
    const fixed = replicateShares(reps, 1, 0.95, { lo: 0.2, hi: 0.8 });
    expect(fixed.language.mean).toBeCloseTo(0.125, 12);
  });
  it("density histogram and examples by level", () => {
    expect(densityHistogram([0, 0.5, 1, null], 2)).toEqual([1 / 3, 2 / 3]);
    const ex = [
      { level: "low", modality: "image", rank: 0 },
      { level: "top", modality: "image", rank: 1 },
      { level: "top", modality: "image", rank: 0 },
      { level: "top", modality: "text", rank: 0 },
    ];
    const g = examplesByLevel(ex, "image");
    expect(g.map((x) => x.level)).toEqual(["top", "low"]);
    expect(g[0].items.map((x) => x.rank)).toEqual([0, 1]);
  });
});
