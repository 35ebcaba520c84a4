// Pure helpers of the Features view (feature runs, docs/features.md).

import { MODALITY_COLORS } from "./colors";
import type { Cell } from "./types";
import { num } from "./stats";

/** vision/language take the image/text modality colours; cross-modal a neutral; others their modality's. */
export function categoryColor(category: string): string {
  if (category === "vision") return MODALITY_COLORS.image;
  if (category === "language") return MODALITY_COLORS.text;
  if (category === "cross-modal") return "#8a8f98";
  if (category === "inactive") return "#d5d8dd";
  return MODALITY_COLORS[category] ?? "#555555";
}

export interface StackedHistogram {
  edges: number[];
  categories: string[];
  /** counts[bin][category index] */
  counts: number[][];
}

/** Histogram of MDS over [0, 1], stacked by category; NaN (inactive) features are left out. */
export function mdsHistogram(mds: Cell[], category: Cell[], bins: number): StackedHistogram {
  const cats: string[] = [];
  const counts = Array.from({ length: bins }, () => [] as number[]);
  for (let i = 0; i < mds.length; i++) {
    const v = num(mds[i]);
    if (!Number.isFinite(v)) continue;
    const c = String(category[i] ?? "unknown");
    let k = cats.indexOf(c);
    if (k < 0) {
      k = cats.length;
      cats.push(c);
    }
    const b = Math.min(bins - 1, Math.max(0, Math.floor(v * bins)));
    counts[b][k] = (counts[b][k] ?? 0) + 1;
  }
  const order = ["language", "cross-modal", "vision"];
  const sorted = [...cats].sort((a, b) => (order.indexOf(a) + 10 * +(order.indexOf(a) < 0)) - (order.indexOf(b) + 10 * +(order.indexOf(b) < 0)));
  const remap = sorted.map((c) => cats.indexOf(c));
  return {
    edges: Array.from({ length: bins + 1 }, (_, i) => i / bins),
    categories: sorted,
    counts: counts.map((row) => remap.map((k) => row[k] ?? 0)),
  };
}

export type SortDir = "asc" | "desc";

/** Row order of the feature table: filtered by category and MDS range, sorted by a column (NaN last). */
export function featureOrder(
  columns: Record<string, Cell[]>,
  opts: { sort: string; dir: SortDir; category: string; mdsRange: [number, number] | null; query: string },
): number[] {
  const n = (columns.feature ?? []).length;
  const cat = columns.category ?? [];
  const mds = columns.mds ?? [];
  const out: number[] = [];
  const q = opts.query.trim();
  for (let i = 0; i < n; i++) {
    if (opts.category !== "all" && cat[i] !== opts.category) continue;
    if (opts.mdsRange) {
      const v = num(mds[i]);
      if (!(v >= opts.mdsRange[0] && v < opts.mdsRange[1] + (opts.mdsRange[1] >= 1 ? 1e-9 : 0))) continue;
    }
    if (q && !String(columns.feature[i]).startsWith(q)) continue;
    out.push(i);
  }
  const key = columns[opts.sort] ?? columns.feature;
  const sign = opts.dir === "asc" ? 1 : -1;
  out.sort((a, b) => {
    const x = key[a];
    const y = key[b];
    const xs = typeof x === "string" ? x : null;
    const ys = typeof y === "string" ? y : null;
    if (xs !== null || ys !== null) return sign * String(x ?? "").localeCompare(String(y ?? "")) || a - b;
    const xn = num(x);
    const yn = num(y);
    const xf = Number.isFinite(xn);
    const yf = Number.isFinite(yn);
    if (!xf || !yf) return xf === yf ? a - b : xf ? -1 : 1;
    return sign * (xn - yn) || a - b;
  });
  return out;
}

/** Rows of a virtualised list to render for a scroll position. */
export function visibleWindow(scrollTop: number, viewport: number, rowHeight: number, total: number, overscan = 8): [number, number] {
  const first = Math.max(0, Math.floor(scrollTop / rowHeight) - overscan);
  const last = Math.min(total, Math.ceil((scrollTop + viewport) / rowHeight) + overscan);
  return [first, last];
}

// ----------------------------------------------------------------------------------------------------------------
// Categories recomputed in the browser for any k (docs/features.md, "Categories"): for two modalities a feature is
// vision if MDS > mu + k sd, language if MDS < mu - k sd (mu, sd: mean and population sd of MDS over the features
// that fire), cross-modal between; stable when its bootstrap interval lies inside that region and it fired on at
// least min_active pairs. Shares count the features that fire.

export const CATEGORIES = ["vision", "language", "cross-modal"] as const;
export type Category = (typeof CATEGORIES)[number];

export interface Categorised {
  categories: string[];
  mu: number;
  sd: number;
  lo: number;
  hi: number;
}

