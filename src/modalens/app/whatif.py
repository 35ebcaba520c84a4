"""Live what-if on one instance of a run, with the model it was explained with (``modalens serve RUN --model M``).

An edit of instance ``i`` (:class:`WhatIf`) is applied in this order:

1. ``swap``: modality ``m`` (its values and step mask) is taken from another instance ``j`` of the run;
2. ``mask``: single steps (words, frames, patches) of ``m`` become the run's baseline for them;
3. ``drop``: the whole modality becomes its baseline.

The edited input is then evaluated under all ``2**M`` coalitions of modalities, exactly as the engine does
(:func:`modalens.interactions.coalitions.evaluate_coalitions`, the run's masker), and the modality Shapley values are
the exact ones over those coalition values, of the output the run explained for this instance (its ``target``). With
no edit the answer reproduces the run's stored coalition values and Shapley values.

Nothing is written: the run's dataset is read from its ``dataset.npz``, once per snapshot of the run.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modalens._core.errors import ModalensError

MAX_EDITS = 10_000  # masked positions in one request (a 100-step, 8-modality instance needs 800)


class WhatIfInvalid(ModalensError, ValueError):
    """The edit names something the run does not have (a modality, a position, an instance)."""


class ModelFailed(ModalensError, RuntimeError):
    """The model raised while answering; the server stays up and says so."""


@dataclass
class WhatIf:
    """An edit of one instance: modalities dropped, steps masked, modalities swapped with another instance's."""

    instance: int
    drop: list[str] = field(default_factory=list)
    mask: dict[str, list[int]] = field(default_factory=dict)
    swap: dict[str, int] = field(default_factory=dict)


@dataclass
class _Snapshot:
    token: str
    dataset: Any
    target: np.ndarray  # [N] the output index the run explained per instance
    stored: dict[str, np.ndarray]  # prediction, explained_output per instance (N-long)


class LiveModel:
    """The predictor of one served run, with the run's dataset; one model call at a time (``lock``, shared by all
    runs of a server: they may share the model's weights and threads)."""

    def __init__(self, predictor: Any, lock: threading.Lock | None = None, batch_size: int = 4096) -> None:
        self.predictor = predictor
        self.lock = lock or threading.Lock()
        self.batch_size = batch_size
        self._snapshot: _Snapshot | None = None

    def snapshot(self, source: Any) -> _Snapshot:
        """The run's dataset and stored outputs as of this snapshot of the run (taken again when it changed)."""
        if self._snapshot is None or self._snapshot.token != source.token:
            dataset = source.dataset()  # the snapshot's copy, shared with the instance view and the glyphs
            if dataset is None:
                raise WhatIfInvalid(f"what-if needs the run's dataset: {source.dataset_problem()}")
            frame = source.table("instances").sort_values("instance")
            if len(frame) != len(dataset):
                raise WhatIfInvalid(f"run has {len(frame)} instances but {len(dataset)} in dataset.npz")
            self._snapshot = _Snapshot(
                token=source.token,
                dataset=dataset,
                target=frame["target"].to_numpy(dtype=np.int64),
                stored={k: frame[k].to_numpy(dtype=np.float64) for k in ("prediction", "explained_output")},
            )
        return self._snapshot

    @property
    def modalities(self) -> list[str]:
        return list(self.predictor.modalities)


def edited_input(live: LiveModel, snap: _Snapshot, edit: WhatIf) -> Any:
    """The edited instance as a one-instance dataset (checked: :class:`WhatIfInvalid` names what is wrong)."""
    from modalens.data.dataset import MultimodalDataset

    dataset, names = snap.dataset, live.modalities
    n = len(dataset)
    _check_instance(edit.instance, n, "instance")
    for key, given in (("drop", edit.drop), ("mask", list(edit.mask)), ("swap", list(edit.swap))):
        unknown = [m for m in given if m not in names]
        if unknown:
            raise WhatIfInvalid(f"{key}: unknown modality {unknown[0]!r}; the run's modalities are {names}")
    if len(set(edit.drop)) != len(edit.drop):
        raise WhatIfInvalid("drop: a modality is named twice")
    for m in edit.drop:
        if m in edit.mask or m in edit.swap:
            raise WhatIfInvalid(f"{m!r} is dropped and also {'masked' if m in edit.mask else 'swapped'}; choose one")
    if sum(len(p) for p in edit.mask.values()) > MAX_EDITS:
        raise WhatIfInvalid(f"mask: at most {MAX_EDITS} positions in one request")
    modalities = {}
    for m in names:
        source = edit.swap.get(m, edit.instance)
        if m in edit.swap:
            _check_instance(source, n, f"swap.{m}")
            if source == edit.instance:
                raise WhatIfInvalid(f"swap.{m}: instance {source} is the instance itself; swap with another one")
        modalities[m] = dataset[m].take(np.array([source]))
    masker = live.predictor.masker
    for m, positions in edit.mask.items():
        modality = modalities[m]
        real = np.flatnonzero(modality.step_mask()[0])
        bad = [p for p in positions if p not in set(real.tolist())]
        if bad:
            whose = f"instance {edit.swap.get(m, edit.instance)}"
            raise WhatIfInvalid(
                f"mask.{m}: position {bad[0]} is not a real step of {m!r} in {whose} (it has {len(real)} real "
                f"steps{': ' + _ranges(real) if len(real) else ''})"
            )
        values = modality.values
        keep = np.ones(values.shape[:2], dtype=bool)
        keep[0, positions] = False
        modality.values = masker.apply(m, values, keep if values.ndim == 2 else keep[:, :, None])
    for m in edit.drop:
        modalities[m].values = masker.apply(m, modalities[m].values, False)
    return MultimodalDataset([modalities[m] for m in names], name=dataset.name)


