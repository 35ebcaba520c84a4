"""The run schema, declared once: every run kind's manifest and every table, versioned.

A run directory holds ``manifest.json`` and one Parquet file per table. This module is the only place that says what
they contain. The writer (:func:`modalens.runs.write_run`) checks a run against it before anything reaches the disk
and the reader (:func:`modalens.runs.read_run`) checks it again on the way back; the front end's TypeScript types
(``web/src/runTypes.ts``) and ``docs/run-format.md`` are generated from it (``python scripts/gen_run_schema.py``).

- Manifests are pydantic models: :class:`InteractionManifest` (``kind = "interaction"``, the interaction engine)
  and :class:`FeatureManifest` (``kind = "features"``, the feature engine). Both share :class:`RunManifest`'s keys.
- Tables are :class:`Table` declarations: each :class:`Column` has a name, an Arrow type and a nullability. A
  column named ``shapley_{modality}`` stands for one column per modality of the run; a name ending in ``{*}``
  (``meta_{*}``) stands for any number of columns with that prefix.
- :data:`KINDS` maps each kind to its manifest model and tables, with which tables are required.

Versions: :data:`SCHEMA_VERSION` is what this modalens writes; :data:`READABLE_VERSIONS` what it reads. Version 1
stored the manifest's ``projection`` as a bare method name; it is read as ``{"method": name}``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modalens._core.errors import ModalensError

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
MANIFEST = "manifest.json"


class RunError(ModalensError, ValueError):
    """A run directory is missing, incomplete, does not match the run schema, or is of a version this modalens
    cannot read. The message names the run, and the table, column or manifest key at fault."""


# ------------------------------------------------------------------------------------------------------ manifests
class _Strict(BaseModel):
    """A manifest part with exactly the declared keys."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class _Open(BaseModel):
    """A manifest part with the declared keys plus any others (descriptions written by user code)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class TableEntry(_Strict):
    """Where a table is stored and what it holds."""

    file: str = Field(description="file name inside the run directory (`<table>.parquet`)")
    rows: int = Field(description="number of rows")
    columns: list[str] = Field(description="column names in stored order")


class RunManifest(_Strict):
    """Keys every run's manifest has."""

    schema_version: int = Field(description="version of this schema the run was written with")
    kind: str = Field(description='what produced the run: `"interaction"` or `"features"`')
    modalens_version: str = Field(description="the modalens version that wrote the run")
    created: str = Field(description="UTC time of writing, ISO 8601 (`2025-01-31T12:00:00Z`)")
    tables: dict[str, TableEntry] = Field(description="table name -> its file, rows and columns")


class TokenDescription(_Strict):
    """A token modality's vocabulary facts (`TokenSpec`)."""

    pad_id: int = Field(description="the padding token's id")
    mask_id: int | None = Field(description="the `[MASK]` token's id, or null when the vocabulary has none")
    special_ids: list[int] = Field(description="ids never masked and never players (padding included)")
    vocab_size: int | None = None
    tokenizer: str | None = Field(default=None, description="the tokenizer's name")


class PatchDescription(_Strict):
    """A patch modality's grid (`PatchGrid`): step k is grid row k // cols, column k % cols."""

    rows: int
    cols: int
    height: int = Field(description="pixels per patch, vertically")
    width: int = Field(description="pixels per patch, horizontally")
    channels: int


class ModalityDescription(_Strict):
    """One modality of the explained dataset."""

    name: str
    kind: str = Field(description="text, audio, vision, image, tabular ...")
    steps: int = Field(description="steps (words, frames, patches) per instance")
    features: int = Field(description="features per step (0 for token ids)")
    feature_names: list[str]
    has_mask: bool = Field(description="whether the modality has a step mask")
    has_words: bool = Field(description="whether the modality carries words (text)")
    tokens: TokenDescription | None = Field(default=None, description="token modalities: the vocabulary's ids")
    patches: PatchDescription | None = Field(default=None, description="patch (image) modalities: the grid")


class DatasetDescription(_Strict):
    """The explained dataset (`MultimodalDataset.describe()`)."""

    name: str
    n_instances: int
    label_kind: str | None = Field(description='`"regression"`, `"classification"` or null without labels')
    class_names: list[str] | None
    splits: list[str] | None = Field(description="the split names present, or null")
    media: dict[str, str] = Field(description="media key -> mime type")
    meta_columns: list[str] = Field(description="dataset metadata columns (stored as `meta_<column>` in instances)")
    modalities: list[ModalityDescription]


