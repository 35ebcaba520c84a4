"""Item 3: feature engine -- SAE training throughput, MDS + interpretability metrics time, peak memory.

Random data of the right shapes: CLIP-like 512-d paired embeddings, 16,384 SAE features, sparse non-negative
activations (TopK-like, 32 active per row). 100,000 pairs x 16,384 features (6.5 GB per modality in float32) does
not fit beside other work on this machine; quick mode measures smaller sizes and the table says which are measured.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
from common import table, trace_rss

from modalens.features.mds import analyze_mds
from modalens.features.metrics import emb_sim, top_activating
from modalens.features.sae import TopKSAEConfig, train_sae

D_IN, D_SAE = 512, 16_384


def sae_throughput(n_pairs: int) -> dict[str, Any]:
    """Samples/s of training: (time(3 epochs) - time(1 epoch)) / 2 removes set-up and final evaluation."""
    rng = np.random.default_rng(0)
    img = rng.standard_normal((n_pairs, D_IN)).astype(np.float32)
    txt = rng.standard_normal((n_pairs, D_IN)).astype(np.float32)
    times = {}
    with trace_rss() as trace:
        for epochs in (1, 3):
            cfg = TopKSAEConfig(d_in=D_IN, d_sae=D_SAE, k=32, epochs=epochs, batch_size=256)
            start = time.perf_counter()
            train_sae(cfg, img, txt)
            times[epochs] = time.perf_counter() - start
    epoch = max((times[3] - times[1]) / 2, 1e-9)
    return {
        "pairs": n_pairs,
        "rows_per_epoch": 2 * n_pairs,
        "epoch_s": epoch,
        "samples_per_s": 2 * n_pairs / epoch,
        "peak_rss_mb": trace.peak_above_start() / 2**20,
    }


def sparse_acts(rng: np.random.Generator, n: int, f: int, active: int = 32) -> np.ndarray:
    acts = np.zeros((n, f), np.float32)
    cols = rng.integers(0, f, size=(n, active))
    acts[np.arange(n)[:, None], cols] = rng.exponential(1.0, size=(n, active)).astype(np.float32)
    return acts


def mds_metrics(n_pairs: int, n_features: int, n_boot: int) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    img, txt = sparse_acts(rng, n_pairs, n_features), sparse_acts(rng, n_pairs, n_features)
    ref = rng.standard_normal((n_pairs, D_IN)).astype(np.float32)
    with trace_rss() as trace:
        start = time.perf_counter()
        analyze_mds(img, txt, n_boot=n_boot)
        t_mds = time.perf_counter() - start
        start = time.perf_counter()
        index, _ = top_activating(img, k=20)
        emb_sim(index, ref)
        t_metrics = time.perf_counter() - start
    return {
        "pairs": n_pairs,
        "features": n_features,
        "n_boot": n_boot,
        "mds_s": t_mds,
        "metrics_s": t_metrics,
        "input_mb": 2 * img.nbytes / 2**20,
        "peak_rss_mb": trace.peak_above_start() / 2**20,
    }


def run(quick: bool) -> dict[str, Any]:
    sae = [sae_throughput(n) for n in ((2048,) if quick else (2048, 8192))]
    sizes = [(2_000, D_SAE), (10_000, 1_024)] if quick else [(2_000, D_SAE), (10_000, D_SAE), (100_000, 1_024)]
    if os.environ.get("MODALENS_BENCH_HUGE"):  # the size: 13 GB of activations, needs ~16 GB free
        sizes.append((100_000, D_SAE))
    mds = [mds_metrics(n, f, n_boot=100) for n, f in sizes]
    # linear extrapolation in pairs x features to the target size, labelled as such
    per_cell = max(r["mds_s"] + r["metrics_s"] for r in mds) / max(r["pairs"] * r["features"] for r in mds)
    target_est = per_cell * 100_000 * D_SAE
    text = table(
        f"SAE training throughput (TopK, d_in={D_IN}, d_sae={D_SAE}, batch 256, CPU)",
        ["pairs", "rows per epoch", "epoch s", "samples/s", "peak RSS MB"],
        [[r["pairs"], r["rows_per_epoch"], r["epoch_s"], r["samples_per_s"], r["peak_rss_mb"]] for r in sae],
    )
    text += "\n" + table(
        "MDS (bootstrap 100) + metrics (top-20, EmbSim), measured",
        ["pairs", "features", "MDS s", "metrics s", "input MB", "peak RSS MB"],
        [[r["pairs"], r["features"], r["mds_s"], r["metrics_s"], r["input_mb"], r["peak_rss_mb"]] for r in mds],
    )
    text += (
        f"\nEXTRAPOLATED (linear in pairs x features, not measured): 100,000 pairs x {D_SAE} features "
        f"~ {target_est:.0f} s; activations alone 13 GB in float32.\n"
    )
    return {"sae": sae, "mds": mds, "extrapolated_100k_x_16384_s": target_est, "table": text}
