import { useEffect, useMemo, useRef, useState } from "react";
import { paths, useDocument } from "../api";
import { Empty, ErrorBox, Loading, Panel, Swatches } from "../components/common";
import {
  CATEGORIES,
  categorize,
  categoryColor,
  featureOrder,
  mdsHistogram,
  replicateShares,
  shares,
  stability,
  visibleWindow,
  type SortDir,
} from "../featureStats";
import { fmt, num, pct } from "../stats";
import type { Cell, RunInfo } from "../types";
import { FeatureCard } from "./FeatureCard";
import { FeatureCompare } from "./FeatureCompare";
import { FeatureEvidence } from "./FeatureEvidence";
import { FeatureQuery } from "./FeatureQuery";

export interface FeatureDoc {
  n: number;
  columns: Record<string, Cell[]>;
  dominance: {
    mds_low_threshold?: number | null;
    mds_high_threshold?: number | null;
    proportions?: Record<string, number>;
    counts?: Record<string, number>;
    k?: number;
    ci?: number;
    stable_share?: number | null;
    modalities?: string[];
    min_active?: number;
    share_ci?: Record<string, number[]> | null;
    null_shares?: Record<string, Record<string, number>> | null;
    n_null?: number | null;
    share_boot?: number | null;
  };
  extractor: { name?: string; metrics?: Record<string, unknown>; config?: Record<string, unknown> };
  model: Record<string, unknown>;
  interventions: Record<string, Cell[]> | null;
  has_images: boolean;
  evidence?: Record<string, Record<string, Cell[]>>;
  replicates?: Record<string, (number | null)[][]>;
  has_codes?: boolean;
  config?: Record<string, unknown>;
}

/** The categories at the k chosen in the app, recomputed from the stored MDS, intervals and replicates. */
export interface Derived {
  k: number;
  categories: string[];
  stable: boolean[];
  lo: number;
  hi: number;
  shares: Record<string, number>;
  shareCI: Record<string, { low: number; high: number }> | null;
  chance: Record<string, { mean: number; low: number; high: number }> | null;
  chanceSameRule: Record<string, { mean: number; low: number; high: number }> | null;
  stableCounts: Record<string, number>;
  counts: Record<string, number>;
}

/** More than two modalities (a predictor's hidden layer over text, audio, vision): the categories are the run's own
 * (the browser's recomputation for another k reads one MDS, which only two modalities have), so k stays the run's. */
export function storedDerived(d: FeatureDoc): Derived {
  const c = d.columns;
  const dom = d.dominance;
  const categories = (c.category ?? []).map((x) => String(x));
  const stable = (c.stable ?? []).map((x) => x === true);
  const counts: Record<string, number> = { "cross-modal": 0, inactive: 0 };
  const stableCounts: Record<string, number> = { "cross-modal": 0 };
  categories.forEach((x, i) => {
    counts[x] = (counts[x] ?? 0) + 1;
    if (stable[i]) stableCounts[x] = (stableCounts[x] ?? 0) + 1;
  });
  const spread = (key: "" | "at_thresholds_") =>
    dom.null_shares
      ? Object.fromEntries(
          Object.entries(dom.null_shares).map(([cat, v]) => [cat, { mean: v[`${key}mean`], low: v[`${key}low`], high: v[`${key}high`] }]),
        )
      : null;
  return {
    k: dom.k ?? 1,
    categories,
    stable,
    lo: NaN,
    hi: NaN,
    shares: dom.proportions ?? {},
    shareCI: dom.share_ci ? Object.fromEntries(Object.entries(dom.share_ci).map(([cat, v]) => [cat, { low: v[0], high: v[1] }])) : null,
    chance: spread("at_thresholds_"),
    chanceSameRule: spread(""),
    stableCounts,
    counts,
  };
}

/** The categories of the run: vision, language, cross-modal, or one per modality and cross-modal (K > 2). */
export function categoryList(derived: Derived): string[] {
  const keys = Object.keys(derived.shares);
  return keys.length ? keys : [...CATEGORIES];
}

