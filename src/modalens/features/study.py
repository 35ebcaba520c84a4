"""The feature study: train an extractor, score modality dominance and interpretability, intervene, save a run.

:func:`run_feature_study` is the one call from paired embeddings to a :class:`FeatureStudy`; ``.save(run_dir)``
writes a ``kind="features"`` run directory (tables documented in docs/features.md) and :func:`load_feature_study`
reads it back.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modalens.features.config import FeatureStudyConfig
from modalens.features.dashboard import (
    activation_histograms,
    class_effects,
    decoder_neighbours,
    duplicate_groups,
    feature_examples,
    feature_labels,
    sparse_codes,
)
from modalens.features.embeddings import EmbeddingError
from modalens.features.errors import FeatureError
from modalens.features.interventions import (
    COLUMNS,
    adversarial_table,
    concept_removal,
    feature_attack,
    group_ablation,
    mark_uninformative,
    steering_retrieval,
    steering_rows,
)
from modalens.features.mds import CROSS_MODAL, INACTIVE, DominanceResult, analyze_dominance
from modalens.features.metrics import compare_methods, emb_sim, monosemanticity, top_activating, top_samples_table
from modalens.features.sae import (
    CFG_FILE,
    WEIGHTS_FILE,
    FeatureExtractor,
    canonical_name,
    check_embeddings,
    check_pairs,
    evaluate_extractor,
    load_extractor,
    train_extractor,
)
from modalens.runs import RunError

MODALITIES = ("image", "text")
EXTRACTOR_DIR = "extractor"
# tables of the feature card and the evidence views, stored when not empty
OPTIONAL_TABLES = (
    "examples",
    "histograms",
    "neighbours",
    "class_effects",
    "codes",
    "replicates",
    "adversarial",
    "instance_features",
)


@dataclass
class FeatureStudy:
    """Everything a feature run holds: extractor identity and metrics, per-feature table, samples, interventions.

    Attributes
    ----------
    extractor_name
        Registry name (``relu``, ``topk``, ``ncl``).
    extractor_config
        The config dataclass as a dict.
    extractor_metrics
        Reconstruction/sparsity metrics (explained variance, L0, dead features; overall and per modality).
    dominance
        MDS summary: mu, sigma, k, thresholds, category proportions and counts, stable share.
    features
        One row per feature (see docs/features.md, table ``features``).
    top_samples
        Long table ``feature, rank, modality, sample, activation, label, text``.
    interventions
        Long table ``intervention, group, metric, n_features, before, after, delta, control, details``.
    comparison, win_rates
        Interpretability of raw dimensions vs extractors, per category (may be empty).
    samples
        Optional ``sample, text, label, image`` (image file name in the run or null).
    images
        PNG bytes by sample index, stored as ``images/<i>.png``.
    extractor
        The trained module (saved under ``extractor/`` in SAELens layout).
    examples, histograms, neighbours, class_effects
        The feature card's tables (:mod:`modalens.features.dashboard`): examples at three activation levels with
        duplicates collapsed, activation histograms per modality, decoder-cosine neighbours, zero-shot class effects.
    codes
        Every sample's non-zero codes (the app's query, :mod:`modalens.features.compare`).
    replicates
        MDS per feature in the kept bootstrap and modality-swap null replicates (the app recomputes categories).
    adversarial, files
        The attacked images' table and their PNG files (``images/adv-<i>-before.png`` ...).
    """

    extractor_name: str
    extractor_config: dict[str, Any]
    extractor_metrics: dict[str, Any]
    dominance: dict[str, Any]
    features: pd.DataFrame
    top_samples: pd.DataFrame
    interventions: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=COLUMNS))
    comparison: pd.DataFrame = field(default_factory=pd.DataFrame)
    win_rates: pd.DataFrame = field(default_factory=pd.DataFrame)
    samples: pd.DataFrame | None = None
    images: dict[int, bytes] = field(default_factory=dict)
    extractor: FeatureExtractor | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    # the feature card and the evidence views (docs/features.md); empty frames are not stored
    examples: pd.DataFrame = field(default_factory=pd.DataFrame)
    histograms: pd.DataFrame = field(default_factory=pd.DataFrame)
    neighbours: pd.DataFrame = field(default_factory=pd.DataFrame)
    class_effects: pd.DataFrame = field(default_factory=pd.DataFrame)
    codes: pd.DataFrame = field(default_factory=pd.DataFrame)
    replicates: pd.DataFrame = field(default_factory=pd.DataFrame)
    adversarial: pd.DataFrame = field(default_factory=pd.DataFrame)
    # a study of a predictor's hidden layer (modalens.features.model_study): each instance's top attributed features
    instance_features: pd.DataFrame = field(default_factory=pd.DataFrame)
    files: dict[str, bytes] = field(default_factory=dict)  # other files of the run (adversarial images)

    @property
    def proportions(self) -> dict[str, float]:
        """Share of (non-inactive) features per category."""
        return dict(self.dominance.get("proportions", {}))

    def feature(self, j: int) -> dict[str, Any]:
        """One feature's row plus its top samples, as a dict (the data of a feature card)."""
        row = self.features.loc[self.features.feature == j]
        if row.empty:
            raise KeyError(f"no feature {j}; features are 0..{len(self.features) - 1}")
        out = row.iloc[0].to_dict()
        out["top"] = self.top_samples[self.top_samples.feature == j].to_dict("records")
        return out

    def extractor_and_categories(self) -> tuple[FeatureExtractor, np.ndarray]:
        """The extractor and each feature's category (by feature index), for interventions on a saved run."""
        if self.extractor is None:
            raise RunError("this feature run stores no extractor weights (extractor/ is missing)")
        return self.extractor, self.features.sort_values("feature")["category"].to_numpy()

    def save(self, run_dir: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the study as a ``kind="features"`` run directory (atomically, via :func:`modalens.runs.write_run`).

        The target is checked (:func:`modalens.runs.check_target`) before the extractor's files are built.
        """
        from modalens.runs import check_target, write_run

        check_target(run_dir, overwrite=overwrite)
        tables = {
            "features": self.features,
            "top_samples": self.top_samples,
            "interventions": self.interventions if self.interventions is not None else pd.DataFrame(columns=COLUMNS),
        }
        if self.comparison is not None and len(self.comparison):
            tables["comparison"] = self.comparison
        if self.win_rates is not None and len(self.win_rates):
            tables["win_rates"] = self.win_rates
        if self.samples is not None:
            tables["samples"] = self.samples
        for name in OPTIONAL_TABLES:
            frame = getattr(self, name)
            if frame is not None and len(frame):
                tables[name] = frame
        files = {f"images/{i}.png": data for i, data in self.images.items()}
        files.update(self.files)
        if self.extractor is not None:
            with tempfile.TemporaryDirectory() as tmp:
                self.extractor.save(tmp)
                for name in (CFG_FILE, WEIGHTS_FILE):
                    files[f"{EXTRACTOR_DIR}/{name}"] = (Path(tmp) / name).read_bytes()
        manifest = {
            "model": self.model,
            "extractor": {
                "name": self.extractor_name,
                "config": self.extractor_config,
                "metrics": self.extractor_metrics,
                "history": self.history,
                "files": f"{EXTRACTOR_DIR}/" if self.extractor is not None else None,
            },
            "dominance": self.dominance,
            "config": self.config,
            "timings": self.timings,
            "images": {"dir": "images", "count": len(self.images), "mime": "image/png"},
        }
        return write_run(run_dir, kind="features", manifest=manifest, tables=tables, files=files, overwrite=overwrite)


def load_feature_study(run_dir: str | os.PathLike, *, load_weights: bool = True) -> FeatureStudy:
    """Read a feature run directory back into a :class:`FeatureStudy` (with the extractor when stored), through
    :func:`modalens.runs.read_run`."""
    from modalens.runs import RunError, read_run

    run = read_run(run_dir)
    if run.kind != "features":
        raise RunError(
            f"{run.path} is an {run.kind!r} run, not a feature run; the feature commands read runs written by "
            "modalens features demo or modalens features study"
        )
    man = run.manifest
    ext = man.extractor
    images: dict[int, bytes] = {}
    image_dir = run.path / man.images.dir
    files: dict[str, bytes] = {}
    if image_dir.is_dir():
        for f in image_dir.glob("*.png"):
            if f.stem.isdigit():
                images[int(f.stem)] = f.read_bytes()
            else:
                files[f"{man.images.dir}/{f.name}"] = f.read_bytes()
    extractor = None
    if load_weights and (run.path / EXTRACTOR_DIR / CFG_FILE).is_file():
        extractor = load_extractor(run.path / EXTRACTOR_DIR)
    return FeatureStudy(
        extractor_name=ext.name,
        extractor_config=ext.config,
        extractor_metrics=ext.metrics,
        dominance=man.dominance.model_dump(mode="json", exclude_unset=True),
        features=run.table("features"),
        top_samples=run.table("top_samples"),
        interventions=run.table("interventions"),
        comparison=run.table("comparison") if run.has_table("comparison") else pd.DataFrame(),
        win_rates=run.table("win_rates") if run.has_table("win_rates") else pd.DataFrame(),
        samples=run.optional_table("samples"),
        images=images,
        extractor=extractor,
        history=ext.history,
        config=man.config,
        timings=man.timings,
        model=man.model.model_dump(mode="json", exclude_unset=True),
        files=files,
        **{name: run.table(name) if run.has_table(name) else pd.DataFrame() for name in OPTIONAL_TABLES},
    )


# ----------------------------------------------------------------------------------------------------------- images
def encode_png(image: Any, where: str = "image") -> bytes:
    """PNG bytes of an image: PNG bytes (kept), a PIL image, a uint8 array ``HxW[xC]``, or a float array in
    ``[0, 1]`` shaped ``HxWxC`` or ``CxHxW`` (C = 1, 3 or 4)."""
    from PIL import Image

    if isinstance(image, bytes | bytearray):
        if not bytes(image[:8]) == b"\x89PNG\r\n\x1a\n":
            raise FeatureError(f"{where}: bytes given but they are not a PNG file")
        return bytes(image)
    if isinstance(image, Image.Image):
        pil = image
    else:
        arr = np.asarray(image.detach().cpu() if hasattr(image, "detach") else image)
        if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
            arr = arr.transpose(1, 2, 0)  # CHW -> HWC
        if arr.ndim == 3 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)):
            raise FeatureError(f"{where}: expected HxW, HxWx3/4 or 3xHxW, got shape {arr.shape}")
        if arr.dtype != np.uint8:
            if not np.issubdtype(arr.dtype, np.floating) or arr.min() < 0 or arr.max() > 1:
                raise FeatureError(f"{where}: non-uint8 images must be floats in [0, 1] (dtype {arr.dtype})")
            arr = np.round(arr * 255).astype(np.uint8)
        pil = Image.fromarray(arr)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------------------- study
def _feature_table(
    dom: DominanceResult,
    acts: dict[str, np.ndarray],
    top: dict[str, tuple[np.ndarray, np.ndarray]],
    refs: dict[str, np.ndarray],
) -> pd.DataFrame:
    frame = dom.to_frame()
    for m, a in acts.items():
        frame[f"mean_activation_{m}"] = a.mean(axis=0).astype(np.float64)
        frame[f"frequency_{m}"] = (a > 0).mean(axis=0).astype(np.float64)
    frame["frequency"] = np.mean([(a > 0).mean(axis=0) for a in acts.values()], axis=0)
    sims, monos = [], []
    for m in acts:
        idx, val = top[m]
        s = emb_sim(idx, refs[m])
        mono = monosemanticity(idx, val, refs[m])
        frame[f"embsim_{m}"], frame[f"monosemanticity_{m}"] = s, mono
        sims.append(s)
        monos.append(mono)
    weights = _modality_weights(acts)
    frame["embsim"] = _weighted_nanmean(np.stack(sims), weights)
    frame["monosemanticity"] = _weighted_nanmean(np.stack(monos), weights)
    for m in acts:
        idx = top[m][0]
        frame[f"top_{m}"] = [row[row >= 0].astype(np.int64).tolist() for row in idx]
    return frame


def _modality_weights(acts: dict[str, np.ndarray]) -> np.ndarray:
    """``[K, F]`` share of each feature's total activation mass that falls in each modality."""
    mass = np.stack([np.maximum(a, 0).sum(axis=0) for a in acts.values()]).astype(np.float64)
    total = mass.sum(axis=0, keepdims=True)
    return np.divide(mass, total, out=np.zeros_like(mass), where=total > 0)


def _weighted_nanmean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per-feature mean of ``values [K, F]`` weighted by ``weights [K, F]``, skipping NaN entries (NaN if none)."""
    ok = np.isfinite(values) & (weights > 0)
    w = np.where(ok, weights, 0.0)
    total = w.sum(axis=0)
    num = np.where(ok, values, 0.0) * w
    return np.divide(num.sum(axis=0), total, out=np.full(values.shape[1], np.nan), where=total > 0)


def _method_embsim(
    acts: dict[str, np.ndarray], refs: dict[str, np.ndarray], top_k: int
) -> tuple[np.ndarray, dict[str, tuple]]:
    top = {m: top_activating(a, top_k) for m, a in acts.items()}
    score = _weighted_nanmean(np.stack([emb_sim(top[m][0], refs[m]) for m in acts]), _modality_weights(acts))
    return score, top


def run_feature_study(
    image_emb: np.ndarray,
    text_emb: np.ndarray,
    config: FeatureStudyConfig | None = None,
    *,
    reference_image_emb: np.ndarray | None = None,
    reference_text_emb: np.ndarray | None = None,
    texts: Sequence[str] | None = None,
    labels: Sequence[Any] | None = None,
    images: Sequence[Any] | None = None,
    class_text_emb: np.ndarray | None = None,
    class_labels: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    attribute: np.ndarray | None = None,
    model: Any | None = None,
    model_info: dict[str, Any] | None = None,
    **options: Any,
) -> FeatureStudy:
    """Train a feature extractor on paired embeddings and analyse it end to end.

    Parameters
    ----------
    image_emb, text_emb
        Paired embeddings ``[N, d]`` (row n of each is a pair).
    config
        The settings, a :class:`~modalens.features.config.FeatureStudyConfig`: extractor (``"topk"``, ``"relu"``
        (alias ``"sae"``), ``"ncl"`` or any registered name), ``d_sae``, ``extractor_options``, device, MDS width
        ``k``, bootstrap, top samples, comparisons, attacks, steering, controls, seed, progress.
    reference_image_emb, reference_text_emb
        Embeddings of the same samples by an *independent* encoder, for EmbSim/monosemanticity; when absent the
        analysed embeddings are used and the manifest says ``embsim_reference: "self"``.
    texts, labels, images
        Optional per-pair caption, label and image (PIL, uint8 array, float array in [0, 1], or PNG bytes); images
        of samples shown as top samples are stored in the run.
    class_text_emb, class_labels
        Optional zero-shot task: class-prompt embeddings ``[C, d]`` and a class index per pair.
    class_names
        Optional name of each class prompt (the feature card lists the classes a feature pushes; default
        ``class 0``, ``class 1`` ...).
    attribute
        Optional protected attribute per pair: runs concept removal on the image embeddings.
    model
        Optional ``EmbeddingModel``: with ``images``, ``config.attack_images`` of them are attacked (a PGD
        perturbation, eps 8/255, that raises the most frequent language-dominant feature through the image tower).
    model_info
        Model identity for the manifest (default from ``model.name``/``model.dim``).
    **options
        Any field of :class:`FeatureStudyConfig` by name, overriding ``config``. ``extractor`` may also be an
        already trained :class:`FeatureExtractor` (then no training happens).
    """
    trained = options.pop("extractor") if isinstance(options.get("extractor"), FeatureExtractor) else None
    config = (config or FeatureStudyConfig()).updated(**options)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    img, txt = check_pairs(image_emb, text_emb)
    n, d = img.shape
    per_pair = {"texts": texts, "labels": labels, "images": images, "attribute": attribute}
    refs = _checked_inputs(n, per_pair, reference_image_emb, reference_text_emb, img, txt)

    ext, metrics, history = _extractor(config, img, txt, trained)
    timings["train"] = time.perf_counter() - t0

    t = time.perf_counter()
    acts = {"image": ext.encode_numpy(img), "text": ext.encode_numpy(txt)}
    dom = analyze_dominance(
        acts, k=config.k, n_boot=config.n_boot, ci=config.ci, seed=config.seed, n_null=config.n_null
    )
    timings["mds"] = time.perf_counter() - t

    t = time.perf_counter()
    top = {m: top_activating(a, config.top_k) for m, a in acts.items()}
    features = _feature_table(dom, acts, top, refs)
    top_table = top_samples_table(acts, config.top_k, texts=texts, labels=labels)
    card = _card_tables(ext, acts, dom, features, img, txt, texts, class_text_emb, class_names, config)
    if texts is not None:
        labels_frame = feature_labels(acts["image"] + acts["text"], list(texts))
        for col in ("label", "label_score", "label_coverage", "label_precision"):
            features[col] = labels_frame[col].to_numpy()
    comparison, win_rates = _compare(ext, features, img, txt, refs, config)
    timings["interpretability"] = time.perf_counter() - t

    t = time.perf_counter()
    zero_shot = {"class_text_emb": class_text_emb, "labels": class_labels}
    zero_shot["class_names"] = _class_names(class_text_emb, class_names)
    interventions, adversarial, adv_files = _interventions(
        ext, features, dom, img, txt, zero_shot, attribute, model, images, config
    )
    timings["interventions"] = time.perf_counter() - t

    shown = set(top_table["sample"].astype(int)) | set(card["examples"]["sample"].astype(int))
    if images is not None:
        shown |= set(range(min(n, config.max_images)))  # pickable in the app's query
    samples, stored = _samples(n, texts, labels, images, shown)
    timings["total"] = time.perf_counter() - t0
    info = dict(model_info or {})
    if model is not None:
        info.setdefault("name", getattr(model, "name", type(model).__name__))
        info.setdefault("dim", getattr(model, "dim", d))
    info.setdefault("dim", d)
    record = {
        "n_pairs": n,
        "d": d,
        **{name: value for name, value in config.to_dict().items() if name not in _NOT_RECORDED},
        "embsim_reference": {
            "image": "independent" if reference_image_emb is not None else "self",
            "text": "independent" if reference_text_emb is not None else "self",
        },
        "zero_shot": class_text_emb is not None,
        "attribute": attribute is not None,
    }
    return FeatureStudy(
        extractor_name=ext.architecture,
        extractor_config=ext.cfg.to_dict(),
        extractor_metrics=metrics,
        dominance=dom.summary(),
        features=features,
        top_samples=top_table,
        interventions=interventions,
        comparison=comparison,
        win_rates=win_rates,
        samples=samples,
        images=stored,
        extractor=ext,
        history=history,
        config=record,
        timings=timings,
        model=info,
        adversarial=adversarial,
        files=adv_files,
        **card,
    )


# settings the manifest does not record: the extractor's own config is recorded beside it, the rest is how to run
_NOT_RECORDED = ("extractor", "d_sae", "extractor_options", "device", "progress", "attack_images", "steer_features")


def _checked_inputs(
    n: int,
    per_pair: dict[str, Sequence[Any] | None],
    reference_image_emb: np.ndarray | None,
    reference_text_emb: np.ndarray | None,
    img: np.ndarray,
    txt: np.ndarray,
) -> dict[str, np.ndarray]:
    """Check per-pair inputs against the ``n`` pairs; the EmbSim reference embeddings (the analysed ones by default)."""
    for name, seq in per_pair.items():
        if seq is not None and len(seq) != n:
            raise EmbeddingError(f"{name} has {len(seq)} entries for {n} pairs")
    refs = {
        "image": img if reference_image_emb is None else check_embeddings(reference_image_emb, "reference_image_emb"),
        "text": txt if reference_text_emb is None else check_embeddings(reference_text_emb, "reference_text_emb"),
    }
    for m, r in refs.items():
        if len(r) != n:
            raise EmbeddingError(f"reference_{m}_emb has {len(r)} rows for {n} pairs")
    return refs


def _extractor(
    config: FeatureStudyConfig, img: np.ndarray, txt: np.ndarray, trained: FeatureExtractor | None
) -> tuple[FeatureExtractor, dict[str, Any], list[dict[str, float]]]:
    """The trained extractor given, evaluated; or one trained as the config says."""
    if trained is not None:
        ext = trained.to(config.device).eval()
        return ext, evaluate_extractor(ext, img, txt), []
    result = train_extractor(
        canonical_name(config.extractor),
        img,
        txt,
        d_sae=config.d_sae,
        device=config.device,
        progress=config.progress,
        **{"seed": config.seed, **config.extractor_options},
    )
    return result.extractor, result.metrics, result.history


def _interventions(
    ext, features, dom, img, txt, zero_shot, attribute, model, images, config
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, bytes]]:
    """Group ablation, concept removal (with an attribute), steering and the attack (with a model and images);
    the attacked images' table and files."""
    controls = {"n_random": config.n_random, "seed": config.seed}
    task = {"class_text_emb": zero_shot["class_text_emb"], "labels": zero_shot["labels"]}
    parts = [group_ablation(ext, img, txt, dom.categories, **task, **controls)]
    if attribute is not None:
        parts.append(concept_removal(ext, img, np.asarray(attribute), dom.categories, **task, **controls))
    parts += _steering(ext, features, img, txt, config.steer_features, config.n_random, config.seed)
    adversarial, files = pd.DataFrame(), {}
    if model is not None and images is not None and config.attack_images > 0:
        rows, adversarial, files = _attack(
            model, ext, features, images, config.attack_images, zero_shot, config.seed, config.device
        )
        parts.append(rows)
    parts = [p for p in parts if len(p)]
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)
    return mark_uninformative(table), adversarial, files


