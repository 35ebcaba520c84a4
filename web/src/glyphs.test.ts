import { describe, expect, it } from "vitest";
import { acousticGroup, emotionOf, faceFeatures, faceGeometry, glyphRadius, itemGlyph, prepareGlyphs, rosePetals, scaleEmotion, visibleIndices, type GlyphDocument } from "./glyphs";

describe("face", () => {
  it("smiles with joy and frowns with sadness (canvas y grows downwards)", () => {
    const happy = faceGeometry(faceFeatures({ joy: 1 }), 0, 0, 10);
    expect(happy.mouth.upper[1]).toBeGreaterThan(happy.mouth.y0); // control point below the corners: a smile
    expect(happy.mouth.upper[1] - happy.mouth.y0).toBeCloseTo(3.4); // 0.34 r at full joy
    const sad = faceGeometry(faceFeatures({ sadness: 1 }), 0, 0, 10);
    expect(sad.mouth.upper[1]).toBeLessThan(sad.mouth.y0);
    const neutral = faceGeometry(faceFeatures({}), 0, 0, 10);
    expect(neutral.mouth.upper[1]).toBe(neutral.mouth.y0);
    expect(neutral.mouth.lower).toBeNull();
  });

  it("maps emotions to features as documented", () => {
    expect(faceFeatures({ joy: 0.8, sadness: 0.3 })).toMatchObject({ mouthCurve: 0.5, browTilt: -0.3 });
    expect(faceFeatures({ disgust: 1 }).mouthCurve).toBeCloseTo(-0.6);
    expect(faceFeatures({ anger: 1 }).browTilt).toBe(1);
    expect(faceFeatures({ surprise: 1 })).toMatchObject({ browLift: 1, eyeOpen: 1, mouthOpen: 0.8 });
    expect(faceFeatures({ fear: 1 }).browLift).toBeCloseTo(0.7);
    expect(faceFeatures({ joy: 1 }).eyeOpen).toBeCloseTo(0.2);
    expect(faceFeatures({ joy: NaN, anger: 2 }).mouthCurve).toBe(0); // unknown = 0; inputs clamped
    expect(faceFeatures({ anger: 2 }).browTilt).toBe(1);
  });

  it("pulls the inner brow ends down with anger and raises them with sadness", () => {
    const angry = faceGeometry(faceFeatures({ anger: 1 }), 50, 50, 10);
    for (const b of angry.brows) expect(b.y1).toBeGreaterThan(b.y0);
    expect(Math.abs(angry.brows[0].x1 - 50)).toBeLessThan(Math.abs(angry.brows[0].x0 - 50)); // x1 is the inner end
    const worried = faceGeometry(faceFeatures({ sadness: 1 }), 50, 50, 10);
    for (const b of worried.brows) expect(b.y1).toBeLessThan(b.y0);
    const surprised = faceGeometry(faceFeatures({ surprise: 1 }), 50, 50, 10);
    expect(surprised.brows[0].y0).toBeCloseTo(50 - 4.2 - 1.6);
    expect(surprised.eyes[0].ry).toBeCloseTo(1.7);
    expect(surprised.mouth.lower![1]).toBeGreaterThan(surprised.mouth.upper[1]); // an open mouth
  });

  it("scales emotions by the run's range", () => {
    expect(scaleEmotion(0.5, 0, 1)).toBe(0.5);
    expect(scaleEmotion(2, 0, 1)).toBe(1);
    expect(scaleEmotion(-1, 0, 1)).toBe(0);
    expect(scaleEmotion(0.3, 0.1, 0.5)).toBeCloseTo(0.5);
    expect(scaleEmotion(null, 0, 1)).toBeNaN();
    expect(scaleEmotion(0.3, 0.3, 0.3)).toBe(0); // a constant emotion draws neutral
  });
});

describe("rose", () => {
  it("gives each group a sector clockwise from 12 o'clock with area proportional to |attribution|", () => {
    const petals = rosePetals(["pitch", "voicing", "energy", "spectrum"], [1, 0.25, 0, 4], [0.5, -0.25, 0, 2], 20, 0);
    expect(petals.map((p) => p.group)).toEqual(["pitch", "voicing", "spectrum"]); // a zero petal is left out
    expect(petals[0].radius).toBe(20);
    expect(petals[1].radius).toBe(10); // a quarter of the value: half the radius, a quarter of the area
    expect(petals[2].radius).toBe(20); // capped at the scale
    expect(petals[0].start).toBeCloseTo(-Math.PI / 2 - Math.PI / 4);
    expect(petals[0].end).toBeCloseTo(-Math.PI / 2 + Math.PI / 4);
    expect(petals[1].start).toBeCloseTo(-Math.PI / 4); // the next sector clockwise
    expect(petals.map((p) => p.sign)).toEqual([1, -1, 1]);
    expect(rosePetals([], [], [], 10)).toEqual([]);
  });
});

