// Templates ranked within the current selection (pure; unit-tested).
//
// For a template T (its member instances) and a selection S of a run of N instances:
//   in-selection count   c = |T ∩ S|
//   in-selection support = c / |S|                      (share of the selection that holds T)
//   global share         = |T| / N                      (share of the whole run that holds T)
//   lift                 = (c / |S|) / (|T| / N)        = P(T | S) / P(T), the standard lift of the rule S -> T
// Lift 1: the selection holds T as often as the run does; 3: three times as often. A tiny selection makes lift
// noisy (one member in a 2-instance selection is already a large lift), so templates with fewer than `minCount`
// members in the selection are ranked after all others. Without a selection the global order (the run's `rank`,
// or the chosen sort) is kept.
//
// Per-modality contribution: for each modality of T's items, the mean over T's members (those in the selection
// when there is one) of the summed attribution of T's items of that modality (the server's
// `/template-contributions`); these add up to the template's mean attribution over the same members. Without that
// document, the mean modality Shapley value of those members stands in (marked `source: "shapley"`).

import type { Template } from "./types";

export type TemplateSortKey = "lift" | "in-selection" | "support" | "attribution" | "prediction";

export interface TemplateContribution {
  template_id: number;
  values: Record<string, (number | null)[]>;
}

export interface ModalityContribution {
  modality: string;
  value: number;
}

export interface RankedTemplate {
  template: Template;
  /** Members inside the selection (all members without one). */
  inSelection: number;
  /** Share of the selection holding the template (its global support share without a selection). */
  selectionSupport: number;
  /** |members| / N. */
  globalShare: number;
  /** P(T | S) / P(T); null without a selection. */
  lift: number | null;
  /** Mean attribution of the template's items per modality over the (selected) members. */
  contributions: ModalityContribution[];
  contributionSource: "items" | "shapley" | "none";
}

export interface RankOptions {
  n: number;
  /** 1 = selected; null = no selection. */
  selection: Uint8Array | null;
  sort: TemplateSortKey;
  minCount?: number;
  contributions?: Map<number, TemplateContribution> | null;
  /** The instance table's modality Shapley columns (the stand-in contribution). */
  shapley?: Record<string, ArrayLike<number | null>> | null;
}

function itemModalities(t: Template): string[] {
  const out: string[] = [];
  for (const item of t.items) {
    const m = item.includes(":") ? item.slice(0, item.indexOf(":")) : (t.modalities[0] ?? "");
    if (!out.includes(m)) out.push(m);
  }
  return out;
}

/** Mean of `values[k]` over the members k in the selection (every member when `sel` is null; finite values
 * only); NaN when none. One pass over the members reading the selection mask directly (no closure per member:
 * at 500,000 instances this runs for every template on every lasso). */
function meanOver(values: ArrayLike<number | null>, members: ArrayLike<number>, sel: Uint8Array | null, byMember: boolean): number {
  let s = 0;
  let c = 0;
  const m = members.length;
  for (let k = 0; k < m; k++) {
    const i = members[k];
    if (sel !== null && sel[i] !== 1) continue;
    const v = values[byMember ? k : i];
    if (v != null && v === v && v !== Infinity && v !== -Infinity) {
      s += v;
      c++;
    }
  }
  return c ? s / c : NaN;
}

/** meanOver for several columns in one pass over the members (each member's selection flag read once, not once
 * per modality: at 500,000 instances the templates' members are read on every lasso). */
function meansOver(cols: ArrayLike<number | null>[], members: ArrayLike<number>, sel: Uint8Array | null, byMember: boolean): number[] {
  const nc = cols.length;
  if (nc === 1) return [meanOver(cols[0], members, sel, byMember)];
  const s = new Float64Array(nc);
  const c = new Float64Array(nc);
  const m = members.length;
  for (let k = 0; k < m; k++) {
    const i = members[k];
    if (sel !== null && sel[i] !== 1) continue;
    const at = byMember ? k : i;
    for (let j = 0; j < nc; j++) {
      const v = cols[j][at];
      if (v != null && v === v && v !== Infinity && v !== -Infinity) {
        s[j] += v;
        c[j]++;
      }
    }
  }
  return Array.from(s, (x, j) => (c[j] ? x / c[j] : NaN));
}

export function modalityContributions(t: Template, opts: Pick<RankOptions, "selection" | "contributions" | "shapley">): { values: ModalityContribution[]; source: RankedTemplate["contributionSource"] } {
  const sel = opts.selection ?? null;
  const mods = itemModalities(t);
  const c = opts.contributions?.get(t.template_id);
  if (c && mods.every((m) => (c.values[m]?.length ?? -1) === t.members.length)) {
    const means = meansOver(mods.map((m) => c.values[m]), t.members, sel, true);
    return { values: mods.map((m, j) => ({ modality: m, value: means[j] })), source: "items" };
  }
  if (opts.shapley && mods.every((m) => opts.shapley![m])) {
    const means = meansOver(mods.map((m) => opts.shapley![m]), t.members, sel, false);
    return { values: mods.map((m, j) => ({ modality: m, value: means[j] })), source: "shapley" };
  }
  return { values: [], source: "none" };
}

/** Templates with selection statistics and per-modality contributions, in the order `sort` asks for. */
export function rankTemplates(templates: Template[], opts: RankOptions): RankedTemplate[] {
  const sel = opts.selection;
  const minCount = opts.minCount ?? 2;
  let selSize = 0;
  if (sel) for (let i = 0; i < sel.length; i++) selSize += sel[i] ? 1 : 0;
  const rows = templates.map((t): RankedTemplate => {
    let inSelection = t.members.length;
    if (sel) {
      inSelection = 0;
      const mem = t.members;
      for (let k = 0; k < mem.length; k++) inSelection += sel[mem[k]];
    }
    const globalShare = opts.n > 0 ? t.members.length / opts.n : 0;
    const selectionSupport = sel ? (selSize ? inSelection / selSize : 0) : globalShare;
    const lift = sel ? (selSize && globalShare > 0 ? selectionSupport / globalShare : 0) : null;
    const { values, source } = modalityContributions(t, opts);
    return { template: t, inSelection, selectionSupport, globalShare, lift, contributions: values, contributionSource: source };
  });
  const rank = (r: RankedTemplate) => r.template.rank ?? r.template.template_id;
  const globalOrder = (a: RankedTemplate, b: RankedTemplate) => rank(a) - rank(b) || a.template.template_id - b.template.template_id;
  let key: (r: RankedTemplate) => number;
  switch (opts.sort) {
    case "lift":
      if (!sel) return rows.sort(globalOrder);
      // lexicographic: enough members first, then lift, then in-selection count
      return rows.sort((a, b) => {
        const ea = a.inSelection >= minCount ? 1 : 0;
        const eb = b.inSelection >= minCount ? 1 : 0;
        return eb - ea || (b.lift ?? 0) - (a.lift ?? 0) || b.inSelection - a.inSelection || globalOrder(a, b);
      });
    case "in-selection":
      key = (r) => r.selectionSupport;
      break;
    case "support":
      key = (r) => r.template.support;
      break;
    case "attribution":
      key = (r) => Math.abs(r.template.mean_attribution ?? 0);
      break;
    case "prediction":
      key = (r) => Math.abs(r.template.mean_prediction ?? 0);
      break;
  }
  return rows.sort((a, b) => key(b) - key(a) || globalOrder(a, b));
}
