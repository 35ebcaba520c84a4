import { useEffect, useState } from "react";
import { embeddedData, paths, useDocument } from "../api";
import { Empty, ErrorBox, Loading, Panel } from "../components/common";
import { CATEGORIES, categoryColor, densityHistogram } from "../featureStats";
import { fmt, num, pct } from "../stats";
import type { Cell, RunInfo } from "../types";
import type { Derived, FeatureDoc } from "./Features";

interface RunSummary {
  run: string;
  model: string | null;
  extractor: string;
  n_features: number;
  n_live: number;
  l0: number | null;
  explained_variance: number | null;
  mds_mean: number | null;
  mds_median: number | null;
  k: number | null;
  thresholds: (number | null)[];
  shares: Record<string, number>;
  share_ci: Record<string, number[]>;
  null_shares: Record<string, number | null>;
  stable_share: number | null;
  stable_counts: Record<string, number>;
}

interface FeatureComparisonDoc {
  a: RunSummary;
  b: RunSummary;
  summary: {
    method: string;
    how: string;
    n_live_a: number;
    n_matched: number;
    median_score: number | null;
    good_threshold: number;
    share_good: number | null;
    category_agreement: number | null;
    mds_correlation: number | null;
    agreement_matrix: Record<string, Record<string, number>>;
    distinct_b: number;
  };
  matches: Record<string, Cell[]>;
  n_matches: number;
}

const RUN_COLORS = ["#2f5d8a", "#D55E00"];

export function FeatureCompare({ run, others, d }: { run: RunInfo; others: RunInfo[]; d: FeatureDoc; derived: Derived }) {
  const [other, setOther] = useState(others[0]?.id ?? "");
  const [match, setMatch] = useState("auto");
  useEffect(() => {
    if (!others.some((r) => r.id === other)) setOther(others[0]?.id ?? "");
  }, [others, other]);
  const cmp = useDocument<FeatureComparisonDoc>(other ? `api/features-compare/${encodeURIComponent(run.id)}/${encodeURIComponent(other)}?match=${match}` : null);
  const otherDoc = useDocument<FeatureDoc>(other ? `${paths.manifest(other)}/features` : null);
  if (embeddedData())
    return (
      <Panel title="Compare feature runs" id="feature-compare">
        <Empty title="Comparing runs needs the live server" hint={<>This is an exported file. Serve both runs with <code>modalens serve RUN_A RUN_B</code>, or compare them with <code>modalens features compare RUN_A RUN_B</code>.</>} />
      </Panel>
    );
  if (!others.length)
    return (
      <Panel title="Compare feature runs" id="feature-compare">
        <Empty
          title="Only one feature run is being served"
          hint={
            <>
              Serve two feature runs over the same image-caption pairs (two models, or an SAE and NCL on one model), e.g. <code>modalens serve runs/model-a runs/model-b</code>; or compare them on the
              command line with <code>modalens features compare RUN_A RUN_B</code>.
            </>
          }
        />
      </Panel>
    );
  const picker = (
    <>
      <label>
        Compare <b>{run.name}</b> with{" "}
        <select value={other} onChange={(e) => setOther(e.target.value)} aria-label="feature run to compare with" data-testid="compare-feature-run">
          {others.map((r) => (
            <option key={r.id} value={r.id}>
              {r.name}
              {r.model ? ` (${r.model})` : ""}
            </option>
          ))}
        </select>
      </label>
      <label>
        match by{" "}
        <select value={match} onChange={(e) => setMatch(e.target.value)} aria-label="how features are matched" data-testid="compare-match">
          <option value="auto">auto</option>
          <option value="activation">activation (same pairs)</option>
          <option value="decoder">decoder (same model)</option>
        </select>
      </label>
    </>
  );
  let body;
  if (cmp.status === "error") body = <ErrorBox error={cmp.error} hint="Activation matching needs runs over the same pairs; decoder matching needs one embedding model." />;
  else if (cmp.status !== "ready" || otherDoc.status === "loading" || otherDoc.status === "idle") body = <Loading what="the comparison" />;
  else {
    const c = cmp.data;
    const od = otherDoc.status === "ready" ? otherDoc.data : null;
    body = (
      <div data-testid="feature-comparison">
        <div className="compare-grid wide-right">
          <div>
            <MdsOverlay a={d} b={od} names={[c.a.run, c.b.run]} />
          </div>
          <div>
            <SharesSideBySide a={c.a} b={c.b} />
            <RunTable a={c.a} b={c.b} />
          </div>
        </div>
        <Matches c={c} />
      </div>
    );
  }
  return (
    <Panel title="Compare feature runs" id="feature-compare" actions={picker}>
      {body}
    </Panel>
  );
}

