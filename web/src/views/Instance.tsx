import { useMemo, useState } from "react";
import { mediaUrl, paths, useDocument } from "../api";
import { TYPE_COLORS, diverging, divergingRgb, maxAbs, modalityColor, textOn } from "../colors";
import { DivergingLegend, Empty, ErrorBox, Loading, Panel } from "../components/common";
import { useStore } from "../store";
import { fmt, indicesOf, interactionMatrix, num, topBy, waterfall } from "../stats";
import type { InstanceDetail, Track } from "../types";
import { MmShap, PatchHeatmap, VisionLanguageLegend, WordGroups, tokenPatchScale } from "./VisionLanguage";
import { HiddenFeatures } from "./HiddenFeatures";

const LIST = 60;

/** The instances of the current selection, worst errors first; a row opens the instance. */
export function InstanceList() {
  const { run, sel, dispatch } = useStore();
  const t = run.table;
  const [sort, setSort] = useState<"abs_error" | "interaction_strength">("abs_error");
  const rows = useMemo(() => {
    const col = t.columns[sort] ?? [];
    // instances without the value (no labels: no error) are listed too, after the others, in run order
    return topBy(indicesOf(sel.selected, t.n), (i) => (Number.isFinite(num(col[i])) ? num(col[i]) : -Number.MAX_VALUE), LIST);
  }, [t, sel.selected, sort]);
  const size = sel.selected ? sel.selected.length : t.n;
  return (
    <div className="instance-list">
      <div className="list-head">
        <strong>{sel.selected ? `Selected instances (${size.toLocaleString()})` : `All instances (${size.toLocaleString()})`}</strong>
        <label>
          by{" "}
          <select value={sort} onChange={(e) => setSort(e.target.value as typeof sort)} aria-label="sort instances">
            <option value="abs_error">largest error</option>
            <option value="interaction_strength">strongest interaction</option>
          </select>
        </label>
      </div>
      {rows.length === 0 ? (
        <Empty title="The selection is empty" hint="Lasso a region with points in it, or clear the selection." />
      ) : (
        <ul aria-label="instances">
          {rows.map((i) => (
            <li key={i}>
              <button
                type="button"
                className={`instance-row ${sel.focused === i ? "active" : ""}`}
                data-instance={i}
                onClick={() => dispatch({ type: "focus", index: i })}
                onMouseEnter={() => dispatch({ type: "hover", index: i })}
                onMouseLeave={() => dispatch({ type: "hover", index: null })}
              >
                <span className="type-dot" style={{ background: TYPE_COLORS[String(t.columns.interaction_type?.[i])] ?? "#999" }} />
                <span className="iid">{String(t.columns.id?.[i] ?? i)}</span>
                <span className="num">y {fmt(num(t.columns.label?.[i]))}</span>
                <span className="num">ŷ {fmt(num(t.columns.prediction?.[i]))}</span>
                <span className="num err">|e| {fmt(num(t.columns.abs_error?.[i]))}</span>
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function InstanceView() {
  const { run, sel } = useStore();
  const focused = sel.focused;
  const doc = useDocument<InstanceDetail>(focused == null ? null : paths.instance(run.info.id, focused));
  let body;
  if (focused == null) body = <Empty title="No instance open" hint="Click a point in the projection or a row in the list to open an instance." />;
  else if (doc.status === "error") body = <ErrorBox error={doc.error} hint="Pick another instance from the list." />;
  else if (doc.status !== "ready") body = <Loading what={`instance ${focused}`} />;
  else body = <InstanceDetailView d={doc.data} />;
  return (
    <Panel title="Instance" id="instance" className="instance-panel">
      <div className="instance-layout">
        <InstanceList />
        <div className="instance-detail">{body}</div>
      </div>
    </Panel>
  );
}

function InstanceDetailView({ d }: { d: InstanceDetail }) {
  const { run } = useStore();
  const kinds = Object.fromEntries(d.modalities.map((m) => [m.name, m.kind]));
  const row = d.row;
  const shap = d.modality_shapley ?? [];
  const base = num(row.base_value);
  const steps = waterfall(Number.isFinite(base) ? base : 0, shap.map((s) => ({ modality: s.modality, value: s.value })));
  const groups = d.word_groups ?? {};
  const wordScale = maxAbs([...Object.entries(d.words).filter(([m]) => !(m in groups)).flatMap(([, w]) => w.map((x) => x.value))]);
  const trackScale = maxAbs(d.tracks.flatMap((t) => [...t.attribution, t.total ?? null]));
  const positions = useMemo(() => {
    const text = Object.values(d.words)[0] ?? [];
    const maxPos = Math.max(-1, ...text.map((w) => w.position), ...d.tracks.flatMap((t) => t.positions));
    return Array.from({ length: maxPos + 1 }, (_, p) => p);
  }, [d]);
  const firstWords = Object.values(d.words)[0] ?? [];
  const wordAt = new Map(firstWords.map((w) => [w.position, w]));
  const patchMaps = d.patches ?? {};
  const vlScale = tokenPatchScale(d);

  return (
    <div className="detail" data-testid="instance-detail">
      <div className="detail-head">
        <h3>
          {String(row.id ?? d.instance)} <span className="sub">#{d.instance}</span>
        </h3>
        <span className="badge" style={{ background: TYPE_COLORS[String(row.interaction_type)] ?? "#999" }}>
          {String(row.interaction_type ?? "—")}
          {row.dominant_modality ? ` · ${row.dominant_modality}` : ""}
        </span>
        <span>label <b>{fmt(num(row.label))}</b></span>
        <span>prediction <b>{fmt(num(row.prediction))}</b></span>
        <span>error <b>{fmt(num(row.error))}</b></span>
        {row.split != null && <span>split {String(row.split)}</span>}
        <MmShap d={d} kinds={kinds} />
      </div>
      {d.warnings.map((w) => (
        <p className="warning" key={w}>
          {w}
        </p>
      ))}
      <HiddenFeatures id={String(row.id ?? d.instance)} />

      <div className="detail-grid">
        <div className="detail-main">
          {Object.keys(patchMaps).length > 0 && (
            <div style={{ display: "flex", flexWrap: "wrap", gap: 16, marginBottom: 8 }}>
              {Object.entries(patchMaps).map(([m, map]) => (
                <PatchHeatmap key={m} runId={run.info.id} name={m} map={map} kind={kinds[m]} scale={vlScale} caption={typeof row.text === "string" ? `“${row.text}”` : undefined} />
              ))}
            </div>
          )}
          {Object.entries(groups).map(([m, words]) => (
            <WordGroups key={m} name={m} words={words} pieces={d.words[m] ?? []} kind={kinds[m]} scale={vlScale} />
          ))}
          {(Object.keys(patchMaps).length > 0 || Object.keys(groups).length > 0) && <VisionLanguageLegend scale={vlScale} />}
          {Object.entries(d.words).filter(([m]) => !(m in groups)).map(([m, words]) => (
            <div key={m}>
              <h4>
                <span className="dot" style={{ background: modalityColor(m, kinds[m]) }} /> {m}: words coloured by attribution
              </h4>
              <p className="words" aria-label="words coloured by attribution">
                {words.map((w) => {
                  const rgb = divergingRgb(w.value ?? 0, wordScale);
                  return (
                    <span key={w.position} className="word" style={{ background: `rgb(${rgb.join(",")})`, color: textOn(rgb) }} title={`${w.token}: ${fmt(w.value)}`}>
                      {w.token}
                    </span>
                  );
                })}
              </p>
            </div>
          ))}
          {typeof row.text === "string" && Object.keys(d.words).length === 0 && <p className="utterance">“{row.text}”</p>}
          {d.tracks.length > 0 && <Tracks tracks={d.tracks} positions={positions} wordAt={wordAt} kinds={kinds} scale={trackScale} />}
          <div className="legend-row">
            {wordScale > 0 && <DivergingLegend max={wordScale} label="Word attribution" />}
            {trackScale > 0 && <DivergingLegend max={trackScale} label="Feature attribution" />}
          </div>
          {d.media.some((m) => !(m.key in patchMaps)) && (
            <div className="media">
              {d.media.filter((m) => !(m.key in patchMaps)).map((m) => {
                const url = mediaUrl(run.info.id, m.key, m.file);
                if (!url) return null;
                if (m.mime.startsWith("image/")) return <img key={m.key} src={url} alt={`${m.key} of ${row.id}`} className="thumb" />;
                if (m.mime.startsWith("audio/"))
                  return (
                    <figure key={m.key}>
                      <figcaption>{m.key}</figcaption>
                      <audio controls src={url} aria-label={`${m.key} audio`} />
                    </figure>
                  );
                if (m.mime.startsWith("video/")) return <video key={m.key} controls src={url} className="thumb" />;
                return null;
              })}
            </div>
          )}
        </div>
        <div className="detail-side">
          <h4>Modality Shapley waterfall</h4>
          <Waterfall steps={steps} base={base} prediction={num(row.prediction)} kinds={kinds} />
          {d.interactions && d.interactions.length > 0 && (
            <>
              <h4>Pairwise interactions</h4>
              <Matrix modalities={d.modalities.map((m) => m.name)} kinds={kinds} shap={shap} pairs={d.interactions} />
            </>
          )}
        </div>
      </div>
    </div>
  );
}

function Tracks(props: { tracks: Track[]; positions: number[]; wordAt: Map<number, { token: string | null }>; kinds: Record<string, string>; scale: number }) {
  const cols = props.positions.length;
  const hasTotal = props.tracks.some((t) => t.total != null);
  return (
    <div className="tracks" role="table" aria-label="feature tracks aligned with the words" style={{ gridTemplateColumns: `150px repeat(${cols}, minmax(28px, 1fr)) ${hasTotal ? "64px" : ""}` }}>
      <div role="row" className="track-row header">
        <span role="columnheader" />
        {props.positions.map((p) => (
          <span role="columnheader" key={p} className="track-word">
            {props.wordAt.get(p)?.token ?? p}
          </span>
        ))}
        {hasTotal && (
          <span role="columnheader" className="track-word" title="attribution of the feature over the whole instance">
            whole
          </span>
        )}
      </div>
      {props.tracks.map((t) => {
        const at = new Map(t.positions.map((p, k) => [p, k]));
        const vals = t.values ?? [];
        const vmax = maxAbs(vals);
        return (
          <div role="row" className="track-row" key={`${t.modality}:${t.feature}`}>
            <span role="rowheader" className="track-label">
              <span className="dot" style={{ background: modalityColor(t.modality, props.kinds[t.modality]) }} />
              {t.modality} · {t.feature === "*" ? "whole step" : t.feature}
            </span>
            {props.positions.map((p) => {
              const k = at.get(p);
              const a = k === undefined ? null : t.attribution[k];
              const v = k === undefined ? null : vals[k];
              return (
                <span
                  role="cell"
                  key={p}
                  className="track-cell"
                  style={{ background: a == null ? "#f3f3f3" : diverging(a, props.scale) }}
                  title={k === undefined ? "no step" : `attribution ${fmt(a)}${v != null ? `, value ${fmt(v)}` : ""}`}
                >
                  {v != null && vmax > 0 && <span className="track-value" style={{ height: `${50 * (Math.abs(v) / vmax)}%`, bottom: v >= 0 ? "50%" : undefined, top: v < 0 ? "50%" : undefined }} />}
                </span>
              );
            })}
            {hasTotal && (
              <span role="cell" className="track-cell track-total" style={{ background: t.total == null ? "#f3f3f3" : diverging(t.total, props.scale) }} title={`whole-instance attribution ${fmt(t.total)}`}>
                {t.total != null ? fmt(t.total) : ""}
              </span>
            )}
          </div>
        );
      })}
      <p className="note" style={{ gridColumn: `1 / span ${cols + 1 + (hasTotal ? 1 : 0)}` }}>
        Cell colour: attribution at that word (grey: not attributed per step); dark tick: the feature's raw value (up above zero, down below){hasTotal ? "; whole: the feature's attribution over the whole instance" : ""}.
      </p>
    </div>
  );
}

function Waterfall(props: { steps: { modality: string; start: number; end: number; value: number }[]; base: number; prediction: number; kinds: Record<string, string> }) {
  const W = 300;
  const rowH = 26;
  const all = [props.base, props.prediction, ...props.steps.flatMap((s) => [s.start, s.end])].filter(Number.isFinite);
  let lo = Math.min(0, ...all);
  let hi = Math.max(0, ...all);
  const pad = (hi - lo) * 0.05 || 1;
  lo -= pad;
  hi += pad;
  const labelW = 80;
  const x = (v: number) => labelW + ((v - lo) / (hi - lo)) * (W - labelW - 50);
  const rows = [{ label: "base", start: 0, end: props.base, value: props.base, kind: "base" }, ...props.steps.map((s) => ({ label: s.modality, ...s, kind: "step" })), { label: "prediction", start: 0, end: props.prediction, value: props.prediction, kind: "total" }];
  const scale = maxAbs(props.steps.map((s) => s.value));
  return (
    <svg width={W} height={rows.length * rowH + 8} role="img" aria-label="waterfall from the base value through each modality's Shapley value to the prediction" data-testid="waterfall">
      <line x1={x(0)} x2={x(0)} y1={0} y2={rows.length * rowH} stroke="#888" strokeDasharray="2 2" />
      {rows.map((r, k) => {
        const y = k * rowH + 4;
        const a = Math.min(x(r.start), x(r.end));
        const w = Math.max(1.5, Math.abs(x(r.end) - x(r.start)));
        const fill = r.kind === "step" ? diverging(r.value, scale || 1) : "#5b6675";
        return (
          <g key={r.label}>
            <text x={0} y={y + 15} fontSize={11}>
              {r.kind === "step" && <tspan fill={modalityColor(r.label, props.kinds[r.label])}>● </tspan>}
              {r.label}
            </text>
            <rect x={a} y={y + 3} width={w} height={rowH - 10} fill={fill} stroke={r.kind === "step" ? "#555" : "none"} strokeWidth={0.5} />
            <text x={Math.max(x(r.start), x(r.end)) + 4} y={y + 15} fontSize={10}>
              {r.kind === "step" && r.value >= 0 ? "+" : ""}
              {fmt(r.value)}
            </text>
          </g>
        );
      })}
    </svg>
  );
}

function Matrix(props: { modalities: string[]; kinds: Record<string, string>; shap: { modality: string; value: number }[]; pairs: InstanceDetail["interactions"] }) {
  const mat = interactionMatrix(props.modalities, props.shap, props.pairs ?? []);
  const scale = maxAbs(mat.flat());
  const cell = 52;
  const lab = 62;
  const m = props.modalities.length;
  return (
    <div>
      <svg width={lab + m * cell + 4} height={lab - 40 + m * cell + 4} role="img" aria-label="pairwise interaction matrix" data-testid="interaction-matrix">
        {props.modalities.map((name, j) => (
          <text key={`c${name}`} x={lab + j * cell + cell / 2} y={14} fontSize={11} textAnchor="middle" fill={modalityColor(name, props.kinds[name])} fontWeight={600}>
            {name}
          </text>
        ))}
        {mat.map((rowVals, i) => (
          <g key={i}>
            <text x={lab - 6} y={22 + i * cell + cell / 2 + 4} fontSize={11} textAnchor="end" fill={modalityColor(props.modalities[i], props.kinds[props.modalities[i]])} fontWeight={600}>
              {props.modalities[i]}
            </text>
            {rowVals.map((v, j) => {
              const rgb = divergingRgb(v, scale);
              return (
                <g key={j}>
                  <rect x={lab + j * cell} y={22 + i * cell} width={cell - 2} height={cell - 2} fill={Number.isFinite(v) ? `rgb(${rgb.join(",")})` : "#eee"} stroke={i === j ? "#333" : "#ccc"} />
                  <text x={lab + j * cell + cell / 2 - 1} y={22 + i * cell + cell / 2 + 3} fontSize={10} textAnchor="middle" fill={textOn(rgb)}>
                    {fmt(v)}
                  </text>
                </g>
              );
            })}
          </g>
        ))}
      </svg>
      <p className="note">Diagonal: Shapley value; off-diagonal: Shapley interaction index.</p>
      <DivergingLegend max={scale} label="Value" width={150} />
    </div>
  );
}
