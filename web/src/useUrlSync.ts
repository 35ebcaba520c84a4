// Keeps the URL and the explorer's state in step: restores the view from the URL when a run opens and on
// back/forward, and writes every change back (replacing the history entry; tab and run changes push one).

import { useEffect, useRef, useState } from "react";
import { applyFilter, decodeFilter, describeFilter, encodeFilter, missingColumns } from "./filters";
import { isColorBy } from "./selection";
import { columnsFor } from "./sliceApi";
import { DEFER_FROM, useStore } from "./store";
import { decodeSelection, encodeSelection, parseState, writeParams } from "./urlState";

export type Tab = "explore" | "compare";

/** Sync the URL with the store and the tab; returns a problem with the link to show (or null). */
export function useUrlSync(tab: Tab, setTab: (t: Tab) => void): string | null {
  const { run, sel, dispatch } = useStore();
  const restored = useRef(false);
  const [problem, setProblem] = useState<string | null>(null);
  const n = run.table.n;

  useEffect(() => {
    let live = true;
    const restore = async () => {
      const s = parseState(window.location.search);
      if (s.run !== null && s.run !== run.info.id) return; // another run's entry: App switches runs
      setTab(s.tab === "compare" ? "compare" : "explore");
      let selected: Int32Array | null = null;
      let source: string | null = null;
      let filter: string | null = null;
      const problems: string[] = [];
      if (s.sel !== null) {
        selected = decodeSelection(s.sel, n);
        source = "from the link";
        if (selected === null) problems.push("the link's selection cannot be read");
      } else if (s.slice) {
        try {
          const spec = decodeFilter(s.slice);
          const cols = await columnsFor(run.info.id, run.table, missingColumns(spec, run.table.columns).length > 0);
          selected = applyFilter(spec, cols, n);
          source = `filter: ${describeFilter(spec)}`;
          filter = encodeFilter(spec);
        } catch (e) {
          problems.push(`the link's filter cannot be used: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
      if (!live) return;
      const focused = s.open !== null && s.open < n ? s.open : null;
      if (s.open !== null && focused === null) problems.push(`the link opens instance ${s.open}, but the run has ${n.toLocaleString()}`);
      dispatch({ type: "restore", selected, source, filter, focused, colorBy: isColorBy(s.color) ? s.color : "type" });
      setProblem(problems.length ? problems.join("; ") : null);
      restored.current = true;
      writeParams({ run: run.info.id });
    };
    void restore();
    const onPop = () => void restore();
    window.addEventListener("popstate", onPop);
    return () => {
      live = false;
      window.removeEventListener("popstate", onPop);
    };
  }, [run, n, dispatch, setTab]);

  useEffect(() => {
    if (!restored.current) return;
    const write = () =>
      writeParams({
        run: run.info.id,
        tab: tab === "explore" ? null : tab,
        slice: sel.filter || null,
        sel: sel.selected && sel.filter === null ? encodeSelection(sel.selected) : null,
        open: sel.focused === null ? null : String(sel.focused),
        color: sel.colorBy === "type" ? null : sel.colorBy,
      });
    if (n < DEFER_FROM || typeof window.requestIdleCallback !== "function") return write();
    // a large run: off the interaction's path (history.replaceState costs ~10 ms here), the last state only
    const id = window.requestIdleCallback(write, { timeout: 500 });
    return () => window.cancelIdleCallback(id);
  }, [run.info.id, tab, sel.selected, sel.filter, sel.focused, sel.colorBy, n]);

  return problem;
}
