"""Inputs of the feature commands: tables of image-caption pairs, image files, embedding models and files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from modalens.cli.common import UsageError


def read_pairs_table(path: Path, image_column: str, text_column: str) -> pd.DataFrame:
    """A table of pairs from CSV, Parquet or JSONL, checked for the two columns."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if suffix == ".csv":
        table = pd.read_csv(path)
    elif suffix == ".parquet":
        table = pd.read_parquet(path)
    elif suffix in (".jsonl", ".ndjson"):
        table = pd.read_json(path, lines=True)
    else:
        raise UsageError(f"{path}: unknown table type {suffix!r}; expected .csv, .parquet or .jsonl")
    missing = [c for c in (image_column, text_column) if c not in table.columns]
    if missing:
        raise UsageError(f"{path}: missing column(s) {missing}; it has {list(table.columns)}")
    return table.reset_index(drop=True)


def load_images(paths: list[str], base: Path) -> list[np.ndarray]:
    """Read image files (relative paths resolve against ``base``) as uint8 RGB arrays."""
    from PIL import Image

    out = []
    for i, p in enumerate(paths):
        file = Path(p) if os.path.isabs(p) else base / p
        if not file.is_file():
            raise FileNotFoundError(f"row {i}: image file {file} not found")
        with Image.open(file) as im:
            out.append(np.asarray(im.convert("RGB"), dtype=np.uint8))
    return out


def load_model(spec: str, *, device: str = "cpu"):
    """An EmbeddingModel from a spec: ``two-tower``, ``two-tower:PATH``, or ``hf:DIR_OR_ID``."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if spec == "two-tower" or spec.startswith("two-tower:"):
        from modalens.features.demo import DEMO_ASSETS
        from modalens.features.two_tower import TwoTowerModel

        path = spec.split(":", 1)[1] if ":" in spec else DEMO_ASSETS / "projection.safetensors"
        return TwoTowerModel.load(path)
    if spec.startswith("hf:"):
        from modalens.features.embeddings import HFCLIPModel

        return HFCLIPModel.from_pretrained(spec[3:], device=device)
    raise UsageError(f"unknown model {spec!r}; use 'two-tower', 'two-tower:PATH.safetensors' or 'hf:DIR_OR_ID'")


def write_embeddings(result, out: Path) -> None:
    """Parquet (list columns + metadata) or npz (arrays ``image``, ``text``)."""
    suffix = out.suffix.lower()
    if suffix == ".parquet":
        result.save_parquet(out)
    elif suffix == ".npz":
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez(out, image=result.image_emb, text=result.text_emb)
    else:
        raise UsageError(f"{out}: output must end in .parquet or .npz")
