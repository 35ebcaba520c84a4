import { useEffect, useMemo, useState } from "react";
import { getJSON, paths, useDocument } from "./api";
import { Empty, ErrorBox, Loading } from "./components/common";
import { loadInstanceTable } from "./loadTable";
import { StoreProvider, useStore, type RunData } from "./store";
import type { Manifest, RunInfo } from "./types";
import { CompareView } from "./views/Compare";
import { FeaturesView } from "./views/Features";
import { InstanceView } from "./views/Instance";
import { ProjectionView } from "./views/Projection";
import { SummaryView } from "./views/Summary";
import { TemplatesView } from "./views/Templates";
import { SlicesView } from "./views/Slices";
import { useUrlSync, type Tab } from "./useUrlSync";
import { writeParams } from "./urlState";

function initialRun(runs: RunInfo[]): string | null {
  const wanted = new URLSearchParams(window.location.search).get("run");
  if (wanted && runs.some((r) => r.id === wanted)) return wanted;
  return (runs.find((r) => r.kind === "interaction") ?? runs[0])?.id ?? null;
}

export function App() {
  const runsDoc = useDocument<RunInfo[]>(paths.runs());
  const [runId, setRunId] = useState<string | null>(null);
  useEffect(() => {
    if (runsDoc.status === "ready" && runId === null) setRunId(initialRun(runsDoc.data));
  }, [runsDoc, runId]);
  // back/forward across a run change: the run of that history entry
  useEffect(() => {
    if (runsDoc.status !== "ready") return;
    const onPop = () => setRunId(initialRun(runsDoc.data));
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, [runsDoc]);

  if (runsDoc.status === "error") return <Shell><ErrorBox error={runsDoc.error} hint="Start the app with `modalens serve RUN_DIR`." /></Shell>;
  if (runsDoc.status !== "ready") return <Shell><Loading what="runs" /></Shell>;
  const runs = runsDoc.data;
  if (runs.length === 0) return <Shell><Empty title="No runs are being served" hint="Start the app with `modalens serve RUN_DIR [RUN_DIR ...]`." /></Shell>;
  const info = runs.find((r) => r.id === runId) ?? null;
  const picker = (
    <label className="run-picker">
      Run{" "}
      <select value={runId ?? ""} onChange={(e) => { setRunId(e.target.value); writeParams({ run: e.target.value, tab: null, slice: null, sel: null, open: null }, { push: true }); }} aria-label="run" data-testid="run-picker">
        {runs.map((r) => (
          <option key={r.id} value={r.id}>
            {r.name} · {r.kind}
            {r.model ? ` · ${r.model}` : ""}
            {r.n_instances != null ? ` · N=${r.n_instances.toLocaleString()}` : ""}
          </option>
        ))}
      </select>
    </label>
  );
  if (!info) return <Shell picker={picker}><Loading what="run" /></Shell>;
  if (info.kind === "features") return <Shell picker={picker}><FeaturesView key={info.id} run={info} runs={runs} /></Shell>;
  return <InteractionRun key={info.id} info={info} runs={runs} picker={picker} />;
}

function Shell(props: { picker?: React.ReactNode; children: React.ReactNode; nav?: React.ReactNode; bar?: React.ReactNode }) {
  return (
    <div className="app">
      <header className="top">
        <h1>
          modal<span>ens</span>
        </h1>
        {props.picker}
        {props.nav}
      </header>
      {props.bar}
      <main>{props.children}</main>
    </div>
  );
}

function InteractionRun(props: { info: RunInfo; runs: RunInfo[]; picker: React.ReactNode }) {
  const [data, setData] = useState<RunData | { error: string } | null>(null);
  useEffect(() => {
    let live = true;
    const t0 = performance.now();
    Promise.all([getJSON<Manifest>(paths.manifest(props.info.id)), loadInstanceTable(props.info.id)]).then(
      ([manifest, table]) => {
        if (!live) return;
        const kinds: Record<string, string> = {};
        for (const m of manifest.dataset?.modalities ?? []) kinds[m.name] = m.kind;
        setData({ info: props.info, manifest, table, kinds });
        (window as unknown as { __modalensLoadMs?: number }).__modalensLoadMs = performance.now() - t0;
      },
      (err: unknown) => live && setData({ error: err instanceof Error ? err.message : String(err) }),
    );
    return () => {
      live = false;
    };
  }, [props.info]);
  if (data === null) return <Shell picker={props.picker}><Loading what={`${props.info.name} (${props.info.n_instances?.toLocaleString() ?? "?"} instances)`} /></Shell>;
  if ("error" in data) return <Shell picker={props.picker}><ErrorBox error={data.error} hint="Check that the run directory is complete (modalens writes runs atomically; a run from another version may need re-running)." /></Shell>;
  if (data.table.n === 0) return <Shell picker={props.picker}><Empty title="This run explains no instances" hint="Run explain() on a non-empty dataset." /></Shell>;
  return (
    <StoreProvider run={data} runs={props.runs}>
      <Explorer picker={props.picker} />
    </StoreProvider>
  );
}

function Explorer(props: { picker: React.ReactNode }) {
  const [tab, setTab] = useState<Tab>("explore");
  const { run, sel, dispatch } = useStore();
  const linkProblem = useUrlSync(tab, setTab);
  const goTab = (t: Tab) => {
    setTab(t);
    writeParams({ tab: t === "explore" ? null : t }, { push: true }); // back returns to the other tab
  };
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape" && !(e.target instanceof HTMLSelectElement) && !(e.target instanceof HTMLInputElement)) dispatch({ type: "clear" });
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [dispatch]);
  const nav = (
    <nav className="tabs" role="tablist" aria-label="views">
      {(["explore", "compare"] as Tab[]).map((t) => (
        <button key={t} type="button" role="tab" aria-selected={tab === t} onClick={() => goTab(t)} data-tab={t}>
          {t === "explore" ? "Explore" : "Compare"}
        </button>
      ))}
    </nav>
  );
  const n = run.table.n;
  const bar = useMemo(
    () => (
      <div className="selection-bar" role="status" aria-live="polite" data-testid="selection-bar">
        <span>
          <b>{run.info.dataset ?? run.info.name}</b> · {run.info.model ?? "model"} · {run.table.modalities.join(" + ")}
        </span>
        <span className="sel-count" data-testid="selection-count">
          {sel.selected ? (
            <>
              <b>{sel.selected.length.toLocaleString()}</b> of {n.toLocaleString()} selected <span className="sub">({sel.source})</span>
            </>
          ) : (
            <>All {n.toLocaleString()} instances (no selection)</>
          )}
        </span>
        {sel.selected && (
          <button type="button" onClick={() => dispatch({ type: "clear" })} data-testid="clear-selection">
            Clear selection (Esc)
          </button>
        )}
        {linkProblem && (
          <span className="warning" data-testid="link-problem">
            {linkProblem}
          </span>
        )}
      </div>
    ),
    [sel.selected, sel.source, n, run, dispatch, linkProblem],
  );
  return (
    <Shell picker={props.picker} nav={nav} bar={bar}>
      {tab === "explore" ? (
        <div className="explore">
          <div className="col-full">
            <SlicesView />
          </div>
          <div className="explore-top">
            <div className="col-left">
              <SummaryView />
            </div>
            <div className="col-mid">
              <ProjectionView />
            </div>
            <div className="col-right">
              <TemplatesView />
            </div>
          </div>
          <div className="col-full">
            <InstanceView />
          </div>
        </div>
      ) : (
        <div className="compare-page">
          <CompareView />
          <InstanceView />
        </div>
      )}
    </Shell>
  );
}
