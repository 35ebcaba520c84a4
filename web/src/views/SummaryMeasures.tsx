// The Summary's measures beyond performance and types: dominance and |Shapley| share per modality (for all
// instances and the selection), and the run's dataset measures EMAP and PID (or how to compute them).

import { useMemo } from "react";
import { modalityColor } from "../colors";
import { BarRow } from "../components/common";
import { dominanceByModality, dominatedBy, emapMetrics, emapOf, pidFractions, pidOf, shapleyShares, type EmapMeasure, type PidMeasure } from "../importance";
import { useStore } from "../store";
import { fmt, pct } from "../stats";
import "./SummaryMeasures.css";

export function DominanceBars(props: { all: ArrayLike<number>; idx: ArrayLike<number>; subset: boolean }) {
  const { run, dispatch } = useStore();
  const t = run.table;
  const domAll = useMemo(() => dominanceByModality(t, props.all), [t, props.all]);
  const domSel = useMemo(() => dominanceByModality(t, props.idx), [t, props.idx]);
  const shareAll = useMemo(() => shapleyShares(t, props.all), [t, props.all]);
  const shareSel = useMemo(() => shapleyShares(t, props.idx), [t, props.idx]);
  const color = (m: string) => modalityColor(m, run.kinds[m]);
  return (
    <div className="summary-measures" data-testid="dominance">
      <h3>
        Dominance by modality <span className="sub">share of instances one modality dominates · click to select</span>
      </h3>
      <div className="bars" role="list">
        {domAll.map((d, k) => {
          const s = props.subset ? domSel[k] : undefined;
          return (
            <BarRow
              key={d.modality}
              label={d.modality}
              color={color(d.modality)}
              all={d.share}
              sel={s ? s.share : null}
              value={`${pct(s ? s.share : d.share)} (${(s ? s.count : d.count).toLocaleString()})`}
              onClick={() => dispatch({ type: "select", indices: dominatedBy(t, d.modality), source: `dominance: ${d.modality}` })}
              ariaLabel={`select the ${d.count} instances dominated by ${d.modality}`}
              data={{ "data-dominant": d.modality }}
            />
          );
        })}
      </div>
      <h3>
        Share of |Shapley| <span className="sub">mean per instance of |φ<sub>m</sub>| / Σ|φ|</span>
      </h3>
      <div className="share-strip" role="img" aria-label="mean share of absolute Shapley value per modality" data-testid="shapley-share">
        {shareAll.map((d, k) => (
          <span
            key={d.modality}
            className="share-seg"
            style={{ flexGrow: Number.isFinite(props.subset ? shareSel[k].share : d.share) ? (props.subset ? shareSel[k].share : d.share) : 0, background: color(d.modality) }}
            title={`${d.modality}: ${pct(props.subset ? shareSel[k].share : d.share)}${props.subset ? ` (all: ${pct(d.share)})` : ""}`}
          >
            {d.modality} {pct(props.subset ? shareSel[k].share : d.share)}
          </span>
        ))}
      </div>
      {props.subset && (
        <p className="note">
          Selection; all instances:{" "}
          {shareAll.map((d) => `${d.modality} ${pct(d.share)}`).join(" · ")}
        </p>
      )}
    </div>
  );
}

/** EMAP and PID of the run (manifest `dataset_measures`), or what to run to get them. */
export function DatasetMeasures() {
  const { run } = useStore();
  const measures = run.manifest.dataset_measures as Record<string, unknown> | undefined;
  const emap = useMemo(() => emapOf(measures), [measures]);
  const pid = useMemo(() => pidOf(measures), [measures]);
  return (
    <div className="summary-measures">
      <h3>
        EMAP <span className="sub">does the model need cross-modal interactions? (whole run)</span>
      </h3>
      {emap ? <EmapPanel e={emap} /> : <NotComputed flag="--emap" what="EMAP" testid="emap-missing" />}
      <h3>
        PID <span className="sub">redundancy, uniqueness, synergy per modality pair (whole run)</span>
      </h3>
      {pid && pid.length ? (
        <div data-testid="pid">
          {pid.map((p) => (
            <PidPair key={p.pair} p={p} />
          ))}
        </div>
      ) : (
        <NotComputed flag="--pid" what="PID" testid="pid-missing" />
      )}
    </div>
  );
}

