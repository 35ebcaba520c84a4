"""A run for the glyph tests: the synthetic interaction run of :mod:`tests.app.fixtures` plus whole-instance feature
attributions (``position = -1`` rows) for audio and vision, as ``explain`` writes with the ``features`` granularity.

The -1 rows are deliberately *not* the sum of the step rows (1.5 x that sum + 0.01), so a test can tell which rows a
document was built from.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from modalens.runs import write_run

from .fixtures import write_interaction_run

AUTO_KEYS = ("schema_version", "kind", "modalens_version", "created", "tables")


def whole_instance_rows(fa: pd.DataFrame) -> pd.DataFrame:
    """``position = -1`` rows for every named feature of audio and vision: 1.5 x the step rows' sum + 0.01."""
    named = fa[fa["modality"].isin(["audio", "vision"]) & (fa["feature"] != "*")]
    whole = named.groupby(["instance", "modality", "feature"], as_index=False)["value"].sum()
    whole["value"] = 1.5 * whole["value"] + 0.01
    whole["position"] = -1
    whole["token"] = None
    return whole[fa.columns.intersection(whole.columns)]


def write_glyph_run(
    path: str | Path,
    n: int = 300,
    *,
    seed: int = 0,
    whole_instance: bool = True,
    audio_attributions: bool = True,
    dataset: bool = True,
) -> Path:
    """The synthetic run with ``position = -1`` rows added to ``feature_attributions`` (``whole_instance``), or
    without the audio modality's attributions or without ``dataset.npz`` (runs that can draw no rose / no face)."""
    path = Path(path)
    staging = path.parent / f"{path.name}-staging"
    write_interaction_run(staging, n, seed=seed)
    manifest = json.loads((staging / "manifest.json").read_text())
    for key in AUTO_KEYS:
        manifest.pop(key, None)
    tables = {p.stem: pd.read_parquet(p) for p in staging.glob("*.parquet")}
    fa = tables["feature_attributions"]
    if whole_instance:
        fa = pd.concat([fa, whole_instance_rows(fa)], ignore_index=True)
    if not audio_attributions:
        fa = fa[fa["modality"] != "audio"]
    tables["feature_attributions"] = fa
    files = {
        str(p.relative_to(staging)): p.read_bytes()
        for p in staging.rglob("*")
        if p.is_file() and p.suffix != ".parquet" and p.name != "manifest.json"
    }
    if not dataset:
        del files["dataset.npz"]
    write_run(path, kind="interaction", manifest=manifest, tables=tables, files=files)
    shutil.rmtree(staging)
    return path
