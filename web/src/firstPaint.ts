// The page's first paint (projection drawn, templates listed) comes before documents that only fill in detail
// (feature importance, per-modality template contributions). The server builds a run's documents one at a time,
// so a detail document asked for at mount can hold up the templates for seconds on a large run (13 s at 500,000
// instances); these wait until the run's first screen is there.

import { useEffect, useState } from "react";

const done = new Set<string>();
const waiting = new Map<string, Set<() => void>>();

/** The first screen of this run is on the page (idempotent). */
export function markFirstPaint(run: string): void {
  if (done.has(run)) return;
  done.add(run);
  const fns = waiting.get(run);
  waiting.delete(run);
  // after the frame that shows it: the detail requests must not delay that frame either
  requestAnimationFrame(() => setTimeout(() => fns?.forEach((f) => f()), 0));
}

export function firstPaintDone(run: string): boolean {
  return done.has(run);
}

/** `path` once the run's first screen is on the page, null before (for useDocument). */
export function useAfterFirstPaint(run: string, path: string | null): string | null {
  const [ready, setReady] = useState(() => done.has(run));
  useEffect(() => {
    if (done.has(run)) {
      setReady(true);
      return;
    }
    setReady(false);
    const fn = () => setReady(true);
    let set = waiting.get(run);
    if (!set) waiting.set(run, (set = new Set()));
    set.add(fn);
    // never wait forever (a view that marks the first paint may not be on the page)
    const timer = window.setTimeout(fn, 10_000);
    return () => {
      set!.delete(fn);
      window.clearTimeout(timer);
    };
  }, [run]);
  return ready ? path : null;
}
