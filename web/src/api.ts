// Data access: the live server's API, or the data embedded by `modalens export --html` (same paths, same JSON).

import { useEffect, useState } from "react";
import { type Embedded, embeddedReady, readEmbedded } from "./exportData";

/** The embedded export data, when this page is a self-contained HTML export (its documents are there once
 * `embeddedReady()` resolved; getJSON waits for that). */
export function embeddedData(): Embedded | null {
  return readEmbedded();
}

export class ApiError extends Error {
  constructor(
    message: string,
    public status: number,
  ) {
    super(message);
  }
}

export async function getJSON<T>(path: string): Promise<T> {
  const emb = embeddedData();
  if (emb) {
    await embeddedReady();
    if (path in emb.documents) return emb.documents[path] as T;
    throw new ApiError(`This exported file does not include ${path}. ${emb.note ?? "Serve the run with `modalens serve RUN_DIR` to see everything."}`, 404);
  }
  let res: Response;
  try {
    res = await fetch(path);
  } catch {
    throw new ApiError("The modalens server cannot be reached. Is `modalens serve` still running?", 0);
  }
  if (!res.ok) {
    let detail = res.statusText;
    try {
      const body = await res.json();
      detail = body.error ?? body.detail ?? detail; // the server answers {"error": message}
    } catch {
      /* not JSON */
    }
    throw new ApiError(detail, res.status);
  }
  return (await res.json()) as T;
}

/** URL of a media file: a data: URI inside an export, else the API route. */
export function mediaUrl(runId: string, key: string, file: string): string | null {
  const path = `api/runs/${encodeURIComponent(runId)}/media/${encodeURIComponent(key)}/${encodeURIComponent(file)}`;
  const emb = embeddedData();
  if (emb) return (emb.documents[path] as string | undefined) ?? null;
  return path;
}

export const paths = {
  runs: () => "api/runs",
  manifest: (run: string) => `api/runs/${encodeURIComponent(run)}`,
  instances: (run: string) => `api/runs/${encodeURIComponent(run)}/instances`,
  instance: (run: string, i: number) => `api/runs/${encodeURIComponent(run)}/instances/${i}`,
  templates: (run: string) => `api/runs/${encodeURIComponent(run)}/templates`,
  table: (run: string, name: string) => `api/runs/${encodeURIComponent(run)}/tables/${encodeURIComponent(name)}`,
  compare: (a: string, b: string) => `api/compare/${encodeURIComponent(a)}/${encodeURIComponent(b)}`,
};

export type Loadable<T> = { status: "idle" } | { status: "loading" } | { status: "error"; error: string } | { status: "ready"; data: T };

/** Fetch a document whenever its path changes (null = nothing to fetch). */
export function useDocument<T>(path: string | null): Loadable<T> {
  const [state, setState] = useState<Loadable<T>>({ status: path ? "loading" : "idle" });
  useEffect(() => {
    if (!path) {
      setState({ status: "idle" });
      return;
    }
    let live = true;
    setState({ status: "loading" });
    getJSON<T>(path).then(
      (data) => live && setState({ status: "ready", data }),
      (err: unknown) => live && setState({ status: "error", error: err instanceof Error ? err.message : String(err) }),
    );
    return () => {
      live = false;
    };
  }, [path]);
  return state;
}
