import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { HoverPrefetch, useInstanceDetail } from "../detailCache";
import { TYPE_COLORS, diverging, divergingRgb, maxAbs, modalityColor, textOn } from "../colors";
import { DivergingLegend, Empty, ErrorBox, Loading, Panel } from "../components/common";
import { useStore } from "../store";
import { fmt, interactionMatrix, num, waterfall } from "../stats";
import type { InstanceDetail, RunInfo } from "../types";
import { MmShap, PatchHeatmap, VisionLanguageLegend, WordGroups, tokenPatchScale } from "./VisionLanguage";
import { HiddenFeatures } from "./HiddenFeatures";
import { InstanceList } from "./InstanceList";
import { InstanceTracks } from "./InstanceTracks";
import { MediaPanel, WordStrip, useSpeaking } from "./AudioWords";
import { CoalitionChart, NO_EDIT, WhatIfLive, postJSON, type WhatIfAnswer, type WhatIfEdit } from "./WhatIf";
import { estimateCellSeconds, fillCells, hasStepCells, type CellRow, type DescribedTrack, type WordTiming } from "./instanceLogic";
import "./Instance.css";

export function InstanceView() {
  const { run, sel } = useStore();
  const focused = sel.focused;
  const doc = useInstanceDetail<InstanceDetail>(run.info.id, focused);
  let body;
  if (focused == null) body = <Empty title="No instance open" hint="Click a point in the projection or a row in the list to open an instance." />;
  else if (doc.status === "error") body = <ErrorBox error={doc.error} hint="Pick another instance from the list." />;
  else if (doc.status !== "ready") body = <Loading what={`instance ${focused}`} />;
  else body = <InstanceDetailView key={`${run.info.id}:${doc.data.instance}`} d={doc.data} />;
  return (
    <Panel title="Instance" id="instance" className="instance-panel">
      <HoverPrefetch />
      <div className="instance-layout inst-layout">
        <InstanceList />
        <div className="instance-detail">{body}</div>
      </div>
    </Panel>
  );
}

type DetailWithTimings = InstanceDetail & { tracks: DescribedTrack[]; word_timings?: Record<string, WordTiming[]> | null };

interface CellsAnswer {
  instance: number;
  rows: CellRow[];
  seconds: number;
  evaluations: number;
  n_permutations: number;
}

const CELL_PERMUTATIONS = 8;

function InstanceDetailView({ d: doc }: { d: InstanceDetail }) {
  const { run } = useStore();
  const d = doc as DetailWithTimings;
  const live = !!(run.info as RunInfo & { live?: boolean }).live;
  const kinds = Object.fromEntries(d.modalities.map((m) => [m.name, m.kind]));
  const modalities = d.modalities.map((m) => m.name);
  const row = d.row;
  const shap = d.modality_shapley ?? [];
  const base = num(row.base_value);
  const groups = d.word_groups ?? {};
  const wordEntries = Object.entries(d.words).filter(([m]) => !(m in groups));
  const wordScale = maxAbs(wordEntries.flatMap(([, w]) => w.map((x) => x.value)));
  const [cells, setCells] = useState<CellsAnswer | null>(null);
  // the header, words and waterfall are drawn in the click's frame; the feature tracks, the interaction matrix,
  // the coalitions and the what-if controls in the next one (they are most of the first render's work)
  const [rest, setRest] = useState(false);
  useEffect(() => {
    const id = requestAnimationFrame(() => setRest(true));
    return () => cancelAnimationFrame(id);
  }, []);
  const tracks = useMemo(() => (cells ? fillCells(d.tracks, cells.rows) : d.tracks), [d.tracks, cells]);
  const positions = useMemo(() => {
    const text = Object.values(d.words)[0] ?? [];
    const maxPos = Math.max(-1, ...text.map((w) => w.position), ...d.tracks.flatMap((t) => t.positions));
    return Array.from({ length: maxPos + 1 }, (_, p) => p);
  }, [d]);
  const firstWords = Object.values(d.words)[0] ?? [];
  const wordAt = useMemo(() => new Map(firstWords.map((w) => [w.position, w])), [firstWords]);
  const patchMaps = d.patches ?? {};
  const vlScale = tokenPatchScale(d);

  // audio follows the words
  const timings = useMemo(() => Object.values(d.word_timings ?? {})[0] ?? [], [d.word_timings]);
  const timed = useMemo(() => new Map(timings.map((t) => [t.position, t])), [timings]);
  const audioRef = useRef<HTMLAudioElement | null>(null);
  const [speaking, setSpeaking] = useState<number | null>(null);
  useSpeaking(audioRef, timings, setSpeaking, `${run.info.id}:${d.instance}`);

  // what-if state: shared by the controls and the word strip (click a word to mask it)
  const [edit, setEdit] = useState<WhatIfEdit>(NO_EDIT);
  const [maskMode, setMaskMode] = useState(false);
  const [answer, setAnswer] = useState<WhatIfAnswer | null>(null);
  const onAnswer = useCallback((a: WhatIfAnswer | null) => setAnswer(a), []);
  const onWord = (modality: string, p: number) => {
    if (maskMode) {
      const cur = edit.mask[modality] ?? [];
      setEdit({ ...edit, mask: { ...edit.mask, [modality]: cur.includes(p) ? cur.filter((x) => x !== p) : [...cur, p].sort((a, b) => a - b) } });
      return;
    }
    const t = timed.get(p);
    const el = audioRef.current;
    if (t && el) {
      el.currentTime = t.start + 1e-3;
      setSpeaking(p);
      void el.play().catch(() => undefined); // a browser may refuse to play; the seek stands
    }
  };
  const maskedWords = (m: string) => new Set(edit.mask[m] ?? []);
  const wordModality = wordEntries[0]?.[0];
  const maxStep = Object.fromEntries(modalities.map((m) => [m, Math.max(0, positions.length - 1)]));
  const otherMedia = d.media.filter((m) => !(m.key in patchMaps));
  const steps = waterfall(Number.isFinite(base) ? base : 0, shap.map((s) => ({ modality: s.modality, value: s.value })));

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

      <div className="detail-grid inst-grid">
        <div className="detail-main inst-main">
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
          {wordEntries.map(([m, words]) => (
            <WordStrip key={m} modality={m} kind={kinds[m]} words={words} scale={wordScale} speaking={speaking} masked={maskedWords(m)} timed={timed} onWord={(p) => onWord(m, p)} maskMode={maskMode && live} />
          ))}
          {wordScale > 0 && (
            <div className="legend-row">
              <DivergingLegend max={wordScale} label="Word attribution" />
            </div>
          )}
          {typeof row.text === "string" && Object.keys(d.words).length === 0 && <p className="utterance">“{row.text}”</p>}
          {rest && tracks.length > 0 && (
            <>
              <CellsControl d={d} live={live} tracks={tracks} cells={cells} setCells={setCells} />
              <InstanceTracks tracks={tracks} positions={positions} wordAt={wordAt} kinds={kinds} speaking={speaking} masked={wordModality ? maskedWords(wordModality) : new Set()} onStep={timed.size > 0 && wordModality ? (p) => onWord(wordModality, p) : undefined} />
            </>
          )}
        </div>
        <div className="detail-side inst-side">
          <MediaPanel runId={run.info.id} rowId={String(row.id ?? d.instance)} media={otherMedia} audioRef={audioRef} timed={timings.length > 0} />
          <h4>Modality Shapley waterfall</h4>
          <Waterfall steps={steps} base={base} prediction={num(row.prediction)} kinds={kinds} />
          {rest && d.interactions && d.interactions.length > 0 && (
            <>
              <h4>Pairwise interactions</h4>
              <Matrix modalities={modalities} kinds={kinds} shap={shap} pairs={d.interactions} />
            </>
          )}
          {rest && d.coalitions && d.coalitions.length > 0 && (
            <>
              <h4>What if only some modalities were there</h4>
              <CoalitionChart modalities={modalities} kinds={kinds} stored={d.coalitions} live={answer?.coalitions} />
              <p className="note">
                The model's output with only those modalities present (the others at their baseline), {d.coalitions.length} coalitions
                {answer ? "; outlined: the edited instance" : ""}.
              </p>
            </>
          )}
          {rest && live ? (
            <>
              <h4>What-if (live model)</h4>
              <WhatIfLive
                runId={run.info.id}
                instance={d.instance}
                n={run.table.n}
                modalities={modalities}
                kinds={kinds}
                storedShapley={shap}
                storedPrediction={num(row.prediction)}
                edit={edit}
                setEdit={setEdit}
                maskMode={maskMode}
                setMaskMode={setMaskMode}
                wordModalities={wordEntries.map(([m]) => m)}
                maxStep={maxStep}
                onAnswer={onAnswer}
              />
            </>
          ) : null}
        </div>
      </div>
    </div>
  );
}

