// Summaries the views show, computed in the browser for whatever subset is selected.

import type { Cell, InstanceTable, Template } from "./types";

export function num(v: Cell | undefined): number {
  return typeof v === "number" ? v : typeof v === "boolean" ? Number(v) : NaN;
}

/** Indices of a subset, or 0..n-1. */
export function indicesOf(sel: Int32Array | null, n: number): ArrayLike<number> {
  if (sel) return sel;
  const all = new Int32Array(n);
  for (let i = 0; i < n; i++) all[i] = i;
  return all;
}

export interface Performance {
  count: number;
  mae: number;
  corr: number;
  acc2: number;
}

/** MAE, Pearson r and sign accuracy (Acc-2) of predictions against labels over a subset. */
export function performance(labels: Cell[], preds: Cell[], idx: ArrayLike<number>): Performance {
  let n = 0;
  let sa = 0;
  let sp = 0;
  let sae = 0;
  let agree = 0;
  for (let k = 0; k < idx.length; k++) {
    const l = num(labels[idx[k]]);
    const p = num(preds[idx[k]]);
    if (!Number.isFinite(l) || !Number.isFinite(p)) continue;
    n++;
    sa += l;
    sp += p;
    sae += Math.abs(p - l);
    if (p >= 0 === l >= 0) agree++;
  }
  if (n === 0) return { count: 0, mae: NaN, corr: NaN, acc2: NaN };
  const ml = sa / n;
  const mp = sp / n;
  let cov = 0;
  let vl = 0;
  let vp = 0;
  for (let k = 0; k < idx.length; k++) {
    const l = num(labels[idx[k]]);
    const p = num(preds[idx[k]]);
    if (!Number.isFinite(l) || !Number.isFinite(p)) continue;
    cov += (l - ml) * (p - mp);
    vl += (l - ml) ** 2;
    vp += (p - mp) ** 2;
  }
  return { count: n, mae: sae / n, corr: vl > 0 && vp > 0 ? cov / Math.sqrt(vl * vp) : NaN, acc2: agree / n };
}

/** Share of instances whose predicted class equals the label (classification runs). */
export function accuracy(labels: Cell[], preds: Cell[], idx: ArrayLike<number>): number {
  let n = 0;
  let hit = 0;
  for (let k = 0; k < idx.length; k++) {
    const l = labels[idx[k]];
    const p = preds[idx[k]];
    if (l == null || p == null) continue;
    n++;
    if (num(l) === num(p) || String(l) === String(p)) hit++;
  }
  return n ? hit / n : NaN;
}

export interface Histogram {
  edges: number[];
  counts: number[];
}

/** Fixed-bin histogram over [lo, hi]; values outside are clamped into the end bins. */
export function histogram(values: Cell[], idx: ArrayLike<number>, lo: number, hi: number, bins: number): Histogram {
  const counts = new Array(bins).fill(0);
  const width = (hi - lo) / bins || 1;
  for (let k = 0; k < idx.length; k++) {
    const v = num(values[idx[k]]);
    if (!Number.isFinite(v)) continue;
    counts[Math.min(bins - 1, Math.max(0, Math.floor((v - lo) / width)))]++;
  }
  return { edges: Array.from({ length: bins + 1 }, (_, i) => lo + i * width), counts };
}

export function extent(values: Cell[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const c of values) {
    const v = num(c);
    if (Number.isFinite(v)) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  }
  return lo <= hi ? [lo, hi] : [0, 1];
}

/** Mean |Shapley| and mean Shapley per modality over a subset. */
export function modalityImportance(table: InstanceTable, idx: ArrayLike<number>): { modality: string; meanAbs: number; mean: number }[] {
  return table.modalities.map((m) => {
    const col = table.shapley[m] ?? [];
    let s = 0;
    let sa = 0;
    let n = 0;
    for (let k = 0; k < idx.length; k++) {
      const v = col[idx[k]];
      if (v == null || !Number.isFinite(v)) continue;
      s += v;
      sa += Math.abs(v);
      n++;
    }
    return { modality: m, meanAbs: n ? sa / n : NaN, mean: n ? s / n : NaN };
  });
}

export interface TypeStat {
  type: string;
  count: number;
  share: number;
  mae: number;
}

/** Share of each interaction type in a subset and the mean absolute error within each type. */
export function typeStats(table: InstanceTable, idx: ArrayLike<number>, types: string[]): TypeStat[] {
  const t = table.columns.interaction_type ?? [];
  const err = table.columns.abs_error ?? [];
  // per-instance type codes, built once per column: a selection change then only counts codes (no string keys)
  const { codes, values } = codesOf(t, "none");
  const count = new Float64Array(values.length);
  const errSum = new Float64Array(values.length);
  const errN = new Float64Array(values.length);
  for (let k = 0; k < idx.length; k++) {
    const i = idx[k];
    const c = codes[i];
    count[c]++;
    const e = num(err[i]);
    if (Number.isFinite(e)) {
      errSum[c] += e;
      errN[c]++;
    }
  }
  const seen = values.filter((_, c) => count[c] > 0);
  const all = [...types, ...seen.filter((k) => !types.includes(k))];
  const code = new Map(values.map((v, c) => [v, c]));
  return all.map((ty) => {
    const c = code.get(ty);
    const n = c === undefined ? 0 : count[c];
    return { type: ty, count: n, share: idx.length ? n / idx.length : 0, mae: c !== undefined && errN[c] ? errSum[c] / errN[c] : NaN };
  });
}

