"""A realistic synthetic interaction run, written with :func:`modalens.runs.write_run` per the run schema
(:mod:`modalens.runs.schema`, docs/run-format.md), which the writer checks.

The run is generated from a glass-box game rather than filled with random numbers, so every table agrees with
every other: each instance has coalition values ``v(S) = base + sum_i a_i + sum_{i<j} b_ij`` over the three
modalities (text, audio, vision); modality Shapley values, pairwise Shapley interaction indices and Moebius
coefficients are computed exactly from those coalition values; word/frame attributions split each modality's
Shapley value; the prediction is ``v(all)``. Interaction types follow the same simple rules the views explain
(dominance / complement / conflict / none), so tests can check what the app shows against known answers.
"""

from __future__ import annotations

import io
import itertools
import math
import struct
import wave
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from modalens.data import MediaColumn, Modality, MultimodalDataset
from modalens.data.native import save_dataset
from modalens.runs import write_run

MODALITIES = ("text", "audio", "vision")
AUDIO_FEATURES = ["F0", "VUV", "NAQ", "H1H2"]
VISION_FEATURES = ["Joy", "Sadness", "AU12", "AU4", "yaw"]
POSITIVE_WORDS = ["great", "love", "good", "amazing", "fun", "best", "happy", "nice"]
NEGATIVE_WORDS = ["bad", "boring", "worst", "hate", "awful", "terrible", "dull", "poor"]
NEUTRAL_WORDS = ["the", "movie", "was", "it", "and", "i", "really", "just", "plot", "actor", "so", "a"]
STEPS = 10


def make_dataset(
    n: int,
    seed: int = 0,
    media_count: int = 24,
    *,
    steps: int = STEPS,
    min_words: int = 5,
    word_durations: bool = False,
) -> tuple[MultimodalDataset, np.ndarray]:
    """A MOSI-like dataset of ``n`` utterances with words, word-aligned audio/vision tracks and a little media.

    Returns the dataset and a latent ``[n, 3]`` matrix of true per-modality sentiment evidence (text, audio,
    vision) that the synthetic "model" reads. ``steps``: the padded length (utterances have min_words..steps words);
    ``word_durations``: the audio gets a ``word_duration`` feature (seconds, as the demo set's) and the meta a
    ``speech_seconds`` column, their sum.
    """
    rng = np.random.default_rng(seed)
    latent = rng.normal(0.0, 1.0, size=(n, 3)).astype(np.float32)
    # Some instances have a strong single channel (dominance), some opposed channels (conflict).
    strong = rng.random(n) < 0.3
    latent[strong, rng.integers(0, 3, strong.sum())] *= 2.5
    lengths = rng.integers(min_words, steps + 1, size=n)
    words: list[list[str]] = []
    texts: list[str] = []
    mask = np.zeros((n, steps), dtype=bool)
    cue = np.zeros((n, steps), dtype=bool)  # where a sentiment word stands
    if n > 50_000:  # the loop below costs ~20 us an utterance: the same distribution, vectorised (another stream)
        words, texts, mask, cue = _words_vectorised(rng, latent, lengths, steps)
    for i in range(n if n <= 50_000 else 0):
        toks = list(rng.choice(NEUTRAL_WORDS, size=lengths[i]))
        k = int(min(lengths[i], 1 + int(abs(latent[i, 0]) > 1.0)))
        pool = POSITIVE_WORDS if latent[i, 0] > 0 else NEGATIVE_WORDS
        for pos in rng.choice(lengths[i], size=k, replace=False):
            toks[pos] = str(rng.choice(pool))
            cue[i, pos] = True
        words.append([str(t) for t in toks])
        texts.append(" ".join(toks))
        mask[i, : lengths[i]] = True
    text_values = rng.normal(0, 0.3, size=(n, steps, 8)).astype(np.float32)
    text_values[:, :, 0] += latent[:, 0:1] * np.where(cue, 1.5, 0.15)
    audio = rng.normal(0, 0.5, size=(n, steps, len(AUDIO_FEATURES))).astype(np.float32)
    audio[:, :, 0] += 0.8 * latent[:, 1:2]
    vision = rng.normal(0, 0.5, size=(n, steps, len(VISION_FEATURES))).astype(np.float32)
    vision[:, :, 0] += np.maximum(latent[:, 2:3], 0)
    vision[:, :, 1] += np.maximum(-latent[:, 2:3], 0)
    for arr in (text_values, audio, vision):
        arr[~mask] = 0.0
    audio_names = list(AUDIO_FEATURES)
    meta = {}
    if word_durations:  # drawn from their own generator, so the other values stay those of the default fixture
        durations = np.where(mask, np.random.default_rng(seed + 7).uniform(0.12, 0.6, size=(n, steps)), 0.0)
        audio = np.concatenate([audio, durations[:, :, None].astype(np.float32)], axis=2)
        audio_names.append("word_duration")
        meta["speech_seconds"] = audio[:, :, -1].astype(np.float64).sum(axis=1)
    labels = np.clip(latent @ np.array([1.2, 0.5, 0.7]) + rng.normal(0, 0.4, n), -3, 3).astype(np.float32)
    splits = np.where(rng.random(n) < 0.7, "train", np.where(rng.random(n) < 0.5, "valid", "test"))
    face = [_face_png(float(latent[i, 2])) if i < media_count else None for i in range(n)]
    speech = [_tone_wav(float(latent[i, 1])) if i < media_count else None for i in range(n)]
    ds = MultimodalDataset(
        [
            Modality("text", "text", text_values, mask=mask, feature_names=[f"emb{j}" for j in range(8)], words=words),
            Modality("audio", "audio", audio, mask=mask, feature_names=audio_names),
            Modality("vision", "vision", vision, mask=mask, feature_names=VISION_FEATURES),
        ],
        labels,
        label_kind="regression",
        ids=[f"vid{i // 7:05d}_{i % 7}" for i in range(n)],
        splits=splits.tolist(),
        texts=texts,
        meta=pd.DataFrame({"speaker": rng.integers(0, 40, n), **meta}),
        media={"face": MediaColumn("image/png", face), "speech": MediaColumn("audio/wav", speech)},
        name="synthetic-mosi",
    )
    return ds, latent


