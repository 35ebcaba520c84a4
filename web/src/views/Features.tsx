import { useEffect, useMemo, useRef, useState } from "react";
import { embeddedData, paths, useDocument } from "../api";
import { Empty, ErrorBox, Loading, Panel, Swatches } from "../components/common";
import { categoryColor, featureOrder, mdsHistogram, visibleWindow, type SortDir } from "../featureStats";
import { fmt, num, pct } from "../stats";
import type { Cell, RunInfo } from "../types";

interface FeatureDoc {
  n: number;
  columns: Record<string, Cell[]>;
  dominance: { mds_low_threshold?: number; mds_high_threshold?: number; proportions?: Record<string, number>; counts?: Record<string, number>; k?: number; stable_share?: number; modalities?: string[] };
  extractor: { name?: string; metrics?: Record<string, unknown> };
  model: Record<string, unknown>;
  interventions: Record<string, Cell[]> | null;
  has_images: boolean;
}

interface FeatureCardDoc {
  feature: number;
  row: Record<string, Cell | number[]>;
  top_samples: { rank: number; modality: string; sample: number; activation: number; label: string | null; text: string | null; image: string | null }[];
}

const ROW = 26;
const BINS = 40;

export function FeaturesView(props: { run: RunInfo }) {
  const doc = useDocument<FeatureDoc>(`${paths.manifest(props.run.id)}/features`);
  const [category, setCategory] = useState("all");
  const [range, setRange] = useState<[number, number] | null>(null);
  const [sort, setSort] = useState<{ key: string; dir: SortDir }>({ key: "frequency", dir: "desc" });
  const [query, setQuery] = useState("");
  const [picked, setPicked] = useState<number | null>(null);

  if (doc.status === "error") return <Panel title="Features" id="features"><ErrorBox error={doc.error} hint="A feature run is written by `modalens features ...` (FeatureStudy.save)." /></Panel>;
  if (doc.status !== "ready") return <Panel title="Features" id="features"><Loading what="features" /></Panel>;
  const d = doc.data;
  return (
    <div className="features-page">
      <Panel title={`Features · ${d.extractor.name ?? "extractor"} · ${d.n.toLocaleString()} features`} id="features">
        <div className="features-grid">
          <div>
            <MdsHistogram d={d} range={range} onRange={(r) => setRange(r)} />
            <CategorySummary d={d} />
            <ExtractorMetrics d={d} />
          </div>
          <div>
            <div className="panel-actions" style={{ marginBottom: 6 }}>
              <label>
                Category{" "}
                <select value={category} onChange={(e) => setCategory(e.target.value)} aria-label="filter features by category" data-testid="feature-category">
                  {["all", ...new Set((d.columns.category ?? []).map(String))].map((c) => (
                    <option key={c} value={c}>
                      {c}
                    </option>
                  ))}
                </select>
              </label>
              <label>
                Feature #{" "}
                <input value={query} onChange={(e) => setQuery(e.target.value)} size={6} aria-label="find feature by number" />
              </label>
              {range && (
                <button type="button" onClick={() => setRange(null)}>
                  MDS {fmt(range[0])}–{fmt(range[1])} ✕
                </button>
              )}
            </div>
            <FeatureTable d={d} category={category} range={range} sort={sort} setSort={setSort} query={query} picked={picked} onPick={setPicked} />
          </div>
        </div>
      </Panel>
      {picked == null ? (
        <Panel title="Feature card" id="feature-card">
          <Empty title="No feature open" hint="Click a row of the feature table to see its top-activating images and texts." />
        </Panel>
      ) : (
        <FeatureCard run={props.run} feature={picked} d={d} />
      )}
      {d.interventions && <Interventions iv={d.interventions} />}
    </div>
  );
}

