// Feature tracks of one instance: a feature x step table in its own scroll box (header row of words and label
// column sticky), virtualised (only the rows in view are in the DOM), the top features per modality first.
import { useMemo, useRef, useState, type UIEvent } from "react";
import { diverging, maxAbs, modalityColor } from "../colors";
import { DivergingLegend } from "../components/common";
import { fmt } from "../stats";
import { TOP_FEATURES, rankTracks, trackRows, visibleRange, type DescribedTrack } from "./instanceLogic";
import "./Instance.css";

const ROW = 22;
const HEADER = 26;
const LABEL = 178;
const CELL = 30;
const TOTAL = 58;
const VIEW_ROWS = 15; // rows of the scroll box before it scrolls

export function InstanceTracks(props: {
  tracks: DescribedTrack[];
  positions: number[];
  wordAt: Map<number, { token: string | null }>;
  kinds: Record<string, string>;
  speaking: number | null;
  masked: Set<number>;
  onStep?: (position: number) => void;
}) {
  const { tracks, positions } = props;
  const [open, setOpen] = useState<Set<string>>(new Set());
  const [scroll, setScroll] = useState({ top: 0, height: VIEW_ROWS * ROW });
  const box = useRef<HTMLDivElement>(null);
  const ranked = useMemo(() => rankTracks(tracks), [tracks]);
  const rows = useMemo(() => trackRows(ranked, open), [ranked, open]);
  const cellScale = useMemo(() => maxAbs(tracks.flatMap((t) => t.attribution)), [tracks]);
  const totalScale = useMemo(() => maxAbs(tracks.map((t) => t.total ?? null)), [tracks]);
  const hasTotal = tracks.some((t) => t.total != null);
  const hasValueOnly = tracks.some((t) => t.values != null && t.attribution.every((a) => a == null));
  const width = LABEL + positions.length * CELL + (hasTotal ? TOTAL : 0);
  const [first, last] = visibleRange(rows.length, ROW, Math.max(0, scroll.top - HEADER), scroll.height);
  const onScroll = (e: UIEvent<HTMLDivElement>) => {
    const el = e.currentTarget;
    if (Math.abs(el.scrollTop - scroll.top) >= ROW / 2 || el.clientHeight !== scroll.height) setScroll({ top: el.scrollTop, height: el.clientHeight });
  };
  const toggle = (m: string) =>
    setOpen((s) => {
      const next = new Set(s);
      if (next.has(m)) next.delete(m);
      else next.add(m);
      return next;
    });
  const nFeatures = ranked.reduce((n, m) => n + m.top.length + m.rest.length, 0);

  return (
    <div className="inst-tracks-wrap">
      <p className="note">
        {nFeatures} feature tracks; the top {TOP_FEATURES} features of each modality by |attribution| come first, grouped by what they measure, the
        rest folded. Hover a feature for what it measures.
      </p>
      <div
        className="inst-tracks"
        ref={box}
        onScroll={onScroll}
        role="table"
        aria-label="feature tracks aligned with the words"
        aria-rowcount={rows.length + 1}
        data-testid="tracks"
        style={{ maxHeight: HEADER + VIEW_ROWS * ROW + 14 }}
      >
        <div style={{ width, position: "relative" }}>
          <div className="inst-track-header" role="row" style={{ height: HEADER, width }}>
            <span role="columnheader" className="inst-track-label inst-sticky-left" style={{ width: LABEL }}>
              step →
            </span>
            {positions.map((p) => {
              const w = props.wordAt.get(p)?.token;
              return (
                <span
                  role="columnheader"
                  key={p}
                  className={`inst-track-word${props.speaking === p ? " speaking" : ""}${props.masked.has(p) ? " masked" : ""}`}
                  style={{ width: CELL }}
                  title={`step ${p}${w ? `: ${w}` : ""}`}
                  data-position={p}
                  onClick={props.onStep ? () => props.onStep!(p) : undefined}
                >
                  {w ?? p}
                </span>
              );
            })}
            {hasTotal && (
              <span role="columnheader" className="inst-track-word" style={{ width: TOTAL }} title="attribution of the feature over the whole instance">
                whole
              </span>
            )}
          </div>
          <div style={{ height: rows.length * ROW, position: "relative" }}>
            {rows.slice(first, last).map((r, k) => {
              const top = (first + k) * ROW;
              if (r.kind === "modality") {
                return (
                  <div key={`m:${r.modality}`} role="row" className="inst-track-row inst-mod-row" style={{ top, width }}>
                    <span className="inst-sticky-left inst-mod-label">
                      <span className="dot" style={{ background: modalityColor(r.modality, props.kinds[r.modality]) }} /> <b>{r.modality}</b>{" "}
                      <span className="sub">
                        {r.folded > 0 ? `top ${r.shown} of ${r.total} features by |attribution|` : `${r.total} feature${r.total === 1 ? "" : "s"}`}
                      </span>
                      {r.folded > 0 && (
                        <button type="button" className="linkish" onClick={() => toggle(r.modality)} data-testid={`fold-${r.modality}`}>
                          {r.open ? "show fewer" : `show ${r.folded} more`}
                        </button>
                      )}
                    </span>
                  </div>
                );
              }
              if (r.kind === "group") {
                return (
                  <div key={`g:${r.modality}:${r.group}:${first + k}`} role="row" className="inst-track-row inst-group-row" style={{ top, width }}>
                    <span className="inst-sticky-left inst-group-label">{r.group}</span>
                  </div>
                );
              }
              return <TrackLine key={`t:${r.track.modality}:${r.track.feature}`} t={r.track} top={top} width={width} positions={positions} cellScale={cellScale} totalScale={totalScale} hasTotal={hasTotal} speaking={props.speaking} />;
            })}
          </div>
        </div>
      </div>
      <div className="legend-row inst-legend">
        {cellScale > 0 && <DivergingLegend max={cellScale} label="Attribution at a step" />}
        {totalScale > 0 && <DivergingLegend max={totalScale} label="Whole-instance attribution" />}
        <span className="inst-key">
          {hasValueOnly && (
            <>
              <span className="inst-swatch value-only" /> raw value only (tick), not attributed per step ·{" "}
            </>
          )}
          <span className="inst-swatch none" /> no value: no step there
        </span>
      </div>
    </div>
  );
}

