// M2Lens-style glyphs for the projection: a small face from the facial-expression features and an acoustic rose
// from the acoustic feature groups' attributions. Pure geometry and level-of-detail logic (unit-tested), plus the
// Canvas 2D drawing of one glyph (thin wrappers over the geometry).
//
// Face mapping (each emotion first scaled to [0, 1] by the run's 5th-95th percentile of that emotion):
//   mouth curvature = joy - max(sadness, 0.6 disgust)       (+1 a full smile, -1 a full frown)
//   mouth opening   = 0.8 surprise + 0.4 fear
//   brow tilt       = anger - sadness                       (+1 inner ends pulled down, -1 inner ends raised)
//   brow lift       = max(surprise, 0.7 fear)
//   eye openness    = 0.45 + 0.55 max(surprise, fear) - 0.25 joy   (wide with surprise/fear, narrowed by a smile)
// Rose: one petal per acoustic group (pitch, voicing, energy, spectrum, voice quality, timing) in that fixed order
// clockwise from 12 o'clock; petal area proportional to the group's summed |attribution| (radius ∝ sqrt), capped
// at the run's 98th percentile; colour by the sign of the group's signed sum (red raises the output, blue lowers).

export const GLYPH_LIMIT = 400; // glyphs are drawn only when at most this many points are in view
export const EMOTIONS = ["anger", "contempt", "disgust", "fear", "joy", "sadness", "surprise", "neutral"] as const;
export const ACOUSTIC_GROUPS = ["pitch", "voicing", "energy", "spectrum", "voice quality", "timing"] as const;

/** The server's `/api/runs/{run}/glyphs` document (modalens.app.glyphs). */
export interface GlyphDocument {
  n: number;
  face: {
    modality: string;
    emotions: string[];
    features: Record<string, string>;
    values: Record<string, (number | null)[]>;
    range: Record<string, [number | null, number | null]>;
  } | null;
  rose: {
    modality: string;
    groups: string[];
    features: Record<string, string[]>;
    signed: Record<string, (number | null)[]>;
    abs: Record<string, (number | null)[]>;
    scale: number;
    source: string;
  } | null;
}

export const glyphPath = (run: string) => `api/runs/${encodeURIComponent(run)}/glyphs`;

/** Glyph inputs ready to draw: emotions scaled to [0, 1] (NaN unknown), petals as |sum| / scale and signed sum. */
export interface PreparedGlyphs {
  n: number;
  faceModality: string | null;
  emotions: Record<string, Float32Array>;
  roseModality: string | null;
  groups: string[];
  petalAbs: Float32Array[];
  petalSigned: Float32Array[];
}

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

/** An emotion value scaled to [0, 1] by its run range (NaN stays NaN: unknown, drawn neutral). */
export function scaleEmotion(v: number | null | undefined, lo: number | null, hi: number | null): number {
  if (v == null || !Number.isFinite(v)) return NaN;
  if (lo == null || hi == null || !(hi > lo)) return 0;
  return clamp((v - lo) / (hi - lo), 0, 1);
}

export function prepareGlyphs(doc: GlyphDocument): PreparedGlyphs {
  const emotions: Record<string, Float32Array> = {};
  if (doc.face) {
    for (const e of doc.face.emotions) {
      const [lo, hi] = doc.face.range[e] ?? [null, null];
      const col = doc.face.values[e] ?? [];
      const out = new Float32Array(doc.n);
      for (let i = 0; i < doc.n; i++) out[i] = scaleEmotion(col[i], lo, hi);
      emotions[e] = out;
    }
  }
  const groups = doc.rose ? doc.rose.groups : [];
  const scale = doc.rose && doc.rose.scale > 0 ? doc.rose.scale : 1;
  const petalAbs = groups.map((g) => Float32Array.from({ length: doc.n }, (_, i) => (doc.rose!.abs[g]?.[i] ?? NaN) / scale));
  const petalSigned = groups.map((g) => Float32Array.from({ length: doc.n }, (_, i) => doc.rose!.signed[g]?.[i] ?? NaN));
  return { n: doc.n, faceModality: doc.face?.modality ?? null, emotions, roseModality: doc.rose?.modality ?? null, groups, petalAbs, petalSigned };
}

