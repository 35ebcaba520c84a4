"""What a run records of its predictor so that ``modalens serve RUN --model SPEC`` can rebuild it exactly:
``config.predictor`` in the manifest holds the command and model spec, the options that shape the output, and the
baselines themselves (fitted per-feature means, custom arrays, patch baselines, token ids), so the masker is rebuilt
without the data it was fitted on (:mod:`modalens.cli.live_model`)."""

from __future__ import annotations

from typing import Any

import numpy as np

RECORD_KEY = "predictor"  # manifest config key


def predictor_record(
    predictor: Any, dataset: Any, *, command: str, spec: str, options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``config.predictor`` of a run: how to rebuild this predictor and its masker (baselines as numbers)."""
    masker = predictor.masker
    masker.bind(dataset)  # token ids and patch grids come from the data
    baselines: dict[str, Any] = {}
    tokens: dict[str, int] = {}
    for name in predictor.modalities:
        modality = dataset[name]
        if modality.tokens is not None:
            tokens[name] = int(masker.token_id(name))
            continue
        spec_m = masker.spec(name)
        if isinstance(spec_m, str) and spec_m in ("zeros", "mean_colour", "blur"):
            baselines[name] = spec_m
            continue
        _, steps, features = modality.values.shape
        full = masker.baseline(name, steps, features)  # the fitted mean, or a custom array, broadcast to [T, D]
        same = bool(np.all(full == full[:1]))  # one value per feature: store [D], not [T, D]
        baselines[name] = (full[0] if same else full).astype(float).tolist()
    return {"command": command, "spec": spec, "options": dict(options or {}), "baselines": baselines, "tokens": tokens}


def masker_from_record(record: dict[str, Any], dataset: Any) -> Any:
    """The masker a run was explained with, from its ``config.predictor`` (bound to the run's dataset)."""
    from modalens.models import Masker

    baselines = {
        name: value if isinstance(value, str) else np.asarray(value, dtype=np.float32)
        for name, value in (record.get("baselines") or {}).items()
    }
    tokens = {name: int(token) for name, token in (record.get("tokens") or {}).items()}
    return Masker(baselines, default="zeros", token_baseline=tokens).bind(dataset)
