"""Shared fixtures for the feature-engine tests: planted paired embeddings and a tiny fake embedding model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

from modalens.features.sae import ReLUSAE, ReLUSAEConfig, TopKSAEConfig, train_sae

# tiny models and probes: one thread is far faster than BLAS/torch threads fighting other processes for 2 cores
torch.set_num_threads(1)
threadpool_limits(limits=1)


@dataclass
class Planted:
    """Paired embeddings built from known atoms: which atoms are image-only, text-only or shared."""

    image: np.ndarray
    text: np.ndarray
    atoms: np.ndarray  # [n_atoms, d]
    kinds: list[str]  # "vision" | "language" | "cross-modal" per atom
    presence: np.ndarray  # [N, n_atoms] bool: atom n is in pair n (its concept)


def make_planted(n: int = 400, d: int = 16, per_kind: int = 4, seed: int = 0) -> Planted:
    """Each pair holds one or two concepts; a vision atom shows only in the image, a language atom only in the text,
    a cross-modal atom in both. Atoms are orthonormal so the right answer is unambiguous."""
    rng = np.random.default_rng(seed)
    n_atoms = 3 * per_kind
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    atoms = q[:n_atoms].astype(np.float32)
    kinds = ["vision"] * per_kind + ["language"] * per_kind + ["cross-modal"] * per_kind
    presence = np.zeros((n, n_atoms), bool)
    for i in range(n):
        presence[i, rng.choice(n_atoms, size=rng.integers(1, 3), replace=False)] = True
    coef = presence * rng.uniform(0.5, 1.5, size=presence.shape)
    vis_mask = np.array([k != "language" for k in kinds])
    txt_mask = np.array([k != "vision" for k in kinds])
    image = (coef * vis_mask) @ atoms + 0.01 * rng.normal(size=(n, d))
    text = (coef * txt_mask) @ atoms + 0.01 * rng.normal(size=(n, d))
    return Planted(image.astype(np.float32), text.astype(np.float32), atoms, kinds, presence)


@pytest.fixture(scope="session")
def planted() -> Planted:
    return make_planted()


class FakeModel:
    """Satisfies the EmbeddingModel protocol: a random linear image tower over 3x8x8 images and a bag-of-words text
    tower, both L2-normalised, in torch."""

    def __init__(self, vocab: list[str], dim: int = 16, seed: int = 0) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.name = "fake"
        self.dim = dim
        self.vocab = {w: i for i, w in enumerate(vocab)}
        self.w_img = torch.randn(3 * 8 * 8, dim, generator=gen) / 8.0
        self.w_txt = torch.randn(len(vocab), dim, generator=gen)

    def preprocess_images(self, images) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(images), dtype=torch.float32)
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, 8, 8):
            raise ValueError(f"images must be [B, 3, 8, 8], got {tuple(x.shape)}")
        return x.clamp(0, 1)

    def image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(pixels.flatten(1) @ self.w_img, dim=1)

    def encode_images(self, images, batch_size: int = 64) -> np.ndarray:
        with torch.no_grad():
            return self.image_features(self.preprocess_images(images)).numpy().astype(np.float32)

    def encode_texts(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        bags = torch.zeros(len(texts), len(self.vocab))
        for i, t in enumerate(texts):
            for w in t.lower().split():
                if w in self.vocab:
                    bags[i, self.vocab[w]] += 1
        return torch.nn.functional.normalize(bags @ self.w_txt, dim=1).numpy().astype(np.float32)


@pytest.fixture(scope="session")
def fake_model() -> FakeModel:
    return FakeModel(["a", "photo", "of", "red", "green", "blue", "cat", "dog", "car"])


@dataclass
class AxisPairs:
    """Pairs on coordinate axes of R^16: axes 0-3 are vision concepts (image only), 4-7 language concepts (text
    only), 8-11 cross-modal concepts (both, same strength); every pair has one concept of each kind. ``label`` is the
    cross-modal concept (0..3), ``vision`` the vision concept; no noise, so answers are exact."""

    image: np.ndarray
    text: np.ndarray
    label: np.ndarray
    vision: np.ndarray
    language: np.ndarray
    class_emb: np.ndarray  # [4, 16]: the cross-modal axes, i.e. the class prompts


def make_axis_pairs(n: int = 200, seed: int = 0) -> AxisPairs:
    rng = np.random.default_rng(seed)
    eye = np.eye(16, dtype=np.float32)
    vis, lang, lab = rng.integers(0, 4, n), rng.integers(0, 4, n), rng.integers(0, 4, n)
    cv, cl, cx = (rng.uniform(0.5, 1.5, n)[:, None] for _ in range(3))
    image = cv * eye[vis] + cx * eye[8 + lab]
    text = cl * eye[4 + lang] + cx * eye[8 + lab]
    return AxisPairs(image.astype(np.float32), text.astype(np.float32), lab, vis, lang, eye[8:12].copy())


def make_axis_sae(d: int = 16) -> ReLUSAE:
    """An exact SAE: features j < d read relu(x_j), features d + j read relu(-x_j); decoding is lossless."""
    sae = ReLUSAE(ReLUSAEConfig(d_in=d, d_sae=2 * d))
    eye = torch.eye(d)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([eye, -eye], dim=1))
        sae.W_dec.copy_(torch.cat([eye, -eye], dim=0))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return sae.eval()


@pytest.fixture
def axis_sae() -> ReLUSAE:
    return make_axis_sae()


@pytest.fixture(scope="session")
def axis_pairs() -> AxisPairs:
    return make_axis_pairs()


@pytest.fixture(scope="session")
def trained_topk(planted):
    cfg = TopKSAEConfig(d_in=16, d_sae=24, k=2, epochs=60, batch_size=64, lr=3e-3, seed=0)
    return train_sae(cfg, planted.image, planted.text)
