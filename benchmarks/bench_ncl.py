"""NCL against a TopK SAE of the same width on the demo pairs: sparsity (L0) and the cost of the interventions.

The setting of issue #13: 1,000 demo pairs (class-balanced), 1,024 features, 20 epochs. Three extractors:
NCL as it was (plain ReLU codes, ``k=None``), NCL with its current default (the 32 largest codes kept), and the
TopK SAE the demo uses (k = 16). For each: L0, explained variance, dead features, categories, and the seconds of
group ablation (zero-shot accuracy and retrieval) and concept removal (the shade attribute, cross-validated
probes) -- the two interventions a study always runs -- timed one after the other on one thread each; then the
rest of what ``run_feature_study`` runs: steering towards three features (with random-direction controls) and, when
the image tower is installed, the attack on 8 images (20 PGD steps through EfficientNet-Lite0).

    python benchmarks/bench_ncl.py [--pairs 1000] [--epochs 20] [--out benchmarks/results/ncl.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from modalens.features.demo import balanced_subset, demo_model, load_demo_assets, subset_assets
from modalens.features.interventions import concept_removal, feature_attack, group_ablation, steering_retrieval
from modalens.features.mds import analyze_dominance
from modalens.features.sae import train_extractor

SETTINGS = [
    ("ncl, plain ReLU codes (before)", "ncl", {"k": None}),
    ("ncl, top 32 codes (default now)", "ncl", {}),
    ("topk SAE, k = 16 (the demo's)", "topk", {"k": 16}),
]


def measure(name: str, extractor: str, options: dict, assets, epochs: int, model=None) -> dict:
    t0 = time.perf_counter()
    result = train_extractor(extractor, assets.image_emb, assets.text_emb, d_sae=1024, epochs=epochs, **options)
    train_s = time.perf_counter() - t0
    ext = result.extractor
    acts = {"image": ext.encode_numpy(assets.image_emb), "text": ext.encode_numpy(assets.text_emb)}
    dom = analyze_dominance(acts, n_boot=0)
    task = {"class_text_emb": assets.class_prompt_emb, "labels": assets.labels}
    t0 = time.perf_counter()
    ablation = group_ablation(ext, assets.image_emb, assets.text_emb, dom.categories, **task)
    ablation_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    concept_removal(ext, assets.image_emb, assets.attribute, dom.categories, **task)
    removal_s = time.perf_counter() - t0
    # the features the study steers towards and attacks: the most frequent image-active one of each category
    freq = (acts["image"] > 0).mean(axis=0) + (acts["text"] > 0).mean(axis=0)
    chosen = [
        int(np.flatnonzero(dom.categories == c)[np.argmax(freq[dom.categories == c])])
        for c in ("vision", "language", "cross-modal")
        if (dom.categories == c).any()
    ]
    t0 = time.perf_counter()
    for j in chosen:
        if (acts["image"][:, j] > 0).any():
            steering_retrieval(ext, assets.text_emb[:200], assets.image_emb, j, alphas=(0, 0.5, 1), k=10, n_random=3)
    steering_s = time.perf_counter() - t0
    attack_s = None
    if model is not None:
        t0 = time.perf_counter()
        feature_attack(model, ext, list(assets.images[:8]), [chosen[0]], class_text_emb=assets.class_prompt_emb)
        attack_s = time.perf_counter() - t0
    zs = ablation[ablation.metric == "zero_shot_accuracy"].set_index("group")
    m = result.metrics
    return {
        "setting": name,
        "extractor": extractor,
        "options": {k: v for k, v in options.items()},
        "l0": m["l0"],
        "l0_image": m["image"]["l0"],
        "l0_text": m["text"]["l0"],
        "explained_variance": m["explained_variance"],
        "n_dead": m["n_dead"],
        "proportions": dom.proportions(),
        "zero_shot_before": float(zs["before"].iloc[0]),
        "zero_shot_after_cross_modal_ablation": float(zs.loc["cross-modal", "after"])
        if "cross-modal" in zs.index
        else None,
        "train_s": train_s,
        "group_ablation_s": ablation_s,
        "concept_removal_s": removal_s,
        "interventions_s": ablation_s + removal_s,
        "steering_s": steering_s,
        "attack_s": attack_s,
        "all_interventions_s": ablation_s + removal_s + steering_s + (attack_s or 0.0),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "ncl.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    assets = load_demo_assets()
    assets = subset_assets(assets, balanced_subset(assets.labels, args.pairs))
    model = demo_model(assets)
    rows = []
    with threadpool_limits(limits=1):
        for name, extractor, options in SETTINGS:
            row = measure(name, extractor, options, assets, args.epochs, model)
            rows.append(row)
            print(json.dumps(row), flush=True)
    sae = rows[-1]
    print("\n| extractor | L0 | L0 / SAE's | explained variance | dead | interventions s | / SAE's |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['setting']} | {r['l0']:.1f} | {r['l0'] / sae['l0']:.2f} | {r['explained_variance']:.3f} | "
            f"{r['n_dead']} | {r['interventions_s']:.1f} (ablation {r['group_ablation_s']:.1f} + removal "
            f"{r['concept_removal_s']:.1f}) | {r['interventions_s'] / sae['interventions_s']:.2f} |"
        )
    print("\n| extractor | steering s | attack s | all interventions s | / SAE's |")
    print("|---|---|---|---|---|")
    for r in rows:
        attack = f"{r['attack_s']:.1f}" if r["attack_s"] is not None else "-"
        print(
            f"| {r['setting']} | {r['steering_s']:.1f} | {attack} | {r['all_interventions_s']:.1f} | "
            f"{r['all_interventions_s'] / sae['all_interventions_s']:.2f} |"
        )
    out = {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": 1,
        },
        "settings": {"pairs": args.pairs, "epochs": args.epochs, "d_sae": 1024},
        "rows": rows,
    }
    Path(args.out).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
