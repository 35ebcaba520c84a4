// Pure logic of the instance view (tested in instanceLogic.test.ts): track ranking and folding, the word being
// spoken, coalition order, step lists typed by hand, the cost estimate of feature x step attributions.
import type { Track } from "../types";

/** A track as the instance detail sends it, with the feature's description and group (modalens.data.feature_vocab). */
export type DescribedTrack = Track & { description?: string | null; group?: string | null };

export interface WordTiming {
  position: number;
  start: number;
  end: number;
}

/** How many features of each modality show before "show N more". */
export const TOP_FEATURES = 6;

/** A track's weight for ranking: the summed |attribution| over its steps, else |whole-instance attribution|. */
export function trackScore(t: Track): number {
  let s = 0;
  let any = false;
  for (const a of t.attribution) {
    if (a != null && Number.isFinite(a)) {
      s += Math.abs(a);
      any = true;
    }
  }
  if (any) return s;
  return t.total != null && Number.isFinite(t.total) ? Math.abs(t.total) : 0;
}

/** Does the track hold any per-step attribution of a named feature (the feature x step heat map)? */
export function hasStepCells(t: Track): boolean {
  return t.feature !== "*" && t.attribution.some((a) => a != null);
}

/** Tracks of the same group together: groups in the order of their best track, tracks by score inside a group. */
export function groupTogether<T extends DescribedTrack>(tracks: T[]): T[] {
  const score = new Map(tracks.map((t) => [t, trackScore(t)]));
  const best = new Map<string, number>();
  for (const t of tracks) {
    const g = t.group ?? "";
    best.set(g, Math.max(best.get(g) ?? -1, score.get(t) ?? 0));
  }
  return [...tracks].sort((a, b) => {
    const ga = a.group ?? "";
    const gb = b.group ?? "";
    if (ga !== gb) return (best.get(gb) ?? 0) - (best.get(ga) ?? 0) || ga.localeCompare(gb);
    return (score.get(b) ?? 0) - (score.get(a) ?? 0);
  });
}

export interface ModalityTracks<T extends DescribedTrack = DescribedTrack> {
  modality: string;
  /** The whole-step track ("*"), shown first and not counted among the top features. */
  whole: T | null;
  /** The top `k` features by |attribution|, grouped. */
  top: T[];
  /** The rest, grouped: behind "show N more". */
  rest: T[];
}

/** Per modality (in first-seen order): the whole-step track, the top `k` features by |attribution|, the rest. */
export function rankTracks<T extends DescribedTrack>(tracks: T[], k = TOP_FEATURES): ModalityTracks<T>[] {
  const order: string[] = [];
  const by = new Map<string, T[]>();
  for (const t of tracks) {
    if (!by.has(t.modality)) {
      by.set(t.modality, []);
      order.push(t.modality);
    }
    by.get(t.modality)!.push(t);
  }
  return order.map((m) => {
    const all = by.get(m)!;
    const whole = all.find((t) => t.feature === "*") ?? null;
    // stable: equal scores keep the dataset's order
    const ranked = all
      .filter((t) => t.feature !== "*")
      .map((t, i) => ({ t, i, s: trackScore(t) }))
      .sort((a, b) => b.s - a.s || a.i - b.i)
      .map((x) => x.t);
    return { modality: m, whole, top: groupTogether(ranked.slice(0, k)), rest: groupTogether(ranked.slice(k)) };
  });
}

/** One row of the virtualised track table. */
export type TrackRow<T extends DescribedTrack = DescribedTrack> =
  | { kind: "modality"; modality: string; shown: number; total: number; folded: number; open: boolean }
  | { kind: "group"; modality: string; group: string }
  | { kind: "track"; track: T };

/** The rows to draw: a header per modality, a group header where the group changes, the tracks of open folds. */
export function trackRows<T extends DescribedTrack>(ranked: ModalityTracks<T>[], open: Set<string>): TrackRow<T>[] {
  const rows: TrackRow<T>[] = [];
  for (const m of ranked) {
    const isOpen = open.has(m.modality);
    const shown = [...m.top, ...(isOpen ? m.rest : [])];
    rows.push({ kind: "modality", modality: m.modality, shown: m.top.length, total: m.top.length + m.rest.length, folded: m.rest.length, open: isOpen });
    if (m.whole) rows.push({ kind: "track", track: m.whole });
    let group: string | null | undefined;
    shown.forEach((t, i) => {
      const g = t.group ?? null;
      // a group header where the group changes (and where the folded part starts with a group of its own)
      if (g != null && (g !== group || i === m.top.length)) rows.push({ kind: "group", modality: m.modality, group: g });
      group = g;
      rows.push({ kind: "track", track: t });
    });
  }
  return rows;
}

/** The rows visible in a scroll window of `height` px at `scrollTop`, with `overscan` rows either side. */
export function visibleRange(count: number, rowHeight: number, scrollTop: number, height: number, overscan = 4): [number, number] {
  if (count <= 0) return [0, 0];
  const first = Math.min(count, Math.max(0, Math.floor(scrollTop / rowHeight) - overscan));
  const last = Math.min(count, Math.ceil((scrollTop + height) / rowHeight) + overscan);
  return [first, Math.max(first, last)];
}

