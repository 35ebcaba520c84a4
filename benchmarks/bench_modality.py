"""Item 1: modality-level Shapley -- ``explain`` against the bare cost of the same 2**M batched forward passes."""

from __future__ import annotations

from typing import Any

import numpy as np
from common import Setup, best_of, glass_box_setup, reference_setup, table

import modalens as ml
from modalens.interactions.coalitions import coalition_batches


def measure(setup: Setup, batch_size: int, repeats: int) -> dict[str, Any]:
    # exactly the batches explain() feeds the model, built once outside the timing
    batches = [(v, k) for _, v, k in coalition_batches(setup.predictor, setup.dataset, batch_size=batch_size)]

    def floor() -> None:
        for values, masks in batches:
            setup.predictor.predict(values, masks)

    def ours() -> None:
        ml.explain(
            setup.predictor,
            setup.dataset,
            feature_method=None,
            templates=False,
            projection=None,
            batch_size=batch_size,
            progress=False,
        )

    floor()  # warm-up (torch kernels, caches)
    floor_times, ours_times = [], []
    for _ in range(repeats):  # interleaved, so both see the same background load
        floor_times.append(best_of(floor, 1)[0])
        ours_times.append(best_of(ours, 1)[0])
    f, o = min(floor_times), min(ours_times)
    m = len(setup.predictor.modalities)
    return {
        "model": setup.description,
        "instances": len(setup.dataset),
        "modalities": m,
        "model_rows": len(setup.dataset) * 2**m,
        "batch_size": batch_size,
        "floor_s": f,
        "explain_s": o,
        "overhead": o / f - 1.0,
        "floor_times": floor_times,
        "explain_times": ours_times,
    }


def run(quick: bool) -> dict[str, Any]:
    rows = [
        measure(glass_box_setup(20_000 if quick else 100_000), 4096, 5),
    ]
    ref = reference_setup()
    n = 256 if quick else 1024
    rows.append(measure(Setup(ref.predictor, ref.dataset.take(np.arange(n)), ref.description), 4096, 3 if quick else 9))
    text = table(
        "Modality-level Shapley: explain() vs the floor (2^M batched forward passes)",
        ["model", "N", "model rows", "floor s", "explain s", "overhead"],
        [
            [
                r["model"].split(";")[0],
                r["instances"],
                r["model_rows"],
                r["floor_s"],
                r["explain_s"],
                f"{100 * r['overhead']:+.1f}%",
            ]
            for r in rows
        ],
    )
    return {"rows": rows, "table": text}
