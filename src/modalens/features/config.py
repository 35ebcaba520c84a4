"""``FeatureStudyConfig``: every setting of :func:`modalens.features.run_feature_study` in one validated object.

The feature run's manifest records it, and ``modalens features study`` derives its options from the fields marked
``cli`` (see :mod:`modalens.cli.options`), so a setting is declared once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from modalens._core.errors import ConfigurationError
from modalens._core.validation import check_int, option, updated


@dataclass(frozen=True)
class FeatureStudyConfig:
    """How a feature study trains, scores and intervenes (every field has a default)."""

    extractor: str = field(default="topk", metadata=option("Feature extractor (a registered architecture)"))
    d_sae: int | None = field(default=None, metadata=option("Number of features (default 4 x embedding dim)"))
    extractor_options: Mapping[str, Any] = field(
        default_factory=dict,
        metadata=option("Options of the extractor's config (k, l1_coefficient, epochs, lr ...)", cli=False),
    )
    device: str = field(default="cpu", metadata=option("Torch device for training and attacks"))
    k: float = field(default=1.0, metadata=option("MDS category width: thresholds mean +- k standard deviations"))
    n_boot: int = field(default=1000, metadata=option("Bootstrap resamples for MDS intervals (0 = none)"))
    ci: float = field(default=0.95, metadata=option("Coverage of the MDS intervals"))
    top_k: int = field(default=20, metadata=option("Top samples per feature and modality (EmbSim's basis)"))
    compare_with: tuple[str, ...] = field(
        default=("raw",), metadata=option("Interpretability baselines: raw dimensions and/or other extractors")
    )
    attack_images: int = field(
        default=8, metadata=option("Images to attack through the image tower (0 = skip)", cli=False)
    )
    steer_features: int = field(default=3, metadata=option("Features whose steering of text queries is measured"))
    n_random: int = field(default=3, metadata=option("Random same-size feature sets per ablation (control)"))
    n_null: int = field(
        default=20, metadata=option("Modality-swap null replicates: category shares chance alone gives (0 = none)")
    )
    examples_per_level: int = field(
        default=5, metadata=option("Feature-card examples per activation level (middle, low)")
    )
    store_codes: bool = field(
        default=True, metadata=option("Store every sample's non-zero codes (the app's query, run comparison)")
    )
    max_images: int = field(
        default=5000, metadata=option("Sample images stored for the app's query (beyond those shown as examples)")
    )
    seed: int = field(default=0, metadata=option("Seeds training, bootstrap and controls"))
    progress: bool = field(default=False, metadata=option("Show training progress", cli=False))

    def __post_init__(self) -> None:
        if isinstance(self.compare_with, str):
            object.__setattr__(self, "compare_with", (self.compare_with,))
        object.__setattr__(self, "compare_with", tuple(self.compare_with))
        object.__setattr__(self, "extractor_options", dict(self.extractor_options))
        if self.d_sae is not None:
            check_int("d_sae", self.d_sae, minimum=1)
        for name in ("top_k",):
            check_int(name, getattr(self, name), minimum=1)
        for name in (
            "n_boot",
            "attack_images",
            "steer_features",
            "n_random",
            "n_null",
            "examples_per_level",
            "max_images",
        ):
            check_int(name, getattr(self, name), minimum=0)
        if not 0.0 < float(self.ci) < 1.0:
            raise ConfigurationError(f"ci: expected a coverage in (0, 1), got {self.ci!r}")
        if not float(self.k) >= 0.0:
            raise ConfigurationError(f"k: expected a width >= 0, got {self.k!r}")
        check_int("seed", self.seed)

    def updated(self, **options: Any) -> FeatureStudyConfig:
        """A copy with some fields changed; an unknown name is refused with the list of valid ones."""
        return updated(self, "feature-study", options)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["compare_with"] = list(self.compare_with)
        out["extractor_options"] = dict(self.extractor_options)
        return out
