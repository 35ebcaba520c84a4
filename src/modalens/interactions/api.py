"""``explain()``: one calling convention for every explainer, and the registry of methods.

``explain(predictor, dataset, ...)`` runs the stages in order and returns an :class:`Explanation`:

1. modality level -- every coalition of modalities evaluated in batches; exact Shapley values, interaction indices,
   Moebius dividends (method ``"shapley"``);
2. interaction types from those values (:mod:`modalens.interactions.interaction_types`);
3. feature level -- per word / step and per named feature (method from :func:`list_methods` ``["feature"]``);
4. templates -- frequent, influential multimodal feature sets;
5. dataset-level measures -- EMAP and PID, when asked;
6. a 2-D projection of the explanation vectors for the projection view.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from modalens._core.errors import ConfigurationError
from modalens.data.dataset import MultimodalDataset
from modalens.interactions.config import ExplainConfig
from modalens.interactions.explanation import Explanation
from modalens.interactions.interaction_types import classify
from modalens.interactions.methods import LEVELS, MethodsAt, method_specs
from modalens.interactions.shapley import interaction_indices, moebius_transform, shapley_values
from modalens.models.predictor import BasePredictor, Predictor, wrap

# The modality-level methods of the one registry (modalens.interactions.methods.METHODS), name -> spec.
_MODALITY_METHODS = MethodsAt("modality")


def list_methods() -> dict[str, list[str]]:
    """The registered method names by level: ``{"modality": [...], "feature": [...], "dataset": [...]}``.

    Each level's names are sorted. :func:`~modalens.interactions.methods.method_specs` gives the full specs
    (description, declared capabilities, options).
    """
    return {level: [spec.name for spec in method_specs(level)] for level in LEVELS}


def explain(
    predictor: Predictor | Any,
    dataset: MultimodalDataset,
    config: ExplainConfig | None = None,
    *,
    modalities: Sequence[str] | None = None,
    baseline_data: MultimodalDataset | None = None,
    **options: Any,
) -> Explanation:
    """Explain how a predictor uses its modalities on a dataset.

    Parameters
    ----------
    predictor
        A :class:`~modalens.models.predictor.Predictor`, or a torch module / estimator / callable together with
        ``modalities`` (wrapped with :func:`~modalens.models.wrap`).
    dataset
        The instances to explain (e.g. ``dataset.split("test")``).
    config
        The settings, an :class:`~modalens.interactions.config.ExplainConfig` (method, feature method and
        granularities, permutation walks, target, typing thresholds, templates, EMAP/PID, projection, batch size,
        seed, progress, backend); the defaults when omitted.
    modalities
        Modality names of a bare model (not needed for a predictor).
    baseline_data
        Where ``"mean"`` baselines are computed when the masker has not been fitted yet (e.g. the train split);
        defaults to ``dataset`` itself. A masker fitted before the call is kept as it is.
    **options
        Any field of :class:`ExplainConfig` by name, overriding ``config`` (``explain(p, ds, n_permutations=16)``);
        an unknown name is refused with the list of valid ones.
    """
    config = (config or ExplainConfig()).updated(**options)
    method, feature_method, granularities = config.method, config.feature_method, config.granularities
    n_permutations, target, typing = config.n_permutations, config.target, config.typing
    templates, template_support, emap, pid = config.templates, config.template_support, config.emap, config.pid
    projection, batch_size, seed, progress = config.projection, config.batch_size, config.seed, config.progress
    backend, backend_options = config.backend, dict(config.backend_options)
    if method not in _MODALITY_METHODS:
        raise ValueError(f"unknown modality method {method!r}; choose from {sorted(_MODALITY_METHODS)}")
    if not isinstance(predictor, BasePredictor):
        if modalities is None:
            raise ConfigurationError("pass modalities=[...] to explain a bare model (or wrap it with modalens.wrap)")
        predictor = wrap(predictor, modalities)
    if len(dataset) == 0:
        raise ConfigurationError(f"dataset {dataset.name!r} has no instances to explain")
    if predictor.masker.needs_fit:
        predictor.masker.fit(baseline_data if baseline_data is not None else dataset)
    timings: dict[str, float] = {}
    names = list(predictor.modalities)

    def per_instance(fn: Callable[[MultimodalDataset, np.ndarray], Any]) -> Any:
        return _map_instances(fn, dataset, backend, backend_options or {})

    clock = time.perf_counter()
    modality_method = _MODALITY_METHODS[method]
    shared = {"batch_size": batch_size, "seed": seed, "progress": progress}  # each method takes what it declares
    values = per_instance(  # [N, C, K]
        lambda ds, idx: modality_method(predictor, ds, index=idx, **modality_method.accepted(shared)).coalition_values
    )
    targets = _target_indices(values[:, -1, :], predictor.output_kind, target)
    rows = np.arange(len(dataset))
    chosen = values[rows, :, targets][:, :, None]  # [N, C, 1] explained output
    phi = shapley_values(chosen)[..., 0]
    inter = interaction_indices(chosen)[..., 0]
    moebius = moebius_transform(chosen)[..., 0]
    types = classify(phi, inter, typing)
    timings["modality"] = time.perf_counter() - clock

    manifest_config = config.to_dict()
    explanation = Explanation(
        dataset=dataset,
        modalities=names,
        model=predictor.describe(),
        target=targets,
        outputs=values[:, -1, :],
        coalition_values=chosen[..., 0],
        shapley=phi,
        interactions=inter,
        moebius=moebius,
        typing=typing,
        types=types,
        config=manifest_config,
        timings=timings,
    )

    if feature_method is not None:
        clock = time.perf_counter()
        explanation.feature_attributions = per_instance(
            lambda ds, idx: _feature_attributions(
                predictor, ds, idx, feature_method, granularities, targets, n_permutations, batch_size, seed, progress
            )
        )
        timings["features"] = time.perf_counter() - clock

    if templates and explanation.feature_attributions is not None:
        clock = time.perf_counter()
        explanation.templates, explanation.template_members = _templates(
            explanation, dataset, predictor, template_support
        )
        timings["templates"] = time.perf_counter() - clock

    if emap or pid:
        clock = time.perf_counter()
        explanation.dataset_measures = _dataset_measures(
            predictor, dataset, emap, pid, targets, batch_size, seed, progress
        )
        timings["dataset_measures"] = time.perf_counter() - clock

    if projection is not None and len(dataset) >= 5:
        clock = time.perf_counter()
        from modalens.interactions.projection import project

        if projection == "auto":  # t-SNE is quick and faithful for thousands; UMAP scales to 50,000+
            projection = "tsne" if len(dataset) <= 5000 else "umap"
        manifest_config["projection"] = projection
        explanation.projection = project(explanation_vectors(explanation), method=projection, seed=seed)
        timings["projection"] = time.perf_counter() - clock
    return explanation


def explanation_vectors(explanation: Explanation) -> np.ndarray:
    """Per instance: modality Shapley values, pairwise interactions, and named-feature attributions when present.

    Each block is scaled by its overall spread so no block swamps the others in the projection.
    """
    m = len(explanation.modalities)
    iu = np.triu_indices(m, 1)
    blocks = [explanation.shapley, explanation.interactions[:, iu[0], iu[1]]]
    fa = explanation.feature_attributions
    if fa is not None and (fa["feature"] != "*").any():
        named = fa[fa["feature"] != "*"]
        wide = named.pivot_table(index="instance", columns=["modality", "feature"], values="value", aggfunc="sum")
        wide = wide.reindex(range(len(explanation))).fillna(0.0)
        blocks.append(wide.to_numpy())
    scaled = []
    for block in blocks:
        if block.size == 0:
            continue
        spread = np.abs(block).std() or 1.0
        scaled.append(block / spread)
    return np.concatenate(scaled, axis=1)


def _target_indices(full_outputs: np.ndarray, output_kind: str, target: int | str) -> np.ndarray:
    n, k = full_outputs.shape
    if target == "predicted":
        if output_kind == "classification":
            return full_outputs.argmax(1).astype(np.int64)
        return np.zeros(n, np.int64)
    if isinstance(target, (int, np.integer)) and 0 <= int(target) < k:
        return np.full(n, int(target), np.int64)
    raise ValueError(f"target must be 'predicted' or an output index in [0, {k}), got {target!r}")


def _map_instances(
    fn: Callable[[MultimodalDataset, np.ndarray], Any], dataset: MultimodalDataset, backend: str, options: dict
) -> Any:
    """Run a per-instance stage on all instances, here or spread over a cluster (same result either way)."""
    if backend == "local":
        return fn(dataset, np.arange(len(dataset)))
    if backend == "ray":
        from modalens.interactions.distributed import map_instances

        return map_instances(fn, dataset, **options)
    raise ValueError(f"backend must be 'local' or 'ray', got {backend!r}")


def _feature_attributions(
    predictor: Predictor,
    dataset: MultimodalDataset,
    index: np.ndarray,
    feature_method: str,
    granularities: Sequence[str],
    targets: np.ndarray,
    n_permutations: int,
    batch_size: int,
    seed: int,
    progress: bool,
) -> pd.DataFrame:
    """The feature-level stage: the chosen method through the method contract, once per granularity."""
    spec = MethodsAt("feature")[feature_method]
    shared = {"n_permutations": n_permutations, "batch_size": batch_size, "seed": seed, "progress": progress}
    options = spec.accepted(shared)  # the method declares which of the shared settings it takes
    frames = []
    for granularity in granularities:
        result = spec(predictor, dataset, target=targets, index=index, granularity=granularity, **options)
        frames.append(result.to_frame(dataset))
    return pd.concat(frames, ignore_index=True)


def _templates(
    explanation: Explanation, dataset: MultimodalDataset, predictor: BasePredictor, support: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    from modalens.interactions.templates import discretise, item_attributions, mine_templates

    attributions = _attributions_from_frame(explanation.feature_attributions, dataset)
    items = discretise(dataset, attributions)
    scores = item_attributions(dataset, attributions, items)
    classification = predictor.output_kind == "classification"
    return mine_templates(
        items,
        explanation.outputs if classification else explanation.outputs[:, 0],
        scores,
        min_support=support,
        output_kind=predictor.output_kind,
        class_names=predictor.output_names if classification else None,
    )


def _attributions_from_frame(frame: pd.DataFrame, dataset: MultimodalDataset) -> list[Any]:
    """Rebuild the FeatureAttribution of each computed granularity from the long table (what workers return)."""
    from modalens.interactions.attribution import FeatureAttribution

    out = []
    for granularity, rows in (("steps", frame[frame["feature"] == "*"]), ("features", frame[frame["feature"] != "*"])):
        if rows.empty:
            continue
        values = {}
        for name, modality in dataset.modalities.items():
            n, t, d = modality.values.shape
            arr = np.zeros((n, t if granularity == "steps" else d))
            part = rows[rows["modality"] == name]
            if granularity == "steps":
                column = part["position"].to_numpy()
            else:
                column = part["feature"].map({f: i for i, f in enumerate(modality.feature_names)}).to_numpy()
            arr[part["instance"].to_numpy(), column] = part["value"].to_numpy()
            values[name] = arr
        out.append(FeatureAttribution(granularity, values, None, "from-table", 0, instances=np.arange(len(dataset))))
    return out


def _dataset_measures(
    predictor: Predictor,
    dataset: MultimodalDataset,
    emap: bool,
    pid: bool,
    targets: np.ndarray,
    batch_size: int,
    seed: int,
    progress: bool,
) -> dict[str, Any]:
    """The dataset-level stage: each requested method through the method contract, its JSON summary by name."""
    shared = {"batch_size": batch_size, "seed": seed, "progress": progress}
    measures: dict[str, Any] = {}
    for name in [n for n, wanted in (("emap", emap), ("pid", pid)) if wanted]:
        spec = MethodsAt("dataset")[name]
        measures[name] = spec(predictor, dataset, **spec.accepted(shared)).to_dict()
    return measures
