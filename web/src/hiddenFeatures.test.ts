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
