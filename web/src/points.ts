// Colours and spatial look-ups for the projection scatter (pure; unit-tested).

import { TYPE_COLORS, divergingRgb, hexToRgb, maxAbs, modalityColor, sequentialRgb, type RGB } from "./colors";
import type { ColorBy } from "./selection";
import { extent, num } from "./stats";
import type { Cell, InstanceTable } from "./types";

const CLASS_COLORS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"];
const GREY: RGB = [200, 204, 210];

export interface ColorScale {
  kind: "categorical" | "diverging" | "sequential";
  /** categorical: label -> colour */
  items?: { label: string; color: string }[];
  max?: number;
  min?: number;
  label: string;
}

/** RGB per point for a colour-by channel, and the scale the legend draws. */
export function pointColors(table: InstanceTable, colorBy: ColorBy, kinds: Record<string, string>, classification: boolean): { rgb: Uint8Array; scale: ColorScale } {
  const n = table.n;
  const rgb = new Uint8Array(n * 3);
  const set = (i: number, c: RGB) => {
    rgb[3 * i] = c[0];
    rgb[3 * i + 1] = c[1];
    rgb[3 * i + 2] = c[2];
  };
  if (colorBy === "type" || colorBy === "dominant") {
    const col = (colorBy === "type" ? table.columns.interaction_type : table.columns.dominant_modality) ?? [];
    const seen = new Map<string, string>();
    const rgbOf = new Map<Cell, RGB>(); // per distinct value, so the loop over every point allocates nothing
    for (let i = 0; i < n; i++) {
      let c = rgbOf.get(col[i]);
      if (!c) {
        const v = col[i] == null ? "none" : String(col[i]);
        const hex = colorBy === "type" ? (TYPE_COLORS[v] ?? "#999999") : v === "none" ? "#BBBBBB" : modalityColor(v, kinds[v]);
        seen.set(v, hex);
        c = hexToRgb(hex);
        rgbOf.set(col[i], c);
      }
      set(i, c);
    }
    const order = colorBy === "type" ? Object.keys(TYPE_COLORS) : [...table.modalities, "none"];
    const items = [...seen.entries()]
      .sort((a, b) => order.indexOf(a[0]) - order.indexOf(b[0]))
      .map(([label, color]) => ({ label: colorBy === "dominant" && label === "none" ? "no dominant modality" : label, color }));
    return { rgb, scale: { kind: "categorical", items, label: colorBy === "type" ? "Interaction type" : "Dominant modality" } };
  }
  const col = table.columns[colorBy] ?? [];
  if (classification && (colorBy === "label" || colorBy === "prediction")) {
    const seen = new Map<string, string>();
    const rgbOf = new Map<string, RGB>();
    for (let i = 0; i < n; i++) {
      const v = col[i] == null ? "—" : String(col[i]);
      let c = rgbOf.get(v);
      if (!c) {
        const hex = CLASS_COLORS[seen.size % CLASS_COLORS.length];
        seen.set(v, hex);
        c = hexToRgb(hex);
        rgbOf.set(v, c);
      }
      set(i, c);
    }
    return { rgb, scale: { kind: "categorical", items: [...seen].map(([label, color]) => ({ label, color })), label: colorBy } };
  }
  if (colorBy === "abs_error") {
    const [lo, hi] = extent(col);
    for (let i = 0; i < n; i++) {
      const v = num(col[i]);
      set(i, Number.isFinite(v) ? sequentialRgb(v, lo, hi) : GREY);
    }
    return { rgb, scale: { kind: "sequential", min: lo, max: hi, label: "Absolute error" } };
  }
  const m = maxAbs(col.map(num));
  for (let i = 0; i < n; i++) {
    const v = num(col[i]);
    set(i, Number.isFinite(v) ? divergingRgb(v, m) : GREY);
  }
  const label = colorBy === "error" ? "Error (prediction − label)" : colorBy === "label" ? "Label" : "Prediction";
  return { rgb, scale: { kind: "diverging", max: m, label } };
}

/** A uniform grid over the points for nearest-point queries (hover, click) in O(points near the cursor). */
export class PointGrid {
  private cells: Map<number, number[]> = new Map();
  private x0: number;
  private y0: number;
  private cw: number;
  private ch: number;
  constructor(
    private xs: Float32Array,
    private ys: Float32Array,
    private size = 128,
  ) {
    let x0 = Infinity;
    let x1 = -Infinity;
    let y0 = Infinity;
    let y1 = -Infinity;
    for (let i = 0; i < xs.length; i++) {
      if (!Number.isFinite(xs[i]) || !Number.isFinite(ys[i])) continue;
      x0 = Math.min(x0, xs[i]);
      x1 = Math.max(x1, xs[i]);
      y0 = Math.min(y0, ys[i]);
      y1 = Math.max(y1, ys[i]);
    }
    if (!(x0 <= x1)) [x0, x1, y0, y1] = [0, 1, 0, 1];
    this.x0 = x0;
    this.y0 = y0;
    this.cw = (x1 - x0 || 1) / size;
    this.ch = (y1 - y0 || 1) / size;
    for (let i = 0; i < xs.length; i++) {
      if (!Number.isFinite(xs[i]) || !Number.isFinite(ys[i])) continue;
      const key = this.key(this.cx(xs[i]), this.cy(ys[i]));
      const list = this.cells.get(key);
      if (list) list.push(i);
      else this.cells.set(key, [i]);
    }
  }
  private cx(x: number) {
    return Math.min(this.size - 1, Math.max(0, Math.floor((x - this.x0) / this.cw)));
  }
  private cy(y: number) {
    return Math.min(this.size - 1, Math.max(0, Math.floor((y - this.y0) / this.ch)));
  }
  private key(i: number, j: number) {
    return i * this.size + j;
  }
  /** The nearest point within `radius` (data units) of (x, y), or null. */
  nearest(x: number, y: number, radius: number): number | null {
    const i0 = this.cx(x - radius);
    const i1 = this.cx(x + radius);
    const j0 = this.cy(y - radius);
    const j1 = this.cy(y + radius);
    let best: number | null = null;
    let bestD = radius * radius;
    for (let i = i0; i <= i1; i++)
      for (let j = j0; j <= j1; j++)
        for (const p of this.cells.get(this.key(i, j)) ?? []) {
          const d = (this.xs[p] - x) ** 2 + (this.ys[p] - y) ** 2;
          if (d <= bestD) {
            bestD = d;
            best = p;
          }
        }
    return best;
  }
}
