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

// -- N runs side by side (GET api/compare?runs=a,b,c: src/modalens/app/compare.py compare_many) -----------------

export interface RunMetrics {
  n: number;
  mae?: number | null;
  r?: number | null;
  acc2?: number | null;
  accuracy?: number | null;
}

export interface Transition {
  a: string;
  b: string;
  rows: string[];
  cols: string[];
  counts: number[][];
}

export interface ManyComparison {
  runs: { id: string; name: string; model: string | null; dataset: string | null; modalities: string[] }[];
  label_kind: string;
  n_matched: number;
  columns: { id: (string | number)[]; label: (number | null)[] };
  instances: Record<string, number[]>;
  predictions: Record<string, (number | null)[]>;
  types: Record<string, string[]>;
  metrics: Record<string, RunMetrics>;
  importance: Record<string, Record<string, number | null>>;
  disagreement: { runs: string[]; counts: number[][]; fraction: number[][] };
  transitions: Transition[];
}

/** The run ids to compare, in the order the server lists its runs (one document per set of runs). */
export function compareRuns(served: string[], chosen: Iterable<string>): string[] {
  const want = new Set(chosen);
  return served.filter((id) => want.has(id));
}

/** The API path of an N-run comparison. */
export function manyPath(ids: string[]): string {
  return `api/compare?runs=${ids.map(encodeURIComponent).join(",")}`;
}

/** The transition matrix from run `a` to run `b` (rows: a's labels), transposing the stored pair when needed. */
export function transitionFor(doc: ManyComparison, a: string, b: string): Transition | null {
  const t = doc.transitions.find((x) => x.a === a && x.b === b);
  if (t) return t;
  const r = doc.transitions.find((x) => x.a === b && x.b === a);
  if (!r) return null;
  return { a, b, rows: r.cols, cols: r.rows, counts: r.cols.map((_, j) => r.rows.map((__, i) => r.counts[i][j])) };
}

/** Matched rows whose label is `row` in run `a` and `col` in run `b` (one cell of the transition matrix). */
export function cellRows(doc: ManyComparison, a: string, b: string, row: string, col: string): number[] {
  const ta = doc.types[a] ?? [];
  const tb = doc.types[b] ?? [];
  const out: number[] = [];
  for (let r = 0; r < doc.n_matched; r++) if (ta[r] === row && tb[r] === col) out.push(r);
  return out;
}

/** Instance numbers of run `run` for matched rows (to select them in that run's views). */
export function instancesOf(doc: ManyComparison, run: string, rows: number[]): number[] {
  const inst = doc.instances[run] ?? [];
  return rows.map((r) => inst[r]).filter((i) => i !== undefined);
}

/** A run's display name: its model name (`modalens explain --name`, default the model spec), else its folder. */
export function runLabel(r: { name: string; model: string | null }): string {
  return r.model && r.model !== r.name ? `${r.model} (${r.name})` : r.name;
}

const CMP_KEY = "cmp";

/** Run ids to compare with, from the page URL (`?cmp=a,b`); null when the URL names none. */
export function readCmp(search: string): string[] | null {
  const v = new URLSearchParams(search).get(CMP_KEY);
  if (v === null) return null;
  return v.split(",").map((s) => s.trim()).filter(Boolean);
}

/** The URL search string with `cmp` set to these runs (removed when empty); other keys kept as they are. */
export function writeCmp(search: string, ids: string[]): string {
  const p = new URLSearchParams(search);
  if (ids.length) p.set(CMP_KEY, ids.join(","));
  else p.delete(CMP_KEY);
  const s = p.toString();
  return s ? `?${s}` : "";
}