def _words_vectorised(
    rng: np.random.Generator, latent: np.ndarray, lengths: np.ndarray, steps: int
) -> tuple[list[list[str]], list[str], np.ndarray, np.ndarray]:
    """:func:`make_dataset`'s words for large ``n``: neutral words with 1-2 sentiment cues at distinct positions."""
    n = len(lengths)
    at = np.arange(steps)[None, :]
    mask = at < lengths[:, None]
    tokens = np.asarray(NEUTRAL_WORDS, dtype=object)[rng.integers(0, len(NEUTRAL_WORDS), (n, steps))]
    k = np.minimum(lengths, 1 + (np.abs(latent[:, 0]) > 1.0))
    keys = np.where(mask, rng.random((n, steps)), 2.0)  # k distinct real positions: the k smallest random keys
    rank = np.argsort(np.argsort(keys, axis=1), axis=1)
    cue = rank < k[:, None]
    pick = rng.integers(0, len(POSITIVE_WORDS), (n, steps))
    pool = np.where(
        latent[:, 0:1] > 0,
        np.asarray(POSITIVE_WORDS, dtype=object)[pick],
        np.asarray(NEGATIVE_WORDS, dtype=object)[pick],
    )
    tokens = np.where(cue, pool, tokens)
    words = [row[:length] for row, length in zip(tokens.tolist(), lengths.tolist(), strict=True)]
    return words, [" ".join(w) for w in words], mask, cue