function MdsHistogram({ d, range, onRange }: { d: FeatureDoc; range: [number, number] | null; onRange: (r: [number, number]) => void }) {
  const h = useMemo(() => mdsHistogram(d.columns.mds ?? [], d.columns.category ?? [], BINS), [d]);
  const W = 440;
  const H = 170;
  const top = Math.max(1, ...h.counts.map((r) => r.reduce((a, b) => a + b, 0)));
  const bw = (W - 30) / BINS;
  const x = (v: number) => 30 + v * (W - 30);
  const lo = d.dominance.mds_low_threshold;
  const hi = d.dominance.mds_high_threshold;
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
        {[lo, hi].map((t, k) =>
          t == null ? null : (
            <g key={k}>
              <line x1={x(t)} x2={x(t)} y1={6} y2={H} stroke="#222" strokeDasharray="4 3" />
              {/* a label that would leave the plot is drawn on the inner side of its line */}
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
      <Swatches items={h.categories.map((c) => ({ label: c, color: categoryColor(c) }))} label="Category (thresholds: mean ± k·sd of MDS)" />
    </div>
  );
}

function CategorySummary({ d }: { d: FeatureDoc }) {
  const p = d.dominance.proportions ?? {};
  const counts = d.dominance.counts ?? {};
  return (
    <div>
      <h3>Categories</h3>
      <div className="bars">
        {Object.entries(p).map(([c, share]) => (
          <div className="bar-row" key={c}>
            <span className="bar-label">
              <span className="dot" style={{ background: categoryColor(c) }} />
              {c}
            </span>
            <span className="bar-track">
              <span className="bar" style={{ width: `${100 * share}%`, background: categoryColor(c) }} />
            </span>
            <span className="bar-value">
              {pct(share)} · {counts[c] ?? "—"}
            </span>
          </div>
        ))}
      </div>
      {d.dominance.stable_share != null && <p className="note">Stable under the bootstrap: {pct(d.dominance.stable_share)} of active features; inactive: {counts.inactive ?? 0}.</p>}
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
            <div className="metric-label">{k.replace("_", " ")}</div>
            <div className="metric-value">{fmt(m[k] as number)}</div>
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
];

function FeatureTable(props: {
  d: FeatureDoc;
  category: string;
  range: [number, number] | null;
  sort: { key: string; dir: SortDir };
  setSort: (s: { key: string; dir: SortDir }) => void;
  query: string;
  picked: number | null;
  onPick: (f: number) => void;
}) {
  const { d } = props;
  const order = useMemo(
    () => featureOrder(d.columns, { sort: props.sort.key, dir: props.sort.dir, category: props.category, mdsRange: props.range, query: props.query }),
    [d, props.sort, props.category, props.range, props.query],
  );
  const ref = useRef<HTMLDivElement>(null);
  const [scroll, setScroll] = useState(0);
  useEffect(() => {
    if (ref.current) ref.current.scrollTop = 0;
    setScroll(0);
  }, [order]);
  const [first, last] = visibleWindow(scroll, 520, ROW, order.length);
  const c = d.columns;
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
            return (
              <button
                type="button"
                role="row"
                key={f}
                className={`feature-row ${props.picked === f ? "active" : ""}`}
                style={{ top: (first + k) * ROW }}
                onClick={() => props.onPick(f)}
                data-feature={f}
              >
                <span>#{f}</span>
                <span>
                  <span className="dot" style={{ background: categoryColor(cat) }} />
                  {cat}
                  {c.stable?.[i] ? " ✓" : ""}
                </span>
                <span className="ci" title={`MDS ${fmt(mds)} (${fmt(lo)}–${fmt(hi)})`}>
                  <span className="ci-track">
                    {Number.isFinite(lo) && Number.isFinite(hi) && <span className="ci-line" style={{ left: `${lo * 100}%`, width: `${(hi - lo) * 100}%` }} />}
                    {Number.isFinite(mds) && <span className="ci-dot" style={{ left: `${mds * 100}%`, background: categoryColor(cat) }} />}
                  </span>
                </span>
                <span className="num">{pct(num(c.frequency?.[i]))}</span>
              </button>
            );
          })}
        </div>
      </div>
      <p className="note">
        {order.length.toLocaleString()} features shown · ✓ = category stable under the bootstrap · sort by a column header
      </p>
    </div>
  );
}

