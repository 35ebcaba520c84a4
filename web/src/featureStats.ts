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