export function hasGlyphs(g: PreparedGlyphs | null): g is PreparedGlyphs {
  return g != null && (g.faceModality != null || g.groups.length > 0);
}

// -- face ------------------------------------------------------------------------------------------------------
export interface FaceFeatures {
  mouthCurve: number;
  mouthOpen: number;
  browTilt: number;
  browLift: number;
  eyeOpen: number;
}

/** The face's features from emotions in [0, 1] (missing or NaN emotions count as 0). */
export function faceFeatures(e: Partial<Record<string, number>>): FaceFeatures {
  const v = (k: string) => {
    const x = e[k];
    return x != null && Number.isFinite(x) ? clamp(x, 0, 1) : 0;
  };
  const joy = v("joy"), sad = v("sadness"), dis = v("disgust"), ang = v("anger"), sur = v("surprise"), fear = v("fear");
  return {
    mouthCurve: clamp(joy - Math.max(sad, 0.6 * dis), -1, 1),
    mouthOpen: clamp(0.8 * sur + 0.4 * fear, 0, 1),
    browTilt: clamp(ang - sad, -1, 1),
    browLift: clamp(Math.max(sur, 0.7 * fear), 0, 1),
    eyeOpen: clamp(0.45 + 0.55 * Math.max(sur, fear) - 0.25 * joy, 0.15, 1),
  };
}

export interface FaceGeometry {
  head: { cx: number; cy: number; r: number };
  eyes: { cx: number; cy: number; rx: number; ry: number }[];
  /** Each brow from its outer end to its inner end. */
  brows: { x0: number; y0: number; x1: number; y1: number }[];
  /** Quadratic curve from the left corner to the right through `upper` (and back through `lower` when open). */
  mouth: { x0: number; y0: number; x1: number; y1: number; upper: [number, number]; lower: [number, number] | null };
}

/** Screen geometry of a face of radius r at (cx, cy); y grows downwards (canvas coordinates). */
export function faceGeometry(f: FaceFeatures, cx: number, cy: number, r: number): FaceGeometry {
  const eyeY = cy - 0.12 * r;
  const eyes = [-1, 1].map((s) => ({ cx: cx + s * 0.34 * r, cy: eyeY, rx: 0.14 * r, ry: 0.17 * r * f.eyeOpen }));
  const browY = cy - 0.42 * r - 0.16 * r * f.browLift;
  const brows = [-1, 1].map((s) => ({
    x0: cx + s * 0.56 * r,
    y0: browY - 0.04 * r * f.browTilt,
    x1: cx + s * 0.16 * r,
    y1: browY + 0.16 * r * f.browTilt,
  }));
  const mouthY = cy + 0.42 * r;
  const half = 0.36 * r;
  const upper: [number, number] = [cx, mouthY + 0.34 * r * f.mouthCurve - 0.1 * r * f.mouthOpen];
  const lower: [number, number] | null = f.mouthOpen > 0.05 ? [cx, upper[1] + 0.55 * r * f.mouthOpen] : null;
  return { head: { cx, cy, r }, eyes, brows, mouth: { x0: cx - half, y0: mouthY, x1: cx + half, y1: mouthY, upper, lower } };
}

// -- rose ------------------------------------------------------------------------------------------------------
export interface Petal {
  group: string;
  start: number;
  end: number;
  radius: number;
  sign: number;
}

/** Petals of a rose of outer radius r: group k spans angles around -π/2 + 2πk/G (canvas angles, clockwise). */
export function rosePetals(groups: string[], abs: ArrayLike<number>, signed: ArrayLike<number>, r: number, gap = 0.14): Petal[] {
  const g = groups.length;
  if (g === 0) return [];
  const width = (2 * Math.PI) / g;
  const out: Petal[] = [];
  for (let k = 0; k < g; k++) {
    const a = abs[k];
    if (!Number.isFinite(a) || a <= 0) continue;
    const mid = -Math.PI / 2 + k * width;
    out.push({
      group: groups[k],
      start: mid - (width * (1 - gap)) / 2,
      end: mid + (width * (1 - gap)) / 2,
      radius: r * Math.sqrt(Math.min(1, a)),
      sign: Math.sign(signed[k] ?? 0),
    });
  }
  return out;
}

