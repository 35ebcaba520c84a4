import { mediaUrl } from "../api";
import { divergingRgb, maxAbs, modalityColor, textOn } from "../colors";
import { DivergingLegend } from "../components/common";
import { fmt } from "../stats";
import type { InstanceDetail, PatchMap, WordGroup } from "../types";

/** The shared scale of patch and word attributions: they are Shapley values of one game, so one scale reads both. */
export function tokenPatchScale(d: InstanceDetail): number {
  const words = Object.values(d.word_groups ?? {}).flatMap((ws) => ws.map((w) => w.value));
  const patches = Object.values(d.patches ?? {}).flatMap((p) => p.values);
  return maxAbs([...words, ...patches]);
}

/** MM-SHAP's shares: T-SHAP for a text modality, V-SHAP for an image modality, "<name> share" otherwise. */
export function MmShap({ d, kinds }: { d: InstanceDetail; kinds: Record<string, string> }) {
  const rows = d.mm_shap ?? [];
  if (rows.length === 0) return null;
  const label = (m: string) => (kinds[m] === "text" ? "T-SHAP" : kinds[m] === "image" ? "V-SHAP" : `${m} share`);
  return (
    <span data-testid="mm-shap" title="MM-SHAP: each modality's share of the absolute token and patch Shapley values">
      {rows.map((r) => (
        <span key={r.modality} style={{ marginRight: 10 }}>
          <span className="dot" style={{ background: modalityColor(r.modality, kinds[r.modality]) }} /> {label(r.modality)}{" "}
          <b>{(100 * r.share).toFixed(1)}%</b>
        </span>
      ))}
    </span>
  );
}

/** An image with its patch heat map: each grid cell tinted by the patch's attribution, its value on hover. */
export function PatchHeatmap(props: { runId: string; name: string; map: PatchMap; kind?: string; scale: number; caption?: string }) {
  const { map, scale } = props;
  const size = 320;
  const cw = size / map.cols;
  const ch = size / map.rows;
  const url = map.image ? mediaUrl(props.runId, map.image.key, map.image.file) : null;
  return (
    <figure style={{ margin: 0 }} data-testid="patch-heatmap">
      <figcaption style={{ fontWeight: 600, marginBottom: 4 }}>
        <span className="dot" style={{ background: modalityColor(props.name, props.kind) }} /> {props.name}: {map.rows}×{map.cols} patches coloured by attribution
      </figcaption>
      <svg width={size} height={size} role="img" aria-label={`${props.name} with a ${map.rows} by ${map.cols} patch heat map`} style={{ border: "1px solid #ccc", borderRadius: 4 }}>
        {url ? <image href={url} x={0} y={0} width={size} height={size} preserveAspectRatio="none" /> : <rect width={size} height={size} fill="#eee" />}
        {map.values.map((v, k) => {
          const r = Math.floor(k / map.cols);
          const c = k % map.cols;
          const rgb = divergingRgb(v ?? 0, scale);
          const strength = v == null || !(scale > 0) ? 0 : Math.min(1, Math.abs(v) / scale);
          return (
            <g key={k} data-patch={k}>
              <rect x={c * cw} y={r * ch} width={cw} height={ch} fill={`rgb(${rgb.join(",")})`} fillOpacity={0.15 + 0.6 * strength} stroke="#fff" strokeOpacity={0.7} strokeWidth={1}>
                <title>{`patch ${k} (row ${r}, column ${c}): ${v == null ? "not attributed" : fmt(v)}`}</title>
              </rect>
              {cw >= 40 && v != null && (
                <text x={c * cw + cw / 2} y={r * ch + ch / 2 + 4} fontSize={11} fontWeight={600} textAnchor="middle" fill="#fff" stroke="#000" strokeWidth={2.5} strokeOpacity={0.75} paintOrder="stroke" style={{ pointerEvents: "none" }}>
                  {fmt(v)}
                </text>
              )}
            </g>
          );
        })}
      </svg>
      {props.caption && <figcaption style={{ fontSize: 11, color: "#666", marginTop: 2 }}>{props.caption}</figcaption>}
    </figure>
  );
}

/** A token modality's words coloured by attribution (each the sum of its word pieces), pieces on hover. */
export function WordGroups(props: { name: string; words: WordGroup[]; pieces: { position: number; token: string | null; value: number | null }[]; kind?: string; scale: number }) {
  const pieceAt = new Map(props.pieces.map((p) => [p.position, p]));
  return (
    <div data-testid="word-groups">
      <h4>
        <span className="dot" style={{ background: modalityColor(props.name, props.kind) }} /> {props.name}: words coloured by attribution (the sum of their pieces)
      </h4>
      <p className="words" aria-label={`${props.name} words coloured by attribution`}>
        {props.words.map((w) => {
          const rgb = divergingRgb(w.value ?? 0, props.scale);
          const pieces = Array.from({ length: w.pieces }, (_, k) => pieceAt.get(w.position + k)).filter((p) => p != null);
          const detail = pieces.map((p) => `${p!.token}: ${fmt(p!.value)}`).join(", ");
          const err = w.std_error != null ? ` ± ${fmt(w.std_error)}` : "";
          return (
            <span key={w.word} className="word" style={{ background: `rgb(${rgb.join(",")})`, color: textOn(rgb) }} title={`${w.text ?? ""}: ${fmt(w.value)}${err}${w.pieces > 1 ? ` (pieces ${detail})` : ""}`}>
              {w.text || "·"}
            </span>
          );
        })}
      </p>
      {props.pieces.length > props.words.length && (
        <details>
          <summary style={{ fontSize: 12, cursor: "pointer" }}>word pieces ({props.pieces.length})</summary>
          <p className="words" aria-label={`${props.name} word pieces coloured by attribution`} style={{ fontSize: 12 }}>
            {props.pieces.map((p) => {
              const rgb = divergingRgb(p.value ?? 0, props.scale);
              return (
                <span key={p.position} className="word" style={{ background: `rgb(${rgb.join(",")})`, color: textOn(rgb) }} title={`${p.token}: ${fmt(p.value)}`}>
                  {p.token}
                </span>
              );
            })}
          </p>
        </details>
      )}
    </div>
  );
}

export function VisionLanguageLegend({ scale }: { scale: number }) {
  return scale > 0 ? <DivergingLegend max={scale} label="Patch and word attribution" /> : null;
}
