// Wire types of the modalens API (mirrors the pydantic models in src/modalens/app/server.py). What comes from a run
// directory (manifests, table rows) is typed in runTypes.ts, generated from the run schema: import it from here.
import type { CoalitionsRow, InteractionManifest, InteractionsRow, ModalityShapleyRow, TemplatesRow } from "./runTypes";

export type * from "./runTypes";

export interface RunInfo {
  id: string;
  name: string;
  kind: string;
  n_instances: number | null;
  dataset: string | null;
  model: string | null;
  modalities: string[];
  tables: string[];
  created: string | null;
  /** a model is attached (modalens serve RUN --model SPEC): POST /api/runs/{run}/whatif and .../cells answer */
  live?: boolean;
}

export type Cell = string | number | boolean | null;

export interface InstanceTable {
  n: number;
  modalities: string[];
  columns: Record<string, Cell[]>;
  shapley: Record<string, (number | null)[]>;
  x: (number | null)[];
  y: (number | null)[];
  projection_method: string;
}

/** A row of the run's `templates` table with the instances that hold it. */
export type Template = TemplatesRow & { members: number[] };

export interface Track {
  modality: string;
  feature: string;
  positions: number[];
  attribution: (number | null)[];
  values: (number | null)[] | null;
  /** The feature's attribution over the whole instance (position -1 rows), when the run has it. */
  total?: number | null;
}

export interface WordAttribution {
  position: number;
  token: string | null;
  value: number | null;
}

/** A word of a token modality: its attribution is the sum of its pieces' (`word_attributions`). */
export interface WordGroup {
  word: number;
  text: string | null;
  value: number;
  pieces: number;
  position: number;
  std_error?: number | null;
}

/** A patch (image) modality of one instance: the grid, each patch's attribution (row-major) and the image file. */
export interface PatchMap {
  rows: number;
  cols: number;
  values: (number | null)[];
  image: { key: string; mime: string; file: string } | null;
}

export interface InstanceDetail {
  instance: number;
  row: Record<string, Cell>;
  modalities: { name: string; kind: string }[];
  warnings: string[];
  modality_shapley: Omit<ModalityShapleyRow, "instance">[] | null;
  coalitions: Omit<CoalitionsRow, "instance">[] | null;
  interactions: Omit<InteractionsRow, "instance">[] | null;
  words: Record<string, WordAttribution[]>;
  tracks: Track[];
  media: { key: string; mime: string; file: string }[];
  /** Words of token modalities, by modality. */
  word_groups?: Record<string, WordGroup[]>;
  /** Patch (image) modalities, by modality: drawn as a heat map over the image. */
  patches?: Record<string, PatchMap>;
  /** MM-SHAP's modality shares (T-SHAP, V-SHAP) of this instance. */
  mm_shap?: { modality: string; share: number; abs_total: number }[] | null;
}

export interface Comparison {
  a: RunInfo;
  b: RunInfo;
  label_kind: string;
  n_matched: number;
  n_disagree: number;
  columns: Record<string, Cell[] | null>;
  shapley: Record<string, Record<string, (number | null)[]>>;
}

export interface TableJSON {
  name: string;
  rows: number;
  columns: Record<string, Cell[]>;
}

/** The manifest of an interaction run (the run the interaction views show). */
export type Manifest = InteractionManifest;
