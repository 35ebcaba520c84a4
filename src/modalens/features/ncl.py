"""Multimodal non-negative contrastive learning (NCL): a ReLU projection head trained with the CLIP loss.

The head ``z = ReLU(x W_enc + b_enc)`` is shared by both modalities and trained on the paired embeddings with the
symmetric InfoNCE (CLIP) loss on cosine similarities of the codes. Because codes are non-negative, two samples can
only be similar by firing the same features, which makes features sparse and aligned across modalities (after
Wang et al., 2024, "Non-negative Contrastive Learning", and its multimodal use by Yan et al., 2025).

NCL has no decoder of its own. After training, a linear decoder ``x ~ z W_dec + b_dec`` is fitted by ridge least
squares on the image/text union; it gives reconstruction metrics comparable with SAEs, steering directions and the
SAELens file layout. Interventions on NCL act on the codes themselves (``edit_space = "code"``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from modalens.features.errors import FeatureError
from modalens.features.sae import (
    ExtractorConfig,
    ExtractorSpec,
    FeatureExtractor,
    TrainResult,
    check_pairs,
    evaluate_extractor,
    register_extractor,
)
from modalens.models.loop import fit, shuffled_batches


@dataclass
class NCLConfig(ExtractorConfig):
    """Options of the non-negative contrastive head.

    Parameters
    ----------
    temperature
        Initial softmax temperature of the contrastive loss (learned unless ``learn_temperature`` is False).
    learn_temperature
        Learn the temperature, as CLIP does.
    l1_coefficient
        Optional extra L1 penalty on the codes (0 = none).
    decoder_ridge
        Ridge penalty of the post-hoc least-squares decoder.
    k
        Active features per sample: only the ``k`` largest pre-activations survive the ReLU (as in a TopK SAE);
        ``None`` = plain ReLU codes. Non-negativity alone does not make the codes sparse in a short training run
        (on the demo's 1,000 pairs and 20 epochs, 324 of 1,024 features fired per sample), and dense codes make
        every intervention in code space slow; the default 32 keeps L0 at most twice a TopK SAE's k = 16.
    """

    architecture = "ncl"
    temperature: float = 0.07
    learn_temperature: bool = True
    l1_coefficient: float = 0.0
    decoder_ridge: float = 1e-3
    k: int | None = 32

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.temperature > 0:
            raise FeatureError(f"NCLConfig.temperature must be > 0, got {self.temperature!r}")
        if self.l1_coefficient < 0 or self.decoder_ridge < 0:
            raise FeatureError("NCLConfig.l1_coefficient and decoder_ridge must be >= 0")
        if self.k is not None:
            if not isinstance(self.k, int | np.integer) or self.k < 1:
                raise FeatureError(f"NCLConfig.k must be None or a positive integer, got {self.k!r}")
            self.k = min(int(self.k), self.d_sae)  # at most every feature


class NCLHead(FeatureExtractor):
    """ReLU projection head; codes are the representation, decoder is a fitted linear read-out."""

    edit_space = "code"
    apply_b_dec_to_input = False

    def __init__(self, cfg: NCLConfig) -> None:
        super().__init__(cfg)
        self.log_scale = torch.nn.Parameter(
            torch.tensor(math.log(1.0 / cfg.temperature)), requires_grad=cfg.learn_temperature
        )

    @property
    def saelens_architecture(self) -> str:  # type: ignore[override]
        """``topk`` when only the k largest codes are kept, else ``standard``."""
        return "topk" if self.cfg.k is not None else "standard"

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.hidden_pre(x)
        if self.cfg.k is None:
            return torch.relu(pre)
        values, index = pre.topk(self.cfg.k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, index, torch.relu(values))

    def contrastive_loss(self, img: torch.Tensor, txt: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Symmetric InfoNCE on cosine similarity of the codes of a batch of pairs (row i of each is a pair)."""
        zi, zt = self.encode(img), self.encode(txt)
        ni = F.normalize(zi, dim=1, eps=1e-8)
        nt = F.normalize(zt, dim=1, eps=1e-8)
        logits = self.log_scale.clamp(max=math.log(100.0)).exp() * ni @ nt.T
        target = torch.arange(len(img), device=img.device)
        clip = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
        l1 = 0.5 * (zi.sum(dim=1).mean() + zt.sum(dim=1).mean())
        loss = clip + self.cfg.l1_coefficient * l1
        return loss, {"loss": loss.item(), "clip": clip.item(), "l1": l1.item()}

    @torch.no_grad()
    def fit_decoder(self, x: np.ndarray) -> None:
        """Fit ``W_dec``, ``b_dec`` by ridge least squares from codes to embeddings on rows ``x``."""
        z = self.encode_numpy(x).astype(np.float64)
        xm, zm = x.mean(axis=0), z.mean(axis=0)
        zc, xc = z - zm, x.astype(np.float64) - xm
        gram = zc.T @ zc + self.cfg.decoder_ridge * len(z) * np.eye(z.shape[1])
        w = np.linalg.solve(gram, zc.T @ xc)
        self.W_dec.copy_(torch.from_numpy(w).float())
        self.b_dec.copy_(torch.from_numpy(xm - zm @ w).float())


def train_ncl(
    cfg: NCLConfig,
    image_emb: np.ndarray,
    text_emb: np.ndarray,
    *,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> TrainResult:
    """Train an NCL head on paired embeddings with the CLIP loss, then fit its linear decoder.

    Parameters
    ----------
    cfg
        :class:`NCLConfig`.
    image_emb, text_emb
        Paired embeddings ``[N, d_in]`` (row n of each is a pair); batches are sets of pairs.
    device
        Torch device to train on.
    progress
        Show a tqdm bar over epochs.
    """
    img, txt = check_pairs(image_emb, text_emb)
    if img.shape[1] != cfg.d_in:
        raise FeatureError(f"embeddings have width {img.shape[1]} but cfg.d_in = {cfg.d_in}")
    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    head = NCLHead(cfg).to(device)
    ti, tt = torch.from_numpy(img).to(device), torch.from_numpy(txt).to(device)
    params = [p for p in head.parameters() if p.requires_grad and p is not head.W_dec and p is not head.b_dec]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)

    def step_loss(index: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        index = index.to(device)
        return head.contrastive_loss(ti[index], tt[index])

    # batches are sets of at least two pairs (a contrastive loss needs a negative); Ctrl-C keeps finished epochs
    state = fit(
        head,
        shuffled_batches(len(img), cfg.batch_size, gen, min_size=2),
        step_loss,
        optimizer=opt,
        epochs=cfg.epochs,
        progress=progress,
        desc="train ncl",
    )
    history = state.history
    head.fit_decoder(np.concatenate([img, txt]))
    metrics = evaluate_extractor(head, img, txt)
    metrics["epochs_completed"] = len(history)
    metrics["temperature"] = float(1.0 / head.log_scale.exp().item())
    return TrainResult(head, history, metrics, time.perf_counter() - start)


register_extractor(
    ExtractorSpec("ncl", NCLConfig, NCLHead, train_ncl, "non-negative contrastive head (CLIP loss, ReLU codes)")
)
