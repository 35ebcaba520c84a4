"""The read-only HTTP server behind the web app: FastAPI over the run directories it was given, and nothing else.

Routes (all GET; the OpenAPI schema is at ``/api/openapi.json``, interactive docs at ``/api/docs``):

- ``/api/runs``: the served runs; ``/api/runs/{run}``: one run's manifest
- ``/api/runs/{run}/instances``: columnar instance table with modality Shapley values and 2-D positions
- ``/api/runs/{run}/instances/{i}``: one instance (attributions, coalitions, interactions, tracks, media)
- ``/api/runs/{run}/templates``: frequent multimodal feature sets with their member instances
- ``/api/runs/{run}/tables/{name}?format=json|arrow``: any table of the run (Arrow IPC stream for large ones)
- ``/api/runs/{run}/media/{key}/{file}``: a face thumbnail or audio clip stored in the run
- ``/api/runs/{run}/features``, ``/features/{j}``, ``/images/{file}``: feature runs (docs/features.md)
- ``/api/compare/{a}/{b}``: two runs on the same dataset matched by instance id
- ``/``: the built web bundle (package data under ``modalens/app/static``)

Run ids are assigned here from the directory names; a request can only name those ids, so no path from a client
ever reaches the file system except a media file name, which is checked to stay inside its run's media folder.
"""

from __future__ import annotations

import io
import os
import threading
import webbrowser
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from fastapi import FastAPI, HTTPException, Query
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from modalens.app.data import NotFound, RunSource, column, compare, dumps
from modalens.app.features import feature_card, features_document, image_mime, image_path
from modalens.runs import RunError

STATIC_DIR = Path(__file__).parent / "static"
JSON_ROW_LIMIT = 250_000  # beyond this a table is only served as Arrow: JSON would be tens of MB


# -- response schemas (documentation of the wire format; large documents are pre-serialised for speed) ----------
class RunInfo(BaseModel):
    id: str
    name: str
    kind: str
    n_instances: int | None
    dataset: str | None
    model: str | None
    modalities: list[str]
    tables: list[str]
    created: str | None


class InstanceTable(BaseModel):
    n: int
    modalities: list[str]
    columns: dict[str, list[Any]]
    shapley: dict[str, list[float | None]]
    x: list[float | None]
    y: list[float | None]
    projection_method: str


class Template(BaseModel):
    template_id: int
    items: list[str]
    modalities: list[str]
    polarity: str
    support: float
    count: int
    mean_prediction: float | None
    mean_attribution: float | None
    members: list[int]


class TemplateList(BaseModel):
    templates: list[Template]


class Track(BaseModel):
    modality: str
    feature: str
    positions: list[int]
    attribution: list[float | None]
    values: list[float | None] | None
    total: float | None = None


class InstanceDetail(BaseModel):
    instance: int
    row: dict[str, Any]
    modalities: list[dict[str, str]]
    warnings: list[str]
    modality_shapley: list[dict[str, Any]] | None
    coalitions: list[dict[str, Any]] | None
    interactions: list[dict[str, Any]] | None
    words: dict[str, list[dict[str, Any]]]
    tracks: list[Track]
    media: list[dict[str, str]]


class TableJSON(BaseModel):
    name: str
    rows: int
    columns: dict[str, list[Any]]


class Comparison(BaseModel):
    a: RunInfo
    b: RunInfo
    label_kind: str
    n_matched: int
    n_disagree: int
    columns: dict[str, list[Any] | None]
    shapley: dict[str, dict[str, list[float | None]]]


class FeatureTable(BaseModel):
    n: int
    columns: dict[str, list[Any]]
    dominance: dict[str, Any]
    extractor: dict[str, Any]
    model: dict[str, Any]
    interventions: dict[str, list[Any]] | None
    has_images: bool


class FeatureCard(BaseModel):
    feature: int
    row: dict[str, Any]
    top_samples: list[dict[str, Any]]


