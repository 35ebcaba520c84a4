import { describe, expect, it } from "vitest";
import { byKey, dominanceByModality, dominatedBy, emapMetrics, emapOf, hiddenBySupport, itemKey, pidFractions, pidOf, rankImportance, shapleyShares, type ImportanceItem } from "./importance";
import type { InstanceTable } from "./types";

const item = (modality: string, feature: string, kind: "feature" | "word", mean_abs: number, support: number): ImportanceItem => ({
  modality,
  feature,
  kind,
  mean_abs,
  mean: mean_abs / 2,
  support,
  count: support,
});

const ITEMS = [
  item("text", "glad", "word", 3.9, 1),
  item("text", "thanks", "word", 2.0, 41),
  item("text", "great", "word", 1.7, 16),
  item("text", "vader_valence", "feature", 0.8, 600),
  item("audio", "F0", "feature", 0.3, 600),
  item("text", "ok", "word", 1.7, 30),
];

describe("feature importance ranking", () => {
  it("a minimum support hides words seen once, which would top the ranking", () => {
    expect(rankImportance(ITEMS, { modality: "text", kind: "word" }).map((d) => d.feature)).toEqual(["glad", "thanks", "ok", "great"]);
    expect(rankImportance(ITEMS, { modality: "text", kind: "word", minSupport: 2 }).map((d) => d.feature)).toEqual(["thanks", "ok", "great"]);
    expect(rankImportance(ITEMS, { modality: "text", kind: "word", minSupport: 20 }).map((d) => d.feature)).toEqual(["thanks", "ok"]);
    expect(hiddenBySupport(ITEMS, "text", "word", 2)).toBe(1);
    expect(hiddenBySupport(ITEMS, "text", "word", 20)).toBe(2);
  });
  it("keeps words apart from named features and modalities apart; ties go to the larger support; limit", () => {
    expect(rankImportance(ITEMS, { modality: "text", kind: "feature" }).map((d) => d.feature)).toEqual(["vader_valence"]);
    expect(rankImportance(ITEMS, { modality: "audio" }).map((d) => d.feature)).toEqual(["F0"]);
    expect(rankImportance(ITEMS, { kind: "word", minSupport: 0, limit: 2 }).map((d) => d.feature)).toEqual(["glad", "thanks"]);
    // "ok" and "great" tie on mean |a|: "ok" (n=30) before "great" (n=16)
    expect(rankImportance(ITEMS, { kind: "word", minSupport: 2 }).map((d) => d.feature)).toEqual(["thanks", "ok", "great"]);
    expect(ITEMS.map((d) => d.feature)[0]).toBe("glad"); // the input is not reordered
  });
  it("looks items up by modality, kind and name", () => {
    const m = byKey(ITEMS);
    expect(m.get(itemKey({ modality: "text", kind: "word", feature: "great" }))?.support).toBe(16);
    expect(m.get(itemKey({ modality: "audio", kind: "word", feature: "great" }))).toBeUndefined();
  });
});

function table(): InstanceTable {
  return {
    n: 5,
    modalities: ["text", "audio", "vision"],
    columns: {
      interaction_type: ["dominance", "dominance", "conflict", "dominance:vision", "dominance"],
      dominant_modality: ["text", "audio", null, null, "text"],
    },
    // instance 2 has all zeros: no shares
    shapley: { text: [3, 1, 0, 1, -2], audio: [1, -3, 0, 1, 1], vision: [0, 0, 0, 2, -1] },
    x: [0, 0, 0, 0, 0],
    y: [0, 0, 0, 0, 0],
    projection_method: "pca",
  };
}

describe("dominance and |Shapley| share per modality", () => {
  it("counts dominance by the dominant modality (both type spellings)", () => {
    const all = dominanceByModality(table(), [0, 1, 2, 3, 4]);
    expect(all).toEqual([
      { modality: "text", count: 2, share: 0.4 },
      { modality: "audio", count: 1, share: 0.2 },
      { modality: "vision", count: 1, share: 0.2 },
    ]);
    expect(dominanceByModality(table(), [2, 3]).map((d) => d.share)).toEqual([0, 0, 0.5]);
    expect(dominatedBy(table(), "text")).toEqual([0, 4]);
    expect(dominatedBy(table(), "vision")).toEqual([3]);
  });
  it("averages each instance's |phi_m| / sum |phi|, skipping instances without any", () => {
    const s = shapleyShares(table(), [0, 1, 2, 3, 4]);
    // instance shares: 0 (3/4, 1/4, 0), 1 (1/4, 3/4, 0), 3 (1/4, 1/4, 1/2), 4 (1/2, 1/4, 1/4); 2 skipped
    expect(s[0].share).toBeCloseTo((0.75 + 0.25 + 0.25 + 0.5) / 4, 12);
    expect(s[1].share).toBeCloseTo((0.25 + 0.75 + 0.25 + 0.25) / 4, 12);
    expect(s[2].share).toBeCloseTo((0 + 0 + 0.5 + 0.25) / 4, 12);
    expect(s.reduce((a, d) => a + d.share, 0)).toBeCloseTo(1, 12);
    expect(Number.isNaN(shapleyShares(table(), [2])[0].share)).toBe(true);
  });
});

describe("dataset measures from the manifest", () => {
  it("no measures: null (the panels say how to compute them)", () => {
    expect(emapOf({})).toBeNull();
    expect(pidOf({})).toBeNull();
    expect(emapOf(undefined)).toBeNull();
  });
  it("reads EMAP's share, components and the metric gaps", () => {
    const e = emapOf({
      emap: {
        groups: ["text", "audio"],
        n_instances: 100,
        mixing: "joint",
        n_evaluations: 20100,
        interaction_share: 0.12,
        component_share: { text: 0.7, audio: null },
        performance_original: { mae: 0.8, corr: 0.7, n: 100, notes: [] },
        performance_projected: { mae: 0.9, corr: 0.6, n: 100, notes: [] },
        gap: { mae: 0.1, corr: 0.1 },
        notes: [],
      },
    })!;
    expect(e.interaction_share).toBe(0.12);
    expect(e.component_share).toEqual({ text: 0.7, audio: null });
    expect(emapMetrics(e)).toEqual([
      { metric: "mae", original: 0.8, projected: 0.9, gap: 0.1 },
      { metric: "corr", original: 0.7, projected: 0.6, gap: 0.1 },
    ]);
  });
  it("reads PID pairs and turns atoms into fractions of the information (solver noise below 0 counted as 0)", () => {
    const p = pidOf({
      pid: {
        "text+audio": { redundancy: 0.2, unique1: 0.5, unique2: -1e-7, synergy: 0.3, total: 1.0, unit: "bits", names: ["text", "audio"], n_samples: 600, extra: { bias_estimate: 0.04 }, notes: [] },
      },
    })!;
    expect(p).toHaveLength(1);
    expect(p[0].names).toEqual(["text", "audio"]);
    expect(p[0].bias).toBe(0.04);
    const f = pidFractions(p[0]);
    expect(f.map((a) => a.label)).toEqual(["redundancy", "unique text", "unique audio", "synergy"]);
    expect(f.map((a) => a.fraction)).toEqual([0.2, 0.5, 0, 0.3]);
  });
});