class ModelDescription(_Open):
    """The predictor (`describe()`); adapters may add keys of their own."""

    adapter: str = Field(description="the predictor class")
    modalities: list[str]
    output_kind: str = Field(description='`"regression"` or `"classification"`')
    output_names: list[str] | None = None
    masker: dict[str, str | float] = Field(default_factory=dict, description="modality (or `default`) -> baseline")
    name: str | None = Field(default=None, description="a display name, when the writer gave one")


class ErrorOfType(_Strict):
    """The error within one interaction type."""

    count: int = Field(description="instances of this type")
    error: float | None = Field(description="mean absolute error (regression) or error rate (classes)")


class GlobalSummary(_Strict):
    """`Explanation.summary()` over every instance of the run."""

    n_instances: int
    modality_importance: dict[str, float] = Field(description="modality -> mean absolute Shapley value")
    mean_shapley: dict[str, float] = Field(description="modality -> mean Shapley value")
    type_shares: dict[str, float] = Field(
        description="`dominance:<modality>`, `complement`, `conflict`, `none` -> share of instances"
    )
    interaction_strength: float = Field(description="mean interaction strength")
    performance: dict[str, Any] | None = Field(
        default=None, description="metric -> value, with `kind` (sentiment, regression, classification); needs labels"
    )
    error_by_type: dict[str, ErrorOfType] | None = Field(
        default=None, description="type (as in `type_shares`) -> {count, error}; types without instances left out"
    )
    error_measure: Literal["mean absolute error", "error rate"] | None = Field(
        default=None, description="what `error_by_type.*.error` measures"
    )
    mm_shap: dict[str, float] | None = Field(
        default=None,
        description="modality -> mean MM-SHAP share (sum of its players' absolute Shapley values over all players'; "
        "T-SHAP for the text, V-SHAP for the image); runs with token or patch modalities",
    )


class ProjectionInfo(_Strict):
    """How the `projection` table was made."""

    method: str = Field(description="tsne, umap or pca")
    seed: int | None = None


class InteractionManifest(RunManifest):
    """Manifest of an interaction run (`Explanation.save`)."""

    kind: Literal["interaction"] = Field(description='`"interaction"`')
    dataset: DatasetDescription
    model: ModelDescription
    modalities: list[str] = Field(description="modality names in order (the players)")
    target: Literal["predicted"] | int = Field(
        description='the explained output: `"predicted"` (each instance\'s predicted class) or an output index'
    )
    typing: dict[str, float] = Field(description="thresholds of the interaction types (`TypingConfig`)")
    config: dict[str, Any] = Field(description="every option of `explain()`")
    timings: dict[str, float] = Field(description="seconds per stage")
    global_: GlobalSummary = Field(alias="global", description="summary over all instances")
    dataset_measures: dict[str, Any] = Field(description="optional `emap` {...} and `pid` {...}")
    media: dict[str, str] = Field(description="media key -> mime type (files under `media/<key>/`)")
    projection: ProjectionInfo | None = Field(description="the stored projection's method, or null without one")


class ExtractorInfo(_Strict):
    """The trained feature extractor."""

    name: str = Field(description="registry name: relu, topk, ncl")
    config: dict[str, Any] = Field(description="every option of the extractor's config")
    metrics: dict[str, Any] = Field(
        description="explained_variance, mse, l0, n_dead, dead_fraction; the same per modality under its name"
    )
    history: list[dict[str, float]] = Field(description="per-epoch losses")
    files: str | None = Field(description='`"extractor/"` (SAELens layout: cfg.json + safetensors) or null')


