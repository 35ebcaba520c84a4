"""Runs written by the two real writers (Explanation.save, FeatureStudy.save), shared by the run-schema tests.

Tests that change a run work on a copy (``helpers.copy_run``) or write it again (``helpers.rewrite``).
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def interaction_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An interaction run from ``Explanation.save``: feature attributions, templates and a projection."""
    from modalens import explain
    from modalens.data.synthetic import make_synthetic
    from modalens.models.glass_box import glass_box_model

    explanation = explain(glass_box_model(), make_synthetic(40), n_permutations=2, progress=False)
    return explanation.save(tmp_path_factory.mktemp("interaction") / "run")


@pytest.fixture(scope="session")
def feature_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A feature run from ``FeatureStudy.save`` (images, samples, extractor weights)."""
    from tests.app.fixtures import write_feature_run

    return write_feature_run(tmp_path_factory.mktemp("features") / "run", n_pairs=80, d_sae=24)
