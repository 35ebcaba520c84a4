"""Routes of the feature views beyond the feature table and card: the query and the comparison of feature runs.

- ``GET /api/runs/{run}/query?sample=I&modality=image|text``: the features that fire on a sample of the run (its
  stored codes); ``?text=CAPTION``: on a caption (one of the run's, or any caption when the server has a model).
- ``POST /api/runs/{run}/query`` with JSON ``{"image": "data:image/png;base64,..."}`` or ``{"text": ...}``: a new
  input, embedded by the server's model (``modalens serve RUN --model ...``) and encoded by the run's extractor.
  Nothing is written; a JSON body (never a form) keeps other sites' pages from sending one.
- ``GET /api/features-compare/{a}/{b}?match=auto|activation|decoder``: two feature runs side by side with A's
  features matched to B's.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Callable
from typing import Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from modalens.app.data import NotFound, dumps
from modalens.app.features import feature_comparison, query_document

MAX_IMAGE_BYTES = 8 << 20  # a data URL larger than this is refused
MAX_IMAGE_SIDE = 4096


class QueryInput(BaseModel):
    """A new input for the query: an image as a data URL, or a caption."""

    image: str | None = Field(default=None, max_length=MAX_IMAGE_BYTES * 4 // 3 + 100)
    text: str | None = Field(default=None, max_length=2000)


def decode_image(data_url: str) -> Any:
    """Pixels (uint8 RGB array) of a ``data:image/...;base64,`` URL; anything else is :class:`NotFound`."""
    import numpy as np
    from PIL import Image

    head, _, payload = data_url.partition(",")
    if not (head.startswith("data:image/") and head.endswith(";base64")):
        raise NotFound("image must be a data URL: data:image/png;base64,...")
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NotFound(f"image is not valid base64: {exc}") from exc
    if len(raw) > MAX_IMAGE_BYTES:
        raise NotFound(f"image is {len(raw):,} bytes; at most {MAX_IMAGE_BYTES:,}")
    try:
        with Image.open(io.BytesIO(raw)) as im:
            if max(im.size) > MAX_IMAGE_SIDE:
                raise NotFound(f"image is {im.size[0]}x{im.size[1]}; at most {MAX_IMAGE_SIDE} px a side")
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except NotFound:
        raise
    except Exception as exc:  # PIL raises many types for a file that is not an image
        raise NotFound(f"image cannot be decoded: {exc}") from exc


def add_feature_routes(
    app: FastAPI,
    *,
    get_run: Callable[[str], Any],
    send: Callable[..., Any],
    send_built: Callable[..., Response],
    model: Any | None = None,
) -> None:
    """Register the query and comparison routes on ``app`` (with the server's helpers for cached, guarded
    documents)."""

    @app.get("/api/runs/{run_id}/query", tags=["feature runs"])
    async def query(
        request: Request,
        run_id: str,
        sample: int | None = Query(None, ge=0, description="a sample (pair) of the run"),
        modality: Literal["image", "text"] = Query("text", description="which side of the pair"),
        text: str | None = Query(None, max_length=2000, description="a caption (the run's, or any with a model)"),
    ) -> Response:
        """The features that fire on a sample of the run or on a caption, strongest first, with their category."""
        if sample is None and text is None:
            raise NotFound("give a sample (with its modality) or a text")
        return await send(
            request,
            get_run(run_id),
            lambda s: dumps(query_document(s, sample=sample, modality=modality, text=text, model=model)),
        )

    @app.post("/api/runs/{run_id}/query", tags=["feature runs"])
    def query_new(run_id: str, body: QueryInput) -> Response:
        """A new image (data URL) or caption, embedded by the server's model: the features that fire on it."""
        if model is None:
            raise NotFound("the server has no model to embed new inputs: start it with modalens serve RUN --model M")
        if (body.image is None) == (body.text is None):
            raise NotFound('send exactly one of "image" (a data URL) or "text"')
        pixels = decode_image(body.image) if body.image is not None else None
        doc = get_run(run_id).read(lambda s: query_document(s, text=body.text, image=pixels, model=model))
        return Response(dumps(doc), media_type="application/json", headers={"Cache-Control": "no-store"})

    @app.get("/api/features-compare/{run_a}/{run_b}", tags=["feature runs"])
    def compare_features(
        request: Request,
        run_a: str,
        run_b: str,
        match: Literal["auto", "activation", "decoder"] = Query("auto"),
    ) -> Response:
        """Two feature runs: summaries (MDS, shares with intervals and chance) and A's features matched to B's."""
        a, b = get_run(run_a), get_run(run_b)
        first, second = sorted((a, b), key=lambda r: r.run_id)

        def build(first_source: Any) -> bytes:
            def inner(second_source: Any) -> bytes:
                sources = {first.run_id: first_source, second.run_id: second_source}
                return dumps(feature_comparison(sources[run_a], sources[run_b], match))

            return inner(first_source) if first is second else second.read(inner)

        return send_built(request, first, build, extra_token=f"|{second.token()}|{run_a}|{run_b}|{match}")
