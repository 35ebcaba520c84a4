// The filter builder: conditions on label, prediction, error, |error|, type, dominant modality, metadata, word and id,
// AND-ed; the result becomes the selection (replace, add or intersect). Named slices are saved in the user's folder
// by the server (localStorage in an HTML export); the selection can be downloaded as CSV or Parquet.

import { useEffect, useMemo, useState } from "react";
import { embeddedData } from "../api";
import { Panel } from "../components/common";
import { applyFilter, decodeFilter, describeCondition, describeFilter, encodeFilter, filterFields, missingColumns, normaliseFilter, relaxations, type Columns, type Condition, type FilterField, type FilterSpec } from "../filters";
import { columnsFor, deleteSlice, exportSelection, listSlices, nameProblem, saveSlice, type SavedSlice } from "../sliceApi";
import { fmt } from "../stats";
import { useStore } from "../store";
import { encodeSelection } from "../urlState";
import "./Slices.css";

/** A condition being edited: numbers as typed (a half-typed "-" is not yet a number). */
interface Draft {
  key: number;
  column: string;
  min: string;
  max: string;
  values: (string | null)[];
  text: string;
  exact: boolean; // id: exact or prefix
}

let nextKey = 1;

function emptyDraft(column: string): Draft {
  return { key: nextKey++, column, min: "", max: "", values: [], text: "", exact: false };
}

function toDraft(c: Condition): Draft {
  const d = emptyDraft(c.column);
  if (c.op === "range") return { ...d, min: c.min === null ? "" : String(c.min), max: c.max === null ? "" : String(c.max) };
  if (c.op === "in") return c.column === "id" && c.values.length === 1 && c.values[0] !== null ? { ...d, text: c.values[0], exact: true } : { ...d, values: c.values };
  return { ...d, text: c.text };
}

function toCondition(d: Draft, field: FilterField | undefined): Condition | null {
  const kind = field?.kind ?? "text";
  const number = (s: string) => (s.trim() === "" || !Number.isFinite(Number(s)) ? null : Number(s));
  if (kind === "range") {
    const min = number(d.min);
    const max = number(d.max);
    return min === null && max === null ? null : { column: d.column, op: "range", min, max };
  }
  if (kind === "set") return d.values.length ? { column: d.column, op: "in", values: d.values } : null;
  if (d.text === "") return null;
  if (kind === "id") return d.exact ? { column: "id", op: "in", values: [d.text] } : { column: "id", op: "prefix", text: d.text };
  return { column: d.column, op: "contains", text: d.text };
}

