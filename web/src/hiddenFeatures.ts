import type { Cell } from "./types";

/** A feature run's `instance_features` table, as the server's columnar JSON. */
export interface ColumnTable {
  name: string;
  rows: number;
  columns: Record<string, Cell[]>;
}

/** One of an instance's features of largest attribution (modalens features study-model). */
export interface HiddenFeature {
  feature: number;
  rank: number;
  category: string;
  code: number;
  attribution: number;
  output: number;
  total: number;
}

/** The rows of instance `id` (the dataset id shared by the interaction run and the feature run), rank order. */
export function featuresOfInstance(table: ColumnTable, id: string): HiddenFeature[] {
  const c = table.columns;
  const ids = c.id ?? [];
  const out: HiddenFeature[] = [];
  for (let i = 0; i < table.rows; i++) {
    if (String(ids[i]) !== id) continue;
    out.push({
      feature: Number(c.feature[i]),
      rank: Number(c.rank[i]),
      category: String(c.category[i]),
      code: Number(c.code[i]),
      attribution: Number(c.attribution[i]),
      output: Number(c.output[i]),
      total: Number(c.total[i]),
    });
  }
  return out.sort((a, b) => a.rank - b.rank);
}

/** "This prediction rests on features 12 (cross-modal) and 40 (audio)": the features that carry most of the summed
 * |attribution| (at least the first, at most `max`, until 80 % of it is covered). */
export function restsOn(rows: HiddenFeature[], max = 3): string {
  if (rows.length === 0) return "No feature of the hidden layer fires on this instance.";
  const mass = rows.reduce((s, r) => s + Math.abs(r.attribution), 0);
  const chosen: HiddenFeature[] = [];
  let covered = 0;
  for (const r of rows) {
    if (chosen.length >= max || (chosen.length > 0 && covered >= 0.8 * mass)) break;
    chosen.push(r);
    covered += Math.abs(r.attribution);
  }
  const names = chosen.map((r) => `${r.feature} (${r.category})`);
  const list = names.length === 1 ? names[0] : `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
  return `This prediction rests on feature${names.length === 1 ? "" : "s"} ${list}.`;
}