def _class_names(class_text_emb: np.ndarray | None, class_names: Sequence[str] | None) -> list[str] | None:
    if class_text_emb is None:
        return None
    if class_names is None:
        return [f"class {c}" for c in range(len(class_text_emb))]
    if len(class_names) != len(class_text_emb):
        raise EmbeddingError(f"class_names has {len(class_names)} entries for {len(class_text_emb)} class prompts")
    return [str(c) for c in class_names]


def _card_tables(ext, acts, dom, features, img, txt, texts, class_text_emb, class_names, config) -> dict[str, Any]:
    """The feature card's tables: examples by level, histograms, decoder neighbours, class effects, codes and the
    MDS replicates (bootstrap and null) the app recomputes categories from."""
    live = dom.categories != INACTIVE
    groups = {"image": duplicate_groups(img), "text": duplicate_groups(list(texts) if texts is not None else txt)}
    out: dict[str, Any] = {
        "examples": feature_examples(acts, groups, top=10, per_level=config.examples_per_level, seed=config.seed),
        "histograms": activation_histograms(acts),
        "neighbours": decoder_neighbours(ext.W_dec.detach().cpu().numpy(), n=5, live=live),
        "codes": sparse_codes(acts) if config.store_codes else pd.DataFrame(),
        "replicates": _replicates(dom),
    }
    if class_text_emb is not None:
        names = _class_names(class_text_emb, class_names)
        cls = check_embeddings(class_text_emb, "class_text_emb", d=ext.d_in)
        if ext.edit_space == "code":
            codes = ext.encode_numpy(cls).astype(np.float64)
            direction = np.eye(ext.d_sae)
            class_dirs = codes / np.maximum(np.linalg.norm(codes, axis=1, keepdims=True), 1e-12)
        else:
            direction = ext.W_dec.detach().cpu().numpy()
            class_dirs = cls / np.maximum(np.linalg.norm(cls, axis=1, keepdims=True), 1e-12)
        out["class_effects"] = class_effects(direction, class_dirs, names, n=3, live=live)
    return out


