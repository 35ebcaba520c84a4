import { describe, expect, it } from "vitest";
import { cellRows, compareRuns, instancesOf, manyPath, readCmp, runLabel, transitionFor, writeCmp, type ManyComparison } from "./compare";

// three runs on five matched instances; counts as the server computes them (src/modalens/app/compare.py)
const doc: ManyComparison = {
  runs: [
    { id: "a", name: "a", model: "late-fusion", dataset: "d", modalities: ["text"] },
    { id: "b", name: "b", model: "b", dataset: "d", modalities: ["text"] },
  ],
  label_kind: "regression",
  n_matched: 5,
  columns: { id: ["u0", "u1", "u2", "u3", "u4"], label: [1, -1, 2, 0, 1] },
  instances: { a: [0, 1, 2, 3, 4], b: [4, 3, 2, 1, 0] },
  predictions: { a: [1, -1, 2, 0, 1], b: [-1, -1, 2, 0, 1] },
  types: {
    a: ["dominance:text", "dominance:text", "conflict", "complement", "dominance:audio"],
    b: ["conflict", "dominance:text", "conflict", "conflict", "complement"],
  },
  metrics: { a: { n: 5, mae: 0, r: 1, acc2: 1 }, b: { n: 5, mae: 0.4, r: 0.8, acc2: 0.75 } },
  importance: { a: { text: 1 }, b: { text: 0.5 } },
  disagreement: { runs: ["a", "b"], counts: [[0, 1], [1, 0]], fraction: [[0, 0.2], [0.2, 0]] },
  transitions: [
    {
      a: "a",
      b: "b",
      rows: ["dominance:audio", "dominance:text", "complement", "conflict"],
      cols: ["dominance:text", "complement", "conflict"],
      counts: [
        [0, 1, 0],
        [1, 0, 1],
        [0, 0, 1],
        [0, 0, 1],
      ],
    },
  ],
};

describe("N-run comparison", () => {
  it("each cell's rows are the instances the server counted there", () => {
    const t = transitionFor(doc, "a", "b")!;
    t.rows.forEach((row, i) => t.cols.forEach((col, j) => expect(cellRows(doc, "a", "b", row, col).length).toBe(t.counts[i][j])));
    expect(cellRows(doc, "a", "b", "dominance:text", "conflict")).toEqual([0]);
  });

  it("reads a stored pair transposed for the other direction", () => {
    const t = transitionFor(doc, "b", "a")!;
    expect(t.rows).toEqual(["dominance:text", "complement", "conflict"]);
    expect(t.cols).toEqual(["dominance:audio", "dominance:text", "complement", "conflict"]);
    expect(t.counts[2]).toEqual([0, 1, 1, 1]); // B's conflict came from A's dominance:text, complement, conflict
    expect(transitionFor(doc, "a", "zzz")).toBeNull();
  });

  it("maps matched rows to each run's own instance numbers", () => {
    expect(instancesOf(doc, "b", [0, 1])).toEqual([4, 3]);
    expect(instancesOf(doc, "a", [0, 1])).toEqual([0, 1]);
  });

  it("orders the chosen runs as the server lists them, so one document serves any choice order", () => {
    expect(compareRuns(["a", "b", "c"], ["c", "a"])).toEqual(["a", "c"]);
    expect(manyPath(["a", "b c"])).toBe("api/compare?runs=a,b%20c");
  });

  it("names a run by its model", () => {
    expect(runLabel({ name: "run-1", model: "mult" })).toBe("mult (run-1)");
    expect(runLabel({ name: "run-1", model: null })).toBe("run-1");
  });

  it("keeps the compared runs in the URL under cmp, leaving other keys alone", () => {
    expect(readCmp("?run=a&cmp=b,c")).toEqual(["b", "c"]);
    expect(readCmp("?run=a")).toBeNull();
    expect(writeCmp("?run=a&tab=compare", ["b", "c"])).toBe("?run=a&tab=compare&cmp=b%2Cc");
    expect(readCmp(writeCmp("?run=a", ["b", "c"]))).toEqual(["b", "c"]);
    expect(writeCmp("?run=a&cmp=b", [])).toBe("?run=a");
  });
});
