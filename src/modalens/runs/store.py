"""Run directories: a ``manifest.json`` plus Parquet tables, written atomically and read through one reader.

A run directory is complete or absent: everything is written into a temporary sibling directory, which is then
renamed into place. What goes in is checked against the run schema (:mod:`modalens.runs.schema`) before anything
is written, and checked again when read: readers refuse unknown schema versions, manifests and tables that do not
match, with a message that names the run, the table or key, what was expected and what was found.
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
import pyarrow as pa
import pyarrow.parquet as pq

from modalens.runs.schema import (
    MANIFEST,
    SCHEMA_VERSION,
    FeatureManifest,
    InteractionManifest,
    RunError,
    RunKind,
    check_columns,
    check_table_names,
    check_version,
    conform,
    empty_table,
    run_kind,
    upgrade,
    validate_manifest,
)


@dataclass
class Run:
    """A run directory read back: its validated manifest, its tables (loaded lazily) and its extra files.

    ``manifest`` is the kind's model (:class:`~modalens.runs.schema.InteractionManifest` or
    :class:`~modalens.runs.schema.FeatureManifest`); :meth:`manifest_json` is the same as JSON.
    """

    path: Path
    manifest: InteractionManifest | FeatureManifest
    schema_version: int = SCHEMA_VERSION
    _tables: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    _checked: set[str] = field(default_factory=set, repr=False)

    @property
    def kind(self) -> str:
        return self.manifest.kind

    @property
    def declaration(self) -> RunKind:
        return run_kind(self.kind, str(self.path))

    @property
    def modalities(self) -> list[str]:
        """The run's modality names (interaction: the players; features: the dominance modalities)."""
        return self.declaration.modalities(self.manifest)

    @property
    def table_names(self) -> list[str]:
        return list(self.manifest.tables)

    def has_table(self, name: str) -> bool:
        return name in self.manifest.tables

    def rows(self, name: str) -> int:
        """Rows of a table, from the manifest (no table is read)."""
        self._entry(name)
        return self.manifest.tables[name].rows

    def table(self, name: str) -> pd.DataFrame:
        """One table by name, read from Parquet on first use (after its schema is checked, if it was not yet)."""
        if name not in self._tables:
            self.check_table(name)
            file = self.path / self._entry(name).file
            try:
                self._tables[name] = pd.read_parquet(file)
            except Exception as exc:  # pyarrow raises several kinds; name the file either way
                raise RunError(f"run {self.path}: table {name!r} ({file.name}) cannot be read: {exc}") from exc
        return self._tables[name]

    def check_table(self, name: str) -> None:
        """Check a table's Parquet schema and row count against the run schema (from the footer; no rows read)."""
        if name in self._checked:
            return
        entry = self._entry(name)
        where = f"run {self.path}"
        file = self.path / entry.file
        if Path(entry.file).name != entry.file or not file.is_file():
            raise RunError(f"{where}: table {name!r} is listed in the manifest but {entry.file} is missing")
        try:
            meta = pq.ParquetFile(file)
            schema, rows = meta.schema_arrow, meta.metadata.num_rows
        except Exception as exc:  # a truncated or foreign file: name it
            raise RunError(f"{where}: table {name!r} ({entry.file}) cannot be read: {exc}") from exc
        check_columns(self.declaration.table(name), schema, self.modalities, where, rows=rows)  # type: ignore[arg-type]
        if rows != entry.rows:
            raise RunError(f"{where}: table {name!r} has {rows} rows, the manifest says {entry.rows}")
        self._checked.add(name)

    def optional_table(self, name: str) -> pd.DataFrame | None:
        """The table, or None when the run did not store it."""
        return self.table(name) if self.has_table(name) else None

    def manifest_json(self) -> dict[str, Any]:
        """The manifest as JSON-ready data, every declared key present (what the app serves)."""
        return self.manifest.model_dump(mode="json", by_alias=True)

    def file(self, name: str) -> Path:
        """An extra file stored in the run (an image, an audio clip, a JSON blob)."""
        path = (self.path / name).resolve()
        if self.path.resolve() not in path.parents:
            raise RunError(f"{name!r} is outside the run directory")
        if not path.is_file():
            raise RunError(f"run {self.path} has no file {name!r}")
        return path

    def _entry(self, name: str) -> Any:
        if name not in self.manifest.tables:
            raise RunError(f"run {self.path} has no table {name!r}; it has {self.table_names}")
        return self.manifest.tables[name]


