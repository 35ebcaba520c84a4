import { describe, expect, it } from "vitest";
import { modalityContributions, rankTemplates, type TemplateContribution } from "./templateRank";
import type { Template } from "./types";

function tpl(id: number, members: number[], items: string[], extra: Partial<Template> = {}): Template {
  return {
    template_id: id,
    items,
    modalities: [...new Set(items.map((i) => i.split(":")[0]))],
    polarity: "positive",
    support: members.length / 10,
    count: members.length,
    mean_prediction: 1,
    mean_attribution: 0.5,
    rank: id,
    members,
    ...extra,
  };
}

// a run of N = 10 instances
const N = 10;
const A = tpl(0, [0, 1, 2, 3, 4, 5], ["text:great", "vision:Joy high"]); // common: 6 / 10
const B = tpl(1, [6, 7], ["audio:F0 high", "vision:Joy high"]); // rare: 2 / 10
const C = tpl(2, [0, 6, 9], ["text:bad", "audio:F0 low"]); // 3 / 10
const mask = (idx: number[]) => {
  const m = new Uint8Array(N);
  for (const i of idx) m[i] = 1;
  return m;
};

describe("rankTemplates", () => {
  it("keeps the global order without a selection", () => {
    const rows = rankTemplates([C, B, A], { n: N, selection: null, sort: "lift" });
    expect(rows.map((r) => r.template.template_id)).toEqual([0, 1, 2]);
    expect(rows[0]).toMatchObject({ inSelection: 6, selectionSupport: 0.6, globalShare: 0.6, lift: null });
  });

  it("computes in-selection support and lift = P(T|S) / P(T)", () => {
    // S = {6, 7, 8, 9}: B fully inside, C has 6 and 9, A none
    const rows = rankTemplates([A, B, C], { n: N, selection: mask([6, 7, 8, 9]), sort: "lift" });
    expect(rows.map((r) => r.template.template_id)).toEqual([1, 2, 0]);
    const [b, c, a] = rows;
    expect(b.inSelection).toBe(2);
    expect(b.selectionSupport).toBeCloseTo(0.5); // 2 of 4 selected
    expect(b.lift).toBeCloseTo(0.5 / 0.2); // 2.5
    expect(c.inSelection).toBe(2);
    expect(c.lift).toBeCloseTo(0.5 / 0.3);
    expect(a.inSelection).toBe(0);
    expect(a.lift).toBe(0);
  });

  it("ranks templates with too few selected members last, however large their lift", () => {
    // S = {0, 1, 2, 3, 6}: A has 4 (lift (4/5)/0.6 = 1.33), B has 1 (lift (1/5)/0.2 = 1), C has 2 (lift (2/5)/0.3 = 1.33)
    const sel = mask([0, 1, 2, 3, 6]);
    const rows = rankTemplates([A, B, C], { n: N, selection: sel, sort: "lift", minCount: 3 });
    expect(rows.map((r) => r.template.template_id)).toEqual([0, 2, 1]); // C has lift 1.33 but only 2 members
    const tie = rankTemplates([C, A, B], { n: N, selection: sel, sort: "lift", minCount: 2 });
    // A and C tie on lift 4/3: the one with more selected members first
    expect(tie.map((r) => r.template.template_id)).toEqual([0, 2, 1]);
    expect(tie[0].lift).toBeCloseTo(tie[1].lift!);
  });

  it("sorts by in-selection support, global support, attribution and prediction", () => {
    const sel = mask([6, 7, 9]);
    expect(rankTemplates([A, B, C], { n: N, selection: sel, sort: "in-selection" }).map((r) => r.template.template_id)).toEqual([1, 2, 0]);
    expect(rankTemplates([B, C, A], { n: N, selection: sel, sort: "support" }).map((r) => r.template.template_id)).toEqual([0, 2, 1]);
    const X = tpl(3, [1], ["text:x", "audio:F0 high"], { mean_attribution: -2, mean_prediction: 0.1 });
    expect(rankTemplates([A, X], { n: N, selection: null, sort: "attribution" })[0].template.template_id).toBe(3);
    expect(rankTemplates([X, A], { n: N, selection: null, sort: "prediction" })[0].template.template_id).toBe(0);
  });
});

describe("modalityContributions", () => {
  const contributions = new Map<number, TemplateContribution>([
    // aligned with A's members [0..5]
    [0, { template_id: 0, values: { text: [1, 2, 3, 4, null, 6], vision: [0, 0, 0, 0, 1, -1] } }],
  ]);
  it("averages each modality's item attribution over the selected members", () => {
    const all = modalityContributions(A, { selection: null, contributions });
    expect(all.source).toBe("items");
    expect(all.values).toEqual([
      { modality: "text", value: (1 + 2 + 3 + 4 + 6) / 5 }, // null is unknown, not zero
      { modality: "vision", value: 0 },
    ]);
    const some = modalityContributions(A, { selection: mask([4, 5]), contributions });
    expect(some.values).toEqual([
      { modality: "text", value: 6 },
      { modality: "vision", value: 0 },
    ]);
  });
  it("falls back to mean modality Shapley values when the contributions are missing or misaligned", () => {
    const shapley = { text: [1, 1, 1, 1, 1, 1, 5, 5, 5, 5], audio: [0, 0, 0, 0, 0, 0, 2, 4, 0, 0], vision: Array(10).fill(0.5) };
    const b = modalityContributions(B, { selection: null, contributions, shapley });
    expect(b.source).toBe("shapley");
    expect(b.values).toEqual([
      { modality: "audio", value: 3 },
      { modality: "vision", value: 0.5 },
    ]);
    const bad = new Map([[0, { template_id: 0, values: { text: [1], vision: [1] } }]]);
    expect(modalityContributions(A, { selection: null, contributions: bad, shapley }).source).toBe("shapley");
    expect(modalityContributions(A, { selection: null }).source).toBe("none");
  });
});
