import { describe, expect, it } from "vitest";
import { ENCODED_BASE64, EXPECTED } from "./coltableFixture";
import { decodeTable } from "./loadTable";

function bytesOf(b64: string): ArrayBuffer {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out.buffer;
}

describe("binary instance table (encoded by modalens.app.coltable)", () => {
  it("decodes to exactly the JSON document", () => {
    const table = decodeTable(bytesOf(ENCODED_BASE64));
    expect(table).toEqual(EXPECTED);
  });

  it("keeps nulls, NaN-as-null, strings, booleans and large integers", () => {
    const t = decodeTable(bytesOf(ENCODED_BASE64));
    expect(t.n).toBe(5);
    expect(t.modalities).toEqual(["text", "audio"]);
    expect(t.columns.label).toEqual([0.5, null, -1.25, null, 1e-300]);
    expect(t.columns.id).toEqual(["a", null, "ß ✓", "a", '"q"']);
    expect(t.columns.flag).toEqual([true, null, false, true, false]);
    expect(t.columns.big).toEqual([0, 1, -(2 ** 40), 7, 2 ** 53]);
    expect(t.columns.lists).toEqual([[1, 2], null, [], [3], [4, 5]]);
    expect(t.shapley.text).toEqual([0.1, 0.2, null, -0.4, 0.5]);
    expect(t.x).toEqual([0.1, null, 3, 5, 0]);
    expect(t.y[3]).toBeNull();
  });

  it("refuses what is not a column document", () => {
    expect(() => decodeTable(new TextEncoder().encode('{"n": 1, "columns": {}}').buffer as ArrayBuffer)).toThrow(/not a modalens column document/);
    const buf = bytesOf(ENCODED_BASE64);
    new DataView(buf).setUint32(4, 2, true);
    expect(() => decodeTable(buf)).toThrow(/version 2/);
    expect(() => decodeTable(bytesOf(ENCODED_BASE64).slice(0, 200))).toThrow(/truncated|past the end/);
  });
});