class DominanceSummary(_Strict):
    """Modality Dominance Score summary (`DominanceResult.summary()`)."""

    modalities: list[str]
    category_names: list[str] = Field(description="names of the single-modality categories (vision, language)")
    k: float
    mu: list[float] = Field(description="per modality: mean dominance")
    sigma: list[float] = Field(description="per modality: dominance standard deviation")
    thresholds: list[float] = Field(description="per modality: `mu + k * sigma`")
    proportions: dict[str, float] = Field(description="category -> share of non-inactive features")
    counts: dict[str, int] = Field(description="category (with `inactive`) -> features")
    eps: float
    n_boot: int
    ci: float
    seed: int
    n_pairs: int
    min_active: int
    mds_low_threshold: float | None = Field(default=None, description="two modalities: lower line on the MDS axis")
    mds_high_threshold: float | None = Field(default=None, description="two modalities: upper line on the MDS axis")
    stable_share: float | None = Field(default=None, description="share of live features stable under bootstrap")
    stable_counts: dict[str, int] | None = Field(default=None, description="category -> features stable in it")
    share_ci: dict[str, list[float]] | None = Field(
        default=None, description="category -> [low, high] bootstrap interval of its share (thresholds recomputed)"
    )
    share_boot: int | None = Field(default=None, description="bootstrap replicates behind `share_ci`")
    null_shares: dict[str, dict[str, float]] | None = Field(
        default=None,
        description="category -> share under the modality-swap null: `mean`, `low`, `high` (rule re-applied), "
        "`at_thresholds_mean|low|high` (against this run's thresholds)",
    )
    n_null: int | None = Field(default=None, description="null replicates behind `null_shares`")
    null_method: str | None = Field(
        default=None, description='`"modality swap"`: each pair\'s modalities swapped at random'
    )


class FeatureModelInfo(_Open):
    """The embedding model; writers may add keys (towers, sources, build metrics)."""

    name: str | None = None
    dim: int | None = None


class ImagesInfo(_Strict):
    """Sample images stored with the run."""

    dir: str = Field(description='`"images"`')
    count: int
    mime: str


class FeatureManifest(RunManifest):
    """Manifest of a feature run (`FeatureStudy.save`)."""

    kind: Literal["features"] = Field(description='`"features"`')
    model: FeatureModelInfo
    extractor: ExtractorInfo
    dominance: DominanceSummary
    config: dict[str, Any] = Field(description="every option of the study (`run_feature_study`)")
    timings: dict[str, float] = Field(description="seconds: train, mds, interpretability, interventions, total")
    images: ImagesInfo


# --------------------------------------------------------------------------------------------------------- tables
INT = pa.int64()
FLOAT = pa.float64()
STR = pa.string()
BOOL = pa.bool_()


@dataclass(frozen=True)
class Column:
    """One declared column.

    ``name`` may hold ``{modality}`` (one such column per modality of the run) or end in ``{*}`` (any columns with
    that prefix). ``type`` None accepts any Arrow type (only for ``{*}`` families). ``required`` False: the writer
    may leave it out.
    """

    name: str
    type: pa.DataType | None
    doc: str = ""
    nullable: bool = False
    required: bool = True

    @property
    def per_modality(self) -> bool:
        return "{modality}" in self.name

    @property
    def family(self) -> str | None:
        """The prefix of a ``{*}`` family, else None."""
        return self.name[:-3] if self.name.endswith("{*}") else None


@dataclass(frozen=True)
class Table:
    """One declared table: its columns, whether every run of its kind has it, what it needs alongside."""

    name: str
    doc: str
    columns: tuple[Column, ...]
    required: bool = True
    requires: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunKind:
    """A run kind: its manifest model, its tables and where its modality names come from."""

    name: str
    doc: str
    manifest: type[RunManifest]
    tables: tuple[Table, ...]
    modalities: Callable[[Any], list[str]] = field(repr=False)
    files: tuple[tuple[str, str], ...] = ()

    def table(self, name: str) -> Table | None:
        return next((t for t in self.tables if t.name == name), None)


def C(name: str, type: pa.DataType | None, doc: str = "", **kw: Any) -> Column:
    """A :class:`Column` (short, so the tables below read like tables)."""
    return Column(name, type, doc, **kw)


