import { memo, useEffect, useMemo, useState, type Dispatch } from "react";
import { paths, useDocument } from "../api";
import { diverging, modalityColor, robustMaxAbs } from "../colors";
import { DivergingLegend, Empty, ErrorBox, Loading, Panel } from "../components/common";
import { markFirstPaint, useAfterFirstPaint } from "../firstPaint";
import { ACOUSTIC_GROUPS, faceFeatures, faceGeometry, itemGlyph, rosePetals, type ItemGlyph } from "../glyphs";
import type { SelectionAction } from "../selection";
import { useSettledSelection, useStore, type RunData } from "../store";
import { fmt, pct } from "../stats";
import { rankTemplates, type RankedTemplate, type TemplateContribution, type TemplateSortKey } from "../templateRank";
import type { Template } from "../types";
import "./Templates.css";

const SHOWN = 150;
const contributionsPath = (run: string) => `api/runs/${encodeURIComponent(run)}/template-contributions`;

export function TemplatesView() {
  const { run, sel, dispatch } = useStore();
  const { selected, mask } = useSettledSelection(); // deferred: the projection answers a lasso first
  const active = sel.source?.startsWith("template #") ? sel.source : null;
  return <TemplatesBody run={run} dispatch={dispatch} selected={selected} mask={mask} active={active} />;
}

// memo: the urgent render of a selection change (where `selected` is still the old one) skips the whole panel
const TemplatesBody = memo(function TemplatesBody(props: { run: RunData; dispatch: Dispatch<SelectionAction>; selected: Int32Array | null; mask: Uint8Array; active: string | null }) {
  const { run, dispatch, selected, mask, active } = props;
  const hasTable = run.info.tables.includes("templates");
  const doc = useDocument<{ templates: Template[] }>(hasTable ? paths.templates(run.info.id) : null);
  // the contributions fill in the bars after the templates are listed (first paint first)
  const contribDoc = useDocument<{ templates: TemplateContribution[] }>(useAfterFirstPaint(run.info.id, hasTable ? contributionsPath(run.info.id) : null));
  useEffect(() => {
    if (doc.status !== "loading") markFirstPaint(run.info.id);
  }, [doc.status, run.info.id]);
  const [polarity, setPolarity] = useState<"all" | "positive" | "negative">("all");
  const [modality, setModality] = useState<string>("all");
  const [sort, setSort] = useState<TemplateSortKey>("lift");
  const [minCount, setMinCount] = useState(2);
  const templates = doc.status === "ready" ? doc.data.templates : [];
  const contributions = useMemo(
    () => (contribDoc.status === "ready" ? new Map(contribDoc.data.templates.map((c) => [c.template_id, c])) : null),
    [contribDoc],
  );
  const selection = selected ? mask : null;
  const rows = useMemo(() => {
    const kept = templates
      .filter((t) => polarity === "all" || t.polarity === polarity)
      .filter((t) => modality === "all" || t.items.some((i) => i.startsWith(`${modality}:`)) || t.modalities.includes(modality));
    return rankTemplates(kept, { n: run.table.n, selection, sort, minCount, contributions, shapley: run.table.shapley });
  }, [templates, polarity, modality, sort, minCount, selection, contributions, run.table]);
  const scale = useMemo(() => robustMaxAbs(rows.flatMap((r) => [r.template.mean_attribution, ...r.contributions.map((c) => c.value)])), [rows]);
  const maxSupport = useMemo(() => Math.max(1e-9, ...rows.map((r) => r.selectionSupport)), [rows]);
  const source = rows.find((r) => r.contributionSource !== "none")?.contributionSource ?? "none";

  const controls = (
    <>
      <label>
        Polarity{" "}
        <select value={polarity} onChange={(e) => setPolarity(e.target.value as typeof polarity)} aria-label="filter templates by polarity">
          <option value="all">all</option>
          <option value="positive">positive</option>
          <option value="negative">negative</option>
        </select>
      </label>
      <label>
        Modality{" "}
        <select value={modality} onChange={(e) => setModality(e.target.value)} aria-label="filter templates by modality">
          <option value="all">all</option>
          {run.table.modalities.map((m) => (
            <option key={m} value={m}>
              {m}
            </option>
          ))}
        </select>
      </label>
      <label>
        Sort{" "}
        <select value={sort} onChange={(e) => setSort(e.target.value as TemplateSortKey)} aria-label="sort templates" data-testid="template-sort">
          <option value="lift">lift in selection</option>
          <option value="in-selection">support in selection</option>
          <option value="support">support (global)</option>
          <option value="attribution">|attribution|</option>
          <option value="prediction">|mean prediction|</option>
        </select>
      </label>
      {selected && sort === "lift" && (
        <label title="Templates with fewer members in the selection are ranked last (lift is noisy on a few instances)">
          min. in sel.{" "}
          <input type="number" min={1} max={1000} value={minCount} onChange={(e) => setMinCount(Math.max(1, Number(e.target.value) || 1))} aria-label="minimum members in the selection" className="template-min" />
        </label>
      )}
    </>
  );

  let body;
  if (!hasTable) body = <Empty title="This run has no templates table" hint="Templates (frequent multimodal feature sets) are written by explain() when template mining is on." />;
  else if (doc.status === "loading" || doc.status === "idle") body = <Loading what="templates" />;
  else if (doc.status === "error") body = <ErrorBox error={doc.error} />;
  else if (rows.length === 0) body = <Empty title="No template matches these filters" hint="Set Polarity and Modality back to “all”." />;
  else
    body = (
      <>
        <p className="note template-order" data-testid="template-order">
          {selected
            ? sort === "lift"
              ? `Ranked by lift within the selection of ${selected.length.toLocaleString()}: how much more often the selection holds a template than the whole run does (templates with fewer than ${minCount} selected members last).`
              : `Sorted within the selection of ${selected.length.toLocaleString()}.`
            : "Global order; select instances (lasso, type, a template) to rank templates by lift within the selection."}
        </p>
        <div className="template-head" aria-hidden>
          <span>Feature set</span>
          <span>{selected ? "In selection" : "Support"}</span>
          <span>Mean pred.</span>
          <span>By modality</span>
        </div>
        <ol className="templates" aria-label="templates" data-testid="templates">
          {/* keyed by position: a re-ranking updates the rows in place instead of moving 150 of them */}
          {rows.slice(0, SHOWN).map((r, k) => (
            <TemplateRow
              key={k}
              row={r}
              kinds={run.kinds}
              scale={scale}
              maxSupport={maxSupport}
              hasSelection={selected !== null}
              active={active === `template #${r.template.template_id}`}
              onSelect={() => dispatch({ type: "select", indices: r.template.members, source: `template #${r.template.template_id}` })}
            />
          ))}
        </ol>
        {rows.length > SHOWN && <p className="note">Showing the first {SHOWN} of {rows.length} templates; filter to see others.</p>}
        <DivergingLegend max={scale} label={source === "shapley" ? "Mean modality Shapley value of the members" : "Mean attribution of the set's items, per modality"} width={200} />
      </>
    );

  return (
    <Panel title="Templates" id="templates" actions={controls} className="templates-panel">
      {body}
    </Panel>
  );
});

