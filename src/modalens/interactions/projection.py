"""2-D projections of per-instance explanation vectors, for the projection view.

The run-writing code calls :func:`project` once when it saves a run and stores the result as the ``projection``
table; the views never recompute it (they only fall back to PCA when a run has no projection table).
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np

from modalens._core.errors import ConfigurationError

Method = Literal["umap", "tsne", "pca"]
METHODS: tuple[str, ...] = ("umap", "tsne", "pca")


def explanation_vectors(modality_shapley: np.ndarray, interactions: np.ndarray | None = None) -> np.ndarray:
    """The vector each instance is placed by: its modality Shapley values, then its pairwise interactions.

    Parameters
    ----------
    modality_shapley
        ``[N, M]`` Shapley values, one column per modality.
    interactions
        Optional ``[N, P]`` pairwise interaction indices.

    Returns
    -------
    numpy.ndarray
        ``[N, M + P]`` float64.
    """
    parts = [np.asarray(modality_shapley, dtype=np.float64)]
    if interactions is not None and np.size(interactions):
        parts.append(np.asarray(interactions, dtype=np.float64))
    return np.concatenate(parts, axis=1)


def project(explanation_vectors: np.ndarray, method: Method = "umap", seed: int = 0) -> np.ndarray:
    """Place N instances in 2-D so that instances explained alike land close together.

    Parameters
    ----------
    explanation_vectors
        ``[N, K]`` finite floats (e.g. from :func:`explanation_vectors`).
    method
        ``"umap"`` (umap-learn; keeps local neighbourhoods and scales to 50,000 points), ``"tsne"``
        (scikit-learn; slower, for a few thousand points) or ``"pca"`` (linear, instant, deterministic).
    seed
        Random seed for UMAP / t-SNE; equal seeds give equal layouts.

    Returns
    -------
    numpy.ndarray
        ``[N, 2]`` float32 coordinates, centred, both axes scaled by one factor (unit root-mean-square radius / sqrt 2).
    """
    x = np.asarray(explanation_vectors, dtype=np.float64)
    if x.ndim != 2:
        raise ConfigurationError(f"explanation_vectors must be a 2-D [N, K] array, got shape {x.shape}")
    if x.shape[0] == 0:
        raise ConfigurationError("explanation_vectors has no rows (N = 0); nothing to project")
    if not np.isfinite(x).all():
        raise ConfigurationError(f"explanation_vectors must be finite; {int((~np.isfinite(x)).sum())} NaN/inf entries")
    if method not in METHODS:
        raise ConfigurationError(f"method must be one of {METHODS}, got {method!r}")
    n = x.shape[0]
    # Too few points for a neighbour graph: a linear projection is the only honest layout.
    if method == "pca" or n < 5:
        xy = _pca(x)
    elif method == "umap":
        xy = _umap(x, seed)
    else:
        xy = _tsne(x, seed)
    return _standardise(xy).astype(np.float32)


def _pca(x: np.ndarray) -> np.ndarray:
    centred = x - x.mean(axis=0)
    if x.shape[1] == 1:
        return np.concatenate([centred, np.zeros_like(centred)], axis=1)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ vt[:2].T
    # Fix the sign of each axis (SVD's is arbitrary) so layouts are reproducible across platforms.
    signs = np.sign(np.sum(xy**3, axis=0))
    signs[signs == 0] = 1
    return xy * signs


def _umap(x: np.ndarray, seed: int) -> np.ndarray:
    import umap  # umap-learn; imported lazily because numba compilation takes seconds

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*n_jobs value.*")
        reducer = umap.UMAP(n_components=2, n_neighbors=min(15, x.shape[0] - 1), min_dist=0.1, random_state=seed)
        return reducer.fit_transform(x)


def _tsne(x: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, max(2.0, (x.shape[0] - 1) / 3)))
    return TSNE(n_components=2, perplexity=perplexity, random_state=seed, init="pca").fit_transform(x)


def _standardise(xy: np.ndarray) -> np.ndarray:
    """Centre, and scale both axes by one factor (the overall spread), keeping the layout's aspect ratio."""
    xy = xy - xy.mean(axis=0)
    scale = float(np.sqrt(np.mean(np.sum(xy**2, axis=1)) / 2))
    return xy / scale if scale > 0 else xy
