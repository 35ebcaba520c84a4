"""CLIP-like vision-language models on raw inputs: image patches and caption tokens as players.

:class:`ImageTextPredictor` wraps any pair of encoders -- ``encode_image(pixels [B, 3, H, W] in [0, 1])`` and
``encode_text(input_ids [B, T], attention_mask [B, T])``, both returning ``[B, d]`` torch tensors -- as a
:class:`~modalens.models.predictor.Predictor` over a patch modality (the image; :class:`~modalens.data.dataset.
PatchGrid`) and a token modality (the caption). Its outputs:

- ``"logit"`` (default): ``logit_scale * cos(image, text)``, the image-text score CLIP reports as
  ``logits_per_image`` (and the output MM-SHAP explains);
- ``"cosine"``: the cosine similarity alone;
- ``"zero-shot"``: a classifier over the image only, class probabilities ``softmax(logit_scale * cos(image,
  class_k))`` against fixed class embeddings (e.g. of "a photo of a {class}." prompts).

What is absent is the masker's business (:class:`~modalens.models.masker.Masker`): absent patches hold the image
baseline, absent pieces the baseline token, before the predictor sees the batch.

**Two towers, each input encoded once.** A CLIP-like score is a function of one image embedding and one text
embedding, so the predictor encodes each *distinct* image and each distinct caption of a batch once (rows are told
apart by a hash of their content) and keeps recent embeddings in a bounded cache across calls. A coalition's image
part only changes when a patch joins, its text part only when a token does: exact enumeration of ``2^(a + b)``
coalitions of ``a`` patches and ``b`` tokens costs ``2^a`` image and ``2^b`` text encodings, and a permutation walk
``a + 1`` and ``b + 1``. The answers are those of the uncached model (the cache only skips repeated work).

Factories: :func:`hf_clip_predictor` for a transformers ``CLIPModel``; the demo's two-tower model has
``modalens.features.vlm.two_tower_predictor``.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modalens.data.dataset import PatchGrid
from modalens.models.masker import Masker
from modalens.models.predictor import BasePredictor, PredictorError

OUTPUTS = ("logit", "cosine", "zero-shot")
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class ImageTextPredictor(BasePredictor):
    """A CLIP-like image-text model from two encoder callables (see the module docstring).

    Parameters
    ----------
    encode_image
        ``pixels -> [B, d]``: a float tensor ``[B, 3, H, W]`` with values in [0, 1] at ``image_size``.
    encode_text
        ``(input_ids, attention_mask) -> [B, d]``, both long tensors ``[B, T]``; not needed for ``"zero-shot"``.
    image, text
        The names of the patch modality and the token modality the predictor reads.
    image_size
        The side the image encoder takes; patch images of another size are resized (bilinear) to it. None: as given.
    grid
        The patch grid; None infers a square grid of square RGB patches from the batch's shape.
    output
        ``"logit"``, ``"cosine"`` or ``"zero-shot"``.
    logit_scale
        CLIP's temperature (``exp(logit_scale)`` of the checkpoint, e.g. 100).
    class_embeddings, class_names
        ``"zero-shot"``: ``[K, d]`` embeddings of the classes (normalised here) and their K names.
    tokenizer
        The tokenizer of the text encoder, kept for building datasets (:func:`modalens.data.images.image_text_dataset`).
    batch_size
        Distinct images (or captions) per encoder call.
    cache_size
        Embeddings kept between calls (per modality); 0 turns the cache off (each distinct input of a batch is still
        encoded once).
    masker
        The baselines (default: the image's mean colour for patches; ``[MASK]``, else padding, for tokens).
    device
        Where the encoders run; inputs are moved there.
    name
        A display name for manifests.
    """

    def __init__(
        self,
        encode_image: Callable[[Any], Any],
        encode_text: Callable[[Any, Any], Any] | None = None,
        *,
        image: str = "image",
        text: str = "text",
        image_size: int | None = None,
        grid: PatchGrid | None = None,
        output: str = "logit",
        logit_scale: float = 1.0,
        class_embeddings: np.ndarray | None = None,
        class_names: Sequence[str] | None = None,
        tokenizer: Any = None,
        batch_size: int = 32,
        cache_size: int = 4096,
        masker: Masker | None = None,
        device: str = "cpu",
        name: str | None = None,
    ) -> None:
        if output not in OUTPUTS:
            raise PredictorError(f"output must be one of {OUTPUTS}, got {output!r}")
        if output == "zero-shot":
            if class_embeddings is None:
                raise PredictorError("output='zero-shot' needs class_embeddings [K, d] (e.g. of class prompts)")
            emb = np.asarray(class_embeddings, dtype=np.float32)
            if emb.ndim != 2 or len(emb) < 2:
                raise PredictorError(f"class_embeddings must be [K >= 2, d], got shape {emb.shape}")
            names = list(class_names) if class_names is not None else [f"class {k}" for k in range(len(emb))]
            if len(names) != len(emb):
                raise PredictorError(f"{len(names)} class_names for {len(emb)} class embeddings")
            self.class_embeddings = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
            super().__init__([image], "classification", names, masker or Masker("mean_colour"))
        else:
            if encode_text is None:
                raise PredictorError(f"output={output!r} scores images against captions: give encode_text")
            self.class_embeddings = None
            default = Masker("mean_colour")
            super().__init__([image, text], "regression", [output], masker or default)
        if batch_size < 1 or cache_size < 0:
            raise PredictorError(f"batch_size must be >= 1 and cache_size >= 0, got {batch_size}, {cache_size}")
        if not math.isfinite(float(logit_scale)) or float(logit_scale) <= 0:
            raise PredictorError(f"logit_scale must be a positive number, got {logit_scale!r}")
        self.encode_image, self.encode_text = encode_image, encode_text
        self.image, self.text = image, text
        self.image_size = None if image_size is None else int(image_size)
        self.grid, self.output, self.logit_scale = grid, output, float(logit_scale)
        self.tokenizer, self.batch_size, self.cache_size = tokenizer, int(batch_size), int(cache_size)
        self.device = device
        self.name = name
        self._cache: dict[str, OrderedDict[bytes, np.ndarray]] = {"image": OrderedDict(), "text": OrderedDict()}
        self.encoded = {"image": 0, "text": 0}  # inputs the encoders actually saw (rows, not calls)
        self.cache_hits = {"image": 0, "text": 0}

    # -- the model ------------------------------------------------------------------------------------------------
    def forward(self, values: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> np.ndarray:
        image = self._embeddings("image", self._image_keys(values[self.image]), values[self.image], None)
        if self.output == "zero-shot":
            logits = self.logit_scale * image @ self.class_embeddings.T
            logits -= logits.max(axis=1, keepdims=True)
            probs = np.exp(logits)
            return probs / probs.sum(axis=1, keepdims=True)
        ids = np.asarray(values[self.text])
        if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
            raise PredictorError(f"modality {self.text!r} must hold token ids [B, T], got {ids.dtype} {ids.shape}")
        mask = np.asarray(masks[self.text], dtype=bool)
        text = self._embeddings("text", self._text_keys(ids, mask), ids, mask)
        cosine = (image * text).sum(axis=1)
        return (cosine if self.output == "cosine" else self.logit_scale * cosine)[:, None]

    def reset_cache(self) -> None:
        """Forget cached embeddings and zero the counters."""
        for kind in self._cache:
            self._cache[kind].clear()
            self.encoded[kind] = self.cache_hits[kind] = 0

    def _image_keys(self, pixels: np.ndarray) -> list[bytes]:
        rows = np.ascontiguousarray(pixels, dtype=np.float32).reshape(len(pixels), -1)
        return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in rows]

    @staticmethod
    def _text_keys(ids: np.ndarray, mask: np.ndarray) -> list[bytes]:
        return [
            hashlib.blake2b(i[m].astype(np.int64).tobytes() + m.tobytes(), digest_size=16).digest()
            for i, m in zip(ids, mask, strict=True)
        ]

    def _embeddings(self, kind: str, keys: list[bytes], rows: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        """Unit-norm embeddings of every row, encoding each distinct row not in the cache once."""
        cache = self._cache[kind]
        first: dict[bytes, int] = {}
        for r, key in enumerate(keys):
            first.setdefault(key, r)
        todo = [key for key in first if key not in cache]
        self.cache_hits[kind] += len(first) - len(todo)
        fresh: dict[bytes, np.ndarray] = {}
        for start in range(0, len(todo), self.batch_size):
            chunk = [first[k] for k in todo[start : start + self.batch_size]]
            emb = self._encode_images(rows[chunk]) if kind == "image" else self._encode_texts(rows[chunk], mask[chunk])
            self.encoded[kind] += len(chunk)
            fresh.update(zip(todo[start : start + self.batch_size], emb, strict=True))
        out = np.stack([fresh[k] if k in fresh else cache[k] for k in keys]) if keys else np.zeros((0, 1))
        if self.cache_size:
            for key in first:
                if key in fresh:
                    cache[key] = fresh[key]
                else:
                    cache.move_to_end(key)
            while len(cache) > self.cache_size:
                cache.popitem(last=False)
        return out

    def _encode_images(self, patches: np.ndarray) -> np.ndarray:
        import torch

        grid = self.grid or _square_grid(patches.shape)
        images = grid.to_images(np.asarray(patches, dtype=np.float32))
        pixels = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(self.device)
        if self.image_size is not None and tuple(pixels.shape[2:]) != (self.image_size, self.image_size):
            pixels = torch.nn.functional.interpolate(
                pixels, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False
            )
        with torch.inference_mode():
            emb = self.encode_image(pixels)
        return _unit(emb, len(patches), "encode_image")

    def _encode_texts(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        import torch

        width = int(mask.sum(axis=1).max(initial=1))  # padding at the end: keep the real tokens' width
        last = np.flatnonzero(mask.any(axis=0))
        width = max(width, int(last[-1]) + 1 if len(last) else 1)
        input_ids = torch.as_tensor(ids[:, :width], dtype=torch.long, device=self.device)
        attention = torch.as_tensor(mask[:, :width], dtype=torch.long, device=self.device)
        with torch.inference_mode():
            emb = self.encode_text(input_ids, attention)
        return _unit(emb, len(ids), "encode_text")

    def describe(self) -> dict:
        out = super().describe()
        out.update(
            {
                "name": self.name,
                "output": self.output,
                "logit_scale": self.logit_scale,
                "image_size": self.image_size,
                "image_modality": self.image,
                "text_modality": None if self.output == "zero-shot" else self.text,
            }
        )
        return out


def _unit(emb: Any, rows: int, what: str) -> np.ndarray:
    out = emb if isinstance(emb, np.ndarray) else getattr(emb, "pooler_output", emb)
    out = out.detach().float().cpu().numpy() if hasattr(out, "detach") else np.asarray(out, dtype=np.float32)
    if out.ndim != 2 or out.shape[0] != rows:
        raise PredictorError(f"{what} returned shape {out.shape} for {rows} inputs; expected [{rows}, d]")
    if not np.isfinite(out).all():
        raise PredictorError(f"{what} returned NaN/inf embeddings")
    return (out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def _square_grid(shape: tuple[int, ...]) -> PatchGrid:
    """The square grid of square RGB patches a ``[B, P, D]`` batch holds (P = p^2, D = 3 s^2)."""
    if len(shape) != 3:
        raise PredictorError(f"image patches must be [B, P, D], got shape {shape}")
    p, side = math.isqrt(shape[1]), math.isqrt(shape[2] // 3)
    if p * p != shape[1] or 3 * side * side != shape[2]:
        raise PredictorError(
            f"image patches of shape {shape} are not a square grid of square RGB patches: give grid=PatchGrid(...)"
        )
    return PatchGrid(p, p, side, side, 3)


# ----------------------------------------------------------------------------------------------------------------
# transformers CLIPModel


def load_hf_clip(path: str | os.PathLike) -> tuple[Any, Any, Sequence[float], Sequence[float]]:
    """``(CLIPModel, tokenizer, mean, std)`` from a local checkpoint folder (offline): the image normalisation from
    its ``preprocessor_config.json`` when present, else CLIP's."""
    import json

    from transformers import AutoTokenizer, CLIPModel

    folder = Path(path)
    model = CLIPModel.from_pretrained(str(folder))
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    mean, std = CLIP_MEAN, CLIP_STD
    config = folder / "preprocessor_config.json"
    if config.is_file():
        data = json.loads(config.read_text())
        mean, std = data.get("image_mean", mean), data.get("image_std", std)
    return model, tokenizer, mean, std


def hf_clip_predictor(
    model: Any,
    tokenizer: Any,
    *,
    output: str = "logit",
    class_prompts: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    image_baseline: Any = "mean_colour",
    token_baseline: str | int | None = None,
    mean: Sequence[float] = CLIP_MEAN,
    std: Sequence[float] = CLIP_STD,
    device: str = "cpu",
    name: str | None = None,
    **kwargs: Any,
) -> ImageTextPredictor:
    """An :class:`ImageTextPredictor` over a transformers ``CLIPModel``.

    Pixels in [0, 1] are normalised with ``mean`` / ``std`` and passed to ``get_image_features``; tokens to
    ``get_text_features``; ``logit_scale`` is the checkpoint's. ``class_prompts`` (with ``output="zero-shot"``, the
    default when prompts are given) are encoded once as the class embeddings.

    ``token_baseline`` defaults to ``"mask"`` when the tokenizer has a ``[MASK]`` token, else to id 0 as MM-SHAP
    does for CLIP: CLIP pools the text at its first end-of-text token, and CLIP's padding *is* that token, so padding
    as the baseline would cut a caption short at its first absent word.
    """
    import torch

    model = model.eval().to(device)
    mean_t = torch.tensor(list(mean), dtype=torch.float32, device=device).view(1, 3, 1, 1)
    std_t = torch.tensor(list(std), dtype=torch.float32, device=device).view(1, 3, 1, 1)

    def encode_image(pixels: Any) -> Any:
        out = model.get_image_features(pixel_values=(pixels - mean_t) / std_t)
        return out if isinstance(out, torch.Tensor) else out.pooler_output

    def encode_text(input_ids: Any, attention_mask: Any) -> Any:
        out = model.get_text_features(input_ids=input_ids, attention_mask=attention_mask)
        return out if isinstance(out, torch.Tensor) else out.pooler_output

    if token_baseline is None:
        token_baseline = "mask" if getattr(tokenizer, "mask_token_id", None) is not None else 0
    if class_prompts is not None and output == "logit":
        output = "zero-shot"
    class_embeddings = None
    if output == "zero-shot":
        if not class_prompts:
            raise PredictorError("output='zero-shot' needs class_prompts")
        enc = tokenizer(list(class_prompts), padding=True, truncation=True, return_tensors="pt")
        with torch.inference_mode():
            class_embeddings = _unit(
                encode_text(enc["input_ids"].to(device), enc["attention_mask"].to(device)), len(class_prompts), "text"
            )
    scale = float(model.logit_scale.detach().exp().clamp(max=100.0))
    return ImageTextPredictor(
        encode_image,
        encode_text,
        image_size=int(model.config.vision_config.image_size),
        output=output,
        logit_scale=scale,
        class_embeddings=class_embeddings,
        class_names=class_names if class_names is not None else class_prompts,
        tokenizer=tokenizer,
        masker=Masker(image_baseline, token_baseline=token_baseline),
        device=device,
        name=name or str(getattr(model.config, "name_or_path", "") or "CLIPModel"),
        **kwargs,
    )