def _unique_ids(paths: Sequence[Path]) -> list[str]:
    """Short URL-safe ids from directory names (``run``, ``run-2`` ... when names repeat)."""
    seen: dict[str, int] = {}
    out = []
    for p in paths:
        base = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in p.name).strip(".") or "run"
        seen[base] = seen.get(base, 0) + 1
        out.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return out


def open_runs(run_dirs: Sequence[str | os.PathLike]) -> dict[str, RunSource]:
    """Open every run directory (failing early, naming the directory, when one is not a readable run)."""
    if not run_dirs:
        raise RunError("give at least one run directory to serve")
    paths = [Path(p).resolve() for p in run_dirs]
    return {rid: RunSource.open(rid, p) for rid, p in zip(_unique_ids(paths), paths, strict=True)}


def create_app(run_dirs: Sequence[str | os.PathLike]) -> FastAPI:
    """The FastAPI application serving these run directories read-only, plus the web bundle.

    Parameters
    ----------
    run_dirs
        Run directories written by :func:`modalens.runs.write_run`. Only these are served.
    """
    runs = open_runs(run_dirs)
    app = FastAPI(
        title="modalens",
        summary="Read-only API over modalens run directories",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.add_middleware(GZipMiddleware, minimum_size=2048)
    app.state.runs = runs

    def get_run(run_id: str) -> RunSource:
        try:
            return runs[run_id]
        except KeyError:
            raise HTTPException(404, f"no run {run_id!r}; this server serves {sorted(runs)}") from None

    def raw_json(data: bytes) -> Response:
        return Response(content=data, media_type="application/json")

    def guarded(fn, *args):  # noqa: ANN001, ANN202 - tiny adapter from domain errors to HTTP ones
        try:
            return fn(*args)
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from exc
        except RunError as exc:
            raise HTTPException(422, str(exc)) from exc

    @app.get("/api/runs", response_model=list[RunInfo], tags=["runs"])
    def list_runs() -> list[dict[str, Any]]:
        """The runs this server was started with."""
        return [r.info() for r in runs.values()]

    @app.get("/api/runs/{run_id}", tags=["runs"])
    def manifest(run_id: str) -> dict[str, Any]:
        """The run's manifest.json (see docs/run-format.md)."""
        return get_run(run_id).manifest()

    @app.get("/api/runs/{run_id}/instances", response_model=InstanceTable, tags=["interaction runs"])
    def instances(run_id: str) -> Response:
        """Every instance as columns, with modality Shapley values and the 2-D projection."""
        return raw_json(guarded(get_run(run_id).instances))

    @app.get("/api/runs/{run_id}/instances/{index}", response_model=InstanceDetail, tags=["interaction runs"])
    def instance(run_id: str, index: int) -> Response:
        """One instance: Shapley values, coalitions, interactions, word and feature attributions, media."""
        return raw_json(dumps(guarded(get_run(run_id).instance_detail, index)))

    @app.get("/api/runs/{run_id}/templates", response_model=TemplateList, tags=["interaction runs"])
    def templates(run_id: str) -> Response:
        """Frequent multimodal feature sets with support, mean prediction, mean attribution and members."""
        return raw_json(guarded(get_run(run_id).templates))

    @app.get(
        "/api/runs/{run_id}/tables/{name}",
        response_model=TableJSON,
        tags=["tables"],
        responses={200: {"content": {"application/vnd.apache.arrow.stream": {}}}},
    )
    def table(run_id: str, name: str, format: Literal["json", "arrow"] = Query("json")) -> Response:
        """Any table of the run, as columnar JSON or as an Arrow IPC stream (``format=arrow``)."""
        frame = guarded(get_run(run_id).table, name)
        if format == "arrow":
            sink = io.BytesIO()
            tbl = pa.Table.from_pandas(frame, preserve_index=False)
            with pa.ipc.new_stream(sink, tbl.schema) as writer:
                writer.write_table(tbl)
            return Response(content=sink.getvalue(), media_type="application/vnd.apache.arrow.stream")
        if len(frame) > JSON_ROW_LIMIT:
            raise HTTPException(
                413,
                f"table {name!r} has {len(frame):,} rows; ask for format=arrow (JSON is limited to {JSON_ROW_LIMIT:,})",
            )
        doc = {"name": name, "rows": len(frame), "columns": {str(c): column(frame[c]) for c in frame.columns}}
        return raw_json(dumps(doc))

    @app.get("/api/runs/{run_id}/media/{key}/{file}", tags=["interaction runs"])
    def media(run_id: str, key: str, file: str) -> FileResponse:
        """A media file (face thumbnail, audio clip) stored in the run directory."""
        source = get_run(run_id)
        path = guarded(source.media_path, key, file)
        return FileResponse(path, media_type=source.media_mime(key))

    @app.get("/api/runs/{run_id}/features", response_model=FeatureTable, tags=["feature runs"])
    def features(run_id: str) -> Response:
        """A feature run's feature table, dominance summary (MDS thresholds) and extractor metrics."""
        return raw_json(dumps(guarded(features_document, get_run(run_id))))

    @app.get("/api/runs/{run_id}/features/{feature}", response_model=FeatureCard, tags=["feature runs"])
    def feature(run_id: str, feature: int) -> Response:
        """One feature with its top-activating images and texts."""
        return raw_json(dumps(guarded(feature_card, get_run(run_id), feature)))

    @app.get("/api/runs/{run_id}/images/{file}", tags=["feature runs"])
    def image(run_id: str, file: str) -> FileResponse:
        """A sample image stored with a feature run."""
        source = get_run(run_id)
        path = guarded(image_path, source, file)
        return FileResponse(path, media_type=image_mime(source))

    @app.get("/api/compare/{run_a}/{run_b}", response_model=Comparison, tags=["compare"])
    def comparison(run_a: str, run_b: str) -> Response:
        """Two runs on the same dataset, matched by instance id, with the instances where they disagree."""
        return raw_json(dumps(guarded(compare, get_run(run_a), get_run(run_b))))

    @app.api_route("/api/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    def unknown(rest: str) -> JSONResponse:
        return JSONResponse({"detail": f"no API route /api/{rest}; see /api/docs"}, status_code=404)

    _mount_bundle(app)
    return app


def _mount_bundle(app: FastAPI) -> None:
    index = STATIC_DIR / "index.html"
    if index.is_file():
        if (STATIC_DIR / "assets").is_dir():
            app.mount("/assets", StaticFiles(directory=STATIC_DIR / "assets"), name="assets")

        @app.get("/", include_in_schema=False)
        def root() -> FileResponse:
            return FileResponse(index, media_type="text/html")
    else:

        @app.get("/", include_in_schema=False)
        def missing() -> HTMLResponse:
            return HTMLResponse(
                "<h1>modalens</h1><p>The web bundle is missing from this installation "
                f"({STATIC_DIR}). Build it with <code>cd web && npm ci && npm run build</code>; "
                "the API still answers under <a href='/api/docs'>/api/docs</a>.</p>",
                status_code=503,
            )


def serve(
    run_dirs: Sequence[str | os.PathLike],
    host: str = "127.0.0.1",
    port: int = 8765,
    open_browser: bool = True,
) -> None:
    """Serve the app over these run directories until interrupted (Ctrl+C).

    Parameters
    ----------
    run_dirs
        Run directories to serve (read-only).
    host
        Interface to bind; the default ``127.0.0.1`` keeps the server private to this machine.
    port
        TCP port.
    open_browser
        Open the app in the default web browser once the server is up.
    """
    import uvicorn

    app = create_app(run_dirs)
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"
    if open_browser:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    print(f"modalens: serving {len(app.state.runs)} run(s) at {url} (Ctrl+C stops)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
