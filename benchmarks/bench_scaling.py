"""Item 4: every explain() stage at 1k, 10k (and 100k) instances -- time and peak RSS, and how they grow."""

from __future__ import annotations

import tracemalloc
from typing import Any

import numpy as np
from common import glass_box_setup, table, trace_rss

import modalens as ml

STAGES = ("modality", "features", "templates", "projection")


def measure(n: int) -> dict[str, Any]:
    setup = glass_box_setup(n, seed=1)
    with trace_rss() as trace:
        expl = ml.explain(setup.predictor, setup.dataset, n_permutations=2, projection="pca", progress=False, seed=0)
    # stages run one after the other: their windows follow from the cumulative timings
    out: dict[str, Any] = {"instances": n, "stages": {}}
    t = 0.0
    for stage in STAGES:
        if stage not in expl.timings:
            continue
        d = expl.timings[stage]
        out["stages"][stage] = {"seconds": d, "peak_rss_mb": trace.peak_above_start(t, t + d) / 2**20}
        t += d
    out["total_s"] = sum(expl.timings.values())
    # RSS includes what the allocator keeps after freeing (arenas, fragmentation), which blurs how memory grows;
    # a second, untimed run under tracemalloc (numpy reports its buffers to it) gives the allocated peak.
    tracemalloc.start()
    ml.explain(setup.predictor, setup.dataset, n_permutations=2, projection="pca", progress=False, seed=0)
    out["traced_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    out["peak_rss_mb"] = trace.peak_above_start() / 2**20
    out["dataset_mb"] = sum(m.values.nbytes for m in setup.dataset.modalities.values()) / 2**20
    return out


def growth(rows: list[dict[str, Any]], key: str) -> dict[str, float]:
    """Log-log slope of time (or memory) against N per stage: 1 is linear."""
    out = {}
    n = np.array([r["instances"] for r in rows], float)
    for stage in STAGES:
        y = np.array([r["stages"].get(stage, {}).get(key, np.nan) for r in rows], float)
        ok = np.isfinite(y) & (y > 0)
        if ok.sum() >= 2:
            out[stage] = float(np.polyfit(np.log(n[ok]), np.log(y[ok]), 1)[0])
    return out


def run(quick: bool) -> dict[str, Any]:
    sizes = (1_000, 10_000) if quick else (1_000, 10_000, 100_000)
    rows = [measure(n) for n in sizes]
    slopes = {"time": growth(rows, "seconds"), "memory": growth(rows, "peak_rss_mb")}
    n = np.log([r["instances"] for r in rows])
    slopes["traced_peak"] = float(np.polyfit(n, np.log([r["traced_peak_mb"] for r in rows]), 1)[0])
    body = []
    for r in rows:
        for stage, s in r["stages"].items():
            body.append([r["instances"], stage, s["seconds"], s["peak_rss_mb"]])
    text = table(
        "Scaling (glass-box model, n_permutations=2, PCA projection)",
        ["N", "stage", "seconds", "peak RSS above start, MB"],
        body,
    )
    text += (
        "\nlog-log slope vs N (1 = linear): "
        + ", ".join(
            f"{s}: time {slopes['time'].get(s, float('nan')):.2f} / memory {slopes['memory'].get(s, float('nan')):.2f}"
            for s in STAGES
        )
        + "\n"
    )
    peaks = ", ".join(f"N={r['instances']}: {r['traced_peak_mb']:.1f} MB" for r in rows)
    text += f"\nallocated peak of a whole explain() run (tracemalloc): {peaks}; slope {slopes['traced_peak']:.2f}\n"
    return {"rows": rows, "slopes": slopes, "table": text}
