import { embeddedData, paths, useDocument } from "../api";
import { MODALITY_COLORS } from "../colors";
import { Empty, ErrorBox, Loading, Panel } from "../components/common";
import { categoryColor, examplesByLevel } from "../featureStats";
import { fmt, num, pct } from "../stats";
import type { ExamplesRow } from "../runTypes";
import type { Cell, RunInfo } from "../types";
import type { Derived, FeatureDoc } from "./Features";

/** A row of the run's `examples` table with the sample's caption, label and image attached. */
export interface Example extends Omit<ExamplesRow, "feature"> {
  text: string | null;
  label: string | null;
  image: string | null;
}

export interface FeatureCardDoc {
  feature: number;
  row: Record<string, Cell | number[]>;
  top_samples: { rank: number; modality: string; sample: number; activation: number; label: string | null; text: string | null; image: string | null }[];
  examples?: Example[] | null;
  histograms?: { modality: string; edges: number[]; counts: number[]; n_zero: number; n: number }[] | null;
  neighbours?: { feature: number; cosine: number; category: string | null; label: string | null; mds: number | null }[] | null;
  classes?: { class: string; effect: number; rank: number }[] | null;
}

/** URL of a stored run image: the API route, or the data: URI inside an export. */
export function runImageUrl(runId: string, name: string): string | null {
  const path = `${paths.manifest(runId)}/images/${encodeURIComponent(name)}`;
  const emb = embeddedData();
  return emb ? ((emb.documents[path] as string | undefined) ?? null) : path;
}

const LEVEL_TEXT: Record<string, string> = {
  top: "Top activations",
  middle: "Middle (40–60 % quantile of its activations)",
  low: "Low (0–20 % quantile)",
};

export function FeatureCard({ run, feature, d, derived, onPick }: { run: RunInfo; feature: number; d: FeatureDoc; derived: Derived; onPick: (f: number) => void }) {
  const doc = useDocument<FeatureCardDoc>(`${paths.manifest(run.id)}/features/${feature}`);
  if (doc.status === "error") return <Panel title={`Feature #${feature}`} id="feature-card"><ErrorBox error={doc.error} /></Panel>;
  if (doc.status !== "ready") return <Panel title={`Feature #${feature}`} id="feature-card"><Loading what={`feature ${feature}`} /></Panel>;
  const card = doc.data;
  const r = card.row;
  const index = (d.columns.feature ?? []).findIndex((f) => Number(f) === feature);
  const cat = index >= 0 ? derived.categories[index] : String(r.category ?? "");
  const stable = index >= 0 ? derived.stable[index] : Boolean(r.stable);
  const label = r.label as string | null | undefined;
  return (
    <Panel title={`Feature #${feature}`} id="feature-card">
      <div className="detail-head" data-testid="feature-card">
        <h3>#{feature}</h3>
        <span className="badge" style={{ background: categoryColor(cat) }} data-testid="card-category">
          {cat}
        </span>
        <span className="badge" style={{ background: stable ? "#4a5a70" : "#b4bac4" }}>
          {stable ? "stable" : "unstable"}
        </span>
        {label ? (
          <span className="feature-label" data-testid="card-label" title="Automatic label: the caption words whose presence best predicts where the feature fires">
            “{label}” <span className="sub">score {fmt(num(r.label_score as Cell), 2)} · covers {pct(num(r.label_coverage as Cell))} of its activation · fires on {pct(num(r.label_precision as Cell))} of pairs with it</span>
          </span>
        ) : (
          <span className="sub">no label (no captions, or no word predicts it)</span>
        )}
      </div>
      <div className="detail-head" style={{ marginTop: 6 }}>
        <MdsInterval mds={num(r.mds as Cell)} lo={num(r.ci_low as Cell)} hi={num(r.ci_high as Cell)} low={derived.lo} high={derived.hi} cat={cat} />
        <span>
          density <b>{pct(num(r.frequency as Cell))}</b> <span className="sub">(images {pct(num(r.frequency_image as Cell))}, texts {pct(num(r.frequency_text as Cell))})</span>
        </span>
        <span>
          EmbSim <b>{fmt(num(r.embsim as Cell))}</b>
        </span>
        <span>
          monosemanticity <b>{fmt(num(r.monosemanticity as Cell))}</b>
        </span>
        <span className="sub">active on {String(r.n_active ?? "—")} pairs</span>
      </div>
      <div className="card-grid">
        <div>
          <h3>Activation histogram</h3>
          <Histograms h={card.histograms ?? null} />
        </div>
        <div>
          <h3>
            Zero-shot classes it pushes <span className="sub">similarity change per unit</span>
          </h3>
          <ClassEffects classes={card.classes ?? null} />
        </div>
        <div>
          <h3>
            Nearest features <span className="sub">decoder cosine</span>
          </h3>
          <Neighbours items={card.neighbours ?? null} onPick={onPick} />
        </div>
      </div>
      <Examples run={run} card={card} />
    </Panel>
  );
}

