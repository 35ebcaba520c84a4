"""``ExplainConfig``: every setting of :func:`modalens.explain`, in one validated, serialisable object.

The run's manifest stores it (``config``), and the command line derives its ``modalens explain`` options from the
fields marked ``cli`` (help text and choices included), so a setting is declared once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from modalens._core.errors import ConfigurationError
from modalens._core.validation import check_int, option, updated
from modalens.interactions.interaction_types import TypingConfig

GRANULARITIES = ("steps", "features", "cells")
# cells (each step x named feature a player) cost about T times the features' model rows: asked for, never default
DEFAULT_GRANULARITIES = ("steps", "features")
PLAYERS = ("steps", "words")
ORDERS = ("orthogonal", "random", "grid")
PROJECTIONS = ("auto", "umap", "tsne", "pca")
BACKENDS = ("local", "ray")


@dataclass(frozen=True)
class ExplainConfig:
    """How :func:`modalens.explain` explains a predictor (every field has a default; see each field's help)."""

    method: str = field(default="shapley", metadata=option("Modality-level method"))
    feature_method: str | None = field(default="permutation", metadata=option("Feature-level method, or 'none'"))
    granularities: tuple[str, ...] = field(
        default=DEFAULT_GRANULARITIES,
        metadata=option(
            "Feature-level players: steps (a word, a frame), features (named, over all steps) and/or cells "
            "(each feature at each step: the feature x step heat map; about T times the cost of features)"
        ),
    )
    players: str = field(
        default="steps",
        metadata=option(
            "Step-level players of token modalities: steps (each word piece) or words (a word's pieces together)",
            choices=PLAYERS,
        ),
    )
    n_permutations: int = field(default=8, metadata=option("Permutation walks per instance (antithetic pairs)"))
    orders: str = field(
        default="orthogonal",
        metadata=option(
            "Walk orders: orthogonal, random, or grid (orders within each modality, every interleaving averaged; "
            "for models that encode each modality on its own, such as CLIP)",
            choices=ORDERS,
        ),
    )
    target: int | str = field(
        default="predicted",
        metadata=option("Output explained: 'predicted' (class; column 0 for regression) or an index", cli=False),
    )
    typing: TypingConfig = field(
        default_factory=TypingConfig, metadata=option("Interaction-type thresholds", cli=False)
    )
    templates: bool = field(default=True, metadata=option("Mine frequent, influential multimodal feature sets"))
    template_support: float = field(default=0.03, metadata=option("Minimum template support per polarity side"))
    emap: bool = field(default=False, metadata=option("Compute EMAP (n^2 evaluations on a sub-sample)"))
    pid: bool = field(default=False, metadata=option("Compute PID on pooled modality features"))
    projection: str | None = field(
        default="auto",
        metadata=option(
            "2-D projection: auto (t-SNE to 5,000, UMAP above), umap, tsne, pca or none", choices=(*PROJECTIONS, "none")
        ),
    )
    batch_size: int = field(default=4096, metadata=option("Model rows per forward pass"))
    seed: int = field(default=0, metadata=option("Seed of every random choice"))
    progress: bool = field(default=True, metadata=option("Show progress bars", cli=False))
    backend: str = field(default="local", metadata=option("Where instances run: local or ray", choices=BACKENDS))
    backend_options: Mapping[str, Any] = field(
        default_factory=dict, metadata=option("Options of the backend (ray: address, n_chunks)", cli=False)
    )

    def __post_init__(self) -> None:
        # 'none' is how the command line spells "skip"
        for name in ("feature_method", "projection"):
            if getattr(self, name) == "none":
                object.__setattr__(self, name, None)
        if isinstance(self.granularities, str):
            object.__setattr__(self, "granularities", (self.granularities,))
        object.__setattr__(self, "granularities", tuple(self.granularities))
        if isinstance(self.typing, Mapping):
            object.__setattr__(self, "typing", TypingConfig(**self.typing))
        self._check()

    def _check(self) -> None:
        bad = [g for g in self.granularities if g not in GRANULARITIES]
        if bad or not self.granularities:
            raise ConfigurationError(
                f"granularities: choose from {list(GRANULARITIES)}, got {list(self.granularities)}"
            )
        if self.orders not in ORDERS:
            raise ConfigurationError(f"orders: choose from {list(ORDERS)}, got {self.orders!r}")
        if self.players not in PLAYERS:
            raise ConfigurationError(f"players: choose from {list(PLAYERS)}, got {self.players!r}")
        check_int("n_permutations", self.n_permutations, minimum=1)
        check_int("batch_size", self.batch_size, minimum=1)
        check_int("seed", self.seed)
        if not 0.0 < float(self.template_support) <= 1.0:
            raise ConfigurationError(f"template_support: expected a share in (0, 1], got {self.template_support!r}")
        if self.projection is not None and self.projection not in PROJECTIONS:
            raise ConfigurationError(f"projection: choose from {[*PROJECTIONS, 'none']}, got {self.projection!r}")
        if self.backend not in BACKENDS:
            raise ConfigurationError(f"backend: choose from {list(BACKENDS)}, got {self.backend!r}")
        if self.target != "predicted" and (isinstance(self.target, bool) or not isinstance(self.target, int)):
            raise ConfigurationError(f"target: expected 'predicted' or an output index, got {self.target!r}")

    def updated(self, **options: Any) -> ExplainConfig:
        """A copy with some fields changed; an unknown name is refused with the list of valid ones."""
        return updated(self, "explain", options)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready content for the run manifest."""
        out = asdict(self)
        out["granularities"] = list(self.granularities)
        out["backend_options"] = dict(self.backend_options)
        return out
