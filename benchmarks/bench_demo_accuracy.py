"""Attribution error of `modalens demo` runs against a 64-walk reference on 20 of the 600 test utterances.

Usage: ``python benchmarks/bench_demo_accuracy.py RUN [RUN ...]`` (runs written by ``modalens demo --no-serve --out
RUN``). Prints, per run and granularity, the mean absolute difference to the reference divided by the mean |value|
of the reference (its own error at 64 walks adds about 3 % to a 4-walk run's figure). See docs/benchmarks.md, "make
demo".
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd

from modalens.data.demo import load_demo
from modalens.interactions.attribution import permutation_shapley
from modalens.models import Masker
from modalens.models.training import load_pretrained


def main(runs: list[str]) -> None:
    full = load_demo()
    ds = full.split("test")
    pred = load_pretrained("mult").to_predictor()
    pred.masker = Masker("mean").fit(full.split("train"))  # as the demo does
    idx = np.arange(0, len(ds), 30)  # 20 utterances spread over the split
    clock = time.perf_counter()
    ref = pd.concat(
        permutation_shapley(pred, ds, granularity=g, n_permutations=64, seed=123, index=idx, progress=False).to_frame(
            ds
        )
        for g in ("steps", "features")
    )
    print(f"reference: {len(ref)} values in {time.perf_counter() - clock:.1f} s")
    key = ["instance", "modality", "position", "feature"]
    for run in runs:
        fa = pd.read_parquet(f"{run}/feature_attributions.parquet")
        both = fa[fa["instance"].isin(idx)].merge(ref, on=key, suffixes=("", "_ref"))
        for name, part in (("steps", both[both["feature"] == "*"]), ("features", both[both["position"] < 0])):
            err = np.abs(part["value"] - part["value_ref"]).mean() / np.abs(part["value_ref"]).mean()
            print(f"{run} {name}: {len(part)} values, relative error {err:.4f}")


if __name__ == "__main__":
    main(sys.argv[1:])
