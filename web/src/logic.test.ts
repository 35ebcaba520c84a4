import { describe, expect, it } from "vitest";
import { DIVERGING, diverging, divergingRgb, hexToRgb, interpolate, maxAbs, modalityColor, robustMaxAbs, textOn } from "./colors";
import { compareSummary, disagreementRows } from "./compare";
import { PointGrid, pointColors } from "./points";
import { initialSelection, inPolygon, intersect, lassoSelect, normalise, selectionMask, selectionReducer } from "./selection";
import { accuracy, filterTemplates, histogram, interactionMatrix, modalityImportance, performance, topBy, typeStats, waterfall } from "./stats";
import type { Comparison, InstanceTable, Template } from "./types";

function table(): InstanceTable {
  return {
    n: 4,
    modalities: ["text", "audio"],
    columns: {
      label: [1, -1, 2, 0],
      prediction: [2, -1, 1, -0.5],
      abs_error: [1, 0, 1, 0.5],
      error: [1, 0, -1, -0.5],
      interaction_type: ["dominance", "conflict", "dominance", "complement"],
      dominant_modality: ["text", null, "audio", null],
      id: ["a", "b", "c", "d"],
    },
    shapley: { text: [1, -2, 0.5, null], audio: [-1, 1, 3, 0] },
    x: [0, 1, 2, 3],
    y: [0, 1, 2, 3],
    projection_method: "pca",
  };
}

describe("colours", () => {
  it("diverging map is white at zero, blue for negative, red for positive, clamped", () => {
    expect(diverging(0, 1)).toBe(DIVERGING[4]);
    expect(diverging(-1, 1)).toBe(DIVERGING[0]);
    expect(diverging(5, 1)).toBe(DIVERGING[8]);
    const [r, , b] = divergingRgb(0.5, 1);
    expect(r).toBeGreaterThan(b);
    expect(diverging(NaN, 1)).toBe(DIVERGING[4]);
  });
  it("interpolates between stops", () => {
    expect(interpolate(["#000000", "#ffffff"], 0.5)).toEqual([127.5, 127.5, 127.5]);
    expect(hexToRgb("#ff8000")).toEqual([255, 128, 0]);
  });
  it("modalities keep one colour by name or kind", () => {
    expect(modalityColor("text")).toBe("#E69F00");
    expect(modalityColor("speech", "audio")).toBe(modalityColor("audio"));
    expect(modalityColor("custom")).toBe(modalityColor("custom"));
  });
  it("picks readable text colour and robust scales", () => {
    expect(textOn([0, 0, 0])).toBe("#fff");
    expect(textOn([255, 255, 255])).toBe("#111");
    expect(maxAbs([1, -3, null, NaN])).toBe(3);
    expect(robustMaxAbs([...Array(99).fill(1), 1000], 0.95)).toBe(1);
  });
});

describe("selection state", () => {
  it("replaces, adds, intersects and clears", () => {
    let s = selectionReducer(initialSelection, { type: "select", indices: [3, 1, 3], source: "lasso" });
    expect(Array.from(s.selected!)).toEqual([1, 3]);
    s = selectionReducer(s, { type: "select", indices: [2], source: "lasso", mode: "add" });
    expect(Array.from(s.selected!)).toEqual([1, 2, 3]);
    expect(s.source).toBe("lasso + lasso");
    s = selectionReducer(s, { type: "select", indices: [2, 3, 9], source: "t", mode: "intersect" });
    expect(Array.from(s.selected!)).toEqual([2, 3]);
    s = selectionReducer(s, { type: "focus", index: 2 });
    s = selectionReducer(s, { type: "clear" });
    expect(s.selected).toBeNull();
    expect(s.focused).toBe(2);
  });
  it("hover with the same index keeps the same state object (no re-render)", () => {
    const s = selectionReducer(initialSelection, { type: "hover", index: 4 });
    expect(selectionReducer(s, { type: "hover", index: 4 })).toBe(s);
  });
  it("masks and set operations", () => {
    expect(Array.from(selectionMask(Int32Array.from([0, 2]), 4))).toEqual([1, 0, 1, 0]);
    expect(Array.from(selectionMask(null, 2))).toEqual([1, 1]);
    expect(Array.from(intersect(normalise([5, 1, 3]), normalise([3, 4, 5])))).toEqual([3, 5]);
  });
  it("lasso selects exactly the points inside the polygon", () => {
    const square: [number, number][] = [[0, 0], [2, 0], [2, 2], [0, 2]];
    expect(inPolygon(1, 1, square)).toBe(true);
    expect(inPolygon(3, 1, square)).toBe(false);
    const xs = Float32Array.from([0.5, 1.5, 2.5, -1, 1]);
    const ys = Float32Array.from([0.5, 1.5, 0.5, 1, 3]);
    expect(lassoSelect(xs, ys, square)).toEqual([0, 1]);
    // concave "L": the notch is outside
    const l: [number, number][] = [[0, 0], [3, 0], [3, 1], [1, 1], [1, 3], [0, 3]];
    expect(lassoSelect(Float32Array.from([2, 2, 0.5]), Float32Array.from([0.5, 2, 2]), l)).toEqual([0, 2]);
    expect(lassoSelect(xs, ys, [[0, 0], [1, 1]])).toEqual([]);
  });
});