export function SlicesView() {
  const { run, sel, dispatch } = useStore();
  const t = run.table;
  const fields = useMemo(() => filterFields(t), [t]);
  const byColumn = useMemo(() => new Map(fields.map((f) => [f.column, f])), [fields]);
  const [drafts, setDrafts] = useState<Draft[]>([]);
  // the complete conditions, each with the draft it came from
  const complete = useMemo(() => drafts.flatMap((d) => {
    const c = toCondition(d, byColumn.get(d.column));
    return c ? [{ key: d.key, c }] : [];
  }), [drafts, byColumn]);
  const spec: FilterSpec = useMemo(() => ({ conditions: complete.map((x) => x.c) }), [complete]);
  const encoded = useMemo(() => encodeFilter(spec), [spec]);

  // a filter that arrives from elsewhere (a link, a saved slice, "drop this condition") is shown here
  useEffect(() => {
    if (sel.filter === null || sel.filter === encoded) return;
    try {
      setDrafts(decodeFilter(sel.filter).conditions.map(toDraft));
    } catch {
      /* a bad filter in a link: the selection bar says so */
    }
  }, [sel.filter]);

  // the columns the filter reads (the utterance texts load on first use)
  const needText = missingColumns(spec, t.columns).includes("text");
  const [cols, setCols] = useState<{ cols: Columns; error: string | null }>({ cols: t.columns, error: null });
  useEffect(() => {
    if (!needText) return;
    let live = true;
    columnsFor(run.info.id, t, true).then(
      (c) => live && setCols({ cols: c, error: c.text ? null : "this run stores no utterance texts" }),
      (e: unknown) => live && setCols({ cols: t.columns, error: `the texts cannot be loaded: ${e instanceof Error ? e.message : String(e)}` }),
    );
    return () => {
      live = false;
    };
  }, [needText, run.info.id, t]);

  const preview = useMemo(() => {
    if (spec.conditions.length === 0) return null;
    if (missingColumns(spec, cols.cols).length) return null;
    const t0 = performance.now();
    const idx = applyFilter(spec, cols.cols, t.n);
    return { idx, ms: performance.now() - t0 };
  }, [spec, cols, t.n]);
  const relax = useMemo(() => (preview && preview.idx.length === 0 ? relaxations(spec, cols.cols, t.n) : null), [preview, spec, cols, t.n]);

  const apply = (mode: "replace" | "add" | "intersect") => {
    if (!preview) return;
    dispatch({ type: "select", indices: preview.idx, source: `filter: ${describeFilter(spec)}`, mode, filter: encoded });
  };
  const update = (key: number, patch: Partial<Draft>) => setDrafts((ds) => ds.map((d) => (d.key === key ? { ...d, ...patch } : d)));
  const dropCondition = (k: number) => setDrafts((ds) => ds.filter((d) => d.key !== complete[k]?.key));

  return (
    <Panel title="Slices" id="slices" className="slices-panel" actions={<SelectionExport />}>
      <div className="slice-builder" data-testid="slice-builder">
        {drafts.length === 0 && <p className="note">Filter the instances: add a condition (label, prediction, error, type, dominant modality, metadata, word, id). Conditions are combined with “and”.</p>}
        {drafts.map((d) => (
          <ConditionRow key={d.key} d={d} fields={fields} field={byColumn.get(d.column)} onChange={(p) => update(d.key, p)} onRemove={() => setDrafts((ds) => ds.filter((x) => x.key !== d.key))} />
        ))}
        <div className="slice-actions">
          <label>
            <select
              value=""
              aria-label="add a condition on"
              data-testid="add-condition"
              onChange={(e) => {
                if (e.target.value) setDrafts((ds) => [...ds, emptyDraft(e.target.value)]);
              }}
            >
              <option value="">+ condition on…</option>
              {fields.map((f) => (
                <option key={f.column} value={f.column}>
                  {f.label}
                </option>
              ))}
            </select>
          </label>
          <span className="slice-count" data-testid="filter-count" role="status">
            {cols.error && needText ? (
              <span className="warning-text">{cols.error}</span>
            ) : preview ? (
              <>
                <b>{preview.idx.length.toLocaleString()}</b> of {t.n.toLocaleString()} match <span className="sub">({preview.ms.toFixed(0)} ms)</span>
              </>
            ) : spec.conditions.length ? (
              "loading texts…"
            ) : null}
          </span>
          <button type="button" className="primary" disabled={!preview} onClick={() => apply("replace")} data-testid="apply-filter">
            Select
          </button>
          <button type="button" disabled={!preview || !sel.selected} onClick={() => apply("add")} title="add the matches to the current selection">
            Add
          </button>
          <button type="button" disabled={!preview || !sel.selected} onClick={() => apply("intersect")} title="keep only selected instances that match">
            Intersect
          </button>
          {drafts.length > 0 && (
            <button type="button" onClick={() => setDrafts([])}>
              Reset
            </button>
          )}
        </div>
        {preview && preview.idx.length === 0 && (
          <div className="no-match inline" role="status" data-testid="builder-no-match">
            <strong>No instance matches: {describeFilter(spec)}</strong>{" "}
            {relax?.map((r) => (
              <button key={r.index} type="button" onClick={() => dropCondition(r.index)}>
                drop “{describeCondition(spec.conditions[r.index])}” → {r.count.toLocaleString()}
              </button>
            ))}
          </div>
        )}
        <SavedSlices spec={spec} onLoad={(s) => setDrafts(s.conditions.map(toDraft))} />
      </div>
    </Panel>
  );
}

function ConditionRow(props: { d: Draft; fields: FilterField[]; field: FilterField | undefined; onChange: (p: Partial<Draft>) => void; onRemove: () => void }) {
  const { d, field } = props;
  const kind = field?.kind ?? "text";
  return (
    <div className="condition" data-column={d.column}>
      <select value={d.column} onChange={(e) => props.onChange({ column: e.target.value, min: "", max: "", values: [], text: "" })} aria-label="condition column">
        {props.fields.map((f) => (
          <option key={f.column} value={f.column}>
            {f.label}
          </option>
        ))}
      </select>
      {kind === "range" && (
        <span className="range">
          <input type="number" step="any" value={d.min} placeholder={field?.min != null ? `min ${fmt(field.min)}` : "min"} onChange={(e) => props.onChange({ min: e.target.value })} aria-label={`${field?.label} at least`} data-bound="min" />
          <span>≤ {field?.label} ≤</span>
          <input type="number" step="any" value={d.max} placeholder={field?.max != null ? `max ${fmt(field.max)}` : "max"} onChange={(e) => props.onChange({ max: e.target.value })} aria-label={`${field?.label} at most`} data-bound="max" />
        </span>
      )}
      {kind === "set" && (
        <span className="chips" role="group" aria-label={`${field?.label} is one of`}>
          {(field?.values ?? []).map((v) => {
            const on = d.values.includes(v.value);
            return (
              <button
                type="button"
                key={String(v.value)}
                aria-pressed={on}
                className="fchip"
                data-value={v.value ?? ""}
                onClick={() => props.onChange({ values: on ? d.values.filter((x) => x !== v.value) : [...d.values, v.value] })}
              >
                {v.value ?? "missing"} <span className="sub">{v.count.toLocaleString()}</span>
              </button>
            );
          })}
        </span>
      )}
      {kind === "id" && (
        <select value={d.exact ? "exact" : "prefix"} onChange={(e) => props.onChange({ exact: e.target.value === "exact" })} aria-label="id match">
          <option value="prefix">starts with</option>
          <option value="exact">is exactly</option>
        </select>
      )}
      {(kind === "text" || kind === "id") && (
        <input type="search" value={d.text} placeholder={kind === "id" ? "id" : "contains (any case)"} onChange={(e) => props.onChange({ text: e.target.value })} aria-label={`${field?.label ?? d.column} ${kind === "id" ? "id" : "contains"}`} maxLength={200} />
      )}
      <button type="button" className="remove" onClick={props.onRemove} aria-label={`remove the condition on ${field?.label ?? d.column}`}>
        ×
      </button>
    </div>
  );
}

