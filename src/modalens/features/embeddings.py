"""Embedding sources for the feature engine: CLIP-like models, precomputed arrays, batched cached extraction.

Every model source follows :class:`EmbeddingModel`: it turns images and texts into L2-normalised float32
embeddings of one shared dimension, and exposes a differentiable image path (pixels in [0, 1] -> embedding) so
that interventions can craft adversarial images. :class:`PrecomputedEmbeddings` holds paired embeddings that were
computed elsewhere (npy, npz or Parquet files).

Extraction (:func:`extract_embeddings`) runs in batches with a tqdm progress bar and can keep every finished batch
in an on-disk cache keyed by the model name and a hash of the batch content, so an interrupted run resumes where it
stopped and a repeated run costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import torch

from modalens._core.atomic import write_atomically
from modalens._core.errors import ModalensError

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class EmbeddingError(ModalensError, ValueError):
    """Input to an embedding source is malformed (wrong type, shape, file content)."""


@runtime_checkable
class EmbeddingModel(Protocol):
    """A paired image-text embedding model (CLIP-like).

    Attributes
    ----------
    name
        Identity of the model; part of every cache key, so two different models never share cached embeddings.
    dim
        Dimension of the shared embedding space.
    """

    name: str
    dim: int

    def encode_images(self, images: Sequence[Any], batch_size: int = 64) -> np.ndarray:
        """Images (PIL or uint8 arrays HxWx3 / HxW) -> ``[N, dim]`` float32, L2-normalised."""
        ...

    def encode_texts(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Texts -> ``[N, dim]`` float32, L2-normalised."""
        ...

    def preprocess_images(self, images: Sequence[Any]) -> torch.Tensor:
        """Images -> ``[B, 3, H, W]`` float tensor in [0, 1] at the model's input size."""
        ...

    def image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """Differentiable: ``[B, 3, H, W]`` pixels in [0, 1] -> ``[B, dim]`` L2-normalised embeddings."""
        ...


# ----------------------------------------------------------------------------------------------------------------
# Images


def as_rgb_array(image: Any, *, where: str = "image") -> np.ndarray:
    """Bring one image to a uint8 ``HxWx3`` array.

    Parameters
    ----------
    image
        A PIL image (any mode), or a uint8 numpy array ``HxW`` (grey), ``HxWx1``, ``HxWx3`` or ``HxWx4`` (alpha is
        dropped). Float arrays are refused: their value range is ambiguous.
    where
        How to name the image in an error message (e.g. ``"images[3]"``).
    """
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow ships with the core dependencies' stack
        Image = None  # noqa: N806
    if Image is not None and isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    if not isinstance(image, np.ndarray):
        raise EmbeddingError(f"{where}: expected a PIL image or a uint8 numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise EmbeddingError(
            f"{where}: expected dtype uint8 (0..255), got {image.dtype}; convert with .astype(np.uint8)"
        )
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] in (1, 3, 4):
        if image.shape[2] == 1:
            return np.repeat(image, 3, axis=2)
        return np.ascontiguousarray(image[:, :, :3])
    raise EmbeddingError(f"{where}: expected shape HxW, HxWx1, HxWx3 or HxWx4, got {image.shape}")


def resize_center_crop(image: Any, size: int, *, where: str = "image") -> np.ndarray:
    """Resize an image so its shorter side is ``size`` (bicubic), then crop the centre ``size x size``.

    Returns
    -------
    np.ndarray
        uint8 ``[size, size, 3]``.
    """
    from PIL import Image

    rgb = as_rgb_array(image, where=where)
    h, w = rgb.shape[:2]
    if h == 0 or w == 0:
        raise EmbeddingError(f"{where}: image is empty ({h}x{w})")
    scale = size / min(h, w)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    pil = Image.fromarray(rgb).resize((new_w, new_h), Image.BICUBIC)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return np.array(pil.crop((left, top, left + size, top + size)), dtype=np.uint8)  # writable copy


def images_to_tensor(images: Sequence[Any], size: int) -> torch.Tensor:
    """A list of images -> ``[B, 3, size, size]`` float32 tensor in [0, 1] (resize + centre crop each)."""
    if isinstance(images, np.ndarray) and images.ndim in (3, 4) and images.dtype == np.uint8:
        images = list(images)  # a stacked uint8 batch [B, H, W(, C)]
    if len(images) == 0:
        return torch.zeros((0, 3, size, size), dtype=torch.float32)
    arrays = [resize_center_crop(img, size, where=f"images[{i}]") for i, img in enumerate(images)]
    batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255.0
    return batch.contiguous()


