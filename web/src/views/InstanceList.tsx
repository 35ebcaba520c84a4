// Every instance of the selection (all N without one) in a windowed list: fixed-height rows, only the visible ones
// (plus a margin) in the page, so 500,000 rows scroll as smoothly as 50. Sortable; arrow keys move the open instance.

import { memo, useEffect, useMemo, useRef, useState, type Dispatch } from "react";
import { TYPE_COLORS } from "../colors";
import { prefetchAfter } from "../detailCache";
import { Empty } from "../components/common";
import { applyFilter, decodeFilter, describeCondition, describeFilter, encodeFilter, missingColumns, relaxations, type FilterSpec } from "../filters";
import { columnsFor } from "../sliceApi";
import { fmt, num } from "../stats";
import type { SelectionAction } from "../selection";
import { useSettledSelection, useStore, type RunData } from "../store";
import type { Cell, InstanceTable } from "../types";
import "./InstanceList.css";

export const ROW_HEIGHT = 26;
const VIEW_HEIGHT = 480;
const OVERSCAN = 41; // rows kept beyond each edge: the first screen holds 60 rows, as the list always showed

export type SortKey = "abs_error" | "interaction_strength" | "id" | "label" | "prediction";
const SORTS: { value: SortKey; label: string; desc: boolean }[] = [
  { value: "abs_error", label: "|error|", desc: true },
  { value: "interaction_strength", label: "interaction strength", desc: true },
  { value: "id", label: "id", desc: false },
  { value: "label", label: "label", desc: true },
  { value: "prediction", label: "prediction", desc: true },
];

/** Indices ordered by a column (missing values last, ties in run order). */
export function sortIndices(idx: ArrayLike<number>, col: ArrayLike<Cell> | undefined, desc: boolean, asText: boolean): Int32Array {
  const out = Int32Array.from(idx);
  if (!col) return out;
  if (asText) {
    const key = (i: number) => (col[i] == null ? null : String(col[i]));
    const sign = desc ? -1 : 1;
    return out.sort((a, b) => {
      const ka = key(a);
      const kb = key(b);
      if (ka === kb) return a - b;
      if (ka === null) return 1;
      if (kb === null) return -1;
      return (ka < kb ? -1 : 1) * sign;
    });
  }
  // numeric keys: a stable LSD radix sort on the keys' order-preserving bits (4 passes of 16 bits over the high
  // and low words), about 5x faster than a comparator sort at 500,000 rows; ties stay in run order
  const m = out.length;
  const f = new Float64Array(m);
  for (let k = 0; k < m; k++) {
    const v = num(col[out[k]]);
    f[k] = Number.isFinite(v) ? (desc ? -v : v) + 0 : Infinity; // + 0 turns -0 into 0: equal keys stay ties
  }
  const words = new Uint32Array(f.buffer); // little-endian: [lo, hi] per key
  const hi = new Uint32Array(m);
  const lo = new Uint32Array(m);
  for (let k = 0; k < m; k++) {
    const h = words[2 * k + 1];
    const neg = h >>> 31 === 1;
    hi[k] = neg ? ~h >>> 0 : (h | 0x80000000) >>> 0;
    lo[k] = neg ? ~words[2 * k] >>> 0 : words[2 * k];
  }
  let order = new Uint32Array(m);
  for (let k = 0; k < m; k++) order[k] = k;
  let tmp = new Uint32Array(m);
  const count = new Uint32Array(65536);
  for (const [key, shift] of [[lo, 0], [lo, 16], [hi, 0], [hi, 16]] as [Uint32Array, number][]) {
    count.fill(0);
    for (let k = 0; k < m; k++) count[(key[order[k]] >>> shift) & 0xffff]++;
    let sum = 0;
    for (let d = 0; d < 65536; d++) {
      const c = count[d];
      count[d] = sum;
      sum += c;
    }
    for (let k = 0; k < m; k++) {
      const o = order[k];
      tmp[count[(key[o] >>> shift) & 0xffff]++] = o;
    }
    [order, tmp] = [tmp, order];
  }
  const sorted = new Int32Array(m);
  for (let k = 0; k < m; k++) sorted[k] = out[order[k]];
  return sorted;
}

/** The first `k` entries of `sortIndices(idx, col, desc, asText)` (the same order, ties kept in `idx` order) in one
 * pass with a small sorted buffer: what the first screen of the list needs, without sorting every row. `idx` null
 * stands for 0..n-1. */