INTERACTION_TABLES = (
    Table(
        "instances",
        "one row per explained instance (instance = row number 0..N-1 in `dataset.npz`)",
        (
            C("instance", INT, "row number in `dataset.npz`"),
            C("id", STR, "the dataset's instance id"),
            C("split", STR, "train / valid / test, or null", nullable=True),
            C("label", FLOAT, "the label (class index for classes), or null", nullable=True),
            C("prediction", FLOAT, "the model's answer: regression value or predicted class index"),
            C("target", INT, "the output column explained for this instance"),
            C("explained_output", FLOAT, "the explained output on the full input"),
            C("base_value", FLOAT, "the explained output with every modality absent"),
            C("interaction_type", STR, "`dominance`, `complement`, `conflict` or `none`"),
            C("dominant_modality", STR, "the dominant modality, or null", nullable=True),
            C("interaction_strength", FLOAT, "sum of absolute pairwise interactions relative to the Shapley total"),
            C("text", STR, "raw utterance, or null", nullable=True),
            C("error", FLOAT, "prediction - label (regression), or null", nullable=True),
            C("abs_error", FLOAT, "absolute error, or null", nullable=True),
            C("shapley_{modality}", FLOAT, "the modality's Shapley value (one column per modality)"),
            C("meta_{*}", None, "dataset metadata, one column per `dataset.meta_columns` entry", nullable=True),
        ),
    ),
    Table(
        "modality_shapley",
        "one row per instance and modality",
        (
            C("instance", INT),
            C("modality", STR),
            C("value", FLOAT, "Shapley value"),
            C("share", FLOAT, "absolute share of the instance's total"),
            C("role", STR, "`dominant`, `supporting`, `opposing` or `minor`"),
        ),
    ),
    Table(
        "coalitions",
        "one row per instance and modality coalition",
        (
            C("instance", INT),
            C("coalition", STR, 'modality names joined by `+` (`""` for the empty set)'),
            C("size", INT, "number of modalities present"),
            C("value", FLOAT, "the explained output with only these modalities present"),
        ),
    ),
    Table(
        "interactions",
        "one row per instance and unordered modality pair i < j",
        (
            C("instance", INT),
            C("modality_i", STR),
            C("modality_j", STR),
            C("shapley_interaction", FLOAT, "Shapley interaction index"),
            C("mobius", FLOAT, "Moebius dividend of the pair"),
        ),
    ),
    Table(
        "outputs",
        "one row per instance and model output (every class score, not only the explained one)",
        (
            C("instance", INT),
            C("output_index", INT),
            C("output", STR, "the output's name"),
            C("value", FLOAT),
        ),
    ),
    Table(
        "feature_attributions",
        "word, frame and feature attributions inside each modality",
        (
            C("instance", INT),
            C("modality", STR),
            C("position", INT, "the step (of a whole step or of a cell), or -1 for a feature over the whole instance"),
            C("feature", STR, "feature name (over every step, or at `position`: a cell), or `*` for a whole step"),
            C("value", FLOAT, "attribution"),
            C("token", STR, "the word for text steps, else null", nullable=True),
            C(
                "std_error",
                FLOAT,
                "standard error of sampled estimates (null where not estimable)",
                nullable=True,
                required=False,
            ),
        ),
        required=False,
    ),
    Table(
        "word_attributions",
        "the words of token modalities: each word's attribution is the sum of its pieces'",
        (
            C("instance", INT),
            C("modality", STR),
            C("word", INT, "the word's number in the instance (0, 1 ...)"),
            C("text", STR, "the word", nullable=True),
            C("value", FLOAT, "attribution: the sum of its pieces' (`feature_attributions` rows of its positions)"),
            C("pieces", INT, "how many word pieces it has"),
            C("position", INT, "the step of its first piece"),
            C("std_error", FLOAT, "standard error of sampled estimates", nullable=True, required=False),
        ),
        required=False,
        requires=("feature_attributions",),
    ),
    Table(
        "mm_shap",
        "MM-SHAP's modality shares per instance, from the step-level (token, patch, frame) Shapley values",
        (
            C("instance", INT),
            C("modality", STR),
            C("share", FLOAT, "sum of the modality's absolute values over all players' (T-SHAP for text)"),
            C("abs_total", FLOAT, "sum of the modality's absolute values"),
        ),
        required=False,
        requires=("feature_attributions",),
    ),
    Table(
        "feature_importance",
        "global importance of named features and of words (`word:<word>`)",
        (
            C("modality", STR),
            C("feature", STR),
            C("mean_abs", FLOAT, "mean absolute attribution"),
            C("mean", FLOAT, "mean attribution"),
            C("count", INT, "attributions averaged"),
        ),
        required=False,
        requires=("feature_attributions",),
    ),
    Table(
        "templates",
        "frequent multimodal feature sets",
        (
            C("template_id", INT),
            C("items", pa.list_(STR), "the set's items (`modality:feature level`)"),
            C("modalities", pa.list_(STR), "the modality of each item"),
            C("polarity", STR, "`positive` or `negative`"),
            C("support", FLOAT, "share of instances holding the set"),
            C("count", INT, "instances holding the set"),
            C("mean_prediction", FLOAT, "mean prediction of those instances", nullable=True),
            C("mean_attribution", FLOAT, "mean summed attribution of the items", nullable=True),
            C("rank", INT, "order in the template list (0 first)"),
        ),
        required=False,
        requires=("template_members",),
    ),
    Table(
        "template_members",
        "which instances hold which template",
        (C("template_id", INT), C("instance", INT)),
        required=False,
        requires=("templates",),
    ),
    Table(
        "projection",
        "2-D projection of the explanation vectors (method in manifest `projection`)",
        (C("instance", INT), C("x", FLOAT), C("y", FLOAT)),
        required=False,
    ),
)

