"""Run directories: a ``manifest.json`` plus Parquet tables, written atomically.

A run directory is complete or absent: everything is written into a temporary sibling directory, which is then
renamed into place. Readers refuse unknown schema versions with a message that says which version they know.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modalens._core.errors import ModalensError

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"


class RunError(ModalensError, ValueError):
    """A run directory is missing, incomplete, or of a schema this version cannot read."""


@dataclass
class Run:
    """A run directory read back: its manifest, its tables (loaded lazily) and its extra files."""

    path: Path
    manifest: dict[str, Any]
    _tables: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    @property
    def kind(self) -> str:
        return self.manifest["kind"]

    @property
    def table_names(self) -> list[str]:
        return list(self.manifest.get("tables", {}))

    def table(self, name: str) -> pd.DataFrame:
        """One table by name, read from Parquet on first use."""
        if name not in self._tables:
            if name not in self.manifest.get("tables", {}):
                raise RunError(f"run {self.path} has no table {name!r}; it has {self.table_names}")
            file = self.path / self.manifest["tables"][name]["file"]
            try:
                self._tables[name] = pd.read_parquet(file)
            except Exception as exc:  # pyarrow raises several kinds; name the file either way
                raise RunError(f"run {self.path}: table {name!r} ({file.name}) cannot be read: {exc}") from exc
        return self._tables[name]

    def file(self, name: str) -> Path:
        """An extra file stored in the run (an image, an audio clip, a JSON blob)."""
        path = (self.path / name).resolve()
        if self.path.resolve() not in path.parents:
            raise RunError(f"{name!r} is outside the run directory")
        if not path.is_file():
            raise RunError(f"run {self.path} has no file {name!r}")
        return path


def write_run(
    path: str | os.PathLike,
    *,
    kind: str,
    manifest: dict[str, Any],
    tables: dict[str, pd.DataFrame],
    files: dict[str, bytes] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a run directory atomically.

    Parameters
    ----------
    path
        The run directory to create.
    kind
        What produced the run: ``"interaction"`` (the explanation engine) or ``"features"`` (the feature engine).
    manifest
        JSON-ready content; ``schema_version``, ``kind``, ``modalens_version``, ``created`` and ``tables`` are added.
    tables
        Named DataFrames, each stored as ``<name>.parquet``.
    files
        Extra files by relative path (media, JSON blobs), stored as given.
    overwrite
        Replace an existing run directory (the old one is removed only after the new one is complete).
    """
    from modalens._core.version import __version__

    target = Path(path)
    if target.exists() and not overwrite:
        raise RunError(f"{target} exists; pass overwrite=True (CLI: --overwrite) to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        table_index = {}
        for name, frame in tables.items():
            file = f"{name}.parquet"
            frame.to_parquet(tmp / file, index=False)
            table_index[name] = {"file": file, "rows": int(len(frame)), "columns": list(map(str, frame.columns))}
        for rel, data in (files or {}).items():
            dest = tmp / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        full = {
            "schema_version": SCHEMA_VERSION,
            "kind": kind,
            "modalens_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **manifest,
            "tables": table_index,
        }
        (tmp / MANIFEST).write_text(json.dumps(_jsonable(full), indent=2, allow_nan=False))
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def read_run(path: str | os.PathLike) -> Run:
    """Open a run directory, checking that it is complete and of a schema this version reads."""
    root = Path(path)
    manifest_file = root / MANIFEST
    if not root.is_dir():
        raise RunError(f"{root} is not a directory")
    if not manifest_file.is_file():
        raise RunError(f"{root} is not a modalens run directory: no {MANIFEST}")
    try:
        manifest = json.loads(manifest_file.read_text())
    except json.JSONDecodeError as exc:
        raise RunError(f"{manifest_file} is not valid JSON: {exc}") from exc
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise RunError(
            f"{root}: run schema version {version!r} is not supported; this modalens reads version {SCHEMA_VERSION}"
        )
    for name, entry in manifest.get("tables", {}).items():
        if not (root / entry["file"]).is_file():
            raise RunError(f"{root}: table {name!r} is listed in the manifest but {entry['file']} is missing")
    return Run(root, manifest)


def _jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays and non-finite floats into plain JSON values (NaN/inf become None)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value
