"""The read-only HTTP server behind the web app: FastAPI over the run directories it was given, and nothing else.

Routes (all GET; the OpenAPI schema is at ``/api/openapi.json``, interactive docs at ``/api/docs``):

- ``/api/runs``: the served runs; ``/api/runs/{run}``: one run's manifest
- ``/api/runs/{run}/instances``: columnar instance table with modality Shapley values and 2-D positions
- ``/api/runs/{run}/instances/{i}``: one instance (attributions, coalitions, interactions, tracks, media)
- ``/api/runs/{run}/templates``: frequent multimodal feature sets with their member instances
- ``/api/runs/{run}/tables/{name}?format=json|arrow``: any table of the run (Arrow IPC stream for large ones)
- ``/api/runs/{run}/media/{key}/{file}``: a face thumbnail or audio clip stored in the run
- ``/api/runs/{run}/features``, ``/features/{j}``, ``/images/{file}``: feature runs (docs/features.md)
- ``/api/compare/{a}/{b}``: two runs on the same dataset matched by instance id; ``/api/compare?runs=a,b,c``: any
  number of runs side by side (``modalens.app.compare``)
- ``/``: the built web bundle (package data under ``modalens/app/static``)

Run ids are assigned here from the directory names; a request can only name those ids, so no path from a client
ever reaches the file system except a media file name, which is checked to stay inside its run's media folder.

Hardening (docs/app.md, "Security"): every request passes :class:`modalens.app.security.Guard` (Host allow-list,
access token when reachable from other machines, security headers, JSON for any failure); every document is built
from one snapshot of its run (:class:`modalens.app.data.LiveRun`: a run replaced on disk is reloaded whole), once,
then served from a bounded cache with a strong ETag (``304`` on ``If-None-Match``) and gzip at a fast level; sizes a
run claims are checked against limits before anything is allocated; errors are ``{"error": message}`` with run ids
in place of server paths.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
import threading
import webbrowser
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from modalens._core.errors import ConfigurationError, ModalensError
from modalens.app.apidocs import CSS as DOCS_CSS
from modalens.app.apidocs import docs_html
from modalens.app.coltable import MEDIA_TYPE as BINARY_TABLE_TYPE
from modalens.app.compare import add_compare_routes
from modalens.app.data import Body, LiveRun, NotFound, RunChanging, RunSource, column, dumps
from modalens.app.feature_routes import add_feature_routes
from modalens.app.features import feature_card, features_document, image_mime, image_path
from modalens.app.glyphs import add_glyph_routes
from modalens.app.importance import add_importance_routes
from modalens.app.security import (
    LOOPBACK_NAMES,
    Guard,
    content_security_policy,
    frame_ancestors,
    is_loopback,
    local_names,
    make_scrub,
)
from modalens.app.slice_routes import add_slice_routes
from modalens.app.whatif_routes import add_whatif_routes
from modalens.runs import RunError, RunLimits, safe_name

STATIC_DIR = Path(__file__).parent / "static"
JSON_ROW_LIMIT = 250_000  # beyond this a table is only served as Arrow: JSON would be tens of MB
MAX_INSTANCES = 5_000_000  # instances of one run: the server holds [N, modalities] arrays and N-long documents
CACHE_BYTES = 256 << 20  # built response bodies kept per run (least recently used first out)
GZIP_LEVEL = 1  # level 9 costs about 80x the CPU of level 1 for about 8 % smaller bodies
GZIP_MIN_SIZE = 1024  # smaller bodies go out as they are


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
    live: bool = False  # a model is attached (serve --model): the what-if routes answer for this run


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
    word_groups: dict[str, list[dict[str, Any]]] = {}
    patches: dict[str, dict[str, Any]] = {}
    mm_shap: list[dict[str, Any]] | None = None


class TableJSON(BaseModel):
    name: str
    rows: int
    columns: dict[str, list[Any]]


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


def _run_paths(run_dirs: Sequence[str | os.PathLike]) -> dict[str, Path]:
    if not run_dirs:
        raise RunError("give at least one run directory to serve")
    paths = [Path(p).resolve() for p in run_dirs]
    return dict(zip(_unique_ids(paths), paths, strict=True))


def open_runs(run_dirs: Sequence[str | os.PathLike], *, limits: RunLimits | None = None) -> dict[str, RunSource]:
    """Open every run directory once (failing early, naming the directory, when one is not a readable run)."""
    return {rid: RunSource.open(rid, p, limits=limits) for rid, p in _run_paths(run_dirs).items()}


def create_app(
    run_dirs: Sequence[str | os.PathLike],
    *,
    allowed_hosts: Sequence[str] = (),
    token: str | None = None,
    frame_ancestors_extra: Sequence[str] = (),
    limits: RunLimits | None = None,
    max_instances: int = MAX_INSTANCES,
    cache_bytes: int = CACHE_BYTES,
    gzip_level: int = GZIP_LEVEL,
    model: Any | None = None,
    predictors: Mapping[str | os.PathLike, Any] | None = None,
) -> FastAPI:
    """The FastAPI application serving these run directories read-only, plus the web bundle.

    Parameters
    ----------
    run_dirs
        Run directories written by :func:`modalens.runs.write_run`. Only these are served.
    allowed_hosts
        Host names the server answers to besides the loopback names (``127.0.0.1``, ``localhost``, ``[::1]``);
        ``"*"`` answers any (only sensible with a ``token``). Other ``Host`` headers get ``421``.
    token
        When set, every request must carry it (``Authorization: Bearer``, the cookie set on first use, or
        ``?token=``); else ``401``. :func:`serve` sets a random one when it binds beyond loopback.
    frame_ancestors_extra
        Origins allowed to embed the app in a frame besides the app itself and the loopback origins (and those in
        ``$MODALENS_FRAME_ANCESTORS``).
    limits
        Sizes a run may claim (:class:`modalens.runs.RunLimits`): rows per table, uncompressed table bytes,
        manifest bytes.
    max_instances
        Instances per run this server accepts (it holds per-instance arrays and documents in memory).
    cache_bytes
        Built response bodies kept per run.
    gzip_level
        gzip level (1-9) for bodies above 1 KiB when the client accepts gzip; each body is compressed once.
    model
        An embedding model (``encode_texts``, ``encode_images``) for the feature query: new captions and images are
        embedded by it and encoded by each run's extractor (:mod:`modalens.app.feature_routes`).
    predictors
        Run directory -> predictor (with the masker that run was explained with): the live what-if routes of
        :mod:`modalens.app.whatif_routes` answer for those runs.
    """
    if not 1 <= gzip_level <= 9:
        raise ConfigurationError(f"gzip_level must be 1..9, got {gzip_level}")
    paths = _run_paths(run_dirs)
    runs = {
        rid: LiveRun(rid, p, limits=limits, max_instances=max_instances, cache_bytes=cache_bytes)
        for rid, p in paths.items()
    }
    scrub = make_scrub(paths)
    app = FastAPI(
        title="modalens",
        summary="Read-only API over modalens run directories",
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(
        Guard,
        allowed_hosts=None if "*" in allowed_hosts else [*LOOPBACK_NAMES, *allowed_hosts],
        token=token,
        csp=content_security_policy(frame_ancestors(frame_ancestors_extra)),
        scrub=scrub,
    )
    app.state.runs = runs

    def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(
            {"error": message}, status_code=status, headers={"Cache-Control": "no-store", **(headers or {})}
        )

    @app.exception_handler(NotFound)
    def not_found(request: Request, exc: NotFound) -> JSONResponse:
        return error(404, scrub(str(exc)))

    @app.exception_handler(RunChanging)
    def changing(request: Request, exc: RunChanging) -> JSONResponse:
        return error(503, scrub(str(exc)), {"Retry-After": "1"})

    @app.exception_handler(ModalensError)
    def bad_run(request: Request, exc: ModalensError) -> JSONResponse:
        return error(422, scrub(str(exc)))

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, scrub(str(exc.detail)), dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg', 'invalid')}"
            f" (got {str(e.get('input'))[:40]!r})"
            for e in exc.errors()
        )
        return error(422, problems or "invalid request")

    def get_run(run_id: str) -> LiveRun:
        try:
            return runs[run_id]
        except KeyError:
            raise NotFound(f"no run {run_id!r}; this server serves {sorted(runs)}") from None

    def send_built(
        request: Request,
        live: LiveRun,
        build: Callable[[RunSource], bytes],
        media_type: str = "application/json",
        *,
        extra_token: str = "",
    ) -> Response:
        """A document of one run snapshot: ETag (304 when the client has it), from the cache, gzip when asked."""
        key = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        tag = _etag(live.token() + extra_token, key)
        if _matches(request.headers.get("if-none-match"), tag):
            return Response(status_code=304, headers=_doc_headers(tag))
        body = live.body(key + extra_token, build, media_type)
        tag = _etag(body.key.split(":", 1)[0] + extra_token, key)  # the snapshot the body was built from
        return _respond(request, body, tag, lambda b: live.gzipped(b, gzip_level))

    async def send(
        request: Request, live: LiveRun, build: Callable[[RunSource], bytes], media_type: str = "application/json"
    ) -> Response:
        """:func:`send_built`, answered on the event loop when the body is cached in the form the client asks for
        (a few ``stat`` calls: the run has not changed); else built, compressed or revalidated in a worker thread."""
        key = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        body = live.peek(key)
        if body is not None and (body.gzip is not None or len(body.raw) < GZIP_MIN_SIZE or not _accepts_gzip(request)):
            return _respond(request, body, _etag(body.key.split(":", 1)[0], key), None)
        return await run_in_threadpool(send_built, request, live, build, media_type)

    @app.get("/api/runs", response_model=list[RunInfo], tags=["runs"])
    def list_runs() -> list[dict[str, Any]]:
        """The runs this server was started with."""
        # current(), not read(): info() reads the manifest only, so the list never waits behind a document build
        return [{**live.current().info(), "live": rid in live_ids} for rid, live in runs.items()]

    @app.get("/api/runs/{run_id}", tags=["runs"])
    async def manifest(request: Request, run_id: str) -> Response:
        """The run's manifest.json (see docs/run-format.md)."""
        return await send(request, get_run(run_id), lambda s: dumps(s.manifest()))

    @app.get("/api/runs/{run_id}/instances", response_model=InstanceTable, tags=["interaction runs"])
    async def instances(request: Request, run_id: str, format: Literal["json", "binary"] = "json") -> Response:  # noqa: A002
        """Every instance as columns, with modality Shapley values and the 2-D projection (``format=binary``: the
        same columns as typed buffers, see ``modalens.app.coltable``; what the web app loads)."""
        if format == "binary":
            return await send(request, get_run(run_id), lambda s: s.instances("binary"), BINARY_TABLE_TYPE)
        return await send(request, get_run(run_id), lambda s: s.instances())

    @app.get("/api/runs/{run_id}/instances/{index}", response_model=InstanceDetail, tags=["interaction runs"])
    async def instance(request: Request, run_id: str, index: int) -> Response:
        """One instance: Shapley values, coalitions, interactions, word and feature attributions, media."""
        return await send(request, get_run(run_id), lambda s: dumps(s.instance_detail(index)))

    @app.get("/api/runs/{run_id}/templates", response_model=TemplateList, tags=["interaction runs"])
    async def templates(request: Request, run_id: str) -> Response:
        """Frequent multimodal feature sets with support, mean prediction, mean attribution and members."""
        return await send(request, get_run(run_id), lambda s: s.templates())

    @app.get(
        "/api/runs/{run_id}/tables/{name}",
        response_model=TableJSON,
        tags=["tables"],
        responses={200: {"content": {"application/vnd.apache.arrow.stream": {}}}},
    )
    async def table(
        request: Request, run_id: str, name: str, format: Literal["json", "arrow"] = Query("json")
    ) -> Response:
        """Any table of the run, as columnar JSON or as an Arrow IPC stream (``format=arrow``)."""
        if format == "arrow":
            return await send(
                request, get_run(run_id), lambda s: _arrow(s.table(name)), "application/vnd.apache.arrow.stream"
            )
        return await send(request, get_run(run_id), lambda s: _table_json(name, s.table(name)))

    @app.get("/api/runs/{run_id}/media/{key}/{file}", tags=["interaction runs"])
    def media(run_id: str, key: str, file: str) -> FileResponse:
        """A media file (face thumbnail, audio clip) stored in the run directory."""
        path, mime = get_run(run_id).read(lambda s: (s.media_path(key, file), s.media_mime(key)))
        return FileResponse(path, media_type=mime, headers={"Cache-Control": "no-cache"})

    @app.get("/api/runs/{run_id}/features", response_model=FeatureTable, tags=["feature runs"])
    async def features(request: Request, run_id: str) -> Response:
        """A feature run's feature table, dominance summary (MDS thresholds) and extractor metrics."""
        return await send(request, get_run(run_id), lambda s: dumps(features_document(s)))

    @app.get("/api/runs/{run_id}/features/{feature}", response_model=FeatureCard, tags=["feature runs"])
    async def feature(request: Request, run_id: str, feature: int) -> Response:
        """One feature with its top-activating images and texts."""
        return await send(request, get_run(run_id), lambda s: dumps(feature_card(s, feature)))

    @app.get("/api/runs/{run_id}/images/{file}", tags=["feature runs"])
    def image(run_id: str, file: str) -> FileResponse:
        """A sample image stored with a feature run."""
        path, mime = get_run(run_id).read(lambda s: (image_path(s, file), image_mime(s)))
        return FileResponse(path, media_type=mime, headers={"Cache-Control": "no-cache"})

    add_compare_routes(app, get_run=get_run, send_built=send_built, error=error)
    add_feature_routes(app, get_run=get_run, send=send, send_built=send_built, model=model)
    live_ids = add_whatif_routes(app, get_run=get_run, paths=paths, predictors=predictors, scrub=scrub)
    add_slice_routes(app, get_run=get_run, send=send)
    add_glyph_routes(app, get_run=get_run, send=send)
    add_importance_routes(app, get_run=get_run, send=send)

    @app.get("/api/docs", include_in_schema=False)
    def api_docs(request: Request) -> Response:
        body = Body(docs_html(app.openapi()).encode(), "text/html; charset=utf-8")
        return _respond(request, body, _etag("docs", app.version), None)

    @app.get("/api/docs.css", include_in_schema=False)
    def api_docs_css() -> Response:
        return Response(DOCS_CSS, media_type="text/css", headers={"Cache-Control": "no-cache"})

    @app.api_route("/api/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    def unknown(rest: str) -> JSONResponse:
        return error(404, f"no API route /api/{rest}; see /api/docs")

    _mount_bundle(app, gzip_level)
    return app


def _arrow(frame: Any) -> bytes:
    sink = io.BytesIO()
    tbl = pa.Table.from_pandas(frame, preserve_index=False)
    with pa.ipc.new_stream(sink, tbl.schema) as writer:
        writer.write_table(tbl)
    return sink.getvalue()


def _table_json(name: str, frame: Any) -> bytes:
    if len(frame) > JSON_ROW_LIMIT:
        raise HTTPException(
            413,
            f"table {name!r} has {len(frame):,} rows; ask for format=arrow (JSON is limited to {JSON_ROW_LIMIT:,})",
        )
    return dumps({"name": name, "rows": len(frame), "columns": {str(c): column(frame[c]) for c in frame.columns}})


# -- ETags and compression -------------------------------------------------------------------------------------------
def _etag(token: str, key: str) -> str:
    """A strong ETag: the run snapshot's identity and the document's path, hashed."""
    return '"' + hashlib.sha1(f"{token}\0{key}".encode()).hexdigest()[:24] + '"'


def _gz_tag(tag: str) -> str:
    return tag[:-1] + '-gz"'  # the gzip representation is another byte sequence: its own strong ETag


def _matches(header: str | None, tag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    given = {t.strip().removeprefix("W/") for t in header.split(",")}
    return tag in given or _gz_tag(tag) in given


def _accepts_gzip(request: Request) -> bool:
    for part in request.headers.get("accept-encoding", "").split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            q = params.strip().removeprefix("q=")
            try:
                return not params or float(q) > 0
            except ValueError:
                return True
    return False


def _doc_headers(tag: str, cache: str = "no-cache") -> dict[str, str]:
    return {"ETag": tag, "Cache-Control": cache, "Vary": "Accept-Encoding"}


def _respond(
    request: Request, body: Body, tag: str, gzipped: Callable[[Body], bytes] | None, cache: str = "no-cache"
) -> Response:
    if _matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers=_doc_headers(tag, cache))
    if len(body.raw) >= GZIP_MIN_SIZE and _accepts_gzip(request):
        packed = gzipped(body) if gzipped is not None else _gzip_once(body)
        headers = {**_doc_headers(_gz_tag(tag), cache), "Content-Encoding": "gzip"}
        return Response(packed, media_type=body.media_type, headers=headers)
    return Response(body.raw, media_type=body.media_type, headers=_doc_headers(tag, cache))


def _gzip_once(body: Body) -> bytes:
    if body.gzip is None:
        import gzip

        body.gzip = gzip.compress(body.raw, compresslevel=GZIP_LEVEL, mtime=0)
    return body.gzip


def _mount_bundle(app: FastAPI, gzip_level: int) -> None:
    """``/`` (index.html) and ``/assets/<file>`` of the built web bundle, read once, with ETags and gzip."""
    index = STATIC_DIR / "index.html"
    if not index.is_file():

        @app.get("/", include_in_schema=False)
        def missing() -> HTMLResponse:
            return HTMLResponse(
                "<h1>modalens</h1><p>The web bundle is missing from this installation. Build it with "
                "<code>cd web && npm ci && npm run build</code>; the API still answers under "
                "<a href='/api/docs'>/api/docs</a>.</p>",
                status_code=503,
            )

        return
    files: dict[str, tuple[Body, str]] = {}
    lock = threading.Lock()

    def load(path: Path, mime: str) -> tuple[Body, str]:
        with lock:
            if str(path) not in files:
                data = path.read_bytes()
                body = Body(data, mime)
                body.gzip = __import__("gzip").compress(data, compresslevel=max(gzip_level, 6), mtime=0)
                files[str(path)] = (body, '"' + hashlib.sha1(data).hexdigest()[:24] + '"')
            return files[str(path)]

    @app.get("/", include_in_schema=False)
    def root(request: Request) -> Response:
        body, tag = load(index, "text/html; charset=utf-8")
        return _respond(request, body, tag, None)

    @app.get("/assets/{name}", include_in_schema=False)
    def asset(request: Request, name: str) -> Response:
        try:
            safe_name(name, "asset")
        except RunError:
            raise NotFound(f"no asset {name!r}") from None
        path = STATIC_DIR / "assets" / name
        if not path.is_file():
            raise NotFound(f"no asset {name!r}")
        mime = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}.get(
            path.suffix, "application/octet-stream"
        )
        body, tag = load(path, mime)
        # file names carry a hash of their content (Vite): cached for good
        return _respond(request, body, tag, None, cache="public, max-age=31536000, immutable")