FEATURE_TABLES = (
    Table(
        "features",
        "one row per feature of the extractor",
        (
            C("feature", INT),
            C("mds", FLOAT, "Modality Dominance Score (first modality's dominance); null when inactive", nullable=True),
            C("ci_low", FLOAT, "lower end of the MDS bootstrap interval", nullable=True),
            C("ci_high", FLOAT, "upper end of the MDS bootstrap interval", nullable=True),
            C("dominance_{modality}", FLOAT, "the modality's dominance", nullable=True),
            C(
                "ci_low_{modality}",
                FLOAT,
                "more than two modalities: lower end of the modality's dominance interval",
                nullable=True,
                required=False,
            ),
            C("ci_high_{modality}", FLOAT, "upper end of it", nullable=True, required=False),
            C("category", STR, "`vision`, `language`, `cross-modal` or `inactive`"),
            C("stable", BOOL, "whether the interval lies inside the category's region"),
            C("n_active", INT, "pairs on which the feature fires"),
            C("n_excluded", INT, "pairs left out of the dominance"),
            C("mean_activation_{modality}", FLOAT),
            C("frequency_{modality}", FLOAT, "share of samples where it fires"),
            C("frequency", FLOAT, "mean over modalities"),
            C("embsim_{modality}", FLOAT, "EmbSim of the top samples", nullable=True),
            C("monosemanticity_{modality}", FLOAT, nullable=True),
            C("embsim", FLOAT, "headline EmbSim; null when undefined", nullable=True),
            C("monosemanticity", FLOAT, "headline monosemanticity; null when undefined", nullable=True),
            C("top_{modality}", pa.list_(INT), "sample indices, best first"),
            C(
                "label",
                STR,
                "automatic label: distinctive caption words (`coat / jacket`)",
                nullable=True,
                required=False,
            ),
            C(
                "label_score",
                FLOAT,
                "correlation of the label's presence with the activation",
                nullable=True,
                required=False,
            ),
            C(
                "label_coverage",
                FLOAT,
                "share of activation mass on captions holding the label",
                nullable=True,
                required=False,
            ),
            C(
                "label_precision",
                FLOAT,
                "share of label-holding pairs the feature fires on",
                nullable=True,
                required=False,
            ),
        ),
    ),
    Table(
        "top_samples",
        "each feature's top-activating samples per modality",
        (
            C("feature", INT),
            C("rank", INT, "0 = strongest"),
            C("modality", STR, "`image`/`text`: which side of the pair activated"),
            C("sample", INT, "pair index"),
            C("activation", FLOAT),
            C("label", STR, nullable=True),
            C("text", STR, "the pair's caption", nullable=True),
        ),
    ),
    Table(
        "interventions",
        "before/after measurements of ablation, concept removal, steering and adversarial inputs",
        (
            C("intervention", STR, "`group_ablation`, `concept_removal`, `steering`, `adversarial`"),
            C("group", STR, "category, `all`, `feature j` or `raise feature j (category)`"),
            C("metric", STR),
            C("n_features", INT),
            C("before", FLOAT, nullable=True),
            C("after", FLOAT, nullable=True),
            C("delta", FLOAT, nullable=True),
            C("control", FLOAT, "null when not applicable", nullable=True),
            C("details", STR, "JSON string: features, alpha, chance, linf, control_values ...", nullable=True),
            C(
                "note",
                STR,
                "why the metric carries no information in this run (the app hides it), or null",
                nullable=True,
                required=False,
            ),
        ),
    ),
    Table(
        "comparison",
        "interpretability of raw dimensions vs extractors, per category",
        (
            C("metric", STR),
            C("method", STR, "raw, relu, topk, ncl"),
            C("category", STR, "`all` or a category of that method"),
            C("n_features", INT),
            C("mean", FLOAT, nullable=True),
            C("median", FLOAT, nullable=True),
            C("std", FLOAT, nullable=True),
        ),
        required=False,
    ),
    Table(
        "win_rates",
        "pairwise win rates of the methods in `comparison`",
        (
            C("metric", STR),
            C("category", STR),
            C("method_a", STR),
            C("method_b", STR),
            C("wins", FLOAT),
            C("ties", FLOAT),
            C("losses", FLOAT),
            C("n_comparisons", INT),
            C("paired", BOOL),
            C("rate_half_ties", FLOAT, nullable=True),
        ),
        required=False,
    ),
    Table(
        "samples",
        "the analysed pairs",
        (
            C("sample", INT),
            C("text", STR, nullable=True),
            C("label", STR, nullable=True),
            C("image", STR, "`images/<sample>.png`, or null when not stored", nullable=True),
        ),
        required=False,
    ),
    Table(
        "examples",
        "each feature's examples at activation levels, per modality, duplicates collapsed",
        (
            C("feature", INT),
            C("modality", STR),
            C("level", STR, "`top`, `middle` (40-60 % quantile band of non-zero activations) or `low` (0-20 %)"),
            C("rank", INT, "order within the level"),
            C("sample", INT, "pair index (the strongest of its duplicates)"),
            C("activation", FLOAT),
            C("count", INT, "samples with this content the feature fires on"),
            C("band_low", FLOAT, "the level's activation band"),
            C("band_high", FLOAT),
        ),
        required=False,
    ),
    Table(
        "histograms",
        "per feature and modality: histogram of the non-zero activations (edges shared by the modalities)",
        (
            C("feature", INT),
            C("modality", STR),
            C("edges", pa.list_(FLOAT), "bin edges, 0 .. the feature's largest activation"),
            C("counts", pa.list_(INT)),
            C("n_zero", INT, "samples where the feature is 0"),
            C("n", INT, "samples"),
        ),
        required=False,
    ),
    Table(
        "neighbours",
        "each live feature's nearest live features by decoder cosine",
        (C("feature", INT), C("rank", INT, "0 = nearest"), C("neighbour", INT), C("cosine", FLOAT)),
        required=False,
    ),
    Table(
        "class_effects",
        "zero-shot classes each feature pushes towards (rank 0, 1 ...) and away from (rank -1, -2 ...)",
        (
            C("feature", INT),
            C("class", STR),
            C("effect", FLOAT, "similarity change per unit activation, centred"),
            C("rank", INT),
        ),
        required=False,
    ),
    Table(
        "codes",
        "every non-zero activation of every sample (the app's query, comparison of runs)",
        (C("sample", INT), C("modality", STR), C("feature", INT), C("activation", FLOAT)),
        required=False,
    ),
    Table(
        "replicates",
        "MDS per feature in kept bootstrap and null replicates (the app recomputes categories and shares for any k)",
        (
            C("kind", STR, "`bootstrap` or `null` (modality swap)"),
            C("replicate", INT),
            C("mds", pa.list_(FLOAT), "MDS of every feature, by feature index (NaN = inactive in the replicate)"),
        ),
        required=False,
    ),
    Table(
        "instance_features",
        "a study of a predictor's hidden layer: each instance's features of largest attribution (gradient x code)",
        (
            C("instance", INT, "dataset row of the instance (the key shared with an interaction run)"),
            C("rank", INT, "0 = largest |attribution|"),
            C("feature", INT),
            C("code", FLOAT, "the feature's code on the full input's activation"),
            C("attribution", FLOAT, "code x d output / d code through the decoder"),
            C("category", STR, "the feature's category"),
            C("output", FLOAT, "the explained output (regression value or the predicted class's logit)"),
            C("total", FLOAT, "sum of the attributions of all the instance's features"),
            C("id", STR, "the dataset's instance id (the key shared with an interaction run's `instances.id`)"),
        ),
        required=False,
    ),
    Table(
        "adversarial",
        "the attacked images: target activation and zero-shot prediction before, after and under random noise",
        (
            C("image", INT, "row in the attacked batch"),
            C("sample", INT, "pair index"),
            C("feature", INT, "the raised feature"),
            C("category", STR, nullable=True),
            C("activation_before", FLOAT),
            C("activation_after", FLOAT),
            C("activation_control", FLOAT, "under uniform random-sign noise of the same L-inf budget", nullable=True),
            C("pred_before", STR, nullable=True),
            C("pred_after", STR, nullable=True),
            C("pred_control", STR, nullable=True),
            C("label", STR, nullable=True),
            C("linf", FLOAT, "largest pixel change"),
            C("file_before", STR, "file under `images/`"),
            C("file_after", STR),
            C("file_delta", STR, "the perturbation x10 around grey"),
        ),
        required=False,
    ),
)

