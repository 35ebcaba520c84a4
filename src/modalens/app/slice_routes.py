"""Routes of slices: named filters saved in the user's folder, the export of a selection, the utterance texts.

- ``GET /api/runs/{run}/slices``: ``{"slices": [{"name", "filter", "created"}]}``, the run's saved slices.
- ``PUT /api/runs/{run}/slices/{name}`` with ``{"filter": {"conditions": [...]}}``: save (or replace) a slice.
- ``DELETE /api/runs/{run}/slices/{name}``: forget it.
- ``POST /api/runs/{run}/selection?format=csv|parquet`` with ``{"indices": [...]}``: those instances' rows (the
  instance table's columns with the modality Shapley values) as a file download.
- ``GET /api/runs/{run}/text``: ``{"text": [...]}``, every instance's utterance (for "word contains"; the instance
  document leaves texts out to stay small).

Runs are read-only: slices live in ``$MODALENS_HOME/slices/`` (default ``~/.modalens/slices/``), one JSON file per
run named by a hash of the run's identity (its manifest ``created`` time and its directory name), so the same run
finds its slices again after a restart or from another copy of the folder. Files are replaced atomically and size-
capped; names are checked (length, characters), and every refusal is a 4xx ``{"error": ...}`` saying why. The
filter's shape is checked here as the web app's ``filters.ts`` defines it, so a slice saved by hand or by another
client cannot break the app.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from modalens._core.atomic import write_atomically
from modalens.app.data import NotFound, column, dumps

HOME_ENV = "MODALENS_HOME"
MAX_NAME = 80
NAME_PATTERN = re.compile(r"^[\w][\w .,()+\-#&'=<>%]*$")  # \w is Unicode: names in any script
MAX_SLICES = 500  # per run
MAX_FILTER_BYTES = 16 << 10
MAX_FILE_BYTES = 4 << 20
MAX_CONDITIONS = 32
MAX_VALUES = 200
MAX_TEXT = 200
COLUMN_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()


def slices_home() -> Path:
    """``$MODALENS_HOME/slices`` (default ``~/.modalens/slices``), read on every call so tests and users can move it."""
    base = os.environ.get(HOME_ENV) or str(Path.home() / ".modalens")
    return Path(base).expanduser().resolve() / "slices"


def run_key(created: str | None, name: str) -> str:
    """The file stem of a run's slices: a hash of its identity (no path, no user text reaches the file system)."""
    return hashlib.sha256(f"{created or ''}\0{name}".encode()).hexdigest()[:24]


def check_name(name: str) -> str:
    """A slice name, or a 422 saying what a name may hold."""
    if not 1 <= len(name) <= MAX_NAME or name != name.strip():
        raise HTTPException(422, f"a slice name has 1 to {MAX_NAME} characters and no leading or trailing space")
    if not NAME_PATTERN.match(name):
        raise HTTPException(
            422, f"slice name {name[:40]!r}: use letters, digits, spaces and . , ( ) + - # & ' = < > % _ only"
        )
    return name