function MdsInterval({ mds, lo, hi, low, high, cat }: { mds: number; lo: number; hi: number; low: number; high: number; cat: string }) {
  const W = 200;
  const x = (v: number) => 6 + v * (W - 12);
  return (
    <span className="mds-interval" title={`MDS ${fmt(mds)}, bootstrap interval ${fmt(lo)}–${fmt(hi)}; category thresholds ${fmt(low)} and ${fmt(high)}`}>
      MDS <b data-testid="card-mds">{fmt(mds)}</b> <span className="sub">({fmt(lo)}–{fmt(hi)})</span>
      <svg width={W} height={18} role="img" aria-label="MDS with its interval and the category thresholds">
        <rect x={x(0)} y={8} width={x(Math.max(0, low)) - x(0)} height={3} fill={categoryColor("language")} opacity={0.5} />
        <rect x={x(Math.min(1, high))} y={8} width={x(1) - x(Math.min(1, high))} height={3} fill={categoryColor("vision")} opacity={0.5} />
        {Number.isFinite(lo) && Number.isFinite(hi) && <line x1={x(lo)} x2={x(hi)} y1={9.5} y2={9.5} stroke="#222" strokeWidth={2} />}
        {Number.isFinite(mds) && <circle cx={x(mds)} cy={9.5} r={4.5} fill={categoryColor(cat)} stroke="#222" />}
      </svg>
    </span>
  );
}

function Histograms({ h }: { h: FeatureCardDoc["histograms"] }) {
  if (!h || !h.length) return <Empty title="No histogram stored" hint="Runs written before histograms were stored lack it; re-run the study." />;
  const W = 300;
  const H = 90;
  const bins = h[0].counts.length;
  const max = Math.max(1, ...h.flatMap((m) => m.counts));
  const edges = h[0].edges;
  const bw = (W - 10) / bins;
  return (
    <div>
      <svg width={W} height={H + 26} role="img" aria-label="activation histograms per modality" data-testid="activation-histogram">
        {h.map((m, mi) =>
          m.counts.map((c, b) => {
            const hh = ((H - 4) * c) / max;
            const w = bw / h.length;
            return <rect key={`${mi}-${b}`} x={5 + b * bw + mi * w} y={H - hh} width={Math.max(0.5, w - 0.5)} height={hh} fill={MODALITY_COLORS[m.modality] ?? "#888"} />;
          }),
        )}
        <line x1={5} x2={W - 5} y1={H} y2={H} stroke="#888" />
        <text x={5} y={H + 12} fontSize={10}>
          0
        </text>
        <text x={W - 5} y={H + 12} fontSize={10} textAnchor="end">
          {fmt(edges[edges.length - 1])}
        </text>
        <text x={W / 2} y={H + 23} fontSize={10} textAnchor="middle">
          activation (non-zero only)
        </text>
      </svg>
      <p className="note">
        {h.map((m) => (
          <span key={m.modality} style={{ marginRight: 10 }}>
            <span className="dot" style={{ background: MODALITY_COLORS[m.modality] ?? "#888" }} />
            {m.modality}: fires on {pct((m.n - m.n_zero) / Math.max(1, m.n))} ({(m.n - m.n_zero).toLocaleString()} of {m.n.toLocaleString()})
          </span>
        ))}
      </p>
    </div>
  );
}