/** Categories of MDS values at width k (null / NaN = inactive). */
export function categorize(mds: ArrayLike<Cell | number | undefined>, k: number): Categorised {
  let n = 0;
  let sum = 0;
  for (let i = 0; i < mds.length; i++) {
    const v = num(mds[i] as Cell);
    if (Number.isFinite(v)) {
      n++;
      sum += v;
    }
  }
  const mu = n ? sum / n : NaN;
  let ss = 0;
  for (let i = 0; i < mds.length; i++) {
    const v = num(mds[i] as Cell);
    if (Number.isFinite(v)) ss += (v - mu) ** 2;
  }
  const sd = n ? Math.sqrt(ss / n) : NaN;
  const lo = mu - k * sd;
  const hi = mu + k * sd;
  const categories = new Array<string>(mds.length);
  for (let i = 0; i < mds.length; i++) {
    const v = num(mds[i] as Cell);
    categories[i] = !Number.isFinite(v) ? "inactive" : v > hi ? "vision" : v < lo ? "language" : "cross-modal";
  }
  return { categories, mu, sd, lo, hi };
}

/** Whether each feature's bootstrap interval lies inside its category's region (thresholds fixed). */
export function stability(
  categories: string[],
  ciLow: ArrayLike<Cell>,
  ciHigh: ArrayLike<Cell>,
  nActive: ArrayLike<Cell>,
  lo: number,
  hi: number,
  minActive: number,
): boolean[] {
  return categories.map((c, i) => {
    const l = num(ciLow[i]);
    const h = num(ciHigh[i]);
    if (!(num(nActive[i]) >= minActive) || !Number.isFinite(l) || !Number.isFinite(h)) return false;
    if (c === "vision") return l > hi;
    if (c === "language") return h < lo; // the text dominance's interval is 1 - the MDS interval
    if (c === "cross-modal") return h <= hi && l >= lo;
    return false;
  });
}

export function shares(categories: string[]): Record<Category, number> {
  const out: Record<string, number> = { vision: 0, language: 0, "cross-modal": 0 };
  let live = 0;
  for (const c of categories) {
    if (c === "inactive") continue;
    live++;
    if (c in out) out[c]++;
  }
  for (const c of CATEGORIES) out[c] = live ? out[c] / live : 0;
  return out as Record<Category, number>;
}

/** numpy's default (linear) quantile of unsorted values. */
export function quantile(values: number[], q: number): number {
  if (!values.length) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const h = (s.length - 1) * q;
  const f = Math.floor(h);
  const c = Math.min(s.length - 1, f + 1);
  return s[f] + (h - f) * (s[c] - s[f]);
}

export interface ShareSpread {
  mean: number;
  low: number;
  high: number;
}

/** Each category's share over replicates (thresholds recomputed in each, or fixed at `fixed`): mean and interval. */
export function replicateShares(replicates: (number | null)[][], k: number, ci: number, fixed?: { lo: number; hi: number }): Record<Category, ShareSpread> {
  const per: Record<string, number[]> = { vision: [], language: [], "cross-modal": [] };
  for (const rep of replicates) {
    let cats: string[];
    if (fixed) {
      cats = rep.map((v) => (v == null || !Number.isFinite(v) ? "inactive" : v > fixed.hi ? "vision" : v < fixed.lo ? "language" : "cross-modal"));
    } else {
      cats = categorize(rep, k).categories;
    }
    const s = shares(cats);
    for (const c of CATEGORIES) per[c].push(s[c]);
  }
  const alpha = (1 - ci) / 2;
  const out: Record<string, ShareSpread> = {};
  for (const c of CATEGORIES) {
    const v = per[c];
    out[c] = { mean: v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN, low: quantile(v, alpha), high: quantile(v, 1 - alpha) };
  }
  return out as Record<Category, ShareSpread>;
}

/** Histogram of counts with the given edges (last bin closed), for overlaying two runs' MDS distributions. */
export function densityHistogram(values: ArrayLike<Cell>, bins: number): number[] {
  const counts = new Array<number>(bins).fill(0);
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = num(values[i]);
    if (!Number.isFinite(v)) continue;
    counts[Math.min(bins - 1, Math.max(0, Math.floor(v * bins)))]++;
    n++;
  }
  return counts.map((c) => (n ? c / n : 0));
}

/** Examples of one modality grouped by level, in level order. */
export function examplesByLevel<T extends { level: string; modality: string; rank: number }>(examples: T[], modality: string): { level: string; items: T[] }[] {
  const levels = ["top", "middle", "low"];
  return levels
    .map((level) => ({ level, items: examples.filter((e) => e.modality === modality && e.level === level).sort((a, b) => a.rank - b.rank) }))
    .filter((g) => g.items.length > 0);
}