function MdsOverlay({ a, b, names }: { a: FeatureDoc; b: FeatureDoc | null; names: string[] }) {
  const BINS = 25;
  const ha = densityHistogram(a.columns.mds ?? [], BINS);
  const hb = b ? densityHistogram(b.columns.mds ?? [], BINS) : null;
  const W = 420;
  const H = 140;
  const max = Math.max(1e-9, ...ha, ...(hb ?? []));
  const bw = (W - 20) / BINS;
  const x = (v: number) => 20 + v * (W - 20);
  const path = (h: number[]) => h.map((v, i) => `${i ? "L" : "M"}${x(i / BINS)},${H - ((H - 10) * v) / max} L${x((i + 1) / BINS)},${H - ((H - 10) * v) / max}`).join(" ");
  return (
    <div>
      <h3>
        MDS distributions <span className="sub">share of each run's live features</span>
      </h3>
      <svg width={W} height={H + 30} role="img" aria-label="MDS distributions of both runs" data-testid="mds-overlay">
        {ha.map((v, i) => (
          <rect key={i} x={x(i / BINS) + 0.5} y={H - ((H - 10) * v) / max} width={bw - 1} height={((H - 10) * v) / max} fill={RUN_COLORS[0]} opacity={0.35} />
        ))}
        {hb && <path d={path(hb)} fill="none" stroke={RUN_COLORS[1]} strokeWidth={2} />}
        <line x1={20} x2={W} y1={H} y2={H} stroke="#888" />
        {[0, 0.25, 0.5, 0.75, 1].map((v) => (
          <text key={v} x={x(v)} y={H + 13} fontSize={10} textAnchor="middle">
            {v}
          </text>
        ))}
        <text x={20 + (W - 20) / 2} y={H + 27} fontSize={10.5} textAnchor="middle">
          MDS (0 = text only, 1 = image only)
        </text>
      </svg>
      <p className="note">
        <span className="dot" style={{ background: RUN_COLORS[0] }} />
        {names[0]} (bars) · <span className="dot" style={{ background: RUN_COLORS[1] }} />
        {names[1]} (line)
      </p>
    </div>
  );
}

