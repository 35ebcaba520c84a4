import { useMemo, useState } from "react";
import { ApiError, embeddedData, getJSON, paths, useDocument } from "../api";
import { Empty, ErrorBox, Loading, Panel } from "../components/common";
import { CATEGORIES, categoryColor } from "../featureStats";
import { fmt, pct } from "../stats";
import type { Cell, RunInfo, TableJSON } from "../types";
import { runImageUrl } from "./FeatureCard";
import type { Derived, FeatureDoc } from "./Features";

interface QueryResult {
  sample: number | null;
  modality: string;
  text: string | null;
  label: string | null;
  image: string | null;
  source: string;
  n_active: number;
  features: { feature: number; activation: number; share: number; category: string; stable: boolean; mds: number | null; label: string | null }[];
  category_mass: Record<string, number>;
}

type Ask = { kind: "sample"; sample: number; modality: string } | { kind: "text"; text: string } | { kind: "upload"; dataUrl: string; name: string };

const PAGE = 40;

async function postQuery(runId: string, body: Record<string, string>): Promise<QueryResult> {
  if (embeddedData()) throw new ApiError("New inputs need the live server (modalens serve RUN --model ...), not an exported file.", 0);
  const res = await fetch(`${paths.manifest(runId)}/query`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const doc = await res.json().catch(() => ({}));
  if (!res.ok) throw new ApiError(doc.error ?? doc.detail ?? res.statusText, res.status);
  return doc as QueryResult;
}

export function FeatureQuery({ run, d, derived, onPick }: { run: RunInfo; d: FeatureDoc; derived: Derived; onPick: (f: number) => void }) {
  const samples = useDocument<TableJSON>(paths.table(run.id, "samples"));
  const [text, setText] = useState("");
  const [page, setPage] = useState(0);
  const [ask, setAsk] = useState<Ask | null>(null);
  const [result, setResult] = useState<{ status: "idle" | "loading" | "error" | "ready"; data?: QueryResult; error?: string }>({ status: "idle" });

  const captions = useMemo(() => {
    if (samples.status !== "ready") return [];
    return [...new Set((samples.data.columns.text ?? []).filter((t): t is string => typeof t === "string"))].slice(0, 3000);
  }, [samples]);
  const withImages = useMemo(() => {
    if (samples.status !== "ready") return [] as number[];
    const c = samples.data.columns;
    return (c.sample ?? []).map(Number).filter((_, i) => typeof c.image?.[i] === "string");
  }, [samples]);

  const run_ = (a: Ask) => {
    setAsk(a);
    setResult({ status: "loading" });
    const p: Promise<QueryResult> =
      a.kind === "sample"
        ? getJSON<QueryResult>(`${paths.manifest(run.id)}/query?sample=${a.sample}&modality=${a.modality}`)
        : a.kind === "text"
          ? getJSON<QueryResult>(`${paths.manifest(run.id)}/query?text=${encodeURIComponent(a.text)}`)
          : postQuery(run.id, { image: a.dataUrl });
    p.then(
      (data) => setResult({ status: "ready", data }),
      (err: unknown) => setResult({ status: "error", error: err instanceof Error ? err.message : String(err) }),
    );
  };
  const upload = (file: File | undefined) => {
    if (!file) return;
    const reader = new FileReader();
    reader.onload = () => run_({ kind: "upload", dataUrl: String(reader.result), name: file.name });
    reader.readAsDataURL(file);
  };
  const index = useMemo(() => new Map((d.columns.feature ?? []).map((f, i) => [Number(f), i])), [d]);
  if (embeddedData())
    return (
      <Panel title="Query" id="feature-query">
        <Empty title="The query needs the live server" hint={<>This is an exported file. Open the run with <code>modalens serve RUN</code> to ask which features fire on an image or a caption.</>} />
      </Panel>
    );
  if (!d.has_codes)
    return (
      <Panel title="Query" id="feature-query">
        <Empty title="This run stores no codes" hint="Re-run the study (store_codes is on by default) to look up which features fire on a sample." />
      </Panel>
    );
  return (
    <div className="query-grid">
      <Panel title="Ask: which features fire on…" id="feature-query">
        <form
          className="query-form"
          onSubmit={(e) => {
            e.preventDefault();
            if (text.trim()) run_({ kind: "text", text: text.trim() });
          }}
        >
          <label>
            a caption{" "}
            <input list="run-captions" value={text} onChange={(e) => setText(e.target.value)} size={42} placeholder="type or pick one of the run's captions" aria-label="caption to query" data-testid="query-text" />
          </label>
          <datalist id="run-captions">
            {captions.map((c) => (
              <option key={c} value={c} />
            ))}
          </datalist>
          <button type="submit" data-testid="query-go">
            Show features
          </button>
        </form>
        <p className="note">A caption of the run is looked up in the run; any other caption, and a new image, need the server started with the run's model (modalens serve RUN --model two-tower).</p>
        <label className="upload">
          a new image <input type="file" accept="image/*" onChange={(e) => upload(e.target.files?.[0])} aria-label="upload an image" />
        </label>
        <h3>
          or an image of the run <span className="sub">{withImages.length.toLocaleString()} stored</span>
        </h3>
        {samples.status === "error" ? (
          <Empty title="This run has no samples table" hint={samples.error} />
        ) : samples.status !== "ready" ? (
          <Loading what="samples" />
        ) : withImages.length === 0 ? (
          <Empty title="No images are stored with this run" />
        ) : (
          <>
            <div className="image-picker" data-testid="image-picker">
              {withImages.slice(page * PAGE, (page + 1) * PAGE).map((s) => {
                const c = samples.data.columns;
                const i = (c.sample ?? []).findIndex((x) => Number(x) === s);
                const url = runImageUrl(run.id, String(c.image?.[i]).split("/").pop() ?? "");
                const active = ask?.kind === "sample" && ask.sample === s && ask.modality === "image";
                return (
                  <button type="button" key={s} className={active ? "active" : ""} onClick={() => run_({ kind: "sample", sample: s, modality: "image" })} data-sample={s} title={`sample ${s}: ${String(c.label?.[i] ?? "")}`}>
                    {url && <img src={url} alt={`sample ${s}`} />}
                  </button>
                );
              })}
            </div>
            <div className="panel-actions">
              <button type="button" disabled={page === 0} onClick={() => setPage(page - 1)}>
                ‹ previous
              </button>
              <span>
                {page * PAGE + 1}–{Math.min(withImages.length, (page + 1) * PAGE)} of {withImages.length}
              </span>
              <button type="button" disabled={(page + 1) * PAGE >= withImages.length} onClick={() => setPage(page + 1)}>
                next ›
              </button>
            </div>
          </>
        )}
      </Panel>
      <Panel title="Features that fire" id="query-result">
        {result.status === "idle" && <Empty title="Nothing asked yet" hint="Type a caption or click an image on the left." />}
        {result.status === "loading" && <Loading what="the features" />}
        {result.status === "error" && <ErrorBox error={result.error ?? ""} />}
        {result.status === "ready" && result.data && <QueryAnswer q={result.data} run={run} derived={derived} index={index} onPick={onPick} ask={ask} />}
      </Panel>
    </div>
  );
}

function QueryAnswer({ q, run, derived, index, onPick, ask }: { q: QueryResult; run: RunInfo; derived: Derived; index: Map<number, number>; onPick: (f: number) => void; ask: Ask | null }) {
  const max = Math.max(1e-9, ...q.features.map((f) => f.activation));
  // categories at the app's k (the server answers with the run's)
  const cat = (f: number, fallback: Cell) => {
    const i = index.get(f);
    return i != null ? derived.categories[i] : String(fallback ?? "");
  };
  const mass: Record<string, number> = {};
  for (const f of q.features) mass[cat(f.feature, f.category)] = (mass[cat(f.feature, f.category)] ?? 0) + f.share;
  const imgUrl = q.image && q.modality === "image" ? runImageUrl(run.id, q.image) : ask?.kind === "upload" ? ask.dataUrl : null;
  return (
    <div data-testid="query-answer">
      <div className="detail-head">
        {imgUrl && <img className="thumb" src={imgUrl} alt="the queried image" />}
        <div>
          <div>
            <b>{q.modality === "image" ? "Image" : "Caption"}</b> {q.text && q.modality === "text" ? `“${q.text}”` : ""}
            {q.label && <span className="sub"> · {q.label}</span>}
          </div>
          <div className="sub">
            {q.source} · {q.n_active} features fire
          </div>
        </div>
      </div>
      <h3>Activation by category</h3>
      <div className="stacked" role="img" aria-label="share of the input's activation per feature category">
        {[...CATEGORIES, "inactive"].map((c) =>
          mass[c] ? (
            <span key={c} style={{ width: `${100 * mass[c]}%`, background: categoryColor(c) }} title={`${c}: ${pct(mass[c])}`}>
              {mass[c] > 0.12 ? `${c} ${pct(mass[c])}` : ""}
            </span>
          ) : null,
        )}
      </div>
      <table className="compare-table query-table" data-testid="query-features">
        <thead>
          <tr>
            <th>feature</th>
            <th>activation</th>
            <th>category</th>
            <th>MDS</th>
            <th>label</th>
          </tr>
        </thead>
        <tbody>
          {q.features.map((f) => {
            const c = cat(f.feature, f.category);
            const i = index.get(f.feature);
            return (
              <tr key={f.feature} onClick={() => onPick(f.feature)} data-feature={f.feature}>
                <td>#{f.feature}</td>
                <td>
                  <span className="inline-bar" style={{ width: `${(60 * f.activation) / max}px`, background: categoryColor(c) }} /> {fmt(f.activation)}
                </td>
                <td>
                  <span className="dot" style={{ background: categoryColor(c) }} />
                  {c}
                  {i != null && derived.stable[i] ? " ✓" : ""}
                </td>
                <td className="num">{fmt(f.mds)}</td>
                <td>{f.label ?? <span className="sub">—</span>}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <p className="note">Click a feature to open its card. ✓ = stable category at the current k.</p>
    </div>
  );
}