def serve(
    run_dirs: Sequence[str | os.PathLike],
    host: str = "127.0.0.1",
    port: int = 8765,
    open_browser: bool = True,
    *,
    allow_remote: bool = False,
    allowed_hosts: Sequence[str] = (),
    frame_ancestors_extra: Sequence[str] = (),
    limits: RunLimits | None = None,
    max_instances: int = MAX_INSTANCES,
    model: Any | None = None,
    predictors: Mapping[str | os.PathLike, Any] | None = None,
) -> None:
    """Serve the app over these run directories until interrupted (Ctrl+C).

    Parameters
    ----------
    run_dirs
        Run directories to serve (read-only).
    host
        Interface to bind; the default ``127.0.0.1`` keeps the server private to this machine. Any other interface
        (``0.0.0.0``, a LAN address) needs ``allow_remote``.
    port
        TCP port.
    open_browser
        Open the app in the default web browser once the server is up.
    allow_remote
        Allow binding beyond loopback. A random access token is then required on every request; the printed URL
        carries it, and a warning says who can reach the server.
    allowed_hosts
        Host names the server answers to besides the loopback names and the bound address (``*``: any).
    frame_ancestors_extra
        Origins allowed to embed the app in a frame besides the app itself and loopback origins.
    limits, max_instances
        Size limits (:func:`create_app`).
    model
        Embedding model for the feature query's new inputs (:func:`create_app`).
    predictors
        Run directory -> predictor for the live what-if routes (:func:`create_app`).
    """
    import secrets

    import uvicorn

    remote = not is_loopback(host)
    if remote and not allow_remote:
        raise ConfigurationError(
            f"binding to {host} would serve these runs to other machines; pass --allow-remote (serve(..., "
            "allow_remote=True)) to do so with an access token, or keep the default --host 127.0.0.1"
        )
    token = secrets.token_urlsafe(24) if remote else None
    hosts = [*allowed_hosts, *(local_names(host) if remote else ())]
    app = create_app(
        run_dirs,
        allowed_hosts=hosts,
        token=token,
        frame_ancestors_extra=frame_ancestors_extra,
        limits=limits,
        max_instances=max_instances,
        model=model,
        predictors=predictors,
    )
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    shown = f"[{shown}]" if ":" in shown else shown
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    if remote:
        print(
            f"modalens: WARNING: serving on {host}:{port}: anyone who can reach this machine and has the token can "
            "read these runs; the connection is not encrypted (plain HTTP). Share the URL only with people who may "
            "see the runs, and prefer an SSH tunnel to --allow-remote where you can.",
            file=sys.stderr,
        )
    if open_browser:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    print(f"modalens: serving {len(app.state.runs)} run(s) at {url} (Ctrl+C stops)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
