import { describe, expect, it } from "vitest";
import { featuresOfInstance, restsOn } from "./hiddenFeatures";

const table = {
  name: "instance_features",
  rows: 5,
  columns: {
    id: ["a", "a", "a", "b", "a"],
    rank: [1, 0, 2, 0, 3],
    feature: [40, 12, 7, 3, 9],
    category: ["audio", "cross-modal", "language", "vision", "audio"],
    code: [1, 2, 0.5, 1, 0.1],
    attribution: [-0.5, 1.0, 0.2, 0.3, 0.01],
    output: [0.7, 0.7, 0.7, 0.1, 0.7],
    total: [0.71, 0.71, 0.71, 0.3, 0.71],
  },
};

describe("hidden-layer features of an instance", () => {
  it("keeps the instance's rows in rank order", () => {
    expect(featuresOfInstance(table, "a").map((r) => r.feature)).toEqual([12, 40, 7, 9]);
    expect(featuresOfInstance(table, "c")).toEqual([]);
  });
  it("names the features that carry most of the attribution", () => {
    expect(restsOn(featuresOfInstance(table, "a"))).toBe("This prediction rests on features 12 (cross-modal) and 40 (audio).");
    expect(restsOn(featuresOfInstance(table, "b"))).toBe("This prediction rests on feature 3 (vision).");
    expect(restsOn([])).toMatch(/No feature/);
  });
});

import { derive, type FeatureDoc } from "./views/Features";

describe("a feature run over three modalities in the Features view", () => {
  it("keeps the run's own categories and shares", () => {
    const doc = {
      n: 3,
      columns: { mds: [0.9, 0.1, 0.4], category: ["language", "audio", "cross-modal"], stable: [true, false, true] },
      dominance: {
        modalities: ["text", "audio", "vision"],
        k: 1,
        proportions: { language: 1 / 3, audio: 1 / 3, vision: 0, "cross-modal": 1 / 3 },
        share_ci: { language: [0.2, 0.4] },
        null_shares: { language: { mean: 0.1, low: 0.05, high: 0.2, at_thresholds_mean: 0.01, at_thresholds_low: 0, at_thresholds_high: 0.02 } },
      },
      extractor: {},
      model: {},
      interventions: null,
      has_images: false,
    } as FeatureDoc;
    const d = derive(doc, 2);
    expect(d.categories).toEqual(["language", "audio", "cross-modal"]);
    expect(d.shares.audio).toBeCloseTo(1 / 3);
    expect(d.shareCI?.language).toEqual({ low: 0.2, high: 0.4 });
    expect(d.chance?.language.mean).toBe(0.01);
    expect(d.stableCounts.language).toBe(1);
  });
});
