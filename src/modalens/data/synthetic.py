"""A small synthetic sentiment set whose modality roles are known, and a glass-box model over it.

Used by the README example, the tests and ``modalens demo --synthetic``. Each instance has words with a sentiment
lexicon value, an acoustic track and a visual track. Per instance, the audio and the face are set to *agree* with
the text's sentiment, *contradict* it, or stay *neutral*, and the roles are stored in ``meta``. The glass-box model
over it (:func:`modalens.models.glass_box.glass_box_model`) adds the three modalities' evidence, so its true modality
contributions are known in closed form: :func:`glass_box_terms`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from modalens.data.dataset import Modality, MultimodalDataset

LEXICON = {
    "great": 2.5,
    "love": 2.8,
    "happy": 2.2,
    "good": 1.6,
    "fine": 0.8,
    "nice": 1.4,
    "fun": 1.8,
    "bad": -1.8,
    "awful": -2.7,
    "hate": -2.8,
    "sad": -2.0,
    "boring": -1.5,
    "poor": -1.6,
    "worst": -2.9,
    "the": 0.0,
    "movie": 0.0,
    "was": 0.0,
    "really": 0.0,
    "i": 0.0,
    "it": 0.0,
    "story": 0.0,
    "acting": 0.0,
}
NEUTRAL_WORDS = [w for w, v in LEXICON.items() if v == 0.0]
POLAR_WORDS = [w for w, v in LEXICON.items() if v != 0.0]
ROLES = ("agree", "contradict", "neutral")


def make_synthetic(
    n: int = 400, *, steps: int = 8, seed: int = 0, role_rates: tuple[float, float, float] = (0.5, 0.25, 0.25)
) -> MultimodalDataset:
    """Build the synthetic set: ``text`` (word one-hot-free features), ``audio`` and ``vision`` tracks, roles in meta.

    Text features per word: [lexicon valence, word length / 10, is_padding=0]. Audio features per step:
    [F0 (z-score), energy, VUV]. Vision features per step: [Joy, Sadness, AU12].
    """
    rng = np.random.default_rng(seed)
    text = np.zeros((n, steps, 3), np.float32)
    audio = np.zeros((n, steps, 3), np.float32)
    vision = np.zeros((n, steps, 3), np.float32)
    mask = np.zeros((n, steps), bool)
    words: list[list[str]] = []
    texts, labels, audio_roles, vision_roles = [], [], [], []
    for i in range(n):
        length = int(rng.integers(3, steps + 1))
        tokens = list(rng.choice(NEUTRAL_WORDS, size=length))
        for pos in rng.choice(length, size=int(rng.integers(1, 3)), replace=False):
            tokens[pos] = str(rng.choice(POLAR_WORDS))
        valence = np.array([LEXICON[w] for w in tokens], np.float32)
        text[i, :length, 0] = valence
        text[i, :length, 1] = [len(w) / 10 for w in tokens]
        mask[i, :length] = True
        sentiment = float(np.clip(valence.sum(), -3, 3))
        polarity = np.sign(sentiment) if sentiment != 0 else 1.0
        roles = rng.choice(ROLES, size=2, p=list(role_rates))
        cue = {"agree": polarity, "contradict": -polarity, "neutral": 0.0}
        a, v = cue[str(roles[0])], cue[str(roles[1])]
        audio[i, :length, 0] = a * 1.2 + rng.normal(0, 0.3, length)
        audio[i, :length, 1] = 0.5 + 0.3 * abs(a) + rng.normal(0, 0.05, length)
        audio[i, :length, 2] = 1.0
        vision[i, :length, 0] = np.clip(0.5 + 0.4 * v + rng.normal(0, 0.05, length), 0, 1)
        vision[i, :length, 1] = np.clip(0.5 - 0.4 * v + rng.normal(0, 0.05, length), 0, 1)
        vision[i, :length, 2] = v + rng.normal(0, 0.1, length)
        words.append([str(w) for w in tokens])
        texts.append(" ".join(tokens))
        # The label is the words' sentiment, as in the demo set whose labels come from a text corpus; the voice
        # and the face agree with it, contradict it or stay neutral.
        labels.append(sentiment)
        audio_roles.append(str(roles[0]))
        vision_roles.append(str(roles[1]))
    split = rng.choice(["train", "valid", "test"], size=n, p=[0.6, 0.15, 0.25])
    return MultimodalDataset(
        [
            Modality("text", "text", text, mask=mask, feature_names=["valence", "length", "pad"], words=words),
            Modality("audio", "audio", audio, mask=mask, feature_names=["F0", "energy", "VUV"]),
            Modality("vision", "vision", vision, mask=mask, feature_names=["Joy", "Sadness", "AU12"]),
        ],
        np.asarray(labels, np.float32),
        ids=[f"syn_{i:05d}" for i in range(n)],
        splits=split.tolist(),
        texts=texts,
        meta=pd.DataFrame({"audio_role": audio_roles, "vision_role": vision_roles}),
        name="synthetic-sentiment",
    )


GLASS_BOX_WEIGHTS = (0.7, 0.5, 0.6)


def glass_box_terms(dataset: MultimodalDataset, weights: tuple[float, float, float] = GLASS_BOX_WEIGHTS) -> np.ndarray:
    """``[N, 3]``: the glass-box model's text, audio and vision terms -- its exact contributions at a zero baseline."""
    m = dataset["text"].step_mask().astype(np.float64)
    count = np.maximum(m.sum(1), 1.0)
    return np.stack(
        [
            weights[0] * (dataset["text"].values[:, :, 0] * m).sum(1),
            weights[1] * (dataset["audio"].values[:, :, 0] * m).sum(1) / count,
            weights[2] * (dataset["vision"].values[:, :, 2] * m).sum(1) / count,
        ],
        1,
    )
