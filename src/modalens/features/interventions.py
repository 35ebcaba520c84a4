"""Interventions through sparse features: group ablation, concept/bias removal, feature attacks, steering.

Edits happen in the extractor's edit space (:meth:`FeatureExtractor.edit`): for sparse autoencoders the codes of an
embedding are edited and the change is decoded back, keeping the reconstruction error (``x' = x + (z' - z) W_dec``),
so an empty edit returns the embedding unchanged; for NCL the non-negative codes are the representation and are edited
directly. Every function returns a long table with the columns ``intervention, group, metric, n_features, before,
after, delta, control`` where ``control`` is the mean ``after`` over random feature sets of the same size (the
answer to "is it these features, or any features?").
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from modalens.features.errors import FeatureError
from modalens.features.mds import CROSS_MODAL, INACTIVE
from modalens.features.sae import FeatureExtractor, check_embeddings

COLUMNS = ["intervention", "group", "metric", "n_features", "before", "after", "delta", "control", "details", "note"]
# a retrieval metric whose best achievable value on the data is below this carries no information (see
# retrieval_ceiling): the row gets a note and the app hides it, saying why
CEILING_NOTE = 0.25


# ------------------------------------------------------------------------------------------------ task metrics
def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def zero_shot_predict(image_emb: np.ndarray, class_emb: np.ndarray) -> np.ndarray:
    """Class index per image: the class prompt embedding with the highest cosine similarity."""
    return (_unit(image_emb) @ _unit(class_emb).T).argmax(axis=1)


def zero_shot_accuracy(image_emb: np.ndarray, class_emb: np.ndarray, labels: np.ndarray) -> float:
    """Share of images whose zero-shot prediction equals ``labels`` (class indices into ``class_emb`` rows)."""
    labels = np.asarray(labels)
    if len(labels) != len(image_emb):
        raise FeatureError(f"labels has {len(labels)} entries for {len(image_emb)} images")
    if labels.min() < 0 or labels.max() >= len(class_emb):
        raise FeatureError(
            f"labels must be class indices in [0, {len(class_emb)}), got range {labels.min()}..{labels.max()}"
        )
    return float((zero_shot_predict(image_emb, class_emb) == labels).mean())


def retrieval_recall(image_emb: np.ndarray, text_emb: np.ndarray, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Recall@k for paired rows: image->text (``i2t@k``) and text->image (``t2i@k``) by cosine similarity.

    The true partner's rank is the number of other candidates scoring at least as high (ties count against the
    partner, so a representation that makes everything equally similar scores 0, not 1); it is retrieved at k if its
    rank is below k.
    """
    sim = _unit(image_emb) @ _unit(text_emb).T
    diag = np.diag(sim)
    tie = 1e-9  # cosine round-off is far below any meaningful difference
    rank_i2t = (sim >= diag[:, None] - tie).sum(axis=1) - 1  # other texts at least as close as the partner
    rank_t2i = (sim >= diag[None, :] - tie).sum(axis=0) - 1
    out = {}
    for k in ks:
        out[f"i2t@{k}"] = float((rank_i2t < k).mean())
        out[f"t2i@{k}"] = float((rank_t2i < k).mean())
    return out


