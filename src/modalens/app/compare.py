"""Comparing interaction runs of different models on one dataset: instances are matched by their ``id``.

- :func:`compare`: two runs, every matched instance with both predictions and where the models disagree
  (``GET /api/compare/{a}/{b}``).
- :func:`compare_many`: any number of runs side by side (``GET /api/compare?runs=a,b,c``): per-run metrics and
  modality importance over the instances all runs share, the pairwise disagreement, and for every pair of runs
  the transition matrix of their interaction types (rows: run A's ``type:dominant modality``, e.g.
  ``dominance:text``; columns: run B's; cells: matched instances).

Disagreement means a different predicted class (classification) or a prediction of a different sign (regression:
the Acc-2 sense of agreement).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from fastapi import FastAPI, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from modalens.app.data import LiveRun, NotFound, RunSource, column, dumps

MAX_RUNS = 12  # runs one comparison takes: the pairwise parts grow with the square


def compare(a: RunSource, b: RunSource) -> dict[str, Any]:
    """Match two runs' instances by id and report where the two models disagree."""
    ta, tb = a.table("instances"), b.table("instances")
    merged = ta.merge(tb, on="id", suffixes=("_a", "_b"))
    if merged.empty:
        raise NotFound(
            f"runs {a.run_id!r} and {b.run_id!r} share no instance ids; Compare needs two runs on the same dataset"
        )
    merged = merged.sort_values("instance_a", kind="stable")
    pa, pb = merged["prediction_a"].to_numpy(float), merged["prediction_b"].to_numpy(float)
    label_kind = a.interaction.dataset.label_kind or "regression"
    disagree = _disagree(pa, pb, label_kind)
    cols = {
        "id": column(merged["id"]),
        "instance_a": column(merged["instance_a"]),
        "instance_b": column(merged["instance_b"]),
        "prediction_a": column(pa),
        "prediction_b": column(pb),
        "label": column(merged["label_a"]) if "label_a" in merged else None,
        "difference": column(pb - pa),
        "disagree": column(disagree),
    }
    for side in ("a", "b"):
        key = f"interaction_type_{side}"
        if key in merged:
            cols[key] = column(merged[key])
    src = {"a": a, "b": b}
    shapley = {}
    for side, source in src.items():
        mat = source.shapley_matrix()[merged[f"instance_{side}"].to_numpy()]
        shapley[side] = {m: column(mat[:, k]) for k, m in enumerate(source.modalities)}
    return {
        "a": a.info(),
        "b": b.info(),
        "label_kind": label_kind,
        "n_matched": int(len(merged)),
        "n_disagree": int(np.sum(disagree)),
        "columns": cols,
        "shapley": shapley,
    }


def compare_many(sources: Sequence[RunSource]) -> dict[str, Any]:
    """Two or more runs side by side over the instances they all share (matched by ``id``).

    Returns
    -------
    dict
        ``runs`` (each run's info; ``model`` is its model name), ``label_kind``, ``n_matched``, ``columns``
        (``id`` and ``label``, in the first run's instance order), ``instances`` / ``predictions`` / ``types``
        (per run id: its instance numbers, predictions and ``type[:dominant modality]`` labels of the matched
        rows), ``metrics`` (per run: ``n``, ``mae``, ``r``, ``acc2`` for regression, ``accuracy`` for classes),
        ``importance`` (per run: mean |modality Shapley| over the matched rows), ``disagreement`` (``counts`` and
        ``fraction``, one row and column per run) and ``transitions`` (one per pair of runs ``i < j``:
        ``{"a", "b", "rows", "cols", "counts"}``; read it transposed for B against A).
    """
    if len(sources) < 2:
        raise ValueError("Compare needs at least two runs")
    ids = [s.run_id for s in sources]
    if len(set(ids)) != len(ids):
        raise ValueError(f"a run appears twice in the comparison: {ids}")
    if len(sources) > MAX_RUNS:
        raise ValueError(f"Compare takes at most {MAX_RUNS} runs at once, got {len(sources)}")
    frames = [_matchable(s) for s in sources]
    merged = frames[0]
    for k, frame in enumerate(frames[1:], start=1):
        merged = merged.merge(frame, on="id", suffixes=("", f"__{k}"))
    if merged.empty:
        raise NotFound(
            f"runs {', '.join(map(repr, ids))} share no instance ids; Compare needs runs on the same dataset"
        )
    merged = merged.sort_values("instance", kind="stable", ignore_index=True)
    label_kind = sources[0].interaction.dataset.label_kind or "regression"
    label = merged["label"].to_numpy(float) if "label" in merged else np.full(len(merged), np.nan)
    instances, predictions, types = {}, {}, {}
    for k, source in enumerate(sources):
        suffix = "" if k == 0 else f"__{k}"
        instances[source.run_id] = merged["instance" + suffix].to_numpy(np.int64)
        predictions[source.run_id] = merged["prediction" + suffix].to_numpy(float)
        types[source.run_id] = merged["type" + suffix].to_numpy(object)
    n_runs = len(sources)
    counts = np.zeros((n_runs, n_runs), dtype=np.int64)
    transitions = []
    for i in range(n_runs):
        for j in range(i + 1, n_runs):
            a, b = ids[i], ids[j]
            counts[i, j] = counts[j, i] = int(_disagree(predictions[a], predictions[b], label_kind).sum())
            transitions.append({"a": a, "b": b, **transition_matrix(types[a], types[b])})
    n = len(merged)
    return {
        "runs": [s.info() for s in sources],
        "label_kind": label_kind,
        "n_matched": n,
        "columns": {"id": column(merged["id"]), "label": column(label)},
        "instances": {r: v.tolist() for r, v in instances.items()},
        "predictions": {r: column(v) for r, v in predictions.items()},
        "types": {r: [str(t) for t in v] for r, v in types.items()},
        "metrics": {r: metrics(predictions[r], label, label_kind) for r in ids},
        "importance": {s.run_id: _importance(s, instances[s.run_id]) for s in sources},
        "disagreement": {"runs": ids, "counts": counts.tolist(), "fraction": (counts / max(n, 1)).tolist()},
        "transitions": transitions,
    }