function TrackLine(props: { t: DescribedTrack; top: number; width: number; positions: number[]; cellScale: number; totalScale: number; hasTotal: boolean; speaking: number | null }) {
  const { t } = props;
  const at = new Map(t.positions.map((p, k) => [p, k]));
  const vals = t.values ?? [];
  const vmax = maxAbs(vals);
  const name = t.feature === "*" ? "whole step" : t.feature;
  return (
    <div role="row" className="inst-track-row" style={{ top: props.top, width: props.width }} data-feature={t.feature} data-modality={t.modality}>
      <span role="rowheader" className="inst-track-label inst-sticky-left track-label" style={{ width: LABEL }} title={t.description ?? (t.feature === "*" ? "attribution of every feature of the step together" : t.feature)}>
        {name}
        {t.description && <span className="inst-desc"> — {t.description}</span>}
      </span>
      {props.positions.map((p) => {
        const k = at.get(p);
        const a = k === undefined ? null : t.attribution[k];
        const v = k === undefined ? null : (vals[k] ?? null);
        const cls = a != null ? "" : v != null ? " value-only" : " none";
        return (
          <span
            role="cell"
            key={p}
            className={`inst-cell${cls}${props.speaking === p ? " speaking" : ""}`}
            style={{ width: CELL, background: a != null ? diverging(a, props.cellScale) : undefined }}
            title={a == null && v == null ? "no value at this step" : `${name} at step ${p}: ${a != null ? `attribution ${fmt(a)}` : "no attribution per step"}${v != null ? `, value ${fmt(v)}` : ""}`}
          >
            {v != null && vmax > 0 && <span className="track-value" style={{ height: `${50 * (Math.abs(v) / vmax)}%`, bottom: v >= 0 ? "50%" : undefined, top: v < 0 ? "50%" : undefined }} />}
          </span>
        );
      })}
      {props.hasTotal && (
        <span role="cell" className={`inst-cell inst-total${t.total == null ? " none" : ""}`} style={{ width: TOTAL, background: t.total == null ? undefined : diverging(t.total, props.totalScale) }} title={t.total == null ? "no whole-instance attribution" : `whole-instance attribution ${fmt(t.total)}`}>
          {t.total != null ? fmt(t.total, 2) : ""}
        </span>
      )}
    </div>
  );
}
