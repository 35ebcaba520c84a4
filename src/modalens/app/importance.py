"""Global feature importance of an interaction run, for all instances or for a selection.

- ``GET /api/runs/{run}/feature-importance``: every named feature and every word of the run, with its mean
  |attribution|, mean attribution, support (instances where it occurs) and count (rows: a word may occur more than
  once in an instance).
- ``POST /api/runs/{run}/feature-importance`` with ``{"indices": [...]}``: the same over those instances only;
  ``{"members_of": {"modality", "feature", "kind"}}`` adds ``members``: the instances (of the selection, or all)
  where that feature or word carries an attribution.

Where the numbers come from (the run's ``feature_attributions`` table, docs/run-format.md):

- a named feature (``kind: "feature"``) is a row with ``position = -1`` and ``feature != "*"``: the feature over all
  steps of one instance (the ``features`` granularity). Per-step cells (``position >= 0``, the ``cells``
  granularity) are left out: they split the same credit over steps and would count it twice.
- a word (``kind: "word"``) is a row with ``feature = "*"``, ``position >= 0`` and a token, lower-cased and
  stripped, so "Great" and "great" are one word. Token modalities with whole words (``word_attributions``) count
  those words, not their pieces (as :meth:`modalens.interactions.Explanation.feature_importance` does).

The table is encoded once per run snapshot into integer key codes and arrays (kept in the snapshot's cache), so a
selection is a few ``numpy.bincount`` calls over the rows, not a pandas group-by per request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from fastapi import FastAPI, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from modalens._core.errors import ModalensError
from modalens.app.data import RunSource, dumps

CACHE_KEY = "importance:prepared"
MAX_INDICES = 5_000_000  # the server's own limit on instances per run


class ImportanceError(ModalensError, ValueError):
    """A selection that names no instance of the run (answered with 422)."""


@dataclass
class Prepared:
    """The ``feature_attributions`` rows that count, encoded: one key code per row (a modality's feature or word),
    the row's instance and value, and whether the row is the first of its key in its instance (for support)."""

    keys: pd.DataFrame  # modality, feature, kind; row k describes code k
    code: np.ndarray  # [R] int64
    instance: np.ndarray  # [R] int64
    value: np.ndarray  # [R] float64
    first: np.ndarray  # [R] bool
    n: int


def prepare(source: RunSource) -> Prepared:
    """The encoded rows of a run snapshot, built once (a pandas pass) and cached with the snapshot."""
    if CACHE_KEY not in source._cache:
        source.warm_up()  # the page has drawn its first screen: prepare the instance view meanwhile
    return source.once(CACHE_KEY, lambda: _prepare(source))  # once, also when several requests ask together


def _prepare(source: RunSource) -> Prepared:
    fa = source.table("feature_attributions")  # NotFound (404) when the run has no feature attributions
    n = source.n
    source.instance_numbers("feature_attributions")  # refuses rows that name no instance
    position = fa["position"].to_numpy()
    is_star = (fa["feature"] == "*").to_numpy(dtype=bool)
    # Strings are factorised column by column and only the distinct values are normalised: a pandas group-by on
    # (modality, feature) string pairs costs about 10 s at 50,000 instances (4.5 M rows).
    parts = [_part(fa, (position < 0) & ~is_star, "feature", "feature", normalise=False)]
    whole_word_modalities: set[str] = set()
    if "word_attributions" in source.run.table_names:
        wa = source.table("word_attributions")
        source.instance_numbers("word_attributions")
        whole_word_modalities = set(wa["modality"].astype(str))
        parts.append(_part(wa, np.ones(len(wa), dtype=bool), "text", "word", normalise=True))
    if "token" in fa.columns:
        steps = (position >= 0) & is_star & fa["token"].notna().to_numpy(dtype=bool)
        if whole_word_modalities:  # token modalities count whole words (above), not their pieces
            steps &= ~fa["modality"].isin(whole_word_modalities).to_numpy(dtype=bool)
        parts.append(_part(fa, steps, "token", "word", normalise=True))
    modality_names = sorted({m for part in parts for m in part.modalities})
    n_mod = max(len(modality_names), 1)
    names: list[str] = []
    kinds: list[str] = []
    keys, instance, value = [], [], []
    for part in parts:
        mod_code = pd.Index(modality_names).get_indexer(part.modalities)[part.modality]
        keys.append((part.name + len(names)) * n_mod + mod_code)
        names.extend(part.names)
        kinds.extend([part.kind] * len(part.names))
        instance.append(part.instance)
        value.append(part.value)
    key = np.concatenate(keys).astype(np.int64)
    inst = np.concatenate(instance).astype(np.int64)
    val = np.concatenate(value).astype(np.float64)
    ok = np.isfinite(val)
    key, inst, val = key[ok], inst[ok], val[ok]
    codes, uniques = pd.factorize(key)
    name_index, mod_index = np.divmod(uniques.astype(np.int64), n_mod)
    key_frame = pd.DataFrame(
        {
            "modality": np.asarray(modality_names, dtype=object)[mod_index],
            "kind": np.asarray(kinds, dtype=object)[name_index],
            "feature": np.asarray(names, dtype=object)[name_index],
        }
    )
    # first occurrence of each (instance, key): support counts instances, not occurrences
    first = ~pd.Series(inst * max(len(uniques), 1) + codes).duplicated().to_numpy()
    return Prepared(keys=key_frame, code=codes.astype(np.int64), instance=inst, value=val, first=first, n=n)


@dataclass
class _Part:
    """Rows of one kind: per row the instance, value, modality code and name code (into ``names``)."""

    kind: str
    instance: np.ndarray
    value: np.ndarray
    modality: np.ndarray
    modalities: list[str]
    name: np.ndarray
    names: list[str]


def _part(frame: pd.DataFrame, keep: np.ndarray, name_column: str, kind: str, *, normalise: bool) -> _Part:
    """The rows of ``frame`` where ``keep``; words (``normalise``) lower-cased and stripped, empty ones dropped."""
    instance = frame["instance"].to_numpy()[keep]
    value = frame["value"].to_numpy(dtype=np.float64)[keep]
    # factorised whole (Arrow-backed strings encode fast), then the kept rows' codes taken
    mod_code, modalities = pd.factorize(frame["modality"])
    name_code, names = pd.factorize(frame[name_column])
    mod_code, name_code = mod_code[keep], name_code[keep]
    names = pd.Index(names, dtype=object).astype(str)
    if normalise:  # the distinct tokens only, then each row mapped through them
        remap, names = pd.factorize(names.str.strip().str.lower())
        name_code = remap[name_code]
        names = pd.Index(names, dtype=object)
        if (names == "").any():
            kept = name_code != int(np.flatnonzero(names == "")[0])
            instance, value, mod_code, name_code = instance[kept], value[kept], mod_code[kept], name_code[kept]
    return _Part(
        kind=kind,
        instance=instance,
        value=value,
        modality=mod_code,
        modalities=[str(m) for m in modalities],
        name=name_code,
        names=[str(v) for v in names],
    )


def selection_mask(prepared: Prepared, indices: list[int] | np.ndarray | None) -> np.ndarray | None:
    """A boolean mask over instances for these indices (None: every instance); out-of-range ones are refused."""
    if indices is None:
        return None
    idx = np.asarray(indices, dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= prepared.n):
        bad = idx[(idx < 0) | (idx >= prepared.n)][0]
        raise ImportanceError(f"indices: instance {bad} is out of range; the run has instances 0..{prepared.n - 1}")
    mask = np.zeros(prepared.n, dtype=bool)
    mask[idx] = True
    return mask


def importance(
    source: RunSource,
    indices: list[int] | np.ndarray | None = None,
    members_of: dict[str, str] | None = None,
    *,
    min_support: int = 1,
) -> dict[str, Any]:
    """The feature-importance document over all instances (``indices=None``) or a selection.

    Each item: ``modality``, ``feature`` (a named feature, or the word), ``kind`` ("feature" or "word"),
    ``mean_abs`` and ``mean`` (over the rows: a word's every occurrence), ``support`` (instances where it occurs)
    and ``count`` (rows), most important first; items seen in fewer than ``min_support`` instances are left out.
    ``n_instances``: instances the document covers.
    """
    p = prepare(source)
    mask = selection_mask(p, indices)
    rows = slice(None) if mask is None else mask[p.instance]
    code = p.code[rows]
    k = len(p.keys)
    count = np.bincount(code, minlength=k)
    total = np.bincount(code, weights=p.value[rows], minlength=k)
    total_abs = np.bincount(code, weights=np.abs(p.value[rows]), minlength=k)
    support = np.bincount(code[p.first[rows]], minlength=k)
    seen = np.flatnonzero((count > 0) & (support >= max(min_support, 1)))
    mean_abs = total_abs[seen] / count[seen]
    order = seen[np.argsort(-mean_abs, kind="stable")]
    keys = p.keys
    features = [
        {
            "modality": m,
            "feature": f,
            "kind": kd,
            "mean_abs": _round(a / c),
            "mean": _round(t / c),
            "support": int(s),
            "count": int(c),
        }
        for m, f, kd, a, t, s, c in zip(
            keys["modality"].to_numpy()[order].tolist(),
            keys["feature"].to_numpy()[order].tolist(),
            keys["kind"].to_numpy()[order].tolist(),
            total_abs[order].tolist(),
            total[order].tolist(),
            support[order].tolist(),
            count[order].tolist(),
            strict=True,
        )
    ]
    doc: dict[str, Any] = {
        "features": features,
        "n_instances": int(p.n if mask is None else mask.sum()),
    }
    if members_of is not None:
        doc["members"] = members(p, mask, members_of)
    return doc


def _round(x: float) -> float:
    return float(f"{x:.6g}")  # 6 significant digits: a third of the bytes of repr, far below what is shown


def members(prepared: Prepared, mask: np.ndarray | None, item: dict[str, str]) -> list[int]:
    """Instances (within ``mask``) where this feature or word carries an attribution (a non-zero value)."""
    keys = prepared.keys
    hit = np.flatnonzero(
        (keys["modality"] == item.get("modality")).to_numpy()
        & (keys["feature"] == item.get("feature")).to_numpy()
        & (keys["kind"] == item.get("kind", "word")).to_numpy()
    )
    if not len(hit):
        raise ImportanceError(
            f"members_of: the run has no {item.get('kind', 'word')} {item.get('feature')!r} in modality "
            f"{item.get('modality')!r}"
        )
    rows = (prepared.code == hit[0]) & (prepared.value != 0)
    found = np.unique(prepared.instance[rows])
    if mask is not None:
        found = found[mask[found]]
    return found.tolist()


# -- routes ----------------------------------------------------------------------------------------------------------
class ImportanceItem(BaseModel):
    modality: str
    feature: str
    kind: Literal["feature", "word"]
    mean_abs: float
    mean: float
    support: int
    count: int


class ImportanceDocument(BaseModel):
    features: list[ImportanceItem]
    n_instances: int
    members: list[int] | None = None


class MemberQuery(BaseModel):
    modality: str = Field(max_length=200)
    feature: str = Field(max_length=500)
    kind: Literal["feature", "word"] = "word"


class ImportanceQuery(BaseModel):
    """A selection of instances; ``members_of`` asks for the instances where one feature or word occurs."""

    indices: list[int] | None = Field(default=None, max_length=MAX_INDICES)
    members_of: MemberQuery | None = None
    min_support: int = Field(default=1, ge=1)


def add_importance_routes(app: FastAPI, *, get_run: Callable[[str], Any], send: Callable[..., Any]) -> None:
    """Register ``GET`` and ``POST /api/runs/{run}/feature-importance`` on ``app`` (with the server's helpers)."""

    @app.get("/api/runs/{run_id}/feature-importance", response_model=ImportanceDocument, tags=["interaction runs"])
    async def feature_importance(
        request: Request,
        run_id: str,
        min_support: int = Query(1, ge=1, description="leave out items seen in fewer instances"),
    ) -> Response:
        """Mean |attribution|, mean and support of every named feature and word, over all instances."""
        return await send(request, get_run(run_id), lambda s: dumps(importance(s, min_support=min_support)))

    @app.post("/api/runs/{run_id}/feature-importance", response_model=ImportanceDocument, tags=["interaction runs"])
    async def feature_importance_of(run_id: str, query: ImportanceQuery) -> Response:
        """The same over a selection of instances (and, on request, the instances where one item occurs)."""
        live = get_run(run_id)
        item = query.members_of.model_dump() if query.members_of is not None else None

        def build(source: RunSource) -> bytes:
            return dumps(importance(source, query.indices, item, min_support=query.min_support))

        body = await run_in_threadpool(live.read, build)
        return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})


__all__ = ["ImportanceError", "Prepared", "add_importance_routes", "importance", "prepare"]
