import { useCallback, useEffect, useMemo, useState } from "react";
import { getJSON } from "../api";
import { DivergingLegend, Panel, SequentialLegend, Swatches } from "../components/common";
import { Scatter } from "../components/Scatter";
import { glyphPath, hasGlyphs, prepareGlyphs, type GlyphDocument, type PreparedGlyphs } from "../glyphs";
import { pointColors } from "../points";
import { COLOR_BY, type ColorBy } from "../selection";
import { fmt } from "../stats";
import { useHovered, useStore } from "../store";

export function ProjectionView(props: { height?: number }) {
  const { run, sel, mask, dispatch } = useStore();
  const t = run.table;
  const [mode, setMode] = useState<"lasso" | "pan">("lasso");
  const [resetKey, setResetKey] = useState(0);
  const xs = useMemo(() => Float32Array.from(t.x, (v) => (v == null ? NaN : v)), [t]);
  const ys = useMemo(() => Float32Array.from(t.y, (v) => (v == null ? NaN : v)), [t]);
  const classification = run.manifest.dataset?.label_kind === "classification";
  const colors = useMemo(() => pointColors(t, sel.colorBy, run.kinds, classification), [t, sel.colorBy, run.kinds, classification]);
  // the reducer returns the same state when the hovered point is unchanged, so moving within a point is free
  const onHover = useCallback((i: number | null) => dispatch({ type: "hover", index: i }), [dispatch]);
  useEffect(() => setResetKey((k) => k + 1), [t]);
  // glyph inputs are fetched the first time the view is zoomed in far enough to draw them (page load stays lean)
  const [glyphs, setGlyphs] = useState<PreparedGlyphs | "none" | null>(null);
  const [zoomedIn, setZoomedIn] = useState(false);
  const [wanted, setWanted] = useState(false);
  const runId = run.info.id;
  useEffect(() => {
    setGlyphs(null);
    setWanted(false);
  }, [runId, t]);
  useEffect(() => {
    if (zoomedIn) setWanted(true);
  }, [zoomedIn]);
  useEffect(() => {
    if (!wanted) return;
    let live = true;
    getJSON<GlyphDocument>(glyphPath(runId)).then(
      (doc) => live && setGlyphs(doc.n === t.n ? prepareGlyphs(doc) : "none"),
      () => live && setGlyphs("none"), // an export without the document, or a run of another kind: plain dots
    );
    return () => {
      live = false;
    };
  }, [wanted, runId, t.n]);
  const prepared = glyphs !== null && typeof glyphs === "object" && hasGlyphs(glyphs) ? glyphs : null;

  const hovered = useHovered();
  const tip =
    hovered != null && hovered < t.n ? (
      <div className="tooltip" role="status">
        <strong>{String(t.columns.id?.[hovered] ?? hovered)}</strong> · {String(t.columns.interaction_type?.[hovered] ?? "")}
        <br />
        label {fmt(t.columns.label?.[hovered] as number)} · prediction {fmt(t.columns.prediction?.[hovered] as number)}
      </div>
    ) : null;

  const s = colors.scale;
  const legend =
    s.kind === "categorical" ? (
      <Swatches items={s.items ?? []} label={s.label} />
    ) : s.kind === "diverging" ? (
      <DivergingLegend max={s.max ?? 1} label={s.label} />
    ) : (
      <SequentialLegend min={s.min ?? 0} max={s.max ?? 1} label={s.label} />
    );

  const actions = (
    <>
      <label>
        Colour by{" "}
        <select value={sel.colorBy} onChange={(e) => dispatch({ type: "colorBy", colorBy: e.target.value as ColorBy })} aria-label="colour points by" data-testid="color-by">
          {COLOR_BY.map((c) => (
            <option key={c.value} value={c.value}>
              {c.label}
            </option>
          ))}
        </select>
      </label>
      <div className="segmented" role="group" aria-label="pointer mode">
        <button type="button" aria-pressed={mode === "lasso"} onClick={() => setMode("lasso")}>
          Lasso
        </button>
        <button type="button" aria-pressed={mode === "pan"} onClick={() => setMode("pan")}>
          Pan
        </button>
      </div>
      <button type="button" onClick={() => setResetKey((k) => k + 1)}>
        Reset view
      </button>
    </>
  );

  return (
    <Panel title="Projection" id="projection" actions={actions} className="projection-panel">
      <p className="note">
        {t.n.toLocaleString()} instances placed by their explanation vectors ({t.projection_method}). Drag to lasso (Shift adds), wheel to zoom, click a point to open it.
      </p>
      <div className="scatter-holder">
        <Scatter
          xs={xs}
          ys={ys}
          rgb={colors.rgb}
          mask={mask}
          hasSelection={sel.selected !== null}
          focused={sel.focused}
          hovered={hovered}
          mode={mode}
          resetKey={resetKey}
          height={props.height ?? 470}
          glyphs={prepared}
          onGlyphRange={setZoomedIn}
          onHover={onHover}
          onClick={(i) => dispatch({ type: "focus", index: i })}
          onLasso={(idx, additive) => {
            if (idx.length === 0 && !additive) dispatch({ type: "clear" });
            else dispatch({ type: "select", indices: idx, source: "lasso", mode: additive ? "add" : "replace" });
          }}
        />
        {tip}
      </div>
      <div className="legend-row">{legend}</div>
      {prepared && zoomedIn && <GlyphLegend glyphs={prepared} />}
    </Panel>
  );
}

/** What the glyphs mean (shown while they are drawn); the mapping is documented in glyphs.ts and docs/app.md. */
function GlyphLegend({ glyphs }: { glyphs: PreparedGlyphs }) {
  return (
    <p className="note glyph-legend" data-testid="glyph-legend">
      {glyphs.faceModality && (
        <>
          Faces from {glyphs.faceModality} expressions: mouth curves up with joy, down with sadness or disgust; brows pulled down with anger, raised with surprise or fear; eyes open with surprise or fear.{" "}
        </>
      )}
      {glyphs.groups.length > 0 && (
        <>
          Petals: {glyphs.roseModality} attribution per group ({glyphs.groups.join(", ")}; clockwise from 12 o'clock), area ∝ |attribution|, red raises the output, blue lowers it.
        </>
      )}
    </p>
  );
}