const codeCache = new WeakMap<object, Map<string, { codes: Int32Array; values: string[] }>>();

/** A text column as integer codes (`String(value ?? missing)`, codes in order of first appearance), built once per
 * column object and cached: per-selection statistics then count codes instead of hashing strings. */
export function codesOf(col: ArrayLike<Cell>, missing: string): { codes: Int32Array; values: string[] } {
  let byMissing = codeCache.get(col as object);
  if (!byMissing) codeCache.set(col as object, (byMissing = new Map()));
  let found = byMissing.get(missing);
  if (!found) {
    const codes = new Int32Array(col.length);
    const values: string[] = [];
    const index = new Map<string, number>();
    for (let i = 0; i < col.length; i++) {
      const v = col[i];
      const key = v == null ? missing : String(v);
      let c = index.get(key);
      if (c === undefined) {
        c = values.length;
        index.set(key, c);
        values.push(key);
      }
      codes[i] = c;
    }
    found = { codes, values };
    byMissing.set(missing, found);
  }
  return found;
}

/** Instances whose column equals a value. */
export function where(values: Cell[], value: Cell): number[] {
  const out: number[] = [];
  for (let i = 0; i < values.length; i++) if (values[i] === value) out.push(i);
  return out;
}

export type TemplateSort = "support" | "attribution" | "prediction";

/** Templates filtered by polarity and modality, sorted, with how many members fall inside the selection. */
export function filterTemplates(
  templates: Template[],
  opts: { polarity: "all" | "positive" | "negative"; modality: string | "all"; sort: TemplateSort; selection: Uint8Array | null },
): (Template & { inSelection: number })[] {
  const rows = templates
    .filter((t) => opts.polarity === "all" || t.polarity === opts.polarity)
    .filter((t) => opts.modality === "all" || t.modalities.includes(opts.modality))
    .map((t) => {
      let inSelection = t.members.length;
      if (opts.selection) {
        inSelection = 0;
        for (const i of t.members) inSelection += opts.selection[i] ?? 0;
      }
      return { ...t, inSelection };
    });
  const key = (t: Template) =>
    opts.sort === "support" ? t.support : opts.sort === "attribution" ? Math.abs(t.mean_attribution ?? 0) : Math.abs(t.mean_prediction ?? 0);
  return rows.sort((a, b) => key(b) - key(a) || a.template_id - b.template_id);
}

/** Waterfall steps from the base value through each modality's Shapley value to the prediction. */
export function waterfall(base: number, contributions: { modality: string; value: number }[]): { modality: string; start: number; end: number; value: number }[] {
  let at = base;
  return contributions.map((c) => {
    const step = { modality: c.modality, start: at, end: at + c.value, value: c.value };
    at += c.value;
    return step;
  });
}

/** Symmetric M x M matrix: diagonal = Shapley value, off-diagonal = pairwise interaction index. */
export function interactionMatrix(
  modalities: string[],
  shapley: { modality: string; value: number }[],
  pairs: { modality_i: string; modality_j: string; shapley_interaction: number }[],
): number[][] {
  const pos = new Map(modalities.map((m, i) => [m, i]));
  const mat = modalities.map(() => modalities.map(() => NaN));
  for (const s of shapley) {
    const i = pos.get(s.modality);
    if (i !== undefined) mat[i][i] = s.value;
  }
  for (const p of pairs) {
    const i = pos.get(p.modality_i);
    const j = pos.get(p.modality_j);
    if (i === undefined || j === undefined) continue;
    mat[i][j] = p.shapley_interaction;
    mat[j][i] = p.shapley_interaction;
  }
  return mat;
}

/** Rows sorted by a numeric key, largest first, top k (for "largest errors" and "largest disagreements"). */
export function topBy(idx: ArrayLike<number>, key: (i: number) => number, k: number): number[] {
  const arr = Array.from(idx).filter((i) => Number.isFinite(key(i)));
  arr.sort((a, b) => key(b) - key(a) || a - b);
  return arr.slice(0, k);
}

export function fmt(v: number | null | undefined, digits = 3): string {
  if (v == null || !Number.isFinite(v)) return "—";
  const a = Math.abs(v);
  if (a < 1e-9) return (0).toFixed(digits);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(1);
  return v.toFixed(a >= 100 ? 0 : a >= 10 ? 1 : digits === 3 && a >= 1 ? 2 : digits);
}

export function pct(v: number): string {
  return Number.isFinite(v) ? `${(100 * v).toFixed(v < 0.1 ? 1 : 0)}%` : "—";
}