# ----------------------------------------------------------------------------------------------------------------
# Hashing and cache


def content_hash(items: Sequence[Any], kind: str) -> str:
    """SHA-256 over a batch's content (image pixels with their shapes, or text strings)."""
    digest = hashlib.sha256(kind.encode())
    for i, item in enumerate(items):
        if kind == "text":
            if not isinstance(item, str):
                raise EmbeddingError(f"texts[{i}]: expected str, got {type(item).__name__}")
            data = item.encode("utf-8")
        else:
            arr = as_rgb_array(item, where=f"images[{i}]")
            digest.update(str(arr.shape).encode())
            data = arr.tobytes()
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "model"


@dataclass
class EmbeddingCache:
    """Batches of embeddings on disk, one ``.npy`` per batch, keyed by model name and content hash.

    Layout: ``root/<model name>/<kind>-<sha256>.npy``. Files are written to a temporary name and renamed, so a
    cache entry is complete or absent.
    """

    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    def path(self, model_name: str, kind: str, key: str) -> Path:
        return self.root / _safe_name(model_name) / f"{kind}-{key}.npy"

    def get(self, model_name: str, kind: str, key: str, rows: int) -> np.ndarray | None:
        """The cached batch, or None when absent or unreadable (a damaged entry is recomputed, not trusted)."""
        file = self.path(model_name, kind, key)
        if not file.is_file():
            return None
        try:
            arr = np.load(file, allow_pickle=False)
        except (OSError, ValueError):
            return None
        if arr.ndim != 2 or arr.shape[0] != rows:
            return None
        return arr.astype(np.float32, copy=False)

    def put(self, model_name: str, kind: str, key: str, array: np.ndarray) -> None:
        data = np.asarray(array, dtype=np.float32)
        write_atomically(self.path(model_name, kind, key), lambda tmp: np.save(tmp, data, allow_pickle=False), ".npy")


