"""Image modalities of patches, and image-caption datasets for vision-language models on raw inputs.

An image enters an explanation as a **patch modality** (:class:`~modalens.data.dataset.PatchGrid`): the image,
resized and centre-cropped to a square side divisible by ``p``, cut into a ``p x p`` grid; each patch is one step
(a player), its pixels in [0, 1] its features. An absent patch is filled by the masker's baseline (zeros, the
image's mean colour, a blurred copy; :mod:`modalens.models.masker`).

:func:`image_text_dataset` pairs images with captions: a patch modality ``image`` and a token modality ``text``
(:func:`modalens.data.tokens.tokenize`). MM-SHAP (Parcalabescu & Frank, 2023) gives the image
``p = ceil(sqrt(number of text tokens))`` so that both modalities have comparable numbers of players; one grid
serves a whole dataset here, so ``patches="auto"`` takes the largest caption (special tokens counted, as MM-SHAP
counts them).
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modalens.data.dataset import DatasetError, MediaColumn, Modality, MultimodalDataset, PatchGrid
from modalens.data.tokens import tokenize


def grid_size_for(n_tokens: int) -> int:
    """MM-SHAP's grid: ``p = ceil(sqrt(n_tokens))`` patches a side (at least 1)."""
    return max(1, math.ceil(math.sqrt(max(int(n_tokens), 1))))


def patch_grid(p: int, image_size: int, channels: int = 3) -> PatchGrid:
    """A ``p x p`` grid over a square image of side ``image_size`` rounded down to a multiple of ``p``."""
    if isinstance(p, bool) or not isinstance(p, int | np.integer) or p < 1:
        raise DatasetError(f"patches: expected a positive number of patches a side, got {p!r}")
    side = int(image_size) - int(image_size) % int(p)
    if side < p:
        raise DatasetError(f"patches: a {p}x{p} grid needs an image of at least {p} pixels a side, got {image_size}")
    return PatchGrid(int(p), int(p), side // p, side // p, channels)


def as_rgb(image: Any, *, where: str = "image") -> np.ndarray:
    """One image (a PIL image, a uint8 array ``HxW``/``HxWx1``/``HxWx3``/``HxWx4``, or a file path) as uint8 RGB."""
    from PIL import Image

    if isinstance(image, str | os.PathLike):
        path = Path(image)
        if not path.is_file():
            raise DatasetError(f"{where}: image file {path} not found")
        try:
            with Image.open(path) as im:
                return np.asarray(im.convert("RGB"), dtype=np.uint8)
        except OSError as exc:
            raise DatasetError(f"{where}: {path} is not a readable image ({exc})") from exc
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise DatasetError(f"{where}: expected uint8 pixels (0..255), got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4) or 0 in arr.shape:
        raise DatasetError(f"{where}: expected an image HxW, HxWx1, HxWx3 or HxWx4, got shape {arr.shape}")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return np.ascontiguousarray(arr[:, :, :3])


def square_crop(rgb: np.ndarray, side: int) -> np.ndarray:
    """Resize so the shorter side is ``side`` (bicubic), then crop the centre ``side x side`` (uint8)."""
    from PIL import Image

    h, w = rgb.shape[:2]
    scale = side / min(h, w)
    new_w, new_h = max(side, round(w * scale)), max(side, round(h * scale))
    pil = Image.fromarray(rgb).resize((new_w, new_h), Image.BICUBIC)
    left, top = (new_w - side) // 2, (new_h - side) // 2
    return np.array(pil.crop((left, top, left + side, top + side)), dtype=np.uint8)


def png_bytes(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def image_modality(images: Sequence[Any], grid: PatchGrid, *, name: str = "image") -> tuple[Modality, list[bytes]]:
    """A patch modality from images (resized and centre-cropped to the grid), and the cropped images as PNG."""
    h, w, c = grid.image_shape
    if h != w or c != 3:
        raise DatasetError(f"image_modality: expected a square RGB grid, got {h}x{w}x{c}")
    crops = [square_crop(as_rgb(im, where=f"images[{i}]"), h) for i, im in enumerate(images)]
    pixels = np.stack(crops).astype(np.float32) / 255.0 if crops else np.zeros((0, h, w, c), np.float32)
    return Modality(name, "image", grid.to_patches(pixels), patches=grid), [png_bytes(x) for x in crops]


def image_text_dataset(
    images: Sequence[Any],
    captions: Sequence[str],
    tokenizer: Any,
    *,
    image_size: int,
    patches: int | str = "auto",
    max_length: int | None = None,
    ids: Sequence[str] | None = None,
    labels: Sequence[Any] | np.ndarray | None = None,
    label_kind: str | None = None,
    class_names: Sequence[str] | None = None,
    image_name: str = "image",
    text_name: str = "text",
    name: str = "image-text pairs",
) -> MultimodalDataset:
    """Image-caption pairs as a dataset of a patch modality and a token modality.

    Parameters
    ----------
    images
        N images: PIL images, uint8 arrays or file paths.
    captions
        N captions (the dataset's ``texts`` too).
    tokenizer
        The model's tokenizer (a transformers tokenizer or a folder of one).
    image_size
        The model's input side; the grid covers ``image_size`` rounded down to a multiple of ``p`` (the predictor
        resizes back).
    patches
        Patches a side, or ``"auto"``: MM-SHAP's ``ceil(sqrt(n))`` with ``n`` the most tokens of any caption.
    max_length
        Truncate captions to this many tokens.
    ids, labels, label_kind, class_names, name
        As for :class:`~modalens.data.dataset.MultimodalDataset`.
    image_name, text_name
        The two modalities' names. The cropped images are kept as PNG media under ``image_name`` (the instance view
        draws the patch heat map over them).
    """
    if isinstance(captions, str):
        raise DatasetError("captions: expected a list of strings, got a single str")
    if len(images) != len(captions):
        raise DatasetError(f"images and captions must pair up: {len(images)} images, {len(captions)} captions")
    text = tokenize(list(captions), tokenizer, name=text_name, max_length=max_length)
    if patches == "auto":
        p = grid_size_for(int(text.step_mask().sum(1).max(initial=1)))
    elif isinstance(patches, str):
        raise DatasetError(f"patches: expected a positive int or 'auto', got {patches!r}")
    else:
        p = patches
    grid = patch_grid(p, image_size)
    image, pngs = image_modality(images, grid, name=image_name)
    return MultimodalDataset(
        [image, text],
        labels,
        label_kind=label_kind,
        ids=ids,
        texts=list(captions),
        class_names=class_names,
        media={image_name: MediaColumn("image/png", list(pngs))},
        name=name,
    )
