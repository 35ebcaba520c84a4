"""Edge cases found in review: baselines fitted elsewhere, odd ids, mixed metadata, empty and single selections."""

import numpy as np
import pandas as pd
import pytest

import modalens as ml
from modalens.data.synthetic import make_synthetic
from modalens.interactions import classify
from modalens.models import PredictorError
from modalens.models.glass_box import glass_box_model


def quick(model, data, **kw):
    return ml.explain(model, data, feature_method=None, templates=False, projection=None, progress=False, **kw)


def test_a_fitted_mean_baseline_is_kept_and_baseline_data_is_used():
    data = make_synthetic(200, seed=4)
    train, test = data.split("train"), data.split("test")
    model = glass_box_model()
    model.masker = ml.Masker("mean").fit(train)
    before = model.masker.baseline("audio", 8, 3).copy()
    quick(model, test.take([0]))
    assert np.array_equal(model.masker.baseline("audio", 8, 3), before)
    fresh = glass_box_model()
    fresh.masker = ml.Masker("mean")
    one = quick(fresh, test.take([0]), baseline_data=train)
    assert np.allclose(fresh.masker.baseline("audio", 8, 3), before)
    assert np.abs(one.shapley).sum() > 0  # a baseline from the instance itself would zero every value


def test_media_of_ids_that_clash_as_file_names_stay_apart(tmp_path):
    data = make_synthetic(3, seed=1)
    ds = ml.MultimodalDataset(
        list(data.modalities.values()),
        data.labels,
        ids=["a/b", "a_b", "../x"],
        media={"face": ml.MediaColumn("image/png", [b"0", b"1", b"2"])},
    )
    path = quick(glass_box_model(), ds).save(tmp_path / "run")
    stored = {p.name: p.read_bytes() for p in (path / "media" / "face").iterdir()}
    assert stored == {"0.png": b"0", "1.png": b"1", "2.png": b"2"}


def test_mixed_type_metadata_saves_and_missing_values_stay_missing(tmp_path):
    data = make_synthetic(3, seed=1)
    meta = pd.DataFrame({"mixed": [1, "a", None], "note": ["x", None, "z"]})
    ds = ml.MultimodalDataset(list(data.modalities.values()), data.labels, meta=meta)
    back = ml.load_run(quick(glass_box_model(), ds).save(tmp_path / "run")).dataset.meta
    assert back["mixed"].isna().tolist() == [False, False, True] and back["mixed"][:2].tolist() == ["1", "a"]
    assert back["note"].isna().tolist() == [False, True, False] and back["note"][[0, 2]].tolist() == ["x", "z"]


def test_empty_and_single_selections():
    data = make_synthetic(40, seed=2)
    assert len(data.take([])) == 0
    with pytest.raises(ValueError, match="no instances to explain"):
        quick(glass_box_model(), data.take([]))
    expl = quick(glass_box_model(), data)
    one = expl[3]
    assert len(one) == 1 and np.allclose(one.shapley[0], expl.shapley[3])


def test_empty_subset_round_trips(tmp_path):
    expl = quick(glass_box_model(), make_synthetic(20, seed=2))
    empty = expl.subset(np.zeros(len(expl), bool))
    back = ml.load_run(empty.save(tmp_path / "run"))
    assert len(back) == 0 and back.outputs.shape == (0, 1)


def test_roles_at_the_edges():
    # zero push: the positive side supports, the negative side opposes
    assert list(classify(np.array([[1.0, -1.0, 0.0]])).roles[0]) == ["supporting", "opposing", "minor"]
    # a modality with phi exactly 0 is never relevant, even with relevance_share 0
    config = ml.TypingConfig(relevance_share=0.0)
    assert list(classify(np.array([[1.0, 0.0]]), config=config).roles[0]) == ["dominant", "minor"]
    with pytest.raises(ValueError, match="NaN/inf"):
        classify(np.array([[np.nan, 1.0]]))


def test_non_finite_model_outputs_are_refused():
    data = make_synthetic(10, seed=3)
    model = ml.CallablePredictor(lambda v: np.full(len(v["text"]), np.nan), ["text", "audio", "vision"])
    with pytest.raises(PredictorError, match="NaN/inf outputs"):
        quick(model, data)


def test_subset_keeps_only_templates_with_members():
    data = make_synthetic(120, seed=6)
    expl = ml.explain(glass_box_model(), data, n_permutations=2, template_support=0.05, projection=None, progress=False)
    first = int(expl.templates.iloc[0].template_id)
    part = expl.subset(~expl.in_template(first))
    assert first not in set(part.templates.template_id)
    for _, row in part.templates.iterrows():
        assert row["count"] == (part.template_members.template_id == row.template_id).sum()