def write_interaction_run(
    path: str | Path,
    n: int = 400,
    *,
    seed: int = 0,
    model_seed: int = 0,
    model_name: str = "late-fusion",
    with_projection: bool = True,
    media_count: int = 24,
    overwrite: bool = False,
    steps: int = STEPS,
    min_words: int = 5,
    word_durations: bool = False,
) -> Path:
    """Write a complete synthetic interaction run (all tables of docs/run-format.md) and return its path.

    Parameters
    ----------
    path
        The run directory to create.
    n
        Number of instances: 50,000 in about 10 s; up to 500,000 (words drawn vectorised beyond 50,000, so
        runs up to 50,000 are what they always were).
    seed
        Seed of the dataset; two runs with the same ``seed`` explain the same instances (for Compare).
    model_seed
        Seed of the synthetic model's weights; different values give two models that disagree sometimes.
    with_projection
        Write the ``projection`` table (PCA of the explanation vectors); False leaves it out, as a run
        written without one would be.
    media_count
        How many instances get a face thumbnail and a speech clip.
    steps, min_words, word_durations
        Padded sequence length, fewest words of an utterance and the audio's ``word_duration`` feature (see
        :func:`make_dataset`).
    """
    if not 1 <= n <= 500_000:
        raise ValueError(f"n must be in 1..500000, got {n}")
    dataset, latent = make_dataset(
        n, seed, media_count, steps=steps, min_words=min_words, word_durations=word_durations
    )
    rng = np.random.default_rng(1000 + model_seed)
    weights = np.array([1.1, 0.55, 0.75]) * rng.uniform(0.8, 1.25, 3)
    # main effects of each modality, squashed like a trained regressor's outputs (labels live in [-3, 3])
    a = 1.6 * np.tanh(latent * weights / 1.6)
    pair_index = list(itertools.combinations(range(3), 2))
    b = np.stack([0.25 * np.tanh(a[:, i] * a[:, j]) * rng.uniform(0.5, 1.5) for i, j in pair_index], axis=1)
    base = float(rng.normal(0.05, 0.05))
    coalitions = {s: _coalition_value(base, a, b, s, pair_index) for s in _subsets(3)}
    shapley = _shapley(coalitions, 3)
    inter = _pair_interactions(coalitions, 3, pair_index)
    prediction = coalitions[(0, 1, 2)]
    labels = dataset.labels.astype(np.float64)
    itype, dominant, strength = _interaction_types(shapley, inter)

    instances = pd.DataFrame(
        {
            "instance": np.arange(n),
            "id": dataset.ids,
            "split": dataset.splits,
            "label": labels,
            "prediction": prediction,
            "target": np.zeros(n, dtype=np.int64),
            "explained_output": prediction,
            "error": prediction - labels,
            "abs_error": np.abs(prediction - labels),
            "base_value": np.full(n, base),
            "interaction_type": itype,
            "dominant_modality": pd.array([MODALITIES[d] if d >= 0 else None for d in dominant], dtype=object),
            "interaction_strength": strength,
            "text": dataset.texts,
            "meta_speaker": dataset.meta["speaker"].to_numpy(),
            **{f"meta_{c}": dataset.meta[c].to_numpy() for c in dataset.meta.columns if c != "speaker"},
            **{f"shapley_{m}": shapley[:, k] for k, m in enumerate(MODALITIES)},
        }
    )
    tables = {
        "instances": instances,
        "modality_shapley": _modality_shapley_table(shapley),
        "coalitions": _coalition_table(coalitions, n),
        "interactions": _interaction_table(inter, b, pair_index),
        "outputs": pd.DataFrame(
            {"instance": np.arange(n), "output_index": 0, "output": "sentiment", "value": prediction}
        ),
        "feature_attributions": _feature_attribution_table(dataset, shapley, rng),
    }
    tables["feature_importance"] = (
        tables["feature_attributions"]
        .assign(abs_value=lambda f: f["value"].abs())
        .groupby(["modality", "feature"], as_index=False)
        .agg(mean_abs=("abs_value", "mean"), mean=("value", "mean"), count=("value", "size"))
    )
    tables["templates"], tables["template_members"] = _templates(dataset, shapley, prediction)
    explanation_vectors = np.concatenate([shapley, inter], axis=1)
    manifest_extra: dict = {}
    if with_projection:
        from modalens.interactions.projection import project

        xy = project(explanation_vectors, method="pca", seed=seed)
        tables["projection"] = pd.DataFrame({"instance": np.arange(n), "x": xy[:, 0], "y": xy[:, 1]})
        manifest_extra["projection"] = {"method": "pca", "seed": seed}

    files = {}
    for key, column in dataset.media.items():
        for i, item in enumerate(column.items):
            if item is not None:
                files[f"media/{key}/{i}.{column.extension}"] = item
    tmp_npz = Path(path).parent / f".{Path(path).name}.dataset.npz"
    save_dataset(dataset, tmp_npz)
    files["dataset.npz"] = tmp_npz.read_bytes()
    tmp_npz.unlink()

    errors = prediction - labels
    types = ["dominance", "complement", "conflict", "none"]
    manifest = {
        "dataset": dataset.describe(),
        "model": {
            "adapter": "synthetic",
            "name": model_name,
            "modalities": list(MODALITIES),
            "output_kind": "regression",
            "output_names": ["sentiment"],
            "masker": {m: "zeros" for m in MODALITIES},
        },
        "modalities": list(MODALITIES),
        "target": "predicted",
        "typing": {"dominance_share": 0.6, "relevance_share": 0.2, "min_total": 0.05},
        "config": {"method": "exact-shapley", "seed": seed, "model_seed": model_seed, "dominance_share": 0.6},
        "timings": {"coalitions": 0.1 * n / 100, "attribution": 0.2 * n / 100},
        "global": {
            "n_instances": n,
            "performance": {
                "mae": float(np.mean(np.abs(errors))),
                "corr": float(np.corrcoef(prediction, labels)[0, 1]) if n > 2 else None,
                "acc2": float(np.mean((prediction >= 0) == (labels >= 0))),
            },
            "modality_importance": {m: float(np.mean(np.abs(shapley[:, k]))) for k, m in enumerate(MODALITIES)},
            "mean_shapley": {m: float(np.mean(shapley[:, k])) for k, m in enumerate(MODALITIES)},
            "type_shares": {t: float(np.mean(itype == t)) for t in types},
            "error_by_type": {
                t: {
                    "count": int((itype == t).sum()),
                    "error": float(np.mean(np.abs(errors[itype == t]))),
                }
                for t in types
                if (itype == t).any()
            },
            "error_measure": "mean absolute error",
            "interaction_strength": float(np.mean(strength)),
        },
        "dataset_measures": {},
        "media": {k: c.mime for k, c in dataset.media.items()},
        "projection": None,
        **manifest_extra,
    }
    return write_run(path, kind="interaction", manifest=manifest, tables=tables, files=files, overwrite=overwrite)


