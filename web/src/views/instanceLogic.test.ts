import { describe, expect, it } from "vitest";
import { canonicalCoalition, coalitionOrder, estimateCellSeconds, fillCells, parseSteps, rankTracks, trackRows, trackScore, visibleRange, wordAtTime, type DescribedTrack } from "./instanceLogic";

function track(modality: string, feature: string, attribution: (number | null)[], opts: Partial<DescribedTrack> = {}): DescribedTrack {
  return { modality, feature, positions: attribution.map((_, k) => k), attribution, values: null, total: null, ...opts };
}

describe("track ranking", () => {
  it("scores by summed |attribution|, else by |total|", () => {
    expect(trackScore(track("a", "x", [0.5, -1, null]))).toBeCloseTo(1.5);
    expect(trackScore(track("a", "x", [null, null], { total: -0.25 }))).toBeCloseTo(0.25);
    expect(trackScore(track("a", "x", [null]))).toBe(0);
  });

  it("keeps the top k per modality, the whole-step track apart, the rest folded, groups together", () => {
    const tracks = [
      track("audio", "*", [1, 1]),
      track("audio", "F0", [0.1, 0.1], { group: "pitch" }),
      track("audio", "MCEP_1", [0.9, 0.9], { group: "spectrum" }),
      track("audio", "VUV", [0.5, 0.5], { group: "pitch" }),
      track("audio", "MCEP_2", [0.6, 0.6], { group: "spectrum" }),
      track("vision", "Joy", [null, null], { total: 2, group: "emotion" }),
    ];
    const [audio, vision] = rankTracks(tracks, 3);
    expect(audio.whole?.feature).toBe("*");
    // top 3 by score: MCEP_1 (1.8), MCEP_2 (1.2), VUV (1.0); spectrum first (its best is best), then pitch
    expect(audio.top.map((t) => t.feature)).toEqual(["MCEP_1", "MCEP_2", "VUV"]);
    expect(audio.rest.map((t) => t.feature)).toEqual(["F0"]);
    expect(vision.top.map((t) => t.feature)).toEqual(["Joy"]);

    const closed = trackRows([audio, vision], new Set());
    expect(closed.map((r) => (r.kind === "track" ? r.track.feature : r.kind === "group" ? `[${r.group}]` : `#${r.modality}:${r.folded}`))).toEqual([
      "#audio:1", "*", "[spectrum]", "MCEP_1", "MCEP_2", "[pitch]", "VUV", "#vision:0", "[emotion]", "Joy",
    ]);
    const open = trackRows([audio, vision], new Set(["audio"]));
    // the folded F0 joins after the top three, under a group header of its own
    expect(open.filter((r) => r.kind === "track").map((r) => (r.kind === "track" ? r.track.feature : ""))).toEqual(["*", "MCEP_1", "MCEP_2", "VUV", "F0", "Joy"]);
    expect(open.length).toBe(closed.length + 2);
  });
});

describe("virtualised rows", () => {
  it("renders only the rows in the window plus overscan", () => {
    expect(visibleRange(200, 22, 0, 220, 2)).toEqual([0, 12]);
    expect(visibleRange(200, 22, 2200, 220, 2)).toEqual([98, 112]);
    expect(visibleRange(200, 22, 99999, 220, 2)).toEqual([200, 200]);
    expect(visibleRange(0, 22, 0, 220)).toEqual([0, 0]);
  });
});

describe("word being spoken", () => {
  const timings = [
    { position: 0, start: 0, end: 0.3 },
    { position: 1, start: 0.3, end: 0.55 },
    { position: 3, start: 0.55, end: 1.2 },
  ];
  it("finds the word whose interval holds the time", () => {
    expect(wordAtTime(timings, 0)).toBe(0);
    expect(wordAtTime(timings, 0.29)).toBe(0);
    expect(wordAtTime(timings, 0.3)).toBe(1);
    expect(wordAtTime(timings, 1.0)).toBe(3);
    expect(wordAtTime(timings, 1.2)).toBeNull();
    expect(wordAtTime(timings, -1)).toBeNull();
    expect(wordAtTime([], 0.1)).toBeNull();
  });
});

