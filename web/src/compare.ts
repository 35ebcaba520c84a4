// Pure helpers of the Compare view.

import { num } from "./stats";
import type { Comparison } from "./types";

export interface DisagreementRow {
  row: number;
  id: string;
  instanceA: number;
  label: number;
  a: number;
  b: number;
  diff: number;
  typeA: string;
  typeB: string;
}

/** Matched instances (optionally only those where the models disagree), largest |B − A| first, top k. */
export function disagreementRows(c: Comparison, onlyDisagree: boolean, k: number): DisagreementRow[] {
  const cols = c.columns;
  const out: DisagreementRow[] = [];
  for (let r = 0; r < c.n_matched; r++) {
    if (onlyDisagree && !cols.disagree?.[r]) continue;
    out.push({
      row: r,
      id: String(cols.id?.[r] ?? r),
      instanceA: num(cols.instance_a?.[r] ?? null),
      label: num(cols.label?.[r] ?? null),
      a: num(cols.prediction_a?.[r] ?? null),
      b: num(cols.prediction_b?.[r] ?? null),
      diff: num(cols.difference?.[r] ?? null),
      typeA: String(cols.interaction_type_a?.[r] ?? "—"),
      typeB: String(cols.interaction_type_b?.[r] ?? "—"),
    });
  }
  out.sort((x, y) => Math.abs(y.diff) - Math.abs(x.diff) || x.row - y.row);
  return Number.isFinite(k) ? out.slice(0, k) : out;
}

/** MAE of each run over the matched instances and mean |Shapley| per modality for each run. */
export function compareSummary(c: Comparison) {
  const label = c.columns.label ?? [];
  const mae = (col: string) => {
    const p = c.columns[col] ?? [];
    let s = 0;
    let n = 0;
    for (let r = 0; r < c.n_matched; r++) {
      const e = Math.abs(num(p[r]) - num(label[r]));
      if (Number.isFinite(e)) {
        s += e;
        n++;
      }
    }
    return n ? s / n : NaN;
  };
  const importance = (side: "a" | "b") => {
    const out: Record<string, number> = {};
    for (const [m, vals] of Object.entries(c.shapley[side] ?? {})) {
      let s = 0;
      let n = 0;
      for (const v of vals)
        if (v != null && Number.isFinite(v)) {
          s += Math.abs(v);
          n++;
        }
      out[m] = n ? s / n : NaN;
    }
    return out;
  };
  return { maeA: mae("prediction_a"), maeB: mae("prediction_b"), importanceA: importance("a"), importanceB: importance("b") };
}
