"""Feature-level (intra-modal) attribution: which words, frames and named features drive one output.

Players span all modalities of the predictor jointly, so the values of one instance add up across modalities:
``sum of all players = f(x) - f(every player masked)`` (efficiency / completeness). Three granularities:

- ``"steps"``: one player per real step of each modality (a word, a frame). Masking a step replaces all its D
  features by the masker's baseline.
- ``"features"``: one player per named feature of each modality, across all its steps. Masking a feature replaces
  that feature on every real step by the baseline.
- ``"cells"``: one player per (step, named feature) cell of each modality, on real steps only -- the feature x step
  heat map of one instance. Masking a cell replaces that one value by the baseline's. It has ``T x D`` times more
  players than ``"features"`` has, and costs about as many more model rows, so it is computed on request
  (:func:`attribute_cells` for a few instances).

Padded steps (step mask False) are never players: they keep their values in every coalition and get attribution 0.
Masking uses ``predictor.masker`` exactly as the modality-level explainer does, so a word's value is "relative to the
text baseline" in the same sense as the modality's value.

Token modalities (ids with a :class:`~modalens.data.dataset.TokenSpec`) and patch modalities (images cut into a grid)
play at the ``"steps"`` granularity only: a word piece or a patch is a player; special tokens (``[CLS]``, ``[SEP]``)
are not players and stay in every coalition; an absent piece becomes the baseline token, an absent patch the image
baseline. At the ``"features"`` and ``"cells"`` granularities they have no players (their values stay as they are). With
``players="words"`` the pieces of a word are one player, absent together. Either way each word gets the sum of its
pieces (:attr:`FeatureAttribution.word_values`; with word players a piece holds an equal share of its word).

Three methods, registered in the one method registry (:mod:`modalens.interactions.methods`; this level's view is
:data:`FEATURE_METHODS`) and called by its contract ``method(predictor, dataset, *, target, index, **options)``:

- :func:`permutation_shapley`: model-agnostic Monte-Carlo Shapley values by walking random permutations of the
  players (antithetic pairs by default), batched over many instances and walks per model call, with a standard error
  per player.
- :func:`exact_feature_shapley`: enumerates every coalition (at most :data:`MAX_EXACT_PLAYERS` players per instance);
  the reference the estimator is tested and benchmarked against.
- :func:`integrated_gradients`: captum's Integrated Gradients for differentiable torch models
  (:class:`~modalens.models.predictor.TorchPredictor`), from the masker baseline to the input.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar, cast

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from modalens.data.dataset import MultimodalDataset
from modalens.interactions.coalitions import InterruptedExplanation, subset_membership
from modalens.interactions.methods import (
    AttributionError,
    MethodResult,
    MethodsAt,
    check_target,
    get_method,
    pick_target,
    register_method,
    resolve_index,
)
from modalens.interactions.shapley import shapley_weights
from modalens.models.predictor import GradientPredictor, Predictor

GRANULARITIES: tuple[str, ...] = ("steps", "features", "cells")
PLAYERS: tuple[str, ...] = ("steps", "words")
ORDERS: tuple[str, ...] = ("orthogonal", "random", "grid")
MAX_EXACT_PLAYERS = 14
# Upper bound on float cells (rows x T x D summed over modalities) in one model call: keeps a batch of long
# sequences with wide features (e.g. 50 x 768 text embeddings) within a few hundred MB.
MAX_BATCH_CELLS = 2**25


__all__ = [
    "FEATURE_METHODS",
    "GRANULARITIES",
    "MAX_EXACT_PLAYERS",
    "AttributionError",
    "FeatureAttribution",
    "attribute_cells",
    "exact_feature_shapley",
    "integrated_gradients",
    "list_feature_methods",
    "permutation_shapley",
]


@dataclass
class FeatureAttribution(MethodResult):
    """Per-instance attributions to steps or named features of every modality, for one explained output.

    Attributes
    ----------
    granularity
        ``"steps"`` (one player per step: a word, a frame), ``"features"`` (one player per named feature of each
        modality, across all its steps) or ``"cells"`` (one player per step and named feature).
    values
        Modality name -> ``[N, T]`` (steps), ``[N, D]`` (features) or ``[N, T, D]`` (cells); row ``r`` belongs to
        dataset row ``instances[r]``. Padded steps hold 0.
    std_error
        Same shapes: Monte-Carlo standard error of each value (NaN where it cannot be estimated from fewer than two
        independent samples); None for exact and gradient methods.
    method
        The method name in :data:`FEATURE_METHODS`.
    n_evaluations
        Model rows evaluated (input rows, not calls); for Integrated Gradients, forward rows at the path points.
    instances
        ``[N]`` dataset row numbers explained, in the order of the value rows.
    target
        ``[N]`` output column explained for each instance.
    prediction
        ``[N]`` model output for the target on the full input, ``f(x)``.
    base_value
        ``[N]`` model output for the target with every player masked; ``prediction - base_value`` is what the
        values share out.
    info
        Method details (antithetic, permutations, completeness gap ...), JSON-ready.
    seconds
        Wall-clock time when called through the method registry (0 otherwise).
    players
        ``"steps"`` (each step, word piece or patch a player) or ``"words"`` (a token modality's word, all its
        pieces together, one player).
    word_values
        Token modalities at the ``"steps"`` granularity: modality -> ``[N, W]`` value of each word, the sum of its
        pieces (0 past an instance's last word); None otherwise.
    word_std_error
        Same shapes: the standard error of each word's value (from the same samples, so correlations between a
        word's pieces count); None for exact and gradient methods.
    """

    level: ClassVar[str] = "feature"
    granularity: str
    values: dict[str, np.ndarray]
    std_error: dict[str, np.ndarray] | None
    method: str
    n_evaluations: int
    instances: np.ndarray | None = None
    target: np.ndarray | None = None
    prediction: np.ndarray | None = None
    base_value: np.ndarray | None = None
    info: dict = field(default_factory=dict)
    seconds: float = 0.0
    players: str = "steps"
    word_values: dict[str, np.ndarray] | None = None
    word_std_error: dict[str, np.ndarray] | None = None

    @property
    def n_instances(self) -> int:
        return next(iter(self.values.values())).shape[0]

    @property
    def evaluations(self) -> int:
        """Model rows evaluated (the same as ``n_evaluations``)."""
        return self.n_evaluations

    def rows(self) -> np.ndarray:
        """The dataset row of each value row (``instances``, or ``0 .. N-1`` when not recorded)."""
        return np.arange(self.n_instances) if self.instances is None else np.asarray(self.instances)

    def total(self) -> np.ndarray:
        """``[N]`` sum of all players' values; equals ``prediction - base_value`` up to estimation error."""
        return sum(v.reshape(len(v), -1).sum(axis=1) for v in self.values.values())

    def convergence(self) -> dict[str, float]:
        """A global summary of the Monte-Carlo error.

        ``scale`` is the mean absolute value over all players of all instances; ``max_relative`` and
        ``mean_relative`` are the largest and the mean standard error divided by that scale. A run whose
        ``max_relative`` is small (say < 0.05) has converged at the level of the attributions' typical size.
        Exact and gradient methods report zeros.
        """
        flat = np.concatenate([v.ravel() for v in self.values.values()])
        scale = float(np.abs(flat).mean()) if flat.size else 0.0
        if self.std_error is None:
            return {
                "scale": scale,
                "max_std_error": 0.0,
                "mean_std_error": 0.0,
                "max_relative": 0.0,
                "mean_relative": 0.0,
            }
        se = np.concatenate([v.ravel() for v in self.std_error.values()])
        se = se[np.isfinite(se)]
        max_se = float(se.max()) if se.size else float("nan")
        mean_se = float(se.mean()) if se.size else float("nan")
        denom = scale if scale > 0 else float("nan")
        return {
            "scale": scale,
            "max_std_error": max_se,
            "mean_std_error": mean_se,
            "max_relative": max_se / denom,
            "mean_relative": mean_se / denom,
        }

    def to_frame(self, dataset: MultimodalDataset) -> pd.DataFrame:
        """Long table: instance, modality, position, feature, value, token (and std_error when estimated).

        For ``"steps"`` one row per real step (mask True; for token modalities per real piece that is not a special
        token): ``feature = "*"``, ``position`` = the step, ``token`` = the word (piece) for text modalities with
        words (else None). For ``"features"`` one row per named feature:
        ``position = -1``, ``feature`` = its name, ``token`` = None. For ``"cells"`` one row per named feature of
        each real step: ``position`` = the step, ``feature`` = its name, ``token`` as for steps. ``instance`` is the
        dataset row number.
        """
        rows = self.rows()
        parts = []
        for name, vals in self.values.items():
            modality = dataset[name]
            se = None if self.std_error is None else self.std_error[name]
            if self.granularity in ("steps", "cells"):
                playing = modality.player_mask()[rows]
                if self.granularity == "cells":  # every named feature of every real step, step-major
                    names = np.asarray(modality.feature_names or [], dtype=object)
                    r, pos, d = np.nonzero(np.repeat(playing[:, :, None], len(names), axis=2))
                    feature, at = names[d], (r, pos, d)
                else:
                    r, pos = np.nonzero(playing)
                    feature, at = np.full(len(r), "*", dtype=object), (r, pos)
                if modality.words is not None:
                    token = np.array([modality.words[rows[i]][p] for i, p in zip(r, pos, strict=True)], dtype=object)
                else:
                    token = np.full(len(r), None, dtype=object)
                value, err = vals[at], None if se is None else se[at]
            else:
                d = vals.shape[1]
                r = np.repeat(np.arange(len(rows)), d)
                pos = np.full(len(r), -1)
                feature = np.tile(np.asarray(modality.feature_names, dtype=object), len(rows))
                token = np.full(len(r), None, dtype=object)
                value, err = vals.ravel(), None if se is None else se.ravel()
            frame = {
                "instance": rows[r].astype(np.int64),
                "modality": np.full(len(r), name, dtype=object),
                "position": pos.astype(np.int64),
                "feature": feature,
                "value": value.astype(np.float64),
                "token": token,
            }
            if err is not None:
                frame["std_error"] = err.astype(np.float64)
            parts.append(pd.DataFrame(frame))
        return pd.concat(parts, ignore_index=True)

    def word_frame(self, dataset: MultimodalDataset) -> pd.DataFrame | None:
        """Long table of the words of token modalities: instance, modality, word, text, value, pieces, position
        (the word's first piece) and ``std_error`` for estimates; None without token modalities."""
        if not self.word_values:
            return None
        rows = self.rows()
        parts = []
        for name, vals in self.word_values.items():
            modality = dataset[name]
            index = modality.word_index[rows]
            counts = modality.word_counts()[rows]
            r = np.repeat(np.arange(len(rows)), counts)
            w = np.concatenate([np.arange(c) for c in counts]) if len(counts) else np.zeros(0, np.int64)
            pieces = np.zeros(len(r), np.int64)
            first = np.zeros(len(r), np.int64)
            k = 0
            for i, c in enumerate(counts):
                owner = index[i]
                for word in range(c):
                    steps = np.flatnonzero(owner == word)
                    pieces[k], first[k] = len(steps), steps[0]
                    k += 1
            texts = modality.word_texts
            frame = {
                "instance": rows[r].astype(np.int64),
                "modality": np.full(len(r), name, dtype=object),
                "word": w.astype(np.int64),
                "text": np.array(
                    [None if texts is None else texts[rows[i]][j] for i, j in zip(r, w, strict=True)], dtype=object
                ),
                "value": vals[r, w].astype(np.float64),
                "pieces": pieces,
                "position": first,
            }
            if self.word_std_error is not None:
                frame["std_error"] = self.word_std_error[name][r, w].astype(np.float64)
            parts.append(pd.DataFrame(frame))
        return pd.concat(parts, ignore_index=True)


# -- player layout and masked evaluation ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    """Where each modality's players sit in one flat vector of ``S`` player slots."""

    granularity: str
    names: tuple[str, ...]
    offsets: tuple[int, ...]
    sizes: tuple[int, ...]
    players: str = "steps"

    @property
    def n_slots(self) -> int:
        return self.offsets[-1] + self.sizes[-1]

    def split(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """Cut ``[..., S]`` into per-modality ``[..., T_m or D_m or T_m * D_m]`` arrays."""
        return {m: flat[..., o : o + s] for m, o, s in zip(self.names, self.offsets, self.sizes, strict=True)}

    def shaped(self, flat: np.ndarray, dataset: MultimodalDataset) -> dict[str, np.ndarray]:
        """Per-modality copies ``[N, T_m]``, ``[N, D_m]`` or, for cells, ``[N, T_m, D_m]``."""
        out = {}
        for m, part in self.split(flat).items():
            if self.granularity == "cells":
                part = part.reshape(len(part), dataset[m].n_steps, dataset[m].named_features)
            out[m] = part.copy()
        return out


def _layout(predictor: Predictor, dataset: MultimodalDataset, granularity: str, players: str = "steps") -> _Layout:
    if granularity not in GRANULARITIES:
        raise AttributionError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
    if players not in PLAYERS:
        raise AttributionError(f"players must be one of {PLAYERS}, got {players!r}")
    names = tuple(predictor.modalities)
    missing = [m for m in names if m not in dataset.modalities]
    if missing:
        raise AttributionError(f"the predictor reads modalities {missing} that dataset {dataset.name!r} lacks")
    bind_masker(predictor, dataset)
    if granularity == "steps":
        sizes = tuple(dataset[m].n_steps for m in names)
    elif granularity == "features":  # token ids and image pixels have no named features: no players at this level
        sizes = tuple(dataset[m].named_features for m in names)
    else:  # cells, step-major: slot t * D + d (none without named features)
        sizes = tuple(dataset[m].n_steps * dataset[m].named_features for m in names)
    offsets = tuple(int(x) for x in np.cumsum((0,) + sizes[:-1]))
    return _Layout(granularity, names, offsets, sizes, players if granularity == "steps" else "steps")


def bind_masker(predictor: Predictor, dataset: MultimodalDataset) -> None:
    """Let the predictor's masker learn the dataset's token and patch modalities (a masker without ``bind`` is
    taken as it is)."""
    bind = getattr(predictor.masker, "bind", None)
    if bind is not None:
        bind(dataset)


def _player_mask(dataset: MultimodalDataset, layout: _Layout, rows: np.ndarray) -> np.ndarray:
    """``[B, S]``: True for slots that are players of each instance (real steps -- for token modalities real pieces
    that are not special tokens; features of a non-empty modality)."""
    parts = []
    for m, size in zip(layout.names, layout.sizes, strict=True):
        if layout.granularity == "steps":
            parts.append(dataset[m].player_mask()[rows])
        elif layout.granularity == "cells":
            parts.append(np.repeat(dataset[m].player_mask()[rows], size // dataset[m].n_steps, axis=1))
        else:
            parts.append(np.repeat(dataset[m].step_mask()[rows].any(1, keepdims=True), size, 1))
    return np.concatenate(parts, axis=1)


def _player_groups(dataset: MultimodalDataset, layout: _Layout, rows: np.ndarray) -> np.ndarray:
    """``[B, S]`` int: the player each slot belongs to (0 .. P-1 in slot order), -1 for slots that are not players.

    A player is one slot, except with ``players="words"``, where all pieces of a token modality's word are one.
    """
    keys = []
    for m, size in zip(layout.names, layout.sizes, strict=True):
        modality = dataset[m]
        if layout.granularity == "steps":
            playing = modality.player_mask()[rows]
            unit = modality.word_index[rows] if layout.players == "words" and modality.tokens is not None else None
            if unit is None:
                unit = np.broadcast_to(np.arange(size), playing.shape)
        elif layout.granularity == "cells":  # every cell of a real step; slot t * D + d
            playing = np.repeat(modality.player_mask()[rows], size // modality.n_steps, axis=1)
            unit = np.broadcast_to(np.arange(size), playing.shape)
        else:
            playing = np.repeat(modality.step_mask()[rows].any(1, keepdims=True), size, 1)
            unit = np.broadcast_to(np.arange(size), playing.shape)
        keys.append(np.where(playing, unit, -1))
    key = np.concatenate(keys, axis=1) if keys else np.zeros((len(rows), 0), np.int64)
    # a new player starts wherever a playing slot's unit differs from the previous playing slot's, or a modality
    # begins; units never decrease within a modality, so this numbers the players 0, 1, 2 ... in slot order
    playing = key >= 0
    starts = playing.copy()
    for o, size in zip(layout.offsets, layout.sizes, strict=True):
        if size < 2:
            continue
        seg, on = key[:, o : o + size], playing[:, o : o + size]
        last = np.maximum.accumulate(np.where(on, np.arange(size), -1), axis=1)
        prev_slot = np.concatenate([np.full((len(key), 1), -1), last[:, :-1]], axis=1)
        prev_unit = np.where(prev_slot >= 0, np.take_along_axis(seg, np.maximum(prev_slot, 0), axis=1), -1)
        starts[:, o : o + size] = on & (seg != prev_unit)
    return np.where(playing, np.cumsum(starts, axis=1) - 1, -1)


def _evaluate(
    predictor: Predictor,
    dataset: MultimodalDataset,
    layout: _Layout,
    inst: np.ndarray,
    keep: np.ndarray,
    batch_size: int,
) -> np.ndarray:
    """Model outputs ``[R, K]`` for rows ``(inst[r], keep[r])``: dataset row ``inst[r]`` with the player slots where
    ``keep[r]`` is False replaced by the baseline (padded steps and special tokens always keep their values)."""
    batches = _inputs(predictor, dataset, layout, inst, keep, batch_size)
    return np.concatenate([predictor.predict(values, masks) for values, masks in batches], axis=0)


def _inputs(
    predictor: Predictor,
    dataset: MultimodalDataset,
    layout: _Layout,
    inst: np.ndarray,
    keep: np.ndarray,
    batch_size: int,
) -> Iterator[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]:
    """The model inputs :func:`_evaluate` predicts on, as ``(values, masks)`` batches of at most ``batch_size``
    rows (fewer for very wide inputs), made as they are asked for."""
    cells_per_row = sum(int(np.prod(dataset[m].values.shape[1:])) for m in layout.names)
    step = max(1, min(batch_size, MAX_BATCH_CELLS // max(cells_per_row, 1)))
    for start in range(0, len(inst), step):
        rows, k = inst[start : start + step], keep[start : start + step]
        values, masks = {}, {}
        uniq, local = np.unique(rows, return_inverse=True)
        for m, part in layout.split(k).items():
            modality = dataset[m]
            real = modality.step_mask()[rows]
            if layout.granularity == "steps":
                # one gather from [instances..., their baselines]: a row's step comes from its instance when kept
                # (or not a player), else from the instance's baseline -- a single pass instead of a copy + np.where
                t = modality.n_steps
                own = modality.values[uniq]
                table = np.concatenate([own, predictor.masker.fill(m, own)])
                playing = modality.player_mask()[rows]
                source = (
                    np.where(part | ~playing, local[:, None], local[:, None] + len(uniq)) * t + np.arange(t)[None, :]
                )
                cells = table.reshape(2 * len(uniq) * t, -1)
                taken = np.take(cells, source.ravel(), axis=0)
                values[m] = taken.reshape(len(rows), t, *table.shape[2:])
            elif part.shape[1] == 0:  # no named features (token ids, image pixels): the values stay as they are
                values[m] = modality.values[rows]
            elif layout.granularity == "cells":
                cell = part.reshape(len(rows), modality.n_steps, -1) | ~real[:, :, None]
                values[m] = predictor.masker.apply(m, modality.values[rows], cell)
            else:
                cell = part[:, None, :] | ~real[:, :, None]
                values[m] = predictor.masker.apply(m, modality.values[rows], cell)
            masks[m] = real
        yield values, masks


def _chunks(sizes: np.ndarray, budget: int) -> Iterator[slice]:
    """Consecutive instance slices whose summed row counts reach about ``budget`` (at least one instance each)."""
    start, acc = 0, 0
    for i, s in enumerate(sizes):
        acc += int(s)
        if acc >= budget:
            yield slice(start, i + 1)
            start, acc = i + 1, 0
    if start < len(sizes):
        yield slice(start, len(sizes))


def _empty_result(layout: _Layout, n: int, with_se: bool) -> tuple[np.ndarray, np.ndarray | None]:
    vals = np.zeros((n, layout.n_slots))
    return vals, (np.full((n, layout.n_slots), np.nan) if with_se else None)


class _Words:
    """The words of the token modalities of a steps layout: where each sits, and their values per instance."""

    def __init__(self, dataset: MultimodalDataset, layout: _Layout, rows: np.ndarray, with_se: bool) -> None:
        self.names = [m for m in layout.names if layout.granularity == "steps" and dataset[m].tokens is not None]
        self.offsets = dict(zip(layout.names, layout.offsets, strict=True))
        self.index = {m: dataset[m].word_index[rows] for m in self.names}
        width = {m: int(dataset[m].word_counts()[rows].max(initial=0)) for m in self.names}
        self.values = {m: np.zeros((len(rows), width[m])) for m in self.names}
        self.se = {m: np.full((len(rows), width[m]), np.nan) for m in self.names} if with_se else None

    def record(self, i: int, groups: np.ndarray, size: np.ndarray, phi: np.ndarray, samples: np.ndarray | None) -> None:
        """Instance ``i``'s word values from its players' values ``phi`` (and their samples): ``groups`` gives each
        slot's player, ``size`` each player's number of slots (a slot holds that share of its player)."""
        for m in self.names:
            index, o = self.index[m][i], self.offsets[m]
            words = int(index.max(initial=-1)) + 1
            if not words:
                continue
            on = np.flatnonzero(index >= 0)
            g = groups[o + on]
            share = np.zeros((len(phi), words))  # [P, W]: the part of each player in each word
            np.add.at(share, (g, index[on]), 1.0 / size[g])
            self.values[m][i, :words] = phi @ share
            if self.se is not None and samples is not None and len(samples) > 1:
                per_word = samples @ share
                self.se[m][i, :words] = per_word.std(0, ddof=1) / np.sqrt(len(per_word))

    def result(self, done: int | None = None) -> tuple[dict | None, dict | None]:
        if not self.names:
            return None, None
        cut = slice(None) if done is None else slice(0, done)
        values = {m: v[cut].copy() for m, v in self.values.items()}
        se = None if self.se is None else {m: v[cut].copy() for m, v in self.se.items()}
        return values, se


def _package(
    layout: _Layout,
    dataset: MultimodalDataset,
    method: str,
    vals: np.ndarray,
    se: np.ndarray | None,
    n_eval: int,
    rows: np.ndarray,
    target: np.ndarray,
    pred: np.ndarray,
    base: np.ndarray,
    info: dict,
    words: tuple[dict | None, dict | None] = (None, None),
) -> FeatureAttribution:
    return FeatureAttribution(
        granularity=layout.granularity,
        values=layout.shaped(vals, dataset),
        std_error=None if se is None else layout.shaped(se, dataset),
        method=method,
        n_evaluations=int(n_eval),
        instances=rows.copy(),
        target=target.copy(),
        prediction=pred.copy(),
        base_value=base.copy(),
        info=dict(info),
        players=layout.players,
        word_values=words[0],
        word_std_error=words[1],
    )


def _run_chunked(
    predictor: Predictor,
    dataset: MultimodalDataset,
    layout: _Layout,
    rows: np.ndarray,
    target: np.ndarray | int | None,
    rows_per_instance: np.ndarray,
    plan: Callable[[int, np.ndarray], tuple[np.ndarray, Any]],
    finish: Callable[[np.ndarray, Any, int], tuple[np.ndarray, np.ndarray | None]],
    *,
    method: str,
    with_se: bool,
    batch_size: int,
    progress: bool,
    desc: str,
    info: dict,
) -> FeatureAttribution:
    """Shared driver: plan each instance's keep-rows, evaluate a chunk of instances in big batches, finish each.

    ``plan(row, groups)`` gets the player of each slot (``groups [S]``, -1 for slots that are not players) and
    returns ``keep [R_i, S]`` whose first two rows are the full and the empty coalition, and any state;
    ``finish(values [R_i], state, n_players)`` returns the instance's player values and their independent samples
    (``[n_samples, P]``, or None for exact methods), from which the standard errors come.
    """
    n = len(rows)
    vals, se = _empty_result(layout, n, with_se)
    tgt, pred, base = np.zeros(n, np.int64), np.zeros(n), np.zeros(n)
    words = _Words(dataset, layout, rows, with_se)
    n_eval, done = 0, 0
    bar = tqdm(total=n, desc=desc, unit="inst", disable=not progress, leave=False)

    cells_per_row = sum(int(np.prod(dataset[m].values.shape[1:])) for m in layout.names)

    def prepare(sl: slice) -> tuple[np.ndarray, list, np.ndarray, Iterable]:
        groups = _player_groups(dataset, layout, rows[sl])
        plans = [plan(int(r), g) for r, g in zip(rows[sl], groups, strict=True)]
        keep = np.concatenate([k for k, _ in plans], axis=0)
        inst = np.repeat(rows[sl], [len(k) for k, _ in plans])
        batches = _inputs(predictor, dataset, layout, inst, keep, batch_size)
        # a chunk's inputs are made ahead only when they fit one batch's memory; wider ones as they are predicted
        return groups, plans, inst, list(batches) if len(inst) * cells_per_row <= MAX_BATCH_CELLS else batches

    # the next chunk's walks and masked inputs are made on a thread of their own while the model runs on this
    # one: on a machine of few cores, that work would otherwise leave the model's threads idle
    chunks = list(_chunks(rows_per_instance, batch_size))
    ahead = ThreadPoolExecutor(1, thread_name_prefix="modalens-prepare")
    try:
        coming = ahead.submit(prepare, chunks[0]) if chunks else None
        for c, sl in enumerate(chunks):
            groups, plans, inst, batches = coming.result()
            coming = ahead.submit(prepare, chunks[c + 1]) if c + 1 < len(chunks) else None
            out = np.concatenate([predictor.predict(values, masks) for values, masks in batches], axis=0)
            del batches
            n_eval += len(inst)
            bounds = np.cumsum([0] + [len(k) for k, _ in plans])
            t = pick_target(predictor.output_kind, target, out[bounds[:-1]], sl)
            for j, (i, (_, state)) in enumerate(zip(range(sl.start, sl.stop), plans, strict=True)):
                v = out[bounds[j] : bounds[j + 1], t[j]]
                tgt[i], pred[i], base[i] = t[j], v[0], v[1]
                g = groups[j]
                playing = g >= 0
                if se is not None:
                    se[i, ~playing] = 0.0  # not a player: exactly 0
                if not playing.any():
                    continue
                p = int(g.max()) + 1
                phi, samples = finish(v, state, p)
                size = np.bincount(g[playing], minlength=p).astype(np.float64)
                vals[i, playing] = (phi / size)[g[playing]]  # a word's pieces share its value equally
                if se is not None and samples is not None and len(samples) > 1:
                    err = samples.std(0, ddof=1) / np.sqrt(len(samples))
                    se[i, playing] = (err / size)[g[playing]]
                words.record(i, g, size, phi, samples)
            done = sl.stop
            bar.update(sl.stop - sl.start)
    except KeyboardInterrupt:
        part = _package(
            layout,
            dataset,
            method,
            vals[:done],
            None if se is None else se[:done],
            n_eval,
            rows[:done],
            tgt[:done],
            pred[:done],
            base[:done],
            info,
            words.result(done),
        )
        raise InterruptedExplanation(rows[:done], part) from None
    finally:
        ahead.shutdown(wait=False, cancel_futures=True)
        bar.close()
    return _package(layout, dataset, method, vals, se, n_eval, rows, tgt, pred, base, info, words.result())


# -- permutation sampling ---------------------------------------------------------------------------------------


@register_method(
    "permutation",
    "feature",
    description="Monte-Carlo Shapley values from antithetic, orthogonal permutation walks; any model",
    batches_across_instances=True,
    gives_standard_errors=True,
    aliases=("permutation_shapley",),
)
def permutation_shapley(
    predictor: Predictor,
    dataset: MultimodalDataset,
    *,
    granularity: str = "steps",
    target: int | np.ndarray | None = None,
    n_permutations: int = 16,
    antithetic: bool = True,
    orders: str = "orthogonal",
    batch_size: int = 4096,
    seed: int = 0,
    progress: bool = True,
    index: np.ndarray | None = None,
    players: str = "steps",
) -> FeatureAttribution:
    """Monte-Carlo Shapley values of steps or features by permutation sampling, batched across instances.

    For each instance, a random order of its players is walked from the empty coalition (all players at the
    baseline) to the full input, adding one player at a time; each player is credited with the change in output
    when it joins. The mean over permutations is an unbiased estimate of its Shapley value, and every single
    permutation already shares out ``f(x) - f(all masked)`` exactly, so efficiency holds for any number of
    permutations, and additive models are attributed exactly.

    Cost: the empty and full coalitions are shared by all walks of an instance, so ``n_permutations`` walks over
    ``P`` players cost ``2 + n_permutations * (P - 1)`` model rows. The rows of many instances and walks are
    stacked into model calls of about ``batch_size`` rows; instances are streamed in chunks.

    Parameters
    ----------
    predictor
        Any modalens predictor (``predict(values, masks)`` and a ``masker``).
    dataset
        The instances to explain.
    granularity
        ``"steps"`` (a player per real step of each modality) or ``"features"`` (a player per named feature).
    target
        The output explained: None takes column 0 for regression and the predicted class of each instance for
        classification; an int takes that column; an int array gives one column per dataset row (or per explained
        instance when ``index`` is given and its length matches).
    n_permutations
        Walks per instance. With ``antithetic`` they come in pairs (a random order and its reverse); an odd count
        is rounded up to the next even one.
    antithetic
        Pair each random order with its reverse. The two walks credit each player with opposite halves of the
        orders, which cancels much of the sampling noise for nearly additive models.
    orders
        How the random orders are drawn. ``"orthogonal"`` (default): from blocks of mutually orthogonal random
        directions (a block covers up to ``P - 1`` orders), so an instance's orders spread out; each order is still
        uniformly random, so the estimate stays unbiased, and its error is 16-27 % lower at equal cost from 16 walks
        up on the reference model (``docs/benchmarks.md``). The reported standard error treats the orders as
        independent, which overstates it somewhat. ``"random"``: independent uniform orders.
    batch_size
        Model rows per call (lowered automatically for very wide inputs).
    seed
        Each instance draws its orders from ``(seed, dataset row)``, so results do not depend on ``batch_size``
        or on which other instances are explained.
    progress
        Show a tqdm bar over instances.
    index
        Dataset rows to explain (ints or a boolean mask); all by default.
    players
        At the ``"steps"`` granularity: ``"steps"`` (every step, word piece and patch a player) or ``"words"`` (the
        pieces of each word of a token modality one player, absent together; other modalities as ``"steps"``).

    Returns
    -------
    FeatureAttribution
        With ``std_error``: the standard error of each value across independent samples (antithetic pairs count
        as one sample); NaN with fewer than two samples. ``convergence()`` summarises it.

    Raises
    ------
    InterruptedExplanation
        On Ctrl-C; ``.finished`` holds the dataset rows whose attributions are complete and ``.partial`` a
        :class:`FeatureAttribution` for exactly those rows.
    """
    if n_permutations < 1:
        raise AttributionError(f"n_permutations must be at least 1, got {n_permutations}")
    if orders not in ORDERS:
        raise AttributionError(f"orders must be one of {ORDERS}, got {orders!r}")
    if batch_size < 1:
        raise AttributionError(f"batch_size must be at least 1, got {batch_size}")
    walks = n_permutations + (n_permutations % 2 if antithetic else 0)
    layout = _layout(predictor, dataset, granularity, players)
    rows = resolve_index(dataset, index)
    tgt = check_target(target, len(dataset), rows)
    groups_all = _player_groups(dataset, layout, rows)
    n_players = groups_all.max(axis=1, initial=-1) + 1
    cost = 2 + walks * np.maximum(n_players - 1, 0)
    info = {
        "n_permutations": walks,
        "antithetic": antithetic,
        "orders": orders,
        "seed": seed,
        "batch_size": batch_size,
        "players": layout.players,
    }
    if orders == "grid":
        grid = _GridWalks(layout, walks, antithetic, seed)
        cost = 2 + walks * grid.rows_per_walk(groups_all)
        return _run_chunked(
            predictor,
            dataset,
            layout,
            rows,
            tgt,
            cost,
            grid.plan,
            grid.finish,
            method="permutation",
            with_se=True,
            batch_size=batch_size,
            progress=progress,
            desc="feature Shapley (grid)",
            info=info,
        )

    def plan(row: int, groups: np.ndarray) -> tuple[np.ndarray, Any]:
        playing = groups >= 0
        p = int(groups.max(initial=-1)) + 1
        slots = np.flatnonzero(playing)
        ends = np.stack([playing, np.zeros_like(playing)])
        if p < 2:  # 0 or 1 player: the full and empty coalitions decide everything
            return ends, None
        rng = np.random.default_rng((seed, row))
        base = walks // 2 if antithetic else walks
        keys = _orthogonal_directions(rng, base, p) if orders == "orthogonal" else rng.random((base, p))
        rank = np.argsort(np.argsort(keys, axis=1), axis=1)  # rank[w, j]: step where j joins
        if antithetic:
            rank = np.concatenate([rank, p - 1 - rank])
        # prefix k (1 .. p-1) of walk w keeps the players that joined before step k
        inner = rank[:, None, :] < np.arange(1, p)[None, :, None]  # [W, p-1, p]
        keep = np.zeros((walks * (p - 1), groups.size), dtype=bool)
        keep[:, slots] = inner.reshape(-1, p)[:, groups[slots]]
        return np.concatenate([ends, keep]), rank

    def finish(v: np.ndarray, rank: np.ndarray | None, p: int) -> tuple[np.ndarray, np.ndarray | None]:
        if rank is None:  # one player: exact, and a "sample" with no spread
            return np.array([v[0] - v[1]]), np.array([[v[0] - v[1]], [v[0] - v[1]]])
        path = np.concatenate([np.full((walks, 1), v[1]), v[2:].reshape(walks, p - 1), np.full((walks, 1), v[0])], 1)
        gain = np.diff(path, axis=1)  # gain[w, k]: change when the k-th player of walk w joins
        credit = np.take_along_axis(gain, rank, axis=1)  # credit[w, j]: player j's marginal in walk w
        samples = 0.5 * (credit[: walks // 2] + credit[walks // 2 :]) if antithetic else credit
        return credit.mean(0), samples

    return _run_chunked(
        predictor,
        dataset,
        layout,
        rows,
        tgt,
        cost,
        plan,
        finish,
        method="permutation",
        with_se=True,
        batch_size=batch_size,
        progress=progress,
        desc="feature Shapley",
        info=info,
    )


def attribute_cells(
    predictor: Predictor,
    dataset: MultimodalDataset,
    rows: Any,
    *,
    n_permutations: int = 8,
    seed: int = 0,
    batch_size: int = 4096,
    target: int | np.ndarray | None = None,
) -> FeatureAttribution:
    """The feature x step heat map of a few instances: :func:`permutation_shapley` at the ``"cells"`` granularity.

    Each named feature at each real step of each modality is a player (padded steps are not; token and patch
    modalities, without named features, keep their values). The estimator is the same (antithetic, orthogonal
    walks; seeded per dataset row, so an instance's cells do not depend on which others are asked), so each
    instance's cells add up to ``f(x) - f(every cell masked)`` for any number of walks, and an additive model's
    cells are exact. An instance with P cells costs ``2 + n_permutations * (P - 1)`` model rows (the demo's 20 x 77
    cells: about 8,400 rows at 8 walks).

    Parameters
    ----------
    rows
        Dataset row numbers (an int or a sequence of ints) to attribute.
    target
        The output explained, as in :func:`permutation_shapley` (default: the predicted class, or column 0).

    Returns
    -------
    FeatureAttribution
        ``values[m]`` is ``[len(rows), T, D]``; ``.to_frame(dataset)`` gives ``feature_attributions`` rows with
        ``position >= 0`` and the feature's name; ``.seconds`` is the wall time and ``.evaluations`` the model rows.
    """
    index = np.atleast_1d(np.asarray(rows))
    if index.ndim != 1 or index.size == 0 or not np.issubdtype(index.dtype, np.integer):
        raise AttributionError(f"rows: expected one or more dataset row numbers, got {rows!r}")
    if predictor.masker.needs_fit:  # as explain() does when no baseline data is given
        predictor.masker.fit(dataset)
    clock = time.perf_counter()
    result = permutation_shapley(
        predictor,
        dataset,
        granularity="cells",
        target=target,
        n_permutations=n_permutations,
        batch_size=batch_size,
        seed=seed,
        progress=False,
        index=index,
    )
    result.seconds = time.perf_counter() - clock
    return result


MAX_GRID_ROWS = 2**16
"""``orders="grid"``: at most this many coalitions per walk (the product over modalities of players + 1)."""


class _GridWalks:
    """``orders="grid"``: a walk orders the players *within* each modality; every interleaving of the modalities'
    orders is then averaged exactly instead of sampled.

    A uniform random order of all players is a uniform order within each modality plus a uniform interleaving of
    the modalities, independent of each other. Given the within-modality orders, the coalitions a walk can meet are
    the grid of prefixes ``(k_1, ..., k_M)`` (the first ``k_m`` players of modality m); evaluating the whole grid
    gives each player's marginal averaged over every interleaving, weighted by the chance that an interleaving
    puts ``j_n`` players of each other modality before it. The estimate stays unbiased and its variance can only
    fall (Rao-Blackwell). It costs ``prod(a_m + 1)`` model rows per walk instead of ``P - 1``, but a predictor that
    encodes each modality on its own (:class:`~modalens.models.vlm.ImageTextPredictor`) encodes only ``a_m + 1``
    inputs of each modality per walk -- as many as a plain walk -- the rest of the grid being cheap scores.
    """

    def __init__(self, layout: _Layout, walks: int, antithetic: bool, seed: int) -> None:
        self.walks, self.antithetic, self.seed = walks, antithetic, seed
        self.slot_modality = np.repeat(np.arange(len(layout.names)), layout.sizes)
        self.n_modalities = len(layout.names)
        self._weights: dict[tuple[int, ...], list[np.ndarray]] = {}

    def sizes(self, groups: np.ndarray) -> tuple[list[np.ndarray], tuple[int, ...]]:
        """Each modality's players (ids) and the count per modality."""
        playing = np.flatnonzero(groups >= 0)
        owner = np.zeros(int(groups.max(initial=-1)) + 1, dtype=np.int64)
        owner[groups[playing]] = self.slot_modality[playing]
        blocks = [np.flatnonzero(owner == m) for m in range(self.n_modalities)]
        return blocks, tuple(len(b) for b in blocks)

    def rows_per_walk(self, groups_all: np.ndarray) -> np.ndarray:
        counts = np.array([int(np.prod([a + 1 for a in self.sizes(g)[1]])) for g in groups_all], dtype=np.int64)
        if len(counts) and counts.max() > MAX_GRID_ROWS:
            raise AttributionError(
                f"orders='grid' evaluates every prefix of every modality per walk: {int(counts.max())} coalitions "
                f"for one instance, over {MAX_GRID_ROWS}; use orders='orthogonal'"
            )
        return counts

    def plan(self, row: int, groups: np.ndarray) -> tuple[np.ndarray, Any]:
        playing = groups >= 0
        p = int(groups.max(initial=-1)) + 1
        slots = np.flatnonzero(playing)
        ends = np.stack([playing, np.zeros_like(playing)])
        if p < 2:
            return ends, None
        blocks, sizes = self.sizes(groups)
        rng = np.random.default_rng((self.seed, row))
        base = self.walks // 2 if self.antithetic else self.walks
        orders = []  # per modality: [W, a_m] the players in the order they join
        for block in blocks:
            a = len(block)
            keys = _orthogonal_directions(rng, base, a) if a > 1 else np.zeros((base, a))
            order = np.argsort(keys, axis=1)
            if self.antithetic:
                order = np.concatenate([order, order[:, ::-1]])
            orders.append(block[order])
        position = np.zeros((self.walks, p), dtype=np.int64)  # where each player stands in its modality's order
        for order, a in zip(orders, sizes, strict=True):
            np.put_along_axis(position, order, np.broadcast_to(np.arange(a), order.shape), axis=1)
        owner = np.zeros(p, dtype=np.int64)
        for m, block in enumerate(blocks):
            owner[block] = m
        prefixes = np.indices(tuple(a + 1 for a in sizes)).reshape(len(sizes), -1).T  # [G, M]
        member = position[:, None, :] < prefixes[None, :, owner]  # [W, G, p]
        keep = np.zeros((member.shape[0] * member.shape[1], groups.size), dtype=bool)
        keep[:, slots] = member.reshape(-1, p)[:, groups[slots]]
        return np.concatenate([ends, keep]), (orders, sizes)

    def finish(self, v: np.ndarray, state: Any, p: int) -> tuple[np.ndarray, np.ndarray | None]:
        if state is None:
            return np.array([v[0] - v[1]]), np.array([[v[0] - v[1]], [v[0] - v[1]]])
        orders, sizes = state
        grid = v[2:].reshape(self.walks, *(a + 1 for a in sizes))
        credit = np.zeros((self.walks, p))
        for m, (order, weight) in enumerate(zip(orders, self.weights(sizes), strict=True)):
            if not sizes[m]:
                continue
            gain = np.diff(grid, axis=1 + m)  # the i-th joiner of modality m, at every prefix of the others
            others = tuple(ax for ax in range(1, grid.ndim) if ax != 1 + m)
            per_position = (gain * weight[None]).sum(axis=others)  # [W, a_m]
            np.put_along_axis(credit, order, per_position, axis=1)
        half = self.walks // 2
        samples = 0.5 * (credit[:half] + credit[half:]) if self.antithetic else credit
        return credit.mean(0), samples

    def weights(self, sizes: tuple[int, ...]) -> list[np.ndarray]:
        """Per modality m: over the grid with axis m holding positions i = 1..a_m, the chance that a uniform
        interleaving puts ``j_n`` players of each other modality n before the i-th player of m."""
        if sizes not in self._weights:
            from scipy.special import gammaln

            total = sum(sizes)
            norm = gammaln(total + 1) - sum(gammaln(a + 1) for a in sizes)
            out = []
            for m, a_m in enumerate(sizes):
                shape = tuple(a_m if n == m else a + 1 for n, a in enumerate(sizes))
                idx = np.indices(shape)
                i = idx[m] + 1  # the position in modality m, 1-based
                others = [idx[n] for n in range(len(sizes)) if n != m]
                before = sum(others) if others else np.zeros(shape)
                log_w = (
                    gammaln(i + before)  # (i - 1 + J)!
                    - gammaln(i)
                    - sum(gammaln(j + 1) for j in others)
                    + gammaln(total - i - before + 1)
                    - gammaln(a_m - i + 1)
                    - sum(gammaln(sizes[n] - idx[n] + 1) for n in range(len(sizes)) if n != m)
                    - norm
                )
                out.append(np.exp(log_w))
            self._weights[sizes] = out
        return self._weights[sizes]


def _orthogonal_directions(rng: np.random.Generator, n: int, p: int) -> np.ndarray:
    """``n`` directions in R^p orthogonal to the all-ones vector, in blocks of up to ``p - 1`` mutually orthogonal ones.

    Sorting a direction's entries gives an order of the players. Each direction alone is uniform on its sphere, so
    its order is a uniformly random permutation (the estimate stays unbiased); within a block the directions are
    orthogonal, so their orders spread over the permutohedron instead of clumping (after the orthogonal spherical
    codes of Mitchell et al., JMLR 2022).
    """
    out, have = [], 0
    while have < n:
        k = min(n - have, p - 1)  # a block: as many orthogonal directions as are still needed, at most p - 1
        g = rng.standard_normal((p, k))
        g -= g.mean(axis=0, keepdims=True)  # project onto the complement of the all-ones vector
        q, r = np.linalg.qr(g)
        out.append((q * np.sign(np.diag(r))).T)  # sign fix: each column uniform on the sphere
        have += k
    return np.concatenate(out)


# -- exact enumeration ------------------------------------------------------------------------------------------


@register_method(
    "exact",
    "feature",
    description="Exact Shapley values from all 2^P coalitions of each instance's players (small inputs)",
    batches_across_instances=True,
    exact=True,
    aliases=("exact_feature_shapley",),
)
def exact_feature_shapley(
    predictor: Predictor,
    dataset: MultimodalDataset,
    *,
    granularity: str = "steps",
    target: int | np.ndarray | None = None,
    batch_size: int = 4096,
    progress: bool = True,
    index: np.ndarray | None = None,
    max_players: int = MAX_EXACT_PLAYERS,
    players: str = "steps",
) -> FeatureAttribution:
    """Exact Shapley values of steps or features by evaluating every coalition of each instance's players.

    Costs ``2**P`` model rows for an instance with ``P`` players, so it is meant for small inputs: tests and
    benchmarks use it as the reference for the estimators. Arguments as :func:`permutation_shapley`.

    Raises
    ------
    AttributionError
        When an instance has more than ``max_players`` players (default 14, i.e. 16,384 rows per instance).
    """
    if batch_size < 1:
        raise AttributionError(f"batch_size must be at least 1, got {batch_size}")
    layout = _layout(predictor, dataset, granularity, players)
    rows = resolve_index(dataset, index)
    tgt = check_target(target, len(dataset), rows)
    n_players = _player_groups(dataset, layout, rows).max(axis=1, initial=-1) + 1
    if len(rows) and n_players.max() > max_players:
        worst = int(rows[int(n_players.argmax())])
        raise AttributionError(
            f"exact_feature_shapley enumerates 2**P coalitions and accepts at most {max_players} players per "
            f"instance; dataset row {worst} has {int(n_players.max())} {granularity} players. Use "
            "permutation_shapley, or granularity='features' / fewer steps"
        )

    def plan(row: int, groups: np.ndarray) -> tuple[np.ndarray, Any]:
        playing = groups >= 0
        p = int(groups.max(initial=-1)) + 1
        member = subset_membership(p)
        keep = np.zeros((2 + 2**p, groups.size), dtype=bool)
        keep[0] = playing
        slots = np.flatnonzero(playing)
        keep[2:, slots] = member[:, groups[slots]]
        return keep, None

    def finish(v: np.ndarray, state: Any, p: int) -> tuple[np.ndarray, np.ndarray | None]:
        return v[2:] @ shapley_weights(p), None

    return _run_chunked(
        predictor,
        dataset,
        layout,
        rows,
        tgt,
        2 + 2.0**n_players,
        plan,
        finish,
        method="exact",
        with_se=False,
        batch_size=batch_size,
        progress=progress,
        desc="exact feature Shapley",
        info={"max_players": max_players, "players": layout.players},
    )


# -- Integrated Gradients ---------------------------------------------------------------------------------------


@register_method(
    "integrated_gradients",
    "feature",
    description="captum's Integrated Gradients from the masker baseline to the input; differentiable models",
    needs_gradients=True,
    batches_across_instances=True,
    aliases=("ig",),
)
def integrated_gradients(
    predictor: Predictor,
    dataset: MultimodalDataset,
    *,
    granularity: str = "steps",
    target: int | np.ndarray | None = None,
    n_steps: int = 32,
    batch_size: int = 4096,
    progress: bool = True,
    index: np.ndarray | None = None,
    integration: str = "gausslegendre",
) -> FeatureAttribution:
    """Integrated Gradients (captum) from the masker baseline to the input, summed to steps or features.

    Each cell ``(t, d)`` gets ``(x - b) * mean gradient along the straight path from b to x``; a step's value sums
    its D cells, a feature's value its cells over all real steps. The baseline ``b`` is the predictor's masker
    baseline on real steps and the input itself on padded steps (so padding gets 0), which makes the values share
    out ``f(x) - f(all masked)`` like the Shapley methods, up to the integration error reported in
    ``info["max_completeness_gap"]``.

    Parameters
    ----------
    predictor
        A predictor that declares ``supports_gradients`` (a :class:`~modalens.models.predictor.TorchPredictor`
        over a differentiable module, or any :class:`~modalens.models.predictor.GradientPredictor`); others are
        refused with a :class:`~modalens.interactions.methods.CapabilityError`.
    n_steps
        Integration points along the path.
    batch_size
        Model rows (instances x points) per captum call.
    integration
        captum's ``method``: ``"gausslegendre"`` (default) or a Riemann rule such as ``"riemann_trapezoid"``.

    Other arguments as :func:`permutation_shapley`.
    """
    get_method("integrated_gradients").check(predictor)  # the declared capability, before any work
    model = cast(GradientPredictor, predictor)
    if n_steps < 2:
        raise AttributionError(f"n_steps must be at least 2, got {n_steps}")
    import torch
    from captum.attr import IntegratedGradients

    layout = _layout(predictor, dataset, granularity)
    tokens = [m for m in layout.names if dataset[m].tokens is not None]
    if tokens:
        raise AttributionError(
            f"integrated_gradients differentiates the model's inputs, and modality {tokens[0]!r} holds token ids "
            "(no gradient): use a model-agnostic method (exact, permutation)"
        )
    rows = resolve_index(dataset, index)
    tgt_spec = check_target(target, len(dataset), rows)
    names = layout.names
    n = len(rows)
    vals = np.zeros((n, layout.n_slots))
    tgt, pred, base_out = np.zeros(n, np.int64), np.zeros(n), np.zeros(n)
    n_eval, done, max_gap = 0, 0, 0.0

    def forward(*args: Any) -> Any:
        tensors = dict(zip(names, args[: len(names)], strict=True))
        masks = dict(zip(names, args[len(names) :], strict=True))
        return model.forward_tensors(tensors, masks)

    ig = IntegratedGradients(forward)
    chunk = max(1, batch_size // n_steps)
    bar = tqdm(total=n, desc="integrated gradients", unit="inst", disable=not progress, leave=False)
    try:
        for start in range(0, n, chunk):
            sl = slice(start, min(n, start + chunk))
            r = rows[sl]
            values = {m: dataset[m].values[r] for m in names}
            masks = {m: dataset[m].step_mask()[r] for m in names}
            baselines = {m: predictor.masker.apply(m, values[m], ~masks[m][:, :, None]) for m in names}
            x_t, mask_t = model.to_tensors(values, masks)
            b_t, _ = model.to_tensors(baselines, masks)
            inputs = tuple(x_t[m].float() for m in names)
            bases = tuple(b_t[m].float() for m in names)
            extra = tuple(mask_t[m] for m in names)
            with torch.no_grad():
                full = forward(*inputs, *extra).double().cpu().numpy()
                empty = forward(*bases, *extra).double().cpu().numpy()
            t = pick_target(predictor.output_kind, tgt_spec, full, sl)
            attrs, delta = ig.attribute(
                inputs,
                baselines=bases,
                target=torch.as_tensor(t, device=inputs[0].device),
                additional_forward_args=extra,
                n_steps=n_steps,
                method=integration,
                return_convergence_delta=True,
            )
            n_eval += (sl.stop - sl.start) * (n_steps + 2)
            for m, a in zip(names, attrs, strict=True):
                cells = a.detach().double().cpu().numpy()
                o, s = layout.offsets[names.index(m)], layout.sizes[names.index(m)]
                if s:  # image pixels have no named features: no players at the features granularity
                    if granularity == "cells":
                        vals[sl, o : o + s] = cells.reshape(len(cells), -1)
                    else:
                        vals[sl, o : o + s] = cells.sum(2) if granularity == "steps" else cells.sum(1)
            idx = np.arange(len(t))
            tgt[sl], pred[sl], base_out[sl] = t, full[idx, t], empty[idx, t]
            max_gap = max(max_gap, float(delta.detach().abs().max().cpu()))
            done = sl.stop
            bar.update(sl.stop - sl.start)
    except KeyboardInterrupt:
        info = {"n_steps": n_steps, "integration": integration, "max_completeness_gap": max_gap}
        part = _package(
            layout,
            dataset,
            "integrated_gradients",
            vals[:done],
            None,
            n_eval,
            rows[:done],
            tgt[:done],
            pred[:done],
            base_out[:done],
            info,
        )
        raise InterruptedExplanation(rows[:done], part) from None
    finally:
        bar.close()
    info = {"n_steps": n_steps, "integration": integration, "max_completeness_gap": max_gap}
    return _package(layout, dataset, "integrated_gradients", vals, None, n_eval, rows, tgt, pred, base_out, info)


FEATURE_METHODS = MethodsAt("feature")
"""The feature-level methods of the one registry (:data:`modalens.interactions.methods.METHODS`), name -> spec;
a spec is called like its function, by the method contract."""


def list_feature_methods() -> list[str]:
    """Names of the registered feature-attribution methods (keys of :data:`FEATURE_METHODS`)."""
    return list(FEATURE_METHODS)
