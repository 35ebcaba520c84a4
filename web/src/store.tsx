import { createContext, useContext, useMemo, useReducer, type Dispatch, type ReactNode } from "react";
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

export function StoreProvider(props: { run: RunData; runs: RunInfo[]; children: ReactNode }) {
  const [sel, dispatch] = useReducer(selectionReducer, initialSelection);
  const mask = useMemo(() => selectionMask(sel.selected, props.run.table.n), [sel.selected, props.run.table.n]);
  // exposed read-only for the browser tests and the benchmark
  (window as unknown as { __modalensSelection?: Selection }).__modalensSelection = sel;
  const value = useMemo(() => ({ run: props.run, runs: props.runs, sel, mask, dispatch }), [props.run, props.runs, sel, mask]);
  return <Ctx.Provider value={value}>{props.children}</Ctx.Provider>;
}

export function useStore(): Store {
  const s = useContext(Ctx);
  if (!s) throw new Error("useStore outside StoreProvider");
  return s;
}
