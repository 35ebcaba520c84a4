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
