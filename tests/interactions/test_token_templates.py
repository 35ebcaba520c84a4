"""explain() mines templates over datasets with a token modality (ids [N, T], no named features)."""

from __future__ import annotations

from tests.interactions.test_token_attribution import additive, toy_dataset

import modalens as ml
from modalens.models import CallablePredictor


def test_templates_with_a_token_modality():
    ds = toy_dataset()
    expl = ml.explain(
        CallablePredictor(additive, ["text", "audio"]), ds, n_permutations=2, projection=None, progress=False
    )
    assert expl.templates is not None
    fa = expl.feature_attributions
    assert set(fa[fa["feature"] != "*"]["modality"]) == {"audio"}  # token ids have no named features
