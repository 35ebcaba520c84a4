import { describe, expect, it } from "vitest";
import { textToBytes, unpack } from "./exportData";

// made by src/modalens/app/export.py pack_documents({"documents": {"api/x": {"x": 1.23456, "n": 3,
// "neg": -0.000123456, "big": 98765.4321, "l": [0.5, None, 2.0], "s": "é<\x01"}, "api/m": "data:image/png;base64,AAEC",
// "api/m2": <the same>}, "note": "hi"})
const PACKED =
  "4d4c5831910000007b226d657461223a7b226e6f7465223a226869227d2c22646f6373223a5b5b226170692f78222c302c35372c305d5d2c226d65646961223a5b5b226170692f6d222c22696d6167652f706e67222c305d2c5b226170692f6d32222c22696d6167652f706e67222c305d5d2c22626c6f6273223a5b5b302c335d5d2c226e756d62657273223a342c2274657874223a35377d7b2278223a012c226e223a332c226e6567223a012c22626967223a012c226c223a5b012c6e756c6c2c325d2c2273223a22c3a93cefbfbd227dd32d958804fb2613fdf901fc000102";

function hex(s: string): Uint8Array {
  return new Uint8Array(s.match(/../g)!.map((h) => parseInt(h, 16)));
}

describe("export container", () => {
  it("decodes documents with their floats to 4 significant digits and media as data: URIs", () => {
    const emb = unpack(hex(PACKED));
    expect(emb.note).toBe("hi");
    expect(Object.keys(emb.documents).sort()).toEqual(["api/m", "api/m2", "api/x"]);
    expect(emb.documents["api/x"]).toEqual({ x: 1.235, n: 3, neg: -0.0001235, big: 98770, l: [0.5, null, 2], s: "é<\ufffd" });
    // one stored file serves both paths
    expect(emb.documents["api/m"]).toBe("data:image/png;base64,AAEC");
    expect(emb.documents["api/m2"]).toBe("data:image/png;base64,AAEC");
    // decoded once, then kept
    expect(emb.documents["api/x"]).toBe(emb.documents["api/x"]);
  });

  it("fills a given object, so a reader holding it sees the documents appear", () => {
    const docs: Record<string, unknown> = {};
    unpack(hex(PACKED), docs);
    expect("api/x" in docs).toBe(true);
  });

  it("refuses what is not a container", () => {
    expect(() => unpack(new Uint8Array([1, 2, 3, 4, 0, 0, 0, 0]))).toThrow(/not a modalens export/);
  });
});

describe("page text to bytes", () => {
  it("reads one byte per character, windows-1252 and Latin-1 alike, and undoes the escapes", () => {
    // € is byte 0x80 in windows-1252; U+0081 is byte 0x81; ESC 02 = NUL, ESC 03 = ESC, ESC 04 = CR, ESC 05 = "<"
    expect(Array.from(textToBytes("\u20ac\x80\x81A\x01\x02\x01\x03\x01\x04\x01\x05\xff"))).toEqual([0x80, 0x80, 0x81, 0x41, 0x00, 0x01, 0x0d, 0x3c, 0xff]);
  });

  it("refuses a bad escape and characters no byte decodes to", () => {
    expect(() => textToBytes("\x01\x09")).toThrow(/bad escape/);
    expect(() => textToBytes("\u2603")).toThrow(/unexpected character/);
  });
});
