// Instance detail documents kept in memory, so opening an instance renders without a round trip: the pointer
// resting on a list row or a projection point (~80 ms) fetches its detail, and opening one fetches its neighbours
// in the list (arrow keys). A small LRU keyed by run and index; failures are not kept (the open asks again and
// shows the error).

import { useEffect, useState } from "react";
import { getJSON, paths, type Loadable } from "./api";
import { useHovered, useStore } from "./store";

/** At most this many documents are held (each a few kB to a few hundred kB). */
export const DETAIL_CACHE_SIZE = 24;
/** How long the pointer rests on an instance before its detail is fetched. */
export const HOVER_PREFETCH_MS = 80;

type Entry<T> = { promise: Promise<T>; data?: T };

/** A least-recently-used map of promises: the same request is never made twice while it is held. */
export class LruCache<T> {
  private entries = new Map<string, Entry<T>>();
  constructor(
    private readonly size: number,
    private readonly load: (key: string) => Promise<T>,
  ) {
    if (!(size >= 1)) throw new Error(`LruCache size must be at least 1, got ${size}`);
  }

  /** The document when it has arrived (and marks it recently used), else undefined. */
  peek(key: string): T | undefined {
    const e = this.entries.get(key);
    if (e?.data === undefined) return undefined;
    this.touch(key, e);
    return e.data;
  }

  /** The document's promise, starting its request when not held. */
  get(key: string): Promise<T> {
    const held = this.entries.get(key);
    if (held) {
      this.touch(key, held);
      return held.promise;
    }
    const e: Entry<T> = { promise: Promise.resolve() as Promise<T> };
    e.promise = this.load(key).then(
      (data) => {
        e.data = data;
        return data;
      },
      (err: unknown) => {
        if (this.entries.get(key) === e) this.entries.delete(key); // a failure is asked again next time
        throw err;
      },
    );
    e.promise.catch(() => undefined); // a prefetch nobody awaits must not report an unhandled rejection
    this.entries.set(key, e);
    while (this.entries.size > this.size) this.entries.delete(this.entries.keys().next().value as string);
    return e.promise;
  }

  clear(): void {
    this.entries.clear();
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  keys(): string[] {
    return [...this.entries.keys()];
  }

  private touch(key: string, e: Entry<T>) {
    this.entries.delete(key);
    this.entries.set(key, e);
  }
}

// keyed by the document's path, which holds the run id and the index
const cache = new LruCache<unknown>(DETAIL_CACHE_SIZE, (path) => getJSON<unknown>(path));

/** Start fetching instance `i`'s detail of run `runId` unless it is held already. */
export function prefetchInstance(runId: string, i: number | null | undefined): void {
  if (i == null || !(i >= 0)) return;
  void cache.get(paths.instance(runId, i));
}

/** Fetch instance `i`'s neighbours in a list once `i` itself has arrived (they must not slow the open one). */
export function prefetchAfter(runId: string, i: number, neighbours: (number | undefined)[]): () => void {
  let live = true;
  cache.get(paths.instance(runId, i)).then(
    () => live && neighbours.forEach((j) => prefetchInstance(runId, j)),
    () => undefined,
  );
  return () => {
    live = false;
  };
}

/** The detail document of instance `i` (null = none): ready in the first render when it is in the cache. */
export function useInstanceDetail<T>(runId: string, i: number | null): Loadable<T> {
  const path = i == null ? null : paths.instance(runId, i);
  const now = (): Loadable<T> => {
    if (!path) return { status: "idle" };
    const data = cache.peek(path) as T | undefined;
    return data === undefined ? { status: "loading" } : { status: "ready", data };
  };
  const [state, setState] = useState<{ path: string | null; value: Loadable<T> }>(() => ({ path, value: now() }));
  // a new path is answered in the same render from memory (no "loading" frame in between)
  const current = state.path === path ? state.value : now();
  if (state.path !== path) setState({ path, value: current });
  useEffect(() => {
    if (!path || current.status === "ready") return;
    let live = true;
    (cache.get(path) as Promise<T>).then(
      (data) => live && setState({ path, value: { status: "ready", data } }),
      (err: unknown) => live && setState({ path, value: { status: "error", error: err instanceof Error ? err.message : String(err) } }),
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps -- only a new path (or a first "loading") asks again
  }, [path, current.status === "ready"]);
  return current;
}

/** Fetches the hovered instance's detail once the pointer has rested on it for HOVER_PREFETCH_MS. Renders nothing. */
export function HoverPrefetch() {
  const hovered = useHovered();
  const { run } = useStore();
  useEffect(() => {
    if (hovered == null) return;
    const id = window.setTimeout(() => prefetchInstance(run.info.id, hovered), HOVER_PREFETCH_MS);
    return () => window.clearTimeout(id);
  }, [hovered, run.info.id]);
  return null;
}

// exposed for the benchmark, which empties it to time a cold open
(globalThis as unknown as { __modalensDetailCache?: { clear(): void } }).__modalensDetailCache = cache;