// -- level of detail -------------------------------------------------------------------------------------------
/** Indices of the points inside [x0, x1] x [y0, y1] (data units), or null as soon as there are more than `limit`. */
export function visibleIndices(xs: ArrayLike<number>, ys: ArrayLike<number>, x0: number, x1: number, y0: number, y1: number, limit = GLYPH_LIMIT): Int32Array | null {
  const out = new Int32Array(limit);
  let k = 0;
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i];
    const y = ys[i];
    if (x >= x0 && x <= x1 && y >= y0 && y <= y1) {
      if (k === limit) return null;
      out[k++] = i;
    }
  }
  return out.subarray(0, k);
}

/** Glyph radius (CSS px) for `count` glyphs in a w x h view: 0.6 of the radius of each one's share of the area, 7 to 18 px. */
export function glyphRadius(width: number, height: number, count: number): number {
  if (count <= 0) return 18;
  return clamp(0.6 * Math.sqrt((width * height) / (Math.PI * count)), 7, 18);
}

// -- drawing ---------------------------------------------------------------------------------------------------
const RED = "#d6604d";
const BLUE = "#4393c3";

export function drawRose(ctx: CanvasRenderingContext2D, petals: Petal[], cx: number, cy: number, alpha: number): void {
  for (const p of petals) {
    ctx.beginPath();
    ctx.moveTo(cx, cy);
    ctx.arc(cx, cy, p.radius, p.start, p.end);
    ctx.closePath();
    ctx.globalAlpha = 0.75 * alpha;
    ctx.fillStyle = p.sign < 0 ? BLUE : p.sign > 0 ? RED : "#999";
    ctx.fill();
  }
  ctx.globalAlpha = 1;
}

export function drawFace(ctx: CanvasRenderingContext2D, g: FaceGeometry, stroke: string, alpha: number): void {
  ctx.globalAlpha = alpha;
  ctx.beginPath();
  ctx.arc(g.head.cx, g.head.cy, g.head.r, 0, 2 * Math.PI);
  ctx.fillStyle = "#fffdf5";
  ctx.fill();
  ctx.lineWidth = Math.max(1, g.head.r / 6);
  ctx.strokeStyle = stroke;
  ctx.stroke();
  ctx.fillStyle = "#222";
  for (const e of g.eyes) {
    ctx.beginPath();
    ctx.ellipse(e.cx, e.cy, e.rx, Math.max(0.4, e.ry), 0, 0, 2 * Math.PI);
    ctx.fill();
  }
  ctx.lineWidth = Math.max(0.8, g.head.r / 9);
  ctx.strokeStyle = "#222";
  ctx.beginPath();
  for (const b of g.brows) {
    ctx.moveTo(b.x0, b.y0);
    ctx.lineTo(b.x1, b.y1);
  }
  const m = g.mouth;
  ctx.moveTo(m.x0, m.y0);
  ctx.quadraticCurveTo(m.upper[0], m.upper[1], m.x1, m.y1);
  if (m.lower) ctx.quadraticCurveTo(m.lower[0], m.lower[1], m.x0, m.y0);
  ctx.stroke();
  ctx.globalAlpha = 1;
}

