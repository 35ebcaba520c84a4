"""Runs with a hand-built ``feature_attributions`` table (and optional word table and dataset measures), made from
the synthetic run of :mod:`tests.app.fixtures` with those parts replaced, for known-answer tests of the Summary's
feature importance and measures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from modalens.runs import read_run, write_run

from .fixtures import write_interaction_run

ADDED_BY_WRITER = ("schema_version", "kind", "modalens_version", "created", "tables")


def write_run_with(
    path: Path,
    n: int,
    *,
    feature_attributions: pd.DataFrame | None,
    word_attributions: pd.DataFrame | None = None,
    dataset_measures: dict[str, Any] | None = None,
) -> Path:
    """The synthetic run of ``n`` instances with these tables (None: no feature attributions at all)."""
    base = write_interaction_run(path.parent / f".{path.name}-base", n, media_count=0)
    run = read_run(base)
    manifest = {k: v for k, v in run.manifest_json().items() if k not in ADDED_BY_WRITER}
    manifest["dataset_measures"] = dataset_measures or {}
    tables = {name: run.table(name) for name in run.table_names if name != "feature_importance"}
    tables.pop("feature_attributions")
    if feature_attributions is not None:
        tables["feature_attributions"] = feature_attributions
    if word_attributions is not None:
        tables["word_attributions"] = word_attributions
    files = {"dataset.npz": (base / "dataset.npz").read_bytes()}
    return write_run(path, kind="interaction", manifest=manifest, tables=tables, files=files)


def rows(*items: tuple[int, str, int, str, float, str | None]) -> pd.DataFrame:
    """A feature_attributions table from (instance, modality, position, feature, value, token) tuples."""
    frame = pd.DataFrame(items, columns=["instance", "modality", "position", "feature", "value", "token"])
    return frame.astype({"instance": "int64", "position": "int64", "value": "float64"})