function TemplateRow(props: { row: RankedTemplate; kinds: Record<string, string>; scale: number; maxSupport: number; hasSelection: boolean; active: boolean; onSelect: () => void }) {
  const { row: r, scale } = props;
  const t = r.template;
  const attr = t.mean_attribution ?? 0;
  const s = scale || 1;
  const contribTitle = r.contributions.map((c) => `${c.modality} ${fmt(c.value)}`).join(", ");
  return (
    <li>
      <button
        type="button"
        className={`template-row ${props.active ? "active" : ""}`}
        data-template={t.template_id}
        data-lift={r.lift == null ? "" : r.lift.toFixed(4)}
        data-in-selection={r.inSelection}
        aria-pressed={props.active}
        onClick={props.onSelect}
        title={`${t.count} instances; click to select them in every view`}
      >
        <span className="items">
          {t.items.map((item) => (
            <ItemChip key={item} item={item} kinds={props.kinds} />
          ))}
        </span>
        <span className="support">
          <span className="support-bar" style={{ width: `${(100 * r.selectionSupport) / props.maxSupport}%` }} />
          <span className="support-text">
            {props.hasSelection ? (
              <>
                {r.inSelection} · <em>{r.lift == null ? "—" : `${r.lift.toFixed(1)}×`}</em>
              </>
            ) : (
              pct(t.support)
            )}
          </span>
        </span>
        <span className="num">{fmt(t.mean_prediction)}</span>
        <span className="contrib" title={`mean attribution ${fmt(attr)}${contribTitle ? `: ${contribTitle}` : ""}`} data-testid="template-contrib">
          {r.contributions.length === 0 ? (
            <span className="contrib-bar-row">
              <span className="attr-axis" />
              <span className="contrib-bar" style={barStyle(attr, s, diverging(attr, s))} />
            </span>
          ) : (
            r.contributions.map((c) => (
              <span className="contrib-bar-row" key={c.modality} data-modality={c.modality}>
                <span className="attr-axis" />
                <span className="contrib-bar" style={barStyle(c.value, s, modalityColor(c.modality, props.kinds[c.modality]))} />
              </span>
            ))
          )}
        </span>
      </button>
    </li>
  );
}

