import { paths, useDocument } from "../api";
import { modalityColor } from "../colors";
import { featuresOfInstance, restsOn, type ColumnTable, type HiddenFeature } from "../hiddenFeatures";
import { useStore } from "../store";
import { fmt } from "../stats";
import type { Cell } from "../types";

interface CardDoc {
  feature: number;
  row: Record<string, Cell>;
}

/** The features of a predictor's hidden layer this instance's prediction rests on, from a feature run served beside
 * the interaction run (modalens features study-model; matched by instance id), each with a compact card. */
export function HiddenFeatures({ id }: { id: string }) {
  const { runs } = useStore();
  const featureRun = runs.find((r) => r.kind === "features" && r.tables.includes("instance_features"));
  const doc = useDocument<ColumnTable>(featureRun ? paths.table(featureRun.id, "instance_features") : null);
  if (!featureRun || doc.status !== "ready") return null;
  const rows = featuresOfInstance(doc.data, id);
  if (rows.length === 0) return null;
  return (
    <div className="hidden-features" data-testid="hidden-features">
      <h4>Hidden-layer features ({featureRun.name})</h4>
      <p>{restsOn(rows)}</p>
      <p className="sub">
        Attribution = code × ∂output/∂code through the SAE decoder; the instance's features sum to {fmt(rows[0].total)} (output{" "}
        {fmt(rows[0].output)}).
      </p>
      <div style={{ display: "flex", flexWrap: "wrap", gap: 8 }}>
        {rows.map((r) => (
          <MiniCard key={r.feature} runId={featureRun.id} r={r} />
        ))}
      </div>
    </div>
  );
}

function MiniCard({ runId, r }: { runId: string; r: HiddenFeature }) {
  const card = useDocument<CardDoc>(`api/runs/${encodeURIComponent(runId)}/features/${r.feature}`);
  const row = card.status === "ready" ? card.data.row : null;
  const modalities = row ? Object.keys(row).filter((k) => k.startsWith("dominance_")).map((k) => k.slice("dominance_".length)) : [];
  return (
    <div className="mini-card" data-feature={r.feature} style={{ border: "1px solid #ddd", borderRadius: 6, padding: 6, minWidth: 170 }}>
      <div>
        <b>feature {r.feature}</b> · {r.category}
      </div>
      <div className="num">
        attribution <b style={{ color: r.attribution >= 0 ? "#1b7837" : "#b2182b" }}>{fmt(r.attribution)}</b> · code {fmt(r.code)}
      </div>
      {row && (
        <div aria-label="modality dominance" title="share of the feature's activation when each modality alone is present">
          {modalities.map((m) => {
            const v = Number(row[`dominance_${m}`]);
            return (
              <div key={m} style={{ display: "flex", alignItems: "center", gap: 4, fontSize: 12 }}>
                <span style={{ width: 44 }}>{m}</span>
                <span style={{ display: "inline-block", height: 8, width: `${Math.max(0, Math.min(1, v || 0)) * 90}px`, background: modalityColor(m) }} />
                <span>{Number.isFinite(v) ? fmt(v, 2) : "—"}</span>
              </div>
            );
          })}
          <div style={{ fontSize: 12 }}>
            fires on {fmt(Number(row.frequency) * 100, 2)} % · active {String(row.n_active)}
          </div>
        </div>
      )}
    </div>
  );
}
