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
    if not isinstance(predictor, BasePredictor):
        if modalities is None:
            raise ConfigurationError("pass modalities=[...] to explain a bare model (or wrap it with modalens.wrap)")
        predictor = wrap(predictor, modalities)
    if len(dataset) == 0:
        raise ConfigurationError(f"dataset {dataset.name!r} has no instances to explain")
    if predictor.masker.needs_fit:
        predictor.masker.fit(baseline_data if baseline_data is not None else dataset)
    run = _Stages(predictor, dataset, config)
    explanation = run.timed("modality", run.modality)
    if config.feature_method is not None:
        # cells are a stage of their own, so their cost shows apart from the steps' and features'
        staged = [g for g in config.granularities if g != "cells"]
        parts = [run.timed("features", run.features, explanation.target, staged)] if staged else []
        if "cells" in config.granularities:
            parts.append(run.timed("cells", run.features, explanation.target, ["cells"]))
        explanation.feature_attributions, explanation.word_attributions = _joined(parts)
    if config.templates and explanation.feature_attributions is not None:
        explanation.templates, explanation.template_members = run.timed("templates", run.templates, explanation)
    if config.emap or config.pid:
        explanation.dataset_measures = run.timed("dataset_measures", run.dataset_measures)
    if config.projection is not None and len(dataset) >= 5:
        explanation.projection = run.timed("projection", run.projection, explanation)
    return explanation


