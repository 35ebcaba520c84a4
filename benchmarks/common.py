"""Shared pieces of the benchmarks: the machine record, timers, a peak-memory sampler, the models, tables."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

RESULTS_DIR = Path(__file__).resolve().parent / "results"
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


# -- the machine -------------------------------------------------------------------------------------------------
def machine_info() -> dict[str, Any]:
    """CPU model, core count, memory, GPU (if torch sees one) and library versions, for every results file."""
    import torch

    cpu = platform.processor() or "unknown"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        cpu = next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), cpu)
    except OSError:
        pass
    mem_gb = None
    try:
        with open("/proc/meminfo") as fh:
            mem_gb = round(int(fh.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    versions = {}
    for name in ("numpy", "torch", "modalens", "shap", "captum", "ray"):
        try:
            versions[name] = __import__(name).__version__
        except Exception:  # noqa: BLE001 -- a missing optional peer is recorded as absent
            versions[name] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory_gb": mem_gb,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


# -- time and memory ---------------------------------------------------------------------------------------------
def rss_bytes() -> int:
    """Resident set size of this process now (Linux /proc)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * _PAGE


@dataclass
class RSSTrace:
    """RSS samples ``(seconds since start, bytes)`` taken by a background thread while a block runs."""

    start_rss: int
    samples: list[tuple[float, int]] = field(default_factory=list)

    def peak_above_start(self, t0: float = 0.0, t1: float = float("inf")) -> int:
        """Largest RSS increase over the start, within ``[t0, t1]`` seconds (the whole run by default)."""
        inside = [r for t, r in self.samples if t0 <= t <= t1]
        return max(inside, default=self.start_rss) - self.start_rss


@contextmanager
def trace_rss(interval: float = 0.005) -> Iterator[RSSTrace]:
    """Sample the RSS every ``interval`` seconds while the block runs (timings are unaffected: a sleeping thread)."""
    trace = RSSTrace(rss_bytes())
    stop = threading.Event()
    t0 = time.perf_counter()

    def sample() -> None:
        while not stop.is_set():
            trace.samples.append((time.perf_counter() - t0, rss_bytes()))
            stop.wait(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield trace
    finally:
        stop.set()
        thread.join()
        trace.samples.append((time.perf_counter() - t0, rss_bytes()))


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Wall time of one call and its result."""
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def best_of(fn: Callable[[], Any], repeats: int) -> tuple[float, list[float]]:
    """Fastest of ``repeats`` calls (the least disturbed by other work on a shared machine) and all times."""
    times = [timed(fn)[0] for _ in range(repeats)]
    return min(times), times


# -- the models --------------------------------------------------------------------------------------------------
@dataclass
class Setup:
    """A predictor and the instances it is benchmarked on, with a line saying what they are."""

    predictor: Any
    dataset: Any
    description: str


def glass_box_setup(n: int, seed: int = 0) -> Setup:
    """The synthetic sentiment set and its additive numpy model: the cheapest realistic model (overhead-bound)."""
    from modalens.data.synthetic import make_synthetic
    from modalens.models.glass_box import glass_box_model

    return Setup(glass_box_model(), make_synthetic(n, seed=seed), f"glass-box numpy model, synthetic set (N={n})")


def reference_setup() -> Setup:
    """The late-fusion LSTM reference model on the demo dataset.

    Uses the committed weights when they exist; otherwise the same architecture with seeded random weights.
    Without the demo file, falls back to the synthetic set.
    """
    import torch

    from modalens.models.reference import build_model
    from modalens.models.training import default_config, load_pretrained

    torch.manual_seed(0)
    try:
        from modalens.data.demo import load_demo

        data = load_demo()
        data_name = f"demo dataset ({len(data)} utterances, T=20, D=33/29/15)"
    except Exception:  # noqa: BLE001 -- the demo file may not have landed; the synthetic set is the fallback
        from modalens.data.synthetic import make_synthetic

        data = make_synthetic(1200, steps=8, seed=0)
        data_name = "synthetic set (1200 instances, T=8, D=3/3/3; demo dataset unavailable)"
    try:
        model = load_pretrained("late_lstm")
        how = "committed weights"
    except Exception:  # noqa: BLE001 -- weights not committed yet: same architecture, seeded random weights
        # (training it here costs minutes on 2 cores; speed and estimator error do not need a trained model)
        model = build_model(default_config(data, "late_lstm")).eval()
        how = "seeded random weights: committed weights unavailable"
    return Setup(model.to_predictor(), data, f"late-fusion BiLSTM reference model ({how}); {data_name}")


def truncate_steps(dataset: Any, steps: int, n: int) -> Any:
    """The first ``n`` instances with at least ``steps`` real steps in every modality, cut to those steps.

    Makes inputs small enough for exact enumeration (``3 * steps`` step players) with every slot a real player.
    """
    from modalens.data.dataset import Modality, MultimodalDataset

    full = np.ones(len(dataset), bool)
    for m in dataset.modalities.values():
        full &= m.step_mask()[:, :steps].all(1)
    rows = np.flatnonzero(full)[:n]
    if len(rows) < n:
        raise ValueError(f"only {len(rows)} instances have {steps} real steps in every modality; asked for {n}")
    mods = [
        Modality(
            m.name,
            m.kind,
            m.values[rows, :steps],
            mask=None,
            feature_names=m.feature_names,
            words=None if m.words is None else [m.words[i][:steps] for i in rows],
        )
        for m in dataset.modalities.values()
    ]
    labels = None if dataset.labels is None else dataset.labels[rows]
    return MultimodalDataset(mods, labels, label_kind=dataset.label_kind, name=f"{dataset.name}[:{steps} steps]")


# -- output ------------------------------------------------------------------------------------------------------
def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value == 0:
            return "0"
        if abs(value) >= 1e5 or abs(value) < 1e-3:
            return f"{value:.3g}"
        return f"{value:.4g}"
    return str(value)


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table (printed, and pasted into docs/benchmarks.md)."""
    cells = [[fmt(c) for c in row] for row in rows]
    lines = [f"### {title}", "", "| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines) + "\n"


def write_json(name: str, payload: dict[str, Any], out_dir: Path = RESULTS_DIR) -> Path:
    from modalens._core.atomic import write_atomically

    text = json.dumps(payload, indent=2, default=_json_default)
    return write_atomically(out_dir / f"{name}.json", lambda tmp: Path(tmp).write_text(text))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