/** The feature x step heat map: present in the run, computable by the live server, or how to get it. */
function CellsControl(props: { d: DetailWithTimings; live: boolean; tracks: DescribedTrack[]; cells: CellsAnswer | null; setCells: (c: CellsAnswer) => void }) {
  const { run } = useStore();
  const [state, setState] = useState<{ busy: boolean; error: string | null }>({ busy: false, error: null });
  const stored = props.d.tracks.some(hasStepCells);
  if (props.cells)
    return (
      <p className="note" data-testid="cells-cost">
        Feature × step attributions computed in {props.cells.seconds.toFixed(1)} s ({props.cells.evaluations.toLocaleString()} model rows, {props.cells.n_permutations} permutations).
      </p>
    );
  if (stored) return null;
  if (!props.live)
    return (
      <p className="note" data-testid="cells-hint">
        Cells are not attributed per feature and step in this run. Get them with <code>modalens explain ... --granularities steps features cells</code>, or serve the run with <code>--model</code> to compute them for one instance.
      </p>
    );
  const m = run.manifest as unknown as { timings?: Record<string, number>; config?: Record<string, unknown> };
  const features = props.tracks.filter((t) => t.feature !== "*");
  const cellPlayers = features.reduce((n, t) => n + t.positions.length, 0);
  const estimate = estimateCellSeconds({
    featureSeconds: m.timings?.features,
    nInstances: run.table.n,
    runPermutations: typeof m.config?.n_permutations === "number" ? m.config.n_permutations : undefined,
    featurePlayers: features.length,
    cellPlayers,
    permutations: CELL_PERMUTATIONS,
  });
  const go = () => {
    setState({ busy: true, error: null });
    postJSON<CellsAnswer>(`api/runs/${encodeURIComponent(run.info.id)}/instances/${props.d.instance}/cells`, { n_permutations: CELL_PERMUTATIONS }).then(
      (a) => {
        setState({ busy: false, error: null });
        props.setCells(a);
      },
      (e: unknown) => setState({ busy: false, error: e instanceof Error ? e.message : String(e) }),
    );
  };
  return (
    <div className="inst-cells">
      <button type="button" onClick={go} disabled={state.busy} data-testid="compute-cells">
        {state.busy ? "computing feature × step attributions…" : `compute feature × step attributions (${estimate == null ? "cost unknown" : `about ${estimate < 1 ? "1" : Math.round(estimate)} s`})`}
      </button>
      <span className="sub"> {cellPlayers.toLocaleString()} cells, {CELL_PERMUTATIONS} permutations</span>
      {state.error && <p className="warning">{state.error}</p>}
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
