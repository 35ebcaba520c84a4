"""Read-side helpers that turn a run directory into the JSON documents the web app asks for.

Everything here reads; nothing writes. Runs are opened only through :func:`modalens.runs.read_run`, which checks
them against the run schema, so the manifest is typed here (:class:`~modalens.runs.InteractionManifest`,
:class:`~modalens.runs.FeatureManifest`). Each function builds one document (the instance table, one instance's
detail, the templates, a comparison of two runs) from :class:`modalens.runs.Run` tables, with per-run caches so
that a 50,000-instance run answers instance look-ups in milliseconds after the first request.

A :class:`RunSource` is one snapshot of a run directory: its tables and every document built from them belong to
one state of the directory. :class:`LiveRun` (what the server holds per run) notices when the directory changes on
disk (``manifest.json`` or a table file replaced: another inode, size or modification time) and then drops the
whole snapshot and opens a new one, so a run replaced while served is shown whole, old or new, never mixed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modalens._core.errors import ModalensError
from modalens.data.feature_vocab import describe_feature
from modalens.runs import InteractionManifest, Run, RunError, RunLimits, read_run, safe_name

INSTANCE_COLUMNS = (
    "instance", "id", "split", "label", "prediction", "error", "abs_error", "base_value",
    "interaction_type", "dominant_modality", "interaction_strength",
)  # fmt: skip


class NotFound(ModalensError, LookupError):
    """A run, table, instance or media item the request names does not exist."""


def column(values: pd.Series | np.ndarray) -> list[Any]:
    """A column as a JSON-ready list: numpy scalars become Python ones, NaN/inf and pandas NA become None."""
    arr = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
    if arr.dtype.kind == "f":
        out = arr.astype(np.float64)
        finite = np.isfinite(out)
        if finite.all():
            return out.tolist()
        return [v if ok else None for v, ok in zip(out.tolist(), finite.tolist(), strict=True)]
    if arr.dtype.kind in "iub":
        return arr.tolist()
    return [_scalar(v) for v in arr.tolist()]


def _scalar(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _scalar(value.item())
    if isinstance(value, np.ndarray):
        return [_scalar(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_scalar(v) for v in value]
    return value


def dumps(document: Any) -> bytes:
    """Compact JSON bytes (the app's wire format)."""
    return json.dumps(document, separators=(",", ":"), allow_nan=False).encode()


@dataclass
class RunSource:
    """One snapshot of a served run directory, with caches for the documents built from it.

    ``token`` names the state of the directory it was opened on (:func:`run_identity`). Each document is built once,
    however many requests ask at the same time, under a lock of its own (:meth:`lock_for`), so a slow document
    (feature importance over 37 million attribution rows) does not hold up another (the templates, an instance);
    the tables and the expensive intermediate results that documents share are read or built once the same way
    (:meth:`once`). ``lock`` serialises other reads (:meth:`LiveRun.read`).
    """

    run_id: str
    run: Run
    token: str = ""
    max_instances: int | None = None
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)
    _locks: dict[str, threading.RLock] = field(default_factory=dict, repr=False)
    _locks_guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        # concurrent document builds share the run's tables: each table is read once, the others wait for it
        read_table = self.run.table

        def table(name: str) -> pd.DataFrame:
            with self.lock_for(f"table:{name}"):
                return read_table(name)

        self.run.table = table  # type: ignore[method-assign]

    def lock_for(self, key: str) -> threading.RLock:
        """The lock that builds ``key`` (a document or an intermediate result) once."""
        with self._locks_guard:
            found = self._locks.get(key)
            if found is None:
                found = self._locks[key] = threading.RLock()
            return found

    def once(self, key: str, build: Callable[[], Any]) -> Any:
        """``self._cache[key]``, built by ``build()`` once even when several requests ask at the same time."""
        if key in self._cache:
            return self._cache[key]
        with self.lock_for(f"cache:{key}"):
            if key not in self._cache:
                self._cache[key] = build()
            return self._cache[key]

    @classmethod
    def open(
        cls, run_id: str, path: str | Path, *, limits: RunLimits | None = None, max_instances: int | None = None
    ) -> RunSource:
        run = read_run(path, check_tables=False, limits=limits)  # each table is checked by its first request
        source = cls(run_id, run, max_instances=max_instances)
        if max_instances is not None and run.has_table("instances") and run.rows("instances") > max_instances:
            raise RunError(
                f"run {run.path}: {run.rows('instances'):,} instances, over this server's limit of "
                f"{max_instances:,} (modalens serve --max-instances)"
            )
        return source

    # -- overview ------------------------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        m = self.run.manifest
        interaction = isinstance(m, InteractionManifest)
        return {
            "id": self.run_id,
            "name": self.run.path.name,
            "kind": self.run.kind,
            "n_instances": self.run.rows("instances") if interaction else None,
            "dataset": m.dataset.name if interaction else None,
            "model": (m.model.name or m.model.adapter) if interaction else m.model.name,
            "modalities": list(m.modalities) if interaction else [],
            "tables": self.run.table_names,
            "created": m.created,
        }

    def manifest(self) -> dict[str, Any]:
        """The run's manifest as JSON, every key of its schema present."""
        return self.run.manifest_json()

    @property
    def interaction(self) -> InteractionManifest:
        """The manifest of an interaction run; any other kind is :class:`NotFound` for interaction documents."""
        m = self.run.manifest
        if not isinstance(m, InteractionManifest):
            raise NotFound(f"run {self.run_id!r} is a {self.run.kind!r} run; this document needs an interaction run")
        return m

    # -- the instance table ----------------------------------------------------------------------------------------
    def instances(self, fmt: str = "json") -> bytes:
        """Every instance with its modality Shapley values and 2-D position: columnar JSON, or (``fmt="binary"``)
        the same columns as typed buffers (:mod:`modalens.app.coltable`), which the browser reads without parsing."""
        if fmt == "binary":
            from modalens.app import coltable

            # kept here too: at 500,000 instances (~64 MB) it can be over what the server's body cache takes
            if "instances.binary" not in self._cache:
                self._cache["instances.binary"] = coltable.encode(*self._instances_columns())
            return self._cache["instances.binary"]
        if fmt != "json":
            raise ValueError(f"instance table format must be 'json' or 'binary', got {fmt!r}")
        if "instances" not in self._cache:
            self._cache["instances"] = dumps(self._instances_document())
        return self._cache["instances"]

    WARM_UP_MIN = 20_000  # instances from which the first instance view is prepared in the background

    def warm_up(self) -> None:
        """On a large run, prepare what the first instance view needs (the rows of each instance, the dataset's raw
        values: 10-25 s at 500,000 instances) in a background thread, so opening an instance does not wait for it.
        Started by the feature-importance document, which the web app asks for once its first screen is drawn (a
        thread holding the interpreter while the first screen's documents are served would slow them down). Each
        part is built once (:meth:`once`): a request that needs one still being built waits for that build."""
        if self._cache.get("warm_up") or not self.run.has_table("instances") or self.n < self.WARM_UP_MIN:
            return
        self._cache["warm_up"] = True

        def work() -> None:
            try:
                for name in ("feature_attributions", "modality_shapley", "coalitions", "interactions"):
                    self._grouped(name)
                self.dataset()
            except Exception:  # noqa: BLE001, S110 - the request that needs it builds it again and reports the error
                pass

        threading.Thread(target=work, name=f"modalens-warm-{self.run_id}", daemon=True).start()

    def _instances_document(self) -> dict[str, Any]:
        meta, cols = self._instances_columns()
        doc: dict[str, Any] = dict(meta)
        for group, name, values in cols:
            if group:
                doc.setdefault(group, {})[name] = column(values)
            else:
                doc[name] = column(values)
        doc.setdefault("columns", {})
        doc.setdefault("shapley", {})
        return doc

    def _instances_columns(self) -> tuple[dict[str, Any], list[tuple[str, str, Any]]]:
        """The instance table as document fields and ``(group, name, values)`` columns, for either wire format."""
        self._require("instances")
        frame = self.run.table("instances").sort_values("instance", kind="stable")
        n = len(frame)
        if not np.array_equal(frame["instance"].to_numpy(), np.arange(n)):
            raise RunError(f"run {self.run.path}: instances.instance must be the row numbers 0..{n - 1}")
        names = [c for c in INSTANCE_COLUMNS if c in frame.columns]
        names += [c for c in frame.columns if c.startswith("meta_") and c not in names]
        cols: list[tuple[str, str, Any]] = [("columns", c, frame[c]) for c in names]
        modalities = self.modalities
        shapley = self.shapley_matrix()
        cols += [("shapley", m, shapley[:, k]) for k, m in enumerate(modalities)]
        xy, method = self.projection()
        cols += [("", "x", xy[:, 0]), ("", "y", xy[:, 1])]
        return {"n": n, "modalities": modalities, "projection_method": method}, cols

    @cached_property
    def modalities(self) -> list[str]:
        return self.run.modalities

    @property
    def n(self) -> int:
        """Instances of the run: the rows of its instances table, read (and checked against the manifest)."""
        if "n" not in self._cache:
            self._require("instances")
            self._cache["n"] = len(self.run.table("instances"))
        return self._cache["n"]

    def instance_numbers(self, name: str) -> np.ndarray:
        """The ``instance`` column of a table, refused (naming the table) when a number is not an instance."""
        values = self.run.table(name)["instance"].to_numpy()
        if len(values) and (values.min() < 0 or values.max() >= self.n):
            bad = values[(values < 0) | (values >= self.n)][0]
            raise RunError(
                f"run {self.run.path}: table {name!r} refers to instance {bad}, but the run has instances "
                f"0..{self.n - 1}"
            )
        return values

    def shapley_matrix(self) -> np.ndarray:
        """``[N, M]`` modality Shapley values (NaN where the run has none)."""
        if "shapley" not in self._cache:
            out = np.full((self.n, len(self.modalities)), np.nan)
            if "modality_shapley" in self.run.table_names:
                ms = self.run.table("modality_shapley")
                rows = self.instance_numbers("modality_shapley")
                col = pd.Categorical(ms["modality"], categories=self.modalities).codes
                ok = col >= 0
                out[rows[ok], col[ok]] = ms["value"].to_numpy()[ok]
            self._cache["shapley"] = out
        return self._cache["shapley"]

    def projection(self) -> tuple[np.ndarray, str]:
        """The stored 2-D projection, or a PCA of the explanation vectors when the run has none."""
        if "projection" in self.run.table_names:
            p = self.run.table("projection")
            xy = np.full((self.n, 2), np.nan)
            xy[self.instance_numbers("projection")] = p[["x", "y"]].to_numpy()
            spec = self.interaction.projection
            return xy, spec.method if spec is not None else "stored"
        from modalens.interactions.projection import explanation_vectors, project

        vectors = explanation_vectors(np.nan_to_num(self.shapley_matrix()), self._interaction_matrix())
        if vectors.shape[1] == 0:
            return np.zeros((self.n, 2)), "none"
        return project(vectors, method="pca").astype(np.float64), "pca (computed by the viewer: run has no projection)"

    def _interaction_matrix(self) -> np.ndarray | None:
        if "interactions" not in self.run.table_names:
            return None
        it = self.run.table("interactions")
        self.instance_numbers("interactions")
        pairs = it["modality_i"].astype(str) + "|" + it["modality_j"].astype(str)
        wide = it.assign(pair=pairs).pivot_table(index="instance", columns="pair", values="shapley_interaction")
        return wide.reindex(range(self.n)).fillna(0.0).to_numpy()

    # -- templates -------------------------------------------------------------------------------------------------
    def templates(self) -> bytes:
        if "templates" not in self._cache:
            self._require("templates")
            t = self.run.table("templates")
            members: dict[int, list[int]] = {}
            if "template_members" in self.run.table_names:
                tm = self.run.table("template_members")
                for tid, group in tm.groupby("template_id", sort=False):
                    members[int(tid)] = np.sort(group["instance"].to_numpy()).tolist()
            rows = []
            for rec in t.to_dict("records"):
                row = {k: _scalar(v) for k, v in rec.items()}
                row["members"] = members.get(int(rec["template_id"]), [])
                rows.append(row)
            self._cache["templates"] = dumps({"templates": rows})
        return self._cache["templates"]

    # -- one instance ---------------------------------------------------------------------------------------------
    def instance_detail(self, index: int) -> dict[str, Any]:
        """Everything the instance view shows about one instance."""
        if not 0 <= index < self.n:
            raise NotFound(f"instance {index} is out of range: run {self.run_id!r} has instances 0..{self.n - 1}")
        row = self.run.table("instances").iloc[self._instance_rows()[index]]
        detail: dict[str, Any] = {
            "instance": index,
            "row": {k: _scalar(v) for k, v in row.to_dict().items()},
            "modalities": self._modality_specs(),
            "warnings": [],
        }
        for name in ("modality_shapley", "coalitions", "interactions"):
            detail[name] = self._rows_of(name, index)
        detail["words"], detail["tracks"] = self._attribution_tracks(index, detail["warnings"])
        detail["word_timings"] = self._word_timings(index, detail["row"], detail["warnings"])
        detail["media"] = self._media_of(index)
        detail["word_groups"] = self._word_groups(index)
        detail["patches"] = self._patch_maps(index, detail["media"])
        detail["mm_shap"] = self._rows_of("mm_shap", index)
        if detail["patches"]:  # an image's patches are drawn as a heat map, not as tracks of steps
            detail["tracks"] = [t for t in detail["tracks"] if t["modality"] not in detail["patches"]]
        return detail

    def _word_groups(self, index: int) -> dict[str, list[dict[str, Any]]]:
        """The words of token modalities (``word_attributions``): modality -> words in order, each with its text,
        value (the sum of its pieces), number of pieces and first piece's position."""
        groups: dict[str, list[dict[str, Any]]] = {}
        for row in self._rows_of("word_attributions", index) or []:
            groups.setdefault(str(row.pop("modality")), []).append(row)
        return groups

    def _patch_maps(self, index: int, media: list[dict[str, str]]) -> dict[str, dict[str, Any]]:
        """Patch (image) modalities: the grid, each patch's attribution (row-major, null where none) and the image
        file (the media item named like the modality) the heat map is drawn over."""
        grids = {m.name: m.patches for m in self.interaction.dataset.modalities if m.patches is not None}
        if not grids:
            return {}
        cols = self._slice("feature_attributions", index)
        out: dict[str, dict[str, Any]] = {}
        for name, grid in grids.items():
            values: list[float | None] = [None] * (grid.rows * grid.cols)
            if cols is not None:
                sel = (cols["modality"] == name) & (cols["feature"] == "*") & (cols["position"] >= 0)
                for pos, value in zip(cols["position"][sel].tolist(), cols["value"][sel].tolist(), strict=True):
                    if 0 <= int(pos) < len(values):
                        values[int(pos)] = _scalar(value)
            image = next((m for m in media if m["key"] == name and m["mime"].startswith("image/")), None)
            out[name] = {"rows": grid.rows, "cols": grid.cols, "values": values, "image": image}
        return out

    def _instance_rows(self) -> np.ndarray:
        if "instance_rows" not in self._cache:
            inst = self.instance_numbers("instances")
            rows = np.full(self.n, -1, dtype=np.int64)
            rows[inst] = np.arange(len(inst))
            if (rows < 0).any():
                raise RunError(f"run {self.run.path}: instances.instance must be the row numbers 0..{self.n - 1}")
            self._cache["instance_rows"] = rows
        return self._cache["instance_rows"]

    def _grouped(self, name: str) -> tuple[pd.DataFrame, np.ndarray | None, np.ndarray] | None:
        """The table, the order of its rows by instance (None when already in instance order; stable, so an
        instance's rows keep the writer's order) and the start offset of each instance's rows in that order: an
        instance's rows are one slice, found in O(1). One integer argsort, not a sort of the whole table by its
        string columns (that took 20-40 s over the 37 million attribution rows of a 500,000-instance run)."""

        def build() -> tuple[pd.DataFrame, np.ndarray | None, np.ndarray] | None:
            if name not in self.run.table_names:
                return None
            frame = self.run.table(name)
            inst = self.instance_numbers(name)
            ordered = len(inst) < 2 or bool(np.all(inst[1:] >= inst[:-1]))
            order = None if ordered else np.argsort(inst, kind="stable")
            bounds = np.searchsorted(inst if order is None else inst[order], np.arange(self.n + 1))
            return frame, order, bounds

        return self.once(f"grouped:{name}", build)

    def _slice(self, name: str, index: int) -> dict[str, np.ndarray] | None:
        """One instance's rows of a table as column arrays (None when the run has no such table). Feature
        attributions come sorted by modality, feature and position (how tracks group them); other tables keep the
        writer's row order (modality order, pair order) inside the instance."""
        grouped = self._grouped(name)
        if grouped is None:
            return None
        frame, order, bounds = grouped
        a, b = int(bounds[index]), int(bounds[index + 1])
        part = frame.iloc[np.arange(a, b) if order is None else order[a:b]]
        if name == "feature_attributions":
            keys = [c for c in ("modality", "feature", "position") if c in part.columns]
            part = part.sort_values(keys, kind="stable")
        return {c: part[c].to_numpy() for c in part.columns}

    def _rows_of(self, name: str, index: int) -> list[dict[str, Any]] | None:
        cols = self._slice(name, index)
        if cols is None:
            return None
        names = [c for c in cols if c != "instance"]
        parts = [[_scalar(v) for v in cols[c].tolist()] for c in names]
        return [dict(zip(names, values, strict=True)) for values in zip(*parts, strict=True)]

    def _modality_specs(self) -> list[dict[str, Any]]:
        described = {m.name: m.kind for m in self.interaction.dataset.modalities}
        return [{"name": m, "kind": described.get(m, m)} for m in self.modalities]

    def _attribution_tracks(self, index: int, warnings: list[str]) -> tuple[dict, list]:
        """Word attributions per text modality, and one track per (modality, feature) for the instance view.

        A track holds, per step (word position), the attribution of that feature at that step when the run has
        it and the feature's raw value from ``dataset.npz`` when the dataset is readable; ``total`` is the
        feature's attribution over the whole instance (rows with ``position = -1``). Whole-step attributions of
        non-text modalities (``feature = "*"``) form a track of their own.
        """
        cols = self._slice("feature_attributions", index)
        if cols is None:
            return {}, []
        modality = cols["modality"].astype(str)
        feature = cols["feature"].astype(str)
        position = cols["position"].astype(np.int64)
        value = cols["value"].astype(np.float64)
        a, b = 0, len(position)
        token = cols["token"] if "token" in cols else np.full(b - a, None, dtype=object)
        dataset = self.dataset(warnings)
        words: dict[str, list[dict[str, Any]]] = {}
        steps: dict[tuple[str, str], dict[int, float]] = {}
        totals: dict[tuple[str, str], float] = {}
        for k in range(b - a):
            key = (str(modality[k]), str(feature[k]))
            if position[k] < 0:
                totals[key] = float(value[k])
            else:
                steps.setdefault(key, {})[int(position[k])] = float(value[k])
        for mod, feat in list(steps):
            sel = (modality == mod) & (feature == feat) & (position >= 0)
            if feat == "*" and any(isinstance(t, str) for t in token[sel].tolist()):
                words[mod] = [
                    {"position": int(p), "token": _scalar(t), "value": _scalar(v)}
                    for p, t, v in zip(position[sel].tolist(), token[sel].tolist(), value[sel].tolist(), strict=True)
                ]
                del steps[(mod, feat)]
        tracks = []
        kinds = {m.name: m.kind for m in self.interaction.dataset.modalities}
        for mod, feat in self._track_keys(dataset, set(steps) | set(totals)):
            per_step = steps.get((mod, feat), {})
            positions = sorted(per_step) or self._real_steps(dataset, mod, index)
            if not positions and (mod, feat) not in totals:
                continue
            pos = np.asarray(positions, dtype=np.int64)
            tracks.append(
                {
                    "modality": mod,
                    "feature": feat,
                    "positions": positions,
                    "attribution": [per_step.get(p) for p in positions],
                    "values": None if feat == "*" else self._raw_values(dataset, mod, feat, index, pos),
                    "total": totals.get((mod, feat)),
                    **_vocabulary(feat, kinds.get(mod)),
                }
            )
        return words, tracks

    def _word_timings(self, index: int, row: dict[str, Any], warnings: list[str]) -> dict[str, list] | None:
        """When each word is spoken, in seconds from the start of the instance's audio, where the data knows it.

        A modality with a ``word_duration`` feature (the demo's audio: each word's share of the synthesised speech)
        gives one interval per real step, the durations laid end to end from 0 s. The demo's word intervals are
        contiguous and start at the first word's onset, which espeak-ng puts at the clip's first sample; the
        ``speech_seconds`` meta column (the end of the last word) checks the sum, with a warning when they differ
        by more than 50 ms (words cut off, or pauses the durations leave out).
        """
        dataset = self.dataset()  # its absence is already reported by the tracks
        if dataset is None or index >= len(dataset):
            return None
        out: dict[str, list[dict[str, Any]]] = {}
        for name in dataset.modalities:
            mod = dataset[name]
            lower = [f.lower() for f in mod.feature_names]
            if "word_duration" not in lower:
                continue
            steps = np.flatnonzero(mod.step_mask()[index])
            durations = mod.values[index, steps, lower.index("word_duration")].astype(np.float64)
            if not len(steps) or not np.isfinite(durations).all() or (durations < 0).any():
                continue
            ends = np.cumsum(durations)
            starts = ends - durations
            out[name] = [
                {"position": int(p), "start": round(float(a), 4), "end": round(float(b), 4)}
                for p, a, b in zip(steps.tolist(), starts.tolist(), ends.tolist(), strict=True)
            ]
            speech = row.get("meta_speech_seconds")
            if isinstance(speech, (int, float)) and math.isfinite(speech) and abs(ends[-1] - speech) > 0.05:
                warnings.append(
                    f"word timings of {name}: the word durations add up to {ends[-1]:.2f} s but the speech lasts "
                    f"{speech:.2f} s (speech_seconds); the highlighted word may drift from the audio"
                )
        return out or None

    def _track_keys(self, dataset: Any, keys: set[tuple[str, str]]) -> list[tuple[str, str]]:
        """(modality, feature) pairs to show: those with attributions, plus every dataset feature of them."""
        out = set(keys)
        if dataset is not None:
            for mod in {m for m, _ in keys}:
                if mod in dataset.modalities:
                    out.update((mod, f) for f in dataset[mod].feature_names)
        return sorted(out, key=lambda k: self._track_order({"modality": k[0], "feature": k[1]}))

    @staticmethod
    def _real_steps(dataset: Any, modality: str, index: int) -> list[int]:
        if dataset is None or modality not in dataset.modalities or index >= len(dataset):
            return []
        return np.flatnonzero(dataset[modality].step_mask()[index]).tolist()

    def _track_order(self, track: dict[str, Any]) -> tuple[int, int, str]:
        """Modalities in run order, features in the dataset's order (the parquet sort is alphabetical)."""
        mods = self.modalities
        names = {m.name: m.feature_names for m in self.interaction.dataset.modalities}
        feats = names.get(track["modality"], [])
        m = mods.index(track["modality"]) if track["modality"] in mods else len(mods)
        f = feats.index(track["feature"]) if track["feature"] in feats else len(feats)
        # the whole-step track first within its modality
        return m, -1 if track["feature"] == "*" else f, track["feature"]

    def dataset(self, warnings: list[str] | None = None) -> Any:
        """The run's ``dataset.npz`` (native format), read once per snapshot and shared by every document and the
        live what-if; None when absent or unreadable, with the reason appended to ``warnings`` when given
        (:meth:`dataset_problem`)."""
        with self.lock_for("cache:dataset"):  # read once, not by each request that asks meanwhile
            self._read_dataset()
        if self._cache["dataset_error"] and warnings is not None:
            warnings.append(f"{self._cache['dataset_error']}: raw feature values are not shown")
        return self._cache["dataset"]

    def dataset_problem(self) -> str | None:
        """Why :meth:`dataset` is None (no file, or the reader's error); None when it was read."""
        self.dataset()
        return self._cache["dataset_error"]

    def _read_dataset(self) -> None:
        if "dataset" not in self._cache:
            path = self.run.path / "dataset.npz"
            self._cache["dataset"], self._cache["dataset_error"] = None, None
            if not path.is_file():
                self._cache["dataset_error"] = "run has no dataset.npz"
            else:
                try:
                    from modalens.data.native import load_dataset

                    self._cache["dataset"] = load_dataset(path)
                except Exception as exc:  # any reader failure: show attributions without raw values
                    self._cache["dataset_error"] = f"dataset.npz cannot be read ({exc})"

    @staticmethod
    def _raw_values(dataset: Any, modality: str, feature: str, index: int, positions: np.ndarray) -> list | None:
        if dataset is None or modality not in dataset.modalities:
            return None
        mod = dataset[modality]
        if feature not in mod.feature_names or index >= len(dataset) or positions.max(initial=-1) >= mod.shape[1]:
            return None
        return column(mod.values[index, positions, mod.feature_names.index(feature)])

    def _media_of(self, instance: int) -> list[dict[str, str]]:
        """The media files of one instance: ``media/<key>/<instance row>.<ext>`` (docs/run-format.md)."""
        out = []
        for key, mime in self.interaction.media.items():
            safe_name(key, "media key")  # read_run checked it too: a folder name, never a path
            folder = self.run.path / "media" / key
            if not folder.is_dir():
                continue
            for candidate in folder.glob(f"{int(instance)}.*"):
                out.append({"key": key, "mime": mime, "file": candidate.name})
                break
        return out

    def media_path(self, key: str, name: str) -> Path:
        """The file ``media/<key>/<name>`` inside this run; refuses anything that would leave ``media/<key>``."""
        if key not in self.interaction.media:
            raise NotFound(f"run {self.run_id!r} has no media {key!r}")
        try:
            safe_name(key, "media key")
            safe_name(name, "media file")
        except RunError:
            raise NotFound(f"bad media file name {key!r}/{name!r}") from None
        root = (self.run.path / "media" / key).resolve()
        path = (root / name).resolve()
        if path.parent != root or not path.is_file():
            raise NotFound(f"run {self.run_id!r} has no media file {key}/{name}")
        return path

    def media_mime(self, key: str) -> str:
        """The mime type of a media key (as the run's manifest declares it)."""
        return self.interaction.media.get(key, "application/octet-stream")

    # -- generic tables ------------------------------------------------------------------------------------------
    def table(self, name: str) -> pd.DataFrame:
        self._require(name)
        return self.run.table(name)

    def _require(self, name: str) -> None:
        if name not in self.run.table_names:
            raise NotFound(
                f"run {self.run_id!r} ({self.run.path.name}) has no table {name!r}; it has {self.run.table_names}"
            )