function RunTable({ a, b }: { a: RunSummary; b: RunSummary }) {
  const rows: [string, (r: RunSummary) => string][] = [
    ["model", (r) => r.model ?? "—"],
    ["extractor", (r) => r.extractor],
    ["live features", (r) => `${r.n_live} of ${r.n_features}`],
    ["L0", (r) => fmt(r.l0)],
    ["explained variance", (r) => fmt(r.explained_variance)],
    ["MDS median", (r) => fmt(r.mds_median)],
    ["k (thresholds)", (r) => `${r.k} (${fmt(r.thresholds[0])}, ${fmt(r.thresholds[1])})`],
    ["stable", (r) => (r.stable_share != null ? pct(r.stable_share) : "—")],
  ];
  return (
    <table className="share-table run-table" data-testid="run-table">
      <thead>
        <tr>
          <th />
          <th style={{ color: RUN_COLORS[0] }}>{a.run}</th>
          <th style={{ color: RUN_COLORS[1] }}>{b.run}</th>
        </tr>
      </thead>
      <tbody>
        {rows.map(([label, f]) => (
          <tr key={label}>
            <td className="sub">{label}</td>
            <td>{f(a)}</td>
            <td>{f(b)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function SharesSideBySide({ a, b }: { a: RunSummary; b: RunSummary }) {
  const W = 300;
  const max = Math.max(0.01, ...[a, b].flatMap((r) => CATEGORIES.map((c) => Math.max(r.shares[c] ?? 0, r.share_ci[c]?.[1] ?? 0, r.null_shares[c] ?? 0))));
  const x = (v: number) => (W * v) / max;
  return (
    <div data-testid="shares-side-by-side">
      <h3>
        Category shares <span className="sub">interval: bootstrap · dashed: chance (modality swap) · each run at its own k</span>
      </h3>
      <table className="share-table">
        <tbody>
          {CATEGORIES.map((c) => (
            <tr key={c}>
              <td>
                <span className="dot" style={{ background: categoryColor(c) }} />
                {c}
              </td>
              <td>
                {[a, b].map((r, i) => {
                  const s = r.shares[c] ?? 0;
                  const ci = r.share_ci[c];
                  const ch = r.null_shares[c];
                  return (
                    <svg key={i} width={W} height={16} style={{ display: "block" }} role="img" aria-label={`${r.run} ${c}: ${pct(s)}`}>
                      <rect x={0} y={3} width={x(s)} height={10} fill={RUN_COLORS[i]} opacity={0.8} />
                      {ci && <line x1={x(ci[0])} x2={x(ci[1])} y1={8} y2={8} stroke="#111" strokeWidth={1.5} />}
                      {ci && ci.map((v, k) => <line key={k} x1={x(v)} x2={x(v)} y1={4} y2={12} stroke="#111" strokeWidth={1.5} />)}
                      {ch != null && <line x1={x(ch)} x2={x(ch)} y1={0} y2={16} stroke="#7a828e" strokeWidth={2} strokeDasharray="3 2" />}
                    </svg>
                  );
                })}
              </td>
              <td className="num">
                {[a, b].map((r, i) => (
                  <div key={i} style={{ color: RUN_COLORS[i] }} data-testid={`cmp-share-${i}-${c}`}>
                    {pct(r.shares[c] ?? NaN)}
                    <span className="sub">
                      {r.share_ci[c] ? ` (${pct(r.share_ci[c][0])}–${pct(r.share_ci[c][1])})` : ""}
                      {r.null_shares[c] != null ? ` · chance ${pct(r.null_shares[c] as number)}` : ""}
                    </span>
                  </div>
                ))}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Matches({ c }: { c: FeatureComparisonDoc }) {
  const s = c.summary;
  const m = c.matches;
  const n = (m.feature_a ?? []).length;
  const cats = [...CATEGORIES];
  const maxCell = Math.max(1, ...cats.flatMap((x) => cats.map((y) => s.agreement_matrix[x]?.[y] ?? 0)));
  const W = 260;
  const sx = (v: number) => 10 + v * (W - 20);
  const sy = (v: number) => W - 10 - v * (W - 20);
  return (
    <div className="compare-grid wide-right" style={{ marginTop: 12 }}>
      <div>
        <h3>Matched features</h3>
        <div className="metrics" data-testid="match-summary">
          <div className="metric">
            <div className="metric-label">method</div>
            <div className="metric-value">{s.method}</div>
          </div>
          <div className="metric">
            <div className="metric-label">median best score</div>
            <div className="metric-value">{fmt(s.median_score)}</div>
          </div>
          <div className="metric">
            <div className="metric-label">matched ≥ {s.good_threshold}</div>
            <div className="metric-value" data-testid="share-good">
              {s.share_good != null ? pct(s.share_good) : "—"}
            </div>
          </div>
          <div className="metric">
            <div className="metric-label">same category</div>
            <div className="metric-value" data-testid="category-agreement">
              {s.category_agreement != null ? pct(s.category_agreement) : "—"}
            </div>
          </div>
        </div>
        <p className="note">
          {s.how}. Each of A's {s.n_live_a} live features is paired with its best match in B; {s.distinct_b} distinct B features are used among the good matches. MDS correlation of good matches:{" "}
          {fmt(s.mds_correlation)}.
        </p>
        <h4>Categories of good matches (rows: {c.a.run}, columns: {c.b.run})</h4>
        <table className="agreement" data-testid="agreement-matrix">
          <thead>
            <tr>
              <th />
              {cats.map((y) => (
                <th key={y}>{y}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {cats.map((x) => (
              <tr key={x}>
                <th>{x}</th>
                {cats.map((y) => {
                  const v = s.agreement_matrix[x]?.[y] ?? 0;
                  return (
                    <td key={y} style={{ background: `rgba(47, 93, 138, ${(0.85 * v) / maxCell})`, color: v / maxCell > 0.5 ? "#fff" : "#111" }}>
                      {v}
                    </td>
                  );
                })}
              </tr>
            ))}
          </tbody>
        </table>
        <h4>MDS of A against MDS of its match in B</h4>
        <svg width={W} height={W} role="img" aria-label="MDS in run A against MDS of the matched feature in run B" data-testid="mds-scatter">
          <rect x={10} y={10} width={W - 20} height={W - 20} fill="none" stroke="#ccc" />
          <line x1={sx(0)} y1={sy(0)} x2={sx(1)} y2={sy(1)} stroke="#ccc" strokeDasharray="3 3" />
          {Array.from({ length: n }, (_, i) => {
            const score = num(m.score[i]);
            if (!(score >= s.good_threshold)) return null;
            return <circle key={i} cx={sx(num(m.mds_a[i]))} cy={sy(num(m.mds_b[i]))} r={2} fill={categoryColor(String(m.category_a[i]))} opacity={0.6} />;
          })}
        </svg>
      </div>
      <div>
        <h4>Best matches</h4>
        <table className="compare-table" data-testid="matches-table">
          <thead>
            <tr>
              <th>A</th>
              <th>category</th>
              <th>label</th>
              <th>B</th>
              <th>category</th>
              <th>label</th>
              <th>score</th>
            </tr>
          </thead>
          <tbody>
            {Array.from({ length: Math.min(n, 300) }, (_, i) => (
              <tr key={i}>
                <td>#{String(m.feature_a[i])}</td>
                <td>
                  <span className="dot" style={{ background: categoryColor(String(m.category_a[i])) }} />
                  {String(m.category_a[i])}
                  {m.stable_a[i] ? " ✓" : ""}
                </td>
                <td className="label-cell">{m.label_a?.[i] != null ? String(m.label_a[i]) : <span className="sub">—</span>}</td>
                <td>#{String(m.feature_b[i])}</td>
                <td>
                  <span className="dot" style={{ background: categoryColor(String(m.category_b[i])) }} />
                  {String(m.category_b[i])}
                  {m.stable_b[i] ? " ✓" : ""}
                </td>
                <td className="label-cell">{m.label_b?.[i] != null ? String(m.label_b[i]) : <span className="sub">—</span>}</td>
                <td className="num">{fmt(num(m.score[i]))}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <p className="note">
          {c.n_matches.toLocaleString()} matches, best first ({Math.min(n, 300)} shown). ✓ = stable category.
        </p>
      </div>
    </div>
  );
}
