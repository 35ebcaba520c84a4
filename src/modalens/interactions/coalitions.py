"""Evaluate a predictor on every coalition of modalities, in batches.

A coalition is a set of present modalities; the others take their baseline. Coalition ``c`` (an integer) holds
modality ``m`` when bit ``m`` of ``c`` is set, so coalition 0 is the empty set and ``2**M - 1`` the full input.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache

import numpy as np
from tqdm.auto import tqdm

from modalens.data.dataset import MultimodalDataset
from modalens.interactions.methods import AttributionError
from modalens.models.predictor import Predictor

MAX_MODALITIES = 8
# Exact enumeration costs 2**P rows per instance; subsets (and the Shapley weights over them) go up to this many.
MAX_SUBSET_PLAYERS = 20


class InterruptedExplanation(KeyboardInterrupt):
    """Raised on Ctrl-C during a long evaluation; ``finished`` holds the instances whose results are complete.

    ``partial`` is whatever the interrupted stage computed for those instances, so nothing finished is lost.
    """

    def __init__(self, finished: np.ndarray, partial: object) -> None:
        super().__init__(f"interrupted after {len(finished)} finished instances")
        self.finished = finished
        self.partial = partial


@lru_cache(maxsize=MAX_SUBSET_PLAYERS + 1)
def subset_membership(n_players: int) -> np.ndarray:
    """Read-only boolean ``[2**P, P]``: row ``c`` marks the players in coalition ``c`` (bit ``j`` is player ``j``).

    The one enumeration of coalitions, for modalities (:func:`coalition_matrix`) and for steps or features
    (exact feature Shapley); ``0 <= P <= MAX_SUBSET_PLAYERS``, and ``P = 0`` gives the empty coalition alone.
    """
    if not 0 <= n_players <= MAX_SUBSET_PLAYERS:
        raise AttributionError(f"coalitions are enumerated for 0 to {MAX_SUBSET_PLAYERS} players, got {n_players}")
    codes = np.arange(2**n_players)
    member = ((codes[:, None] >> np.arange(n_players)) & 1).astype(bool)
    member.setflags(write=False)
    return member


def coalition_matrix(n_modalities: int) -> np.ndarray:
    """Boolean ``[2**M, M]``: row ``c`` marks the modalities present in coalition ``c``."""
    if not 1 <= n_modalities <= MAX_MODALITIES:
        raise AttributionError(f"exact modality Shapley supports 1 to {MAX_MODALITIES} modalities, got {n_modalities}")
    return subset_membership(n_modalities).copy()


def coalition_label(present: Sequence[bool] | np.ndarray, names: Sequence[str]) -> str:
    """``"text+audio"`` for a coalition row; ``""`` for the empty coalition."""
    return "+".join(n for n, p in zip(names, present, strict=True) if p)


def coalition_batches(
    predictor: Predictor,
    dataset: MultimodalDataset,
    *,
    batch_size: int = 4096,
    max_bytes: int = 512 * 2**20,
) -> Iterator[tuple[slice, dict[str, np.ndarray], dict[str, np.ndarray]]]:
    """The model inputs of every coalition, a chunk of instances at a time: ``(rows, values, masks)``.

    Row ``c * b + i`` of a chunk of ``b`` instances is instance ``rows.start + i`` under coalition ``c`` (a row of
    :func:`coalition_matrix`), absent modalities replaced by the predictor's baseline. A chunk holds about
    ``batch_size`` rows and at most ``max_bytes`` of stacked inputs, so memory is bounded by the chunk.
    """
    names = list(predictor.modalities)
    missing = [m for m in names if m not in dataset.modalities]
    if missing:
        raise AttributionError(f"the predictor reads modalities {missing} that dataset {dataset.name!r} lacks")
    present = coalition_matrix(len(names))
    n_coal = present.shape[0]
    row_bytes = sum(dataset[m].values.itemsize * int(np.prod(dataset[m].values.shape[1:])) for m in names)
    chunk = max(1, min(batch_size // n_coal, max_bytes // max(1, n_coal * row_bytes)))
    n = len(dataset)
    bind = getattr(predictor.masker, "bind", None)
    if bind is not None:  # token and patch modalities: the masker learns their vocabulary and grid
        bind(dataset)
    for start in range(0, n, chunk):
        sl = slice(start, min(n, start + chunk))
        b = sl.stop - sl.start
        values, masks = {}, {}
        for j, m in enumerate(names):
            x = dataset[m].values[sl]  # [b, T, D] (token ids: [b, T])
            absent = predictor.masker.apply(m, x, False)  # the modality absent (special tokens stay)
            keep = present[:, j].reshape((-1,) + (1,) * x.ndim)  # [C, 1, 1(, 1)]
            values[m] = np.where(keep, x[None], absent[None]).reshape(n_coal * b, *x.shape[1:])
            masks[m] = np.broadcast_to(dataset[m].step_mask()[sl][None], (n_coal, b, x.shape[1])).reshape(
                n_coal * b, x.shape[1]
            )
        yield sl, values, masks


def evaluate_coalitions(
    predictor: Predictor,
    dataset: MultimodalDataset,
    *,
    batch_size: int = 4096,
    progress: bool = True,
    max_bytes: int = 512 * 2**20,
) -> np.ndarray:
    """Predict every instance under every coalition of the predictor's modalities.

    Each forward pass stacks the coalitions of a chunk of instances into one batch of about ``batch_size`` rows, so
    the cost is the bare cost of ``N * 2**M`` model rows. Instances are streamed in chunks: memory is bounded by the
    chunk (at most ``max_bytes`` of stacked inputs), not the dataset.

    Returns
    -------
    np.ndarray
        ``[N, 2**M, K]`` model outputs.
    """
    n_coal = 2 ** len(predictor.modalities)
    n = len(dataset)
    out: np.ndarray | None = None
    done = 0
    bar = tqdm(total=n, desc="modality coalitions", unit="inst", disable=not progress, leave=False)
    try:
        for sl, values, masks in coalition_batches(predictor, dataset, batch_size=batch_size, max_bytes=max_bytes):
            b = sl.stop - sl.start
            y = predictor.predict(values, masks).reshape(n_coal, b, -1).transpose(1, 0, 2)
            if out is None:
                out = np.empty((n, n_coal, y.shape[2]), dtype=np.float64)
            out[sl] = y
            done = sl.stop
            bar.update(b)
    except KeyboardInterrupt:
        finished = np.arange(done)
        raise InterruptedExplanation(finished, None if out is None else out[:done]) from None
    finally:
        bar.close()
    if out is None:
        raise AttributionError(f"dataset {dataset.name!r} has no instances")
    return out
