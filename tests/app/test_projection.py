"""2-D projections of explanation vectors."""

from __future__ import annotations

import numpy as np
import pytest

from modalens.interactions.projection import explanation_vectors, project


def test_pca_recovers_the_main_axis() -> None:
    rng = np.random.default_rng(0)
    t = rng.normal(size=200)
    # points on a line in 4-D plus tiny noise: the first axis must order them as t does
    x = np.outer(t, [1.0, 2.0, -1.0, 0.5]) + rng.normal(0, 1e-3, (200, 4))
    xy = project(x, method="pca")
    assert xy.shape == (200, 2) and xy.dtype == np.float32
    assert abs(np.corrcoef(xy[:, 0], t)[0, 1]) > 0.999
    np.testing.assert_allclose(xy.mean(axis=0), 0, atol=1e-5)
    assert np.mean(np.sum(xy.astype(np.float64) ** 2, axis=1)) == pytest.approx(2.0, rel=1e-4)


def test_pca_is_deterministic_in_sign() -> None:
    x = np.random.default_rng(1).normal(size=(50, 3))
    np.testing.assert_array_equal(project(x, "pca"), project(x[:, [0, 1, 2]].copy(), "pca"))


@pytest.mark.slow  # umap-learn's numba compilation takes a minute or more on 2 cores
def test_umap_separates_clusters_and_is_seeded() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 0.1, (60, 5)), rng.normal(5, 0.1, (60, 5))])
    a = project(x, method="umap", seed=3)
    b = project(x, method="umap", seed=3)
    np.testing.assert_allclose(a, b)
    ca, cb = a[:60].mean(axis=0), a[60:].mean(axis=0)
    spread = max(a[:60].std(axis=0).max(), a[60:].std(axis=0).max())
    assert np.linalg.norm(ca - cb) > 3 * spread


@pytest.mark.slow
def test_tsne_shape() -> None:
    x = np.random.default_rng(0).normal(size=(40, 4))
    assert project(x, method="tsne", seed=0).shape == (40, 2)


def test_tiny_inputs_fall_back_to_pca() -> None:
    assert project(np.array([[0.0, 1.0], [1.0, 0.0]]), method="umap").shape == (2, 2)
    assert project(np.ones((3, 1)), method="pca").shape == (3, 2)


@pytest.mark.parametrize(
    ("x", "method", "match"),
    [
        (np.ones(5), "pca", "2-D"),
        (np.zeros((0, 3)), "pca", "no rows"),
        (np.array([[np.nan, 1.0]]), "pca", "finite"),
        (np.ones((5, 2)), "mds", "method must be one of"),
    ],
)
def test_bad_input(x: np.ndarray, method: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        project(x, method=method)  # type: ignore[arg-type]


def test_explanation_vectors() -> None:
    v = explanation_vectors(np.ones((4, 3)), np.zeros((4, 3)))
    assert v.shape == (4, 6)
    assert explanation_vectors(np.ones((4, 3))).shape == (4, 3)
