"""Hidden activations of a torch model: a forward hook on a named layer (the bridge to the feature engine).

``layer`` names a submodule as ``module.named_modules()`` does (``"head.1"``); ``"NAME:input"`` reads the input of
that submodule instead of its output (``"head:input"`` is the demo MulT's fused representation, the concatenation of
its three pooled modality streams). The activation is one vector per instance: a ``[B, ..., d]`` output is averaged
over its middle axes (a sequence layer gives its mean over steps), a tuple output is read at its first element.

:func:`layer_activations` runs a dataset through the model with some modalities replaced by the masker's baseline
(``present={"audio"}``: audio real, text and vision at baseline); :func:`layer_head` gives the rest of the model as a
function of the layer's activation (the layer's output replaced by a given tensor), for attributions through it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from modalens._core.errors import ModalensError
from modalens.data.dataset import MultimodalDataset
from modalens.models.masker import Masker


class LayerError(ModalensError, ValueError):
    """A layer name the model lacks, or a layer whose activation cannot be read as one vector per instance."""


def layer_names(module: nn.Module) -> list[str]:
    """Every named submodule of ``module`` (what ``layer`` may name; add ``:input`` for a submodule's input)."""
    return [name for name, _ in module.named_modules() if name]


def resolve_layer(module: nn.Module, layer: str) -> tuple[nn.Module, str]:
    """The submodule ``layer`` names and the site read (``"output"`` or ``"input"``); an unknown name is a
    :class:`LayerError` that lists the model's layer names."""
    if not isinstance(layer, str) or not layer:
        raise LayerError(f"layer: expected a layer name, got {layer!r}")
    name, _, site = layer.partition(":")
    site = site or "output"
    if site not in ("output", "input"):
        raise LayerError(f"layer {layer!r}: the part after ':' must be 'input' or 'output', got {site!r}")
    modules = dict(module.named_modules())
    if not name or name not in modules:
        names = layer_names(module)
        raise LayerError(
            f"layer {name!r} is not a layer of {type(module).__name__}; its layers are: {', '.join(names)} "
            "(add ':input' to read a layer's input)"
        )
    return modules[name], site


def _vector(x: Any, layer: str) -> torch.Tensor:
    if isinstance(x, tuple | list):
        x = x[0]
    if not isinstance(x, torch.Tensor) or x.ndim < 2:
        raise LayerError(f"layer {layer!r}: expected a [batch, ..., d] tensor, got {type(x).__name__}")
    if x.ndim > 2:
        x = x.mean(dim=tuple(range(1, x.ndim - 1)))
    return x


def _batch(
    dataset: MultimodalDataset,
    names: Sequence[str],
    index: np.ndarray,
    masker: Masker | None,
    present: Iterable[str] | None,
) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
    keep = set(names) if present is None else set(present)
    tensors, masks = [], {}
    for m in names:
        values = np.ascontiguousarray(dataset[m].values[index])
        if m not in keep:
            if masker is None:
                raise LayerError("a masker is needed to put modalities at their baseline")
            values = np.ascontiguousarray(masker.fill(m, values))
        tensors.append(torch.from_numpy(values))
        masks[m] = torch.from_numpy(np.ascontiguousarray(dataset[m].step_mask()[index]))
    return tensors, masks


def _modalities(module: nn.Module, dataset: MultimodalDataset) -> list[str]:
    names = list(getattr(module, "modalities", dataset.modality_names))
    missing = [m for m in names if m not in dataset.modalities]
    if missing:
        raise LayerError(f"the model reads modalities {missing}, which dataset {dataset.name!r} lacks")
    return names


def layer_activations(
    module: nn.Module,
    layer: str,
    dataset: MultimodalDataset,
    index: np.ndarray | None = None,
    *,
    present: Iterable[str] | None = None,
    masker: Masker | None = None,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """The layer's activation ``[N, d]`` and the model's output for the instances ``index``.

    ``present``: the modalities kept as they are (default all); the others are replaced by ``masker.fill`` (the
    Masker's baseline, e.g. ``Masker("mean").fit(train_subset)``). The model is called as
    ``module(*tensors, masks=masks)`` in the order of ``module.modalities`` (the reference models' convention).
    """
    target, site = resolve_layer(module, layer)
    names = _modalities(module, dataset)
    index = np.arange(len(dataset)) if index is None else np.asarray(index)
    device = torch.device(device)
    captured: list[torch.Tensor] = []

    def keep(x: Any) -> None:
        captured.append(_vector(x, layer).detach().float().cpu())

    handle = (
        target.register_forward_pre_hook(lambda _m, args: keep(args))
        if site == "input"
        else target.register_forward_hook(lambda _m, _args, out: keep(out))
    )
    was_training = module.training
    module.eval()
    outs: list[np.ndarray] = []
    try:
        with torch.inference_mode():
            for start in range(0, index.size, batch_size):
                tensors, masks = _batch(dataset, names, index[start : start + batch_size], masker, present)
                n_before = len(captured)
                out = module(*[t.to(device) for t in tensors], masks={k: v.to(device) for k, v in masks.items()})
                if len(captured) != n_before + 1:
                    raise LayerError(
                        f"layer {layer!r} ran {len(captured) - n_before} times in one forward pass; choose a layer "
                        "that runs once (or its parent)"
                    )
                outs.append(out.detach().float().cpu().numpy())
    finally:
        handle.remove()
        module.train(was_training)
    if not captured:
        raise LayerError("no instances to read activations from")
    return torch.cat(captured).numpy().astype(np.float32), np.concatenate(outs, axis=0)


def layer_head(
    module: nn.Module,
    layer: str,
    dataset: MultimodalDataset,
    index: np.ndarray,
    *,
    device: str | torch.device = "cpu",
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The rest of the model after ``layer`` on the instances ``index``: ``head(h, rows=None) -> output`` with the
    layer's activation replaced by ``h`` (differentiable in ``h``); ``h`` holds the instances at positions ``rows`` of
    ``index`` (default all of them).

    Only layers whose activation is already ``[B, d]`` can be replaced (a sequence layer cannot be rebuilt from its
    mean over steps).
    """
    target, site = resolve_layer(module, layer)
    names = _modalities(module, dataset)
    index = np.asarray(index)
    device = torch.device(device)
    all_tensors, all_masks = _batch(dataset, names, index, None, None)

    def head(h: torch.Tensor, rows: np.ndarray | None = None) -> torch.Tensor:
        """The model's output with the layer's activation replaced by ``h``; ``rows``: the positions in ``index``
        of ``h``'s rows (default all, in order), so a caller can go batch by batch."""
        pick = slice(None) if rows is None else torch.as_tensor(np.asarray(rows), dtype=torch.long)
        tensors = [t[pick].to(device) for t in all_tensors]
        masks = {k: v[pick].to(device) for k, v in all_masks.items()}

        def replace_output(_m: nn.Module, _args: Any, out: Any) -> Any:
            if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape != h.shape:
                raise LayerError(f"layer {layer!r}: only a [batch, d] output of shape {tuple(h.shape)} can be replaced")
            return h.to(out.dtype)

        def replace_input(_m: nn.Module, args: Any) -> Any:
            if not args or not isinstance(args[0], torch.Tensor) or args[0].shape != h.shape:
                raise LayerError(f"layer {layer!r}: only a [batch, d] input of shape {tuple(h.shape)} can be replaced")
            return (h.to(args[0].dtype), *args[1:])

        handle = (
            target.register_forward_pre_hook(replace_input)
            if site == "input"
            else target.register_forward_hook(replace_output)
        )
        was_training = module.training
        module.eval()
        try:
            return module(*tensors, masks=masks)
        finally:
            handle.remove()
            module.train(was_training)

    return head
