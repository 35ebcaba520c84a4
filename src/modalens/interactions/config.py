"""``ExplainConfig``: every setting of :func:`modalens.explain`, in one validated, serialisable object.

The run's manifest stores it (``config``), and the command line derives its ``modalens explain`` options from the
fields marked ``cli`` (help text and choices included), so a setting is declared once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from modalens._core.errors import ConfigurationError
from modalens.interactions.interaction_types import TypingConfig

GRANULARITIES = ("steps", "features")
PROJECTIONS = ("auto", "umap", "tsne", "pca")
BACKENDS = ("local", "ray")


def _option(help: str, *, cli: bool = True, choices: tuple[str, ...] | None = None) -> Any:
    """Field metadata read by the command line (``modalens.cli.options``); registry-backed choices (methods) are
    supplied there, since the registry sits above this module."""
    return {"help": help, "cli": cli, "choices": choices}


@dataclass(frozen=True)
class ExplainConfig:
    """How :func:`modalens.explain` explains a predictor (every field has a default; see each field's help)."""

    method: str = field(default="shapley", metadata=_option("Modality-level method"))
    feature_method: str | None = field(default="permutation", metadata=_option("Feature-level method, or 'none'"))
    granularities: tuple[str, ...] = field(
        default=GRANULARITIES,
        metadata=_option("Feature-level players: steps (a word, a frame) and/or features (named, over all steps)"),
    )
    n_permutations: int = field(default=8, metadata=_option("Permutation walks per instance (antithetic pairs)"))
    target: int | str = field(
        default="predicted",
        metadata=_option("Output explained: 'predicted' (class; column 0 for regression) or an index", cli=False),
    )
    typing: TypingConfig = field(
        default_factory=TypingConfig, metadata=_option("Interaction-type thresholds", cli=False)
    )
    templates: bool = field(default=True, metadata=_option("Mine frequent, influential multimodal feature sets"))
    template_support: float = field(default=0.03, metadata=_option("Minimum template support per polarity side"))
    emap: bool = field(default=False, metadata=_option("Compute EMAP (n^2 evaluations on a sub-sample)"))
    pid: bool = field(default=False, metadata=_option("Compute PID on pooled modality features"))
    projection: str | None = field(
        default="auto",
        metadata=_option(
            "2-D projection: auto (t-SNE to 5,000, UMAP above), umap, tsne, pca or none", choices=(*PROJECTIONS, "none")
        ),
    )
    batch_size: int = field(default=4096, metadata=_option("Model rows per forward pass"))
    seed: int = field(default=0, metadata=_option("Seed of every random choice"))
    progress: bool = field(default=True, metadata=_option("Show progress bars", cli=False))
    backend: str = field(default="local", metadata=_option("Where instances run: local or ray", choices=BACKENDS))
    backend_options: Mapping[str, Any] = field(
        default_factory=dict, metadata=_option("Options of the backend (ray: address, n_chunks)", cli=False)
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
        _positive_int("n_permutations", self.n_permutations)
        _positive_int("batch_size", self.batch_size)
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ConfigurationError(f"seed: expected an int, got {self.seed!r}")
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
        unknown = sorted(set(options) - {f.name for f in fields(self)})
        if unknown:
            valid = sorted(f.name for f in fields(self))
            raise ConfigurationError(f"unknown explain option(s) {unknown}; valid: {valid}")
        return replace(self, **options)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready content for the run manifest."""
        out = asdict(self)
        out["granularities"] = list(self.granularities)
        out["backend_options"] = dict(self.backend_options)
        return out


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{name}: expected a positive int, got {value!r}")