def _vocabulary(feature: str, kind: str | None) -> dict[str, str | None]:
    """A track's ``description`` and ``group`` from the feature vocabulary (None for names it does not know)."""
    info = describe_feature(feature, kind)
    return {"description": info.description if info else None, "group": info.group if info else None}


# -- live runs: one snapshot at a time, reloaded whole when the directory changes ----------------------------------
def run_identity(path: Path) -> str:
    """A short token naming the state of a run directory: changes when the directory is replaced (a new inode)
    or ``manifest.json``, ``dataset.npz`` or a table file is rewritten (inode, size, modification time). Only
    ``stat`` calls (tens of microseconds); a missing directory or manifest raises ``OSError``."""
    st = os.stat(path)
    parts = [f"{st.st_dev}.{st.st_ino}"]
    found_manifest = False
    with os.scandir(path) as entries:
        for entry in entries:
            name = entry.name
            if name == "manifest.json" or name.endswith((".parquet", ".npz")):
                s = entry.stat(follow_symlinks=True)
                parts.append(f"{name}:{s.st_ino}.{s.st_size}.{s.st_mtime_ns}")
                found_manifest = found_manifest or name == "manifest.json"
    if not found_manifest:
        raise FileNotFoundError(f"{path}/manifest.json")
    parts.sort()
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]


