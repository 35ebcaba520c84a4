import { memo, useMemo, type Dispatch } from "react";
import { TYPE_COLORS, TYPES, modalityColor, robustMaxAbs } from "../colors";
import { BarRow, Panel } from "../components/common";
import type { SelectionAction } from "../selection";
import { useSettledSelection, useStore, type RunData } from "../store";
import { accuracy, extent, fmt, histogram, indicesOf, modalityImportance, num, pct, performance, typeStats, where } from "../stats";
import { FeatureImportanceView } from "./FeatureImportance";
import { DatasetMeasures, DominanceBars, MeasuresHelp } from "./SummaryMeasures";

const W = 320;

export function SummaryView() {
  const { run, dispatch } = useStore();
  const { selected } = useSettledSelection(); // deferred: the projection answers a lasso first
  return <SummaryBody run={run} dispatch={dispatch} selected={selected} />;
}

// memo: the urgent render of a selection change (where `selected` is still the old one) skips the whole panel
const SummaryBody = memo(function SummaryBody(props: { run: RunData; dispatch: Dispatch<SelectionAction>; selected: Int32Array | null }) {
  const { run, dispatch, selected } = props;
  const t = run.table;
  const all = useMemo(() => indicesOf(null, t.n), [t.n]);
  const idx = useMemo(() => indicesOf(selected, t.n), [selected, t.n]);
  const perfAll = useMemo(() => performance(t.columns.label ?? [], t.columns.prediction ?? [], all), [t, all]);
  const perfSel = useMemo(() => performance(t.columns.label ?? [], t.columns.prediction ?? [], idx), [t, idx]);
  const impAll = useMemo(() => modalityImportance(t, all), [t, all]);
  const impSel = useMemo(() => modalityImportance(t, idx), [t, idx]);
  const typesAll = useMemo(() => typeStats(t, all, TYPES), [t, all]);
  const typesSel = useMemo(() => typeStats(t, idx, TYPES), [t, idx]);
  const errors = t.columns.error ?? [];
  // symmetric around 0, wide enough for 99 % of errors; the rest pile into the end bins
  const [lo, hi] = useMemo(() => {
    const m = robustMaxAbs(errors.map(num), 0.99) || Math.max(...extent(errors).map(Math.abs));
    return [-m, m];
  }, [errors]);
  const hAll = useMemo(() => histogram(errors, all, lo, hi, 31), [errors, all, lo, hi]);
  const hSel = useMemo(() => histogram(errors, idx, lo, hi, 31), [errors, idx, lo, hi]);
  const subset = selected !== null;
  const classification = run.manifest.dataset?.label_kind === "classification";

  const maxImp = Math.max(...impAll.map((d) => d.meanAbs), ...impSel.map((d) => d.meanAbs), 1e-9);
  const maxCount = Math.max(...hAll.counts, 1);
  const selScale = subset ? maxCount / Math.max(...hSel.counts, 1) : 1;
  const bw = W / hAll.counts.length;

  return (
    <Panel title="Summary" id="summary">
      <div className="metrics" aria-label="model performance">
        <Metric label="Instances" all={t.n.toLocaleString()} sel={subset ? perfSel.count.toLocaleString() : null} />
        {classification ? (
          <Metric label="Accuracy" all={pct(accuracy(t.columns.label ?? [], t.columns.prediction ?? [], all))} sel={subset ? pct(accuracy(t.columns.label ?? [], t.columns.prediction ?? [], idx)) : null} />
        ) : (
          <>
            <Metric label="MAE" all={fmt(perfAll.mae)} sel={subset ? fmt(perfSel.mae) : null} />
            <Metric label="Pearson r" all={fmt(perfAll.corr)} sel={subset ? fmt(perfSel.corr) : null} />
            <Metric label="Acc-2 (≥0)" all={pct(perfAll.acc2)} sel={subset ? pct(perfSel.acc2) : null} />
          </>
        )}
      </div>

      <h3>Error distribution {classification && <span className="sub">(the run's error column)</span>}</h3>
      <svg width={W} height={96} role="img" aria-label="histogram of prediction minus label">
        {hAll.counts.map((c, i) => (
          <rect key={`a${i}`} x={i * bw + 0.5} width={bw - 1} y={70 - (62 * c) / maxCount} height={(62 * c) / maxCount} fill="#d0d4da" />
        ))}
        {subset &&
          hSel.counts.map((c, i) => (
            <rect key={`s${i}`} x={i * bw + 0.5} width={bw - 1} y={70 - (62 * c * selScale) / maxCount} height={(62 * c * selScale) / maxCount} fill="#4a5a70" opacity={0.85} />
          ))}
        <line x1={W / 2} x2={W / 2} y1={4} y2={72} stroke="#333" strokeDasharray="2 2" />
        <text x={0} y={86} fontSize={10}>≤{fmt(lo)}</text>
        <text x={W / 2} y={86} fontSize={10} textAnchor="middle">0 (prediction − label)</text>
        <text x={W} y={86} fontSize={10} textAnchor="end">≥{fmt(hi)}</text>
      </svg>
      {subset && <p className="note">Dark: the selection, rescaled to the same height; grey: all instances.</p>}

      <h3>Modality importance <span className="sub">mean |Shapley|</span></h3>
      <div className="bars" role="list">
        {impAll.map((d, k) => (
          <BarRow
            key={d.modality}
            label={d.modality}
            color={modalityColor(d.modality, run.kinds[d.modality])}
            all={d.meanAbs / maxImp}
            sel={subset ? impSel[k].meanAbs / maxImp : null}
            value={fmt(subset ? impSel[k].meanAbs : d.meanAbs)}
          />
        ))}
      </div>

      <h3>Interaction types <span className="sub">share · MAE within · click to select</span></h3>
      <div className="bars" role="list">
        {typesAll.map((d, k) => (
          <BarRow
            key={d.type}
            label={d.type}
            color={TYPE_COLORS[d.type] ?? "#999"}
            all={d.share}
            sel={subset ? typesSel[k].share : null}
            value={`${pct(subset ? typesSel[k].share : d.share)} · ${fmt(subset ? typesSel[k].mae : d.mae)}`}
            onClick={() => dispatch({ type: "select", indices: where(t.columns.interaction_type ?? [], d.type), source: `type: ${d.type}` })}
            ariaLabel={`select the ${d.count} ${d.type} instances`}
            data={{ "data-type": d.type }}
          />
        ))}
      </div>

      <DominanceBars all={all} idx={idx} subset={subset} />
      <FeatureImportanceView />
      <DatasetMeasures />
      <MeasuresHelp />
    </Panel>
  );
});

function Metric(props: { label: string; all: string; sel: string | null }) {
  return (
    <div className="metric">
      <div className="metric-label">{props.label}</div>
      <div className="metric-value">{props.sel ?? props.all}</div>
      {props.sel !== null && <div className="metric-all">all: {props.all}</div>}
    </div>
  );
}
