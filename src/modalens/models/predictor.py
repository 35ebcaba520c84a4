"""The Predictor protocol and adapters for torch modules, plain callables and scikit-learn estimators.

A predictor declares its modalities and output kind and predicts on a batch in which any subset of modalities is
absent. Absence is handled by the predictor's :class:`~modalens.models.masker.Masker`, never by model code: an
absent modality is replaced by its baseline before the model sees the batch.

Every adapter returns a float array ``[B, K]``: ``K = 1`` for regression; class probabilities (or logits, if asked)
for classification.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from modalens._core.errors import ModalensError
from modalens.models.masker import Masker

OutputKind = Literal["regression", "classification"]


class PredictorError(ModalensError, ValueError):
    """A predictor was misconfigured, or a model returned output of the wrong shape."""


@runtime_checkable
class Predictor(Protocol):
    """What the explanation methods need from a model; every function that takes a predictor takes this.

    :class:`BasePredictor` and its adapters implement it; any other object with these members works too.

    Attributes
    ----------
    modalities
        The modality names the model reads, in order.
    output_kind
        ``"regression"`` or ``"classification"``.
    output_names
        K names, one per output column (None until the first prediction when not given).
    masker
        The baselines used for absent modalities and masked steps/features.
    supports_gradients
        Whether the predictor offers a differentiable forward pass (:class:`GradientPredictor`); methods that
        need gradients (``MethodSpec.needs_gradients``) refuse predictors that do not declare it.
    """

    modalities: tuple[str, ...]
    output_kind: str
    output_names: list[str] | None
    masker: Masker

    @property
    def supports_gradients(self) -> bool: ...

    def predict(
        self, values: dict[str, np.ndarray], masks: dict[str, np.ndarray], absent: Collection[str] = ()
    ) -> np.ndarray:
        """Predict ``[B, K]`` for a batch of ``[B, T, D]`` arrays; modalities in ``absent`` take their baseline."""
        ...

    def describe(self) -> dict:
        """A JSON-ready description (adapter, modalities, output kind and names, masker) for run manifests."""
        ...


@runtime_checkable
class GradientPredictor(Predictor, Protocol):
    """A predictor with a differentiable forward pass on torch tensors (``supports_gradients`` is True)."""

    def to_tensors(self, values: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> tuple[dict, dict]:
        """The batch as torch tensors (values, masks) on the model's device."""
        ...

    def forward_tensors(self, tensors: dict[str, Any], masks: dict[str, Any]) -> Any:
        """The differentiable forward pass; returns ``[B, K]``."""
        ...


