"""``modalens features study-model``: the feature study on a predictor's hidden layer (the bridge between the
activation capture of :mod:`modalens.models.activations` and :mod:`modalens.features.model_study`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modalens.cli.common import UsageError
from modalens.features.config import FeatureStudyConfig
from modalens.features.model_study import run_model_feature_study


def load_reference_model(spec: str, device: str = "cpu") -> tuple[Any, str]:
    """A torch reference model from ``pretrained:ARCH`` (the committed demo weights) or a model directory written by
    ``modalens train``; returns the model and its name."""
    from modalens.models.training import load_model, load_pretrained

    if spec.startswith("pretrained:"):
        arch = spec.partition(":")[2]
        return load_pretrained(arch, device=device), f"{arch} (pretrained demo weights)"
    path = Path(spec)
    if not path.is_dir():
        raise UsageError(f"--model {spec!r}: expected a model directory (modalens train) or pretrained:ARCH")
    return load_model(path, device=device), path.name


def study_model(
    module: Any,
    dataset: Any,
    layer: str,
    config: FeatureStudyConfig,
    *,
    baseline_data: Any,
    baseline: str = "mean",
    n_top: int = 5,
    model_name: str | None = None,
    batch_size: int = 256,
) -> Any:
    """Capture ``layer``'s activations on ``dataset`` (full input, and each modality alone with the others at the
    Masker's ``baseline`` fitted on ``baseline_data``) and run :func:`run_model_feature_study` on them."""
    from modalens.models.activations import layer_activations, layer_head, resolve_layer
    from modalens.models.masker import Masker

    resolve_layer(module, layer)  # a wrong name fails before anything runs, listing the layers
    masker = Masker(baseline).fit(baseline_data)
    device = config.device
    full, outputs = layer_activations(module, layer, dataset, batch_size=batch_size, device=device)
    names = list(getattr(module, "modalities", dataset.modality_names))
    present = {
        m: layer_activations(module, layer, dataset, present={m}, masker=masker, batch_size=batch_size, device=device)[
            0
        ]
        for m in names
    }
    head = layer_head(module, layer, dataset, np.arange(len(dataset)), device=device)
    info = {
        "name": model_name or type(module).__name__,
        "layer": layer,
        "source": "hidden activations",
        "baseline": baseline,
        "dataset": getattr(dataset, "name", None),
    }
    return run_model_feature_study(
        full,
        present,
        config,
        head=head,
        head_batch=batch_size,
        ids=np.asarray(dataset.ids),
        labels=dataset.labels,
        n_top=n_top,
        model_info=info,
    )