function NotComputed(props: { flag: string; what: string; testid: string }) {
  return (
    <p className="not-computed" role="status" data-testid={props.testid}>
      Not computed for this run: run <code>modalens explain DATA --model MODEL {props.flag}</code> to compute {props.what}.
    </p>
  );
}

function EmapPanel({ e }: { e: EmapMeasure }) {
  const metrics = emapMetrics(e);
  const share = e.interaction_share;
  return (
    <div className="emap" data-testid="emap">
      <div className="emap-share">
        <span className="big" data-testid="emap-share">{share === null ? "n/a" : pct(share)}</span>
        <span>
          of the output's variance is <b>interaction</b>: what the best additive model g<sub>1</sub>(x<sub>1</sub>) + … + g<sub>M</sub>(x<sub>M</sub>) of this
          model leaves unexplained (0 % = additive; it can exceed 100 % when the modalities depend on each other).
        </span>
      </div>
      {metrics.length > 0 && (
        <table className="emap-table">
          <thead>
            <tr>
              <th>metric</th>
              <th>model</th>
              <th>additive projection</th>
              <th title="> 0: the model does better than its additive projection, i.e. it gains from interactions">gap</th>
            </tr>
          </thead>
          <tbody>
            {metrics.map((m) => (
              <tr key={m.metric}>
                <td>{m.metric}</td>
                <td>{fmt(m.original)}</td>
                <td>{fmt(m.projected)}</td>
                <td className={m.gap !== null && m.gap > 0 ? "gain" : undefined}>{m.gap === null ? "" : (m.gap > 0 ? "+" : "") + fmt(m.gap)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <p className="note">
        Gap &gt; 0: the model does better than its additive projection, so its performance uses interactions; a gap near 0 means
        it does not need them. Component shares (variance of each modality's additive term):{" "}
        {Object.entries(e.component_share)
          .map(([g, v]) => `${g} ${v === null ? "n/a" : pct(v)}`)
          .join(" · ")}
        . On {e.n_instances.toLocaleString()} instances, {e.mixing} mixing, {e.n_evaluations.toLocaleString()} model evaluations.
      </p>
      {e.notes.map((n) => (
        <p className="note warn" key={n}>
          {n}
        </p>
      ))}
    </div>
  );
}

const ATOM_COLORS: Record<string, string> = { redundancy: "#8c8c8c", synergy: "#7b3294" };

function PidPair({ p }: { p: PidMeasure }) {
  const { run } = useStore();
  const parts = pidFractions(p);
  const color = (atom: string) => ATOM_COLORS[atom] ?? modalityColor(atom === "unique1" ? p.names[0] : p.names[1], run.kinds[atom === "unique1" ? p.names[0] : p.names[1]]);
  return (
    <div className="pid-pair" data-pair={p.pair}>
      <div className="pid-head">
        <b>{p.names.join(" + ")}</b> <span className="sub">I = {fmt(p.total)} {p.unit}{p.n_samples ? ` · ${p.n_samples.toLocaleString()} instances` : ""}</span>
      </div>
      <div className="pid-strip" role="img" aria-label={`PID of ${p.pair}`}>
        {parts.map((a) => (
          <span key={a.atom} className="pid-seg" style={{ flexGrow: a.fraction, background: color(a.atom) }} title={`${a.label}: ${fmt(a.value)} ${p.unit}`} />
        ))}
      </div>
      <ul className="pid-atoms">
        {parts.map((a) => (
          <li key={a.atom} data-atom={a.atom}>
            <span className="dot" style={{ background: color(a.atom) }} />
            {a.label} <b>{fmt(a.value)}</b> <span className="sub">{pct(a.fraction)}</span>
          </li>
        ))}
      </ul>
      {p.bias !== null && (
        <p className="note">
          Estimation bias about {fmt(p.bias)} {p.unit}, most of it landing in synergy.
        </p>
      )}
      {p.notes.map((n) => (
        <p className="note warn" key={n}>
          {n}
        </p>
      ))}
    </div>
  );
}

export function MeasuresHelp() {
  return (
    <p className="note">
      Redundancy: information both modalities carry about the target; unique: only one carries; synergy: only the two together
      carry (Bertschinger et al. 2014). EMAP: Hessel &amp; Lee 2020. See docs/measures.md.
    </p>
  );
}
