import { createContext, useContext, useDeferredValue, useEffect, useMemo, useReducer, useRef, type Dispatch, type ReactNode } from "react";
import { initialSelection, selectionMask, selectionReducer, type Selection, type SelectionAction } from "./selection";
import type { InstanceTable, Manifest, RunInfo } from "./types";

export interface RunData {
  info: RunInfo;
  manifest: Manifest;
  table: InstanceTable;
  /** Modality name -> kind (text, audio, vision, image, tabular), for colours. */
  kinds: Record<string, string>;
}

interface Store {
  run: RunData;
  runs: RunInfo[];
  sel: Selection;
  /** 1 where selected (all 1 without a selection). */
  mask: Uint8Array;
  dispatch: Dispatch<SelectionAction>;
}

const Ctx = createContext<Store | null>(null);
/** Runs from this many instances update their summarising views in a deferred render (useSettledSelection). */
export const DEFER_FROM = 10_000;
// The hovered instance changes on every pointer move: it has a context of its own, so only the views that show it
// re-render on hover (with 50,000 instances, re-rendering every view per move cost tens of ms).
const HoverCtx = createContext<number | null>(null);

/** True when two selection states differ at most in the hovered instance. */
function sameButHover(a: Selection, b: Selection): boolean {
  if (a === b) return true;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]) as Set<keyof Selection>;
  for (const k of keys) if (k !== "hovered" && a[k] !== b[k]) return false;
  return true;
}

export function StoreProvider(props: { run: RunData; runs: RunInfo[]; children: ReactNode }) {
  const [state, dispatch] = useReducer(selectionReducer, initialSelection);
  // `sel` keeps its identity when only the hovered instance changed (its `hovered` may then be stale: read
  // useHovered()), so hovering re-renders no view through useStore()
  const held = useRef(state);
  if (!sameButHover(held.current, state)) held.current = state;
  const sel = held.current;
  const mask = useMemo(() => selectionMask(sel.selected, props.run.table.n), [sel.selected, props.run.table.n]);
  // exposed read-only for the browser tests and the benchmark; on a large run once every view has caught up with
  // it (the summarising views then take the selection in a deferred render: useSettledSelection)
  const big = props.run.table.n >= DEFER_FROM;
  const settled = useDeferredValue(state);
  if (!big) (window as unknown as { __modalensSelection?: Selection }).__modalensSelection = state;
  useEffect(() => {
    if (big) (window as unknown as { __modalensSelection?: Selection }).__modalensSelection = settled;
  }, [big, settled]);
  const value = useMemo(() => ({ run: props.run, runs: props.runs, sel, mask, dispatch }), [props.run, props.runs, sel, mask]);
  return (
    <Ctx.Provider value={value}>
      <HoverCtx.Provider value={state.hovered}>{props.children}</HoverCtx.Provider>
    </Ctx.Provider>
  );
}

/** The hovered instance (projection point or list row), or null; re-renders its caller on every hover change. */
export function useHovered(): number | null {
  return useContext(HoverCtx);
}

export function useStore(): Store {
  const s = useContext(Ctx);
  if (!s) throw new Error("useStore outside StoreProvider");
  return s;
}

/** The selection (indices and mask) for the views that summarise it: Summary, Templates, the instance list. The
 * same values as `sel.selected` and `mask`, but they arrive in a deferred, interruptible render after the
 * projection and the selection bar have shown the change (React's useDeferredValue), so a lasso's first frame does
 * not wait for every panel to recompute (at 500,000 instances each panel is tens of ms). Runs under DEFER_FROM
 * instances get the selection at once. */
export function useSettledSelection(): { selected: Int32Array | null; mask: Uint8Array } {
  const { run, sel, mask } = useStore();
  const pair = useMemo(() => ({ selected: sel.selected, mask }), [sel.selected, mask]);
  const deferred = useDeferredValue(pair);
  return run.table.n >= DEFER_FROM ? deferred : pair; // a small run's panels are quick: no second render
}