KINDS: dict[str, RunKind] = {
    "interaction": RunKind(
        "interaction",
        "written by `Explanation.save` (the interaction engine); read by `modalens.load_run`",
        InteractionManifest,
        INTERACTION_TABLES,
        modalities=lambda m: list(m.modalities),
        files=(
            ("dataset.npz", "the explained instances in the native format (docs/data-formats.md)"),
            ("media/<key>/<row>.<ext>", "face thumbnails, audio clips, named by instance row"),
        ),
    ),
    "features": RunKind(
        "features",
        "written by `FeatureStudy.save` (the feature engine); read by `load_feature_study`",
        FeatureManifest,
        FEATURE_TABLES,
        modalities=lambda m: list(m.dominance.modalities),
        files=(
            ("images/<sample>.png", "images of samples shown as examples, and of the first `max_images` samples"),
            ("images/adv-<i>-before.png, -after.png, -delta.png", "the attacked images (table `adversarial`)"),
            ("extractor/cfg.json, extractor/sae_weights.safetensors", "the trained extractor (SAELens layout)"),
        ),
    ),
}


# ----------------------------------------------------------------------------------------------------- validation
def run_kind(kind: Any, where: str) -> RunKind:
    """The declaration of ``kind``; an unknown kind is a :class:`RunError`."""
    if kind not in KINDS:
        raise RunError(f"{where}: unknown run kind {kind!r}; expected one of {sorted(KINDS)}")
    return KINDS[kind]


