"""Live model routes, present for the runs ``modalens serve RUN --model SPEC`` attached a predictor to.

- ``POST /api/runs/{run}/whatif`` with ``{"instance": i, "drop": [m...], "mask": {m: [position...]}, "swap":
  {m: j}}`` (all but ``instance`` optional): the edited instance's prediction, its exact modality Shapley values
  over all ``2**M`` coalitions under the run's masker, and those coalition values (:mod:`modalens.app.whatif`).
- ``POST /api/runs/{run}/instances/{i}/cells`` with ``{"n_permutations": k}`` (optional): feature x step
  attributions of the instance, computed by the engine on request.

Without a model for the run both answer 404. A body naming what the run lacks is 422 naming it; a failing model
call is 500 with the model's error, and the server keeps serving. Model calls run in a worker thread, one at a time
(a lock shared by every run). Nothing is written; a JSON body (never a form) keeps other sites' pages from sending
one without the browser's preflight, which this server does not grant.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from modalens._core.errors import ModalensError
from modalens.app.data import NotFound
from modalens.app.whatif import LiveModel, ModelFailed, WhatIf, cells, what_if

MAX_PERMUTATIONS = 256


class CellsUnavailable(ModalensError):
    """This modalens has no feature x step attribution."""


class WhatIfBody(BaseModel):
    """An edit of one instance of the run."""

    model_config = ConfigDict(extra="forbid")

    instance: int = Field(description="the instance to edit (row number in the run)")
    drop: list[str] = Field(default_factory=list, max_length=64, description="modalities replaced by their baseline")
    mask: dict[str, list[int]] = Field(
        default_factory=dict, description="modality -> steps (words, frames, patches) replaced by their baseline"
    )
    swap: dict[str, int] = Field(default_factory=dict, description="modality -> instance whose modality to use")


class CellsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_permutations: int = Field(8, ge=1, le=MAX_PERMUTATIONS, description="permutation walks (antithetic pairs)")


class CoalitionValue(BaseModel):
    coalition: str
    size: int
    value: float


class WhatIfAnswer(BaseModel):
    instance: int
    prediction: float
    explained_output: float
    base_value: float
    modality_shapley: list[dict[str, Any]]
    coalitions: list[CoalitionValue]
    original: dict[str, float]
    seconds: float


class CellsAnswer(BaseModel):
    instance: int
    rows: list[dict[str, Any]]
    seconds: float
    evaluations: int
    n_permutations: int


def add_whatif_routes(
    app: FastAPI,
    *,
    get_run: Callable[[str], Any],
    paths: Mapping[str, Path],
    predictors: Mapping[str | os.PathLike, Any] | None,
    scrub: Callable[[str], str] = lambda s: s,
) -> set[str]:
    """Register the live routes on ``app``; ``predictors`` maps run directories to their predictors (with the masker
    each run was explained with). Returns the ids of the runs that are live."""
    by_path = {Path(p).resolve(): predictor for p, predictor in (predictors or {}).items()}
    lock = threading.Lock()  # one model call at a time, whichever run asks
    models = {rid: LiveModel(by_path[p], lock) for rid, p in paths.items() if Path(p).resolve() in by_path}

    def failed(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": scrub(str(exc))}, status_code=500, headers={"Cache-Control": "no-store"})

    def unavailable(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": scrub(str(exc))}, status_code=501, headers={"Cache-Control": "no-store"})

    app.add_exception_handler(ModelFailed, failed)  # more specific than the server's ModalensError -> 422
    app.add_exception_handler(CellsUnavailable, unavailable)

    def model_of(run_id: str) -> LiveModel:
        get_run(run_id)  # an unknown run is 404 naming the served ones
        if run_id not in models:
            raise NotFound(
                f"run {run_id!r} has no live model; serve it with --model (modalens serve RUN --model SPEC, the "
                "model spec it was explained with) to ask what-if questions"
            )
        return models[run_id]

    def answer(document: dict[str, Any]) -> JSONResponse:
        return JSONResponse(document, headers={"Cache-Control": "no-store"})

    @app.post("/api/runs/{run_id}/whatif", response_model=WhatIfAnswer, tags=["live model"])
    async def whatif(run_id: str, body: WhatIfBody) -> JSONResponse:
        """Drop or restore modalities, mask steps, swap a modality with another instance's: the new prediction and
        exact modality Shapley values (all coalitions, the run's masker)."""
        live = model_of(run_id)
        edit = WhatIf(instance=body.instance, drop=body.drop, mask=body.mask, swap=body.swap)

        def work() -> dict[str, Any]:
            snap = get_run(run_id).read(live.snapshot)
            return what_if(live, snap, edit)

        return answer(await run_in_threadpool(work))

    @app.post("/api/runs/{run_id}/instances/{index}/cells", response_model=CellsAnswer, tags=["live model"])
    async def instance_cells(run_id: str, index: int, body: CellsBody | None = None) -> JSONResponse:
        """Feature x step attributions of one instance, computed now by the engine (cost reported)."""
        live = model_of(run_id)
        n_permutations = (body or CellsBody()).n_permutations

        def work() -> dict[str, Any]:
            snap = get_run(run_id).read(live.snapshot)
            try:
                return cells(live, snap, index, n_permutations)
            except NotImplementedError as exc:
                raise CellsUnavailable(str(exc)) from None

        return answer(await run_in_threadpool(work))

    return set(models)
