"""Writers of tiny fixture files in the MMSA and CMU-SDK layouts, shared by the tests of this folder."""

from __future__ import annotations

import json
import pickle

import h5py
import numpy as np

SIZES = {"train": 4, "valid": 2, "test": 3}


def _split(name: str, n: int, *, aligned: bool, rng: np.random.Generator, offset: int) -> dict:
    t_text = 6
    t_audio, t_vision = (t_text, t_text) if aligned else (8, 7)
    raw = [" ".join(f"w{offset + i}_{k}" for k in range(1 + i % 3)) for i in range(n)]
    text = np.zeros((n, t_text, 4), dtype=np.float32)
    audio = np.zeros((n, t_audio, 74), dtype=np.float32)
    vision = np.zeros((n, t_vision, 35), dtype=np.float32)
    audio_len = np.array([2 + (i % 4) for i in range(n)])
    vision_len = np.array([1 + (i % 5) for i in range(n)])
    bert = np.zeros((n, 3, t_text), dtype=np.int64)
    for i, sentence in enumerate(raw):
        k = len(sentence.split())
        # BERT layout: [CLS] w1 .. wk [SEP] then padding; pad features are non-zero (as real BERT states are).
        bert[i, 1, : k + 2] = 1
        bert[i, 0, : k + 2] = rng.integers(100, 200, k + 2)
        text[i] = rng.normal(size=(t_text, 4))
        if aligned:
            # Aligned files: front padding, then k word steps; the all-zero rule must find them.
            audio[i, t_text - k :] = rng.normal(size=(k, 74)) + 5
            vision[i, t_text - k :] = rng.normal(size=(k, 35)) + 5
        else:
            audio[i, : audio_len[i]] = rng.normal(size=(audio_len[i], 74)) + 5
            vision[i, : vision_len[i]] = rng.normal(size=(vision_len[i], 35)) + 5
    part = {
        "raw_text": np.array(raw, dtype=object),
        "id": np.array([f"vid{offset + i}$_${i}" for i in range(n)], dtype=object),
        "text": text,
        "text_bert": bert,
        "audio": audio,
        "vision": vision,
        "regression_labels": np.round(rng.uniform(-3, 3, n), 2).astype(np.float32),
        "classification_labels": rng.integers(0, 3, n).astype(np.float32),
        "annotations": np.array(["Positive" if i % 2 else "Negative" for i in range(n)], dtype=object),
    }
    if not aligned:
        part["audio_lengths"] = audio_len
        part["vision_lengths"] = vision_len
    return part


def write_mmsa(path, *, aligned: bool = True, protocol: int = 4, edit=None):
    rng = np.random.default_rng(0)
    data, offset = {}, 0
    for name, n in SIZES.items():
        data[name] = _split(name, n, aligned=aligned, rng=rng, offset=offset)
        offset += n
    if edit is not None:
        edit(data)
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    return data


WORDS = {  # video -> (token, start, end)
    "v1": [("hello", 0.0, 1.0), ("sp", 1.0, 1.5), ("world", 1.5, 2.5), ("good", 3.0, 4.0), ("bye", 4.0, 5.0)],
    "v2": [("so", 0.0, 0.5), ("fine", 0.5, 1.5)],
}
LABELS = {"v1": ([[0.0, 2.6], [2.8, 5.0]], [[1.5, 0.0], [-2.0, 1.0]]), "v2": ([[0.0, 2.0]], [[0.5, 1.0]])}


def write_csd(path, root: str, data: dict, metadata: dict | None = None) -> None:
    """Write a computational sequence the way the SDK's write_CSD does."""
    with h5py.File(path, "w") as f:
        group = f.create_group(root)
        d = group.create_group("data")
        for vid, (features, intervals) in data.items():
            v = d.create_group(vid)
            v.create_dataset("features", data=features)
            v.create_dataset("intervals", data=np.asarray(intervals, dtype=np.float64))
        meta = group.create_group("metadata")
        for key, value in (metadata or {"root name": root}).items():
            ds = meta.create_dataset(key, (1,), dtype=h5py.special_dtype(vlen=str))
            ds[0] = json.dumps(value)


def audio_frames(end: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    starts = np.arange(0.0, end, 0.5)
    return np.stack([starts, 2 * starts], axis=1).astype(np.float32), np.stack([starts, starts + 0.5], axis=1)


def vision_frames(end: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    starts = np.round(np.arange(0.0, end - 1e-9, 0.4), 6)
    return np.arange(len(starts), dtype=np.float32)[:, None], np.stack([starts, np.minimum(starts + 0.4, end)], 1)


def write_corpus(folder):
    """A tiny CMU-SDK corpus (words, labels, COVAREP-like audio, Facet-like vision) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp_path = folder
    words = {v: (np.array([[w.encode()] for w, _, _ in ws]), [[a, b] for _, a, b in ws]) for v, ws in WORDS.items()}
    write_csd(tmp_path / "words.csd", "words", words)
    write_csd(tmp_path / "labels.csd", "Opinion Segment Labels", {v: (np.array(f), i) for v, (i, f) in LABELS.items()})
    write_csd(
        tmp_path / "covarep.csd",
        "COVAREP",
        {"v1": audio_frames(), "v2": audio_frames(2.0)},
        {"root name": "COVAREP", "dimension names": ["start_s", "twice_start_s"]},
    )
    write_csd(tmp_path / "facet.csd", "FACET 4.2", {"v1": vision_frames(), "v2": vision_frames(2.0)})
    return tmp_path
