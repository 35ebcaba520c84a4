// The view in the URL, so a link or a reload reproduces it. Keys of the query string:
//   run    the run id                     tab   explore | compare (absent: explore)
//   slice  the filter (filters.ts text)    sel   the selection as index ranges, "0-5,9,12-20" (absent when the
//   open   the focused instance                  selection is exactly the slice's result, or too large for a link)
//   color  colour-by channel               (other views add keys of their own through readParam/writeParam)
// Small changes replace the history entry; a tab or run change pushes one, so back/forward step between views.

export const MAX_SEL_CHARS = 4000; // a link stays under ~5 kB: some servers and chat tools cut longer URLs

export interface UrlState {
  run: string | null;
  tab: string | null;
  slice: string | null;
  sel: string | null;
  open: number | null;
  color: string | null;
}

/** Compact text of sorted indices as ranges ("0-5,9,12-20"), or null when it would be longer than `maxChars`. */
export function encodeSelection(indices: ArrayLike<number>, maxChars = MAX_SEL_CHARS): string | null {
  const parts: string[] = [];
  let len = 0;
  let k = 0;
  while (k < indices.length) {
    const start = indices[k];
    let end = start;
    while (k + 1 < indices.length && indices[k + 1] === end + 1) end = indices[++k];
    k++;
    const part = end === start ? String(start) : `${start}-${end}`;
    len += part.length + (parts.length ? 1 : 0);
    if (len > maxChars) return null;
    parts.push(part);
  }
  return parts.join(",");
}

/** Indices from the compact text: sorted, unique, inside 0..n-1; null when the text is not a selection. */
export function decodeSelection(text: string, n: number): Int32Array | null {
  if (text === "") return new Int32Array(0);
  const out: number[] = [];
  for (const part of text.split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) return null;
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a || b - a > n) return null;
    for (let i = a; i <= Math.min(b, n - 1); i++) out.push(i);
  }
  const arr = Int32Array.from(new Set(out));
  arr.sort();
  return arr;
}

/** Percent-encodes a query value, leaving the characters filters and ranges use readable (: , ; = ~ . - _). */
export function encodeValue(v: string): string {
  return encodeURIComponent(v).replace(/%(3A|2C|3B|3D|40|2F)/gi, (s) => decodeURIComponent(s));
}

/** The URL state in a query string ("?a=b&..."). */
export function parseState(search: string): UrlState {
  const q = new URLSearchParams(search);
  const open = q.get("open");
  return {
    run: q.get("run"),
    tab: q.get("tab"),
    slice: q.get("slice"),
    sel: q.get("sel"),
    open: open !== null && /^\d+$/.test(open) ? Number(open) : null,
    color: q.get("color"),
  };
}

/** `search` with these keys set (null removes a key); other keys keep their place and value. */
export function withParams(search: string, values: Record<string, string | null | undefined>): string {
  const q = new URLSearchParams(search);
  const pairs: [string, string][] = [];
  const done = new Set<string>();
  for (const [k, v] of q) {
    if (k in values) {
      if (done.has(k)) continue;
      done.add(k);
      const nv = values[k];
      if (nv != null) pairs.push([k, nv]);
    } else pairs.push([k, v]);
  }
  for (const [k, v] of Object.entries(values)) if (!done.has(k) && v != null) pairs.push([k, v]);
  const text = pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeValue(v)}`).join("&");
  return text ? `?${text}` : "";
}

/** One key of the current URL. */
export function readParam(key: string): string | null {
  if (typeof window === "undefined") return null;
  return new URLSearchParams(window.location.search).get(key);
}

/** Sets keys of the current URL (null removes); `push` makes a new history entry (back returns to this one). */
export function writeParams(values: Record<string, string | null | undefined>, opts: { push?: boolean } = {}): void {
  if (typeof window === "undefined") return;
  const search = withParams(window.location.search, values);
  if (search === window.location.search) return;
  const url = `${window.location.pathname}${search}${window.location.hash}`;
  try {
    if (opts.push) window.history.pushState(null, "", url);
    else window.history.replaceState(window.history.state, "", url);
  } catch {
    // a page without a URL of its own (a notebook's srcdoc frame, some file:// exports) cannot change it: the view
    // still works, only the link does not follow
  }
}

/** Sets one key of the current URL (null removes it). */
export function writeParam(key: string, value: string | null, opts: { push?: boolean } = {}): void {
  writeParams({ [key]: value }, opts);
}
