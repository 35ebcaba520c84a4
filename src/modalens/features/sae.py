"""Sparse feature extractors over paired embeddings: sparse autoencoders (ReLU + L1, TopK) and a registry.

Every extractor has the parameters SAELens uses (``W_enc [d_in, d_sae]``, ``b_enc [d_sae]``, ``W_dec [d_sae, d_in]``,
``b_dec [d_in]``) and is saved as ``cfg.json`` + ``sae_weights.safetensors`` so weights move between tools.
The non-negative contrastive head (NCL) lives in :mod:`modalens.features.ncl` and registers itself here.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from modalens._core.registry import Registry
from modalens._core.version import __version__
from modalens.features.errors import FeatureError
from modalens.models.loop import Callback, fit, shuffled_batches

CFG_FILE = "cfg.json"
WEIGHTS_FILE = "sae_weights.safetensors"
WEIGHT_KEYS = ("W_enc", "b_enc", "W_dec", "b_dec")
# The SAELens cfg.json layout that save() writes: the 6.0 layout (inference config keys at the top level, run facts
# under "metadata"). SAELens reads metadata.sae_lens_version to pick its loader; without one (or below 6.0) it takes
# the file for a pre-6.0 config and rebuilds the metadata from top-level keys, dropping ours.
SAELENS_FORMAT_VERSION = "6.0.0"


# ----------------------------------------------------------------------------------------------------------- configs
@dataclass
class ExtractorConfig:
    """Options shared by every extractor.

    Parameters
    ----------
    d_in
        Embedding width.
    d_sae
        Number of features.
    lr
        Adam learning rate.
    epochs
        Passes over the training data.
    batch_size
        Rows per optimisation step.
    seed
        Seeds initialisation and shuffling, so training is reproducible on one device.
    """

    architecture: ClassVar[str] = ""
    d_in: int
    d_sae: int
    lr: float = 1e-3
    epochs: int = 50
    batch_size: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("d_in", "d_sae", "epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < 1:
                raise FeatureError(f"{type(self).__name__}.{name} must be a positive integer, got {value!r}")
        if not self.lr > 0:
            raise FeatureError(f"{type(self).__name__}.lr must be > 0, got {self.lr!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"architecture": self.architecture, **asdict(self)}


@dataclass
class ReLUSAEConfig(ExtractorConfig):
    """Standard sparse autoencoder: ``z = ReLU((x - b_dec) W_enc + b_enc)``, loss ``||x - x_hat||^2 + l1 * |z|_1``.

    Decoder rows are kept at unit norm so the L1 penalty cannot be dodged by shrinking codes. The default
    ``l1_coefficient`` suits L2-normalised embeddings (on planted 512-d unit-norm data with 8 active atoms per row it
    gave explained variance 0.97 at L0 16; 0.03 gave L0 129, 0.3 lost 40 % of the variance); for inputs of another
    scale, scale it with the mean squared norm.
    """

    architecture: ClassVar[str] = "relu"
    l1_coefficient: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.l1_coefficient < 0:
            raise FeatureError(f"ReLUSAEConfig.l1_coefficient must be >= 0, got {self.l1_coefficient!r}")


@dataclass
class TopKSAEConfig(ExtractorConfig):
    """TopK sparse autoencoder: only the ``k`` largest pre-activations per row survive (then ReLU); loss is MSE."""

    architecture: ClassVar[str] = "topk"
    k: int = 8

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.k, int | np.integer) or not 1 <= self.k <= self.d_sae:
            raise FeatureError(f"TopKSAEConfig.k must be an integer in [1, d_sae={self.d_sae}], got {self.k!r}")


# --------------------------------------------------------------------------------------------------------- modules
class FeatureExtractor(nn.Module):
    """Base of all extractors: non-negative codes ``encode(x)`` and a linear ``decode(z) = z W_dec + b_dec``.

    ``edit_space`` says where interventions act: ``"input"`` (edit codes, decode back into embedding space, keeping
    the reconstruction error) or ``"code"`` (the codes are themselves the representation, as for NCL).
    """

    edit_space: ClassVar[str] = "input"
    saelens_architecture: ClassVar[str] = "standard"
    apply_b_dec_to_input: ClassVar[bool] = True

    def __init__(self, cfg: ExtractorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        gen = torch.Generator().manual_seed(cfg.seed)
        w_dec = torch.randn(cfg.d_sae, cfg.d_in, generator=gen)
        w_dec = w_dec / w_dec.norm(dim=1, keepdim=True)
        self.W_dec = nn.Parameter(w_dec)
        # tied initialisation: each feature starts reading the direction it writes
        self.W_enc = nn.Parameter(w_dec.T.clone())
        self.b_enc = nn.Parameter(torch.zeros(cfg.d_sae))
        self.b_dec = nn.Parameter(torch.zeros(cfg.d_in))

    @property
    def d_in(self) -> int:
        return self.cfg.d_in

    @property
    def d_sae(self) -> int:
        return self.cfg.d_sae

    @property
    def architecture(self) -> str:
        return self.cfg.architecture

    def hidden_pre(self, x: torch.Tensor) -> torch.Tensor:
        if self.apply_b_dec_to_input:
            x = x - self.b_dec
        return x @ self.W_enc + self.b_enc

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Non-negative feature activations ``[B, d_sae]``."""
        return torch.relu(self.hidden_pre(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Embedding-space reconstruction ``[B, d_in]`` from codes."""
        return z @ self.W_dec + self.b_dec

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return z, self.decode(z)

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        self.W_dec.data /= self.W_dec.data.norm(dim=1, keepdim=True).clamp_min(1e-8)

    # numpy conveniences --------------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_numpy(self, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """Codes for a numpy array ``[N, d_in]`` as float32 ``[N, d_sae]``, in batches on the module's device."""
        x = check_embeddings(x, "x", d=self.d_in)
        device = self.W_enc.device
        out = [
            self.encode(torch.from_numpy(x[i : i + batch_size]).to(device)).cpu().numpy()
            for i in range(0, len(x), batch_size)
        ]
        return np.concatenate(out, axis=0) if out else np.zeros((0, self.d_sae), np.float32)

    @torch.no_grad()
    def decode_numpy(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=np.float32)
        return self.decode(torch.from_numpy(z).to(self.W_dec.device)).cpu().numpy()

    def edit(self, x: np.ndarray, edit_codes: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """Apply ``edit_codes`` to the codes of ``x`` and return the edited representation.

        In ``"input"`` space the reconstruction error is kept: ``x + (z' - z) W_dec``, so an edit that changes no
        code returns ``x`` exactly and only the edited features move the embedding.
        """
        z = self.encode_numpy(x)
        z_new = np.asarray(edit_codes(z.copy()), dtype=np.float32)
        if z_new.shape != z.shape:
            raise FeatureError(f"edit_codes returned shape {z_new.shape}, expected {z.shape}")
        if self.edit_space == "code":
            return z_new
        delta = (z_new - z) @ self.W_dec.detach().cpu().numpy()
        return (np.asarray(x, np.float32) + delta).astype(np.float32)

    def representation(self, x: np.ndarray) -> np.ndarray:
        """The unedited representation in this extractor's edit space (``x`` itself or its codes)."""
        return self.encode_numpy(x) if self.edit_space == "code" else np.asarray(x, np.float32)

    # training -----------------------------------------------------------------------------------------------
    def training_loss(self, batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss on a batch of embeddings (rows of the image/text union). Overridden per architecture."""
        raise NotImplementedError

    # persistence --------------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, metadata: dict[str, Any] | None = None) -> Path:
        """Write ``cfg.json`` + ``sae_weights.safetensors`` (SAELens layout) into directory ``path``.

        ``cfg.json["metadata"]`` holds SAELens' metadata keys: ``model_name`` (None unless given), ``hook_name``
        (``"embedding"`` unless given), any keys of ``metadata``, and, always, ``sae_lens_version`` =
        :data:`SAELENS_FORMAT_VERSION` (the SAELens file layout followed, which SAELens reads to choose its loader),
        ``sae_lens_training_version`` = None (not trained by SAELens) and ``modalens_version`` (the writer).
        """
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        tensors = {k: getattr(self, k).detach().cpu().contiguous().float() for k in WEIGHT_KEYS}
        save_file(tensors, str(out / WEIGHTS_FILE))
        cfg = {
            "architecture": self.saelens_architecture,
            "d_in": self.d_in,
            "d_sae": self.d_sae,
            "dtype": "float32",
            "device": "cpu",
            "apply_b_dec_to_input": self.apply_b_dec_to_input,
            "normalize_activations": "none",
            "reshape_activations": "none",
            "metadata": {
                "model_name": None,
                "hook_name": "embedding",
                **(metadata or {}),
                "sae_lens_version": SAELENS_FORMAT_VERSION,
                "sae_lens_training_version": None,
                "modalens_version": __version__,
            },
            "modalens": self.cfg.to_dict(),
        }
        if self.saelens_architecture == "topk":
            cfg["k"] = self.cfg.k
            cfg["rescale_acts_by_decoder_norm"] = False  # codes are not rescaled (decoder rows are kept at unit norm)
        (out / CFG_FILE).write_text(json.dumps(cfg, indent=2))
        return out


class ReLUSAE(FeatureExtractor):
    """Sparse autoencoder with ReLU codes and an L1 penalty (SAELens ``standard``)."""

    def training_loss(self, batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        z, x_hat = self(batch)
        mse = (x_hat - batch).pow(2).sum(dim=1).mean()
        l1 = z.abs().sum(dim=1).mean()
        loss = mse + self.cfg.l1_coefficient * l1
        return loss, {"loss": loss.item(), "mse": mse.item(), "l1": l1.item()}


class TopKSAE(FeatureExtractor):
    """Sparse autoencoder keeping the ``k`` largest activations per row (SAELens ``topk``)."""

    saelens_architecture = "topk"

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.hidden_pre(x)
        values, index = pre.topk(self.cfg.k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, index, torch.relu(values))

    def training_loss(self, batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        z, x_hat = self(batch)
        mse = (x_hat - batch).pow(2).sum(dim=1).mean()
        return mse, {"loss": mse.item(), "mse": mse.item()}


# --------------------------------------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class ExtractorSpec:
    """A registered architecture: its config class, module class and trainer."""

    name: str
    config: type[ExtractorConfig]
    module: type[FeatureExtractor]
    trainer: Callable[..., TrainResult]
    description: str = ""


EXTRACTORS: Registry[ExtractorSpec] = Registry("extractor", providers=["modalens.features.ncl"])


def register_extractor(spec: ExtractorSpec, *, aliases: tuple[str, ...] = ()) -> None:
    """Add an architecture to the registry (its name becomes a valid ``extractor=`` / CLI choice)."""
    EXTRACTORS.register(spec.name, spec, aliases=aliases, replace=True)


def list_extractors() -> list[str]:
    """Names of the registered extractors (``relu``, ``topk``, ``ncl`` ...; ``sae`` and ``standard`` alias relu)."""
    return EXTRACTORS.names()


def get_extractor(name: str) -> ExtractorSpec:
    """The registered spec for ``name`` (or an alias); unknown names raise with the list of known ones."""
    return EXTRACTORS.get(name)


def make_config(name: str, d_in: int, d_sae: int, **options: Any) -> ExtractorConfig:
    """Build the config dataclass of extractor ``name``; unknown options raise naming the valid ones."""
    cls = get_extractor(name).config
    valid = {f.name for f in fields(cls)}
    unknown = set(options) - valid
    if unknown:
        raise TypeError(f"{cls.__name__} has no option(s) {sorted(unknown)}; valid: {sorted(valid)}")
    return cls(d_in=d_in, d_sae=d_sae, **options)


# --------------------------------------------------------------------------------------------------------- training
@dataclass
class TrainResult:
    """A trained extractor, its per-epoch loss history and its evaluation metrics."""

    extractor: FeatureExtractor
    history: list[dict[str, float]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def check_embeddings(x: Any, name: str, d: int | None = None) -> np.ndarray:
    """Validate a 2-D finite float array and return it as contiguous float32; errors name the field."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise FeatureError(f"{name} must be a 2-D array [N, d], got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise FeatureError(f"{name} must be numeric, got dtype {arr.dtype}")
    if d is not None and arr.shape[1] != d:
        raise FeatureError(f"{name} has width {arr.shape[1]}, expected {d}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise FeatureError(f"{name} contains NaN or infinite values (row {int(np.where(~np.isfinite(arr))[0][0])})")
    return arr


def check_pairs(image_emb: Any, text_emb: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate paired embeddings: same shape ``[N, d]``, row n of each is a pair."""
    img = check_embeddings(image_emb, "image_emb")
    txt = check_embeddings(text_emb, "text_emb")
    if img.shape != txt.shape:
        raise FeatureError(f"image_emb {img.shape} and text_emb {txt.shape} must have the same shape [N, d] (pairs)")
    if len(img) < 2:
        raise FeatureError(f"need at least 2 pairs, got {len(img)}")
    return img, txt


def train_sae(
    cfg: ReLUSAEConfig | TopKSAEConfig,
    image_emb: np.ndarray,
    text_emb: np.ndarray,
    *,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> TrainResult:
    """Train a sparse autoencoder on the union of image and text embeddings.

    Parameters
    ----------
    cfg
        A :class:`ReLUSAEConfig` or :class:`TopKSAEConfig`.
    image_emb, text_emb
        Paired embeddings ``[N, d_in]``; the SAE sees the ``2N`` rows of both, shuffled together.
    device
        Torch device to train on (``"cpu"``, ``"cuda"`` ...); the returned extractor stays there.
    progress
        Show a tqdm bar over epochs.

    Returns
    -------
    TrainResult
        The extractor (eval mode), per-epoch mean losses and :func:`evaluate_extractor` metrics.
    """
    import time

    img, txt = check_pairs(image_emb, text_emb)
    if img.shape[1] != cfg.d_in:
        raise FeatureError(f"embeddings have width {img.shape[1]} but cfg.d_in = {cfg.d_in}")
    module_cls = ReLUSAE if isinstance(cfg, ReLUSAEConfig) else TopKSAE
    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    sae = module_cls(cfg)
    data = torch.from_numpy(np.concatenate([img, txt], axis=0))
    with torch.no_grad():
        # start the decoder bias at the data mean so features model deviations, not the offset
        sae.b_dec.copy_(data.mean(dim=0))
        # scale the tied encoder so initial codes are of the order of the data
        sae.W_enc.mul_(1.0 / math.sqrt(max(1.0, cfg.d_sae / cfg.d_in)))
    sae.to(device)
    data = data.to(device)
    opt = torch.optim.Adam(sae.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    # Ctrl-C ends training early; the epochs finished so far are kept and a warning says so
    state = fit(
        sae,
        shuffled_batches(len(data), cfg.batch_size, gen),
        lambda index: sae.training_loss(data[index.to(device)]),
        optimizer=opt,
        epochs=cfg.epochs,
        hooks=[Callback(after_step=lambda _: sae.normalize_decoder())],
        progress=progress,
        desc=f"train {cfg.architecture}",
    )
    history = state.history
    sae.normalize_decoder()
    metrics = evaluate_extractor(sae, img, txt)
    metrics["epochs_completed"] = len(history)
    return TrainResult(sae, history, metrics, time.perf_counter() - start)


def train_extractor(
    extractor: str | ExtractorConfig,
    image_emb: np.ndarray,
    text_emb: np.ndarray,
    *,
    d_sae: int | None = None,
    device: str | torch.device = "cpu",
    progress: bool = False,
    **options: Any,
) -> TrainResult:
    """Train any registered extractor by name (with ``d_sae`` and options) or from a ready config."""
    if isinstance(extractor, ExtractorConfig):
        cfg = extractor
    else:
        width = check_embeddings(image_emb, "image_emb").shape[1]
        cfg = make_config(extractor, width, d_sae if d_sae is not None else 4 * width, **options)
    spec = get_extractor(cfg.architecture)
    return spec.trainer(cfg, image_emb, text_emb, device=device, progress=progress)


register_extractor(
    ExtractorSpec("relu", ReLUSAEConfig, ReLUSAE, train_sae, "sparse autoencoder, ReLU + L1"),
    aliases=("sae", "standard"),
)
register_extractor(ExtractorSpec("topk", TopKSAEConfig, TopKSAE, train_sae, "sparse autoencoder, TopK"))


def canonical_name(name: str) -> str:
    """Map aliases (``sae``, ``standard``) to registry names; unknown names pass through unchanged."""
    return EXTRACTORS.canonical(name) if name in EXTRACTORS else name


# --------------------------------------------------------------------------------------------------------- metrics
def reconstruction_metrics(extractor: FeatureExtractor, x: np.ndarray) -> dict[str, float]:
    """Explained variance, MSE, L0 and dead features of ``extractor`` on rows ``x``.

    explained_variance = 1 - sum ||x - x_hat||^2 / sum ||x - mean(x)||^2; l0 = mean number of non-zero codes per row;
    dead = features that are zero on every row (``dead_fraction`` of ``d_sae``).
    """
    x = check_embeddings(x, "x", d=extractor.d_in)
    z = extractor.encode_numpy(x)
    x_hat = extractor.decode_numpy(z)
    resid = float(((x - x_hat) ** 2).sum())
    total = float(((x - x.mean(axis=0)) ** 2).sum())
    fires = (z > 0).sum(axis=0)
    return {
        "explained_variance": 1.0 - resid / total if total > 0 else float("nan"),
        "mse": resid / len(x),
        "l0": float((z > 0).sum(axis=1).mean()),
        "n_dead": int((fires == 0).sum()),
        "dead_fraction": float((fires == 0).mean()),
    }


def evaluate_extractor(extractor: FeatureExtractor, image_emb: np.ndarray, text_emb: np.ndarray) -> dict[str, Any]:
    """Reconstruction and sparsity metrics on the union and per modality (``image``, ``text``)."""
    img, txt = check_pairs(image_emb, text_emb)
    return {
        **reconstruction_metrics(extractor, np.concatenate([img, txt])),
        "image": reconstruction_metrics(extractor, img),
        "text": reconstruction_metrics(extractor, txt),
    }


# --------------------------------------------------------------------------------------------------------- loading
def load_extractor(path: str | os.PathLike, device: str | torch.device = "cpu") -> FeatureExtractor:
    """Load an extractor saved by :meth:`FeatureExtractor.save` (or a SAELens ``standard``/``topk`` SAE directory).

    Directories written by SAELens without a ``modalens`` block are read from the top-level ``d_in``, ``d_sae``,
    ``architecture`` and ``k`` keys; other SAELens architectures (gated, jumprelu) are refused by name.

    A SAELens ``topk`` file with ``rescale_acts_by_decoder_norm: true`` encodes and decodes as SAELens does
    (``sae_lens/saes/topk_sae.py``): pre-activations are multiplied by each decoder row's norm before the top-k, and
    codes divided by it before decoding. The norms are folded into the weights on loading (``W_enc`` and ``b_enc``
    times the norm, ``W_dec`` rows divided by it, SAELens' own ``fold_W_dec_norm``), which gives the same codes and
    reconstructions with unit-norm decoder rows. SAELens' ``standard`` architecture has no such option and ignores
    the key; so does this loader.
    """
    root = Path(path)
    cfg_file, weights_file = root / CFG_FILE, root / WEIGHTS_FILE
    for f in (cfg_file, weights_file):
        if not f.is_file():
            raise FileNotFoundError(f"{root} is not an extractor directory: {f.name} is missing")
    try:
        raw = json.loads(cfg_file.read_text())
    except json.JSONDecodeError as exc:
        raise FeatureError(f"{cfg_file} is not valid JSON: {exc}") from exc
    ours = dict(raw.get("modalens") or {})
    if ours:
        name = canonical_name(ours.pop("architecture", ""))
    else:
        arch = raw.get("architecture", "standard")
        if arch not in ("standard", "topk"):
            raise FeatureError(f"{cfg_file}: SAELens architecture {arch!r} is not supported (standard, topk)")
        if not raw.get("apply_b_dec_to_input", True) or raw.get("normalize_activations", "none") != "none":
            raise FeatureError(f"{cfg_file}: only apply_b_dec_to_input=true and normalize_activations='none' load")
        name = "relu" if arch == "standard" else "topk"
        ours = {"d_in": raw["d_in"], "d_sae": raw["d_sae"]}
        if name == "topk":
            ours["k"] = raw["k"]
    spec = get_extractor(name)
    cfg = spec.config(**ours)
    module = spec.module(cfg)
    tensors = load_file(str(weights_file))
    missing = [k for k in WEIGHT_KEYS if k not in tensors]
    if missing:
        raise FeatureError(f"{weights_file} lacks tensors {missing}; expected {list(WEIGHT_KEYS)}")
    expected = {
        "W_enc": (cfg.d_in, cfg.d_sae),
        "b_enc": (cfg.d_sae,),
        "W_dec": (cfg.d_sae, cfg.d_in),
        "b_dec": (cfg.d_in,),
    }
    with torch.no_grad():
        for key, shape in expected.items():
            if tuple(tensors[key].shape) != shape:
                raise FeatureError(f"{weights_file}: {key} has shape {tuple(tensors[key].shape)}, expected {shape}")
            getattr(module, key).copy_(tensors[key].float())
    if raw.get("architecture") == "topk" and _rescales_by_decoder_norm(raw, cfg_file):
        _fold_decoder_norm(module, weights_file)
    return module.to(device).eval()


def _rescales_by_decoder_norm(raw: dict[str, Any], cfg_file: Path) -> bool:
    flag = raw.get("rescale_acts_by_decoder_norm", False)
    if not isinstance(flag, bool):
        raise FeatureError(f"{cfg_file}: rescale_acts_by_decoder_norm must be true or false, got {flag!r}")
    return flag


@torch.no_grad()
def _fold_decoder_norm(module: FeatureExtractor, weights_file: Path) -> None:
    """Fold each decoder row's norm into the encoder, as SAELens' ``fold_W_dec_norm`` does for TopK SAEs.

    SAELens encodes ``topk(((x - b_dec) W_enc + b_enc) * n)`` and decodes ``(z / n) W_dec + b_dec`` with
    ``n = ||W_dec||`` per row; with ``W_enc * n``, ``b_enc * n`` and ``W_dec / n`` the plain encode and decode give
    exactly that.
    """
    norms = module.W_dec.norm(dim=1)
    if not bool((norms > 0).all()):
        rows = torch.nonzero(norms == 0).flatten().tolist()
        raise FeatureError(
            f"{weights_file}: W_dec rows {rows[:5]} are zero, and rescale_acts_by_decoder_norm divides codes by the "
            "decoder row norms (SAELens would reconstruct NaN)"
        )
    module.W_enc.mul_(norms[None, :])
    module.b_enc.mul_(norms)
    module.W_dec.div_(norms[:, None])