export function derive(d: FeatureDoc, k: number): Derived {
  if ((d.dominance.modalities?.length ?? 2) > 2) return storedDerived(d);
  const c = d.columns;
  const cat = categorize(c.mds ?? [], k);
  const stable = stability(cat.categories, c.ci_low ?? [], c.ci_high ?? [], c.n_active ?? [], cat.lo, cat.hi, d.dominance.min_active ?? 10);
  const ci = d.dominance.ci ?? 0.95;
  const boot = d.replicates?.bootstrap ?? [];
  const nul = d.replicates?.null ?? [];
  const counts: Record<string, number> = { vision: 0, language: 0, "cross-modal": 0, inactive: 0 };
  const stableCounts: Record<string, number> = { vision: 0, language: 0, "cross-modal": 0 };
  cat.categories.forEach((x, i) => {
    counts[x] = (counts[x] ?? 0) + 1;
    if (stable[i]) stableCounts[x] = (stableCounts[x] ?? 0) + 1;
  });
  return {
    k,
    categories: cat.categories,
    stable,
    lo: cat.lo,
    hi: cat.hi,
    shares: shares(cat.categories),
    shareCI: boot.length ? replicateShares(boot, k, ci) : null,
    // chance: the swapped (null) replicates categorised against these thresholds; the same relative rule re-applied
    // to the null data labels its tails anyway, so its share says how many labels the rule hands out regardless
    chance: nul.length ? replicateShares(nul, k, ci, { lo: cat.lo, hi: cat.hi }) : null,
    chanceSameRule: nul.length ? replicateShares(nul, k, ci) : null,
    stableCounts,
    counts,
  };
}

type FeatureTab = "features" | "query" | "evidence" | "compare";

const ROW = 26;
const BINS = 40;

export function FeaturesView(props: { run: RunInfo; runs?: RunInfo[] }) {
  const doc = useDocument<FeatureDoc>(`${paths.manifest(props.run.id)}/features`);
  const [tab, setTab] = useState<FeatureTab>("features");
  const [k, setK] = useState<number | null>(null);
  const [picked, setPicked] = useState<number | null>(null);
  const d = doc.status === "ready" ? doc.data : null;
  const runK = d?.dominance.k ?? 1;
  const kk = k ?? runK;
  const derived = useMemo(() => (d ? derive(d, kk) : null), [d, kk]);

  if (doc.status === "error") return <Panel title="Features" id="features"><ErrorBox error={doc.error} hint="A feature run is written by `modalens features ...` (FeatureStudy.save)." /></Panel>;
  if (!d || !derived) return <Panel title="Features" id="features"><Loading what="features" /></Panel>;
  const open = (f: number) => {
    setPicked(f);
    setTab("features");
    window.setTimeout(() => document.querySelector("[data-view=feature-card]")?.scrollIntoView({ behavior: "smooth", block: "start" }), 50);
  };
  const others = (props.runs ?? []).filter((r) => r.kind === "features" && r.id !== props.run.id);
  return (
    <div className="features-page">
      <nav className="subtabs" role="tablist" aria-label="feature views">
        {(
          [
            ["features", "Features"],
            ["query", "Query"],
            ["evidence", "Evidence"],
            ["compare", `Compare runs${others.length ? ` (${others.length + 1})` : ""}`],
          ] as [FeatureTab, string][]
        ).map(([t, label]) => (
          <button key={t} type="button" role="tab" aria-selected={tab === t} onClick={() => setTab(t)} data-feature-tab={t}>
            {label}
          </button>
        ))}
        <KControl k={kk} runK={runK} onK={setK} />
      </nav>
      {tab === "features" && (
        <>
          <FeatureOverview d={d} derived={derived} picked={picked} onPick={open} />
          {picked == null ? (
            <Panel title="Feature card" id="feature-card">
              <Empty title="No feature open" hint="Click a row of the feature table (or a feature anywhere in the app) to see its card." />
            </Panel>
          ) : (
            <FeatureCard run={props.run} feature={picked} d={d} derived={derived} onPick={open} />
          )}
        </>
      )}
      {tab === "query" && <FeatureQuery run={props.run} d={d} derived={derived} onPick={open} />}
      {tab === "evidence" && <FeatureEvidence run={props.run} d={d} onPick={open} />}
      {tab === "compare" && <FeatureCompare run={props.run} others={others} d={d} derived={derived} />}
    </div>
  );
}