/** One instance's glyph: the rose around (radius r) and the face inside (radius 0.5 r, or r without a rose). */
export function drawGlyph(ctx: CanvasRenderingContext2D, g: PreparedGlyphs, i: number, cx: number, cy: number, r: number, stroke: string, alpha: number): void {
  const abs = new Float32Array(g.groups.length);
  const signed = new Float32Array(g.groups.length);
  for (let k = 0; k < g.groups.length; k++) {
    abs[k] = g.petalAbs[k][i];
    signed[k] = g.petalSigned[k][i];
  }
  if (g.groups.length) {
    ctx.beginPath();
    ctx.arc(cx, cy, r, 0, 2 * Math.PI);
    ctx.globalAlpha = 0.5 * alpha;
    ctx.strokeStyle = "#c8ccd2";
    ctx.lineWidth = 0.6;
    ctx.stroke();
    ctx.globalAlpha = 1;
    drawRose(ctx, rosePetals(g.groups, abs, signed, r), cx, cy, alpha);
  }
  if (g.faceModality) {
    const e: Record<string, number> = {};
    for (const k in g.emotions) e[k] = g.emotions[k][i];
    drawFace(ctx, faceGeometry(faceFeatures(e), cx, cy, g.groups.length ? 0.5 * r : 0.8 * r), stroke, alpha);
  } else {
    ctx.beginPath();
    ctx.arc(cx, cy, Math.max(2, 0.18 * r), 0, 2 * Math.PI);
    ctx.fillStyle = stroke;
    ctx.globalAlpha = alpha;
    ctx.fill();
    ctx.globalAlpha = 1;
  }
}

// -- template items ------------------------------------------------------------------------------------------------
/** Emotion a feature name stands for ("Joy Evidence" -> "joy"), as modalens.app.glyphs.emotion_of. */
export function emotionOf(feature: string): string | null {
  const aliases: Record<string, string> = { anger: "anger", angry: "anger", contempt: "contempt", disgust: "disgust", fear: "fear", joy: "joy", happy: "joy", happiness: "joy", sadness: "sadness", sad: "sadness", surprise: "surprise", neutral: "neutral" };
  const words = feature.trim().toLowerCase().split(/[\s_-]+/);
  const rest = words.slice(1).join(" ");
  if (!(words[0] in aliases) || !["", "evidence", "prob", "probability", "score", "intensity"].includes(rest)) return null;
  return aliases[words[0]];
}

/** Acoustic group of a feature name ("MCEP_3" -> "spectrum"), as modalens.app.glyphs.acoustic_group. */
export function acousticGroup(feature: string): string | null {
  const name = feature.trim().toLowerCase();
  const patterns: [string, RegExp][] = [
    ["pitch", /^(f0|pitch|f0_?hz|logf0)$/],
    ["voicing", /^(vuv|voiced|voicing)$/],
    ["energy", /^(energy.*|loudness.*|rms.*|intensity.*)$/],
    ["spectrum", /^(mcep_?\d+|mfcc_?\d+|hmpd[md]_?\d+|formant.*|f[1-5])$/],
    ["voice quality", /^(naq|qoq|h1h2|psp|mdq|peakslope|rd|rd_conf|creak)$/],
    ["timing", /^(word_duration|duration|speech_rate|pause.*)$/],
  ];
  for (const [group, re] of patterns) if (re.test(name)) return group;
  return null;
}

const LEVEL_VALUE: Record<string, number> = { "very-low": 0, low: 0.15, mid: 0.5, high: 0.85, "very-high": 1 };

export type ItemGlyph =
  | { kind: "face"; modality: string; feature: string; level: string; emotion: string; value: number }
  | { kind: "petal"; modality: string; feature: string; level: string; group: string; value: number }
  | { kind: "feature"; modality: string; feature: string; level: string }
  | { kind: "word"; modality: string; word: string };

/** What glyph a template item gets: `vision:Joy high` a face, `audio:F0 low` a petal, `text:great` a word chip. */
export function itemGlyph(item: string): ItemGlyph {
  const at = item.indexOf(":");
  const modality = at >= 0 ? item.slice(0, at) : "";
  const rest = at >= 0 ? item.slice(at + 1) : item;
  const space = rest.lastIndexOf(" ");
  const level = space > 0 ? rest.slice(space + 1) : "";
  if (!(level in LEVEL_VALUE)) return { kind: "word", modality, word: rest };
  const feature = rest.slice(0, space);
  const value = LEVEL_VALUE[level];
  const emotion = emotionOf(feature);
  if (emotion) return { kind: "face", modality, feature, level, emotion, value };
  const group = acousticGroup(feature);
  if (group) return { kind: "petal", modality, feature, level, group, value };
  return { kind: "feature", modality, feature, level };
}
