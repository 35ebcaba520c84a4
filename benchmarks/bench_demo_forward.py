"""Model rows per CPU-second of the demo's MulT model: the inference pass against the plain pass, on the very calls
``modalens demo`` makes (the steps and features walks of the first 40 test utterances, one torch thread).

Usage: ``python benchmarks/bench_demo_forward.py [REPEATS]``. Prints the best of REPEATS (default 5) interleaved
timings of each pass and the largest difference of their outputs. See docs/benchmarks.md, "make demo".
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from modalens.data.demo import load_demo
from modalens.interactions.attribution import permutation_shapley
from modalens.models import Masker, reference
from modalens.models.predictor import TorchPredictor
from modalens.models.training import load_pretrained


def main(repeats: int) -> None:
    full = load_demo()
    ds = full.split("test")
    pred = load_pretrained("mult").to_predictor()
    pred.masker = Masker("mean").fit(full.split("train"))  # as the demo does
    torch.set_num_threads(1)
    calls = []
    plain_call = TorchPredictor._call

    def capture(self, values, masks):
        calls.append((values, masks))
        return plain_call(self, values, masks)

    TorchPredictor._call = capture
    try:
        for g in ("steps", "features"):
            permutation_shapley(pred, ds, granularity=g, n_permutations=4, seed=0, index=np.arange(40), progress=False)
    finally:
        TorchPredictor._call = plain_call
    rows = sum(len(next(iter(v.values()))) for v, _ in calls)
    hooked = reference._hooked
    best, outs = {}, {}
    try:
        for _ in range(repeats):
            for name in ("plain", "inference"):
                # the plain pass is the one a hooked model takes
                reference._hooked = (lambda _m: True) if name == "plain" else hooked
                clock = time.process_time()
                outs[name] = np.concatenate([pred._call(v, m) for v, m in calls])
                best[name] = min(best.get(name, np.inf), time.process_time() - clock)
    finally:
        reference._hooked = hooked
    for name, seconds in best.items():
        print(f"{name}: {rows} rows in {seconds:.2f} CPU-s, {rows / seconds:,.0f} rows per CPU-second")
    print(f"largest output difference {np.abs(outs['plain'] - outs['inference']).max():.2e}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
