"""The feature study on a predictor's hidden activations: K-modality dominance and per-instance feature attribution.

Inputs are arrays (the activation capture lives in :mod:`modalens.models.activations`; the command line joins the
two): ``full [N, d]``, the layer's activation on the instances as they are, and ``present[m] [N, d]``, its activation
when only modality ``m`` is real and every other modality is at the Masker's baseline.

* A sparse autoencoder is trained on the union of ``full`` and every ``present[m]`` (so its codes describe the
  activations of both kinds).
* ``z_j(n, m)`` = code ``j`` of ``present[m][n]``; the dominance of ``m`` in feature ``j`` is the same MDS as for
  image-text pairs (:func:`modalens.features.mds.analyze_dominance`): ``D_jm = mean over instances where j fires in
  some single-modality input of z_j(n, m) / (sum_m' z_j(n, m') + eps)``; categories: ``m``-dominant when
  ``D_jm > mu_m + k sigma_m``, else cross-modal. With two modalities this is exactly the image/text MDS rule.
* Attribution of instance ``n``'s prediction to the features (gradient x code through the decoder): with ``z`` the
  codes of ``full[n]``, the layer's activation is rewritten ``h(z') = full[n] + (z' - z) W_dec`` (the reconstruction
  error kept, so ``h(z) = full[n]``) and fed through the rest of the model (``head``); ``a_j = z_j * d out / d z'_j``
  at ``z' = z``. For a head linear in the layer, ``out = w . h + b``, this is exactly ``a_j = z_j (W_dec[j] . w)``:
  the output moves by ``a_j`` when feature ``j`` is ablated from the activation. For a non-linear head it is the
  first-order (gradient x input) estimate of that ablation. Classification: the output is the predicted class's
  logit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch

from modalens.features.config import FeatureStudyConfig
from modalens.features.dashboard import (
    activation_histograms,
    decoder_neighbours,
    duplicate_groups,
    feature_examples,
    sparse_codes,
)
from modalens.features.errors import FeatureError
from modalens.features.mds import INACTIVE, analyze_dominance
from modalens.features.metrics import top_activating, top_samples_table
from modalens.features.sae import FeatureExtractor, check_embeddings, reconstruction_metrics, train_extractor
from modalens.features.study import FeatureStudy, _feature_table, _replicates

ATTRIBUTION_METHOD = "gradient x code through the decoder (reconstruction error kept)"


def feature_attributions(
    extractor: FeatureExtractor,
    full: np.ndarray,
    head: Callable[..., torch.Tensor],
    *,
    output: int | None = None,
    batch_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Codes ``z [N, F]``, attributions ``a [N, F]`` (``z * d out / d z`` through the decoder) and the output ``[N]``.

    ``head(h) -> out`` is the rest of the model on the same N instances with the layer's activation replaced by
    ``h``; ``out`` is ``[N]`` or ``[N, C]`` (then the column ``output``, default each instance's largest). With
    ``batch_size`` the instances go in batches and ``head`` is called as ``head(h_batch, rows)`` with the batch's
    positions (as :func:`modalens.models.activations.layer_head` accepts).
    """
    x = check_embeddings(full, "full", d=extractor.d_in)
    n = len(x)
    step = n if batch_size is None else max(1, int(batch_size))
    parts = []
    for start in range(0, max(n, 1), step):
        rows = np.arange(start, min(n, start + step))
        parts.append(_attribute(extractor, x[rows], head, rows if batch_size is not None else None, output))
    z, attr, out = (np.concatenate([p[i] for p in parts]) for i in range(3))
    return z, attr, out


def _attribute(extractor, x, head, rows, output):
    device = extractor.W_dec.device
    h = torch.from_numpy(x).to(device)
    with torch.no_grad():
        z = extractor.encode(h)
    z_var = z.clone().requires_grad_(True)
    h_new = h + (z_var - z) @ extractor.W_dec
    out = head(h_new) if rows is None else head(h_new, rows)
    if out.ndim == 2 and out.shape[1] == 1:
        out = out[:, 0]
    if out.ndim == 2:
        col = out.detach().argmax(dim=1) if output is None else torch.full((len(out),), int(output), device=out.device)
        out = out.gather(1, col[:, None].to(out.device))[:, 0]
    if out.ndim != 1 or len(out) != len(x):
        raise FeatureError(f"head must return [N] or [N, C] for N = {len(x)} instances, got {tuple(out.shape)}")
    (grad,) = torch.autograd.grad(out.sum(), z_var)
    attr = (z * grad).detach().cpu().numpy().astype(np.float64)
    return z.detach().cpu().numpy(), attr, out.detach().cpu().numpy().astype(np.float64)


def instance_feature_table(
    instances: np.ndarray,
    codes: np.ndarray,
    attributions: np.ndarray,
    outputs: np.ndarray,
    categories: np.ndarray,
    n_top: int = 5,
    ids: np.ndarray | None = None,
) -> pd.DataFrame:
    """Per instance, its ``n_top`` features of largest ``|attribution|`` (rank 0 first): ``instance, rank, feature,
    code, attribution, category, output, total, id`` (``total`` = the sum of all its features' attributions, ``id``
    the dataset's instance id)."""
    ids = np.asarray(instances).astype(str) if ids is None else np.asarray(ids).astype(str)
    rows = []
    for i, inst in enumerate(np.asarray(instances)):
        a = attributions[i]
        order = [j for j in np.argsort(-np.abs(a), kind="stable")[:n_top] if codes[i, j] > 0]
        for rank, j in enumerate(order):
            rows.append(
                {
                    "instance": int(inst),
                    "rank": rank,
                    "feature": int(j),
                    "code": float(codes[i, j]),
                    "attribution": float(a[j]),
                    "category": str(categories[j]),
                    "output": float(outputs[i]),
                    "total": float(a.sum()),
                    "id": str(ids[i]),
                }
            )
    cols = ["instance", "rank", "feature", "code", "attribution", "category", "output", "total", "id"]
    return pd.DataFrame(rows, columns=cols)


