"""Read-side helpers that turn a run directory into the JSON documents the web app asks for.

Everything here reads; nothing writes. Runs are opened only through :func:`modalens.runs.read_run`, which checks
them against the run schema, so the manifest is typed here (:class:`~modalens.runs.InteractionManifest`,
:class:`~modalens.runs.FeatureManifest`). Each function builds one document (the instance table, one instance's
detail, the templates, a comparison of two runs) from :class:`modalens.runs.Run` tables, with per-run caches so
that a 50,000-instance run answers instance look-ups in milliseconds after the first request.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modalens._core.errors import ModalensError
from modalens.runs import InteractionManifest, Run, RunError, read_run

MEDIA_NAME = re.compile(r"^[^/\\\x00]+$")
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
    """One served run directory, with caches for the documents built from it."""

    run_id: str
    run: Run
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, run_id: str, path: str | Path) -> RunSource:
        return cls(run_id, read_run(path, check_tables=False))  # each table is checked by its first request

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
    def instances(self) -> bytes:
        """Columnar JSON of every instance, with its modality Shapley values and 2-D position."""
        if "instances" not in self._cache:
            self._cache["instances"] = dumps(self._instances_document())
        return self._cache["instances"]

    def _instances_document(self) -> dict[str, Any]:
        self._require("instances")
        frame = self.run.table("instances").sort_values("instance", kind="stable")
        n = len(frame)
        if not np.array_equal(frame["instance"].to_numpy(), np.arange(n)):
            raise RunError(f"run {self.run.path}: instances.instance must be the row numbers 0..{n - 1}")
        cols = {c: column(frame[c]) for c in INSTANCE_COLUMNS if c in frame.columns}
        for c in frame.columns:
            if c.startswith("meta_"):
                cols[c] = column(frame[c])
        modalities = self.modalities
        shapley = self.shapley_matrix()
        xy, method = self.projection()
        return {
            "n": n,
            "modalities": modalities,
            "columns": cols,
            "shapley": {m: column(shapley[:, k]) for k, m in enumerate(modalities)},
            "x": column(xy[:, 0]),
            "y": column(xy[:, 1]),
            "projection_method": method,
        }

    @cached_property
    def modalities(self) -> list[str]:
        return self.run.modalities

    @property
    def n(self) -> int:
        return self.run.rows("instances")

    def shapley_matrix(self) -> np.ndarray:
        """``[N, M]`` modality Shapley values (NaN where the run has none)."""
        if "shapley" not in self._cache:
            out = np.full((self.n, len(self.modalities)), np.nan)
            if "modality_shapley" in self.run.table_names:
                ms = self.run.table("modality_shapley")
                col = pd.Categorical(ms["modality"], categories=self.modalities).codes
                ok = col >= 0
                out[ms["instance"].to_numpy()[ok], col[ok]] = ms["value"].to_numpy()[ok]
            self._cache["shapley"] = out
        return self._cache["shapley"]

    def projection(self) -> tuple[np.ndarray, str]:
        """The stored 2-D projection, or a PCA of the explanation vectors when the run has none."""
        if "projection" in self.run.table_names:
            p = self.run.table("projection")
            xy = np.full((self.n, 2), np.nan)
            xy[p["instance"].to_numpy()] = p[["x", "y"]].to_numpy()
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
        detail["media"] = self._media_of(index)
        return detail

    def _instance_rows(self) -> np.ndarray:
        if "instance_rows" not in self._cache:
            inst = self.run.table("instances")["instance"].to_numpy()
            rows = np.full(self.n, -1, dtype=np.int64)
            rows[inst] = np.arange(len(inst))
            self._cache["instance_rows"] = rows
        return self._cache["instance_rows"]

    def _grouped(self, name: str) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
        """The table's columns as arrays sorted by instance (then modality, feature, position where present),
        plus the start offset of each instance's rows: an instance's rows are one slice, found in O(1)."""
        key = f"grouped:{name}"
        if key not in self._cache:
            if name not in self.run.table_names:
                self._cache[key] = None
            else:
                frame = self.run.table(name)
                # feature attributions: grouped into tracks, so sort within an instance too; other tables keep
                # the writer's row order (modality order, pair order) inside each instance
                keys = (
                    ("instance", "modality", "feature", "position") if name == "feature_attributions" else ("instance",)
                )
                order = [c for c in keys if c in frame.columns]
                frame = frame.sort_values(order, kind="stable", ignore_index=True)
                cols = {c: frame[c].to_numpy() for c in frame.columns}
                bounds = np.searchsorted(cols["instance"], np.arange(self.n + 1))
                self._cache[key] = (cols, bounds)
        return self._cache[key]

    def _rows_of(self, name: str, index: int) -> list[dict[str, Any]] | None:
        grouped = self._grouped(name)
        if grouped is None:
            return None
        cols, bounds = grouped
        a, b = bounds[index], bounds[index + 1]
        names = [c for c in cols if c != "instance"]
        parts = [[_scalar(v) for v in cols[c][a:b].tolist()] for c in names]
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
        grouped = self._grouped("feature_attributions")
        if grouped is None:
            return {}, []
        cols, bounds = grouped
        a, b = bounds[index], bounds[index + 1]
        modality = cols["modality"][a:b].astype(str)
        feature = cols["feature"][a:b].astype(str)
        position = cols["position"][a:b].astype(np.int64)
        value = cols["value"][a:b].astype(np.float64)
        token = cols["token"][a:b] if "token" in cols else np.full(b - a, None, dtype=object)
        dataset = self._dataset(warnings)
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
                }
            )
        return words, tracks

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

    def _dataset(self, warnings: list[str]) -> Any:
        """The run's ``dataset.npz`` (native format), read once; None (with a warning) when absent or unreadable."""
        if "dataset" not in self._cache:
            path = self.run.path / "dataset.npz"
            self._cache["dataset"], self._cache["dataset_error"] = None, None
            if not path.is_file():
                self._cache["dataset_error"] = "run has no dataset.npz: raw feature values are not shown"
            else:
                try:
                    from modalens.data.native import load_dataset

                    self._cache["dataset"] = load_dataset(path)
                except Exception as exc:  # any reader failure: show attributions without raw values
                    self._cache["dataset_error"] = f"dataset.npz cannot be read ({exc}); raw values are not shown"
        if self._cache["dataset_error"]:
            warnings.append(self._cache["dataset_error"])
        return self._cache["dataset"]

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
        if not MEDIA_NAME.match(name) or name in (".", ".."):
            raise NotFound(f"bad media file name {name!r}")
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
    # classes: a different predicted class; regression: a different sign (the Acc-2 sense of agreement)
    disagree = pa != pb if label_kind == "classification" else np.sign(pa) != np.sign(pb)
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
