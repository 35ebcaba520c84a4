import { Empty, Panel } from "../components/common";
import { categoryColor } from "../featureStats";
import { fmt, num, pct } from "../stats";
import type { Cell, RunInfo } from "../types";
import { runImageUrl } from "./FeatureCard";
import type { FeatureDoc } from "./Features";

const METHOD_COLORS: Record<string, string> = { raw: "#9aa3ad", relu: "#0072B2", topk: "#D55E00", ncl: "#009E73" };
const methodColor = (m: string) => METHOD_COLORS[m] ?? "#6b5b95";

type Rows = Record<string, Cell>[];

function rowsOf(t: Record<string, Cell[]> | null | undefined): Rows {
  if (!t) return [];
  const keys = Object.keys(t);
  const n = keys.length ? t[keys[0]].length : 0;
  return Array.from({ length: n }, (_, i) => Object.fromEntries(keys.map((k) => [k, t[k][i]])));
}

const IV_TITLES: Record<string, string> = {
  group_ablation: "Group ablation: zero every feature of a category",
  concept_removal: "Concept removal: zero the features that carry the attribute",
  steering: "Steering text queries towards a feature",
  adversarial: "Cross-modal attack from the pixels",
};

const METRIC_TEXT: Record<string, string> = {
  zero_shot_accuracy: "zero-shot accuracy",
  attribute_leakage: "attribute leakage (probe accuracy)",
  task_accuracy: "zero-shot accuracy",
  precision_at_k: "share of the feature's carriers in the top 10",
  mean_rank_carriers: "mean rank of carriers (lower = first)",
  mean_target_activation: "target feature activation",
  prediction_changed: "zero-shot prediction changed",
};

export function FeatureEvidence({ run, d, onPick }: { run: RunInfo; d: FeatureDoc; onPick: (f: number) => void }) {
  const ev = d.evidence ?? {};
  return (
    <div className="features-page">
      <Panel title="Interpretability: this extractor against the baselines" id="evidence-interpretability">
        <div className="compare-grid wide-right">
          <ComparisonChart rows={rowsOf(ev.comparison)} />
          <WinRates rows={rowsOf(ev.win_rates)} own={d.extractor.name ?? ""} />
        </div>
      </Panel>
      <Interventions iv={d.interventions} />
      <Adversarial run={run} rows={rowsOf(ev.adversarial)} onPick={onPick} />
    </div>
  );
}

function ComparisonChart({ rows }: { rows: Rows }) {
  if (!rows.length) return <Empty title="No comparison in this run" hint="Run the study with compare_with=('raw', ...) to compare against raw dimensions and other extractors." />;
  const cats = [...new Set(rows.map((r) => String(r.category)))].filter((c) => c !== "inactive").sort((a, b) => (a === "all" ? -1 : b === "all" ? 1 : a.localeCompare(b)));
  const methods = [...new Set(rows.map((r) => String(r.method)))];
  const max = Math.max(1e-9, ...rows.map((r) => num(r.mean)).filter(Number.isFinite));
  const W = 300;
  const bh = 12;
  const gh = methods.length * bh + 10;
  return (
    <div data-testid="comparison-chart">
      <h3>
        EmbSim by method and category <span className="sub">mean over features (higher = top samples more alike)</span>
      </h3>
      <svg width={W + 190} height={cats.length * gh + 10} role="img" aria-label="EmbSim of each method per category">
        {cats.map((c, ci) =>
          methods.map((m, mi) => {
            const r = rows.find((x) => x.category === c && x.method === m);
            const v = r ? num(r.mean) : NaN;
            const y = ci * gh + mi * bh + 4;
            return (
              <g key={`${c}-${m}`}>
                {mi === 0 && (
                  <text x={0} y={y + 9} fontSize={11}>
                    {c}
                  </text>
                )}
                {Number.isFinite(v) && <rect x={90} y={y} width={(W - 90) * (v / max)} height={bh - 2} fill={methodColor(m)} />}
                <text x={94 + (Number.isFinite(v) ? (W - 90) * (v / max) : 0)} y={y + 9} fontSize={10}>
                  {m} {fmt(v)} {r ? <tspan className="sub">(n={String(r.n_features)})</tspan> : null}
                </text>
              </g>
            );
          }),
        )}
      </svg>
    </div>
  );
}

