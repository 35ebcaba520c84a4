"""Run the benchmarks: print Markdown tables and write JSON (with the machine) under benchmarks/results/.

    python benchmarks/run.py                  # everything, full sizes (tens of minutes on 2 cores)
    python benchmarks/run.py --quick          # smaller sizes, a few minutes
    python benchmarks/run.py --only attribution --only modality

Not part of the test gate: timings depend on the machine and on what else runs on it. Every results file records
the machine (CPU, cores, memory, GPU, library versions) next to the figures.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the bench_* modules import `common` as a sibling

from common import RESULTS_DIR, machine_info, write_json  # noqa: E402

BENCHMARKS = {
    "modality": "bench_modality",  # explain() at modality level vs the bare 2^M forward passes
    "attribution": "bench_attribution",  # error vs time against shap and captum
    "features": "bench_features",  # SAE throughput, MDS + metrics time and memory
    "scaling": "bench_scaling",  # every stage at 1k / 10k / 100k instances
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes: a few minutes in all")
    parser.add_argument("--only", action="append", choices=list(BENCHMARKS), help="run only these (repeatable)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="folder for the JSON and Markdown results")
    args = parser.parse_args(argv)

    machine = machine_info()
    print(f"machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gb']} GB, GPU: {machine['gpu']}")
    report = [
        f"machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gb']} GB RAM, "
        f"GPU: {machine['gpu'] or 'none'}, torch threads {machine['torch_threads']}\n"
    ]
    for name in args.only or list(BENCHMARKS):
        module = importlib.import_module(BENCHMARKS[name])
        print(f"\n== {name} ==", flush=True)
        start = time.perf_counter()
        result = module.run(args.quick)
        seconds = time.perf_counter() - start
        print(result["table"], flush=True)
        payload = {"benchmark": name, "quick": args.quick, "seconds": seconds, "machine": machine, **result}
        path = write_json(name, payload, args.out)
        report.append(result["table"])
        print(f"({seconds:.0f} s; written {path})", flush=True)
    suffix = ("-quick" if args.quick else "") + ("-" + "-".join(args.only) if args.only else "")
    (args.out / f"summary{suffix}.md").write_text("\n".join(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