def check_filter(spec: Any) -> dict[str, Any]:
    """The filter as the web app defines it (``web/src/filters.ts``), or a 422 naming the first problem."""

    def bad(message: str) -> HTTPException:
        return HTTPException(422, f"filter: {message}")

    if not isinstance(spec, dict) or not isinstance(spec.get("conditions"), list):
        raise bad('a filter is {"conditions": [...]}')
    if len(json.dumps(spec)) > MAX_FILTER_BYTES:
        raise bad(f"at most {MAX_FILTER_BYTES:,} bytes of JSON")
    conds = spec["conditions"]
    if len(conds) > MAX_CONDITIONS:
        raise bad(f"at most {MAX_CONDITIONS} conditions, got {len(conds)}")
    out = []
    for k, c in enumerate(conds):
        if not isinstance(c, dict) or not isinstance(c.get("column"), str) or not COLUMN_PATTERN.match(c["column"]):
            raise bad(f"condition {k}: column must be a column name (letters, digits, _)")
        op = c.get("op")
        if op == "range":
            bounds = [c.get("min"), c.get("max")]
            for v in bounds:
                ok = v is None or (isinstance(v, int | float) and not isinstance(v, bool) and not math.isnan(v))
                if not ok:
                    raise bad(f"condition {k}: min and max are numbers or null")
            out.append({"column": c["column"], "op": op, "min": bounds[0], "max": bounds[1]})
        elif op == "in":
            values = c.get("values")
            if not isinstance(values, list) or len(values) > MAX_VALUES:
                raise bad(f"condition {k}: values is a list of at most {MAX_VALUES}")
            if not all(v is None or (isinstance(v, str) and len(v) <= MAX_TEXT) for v in values):
                raise bad(f"condition {k}: values are strings (at most {MAX_TEXT} characters) or null")
            out.append({"column": c["column"], "op": op, "values": values})
        elif op in ("contains", "prefix"):
            text = c.get("text")
            if not isinstance(text, str) or len(text) > MAX_TEXT:
                raise bad(f"condition {k}: text is a string of at most {MAX_TEXT} characters")
            out.append({"column": c["column"], "op": op, "text": text})
        else:
            raise bad(f"condition {k}: op must be range, in, contains or prefix, got {op!r}")
    return {"conditions": out}


class SliceBody(BaseModel):
    filter: dict[str, Any]


class SelectionBody(BaseModel):
    indices: list[int] = Field(max_length=5_000_000)