# -- the glass-box game -----------------------------------------------------------------------------------------
def _subsets(m: int) -> list[tuple[int, ...]]:
    return [s for r in range(m + 1) for s in itertools.combinations(range(m), r)]


def _coalition_value(base: float, a: np.ndarray, b: np.ndarray, s: tuple[int, ...], pairs: list) -> np.ndarray:
    value = np.full(a.shape[0], base)
    for i in s:
        value = value + a[:, i]
    for k, (i, j) in enumerate(pairs):
        if i in s and j in s:
            value = value + b[:, k]
    return value


def _shapley(v: dict[tuple[int, ...], np.ndarray], m: int) -> np.ndarray:
    """Exact Shapley values from all 2^m coalition values (the textbook formula, so tests can trust it)."""
    phi = np.zeros((next(iter(v.values())).shape[0], m))
    for i in range(m):
        for s in _subsets(m):
            if i in s:
                continue
            weight = math.factorial(len(s)) * math.factorial(m - len(s) - 1) / math.factorial(m)
            phi[:, i] += weight * (v[tuple(sorted(s + (i,)))] - v[s])
    return phi


def _pair_interactions(v: dict, m: int, pairs: list) -> np.ndarray:
    """Shapley interaction index I_ij for every pair i < j (FIELD_NOTES definition)."""
    out = np.zeros((next(iter(v.values())).shape[0], len(pairs)))
    for k, (i, j) in enumerate(pairs):
        rest = [p for p in range(m) if p not in (i, j)]
        for r in range(len(rest) + 1):
            for s in itertools.combinations(rest, r):
                w = math.factorial(len(s)) * math.factorial(m - len(s) - 2) / math.factorial(m - 1)
                delta = v[tuple(sorted(s + (i, j)))] - v[tuple(sorted(s + (i,)))] - v[tuple(sorted(s + (j,)))] + v[s]
                out[:, k] += w * delta
    return out


