import { describe, expect, it } from "vitest";
import type { InstanceDetail } from "./types";
import { tokenPatchScale } from "./views/VisionLanguage";

const detail = (words: number[], patches: (number | null)[]): InstanceDetail =>
  ({
    word_groups: { text: words.map((value, word) => ({ word, text: `w${word}`, value, pieces: 1, position: word + 1 })) },
    patches: { image: { rows: 2, cols: 2, values: patches, image: null } },
  }) as unknown as InstanceDetail;

describe("patch and word scale", () => {
  it("is the largest absolute value over words and patches (one game, one scale)", () => {
    expect(tokenPatchScale(detail([0.5, -2], [0.1, null, 1.5, -0.2]))).toBe(2);
    expect(tokenPatchScale(detail([0.1], [null, -3, 0, 0]))).toBe(3);
  });
  it("is 0 without words or patches", () => {
    expect(tokenPatchScale({} as InstanceDetail)).toBe(0);
  });
});