function SavedSlices(props: { spec: FilterSpec; onLoad: (s: FilterSpec) => void }) {
  const { run, dispatch } = useStore();
  const [slices, setSlices] = useState<SavedSlice[] | null>(null);
  const [name, setName] = useState("");
  const [message, setMessage] = useState<string | null>(null);
  const refresh = () =>
    listSlices(run.info).then(
      (s) => setSlices(s),
      (e: unknown) => setMessage(`saved slices cannot be read: ${e instanceof Error ? e.message : String(e)}`),
    );
  useEffect(() => {
    void refresh();
  }, [run.info.id]);
  const problem = name === "" ? null : nameProblem(name);
  const save = () => {
    saveSlice(run.info, name, props.spec).then(
      () => {
        setMessage(`saved “${name}”${embeddedData() ? " in this browser" : ""}`);
        setName("");
        void refresh();
      },
      (e: unknown) => setMessage(e instanceof Error ? e.message : String(e)),
    );
  };
  const load = async (s: SavedSlice) => {
    try {
      const spec = normaliseFilter(s.filter);
      props.onLoad(spec);
      const cols = await columnsFor(run.info.id, run.table, missingColumns(spec, run.table.columns).length > 0);
      dispatch({ type: "select", indices: applyFilter(spec, cols, run.table.n), source: `slice “${s.name}”: ${describeFilter(spec)}`, filter: encodeFilter(spec) });
      setMessage(null);
    } catch (e) {
      setMessage(`slice “${s.name}”: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  return (
    <div className="saved-slices" data-testid="saved-slices">
      <span className="sub">Saved{embeddedData() ? " in this browser" : ""}:</span>
      {slices === null ? null : slices.length === 0 ? (
        <span className="sub">none yet</span>
      ) : (
        slices.map((s) => (
          <span key={s.name} className="saved" title={describeFilter(s.filter)}>
            <button type="button" onClick={() => void load(s)} data-slice={s.name}>
              {s.name}
            </button>
            <button
              type="button"
              className="remove"
              aria-label={`delete slice ${s.name}`}
              onClick={() =>
                deleteSlice(run.info, s.name).then(
                  () => void refresh(),
                  (e: unknown) => setMessage(e instanceof Error ? e.message : String(e)),
                )
              }
            >
              ×
            </button>
          </span>
        ))
      )}
      <span className="save-as">
        <input value={name} onChange={(e) => setName(e.target.value)} placeholder="name this filter" aria-label="slice name" maxLength={80} data-testid="slice-name" />
        <button type="button" disabled={!name || problem !== null || props.spec.conditions.length === 0} onClick={save} data-testid="save-slice" title={problem ?? "save the filter under this name"}>
          Save slice
        </button>
      </span>
      {problem && <span className="warning-text">{problem}</span>}
      {message && <span className="sub" role="status">{message}</span>}
    </div>
  );
}

/** Download of the selection (the whole run without one), and whether the selection fits in a link. */
function SelectionExport() {
  const { run, sel } = useStore();
  const [state, setState] = useState<string | null>(null);
  const idx = useMemo(() => sel.selected ?? Int32Array.from({ length: run.table.n }, (_, i) => i), [sel.selected, run.table.n]);
  const go = (format: "csv" | "parquet") => {
    setState("preparing…");
    exportSelection(run.info, run.table, idx, format).then(
      (name) => setState(`downloaded ${name}`),
      (e: unknown) => setState(e instanceof Error ? e.message : String(e)),
    );
  };
  const tooLarge = useMemo(() => sel.selected !== null && sel.filter === null && encodeSelection(sel.selected) === null, [sel.selected, sel.filter]);
  return (
    <span className="selection-export">
      <span className="sub">{sel.selected ? `${sel.selected.length.toLocaleString()} selected` : "all instances"}:</span>
      <button type="button" onClick={() => go("csv")} data-testid="export-csv">
        CSV
      </button>
      {!embeddedData() && (
        <button type="button" onClick={() => go("parquet")} data-testid="export-parquet">
          Parquet
        </button>
      )}
      {tooLarge && <span className="warning-text" data-testid="link-too-large">selection too large for a link (save it as a slice instead)</span>}
      {state && <span className="sub" role="status">{state}</span>}
    </span>
  );
}
