// The data of a self-contained HTML export (`modalens export --html`, src/modalens/app/export.py).
//
// The page carries one <script id="modalens-data"> element. Current exports: a gzip-compressed container written
// one character per byte (the page is windows-1252; NUL, CR, "<" and the escape byte itself are escaped), which
// holds each document's JSON text with its floats taken out into a column of 4-significant-digit decimals, and
// each distinct media file once. Older exports: plain JSON. Either way the app sees `{documents, note}` with every
// document under the API path it would request, media as data: URIs.

export interface Embedded {
  documents: Record<string, unknown>;
  note?: string;
}

const MAGIC = "MLX1";
const ESC = 0x01;
const UNESCAPED: Record<number, number> = { 0x02: 0x00, 0x03: ESC, 0x04: 0x0d, 0x05: 0x3c };
// windows-1252 bytes 0x80..0x9f as the characters a browser decodes them to (WHATWG index); the C1 controls
// (U+0080..U+009F) stand for themselves too, for pages read as Latin-1 (an <iframe srcdoc> string)
const W1252 = [
  0x20ac, 0x81, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6, 0x2030, 0x160, 0x2039, 0x152, 0x8d, 0x17d, 0x8f,
  0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x2dc, 0x2122, 0x161, 0x203a, 0x153, 0x9d, 0x17e, 0x178,
];
const BYTE_OF = new Map<number, number>(W1252.map((c, k) => [c, 0x80 + k]));

/** The bytes a page's text stands for: each character one byte, escapes undone. */
export function textToBytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c >= 0x100 || (c >= 0x80 && c < 0xa0)) {
      const b = BYTE_OF.get(c) ?? (c < 0xa0 ? c : undefined);
      if (b === undefined) throw new Error(`export data: unexpected character U+${c.toString(16)}`);
      c = b;
    }
    if (c === ESC) {
      const code = UNESCAPED[text.charCodeAt(++i)];
      if (code === undefined) throw new Error("export data: a bad escape");
      c = code;
    }
    out[n++] = c;
  }
  return out.subarray(0, n);
}

interface Header {
  meta: Record<string, unknown>;
  docs: [string, number, number, number][];
  media: [string, string, number][];
  blobs: [number, number][];
  numbers: number;
  text: number;
}

/** The documents of a container (after gunzip); each JSON document is decoded on first read. */
export function unpack(buf: Uint8Array, documents: Record<string, unknown> = {}): Embedded {
  if (String.fromCharCode(buf[0], buf[1], buf[2], buf[3]) !== MAGIC) throw new Error("export data: not a modalens export container");
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const size = dv.getUint32(4, true);
  const utf8 = new TextDecoder();
  const header = JSON.parse(utf8.decode(buf.subarray(8, 8 + size))) as Header;
  const textAt = 8 + size;
  const k = header.numbers;
  const planes = textAt + header.text;
  const lo = buf.subarray(planes, planes + k);
  const hi = buf.subarray(planes + k, planes + 2 * k);
  const ex = new Int8Array(buf.buffer, buf.byteOffset + planes + 2 * k, k);
  const mediaAt = planes + 3 * k;
  if (mediaAt > buf.byteLength) throw new Error("export data: truncated");
  const define = (path: string, make: () => unknown) =>
    Object.defineProperty(documents, path, {
      enumerable: true,
      configurable: true,
      get() {
        const value = make();
        Object.defineProperty(documents, path, { value, enumerable: true });
        return value;
      },
    });
  for (const [path, start, end, first] of header.docs)
    define(path, () => {
      const pieces = utf8.decode(buf.subarray(textAt + start, textAt + end)).split("\x01");
      const out: string[] = [pieces[0]];
      for (let j = 1; j < pieces.length; j++) {
        const at = first + j - 1;
        const m = (((hi[at] << 8) | lo[at]) << 16) >> 16; // int16, little-endian planes
        out.push(ex[at] ? `${m}e${ex[at]}` : String(m), pieces[j]);
      }
      return JSON.parse(out.join(""));
    });
  for (const [path, mime, b] of header.media) {
    const [off, len] = header.blobs[b];
    define(path, () => `data:${mime};base64,${base64(buf.subarray(mediaAt + off, mediaAt + off + len))}`);
  }
  return { ...(header.meta as { note?: string }), documents };
}

function base64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

async function gunzip(bytes: Uint8Array): Promise<Uint8Array> {
  if (typeof DecompressionStream === "undefined") throw new Error("This browser cannot open a compressed modalens export (no DecompressionStream); use a current Chromium, Firefox or Safari.");
  const stream = new Blob([bytes as BlobPart]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

let embedded: Embedded | null | undefined;
let ready: Promise<void> = Promise.resolve();

/** The export's data when this page is an export (null on a live server). Non-null from the start; its documents
 * are there once `embeddedReady()` has resolved. */
export function readEmbedded(): Embedded | null {
  if (embedded === undefined) {
    const el = typeof document !== "undefined" ? document.getElementById("modalens-data") : null;
    if (!el?.textContent) embedded = null;
    else if (el.getAttribute("type") === "application/json") embedded = JSON.parse(el.textContent) as Embedded;
    else {
      const target: Embedded = { documents: {} };
      embedded = target;
      const text = el.textContent;
      ready = gunzip(textToBytes(text)).then((buf) => {
        target.note = unpack(buf, target.documents).note;
      });
    }
  }
  return embedded;
}

/** Resolves when the export's documents are decoded (at once on a live server or for a plain-JSON export). */
export function embeddedReady(): Promise<void> {
  readEmbedded();
  return ready;
}