class BasePredictor:
    """Shared plumbing: checks inputs, applies the masker for absent modalities, checks the output shape.

    Subclasses implement :meth:`forward` on complete (already masked) arrays.
    """

    def __init__(
        self,
        modalities: Sequence[str],
        output_kind: OutputKind = "regression",
        output_names: Sequence[str] | None = None,
        masker: Masker | None = None,
    ) -> None:
        if not modalities:
            raise PredictorError("a predictor needs at least one modality")
        if output_kind not in ("regression", "classification"):
            raise PredictorError(f"output_kind must be 'regression' or 'classification', got {output_kind!r}")
        self.modalities = tuple(modalities)
        self.output_kind = output_kind
        self.output_names = list(output_names) if output_names is not None else None
        self.masker = masker if masker is not None else Masker()

    @property
    def supports_gradients(self) -> bool:
        """False: numpy adapters have no differentiable forward pass (:class:`TorchPredictor` does)."""
        return False

    def forward(self, values: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def predict(
        self, values: dict[str, np.ndarray], masks: dict[str, np.ndarray], absent: Collection[str] = ()
    ) -> np.ndarray:
        missing = [m for m in self.modalities if m not in values]
        if missing:
            raise PredictorError(f"batch lacks modalities {missing}; the predictor reads {list(self.modalities)}")
        unknown = set(absent) - set(self.modalities)
        if unknown:
            raise PredictorError(f"absent names unknown modalities {sorted(unknown)}")
        batch = {}
        for name in self.modalities:
            x = as_batch(values[name])
            batch[name] = self.masker.apply(name, x, False) if name in absent else x
        out = np.asarray(self.forward(batch, {m: masks[m] for m in self.modalities}), dtype=np.float64)
        b = next(iter(batch.values())).shape[0]
        if out.ndim == 1:
            out = out[:, None]
        if out.ndim != 2 or out.shape[0] != b:
            raise PredictorError(f"model returned shape {out.shape} for a batch of {b}; expected [B] or [B, K]")
        if not np.isfinite(out).all():
            raise PredictorError(f"model returned {int((~np.isfinite(out)).sum())} NaN/inf outputs for a batch of {b}")
        if self.output_names is None:
            self.output_names = ["output"] if out.shape[1] == 1 else [f"class {k}" for k in range(out.shape[1])]
        return out

    def describe(self) -> dict:
        return {
            "adapter": type(self).__name__,
            "modalities": list(self.modalities),
            "output_kind": self.output_kind,
            "output_names": self.output_names,
            "masker": self.masker.describe(),
        }


def as_batch(values: np.ndarray) -> np.ndarray:
    """One modality's batch as the model reads it: token ids (an integer ``[B, T]`` array) as int64, anything else
    as float32."""
    x = np.asarray(values)
    if x.ndim == 2 and (np.issubdtype(x.dtype, np.integer) or x.dtype == bool):
        return x.astype(np.int64, copy=False)
    return x.astype(np.float32, copy=False)


class CallablePredictor(BasePredictor):
    """Wrap a plain function ``fn(values) -> [B] | [B, K]`` (or ``fn(values, masks)``) over numpy arrays."""

    def __init__(self, fn: Callable[..., Any], modalities: Sequence[str], **kwargs: Any) -> None:
        super().__init__(modalities, **kwargs)
        self.fn = fn
        try:
            params = inspect.signature(fn).parameters
            self._pass_masks = len(params) >= 2
        except (TypeError, ValueError):
            self._pass_masks = False

    def forward(self, values: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> np.ndarray:
        return self.fn(values, masks) if self._pass_masks else self.fn(values)


class SklearnPredictor(BasePredictor):
    """Wrap a fitted scikit-learn estimator over pooled modality features.

    Each modality is pooled over its real steps (``pool="mean"``) or flattened (``pool="flatten"``), and the
    modalities are concatenated in order, which must match how the estimator was trained (see :meth:`features`).
    Classifiers return ``predict_proba``; regressors ``predict``.
    """

    def __init__(self, estimator: Any, modalities: Sequence[str], pool: str = "mean", **kwargs: Any) -> None:
        kind = "classification" if hasattr(estimator, "predict_proba") else "regression"
        kwargs.setdefault("output_kind", kind)
        if kind == "classification" and "output_names" not in kwargs and hasattr(estimator, "classes_"):
            kwargs["output_names"] = [str(c) for c in estimator.classes_]
        super().__init__(modalities, **kwargs)
        if pool not in ("mean", "flatten"):
            raise PredictorError(f"pool must be 'mean' or 'flatten', got {pool!r}")
        self.estimator = estimator
        self.pool = pool

    def features(self, values: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> np.ndarray:
        """The 2-D design matrix the estimator sees for a batch."""
        parts = []
        for name in self.modalities:
            x = values[name]
            if np.ndim(x) == 2 and np.issubdtype(np.asarray(x).dtype, np.integer):
                raise PredictorError(
                    f"modality {name!r} holds token ids; a scikit-learn estimator reads pooled float features only"
                )
            if self.pool == "flatten":
                parts.append(x.reshape(x.shape[0], -1))
            else:
                w = masks[name].astype(np.float32)[..., None]
                parts.append((x * w).sum(1) / np.maximum(w.sum(1), 1.0))
        return np.concatenate(parts, axis=1)

    def forward(self, values: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> np.ndarray:
        design = self.features(values, masks)
        if self.output_kind == "classification":
            return self.estimator.predict_proba(design)
        return self.estimator.predict(design)


class TorchPredictor(BasePredictor):
    """Wrap a ``torch.nn.Module``.

    Parameters
    ----------
    module
        The model, put in eval mode. By default it is called as ``module(*tensors)`` with one ``[B, T, D]`` tensor
        per modality in ``modalities`` order; ``call="kwargs"`` calls ``module(**{name: tensor})`` and
        ``call="dict"`` calls ``module(dict)``. With ``pass_masks=True`` the boolean step masks follow as a dict
        keyword ``masks``.
    outputs
        For classification: ``"probs"`` applies a softmax to the model's logits, ``"logits"`` keeps them.
    device
        Where to run (``"cpu"``, ``"cuda"``); inputs are moved there, outputs come back to numpy.
    trim_padding
        Declare that the module ignores padded steps wherever they are (it reads the masks, as the reference
        architectures do): a batch's rows are then grouped by length and the steps past the last real step of each
        group are cut, so short instances cost less. Off by default: a module whose output depends on the number
        of steps would change.
    rows_per_call
        On the CPU, at most this many rows per module call (default :data:`CPU_ROWS_PER_CALL`): a few hundred
        rows keep the activations in cache instead of allocating and faulting in fresh pages for each big call,
        and let the calls of one batch run on all of torch's threads at once (:meth:`forward`). None: the whole
        batch in one call (the default on other devices).
    """

    def __init__(
        self,
        module: Any,
        modalities: Sequence[str],
        *,
        call: str = "positional",
        pass_masks: bool = False,
        outputs: str = "probs",
        device: str = "cpu",
        trim_padding: bool = False,
        rows_per_call: int | None = None,
        **kwargs: Any,
    ) -> None:
        import torch

        super().__init__(modalities, **kwargs)
        if call not in ("positional", "kwargs", "dict"):
            raise PredictorError(f"call must be 'positional', 'kwargs' or 'dict', got {call!r}")
        if outputs not in ("probs", "logits"):
            raise PredictorError(f"outputs must be 'probs' or 'logits', got {outputs!r}")
        self.device = torch.device(device)
        self.module = module.to(self.device).eval()
        self.call, self.pass_masks, self.outputs = call, pass_masks, outputs
        if rows_per_call is None and self.device.type == "cpu":
            rows_per_call = CPU_ROWS_PER_CALL
        if rows_per_call is not None and (isinstance(rows_per_call, bool) or int(rows_per_call) < 1):
            raise PredictorError(f"rows_per_call must be a positive number of rows or None, got {rows_per_call!r}")
        self.trim_padding = bool(trim_padding)
        self.rows_per_call = None if rows_per_call is None else int(rows_per_call)

    @property
    def supports_gradients(self) -> bool:
        """True: :meth:`forward_tensors` is differentiable, so gradient methods (Integrated Gradients) apply."""
        return True

    def forward_tensors(self, tensors: dict[str, Any], masks: dict[str, Any]) -> Any:
        """The differentiable forward pass on torch tensors (used by gradient methods); returns ``[B, K]``."""
        import torch

        extra = {"masks": masks} if self.pass_masks else {}
        if self.call == "positional":
            out = self.module(*[tensors[m] for m in self.modalities], **extra)
        elif self.call == "kwargs":
            out = self.module(**tensors, **extra)
        else:
            out = self.module(tensors, **extra)
        if out.ndim == 1:
            out = out[:, None]
        if self.output_kind == "classification" and self.outputs == "probs":
            out = torch.softmax(out, dim=-1)
        return out

    def to_tensors(self, values: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> tuple[dict, dict]:
        import torch

        tensors = {m: torch.as_tensor(values[m], device=self.device) for m in self.modalities}
        mask_t = {m: torch.as_tensor(masks[m], device=self.device) for m in self.modalities}
        return tensors, mask_t

    def forward(self, values: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> np.ndarray:
        """The module's outputs for a batch, in calls of at most ``rows_per_call`` rows.

        With ``trim_padding`` the rows go by length, so each call holds rows of about the same length and is cut
        after its last real step. On the CPU with more than one torch thread, the calls run side by side on a pool
        of that many threads with one torch thread each -- every call, even a lone one, so the calling thread never
        starts torch's own OpenMP team: this model's operations are small, and splitting each across threads that
        spin between operations cost twice the CPU time (and, on a busy machine, several times the wall time).
        """
        import torch

        n = len(next(iter(values.values()))) if values else 0
        threads = torch.get_num_threads() if self.device.type == "cpu" else 1
        size = self.rows_per_call or max(n, 1)
        if self.rows_per_call and threads > 1 and n:
            # calls of equal size, as many as a multiple of the workers, so none waits on a last short call
            calls = threads * -(-n // (threads * size))
            size = -(-n // calls)
        order = None
        if self.trim_padding:
            ends = _last_real_step(masks, self.modalities)
            order = np.argsort(-ends, kind="stable")
            pieces = _pieces_by_length(ends[order], size)
        else:
            pieces = [slice(start, min(n, start + size)) for start in range(0, n, size)] or [slice(0, 0)]

        def run(piece: slice) -> np.ndarray:
            rows = piece if order is None else order[piece]
            part_v = {m: values[m][rows] for m in self.modalities}
            part_m = {m: masks[m][rows] for m in self.modalities}
            if self.trim_padding:
                part_v, part_m = _trimmed(part_v, part_m, self.modalities)
            return self._call(part_v, part_m)

        outs = list(_pool(threads).map(run, pieces)) if threads > 1 else [run(piece) for piece in pieces]
        out = np.concatenate(outs, axis=0)
        if order is not None:
            back = np.empty_like(out)
            back[order] = out
            out = back
        return out

    def _call(self, values: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> np.ndarray:
        import torch

        tensors, mask_t = self.to_tensors(values, masks)
        with torch.inference_mode():
            return self.forward_tensors(tensors, mask_t).float().cpu().numpy()


CPU_ROWS_PER_CALL = 512
""":class:`TorchPredictor` on the CPU: rows per module call unless ``rows_per_call`` says otherwise."""


def _last_real_step(masks: dict[str, np.ndarray], modalities: Sequence[str]) -> np.ndarray:
    """``[B]``: one past the last real step of each row, over all modalities (0 for a row with none)."""
    out = None
    for m in modalities:
        mask = np.asarray(masks[m], dtype=bool)
        t = mask.shape[1]
        ends = np.where(mask.any(1), t - np.argmax(mask[:, ::-1], axis=1), 0)
        out = ends if out is None else np.maximum(out, ends)
    return out if out is not None else np.zeros(0, np.int64)


def _pieces_by_length(ends: np.ndarray, size: int) -> list[slice]:
    """Calls over rows sorted by length (``ends``, not increasing): rows of one length together, cut into calls of
    at most ``size`` rows, so a call pads no row (attribution sends many rows of each length, all the rows of an
    instance sharing its length); a run too short for a call of its own joins the call before it when that stays
    within ``size`` rows (a little padding rather than a tiny call)."""
    n = len(ends)
    if n == 0:
        return [slice(0, 0)]
    starts = [0, *(np.flatnonzero(np.diff(ends)) + 1).tolist(), n]
    pieces: list[list[int]] = []
    for lo, hi in zip(starts[:-1], starts[1:], strict=True):
        calls = -(-(hi - lo) // size)
        bounds = [lo - (-k * (hi - lo) // calls) for k in range(calls + 1)]  # calls of equal size, within one
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            if pieces and b - a < size // 4 and b - pieces[-1][0] <= size:
                pieces[-1][1] = b
            else:
                pieces.append([a, b])
    return [slice(a, b) for a, b in pieces]


def _trimmed(
    values: dict[str, np.ndarray], masks: dict[str, np.ndarray], modalities: Sequence[str]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The batch cut after the last real step of any row: modalities of one length stay of one length (at least
    one step is kept, so no modality becomes empty)."""
    ends: dict[int, int] = {}
    for m in modalities:
        t = masks[m].shape[1]
        ends[t] = max(ends.get(t, 1), int(_last_real_step(masks, [m]).max(initial=1)))
    cut_v = {m: values[m][:, : ends[masks[m].shape[1]]] for m in modalities}
    cut_m = {m: masks[m][:, : ends[masks[m].shape[1]]] for m in modalities}
    return cut_v, cut_m


_POOLS: dict[tuple[int, int], Any] = {}


def _pool(workers: int) -> Any:
    """A lasting pool of ``workers`` threads whose torch (OpenMP) thread count is one: set once in each thread, as
    OpenMP keeps it per thread, so the rest of the process keeps its own count. One pool per process: a forked
    child inherits the parent's pool without its threads."""
    import os

    key = (os.getpid(), workers)
    if key not in _POOLS:
        from concurrent.futures import ThreadPoolExecutor

        import torch

        def single() -> None:
            torch.set_num_threads(1)

        _POOLS[key] = ThreadPoolExecutor(workers, thread_name_prefix="modalens-torch", initializer=single)
    return _POOLS[key]


_ADAPTERS: list[tuple[Callable[[Any], bool], Callable[..., BasePredictor]]] = []


def register_adapter(recognise: Callable[[Any], bool], adapter: Callable[..., BasePredictor]) -> None:
    """Let :func:`wrap` hand the models ``recognise(model)`` accepts to ``adapter(model, modalities, **kwargs)``,
    before the generic adapters (``modalens.models.mmsa`` registers MMSA's models this way)."""
    _ADAPTERS.append((recognise, adapter))


def wrap(model: Any, modalities: Sequence[str], **kwargs: Any) -> BasePredictor:
    """Wrap a torch module, a scikit-learn estimator or a callable in the matching adapter (a predictor as is).

    Models of a registered family get their own adapter (:func:`register_adapter`): MMSA's models (an ``AMIO`` or
    one of its model classes) become a :class:`~modalens.models.mmsa.MMSAPredictor`.
    """
    if isinstance(model, BasePredictor):
        return model
    for recognise, adapter in _ADAPTERS:
        if recognise(model):
            return adapter(model, modalities, **kwargs)
    try:
        import torch

        if isinstance(model, torch.nn.Module):
            return TorchPredictor(model, modalities, **kwargs)
    except ImportError:  # torch is optional for users of sklearn/callable models
        pass
    if hasattr(model, "fit") and (hasattr(model, "predict") or hasattr(model, "predict_proba")):
        return SklearnPredictor(model, modalities, **kwargs)
    if callable(model):
        return CallablePredictor(model, modalities, **kwargs)
    raise PredictorError(f"cannot wrap {type(model).__name__}: expected a torch module, an estimator or a callable")
