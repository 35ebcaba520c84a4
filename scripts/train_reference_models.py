"""Train the three reference architectures on the embedded demo dataset and commit their weights.

For each architecture this writes ``src/modalens/models/weights/<arch>/`` holding ``config.json``,
``model.safetensors`` and ``metrics.json`` (test and best-validation metrics as measured, epochs, timing), and
prints a Markdown table of the test metrics for the README. CPU only, seeded, a few minutes in all:

    python scripts/train_reference_models.py            # all three, 2 threads
    python scripts/train_reference_models.py -a mult --epochs 60
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from modalens.cli.train import write_metrics
from modalens.models.reference import ARCHITECTURES
from modalens.models.training import WEIGHTS_DIR, evaluate, load_model, save_model, train

# Per-architecture settings of the committed run; everything else is the architecture's default config. Epoch caps
# keep each model under ~3 CPU minutes (MulT's epochs cost ~4x an LSTM's); early stopping usually ends the LSTMs first.
LEARNING_RATES = {"early_lstm": 2e-3, "late_lstm": 2e-3, "mult": 1e-3}
EPOCHS = {"early_lstm": 40, "late_lstm": 40, "mult": 13}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-a", "--architecture", action="append", choices=list(ARCHITECTURES), help="default: all")
    parser.add_argument("--epochs", type=int, default=None, help="default: per architecture (EPOCHS)")
    parser.add_argument("--lr", type=float, default=None, help="default: per architecture (LEARNING_RATES)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the committed run used 1)")
    parser.add_argument("--time-limit", type=float, default=600.0, help="guard: seconds of training per model")
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    args = parser.parse_args(argv)

    from modalens.data.demo import load_demo

    torch.set_num_threads(args.threads)
    dataset = load_demo()
    print(repr(dataset), file=sys.stderr)
    rows = []
    for arch in args.architecture or list(ARCHITECTURES):
        started = time.perf_counter()
        module, history = train(
            dataset,
            arch,
            epochs=args.epochs or EPOCHS[arch],
            lr=args.lr or LEARNING_RATES[arch],
            batch_size=args.batch_size,
            patience=args.patience,
            seed=args.seed,
            time_limit=args.time_limit,
        )
        target = args.out / arch
        save_model(module, module.config, target, meta={"history": history.to_dict(), "dataset": dataset.describe()})
        write_metrics(target, history, dataset, source="modalens.data.demo.load_demo()")
        # Check what was committed: the reloaded weights reproduce the measured test metrics.
        if history.test is not None:
            again = evaluate(load_model(target), dataset, np.flatnonzero(dataset.splits == "test"))["mae"]
            if abs(again - history.test["mae"]) > 1e-6:
                raise RuntimeError(
                    f"{target}: reloaded weights give test MAE {again}, training measured {history.test}"
                )
        size_kb = (target / "model.safetensors").stat().st_size / 1024
        test = history.test or {}
        rows.append((arch, test, history.best_epoch, len(history.epochs), time.perf_counter() - started, size_kb))
        print(json.dumps({"architecture": arch, "test": history.to_dict()["test"]}), file=sys.stderr)

    print(
        "| model | MAE | Pearson r | Acc-2 (non-neg) | F1 (non-neg) | Acc-2 (non-zero) | F1 (non-zero) | Acc-7 |"
        " epochs (best) | train s | weights |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for arch, t, best, ran, seconds, kb in rows:
        cells = [
            t.get(k, float("nan"))
            for k in ("mae", "corr", "acc2_nonneg", "f1_nonneg", "acc2_nonzero", "f1_nonzero", "acc7")
        ]
        print(
            f"| {arch} | "
            + " | ".join(f"{c:.3f}" for c in cells)
            + f" | {ran} ({best}) | {seconds:.0f} | {kb:.0f} KB |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