@dataclass
class Body:
    """A response body built once per snapshot, with its gzip form made on first demand."""

    raw: bytes
    media_type: str
    gzip: bytes | None = None
    key: str = ""
    charged: int = 0  # bytes counted against the cache


class LiveRun:
    """A served run directory: the current :class:`RunSource` snapshot, reopened whole when the directory changes.

    :meth:`read` builds a result from one snapshot and checks afterwards that the directory did not change while
    it read; if it did (a writer swapped the run in between), the snapshot is dropped and the result built again
    from the new one, so no response mixes two states of a run. :meth:`body` keeps built response bodies per
    snapshot in a cache of at most ``cache_bytes`` (least recently used first out).
    """

    RETRIES = 4

    def __init__(
        self,
        run_id: str,
        path: Path,
        *,
        limits: RunLimits | None = None,
        max_instances: int | None = None,
        cache_bytes: int = 256 << 20,
    ) -> None:
        self.run_id = run_id
        self.path = path
        self.limits = limits
        self.max_instances = max_instances
        self.cache_bytes = cache_bytes
        self._lock = threading.Lock()
        self._source: RunSource | None = None
        self._bodies: OrderedDict[str, Body] = OrderedDict()
        self._body_size = 0
        self.reloads = 0
        try:  # open now: an unreadable run is refused when the server starts
            self._open(run_identity(path))
        except OSError:
            RunSource.open(run_id, path, limits=limits)  # says what is missing
            raise

    # -- snapshots -------------------------------------------------------------------------------------------------
    def _open(self, token: str) -> RunSource:
        with self._lock:
            if self._source is not None and self._source.token == token:
                return self._source
        source = RunSource.open(self.run_id, self.path, limits=self.limits, max_instances=self.max_instances)
        if run_identity(self.path) != token:  # changed while the manifest was read
            raise _Changed
        source.token = token
        with self._lock:
            if self._source is not None and self._source.token == token:
                return self._source  # another thread opened it meanwhile
            if self._source is not None:
                self.reloads += 1
            self._source = source
            self._bodies.clear()
            self._body_size = 0
        return source

    def current(self) -> RunSource:
        """The snapshot of the directory as it is now (reopened whole if it changed since the last call)."""
        return self._retrying(lambda: self._open(run_identity(self.path)))

    def token(self) -> str:
        """The current state's token: a few ``stat`` calls when nothing changed."""
        return self.current().token

    def read(self, build: Callable[[RunSource], Any], *, lock: str | None = None) -> Any:
        """``build(snapshot)`` on a snapshot that the directory still matched when the build ended; under the
        snapshot's ``lock`` (or, with ``lock``, under that key's own lock: builds of other keys go on meanwhile)."""

        def attempt() -> Any:
            source = self._open(run_identity(self.path))
            with source.lock if lock is None else source.lock_for(lock):
                result = build(source)
            if run_identity(self.path) != source.token:
                raise _Changed
            return result

        return self._retrying(attempt)

    def _retrying(self, fn: Callable[[], Any]) -> Any:
        for attempt in range(self.RETRIES + 1):
            try:
                return fn()
            except (_Changed, FileNotFoundError):
                pass
            except RunError:
                if self._stable():
                    raise  # a broken run, not one caught halfway through being replaced
            time.sleep(0.05 * (attempt + 1))
        if not (self.path / "manifest.json").is_file():
            raise RunError(f"run {self.path} is no longer a run directory (no manifest.json)")
        raise RunChanging(f"run {self.run_id!r} is being replaced on disk; try again in a moment")

    def _stable(self) -> bool:
        try:
            first = run_identity(self.path)
            time.sleep(0.02)
            return first == run_identity(self.path)
        except OSError:
            return False

    # -- cached bodies ---------------------------------------------------------------------------------------------
    def peek(self, key: str) -> Body | None:
        """The cached body ``key`` when the directory is still in the cached snapshot's state, else None: a few
        ``stat`` calls and a look-up, nothing that blocks (the server answers these without a worker thread)."""
        source = self._source
        if source is None:
            return None
        try:
            if run_identity(self.path) != source.token:
                return None
        except OSError:
            return None
        return self._cached(source.token, key)

    def body(self, key: str, build: Callable[[RunSource], bytes], media_type: str = "application/json") -> Body:
        """The response body ``key`` of the current snapshot: from the cache, else built once and cached."""
        source = self.current()
        found = self._cached(source.token, key)
        if found is not None:
            return found

        def make(source: RunSource) -> Body:
            found = self._cached(source.token, key)  # built by another request while this one waited
            if found is not None:
                return found
            made = Body(build(source), media_type, key=f"{source.token}:{key}")
            self._store(made)
            return made

        return self.read(make, lock=f"body:{key}")

    def _cached(self, token: str, key: str) -> Body | None:
        with self._lock:
            found = self._bodies.get(f"{token}:{key}")
            if found is not None:
                self._bodies.move_to_end(found.key)
            return found

    def _store(self, body: Body) -> None:
        with self._lock:
            token = body.key.split(":", 1)[0]
            if self._source is None or self._source.token != token or len(body.raw) > self.cache_bytes // 4:
                return
            self._bodies[body.key] = body
            self._charge(body, len(body.raw))

    def _charge(self, body: Body, size: int) -> None:
        body.charged += size
        self._body_size += size
        while self._body_size > self.cache_bytes and self._bodies:
            _, old = self._bodies.popitem(last=False)
            self._body_size -= old.charged
            old.charged = 0

    def gzipped(self, body: Body, level: int) -> bytes:
        """The gzip form of a body, made once (at ``level``) and kept with it while it is cached."""
        packed = body.gzip
        if packed is None:
            import gzip

            packed = gzip.compress(body.raw, compresslevel=level, mtime=0)
            with self._lock:
                if body.gzip is None:
                    body.gzip = packed
                    if self._bodies.get(body.key) is body:
                        self._charge(body, len(packed))
        return packed

    @property
    def cached_bytes(self) -> int:
        return self._body_size


class _Changed(ModalensError):
    """The run directory changed while it was read (internal: the read is retried on the new state)."""


class RunChanging(RunError):
    """A run directory kept changing while a request read it (a writer is replacing it)."""
