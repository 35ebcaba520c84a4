"""Reference multimodal sentiment models: early-fusion LSTM, late-fusion LSTM and a small MulT-style transformer.

All three read one float tensor ``[B, T_m, D_m]`` per modality, in the order of ``config.modalities`` (an ordered
mapping ``name -> D``), plus optional boolean step masks ``{name: [B, T_m]}`` (True = real step). They return
``[B]`` for regression (sentiment, softly bounded to ``[-output_range, output_range]``) or ``[B, C]`` logits for
classification. The calling convention is the one :class:`~modalens.models.TorchPredictor` uses with
``pass_masks=True``: ``module(*tensors, masks={name: mask})``; ``module(dict_of_tensors, masks=...)`` works too.

Padding never reaches the output: padded steps are zeroed, LSTMs run on packed sequences of the real steps only
(real steps may sit anywhere -- front- or back-padded -- and keep their order), and attention and pooling skip
padded keys and steps. An instance with no real step in a modality gets a zero representation for that modality.

Every model carries per-feature normalisation statistics (buffers ``norm_mean.<m>``/``norm_std.<m>``), fitted on
the training split by :func:`modalens.models.training.train`, so raw COVAREP/Facet features can be fed as they are.
A modality made absent by a :class:`~modalens.models.Masker` arrives as its baseline input and is normalised like
any other input; the model itself has no notion of absence.

Early fusion needs one sequence of steps. Word-aligned inputs (equal ``T`` across modalities, as in MMSA's
``aligned_50.pkl``) are concatenated step by step. With ``align="auto"`` (default) inputs of unequal ``T``
(``unaligned_50.pkl``) are resampled onto the real steps of the reference modality (the first one unless
``reference`` is set): each modality's real steps are spread uniformly over [0, 1), so are the reference's, and every
reference step averages the modality's steps in proportion to their overlap -- the CMU-SDK "average the frames in
each word's interval" rule with uniform intervals, since step timings are not part of the tensors.
``align="resample"`` always resamples, ``align="require"`` refuses unequal ``T``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from modalens._core.errors import ModalensError
from modalens._core.registry import Registry


class ConfigError(ModalensError, ValueError):
    """A reference-model configuration is invalid; the message names the field."""


# -- configurations ----------------------------------------------------------------------------------------------
@dataclass
class ReferenceConfig:
    """Fields shared by every reference architecture.

    Parameters
    ----------
    modalities
        Ordered mapping from modality name to feature dimension D; the model reads the modalities in this order.
    task
        ``"regression"`` (output ``[B]``) or ``"classification"`` (output ``[B, n_classes]`` logits).
    n_classes
        Number of classes for classification; must be None for regression.
    output_range
        Regression only: the output is ``r * tanh(z / r)``, close to ``z`` near zero and bounded by ``r`` (3 for
        sentiment in [-3, 3]); None leaves the output unbounded.
    dropout
        Dropout probability used throughout.
    class_names
        Optional class names, kept for predictors and reports.
    """

    modalities: dict[str, int] = field(default_factory=dict)
    task: str = "regression"
    n_classes: int | None = None
    output_range: float | None = 3.0
    dropout: float = 0.1
    class_names: list[str] | None = None

    architecture: ClassVar[str] = ""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field; raise :class:`ConfigError` naming the first bad one."""
        if not isinstance(self.modalities, Mapping) or not self.modalities:
            raise ConfigError("modalities: expected a non-empty mapping name -> feature dimension")
        mods: dict[str, int] = {}
        for name, dim in self.modalities.items():
            if not isinstance(name, str) or not name:
                raise ConfigError(f"modalities: names must be non-empty strings, got {name!r}")
            if isinstance(dim, bool) or not isinstance(dim, int) or dim <= 0:
                raise ConfigError(f"modalities[{name!r}]: feature dimension must be a positive int, got {dim!r}")
            mods[name] = dim
        self.modalities = mods
        if self.task not in ("regression", "classification"):
            raise ConfigError(f"task: expected 'regression' or 'classification', got {self.task!r}")
        if self.task == "classification":
            if isinstance(self.n_classes, bool) or not isinstance(self.n_classes, int) or self.n_classes < 2:
                raise ConfigError(f"n_classes: classification needs an int >= 2, got {self.n_classes!r}")
            if self.class_names is not None and len(self.class_names) != self.n_classes:
                raise ConfigError(f"class_names: {len(self.class_names)} names for n_classes = {self.n_classes}")
        elif self.n_classes is not None:
            raise ConfigError("n_classes: must be None for regression")
        if self.output_range is not None and not (
            isinstance(self.output_range, int | float) and math.isfinite(self.output_range) and self.output_range > 0
        ):
            raise ConfigError(f"output_range: expected a positive number or None, got {self.output_range!r}")
        if not isinstance(self.dropout, int | float) or not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout: expected a number in [0, 1), got {self.dropout!r}")
        _positive_ints(self, self._size_fields())

    def _size_fields(self) -> tuple[str, ...]:
        return ()

    @property
    def n_outputs(self) -> int:
        return 1 if self.task == "regression" else int(self.n_classes)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``config.json``), with the architecture name."""
        return {"architecture": self.architecture, **asdict(self)}


def _positive_ints(config: ReferenceConfig, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(f"{name}: expected a positive int, got {value!r}")


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name}: expected one of {allowed}, got {value!r}")


@dataclass
class EarlyFusionConfig(ReferenceConfig):
    """Early fusion: per-step concatenation of all modalities, one (bi)LSTM, pooled state, MLP head.

    Parameters
    ----------
    hidden
        LSTM hidden size (per direction).
    layers
        Stacked LSTM layers.
    bidirectional
        Run the LSTM both ways.
    pool
        ``"last"``: final hidden state(s) over the real steps; ``"mean"``: mean of outputs over the real steps.
    align
        ``"auto"``, ``"resample"`` or ``"require"``; see the module docstring.
    reference
        The modality whose steps the others are resampled onto (default: the first).
    head_hidden
        Width of the MLP head.
    """

    hidden: int = 64
    layers: int = 1
    bidirectional: bool = True
    pool: str = "last"
    align: str = "auto"
    reference: str | None = None
    head_hidden: int = 64

    architecture: ClassVar[str] = "early_lstm"

    def _size_fields(self) -> tuple[str, ...]:
        return ("hidden", "layers", "head_hidden")

    def validate(self) -> None:
        super().validate()
        _choice("pool", self.pool, ("last", "mean"))
        _choice("align", self.align, ("auto", "resample", "require"))
        if self.reference is not None and self.reference not in self.modalities:
            raise ConfigError(f"reference: {self.reference!r} is not one of the modalities {list(self.modalities)}")


@dataclass
class LateFusionConfig(ReferenceConfig):
    """Late fusion: one (bi)LSTM per modality, pooled states concatenated, MLP head.

    Parameters
    ----------
    hidden
        LSTM hidden size (per direction), the same for every modality.
    layers
        Stacked LSTM layers.
    bidirectional
        Run the LSTMs both ways.
    pool
        ``"last"`` or ``"mean"`` over the real steps.
    head_hidden
        Width of the fusion MLP.
    """

    hidden: int = 32
    layers: int = 1
    bidirectional: bool = True
    pool: str = "last"
    head_hidden: int = 64

    architecture: ClassVar[str] = "late_lstm"

    def _size_fields(self) -> tuple[str, ...]:
        return ("hidden", "layers", "head_hidden")

    def validate(self) -> None:
        super().validate()
        _choice("pool", self.pool, ("last", "mean"))


@dataclass
class MulTConfig(ReferenceConfig):
    """A small MulT-style model (Tsai et al., 2019): every target modality attends to every source modality.

    Parameters
    ----------
    d_model
        Width of every stream after the temporal convolution that projects each modality.
    heads
        Attention heads; must divide ``d_model``.
    cross_layers
        Cross-modal blocks per (target, source) pair.
    self_layers
        Self-attention blocks over each target's fused stream.
    kernel_size
        Temporal kernel of the input projection (odd; 1 = per-step linear map).
    pool
        ``"mean"`` (over real steps) or ``"last"`` (last real step) of each target stream.
    head_hidden
        Width of the output MLP.
    """

    d_model: int = 32
    heads: int = 4
    cross_layers: int = 1
    self_layers: int = 1
    kernel_size: int = 1
    pool: str = "mean"
    head_hidden: int = 64

    architecture: ClassVar[str] = "mult"

    def _size_fields(self) -> tuple[str, ...]:
        return ("d_model", "heads", "cross_layers", "self_layers", "kernel_size", "head_hidden")

    def validate(self) -> None:
        super().validate()
        _choice("pool", self.pool, ("mean", "last"))
        if self.d_model % self.heads:
            raise ConfigError(f"heads: {self.heads} does not divide d_model = {self.d_model}")
        if self.kernel_size % 2 == 0:
            raise ConfigError(f"kernel_size: must be odd so steps stay in place, got {self.kernel_size}")


# -- shared pieces -----------------------------------------------------------------------------------------------
def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x [B, T, H]`` over the steps where ``mask [B, T]`` is True; zero where no step is."""
    w = mask.to(x.dtype).unsqueeze(-1)
    return (x * w).sum(1) / w.sum(1).clamp(min=1.0)


