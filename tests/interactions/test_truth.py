"""Truth against explanation on the synthetic set whose roles and model are known."""

import numpy as np
import pytest

import modalens as ml
from modalens.data.synthetic import glass_box_terms, make_synthetic
from modalens.interactions.truth import role_agreement, type_by_roles, typing_accuracy
from modalens.models.glass_box import glass_box_model


@pytest.fixture(scope="module")
def explained():
    data = make_synthetic(300, seed=5)
    return ml.explain(glass_box_model(), data, feature_method=None, templates=False, projection=None, progress=False)


def test_a_model_that_reads_the_cues_agrees_with_the_roles(explained):
    table = role_agreement(explained).set_index(["modality", "known_role"])
    # the glass box reads F0 and AU12, which the builder set to the label's polarity (agree) or against it
    assert table.loc[("audio", "agree"), "sign_agreement"] > 0.9
    assert table.loc[("audio", "contradict"), "sign_agreement"] > 0.9
    assert table.loc[("vision", "agree"), "sign_agreement"] > 0.9
    # neutral cues take a smaller share than agreeing ones
    assert table.loc[("audio", "neutral"), "mean_share"] < table.loc[("audio", "agree"), "mean_share"]
    shares = table.filter(like="explained_").sum(axis=1)
    assert np.allclose(shares, 1.0)


def test_a_model_that_ignores_audio_shows_it(explained):
    data = explained.dataset

    def text_only(values, masks):
        return values["text"][:, :, 0].sum(1)

    model = ml.CallablePredictor(text_only, ["text", "audio", "vision"])
    expl = ml.explain(model, data, feature_method=None, templates=False, projection=None, progress=False)
    table = role_agreement(expl).set_index(["modality", "known_role"])
    assert table.loc[("audio", "agree"), "mean_share"] == pytest.approx(0.0, abs=1e-6)
    assert table.loc[("audio", "agree"), "explained_minor"] == 1.0
    crosstab = type_by_roles(expl)
    assert set(crosstab.columns) <= {"dominance:text", "none"}


def test_typing_accuracy_on_the_glass_box_is_exact(explained):
    truth = glass_box_terms(explained.dataset)
    result = typing_accuracy(explained, truth)
    assert result["type_accuracy"] == 1.0 and result["type_and_dominant_accuracy"] == 1.0
    # a wrong "truth" is caught: swap audio and text contributions
    wrong = typing_accuracy(explained, truth[:, [1, 0, 2]])
    assert wrong["type_and_dominant_accuracy"] < 0.9


def test_missing_roles_are_reported(explained):
    plain = ml.MultimodalDataset(list(explained.dataset.modalities.values()), explained.dataset.labels)
    expl = ml.explain(glass_box_model(), plain, feature_method=None, templates=False, projection=None, progress=False)
    with pytest.raises(ValueError, match="no role columns"):
        role_agreement(expl)
