"""explain() end to end on the synthetic glass-box model, whose modality contributions are known."""

import numpy as np
import pytest

import modalens as ml
from modalens.data.synthetic import make_synthetic
from modalens.models.glass_box import glass_box_model


@pytest.fixture(scope="module")
def data():
    return make_synthetic(160, seed=3)


def closed_form_terms(ds):
    """The glass box's terms written out independently of the model code."""
    m = ds["text"].step_mask().astype(np.float64)
    count = m.sum(1)
    text = 0.7 * (ds["text"].values[:, :, 0] * m).sum(1)
    audio = 0.5 * (ds["audio"].values[:, :, 0] * m).sum(1) / count
    vision = 0.6 * (ds["vision"].values[:, :, 2] * m).sum(1) / count
    return np.stack([text, audio, vision], 1)


def test_modality_shapley_equals_the_glass_box_terms(data):
    expl = ml.explain(glass_box_model(), data, feature_method=None, templates=False, projection=None, progress=False)
    assert np.allclose(expl.shapley, closed_form_terms(data), atol=1e-4)
    assert np.allclose(expl.base_values, 0, atol=1e-6)
    assert np.allclose(expl.interactions, 0, atol=1e-4)  # additive model
    assert np.allclose(expl.unimodal["text"], closed_form_terms(data)[:, 0], atol=1e-4)


def test_mean_baseline_shifts_values_by_the_baseline_term(data):
    model = glass_box_model()
    model.masker = ml.Masker("mean")
    expl = ml.explain(model, data, feature_method=None, templates=False, projection=None, progress=False)
    # additive model: phi_m = term_m(x) - term_m(baseline); efficiency against the mean-baseline prediction
    assert np.allclose(expl.shapley.sum(1), expl.predictions - expl.base_values, atol=1e-4)
    mean_audio = data["audio"].values[data["audio"].step_mask()][:, 0].mean()
    assert np.allclose(expl.shapley[:, 1], closed_form_terms(data)[:, 1] - 0.5 * mean_audio, atol=1e-4)


def test_types_follow_the_known_roles(data):
    expl = ml.explain(glass_box_model(), data, feature_method=None, templates=False, projection=None, progress=False)
    frame = expl.to_frame()
    contradicting = (frame.meta_audio_role == "contradict") & (frame.meta_vision_role == "contradict")
    agreeing = (frame.meta_audio_role == "agree") & (frame.meta_vision_role == "agree")
    assert contradicting.any() and agreeing.any()
    # when voice and face both contradict the words, no instance is complement
    assert (frame.interaction_type[contradicting] != "complement").all()
    # when both agree, no instance is conflict
    assert (frame.interaction_type[agreeing] != "conflict").all()


def test_subset_summary_save_and_load(data, tmp_path):
    expl = ml.explain(glass_box_model(), data, feature_method=None, templates=False, projection="pca", progress=False)
    conflict = expl.subset(lambda f: f.interaction_type == "conflict")
    assert len(conflict) == int((expl.types.types == "conflict").sum()) > 0
    assert conflict.summary()["type_shares"]["conflict"] == 1.0
    assert np.allclose(conflict.shapley, expl.shapley[expl.types.types == "conflict"])
    summary = expl.summary()
    assert set(summary["performance"]) >= {"mae", "corr", "acc2_nonneg", "f1_nonneg", "acc7"}
    assert sum(summary["type_shares"].values()) == pytest.approx(1.0)

    path = expl.save(tmp_path / "run")
    back = ml.load_run(path)
    assert np.allclose(back.shapley, expl.shapley) and np.allclose(back.outputs, expl.outputs)
    assert (back.types.types == expl.types.types).all()
    assert np.allclose(back.projection, expl.projection)
    assert back.dataset.texts.tolist() == expl.dataset.texts.tolist()
    with pytest.raises(Exception, match="exists"):
        expl.save(path)


def test_classification_explains_the_predicted_class(data):
    def proba(values, masks):
        score = values["text"][:, :, 0].sum(1) + values["audio"][:, :, 0].mean(1)
        p = 1 / (1 + np.exp(-score))
        return np.stack([1 - p, p], 1)

    model = ml.CallablePredictor(proba, ["text", "audio"], output_kind="classification")
    labels = (data.labels > 0).astype(int)
    ds = ml.MultimodalDataset([data["text"], data["audio"]], labels)
    expl = ml.explain(model, ds, feature_method=None, templates=False, projection=None, progress=False)
    assert (expl.target == expl.outputs.argmax(1)).all()
    assert np.allclose(expl.shapley.sum(1), expl.predictions - expl.base_values, atol=1e-6)
    assert "accuracy" in expl.summary()["performance"]


def test_bad_arguments_are_named(data):
    with pytest.raises(ValueError, match="unknown modality method"):
        ml.explain(glass_box_model(), data, method="lime", progress=False)
    with pytest.raises(ValueError, match="modalities="):
        ml.explain(lambda v: 0, data, progress=False)
    with pytest.raises(ValueError, match="target must be"):
        ml.explain(glass_box_model(), data, target=5, feature_method=None, progress=False)


def test_feature_attributions_and_templates_through_explain(data):
    ds = data.take(range(40))
    expl = ml.explain(glass_box_model(), ds, n_permutations=2, template_support=0.05, projection=None, progress=False)
    fa = expl.feature_attributions
    words = fa[(fa.modality == "text") & (fa.feature == "*")]
    valence = ds["text"].values[words.instance.to_numpy(), words.position.to_numpy(), 0]
    # additive model, zero baseline: each word's attribution is exactly 0.7 * its valence
    assert np.allclose(words.value, 0.7 * valence, atol=1e-4)
    named = fa[fa.feature != "*"]
    f0 = named[(named.modality == "audio") & (named.feature == "F0")].sort_values("instance")
    assert np.allclose(f0.value, expl.shapley[:, 1], atol=1e-4)  # F0 is the only audio feature the model reads
    assert set(named[named.modality == "audio"].feature) == {"F0", "energy", "VUV"}
    assert np.allclose(named[(named.modality == "audio") & (named.feature != "F0")].value, 0, atol=1e-6)
    importance = expl.feature_importance()
    assert importance.iloc[0]["feature"].startswith("word:") or importance.iloc[0]["feature"] == "valence"
    assert expl.templates is not None and len(expl.templates) > 0
    assert set(expl.templates.polarity) <= {"positive", "negative"}
    members = expl.template_members
    first = expl.templates.iloc[0]
    assert (
        expl.in_template(int(first.template_id)).sum()
        == first["count"]
        == (members.template_id == first.template_id).sum()
    )
