// The instance table in its binary columnar form (`api/runs/{run}/instances?format=binary`, written by
// src/modalens/app/coltable.py): typed little-endian buffers viewed in place instead of 13 MB of JSON parsed number
// by number at 50,000 instances. Decoded into the same InstanceTable (plain arrays, null where JSON has null), so
// the views cannot tell the two forms apart. HTML exports embed the JSON document and are read through getJSON.

import { ApiError, embeddedData, getJSON, paths } from "./api";
import type { Cell, InstanceTable } from "./types";

const MAGIC = "MLCT";
const VERSION = 1;

interface ColumnSpec {
  group: string;
  name: string;
  dtype: "f64" | "i32" | "bool" | "dict" | "json";
  count: number;
  offset?: number;
  values?: Cell[];
}

/** The InstanceTable a binary column document encodes; throws on anything that is not one. */
export function decodeTable(buf: ArrayBuffer): InstanceTable {
  if (buf.byteLength < 12) throw new Error("instance table: truncated binary document");
  const bytes = new Uint8Array(buf);
  const magic = String.fromCharCode(bytes[0], bytes[1], bytes[2], bytes[3]);
  if (magic !== MAGIC) throw new Error("instance table: not a modalens column document");
  const dv = new DataView(buf);
  const version = dv.getUint32(4, true);
  if (version !== VERSION) throw new Error(`instance table: format version ${version}, this app reads ${VERSION}; reload the page`);
  const size = dv.getUint32(8, true);
  if (12 + size > buf.byteLength) throw new Error("instance table: truncated header");
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + size))) as { meta: Record<string, unknown>; columns: ColumnSpec[] };
  const base = 12 + size + ((8 - ((12 + size) % 8)) % 8);
  const doc: Record<string, unknown> = { columns: {}, shapley: {}, ...header.meta };
  for (const spec of header.columns) {
    const values = decodeColumn(buf, base, spec);
    if (spec.group) ((doc[spec.group] ??= {}) as Record<string, Cell[]>)[spec.name] = values;
    else doc[spec.name] = values;
  }
  return doc as unknown as InstanceTable;
}

function decodeColumn(buf: ArrayBuffer, base: number, spec: ColumnSpec): Cell[] {
  const n = spec.count;
  if (spec.dtype === "json") return spec.values ?? [];
  const at = base + (spec.offset ?? 0);
  const width = spec.dtype === "f64" ? 8 : spec.dtype === "bool" ? 1 : 4;
  if (at + n * width > buf.byteLength) throw new Error(`instance table: column ${spec.name} runs past the end of the document`);
  switch (spec.dtype) {
    case "f64": {
      // Array.from keeps a packed double array (fast in every view's loops); NaN is JSON's null
      const out: (number | null)[] = Array.from(new Float64Array(buf, at, n));
      for (let i = 0; i < n; i++) if (out[i] !== out[i]) out[i] = null;
      return out;
    }
    case "i32":
      return Array.from(new Int32Array(buf, at, n));
    case "bool": {
      const src = new Uint8Array(buf, at, n);
      const out = new Array<Cell>(n);
      for (let i = 0; i < n; i++) out[i] = src[i] === 255 ? null : src[i] === 1;
      return out;
    }
    case "dict": {
      const codes = new Int32Array(buf, at, n);
      const table = spec.values ?? [];
      const out = new Array<Cell>(n);
      for (let i = 0; i < n; i++) {
        const c = codes[i];
        out[i] = c < 0 ? null : (table[c] ?? null);
      }
      return out;
    }
    default:
      throw new Error(`instance table: unknown column type ${String((spec as ColumnSpec).dtype)}`);
  }
}

/** The run's instance table: the binary form from the server, the embedded JSON document inside an HTML export. */
export async function loadInstanceTable(runId: string): Promise<InstanceTable> {
  const path = paths.instances(runId);
  if (embeddedData()) return getJSON<InstanceTable>(path);
  let res: Response;
  try {
    res = await fetch(`${path}?format=binary`);
  } catch {
    throw new ApiError("The modalens server cannot be reached. Is `modalens serve` still running?", 0);
  }
  // an error answer is JSON ({"error": ...}); getJSON turns it into the same message as every other document
  if (!res.ok) return getJSON<InstanceTable>(path);
  return decodeTable(await res.arrayBuffer());
}