function FeatureCard({ run, feature, d }: { run: RunInfo; feature: number; d: FeatureDoc }) {
  const doc = useDocument<FeatureCardDoc>(`${paths.manifest(run.id)}/features/${feature}`);
  if (doc.status === "error") return <Panel title={`Feature #${feature}`} id="feature-card"><ErrorBox error={doc.error} /></Panel>;
  if (doc.status !== "ready") return <Panel title={`Feature #${feature}`} id="feature-card"><Loading what={`feature ${feature}`} /></Panel>;
  const r = doc.data.row;
  const images = doc.data.top_samples.filter((s) => s.modality === "image");
  const texts = doc.data.top_samples.filter((s) => s.modality === "text");
  const cat = String(r.category ?? "");
  const imgUrl = (name: string) => {
    const path = `${paths.manifest(run.id)}/images/${encodeURIComponent(name)}`;
    const emb = embeddedData();
    return emb ? ((emb.documents[path] as string | undefined) ?? null) : path;
  };
  return (
    <Panel title={`Feature #${feature}`} id="feature-card">
      <div className="detail-head" data-testid="feature-card">
        <span className="badge" style={{ background: categoryColor(cat) }}>
          {cat}
        </span>
        {r.stable ? <span className="badge" style={{ background: "#4a5a70" }}>stable</span> : null}
        <span>
          MDS <b>{fmt(num(r.mds as Cell))}</b> ({fmt(num(r.ci_low as Cell))}–{fmt(num(r.ci_high as Cell))})
        </span>
        <span>
          EmbSim <b>{fmt(num(r.embsim as Cell))}</b>
        </span>
        <span>
          monosemanticity <b>{fmt(num(r.monosemanticity as Cell))}</b>
        </span>
        <span>
          frequency <b>{pct(num(r.frequency as Cell))}</b>
        </span>
        <span className="sub">
          active on {String(r.n_active ?? "—")} pairs of {d.dominance.modalities?.join(" / ") ?? "image / text"}
        </span>
      </div>
      <div className="compare-grid">
        <div>
          <h3>Top-activating images</h3>
          {images.length === 0 ? (
            <Empty title="No image activates this feature" />
          ) : (
            <div className="top-samples">
              {images.map((s) => {
                const url = s.image ? imgUrl(s.image) : null;
                return (
                  <figure key={`i${s.rank}`}>
                    {url ? <img src={url} alt={`sample ${s.sample}`} /> : <div className="empty">no stored image</div>}
                    <figcaption>
                      #{s.sample} · {fmt(s.activation)}
                      {s.label != null ? ` · ${s.label}` : ""}
                    </figcaption>
                  </figure>
                );
              })}
            </div>
          )}
        </div>
        <div>
          <h3>Top-activating texts</h3>
          {texts.length === 0 ? (
            <Empty title="No text activates this feature" />
          ) : (
            <ol className="top-texts">
              {texts.map((s) => (
                <li key={`t${s.rank}`}>
                  <span className="num">{fmt(s.activation)}</span> {s.text ?? `sample ${s.sample}`}
                  {s.label != null && <span className="sub"> · {s.label}</span>}
                </li>
              ))}
            </ol>
          )}
        </div>
      </div>
    </Panel>
  );
}

function Interventions({ iv }: { iv: Record<string, Cell[]> }) {
  const n = (iv.intervention ?? []).length;
  if (!n) return null;
  return (
    <Panel title="Interventions" id="interventions">
      <table className="compare-table" aria-label="interventions">
        <thead>
          <tr>
            {["intervention", "group", "metric", "n features", "before", "after", "delta", "control"].map((h) => (
              <th key={h}>{h}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {Array.from({ length: Math.min(n, 200) }, (_, i) => (
            <tr key={i}>
              <td>{String(iv.intervention[i])}</td>
              <td>{String(iv.group?.[i] ?? "")}</td>
              <td>{String(iv.metric?.[i] ?? "")}</td>
              <td className="num">{String(iv.n_features?.[i] ?? "")}</td>
              <td className="num">{fmt(num(iv.before?.[i]))}</td>
              <td className="num">{fmt(num(iv.after?.[i]))}</td>
              <td className="num">{fmt(num(iv.delta?.[i]))}</td>
              <td className="num">{fmt(num(iv.control?.[i]))}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Panel>
  );
}

/** Position of a threshold's label: beside its line, on the side that keeps the text inside the plot. */
function thresholdLabel(at: number, upper: boolean, width: number): { x: number; textAnchor: "start" | "end" } {
  const room = 90; // px a label like "vision › 0.882" needs
  const outward = upper ? at + room <= width : at - room >= 30;
  const right = upper === outward;
  return { x: at + (right ? 3 : -3), textAnchor: right ? "start" : "end" };
}
