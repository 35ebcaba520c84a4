"""Small valid files in the four formats: the seeds the mutator starts from and the base of the hostile cases."""

from __future__ import annotations

import pickle
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from modalens.data.dataset import MediaColumn, Modality, MultimodalDataset
from modalens.data.loaders import save_dataset

from ..helpers import write_csd


def tiny_dataset(n: int = 4) -> MultimodalDataset:
    """Every field the native formats carry: masks, words, labels, ids, splits, texts, meta, media."""
    rng = np.random.default_rng(7)
    mask = np.ones((n, 3), bool)
    mask[0, 2] = False
    return MultimodalDataset(
        [
            Modality(
                "text",
                "text",
                rng.normal(size=(n, 3, 2)).astype(np.float32),
                mask=mask,
                words=[["a", "b", ""] if i == 0 else ["x", "y", "z"] for i in range(n)],
            ),
            Modality("audio", "audio", rng.normal(size=(n, 2, 3)).astype(np.float32), feature_names=["f0", "e", "z"]),
        ],
        np.round(rng.normal(size=n), 3).astype(np.float32),
        ids=[f"clip{i}" for i in range(n)],
        splits=["train"] * (n - 1) + ["test"],
        texts=[f"utterance {i}" for i in range(n)],
        meta=pd.DataFrame({"speaker": [f"s{i % 2}" for i in range(n)], "age": np.arange(n) * 1.5}),
        media={"face": MediaColumn("image/png", [b"\x89PNG" + bytes([i]) if i % 2 else None for i in range(n)])},
        name="tiny",
    )


def mmsa_payload(*, aligned: bool = True) -> dict:
    """A small MMSA dict of splits (text [N, 4, 4], audio [N, T, 5], vision [N, T, 3])."""
    rng = np.random.default_rng(3)
    data, offset = {}, 0
    for split, n in (("train", 3), ("valid", 1), ("test", 2)):
        t = 4 if aligned else 5
        audio = np.zeros((n, t, 5), np.float32)
        audio[:, 1:] = rng.normal(size=(n, t - 1, 5))
        part = {
            "raw_text": np.array([f"w{offset + i} v{offset + i}" for i in range(n)], dtype=object),
            "id": np.array([f"vid{offset + i}$_${i}" for i in range(n)], dtype=object),
            "text": rng.normal(size=(n, 4, 4)).astype(np.float32),
            "audio": audio,
            "vision": rng.normal(size=(n, t, 3)).astype(np.float32),
            "regression_labels": np.round(rng.uniform(-3, 3, n), 2).astype(np.float32),
            "classification_labels": rng.integers(0, 3, n).astype(np.float32),
        }
        if not aligned:
            part["audio_lengths"] = np.array([t - (i % 2) for i in range(n)])
            part["vision_lengths"] = np.array([1 + i % t for i in range(n)])
        data[split] = part
        offset += n
    return data


def csd_sequence() -> dict:
    """Two videos of a 3-d frame sequence, frames not in time order in the file (the loader sorts them)."""
    starts = np.array([0.5, 0.0, 1.0, 1.5])
    feats = np.arange(12, dtype=np.float32).reshape(4, 3)
    return {
        "v1": (feats, np.stack([starts, starts + 0.5], 1)),
        "v2": (feats[:2] + 100, np.array([[0.0, 0.4], [0.4, 0.8]])),
    }


def write_seeds(folder: Path) -> dict[str, list[Path]]:
    """Write the seed files into ``folder``; returns them by format (``mmsa``, ``native``, ``parquet``, ``csd``)."""
    folder.mkdir(parents=True, exist_ok=True)
    seeds: dict[str, list[Path]] = {"mmsa": [], "native": [], "parquet": [], "csd": []}
    for aligned, protocol in ((True, 2), (True, 4), (True, 5), (False, 4)):
        path = folder / f"mmsa_{'aligned' if aligned else 'unaligned'}_p{protocol}.pkl"
        path.write_bytes(pickle.dumps(mmsa_payload(aligned=aligned), protocol=protocol))
        seeds["mmsa"].append(path)
    ds = tiny_dataset()
    seeds["native"].append(save_dataset(ds, folder / "tiny.npz"))
    seeds["parquet"].append(save_dataset(ds, folder / "tiny.parquet"))
    path = folder / "frames.csd"
    write_csd(path, "frames", csd_sequence(), {"root name": "frames", "dimension names": ["a", "b", "c"]})
    seeds["csd"].append(path)
    chunked = folder / "frames_gzip.csd"
    with h5py.File(chunked, "w") as f:
        data = f.create_group("frames").create_group("data")
        for vid, (feats, ivals) in csd_sequence().items():
            group = data.create_group(vid)
            group.create_dataset("features", data=feats, chunks=(2, 3), compression="gzip", shuffle=True)
            group.create_dataset("intervals", data=ivals, chunks=True, fletcher32=True)
    seeds["csd"].append(chunked)
    return seeds