def interaction_labels(frame: pd.DataFrame) -> np.ndarray:
    """Each instance's ``interaction_type``, with ``:modality`` when a dominant modality is recorded
    (``dominance:text``; ``conflict``); ``"—"`` where the run has no interaction type."""
    if "interaction_type" not in frame:
        return np.full(len(frame), "—", dtype=object)
    kind = frame["interaction_type"].astype(object).where(frame["interaction_type"].notna(), "—").astype(str)
    if "dominant_modality" not in frame:
        return kind.to_numpy(object)
    dom = frame["dominant_modality"]
    has = dom.notna() & (dom.astype(str) != "")
    return np.where(has, kind + ":" + dom.astype(str), kind).astype(object)


def transition_matrix(types_a: Sequence[str] | np.ndarray, types_b: Sequence[str] | np.ndarray) -> dict[str, Any]:
    """Counts of matched instances by (A's label, B's label): ``rows`` A's labels, ``cols`` B's, both sorted
    (``dominance:*`` first, then by name), ``counts[r][c]``."""
    a, b = np.asarray(types_a, dtype=object), np.asarray(types_b, dtype=object)
    if a.shape != b.shape:
        raise ValueError(f"transition matrix: {a.size} labels for A but {b.size} for B")
    rows, cols = _label_order(a), _label_order(b)
    r = {v: k for k, v in enumerate(rows)}
    c = {v: k for k, v in enumerate(cols)}
    counts = np.zeros((len(rows), len(cols)), dtype=np.int64)
    np.add.at(counts, ([r[v] for v in a], [c[v] for v in b]), 1)
    return {"rows": rows, "cols": cols, "counts": counts.tolist()}


def _label_order(labels: np.ndarray) -> list[str]:
    return sorted({str(v) for v in labels}, key=lambda v: (not v.startswith("dominance"), v))


def metrics(prediction: np.ndarray, label: np.ndarray, label_kind: str) -> dict[str, Any]:
    """Quality of one run's predictions over the matched instances with a label: classification ``accuracy``;
    regression ``mae``, Pearson ``r`` and ``acc2`` (sign agreement over instances with a non-zero label, as
    MOSI/MOSEI report Acc-2; a prediction of exactly 0 counts as negative)."""
    ok = np.isfinite(prediction) & np.isfinite(label)
    p, y = prediction[ok], label[ok]
    out: dict[str, Any] = {"n": int(ok.sum())}
    if label_kind == "classification":
        out["accuracy"] = float(np.mean(p == y)) if p.size else None
        return out
    out["mae"] = float(np.mean(np.abs(p - y))) if p.size else None
    out["r"] = float(np.corrcoef(p, y)[0, 1]) if p.size > 1 and np.std(p) > 0 and np.std(y) > 0 else None
    nz = y != 0
    out["acc2"] = float(np.mean((p[nz] > 0) == (y[nz] > 0))) if nz.any() else None
    return out