def _replicates(dom: DominanceResult) -> pd.DataFrame:
    """The kept bootstrap and null replicates' MDS per feature (first modality), one row per replicate."""
    rows = []
    for kind, reps in (("bootstrap", dom.boot_scores), ("null", dom.null_scores)):
        if reps is None:
            continue
        for r, scores in enumerate(reps):
            rows.append({"kind": kind, "replicate": r, "mds": scores[:, 0].astype(np.float64).tolist()})
    return pd.DataFrame(rows, columns=["kind", "replicate", "mds"])


def _compare(ext, features, img, txt, refs, config: FeatureStudyConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """EmbSim of the study's extractor against raw dimensions and other extractors, overall and per category."""
    top_k, compare_with = config.top_k, config.compare_with
    if not compare_with:
        return pd.DataFrame(), pd.DataFrame()
    scores = {ext.architecture: features["embsim"].to_numpy()}
    cats = {ext.architecture: features["category"].to_numpy()}
    for method in compare_with:
        method = canonical_name(method)
        if method == ext.architecture:
            continue
        if method == "raw":
            # raw dimensions: top samples by value; dominance on the positive part (MDS needs z >= 0)
            acts = {"image": np.maximum(img, 0), "text": np.maximum(txt, 0)}
            score, _ = _method_embsim({"image": img, "text": txt}, refs, top_k)
        else:
            d_sae = config.d_sae or 4 * img.shape[1]
            trained = train_extractor(
                method, img, txt, d_sae=d_sae, device=config.device, seed=config.seed, progress=config.progress
            )
            other = trained.extractor
            acts = {"image": other.encode_numpy(img), "text": other.encode_numpy(txt)}
            score, _ = _method_embsim(acts, refs, top_k)
        dom = analyze_dominance(acts, k=config.k, n_boot=0)
        scores[method], cats[method] = score, dom.categories
    return compare_methods(scores, cats, metric="embsim")


def _steering(ext, features, img, txt, n_features, n_random=3, seed=0) -> list[pd.DataFrame]:
    """Steer text queries towards the most frequent image-active feature of each category; measure image retrieval."""
    out = []
    chosen = []
    for cat in [c for c in dict.fromkeys(features["category"]) if c != INACTIVE]:
        rows = features[(features.category == cat) & (features.frequency_image > 0)]
        if len(rows) and len(chosen) < n_features:
            chosen.append(int(rows.sort_values("frequency", ascending=False, kind="stable").feature.iloc[0]))
    queries = txt[: min(len(txt), 200)]
    for j in chosen:
        table = steering_retrieval(ext, queries, img, j, alphas=(0.0, 0.5, 1.0), k=10, n_random=n_random, seed=seed)
        out.append(steering_rows(table, j))
    return out


def _attack(model, ext, features, images, n_images, zero_shot, seed, device):
    """Cross-modal adversarial: raise the most frequent language-dominant (else cross-modal) feature from pixels.

    Returns the interventions rows, the per-image table (activation and prediction before, after and under the
    random-noise control) and the images (before, after, and the perturbation amplified) as run files."""
    for cat in ("language", CROSS_MODAL):
        rows = features[features.category == cat]
        if len(rows):
            j = int(rows.sort_values("frequency", ascending=False, kind="stable").feature.iloc[0])
            break
    else:
        return pd.DataFrame(columns=COLUMNS), pd.DataFrame(), {}
    batch = list(images[:n_images])
    res = feature_attack(model, ext, batch, [j], class_text_emb=zero_shot["class_text_emb"], seed=seed, device=device)
    rows = res.summary_rows()
    rows["group"] = f"raise feature {j} ({cat})"
    names = zero_shot.get("class_names")
    labels = zero_shot.get("labels")
    table, files = adversarial_table(res, names, labels, category=cat)
    return rows, table, files


def _samples(n, texts, labels, images, shown: set[int]) -> tuple[pd.DataFrame | None, dict[int, bytes]]:
    if texts is None and labels is None and images is None:
        return None, {}
    stored: dict[int, bytes] = {}
    if images is not None:
        for i in sorted(shown):
            stored[i] = encode_png(images[i], where=f"images[{i}]")
    frame = pd.DataFrame({"sample": np.arange(n, dtype=np.int64)})
    frame["text"] = [str(t) for t in texts] if texts is not None else None
    frame["label"] = [str(x) for x in labels] if labels is not None else None
    frame["image"] = [f"images/{i}.png" if i in stored else None for i in range(n)]
    return frame, stored
