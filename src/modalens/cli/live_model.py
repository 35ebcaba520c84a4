"""Model specs shared by ``explain`` and ``serve``, and what a run records so that ``serve --model`` can rebuild the
predictor it was explained with.

A model spec (``--model``) is one of:

- a trained model directory (``modalens train``);
- ``demo`` or ``demo:ARCH``: the committed reference model of the embedded demo set (``mult`` by default);
- ``pkg.module:factory``: a function returning a predictor;
- ``mmsa:...``: an MMSA checkpoint (docs/mmsa.md);
- for runs of ``explain-vlm``: ``two-tower``, ``two-tower:PATH`` or ``hf:DIR``.

A what-if answer is only comparable with the run when the served predictor masks exactly as the explained one did.
``explain``, ``explain-vlm`` and ``demo`` therefore write ``config.predictor`` into the run manifest: the command, the
spec, the options that shape the model's output (zero-shot classes) and the **baselines themselves** (the fitted
per-feature means, token ids, patch baselines), so the server rebuilds the masker without the data it was fitted on.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import typer

from modalens.cli.baselines import RECORD_KEY, masker_from_record
from modalens.cli.common import UsageError

DEMO_SPEC = "demo"
DEFAULT_DEMO_ARCHITECTURE = "mult"
# Stored coalition values a rebuilt predictor must reproduce (on the first few instances) to be served live.
CHECK_INSTANCES = 4
CHECK_TOLERANCE = 1e-3  # relative to the scale of the stored values; float32 batch order differs by ~1e-6


class LiveModelError(UsageError):
    """A run cannot be served live with the given model (no record, other model, other baselines)."""


# -- specs -> predictors ---------------------------------------------------------------------------------------------
def demo_architecture(spec: str) -> str | None:
    """The architecture of a ``demo`` / ``demo:ARCH`` spec, or None for any other spec (or an existing path)."""
    if Path(spec).exists() or not (spec == DEMO_SPEC or spec.startswith(DEMO_SPEC + ":")):
        return None
    return spec.partition(":")[2] or DEFAULT_DEMO_ARCHITECTURE


def load_predictor(spec: str, dataset: Any, *, baseline: str, device: str, mmsa: Any = None) -> Any:
    """A predictor from a trained model directory, ``demo[:ARCH]``, ``pkg.module:factory`` (a function returning a
    predictor) or an MMSA checkpoint (``mmsa``: the parsed ``mmsa:...`` spec); its masker is ``Masker(baseline)``,
    not fitted yet."""
    from modalens.models import Masker

    masker = Masker(baseline)
    architecture = demo_architecture(spec)
    if mmsa is not None:
        predictor = mmsa.load(dataset, device=device)
    elif architecture is not None:
        from modalens.models.training import ARCHITECTURES, ModelFileError, load_pretrained

        if architecture not in ARCHITECTURES:
            raise typer.BadParameter(
                f"{spec}: no reference architecture {architecture!r}; choose one of "
                f"{[f'demo:{a}' for a in ARCHITECTURES]}",
                param_hint="--model",
            )
        try:
            predictor = load_pretrained(architecture, device=device).to_predictor(device=device)
        except ModelFileError as exc:
            raise typer.BadParameter(str(exc), param_hint="--model") from exc
    elif ":" in spec and not Path(spec).exists():
        module_name, _, attr = spec.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise typer.BadParameter(f"cannot import {spec!r}: {exc}", param_hint="--model") from exc
        predictor = factory()
    else:
        from modalens.models.training import ModelFileError, load_model

        try:
            predictor = load_model(Path(spec), device=device).to_predictor(device=device)
        except ModelFileError as exc:
            raise typer.BadParameter(str(exc), param_hint="--model") from exc
    predictor.masker = masker
    missing = [m for m in predictor.modalities if m not in dataset.modalities]
    if missing:
        raise typer.BadParameter(f"the model reads modalities {missing} that the dataset lacks", param_hint="--model")
    return predictor


# -- serve --model: a predictor per interaction run -------------------------------------------------------------------
def live_predictor(run_dir: Path, spec: str, *, device: str = "cpu", cache: dict | None = None) -> Any:
    """The predictor of ``spec`` with the masker run ``run_dir`` was explained with, checked against the run's
    stored coalition values; :class:`LiveModelError` says why a run cannot be served live."""
    from modalens.data.native import load_dataset
    from modalens.runs import read_run

    run = read_run(run_dir)
    if run.kind != "interaction":
        raise LiveModelError(f"{run_dir} is a {run.kind!r} run; only interaction runs take a predictor")
    manifest = run.manifest
    dataset = load_dataset(run.file("dataset.npz"))
    record = (manifest.config or {}).get(RECORD_KEY)
    cache = {} if cache is None else cache
    if record is not None:
        predictor = _shared(cache, (spec, record.get("command"), repr(record.get("options"))), device, dataset, record)
        predictor.masker = masker_from_record(record, dataset)
    elif demo_architecture(spec) is not None:
        # runs of `modalens demo` written before runs recorded their baselines: the demo's are the means of the
        # embedded set's train split (as `demo` fits them), so they can be rebuilt here
        from modalens.data.demo import load_demo
        from modalens.models import Masker

        predictor = _shared(cache, (spec, "explain", "{}"), device, dataset, {"command": "explain"})
        full = load_demo()
        predictor.masker = Masker("mean").fit(full.split("train")).bind(dataset)
    elif all(v == "zeros" for v in (manifest.model.masker or {"default": "?"}).values()):
        predictor = _shared(cache, (spec, "explain", "{}"), device, dataset, {"command": "explain"})
        from modalens.models import Masker

        predictor.masker = Masker("zeros").bind(dataset)
    else:
        raise LiveModelError(
            f"run {run_dir} records no baselines (its manifest has no config.{RECORD_KEY}: it was written by the "
            "Python API or an older modalens), so what-if answers could not match it; explain it again with "
            "`modalens explain ... --model SPEC` to serve it live"
        )
    check_reproduces(predictor, dataset, run, run_dir)
    return predictor


def _shared(cache: dict, key: tuple, device: str, dataset: Any, record: dict[str, Any]) -> Any:
    """One loaded model per spec and options, shallow-copied per run (each run gets its own masker)."""
    if key not in cache:
        cache[key] = _build(key[0], device, dataset, record)
    return copy.copy(cache[key])


def _build(spec: str, device: str, dataset: Any, record: dict[str, Any]) -> Any:
    if record.get("command") == "explain-vlm":
        from modalens.cli.vlm import build_predictor

        options = record.get("options") or {}
        return build_predictor(
            spec,
            classes=options.get("classes"),
            prompt=options.get("prompt", "a photo of a {}."),
            image_baseline="zeros",  # replaced by the recorded masker
            token_baseline=None,
            device=device,
        )
    mmsa = None
    if spec.startswith("mmsa:"):
        from modalens.models.mmsa import MMSASpec

        mmsa = MMSASpec.parse(spec)
    return load_predictor(spec, dataset, baseline="zeros", device=device, mmsa=mmsa)


def check_reproduces(predictor: Any, dataset: Any, run: Any, run_dir: Path) -> None:
    """The rebuilt predictor gives the run's stored coalition values on its first instances (same model, same
    baselines), or :class:`LiveModelError` saying by how much it does not."""
    from modalens.interactions.coalitions import coalition_label, coalition_matrix, evaluate_coalitions

    names = list(run.manifest.modalities)
    if list(predictor.modalities) != names:
        raise LiveModelError(
            f"the model reads modalities {list(predictor.modalities)}; run {run_dir} explained {names}"
        )
    n = min(CHECK_INSTANCES, len(dataset))
    try:
        values = evaluate_coalitions(predictor, dataset.take(range(n)), progress=False)  # [n, C, K]
    except Exception as exc:  # a model that cannot read this run's inputs
        raise LiveModelError(f"the model cannot read run {run_dir}'s inputs: {type(exc).__name__}: {exc}") from exc
    instances = run.table("instances").set_index("instance")
    target = instances.loc[range(n), "target"].to_numpy(dtype=np.int64)
    computed = values[np.arange(n), :, target]  # [n, C]
    labels = [coalition_label(p, names) for p in coalition_matrix(len(names))]
    stored_frame = run.table("coalitions")
    stored_frame = stored_frame[stored_frame["instance"] < n]
    stored = stored_frame.pivot(index="instance", columns="coalition", values="value").loc[range(n), labels].to_numpy()
    scale = 1.0 + float(np.abs(stored).max())
    gap = float(np.abs(computed - stored).max())
    if not gap <= CHECK_TOLERANCE * scale:
        raise LiveModelError(
            f"the model does not reproduce run {run_dir}: its coalition values on the first {n} instances differ "
            f"from the stored ones by up to {gap:.4g}; serve the run with the model (and data) it was explained with"
        )


def load_live_predictors(
    run_dirs: Sequence[Path], spec: str, *, device: str = "cpu"
) -> tuple[dict[Path, Any], dict[Path, str]]:
    """A predictor for each interaction run that ``spec`` reproduces; and, per other interaction run, why not."""
    from modalens.runs import read_run

    live: dict[Path, Any] = {}
    refused: dict[Path, str] = {}
    cache: dict = {}
    for run_dir in run_dirs:
        if read_run(run_dir).kind != "interaction":
            continue
        try:
            live[Path(run_dir).resolve()] = live_predictor(Path(run_dir), spec, device=device, cache=cache)
        except (typer.BadParameter, LiveModelError, OSError, ValueError) as exc:
            refused[Path(run_dir).resolve()] = str(exc)
    return live, refused
