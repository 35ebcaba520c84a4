// Pure logic of the Summary's measures: global feature importance (ranking with a minimum support), dominance and
// |Shapley| shares per modality, and the run's dataset measures (EMAP, PID) read from its manifest.

import { codesOf } from "./stats";
import type { Cell, InstanceTable } from "./types";

/** One named feature or word of `GET/POST api/runs/{run}/feature-importance` (src/modalens/app/importance.py). */
export interface ImportanceItem {
  modality: string;
  feature: string;
  kind: "feature" | "word";
  mean_abs: number;
  mean: number;
  /** instances where it occurs */
  support: number;
  /** rows: a word may occur more than once in an instance */
  count: number;
}

export interface ImportanceDoc {
  features: ImportanceItem[];
  n_instances: number;
  members?: number[];
}

export const importancePath = (run: string) => `api/runs/${encodeURIComponent(run)}/feature-importance`;

export interface RankOptions {
  modality?: string | null;
  kind?: "feature" | "word" | null;
  minSupport?: number;
  limit?: number;
}

/** Items of one modality and kind seen in at least `minSupport` instances, largest mean |attribution| first. */
export function rankImportance(items: ImportanceItem[], opts: RankOptions = {}): ImportanceItem[] {
  const min = Math.max(1, opts.minSupport ?? 1);
  const out = items.filter(
    (d) => (!opts.modality || d.modality === opts.modality) && (!opts.kind || d.kind === opts.kind) && d.support >= min && Number.isFinite(d.mean_abs),
  );
  out.sort((a, b) => b.mean_abs - a.mean_abs || b.support - a.support || (a.feature < b.feature ? -1 : 1));
  return opts.limit !== undefined ? out.slice(0, opts.limit) : out;
}

export const itemKey = (d: Pick<ImportanceItem, "modality" | "kind" | "feature">) => `${d.modality}\u0000${d.kind}\u0000${d.feature}`;

/** Items of a document by key (to put a selection's value beside the global one). */
export function byKey(items: ImportanceItem[] | undefined): Map<string, ImportanceItem> {
  const m = new Map<string, ImportanceItem>();
  for (const d of items ?? []) m.set(itemKey(d), d);
  return m;
}

/** How many items of this modality and kind a minimum support hides (the UI says so). */
export function hiddenBySupport(items: ImportanceItem[], modality: string | null, kind: "feature" | "word" | null, minSupport: number): number {
  return rankImportance(items, { modality, kind }).length - rankImportance(items, { modality, kind, minSupport }).length;
}

/** The dominant modality of an instance: `dominant_modality` when typed dominance (or "dominance:<m>" runs). */
function dominantOf(type: Cell | undefined, dominant: Cell | undefined): string | null {
  const t = type == null ? "" : String(type);
  if (t.startsWith("dominance:")) return t.slice("dominance:".length);
  if (t === "dominance" && dominant != null && dominant !== "") return String(dominant);
  return null;
}

export interface DominanceStat {
  modality: string;
  count: number;
  /** share of the subset's instances typed dominance by this modality */
  share: number;
}

/** Per modality: the instances of a subset whose interaction type is dominance by that modality. */
export function dominanceByModality(table: InstanceTable, idx: ArrayLike<number>): DominanceStat[] {
  const types = table.columns.interaction_type ?? [];
  const dom = table.columns.dominant_modality ?? [];
  // the dominant modality of each distinct (type, dominant) pair, looked up by codes built once per column
  const tc = codesOf(types, "");
  const dc = codesOf(dom, "");
  const width = dc.values.length;
  const pairCount = new Float64Array(tc.values.length * width);
  for (let k = 0; k < idx.length; k++) {
    const i = idx[k];
    pairCount[tc.codes[i] * width + dc.codes[i]]++;
  }
  const count: Record<string, number> = {};
  for (let a = 0; a < tc.values.length; a++)
    for (let b = 0; b < width; b++) {
      const c = pairCount[a * width + b];
      if (!c) continue;
      const d = dc.values[b];
      const mod = dominantOf(tc.values[a] === "" ? null : tc.values[a], d === "" ? null : d);
      if (mod !== null) count[mod] = (count[mod] ?? 0) + c;
    }
  const mods = [...table.modalities, ...Object.keys(count).filter((m) => !table.modalities.includes(m))];
  return mods.map((m) => ({ modality: m, count: count[m] ?? 0, share: idx.length ? (count[m] ?? 0) / idx.length : 0 }));
}

/** The instances typed dominance by a modality (to select them). */
export function dominatedBy(table: InstanceTable, modality: string): number[] {
  const types = table.columns.interaction_type ?? [];
  const dom = table.columns.dominant_modality ?? [];
  const out: number[] = [];
  for (let i = 0; i < table.n; i++) if (dominantOf(types[i], dom[i]) === modality) out.push(i);
  return out;
}

