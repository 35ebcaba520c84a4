// One diverging, colour-blind-safe map centred on zero (ColorBrewer RdBu: blue = negative, red = positive) for
// every attribution; one Okabe-Ito colour per modality kind, used in every view.

export const MODALITY_COLORS: Record<string, string> = {
  text: "#E69F00", // orange
  audio: "#009E73", // bluish green
  vision: "#CC79A7", // reddish purple
  image: "#56B4E9", // sky blue
  tabular: "#0072B2", // blue
};
const EXTRA = ["#D55E00", "#F0E442", "#000000"];

/** Colour of a modality: by its name when it is a kind, else by its kind, else a stable extra colour. */
export function modalityColor(name: string, kind?: string): string {
  if (MODALITY_COLORS[name]) return MODALITY_COLORS[name];
  if (kind && MODALITY_COLORS[kind]) return MODALITY_COLORS[kind];
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return EXTRA[h % EXTRA.length];
}

// Paul Tol's "bright" scheme (colour-blind safe) for the interaction types.
export const TYPE_COLORS: Record<string, string> = {
  dominance: "#4477AA",
  complement: "#228833",
  conflict: "#EE6677",
  none: "#BBBBBB",
};
export const TYPES = ["dominance", "complement", "conflict", "none"];

export const DIVERGING = ["#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7", "#fddbc7", "#f4a582", "#d6604d", "#b2182b"];
export const SEQUENTIAL = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"]; // viridis stops

export type RGB = [number, number, number];

export function hexToRgb(hex: string): RGB {
  const v = parseInt(hex.slice(1), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

export function rgbToHex([r, g, b]: RGB): string {
  return "#" + [r, g, b].map((c) => Math.round(c).toString(16).padStart(2, "0")).join("");
}

// parsed stops per stop list: the scatter colours every point through interpolate (500,000 calls per colour change)
const parsedStops = new WeakMap<string[], RGB[]>();

/** Piecewise-linear interpolation through colour stops, t in [0, 1]. */
export function interpolate(stops: string[], t: number): RGB {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0.5)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  let rgb = parsedStops.get(stops);
  if (!rgb) parsedStops.set(stops, (rgb = stops.map(hexToRgb)));
  const a = rgb[i];
  const b = rgb[i + 1];
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
}

/** Diverging colour of a signed value: white at 0, full blue at -maxAbs, full red at +maxAbs. */
export function divergingRgb(value: number, maxAbs: number): RGB {
  if (!Number.isFinite(value) || !(maxAbs > 0)) return hexToRgb(DIVERGING[4]);
  return interpolate(DIVERGING, 0.5 + 0.5 * Math.max(-1, Math.min(1, value / maxAbs)));
}

export function diverging(value: number, maxAbs: number): string {
  return rgbToHex(divergingRgb(value, maxAbs));
}

export function sequentialRgb(value: number, min: number, max: number): RGB {
  return interpolate(SEQUENTIAL, max > min ? (value - min) / (max - min) : 0.5);
}

/** Black or white text, whichever reads better on this background. */
export function textOn(rgb: RGB): string {
  const [r, g, b] = rgb.map((c) => {
    const s = c / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.4 ? "#111" : "#fff";
}

/** Largest absolute finite value (0 when none), for symmetric diverging scales. */
export function maxAbs(values: Iterable<number | null | undefined>): number {
  let m = 0;
  for (const v of values) if (v != null && Number.isFinite(v) && Math.abs(v) > m) m = Math.abs(v);
  return m;
}

/** The q-quantile of |values| (finite only): a colour/bar scale that one outlier cannot flatten. */
export function robustMaxAbs(values: Iterable<number | null | undefined>, q = 0.95): number {
  const list: number[] = [];
  for (const v of values) if (v != null && Number.isFinite(v)) list.push(Math.abs(v));
  if (list.length === 0) return 0;
  const abs = Float64Array.from(list).sort(); // a typed array sorts numerically, natively: ~10x a comparator at 500,000
  const at = abs[Math.min(abs.length - 1, Math.floor(q * (abs.length - 1) + 0.5))];
  return at > 0 ? at : abs[abs.length - 1];
}