function KControl({ k, runK, onK }: { k: number; runK: number; onK: (k: number | null) => void }) {
  return (
    <label className="k-control" title="Category width: vision above mean + k·sd of MDS, language below mean − k·sd. Recomputed here, in the browser.">
      category width k
      <input type="range" min={0} max={3} step={0.05} value={k} onChange={(e) => onK(Number(e.target.value))} aria-label="category width k" data-testid="k-slider" />
      <output data-testid="k-value">{k.toFixed(2)}</output>
      {Math.abs(k - runK) > 1e-9 && (
        <button type="button" onClick={() => onK(null)} title={`back to the run's k = ${runK}`}>
          reset ({runK})
        </button>
      )}
    </label>
  );
}

function FeatureOverview({ d, derived, picked, onPick }: { d: FeatureDoc; derived: Derived; picked: number | null; onPick: (f: number) => void }) {
  const [category, setCategory] = useState("all");
  const [stableOnly, setStableOnly] = useState(false);
  const [range, setRange] = useState<[number, number] | null>(null);
  const [sort, setSort] = useState<{ key: string; dir: SortDir }>({ key: "frequency", dir: "desc" });
  const [query, setQuery] = useState("");
  return (
    <Panel title={`Features · ${d.extractor.name ?? "extractor"} · ${d.n.toLocaleString()} features`} id="features">
      <div className="features-grid">
        <div>
          <MdsHistogram d={d} derived={derived} range={range} onRange={(r) => setRange(r)} />
          <CategorySummary d={d} derived={derived} />
          <ExtractorMetrics d={d} />
        </div>
        <div>
          <div className="panel-actions" style={{ marginBottom: 6 }}>
            <label>
              Category{" "}
              <select value={category} onChange={(e) => setCategory(e.target.value)} aria-label="filter features by category" data-testid="feature-category">
                {["all", ...categoryList(derived), "inactive"].map((c) => (
                  <option key={c} value={c}>
                    {c}
                  </option>
                ))}
              </select>
            </label>
            <label>
              <input type="checkbox" checked={stableOnly} onChange={(e) => setStableOnly(e.target.checked)} data-testid="stable-only" /> stable only
            </label>
            <label>
              Find{" "}
              <input value={query} onChange={(e) => setQuery(e.target.value)} size={10} placeholder="# or word" aria-label="find feature by number or label" />
            </label>
            {range && (
              <button type="button" onClick={() => setRange(null)}>
                MDS {fmt(range[0])}–{fmt(range[1])} ✕
              </button>
            )}
          </div>
          <FeatureTable d={d} derived={derived} category={category} stableOnly={stableOnly} range={range} sort={sort} setSort={setSort} query={query} picked={picked} onPick={onPick} />
        </div>
      </div>
    </Panel>
  );
}

