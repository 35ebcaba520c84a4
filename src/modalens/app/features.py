"""Documents of the Features view, read from a feature run (``kind = "features"``, docs/features.md)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from modalens.app.data import NotFound, RunSource, _scalar, column
from modalens.runs import FeatureManifest

IMAGE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
LIST_COLUMNS = ("top_image", "top_text")


def features_document(source: RunSource) -> dict[str, Any]:
    """The feature table (list columns left out), the dominance summary and the extractor's metrics."""
    frame = _features(source)
    cols = {c: column(frame[c]) for c in frame.columns if c not in LIST_COLUMNS}
    m = _manifest(source)
    iv = source.run.table("interventions")
    return {
        "n": int(len(frame)),
        "columns": cols,
        "dominance": m.dominance.model_dump(mode="json"),
        "extractor": {"name": m.extractor.name, "metrics": m.extractor.metrics},
        "model": m.model.model_dump(mode="json"),
        "interventions": {c: column(iv[c]) for c in iv.columns},
        "has_images": m.images.count > 0,
    }


def feature_card(source: RunSource, feature: int) -> dict[str, Any]:
    """One feature: its row and its top-activating samples (image rows with their stored image, if any)."""
    frame = _features(source)
    rows = frame.index[frame["feature"] == feature]
    if len(rows) == 0:
        raise NotFound(f"run {source.run_id!r} has no feature {feature}")
    row = {k: _scalar(v) for k, v in frame.loc[rows[0]].to_dict().items()}
    samples: list[dict[str, Any]] = []
    if source.run.has_table("top_samples"):
        top = _grouped_top(source)
        part = top[top["feature"] == feature].sort_values(["modality", "rank"], kind="stable")
        images = _sample_images(source)
        for rec in part.to_dict("records"):
            item = {k: _scalar(v) for k, v in rec.items()}
            item["image"] = images.get(int(rec["sample"])) if rec.get("modality") == "image" else None
            samples.append(item)
    return {"feature": feature, "row": row, "top_samples": samples}


def image_path(source: RunSource, name: str) -> Path:
    """A stored sample image, only from the run's images folder."""
    folder = _manifest(source).images.dir
    if not IMAGE_NAME.match(name) or name in (".", ".."):
        raise NotFound(f"bad image name {name!r}")
    root = (source.run.path / folder).resolve()
    path = (root / name).resolve()
    if source.run.path.resolve() not in root.parents or path.parent != root or not path.is_file():
        raise NotFound(f"run {source.run_id!r} has no image {name}")
    return path


def feature_documents(source: RunSource, max_cards: int = 300) -> dict[str, Any]:
    """Everything the Features view asks for, keyed by API path (for the HTML export)."""
    import base64

    base = f"api/runs/{source.run_id}"
    doc = features_document(source)
    docs: dict[str, Any] = {f"{base}/features": doc}
    frame = _features(source)
    live = frame[frame.get("category", pd.Series(index=frame.index, dtype=object)) != "inactive"]
    order = live.sort_values("frequency", ascending=False) if "frequency" in live else live
    mime = image_mime(source)
    for f in order["feature"].head(max_cards):
        card = feature_card(source, int(f))
        docs[f"{base}/features/{int(f)}"] = card
        for s in card["top_samples"]:
            if s["image"]:
                data = base64.b64encode(image_path(source, s["image"]).read_bytes()).decode()
                docs[f"{base}/images/{s['image']}"] = f"data:{mime};base64,{data}"
    return docs


def image_mime(source: RunSource) -> str:
    """The mime type of the run's stored sample images."""
    return _manifest(source).images.mime


def _manifest(source: RunSource) -> FeatureManifest:
    m = source.run.manifest
    if not isinstance(m, FeatureManifest):
        raise NotFound(f"run {source.run_id!r} is a {source.run.kind!r} run; the Features view needs a feature run")
    return m


def _features(source: RunSource) -> pd.DataFrame:
    _manifest(source)
    return source.run.table("features")


def _grouped_top(source: RunSource) -> pd.DataFrame:
    return source.run.table("top_samples")


def _sample_images(source: RunSource) -> dict[int, str]:
    """sample -> image file name (as served under /images/), from the samples table."""
    key = "feature_sample_images"
    if key not in source._cache:
        out: dict[int, str] = {}
        if source.run.has_table("samples"):
            s = source.run.table("samples")
            if "image" in s.columns:
                for sample, image in zip(s["sample"].to_numpy(), s["image"].to_numpy(), strict=True):
                    if isinstance(image, str) and image:
                        out[int(sample)] = Path(image).name
        source._cache[key] = out
    return source._cache[key]