def last_real(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``x [B, T, H]`` at the last True step of each row of ``mask``; zero where no step is."""
    t = torch.arange(mask.shape[1], device=mask.device)
    idx = torch.where(mask, t, torch.full_like(t, -1)).amax(1)
    out = x[torch.arange(x.shape[0], device=x.device), idx.clamp(min=0)]
    return out * (idx >= 0).to(x.dtype).unsqueeze(-1)


def resample_weights(src_mask: torch.Tensor, tgt_mask: torch.Tensor) -> torch.Tensor:
    """Interval-averaging weights ``[B, R, S]`` that map source steps onto target steps.

    The real steps of each row (in order, wherever they sit) are laid uniformly over [0, 1); target step r takes
    the overlap-weighted mean of the source steps. Rows sum to one over real pairs and are zero for padded targets
    and for instances with no real source step.
    """
    src = src_mask.to(torch.float32)
    tgt = tgt_mask.to(torch.float32)
    n_src = src.sum(1, keepdim=True).clamp(min=1.0)
    n_tgt = tgt.sum(1, keepdim=True).clamp(min=1.0)
    rank_src = src.cumsum(1) - 1
    rank_tgt = tgt.cumsum(1) - 1
    s_lo, s_hi = rank_src / n_src, (rank_src + 1) / n_src
    t_lo, t_hi = rank_tgt / n_tgt, (rank_tgt + 1) / n_tgt
    overlap = torch.minimum(s_hi[:, None, :], t_hi[:, :, None]) - torch.maximum(s_lo[:, None, :], t_lo[:, :, None])
    overlap = overlap.clamp(min=0) * src[:, None, :] * tgt[:, :, None]
    return overlap / overlap.sum(-1, keepdim=True).clamp(min=1e-12)


class SequenceEncoder(nn.Module):
    """A (bi)LSTM over the real steps of each sequence, pooled to one vector per instance."""

    def __init__(self, d_in: int, hidden: int, layers: int, bidirectional: bool, dropout: float, pool: str) -> None:
        super().__init__()
        self.lstm = nn.LSTM(
            d_in,
            hidden,
            num_layers=layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if layers > 1 else 0.0,
        )
        self.pool = pool
        self.directions = 2 if bidirectional else 1
        self.out_dim = hidden * self.directions

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        lengths = mask.sum(1)
        # Real steps first, in their original order, so packing sees exactly the real sequence.
        order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)
        compact = torch.gather(x, 1, order.unsqueeze(-1).expand(b, t, d))
        packed = pack_padded_sequence(compact, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
        out, (h, _) = self.lstm(packed)
        if self.pool == "last":
            rep = h[-self.directions :].transpose(0, 1).reshape(b, self.out_dim)
        else:
            padded, _ = pad_packed_sequence(out, batch_first=True, total_length=t)
            steps = torch.arange(t, device=x.device)[None, :] < lengths[:, None]
            rep = masked_mean(padded, steps)
        return rep * (lengths > 0).to(rep.dtype).unsqueeze(-1)


def _mlp(d_in: int, hidden: int, d_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, d_out))


class ReferenceModel(nn.Module):
    """Base class: input checking, normalisation, masking and the output map shared by the architectures."""

    config_class: ClassVar[type[ReferenceConfig]] = ReferenceConfig

    def __init__(self, config: ReferenceConfig) -> None:
        super().__init__()
        if not isinstance(config, self.config_class):
            raise ConfigError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}"
            )
        config.validate()
        self.config = config
        self.modalities: tuple[str, ...] = tuple(config.modalities)
        for i, dim in enumerate(config.modalities.values()):
            # Buffers are keyed by position: modality names may hold characters a buffer name cannot.
            self.register_buffer(f"norm_mean_{i}", torch.zeros(dim))
            self.register_buffer(f"norm_std_{i}", torch.ones(dim))

    @property
    def architecture(self) -> str:
        return self.config.architecture

    def set_normalization(self, stats: Mapping[str, tuple[Any, Any]]) -> None:
        """Set per-feature ``(mean, std)`` for the named modalities (stds at or near zero are read as one)."""
        for name, (mean, std) in stats.items():
            i = self.modalities.index(name)
            mean_t = torch.as_tensor(mean, dtype=torch.float32).reshape(-1)
            std_t = torch.as_tensor(std, dtype=torch.float32).reshape(-1)
            dim = self.config.modalities[name]
            if mean_t.numel() != dim or std_t.numel() != dim:
                raise ConfigError(f"normalisation of {name!r}: expected {dim} values, got {mean_t.numel()}")
            std_t = torch.where(std_t > 1e-6, std_t, torch.ones_like(std_t))
            getattr(self, f"norm_mean_{i}").copy_(mean_t)
            getattr(self, f"norm_std_{i}").copy_(std_t)

    def _prepare(
        self, tensors: tuple[Any, ...], masks: Mapping[str, Any] | None
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Check inputs; return normalised tensors with padded steps zeroed, and boolean masks."""
        if len(tensors) == 1 and isinstance(tensors[0], Mapping):
            given = tensors[0]
            missing = [m for m in self.modalities if m not in given]
            if missing:
                raise ValueError(f"input dict lacks modalities {missing}; the model reads {list(self.modalities)}")
            tensors = tuple(given[m] for m in self.modalities)
        if len(tensors) != len(self.modalities):
            names = list(self.modalities)
            raise ValueError(f"{type(self).__name__} reads {len(names)} tensors {names}, got {len(tensors)}")
        ref = self.norm_mean_0
        xs, ms = [], []
        batch = None
        for i, (name, x) in enumerate(zip(self.modalities, tensors, strict=True)):
            x = torch.as_tensor(x, device=ref.device).to(ref.dtype)
            dim = self.config.modalities[name]
            if x.ndim == 2:  # [B, D]: one step
                x = x.unsqueeze(1)
            if x.ndim != 3 or x.shape[2] != dim:
                raise ValueError(f"modality {name!r}: expected [B, T, {dim}], got shape {tuple(x.shape)}")
            if batch is None:
                batch = x.shape[0]
            elif x.shape[0] != batch:
                raise ValueError(f"modality {name!r}: batch size {x.shape[0]}, the first modality has {batch}")
            if masks is not None and masks.get(name) is not None:
                m = torch.as_tensor(masks[name], device=ref.device).to(torch.bool)
                if m.shape != x.shape[:2]:
                    raise ValueError(f"mask of {name!r}: expected shape {tuple(x.shape[:2])}, got {tuple(m.shape)}")
            else:
                m = torch.ones(x.shape[:2], dtype=torch.bool, device=ref.device)
            x = (x - getattr(self, f"norm_mean_{i}")) / getattr(self, f"norm_std_{i}")
            xs.append(x * m.unsqueeze(-1).to(x.dtype))
            ms.append(m)
        return xs, ms

    def _output(self, z: torch.Tensor) -> torch.Tensor:
        if self.config.task == "classification":
            return z
        z = z.squeeze(-1)
        r = self.config.output_range
        return z if r is None else r * torch.tanh(z / r)

    def forward(self, *tensors: Any, masks: Mapping[str, Any] | None = None) -> torch.Tensor:
        """Predict ``[B]`` (regression) or ``[B, C]`` logits from one ``[B, T, D]`` tensor per modality."""
        xs, ms = self._prepare(tensors, masks)
        return self._output(self.fuse(xs, ms))

    def fuse(self, xs: list[torch.Tensor], masks: list[torch.Tensor]) -> torch.Tensor:
        """The architecture proper: normalised, zero-padded inputs and masks to ``[B, n_outputs]``."""
        raise NotImplementedError

    def to_predictor(self, **kwargs: Any) -> Any:
        """This model as a :class:`~modalens.models.TorchPredictor` (masks passed, output kind and names set; padding
        trimmed, since every architecture here reads only the real steps)."""
        from modalens.models.predictor import TorchPredictor

        kwargs.setdefault("trim_padding", True)

        if self.config.task == "classification":
            kwargs.setdefault("output_names", self.config.class_names)
        else:
            kwargs.setdefault("output_names", ["sentiment"])
        return TorchPredictor(self, self.modalities, pass_masks=True, output_kind=self.config.task, **kwargs)


# -- the architectures -------------------------------------------------------------------------------------------
class EarlyFusionLSTM(ReferenceModel):
    """Concatenate the modalities step by step (resampling unaligned ones), run one LSTM, pool, MLP."""

    config_class = EarlyFusionConfig

    def __init__(self, config: EarlyFusionConfig) -> None:
        super().__init__(config)
        d_in = sum(config.modalities.values())
        self.encoder = SequenceEncoder(
            d_in, config.hidden, config.layers, config.bidirectional, config.dropout, config.pool
        )
        self.head = _mlp(self.encoder.out_dim, config.head_hidden, config.n_outputs, config.dropout)
        self.reference_index = self.modalities.index(config.reference) if config.reference else 0

    def align(self, xs: list[torch.Tensor], masks: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """One ``[B, T_ref, sum D]`` sequence and its mask from the (normalised, zero-padded) modalities."""
        cfg: EarlyFusionConfig = self.config  # type: ignore[assignment]
        r = self.reference_index
        steps = {x.shape[1] for x in xs}
        if len(steps) > 1 and cfg.align == "require":
            sizes = {m: x.shape[1] for m, x in zip(self.modalities, xs, strict=True)}
            raise ValueError(
                f"early fusion with align='require' needs word-aligned inputs (equal T), got T per modality {sizes}"
            )
        resample = cfg.align == "resample" or len(steps) > 1
        parts = []
        for i, (x, m) in enumerate(zip(xs, masks, strict=True)):
            if i == r or not resample:
                parts.append(x)
            else:
                parts.append(torch.bmm(resample_weights(m, masks[r]).to(x.dtype), x))
        return torch.cat(parts, dim=-1), masks[r]

    def fuse(self, xs: list[torch.Tensor], masks: list[torch.Tensor]) -> torch.Tensor:
        seq, mask = self.align(xs, masks)
        return self.head(self.encoder(seq, mask))


class LateFusionLSTM(ReferenceModel):
    """One LSTM per modality over its own real steps; pooled states are concatenated and fused by an MLP."""

    config_class = LateFusionConfig

    def __init__(self, config: LateFusionConfig) -> None:
        super().__init__(config)
        self.encoders = nn.ModuleList(
            SequenceEncoder(dim, config.hidden, config.layers, config.bidirectional, config.dropout, config.pool)
            for dim in config.modalities.values()
        )
        width = sum(e.out_dim for e in self.encoders)
        self.head = _mlp(width, config.head_hidden, config.n_outputs, config.dropout)

    def fuse(self, xs: list[torch.Tensor], masks: list[torch.Tensor]) -> torch.Tensor:
        reps = [enc(x, m) for enc, x, m in zip(self.encoders, xs, masks, strict=True)]
        return self.head(torch.cat(reps, dim=-1))


class AttentionBlock(nn.Module):
    """Pre-norm transformer block: queries attend to keys/values (another modality, or themselves), then an MLP."""

    def __init__(self, d_model: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(d_model)
        self.norm_kv = nn.LayerNorm(d_model)
        self.attn = nn.MultiheadAttention(d_model, heads, dropout=dropout, batch_first=True)
        self.norm_ff = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(
            nn.Linear(d_model, 4 * d_model), nn.ReLU(), nn.Dropout(dropout), nn.Linear(4 * d_model, d_model)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, q: torch.Tensor, kv: torch.Tensor, kv_mask: torch.Tensor) -> torch.Tensor:
        # An instance with no real key would give NaN attention: let it attend to its (zeroed) padding, then
        # drop the result, so it contributes nothing.
        empty = ~kv_mask.any(1)
        pad = ~kv_mask & ~empty.unsqueeze(1)
        kv_n = self.norm_kv(kv)
        if self.training:
            a, _ = self.attn(self.norm_q(q), kv_n, kv_n, key_padding_mask=pad, need_weights=False)
        else:
            a = self._attend(self.norm_q(q), kv_n, pad)
        if bool(empty.any()):
            a = a * (~empty).to(a.dtype)[:, None, None]
        q = q + self.drop(a)
        return q + self.drop(self.ff(self.norm_ff(q)))

    def _attend(self, q: torch.Tensor, kv: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        """``self.attn`` at inference, written out: the same weights and result (up to float rounding), but for
        these short sequences and narrow heads the plain product and softmax run several times faster on the CPU
        than the blocked (flash) kernel torch picks there."""
        mha = self.attn
        b, t_q, d = q.shape
        heads = mha.num_heads
        scale = (d // heads) ** -0.5  # folded into the query projection: one pass less over the scores
        w, bias = mha.in_proj_weight, mha.in_proj_bias
        query = nn.functional.linear(q, w[:d] * scale, bias[:d] * scale).view(b, t_q, heads, d // heads)
        key, value = nn.functional.linear(kv, w[d:], bias[d:]).view(b, -1, 2, heads, d // heads).unbind(2)
        scores = torch.matmul(query.transpose(1, 2), key.permute(0, 2, 3, 1))  # [B, H, Tq, Tk]
        scores.masked_fill_(pad[:, None, None, :], float("-inf"))
        # softmax by hand, in place: torch's CPU kernel is slow over a last axis this short (a few times slower here)
        weights = scores.sub_(scores.amax(-1, keepdim=True)).exp_()
        weights = weights.div_(weights.sum(-1, keepdim=True))
        out = torch.matmul(weights, value.transpose(1, 2))  # [B, H, Tq, hd]
        return mha.out_proj(out.transpose(1, 2).reshape(b, t_q, d))


def sinusoidal_positions(steps: int, d_model: int, device: torch.device) -> torch.Tensor:
    """The fixed sine/cosine position table ``[T, d_model]`` of Vaswani et al."""
    pos = torch.arange(steps, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, d_model, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    table = torch.zeros(steps, d_model, device=device)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)[:, : d_model // 2]
    return table


class MulTLike(ReferenceModel):
    """A small Multimodal Transformer: cross-modal attention from every target to every source modality.

    Each modality is projected to ``d_model`` by a temporal convolution and given sine positions. For every
    ordered pair (target, source) a stack of cross-modal blocks lets the target's steps attend to the source's
    real steps. Each target concatenates its cross-modal streams, projects them back to ``d_model``, runs
    self-attention blocks over its own real steps and is pooled; the pooled targets are concatenated into an MLP.
    With a single modality the target attends to itself.
    """

    config_class = MulTConfig

    def __init__(self, config: MulTConfig) -> None:
        super().__init__(config)
        d, k = config.d_model, config.kernel_size
        self.project = nn.ModuleList(
            nn.Conv1d(dim, d, kernel_size=k, padding=k // 2, bias=False) for dim in config.modalities.values()
        )
        n = len(self.modalities)
        self.pairs = [(t, s) for t in range(n) for s in range(n) if t != s] or [(0, 0)]
        self.cross = nn.ModuleDict(
            {
                f"t{t}_s{s}": nn.ModuleList(
                    AttentionBlock(d, config.heads, config.dropout) for _ in range(config.cross_layers)
                )
                for t, s in self.pairs
            }
        )
        sources = max(n - 1, 1)
        self.merge = nn.ModuleList(nn.Linear(sources * d, d) for _ in range(n))
        self.self_attn = nn.ModuleList(
            nn.ModuleList(AttentionBlock(d, config.heads, config.dropout) for _ in range(config.self_layers))
            for _ in range(n)
        )
        self.norm_out = nn.ModuleList(nn.LayerNorm(d) for _ in range(n))
        self.head = _mlp(n * d, config.head_hidden, config.n_outputs, config.dropout)
        self.embed_drop = nn.Dropout(config.dropout)

    def fuse(self, xs: list[torch.Tensor], masks: list[torch.Tensor]) -> torch.Tensor:
        if not self.training and not torch.is_grad_enabled() and not _hooked(self):
            return _MulTInference(self).fuse(xs, masks)
        cfg: MulTConfig = self.config  # type: ignore[assignment]
        streams = []
        for conv, x, m in zip(self.project, xs, masks, strict=True):
            h = conv(x.transpose(1, 2)).transpose(1, 2)
            h = h * math.sqrt(cfg.d_model) + sinusoidal_positions(h.shape[1], cfg.d_model, h.device)
            streams.append(self.embed_drop(h) * m.unsqueeze(-1).to(h.dtype))
        pooled = []
        for t, (h_t, m_t) in enumerate(zip(streams, masks, strict=True)):
            crossed = []
            for tt, s in self.pairs:
                if tt != t:
                    continue
                q = h_t
                for block in self.cross[f"t{t}_s{s}"]:
                    q = block(q, streams[s], masks[s])
                crossed.append(q)
            z = self.merge[t](torch.cat(crossed, dim=-1))
            for block in self.self_attn[t]:
                z = block(z, z, m_t)
            z = self.norm_out[t](z)
            pooled.append(masked_mean(z, m_t) if cfg.pool == "mean" else last_real(z, m_t))
        return self.head(torch.cat(pooled, dim=-1))


def _hooked(module: nn.Module) -> bool:
    """Whether a forward hook watches the module or any part of it (the inference path below skips submodules'
    ``forward``, so a hooked model takes the plain path, where every hook fires)."""
    from torch.nn.modules import module as torch_module

    if torch_module._global_forward_hooks or torch_module._global_forward_pre_hooks:
        return True
    return any(m._forward_hooks or m._forward_pre_hooks for m in _parts(module))


def _parts(module: nn.Module) -> list[nn.Module]:
    """The module and all its submodules, listed once (walking the tree at each call costs more than the check;
    the reference models do not gain submodules after they are built)."""
    found = module.__dict__.get("_modalens_parts")
    if found is None:
        found = list(module.modules())
        module.__dict__["_modalens_parts"] = found
    return found


def _folded(norm: nn.LayerNorm, weight: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``linear(norm(x), weight, bias)`` as ``linear(n(x), w, b)`` with ``n`` the layer norm without its affine map:
    ``w = weight * gamma``, ``b = bias + weight @ beta``. Layer norms shared by several projections are then
    computed once, and the affine pass over the activations is saved."""
    return weight * norm.weight, bias + weight @ norm.bias


def _unique_rows(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Rows of ``x [B, T, D]`` with the same values and mask: ``(first, inverse)`` with ``x[first][inverse]`` equal
    to ``x`` (and the masks too), or None when every row differs. Rows are grouped by a random projection (in
    float64, summed in a fixed order, so equal rows get equal keys) and the groups checked exactly; should two
    different rows share a key, the rows are sorted and compared whole instead (slower, as exact)."""
    b = x.shape[0]
    flat = torch.cat([x.reshape(b, -1), mask.to(x.dtype)], dim=1)
    probe = torch.randn(flat.shape[1], generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    keys, inverse = torch.unique((flat.to(torch.float64) * probe.to(flat.device)).sum(1), return_inverse=True)
    if len(keys) == b:
        return None
    first = _first_of(inverse, len(keys))
    if not torch.equal(flat.index_select(0, first.index_select(0, inverse)), flat):
        keys, inverse = torch.unique(flat, dim=0, return_inverse=True)
        if len(keys) == b:
            return None
        first = _first_of(inverse, len(keys))
    return first, inverse


def _first_of(inverse: torch.Tensor, groups: int) -> torch.Tensor:
    """A row of each group, from each row's group."""
    rows = torch.arange(len(inverse), device=inverse.device)
    return torch.empty(groups, dtype=torch.long, device=inverse.device).scatter_(0, inverse, rows)


_SOFTMAX_RANGE = 80.0
"""Largest |attention score| for which :func:`_attention` exponentiates without shifting, over at most
:data:`_SOFTMAX_KEYS` keys: exp(-80) is a normal float32 number and 1,000 terms of exp(80) sum to a finite one."""

_SOFTMAX_KEYS = 1000


def _attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
    """Softmax attention of projected ``query [B, Tq, H, hd]`` (scale folded in) over ``key``/``value``
    ``[B, Tk, H, hd]``, skipping keys where ``pad [B, Tk]``; returns the heads side by side, ``[B, Tq, H * hd]``.

    One batched product per head, on the heads' strided views: moving the heads in front (``[B, H, T, hd]``) for a
    single product costs four copies, as much again as the products themselves at these sizes."""
    b, t_q, heads, hd = query.shape
    # softmax by hand, in place: torch's CPU kernel is slow over a last axis this short. The usual shift by each
    # row's maximum only keeps exp() in range; when no score can leave [-80, 80] (|q . k| <= hd max|q| max|k|)
    # exp() is in range without it (no overflow, no subnormals) and the costly short-axis maximum is skipped --
    # the same softmax up to float rounding.
    q_lo, q_hi = torch.aminmax(query)
    k_lo, k_hi = torch.aminmax(key)
    bound = hd * torch.maximum(-q_lo, q_hi) * torch.maximum(-k_lo, k_hi)
    shift = float(bound) > _SOFTMAX_RANGE or key.shape[1] > _SOFTMAX_KEYS
    padded = pad[:, None, :] if bool(pad.any()) else None  # rows of one call mostly share their length
    outs = []
    for h in range(heads):
        scores = torch.bmm(query[:, :, h], key[:, :, h].transpose(1, 2))  # [B, Tq, Tk]
        if padded is not None:
            scores.masked_fill_(padded, float("-inf"))
        if shift:
            scores.sub_(scores.amax(-1, keepdim=True))
        weights = scores.exp_()
        # normalised after the product: hd values per query instead of Tk
        outs.append(torch.bmm(weights, value[:, :, h]).div_(weights.sum(-1, keepdim=True)))
    return torch.cat(outs, dim=-1)


class _MulTInference:
    """:class:`MulTLike`'s forward pass at inference, computing each intermediate once.

    The same weights and, up to float rounding, the same outputs as the plain pass (tests/models/test_fast_forward.py)
    -- but for the batches attribution sends, where most rows of an instance differ from others in one modality only:

    - each modality's distinct inputs in the batch are encoded once (projection, layer norm, the queries and keys of
      every first cross-modal block that reads it), and each (target, source) block runs once per distinct pair of
      inputs; the results are gathered back to the rows (the blocks after a target's merge read all modalities, so
      they run on every row);
    - the layer norms' affine maps are folded into the projections that follow them, so a stream's layer norm is
      computed once for all the blocks that read it, and the queries (keys and values) of the blocks sharing a
      target (source) come from one product.
    """

    def __init__(self, model: MulTLike) -> None:
        self.model = model
        cfg: MulTConfig = model.config  # type: ignore[assignment]
        self.d, self.heads = cfg.d_model, cfg.heads
        self.scale = (self.d // self.heads) ** -0.5

    def _block_qkv(self, block: AttentionBlock) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """A block's query and key/value projections with its layer norms folded in and the scale in the query."""
        d, w, bias = self.d, block.attn.in_proj_weight, block.attn.in_proj_bias
        wq, bq = _folded(block.norm_q, w[:d] * self.scale, bias[:d] * self.scale)
        wkv, bkv = _folded(block.norm_kv, w[d:], bias[d:])
        return wq, bq, wkv, bkv

    def _finish(
        self, block: AttentionBlock, q: torch.Tensor, heads_out: torch.Tensor, empty: torch.Tensor
    ) -> torch.Tensor:
        """The rest of a block after attention: output projection, residual, feed-forward (norm folded in)."""
        a = block.attn.out_proj(heads_out)
        if bool(empty.any()):
            a = a * (~empty).to(a.dtype)[:, None, None]
        q = q + a
        w1, b1 = _folded(block.norm_ff, block.ff[0].weight, block.ff[0].bias)
        hidden = torch.relu_(nn.functional.linear(nn.functional.layer_norm(q, (self.d,)), w1, b1))
        return q + block.ff[3](hidden)

    def _block(self, block: AttentionBlock, q: torch.Tensor, kv: torch.Tensor, kv_mask: torch.Tensor) -> torch.Tensor:
        """One whole block (queries and keys from different inputs, or the same)."""
        wq, bq, wkv, bkv = self._block_qkv(block)
        b, t_q, d = q.shape
        nq = nn.functional.layer_norm(q, (d,))
        nkv = nq if kv is q else nn.functional.layer_norm(kv, (d,))
        if kv is q:  # self-attention: one product for queries, keys and values
            qkv = nn.functional.linear(nq, torch.cat([wq, wkv]), torch.cat([bq, bkv]))
            query, key, value = qkv.view(b, t_q, 3, self.heads, d // self.heads).unbind(2)
        else:
            query = nn.functional.linear(nq, wq, bq).view(b, t_q, self.heads, d // self.heads)
            key, value = nn.functional.linear(nkv, wkv, bkv).view(b, -1, 2, self.heads, d // self.heads).unbind(2)
        empty = ~kv_mask.any(1)
        pad = ~kv_mask & ~empty.unsqueeze(1)
        return self._finish(block, q, _attention(query, key, value, pad), empty)

    def fuse(self, xs: list[torch.Tensor], masks: list[torch.Tensor]) -> torch.Tensor:
        model, d, heads = self.model, self.d, self.heads
        cfg: MulTConfig = model.config  # type: ignore[assignment]
        hd = d // heads
        # distinct inputs per modality, and each encoded once
        groups = [_unique_rows(x, m) for x, m in zip(xs, masks, strict=True)]
        firsts = [g[0] if g is not None else None for g in groups]
        inverses = [g[1] if g is not None else None for g in groups]
        streams, stream_masks = [], []
        for conv, x, m, first in zip(model.project, xs, masks, firsts, strict=True):
            if first is not None:
                x, m = x.index_select(0, first), m.index_select(0, first)
            h = conv(x.transpose(1, 2)).transpose(1, 2)
            h = h * math.sqrt(d) + sinusoidal_positions(h.shape[1], d, h.device)
            streams.append(h * m.unsqueeze(-1).to(h.dtype))
            stream_masks.append(m)
        normed = [nn.functional.layer_norm(h, (d,)) for h in streams]
        # the first cross-modal block of every pair: queries by target, keys and values by source, one product each
        first_blocks = {pair: model.cross[f"t{pair[0]}_s{pair[1]}"][0] for pair in model.pairs}
        proj = {pair: self._block_qkv(block) for pair, block in first_blocks.items()}
        n = len(xs)
        queries, keyvalues = {}, {}
        for i in range(n):
            as_target = [p for p in model.pairs if p[0] == i]
            if as_target:
                w = torch.cat([proj[p][0] for p in as_target])
                bias = torch.cat([proj[p][1] for p in as_target])
                out = nn.functional.linear(normed[i], w, bias).split(d, dim=-1)
                queries.update(zip(as_target, out, strict=True))
            as_source = [p for p in model.pairs if p[1] == i]
            if as_source:
                w = torch.cat([proj[p][2] for p in as_source])
                bias = torch.cat([proj[p][3] for p in as_source])
                out = nn.functional.linear(normed[i], w, bias).split(2 * d, dim=-1)
                keyvalues.update(zip(as_source, out, strict=True))
        pooled = []
        for t in range(n):
            merge = model.merge[t]
            z = None
            for k, s in enumerate(s for tt, s in model.pairs if tt == t):
                rows_t, rows_s, back = _pair_rows(inverses[t], inverses[s], len(streams[t]), len(streams[s]))
                query, kv = queries[(t, s)], keyvalues[(t, s)]
                q_in, m_s = streams[t], stream_masks[s]
                if rows_t is not None:
                    query, q_in = query.index_select(0, rows_t), q_in.index_select(0, rows_t)
                if rows_s is not None:
                    kv, m_s = kv.index_select(0, rows_s), m_s.index_select(0, rows_s)
                b, t_q = query.shape[:2]
                key, value = kv.reshape(b, -1, 2, heads, hd).unbind(2)
                empty = ~m_s.any(1)
                pad = ~m_s & ~empty.unsqueeze(1)
                blocks = model.cross[f"t{t}_s{s}"]
                q = self._finish(blocks[0], q_in, _attention(query.reshape(b, t_q, heads, hd), key, value, pad), empty)
                kv_in = streams[s] if rows_s is None else streams[s].index_select(0, rows_s)
                for block in blocks[1:]:
                    q = self._block(block, q, kv_in, m_s)
                # the merge is linear: apply each source's part of it on the distinct rows, then gather
                part = nn.functional.linear(q, merge.weight[:, k * d : (k + 1) * d])
                if back is not None:
                    part = part.index_select(0, back)
                z = part if z is None else z + part
            z = z + merge.bias
            m_t = masks[t]
            for block in model.self_attn[t]:
                z = self._block(block, z, z, m_t)
            z = model.norm_out[t](z)
            pooled.append(masked_mean(z, m_t) if cfg.pool == "mean" else last_real(z, m_t))
        return model.head(torch.cat(pooled, dim=-1))


def _pair_rows(
    inv_t: torch.Tensor | None, inv_s: torch.Tensor | None, n_t: int, n_s: int
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """For a (target, source) block over a batch whose rows map to distinct target and source inputs (``inv_t``,
    ``inv_s``; None: the identity): the distinct (target, source) pairs, as rows of each side's distinct inputs, and
    the pair of each batch row. None for the identity."""
    if inv_t is None and inv_s is None:
        return None, None, None
    batch = len(inv_t if inv_t is not None else inv_s)
    it = inv_t if inv_t is not None else torch.arange(batch, device=inv_s.device)
    is_ = inv_s if inv_s is not None else torch.arange(batch, device=it.device)
    pairs, back = torch.unique(it * n_s + is_, return_inverse=True)
    return pairs // n_s, pairs % n_s, back


ARCHITECTURES: Registry[type[ReferenceModel]] = Registry("architecture")
"""Architecture name -> model class (a :class:`~modalens._core.registry.Registry`, the helper that also holds the
explanation methods, dataset loaders and feature extractors); each class's ``config_class`` is its configuration
dataclass, whose ``architecture`` is the name. ``name in ARCHITECTURES`` and ``list(ARCHITECTURES)`` work as for a
dict."""


def register_architecture(model_class: type[ReferenceModel], *, replace: bool = False) -> type[ReferenceModel]:
    """Register a model class under its configuration's ``architecture`` name (usable as a class decorator)."""
    return ARCHITECTURES.register(model_class.config_class.architecture, model_class, replace=replace)


for _builtin in (EarlyFusionLSTM, LateFusionLSTM, MulTLike):
    register_architecture(_builtin)
del _builtin


def list_architectures() -> list[str]:
    """The registered architecture names, sorted."""
    return ARCHITECTURES.names()


def _model_class(architecture: str) -> type[ReferenceModel]:
    if architecture not in ARCHITECTURES:
        raise ConfigError(f"architecture: unknown {architecture!r}; choose one of {list_architectures()}")
    return ARCHITECTURES.get(architecture)


def make_config(architecture: str, modalities: Mapping[str, int], **options: Any) -> ReferenceConfig:
    """Build the configuration of a registered architecture; unknown options are refused by name."""
    cls = _model_class(architecture).config_class
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"{architecture}: unknown option(s) {unknown}; known: {sorted(known - {'modalities'})}")
    return cls(modalities=dict(modalities), **options)


def config_from_dict(data: Mapping[str, Any]) -> ReferenceConfig:
    """Rebuild a configuration from :meth:`ReferenceConfig.to_dict` output, validating every field."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"expected a JSON object, got {type(data).__name__}")
    options = dict(data)
    architecture = options.pop("architecture", None)
    if architecture is None:
        raise ConfigError("architecture: missing")
    modalities = options.pop("modalities", None)
    if not isinstance(modalities, Mapping):
        raise ConfigError("modalities: missing or not an object of name -> feature dimension")
    return make_config(architecture, modalities, **options)


def build_model(config: ReferenceConfig) -> ReferenceModel:
    """Instantiate the model a configuration describes."""
    return _model_class(config.architecture)(config)
