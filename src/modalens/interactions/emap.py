"""Empirical multimodally-additive function projection (EMAP, Hessel & Lee, EMNLP 2020), for 2 or more modalities.

EMAP asks whether a model's performance needs cross-modal interactions. It replaces the model f by its additive
projection f^ -- the closest function that is a sum of one-modality functions -- and compares the two. For two
modalities over an evaluation set of n instances (text t, vision v):

    f^(t_i, v_i) = mean_j f(t_i, v_j) + mean_j f(t_j, v_i) - mean_{j,k} f(t_j, v_k),

which is the projection onto additive functions under the empirical product distribution of t and v. It needs the
full n x n matrix F[i, j] = f(t_i, v_j): n^2 model evaluations.

For M modalities (or groups of modalities) the projection is f^(x) = sum_m E[f | x_m] - (M - 1) E[f]. Each term
E[f | x_m = x_i^m] is estimated from n mixing partners, giving F_m[i, s] = f(x_i^m, partner s's other modalities):

- ``mixing="joint"`` (default): partner s supplies *all* other modalities together, from the same instance j = s.
  The term is an exact average over the n instances; the other modalities keep the dependence they have in the data
  (E over P(x_m) x P(x_-m)). It equals Hessel & Lee's estimator for M = 2.
- ``mixing="independent"``: each other modality comes from its own partner, drawn by an independent random
  permutation per row (E over the product of all marginals, the Hoeffding / functional-ANOVA additive part). A
  Monte Carlo estimate with n of the n^(M-1) possible combinations per row.

The two agree whenever f has no interaction among the *other* modalities, and both are exact for additive f: every
row of F_m averages each other modality over all n instances exactly once, and the constant E[f] (the mean of the
grand means of the F_m) carries the same averages, so f^ = f when f = sum_m g_m(x_m). Cost: n^2 evaluations for
M = 2 and M * n^2 for M >= 3 (plus n for the original outputs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from modalens.data.dataset import MultimodalDataset
from modalens.data.metrics import performance, performance_gap
from modalens.interactions.methods import MethodError, MethodResult, register_method, resolve_index
from modalens.models.masker import MaskerError
from modalens.models.predictor import Predictor


class EMAPError(MethodError):
    """EMAP was asked for something it cannot compute; the message names the argument."""


@dataclass
class EMAPResult(MethodResult):
    """A model's outputs next to its additive projection, and what the difference costs in performance.

    Attributes
    ----------
    groups
        The modality groups treated as the additive parts, e.g. ``["text", "audio", "vision"]`` or
        ``["text", "audio+vision"]``.
    index
        ``[n]`` positions in the dataset of the evaluated instances.
    ids
        ``[n]`` their ids.
    original
        ``[n, K]`` model outputs f(x_i).
    projected
        ``[n, K]`` additive projection f^(x_i) = constant + sum of components.
    constant
        ``[K]`` the estimate of E[f]: the mean of the grand means of the mixing matrices.
    components
        ``[n, M, K]`` the additive parts E[f | x_m], each centred on its mean over the evaluated instances (the
        grand mean of its mixing matrix), one per group. A modality the model ignores gets a zero component.
    output_names
        K output names.
    performance_original, performance_projected
        :func:`~modalens.data.metrics.performance` of both against the labels; None without labels.
    gap
        Per metric, how much the model outperforms its projection (> 0: the model gains from interactions; for
        MAE/RMSE the sign is flipped so > 0 still means "the model is better"); None without labels.
    interaction_share
        Fraction of the outputs' variance the projection does not explain:
        sum_ik (f_ik - f^_ik)^2 / sum_ik (f_ik - mean_i f_ik)^2 over the evaluated instances (all K outputs pooled,
        or only ``target``). 0 for an additive model; about 1 when the outputs are pure interaction. It can exceed 1
        when modalities are strongly dependent in the data (the projection is taken under a product distribution);
        NaN for constant outputs.
    target
        The output column the interaction share was computed on (None: all).
    mixing
        ``"joint"`` or ``"independent"`` (see the module docstring).
    n_evaluations
        Model rows evaluated.
    label_kind
        The dataset's label kind (None without labels).
    notes
        What could not be computed, and why.
    method, seconds
        ``"emap"``, and the wall-clock time when called through the method registry (0 otherwise).
    """

    level: ClassVar[str] = "dataset"

    groups: list[str]
    index: np.ndarray
    ids: np.ndarray
    original: np.ndarray
    projected: np.ndarray
    constant: np.ndarray
    components: np.ndarray
    output_names: list[str]
    performance_original: dict | None
    performance_projected: dict | None
    gap: dict | None
    interaction_share: float
    target: int | None = None
    mixing: str = "joint"
    n_evaluations: int = 0
    label_kind: str | None = None
    notes: list[str] = field(default_factory=list)
    method: str = "emap"
    seconds: float = 0.0

    def to_frame(self) -> pd.DataFrame:
        """Long table: one row per instance x output with ``id, position, output, original, projected`` and one
        ``component_<group>`` column per group."""
        n, k = self.original.shape
        frame = pd.DataFrame(
            {
                "id": np.repeat(self.ids, k),
                "position": np.repeat(self.index, k),
                "output": np.tile(np.asarray(self.output_names, dtype=object), n),
                "original": self.original.reshape(-1),
                "projected": self.projected.reshape(-1),
            }
        )
        for g, name in enumerate(self.groups):
            frame[f"component_{name}"] = self.components[:, g, :].reshape(-1)
        return frame

    def component_shares(self) -> dict[str, float]:
        """Per group: the variance of its additive component over the variance of the outputs (same pooling as
        ``interaction_share``). For an additive model with independent modalities these and the interaction share
        sum to 1."""
        col = slice(None) if self.target is None else [self.target]
        f = self.original[:, col]
        total = float(np.sum((f - f.mean(0)) ** 2))
        shares = {}
        for g, name in enumerate(self.groups):
            part = self.components[:, g, col]
            shares[name] = float(np.sum((part - part.mean(0)) ** 2) / total) if total > 0 else float("nan")
        return shares

    def to_dict(self) -> dict:
        """A JSON-ready summary for run manifests (no per-instance arrays; NaN becomes None)."""
        return {
            "method": self.method,
            "groups": list(self.groups),
            "n_instances": int(len(self.index)),
            "mixing": self.mixing,
            "n_evaluations": int(self.n_evaluations),
            "output_names": list(self.output_names),
            "target": self.target,
            "interaction_share": _json_float(self.interaction_share),
            "component_share": {g: _json_float(v) for g, v in self.component_shares().items()},
            "label_kind": self.label_kind,
            "performance_original": _json_dict(self.performance_original),
            "performance_projected": _json_dict(self.performance_projected),
            "gap": _json_dict(self.gap),
            "notes": list(self.notes),
        }


def _json_float(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def _json_dict(d: dict | None) -> dict | None:
    if d is None:
        return None
    return {k: _json_float(v) if isinstance(v, float) else v for k, v in d.items()}


def _resolve_groups(predictor: Predictor, dataset: MultimodalDataset, modalities: Sequence | None) -> list[list[str]]:
    reads = list(predictor.modalities)
    missing = [m for m in reads if m not in dataset.modalities]
    if missing:
        raise EMAPError(f"the predictor reads modalities {missing} that dataset {dataset.name!r} lacks")
    spec = reads if modalities is None else list(modalities)
    groups = [[g] if isinstance(g, str) else list(g) for g in spec]
    flat = [m for g in groups for m in g]
    unknown = [m for m in flat if m not in reads]
    if unknown:
        raise EMAPError(f"modalities {unknown} are not read by the predictor, which reads {reads}")
    if len(set(flat)) != len(flat) or any(not g for g in groups):
        raise EMAPError(f"modalities must name each modality at most once, in non-empty groups; got {spec}")
    if len(groups) < 2:
        raise EMAPError(f"EMAP needs at least two modalities (or groups), got {spec}")
    return groups


def _resolve_target(target: int | str | None, names: list[str]) -> int | None:
    if target is None:
        return None
    if isinstance(target, str):
        if target not in names:
            raise EMAPError(f"target {target!r} is not an output; outputs are {names}")
        return names.index(target)
    if not -len(names) <= int(target) < len(names):
        raise EMAPError(f"target index {target} out of range for {len(names)} outputs")
    return int(target) % len(names)


def _evaluation_index(candidates: np.ndarray, max_instances: int | None, seed: int) -> np.ndarray:
    """The rows evaluated: ``candidates`` (sorted dataset rows), or a seeded sub-sample of ``max_instances`` of them."""
    n_total = len(candidates)
    if n_total < 2:
        raise EMAPError(f"EMAP needs at least 2 instances, got {n_total}")
    if max_instances is None or n_total <= max_instances:
        return candidates
    if max_instances < 2:
        raise EMAPError(f"max_instances must be >= 2, got {max_instances}")
    rng = np.random.default_rng(seed)
    return candidates[np.sort(rng.choice(n_total, size=max_instances, replace=False))]


class _MixedEvaluator:
    """Evaluates f on rows that take each modality from a chosen instance, streamed in batches."""

    def __init__(self, predictor: Predictor, dataset: MultimodalDataset, index: np.ndarray, absent: list[str]):
        self.predictor = predictor
        self.reads = list(predictor.modalities)
        self.values = {m: dataset[m].values[index] for m in self.reads}
        self.masks = {m: dataset[m].step_mask()[index] for m in self.reads}
        self.absent = absent
        self.rows = 0

    def __call__(self, sources: dict[str, np.ndarray]) -> np.ndarray:
        """``sources[m]`` ([B]) names the instance each row takes modality m from; masks travel with values."""
        first = next(iter(sources.values()))
        # Absent modalities are replaced by their baseline; any source row will do for their (ignored) values.
        rows = {m: sources.get(m, first) for m in self.reads}
        values = {m: self.values[m][rows[m]] for m in self.reads}
        masks = {m: self.masks[m][rows[m]] for m in self.reads}
        self.rows += len(first)
        out = self.predictor.predict(values, masks, absent=self.absent)
        return np.asarray(out, dtype=np.float64)


@register_method(
    "emap",
    "dataset",
    description="Additive projection of the model over its modalities (Hessel & Lee) and the performance gap to it",
    batches_across_instances=True,
)
def emap(
    predictor: Predictor,
    dataset: MultimodalDataset,
    *,
    modalities: Sequence[str | Sequence[str]] | None = None,
    max_instances: int | None = 500,
    batch_size: int = 4096,
    seed: int = 0,
    target: int | str | None = None,
    mixing: str = "joint",
    progress: bool = True,
    index: np.ndarray | None = None,
) -> EMAPResult:
    """The additive projection of a model over its modalities and the performance gap to it.

    Parameters
    ----------
    predictor
        A :class:`~modalens.models.predictor.Predictor`.
    dataset
        Evaluation instances (with labels for the performance comparison).
    modalities
        The additive parts: modality names, or groups of names (``[("audio", "vision"), "text"]`` treats audio and
        vision as one part). Default: every modality the predictor reads. Modalities the predictor reads but that
        are not listed are *absent* (their masker baseline) in every evaluation, original outputs included.
    max_instances
        Evaluate on a seeded random subset of this many instances (cost grows as n^2); None uses all.
    batch_size
        Model rows per forward pass.
    seed
        Seed of the subset and, for ``mixing="independent"``, of the partner permutations.
    target
        Output column (index or name) for the interaction share; None pools all outputs. Projections are always
        computed for every output.
    mixing
        ``"joint"`` or ``"independent"``: how the other modalities are mixed in for M >= 3 (identical for M = 2);
        see the module docstring.
    progress
        Show a progress bar.
    index
        The dataset rows EMAP may evaluate (ints or a boolean mask; all by default); ``max_instances`` sub-samples
        among them.

    Returns
    -------
    EMAPResult
    """
    if mixing not in ("joint", "independent"):
        raise EMAPError(f"mixing must be 'joint' or 'independent', got {mixing!r}")
    if batch_size < 1:
        raise EMAPError(f"batch_size must be >= 1, got {batch_size}")
    groups = _resolve_groups(predictor, dataset, modalities)
    listed = {m for g in groups for m in g}
    absent = [m for m in predictor.modalities if m not in listed]
    _ensure_baselines(predictor, dataset, absent)
    index = _evaluation_index(np.unique(resolve_index(dataset, index, EMAPError)), max_instances, seed)
    n = len(index)
    evaluate = _MixedEvaluator(predictor, dataset, index, absent)
    rng = np.random.default_rng(seed)

    own = np.arange(n)
    original = _batched(evaluate, [{m: own for m in listed}], batch_size)
    k = original.shape[1]
    names = list(getattr(predictor, "output_names", None) or [])
    if len(names) != k:
        names = [f"output {j}" for j in range(k)]
    col = _resolve_target(target, names)  # before the n^2 work, so a bad target fails fast

    m_groups = len(groups)
    # For M = 2 one matrix F[i, j] = f(x_i^0, x_j^1) serves both terms (rows and columns).
    n_mats = 1 if m_groups == 2 else m_groups
    bar = tqdm(total=n_mats * n * n, desc="EMAP mixed pairs", unit="row", disable=not progress, leave=False)
    matrices = []
    try:
        for g in range(n_mats):
            partners = _partners(g, groups, n, mixing, rng)
            matrices.append(_mixed_matrix(evaluate, groups, g, partners, n, batch_size, bar))
    finally:
        bar.close()
    constant, components = _additive_parts(matrices, m_groups)
    projected = constant + components.sum(1)

    share = _interaction_share(original, projected, col)
    notes: list[str] = []
    if not np.isfinite(share):
        notes.append("interaction_share: the model's outputs are constant on the evaluated instances")
    perf_o = perf_p = gap = None
    if dataset.labels is not None:
        labels = dataset.labels[index]
        perf_o = performance(dataset.label_kind, labels, original)
        perf_p = performance(dataset.label_kind, labels, projected)
        gap = performance_gap(perf_o, perf_p)
    else:
        notes.append("no labels: performance and gap are not computed")
    return EMAPResult(
        groups=["+".join(g) for g in groups],
        index=index,
        ids=dataset.ids[index],
        original=original,
        projected=projected,
        constant=np.asarray(constant),
        components=components,
        output_names=names,
        performance_original=perf_o,
        performance_projected=perf_p,
        gap=gap,
        interaction_share=share,
        target=col,
        mixing=mixing if m_groups > 2 else "joint",
        n_evaluations=evaluate.rows,
        label_kind=dataset.label_kind if dataset.labels is not None else None,
        notes=notes,
    )


def _additive_parts(matrices: list[np.ndarray], m_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """``constant [K]`` and centred ``components [n, M, K]`` from the mixing matrices ``[n, n, K]``.

    The projection sum_m term_m - (M - 1) * constant, with constant = mean of the grand means, is written as
    constant + sum_m (term_m - grand_m) because sum_m grand_m = M * constant; each part then has mean zero.
    """
    if m_groups == 2:
        terms = np.stack([matrices[0].mean(1), matrices[0].mean(0)], axis=1)  # rows: group 0, columns: group 1
        grand = np.repeat(matrices[0].mean((0, 1))[None], 2, axis=0)
    else:
        terms = np.stack([mat.mean(1) for mat in matrices], axis=1)
        grand = np.stack([mat.mean((0, 1)) for mat in matrices])  # [M, K]
    return grand.mean(0), terms - grand[None]


def _ensure_baselines(predictor: Predictor, dataset: MultimodalDataset, absent: list[str]) -> None:
    """Fit "mean" baselines of absent modalities on the dataset if the masker has not been fitted."""
    masker = predictor.masker
    bind = getattr(masker, "bind", None)
    if bind is not None:  # token and patch modalities: the masker learns their vocabulary and grid
        bind(dataset)
    for m in absent:
        try:
            masker.apply(m, dataset[m].values[:1], False)
        except MaskerError:
            masker.fit(dataset)
            return


def _partners(g: int, groups: list[list[str]], n: int, mixing: str, rng: np.random.Generator) -> list[np.ndarray]:
    """For matrix g: per group h, an ``[n, n]`` array P with P[i, s] = the instance group h comes from in cell (i, s).

    Group g always comes from row i. With joint mixing every other group comes from instance s; with independent
    mixing each other group follows its own random permutation of 0..n-1 in every row, so each row still visits
    every instance exactly once per group (which keeps additive models exact).
    """
    rows = np.broadcast_to(np.arange(n)[:, None], (n, n))
    cols = np.broadcast_to(np.arange(n)[None, :], (n, n))
    out = []
    for h in range(len(groups)):
        if h == g:
            out.append(rows)
        elif mixing == "joint" or len(groups) == 2:
            out.append(cols)
        else:
            out.append(rng.permuted(np.array(cols), axis=1))
    return out


def _mixed_matrix(
    evaluate: _MixedEvaluator,
    groups: list[list[str]],
    g: int,
    partners: list[np.ndarray],
    n: int,
    batch_size: int,
    bar: tqdm,
) -> np.ndarray:
    """``[n, n, K]`` outputs F_g[i, s], computed in chunks of whole rows (or parts of a row if n > batch_size)."""
    flat = [p.reshape(-1) for p in partners]
    out: np.ndarray | None = None
    for start in range(0, n * n, batch_size):
        sl = slice(start, min(n * n, start + batch_size))
        sources = {m: flat[h][sl] for h, group in enumerate(groups) for m in group}
        y = evaluate(sources)
        if out is None:
            out = np.empty((n * n, y.shape[1]))
        out[sl] = y
        bar.update(sl.stop - sl.start)
    assert out is not None
    return out.reshape(n, n, -1)


def _batched(evaluate: _MixedEvaluator, sources_list: list[dict[str, np.ndarray]], batch_size: int) -> np.ndarray:
    parts = []
    for sources in sources_list:
        total = len(next(iter(sources.values())))
        for start in range(0, total, batch_size):
            parts.append(evaluate({m: s[start : start + batch_size] for m, s in sources.items()}))
    return np.concatenate(parts, axis=0)


def _interaction_share(original: np.ndarray, projected: np.ndarray, col: int | None) -> float:
    f = original if col is None else original[:, [col]]
    fh = projected if col is None else projected[:, [col]]
    total = float(np.sum((f - f.mean(0)) ** 2))
    if total <= 1e-24 * max(1.0, float(np.sum(f**2))):
        return float("nan")
    return float(np.sum((f - fh) ** 2) / total)