export function topIndices(idx: ArrayLike<number> | null, n: number, col: ArrayLike<Cell> | undefined, desc: boolean, asText: boolean, k: number): Int32Array {
  const m = idx ? idx.length : n;
  k = Math.max(0, Math.min(k, m));
  const out = new Int32Array(k);
  if (!col) {
    for (let j = 0; j < k; j++) out[j] = idx ? idx[j] : j;
    return out;
  }
  // numeric keys ascend (desc: negated), missing = Infinity (last); text keys: null = last
  const sign = desc ? -1 : 1;
  const numKey = (i: number) => {
    const v = num(col[i]);
    return Number.isFinite(v) ? sign * v + 0 : Infinity;
  };
  const txtKey = (i: number) => (col[i] == null ? null : String(col[i]));
  // a < b strictly (a ranks before b)
  const before = asText
    ? (a: string | number | null, b: string | number | null) => a !== b && a !== null && (b === null || (sign > 0 ? (a as string) < (b as string) : (a as string) > (b as string)))
    : (a: string | number | null, b: string | number | null) => (a as number) < (b as number);
  const keys: (string | number | null)[] = [];
  let size = 0;
  for (let j = 0; j < m; j++) {
    const i = idx ? idx[j] : j;
    const key = asText ? txtKey(i) : numKey(i);
    if (size === k && !before(key, keys[k - 1])) continue; // not better than the worst kept: ties keep idx order
    // insert after every kept key that is not after it (stable)
    let lo = 0;
    let hi = size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (before(key, keys[mid])) hi = mid;
      else lo = mid + 1;
    }
    const end = size < k ? size : k - 1;
    for (let q = end; q > lo; q--) {
      keys[q] = keys[q - 1];
      out[q] = out[q - 1];
    }
    keys[lo] = key;
    out[lo] = i;
    if (size < k) size++;
  }
  return out;
}

/** The rows of `order` (every instance, sorted) that the mask keeps, in that order. */
function keepMasked(order: Int32Array, mask: Uint8Array, count: number): Int32Array {
  const out = new Int32Array(count);
  let c = 0;
  for (let k = 0; k < order.length && c < count; k++) if (mask[order[k]] === 1) out[c++] = order[k];
  return c === count ? out : out.subarray(0, c);
}

// every instance sorted by a column, once per table, column and direction: a selection's order is this order
// filtered by the selection mask (O(N)), so a lasso never sorts
const fullOrders = new WeakMap<InstanceTable, Map<string, Int32Array>>();
const SYNC_SORT_MAX = 20_000; // below this a full sort takes a few ms: done at once

function fullOrder(t: InstanceTable, sort: SortKey, desc: boolean): Int32Array {
  let byKey = fullOrders.get(t);
  if (!byKey) fullOrders.set(t, (byKey = new Map()));
  const key = `${sort}:${desc}`;
  let order = byKey.get(key);
  if (!order) {
    order = sortIndices(Int32Array.from({ length: t.n }, (_, i) => i), t.columns[sort], desc, sort === "id");
    byKey.set(key, order);
  }
  return order;
}

function knownOrder(t: InstanceTable, sort: SortKey, desc: boolean): Int32Array | null {
  return fullOrders.get(t)?.get(`${sort}:${desc}`) ?? (t.n <= SYNC_SORT_MAX ? fullOrder(t, sort, desc) : null);
}

export function InstanceList() {
  const { run, sel: urgent, dispatch } = useStore();
  const { selected, mask } = useSettledSelection(); // deferred: the projection answers a lasso first
  return <InstanceListBody run={run} dispatch={dispatch} selected={selected} mask={mask} focused={urgent.focused} filter={urgent.filter} />;
}

