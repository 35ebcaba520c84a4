"""Baselines that stand in for what is absent: a whole modality, some steps, some features, tokens or patches.

The baseline changes the answer. Shapley values measure the change from the baseline input to the real one, so
"text contributes +1.2" always means "+1.2 relative to the text baseline". The choices, per modality:

- ``"zeros"``: an all-zero input. Natural for features that are centred or where 0 means "nothing" (padding).
- ``"mean"``: the per-feature mean over the real (unmasked) steps of a reference dataset (call :meth:`Masker.fit`).
  Makes an absent modality look "average", the usual choice for continuous acoustic and visual features.
- an array: a custom value, broadcastable to ``[T, D]`` (e.g. ``[D]`` for one value per feature), or a float.

Patch modalities (images cut into a grid; :class:`~modalens.data.dataset.PatchGrid`) take, besides ``"zeros"``
(black) and an array:

- ``"mean_colour"``: each image's own mean colour;
- ``"blur"``: a Gaussian blur of the image itself (sigma = half a patch side), so an absent patch keeps its colours
  but loses its detail;
- an RGB triple in [0, 1] (e.g. CLIP's normalisation mean, which is what MM-SHAP's zeros in normalised pixel space
  amount to).

Token modalities (ids with a :class:`~modalens.data.dataset.TokenSpec`) take a **token**: ``token_baseline`` maps
a modality to ``"mask"`` (its ``[MASK]`` id), ``"pad"`` (its padding id) or an id; the default is ``"mask"`` when the
vocabulary has one, else ``"pad"``. Special tokens (``[CLS]``, ``[SEP]``, padding ...) are never replaced.

The masker learns which modalities are token or patch modalities from a dataset (:meth:`Masker.bind`, which
:meth:`Masker.fit` and every engine method call).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from modalens._core.errors import ModalensError
from modalens.data.dataset import MultimodalDataset, PatchGrid, TokenSpec

BaselineSpec = str | float | np.ndarray
TokenBaseline = str | int
PATCH_BASELINES = ("mean_colour", "blur")


class MaskerError(ModalensError, ValueError):
    """A baseline is misconfigured or was used before being fitted."""


class Masker:
    """Per-modality baselines.

    Parameters
    ----------
    baselines
        One spec for every modality (``"zeros"``, ``"mean"``, a float, an array; for patch modalities also
        ``"mean_colour"``, ``"blur"`` or an RGB triple) or a mapping from modality name to spec; modalities missing
        from the mapping use ``default``.
    default
        The spec for modalities not named in ``baselines``.
    token_baseline
        For token modalities: ``"mask"``, ``"pad"`` or a token id, for all of them or as a mapping from modality
        name; default ``"mask"`` when the vocabulary has a ``[MASK]`` token, else ``"pad"``.
    """

    def __init__(
        self,
        baselines: BaselineSpec | Mapping[str, BaselineSpec] = "zeros",
        default: BaselineSpec = "zeros",
        *,
        token_baseline: TokenBaseline | Mapping[str, TokenBaseline] | None = None,
    ):
        if isinstance(baselines, Mapping):
            self.specs: dict[str, BaselineSpec] = dict(baselines)
            self.default = default
        else:
            self.specs = {}
            self.default = baselines
        for name, spec in [*self.specs.items(), ("<default>", self.default)]:
            if isinstance(spec, str) and spec not in ("zeros", "mean", *PATCH_BASELINES):
                raise MaskerError(
                    f"baseline for {name}: expected 'zeros', 'mean', 'mean_colour', 'blur', a number or an array, "
                    f"got {spec!r}"
                )
        if isinstance(token_baseline, Mapping):
            self.token_specs: dict[str, TokenBaseline] = dict(token_baseline)
            self.token_default: TokenBaseline | None = None
        else:
            self.token_specs = {}
            self.token_default = token_baseline
        for name, spec in [*self.token_specs.items(), ("<default>", self.token_default)]:
            if spec is None:
                continue
            if isinstance(spec, bool) or not (isinstance(spec, int | np.integer) or spec in ("mask", "pad")):
                raise MaskerError(f"token baseline for {name}: expected 'mask', 'pad' or a token id, got {spec!r}")
            if isinstance(spec, int | np.integer) and spec < 0:
                raise MaskerError(f"token baseline for {name}: a token id must be non-negative, got {spec}")
        self._fitted: dict[str, np.ndarray] = {}
        self._tokens: dict[str, TokenSpec] = {}
        self._patches: dict[str, PatchGrid] = {}

    def spec(self, name: str) -> BaselineSpec:
        return self.specs.get(name, self.default)

    # -- learning from a dataset ------------------------------------------------------------------------------------
    def bind(self, dataset: MultimodalDataset) -> Masker:
        """Learn which modalities hold tokens (and their special ids) or patches (and their grid); returns self.

        A patch baseline (``"mean_colour"``, ``"blur"``) on a modality that is not a patch modality is refused here.
        """
        for name, modality in dataset.modalities.items():
            if modality.tokens is not None:
                self._tokens[name] = modality.tokens
                self._token_id(name)  # an unusable token baseline ("mask" without [MASK]) fails now, naming it
            elif modality.patches is not None:
                self._patches[name] = modality.patches
            spec = self.spec(name)
            if isinstance(spec, str) and spec in PATCH_BASELINES and modality.patches is None:
                named = name in self.specs
                if named or modality.tokens is None:
                    raise MaskerError(
                        f"baseline {spec!r} for modality {name!r}: only image patch modalities take it (this one is "
                        "not cut into patches)"
                    )
        return self

    def fit(self, dataset: MultimodalDataset) -> Masker:
        """Compute the ``"mean"`` baselines from a reference dataset (means over real steps only); binds too."""
        self.bind(dataset)
        for name, modality in dataset.modalities.items():
            if isinstance(self.spec(name), str) and self.spec(name) == "mean" and modality.tokens is None:
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

    # -- baselines ----------------------------------------------------------------------------------------------
    def baseline(self, name: str, steps: int, features: int) -> np.ndarray:
        """The baseline of one float modality as a float32 ``[T, D]`` array (one that does not depend on the
        instance; :meth:`fill` serves every kind)."""
        spec = self.spec(name)
        if isinstance(spec, str) and spec in PATCH_BASELINES:
            raise MaskerError(f"modality {name!r}: baseline {spec!r} depends on the image; use masker.fill(...)")
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
            grid = self._patches.get(name)
            if grid is not None and value.shape == (grid.channels,):
                value = np.tile(value, grid.height * grid.width)  # an RGB triple: the colour of every pixel
        try:
            return np.broadcast_to(value, (steps, features)).astype(np.float32)
        except ValueError:
            raise MaskerError(
                f"baseline for modality {name!r} has shape {np.shape(value)}, not broadcastable to [T, D] = "
                f"{(steps, features)}"
            ) from None

    def token_id(self, name: str) -> int:
        """The id that replaces an absent piece of token modality ``name`` (after :meth:`bind`)."""
        return self._token_id(name)

    def _token_id(self, name: str) -> int:
        spec = self.token_specs.get(name, self.token_default)
        vocab = self._tokens.get(name)
        if vocab is None:
            raise MaskerError(
                f"modality {name!r} holds token ids, but the masker has not seen its vocabulary: call "
                "masker.bind(dataset) (explain() and every method do this for you)"
            )
        if spec is None:
            spec = "mask" if vocab.mask_id is not None else "pad"
        if spec == "mask":
            if vocab.mask_id is None:
                raise MaskerError(
                    f"token baseline 'mask' for modality {name!r}: its vocabulary ({vocab.tokenizer or 'unnamed'}) "
                    "has no [MASK] token; use 'pad' or a token id"
                )
            return vocab.mask_id
        if spec == "pad":
            return vocab.pad_id
        token = int(spec)
        if vocab.vocab_size is not None and token >= vocab.vocab_size:
            raise MaskerError(
                f"token baseline {token} for modality {name!r} lies outside its vocabulary of {vocab.vocab_size}"
            )
        return token

    def fill(self, name: str, values: np.ndarray) -> np.ndarray:
        """What ``values`` (a batch of one modality) become when wholly absent, row by row.

        Float modalities: the baseline, broadcast to ``values.shape`` (for ``"mean_colour"`` and ``"blur"``
        computed from each row's image). Token modalities: every piece replaced by the baseline token, special tokens
        kept.
        """
        if name in self._tokens or (np.issubdtype(np.asarray(values).dtype, np.integer) and np.ndim(values) == 2):
            ids = np.asarray(values)
            special = self._tokens[name].is_special(ids) if name in self._tokens else np.zeros(ids.shape, bool)
            return np.where(special, ids, self._token_id(name)).astype(ids.dtype, copy=False)
        spec = self.spec(name)
        values = np.asarray(values, dtype=np.float32)
        if isinstance(spec, str) and spec in PATCH_BASELINES:
            grid = self._patches.get(name)
            if grid is None:
                raise MaskerError(
                    f"baseline {spec!r} for modality {name!r}: the masker has not seen its patch grid; call "
                    "masker.bind(dataset) (explain() and every method do this for you)"
                )
            return _image_baseline(spec, values, grid)
        return np.broadcast_to(self.baseline(name, values.shape[1], values.shape[2]), values.shape)

    def apply(self, name: str, values: np.ndarray, keep: np.ndarray | bool) -> np.ndarray:
        """Replace the entries of ``values`` where ``keep`` is False by the baseline.

        Float modalities: ``values`` ``[B, T, D]``, ``keep`` broadcastable to it. Token modalities: ids ``[B, T]``,
        ``keep`` broadcastable to ``[B, T]``; special tokens are always kept.
        """
        if name in self._tokens or (np.issubdtype(np.asarray(values).dtype, np.integer) and np.ndim(values) == 2):
            ids = np.asarray(values)
            return np.where(keep, ids, self.fill(name, ids))
        if keep is True or (isinstance(keep, np.ndarray) and keep.all()):
            return np.asarray(values, dtype=np.float32)
        return np.where(keep, values, self.fill(name, values)).astype(np.float32, copy=False)

    def describe(self) -> dict:
        def show(spec: BaselineSpec) -> object:
            if isinstance(spec, str):
                return spec
            arr = np.asarray(spec)
            return float(arr) if arr.ndim == 0 else f"custom array {arr.shape}"

        out = {"default": show(self.default), **{k: show(v) for k, v in self.specs.items()}}
        for name in self._tokens:
            try:
                token = self._token_id(name)
            except MaskerError:
                continue
            spec = self.token_specs.get(name, self.token_default)
            label = spec if isinstance(spec, str) else "id"
            if spec is None:
                label = "mask" if self._tokens[name].mask_id is not None else "pad"
            out[name] = f"token {label} ({token})"
        return out


def _image_baseline(spec: str, values: np.ndarray, grid: PatchGrid) -> np.ndarray:
    """``"mean_colour"`` or ``"blur"`` of each row's image, cut back into its patches."""
    images = grid.to_images(values)  # [B, H, W, C]
    if spec == "mean_colour":
        colour = images.mean(axis=(1, 2), keepdims=True)
        return grid.to_patches(np.broadcast_to(colour, images.shape))
    from scipy.ndimage import gaussian_filter

    sigma = 0.5 * min(grid.height, grid.width)
    blurred = gaussian_filter(images, sigma=(0, sigma, sigma, 0), mode="nearest")
    return grid.to_patches(blurred.astype(np.float32))
