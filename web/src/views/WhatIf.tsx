// What-if for one instance: the prediction of every modality coalition (stored), and, when the server has the
// model (`modalens serve RUN --model SPEC`: RunInfo.live), controls to drop a modality, mask words or steps and
// swap a modality with another instance's, answered by POST /api/runs/{run}/whatif.
import { useEffect, useMemo, useRef, useState } from "react";
import { diverging, maxAbs, modalityColor } from "../colors";
import { fmt } from "../stats";
import { canonicalCoalition, coalitionOrder, parseSteps } from "./instanceLogic";
import "./Instance.css";

export interface Coalition {
  coalition: string;
  size: number;
  value: number;
}

export interface WhatIfAnswer {
  instance: number;
  prediction: number;
  explained_output: number;
  base_value: number;
  modality_shapley: { modality: string; value: number }[];
  coalitions: Coalition[];
  original: { prediction: number; explained_output: number };
  seconds: number;
}

export interface WhatIfEdit {
  drop: string[];
  mask: Record<string, number[]>;
  swap: Record<string, number>;
}

export const NO_EDIT: WhatIfEdit = { drop: [], mask: {}, swap: {} };

export function isEmptyEdit(e: WhatIfEdit): boolean {
  return e.drop.length === 0 && Object.values(e.mask).every((p) => p.length === 0) && Object.keys(e.swap).length === 0;
}

/** The JSON body of POST /whatif: empty parts left out. */
export function whatIfBody(instance: number, e: WhatIfEdit): Record<string, unknown> {
  const body: Record<string, unknown> = { instance };
  if (e.drop.length) body.drop = e.drop;
  const mask = Object.fromEntries(Object.entries(e.mask).filter(([, p]) => p.length > 0));
  if (Object.keys(mask).length) body.mask = mask;
  if (Object.keys(e.swap).length) body.swap = e.swap;
  return body;
}

const label = (c: string) => (c === "" ? "none (base)" : c.replaceAll("+", " + "));

/** Horizontal bars: the model's output with only the coalition's modalities present, stored (and live, outlined). */
export function CoalitionChart(props: { modalities: string[]; kinds: Record<string, string>; stored: Coalition[]; live?: Coalition[] | null }) {
  const order = coalitionOrder(props.modalities);
  const stored = new Map(props.stored.map((c) => [canonicalCoalition(c.coalition, props.modalities), c.value]));
  const live = props.live ? new Map(props.live.map((c) => [canonicalCoalition(c.coalition, props.modalities), c.value])) : null;
  const all = [...stored.values(), ...(live ? [...live.values()] : [])];
  const scale = maxAbs(all) || 1;
  const W = 316;
  const labW = 132;
  const rowH = live ? 22 : 17;
  const half = (W - labW - 44) / 2;
  const x0 = labW + half;
  const x = (v: number) => x0 + (v / scale) * half;
  const full = props.modalities.join("+");
  return (
    <svg width={W} height={order.length * rowH + 6} role="img" aria-label="prediction of every modality coalition" data-testid="coalition-chart">
      <line x1={x0} x2={x0} y1={0} y2={order.length * rowH} stroke="#888" strokeDasharray="2 2" />
      {order.map((c, k) => {
        const y = k * rowH + 3;
        const v = stored.get(c);
        const lv = live?.get(c);
        const names = c === "" ? [] : c.split("+");
        return (
          <g key={c || "none"} data-coalition={c}>
            <text x={0} y={y + 11} fontSize={10.5} fontWeight={c === full ? 600 : 400}>
              <title>{names.length === 0 ? "no modality: every one at its baseline" : `only ${names.join(", ")} present, the rest at their baseline`}</title>
              {names.length === 0 ? label(c) : names.map((n, i) => (
                <tspan key={n} fill={modalityColor(n, props.kinds[n])}>
                  {i > 0 ? " + " : ""}
                  {n}
                </tspan>
              ))}
            </text>
            {v != null && Number.isFinite(v) && (
              <rect className="coalition-bar" x={Math.min(x0, x(v))} y={y + 2} width={Math.max(1.5, Math.abs(x(v) - x0))} height={live ? 8 : 11} fill={diverging(v, scale)} stroke="#555" strokeWidth={0.5}>
                <title>{`${label(c)}: ${fmt(v)} (stored)`}</title>
              </rect>
            )}
            {lv != null && Number.isFinite(lv) && (
              <rect className="coalition-live" x={Math.min(x0, x(lv))} y={y + 11} width={Math.max(1.5, Math.abs(x(lv) - x0))} height={8} fill="none" stroke="#222" strokeWidth={1.2}>
                <title>{`${label(c)}: ${fmt(lv)} (what-if)`}</title>
              </rect>
            )}
            <text x={W - 2} y={y + 11} fontSize={10} textAnchor="end">
              {v != null ? fmt(v, 2) : "—"}
              {lv != null ? ` → ${fmt(lv, 2)}` : ""}
            </text>
          </g>
        );
      })}
    </svg>
  );
}