class _Stages:
    """The stages of :func:`explain` over one predictor, dataset and config; each records its wall time."""

    def __init__(self, predictor: Predictor, dataset: MultimodalDataset, config: ExplainConfig) -> None:
        self.predictor, self.dataset, self.config = predictor, dataset, config
        self.timings: dict[str, float] = {}
        self.record = config.to_dict()  # the manifest's config: what was asked, with "auto" resolved
        self.shared = {  # settings any method may take; each method declares which it does
            "n_permutations": config.n_permutations,
            "players": config.players,
            "orders": config.orders,
            "batch_size": config.batch_size,
            "seed": config.seed,
            "progress": config.progress,
        }

    def timed(self, name: str, stage: Callable[..., Any], *args: Any) -> Any:
        clock = time.perf_counter()
        result = stage(*args)
        self.timings[name] = time.perf_counter() - clock
        return result

    def per_instance(self, fn: Callable[[MultimodalDataset, np.ndarray], Any]) -> Any:
        """Run a per-instance stage on all instances, here or spread over a cluster (same result either way)."""
        if self.config.backend == "ray":
            from modalens.interactions.distributed import map_instances

            return map_instances(fn, self.dataset, **dict(self.config.backend_options))
        return fn(self.dataset, np.arange(len(self.dataset)))

    def modality(self) -> Explanation:
        """Every coalition of modalities; exact Shapley values, interaction indices, Moebius dividends, types."""
        spec, predictor = _MODALITY_METHODS[self.config.method], self.predictor
        options = spec.accepted(self.shared)
        values = self.per_instance(  # [N, C, K]
            lambda ds, idx: spec(predictor, ds, index=idx, **options).coalition_values
        )
        targets = _target_indices(values[:, -1, :], predictor.output_kind, self.config.target)
        chosen = values[np.arange(len(self.dataset)), :, targets][:, :, None]  # [N, C, 1] explained output
        phi = shapley_values(chosen)[..., 0]
        inter = interaction_indices(chosen)[..., 0]
        return Explanation(
            dataset=self.dataset,
            modalities=list(predictor.modalities),
            model=predictor.describe(),
            target=targets,
            outputs=values[:, -1, :],
            coalition_values=chosen[..., 0],
            shapley=phi,
            interactions=inter,
            moebius=moebius_transform(chosen)[..., 0],
            typing=self.config.typing,
            types=classify(phi, inter, self.config.typing),
            config=self.record,
            timings=self.timings,
        )

    def features(self, targets: np.ndarray, granularities: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """Per word / step, per named feature and per cell, as asked: the chosen method, once per granularity; and
        the words of token modalities (each the sum of its pieces). Records each granularity's model rows in the
        timings (``<granularity>_evaluations``)."""
        spec, predictor = MethodsAt("feature")[self.config.feature_method], self.predictor
        options = spec.accepted(self.shared)

        def attribute(ds: MultimodalDataset, idx: np.ndarray) -> pd.DataFrame:
            frames = []
            for g in granularities:
                result = spec(predictor, ds, target=targets, index=idx, granularity=g, **options)
                frames.append(result.to_frame(ds).assign(_table="feature_attributions"))
                words = result.word_frame(ds) if hasattr(result, "word_frame") else None
                if words is not None:  # one frame travels back from a worker: the table is a column until split
                    frames.append(words.assign(_table="word_attributions"))
                cost = {"_table": ["_cost"], "feature": [g], "value": [float(result.n_evaluations)]}
                frames.append(pd.DataFrame(cost))  # the model rows, summed over workers below
            return pd.concat(frames, ignore_index=True)

        both = self.per_instance(attribute)
        cost = both[both["_table"] == "_cost"]
        for g, rows in cost.groupby("feature", sort=False)["value"].sum().items():
            self.timings[f"{g}_evaluations"] = float(rows)
        return _table_part(both, "feature_attributions"), _table_part(both, "word_attributions")

    def templates(self, explanation: Explanation) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Frequent, influential multimodal feature sets from the feature attributions."""
        return _templates(explanation, self.dataset, self.predictor, self.config.template_support)

    def dataset_measures(self) -> dict[str, Any]:
        """EMAP and PID, as asked, each through the method contract; their JSON summaries by name."""
        wanted = [name for name in ("emap", "pid") if getattr(self.config, name)]
        measures = {}
        for name in wanted:
            spec = MethodsAt("dataset")[name]
            measures[name] = spec(self.predictor, self.dataset, **spec.accepted(self.shared)).to_dict()
        return measures

    def projection(self, explanation: Explanation) -> np.ndarray:
        """A 2-D map of the explanation vectors; "auto" is t-SNE up to 5,000 instances, UMAP above."""
        from modalens.interactions.projection import project

        method = self.config.projection
        if method == "auto":  # t-SNE is quick and faithful for thousands; UMAP scales to 50,000+
            method = "tsne" if len(self.dataset) <= 5000 else "umap"
        self.record["projection"] = method
        return project(explanation_vectors(explanation), method=method, seed=self.config.seed)


_TABLE_COLUMNS = {
    "feature_attributions": (
        ["instance", "modality", "position", "feature", "value", "token"],
        ["instance", "position"],
    ),
    "word_attributions": (
        ["instance", "modality", "word", "text", "value", "pieces", "position"],
        ["instance", "word", "pieces", "position"],
    ),
}


def _joined(parts: list[tuple[pd.DataFrame, pd.DataFrame | None]]) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The feature and word tables of several stages, one after the other."""
    if len(parts) == 1:
        return parts[0]
    words = [w for _, w in parts if w is not None]
    return (
        pd.concat([f for f, _ in parts], ignore_index=True),
        pd.concat(words, ignore_index=True) if words else None,
    )


def _table_part(frame: pd.DataFrame, table: str) -> pd.DataFrame | None:
    """The rows of one table from a frame holding several (column ``_table``), with that table's columns only
    (``std_error`` when the method estimated one); None for an empty word table."""
    rows = frame[frame["_table"] == table]
    if rows.empty and table == "word_attributions":
        return None
    columns, ints = _TABLE_COLUMNS[table]
    if "std_error" in rows.columns:
        columns = [*columns, "std_error"]
    out = rows[columns].reset_index(drop=True)
    for c in ints:
        out[c] = out[c].astype(np.int64)
    out["value"] = out["value"].astype(np.float64)
    return out


def explanation_vectors(explanation: Explanation) -> np.ndarray:
    """Per instance: modality Shapley values, pairwise interactions, and named-feature attributions when present.

    Each block is scaled by its overall spread so no block swamps the others in the projection.
    """
    m = len(explanation.modalities)
    iu = np.triu_indices(m, 1)
    blocks = [explanation.shapley, explanation.interactions[:, iu[0], iu[1]]]
    fa = explanation.feature_attributions
    named = None if fa is None else fa[(fa["feature"] != "*") & (fa["position"] < 0)]  # features, not cells
    if named is not None and len(named):
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
    raise ConfigurationError(f"target must be 'predicted' or an output index in [0, {k}), got {target!r}")


def _templates(
    explanation: Explanation, dataset: MultimodalDataset, predictor: Predictor, support: float
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
    """Rebuild the FeatureAttribution of the steps and features granularities from the long table (what workers
    return); cells (``position >= 0`` with a feature name) are not used by the templates."""
    from modalens.interactions.attribution import FeatureAttribution

    out = []
    star = frame["feature"] == "*"
    named = ~star & (frame["position"] < 0)
    for granularity, rows in (("steps", frame[star]), ("features", frame[named])):
        if rows.empty:
            continue
        values = {}
        for name, modality in dataset.modalities.items():
            n, t = modality.values.shape[:2]
            d = len(modality.feature_names or [])  # token ids [N, T] have no named features
            arr = np.zeros((n, t if granularity == "steps" else d))
            part = rows[rows["modality"] == name]
            if granularity == "steps":
                column = part["position"].to_numpy()
            else:
                column = part["feature"].map({f: i for i, f in enumerate(modality.feature_names)}).to_numpy()
            arr[part["instance"].to_numpy(), column.astype(np.int64)] = part["value"].to_numpy()
            values[name] = arr
        out.append(FeatureAttribution(granularity, values, None, "from-table", 0, instances=np.arange(len(dataset))))
    return out
