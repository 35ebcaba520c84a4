// Saved slices, the export of a selection and the utterance texts: through the server, or, inside a self-contained
// HTML export (no server), in the browser (slices in localStorage, CSV built here).

import { ApiError, embeddedData, getJSON } from "./api";
import type { Columns, FilterSpec } from "./filters";
import type { Cell, InstanceTable, RunInfo } from "./types";

export interface SavedSlice {
  name: string;
  filter: FilterSpec;
  created: string;
}

const enc = encodeURIComponent;
const slicesPath = (run: string) => `api/runs/${enc(run)}/slices`;

async function send(method: string, path: string, body?: unknown): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(path, { method, headers: body === undefined ? {} : { "Content-Type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError("The modalens server cannot be reached. Is `modalens serve` still running?", 0);
  }
  if (!res.ok) {
    let detail = res.statusText;
    try {
      detail = (await res.json()).error ?? detail;
    } catch {
      /* not JSON */
    }
    throw new ApiError(detail, res.status);
  }
  return res;
}

// -- slices ---------------------------------------------------------------------------------------------------------

/** localStorage key of an exported page's slices: the run's identity, as the server keys its files. */
const localKey = (run: RunInfo) => `modalens.slices.${run.created ?? ""}.${run.name}`;

function readLocal(run: RunInfo): SavedSlice[] {
  try {
    const v = JSON.parse(window.localStorage.getItem(localKey(run)) ?? "[]");
    return Array.isArray(v) ? v : [];
  } catch {
    return [];
  }
}

export async function listSlices(run: RunInfo): Promise<SavedSlice[]> {
  if (embeddedData()) return readLocal(run);
  return (await getJSON<{ slices: SavedSlice[] }>(slicesPath(run.id))).slices;
}

export async function saveSlice(run: RunInfo, name: string, filter: FilterSpec): Promise<void> {
  if (embeddedData()) {
    const kept = readLocal(run).filter((s) => s.name !== name);
    window.localStorage.setItem(localKey(run), JSON.stringify([...kept, { name, filter, created: new Date().toISOString() }]));
    return;
  }
  await send("PUT", `${slicesPath(run.id)}/${enc(name)}`, { filter });
}

export async function deleteSlice(run: RunInfo, name: string): Promise<void> {
  if (embeddedData()) {
    window.localStorage.setItem(localKey(run), JSON.stringify(readLocal(run).filter((s) => s.name !== name)));
    return;
  }
  await send("DELETE", `${slicesPath(run.id)}/${enc(name)}`);
}

/** What the server accepts as a name (slice_routes.NAME_PATTERN); null when fine, else why not. */
export function nameProblem(name: string): string | null {
  if (name.length < 1 || name.length > 80 || name !== name.trim()) return "1 to 80 characters, no leading or trailing space";
  if (!/^[\p{L}\p{N}_][\p{L}\p{N}_ .,()+\-#&'=<>%]*$/u.test(name)) return "letters, digits, spaces and . , ( ) + - # & ' = < > % _ only";
  return null;
}

// -- the text column ------------------------------------------------------------------------------------------------

const texts = new Map<string, Promise<Cell[] | null>>();

/** Every instance's utterance (loaded once per run; the instance document leaves texts out to stay small). */
export function textColumn(run: string, table: InstanceTable): Promise<Cell[] | null> {
  if (table.columns.text) return Promise.resolve(table.columns.text);
  let p = texts.get(run);
  if (!p) {
    p = getJSON<{ text: Cell[] | null }>(`api/runs/${enc(run)}/text`).then(
      (d) => d.text,
      (err: unknown) => {
        texts.delete(run);
        throw err;
      },
    );
    texts.set(run, p);
  }
  return p;
}

/** The columns a filter may read: the instance table's, plus the texts when a condition needs them. */
export async function columnsFor(run: string, table: InstanceTable, needText: boolean): Promise<Columns> {
  if (!needText || table.columns.text) return table.columns;
  const text = await textColumn(run, table);
  return text ? { ...table.columns, text } : table.columns;
}

// -- export of a selection ------------------------------------------------------------------------------------------

function download(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function csvCell(v: Cell | undefined): string {
  if (v == null || (typeof v === "number" && Number.isNaN(v))) return "";
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** CSV of the selected rows from the table in the page (what an HTML export offers): its columns and Shapley values. */
export function selectionCsv(table: InstanceTable, indices: ArrayLike<number>, text?: Cell[] | null): string {
  const cols = Object.keys(table.columns).filter((c) => c !== "text");
  const header = ["instance", ...cols.filter((c) => c !== "instance"), ...(text ? ["text"] : []), ...table.modalities.map((m) => `shapley_${m}`)];
  const lines = [header.join(",")];
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    const row: string[] = [String(i)];
    for (const c of cols) if (c !== "instance") row.push(csvCell(table.columns[c][i]));
    if (text) row.push(csvCell(text[i]));
    for (const m of table.modalities) row.push(csvCell(table.shapley[m]?.[i]));
    lines.push(row.join(","));
  }
  return `${lines.join("\n")}\n`;
}

/** Downloads the selection as CSV or Parquet (the server builds it); in an HTML export, CSV built in the page. */
export async function exportSelection(run: RunInfo, table: InstanceTable, indices: Int32Array, format: "csv" | "parquet"): Promise<string> {
  if (embeddedData()) {
    const text = await textColumn(run.id, table).catch(() => null);
    const name = `${run.id}-selection-${indices.length}.csv`;
    download(new Blob([selectionCsv(table, indices, text)], { type: "text/csv" }), name);
    return name;
  }
  const res = await send("POST", `api/runs/${enc(run.id)}/selection?format=${format}`, { indices: Array.from(indices) });
  const name = /filename="([^"]+)"/.exec(res.headers.get("content-disposition") ?? "")?.[1] ?? `${run.id}-selection.${format}`;
  download(await res.blob(), name);
  return name;
}