function ClassEffects({ classes }: { classes: FeatureCardDoc["classes"] }) {
  if (!classes) return <Empty title="No zero-shot task in this run" hint="Class prompts (class_text_emb) make the card list the classes a feature pushes." />;
  if (!classes.length) return <Empty title="Inactive feature" />;
  const max = Math.max(1e-9, ...classes.map((c) => Math.abs(c.effect)));
  return (
    <div className="bars" data-testid="class-effects">
      {classes.map((c) => (
        <div className="bar-row diverging" key={`${c.class}${c.rank}`}>
          <span className="bar-label">{c.class}</span>
          <span className="bar-track two-sided">
            <span className="bar" style={{ left: c.effect >= 0 ? "50%" : `${50 - (50 * -c.effect) / max}%`, width: `${(50 * Math.abs(c.effect)) / max}%`, background: c.effect >= 0 ? "#b2182b" : "#2166ac" }} />
          </span>
          <span className="bar-value num">{c.effect >= 0 ? "+" : ""}{fmt(c.effect)}</span>
        </div>
      ))}
    </div>
  );
}

function Neighbours({ items, onPick }: { items: FeatureCardDoc["neighbours"]; onPick: (f: number) => void }) {
  if (!items) return <Empty title="No neighbours stored" />;
  if (!items.length) return <Empty title="Inactive feature" />;
  return (
    <ol className="neighbours" data-testid="neighbours">
      {items.map((n) => (
        <li key={n.feature}>
          <button type="button" className="link" onClick={() => onPick(n.feature)} data-neighbour={n.feature}>
            <span className="dot" style={{ background: categoryColor(n.category ?? "") }} />#{n.feature}
          </button>{" "}
          <span className="num">{fmt(n.cosine, 2)}</span> <span className="sub">{n.label ?? n.category}</span>
        </li>
      ))}
    </ol>
  );
}

function Examples({ run, card }: { run: RunInfo; card: FeatureCardDoc }) {
  const ex = card.examples;
  if (!ex) {
    // older runs: the top samples only
    return <Empty title="This run stores top samples only" hint="Re-run the study to get examples at several activation levels." />;
  }
  const images = examplesByLevel(ex, "image");
  const texts = examplesByLevel(ex, "text");
  return (
    <div className="compare-grid examples" data-testid="examples">
      <div>
        <h3>
          Images <span className="sub">×n = identical images collapsed</span>
        </h3>
        {images.length === 0 ? (
          <Empty title="No image activates this feature" />
        ) : (
          images.map((g) => (
            <div key={g.level} data-level={g.level} className="example-level">
              <h4>
                {LEVEL_TEXT[g.level] ?? g.level} <span className="sub">{fmt(g.items[g.items.length - 1].band_low)}–{fmt(g.items[0].band_high)}</span>
              </h4>
              <div className="top-samples">
                {g.items.map((s) => {
                  const url = s.image ? runImageUrl(run.id, s.image) : null;
                  return (
                    <figure key={`${g.level}-${s.rank}`}>
                      {url ? <img src={url} alt={`sample ${s.sample}${s.label ? `, ${s.label}` : ""}`} /> : <div className="empty">no stored image</div>}
                      <figcaption>
                        {fmt(s.activation)}
                        {s.count > 1 ? ` ×${s.count}` : ""}
                        {s.label != null ? ` · ${s.label}` : ""}
                      </figcaption>
                    </figure>
                  );
                })}
              </div>
            </div>
          ))
        )}
      </div>
      <div>
        <h3>
          Captions <span className="sub">×n = the same caption on n pairs it fires on</span>
        </h3>
        {texts.length === 0 ? (
          <Empty title="No caption activates this feature" />
        ) : (
          texts.map((g) => (
            <div key={g.level} data-level={g.level} className="example-level">
              <h4>{LEVEL_TEXT[g.level] ?? g.level}</h4>
              <ol className="top-texts">
                {g.items.map((s) => (
                  <li key={`${g.level}-${s.rank}`} data-count={s.count}>
                    <span className="num">{fmt(s.activation)}</span> {s.text ?? `sample ${s.sample}`}
                    {s.count > 1 && <span className="count"> ×{s.count}</span>}
                    {s.label != null && <span className="sub"> · {s.label}</span>}
                  </li>
                ))}
              </ol>
            </div>
          ))
        )}
      </div>
    </div>
  );
}
