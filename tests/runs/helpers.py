"""Helpers of the run-schema tests: copy a run, or write it again with some manifest keys or tables changed."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from modalens.runs import Run, read_run, write_run

COMMON = ("schema_version", "kind", "modalens_version", "created", "tables")


def copy_run(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


def parts(run: Run) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    """A run's manifest (without the keys write_run adds) and its tables, ready for write_run."""
    manifest = {k: v for k, v in run.manifest_json().items() if k not in COMMON}
    return manifest, {name: run.table(name).copy() for name in run.table_names}


def rewrite(
    src: Path,
    dest: Path,
    *,
    manifest: Callable[[dict[str, Any]], None] | None = None,
    tables: Callable[[dict[str, pd.DataFrame]], None] | None = None,
) -> Path:
    """Write ``src`` again at ``dest`` through write_run, after ``manifest(m)`` / ``tables(t)`` changed them."""
    run = read_run(src)
    m, t = parts(run)
    if manifest is not None:
        manifest(m)
    if tables is not None:
        tables(t)
    return write_run(dest, kind=run.kind, manifest=m, tables=t)
