// Global feature importance per modality: mean |attribution| of each named feature and word, with its support (the
// instances where it occurs) and a minimum-support filter, for all instances and for the current selection.

import { useEffect, useMemo, useState } from "react";
import { embeddedData, useDocument } from "../api";
import { useAfterFirstPaint } from "../firstPaint";
import { modalityColor } from "../colors";
import { byKey, hiddenBySupport, importancePath, itemKey, rankImportance, type ImportanceDoc, type ImportanceItem } from "../importance";
import { useSettledSelection, useStore } from "../store";
import { fmt } from "../stats";
import "./FeatureImportance.css";

const TOP = 15;
const DEFAULT_MIN_SUPPORT = 2; // words seen once would top the ranking on a single, unrepeatable attribution

type Kind = "feature" | "word";

async function postImportance(run: string, body: unknown, signal?: AbortSignal): Promise<ImportanceDoc> {
  const res = await fetch(importancePath(run), {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    signal,
  });
  if (!res.ok) {
    let detail = res.statusText;
    try {
      detail = (await res.json()).error ?? detail;
    } catch {
      /* not JSON */
    }
    throw new Error(detail);
  }
  return (await res.json()) as ImportanceDoc;
}

/** The selection's document from the server (debounced, stale answers dropped); null without a selection. */
function useSelectionImportance(run: string, selected: Int32Array | null, enabled: boolean): { doc: ImportanceDoc | null; error: string | null; loading: boolean } {
  const [state, setState] = useState<{ doc: ImportanceDoc | null; error: string | null; loading: boolean }>({ doc: null, error: null, loading: false });
  useEffect(() => {
    if (!selected || !enabled) {
      setState({ doc: null, error: null, loading: false });
      return;
    }
    const ctl = new AbortController();
    setState((s) => (s.loading ? s : { ...s, loading: true }));
    let idle = 0;
    const send = () =>
      postImportance(run, { indices: Array.from(selected) }, ctl.signal).then(
        (doc) => setState({ doc, error: null, loading: false }),
        (err: unknown) => {
          if (!ctl.signal.aborted) setState({ doc: null, error: err instanceof Error ? err.message : String(err), loading: false });
        },
      );
    // the request's body (the selection as JSON, ~10 ms at 25,000 indices) is built once the page is idle, so it
    // does not hold up the panels that are still catching up with the same selection
    const timer = window.setTimeout(() => {
      if (typeof window.requestIdleCallback === "function") idle = window.requestIdleCallback(send, { timeout: 300 });
      else send();
    }, 120);
    return () => {
      ctl.abort();
      window.clearTimeout(timer);
      if (idle && typeof window.cancelIdleCallback === "function") window.cancelIdleCallback(idle);
    };
  }, [run, selected, enabled]);
  return state;
}