/** The position of the word being spoken at `t` seconds (timings sorted by start), or null between/after words. */
export function wordAtTime(timings: WordTiming[], t: number): number | null {
  let lo = 0;
  let hi = timings.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const w = timings[mid];
    if (t < w.start) hi = mid - 1;
    else if (t >= w.end) lo = mid + 1;
    else return w.position;
  }
  return null;
}

/** The coalitions of `modalities` in chart order: none, each alone, each pair ..., all (names joined by "+"). */
export function coalitionOrder(modalities: string[]): string[] {
  const out: string[][] = [];
  const m = modalities.length;
  for (let mask = 0; mask < 1 << m; mask++) out.push(modalities.filter((_, k) => mask & (1 << k)));
  return out.sort((a, b) => a.length - b.length || rankOf(a, modalities) - rankOf(b, modalities)).map((c) => c.join("+"));
}

function rankOf(c: string[], modalities: string[]): number {
  // lexicographic in modality order: text < text+audio < audio ...
  return c.reduce((acc, name) => acc * (modalities.length + 1) + modalities.indexOf(name) + 1, 0);
}

/** A stored or live coalition name in the canonical order of `modalities` ("audio+text" -> "text+audio"). */
export function canonicalCoalition(name: string, modalities: string[]): string {
  if (!name) return "";
  return name
    .split("+")
    .sort((a, b) => modalities.indexOf(a) - modalities.indexOf(b))
    .join("+");
}

/** Steps typed by hand: "3, 5-7" -> [3, 5, 6, 7]; throws on anything else or a step outside 0..maxStep. */
export function parseSteps(text: string, maxStep: number): number[] {
  const out = new Set<number>();
  for (const part of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(part);
    if (!m) throw new Error(`"${part}" is not a step or a range like 3-7`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) throw new Error(`range ${part} runs backwards`);
    if (b > maxStep) throw new Error(`step ${b} is past the last step (${maxStep})`);
    for (let p = a; p <= b; p++) out.add(p);
  }
  return [...out].sort((x, y) => x - y);
}

/**
 * Seconds that feature x step attributions of one instance should take, from the run's own cost of whole-feature
 * attributions: permutation sampling costs (players + 1) model rows per permutation, so the time scales with the
 * number of players (real steps x features instead of features) and of permutations. Null when the run did not
 * time its feature attributions.
 */
export function estimateCellSeconds(opts: { featureSeconds: number | undefined; nInstances: number; runPermutations: number | undefined; featurePlayers: number; cellPlayers: number; permutations: number }): number | null {
  const { featureSeconds, nInstances, runPermutations, featurePlayers, cellPlayers, permutations } = opts;
  if (!featureSeconds || !(nInstances > 0) || !runPermutations || featurePlayers <= 0) return null;
  const perRow = featureSeconds / nInstances / (runPermutations * (featurePlayers + 1));
  return perRow * permutations * (cellPlayers + 1);
}

export interface CellRow {
  modality: string;
  position: number;
  feature: string;
  value: number | null;
  std_error?: number | null;
}

/** Tracks with computed feature x step attributions filled in (rows of the cells route). A feature the instance
 * has no track of (a text modality's features: its steps are words, so the detail sends no tracks for them) gets a
 * track of its own, without raw values; modalities keep the order in which the rows name them. */
export function fillCells<T extends Track>(tracks: T[], rows: CellRow[]): T[] {
  const at = new Map<string, Map<number, number | null>>();
  const added: T[] = [];
  const known = new Set(tracks.map((t) => `${t.modality}\u0000${t.feature}`));
  for (const r of rows) {
    if (r.position < 0 || r.feature === "*") continue;
    const key = `${r.modality}\u0000${r.feature}`;
    if (!at.has(key)) {
      at.set(key, new Map());
      if (!known.has(key)) added.push({ modality: r.modality, feature: r.feature, positions: [], attribution: [], values: null, total: null } as unknown as T);
    }
    at.get(key)!.set(r.position, r.value);
  }
  const filled = [...tracks, ...added].map((t) => {
    const cells = at.get(`${t.modality}\u0000${t.feature}`);
    if (!cells) return t;
    const positions = [...new Set([...t.positions, ...cells.keys()])].sort((a, b) => a - b);
    const old = new Map(t.positions.map((p, k) => [p, k]));
    return {
      ...t,
      positions,
      attribution: positions.map((p) => (cells.has(p) ? cells.get(p)! : old.has(p) ? t.attribution[old.get(p)!] : null)),
      values: t.values ? positions.map((p) => (old.has(p) ? t.values![old.get(p)!] : null)) : null,
    };
  });
  if (!added.length) return filled;
  const order = [...new Set([...rows.map((r) => r.modality), ...tracks.map((t) => t.modality)])];
  // a stable sort by modality: each modality's tracks stay in their order, the added ones after them
  return filled.map((t, k) => ({ t, k })).sort((a, b) => order.indexOf(a.t.modality) - order.indexOf(b.t.modality) || a.k - b.k).map((x) => x.t);
}