def _matchable(source: RunSource) -> pd.DataFrame:
    t = source.table("instances")
    if t["id"].duplicated().any():
        dup = t["id"][t["id"].duplicated()].iloc[0]
        raise NotFound(f"run {source.run_id!r} has instance id {dup!r} twice; Compare matches instances by id")
    frame = pd.DataFrame(
        {"id": t["id"], "instance": t["instance"], "prediction": t["prediction"], "type": interaction_labels(t)}
    )
    if "label" in t:
        frame["label"] = t["label"]
    return frame


def _importance(source: RunSource, rows: np.ndarray) -> dict[str, float | None]:
    mat = np.abs(source.shapley_matrix()[rows])
    out: dict[str, float | None] = {}
    for k, m in enumerate(source.modalities):
        col = mat[:, k][np.isfinite(mat[:, k])]
        out[m] = float(col.mean()) if col.size else None
    return out


def _disagree(pa: np.ndarray, pb: np.ndarray, label_kind: str) -> np.ndarray:
    return pa != pb if label_kind == "classification" else np.sign(pa) != np.sign(pb)


# -- routes --------------------------------------------------------------------------------------------------------
class Comparison(BaseModel):
    a: dict[str, Any]
    b: dict[str, Any]
    label_kind: str
    n_matched: int
    n_disagree: int
    columns: dict[str, list[Any] | None]
    shapley: dict[str, dict[str, list[float | None]]]


class Transition(BaseModel):
    a: str
    b: str
    rows: list[str]
    cols: list[str]
    counts: list[list[int]]


class ManyComparison(BaseModel):
    runs: list[dict[str, Any]]
    label_kind: str
    n_matched: int
    columns: dict[str, list[Any]]
    instances: dict[str, list[int]]
    predictions: dict[str, list[float | None]]
    types: dict[str, list[str]]
    metrics: dict[str, dict[str, Any]]
    importance: dict[str, dict[str, float | None]]
    disagreement: dict[str, Any]
    transitions: list[Transition]


def add_compare_routes(
    app: FastAPI,
    *,
    get_run: Callable[[str], LiveRun],
    send_built: Callable[..., Response],
    error: Callable[[int, str], Response],
) -> None:
    """``GET /api/compare?runs=a,b,c`` and ``GET /api/compare/{a}/{b}``."""

    def build_over(lives: list[LiveRun], make: Callable[[dict[str, RunSource]], bytes]) -> Callable:
        # every snapshot read under its run's lock, the locks taken in one order (by run id): no deadlock
        ordered = sorted({live.run_id: live for live in lives}.values(), key=lambda r: r.run_id)

        def nest(k: int, got: dict[str, RunSource]) -> bytes:
            if k == len(ordered):
                return make(got)
            return ordered[k].read(lambda s: nest(k + 1, {**got, ordered[k].run_id: s}))

        def build(first: RunSource) -> bytes:
            return nest(1, {ordered[0].run_id: first})

        return ordered[0], build, "|".join(live.token() + live.run_id for live in ordered[1:])

    @app.get("/api/compare", response_model=ManyComparison, tags=["compare"])
    def comparison_many(
        request: Request, runs: str = Query(description="Run ids, comma-separated (two or more)")
    ) -> Response:
        """Two or more runs on the same dataset side by side: metrics, modality importance, pairwise disagreement
        and the interaction-type transition matrix of every pair, over the instances all of them share."""
        wanted = [r.strip() for r in runs.split(",") if r.strip()]
        if len(wanted) < 2:
            return error(422, "give two or more run ids: /api/compare?runs=a,b")
        if len(set(wanted)) != len(wanted) or len(wanted) > MAX_RUNS:
            return error(422, f"give distinct run ids, at most {MAX_RUNS}: got {wanted}")
        lives = [get_run(r) for r in wanted]
        first, build, extra = build_over(lives, lambda got: dumps(compare_many([got[r] for r in wanted])))
        return send_built(request, first, build, extra_token=f"|{extra}|{','.join(wanted)}")

    @app.get("/api/compare/{run_a}/{run_b}", response_model=Comparison, tags=["compare"])
    def comparison(request: Request, run_a: str, run_b: str) -> Response:
        """Two runs on the same dataset, matched by instance id, with the instances where they disagree."""
        lives = [get_run(run_a), get_run(run_b)]
        first, build, extra = build_over(lives, lambda got: dumps(compare(got[run_a], got[run_b])))
        return send_built(request, first, build, extra_token=f"|{extra}|{run_a}|{run_b}")