def check_version(version: Any, where: str) -> int:
    """``version`` if this modalens reads it, else a :class:`RunError` naming both versions."""
    if isinstance(version, bool) or version not in READABLE_VERSIONS:
        raise RunError(
            f"{where}: run schema version {version!r} is not supported; this modalens (run schema version "
            f"{SCHEMA_VERSION}) reads versions {', '.join(map(str, READABLE_VERSIONS))}"
        )
    return int(version)


def upgrade(manifest: dict[str, Any]) -> dict[str, Any]:
    """A readable older manifest in the current form (version 1: ``projection`` was a bare method name)."""
    out = dict(manifest)
    if out.get("schema_version") == 1 and isinstance(out.get("projection"), str):
        out["projection"] = {"method": out["projection"]}
    return out


def validate_manifest(manifest: dict[str, Any], where: str) -> RunManifest:
    """The manifest as its kind's model; anything missing, unexpected or of a wrong type is a :class:`RunError`."""
    decl = run_kind(manifest.get("kind"), where)
    try:
        return decl.manifest.model_validate(manifest)
    except ValidationError as exc:
        raise RunError(f"{where}: manifest.json does not match the {decl.name} run schema: {_explain(exc)}") from None


def _explain(exc: ValidationError, limit: int = 4) -> str:
    seen: dict[str, str] = {}
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not _is_branch_tag(p))
        if loc in seen:
            continue
        if err["type"] == "missing":
            seen[loc] = f"key {loc!r} is missing"
        elif err["type"] == "extra_forbidden":
            seen[loc] = f"key {loc!r} is not part of the schema"
        else:
            seen[loc] = f"key {loc!r}: {err['msg'].lower()}, found {_short(err.get('input'))}"
    parts = list(seen.values())
    more = f" (and {len(parts) - limit} more)" if len(parts) > limit else ""
    return "; ".join(parts[:limit]) + more


def _is_branch_tag(part: Any) -> bool:
    """pydantic's names for the branches of a union in an error location (``int``, ``literal['predicted']``)."""
    return isinstance(part, str) and ("[" in part or part in ("int", "float", "str", "bool", "none", "dict", "list"))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def expected_columns(table: Table, modalities: Sequence[str]) -> dict[str, Column]:
    """The table's concrete column names (``{modality}`` expanded) -> declaration; ``{*}`` families left out."""
    out: dict[str, Column] = {}
    for col in table.columns:
        if col.family is not None:
            continue
        names = [col.name.replace("{modality}", m) for m in modalities] if col.per_modality else [col.name]
        for name in names:
            out[name] = col
    return out