/** Mean over a subset of each modality's share of |Shapley| (|φ_m| / Σ|φ|; instances with Σ|φ| = 0 skipped). */
export function shapleyShares(table: InstanceTable, idx: ArrayLike<number>): { modality: string; share: number }[] {
  const mods = table.modalities;
  const m = mods.length;
  const sums = new Float64Array(m);
  const abs = new Float64Array(m);
  let n = 0;
  const cols = mods.map((mod) => table.shapley[mod] ?? []);
  for (let k = 0; k < idx.length; k++) {
    const i = idx[k];
    let total = 0;
    for (let j = 0; j < m; j++) {
      const v = cols[j][i];
      const a = v != null && Number.isFinite(v) ? Math.abs(v) : 0;
      abs[j] = a;
      total += a;
    }
    if (!(total > 0)) continue;
    for (let j = 0; j < m; j++) sums[j] += abs[j] / total;
    n++;
  }
  return mods.map((mod, j) => ({ modality: mod, share: n ? sums[j] / n : NaN }));
}

// -- dataset measures (manifest.dataset_measures, written by `modalens explain --emap --pid`) --------------------

export interface EmapMeasure {
  groups: string[];
  n_instances: number;
  mixing: string;
  n_evaluations: number;
  target: string | number | null;
  interaction_share: number | null;
  component_share: Record<string, number | null>;
  performance_original: Record<string, unknown> | null;
  performance_projected: Record<string, unknown> | null;
  gap: Record<string, unknown> | null;
  notes: string[];
}

export interface PidMeasure {
  pair: string;
  names: [string, string];
  redundancy: number;
  unique1: number;
  unique2: number;
  synergy: number;
  total: number;
  unit: string;
  n_samples: number | null;
  bias: number | null;
  notes: string[];
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const numOrNull = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);

/** The run's EMAP summary, or null when the run was explained without `--emap`. */
export function emapOf(measures: Record<string, unknown> | undefined): EmapMeasure | null {
  const e = measures?.emap;
  if (!isObj(e)) return null;
  const shares: Record<string, number | null> = {};
  if (isObj(e.component_share)) for (const [k, v] of Object.entries(e.component_share)) shares[k] = numOrNull(v);
  return {
    groups: Array.isArray(e.groups) ? e.groups.map((g) => (Array.isArray(g) ? g.join("+") : String(g))) : Object.keys(shares),
    n_instances: Number(e.n_instances ?? 0),
    mixing: String(e.mixing ?? ""),
    n_evaluations: Number(e.n_evaluations ?? 0),
    target: (e.target as string | number | null) ?? null,
    interaction_share: numOrNull(e.interaction_share),
    component_share: shares,
    performance_original: isObj(e.performance_original) ? e.performance_original : null,
    performance_projected: isObj(e.performance_projected) ? e.performance_projected : null,
    gap: isObj(e.gap) ? e.gap : null,
    notes: Array.isArray(e.notes) ? e.notes.map(String) : [],
  };
}

/** Metrics reported for the model and its additive projection, with the gap (> 0: the model does better). */
export function emapMetrics(e: EmapMeasure): { metric: string; original: number; projected: number; gap: number | null }[] {
  const out = [];
  const orig = e.performance_original ?? {};
  const proj = e.performance_projected ?? {};
  for (const [k, v] of Object.entries(orig)) {
    const a = numOrNull(v);
    const b = numOrNull(proj[k]);
    if (a === null || b === null || k === "n" || k.startsWith("n_")) continue;
    out.push({ metric: k, original: a, projected: b, gap: numOrNull(e.gap?.[k]) });
  }
  return out;
}

/** The run's PID of each modality pair, or null when the run was explained without `--pid`. */
export function pidOf(measures: Record<string, unknown> | undefined): PidMeasure[] | null {
  const p = measures?.pid;
  if (!isObj(p)) return null;
  const out: PidMeasure[] = [];
  for (const [pair, r] of Object.entries(p)) {
    if (!isObj(r)) continue;
    const [a, b] = pair.split("+");
    const names = Array.isArray(r.names) && r.names.length === 2 ? [String(r.names[0]), String(r.names[1])] : [a ?? "x1", b ?? "x2"];
    const extra = isObj(r.extra) ? r.extra : {};
    out.push({
      pair,
      names: names as [string, string],
      redundancy: Number(r.redundancy),
      unique1: Number(r.unique1),
      unique2: Number(r.unique2),
      synergy: Number(r.synergy),
      total: Number(r.total),
      unit: String(r.unit ?? "bits"),
      n_samples: numOrNull(r.n_samples),
      bias: numOrNull(extra.bias_estimate),
      notes: Array.isArray(r.notes) ? r.notes.map(String) : [],
    });
  }
  return out;
}

/** PID atoms as fractions of the pair's total information (negative solver noise counted as 0). */
export function pidFractions(p: PidMeasure): { atom: string; label: string; value: number; fraction: number }[] {
  const atoms = [
    { atom: "redundancy", label: "redundancy", value: p.redundancy },
    { atom: "unique1", label: `unique ${p.names[0]}`, value: p.unique1 },
    { atom: "unique2", label: `unique ${p.names[1]}`, value: p.unique2 },
    { atom: "synergy", label: "synergy", value: p.synergy },
  ];
  const total = atoms.reduce((s, a) => s + Math.max(0, a.value), 0);
  return atoms.map((a) => ({ ...a, fraction: total > 0 ? Math.max(0, a.value) / total : 0 }));
}