def what_if(live: LiveModel, snap: _Snapshot, edit: WhatIf) -> dict[str, Any]:
    """The prediction and exact modality Shapley values of the edited instance (the API document)."""
    from modalens.interactions.coalitions import coalition_label, coalition_matrix, evaluate_coalitions
    from modalens.interactions.shapley import shapley_values

    one = edited_input(live, snap, edit)
    clock = time.perf_counter()
    with live.lock:
        try:
            values = evaluate_coalitions(live.predictor, one, batch_size=live.batch_size, progress=False)[0]
        except Exception as exc:  # any failure of user model code: a clear 500, the server keeps serving
            raise ModelFailed(f"the model failed on this what-if: {type(exc).__name__}: {exc}") from exc
    seconds = time.perf_counter() - clock
    i, names = edit.instance, live.modalities
    target = int(snap.target[i])
    full = values[-1]  # [K] the edited input's outputs
    if target >= full.shape[0]:
        raise ModelFailed(f"the model gives {full.shape[0]} outputs; the run explained output {target}")
    chosen = values[:, target]  # [C]
    phi = shapley_values(chosen[None, :, None])[0, :, 0]
    present = coalition_matrix(len(names))
    classification = getattr(live.predictor, "output_kind", "regression") == "classification"
    return {
        "instance": i,
        "prediction": float(full.argmax()) if classification else float(full[0]),
        "explained_output": float(chosen[-1]),
        "base_value": float(chosen[0]),
        "modality_shapley": [{"modality": m, "value": float(v)} for m, v in zip(names, phi, strict=True)],
        "coalitions": [
            {"coalition": coalition_label(p, names), "size": int(p.sum()), "value": float(v)}
            for p, v in zip(present, chosen, strict=True)
        ],
        "original": {k: float(v[i]) for k, v in snap.stored.items()},
        "seconds": seconds,
    }


def cells(live: LiveModel, snap: _Snapshot, instance: int, n_permutations: int, seed: int = 0) -> dict[str, Any]:
    """Feature x step attributions of one instance (the engine's ``attribute_cells``), computed on request."""
    try:
        from modalens.interactions.attribution import attribute_cells
    except ImportError:
        raise NotImplementedError("this modalens has no feature x step attribution (attribute_cells)") from None
    _check_instance(instance, len(snap.dataset), "instance")
    with live.lock:
        try:
            result = attribute_cells(
                live.predictor,
                snap.dataset,
                np.array([instance]),
                n_permutations=n_permutations,
                seed=seed,
                batch_size=live.batch_size,
            )
            frame = result.to_frame(snap.dataset)
        except Exception as exc:
            raise ModelFailed(f"the model failed on this attribution: {type(exc).__name__}: {exc}") from exc
    frame = frame[(frame["position"] >= 0) & (frame["feature"] != "*")]  # cells, not whole steps or features
    rows = [
        {
            "modality": str(r.modality),
            "position": int(r.position),
            "feature": str(r.feature),
            "value": float(r.value),
            "std_error": None if r.std_error is None or not np.isfinite(r.std_error) else float(r.std_error),
        }
        for r in frame.itertuples(index=False)
    ]
    return {
        "instance": instance,
        "rows": rows,
        "seconds": float(getattr(result, "seconds", 0.0)),
        "evaluations": int(getattr(result, "evaluations", 0)),
        "n_permutations": n_permutations,
    }


def _check_instance(value: int, n: int, what: str) -> None:
    if not 0 <= value < n:
        raise WhatIfInvalid(f"{what}: no instance {value}; the run has instances 0..{n - 1}")


def _ranges(steps: np.ndarray) -> str:
    """``0..11`` or ``0..3, 6..9`` for sorted step numbers."""
    parts, start = [], int(steps[0])
    for a, b in zip(steps[:-1], steps[1:], strict=True):
        if b != a + 1:
            parts.append(f"{start}..{int(a)}" if a != start else str(start))
            start = int(b)
    last = int(steps[-1])
    parts.append(f"{start}..{last}" if last != start else str(start))
    return ", ".join(parts)
