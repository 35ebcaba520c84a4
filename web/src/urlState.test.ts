import { describe, expect, it } from "vitest";
import { initialSelection, selectionReducer } from "./selection";
import { decodeSelection, encodeSelection, parseState, withParams } from "./urlState";

describe("selection in a link", () => {
  it("writes runs of consecutive indices as ranges and reads them back", () => {
    const idx = Int32Array.from([0, 1, 2, 3, 4, 5, 9, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
    expect(encodeSelection(idx)).toBe("0-5,9,12-20");
    expect(Array.from(decodeSelection("0-5,9,12-20", 100)!)).toEqual(Array.from(idx));
    expect(encodeSelection(new Int32Array(0))).toBe("");
    expect(Array.from(decodeSelection("", 10)!)).toEqual([]);
  });

  it("says when a selection is too large for a link", () => {
    const every2nd = Int32Array.from({ length: 5000 }, (_, i) => 2 * i);
    expect(encodeSelection(every2nd)).toBeNull();
    expect(encodeSelection(Int32Array.from({ length: 500_000 }, (_, i) => i))).toBe("0-499999"); // contiguous is cheap
  });

  it("refuses malformed text and keeps indices inside the run", () => {
    expect(decodeSelection("1,a", 10)).toBeNull();
    expect(decodeSelection("5-2", 10)).toBeNull();
    expect(decodeSelection("0-99999999999", 10)).toBeNull();
    expect(Array.from(decodeSelection("8-12,3,3", 10)!)).toEqual([3, 8, 9]);
  });
});

describe("query string", () => {
  it("reads every key and ignores a bad instance number", () => {
    const s = parseState("?run=demo&tab=compare&slice=label:2..;text~great&sel=0-3&open=7&color=error");
    expect(s).toEqual({ run: "demo", tab: "compare", slice: "label:2..;text~great", sel: "0-3", open: 7, color: "error" });
    expect(parseState("?open=-1").open).toBeNull();
    expect(parseState("").run).toBeNull();
  });

  it("sets and removes keys, keeps other helpers' keys, and round-trips awkward values", () => {
    const search = withParams("?run=a&cmp=x,y&open=3", { open: null, slice: "text~50% & more;id^a b+c", run: "b" });
    expect(search.startsWith("?run=b&cmp=x,y&slice=")).toBe(true);
    expect(search).toContain("text~50%25%20%26%20more;id^".replace("^", "%5E"));
    const q = new URLSearchParams(search);
    expect(q.get("slice")).toBe("text~50% & more;id^a b+c");
    expect(q.get("cmp")).toBe("x,y");
    expect(q.has("open")).toBe(false);
    expect(withParams("?a=1", { a: null })).toBe("");
  });
});

describe("selection state", () => {
  it("keeps the filter only while the selection is exactly its result", () => {
    let s = selectionReducer(initialSelection, { type: "select", indices: Int32Array.from([1, 2, 5]), source: "filter: label ≥ 2", filter: "label:2.." });
    expect(s.filter).toBe("label:2..");
    expect(Array.from(s.selected!)).toEqual([1, 2, 5]);
    s = selectionReducer(s, { type: "select", indices: [2, 9], source: "lasso", mode: "intersect" });
    expect(s.filter).toBeNull();
    expect(Array.from(s.selected!)).toEqual([2]);
    expect(s.source).toBe("filter: label ≥ 2 ∩ lasso");
    s = selectionReducer(s, { type: "clear" });
    expect(s.filter).toBeNull();
  });
});