def _interaction_types(phi: np.ndarray, inter: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dominance: one modality holds >= 60 % of |phi|; conflict: sizeable shares of both signs; else complement."""
    total = np.abs(phi).sum(axis=1)
    share = np.abs(phi) / np.maximum(total, 1e-12)[:, None]
    sizeable = share >= 0.2
    has_pos = (sizeable & (phi > 0)).any(axis=1)
    has_neg = (sizeable & (phi < 0)).any(axis=1)
    itype = np.where(share.max(axis=1) >= 0.6, "dominance", np.where(has_pos & has_neg, "conflict", "complement"))
    itype = np.where(total < 0.05, "none", itype).astype(object)
    dominant = np.where(itype == "dominance", share.argmax(axis=1), -1)
    strength = np.abs(inter).sum(axis=1) / np.maximum(total, 1e-12)
    return itype, dominant, strength


# -- tables -----------------------------------------------------------------------------------------------------
def _modality_shapley_table(phi: np.ndarray) -> pd.DataFrame:
    n, m = phi.shape
    total = np.maximum(np.abs(phi).sum(axis=1, keepdims=True), 1e-12)
    share = np.abs(phi) / total
    signs = np.sign(phi.sum(axis=1, keepdims=True))
    role = np.where(
        share >= 0.6,
        "dominant",
        np.where(share < 0.1, "minor", np.where(np.sign(phi) == signs, "supporting", "opposing")),
    )
    return pd.DataFrame(
        {
            "instance": np.repeat(np.arange(n), m),
            "modality": np.tile(np.array(MODALITIES, dtype=object), n),
            "value": phi.ravel(),
            "share": share.ravel(),
            "role": role.ravel().astype(object),
        }
    )


def _coalition_table(v: dict, n: int) -> pd.DataFrame:
    frames = [
        pd.DataFrame(
            {"instance": np.arange(n), "coalition": "+".join(MODALITIES[i] for i in s), "size": len(s), "value": values}
        )
        for s, values in v.items()
    ]
    return pd.concat(frames, ignore_index=True).sort_values(["instance", "size"], kind="stable", ignore_index=True)


def _interaction_table(inter: np.ndarray, mobius: np.ndarray, pairs: list) -> pd.DataFrame:
    n = inter.shape[0]
    return pd.DataFrame(
        {
            "instance": np.repeat(np.arange(n), len(pairs)),
            "modality_i": np.tile(np.array([MODALITIES[i] for i, _ in pairs], dtype=object), n),
            "modality_j": np.tile(np.array([MODALITIES[j] for _, j in pairs], dtype=object), n),
            "shapley_interaction": inter.ravel(),
            "mobius": mobius.ravel(),
        }
    )


def _feature_attribution_table(ds: MultimodalDataset, phi: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """Split each modality's Shapley value over its real steps (and, for audio/vision, features) by evidence."""
    frames = []
    for k, name in enumerate(MODALITIES):
        mod = ds[name]
        mask = mod.step_mask()
        n, t, d = mod.values.shape
        if name == "text":
            evidence = (np.abs(mod.values[:, :, 0]) + 0.05) * mask
            parts = evidence / np.maximum(evidence.sum(axis=1, keepdims=True), 1e-12) * phi[:, k : k + 1]
            # words push both ways, as real word attributions do; the zero-sum noise keeps sum = phi_text
            noise = rng.normal(0, 0.08, (n, t)) * mask
            noise -= noise.sum(axis=1, keepdims=True) / np.maximum(mask.sum(axis=1, keepdims=True), 1) * mask
            parts = parts + noise
            inst, pos = np.nonzero(mask)
            frames.append(
                pd.DataFrame(
                    {
                        "instance": inst,
                        "modality": name,
                        "position": pos,
                        "feature": "*",
                        "value": parts[inst, pos],
                        "token": np.asarray(mod.words, dtype=object)[inst, pos],
                    }
                )
            )
        else:
            evidence = (np.abs(mod.values) + 0.05) * mask[:, :, None]
            parts = evidence / np.maximum(evidence.sum(axis=(1, 2), keepdims=False)[:, None, None], 1e-12)
            parts = parts * phi[:, k][:, None, None]
            inst, pos, feat = np.nonzero(np.broadcast_to(mask[:, :, None], mod.values.shape))
            frames.append(
                pd.DataFrame(
                    {
                        "instance": inst,
                        "modality": name,
                        "position": pos,
                        "feature": np.asarray(mod.feature_names, dtype=object)[feat],
                        "value": parts[inst, pos, feat],
                        "token": None,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def _templates(ds: MultimodalDataset, phi: np.ndarray, prediction: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Frequent multimodal feature sets: a sentiment word, a high audio F0 and/or a visible smile or frown."""
    n = len(ds)
    words = np.asarray(ds["text"].words, dtype=object)
    items: dict[str, tuple[str, np.ndarray]] = {}
    for w in POSITIVE_WORDS + NEGATIVE_WORDS:
        items[f"text:{w}"] = ("text", (words == w).any(axis=1))
    f0 = ds["audio"].values[:, :, 0].mean(axis=1)
    items["audio:F0 high"] = ("audio", f0 > 0.35)
    items["audio:F0 low"] = ("audio", f0 < -0.35)
    joy, sad = ds["vision"].values[:, :, 0].mean(axis=1), ds["vision"].values[:, :, 1].mean(axis=1)
    items["vision:Joy high"] = ("vision", joy > 0.5)
    items["vision:Sadness high"] = ("vision", sad > 0.5)
    rows, members = [], []
    names = list(items)
    candidates = (
        [(x,) for x in names]
        + list(itertools.combinations(names, 2))
        + [(w, a, v) for w in names[:16] for a in names[16:18] for v in names[18:]]
    )
    for combo in candidates:
        mods = [items[c][0] for c in combo]
        if len(set(mods)) != len(mods):
            continue
        hit = np.logical_and.reduce([items[c][1] for c in combo])
        count = int(hit.sum())
        if count < max(3, int(0.005 * n)):
            continue
        mean_attr = float(np.mean(phi[hit][:, [MODALITIES.index(m) for m in mods]].sum(axis=1)))
        rows.append(
            {
                "template_id": len(rows),
                "items": list(combo),
                "modalities": mods,
                "polarity": "positive" if mean_attr >= 0 else "negative",
                "support": count / n,
                "count": count,
                "mean_prediction": float(prediction[hit].mean()),
                "mean_attribution": mean_attr,
                "rank": len(rows),
            }
        )
        members.append(pd.DataFrame({"template_id": len(rows) - 1, "instance": np.flatnonzero(hit)}))
    templates = pd.DataFrame(rows)
    member_frame = (
        pd.concat(members, ignore_index=True)
        if members
        else pd.DataFrame({"template_id": pd.Series([], dtype=int), "instance": pd.Series([], dtype=int)})
    )
    return templates, member_frame


# -- tiny media -------------------------------------------------------------------------------------------------
def _face_png(mood: float, size: int = 48) -> bytes:
    """A small face thumbnail (PNG) whose mouth curves with ``mood``; hand-encoded so no imaging library is needed."""
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1) * 2 - 1
    img = np.full((size, size, 3), 235, dtype=np.uint8)
    face = xx**2 + yy**2 < 0.8
    img[face] = (244, 200, 160)
    for ex in (-0.35, 0.35):
        img[(xx - ex) ** 2 + (yy + 0.25) ** 2 < 0.012] = (40, 40, 40)
    curve = 0.35 + np.clip(mood, -1.5, 1.5) * 0.15 * (1 - (xx / 0.45) ** 2)
    img[(np.abs(xx) < 0.45) & (np.abs(yy - curve) < 0.06)] = (150, 50, 50)
    raw = b"".join(b"\x00" + img[r].tobytes() for r in range(size))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def _tone_wav(mood: float, seconds: float = 0.6, rate: int = 8000) -> bytes:
    """A short tone whose pitch rises with ``mood`` (a stand-in for a speech clip)."""
    t = np.arange(int(seconds * rate)) / rate
    freq = 220 * 2 ** (np.clip(mood, -2, 2) / 2)
    signal = (0.3 * np.sin(2 * np.pi * freq * t) * np.hanning(t.size) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(signal.tobytes())
    return buf.getvalue()


def write_feature_run(path: str | Path, n_pairs: int = 160, d_sae: int = 48, *, seed: int = 0) -> Path:
    """A real feature run (``kind = "features"``) from the feature engine on synthetic paired embeddings.

    Dimensions 0-3 carry image-only signal and 4-7 text-only signal, so the study finds vision, language and
    cross-modal features; every pair has a small face image and a caption for the feature card.
    """
    from modalens.features.study import run_feature_study

    rng = np.random.default_rng(seed)
    d = 16
    shared = rng.normal(size=(n_pairs, d))
    image = shared + 0.5 * rng.normal(size=(n_pairs, d))
    text = shared + 0.5 * rng.normal(size=(n_pairs, d))
    image[:, :4] += 2 * np.abs(rng.normal(size=(n_pairs, 4)))
    text[:, 4:8] += 2 * np.abs(rng.normal(size=(n_pairs, 4)))
    moods = rng.normal(size=n_pairs)
    study = run_feature_study(
        image.astype(np.float32),
        text.astype(np.float32),
        extractor="topk",
        d_sae=d_sae,
        extractor_options={"k": 8, "epochs": 3},
        n_boot=20,
        top_k=10,
        texts=[f"a {'smiling' if m > 0 else 'frowning'} face, caption {i}" for i, m in enumerate(moods)],
        labels=["happy" if m > 0 else "sad" for m in moods],
        images=[_face_png(float(m)) for m in moods],
        compare_with=(),
        steer_features=1,
        n_random=1,
        seed=seed,
    )
    return study.save(path)
