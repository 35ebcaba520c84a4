"""Run directories: a ``manifest.json`` plus Parquet tables, written atomically and read through one reader.

A run directory is complete or absent: everything is written into a temporary sibling directory, which is then
moved into place (replacing an old run in one atomic swap where the system allows, else by two renames with a
backup that the next reader or writer puts back if the writer was killed between them; :mod:`modalens.runs.paths`).
What goes in is checked against the run schema (:mod:`modalens.runs.schema`) before anything is written, and
checked again when read: readers refuse unknown schema versions, manifests and tables that do not match, and sizes
over :class:`RunLimits`, with a message that names the run, the table or key, what was expected and what was found.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from modalens.runs.paths import RunWarning, check_target, exchange, inside, recover, safe_name, safe_relpath, sibling
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

MIB = 1 << 20


@dataclass(frozen=True)
class RunLimits:
    """What a run may claim before anything is allocated for it; a claim over a limit is a :class:`RunError`.

    ``max_rows``: rows of one table (the manifest's count and the Parquet footer's); ``max_table_bytes``: one
    table's uncompressed size, from its Parquet footer; ``max_manifest_bytes``: the size of ``manifest.json``.
    """

    max_rows: int = 200_000_000
    max_table_bytes: int = 16 << 30
    max_manifest_bytes: int = 64 * MIB


DEFAULT_LIMITS = RunLimits()


@dataclass
class Run:
    """A run directory read back: its validated manifest, its tables (loaded lazily) and its extra files.

    ``manifest`` is the kind's model (:class:`~modalens.runs.schema.InteractionManifest` or
    :class:`~modalens.runs.schema.FeatureManifest`); :meth:`manifest_json` is the same as JSON.
    """

    path: Path
    manifest: InteractionManifest | FeatureManifest
    schema_version: int = SCHEMA_VERSION
    limits: RunLimits = DEFAULT_LIMITS
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
            size = sum(meta.metadata.row_group(i).total_byte_size for i in range(meta.metadata.num_row_groups))
        except Exception as exc:  # a truncated or foreign file: name it
            raise RunError(f"{where}: table {name!r} ({entry.file}) cannot be read: {exc}") from exc
        if rows > self.limits.max_rows:
            raise RunError(f"{where}: table {name!r} holds {rows:,} rows, over the limit of {self.limits.max_rows:,}")
        if size > self.limits.max_table_bytes:
            raise RunError(
                f"{where}: table {name!r} is {size:,} bytes uncompressed, over the limit of "
                f"{self.limits.max_table_bytes:,}"
            )
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
        try:
            path = inside(self.path, safe_relpath(name))
        except RunError:
            raise RunError(f"{name!r} is outside the run directory or not a file name of one") from None
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
        Extra files by relative path (media, JSON blobs), stored as given. Every component of a path must pass
        :func:`modalens.runs.safe_name` (no ``/`` inside, no ``..``, no leading dot ...), and no path may resolve
        outside the run or replace the manifest or a table.
    overwrite
        Replace an existing run directory. The old run stays in place until the new one is complete; it is then
        swapped in (one atomic exchange on Linux, else two renames with a backup that :func:`read_run` and the
        next writer restore if this process is killed between them). Only a run (or an empty folder) is replaced.

    Raises
    ------
    RunError
        The target exists (without ``overwrite``) or cannot be written, a file name is unsafe, or the manifest or a
        table does not match the schema: the message names the run, the table, column, key or file, what was
        expected and what was found.
    """
    from modalens._core.version import __version__

    target = Path(path)
    where = f"run {target}"
    check_target(target, overwrite=overwrite)  # also restores a run a killed writer left aside, removes leftovers
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
    _check_named_folders(validate_manifest(full, where), where)
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
    extra = _extra_files(files or {}, {MANIFEST, *(f"{name}.parquet" for name in arrow)}, where)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = sibling(target, "tmp")
    tmp.mkdir()
    try:
        for name, data in arrow.items():
            pq.write_table(data, inside(tmp, f"{name}.parquet"))
        for rel, blob in extra.items():
            inside(tmp, rel).parent.mkdir(parents=True, exist_ok=True)
            inside(tmp, rel).write_bytes(blob)  # checked again once its folders exist: nothing leaves tmp
        (tmp / MANIFEST).write_text(json.dumps(checked, indent=2, allow_nan=False))
        _move_into_place(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _extra_files(files: dict[str, bytes], reserved: set[str], where: str) -> dict[Any, bytes]:
    """The extra files by safe relative path; refuses unsafe names and files that would replace run files."""
    out: dict[Any, bytes] = {}
    for rel, blob in files.items():
        path = safe_relpath(rel, f"{where}: file")
        if str(path) in reserved:
            raise RunError(f"{where}: file {rel!r} would replace the run's own {path}; refused")
        if path in out:
            raise RunError(f"{where}: file {rel!r} is given twice")
        out[path] = blob
    for path in out:  # a file may not also be a folder of another (media/a and media/a/0.png)
        if any(parent in out for parent in path.parents):
            raise RunError(f"{where}: file {str(path)!r} lies inside another given file")
    return out


def _check_named_folders(manifest: Any, where: str) -> None:
    """Manifest names that become folders (media keys, the images folder) must be safe file names."""
    for key in getattr(manifest, "media", None) or {}:
        safe_name(key, f"{where}: media key")
    images = getattr(manifest, "images", None)
    if images is not None:
        safe_name(images.dir, f"{where}: images folder")


def _move_into_place(tmp: Path, target: Path) -> None:
    """Put the complete run ``tmp`` at ``target``; an old run there is swapped out and removed afterwards."""
    if not (target.exists() or target.is_symlink()):
        os.rename(tmp, target)
        return
    if exchange(tmp, target):  # one atomic step: tmp now holds the old run
        shutil.rmtree(tmp, ignore_errors=True)  # if killed here, the next writer removes it (its writer is gone)
        return
    backup = sibling(target, "old")
    os.rename(target, backup)  # from here to the next rename there is no run at target: recover() restores it
    try:
        os.rename(tmp, target)
    except BaseException:
        os.rename(backup, target)
        raise
    shutil.rmtree(backup, ignore_errors=True)


def read_run(path: str | os.PathLike, *, check_tables: bool = True, limits: RunLimits | None = None) -> Run:
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
    limits
        Sizes the run may claim (:class:`RunLimits`; the defaults when None).

    A run that is missing because its writer was killed while replacing it is first restored from the backup that
    writer left (:func:`modalens.runs.paths.recover`; a :class:`~modalens.runs.paths.RunWarning` says so).

    Raises
    ------
    RunError
        Not a run directory, an unknown schema version (the message names it and the versions this modalens
        reads), a manifest or table that does not match the schema (the message names the key or column), or a
        size over a limit.
    """
    root = Path(path)
    limits = limits or DEFAULT_LIMITS
    manifest_file = root / MANIFEST
    where = f"run {root}"
    if not manifest_file.is_file():
        for note in recover(root, clean=False):
            warnings.warn(note, RunWarning, stacklevel=2)
    if not root.is_dir():
        raise RunError(f"{root} is not a directory")
    if not manifest_file.is_file():
        raise RunError(f"{root} is not a modalens run directory: no {MANIFEST}")
    size = manifest_file.stat().st_size
    if size > limits.max_manifest_bytes:
        raise RunError(f"{manifest_file} is {size:,} bytes, over the limit of {limits.max_manifest_bytes:,}")
    try:
        raw = json.loads(manifest_file.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunError(f"{manifest_file} is not valid JSON: {exc}") from exc
    except RecursionError:
        raise RunError(f"{manifest_file} is not valid JSON: nested too deeply") from None
    if not isinstance(raw, dict):
        raise RunError(f"{manifest_file}: expected a JSON object, found {type(raw).__name__}")
    version = check_version(raw.get("schema_version"), where)
    manifest = validate_manifest(upgrade(raw), where)
    check_table_names(run_kind(manifest.kind, where), list(manifest.tables), where)
    _check_named_folders(manifest, where)
    for name, entry in manifest.tables.items():
        if Path(entry.file).name != entry.file or not (root / entry.file).is_file():
            raise RunError(f"{where}: table {name!r} is listed in the manifest but {entry.file} is missing")
        if not 0 <= entry.rows <= limits.max_rows:
            raise RunError(
                f"{where}: the manifest says table {name!r} holds {entry.rows:,} rows; "
                f"the limit is 0..{limits.max_rows:,}"
            )
    run = Run(root, manifest, version, limits)  # type: ignore[arg-type]
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