def check_columns(
    table: Table, schema: pa.Schema, modalities: Sequence[str], where: str, *, rows: int
) -> dict[str, Column]:
    """Check a table's Arrow schema against its declaration; return found column -> declaration.

    Types are compared by family (any integer width, any float width, string or large string, dictionary of
    strings, lists of those): the writer casts to the declared type, and readers accept what earlier writers
    stored. A null-typed column (all values null) fits a nullable column. The columns of an empty table (``rows``
    0) may be of any type: pandas gives empty columns whatever dtype it likes, and they hold no values.
    """
    expected = expected_columns(table, modalities)
    families = [c for c in table.columns if c.family is not None]
    found: dict[str, Column] = {}
    for f in schema:
        col = expected.get(f.name) or next((c for c in families if f.name.startswith(c.family or "")), None)
        if col is None:
            raise RunError(
                f"{where}: table {table.name!r} has an unexpected column {f.name!r} ({f.type}); the schema "
                f"declares {', '.join(c.name for c in table.columns)}"
            )
        if col.type is not None and rows > 0 and not _fits(f.type, col.type, col.nullable):
            raise RunError(
                f"{where}: table {table.name!r} column {f.name!r}: expected {col.type}"
                f"{' (nullable)' if col.nullable else ''}, found {f.type}"
            )
        found[f.name] = col
    for name, col in expected.items():
        if col.required and name not in found:
            raise RunError(f"{where}: table {table.name!r} has no column {name!r} (expected {col.type})")
    return found


def _fits(found: pa.DataType, declared: pa.DataType, null_ok: bool) -> bool:
    if pa.types.is_null(found):
        return null_ok
    return _family(found) == _family(declared) or (
        _family(found) == ("list", "null") and isinstance(_family(declared), tuple)
    )


def _family(t: pa.DataType) -> Any:
    if pa.types.is_dictionary(t):
        return _family(t.value_type)
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t):
        return ("list", _family(t.value_type))
    if pa.types.is_null(t):
        return "null"
    return str(t)


def conform(table: Table, data: pa.Table, modalities: Sequence[str], where: str) -> pa.Table:
    """``data`` checked against the declaration and cast to the declared types (what the writer stores).

    Non-nullable columns holding nulls (NaN counts as null) are a :class:`RunError` naming the column.
    """
    found = check_columns(table, data.schema, modalities, where, rows=data.num_rows)
    fields = []
    for f in data.schema:
        col = found[f.name]
        if not col.nullable and data.column(f.name).null_count:
            raise RunError(
                f"{where}: table {table.name!r} column {f.name!r}: {data.column(f.name).null_count} null/NaN "
                f"values, but the schema declares it non-null ({col.type})"
            )
        fields.append(pa.field(f.name, col.type if col.type is not None else f.type, nullable=True))
    target = pa.schema(fields, metadata=data.schema.metadata)
    if data.num_rows == 0:
        return pa.Table.from_arrays([pa.array([], type=f.type) for f in target], schema=target)
    try:
        return data.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise RunError(f"{where}: table {table.name!r} cannot be stored as declared: {exc}") from None


def empty_table(table: Table, modalities: Sequence[str]) -> pa.Table:
    """A table with no rows and the declared required columns (for writers that build ``pd.DataFrame()``)."""
    cols = {n: c for n, c in expected_columns(table, modalities).items() if c.required}
    return pa.table({n: pa.array([], type=c.type) for n, c in cols.items()})


def check_table_names(decl: RunKind, names: Sequence[str], where: str) -> None:
    """Every table is declared for the kind, required ones are present, and each has what it needs alongside."""
    for name in names:
        if decl.table(name) is None:
            raise RunError(
                f"{where}: table {name!r} is not part of the {decl.name} run schema; its tables are "
                f"{', '.join(t.name for t in decl.tables)}"
            )
    for t in decl.tables:
        if t.required and t.name not in names:
            raise RunError(f"{where}: {decl.name} runs need table {t.name!r}; it is missing")
        if t.name in names:
            for other in t.requires:
                if other not in names:
                    raise RunError(f"{where}: table {t.name!r} needs table {other!r} alongside; it is missing")