describe("coalitions", () => {
  it("lists all 2^M coalitions: none, singles, pairs, all", () => {
    expect(coalitionOrder(["text", "audio", "vision"])).toEqual(["", "text", "audio", "vision", "text+audio", "text+vision", "audio+vision", "text+audio+vision"]);
    expect(coalitionOrder(["a", "b", "c", "d"]).length).toBe(16);
    expect(canonicalCoalition("vision+text", ["text", "audio", "vision"])).toBe("text+vision");
    expect(canonicalCoalition("", ["text"])).toBe("");
  });
});

describe("steps typed by hand", () => {
  it("parses single steps and ranges", () => {
    expect(parseSteps("3, 5-7,3", 10)).toEqual([3, 5, 6, 7]);
    expect(parseSteps("  ", 10)).toEqual([]);
  });
  it("refuses what is not a step", () => {
    expect(() => parseSteps("x", 10)).toThrow(/not a step/);
    expect(() => parseSteps("7-3", 10)).toThrow(/backwards/);
    expect(() => parseSteps("11", 10)).toThrow(/past the last step/);
  });
});

describe("cost of feature x step attributions", () => {
  it("scales the run's per-row cost by players and permutations", () => {
    // 600 instances took 358 s with 4 permutations of 77 feature players: 358/600/(4*78) s a model row
    const s = estimateCellSeconds({ featureSeconds: 358, nInstances: 600, runPermutations: 4, featurePlayers: 77, cellPlayers: 1540, permutations: 8 });
    expect(s).toBeCloseTo((358 / 600 / (4 * 78)) * 8 * 1541, 6);
    expect(estimateCellSeconds({ featureSeconds: undefined, nInstances: 600, runPermutations: 4, featurePlayers: 77, cellPlayers: 10, permutations: 8 })).toBeNull();
  });
});

describe("filling computed cells", () => {
  it("puts each row's value at its step and keeps raw values aligned", () => {
    const t = track("audio", "F0", [null, null, null], { values: [1, 2, 3] });
    const [filled, other] = fillCells([t, track("audio", "VUV", [null])], [
      { modality: "audio", feature: "F0", position: 2, value: -0.5 },
      { modality: "audio", feature: "F0", position: 0, value: 0.25 },
      { modality: "audio", feature: "*", position: 0, value: 9 },
      { modality: "audio", feature: "F0", position: -1, value: 9 },
    ]);
    expect(filled.positions).toEqual([0, 1, 2]);
    expect(filled.attribution).toEqual([0.25, null, -0.5]);
    expect(filled.values).toEqual([1, 2, 3]);
    expect(other.attribution).toEqual([null]);
  });

  it("adds a track for a feature the instance has none of (a text modality's), in the rows' modality order", () => {
    const tracks = [track("audio", "*", [1, 1]), track("audio", "F0", [null, null], { values: [5, 6] })];
    const out = fillCells(tracks, [
      { modality: "text", feature: "valence", position: 1, value: 0.75 },
      { modality: "text", feature: "valence", position: 0, value: -0.5 },
      { modality: "text", feature: "length", position: 0, value: 0 },
      { modality: "audio", feature: "F0", position: 1, value: 0.125 },
    ]);
    expect(out.map((t) => `${t.modality}:${t.feature}`)).toEqual(["text:valence", "text:length", "audio:*", "audio:F0"]);
    expect(out[0].positions).toEqual([0, 1]);
    expect(out[0].attribution).toEqual([-0.5, 0.75]);
    expect(out[0].values).toBeNull();
    expect(out[1].attribution).toEqual([0]);
    expect(out[3].attribution).toEqual([null, 0.125]);
    expect(out[3].values).toEqual([5, 6]);
    // nothing added: the tracks keep their order
    expect(fillCells(tracks, [{ modality: "audio", feature: "F0", position: 0, value: 1 }]).map((t) => t.feature)).toEqual(["*", "F0"]);
  });
});
