import { useMemo, useState } from "react";
import { paths, useDocument } from "../api";
import { diverging, modalityColor, robustMaxAbs } from "../colors";
import { DivergingLegend, Empty, ErrorBox, Loading, Panel } from "../components/common";
import { useStore } from "../store";
import { filterTemplates, fmt, pct, type TemplateSort } from "../stats";
import type { Template } from "../types";

const SHOWN = 150;

export function TemplatesView() {
  const { run, sel, mask, dispatch } = useStore();
  const hasTable = run.info.tables.includes("templates");
  const doc = useDocument<{ templates: Template[] }>(hasTable ? paths.templates(run.info.id) : null);
  const [polarity, setPolarity] = useState<"all" | "positive" | "negative">("all");
  const [modality, setModality] = useState<string>("all");
  const [sort, setSort] = useState<TemplateSort>("support");
  const templates = doc.status === "ready" ? doc.data.templates : [];
  const rows = useMemo(
    () => filterTemplates(templates, { polarity, modality, sort, selection: sel.selected ? mask : null }),
    [templates, polarity, modality, sort, sel.selected, mask],
  );
  const scale = useMemo(() => robustMaxAbs(templates.map((t) => t.mean_attribution)), [templates]);
  const maxSupport = useMemo(() => Math.max(1e-9, ...templates.map((t) => t.support)), [templates]);
  const active = sel.source?.startsWith("template #") ? sel.source : null;

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
        <select value={sort} onChange={(e) => setSort(e.target.value as TemplateSort)} aria-label="sort templates">
          <option value="support">support</option>
          <option value="attribution">|attribution|</option>
          <option value="prediction">|mean prediction|</option>
        </select>
      </label>
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
        <div className="template-head" aria-hidden>
          <span>Feature set</span>
          <span>Support</span>
          <span>Mean pred.</span>
          <span>Attribution</span>
        </div>
        <ol className="templates" aria-label="templates">
          {rows.slice(0, SHOWN).map((t) => {
            const attr = t.mean_attribution ?? 0;
            const isActive = active === `template #${t.template_id}`;
            return (
              <li key={t.template_id}>
                <button
                  type="button"
                  className={`template-row ${isActive ? "active" : ""}`}
                  data-template={t.template_id}
                  aria-pressed={isActive}
                  onClick={() => dispatch({ type: "select", indices: t.members, source: `template #${t.template_id}` })}
                  title={`${t.count} instances; click to select them in every view`}
                >
                  <span className="items">
                    {t.items.map((item, k) => {
                      const m = t.modalities[k] ?? item.split(":")[0];
                      const c = modalityColor(m, run.kinds[m]);
                      return (
                        <span className="item" key={item} style={{ borderColor: c }}>
                          <span className="dot" style={{ background: c }} />
                          {item.includes(":") ? item.slice(item.indexOf(":") + 1) : item}
                        </span>
                      );
                    })}
                  </span>
                  <span className="support">
                    <span className="support-bar" style={{ width: `${(100 * t.support) / maxSupport}%` }} />
                    <span className="support-text">
                      {pct(t.support)}
                      {sel.selected && <em> · {t.inSelection} sel.</em>}
                    </span>
                  </span>
                  <span className="num">{fmt(t.mean_prediction)}</span>
                  <span className="attr" title={`mean attribution ${fmt(attr)}`}>
                    <span className="attr-axis" />
                    <span
                      className="attr-bar"
                      style={{
                        left: attr >= 0 ? "50%" : `${50 - 50 * Math.min(1, Math.abs(attr) / (scale || 1))}%`,
                        width: `${50 * Math.min(1, Math.abs(attr) / (scale || 1))}%`,
                        background: diverging(attr, scale),
                      }}
                    />
                  </span>
                </button>
              </li>
            );
          })}
        </ol>
        {rows.length > SHOWN && <p className="note">Showing the first {SHOWN} of {rows.length} templates; filter to see others.</p>}
        <DivergingLegend max={scale} label="Mean attribution of the set's modalities" width={200} />
      </>
    );

  return (
    <Panel title="Templates" id="templates" actions={controls} className="templates-panel">
      {body}
    </Panel>
  );
}
