"""Two real image-text models on the same pairs, their feature runs, and the comparison (docs/features.md).

Model A is the demo's two-tower model (EfficientNet-Lite0 pooled 1280-d + all-MiniLM-L6-v2, 256-d projections):
its embeddings of the 2,000 held-out demo pairs are the committed demo assets. Model B is built here from other
frozen features that install offline, trained with the same CLIP loss (``two_tower.train_projections``):

- image: EfficientNet-Lite0 cut after its 8th block (end of the 80-channel stage, stride 16), mean- and
  standard-deviation-pooled: 160-d mid-level features instead of the last layer's 1280;
- text: latent semantic analysis of the captions (TF-IDF of words, truncated SVD to 128-d, fitted on the training
  captions) instead of a transformer sentence encoder;
- projections to 128-d, trained on 3,000 Fashion-MNIST *training* images (300 per class) captioned from the demo's
  templates (lemmas and glosses read back from the demo's captions), 60 epochs, seed 0.

Both models then embed the same 2,000 demo pairs (images and captions), the same study runs on both (TopK SAE,
1,024 features, k = 16, 30 epochs, 200 bootstrap resamples, 20 null replicates, references independent of both
towers), and the runs are compared: MDS distributions, category shares with intervals and chance, and features
matched by activation over the shared pairs.

    python scripts/build_features_comparison.py --out runs/two-models [--json FILE]

Needs the ``features`` extra and Debian's ``dataset-fashion-mnist``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from modalens.features.compare import compare_runs, load_runs  # noqa: E402
from modalens.features.demo import load_demo_assets, reference_embeddings, run_demo  # noqa: E402
from modalens.features.embeddings import images_to_tensor, l2_normalise  # noqa: E402
from modalens.features.study import run_feature_study  # noqa: E402
from modalens.features.two_tower import EfficientNetLiteTower, ProjectionConfig, train_projections  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BLOCKS = 8  # EfficientNet-Lite0 blocks kept (0..7: up to the end of the 80-channel stage)


def _demo_builder():
    spec = importlib.util.spec_from_file_location("build_features_demo", REPO / "scripts/build_features_demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class MidLevelTower(torch.nn.Module):
    """EfficientNet-Lite0's stem and first ``blocks`` blocks, mean- and sd-pooled over space."""

    def __init__(self, blocks: int = BLOCKS, image_size: int = 128) -> None:
        super().__init__()
        self.full = EfficientNetLiteTower(image_size=image_size)
        self.blocks = blocks
        self.image_size = image_size

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        net = self.full.net
        x = (pixels * 255.0 - 127.0) / 128.0
        x = net._swish(net._bn0(net._conv_stem(x)))
        for block in net._blocks[: self.blocks]:
            x = block(x, drop_connect_rate=None)
        return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1)

    def encode(self, images, batch: int = 128) -> np.ndarray:
        out = []
        with torch.no_grad():
            for i in range(0, len(images), batch):
                out.append(self(images_to_tensor(list(images[i : i + batch]), self.image_size)).numpy())
        return np.concatenate(out)