function barStyle(v: number, scale: number, background: string) {
  const w = Number.isFinite(v) ? 50 * Math.min(1, Math.abs(v) / scale) : 0;
  return { left: v >= 0 ? "50%" : `${50 - w}%`, width: `${w}%`, background };
}

/** An item as a chip with its glyph: a face for expressions, a petal for acoustic features, the word for words. */
function ItemChip({ item, kinds }: { item: string; kinds: Record<string, string> }) {
  const g = itemGlyph(item);
  const c = modalityColor(g.modality, kinds[g.modality]);
  const label = g.kind === "word" ? g.word : `${g.feature} ${g.level}`;
  return (
    <span className={`item item-${g.kind}`} style={{ borderColor: c }} data-glyph={g.kind} title={`${g.modality}: ${label}`}>
      {g.kind === "face" ? <FaceIcon glyph={g} color={c} /> : g.kind === "petal" ? <PetalIcon glyph={g} color={c} /> : <span className="dot" style={{ background: c }} />}
      {label}
    </span>
  );
}

function FaceIcon({ glyph, color }: { glyph: Extract<ItemGlyph, { kind: "face" }>; color: string }) {
  const f = faceGeometry(faceFeatures({ [glyph.emotion]: glyph.value }), 8, 8, 6.8);
  const m = f.mouth;
  const mouth = `M${m.x0},${m.y0} Q${m.upper[0]},${m.upper[1]} ${m.x1},${m.y1}` + (m.lower ? ` Q${m.lower[0]},${m.lower[1]} ${m.x0},${m.y0}` : "");
  return (
    <svg className="item-icon" width="16" height="16" viewBox="0 0 16 16" aria-hidden>
      <circle cx="8" cy="8" r="6.8" fill="#fffdf5" stroke={color} strokeWidth="1.2" />
      {f.eyes.map((e, k) => (
        <ellipse key={k} cx={e.cx} cy={e.cy} rx={e.rx} ry={Math.max(0.4, e.ry)} fill="#222" />
      ))}
      {f.brows.map((b, k) => (
        <line key={k} x1={b.x0} y1={b.y0} x2={b.x1} y2={b.y1} stroke="#222" strokeWidth="0.8" />
      ))}
      <path d={mouth} fill="none" stroke="#222" strokeWidth="0.9" />
    </svg>
  );
}

function PetalIcon({ glyph, color }: { glyph: Extract<ItemGlyph, { kind: "petal" }>; color: string }) {
  const groups = [...ACOUSTIC_GROUPS] as string[];
  const k = Math.max(0, groups.indexOf(glyph.group));
  const abs = groups.map((_, j) => (j === k ? Math.max(0.2, glyph.value) : 0));
  const [p] = rosePetals(groups, abs, abs, 7);
  const arc = p ? `M8,8 L${8 + p.radius * Math.cos(p.start)},${8 + p.radius * Math.sin(p.start)} A${p.radius},${p.radius} 0 0 1 ${8 + p.radius * Math.cos(p.end)},${8 + p.radius * Math.sin(p.end)} Z` : "";
  return (
    <svg className="item-icon" width="16" height="16" viewBox="0 0 16 16" aria-hidden>
      <title>{`${glyph.group} petal`}</title>
      <circle cx="8" cy="8" r="7" fill="none" stroke="#c8ccd2" strokeWidth="0.6" />
      <path d={arc} fill={color} fillOpacity="0.85" />
    </svg>
  );
}
