import { useEffect, useMemo, useRef, useState } from "react";
import { paths, useDocument } from "../api";
import { TYPE_COLORS, modalityColor } from "../colors";
import { Empty, ErrorBox, Loading, Panel, Swatches } from "../components/common";
import { useStore } from "../store";
import { fmt, num, pct } from "../stats";
import type { Comparison } from "../types";
import { cellRows, compareRuns, compareSummary, disagreementRows, instancesOf, type ManyComparison, manyPath, readCmp, runLabel, transitionFor, writeCmp } from "../compare";
import "./Compare.css";

export function CompareView() {
  const { run, runs, dispatch } = useStore();
  const others = runs.filter((r) => r.id !== run.info.id && r.kind === "interaction");
  // the runs compared with this one: from the URL (?cmp=a,b), else every other interaction run
  const [chosen, setChosen] = useState<string[]>(() => readCmp(window.location.search) ?? others.map((r) => r.id));
  const valid = chosen.filter((id) => others.some((r) => r.id === id));
  const setRuns = (ids: string[]) => {
    setChosen(ids);
    try {
      window.history.replaceState(window.history.state, "", `${window.location.pathname}${writeCmp(window.location.search, ids)}${window.location.hash}`);
    } catch {
      /* a page that cannot change its URL (a notebook's srcdoc frame) keeps the choice without the link */
    }
  };
  const ids = compareRuns(
    runs.map((r) => r.id),
    [run.info.id, ...valid],
  );
  const many = useDocument<ManyComparison>(ids.length >= 2 ? manyPath(ids) : null);
  // the pair whose instances are listed: this run against the first other chosen run (any pair for the matrix)
  const [other, setOther] = useState<string>(valid[0] ?? "");
  useEffect(() => {
    if (!valid.includes(other)) setOther(valid[0] ?? "");
  }, [valid, other]);
  const doc = useDocument<Comparison>(other ? paths.compare(run.info.id, other) : null);
  const [onlyDisagree, setOnlyDisagree] = useState(true);
  const [picked, setPicked] = useState<number | null>(null);

  if (others.length === 0)
    return (
      <Panel title="Compare" id="compare">
        <Empty title="Only one interaction run is being served" hint={<>Start the server with two or more runs on the same dataset, e.g. <code>modalens serve runs/model-a runs/model-b runs/model-c</code>.</>} />
      </Panel>
    );

  const runPicker = (
    <fieldset className="cmp-runs" data-testid="compare-runs">
      <legend>
        Compare <b>{runLabel(run.info)}</b> with
      </legend>
      {others.map((r) => (
        <label key={r.id}>
          <input type="checkbox" checked={valid.includes(r.id)} onChange={(e) => setRuns(e.target.checked ? [...valid, r.id] : valid.filter((x) => x !== r.id))} data-testid={`compare-run-${r.id}`} />
          {runLabel(r)}
        </label>
      ))}
    </fieldset>
  );
  const picker = valid.length ? (
    <label>
      Instances: <b>{runLabel(run.info)}</b> vs{" "}
      <select value={other} onChange={(e) => setOther(e.target.value)} aria-label="run to compare with" data-testid="compare-with">
        {others
          .filter((r) => valid.includes(r.id))
          .map((r) => (
            <option key={r.id} value={r.id}>
              {runLabel(r)}
            </option>
          ))}
      </select>
    </label>
  ) : null;

  let body;
  if (!other) body = <Empty title="No run chosen" hint="Tick one or more runs above to compare with." />;
  else if (doc.status === "error") body = <ErrorBox error={doc.error} hint="Pick a run explaining the same dataset (instances are matched by id)." />;
  else if (doc.status !== "ready") body = <Loading what="comparison" />;
  else {
    const c = doc.data;
    const s = compareSummary(c);
    const rows = disagreementRows(c, onlyDisagree, 200);
    const mods = Object.keys(c.shapley.a);
    const maxImp = Math.max(1e-9, ...mods.flatMap((m) => [s.importanceA[m] ?? 0, s.importanceB[m] ?? 0]));
    const pickedRow = picked == null ? null : picked;
    body = (
      <div className="compare-grid">
        <div>
          <div className="metrics">
            <div className="metric">
              <div className="metric-label">Matched instances</div>
              <div className="metric-value">{c.n_matched.toLocaleString()}</div>
            </div>
            <div className="metric">
              <div className="metric-label">Disagree ({c.label_kind === "classification" ? "class" : "sign"})</div>
              <div className="metric-value" data-testid="n-disagree">
                {c.n_disagree.toLocaleString()}
              </div>
              <div className="metric-all">{pct(c.n_disagree / Math.max(1, c.n_matched))}</div>
            </div>
            <div className="metric">
              <div className="metric-label">MAE A / B</div>
              <div className="metric-value">
                {fmt(s.maeA)} / {fmt(s.maeB)}
              </div>
            </div>
          </div>
          <h3>Prediction A vs B</h3>
          <PredScatter c={c} picked={pickedRow} />
          <Swatches items={[{ label: "agree", color: "#9aa3ad" }, { label: "disagree", color: "#D55E00" }]} />
          <h3>
            Modality importance <span className="sub">mean |Shapley|, A (solid) vs B (hatched)</span>
          </h3>
          <div className="bars">
            {mods.map((m) => (
              <div className="bar-row" key={m}>
                <span className="bar-label">
                  <span className="dot" style={{ background: modalityColor(m, run.kinds[m]) }} />
                  {m}
                </span>
                <span className="bar-track double">
                  <span className="bar" style={{ width: `${(100 * (s.importanceA[m] ?? 0)) / maxImp}%`, background: modalityColor(m, run.kinds[m]) }} />
                  <span className="bar hatched" style={{ width: `${(100 * (s.importanceB[m] ?? 0)) / maxImp}%`, color: modalityColor(m, run.kinds[m]) }} />
                </span>
                <span className="bar-value">
                  {fmt(s.importanceA[m])} / {fmt(s.importanceB[m])}
                </span>
              </div>
            ))}
          </div>
          <button type="button" onClick={() => dispatch({ type: "select", indices: rows.length ? disagreementRows(c, true, Infinity).map((r) => r.instanceA) : [], source: "compare: disagreements" })}>
            Select all disagreements in the Explore views
          </button>
        </div>
        <div>
          <div className="list-head">
            <strong>{onlyDisagree ? "Disagreements" : "All matched"}, largest |B − A| first</strong>
            <label>
              <input type="checkbox" checked={onlyDisagree} onChange={(e) => setOnlyDisagree(e.target.checked)} /> only disagreements
            </label>
          </div>
          {rows.length === 0 ? (
            <Empty title="The two models agree everywhere" hint="Untick “only disagreements” to list the largest differences." />
          ) : (
            <table className="compare-table" aria-label="instances where the runs differ">
              <thead>
                <tr>
                  <th>id</th>
                  <th>label</th>
                  <th>A</th>
                  <th>B</th>
                  <th>B − A</th>
                  <th>type A → B</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((r) => (
                  <tr
                    key={r.row}
                    className={picked === r.row ? "active" : ""}
                    tabIndex={0}
                    onClick={() => {
                      setPicked(r.row);
                      dispatch({ type: "focus", index: r.instanceA });
                    }}
                    onKeyDown={(e) => {
                      if (e.key === "Enter") {
                        setPicked(r.row);
                        dispatch({ type: "focus", index: r.instanceA });
                      }
                    }}
                  >
                    <td>{r.id}</td>
                    <td className="num">{fmt(r.label)}</td>
                    <td className="num">{fmt(r.a)}</td>
                    <td className="num">{fmt(r.b)}</td>
                    <td className="num">{fmt(r.diff)}</td>
                    <td>
                      <span className="type-dot" style={{ background: TYPE_COLORS[r.typeA] ?? "#999" }} /> {r.typeA} → <span className="type-dot" style={{ background: TYPE_COLORS[r.typeB] ?? "#999" }} /> {r.typeB}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {pickedRow != null && <PairShapley c={c} row={pickedRow} kinds={run.kinds} />}
        </div>
      </div>
    );
  }
  return (
    <>
      <Panel title="Compare runs" id="compare-runs">
        {runPicker}
        {ids.length < 2 ? null : many.status === "error" ? (
          <ErrorBox error={many.error} hint="Pick runs explaining the same dataset (instances are matched by id)." />
        ) : many.status !== "ready" ? (
          <Loading what="comparison" />
        ) : (
          <ManyRuns doc={many.data} current={run.info.id} kinds={run.kinds} onSelect={(indices, source) => dispatch({ type: "select", indices, source })} />
        )}
      </Panel>
      <Panel title="Compare" id="compare" actions={picker}>
        {body}
      </Panel>
    </>
  );
}

function metricCells(m: ManyComparison["metrics"][string] | undefined, kind: string) {
  if (!m) return null;
  return kind === "classification" ? (
    <td className="num">{fmt(m.accuracy ?? NaN)}</td>
  ) : (
    <>
      <td className="num">{fmt(m.mae ?? NaN)}</td>
      <td className="num">{fmt(m.r ?? NaN)}</td>
      <td className="num">{m.acc2 == null ? "—" : pct(m.acc2)}</td>
    </>
  );
}

/** N runs side by side: metrics, modality importance, pairwise disagreement and one pair's type transitions. */
function ManyRuns({ doc, current, kinds, onSelect }: { doc: ManyComparison; current: string; kinds: Record<string, string>; onSelect: (indices: number[], source: string) => void }) {
  const ids = doc.runs.map((r) => r.id);
  const [pair, setPair] = useState<[string, string]>([current, ids.find((i) => i !== current) ?? ids[0]]);
  const a = ids.includes(pair[0]) ? pair[0] : ids[0];
  const b = ids.includes(pair[1]) && pair[1] !== a ? pair[1] : (ids.find((i) => i !== a) ?? a);
  const t = transitionFor(doc, a, b);
  const byId = Object.fromEntries(doc.runs.map((r) => [r.id, r]));
  const mods = Array.from(new Set(doc.runs.flatMap((r) => Object.keys(doc.importance[r.id] ?? {}))));
  const maxImp = Math.max(1e-9, ...doc.runs.flatMap((r) => mods.map((m) => doc.importance[r.id]?.[m] ?? 0)));
  const maxCell = Math.max(1, ...(t?.counts.flat() ?? []));
  const cls = doc.label_kind === "classification";
  return (
    <div className="cmp-many" data-testid="compare-many">
      <p className="note">
        {doc.n_matched.toLocaleString()} instances shared by all {doc.runs.length} runs (matched by id).
      </p>
      <table className="cmp-metrics" aria-label="metrics per run" data-testid="compare-metrics">
        <thead>
          <tr>
            <th>model (run)</th>
            {cls ? <th>accuracy</th> : (
              <>
                <th>MAE</th>
                <th>r</th>
                <th title="sign agreement over instances with a non-zero label (MOSI/MOSEI Acc-2, non-zero)">Acc-2 (≠0)</th>
              </>
            )}
            <th>modality importance (mean |Shapley|)</th>
          </tr>
        </thead>
        <tbody>
          {doc.runs.map((r) => (
            <tr key={r.id} className={r.id === current ? "current" : ""}>
              <td>{runLabel(r)}</td>
              {metricCells(doc.metrics[r.id], doc.label_kind)}
              <td>
                <span className="cmp-imp">
                  {mods.map((m) => {
                    const v = doc.importance[r.id]?.[m] ?? null;
                    return (
                      <span key={m} className="cmp-imp-bar" title={`${m}: ${fmt(v ?? NaN)}`} style={{ width: `${(60 * (v ?? 0)) / maxImp}px`, background: modalityColor(m, kinds[m]) }} />
                    );
                  })}
                </span>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <Swatches items={mods.map((m) => ({ label: m, color: modalityColor(m, kinds[m]) }))} />
      <h3>
        Disagreement <span className="sub">share of matched instances where two runs predict a different {cls ? "class" : "sign"}</span>
      </h3>
      <table className="agreement" data-testid="compare-disagreement">
        <thead>
          <tr>
            <th />
            {doc.runs.map((r) => (
              <th key={r.id}>{runLabel(r)}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {doc.runs.map((r, i) => (
            <tr key={r.id}>
              <th>{runLabel(r)}</th>
              {doc.runs.map((s, j) => (
                <td key={s.id} title={`${doc.disagreement.counts[i][j]} instances`} style={{ background: i === j ? "#f4f5f7" : `rgba(213,94,0,${Math.min(0.85, doc.disagreement.fraction[i][j] * 2)})` }}>
                  {i === j ? "—" : pct(doc.disagreement.fraction[i][j])}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      <h3>
        Interaction types <span className="sub">rows: how run A explains an instance, columns: run B; click a cell to select those instances</span>
      </h3>
      <div className="cmp-pair">
        <label>
          A{" "}
          <select value={a} onChange={(e) => setPair([e.target.value, b === e.target.value ? a : b])} aria-label="run A of the transition matrix" data-testid="transition-a">
            {doc.runs.map((r) => (
              <option key={r.id} value={r.id}>
                {runLabel(r)}
              </option>
            ))}
          </select>
        </label>
        <label>
          B{" "}
          <select value={b} onChange={(e) => setPair([a === e.target.value ? b : a, e.target.value])} aria-label="run B of the transition matrix" data-testid="transition-b">
            {doc.runs
              .filter((r) => r.id !== a)
              .map((r) => (
                <option key={r.id} value={r.id}>
                  {runLabel(r)}
                </option>
              ))}
          </select>
        </label>
      </div>
      {t && (
        <table className="cmp-transition" data-testid="transition-matrix" aria-label={`interaction types of ${byId[a]?.name} against ${byId[b]?.name}`}>
          <thead>
            <tr>
              <th className="corner">
                A ↓ · B →
              </th>
              {t.cols.map((c) => (
                <th key={c}>{c}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {t.rows.map((row, i) => (
              <tr key={row}>
                <th>{row}</th>
                {t.cols.map((col, j) => {
                  const n = t.counts[i][j];
                  return (
                    <td key={col}>
                      <button
                        type="button"
                        disabled={n === 0}
                        className={row === col ? "same" : ""}
                        style={{ background: n ? `rgba(47,93,138,${0.12 + (0.75 * n) / maxCell})` : undefined, color: n / maxCell > 0.5 ? "#fff" : undefined }}
                        data-testid="transition-cell"
                        data-row={row}
                        data-col={col}
                        onClick={() => onSelect(instancesOf(doc, current, cellRows(doc, a, b, row, col)), `compare: ${byId[a]?.model ?? a} ${row} → ${byId[b]?.model ?? b} ${col}`)}
                      >
                        {n.toLocaleString()}
                      </button>
                    </td>
                  );
                })}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

function PredScatter({ c, picked }: { c: Comparison; picked: number | null }) {
  const ref = useRef<HTMLCanvasElement>(null);
  const size = 300;
  const pa = c.columns.prediction_a ?? [];
  const pb = c.columns.prediction_b ?? [];
  const dis = c.columns.disagree ?? [];
  const [lo, hi] = useMemo(() => {
    let l = Infinity;
    let h = -Infinity;
    for (const v of [...pa, ...pb]) {
      const x = num(v);
      if (Number.isFinite(x)) {
        l = Math.min(l, x);
        h = Math.max(h, x);
      }
    }
    return l <= h ? [l, h] : [0, 1];
  }, [pa, pb]);
  useEffect(() => {
    const cv = ref.current!;
    const dpr = window.devicePixelRatio || 1;
    cv.width = size * dpr;
    cv.height = size * dpr;
    const ctx = cv.getContext("2d")!;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, size, size);
    const sc = (v: number) => 20 + ((v - lo) / (hi - lo || 1)) * (size - 30);
    ctx.strokeStyle = "#999";
    ctx.setLineDash([3, 3]);
    ctx.beginPath();
    ctx.moveTo(sc(lo), size - sc(lo));
    ctx.lineTo(sc(hi), size - sc(hi));
    ctx.stroke();
    ctx.setLineDash([]);
    const r = pa.length > 5000 ? 1.2 : 2.2;
    for (const pass of [false, true])
      for (let i = 0; i < pa.length; i++) {
        if (Boolean(dis[i]) !== pass) continue;
        ctx.fillStyle = pass ? "rgba(213,94,0,0.8)" : "rgba(154,163,173,0.5)";
        ctx.fillRect(sc(num(pa[i])) - r, size - sc(num(pb[i])) - r, 2 * r, 2 * r);
      }
    if (picked != null) {
      ctx.strokeStyle = "#111";
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.arc(sc(num(pa[picked])), size - sc(num(pb[picked])), 6, 0, 2 * Math.PI);
      ctx.stroke();
    }
    ctx.fillStyle = "#333";
    ctx.font = "11px sans-serif";
    ctx.fillText(`A: ${c.a.model ?? c.a.name} →`, size - 150, size - 4);
    ctx.save();
    ctx.translate(10, 150);
    ctx.rotate(-Math.PI / 2);
    ctx.fillText(`B: ${c.b.model ?? c.b.name} →`, 0, 0);
    ctx.restore();
  }, [pa, pb, dis, lo, hi, picked, c.a, c.b]);
  return <canvas ref={ref} style={{ width: size, height: size }} role="img" aria-label="prediction of run A against run B" />;
}

function PairShapley({ c, row, kinds }: { c: Comparison; row: number; kinds: Record<string, string> }) {
  const mods = Object.keys(c.shapley.a);
  const vals = mods.flatMap((m) => [num(c.shapley.a[m]?.[row] ?? null), num(c.shapley.b[m]?.[row] ?? null)]).filter(Number.isFinite);
  const m = Math.max(1e-9, ...vals.map(Math.abs));
  return (
    <div className="pair-shapley" data-testid="pair-shapley">
      <h3>
        Modality Shapley for {String(c.columns.id?.[row])}: A vs B
      </h3>
      {mods.map((name) => (
        <div className="bar-row" key={name}>
          <span className="bar-label">
            <span className="dot" style={{ background: modalityColor(name, kinds[name]) }} />
            {name}
          </span>
          {(["a", "b"] as const).map((side) => {
            const v = num(c.shapley[side][name]?.[row] ?? null);
            return (
              <span className="bar-track centred" key={side} title={`${side.toUpperCase()}: ${fmt(v)}`}>
                <span className="axis" />
                <span className="bar" style={{ left: v >= 0 ? "50%" : `${50 - (50 * Math.abs(v)) / m}%`, width: `${(50 * Math.abs(v)) / m}%`, background: v >= 0 ? "#b2182b" : "#2166ac" }} />
                <span className="side">{side.toUpperCase()}</span>
              </span>
            );
          })}
        </div>
      ))}
    </div>
  );
}