class SliceStore:
    """The saved slices of one run: a JSON file under :func:`slices_home`, read and replaced whole."""

    def __init__(self, folder: Path, created: str | None, name: str, run_path: Path) -> None:
        if folder == run_path or run_path in folder.parents:
            raise HTTPException(
                409, f"${HOME_ENV} points inside a served run; slices are never written into a run: set it elsewhere"
            )
        self.created = created
        self.name = name
        self.path = folder / f"{run_key(created, name)}.json"
        with _locks_guard:
            self.lock = _locks.setdefault(self.path, threading.Lock())

    def load(self) -> list[dict[str, Any]]:
        try:
            if self.path.stat().st_size > MAX_FILE_BYTES:
                raise HTTPException(500, f"the saved slices of this run ({self.path.name}) exceed {MAX_FILE_BYTES:,} B")
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise HTTPException(
                500, f"the saved slices of this run ({self.path.name} under ${HOME_ENV}/slices) are unreadable: {exc}"
            ) from exc
        slices = doc.get("slices") if isinstance(doc, dict) else None
        if not isinstance(slices, list):
            raise HTTPException(500, f"{self.path.name} under ${HOME_ENV}/slices has no list of slices")
        return [s for s in slices if isinstance(s, dict) and isinstance(s.get("name"), str)]

    def save(self, slices: list[dict[str, Any]]) -> None:
        doc = {"run": {"name": self.name, "created": self.created}, "slices": slices}
        text = json.dumps(doc, ensure_ascii=False, indent=1)
        if len(text.encode()) > MAX_FILE_BYTES:
            raise HTTPException(413, f"the run's slices would exceed {MAX_FILE_BYTES:,} B; delete some first")
        try:
            write_atomically(self.path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        except OSError as exc:
            raise HTTPException(500, f"cannot write the slices under ${HOME_ENV}/slices: {exc.strerror}") from exc


def selection_frame(source: Any, indices: list[int]) -> Any:
    """The instance table's rows of these instances (in instance order) with every modality's Shapley value."""
    n = source.n
    rows = np.unique(np.asarray(indices, dtype=np.int64))
    if len(rows) and (rows[0] < 0 or rows[-1] >= n):
        bad = rows[(rows < 0) | (rows >= n)][0]
        raise HTTPException(422, f"instance {bad} is not in this run (0..{n - 1})")
    source.interaction  # noqa: B018 - refuses a feature run with a clear message
    frame = source.run.table("instances").sort_values("instance", kind="stable").reset_index(drop=True)
    out = frame.iloc[rows].reset_index(drop=True)
    shap = source.shapley_matrix()
    for k, m in enumerate(source.modalities):
        if f"shapley_{m}" not in out.columns:
            out[f"shapley_{m}"] = shap[rows, k]
    return out


def text_document(source: Any) -> dict[str, Any]:
    """``{"text": [...]}``: every instance's utterance in instance order (null where it has none; ``"text": null``
    when the run records no texts). The route's document, also embedded by the HTML export."""
    source.interaction  # noqa: B018 - refuses a feature run with a clear message
    frame = source.run.table("instances").sort_values("instance", kind="stable")
    return {"text": column(frame["text"]) if "text" in frame.columns else None}


def add_slice_routes(app: FastAPI, *, get_run: Callable[[str], Any], send: Callable[..., Any]) -> None:
    """Register the slice, selection-export and text routes on ``app`` (with the server's run lookup and its
    cached-document helper)."""

    def store(run_id: str) -> SliceStore:
        live = get_run(run_id)
        info = live.read(lambda s: s.info())
        return SliceStore(slices_home(), info.get("created"), info["name"], Path(live.path).resolve())

    @app.get("/api/runs/{run_id}/slices", tags=["slices"])
    def list_slices(run_id: str) -> Response:
        """The run's saved slices (named filters), oldest first."""
        st = store(run_id)
        with st.lock:
            slices = st.load()
        return Response(dumps({"slices": slices}), media_type="application/json", headers={"Cache-Control": "no-store"})

    @app.put("/api/runs/{run_id}/slices/{name}", tags=["slices"])
    def put_slice(run_id: str, name: str, body: SliceBody) -> Response:
        """Save a slice under this name (replacing one of the same name); kept in the user's folder, not the run."""
        check_name(name)
        spec = check_filter(body.filter)
        st = store(run_id)
        with st.lock:
            slices = st.load()
            entry = {"name": name, "filter": spec, "created": datetime.now(UTC).isoformat(timespec="seconds")}
            kept = [s for s in slices if s.get("name") != name]
            if len(kept) >= MAX_SLICES:
                raise HTTPException(413, f"a run keeps at most {MAX_SLICES} slices; delete some first")
            st.save([*kept, entry])
        return Response(dumps(entry), media_type="application/json", headers={"Cache-Control": "no-store"})

    @app.delete("/api/runs/{run_id}/slices/{name}", tags=["slices"])
    def delete_slice(run_id: str, name: str) -> Response:
        """Forget a saved slice."""
        check_name(name)
        st = store(run_id)
        with st.lock:
            slices = st.load()
            kept = [s for s in slices if s.get("name") != name]
            if len(kept) == len(slices):
                raise NotFound(f"no slice {name!r} saved for run {run_id!r}")
            st.save(kept)
        return Response(dumps({"deleted": name}), media_type="application/json", headers={"Cache-Control": "no-store"})

    @app.post("/api/runs/{run_id}/selection", tags=["slices"])
    def export_selection(
        run_id: str, body: SelectionBody, format: Literal["csv", "parquet"] = Query("csv")
    ) -> Response:
        """The selected instances' rows (instance table columns and modality Shapley values) as CSV or Parquet."""
        live = get_run(run_id)
        frame = live.read(lambda s: selection_frame(s, body.indices))
        if format == "csv":
            data = frame.to_csv(index=False).encode("utf-8")
            mime = "text/csv; charset=utf-8"
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            sink = io.BytesIO()
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
            data = sink.getvalue()
            mime = "application/vnd.apache.parquet"
        filename = f"{run_id}-selection-{len(frame)}.{format}"
        return Response(
            data,
            media_type=mime,
            headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
        )

    @app.get("/api/runs/{run_id}/text", tags=["slices"])
    async def texts(request: Request, run_id: str) -> Response:
        """Every instance's utterance in instance order (null where it has none), for the word filter."""

        return await send(request, get_run(run_id), lambda s: dumps(text_document(s)))