def batched_encode(
    encode: Callable[[Sequence[Any]], np.ndarray],
    items: Sequence[Any],
    *,
    kind: str,
    model_name: str,
    batch_size: int = 64,
    cache: EmbeddingCache | str | os.PathLike | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Encode ``items`` in batches, reusing cached batches.

    Parameters
    ----------
    encode
        Maps one batch to a ``[b, dim]`` array.
    items
        Images or texts.
    kind
        ``"image"`` or ``"text"`` (part of the cache key).
    model_name
        Part of the cache key.
    batch_size
        Items per batch; the cache is per batch, so keep it fixed to reuse a cache.
    cache
        An :class:`EmbeddingCache` or a directory for one; None disables caching.
    progress
        Show a tqdm bar.

    Returns
    -------
    np.ndarray
        ``[N, dim]`` float32.
    """
    from tqdm.auto import tqdm

    if kind not in ("image", "text"):
        raise EmbeddingError(f"kind must be 'image' or 'text', got {kind!r}")
    if batch_size < 1:
        raise EmbeddingError(f"batch_size must be >= 1, got {batch_size}")
    if cache is not None and not isinstance(cache, EmbeddingCache):
        cache = EmbeddingCache(Path(cache))
    n = len(items)
    chunks: list[np.ndarray] = []
    starts = range(0, n, batch_size)
    for start in tqdm(starts, desc=f"{model_name}: {kind}s", unit="batch", disable=not progress or n == 0):
        batch = items[start : start + batch_size]
        key = content_hash(batch, kind) if cache is not None else ""
        out = cache.get(model_name, kind, key, len(batch)) if cache is not None else None
        if out is None:
            out = np.asarray(encode(batch), dtype=np.float32)
            if out.ndim != 2 or out.shape[0] != len(batch):
                raise EmbeddingError(f"{model_name}: encoder returned shape {out.shape} for a batch of {len(batch)}")
            if cache is not None:
                cache.put(model_name, kind, key, out)
        chunks.append(out)
    if not chunks:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(chunks, axis=0)


def l2_normalise(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), as float32."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norms, eps)).astype(np.float32)


def extract_embeddings(
    model: EmbeddingModel,
    *,
    images: Sequence[Any] | None = None,
    texts: Sequence[str] | None = None,
    batch_size: int = 64,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Embed images and/or texts with ``model`` in batches, optionally cached on disk.

    Parameters
    ----------
    model
        Any :class:`EmbeddingModel`.
    images, texts
        What to embed; pass paired lists to get paired embeddings.
    batch_size
        Items per forward pass (and per cache entry).
    cache_dir
        Directory of the on-disk cache; None disables it.
    progress
        Show tqdm bars.

    Returns
    -------
    dict
        ``{"image": [N, dim], "text": [M, dim]}`` for what was given; float32, L2-normalised.
    """
    if images is None and texts is None:
        raise EmbeddingError("extract_embeddings: pass images=..., texts=... or both")
    cache = EmbeddingCache(Path(cache_dir)) if cache_dir is not None else None
    out: dict[str, np.ndarray] = {}
    if images is not None:
        emb = batched_encode(
            lambda b: model.encode_images(b, batch_size=len(b)),
            images,
            kind="image",
            model_name=model.name,
            batch_size=batch_size,
            cache=cache,
            progress=progress,
        )
        out["image"] = emb if len(images) else np.zeros((0, model.dim), np.float32)
    if texts is not None:
        texts = list(texts)
        emb = batched_encode(
            lambda b: model.encode_texts(list(b), batch_size=len(b)),
            texts,
            kind="text",
            model_name=model.name,
            batch_size=batch_size,
            cache=cache,
            progress=progress,
        )
        out["text"] = emb if len(texts) else np.zeros((0, model.dim), np.float32)
    return out


# ----------------------------------------------------------------------------------------------------------------
# transformers CLIPModel


class HFCLIPModel:
    """Adapter for a transformers ``CLIPModel`` (a local directory, a hub id, or a model object).

    Images are preprocessed here (shorter side resized to the vision config's ``image_size``, centre crop, CLIP
    mean/std), so no torchvision is needed; the differentiable path :meth:`image_features` takes pixels in [0, 1].

    Parameters
    ----------
    model
        A ``transformers.CLIPModel``.
    tokenizer
        A transformers tokenizer (called as ``tokenizer(texts, padding=True, truncation=True, return_tensors="pt")``).
    name
        Identity used in cache keys; defaults to the model's ``name_or_path``.
    mean, std
        Per-channel pixel normalisation; CLIP's by default.
    device
        Where to run (``"cpu"``, ``"cuda"``).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str | None = None,
        mean: Sequence[float] = CLIP_MEAN,
        std: Sequence[float] = CLIP_STD,
        device: str | torch.device = "cpu",
    ) -> None:
        self.model = model.eval().to(device)
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        self.name = name or str(getattr(model.config, "name_or_path", "") or "clip")
        self.dim = int(model.config.projection_dim)
        self.image_size = int(model.config.vision_config.image_size)
        self.max_length = int(model.config.text_config.max_position_embeddings)
        self._mean = torch.tensor(list(mean), dtype=torch.float32).view(1, 3, 1, 1)
        self._std = torch.tensor(list(std), dtype=torch.float32).view(1, 3, 1, 1)

    @classmethod
    def from_pretrained(cls, path_or_id: str | os.PathLike, *, device: str = "cpu", **kwargs: Any) -> HFCLIPModel:
        """Load model, tokenizer and (when present) the image processor's mean/std from a directory or hub id.

        With ``HF_HUB_OFFLINE=1`` only local directories and already-cached hub ids load.
        """
        try:
            from transformers import AutoTokenizer, CLIPModel
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("HFCLIPModel needs transformers: pip install 'transformers>=4.40'") from exc
        source = str(path_or_id)
        model = CLIPModel.from_pretrained(source)
        tokenizer = AutoTokenizer.from_pretrained(source)
        mean, std = _processor_mean_std(Path(source))
        return cls(model, tokenizer, name=kwargs.pop("name", source), mean=mean, std=std, device=device, **kwargs)

    def preprocess_images(self, images: Sequence[Any]) -> torch.Tensor:
        return images_to_tensor(images, self.image_size)

    def image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        _check_pixels(pixels)
        pixels = pixels.to(self.device)
        normed = (pixels - self._mean.to(pixels.device)) / self._std.to(pixels.device)
        out = self.model.get_image_features(pixel_values=normed)
        emb = out if isinstance(out, torch.Tensor) else out.pooler_output  # transformers >= 5 returns an output
        return torch.nn.functional.normalize(emb, dim=-1)

    def encode_images(self, images: Sequence[Any], batch_size: int = 64) -> np.ndarray:
        return _encode_batches(lambda b: self.image_features(self.preprocess_images(b)), images, batch_size, self.dim)

    def encode_texts(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        _check_texts(texts)
        return _encode_batches(self._text_features, list(texts), batch_size, self.dim)

    def _text_features(self, texts: Sequence[str]) -> torch.Tensor:
        enc = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        out = self.model.get_text_features(
            input_ids=enc["input_ids"].to(self.device), attention_mask=enc["attention_mask"].to(self.device)
        )
        emb = out if isinstance(out, torch.Tensor) else out.pooler_output
        return torch.nn.functional.normalize(emb, dim=-1)


def _processor_mean_std(directory: Path) -> tuple[Sequence[float], Sequence[float]]:
    """Mean/std from a local ``preprocessor_config.json`` when there is one, else CLIP's defaults."""
    cfg = directory / "preprocessor_config.json"
    if cfg.is_file():
        data = json.loads(cfg.read_text())
        return data.get("image_mean", CLIP_MEAN), data.get("image_std", CLIP_STD)
    return CLIP_MEAN, CLIP_STD


def _check_pixels(pixels: torch.Tensor) -> None:
    if not isinstance(pixels, torch.Tensor) or pixels.ndim != 4 or pixels.shape[1] != 3:
        shape = tuple(pixels.shape) if isinstance(pixels, torch.Tensor) else type(pixels).__name__
        raise EmbeddingError(f"pixels: expected a tensor [B, 3, H, W] with values in [0, 1], got {shape}")


def _check_texts(texts: Sequence[str]) -> None:
    if isinstance(texts, str):
        raise EmbeddingError("texts: expected a list of strings, got a single str; wrap it in a list")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise EmbeddingError(f"texts[{i}]: expected str, got {type(t).__name__}")


def _encode_batches(
    fn: Callable[[Sequence[Any]], torch.Tensor], items: Sequence[Any], batch_size: int, dim: int
) -> np.ndarray:
    """Run ``fn`` over batches without gradients and stack the results as float32."""
    if batch_size < 1:
        raise EmbeddingError(f"batch_size must be >= 1, got {batch_size}")
    if isinstance(items, np.ndarray) and items.dtype == np.uint8 and items.ndim in (3, 4):
        items = list(items)
    outs = []
    with torch.no_grad():
        for start in range(0, len(items), batch_size):
            outs.append(fn(items[start : start + batch_size]).float().cpu().numpy())
    if not outs:
        return np.zeros((0, dim), dtype=np.float32)
    return np.concatenate(outs, axis=0).astype(np.float32)


# ----------------------------------------------------------------------------------------------------------------
# Precomputed embeddings


@dataclass
class PrecomputedEmbeddings:
    """Paired image/text embeddings computed elsewhere.

    Attributes
    ----------
    image_emb, text_emb
        ``[N, dim]`` float32 arrays, row ``n`` of each describing the same pair.
    meta
        Optional per-pair columns (ids, labels, captions ...), ``N`` rows.
    name
        Identity of the model that produced them.
    """

    image_emb: np.ndarray
    text_emb: np.ndarray
    meta: pd.DataFrame = field(default_factory=pd.DataFrame)
    name: str = "precomputed"
    normalise: bool = True
    source: str = "<memory>"

    def __post_init__(self) -> None:
        self.image_emb = _check_matrix(self.image_emb, f"{self.source}: image embeddings")
        self.text_emb = _check_matrix(self.text_emb, f"{self.source}: text embeddings")
        if self.image_emb.shape != self.text_emb.shape:
            raise EmbeddingError(
                f"{self.source}: image embeddings {self.image_emb.shape} and text embeddings "
                f"{self.text_emb.shape} must have the same shape [N, dim] (row n = pair n)"
            )
        if len(self.meta) not in (0, len(self.image_emb)):
            raise EmbeddingError(
                f"{self.source}: meta has {len(self.meta)} rows, embeddings have {len(self.image_emb)}"
            )
        if self.normalise:
            self.image_emb = l2_normalise(self.image_emb)
            self.text_emb = l2_normalise(self.text_emb)

    @property
    def dim(self) -> int:
        return int(self.image_emb.shape[1])

    def __len__(self) -> int:
        return int(self.image_emb.shape[0])

    @classmethod
    def from_npy(
        cls, image_path: str | os.PathLike, text_path: str | os.PathLike, *, name: str | None = None, **kw: Any
    ) -> PrecomputedEmbeddings:
        """Two ``.npy`` files, ``[N, dim]`` each."""
        img = _load_npy(Path(image_path))
        txt = _load_npy(Path(text_path))
        return cls(img, txt, name=name or Path(image_path).stem, source=f"{image_path} + {text_path}", **kw)

    @classmethod
    def from_npz(
        cls, path: str | os.PathLike, *, image_key: str = "image", text_key: str = "text", **kw: Any
    ) -> PrecomputedEmbeddings:
        """One ``.npz`` with arrays ``image`` and ``text`` (names configurable)."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = [k for k in (image_key, text_key) if k not in data.files]
                if missing:
                    raise EmbeddingError(f"{path}: missing array(s) {missing}; it has {data.files}")
                img, txt = data[image_key], data[text_key]
        except (OSError, ValueError) as exc:
            raise EmbeddingError(f"{path}: cannot read as .npz: {exc}") from exc
        return cls(img, txt, name=kw.pop("name", path.stem), source=str(path), **kw)

    @classmethod
    def from_parquet(
        cls,
        path: str | os.PathLike,
        *,
        image_column: str = "image_embedding",
        text_column: str = "text_embedding",
        **kw: Any,
    ) -> PrecomputedEmbeddings:
        """A Parquet file with one list-valued column per side; every other column becomes ``meta``."""
        path = Path(path)
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several kinds; name the file either way
            raise EmbeddingError(f"{path}: cannot read as Parquet: {exc}") from exc
        missing = [c for c in (image_column, text_column) if c not in frame.columns]
        if missing:
            raise EmbeddingError(f"{path}: missing column(s) {missing}; it has {list(frame.columns)}")
        img = _stack_column(frame[image_column], f"{path}: column {image_column!r}")
        txt = _stack_column(frame[text_column], f"{path}: column {text_column!r}")
        meta = frame.drop(columns=[image_column, text_column]).reset_index(drop=True)
        return cls(img, txt, meta=meta, name=kw.pop("name", path.stem), source=str(path), **kw)

    @classmethod
    def load(cls, path: str | os.PathLike, text_path: str | os.PathLike | None = None, **kw: Any):
        """Dispatch on the file suffix: ``.parquet``, ``.npz``, or ``.npy`` (then ``text_path`` is required)."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            return cls.from_parquet(path, **kw)
        if suffix == ".npz":
            return cls.from_npz(path, **kw)
        if suffix == ".npy":
            if text_path is None:
                raise EmbeddingError(f"{path}: an .npy file holds one side; pass the text embeddings' .npy too")
            return cls.from_npy(path, text_path, **kw)
        raise EmbeddingError(f"{path}: unknown embedding file type {suffix!r}; expected .parquet, .npz or .npy")

    def save_parquet(self, path: str | os.PathLike) -> Path:
        """Write ``image_embedding`` / ``text_embedding`` list columns plus ``meta`` to Parquet."""
        frame = self.meta.reset_index(drop=True).copy()
        frame["image_embedding"] = list(self.image_emb)
        frame["text_embedding"] = list(self.text_emb)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(path, index=False)
        return path


def _check_matrix(arr: Any, what: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim != 2:
        raise EmbeddingError(f"{what}: expected a 2-D array [N, dim], got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise EmbeddingError(f"{what}: expected floating-point values, got dtype {arr.dtype}")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).any(axis=1).sum())
        raise EmbeddingError(f"{what}: {bad} row(s) contain NaN or inf")
    return arr


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise EmbeddingError(f"{path}: cannot read as .npy (pickled arrays are refused): {exc}") from exc


def _stack_column(column: pd.Series, what: str) -> np.ndarray:
    lengths = column.map(lambda v: len(v) if v is not None and hasattr(v, "__len__") else -1)
    if (lengths < 0).any():
        raise EmbeddingError(f"{what}: row {int(np.argmax(lengths.to_numpy() < 0))} is not a list of numbers")
    if lengths.nunique() > 1:
        raise EmbeddingError(f"{what}: rows have different lengths {sorted(lengths.unique())[:5]}")
    return np.stack([np.asarray(v, dtype=np.float32) for v in column]) if len(column) else np.zeros((0, 0), np.float32)