def write_run(
    path: str | os.PathLike,
    *,
    kind: str,
    manifest: dict[str, Any],
    tables: dict[str, pd.DataFrame],
    files: dict[str, bytes] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a run directory atomically, after checking it against the run schema.

    Parameters
    ----------
    path
        The run directory to create.
    kind
        What produced the run: ``"interaction"`` (the interaction engine) or ``"features"`` (the feature engine).
    manifest
        JSON-ready content of the kind's manifest; ``schema_version``, ``kind``, ``modalens_version``, ``created``
        and ``tables`` are added.
    tables
        Named DataFrames, each stored as ``<name>.parquet`` with the declared column types.
    files
        Extra files by relative path (media, JSON blobs), stored as given.
    overwrite
        Replace an existing run directory (the old one is removed only after the new one is complete).

    Raises
    ------
    RunError
        The target exists (without ``overwrite``), or the manifest or a table does not match the schema: the
        message names the run, the table, column or key, what was expected and what was found.
    """
    from modalens._core.version import __version__

    target = Path(path)
    where = f"run {target}"
    if target.exists() and not overwrite:
        raise RunError(f"{target} exists; pass overwrite=True (CLI: --overwrite) to replace it")
    decl = run_kind(kind, where)
    check_table_names(decl, list(tables), where)
    full = _jsonable(
        {
            "schema_version": SCHEMA_VERSION,
            "kind": kind,
            "modalens_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **manifest,
            "tables": {},
        }
    )
    modalities = decl.modalities(validate_manifest(full, where))
    arrow = {}
    for name, frame in tables.items():
        try:
            empty = frame.shape == (0, 0)  # `pd.DataFrame()`: an empty table of the declared columns
            data = (
                empty_table(decl.table(name), modalities)
                if empty
                else pa.Table.from_pandas(frame, preserve_index=False)
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise RunError(f"{where}: table {name!r} cannot be stored: {exc}") from None
        arrow[name] = conform(decl.table(name), data, modalities, where)  # type: ignore[arg-type]
        full["tables"][name] = {"file": f"{name}.parquet", "rows": arrow[name].num_rows, "columns": data.column_names}
    checked = validate_manifest(full, where).model_dump(mode="json", by_alias=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for name, data in arrow.items():
            pq.write_table(data, tmp / f"{name}.parquet")
        for rel, blob in (files or {}).items():
            dest = tmp / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(blob)
        (tmp / MANIFEST).write_text(json.dumps(checked, indent=2, allow_nan=False))
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


def read_run(path: str | os.PathLike, *, check_tables: bool = True) -> Run:
    """Open a run directory, checking it against the run schema.

    Parameters
    ----------
    path
        The run directory.
    check_tables
        Check every table's columns, types and row count now (from the Parquet footers, without loading rows).
        False defers each table's check to its first :meth:`Run.table` (the server: a broken table is reported by
        the request that needs it). The manifest, the table list and the table files' presence are checked either
        way.

    Raises
    ------
    RunError
        Not a run directory, an unknown schema version (the message names it and the versions this modalens
        reads), or a manifest or table that does not match the schema (the message names the key or column).
    """
    root = Path(path)
    manifest_file = root / MANIFEST
    where = f"run {root}"
    if not root.is_dir():
        raise RunError(f"{root} is not a directory")
    if not manifest_file.is_file():
        raise RunError(f"{root} is not a modalens run directory: no {MANIFEST}")
    try:
        raw = json.loads(manifest_file.read_text())
    except json.JSONDecodeError as exc:
        raise RunError(f"{manifest_file} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise RunError(f"{manifest_file}: expected a JSON object, found {type(raw).__name__}")
    version = check_version(raw.get("schema_version"), where)
    manifest = validate_manifest(upgrade(raw), where)
    check_table_names(run_kind(manifest.kind, where), list(manifest.tables), where)
    for name, entry in manifest.tables.items():
        if Path(entry.file).name != entry.file or not (root / entry.file).is_file():
            raise RunError(f"{where}: table {name!r} is listed in the manifest but {entry.file} is missing")
    run = Run(root, manifest, version)  # type: ignore[arg-type]
    if check_tables:
        for name in run.table_names:
            run.check_table(name)
    return run


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
