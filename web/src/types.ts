// Wire types of the modalens API (mirrors the pydantic models in src/modalens/app/server.py).

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

export interface Template {
  template_id: number;
  items: string[];
  modalities: string[];
  polarity: string;
  support: number;
  count: number;
  mean_prediction: number | null;
  mean_attribution: number | null;
  members: number[];
}

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

export interface InstanceDetail {
  instance: number;
  row: Record<string, Cell>;
  modalities: { name: string; kind: string }[];
  warnings: string[];
  modality_shapley: { modality: string; value: number; share: number; role: string }[] | null;
  coalitions: { coalition: string; size: number; value: number }[] | null;
  interactions: { modality_i: string; modality_j: string; shapley_interaction: number; mobius: number }[] | null;
  words: Record<string, WordAttribution[]>;
  tracks: Track[];
  media: { key: string; mime: string; file: string }[];
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

/** A run's manifest; only the keys the views read are typed. */
export interface Manifest {
  kind: string;
  modalities?: string[];
  dataset?: { name?: string; label_kind?: string; class_names?: string[] | null; modalities?: { name: string; kind: string }[] };
  model?: Record<string, unknown>;
  global?: {
    performance?: Record<string, number | null>;
    modality_importance?: Record<string, number>;
    type_shares?: Record<string, number>;
    error_by_type?: Record<string, { count: number; mae: number | null }>;
  };
  projection?: { method?: string };
  tables: Record<string, { file: string; rows: number; columns: string[] }>;
  [key: string]: unknown;
}
