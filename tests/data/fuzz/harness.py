"""Run fuzz cases in child processes with a memory cap and a timeout, and tally how each ended.

A child (``worker.py``, its address space capped at 2 GiB by ``setrlimit`` before it imports anything) loads many
files in turn; a crash (a negative return code), a death or a hang is attributed to the case the child had
announced and not finished, and a fresh child carries on after it. Outcomes: ``error``,
``unnamed``, ``ok``, ``mismatch``, ``other`` (from the child, see ``worker.py``), and ``crash``, ``died``,
``timeout`` (seen by the parent).

Run it by hand to measure (``python -m tests.data.fuzz.harness --cases 600``); ``--src`` points the children at
another checkout's ``src`` (the code before a change).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

WORKER = Path(__file__).with_name("worker.py")
GOOD = ("error", "ok")
MEMORY_CAP = 2 << 30  # address space of a child
CHILD_MAX_BYTES = "128M"  # MODALENS_MAX_BYTES in a child: the loaders' caps fire well before the address-space cap
CASES_PER_CHILD = 1000  # a fresh child after this many files, so what one file leaves behind cannot pile up


@dataclass
class Case:
    """One file to load: its format, its origin (``seed:mutation`` or the hostile case's name), the mode and, for a
    crafted case, the outcome it must have."""

    format: str
    path: Path
    label: str
    mode: str = "load"
    out: str = ""
    expect: str = "error"  # for crafted cases: "error", or "ok" where the damage leaves a readable file


def _reader(stream, lines: queue.Queue) -> None:
    for line in iter(stream.readline, ""):
        lines.put(line)
    lines.put(None)


def run_cases(cases: list[Case], *, timeout: float = 20.0, src: str | None = None) -> list[dict]:
    """Run every case; returns one result dict per case (``outcome`` plus details), in order."""
    results: list[dict | None] = [None] * len(cases)
    with tempfile.TemporaryDirectory(prefix="modalens-fuzz-") as tmp:
        manifest = Path(tmp) / "cases.json"
        manifest.write_text(
            json.dumps(
                [{"format": c.format, "path": str(c.path), "mode": c.mode, "out": c.out or tmp + "/run"} for c in cases]
            )
        )
        env = dict(os.environ)
        env.update(
            {
                "MODALENS_MAX_BYTES": CHILD_MAX_BYTES,
                "MODALENS_FUZZ_MEMORY": str(MEMORY_CAP),
                "OPENBLAS_NUM_THREADS": "1",
                "OMP_NUM_THREADS": "1",
                "MKL_NUM_THREADS": "1",
                "MALLOC_ARENA_MAX": "2",
                "HF_HUB_OFFLINE": "1",
                "PYTHONFAULTHANDLER": "1",
                "PYTHONWARNINGS": "ignore",
            }
        )
        if src:
            env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
        start = 0
        while start < len(cases):
            start = _run_child(cases, results, start, manifest, env, timeout)
    return [r if r is not None else {"outcome": "died", "message": "never reported"} for r in results]


def _run_child(cases, results, start, manifest, env, timeout) -> int:
    """One child for cases ``start`` on (at most ``CASES_PER_CHILD``); returns where the next child should start."""
    stop = min(start + CASES_PER_CHILD, len(cases))
    # command-line cases import and run far more (torch, the engines): they get children of their own, so that
    # what they leave in the address space never starves the loaders of the next cases
    modes = [c.mode.startswith("cli") for c in cases[start:stop]]
    stop = start + (modes.index(not modes[0]) if (not modes[0]) in modes else len(modes))
    child = subprocess.Popen(
        [sys.executable, str(WORKER), str(manifest), str(start), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: queue.Queue = queue.Queue()
    errors: list[str] = []
    threading.Thread(target=_reader, args=(child.stdout, lines), daemon=True).start()
    threading.Thread(target=lambda: errors.extend(child.stderr), daemon=True).start()
    current, deadline = None, time.monotonic() + 60.0  # the first deadline covers the child's imports
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            child.kill()
            child.wait()
            if current is None:
                raise RuntimeError("fuzz worker did not start: " + "".join(errors)[-2000:]) from None
            results[current] = {"outcome": "timeout", "message": f"no result within {timeout:.0f} s"}
            return current + 1
        if line is None:
            break
        parts = line.rstrip("\n").split(" ", 2)
        if parts[0] == "S":
            current, deadline = int(parts[1]), time.monotonic() + timeout
        elif parts[0] == "R":
            results[int(parts[1])] = json.loads(parts[2])
            current = None
    code = child.wait()
    if current is None:
        pending = [i for i in range(start, stop) if results[i] is None]
        if not pending:
            return stop
        if pending[0] == start:
            raise RuntimeError(f"fuzz worker failed before case {start} (exit {code}): " + "".join(errors)[-2000:])
        return pending[0]
    tail = "".join(errors)[-600:]
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        results[current] = {"outcome": "crash", "message": f"killed by {name}", "stderr": tail}
    else:
        results[current] = {"outcome": "died", "message": f"exit {code}", "stderr": tail}
    return current + 1


def tally(cases: list[Case], results: list[dict]) -> dict[str, collections.Counter]:
    """Outcome counts per format (and ``all``)."""
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for case, result in zip(cases, results, strict=True):
        counts[case.format][result["outcome"]] += 1
        counts["all"][result["outcome"]] += 1
    return counts


def summary(cases: list[Case], results: list[dict]) -> str:
    lines = []
    for fmt, counter in sorted(tally(cases, results).items()):
        good = counter["error"] + counter["ok"]
        detail = ", ".join(f"{k} {v}" for k, v in sorted(counter.items()))
        lines.append(f"{fmt:8s} {sum(counter.values()):6d} cases: {good} clear error or valid load; {detail}")
    return "\n".join(lines)


def failures(cases: list[Case], results: list[dict]) -> list[str]:
    return [
        f"{c.format} {c.label} {c.path.name}: {r['outcome']} {r.get('type', '')} {r.get('message', '')[:300]}"
        f" {r.get('where', '')}"
        for c, r in zip(cases, results, strict=True)
        if r["outcome"] not in GOOD
    ]


def main(argv: list[str] | None = None) -> None:
    from .hostile import write_hostile
    from .mutate import write_mutations
    from .seeds import write_seeds

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100, help="mutations per format")
    parser.add_argument("--start", type=int, default=0, help="first case number")
    parser.add_argument("--formats", default="mmsa,native,parquet,csd")
    parser.add_argument("--no-hostile", action="store_true")
    parser.add_argument("--src", default=None, help="a src folder to load modalens from (e.g. the code before)")
    parser.add_argument("--show", type=int, default=40, help="how many failures to list")
    parser.add_argument("--json", default=None, help="write every case and result here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="modalens-fuzz-files-") as tmp:
        folder = Path(tmp)
        seeds = write_seeds(folder / "seeds")
        formats = args.formats.split(",")
        seeds = {k: v for k, v in seeds.items() if k in formats}
        groups = {}
        if not args.no_hostile:
            hostile = [c for c in write_hostile(folder / "hostile") if c.format in formats]
            groups["hostile"] = hostile
        if args.cases:
            rows = write_mutations(seeds, folder / "mutations", args.cases, args.start)
            groups["fuzz"] = [Case(fmt, path, label) for fmt, path, label in rows]
        report = {}
        for name, cases in groups.items():
            began = time.monotonic()
            results = run_cases(cases, src=args.src)
            print(f"== {name}: {len(cases)} cases in {time.monotonic() - began:.1f} s")
            print(summary(cases, results))
            for line in failures(cases, results)[: args.show]:
                print("   ", line)
            report[name] = [
                {"format": c.format, "label": c.label, "file": c.path.name, **r}
                for c, r in zip(cases, results, strict=True)
            ]
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
