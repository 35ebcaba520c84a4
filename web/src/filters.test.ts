import { describe, expect, it } from "vitest";
import { applyFilter, decodeFilter, describeFilter, encodeFilter, fieldOf, filterFields, FilterError, missingColumns, normaliseFilter, relaxations, type Columns, type FilterSpec } from "./filters";
import type { InstanceTable } from "./types";

// six instances with every kind of column, missing values included
const cols: Columns = {
  id: ["mosi-1", "mosi-12", "mosei-3", "mosi-120", "mosei-40", "x"],
  label: [2.5, -1, 0, null, 3, 2],
  prediction: [2, -0.5, 0.4, 1, NaN, 1.5],
  abs_error: [0.5, 0.5, 0.4, null, null, 0.5],
  interaction_type: ["dominance", "conflict", "complement", "conflict", "none", "dominance"],
  dominant_modality: ["text", null, null, null, null, "audio"],
  text: ["Great movie", "boring, so BORING", "it was ok", null, "GREAT; fun", "meh"],
  meta_speaker: ["a", "b", "a", "c", "b", "a"],
};
const n = 6;
const run = (spec: FilterSpec) => Array.from(applyFilter(spec, cols, n));

describe("applyFilter", () => {
  it("gives known answers, conditions AND-ed", () => {
    expect(run({ conditions: [{ column: "label", op: "range", min: 2, max: null }] })).toEqual([0, 4, 5]);
    expect(run({ conditions: [{ column: "label", op: "range", min: -1, max: 0 }] })).toEqual([1, 2]);
    expect(run({ conditions: [{ column: "interaction_type", op: "in", values: ["conflict", "complement"] }] })).toEqual([1, 2, 3]);
    expect(run({ conditions: [{ column: "text", op: "contains", text: "great" }] })).toEqual([0, 4]);
    expect(run({ conditions: [{ column: "id", op: "prefix", text: "mosi-1" }] })).toEqual([0, 1, 3]);
    expect(run({ conditions: [{ column: "id", op: "in", values: ["mosi-12"] }] })).toEqual([1]);
    expect(
      run({
        conditions: [
          { column: "label", op: "range", min: 2, max: null },
          { column: "meta_speaker", op: "in", values: ["a"] },
        ],
      }),
    ).toEqual([0, 5]);
    expect(run({ conditions: [] })).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it("never matches a missing value with a range, and matches it with an explicit 'missing' value", () => {
    expect(run({ conditions: [{ column: "label", op: "range", min: -100, max: 100 }] })).toEqual([0, 1, 2, 4, 5]); // null label out
    expect(run({ conditions: [{ column: "prediction", op: "range", min: null, max: 100 }] })).toEqual([0, 1, 2, 3, 5]); // NaN out
    expect(run({ conditions: [{ column: "dominant_modality", op: "in", values: [null] }] })).toEqual([1, 2, 3, 4]);
    expect(run({ conditions: [{ column: "dominant_modality", op: "in", values: [null, "audio"] }] })).toEqual([1, 2, 3, 4, 5]);
    expect(run({ conditions: [{ column: "text", op: "contains", text: "o" }] })).toEqual([0, 1, 2]); // null text: no match
    // typed columns (the binary transport): NaN is missing too
    const typed: Columns = { ...cols, label: Float64Array.from([2.5, -1, 0, NaN, 3, 2]) };
    expect(Array.from(applyFilter({ conditions: [{ column: "label", op: "range", min: 2, max: 3 }] }, typed, n))).toEqual([0, 4, 5]);
  });

  it("returns an empty result and, per condition, what dropping it would give", () => {
    const spec: FilterSpec = {
      conditions: [
        { column: "label", op: "range", min: 2, max: null },
        { column: "text", op: "contains", text: "xyz" },
      ],
    };
    expect(run(spec)).toEqual([]);
    expect(describeFilter(spec)).toBe("label ≥ 2 and word contains 'xyz'");
    expect(relaxations(spec, cols, n)).toEqual([
      { index: 0, count: 0 },
      { index: 1, count: 3 },
    ]);
  });

  it("names a column the run does not have", () => {
    expect(() => run({ conditions: [{ column: "meta_nope", op: "in", values: ["a"] }] })).toThrow(FilterError);
    expect(missingColumns({ conditions: [{ column: "text", op: "contains", text: "a" }] }, { id: [] })).toEqual(["text"]);
  });
});

describe("encode / decode", () => {
  const spec: FilterSpec = {
    conditions: [
      { column: "label", op: "range", min: -1.5, max: 2.25 },
      { column: "abs_error", op: "range", min: null, max: 0.5 },
      { column: "prediction", op: "range", min: 1e-7, max: null },
      { column: "interaction_type", op: "in", values: ["conflict", "dominance"] },
      { column: "dominant_modality", op: "in", values: [null, "text"] },
      { column: "text", op: "contains", text: "50%; off, now" },
      { column: "id", op: "prefix", text: "mosi-1" },
      { column: "meta_speaker", op: "in", values: ["a,b", "c;d"] },
    ],
  };

  it("round-trips every kind of condition, separators and percent signs included", () => {
    const text = encodeFilter(spec);
    expect(text.split(";")).toHaveLength(8);
    expect(text).toContain("label:-1.5..2.25");
    expect(text).toContain("abs_error:..0.5");
    expect(text).toContain("interaction_type=conflict,dominance");
    expect(decodeFilter(text)).toEqual(spec);
    expect(decodeFilter(encodeFilter(decodeFilter(text)))).toEqual(spec);
  });

  it("drops incomplete conditions and refuses bad ones with a reason", () => {
    expect(normaliseFilter({ conditions: [{ column: "label", op: "range", min: null, max: null }, { column: "text", op: "contains", text: "" }] })).toEqual({ conditions: [] });
    expect(encodeFilter({ conditions: [] })).toBe("");
    expect(decodeFilter("")).toEqual({ conditions: [] });
    expect(() => decodeFilter("label:abc..")).toThrow(/not a number/);
    expect(() => decodeFilter("label>2")).toThrow(/cannot read/);
    expect(() => decodeFilter("label:2")).toThrow(/lo..hi/);
    expect(() => normaliseFilter({ conditions: [{ column: "../etc", op: "in", values: ["a"] }] })).toThrow(/bad column/);
    expect(() => normaliseFilter({ conditions: [{ column: "label", op: "like", text: "a" }] })).toThrow(/unknown operator/);
    expect(() => normaliseFilter({ nope: 1 })).toThrow(FilterError);
  });
});

describe("builder fields", () => {
  it("chooses range or set by a column's values", () => {
    expect(fieldOf("meta_speaker", cols.meta_speaker)?.kind).toBe("set");
    expect(fieldOf("meta_speaker", cols.meta_speaker)?.values?.[0]).toEqual({ value: "a", count: 3 });
    const many = Array.from({ length: 100 }, (_, i) => i / 7);
    expect(fieldOf("meta_x", many)).toMatchObject({ kind: "range", min: 0, max: 99 / 7 });
    expect(fieldOf("meta_name", Array.from({ length: 100 }, (_, i) => `n${i}`))?.kind).toBe("text");
    expect(fieldOf("meta_empty", [null, null])).toBeNull();
    const table = { n, modalities: [], columns: cols, shapley: {}, x: [], y: [], projection_method: "pca" } as unknown as InstanceTable;
    const fields = filterFields(table);
    expect(fields.find((f) => f.column === "label")?.kind).toBe("range"); // few distinct labels still a range
    expect(fields.find((f) => f.column === "interaction_type")?.kind).toBe("set");
    expect(fields.map((f) => f.column)).toContain("meta_speaker");
  });
});

describe("speed", () => {
  it("filters 500,000 rows in one pass", () => {
    const N = 500_000;
    const types = ["dominance", "complement", "conflict", "none"];
    const words = ["great", "boring", "fun", "plot", "actor", "movie"];
    const big: Columns = {
      label: Float64Array.from({ length: N }, (_, i) => ((i * 7919) % 61) / 10 - 3),
      abs_error: Array.from({ length: N }, (_, i) => ((i * 104729) % 1000) / 500),
      interaction_type: Array.from({ length: N }, (_, i) => types[i % 4]),
      text: Array.from({ length: N }, (_, i) => `${words[i % 6]} and ${words[(i * 5) % 6]} ${i}`),
      id: Array.from({ length: N }, (_, i) => `u-${i}`),
    };
    const spec: FilterSpec = {
      conditions: [
        { column: "label", op: "range", min: 0, max: null },
        { column: "abs_error", op: "range", min: null, max: 1 },
        { column: "interaction_type", op: "in", values: ["conflict", "complement"] },
        { column: "text", op: "contains", text: "GREAT" },
      ],
    };
    applyFilter(spec, big, N); // first call lower-cases the text column once
    const t0 = performance.now();
    const out = applyFilter(spec, big, N);
    const ms = performance.now() - t0;
    // check against a plain recomputation
    let expected = 0;
    for (let i = 0; i < N; i++) {
      const l = (big.label as Float64Array)[i];
      const e = big.abs_error![i] as number;
      const ty = big.interaction_type![i] as string;
      if (l >= 0 && e <= 1 && (ty === "conflict" || ty === "complement") && (big.text![i] as string).includes("great")) expected++;
    }
    expect(out.length).toBe(expected);
    expect(out.length).toBeGreaterThan(0);
    console.log(`filter of 500,000 rows, 4 conditions: ${ms.toFixed(1)} ms (${out.length} match)`);
    expect(ms).toBeLessThan(500);
  });
});
