"""A run of the additive glass-box model explained by ``modalens explain`` with ``--granularities steps features
cells``, and the known answer of its feature x step cells.

The glass box (:func:`modalens.models.glass_box.glass_box_model`) is ``w_t * sum_t valence_t + w_a * mean_t F0_t +
w_v * mean_t AU12_t`` over the real steps. Masking a cell puts the baseline ``b`` there, so the model is additive
in its cells and each cell's Shapley value is exactly its own term: ``w_t * (valence_t - b)`` for text,
``w_a * (F0_t - b) / steps`` for audio, ``w_v * (AU12_t - b) / steps`` for vision, and 0 for every other feature.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modalens.data.native import load_dataset, save_dataset
from modalens.data.synthetic import GLASS_BOX_WEIGHTS, make_synthetic

GLASS_SPEC = "modalens.models.glass_box:glass_box_model"
READ = {"text": ("valence", GLASS_BOX_WEIGHTS[0], False), "audio": ("F0", GLASS_BOX_WEIGHTS[1], True),
        "vision": ("AU12", GLASS_BOX_WEIGHTS[2], True)}  # fmt: skip


def write_glass_cells_run(folder: Path, n: int = 40, seed: int = 5) -> Path:
    """``modalens explain`` of the glass box over the synthetic set's test split, with every granularity."""
    from modalens.cli.main import main

    save_dataset(make_synthetic(n, seed=seed), folder / "data.npz")
    out = folder / "glass-cells"
    argv = [
        "explain", str(folder / "data.npz"), "--model", GLASS_SPEC, "--out", str(out),
        "--feature-method", "permutation", "--granularities", "steps", "--granularities", "features",
        "--granularities", "cells", "--no-templates", "--projection", "none", "--n-permutations", "4",
    ]  # fmt: skip
    with pytest.raises(SystemExit) as done:  # typer ends the command with sys.exit(0)
        main(argv)
    assert done.value.code in (0, None)
    return out


def expected_cells(run: Path, instance: int) -> dict[tuple[str, int, str], float]:
    """``(modality, position, feature) -> value`` of every cell of one instance's real steps (the known answer)."""
    from modalens.cli.live_model import live_predictor

    data = load_dataset(run / "dataset.npz")
    masker = live_predictor(run, GLASS_SPEC).masker  # the baselines the run was explained with
    real = data["text"].step_mask()[instance].astype(bool)  # the glass box counts text's real steps
    steps = int(real.sum())
    out: dict[tuple[str, int, str], float] = {}
    for m, (feature, weight, mean) in READ.items():
        mod = data[m]
        values = mod.values[instance]
        base = masker.baseline(m, values.shape[0], values.shape[1])
        d = list(mod.feature_names).index(feature)
        for t in np.flatnonzero(mod.step_mask()[instance]):
            for k, name in enumerate(mod.feature_names):
                v = weight * (float(values[t, d]) - float(base[t, d])) if k == d and real[t] else 0.0
                out[(m, int(t), str(name))] = v / steps if mean and k == d else v
    return out