// memo: the urgent render of a selection change (where `selected` is still the old one) skips the list
const InstanceListBody = memo(function InstanceListBody(props: {
  run: RunData;
  dispatch: Dispatch<SelectionAction>;
  selected: Int32Array | null;
  mask: Uint8Array;
  focused: number | null;
  filter: string | null;
}) {
  const { run, dispatch, mask } = props;
  const sel = { selected: props.selected, focused: props.focused, filter: props.filter };
  const t = run.table;
  const [sort, setSort] = useState<SortKey>("abs_error");
  const [desc, setDesc] = useState(true);
  const [scrollTop, setScrollTop] = useState(0);
  const box = useRef<HTMLDivElement>(null);
  // a large run's full sort (about 200 ms at 500,000) runs when the page is idle; until then the rows on screen
  // come from a one-pass top-k of the same order
  const [sortedTick, setSortedTick] = useState(0);
  useEffect(() => {
    if (knownOrder(t, sort, desc)) return;
    const later = window.requestIdleCallback ?? ((f: () => void) => window.setTimeout(f, 30));
    const cancel = window.cancelIdleCallback ?? window.clearTimeout;
    const id = later(() => {
      fullOrder(t, sort, desc);
      setSortedTick((x) => x + 1);
    });
    return () => cancel(id);
  }, [t, sort, desc]);
  const size = sel.selected ? sel.selected.length : t.n;
  const firstScreen = Math.ceil((scrollTop + VIEW_HEIGHT) / ROW_HEIGHT) + OVERSCAN;
  const order = useMemo(() => knownOrder(t, sort, desc), [t, sort, desc, sortedTick]);
  const rows = useMemo(() => {
    if (order) return sel.selected ? keepMasked(order, mask, sel.selected.length) : order;
    return topIndices(sel.selected, t.n, t.columns[sort], desc, sort === "id", Math.max(firstScreen, 120));
  }, [order, t, sel.selected, mask, sort, desc, firstScreen > 120 ? firstScreen : 0]);
  const position = useMemo(() => {
    if (sel.focused == null) return -1;
    for (let k = 0; k < rows.length; k++) if (rows[k] === sel.focused) return k;
    return -1;
  }, [rows, sel.focused]);

  // the rows above and below the open one are fetched ahead, so an arrow key opens from memory
  useEffect(() => {
    if (position < 0) return;
    return prefetchAfter(run.info.id, rows[position], [rows[position + 1], rows[position - 1]]);
  }, [position, rows, run.info.id]);
  // the open instance stays in view (arrow keys, a click in the projection)
  useEffect(() => {
    const el = box.current;
    if (!el || position < 0) return;
    const top = position * ROW_HEIGHT;
    if (top < el.scrollTop) el.scrollTop = top;
    else if (top + ROW_HEIGHT > el.scrollTop + el.clientHeight) el.scrollTop = top + ROW_HEIGHT - el.clientHeight;
  }, [position]);
  // a new order starts at the top; the element is only touched when scrolled (writing or reading scrollTop forces
  // a layout of the page: ~60-90 ms per lasso at 50,000 instances)
  const scrolled = useRef(0); // the list's scrollTop as its scroll events last said (reading the element's own
  // after a change of rows forces a layout too)
  useEffect(() => {
    const el = box.current;
    if (el && scrolled.current !== 0) el.scrollTop = scrolled.current = 0;
    setScrollTop((s) => (s === 0 ? s : 0));
  }, [sort, desc, sel.selected]);

  const onKey = (e: React.KeyboardEvent) => {
    if (rows.length === 0) return;
    const page = Math.max(1, Math.floor(VIEW_HEIGHT / ROW_HEIGHT) - 1);
    const step: Record<string, number> = { ArrowDown: 1, ArrowUp: -1, PageDown: page, PageUp: -page, Home: -Infinity, End: Infinity };
    if (!(e.key in step)) return;
    e.preventDefault();
    const from = position < 0 ? (step[e.key] > 0 ? -1 : rows.length) : position;
    const k = Math.max(0, Math.min(rows.length - 1, from + step[e.key]));
    dispatch({ type: "focus", index: rows[k] });
  };

  const first = Math.max(0, Math.floor(scrollTop / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(rows.length, Math.ceil((scrollTop + VIEW_HEIGHT) / ROW_HEIGHT) + OVERSCAN);
  const visible: number[] = [];
  for (let k = first; k < last; k++) visible.push(k);
  const sortLabel = SORTS.find((s) => s.value === sort)?.label ?? sort;

  return (
    <div className="instance-list" data-testid="instance-list">
      <div className="list-head">
        <strong>{sel.selected ? `Selected instances (${size.toLocaleString()})` : `All instances (${size.toLocaleString()})`}</strong>
        <span className="list-sort">
          <label>
            by{" "}
            <select
              value={sort}
              onChange={(e) => {
                const s = SORTS.find((x) => x.value === e.target.value) ?? SORTS[0];
                setSort(s.value);
                setDesc(s.desc);
              }}
              aria-label="sort instances"
            >
              {SORTS.map((s) => (
                <option key={s.value} value={s.value}>
                  {s.label}
                </option>
              ))}
            </select>
          </label>
          <button type="button" className="sort-dir" onClick={() => setDesc((d) => !d)} aria-label={desc ? "largest first; click for smallest first" : "smallest first; click for largest first"} title={desc ? "largest first" : "smallest first"}>
            {desc ? "↓" : "↑"}
          </button>
        </span>
      </div>
      {size === 0 ? (
        sel.filter !== null ? <NoMatch filter={sel.filter} /> : <Empty title="The selection is empty" hint="Lasso a region with points in it, or clear the selection." />
      ) : (
        <>
          <div
            className="vlist"
            ref={box}
            tabIndex={0}
            role="listbox"
            aria-label={`instances sorted by ${sortLabel}; arrow keys open the next or previous`}
            aria-activedescendant={position >= 0 ? `irow-${rows[position]}` : undefined}
            style={{ height: Math.min(VIEW_HEIGHT, size * ROW_HEIGHT + 2) }}
            onScroll={(e) => setScrollTop((scrolled.current = e.currentTarget.scrollTop))}
            onKeyDown={onKey}
          >
            <div className="vlist-inner" style={{ height: size * ROW_HEIGHT }}>
              {/* keyed by position: a new selection or order updates the rows' text in place instead of
                  building every row's elements anew */}
              {visible.map((k) => (
                <Row key={k} t={t} i={rows[k]} k={k} active={sel.focused === rows[k]} onOpen={() => dispatch({ type: "focus", index: rows[k] })} onHover={(h) => dispatch({ type: "hover", index: h })} />
              ))}
            </div>
          </div>
          <p className="note list-foot">
            {position >= 0 ? `open: row ${(position + 1).toLocaleString()} of ${size.toLocaleString()} · ` : ""}
            ↑/↓ open the previous or next instance
          </p>
        </>
      )}
    </div>
  );
});

function Row(props: { t: InstanceTable; i: number; k: number; active: boolean; onOpen: () => void; onHover: (i: number | null) => void }) {
  const { t, i } = props;
  return (
    <button
      type="button"
      id={`irow-${i}`}
      role="option"
      aria-selected={props.active}
      tabIndex={-1}
      className={`instance-row ${props.active ? "active" : ""}`}
      data-instance={i}
      data-row={props.k}
      style={{ top: props.k * ROW_HEIGHT, height: ROW_HEIGHT }}
      onClick={props.onOpen}
      onMouseEnter={() => props.onHover(i)}
      onMouseLeave={() => props.onHover(null)}
    >
      <span className="type-dot" style={{ background: TYPE_COLORS[String(t.columns.interaction_type?.[i])] ?? "#999" }} />
      <span className="iid">{String(t.columns.id?.[i] ?? i)}</span>
      <span className="num">y {fmt(num(t.columns.label?.[i]))}</span>
      <span className="num">ŷ {fmt(num(t.columns.prediction?.[i]))}</span>
      <span className="num err">|e| {fmt(num(t.columns.abs_error?.[i]))}</span>
    </button>
  );
}

/** "No instance matches: label ≥ 2 and word contains 'xyz'", with what dropping each condition would give. */
export function NoMatch(props: { filter: string }) {
  const { run, dispatch } = useStore();
  const spec = useMemo<FilterSpec | null>(() => {
    try {
      return decodeFilter(props.filter);
    } catch {
      return null;
    }
  }, [props.filter]);
  const [counts, setCounts] = useState<{ index: number; count: number }[] | null>(null);
  useEffect(() => {
    if (!spec) return;
    let live = true;
    columnsFor(run.info.id, run.table, missingColumns(spec, run.table.columns).length > 0).then(
      (cols) => live && setCounts(relaxations(spec, cols, run.table.n)),
      () => live && setCounts(null),
    );
    return () => {
      live = false;
    };
  }, [spec, run]);
  if (!spec) return <Empty title="No instance matches this filter" />;
  const relax = async (index: number) => {
    const next = { conditions: spec.conditions.filter((_, j) => j !== index) };
    const cols = await columnsFor(run.info.id, run.table, missingColumns(next, run.table.columns).length > 0);
    dispatch({ type: "select", indices: applyFilter(next, cols, run.table.n), source: `filter: ${describeFilter(next)}`, filter: encodeFilter(next) });
  };
  return (
    <div className="empty no-match" role="status" data-testid="no-match">
      <strong>No instance matches: {describeFilter(spec)}</strong>
      <p>Relax the filter:</p>
      <ul>
        {spec.conditions.map((c, k) => (
          <li key={k}>
            <button type="button" onClick={() => void relax(k)} data-relax={k}>
              drop “{describeCondition(c)}”
            </button>{" "}
            {counts ? <span className="sub">→ {counts[k].count.toLocaleString()} match</span> : null}
          </li>
        ))}
        <li>
          <button type="button" onClick={() => dispatch({ type: "clear" })} data-testid="no-match-clear">
            clear the selection
          </button>
        </li>
      </ul>
    </div>
  );
}