async function postJSON<T>(path: string, body: unknown, signal?: AbortSignal): Promise<T> {
  const res = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), signal });
  let doc: unknown = null;
  try {
    doc = await res.json();
  } catch {
    /* not JSON */
  }
  if (!res.ok) throw new Error((doc as { error?: string } | null)?.error ?? `${res.status} ${res.statusText}`);
  return doc as T;
}
export { postJSON };

/** The live what-if controls and their answer; rendered only when the server has the run's model. */
export function WhatIfLive(props: {
  runId: string;
  instance: number;
  n: number;
  modalities: string[];
  kinds: Record<string, string>;
  storedShapley: { modality: string; value: number }[];
  storedPrediction: number;
  edit: WhatIfEdit;
  setEdit: (e: WhatIfEdit) => void;
  maskMode: boolean;
  setMaskMode: (on: boolean) => void;
  wordModalities: string[];
  maxStep: Record<string, number>;
  onAnswer: (a: WhatIfAnswer | null) => void;
}) {
  const { edit, setEdit } = props;
  const [answer, setAnswer] = useState<WhatIfAnswer | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [stepText, setStepText] = useState<Record<string, string>>({});
  const [stepError, setStepError] = useState<Record<string, string>>({});
  const [resets, setResets] = useState(0); // remounts the inputs when the instance is restored
  const timer = useRef<number | undefined>(undefined);
  const body = useMemo(() => whatIfBody(props.instance, edit), [props.instance, edit]);
  const key = JSON.stringify(body);
  const onAnswer = props.onAnswer;

  // debounced: one request 300 ms after the last change; a newer change aborts the request in flight
  useEffect(() => {
    window.clearTimeout(timer.current);
    if (isEmptyEdit(edit)) {
      setAnswer(null);
      setError(null);
      onAnswer(null);
      return;
    }
    const ctrl = new AbortController();
    timer.current = window.setTimeout(() => {
      setBusy(true);
      postJSON<WhatIfAnswer>(`api/runs/${encodeURIComponent(props.runId)}/whatif`, JSON.parse(key), ctrl.signal).then(
        (a) => {
          setAnswer(a);
          setError(null);
          setBusy(false);
          onAnswer(a);
        },
        (e: unknown) => {
          if (ctrl.signal.aborted) return;
          setError(e instanceof Error ? e.message : String(e));
          setBusy(false);
        },
      );
    }, 300);
    return () => {
      window.clearTimeout(timer.current);
      ctrl.abort();
    };
  }, [key, props.runId, edit, onAnswer]);

  const toggleDrop = (m: string) => setEdit({ ...edit, drop: edit.drop.includes(m) ? edit.drop.filter((d) => d !== m) : [...edit.drop, m] });
  const setSwap = (m: string, text: string) => {
    const swap = { ...edit.swap };
    const v = Number(text);
    if (text.trim() === "" || !Number.isInteger(v) || v < 0 || v >= props.n) delete swap[m];
    else swap[m] = v;
    setEdit({ ...edit, swap });
  };
  const setSteps = (m: string, text: string) => {
    setStepText({ ...stepText, [m]: text });
    try {
      const steps = parseSteps(text, props.maxStep[m] ?? 0);
      setStepError({ ...stepError, [m]: "" });
      setEdit({ ...edit, mask: { ...edit.mask, [m]: steps } });
    } catch (e) {
      setStepError({ ...stepError, [m]: e instanceof Error ? e.message : String(e) });
    }
  };
  const newShap = new Map((answer?.modality_shapley ?? []).map((s) => [s.modality, s.value]));
  const stored = new Map(props.storedShapley.map((s) => [s.modality, s.value]));
  const scale = maxAbs([...stored.values(), ...newShap.values()]) || 1;

  return (
    <div className="inst-whatif" data-testid="whatif-live">
      <table className="inst-whatif-table" key={resets}>
        <thead>
          <tr>
            <th>modality</th>
            <th title="unticked: replaced by its baseline">keep</th>
            <th title="steps replaced by their baseline">mask steps</th>
            <th title="use this modality of another instance">swap with #</th>
          </tr>
        </thead>
        <tbody>
          {props.modalities.map((m) => {
            const isWords = props.wordModalities.includes(m);
            return (
              <tr key={m}>
                <td>
                  <span className="dot" style={{ background: modalityColor(m, props.kinds[m]) }} /> {m}
                </td>
                <td>
                  <input type="checkbox" checked={!edit.drop.includes(m)} onChange={() => toggleDrop(m)} aria-label={`keep ${m}`} data-testid={`keep-${m}`} />
                </td>
                <td>
                  {isWords ? (
                    <button type="button" className={`linkish${props.maskMode ? " on" : ""}`} aria-pressed={props.maskMode} onClick={() => props.setMaskMode(!props.maskMode)} data-testid="mask-words">
                      {props.maskMode ? "done masking" : "click words"}
                      {(edit.mask[m]?.length ?? 0) > 0 ? ` (${edit.mask[m].length})` : ""}
                    </button>
                  ) : (
                    <>
                      <input className="inst-steps" value={stepText[m] ?? ""} placeholder={`0-${props.maxStep[m] ?? 0}`} onChange={(e) => setSteps(m, e.target.value)} aria-label={`mask steps of ${m}`} aria-invalid={!!stepError[m]} title={stepError[m] || "steps or ranges: 0, 3-5"} />
                    </>
                  )}
                </td>
                <td>
                  <input className="inst-swap" type="number" min={0} max={props.n - 1} defaultValue="" placeholder="—" onChange={(e) => setSwap(m, e.target.value)} aria-label={`swap ${m} with instance`} data-testid={`swap-${m}`} />
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {Object.values(stepError).some(Boolean) && <p className="warning">{Object.values(stepError).filter(Boolean).join("; ")}</p>}
      {!isEmptyEdit(edit) && (
        <button type="button" className="linkish" onClick={() => { setEdit(NO_EDIT); setStepText({}); setStepError({}); setResets(resets + 1); }}>
          restore the instance
        </button>
      )}
      <div className="inst-whatif-answer" aria-live="polite" data-testid="whatif-answer">
        {isEmptyEdit(edit) ? (
          <p className="note">Untick a modality, mask words or steps, or swap a modality with another instance's: the model answers here.</p>
        ) : error ? (
          <p className="warning">{error}</p>
        ) : answer ? (
          <>
            <p>
              prediction <b>{fmt(props.storedPrediction)}</b> → <b data-testid="whatif-prediction">{fmt(answer.prediction)}</b>{" "}
              <span className="sub">({(answer.seconds * 1000).toFixed(0)} ms{busy ? ", updating…" : ""})</span>
            </p>
            <table className="inst-shap-compare">
              <thead>
                <tr>
                  <th>Shapley</th>
                  <th>stored</th>
                  <th>what-if</th>
                </tr>
              </thead>
              <tbody>
                {props.modalities.map((m) => (
                  <tr key={m}>
                    <td>{m}</td>
                    <td style={{ background: diverging(stored.get(m) ?? 0, scale) }}>{fmt(stored.get(m))}</td>
                    <td style={{ background: diverging(newShap.get(m) ?? 0, scale) }}>{fmt(newShap.get(m))}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </>
        ) : (
          <p className="note">asking the model…</p>
        )}
      </div>
    </div>
  );
}