function WinRates({ rows, own }: { rows: Rows; own: string }) {
  const mine = rows.filter((r) => r.method_a === own);
  if (!mine.length) return <Empty title="No win rates in this run" />;
  const W = 300;
  return (
    <div data-testid="win-rates">
      <h3>
        WinRate of {own} <span className="sub">P(a random {own} feature has higher EmbSim than one of the other method)</span>
      </h3>
      <table className="share-table">
        <tbody>
          {mine.map((r, i) => {
            const w = num(r.wins);
            const t = num(r.ties);
            const l = num(r.losses);
            return (
              <tr key={i}>
                <td>
                  <span className="dot" style={{ background: categoryColor(String(r.category)) }} />
                  {String(r.category)} vs {String(r.method_b)}
                </td>
                <td>
                  <svg width={W} height={16} role="img" aria-label={`wins ${pct(w)}, ties ${pct(t)}, losses ${pct(l)}`}>
                    <rect x={0} y={2} width={W * w} height={12} fill="#1b7837" />
                    <rect x={W * w} y={2} width={W * t} height={12} fill="#c9ccd1" />
                    <rect x={W * (w + t)} y={2} width={W * l} height={12} fill="#b2182b" opacity={0.75} />
                    <line x1={W / 2} x2={W / 2} y1={0} y2={16} stroke="#222" strokeDasharray="2 2" />
                  </svg>
                </td>
                <td className="num">
                  <b>{fmt(num(r.rate_half_ties), 2)}</b> <span className="sub">n={Number(r.n_comparisons).toLocaleString()}</span>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <p className="note">Green: wins, grey: ties, red: losses; the number counts a tie as half. Dashed line: 0.5, no better than the baseline.</p>
    </div>
  );
}

function parseDetails(v: Cell): Record<string, unknown> {
  try {
    return typeof v === "string" ? (JSON.parse(v) as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function Interventions({ iv }: { iv: Record<string, Cell[]> | null }) {
  const rows = rowsOf(iv);
  if (!rows.length) return null;
  const shown = rows.filter((r) => r.note == null);
  const hidden = rows.filter((r) => r.note != null);
  const blocks = new Map<string, Rows>();
  for (const r of shown) {
    const key = `${r.intervention}|${r.metric}`;
    if (!blocks.has(key)) blocks.set(key, []);
    blocks.get(key)!.push(r);
  }
  const hiddenKinds = new Map<string, Record<string, Cell>>();
  for (const r of hidden) hiddenKinds.set(`${r.intervention}|${r.metric}`, r);
  return (
    <Panel title="Interventions: before, after, and the same edit on random features" id="interventions">
      <div className="iv-grid" data-testid="interventions-charts">
        {[...blocks.entries()].map(([key, rs]) => (
          <BeforeAfter key={key} rows={rs} />
        ))}
      </div>
      {hiddenKinds.size > 0 && (
        <div className="hidden-metrics" data-testid="hidden-metrics">
          <h3>Hidden: metrics that carry no information in this run</h3>
          <ul>
            {[...hiddenKinds.values()].map((r) => (
              <li key={`${r.intervention}${r.metric}`}>
                <b>{String(r.metric)}</b> ({String(r.intervention).replace("_", " ")}): {String(r.note)}
              </li>
            ))}
          </ul>
        </div>
      )}
      <details>
        <summary>Every row ({rows.length})</summary>
        <table className="compare-table" aria-label="interventions">
          <thead>
            <tr>
              {["intervention", "group", "metric", "n features", "before", "after", "delta", "control", "note"].map((h) => (
                <th key={h}>{h}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map((r, i) => (
              <tr key={i}>
                <td>{String(r.intervention)}</td>
                <td>{String(r.group ?? "")}</td>
                <td>{String(r.metric ?? "")}</td>
                <td className="num">{String(r.n_features ?? "")}</td>
                <td className="num">{fmt(num(r.before))}</td>
                <td className="num">{fmt(num(r.after))}</td>
                <td className="num">{fmt(num(r.delta))}</td>
                <td className="num">{fmt(num(r.control))}</td>
                <td className="sub">{r.note == null ? "" : String(r.note)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </details>
    </Panel>
  );
}

/** One intervention and metric: per group, the value before (tick), after (bar) and under the control (grey bar,
 * with each random draw as a dot). */
function BeforeAfter({ rows }: { rows: Rows }) {
  const iv = String(rows[0].intervention);
  const metric = String(rows[0].metric);
  const details = rows.map((r) => parseDetails(r.details));
  const values = rows.flatMap((r, i) => [num(r.before), num(r.after), num(r.control), ...((details[i].control_values as Record<string, number[]> | undefined)?.[metric] ?? [])]).filter(Number.isFinite);
  const max = Math.max(1e-9, ...values);
  const W = 240;
  const chance = details.find((x) => typeof x.chance === "number")?.chance as number | undefined;
  return (
    <div className="iv-block" data-intervention={iv} data-metric={metric}>
      <h4>
        {IV_TITLES[iv] ?? iv} <span className="sub">{METRIC_TEXT[metric] ?? metric}</span>
      </h4>
      <table className="share-table">
        <tbody>
          {rows.map((r, i) => {
            const before = num(r.before);
            const after = num(r.after);
            const control = num(r.control);
            const draws = (details[i].control_values as Record<string, number[]> | undefined)?.[metric] ?? [];
            const alpha = details[i].alpha;
            const group = String(r.group) + (alpha != null ? ` (α ${alpha})` : "");
            const cat = String(r.group);
            return (
              <tr key={i}>
                <td className="iv-group">
                  <span className="dot" style={{ background: categoryColor(cat) }} />
                  {group}
                </td>
                <td>
                  <svg width={W} height={26} role="img" aria-label={`${group}: before ${fmt(before)}, after ${fmt(after)}, control ${fmt(control)}`}>
                    <rect x={0} y={3} width={(W * after) / max} height={9} fill={categoryColor(cat) === "#555555" ? "#2f5d8a" : categoryColor(cat)} />
                    {Number.isFinite(control) && <rect x={0} y={14} width={(W * control) / max} height={8} fill="#c2c7ce" />}
                    {draws.map((v, k) => (
                      <circle key={k} cx={(W * v) / max} cy={18} r={2} fill="#555" />
                    ))}
                    <line x1={(W * before) / max} x2={(W * before) / max} y1={0} y2={25} stroke="#111" strokeWidth={2} />
                    {chance != null && <line x1={(W * chance) / max} x2={(W * chance) / max} y1={0} y2={25} stroke="#b2182b" strokeDasharray="2 2" />}
                  </svg>
                </td>
                <td className="num">
                  {fmt(before)} → <b>{fmt(after)}</b> <span className="sub">control {fmt(control)}</span>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <p className="note">
        Black tick: before; coloured bar: after the edit; grey bar: the same edit on random features of the same number (dots: each draw){chance != null ? "; red dashes: chance (majority class)" : ""}.
      </p>
    </div>
  );
}

function Adversarial({ run, rows, onPick }: { run: RunInfo; rows: Rows; onPick: (f: number) => void }) {
  if (!rows.length)
    return (
      <Panel title="Cross-modal adversarial images" id="adversarial">
        <Empty title="No attacked images in this run" hint="The attack needs the model's image tower (modalens features demo with the features extra, or run_feature_study(model=..., images=...))." />
      </Panel>
    );
  const f = Number(rows[0].feature);
  const flips = rows.filter((r) => r.pred_before !== r.pred_after).length;
  const ctrlFlips = rows.filter((r) => r.pred_control != null && r.pred_before !== r.pred_control).length;
  return (
    <Panel title="Cross-modal adversarial images" id="adversarial">
      <p>
        Raising{" "}
        <button type="button" className="link" onClick={() => onPick(f)}>
          feature #{f}
        </button>{" "}
        ({String(rows[0].category ?? "")}) from the pixels alone, within L∞ {fmt(Math.max(...rows.map((r) => num(r.linf))))}: the zero-shot prediction changed on <b>{flips}</b> of {rows.length} images; random
        noise of the same budget changed {ctrlFlips}.
      </p>
      <div className="adv-grid" data-testid="adversarial-gallery">
        {rows.map((r) => (
          <figure key={String(r.image)} className="adv-item">
            <div className="adv-images">
              {(["file_before", "file_delta", "file_after"] as const).map((col) => {
                const url = runImageUrl(run.id, String(r[col]));
                return url ? <img key={col} src={url} alt={`${col.replace("file_", "")} the attack, image ${String(r.image)}`} /> : null;
              })}
            </div>
            <figcaption>
              <div className="sub">before · perturbation ×10 · after</div>
              <div>
                activation {fmt(num(r.activation_before))} → <b>{fmt(num(r.activation_after))}</b> <span className="sub">(noise {fmt(num(r.activation_control))})</span>
              </div>
              <div>
                {String(r.pred_before ?? "—")} → <b className={r.pred_before !== r.pred_after ? "err" : ""}>{String(r.pred_after ?? "—")}</b>{" "}
                <span className="sub">
                  (noise: {String(r.pred_control ?? "—")}; true: {String(r.label ?? "—")})
                </span>
              </div>
            </figcaption>
          </figure>
        ))}
      </div>
    </Panel>
  );
}
