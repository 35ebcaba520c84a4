"""Baselines that stand in for what is absent: a whole modality, some steps, or some features.

The baseline changes the answer. Shapley values measure the change from the baseline input to the real one, so
"text contributes +1.2" always means "+1.2 relative to the text baseline". Three choices, per modality:

- ``"zeros"``: an all-zero input. Natural for features that are centred or where 0 means "nothing" (padding).
- ``"mean"``: the per-feature mean over the real (unmasked) steps of a reference dataset (call :meth:`Masker.fit`).
  Makes an absent modality look "average", the usual choice for continuous acoustic and visual features.
- an array: a custom value, broadcastable to ``[T, D]`` (e.g. ``[D]`` for one value per feature), or a float.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from modalens._core.errors import ModalensError
from modalens.data.dataset import MultimodalDataset

BaselineSpec = str | float | np.ndarray


class MaskerError(ModalensError, ValueError):
    """A baseline is misconfigured or was used before being fitted."""


class Masker:
    """Per-modality baselines.

    Parameters
    ----------
    baselines
        One spec for every modality (``"zeros"``, ``"mean"``, a float, an array) or a mapping from modality name
        to spec; modalities missing from the mapping use ``default``.
    default
        The spec for modalities not named in ``baselines``.
    """

    def __init__(self, baselines: BaselineSpec | Mapping[str, BaselineSpec] = "zeros", default: BaselineSpec = "zeros"):
        if isinstance(baselines, Mapping):
            self.specs: dict[str, BaselineSpec] = dict(baselines)
            self.default = default
        else:
            self.specs = {}
            self.default = baselines
        for name, spec in [*self.specs.items(), ("<default>", self.default)]:
            if isinstance(spec, str) and spec not in ("zeros", "mean"):
                raise MaskerError(f"baseline for {name}: expected 'zeros', 'mean', a number or an array, got {spec!r}")
        self._fitted: dict[str, np.ndarray] = {}

    def spec(self, name: str) -> BaselineSpec:
        return self.specs.get(name, self.default)

    def fit(self, dataset: MultimodalDataset) -> Masker:
        """Compute the ``"mean"`` baselines from a reference dataset (means over real steps only)."""
        for name, modality in dataset.modalities.items():
            if isinstance(self.spec(name), str) and self.spec(name) == "mean":
                mask = modality.step_mask()
                real = modality.values[mask]
                if real.shape[0] == 0:
                    raise MaskerError(f"modality {name!r}: no real steps to take a mean baseline from")
                self._fitted[name] = real.mean(axis=0).astype(np.float32)
        return self

    @property
    def uses_mean(self) -> bool:
        """True when some modality's baseline is its dataset mean."""
        specs = [*self.specs.values(), self.default]
        return any(isinstance(s, str) and s == "mean" for s in specs)

    @property
    def needs_fit(self) -> bool:
        """True while a ``"mean"`` baseline has not been fitted yet."""
        return self.uses_mean and not self._fitted

    def baseline(self, name: str, steps: int, features: int) -> np.ndarray:
        """The baseline of one modality as a float32 ``[T, D]`` array."""
        spec = self.spec(name)
        if isinstance(spec, str) and spec == "zeros":
            return np.zeros((steps, features), np.float32)
        if isinstance(spec, str) and spec == "mean":
            if name not in self._fitted:
                raise MaskerError(
                    f"modality {name!r} uses the 'mean' baseline but the masker was not fitted: "
                    "call masker.fit(dataset) (explain() does this for you)"
                )
            value = self._fitted[name]
        else:
            value = np.asarray(spec, dtype=np.float32)
        try:
            return np.broadcast_to(value, (steps, features)).astype(np.float32)
        except ValueError:
            raise MaskerError(
                f"baseline for modality {name!r} has shape {np.shape(value)}, not broadcastable to [T, D] = "
                f"{(steps, features)}"
            ) from None

    def apply(self, name: str, values: np.ndarray, keep: np.ndarray | bool) -> np.ndarray:
        """Replace the entries of ``values`` ([B, T, D]) where ``keep`` is False by the baseline."""
        base = self.baseline(name, values.shape[1], values.shape[2])
        return np.where(keep, values, base).astype(np.float32, copy=False)

    def describe(self) -> dict:
        def show(spec: BaselineSpec) -> object:
            if isinstance(spec, str):
                return spec
            arr = np.asarray(spec)
            return float(arr) if arr.ndim == 0 else f"custom array {arr.shape}"

        return {"default": show(self.default), **{k: show(v) for k, v in self.specs.items()}}
