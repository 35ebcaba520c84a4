import { describe, expect, it } from "vitest";
import { sortIndices, topIndices } from "./InstanceList";

describe("instance list order", () => {
  const col = [0.5, null, 2, NaN, 0.5, -1];
  it("sorts numbers either way, missing values last, ties in run order", () => {
    expect(Array.from(sortIndices([0, 1, 2, 3, 4, 5], col, true, false))).toEqual([2, 0, 4, 5, 1, 3]);
    expect(Array.from(sortIndices([0, 1, 2, 3, 4, 5], col, false, false))).toEqual([5, 0, 4, 2, 1, 3]);
    expect(Array.from(sortIndices([4, 2, 1], col, true, false))).toEqual([2, 4, 1]); // a selection keeps to itself
  });
  it("sorts ids as text", () => {
    const ids = ["b-10", "a-2", null, "b-9", "a-2"];
    expect(Array.from(sortIndices([0, 1, 2, 3, 4], ids, false, true))).toEqual([1, 4, 0, 3, 2]);
    expect(Array.from(sortIndices([0, 1, 2, 3, 4], ids, true, true))).toEqual([3, 0, 1, 4, 2]);
  });
  it("orders 500,000 rows", () => {
    const N = 500_000;
    const err = Array.from({ length: N }, (_, i) => ((i * 2654435761) % 1000003) / 1000);
    const idx = Int32Array.from({ length: N }, (_, i) => i);
    const t0 = performance.now();
    const out = sortIndices(idx, err, true, false);
    const ms = performance.now() - t0;
    let ordered = out.length === N;
    for (let k = 1; k < N; k++) if (err[out[k - 1]] < err[out[k]]) ordered = false;
    expect(ordered).toBe(true);
    console.log(`instance list: 500,000 rows ordered by |error| in ${ms.toFixed(0)} ms`);
    expect(ms).toBeLessThan(2000);
  });
  it("takes the first k rows of the same order in one pass (ties, missing values, text, a selection)", () => {
    const cols: [(number | string | null)[], boolean][] = [
      [[0.5, null, 2, NaN, 0.5, -1, 2, 0.5, null, 7], false],
      [["b", "a", null, "b", "c", "a", null, "d", "a", "b"], true],
    ];
    for (const [c, asText] of cols)
      for (const desc of [true, false])
        for (const idx of [null, [1, 2, 4, 6, 7, 9]])
          for (let k = 0; k <= 11; k++) {
            const all = sortIndices(idx ?? Array.from({ length: c.length }, (_, i) => i), c, desc, asText);
            expect(Array.from(topIndices(idx, c.length, c, desc, asText, k))).toEqual(Array.from(all.subarray(0, k)));
          }
    // known answer: the 3 largest, the tie at 2 in run order
    expect(Array.from(topIndices(null, 10, cols[0][0], true, false, 3))).toEqual([9, 2, 6]);
  });
});