function MdsHistogram({ d, derived, range, onRange }: { d: FeatureDoc; derived: Derived; range: [number, number] | null; onRange: (r: [number, number]) => void }) {
  const h = useMemo(() => mdsHistogram(d.columns.mds ?? [], derived.categories, BINS), [d, derived]);
  const W = 440;
  const H = 170;
  const top = Math.max(1, ...h.counts.map((r) => r.reduce((a, b) => a + b, 0)));
  const bw = (W - 30) / BINS;
  const x = (v: number) => 30 + v * (W - 30);
  return (
    <div>
      <h3>
        Modality Dominance Score <span className="sub">click a bar to filter the table</span>
      </h3>
      <svg width={W} height={H + 34} role="img" aria-label="histogram of modality dominance scores with category thresholds" data-testid="mds-histogram">
        {h.counts.map((row, b) => {
          let y = H;
          const active = range && Math.abs(range[0] - h.edges[b]) < 1e-9;
          return (
            <g key={b} onClick={() => onRange([h.edges[b], h.edges[b + 1]])} style={{ cursor: "pointer" }}>
              <rect x={x(h.edges[b])} y={0} width={bw} height={H} fill={active ? "#e8f0fb" : "transparent"} />
              {row.map((c, k) => {
                const hgt = ((H - 16) * c) / top;
                y -= hgt;
                return <rect key={k} x={x(h.edges[b]) + 0.5} y={y} width={bw - 1} height={hgt} fill={categoryColor(h.categories[k])} />;
              })}
            </g>
          );
        })}
        <line x1={30} x2={W} y1={H} y2={H} stroke="#888" />
        {[derived.lo, derived.hi].map((t, k) =>
          !Number.isFinite(t) ? null : (
            <g key={k} data-testid={k ? "threshold-high" : "threshold-low"} data-value={t}>
              <line x1={x(t)} x2={x(t)} y1={6} y2={H} stroke="#222" strokeDasharray="4 3" />
              <text {...thresholdLabel(x(t), k === 1, W)} y={14} fontSize={10}>
                {k ? "vision ›" : "‹ language"} {fmt(t)}
              </text>
            </g>
          ),
        )}
        {[0, 0.25, 0.5, 0.75, 1].map((v) => (
          <text key={v} x={x(v)} y={H + 13} fontSize={10} textAnchor="middle">
            {v}
          </text>
        ))}
        <text x={30 + (W - 30) / 2} y={H + 28} fontSize={10.5} textAnchor="middle">
          MDS (0 = text only, 1 = image only)
        </text>
        <text x={4} y={12} fontSize={10}>
          {top}
        </text>
      </svg>
      <Swatches items={h.categories.map((c) => ({ label: c, color: categoryColor(c) }))} label={`Category (thresholds: mean ± ${derived.k.toFixed(2)}·sd of MDS)`} />
    </div>
  );
}