def lemmas_from_captions(captions, class_names):
    """Per class: the synonyms and the gloss the demo's captions use (its caption templates read backwards)."""
    syns = {c: set() for c in class_names}
    gloss = {}
    for cap, cls in captions:
        m = re.fullmatch(r"a (.+?): (.+)\.", cap)
        if m:
            syns[cls].add(m.group(1))
            gloss[cls] = m.group(2)
            continue
        m = re.fullmatch(r"a (?:black and white|product) photo of a (.+)\.", cap)
        if m:
            syns[cls].add(m.group(1))
    return {c: sorted(s) for c, s in syns.items()}, gloss


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/two-models")
    ap.add_argument("--json", default=str(REPO / "benchmarks/results/features-two-models.json"))
    ap.add_argument("--fashion-dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--train-per-class", type=int, default=300)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    timings = {}
    out = Path(args.out)
    builder = _demo_builder()
    assets = load_demo_assets()
    names = assets.class_names
    rng = np.random.default_rng(args.seed)

    # training pairs for model B: Fashion-MNIST train images, captions from the demo's templates
    train_x, train_y = builder.load_fashion_mnist(Path(args.fashion_dir), "train")
    idx = builder.pick(train_y, args.train_per_class, rng)
    tr_img, tr_lab = train_x[idx], train_y[idx]
    tr_shade = builder.shade_labels(builder.brightness(tr_img), tr_lab)
    syns, gloss = lemmas_from_captions(zip(assets.captions, assets.meta["class_name"], strict=True), names)
    tr_cap = []
    for lab, sh in zip(tr_lab, tr_shade, strict=True):
        cls = names[lab]
        template = builder.TEMPLATES[rng.integers(len(builder.TEMPLATES))]
        syn = syns[cls][rng.integers(len(syns[cls]))] if syns[cls] else cls
        tr_cap.append(template.format(name=cls, syn=syn, gloss=gloss.get(cls, cls), shade=builder.SHADES[sh]))

    # model B's frozen towers
    t0 = time.perf_counter()
    tower = MidLevelTower()
    tr_f = tower.encode(tr_img)
    de_f = tower.encode(assets.images)
    timings["image_tower_s"] = time.perf_counter() - t0
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    t0 = time.perf_counter()
    tfidf = TfidfVectorizer(token_pattern=r"[a-z][a-z-]+", lowercase=True).fit(tr_cap)
    svd = TruncatedSVD(n_components=min(128, len(tfidf.vocabulary_) - 1), random_state=args.seed)
    tr_t = l2_normalise(svd.fit_transform(tfidf.transform(tr_cap)).astype(np.float32))
    prompts = [builder.PROMPT.format(name=n) for n in names]

    def lsa(texts):
        return l2_normalise(svd.transform(tfidf.transform(texts)).astype(np.float32))

    timings["text_tower_s"] = time.perf_counter() - t0
    torch.set_num_threads(1)
    config = ProjectionConfig(
        dim=128,
        image_size=128,
        image_tower=f"efficientnet-lite0 blocks 0-{BLOCKS - 1}",
        text_tower="LSA (TF-IDF + SVD 128)",
        name="two-tower EfficientNet-Lite0 mid-level + LSA",
    )
    trained = train_projections(tr_f, tr_t, config=config, epochs=args.epochs, seed=args.seed, progress=False)
    timings["train_projections_s"] = trained.seconds
    heads = trained.heads
    with torch.no_grad():
        img_b = heads.project_image(torch.from_numpy(de_f)).numpy()
        txt_b = heads.project_text(torch.from_numpy(lsa(assets.captions))).numpy()
        cls_b = heads.project_text(torch.from_numpy(lsa(prompts))).numpy()
    zs_b = float(((img_b @ cls_b.T).argmax(1) == assets.labels).mean())
    zs_a = float(((assets.image_emb @ assets.class_prompt_emb.T).argmax(1) == assets.labels).mean())
    print(f"zero-shot accuracy on the 2,000 demo pairs: model A {zs_a:.3f}, model B {zs_b:.3f}")

    # the same study on both
    study = {"d_sae": 1024, "epochs": 30, "topk": 16, "n_boot": 200, "seed": args.seed}
    t0 = time.perf_counter()
    study_a, path_a = run_demo(out / "model-a", attack_images=0, overwrite=args.overwrite, **study)
    timings["study_a_s"] = time.perf_counter() - t0
    image_ref, text_ref = reference_embeddings(assets)
    t0 = time.perf_counter()
    study_b = run_feature_study(
        img_b,
        txt_b,
        extractor="topk",
        d_sae=study["d_sae"],
        extractor_options={"k": study["topk"], "epochs": study["epochs"]},
        n_boot=study["n_boot"],
        reference_image_emb=image_ref,
        reference_text_emb=text_ref,
        texts=assets.captions,
        labels=[names[c] for c in assets.labels],
        images=list(assets.images),
        class_text_emb=cls_b,
        class_labels=assets.labels,
        class_names=names,
        attribute=assets.attribute,
        model_info={
            "name": config.name,
            "dim": 128,
            "image_tower": config.image_tower,
            "text_tower": config.text_tower,
            "projection": "linear, CLIP loss, 60 epochs on 3,000 Fashion-MNIST training pairs",
            "zero_shot_accuracy": zs_b,
        },
        attack_images=0,
        seed=args.seed,
    )
    path_b = study_b.save(out / "model-b", overwrite=args.overwrite)
    timings["study_b_s"] = time.perf_counter() - t0

    runs = load_runs([path_a, path_b])
    result = compare_runs(runs, match="activation")
    for r in result["runs"]:
        print(json.dumps(r))
    for p in result["pairs"]:
        print(json.dumps(p["summary"]))
    doc = {
        "models": {
            "a": {"name": study_a.model.get("name"), "dim": 256, "zero_shot_accuracy": zs_a},
            "b": {"name": config.name, "dim": 128, "zero_shot_accuracy": zs_b},
        },
        "study": study,
        "runs": result["runs"],
        "pairs": [p["summary"] for p in result["pairs"]],
        "timings": timings,
        "extractor_metrics": {"a": study_a.extractor_metrics, "b": study_b.extractor_metrics},
    }
    Path(args.json).write_text(json.dumps(doc, indent=1, default=float))
    print(f"runs in {out}; figures in {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