def retrieval_ceiling(image_emb: np.ndarray, text_emb: np.ndarray, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """The best recall@k any model could reach on these pairs, given their exact duplicates.

    Identical rows (the same caption, the same image) get identical scores, and ties count against the partner
    (:func:`retrieval_recall`): an image whose caption is shared by ``k`` or more other pairs can never retrieve its
    own at k. And queries that are identical rank the candidates identically, so of a group of ``m`` identical
    queries at most ``min(k, m)`` find their partner in the top k. The ceiling is the smaller of the two bounds.
    """
    from modalens.features.dashboard import duplicate_groups

    n = len(image_emb)
    gi, gt = duplicate_groups(np.asarray(image_emb)), duplicate_groups(np.asarray(text_emb))
    size_i, size_t = np.bincount(gi)[gi], np.bincount(gt)[gt]  # group size of each row
    out = {}
    for k in ks:
        # i2t: candidates tied with the partner text = size_t - 1; queries: identical images
        tie_bound = float(np.mean(size_t - 1 < k))
        group_bound = float(sum(min(k, m) for m in np.bincount(gi)) / n)
        out[f"i2t@{k}"] = min(tie_bound, group_bound)
        tie_bound = float(np.mean(size_i - 1 < k))
        group_bound = float(sum(min(k, m) for m in np.bincount(gt)) / n)
        out[f"t2i@{k}"] = min(tie_bound, group_bound)
    return out


def mark_uninformative(table: pd.DataFrame, tol: float = 1e-9) -> pd.DataFrame:
    """Give a ``note`` to rows of metrics that carry no information in this run: every row of the metric within
    its intervention has the same before, after and control (nothing the edit does moves it)."""
    if not len(table):
        return table
    table = table.copy()
    if "note" not in table:
        table["note"] = None
    for (_iv, _metric), part in table.groupby(["intervention", "metric"], sort=False):
        values = part[["before", "after", "control"]].to_numpy(dtype=np.float64).ravel()
        values = values[np.isfinite(values)]
        if len(part) > 1 and len(values) and np.ptp(values) <= tol:
            idx = part.index[part["note"].isna()]
            table.loc[idx, "note"] = f"constant at {values[0]:.3g}: no edit moves it, so it tells nothing here"
    return table


def _task_metrics(
    image: np.ndarray,
    text: np.ndarray | None,
    class_emb: np.ndarray | None,
    labels: np.ndarray | None,
    ks: Sequence[int],
) -> dict[str, float]:
    out: dict[str, float] = {}
    if class_emb is not None and labels is not None:
        out["zero_shot_accuracy"] = zero_shot_accuracy(image, class_emb, labels)
    if text is not None:
        out.update(retrieval_recall(image, text, ks))
    return out


def _zero(features: np.ndarray):
    def edit(z: np.ndarray) -> np.ndarray:
        z[:, features] = 0.0
        return z

    return edit


def ablate_features(extractor: FeatureExtractor, emb: np.ndarray, features: Sequence[int]) -> np.ndarray:
    """Embeddings (or NCL codes) with ``features`` set to zero (see module doc for the edit space)."""
    feats = np.asarray(list(features), dtype=np.int64)
    if feats.size and (feats.min() < 0 or feats.max() >= extractor.d_sae):
        raise FeatureError(f"feature indices must be in [0, {extractor.d_sae}), got {feats.min()}..{feats.max()}")
    return extractor.edit(emb, _zero(feats))


def _rows(intervention, group, n, before, after, control, details, notes=None) -> list[dict[str, Any]]:
    notes = notes or {}
    return [
        {
            "intervention": intervention,
            "group": group,
            "metric": m,
            "n_features": int(n),
            "before": float(before[m]),
            "after": float(after[m]),
            "delta": float(after[m] - before[m]),
            "control": float(control[m]) if control and m in control else np.nan,
            "details": json.dumps(details),
            "note": notes.get(m),
        }
        for m in before
    ]


def _group_members(categories: np.ndarray, groups: Sequence[str] | None) -> dict[str, np.ndarray]:
    cats = np.asarray(categories).astype(str)
    names = list(groups) if groups is not None else [c for c in dict.fromkeys(cats) if c != INACTIVE]
    order = sorted(names, key=lambda c: (c == CROSS_MODAL, c))
    return {g: np.flatnonzero(cats == g) for g in order}


# ------------------------------------------------------------------------------------------------ group ablation
def group_ablation(
    extractor: FeatureExtractor,
    image_emb: np.ndarray,
    text_emb: np.ndarray,
    categories: np.ndarray,
    *,
    class_text_emb: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    groups: Sequence[str] | None = None,
    ks: Sequence[int] = (1, 5),
    n_random: int = 3,
    seed: int = 0,
) -> pd.DataFrame:
    """Zero each category's features in all embeddings and measure zero-shot accuracy and retrieval.

    Parameters
    ----------
    extractor
        Trained SAE/NCL.
    image_emb, text_emb
        Paired embeddings ``[N, d]`` (retrieval is measured between row-aligned pairs).
    categories
        ``[d_sae]`` category per feature (from :func:`~modalens.features.mds.analyze_mds`).
    class_text_emb, labels
        Optional class-prompt embeddings ``[C, d]`` and class index per image, for zero-shot accuracy (the prompts
        are edited like every other text embedding).
    groups
        Categories to ablate (default: every category present except inactive).
    ks
        Recall cut-offs.
    n_random
        Random same-size feature sets (drawn from the non-inactive features) averaged into ``control``.
    seed
        Seeds the random controls.
    """
    img = check_embeddings(image_emb, "image_emb", d=extractor.d_in)
    txt = check_embeddings(text_emb, "text_emb", d=extractor.d_in)
    cats = np.asarray(categories).astype(str)
    if len(cats) != extractor.d_sae:
        raise FeatureError(f"categories has {len(cats)} entries, the extractor has {extractor.d_sae} features")
    if (class_text_emb is None) != (labels is None):
        raise FeatureError("pass both class_text_emb and labels for zero-shot accuracy, or neither")
    cls = check_embeddings(class_text_emb, "class_text_emb", d=extractor.d_in) if class_text_emb is not None else None
    rep = extractor.representation
    before = _task_metrics(rep(img), rep(txt), rep(cls) if cls is not None else None, labels, ks)
    live = np.flatnonzero(cats != INACTIVE)
    rng = np.random.default_rng(seed)

    def after_for(feats: np.ndarray) -> dict[str, float]:
        edit = _zero(feats)
        return _task_metrics(
            extractor.edit(img, edit),
            extractor.edit(txt, edit),
            extractor.edit(cls, edit) if cls is not None else None,
            labels,
            ks,
        )

    ceiling = retrieval_ceiling(img, txt, ks)
    notes = {
        m: f"at most {c:.0%} of pairs can be retrieved at {m.split('@')[1]} on these data: repeated captions or "
        "images tie with the partner, so recall is near 0 for any model"
        for m, c in ceiling.items()
        if c < CEILING_NOTE
    }
    rows = []
    for group, feats in _group_members(cats, groups).items():
        after = after_for(feats)
        controls = [after_for(rng.choice(live, size=len(feats), replace=False)) for _ in range(n_random)]
        control = {m: float(np.mean([c[m] for c in controls])) for m in before} if controls and len(feats) else {}
        details = {
            "n_random": n_random,
            "control_values": {m: [round(float(c[m]), 6) for c in controls] for m in before},
            "ceiling": {m: round(ceiling[m], 6) for m in before if m in ceiling},
        }
        rows += _rows("group_ablation", group, len(feats), before, after, control, details, notes)
    return pd.DataFrame(rows, columns=COLUMNS)


# ------------------------------------------------------------------------------------------------ concept removal
def attribute_scores(extractor: FeatureExtractor, emb: np.ndarray, attribute: np.ndarray) -> np.ndarray:
    """How strongly each feature carries a protected attribute given as labels.

    Score = the largest one-vs-rest standardised mean difference of the feature's activation over attribute values,
    ``max_c |mean(z | a = c) - mean(z | a != c)| / std(z)`` (0 for features that never vary).
    """
    z = extractor.encode_numpy(check_embeddings(emb, "emb", d=extractor.d_in)).astype(np.float64)
    attr = np.asarray(attribute)
    if len(attr) != len(z):
        raise FeatureError(f"attribute has {len(attr)} entries for {len(z)} embeddings")
    values = np.unique(attr)
    if len(values) < 2:
        raise FeatureError(f"attribute must take at least 2 values, got {values.tolist()}")
    std = z.std(axis=0)
    best = np.zeros(z.shape[1])
    for v in values:
        mask = attr == v
        diff = np.abs(z[mask].mean(axis=0) - z[~mask].mean(axis=0))
        best = np.maximum(best, np.divide(diff, std, out=np.zeros_like(diff), where=std > 0))
    return best


def prompt_attribute_scores(
    extractor: FeatureExtractor, attribute_prompt_emb: np.ndarray, reference_prompt_emb: np.ndarray | None = None
) -> np.ndarray:
    """Attribute scores from text prompts scored through the text tower.

    ``mean code(attribute prompts) - mean code(reference prompts)`` (reference: none -> 0), e.g. attribute prompts
    ``["a photo of a woman", ...]`` against ``["a photo of a person", ...]``. Larger = carries the attribute.
    """
    pos = extractor.encode_numpy(check_embeddings(attribute_prompt_emb, "attribute_prompt_emb", d=extractor.d_in))
    score = pos.mean(axis=0).astype(np.float64)
    if reference_prompt_emb is not None:
        ref = extractor.encode_numpy(check_embeddings(reference_prompt_emb, "reference_prompt_emb", d=extractor.d_in))
        score = score - ref.mean(axis=0)
    return score


def probe_accuracy(x: np.ndarray, y: np.ndarray, *, cv: int = 5, seed: int = 0) -> float:
    """Cross-validated accuracy of a standardised logistic-regression probe predicting ``y`` from ``x``.

    ``x`` may be a scipy sparse matrix (sparse codes): it is then scaled without centring, which the probe's
    unpenalised intercept absorbs, so the fit is the same and far faster on mostly-zero codes.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    y = np.asarray(y)
    folds = min(cv, int(np.unique(y, return_counts=True)[1].min()))
    if folds < 2:
        raise FeatureError("every attribute value needs at least 2 samples for a cross-validated probe")
    from scipy import sparse

    is_sparse = sparse.issparse(x)
    probe = make_pipeline(StandardScaler(with_mean=not is_sparse), LogisticRegression(max_iter=2000))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    # small probes run faster on one BLAS thread than on several competing ones
    size = x.nnz if is_sparse else np.asarray(x).size
    limit = 1 if size < 500_000 else None
    with threadpool_limits(limits=limit):
        return float(cross_val_score(probe, x, y, cv=splitter).mean())


def concept_removal(
    extractor: FeatureExtractor,
    image_emb: np.ndarray,
    attribute: np.ndarray,
    categories: np.ndarray,
    *,
    scores: np.ndarray | None = None,
    n_features: int = 8,
    class_text_emb: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    groups: Sequence[str] | None = None,
    cv: int = 5,
    n_random: int = 3,
    seed: int = 0,
) -> pd.DataFrame:
    """Remove the features that carry a protected attribute, per category, and measure leakage and task accuracy.

    For each group (``"all"`` features, then each category) the ``n_features`` features of that group with the
    highest attribute score are zeroed in the image embeddings (and the class prompts). Leakage = cross-validated
    logistic-probe accuracy predicting the attribute from the (edited) representation; chance level (majority
    share) is in ``details``.

    Parameters
    ----------
    extractor
        Trained SAE/NCL.
    image_emb
        ``[N, d]`` embeddings whose attribute leaks.
    attribute
        ``[N]`` protected attribute labels.
    categories
        ``[d_sae]`` category per feature.
    scores
        Per-feature attribute scores (default :func:`attribute_scores` on ``image_emb``; pass
        :func:`prompt_attribute_scores` for attributes described by text prompts).
    n_features
        Features removed per group.
    class_text_emb, labels
        Optional zero-shot task (class prompts and class index per image).
    groups
        Categories to try besides ``"all"`` (default: every category present except inactive).
    cv
        Probe folds.
    n_random
        Random same-size feature sets from the same group, averaged into ``control``.
    seed
        Seeds probes and controls.
    """
    img = check_embeddings(image_emb, "image_emb", d=extractor.d_in)
    attr = np.asarray(attribute)
    cats = np.asarray(categories).astype(str)
    if len(cats) != extractor.d_sae:
        raise FeatureError(f"categories has {len(cats)} entries, the extractor has {extractor.d_sae} features")
    if scores is None:
        scores = attribute_scores(extractor, img, attr)
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) != extractor.d_sae:
        raise FeatureError(f"scores has {len(scores)} entries, the extractor has {extractor.d_sae} features")
    if (class_text_emb is None) != (labels is None):
        raise FeatureError("pass both class_text_emb and labels for task accuracy, or neither")
    cls = check_embeddings(class_text_emb, "class_text_emb", d=extractor.d_in) if class_text_emb is not None else None
    rng = np.random.default_rng(seed)

    def measure(feats: np.ndarray) -> dict[str, float]:
        edit = _zero(feats)
        rep = extractor.edit(img, edit)
        probe_x = rep
        if extractor.edit_space == "code" and np.mean(rep > 0) < 0.1:
            from scipy import sparse

            probe_x = sparse.csr_matrix(rep)  # sparse codes: the same probe, fitted on the non-zeros only
        out = {"attribute_leakage": probe_accuracy(probe_x, attr, cv=cv, seed=seed)}
        if cls is not None:
            out["task_accuracy"] = zero_shot_accuracy(rep, extractor.edit(cls, edit), labels)
        return out

    before = measure(np.zeros(0, np.int64))
    chance = float(np.unique(attr, return_counts=True)[1].max() / len(attr))
    members = {"all": np.flatnonzero(cats != INACTIVE), **_group_members(cats, groups)}
    rows = []
    for group, pool in members.items():
        chosen = pool[np.argsort(-scores[pool], kind="stable")[:n_features]]
        after = measure(chosen)
        controls = [measure(rng.choice(pool, size=len(chosen), replace=False)) for _ in range(n_random)]
        control = {m: float(np.mean([c[m] for c in controls])) for m in before} if controls and len(chosen) else {}
        details = {
            "features": chosen.tolist(),
            "chance": chance,
            "scores": scores[chosen].round(6).tolist(),
            "control_values": {m: [round(float(c[m]), 6) for c in controls] for m in before},
        }
        rows += _rows("concept_removal", group, len(chosen), before, after, control, details)
    return pd.DataFrame(rows, columns=COLUMNS)


# ------------------------------------------------------------------------------------------------ adversarial
@dataclass
class AdversarialResult:
    """Outcome of a feature attack on a batch of images."""

    pixels: torch.Tensor  # [B, 3, H, W] perturbed images in [0, 1]
    delta_linf: float  # largest absolute pixel change
    features: list[int]
    direction: str
    activation_before: np.ndarray  # [B, T] target-feature activations
    activation_after: np.ndarray
    pred_before: np.ndarray | None = None  # zero-shot class per image
    pred_after: np.ndarray | None = None
    objective: list[float] = field(default_factory=list)  # per PGD step
    clean: torch.Tensor | None = None  # [B, 3, H, W] the images before the attack, in [0, 1]
    activation_control: np.ndarray | None = None  # [B, T] under random +-eps noise of the same budget
    pred_control: np.ndarray | None = None

    @property
    def flip_rate(self) -> float:
        """Share of images whose zero-shot prediction changed (NaN without class prompts)."""
        if self.pred_before is None:
            return float("nan")
        return float((self.pred_before != self.pred_after).mean())

    def to_frame(self) -> pd.DataFrame:
        """One row per (image, target feature): activation before/after and predictions."""
        b, t = self.activation_before.shape
        frame = pd.DataFrame(
            {
                "image": np.repeat(np.arange(b), t),
                "feature": np.tile(self.features, b),
                "activation_before": self.activation_before.ravel(),
                "activation_after": self.activation_after.ravel(),
            }
        )
        if self.pred_before is not None:
            frame["pred_before"] = np.repeat(self.pred_before, t)
            frame["pred_after"] = np.repeat(self.pred_after, t)
        return frame

    def summary_rows(self) -> pd.DataFrame:
        """Rows in the interventions table format (metrics: mean target activation, zero-shot flip rate)."""
        before = {"mean_target_activation": float(self.activation_before.mean())}
        after = {"mean_target_activation": float(self.activation_after.mean())}
        control = {}
        if self.activation_control is not None:
            control["mean_target_activation"] = float(self.activation_control.mean())
        if self.pred_before is not None:
            before["prediction_changed"], after["prediction_changed"] = 0.0, self.flip_rate
            if self.pred_control is not None:
                control["prediction_changed"] = float((self.pred_before != self.pred_control).mean())
        details = {
            "features": self.features,
            "direction": self.direction,
            "linf": self.delta_linf,
            "control": "uniform random sign noise of the same L-inf budget",
        }
        return pd.DataFrame(
            _rows("adversarial", self.direction, len(self.features), before, after, control, details), columns=COLUMNS
        )


def feature_attack(
    model: Any,
    extractor: FeatureExtractor,
    images: Any,
    features: Sequence[int],
    *,
    direction: str = "raise",
    eps: float = 8 / 255,
    steps: int = 20,
    step_size: float | None = None,
    class_text_emb: np.ndarray | None = None,
    random_start: bool = False,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> AdversarialResult:
    """Cross-modal adversarial images: an L-inf bounded PGD perturbation that raises or lowers chosen features.

    The objective is the sum of the target features' pre-activations (``hidden_pre``) of
    ``model.image_features(pixels + delta)``, so a feature that is off still has a gradient; after each signed
    gradient step ``delta`` is clipped to ``[-eps, eps]`` and ``pixels + delta`` to ``[0, 1]``.

    Parameters
    ----------
    model
        An ``EmbeddingModel`` (``preprocess_images`` and differentiable ``image_features``).
    extractor
        Trained SAE/NCL on that model's embeddings.
    images
        Anything ``model.preprocess_images`` takes, or a ready ``[B, 3, H, W]`` tensor in ``[0, 1]``.
    features
        Target feature indices.
    direction
        ``"raise"`` or ``"lower"``.
    eps
        L-inf budget in pixel units of ``[0, 1]`` images.
    steps, step_size
        PGD iterations and step (default ``2.5 * eps / steps``).
    class_text_emb
        Optional class-prompt embeddings ``[C, d]``: zero-shot predictions before and after are reported.
    random_start
        Start from a uniform random point in the eps-ball (seeded) instead of the clean image.
    device
        Where to run (default: the extractor's device).
    """
    if direction not in ("raise", "lower"):
        raise FeatureError(f"direction must be 'raise' or 'lower', got {direction!r}")
    if eps <= 0 or steps < 1:
        raise FeatureError(f"eps must be > 0 and steps >= 1, got eps={eps}, steps={steps}")
    feats = [int(f) for f in features]
    if not feats or min(feats) < 0 or max(feats) >= extractor.d_sae:
        raise FeatureError(f"features must be non-empty indices in [0, {extractor.d_sae}), got {feats}")
    device = torch.device(device) if device is not None else extractor.W_enc.device
    pixels = images if isinstance(images, torch.Tensor) else model.preprocess_images(images)
    pixels = pixels.detach().float().to(device)
    if pixels.ndim != 4 or pixels.shape[1] != 3:
        raise FeatureError(f"images must become [B, 3, H, W] pixels, got shape {tuple(pixels.shape)}")
    if pixels.min() < 0 or pixels.max() > 1:
        raise FeatureError("pixels must lie in [0, 1]")
    sign = 1.0 if direction == "raise" else -1.0
    step = step_size if step_size is not None else 2.5 * eps / steps
    idx = torch.tensor(feats, device=device)

    def embed(p: torch.Tensor) -> torch.Tensor:
        return model.image_features(p)

    with torch.no_grad():
        emb0 = embed(pixels)
        act0 = extractor.encode(emb0)[:, idx].cpu().numpy()
    gen = torch.Generator(device="cpu").manual_seed(seed)
    delta = torch.zeros_like(pixels)
    if random_start:
        delta = ((torch.rand(pixels.shape, generator=gen) * 2 - 1) * eps).to(device)
        delta = (pixels + delta).clamp(0, 1) - pixels
    history = []
    for _ in range(steps):
        delta.requires_grad_(True)
        objective = sign * extractor.hidden_pre(embed(pixels + delta))[:, idx].sum()
        (grad,) = torch.autograd.grad(objective, delta)
        history.append(float(objective.item()))
        with torch.no_grad():
            delta = (delta + step * grad.sign()).clamp(-eps, eps)
            delta = (pixels + delta).clamp(0, 1) - pixels
    adv = (pixels + delta).detach()
    # control: random signs at the full budget, the strongest perturbation that is not aimed at the features
    noise = (torch.randint(0, 2, pixels.shape, generator=gen).float() * 2 - 1).to(device) * eps
    noisy = (pixels + noise).clamp(0, 1)
    with torch.no_grad():
        emb1 = embed(adv)
        act1 = extractor.encode(emb1)[:, idx].cpu().numpy()
        emb_c = embed(noisy)
        act_c = extractor.encode(emb_c)[:, idx].cpu().numpy()
    pred0 = pred1 = pred_c = None
    if class_text_emb is not None:
        cls = check_embeddings(class_text_emb, "class_text_emb")
        pred0 = zero_shot_predict(emb0.cpu().numpy(), cls)
        pred1 = zero_shot_predict(emb1.cpu().numpy(), cls)
        pred_c = zero_shot_predict(emb_c.cpu().numpy(), cls)
    return AdversarialResult(
        pixels=adv.cpu(),
        delta_linf=float((adv - pixels).abs().max().item()),
        features=feats,
        direction=direction,
        activation_before=act0,
        activation_after=act1,
        pred_before=pred0,
        pred_after=pred1,
        objective=history,
        clean=pixels.detach().cpu(),
        activation_control=act_c,
        pred_control=pred_c,
    )


def adversarial_table(
    result: AdversarialResult,
    class_names: Sequence[str] | None = None,
    labels: np.ndarray | None = None,
    *,
    category: str | None = None,
    amplify: float = 10.0,
) -> tuple[pd.DataFrame, dict[str, bytes]]:
    """The attacked images as a run table and PNG files (``images/adv-<i>-before.png``, ``-after.png`` and
    ``-delta.png``: the perturbation times ``amplify`` around mid-grey).

    Columns: ``image`` (row in the attacked batch = the pair's sample index when the batch is the first pairs),
    ``sample``, ``feature``, ``category``, ``activation_before``, ``activation_after``, ``activation_control``,
    ``pred_before``, ``pred_after``, ``pred_control`` (class names), ``label`` (the true class, or null), ``linf``,
    ``file_before``, ``file_after``, ``file_delta``.
    """
    import io

    from PIL import Image

    def png(t: torch.Tensor) -> bytes:
        arr = (t.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="PNG")
        return buf.getvalue()

    def name(p: np.ndarray | None, i: int) -> str | None:
        if p is None:
            return None
        c = int(p[i])
        return str(class_names[c]) if class_names is not None else str(c)

    rows, files = [], {}
    clean = result.clean if result.clean is not None else result.pixels
    for i in range(len(result.pixels)):
        stem = f"images/adv-{i}"
        files[f"{stem}-before.png"] = png(clean[i])
        files[f"{stem}-after.png"] = png(result.pixels[i])
        files[f"{stem}-delta.png"] = png(0.5 + amplify * (result.pixels[i] - clean[i]))
        control = result.activation_control
        rows.append(
            {
                "image": i,
                "sample": i,
                "feature": int(result.features[0]),
                "category": category,
                "activation_before": float(result.activation_before[i].mean()),
                "activation_after": float(result.activation_after[i].mean()),
                "activation_control": float(control[i].mean()) if control is not None else np.nan,
                "pred_before": name(result.pred_before, i),
                "pred_after": name(result.pred_after, i),
                "pred_control": name(result.pred_control, i),
                "label": name(labels, i) if labels is not None else None,
                "linf": float((result.pixels[i] - clean[i]).abs().max().item()),
                "file_before": f"adv-{i}-before.png",
                "file_after": f"adv-{i}-after.png",
                "file_delta": f"adv-{i}-delta.png",
            }
        )
    return pd.DataFrame(rows), files


# ------------------------------------------------------------------------------------------------ steering
def steer(
    extractor: FeatureExtractor,
    emb: np.ndarray,
    feature: int,
    *,
    alpha: float = 1.0,
    mode: str = "add",
    renormalize: bool = True,
) -> np.ndarray:
    """Steer embeddings along one feature's decoder direction.

    Parameters
    ----------
    extractor
        Trained SAE/NCL (NCL uses its fitted linear decoder).
    emb
        ``[N, d]`` embeddings (e.g. text embeddings of prompts).
    feature
        Feature index ``j``.
    alpha
        ``mode="add"``: ``e + alpha * W_dec[j] / ||W_dec[j]||`` (alpha in units of embedding length);
        ``mode="scale"``: ``e + (alpha - 1) * z_j(e) * W_dec[j]`` (multiply the feature's own contribution).
    renormalize
        Rescale each steered row back to its original norm (CLIP-like embeddings are compared by cosine).

    Returns
    -------
    np.ndarray
        Steered embeddings ``[N, d]`` in the model's embedding space (pass a steered text embedding wherever the
        model's text embedding is consumed, e.g. as the conditioning embedding of a text-to-image decoder).
    """
    e = check_embeddings(emb, "emb", d=extractor.d_in).astype(np.float64)
    if not 0 <= feature < extractor.d_sae:
        raise FeatureError(f"feature must be in [0, {extractor.d_sae}), got {feature}")
    direction = extractor.W_dec.detach().cpu().numpy()[feature].astype(np.float64)
    if mode == "add":
        out = e + alpha * direction / max(np.linalg.norm(direction), 1e-12)
    elif mode == "scale":
        z = extractor.encode_numpy(e.astype(np.float32))[:, feature].astype(np.float64)
        out = e + (alpha - 1.0) * z[:, None] * direction[None, :]
    else:
        raise FeatureError(f"mode must be 'add' or 'scale', got {mode!r}")
    if renormalize:
        out = out * (
            np.linalg.norm(e, axis=1, keepdims=True) / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        )
    return out.astype(np.float32)


def steer_text(model: Any, extractor: FeatureExtractor, prompts: list[str], feature: int, **kw: Any) -> np.ndarray:
    """Encode ``prompts`` with ``model.encode_texts`` and :func:`steer` them; the text-to-image hook."""
    return steer(extractor, model.encode_texts(prompts), feature, **kw)


def steering_retrieval(
    extractor: FeatureExtractor,
    query_emb: np.ndarray,
    gallery_emb: np.ndarray,
    feature: int,
    *,
    alphas: Sequence[float] = (0.0, 0.25, 0.5, 1.0),
    k: int = 10,
    mode: str = "add",
    n_random: int = 0,
    seed: int = 0,
) -> pd.DataFrame:
    """Retrieval from a gallery as the queries are steered towards ``feature``.

    A gallery item *carries* the feature if its activation is above zero. Columns: ``alpha``, ``precision_at_k``
    (share of the top-k retrieved items that carry the feature), ``mean_activation_at_k`` (feature activation of
    the top-k) and ``mean_rank_carriers`` (mean rank, 0 = best, of carriers; lower = carriers come first), averaged
    over queries. With ``n_random`` > 0, ``control_precision_at_k`` and ``control_mean_rank_carriers``: the same
    measures when the queries are pushed by the same amount along random unit directions (seeded) instead of the
    feature's (is it this direction, or any push?).
    """
    gal = check_embeddings(gallery_emb, "gallery_emb", d=extractor.d_in)
    act = extractor.encode_numpy(gal)[:, feature]
    carriers = act > 0
    if not carriers.any():
        raise FeatureError(f"feature {feature} is zero on every gallery item: nothing to steer towards")

    def measure(q: np.ndarray) -> tuple[float, float, float]:
        sim = _unit(q) @ _unit(gal).T
        order = np.argsort(-sim, axis=1, kind="stable")
        ranks = np.argsort(order, axis=1)
        top = order[:, :k]
        return float(carriers[top].mean()), float(act[top].mean()), float(ranks[:, carriers].mean())

    rng = np.random.default_rng(seed)
    base = check_embeddings(query_emb, "query_emb", d=extractor.d_in).astype(np.float64)
    rows = []
    for alpha in alphas:
        q = steer(extractor, query_emb, feature, alpha=alpha, mode=mode) if alpha != 0 else np.asarray(query_emb)
        prec, mean_act, rank = measure(q)
        row = {
            "alpha": float(alpha),
            "precision_at_k": prec,
            "mean_activation_at_k": mean_act,
            "mean_rank_carriers": rank,
        }
        if n_random:
            # the feature's push in embedding space, replayed along random unit directions
            push = np.linalg.norm(np.asarray(q, np.float64) - base, axis=1, keepdims=True) if alpha != 0 else None
            ctrl = []
            for _ in range(n_random):
                if push is None:
                    ctrl.append((prec, rank))
                    continue
                u = rng.normal(size=base.shape[1])
                u /= np.linalg.norm(u)
                qc = base + push * u
                qc *= np.linalg.norm(base, axis=1, keepdims=True) / np.maximum(
                    np.linalg.norm(qc, axis=1, keepdims=True), 1e-12
                )
                p, _, r = measure(qc)
                ctrl.append((p, r))
            row["control_precision_at_k"] = float(np.mean([c[0] for c in ctrl]))
            row["control_mean_rank_carriers"] = float(np.mean([c[1] for c in ctrl]))
        rows.append(row)
    return pd.DataFrame(rows)


def steering_rows(table: pd.DataFrame, feature: int) -> pd.DataFrame:
    """:func:`steering_retrieval` output in the interventions table format (alpha 0 is ``before``)."""
    base = table.iloc[0]
    rows = []
    for _, r in table.iloc[1:].iterrows():
        for m in ("precision_at_k", "mean_rank_carriers"):
            rows.append(
                {
                    "intervention": "steering",
                    "group": f"feature {feature}",
                    "metric": m,
                    "n_features": 1,
                    "before": float(base[m]),
                    "after": float(r[m]),
                    "delta": float(r[m] - base[m]),
                    "control": float(r[f"control_{m}"]) if f"control_{m}" in r else np.nan,
                    "details": json.dumps(
                        {"alpha": float(r["alpha"]), "feature": int(feature), "control": "random unit directions"}
                    ),
                    "note": None,
                }
            )
    return pd.DataFrame(rows, columns=COLUMNS)
