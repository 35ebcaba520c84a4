"""Inputs of the feature commands: tables of image-caption pairs, image files, embedding models and files."""

from __future__ import annotations

import os
import re
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

        target = check_hf_spec(spec)
        try:
            return HFCLIPModel.from_pretrained(target, device=device)
        except (OSError, ValueError) as exc:
            if Path(target).expanduser().is_dir():
                raise
            raise UsageError(
                f"{spec}: no folder {target} here, and no cached hub model of that name (the hub is offline); "
                "give a local transformers CLIPModel directory"
            ) from exc
    raise UsageError(f"unknown model {spec!r}; use 'two-tower', 'two-tower:PATH.safetensors' or 'hf:DIR_OR_ID'")


_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


def check_hf_spec(spec: str) -> str:
    """The folder (or hub id) of an ``hf:`` model spec, checked before anything is computed: a missing folder is
    one line saying so, not the hub's complaint about repository names."""
    target = spec[3:]
    if not target:
        raise UsageError("hf: needs a folder: --model hf:DIR (a transformers CLIPModel checkpoint directory)")
    path = Path(target).expanduser()
    if path.is_dir():
        return str(path)
    if path.exists():
        raise UsageError(f"{spec}: {path} is a file; hf: takes a CLIPModel checkpoint folder")
    looks_like_path = target.startswith((".", "/", "~")) or "\\" in target or not _HUB_ID.match(target)
    if looks_like_path or target.count("/") != 1:
        raise UsageError(f"{spec}: folder {path} does not exist (hf: takes a local CLIPModel checkpoint directory)")
    return target


def check_model_spec(spec: str) -> None:
    """Refuse a bad ``--model`` before any other input is read (unknown kind, missing folder or file)."""
    if spec.startswith("hf:"):
        check_hf_spec(spec)
    elif spec.startswith("two-tower:"):
        path = Path(spec.split(":", 1)[1]).expanduser()
        if not path.is_file():
            raise UsageError(f"{spec}: projection weights file {path} does not exist")
    elif spec != "two-tower":
        raise UsageError(f"unknown model {spec!r}; use 'two-tower', 'two-tower:PATH.safetensors' or 'hf:DIR'")


def check_width(emb: np.ndarray, d_in: int, source: str, run: Path | str) -> None:
    """Embeddings must have the width the run's extractor reads: else one line naming both."""
    if emb.ndim == 2 and emb.shape[1] != d_in:
        raise UsageError(
            f"{source}: embeddings are {emb.shape[1]}-d but the run {run} was trained on {d_in}-d embeddings; "
            "embed the pairs with the run's model"
        )


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