def run_model_feature_study(
    full: np.ndarray,
    present: Mapping[str, np.ndarray],
    config: FeatureStudyConfig | None = None,
    *,
    head: Callable[..., torch.Tensor] | None = None,
    head_batch: int | None = None,
    instances: np.ndarray | None = None,
    ids: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    n_top: int = 5,
    model_info: Mapping[str, Any] | None = None,
    **options: Any,
) -> FeatureStudy:
    """Train an SAE on a layer's activations and score K-modality dominance and per-instance attributions.

    Parameters
    ----------
    full
        The layer's activation ``[N, d]`` on the instances as they are.
    present
        Modality -> the layer's activation ``[N, d]`` with only that modality real (K >= 2 modalities).
    config, **options
        A :class:`FeatureStudyConfig` (extractor, d_sae, extractor_options, device, k, n_boot, ci, top_k, n_null,
        seed, store_codes are used).
    head
        The rest of the model as a function of the layer's activation on the N instances
        (:func:`modalens.models.activations.layer_head`): enables the attribution table ``instance_features``.
    head_batch
        Instances per call of ``head`` (``head(h, rows)``); default all at once (``head(h)``).
    instances
        The dataset row of each of the N instances (default ``0..N-1``).
    ids
        The dataset's id of each instance (default the row as a string): the key shared with an interaction run.
    labels
        Optional label per instance (shown with the top samples).
    n_top
        Features kept per instance in ``instance_features``.
    model_info
        Model identity for the manifest (name, layer, source, baseline ...).
    """
    trained = options.pop("extractor") if isinstance(options.get("extractor"), FeatureExtractor) else None
    config = (config or FeatureStudyConfig()).updated(**options)
    t0 = time.perf_counter()
    x = check_embeddings(full, "full")
    n, d = x.shape
    if not isinstance(present, Mapping) or len(present) < 2:
        raise FeatureError("present: expected a mapping of at least 2 modalities to activations [N, d]")
    pres = {str(m): check_embeddings(a, f"present[{m!r}]", d=d) for m, a in present.items()}
    for m, a in pres.items():
        if len(a) != n:
            raise FeatureError(f"present[{m!r}] has {len(a)} rows, full has {n}")
    instances = np.arange(n) if instances is None else np.asarray(instances, dtype=np.int64)
    if instances.shape != (n,):
        raise FeatureError(f"instances: expected {n} dataset rows, got shape {instances.shape}")
    if trained is not None:
        ext, history = trained, []
    else:
        stacked = np.concatenate(list(pres.values()))
        opts = {"seed": config.seed, **dict(config.extractor_options)}
        result = train_extractor(
            config.extractor,
            stacked,
            np.tile(x, (len(pres), 1)),
            d_sae=config.d_sae,
            device=config.device,
            progress=config.progress,
            **opts,
        )
        ext, history = result.extractor, result.history
    metrics: dict[str, Any] = {**reconstruction_metrics(ext, x), "full": reconstruction_metrics(ext, x)}
    for m, a in pres.items():
        metrics[m] = reconstruction_metrics(ext, a)
    timings = {"train": time.perf_counter() - t0}

    t = time.perf_counter()
    acts = {m: ext.encode_numpy(a) for m, a in pres.items()}
    dom = analyze_dominance(
        acts, k=config.k, n_boot=config.n_boot, ci=config.ci, seed=config.seed, n_null=config.n_null
    )
    timings["mds"] = time.perf_counter() - t

    t = time.perf_counter()
    top = {m: top_activating(a, config.top_k) for m, a in acts.items()}
    features = _feature_table(dom, acts, top, pres)
    top_table = top_samples_table(acts, config.top_k, labels=labels)
    live = dom.categories != INACTIVE
    groups = {m: duplicate_groups(a) for m, a in pres.items()}
    card = {
        "examples": feature_examples(acts, groups, top=10, per_level=config.examples_per_level, seed=config.seed),
        "histograms": activation_histograms(acts),
        "neighbours": decoder_neighbours(ext.W_dec.detach().cpu().numpy(), n=5, live=live),
        "codes": sparse_codes(acts) if config.store_codes else pd.DataFrame(),
        "replicates": _replicates(dom),
    }
    timings["interpretability"] = time.perf_counter() - t

    t = time.perf_counter()
    instance_table = None
    if head is not None:
        z, attr, out = feature_attributions(ext, x, head, batch_size=head_batch)
        instance_table = instance_feature_table(instances, z, attr, out, dom.categories, n_top=n_top, ids=ids)
    timings["attribution"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0

    info = {"dim": d, **dict(model_info or {})}
    info["instances"] = instances.astype(int).tolist()
    info["attribution"] = ATTRIBUTION_METHOD if head is not None else None
    record = {
        "n_pairs": n,
        "d": d,
        "source": "model activations",
        "modalities": list(pres),
        "n_top": n_top,
        **{
            k: v
            for k, v in config.to_dict().items()
            if k in ("k", "n_boot", "ci", "top_k", "n_null", "seed", "examples_per_level", "store_codes")
        },
    }
    return FeatureStudy(
        extractor_name=ext.architecture,
        extractor_config=ext.cfg.to_dict(),
        extractor_metrics=metrics,
        dominance=dom.summary(),
        features=features,
        top_samples=top_table,
        extractor=ext,
        history=history,
        config=record,
        timings=timings,
        model=info,
        instance_features=instance_table if instance_table is not None else pd.DataFrame(),
        **card,
    )