export function FeatureImportanceView() {
  const { run, sel, dispatch } = useStore();
  const { selected: settled } = useSettledSelection(); // the request follows the selection the panels show
  const runId = run.info.id;
  const global = useDocument<ImportanceDoc>(useAfterFirstPaint(runId, importancePath(runId))); // after the first screen
  const exported = embeddedData() !== null;
  const selection = useSelectionImportance(runId, settled, !exported && global.status === "ready");
  const items = global.status === "ready" ? global.data.features : [];
  const modalities = useMemo(() => run.table.modalities.filter((m) => items.some((d) => d.modality === m)), [items, run.table.modalities]);
  const [modality, setModality] = useState<string | null>(null);
  const [kind, setKind] = useState<Kind | null>(null);
  const [minSupport, setMinSupport] = useState(DEFAULT_MIN_SUPPORT);
  const mod = modality && modalities.includes(modality) ? modality : (modalities[0] ?? null);
  const kinds = useMemo(() => (["word", "feature"] as Kind[]).filter((k) => items.some((d) => d.modality === mod && d.kind === k)), [items, mod]);
  const k = kind && kinds.includes(kind) ? kind : (kinds[0] ?? null);
  const subset = sel.selected !== null && selection.doc !== null;
  const selMap = useMemo(() => byKey(selection.doc?.features), [selection.doc]);
  // ranked by the selection when there is one (its own support), else by all instances
  const ranked = useMemo(
    () => rankImportance(subset ? selection.doc!.features : items, { modality: mod, kind: k, minSupport, limit: TOP }),
    [subset, selection.doc, items, mod, k, minSupport],
  );
  const allMap = useMemo(() => byKey(items), [items]);
  const hidden = useMemo(() => hiddenBySupport(subset ? selection.doc!.features : items, mod, k, minSupport), [subset, selection.doc, items, mod, k, minSupport]);
  const maxAbs = Math.max(1e-12, ...ranked.map((d) => Math.max(d.mean_abs, allMap.get(itemKey(d))?.mean_abs ?? 0)));
  const [busy, setBusy] = useState<string | null>(null);

  if (global.status === "error") {
    const missing = /feature_attributions/.test(global.error);
    return (
      <div className="feature-importance" data-testid="feature-importance">
        <h3>Feature importance</h3>
        <p className="not-computed" role="status" data-testid="importance-missing">
          {missing ? (
            <>
              Not computed for this run: it has no feature attributions. Run <code>modalens explain DATA --model MODEL --feature-method permutation</code>.
            </>
          ) : (
            global.error
          )}
        </p>
      </div>
    );
  }
  if (global.status !== "ready") return <p className="note">Loading feature importance…</p>;

  const selectMembers = (d: ImportanceItem) => {
    if (exported) return;
    setBusy(itemKey(d));
    postImportance(runId, { members_of: { modality: d.modality, feature: d.feature, kind: d.kind } }).then(
      (doc) => {
        setBusy(null);
        dispatch({ type: "select", indices: doc.members ?? [], source: `${d.kind}: ${d.modality} ${d.feature}` });
      },
      () => setBusy(null),
    );
  };
  const color = mod ? modalityColor(mod, run.kinds[mod]) : "#999";

  return (
    <div className="feature-importance" data-testid="feature-importance">
      <h3>
        Feature importance <span className="sub">mean |attribution| · n = instances where it occurs</span>
      </h3>
      <div className="fi-controls">
        <label>
          modality{" "}
          <select value={mod ?? ""} onChange={(e) => setModality(e.target.value)} data-testid="fi-modality">
            {modalities.map((m) => (
              <option key={m} value={m}>
                {m}
              </option>
            ))}
          </select>
        </label>
        {kinds.length > 1 && (
          <span className="fi-kinds" role="radiogroup" aria-label="words or named features">
            {kinds.map((x) => (
              <button type="button" key={x} role="radio" aria-checked={x === k} className={x === k ? "on" : ""} onClick={() => setKind(x)} data-kind={x}>
                {x === "word" ? "words" : "features"}
              </button>
            ))}
          </span>
        )}
        <label title="leave out items that occur in fewer instances">
          min. support{" "}
          <input
            type="number"
            min={1}
            value={minSupport}
            onChange={(e) => setMinSupport(Math.max(1, Math.floor(Number(e.target.value) || 1)))}
            data-testid="fi-min-support"
          />
        </label>
      </div>
      {selection.error && <p className="note warn">Selection: {selection.error}</p>}
      {exported && sel.selected && <p className="note">This export shows the importance over all instances only; serve the run for a selection's.</p>}
      <div className="bars" role="list" data-testid="fi-list">
        {ranked.map((d) => {
          const all = allMap.get(itemKey(d));
          const inSel = selMap.get(itemKey(d));
          const shown = subset ? inSel : all;
          const clickable = d.kind === "word" && !exported;
          const Row = clickable ? "button" : "div";
          return (
            <Row
              {...(clickable ? { type: "button" as const, onClick: () => selectMembers(d), "aria-label": `select the instances with the word ${d.feature}` } : {})}
              className={`bar-row${clickable ? " as-button" : ""}${busy === itemKey(d) ? " busy" : ""}`}
              role="listitem"
              key={itemKey(d)}
              data-item={d.feature}
              data-support={shown?.support}
            >
              <span className="bar-label fi-label" title={d.feature}>
                {d.feature}
              </span>
              <span className="bar-track">
                <span className="bar" style={{ width: `${(100 * (all?.mean_abs ?? 0)) / maxAbs}%`, background: color, opacity: subset ? 0.35 : 1 }} />
                {subset && inSel && <span className="bar overlay" style={{ width: `${(100 * inSel.mean_abs) / maxAbs}%`, background: color }} />}
              </span>
              <span className="bar-value" title={`mean ${fmt(shown?.mean)} · ${shown?.count ?? 0} occurrences${subset && all ? ` · all: ${fmt(all.mean_abs)}, n=${all.support}` : ""}`}>
                {fmt(shown?.mean_abs)} <span className="sub">n={shown?.support ?? 0}</span>
              </span>
            </Row>
          );
        })}
        {ranked.length === 0 && <p className="note">Nothing occurs in {minSupport} or more {subset ? "selected " : ""}instances.</p>}
      </div>
      <p className="note" data-testid="fi-hidden">
        {hidden > 0 ? `${hidden.toLocaleString()} ${k === "word" ? "words" : "features"} seen in fewer than ${minSupport} instances hidden. ` : ""}
        {subset ? `Ranked within the ${selection.doc!.n_instances.toLocaleString()} selected instances; pale bars: all instances.` : `Over all ${global.data.n_instances.toLocaleString()} instances.`}
        {k === "word" && !exported ? " Click a word to select the instances where it occurs." : ""}
      </p>
    </div>
  );
}