/** Shares with their bootstrap interval, the share chance alone gives, and the stable part of each. */
function CategorySummary({ d, derived }: { d: FeatureDoc; derived: Derived }) {
  const W = 150;
  const cats = categoryList(derived);
  const max = Math.max(0.01, ...cats.map((c) => Math.max(derived.shares[c], derived.shareCI?.[c]?.high ?? 0, derived.chance?.[c]?.high ?? 0)));
  const x = (v: number) => (W * v) / max;
  const live = cats.reduce((a, c) => a + (derived.counts[c] ?? 0), 0);
  return (
    <div data-testid="category-summary">
      <h3>
        Categories <span className="sub">share of features that fire; bar = stable part</span>
      </h3>
      <table className="share-table category-shares">
        <thead>
          <tr>
            <th>category</th>
            <th />
            <th>share (interval)</th>
            <th>chance</th>
            <th>stable</th>
          </tr>
        </thead>
        <tbody>
          {cats.map((c) => {
            const s = derived.shares[c];
            const ci = derived.shareCI?.[c];
            const ch = derived.chance?.[c];
            const n = derived.counts[c] ?? 0;
            const st = derived.stableCounts[c] ?? 0;
            return (
              <tr key={c} data-category={c}>
                <td>
                  <span className="dot" style={{ background: categoryColor(c) }} />
                  {c}
                </td>
                <td>
                  <svg width={W} height={22} role="img" aria-label={`${c}: ${pct(s)} of features; chance ${ch ? pct(ch.mean) : "not measured"}`}>
                    {ch && <rect x={x(ch.low)} y={2} width={Math.max(1, x(ch.high) - x(ch.low))} height={18} fill="#e3e6eb" />}
                    {ch && <line x1={x(ch.mean)} x2={x(ch.mean)} y1={1} y2={21} stroke="#7a828e" strokeWidth={2} strokeDasharray="3 2" />}
                    <rect x={0} y={6} width={x(s)} height={10} fill={categoryColor(c)} opacity={0.35} />
                    <rect x={0} y={6} width={x(live ? st / live : 0)} height={10} fill={categoryColor(c)} />
                    {ci && <line x1={x(ci.low)} x2={x(ci.high)} y1={11} y2={11} stroke="#222" strokeWidth={1.5} />}
                    {ci && [ci.low, ci.high].map((v, i) => <line key={i} x1={x(v)} x2={x(v)} y1={7} y2={15} stroke="#222" strokeWidth={1.5} />)}
                  </svg>
                </td>
                <td className="num" data-testid={`share-${c}`}>
                  <b>{pct(s)}</b>
                  {ci && <span className="sub"> {pct(ci.low)}–{pct(ci.high)}</span>}
                </td>
                <td className="num sub" data-testid={`chance-${c}`}>
                  {ch ? pct(ch.mean) : "—"}
                </td>
                <td className="num">
                  {st}/{n}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <p className="note">
        Dark bar: stable features (bootstrap interval inside the category, ≥ {d.dominance.min_active ?? 10} active pairs); light: unstable. Whiskers: {pct(d.dominance.ci ?? 0.95)} bootstrap interval of
        the share. Chance (grey band, dashed line): the shares these thresholds give when each pair's image and text codes are swapped at random ({d.replicates?.null?.length ?? 0} replicates), so
        that no feature can prefer a modality.
        {derived.chanceSameRule
          ? ` The mean ± k·sd rule re-applied to those swapped data still labels vision ${pct(derived.chanceSameRule.vision.mean)} and language ${pct(derived.chanceSameRule.language.mean)} of features: relative thresholds always label some.`
          : ""}{" "}
        Inactive features: {derived.counts.inactive ?? 0}.
      </p>
      {!derived.chance && <p className="note warning">This run stores no null replicates: chance shares cannot be shown (re-run the study with n_null &gt; 0).</p>}
    </div>
  );
}

function ExtractorMetrics({ d }: { d: FeatureDoc }) {
  const m = d.extractor.metrics ?? {};
  const keys = ["explained_variance", "l0", "dead_fraction", "mse"].filter((k) => typeof m[k] === "number");
  if (!keys.length) return null;
  return (
    <div>
      <h3>Extractor</h3>
      <div className="metrics">
        {keys.map((k) => (
          <div className="metric" key={k}>
            <div className="metric-label">{k === "l0" ? "L0 (active per sample)" : k.replace("_", " ")}</div>
            <div className="metric-value" data-testid={`metric-${k}`}>
              {fmt(m[k] as number)}
            </div>
          </div>
        ))}
      </div>
    </div>
  );
}

const TABLE_COLUMNS: { key: string; label: string }[] = [
  { key: "feature", label: "#" },
  { key: "category", label: "category" },
  { key: "mds", label: "MDS (CI)" },
  { key: "frequency", label: "freq." },
  { key: "label_score", label: "label (score)" },
];

function FeatureTable(props: {
  d: FeatureDoc;
  derived: Derived;
  category: string;
  stableOnly: boolean;
  range: [number, number] | null;
  sort: { key: string; dir: SortDir };
  setSort: (s: { key: string; dir: SortDir }) => void;
  query: string;
  picked: number | null;
  onPick: (f: number) => void;
}) {
  const { d, derived } = props;
  const columns = useMemo((): Record<string, Cell[]> => ({ ...d.columns, category: derived.categories as Cell[], stable: derived.stable as Cell[] }), [d, derived]);
  const order = useMemo(() => {
    const q = props.query.trim().toLowerCase();
    const numeric = /^\d+$/.test(q);
    const base = featureOrder(columns, { sort: props.sort.key, dir: props.sort.dir, category: props.category, mdsRange: props.range, query: numeric ? q : "" });
    return base.filter((i) => (!props.stableOnly || derived.stable[i]) && (numeric || !q || String(columns.label?.[i] ?? "").toLowerCase().includes(q)));
  }, [columns, derived, props.sort, props.category, props.range, props.query, props.stableOnly]);
  const ref = useRef<HTMLDivElement>(null);
  const [scroll, setScroll] = useState(0);
  useEffect(() => {
    if (ref.current) ref.current.scrollTop = 0;
    setScroll(0);
  }, [order]);
  const [first, last] = visibleWindow(scroll, 520, ROW, order.length);
  const c = columns;
  return (
    <div>
      <div className="feature-table" ref={ref} onScroll={(e) => setScroll(e.currentTarget.scrollTop)} role="table" aria-label="features" aria-rowcount={order.length} data-testid="feature-table">
        <div className="feature-row head" role="row">
          {TABLE_COLUMNS.map((col) => (
            <button
              type="button"
              key={col.key}
              role="columnheader"
              className="sort"
              aria-sort={props.sort.key === col.key ? (props.sort.dir === "asc" ? "ascending" : "descending") : "none"}
              onClick={() => props.setSort({ key: col.key, dir: props.sort.key === col.key && props.sort.dir === "desc" ? "asc" : "desc" })}
            >
              {col.label}
              {props.sort.key === col.key ? (props.sort.dir === "asc" ? " ▲" : " ▼") : ""}
            </button>
          ))}
        </div>
        <div style={{ height: order.length * ROW, position: "relative" }}>
          {order.slice(first, last).map((i, k) => {
            const f = Number(c.feature[i]);
            const mds = num(c.mds?.[i]);
            const lo = num(c.ci_low?.[i]);
            const hi = num(c.ci_high?.[i]);
            const cat = String(c.category?.[i] ?? "");
            const label = c.label?.[i];
            return (
              <button
                type="button"
                role="row"
                key={f}
                className={`feature-row ${props.picked === f ? "active" : ""} ${derived.stable[i] ? "" : "unstable"}`}
                style={{ top: (first + k) * ROW }}
                onClick={() => props.onPick(f)}
                data-feature={f}
              >
                <span>#{f}</span>
                <span>
                  <span className="dot" style={{ background: categoryColor(cat) }} />
                  {cat}
                  {derived.stable[i] ? " ✓" : ""}
                </span>
                <span className="ci" title={`MDS ${fmt(mds)} (${fmt(lo)}–${fmt(hi)})`}>
                  <span className="ci-track">
                    {Number.isFinite(lo) && Number.isFinite(hi) && <span className="ci-line" style={{ left: `${lo * 100}%`, width: `${(hi - lo) * 100}%` }} />}
                    {Number.isFinite(mds) && <span className="ci-dot" style={{ left: `${mds * 100}%`, background: categoryColor(cat) }} />}
                  </span>
                </span>
                <span className="num">{pct(num(c.frequency?.[i]))}</span>
                <span className="label-cell" title={label ? `${label} (score ${fmt(num(c.label_score?.[i]))})` : "no label"}>
                  {label ? (
                    <>
                      {String(label)} <span className="sub">{fmt(num(c.label_score?.[i]), 2)}</span>
                    </>
                  ) : (
                    <span className="sub">—</span>
                  )}
                </span>
              </button>
            );
          })}
        </div>
      </div>
      <p className="note">
        {order.length.toLocaleString()} features shown · ✓ = category stable under the bootstrap (unstable rows are greyed) · label = the distinctive caption words, with their score (correlation with the
        activation) · sort by a column header
      </p>
    </div>
  );
}

/** Position of a threshold's label: beside its line, on the side that keeps the text inside the plot. */
function thresholdLabel(at: number, upper: boolean, width: number): { x: number; textAnchor: "start" | "end" } {
  const room = 90; // px a label like "vision › 0.882" needs
  const outward = upper ? at + room <= width : at - room >= 30;
  const right = upper === outward;
  return { x: at + (right ? 3 : -3), textAnchor: right ? "start" : "end" };
}