describe("statistics", () => {
  it("performance: MAE, Pearson r, Acc-2", () => {
    const p = performance([1, 2, 3, -1], [1, 2, 3, -1], [0, 1, 2, 3]);
    expect(p.mae).toBe(0);
    expect(p.corr).toBeCloseTo(1);
    expect(p.acc2).toBe(1);
    const q = performance([1, -1], [2, 1], [0, 1]);
    expect(q.mae).toBe(1.5);
    expect(q.acc2).toBe(0.5);
    expect(performance([1], [1], []).count).toBe(0);
  });
  it("accuracy compares classes", () => {
    expect(accuracy([0, 1, 2, null], [0, 2, 2, 1], [0, 1, 2, 3])).toBeCloseTo(2 / 3);
  });
  it("histogram clamps into end bins", () => {
    const h = histogram([-5, 0.1, 0.2, 0.9, 7], [0, 1, 2, 3, 4], 0, 1, 2);
    expect(h.counts).toEqual([3, 2]);
    expect(h.edges).toEqual([0, 0.5, 1]);
  });
  it("modality importance and type stats over a subset", () => {
    const t = table();
    const imp = modalityImportance(t, [0, 1, 3]);
    expect(imp[0].meanAbs).toBeCloseTo(1.5); // null skipped
    expect(imp[1].meanAbs).toBeCloseTo(2 / 3);
    const ts = typeStats(t, [0, 1, 2, 3], ["dominance", "complement", "conflict", "none"]);
    expect(ts[0]).toMatchObject({ type: "dominance", count: 2, share: 0.5, mae: 1 });
    expect(ts[3].count).toBe(0);
  });
  it("templates: filter, sort and count members in the selection", () => {
    const mk = (id: number, pol: string, sup: number, attr: number, mods: string[], members: number[]): Template => ({
      template_id: id, items: mods.map((m) => `${m}:x`), modalities: mods, polarity: pol, support: sup, count: members.length,
      mean_prediction: attr, mean_attribution: attr, rank: id, members,
    });
    const ts = [mk(0, "positive", 0.1, 0.5, ["text"], [0, 1]), mk(1, "negative", 0.3, -2, ["audio", "text"], [1, 2, 3]), mk(2, "positive", 0.2, 1, ["vision"], [3])];
    const sel = selectionMask(Int32Array.from([1, 3]), 4);
    const rows = filterTemplates(ts, { polarity: "all", modality: "all", sort: "support", selection: sel });
    expect(rows.map((r) => r.template_id)).toEqual([1, 2, 0]);
    expect(rows.map((r) => r.inSelection)).toEqual([2, 1, 1]);
    expect(filterTemplates(ts, { polarity: "positive", modality: "all", sort: "attribution", selection: null }).map((r) => r.template_id)).toEqual([2, 0]);
    expect(filterTemplates(ts, { polarity: "all", modality: "text", sort: "support", selection: null }).map((r) => r.template_id)).toEqual([1, 0]);
  });
  it("waterfall ends at base + sum; interaction matrix is symmetric with Shapley on the diagonal", () => {
    const w = waterfall(0.5, [{ modality: "text", value: 1 }, { modality: "audio", value: -2 }]);
    expect(w[1]).toEqual({ modality: "audio", start: 1.5, end: -0.5, value: -2 });
    const m = interactionMatrix(["t", "a"], [{ modality: "t", value: 1 }, { modality: "a", value: 2 }], [{ modality_i: "t", modality_j: "a", shapley_interaction: 0.3 }]);
    expect(m).toEqual([[1, 0.3], [0.3, 2]]);
  });
  it("topBy ranks and skips non-finite keys", () => {
    const key = [3, NaN, 5, 1];
    expect(topBy([0, 1, 2, 3], (i) => key[i], 2)).toEqual([2, 0]);
  });
});

describe("projection colours and picking", () => {
  it("colours by type with a legend in type order", () => {
    const { rgb, scale } = pointColors(table(), "type", {}, false);
    expect(Array.from(rgb.slice(0, 3))).toEqual(hexToRgb("#4477AA"));
    expect(scale.items!.map((i) => i.label)).toEqual(["dominance", "complement", "conflict"]);
  });
  it("colours signed error on the diverging map and abs error sequentially", () => {
    const d = pointColors(table(), "error", {}, false);
    expect(d.scale).toMatchObject({ kind: "diverging", max: 1 });
    expect(Array.from(d.rgb.slice(3, 6))).toEqual(hexToRgb(DIVERGING[4]));
    expect(pointColors(table(), "abs_error", {}, false).scale.kind).toBe("sequential");
    expect(pointColors(table(), "label", {}, true).scale.kind).toBe("categorical");
  });
  it("the grid finds the nearest point within the radius", () => {
    const g = new PointGrid(Float32Array.from([0, 1, 5]), Float32Array.from([0, 1, 5]), 8);
    expect(g.nearest(0.9, 0.9, 0.5)).toBe(1);
    expect(g.nearest(3, 3, 0.5)).toBeNull();
    expect(g.nearest(4.8, 5.1, 1)).toBe(2);
  });
});

describe("compare", () => {
  const c: Comparison = {
    a: {} as Comparison["a"], b: {} as Comparison["b"], label_kind: "regression", n_matched: 3, n_disagree: 1,
    columns: { id: ["x", "y", "z"], instance_a: [0, 1, 2], label: [1, 1, -1], prediction_a: [1, 0.5, -1], prediction_b: [2, -0.5, -1], difference: [1, -1, 0], disagree: [false, true, false] },
    shapley: { a: { text: [1, -1, 0] }, b: { text: [2, 2, null] } },
  };
  it("lists disagreements first by |difference|", () => {
    expect(disagreementRows(c, true, 10).map((r) => r.id)).toEqual(["y"]);
    expect(disagreementRows(c, false, 2).map((r) => r.id)).toEqual(["x", "y"]);
  });
  it("summarises MAE and importance per run", () => {
    const s = compareSummary(c);
    expect(s.maeA).toBeCloseTo(0.5 / 3);
    expect(s.maeB).toBeCloseTo((1 + 1.5 + 0) / 3);
    expect(s.importanceB.text).toBe(2);
  });
});