describe("level of detail", () => {
  const xs = Float32Array.from({ length: 1000 }, (_, i) => i % 100);
  const ys = Float32Array.from({ length: 1000 }, (_, i) => Math.floor(i / 100));
  it("lists the points in view, or null beyond the limit", () => {
    const seen = visibleIndices(xs, ys, 10, 19.5, 2, 3, 400)!;
    expect(Array.from(seen)).toEqual([210, 211, 212, 213, 214, 215, 216, 217, 218, 219, 310, 311, 312, 313, 314, 315, 316, 317, 318, 319]);
    expect(visibleIndices(xs, ys, 0, 99, 0, 9, 400)).toBeNull();
    expect(visibleIndices(xs, ys, 0, 99, 0, 3, 400)!.length).toBe(400); // exactly the limit is allowed
    expect(visibleIndices(xs, ys, 0, 99, 0, 3, 399)).toBeNull();
    expect(visibleIndices([NaN], [NaN], -1, 1, -1, 1)!.length).toBe(0);
  });
  it("sizes glyphs by how many share the view", () => {
    expect(glyphRadius(600, 470, 1)).toBe(18);
    expect(glyphRadius(600, 470, 100)).toBeCloseTo(0.6 * Math.sqrt((600 * 470) / (Math.PI * 100)));
    expect(glyphRadius(600, 470, 400)).toBeCloseTo(8.99, 1);
    expect(glyphRadius(100, 100, 10000)).toBe(7);
  });
});

describe("glyph document", () => {
  it("scales faces by range and petals by the run's scale", () => {
    const doc: GlyphDocument = {
      n: 2,
      face: { modality: "vision", emotions: ["joy"], features: { joy: "Joy" }, values: { joy: [0.2, null] }, range: { joy: [0, 0.4] } },
      rose: { modality: "audio", groups: ["pitch"], features: { pitch: ["F0"] }, signed: { pitch: [-1, 0.5] }, abs: { pitch: [2, 0.5] }, scale: 2, source: "features" },
    };
    const g = prepareGlyphs(doc);
    expect(g.emotions.joy[0]).toBeCloseTo(0.5);
    expect(g.emotions.joy[1]).toBeNaN();
    expect(Array.from(g.petalAbs[0])).toEqual([1, 0.25]);
    expect(Array.from(g.petalSigned[0])).toEqual([-1, 0.5]);
    expect(prepareGlyphs({ n: 1, face: null, rose: null }).groups).toEqual([]);
  });
});

describe("template item glyphs", () => {
  it("names emotions and acoustic groups like the server", () => {
    expect(emotionOf("Joy Evidence")).toBe("joy");
    expect(emotionOf("happiness")).toBe("joy");
    expect(emotionOf("AU12")).toBeNull();
    expect(emotionOf("Joystick")).toBeNull();
    expect(acousticGroup("MCEP_14")).toBe("spectrum");
    expect(acousticGroup("F0")).toBe("pitch");
    expect(acousticGroup("H1H2")).toBe("voice quality");
    expect(acousticGroup("word_duration")).toBe("timing");
    expect(acousticGroup("minilm_pc0")).toBeNull();
  });
  it("gives a face to expressions, a petal to acoustics and a chip to words", () => {
    expect(itemGlyph("vision:Joy high")).toEqual({ kind: "face", modality: "vision", feature: "Joy", level: "high", emotion: "joy", value: 0.85 });
    expect(itemGlyph("vision:Joy Evidence very-low")).toMatchObject({ kind: "face", feature: "Joy Evidence", value: 0 });
    expect(itemGlyph("audio:MCEP_14 low")).toEqual({ kind: "petal", modality: "audio", feature: "MCEP_14", level: "low", group: "spectrum", value: 0.15 });
    expect(itemGlyph("vision:AU12 mid")).toEqual({ kind: "feature", modality: "vision", feature: "AU12", level: "mid" });
    expect(itemGlyph("text:thanks")).toEqual({ kind: "word", modality: "text", word: "thanks" });
    expect(itemGlyph("text:high")).toEqual({ kind: "word", modality: "text", word: "high" }); // a word, not a level
  });
});
