import json

import numpy as np
import pandas as pd
import pytest

from modalens.features.study import FeatureStudy, encode_png, load_feature_study, run_feature_study
from modalens.runs import RunError, read_run

COLORS = ["red", "green", "blue"]
ANIMALS = ["cat", "dog", "car"]


@pytest.fixture(scope="module")
def planted_study(planted):
    # reference "encoder" that sees the concepts: independent of the embeddings, known to be right
    ref = planted.presence.astype(np.float32)
    return run_feature_study(
        planted.image,
        planted.text,
        extractor="topk",
        d_sae=24,
        extractor_options={"k": 2, "epochs": 60, "batch_size": 64, "lr": 3e-3},
        n_boot=200,
        top_k=10,
        reference_image_emb=ref,
        reference_text_emb=ref,
        texts=[f"pair {i}" for i in range(len(planted.image))],
        labels=planted.presence.argmax(axis=1),
    )


def test_study_finds_planted_categories(planted_study):
    f = planted_study.features
    props = planted_study.proportions
    assert props["vision"] > 0 and props["language"] > 0 and props["cross-modal"] > 0
    assert sum(props.values()) == pytest.approx(1.0)
    # vision-dominant features have MDS near 1 and stable intervals, language ones near 0
    assert (f[f.category == "vision"].mds > 0.75).all()
    assert (f[f.category == "language"].mds < 0.25).all()
    assert f[f.category == "vision"].stable.all()
    low, high = planted_study.dominance["mds_low_threshold"], planted_study.dominance["mds_high_threshold"]
    stable = f[f.stable]
    assert (stable[stable.category == "language"].ci_high < low).all()
    assert (stable[stable.category == "vision"].ci_low > high).all()
    assert not f[f.n_active < 10].stable.any()
    needed = {
        "feature",
        "mds",
        "ci_low",
        "ci_high",
        "category",
        "stable",
        "mean_activation_image",
        "mean_activation_text",
        "frequency",
        "embsim",
        "monosemanticity",
        "top_image",
        "top_text",
    }
    assert needed <= set(f.columns)
    live = f[f.category != "inactive"]
    assert ((live.ci_low <= live.mds + 1e-6) & (live.mds <= live.ci_high + 1e-6)).all()


def test_study_compares_with_raw_dimensions(planted_study):
    wr = planted_study.win_rates.set_index(["category", "method_a", "method_b"])
    ab, ba = wr.loc[("all", "topk", "raw")], wr.loc[("all", "raw", "topk")]
    assert ab.wins + ab.ties + ab.losses == pytest.approx(1.0)
    assert ab.wins == pytest.approx(ba.losses) and ab.ties == pytest.approx(ba.ties)
    comp = planted_study.comparison
    assert {"raw", "topk"} <= set(comp.method)
    n_live = int((planted_study.features.category != "inactive").sum())
    topk_all = comp[(comp.method == "topk") & (comp.category == "all")].iloc[0]
    assert topk_all.n_features == planted_study.features.embsim.notna().sum() <= n_live
    assert (
        ab.n_comparisons
        == topk_all.n_features * comp[(comp.method == "raw") & (comp.category == "all")].iloc[0].n_features
    )


def test_study_interventions_table(planted_study):
    iv = planted_study.interventions
    assert set(iv.intervention) >= {"group_ablation", "steering"}
    ga = iv[(iv.intervention == "group_ablation") & (iv.group == "cross-modal") & (iv.metric == "i2t@1")].iloc[0]
    # the shared concepts carry retrieval: removing them hurts more than removing random features
    assert ga.after < ga.before and ga.after < ga.control


def test_save_and_load_roundtrip(tmp_path, planted_study, planted):
    path = planted_study.save(tmp_path / "run")
    run = read_run(path)
    assert run.kind == "features"
    assert {"features", "top_samples", "interventions", "samples", "comparison", "win_rates"} <= set(run.table_names)
    assert run.manifest.dominance.k == 1.0
    assert (path / "extractor" / "cfg.json").is_file()
    back = load_feature_study(path)
    pd.testing.assert_frame_equal(
        back.features.drop(columns=["top_image", "top_text"]),
        planted_study.features.drop(columns=["top_image", "top_text"]),
        check_dtype=False,
    )
    assert back.features.top_image.map(list).tolist() == planted_study.features.top_image.tolist()
    np.testing.assert_allclose(
        back.extractor.encode_numpy(planted.image), planted_study.extractor.encode_numpy(planted.image), atol=1e-6
    )
    assert back.proportions == planted_study.proportions
    card = back.feature(int(back.features.feature.iloc[0]))
    assert "top" in card and "mds" in card
    with pytest.raises(RunError, match="exists"):
        planted_study.save(tmp_path / "run")


def _toy_images(n: int, seed: int = 0) -> tuple[list[np.ndarray], list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    color = rng.integers(0, 3, n)
    animal = rng.integers(0, 3, n)
    images = []
    for c, a in zip(color, animal, strict=True):
        img = rng.uniform(0, 0.2, (3, 8, 8)).astype(np.float32)
        img[c] += 0.6
        img[:, a * 2 : a * 2 + 3, :] += 0.2
        images.append(img.clip(0, 1))
    texts = [f"a photo of a {COLORS[c]} {ANIMALS[a]}" for c, a in zip(color, animal, strict=True)]
    return images, texts, color


def test_study_with_model_images_attack_and_bias(tmp_path, fake_model):
    images, texts, color = _toy_images(90)
    img_emb = fake_model.encode_images(np.stack(images))
    txt_emb = fake_model.encode_texts(texts)
    class_emb = fake_model.encode_texts([f"a photo of a {c}" for c in COLORS])
    study = run_feature_study(
        img_emb,
        txt_emb,
        extractor="relu",
        d_sae=32,
        extractor_options={"epochs": 20, "batch_size": 32, "l1_coefficient": 1e-2, "lr": 3e-3},
        n_boot=100,
        n_random=1,
        top_k=5,
        texts=texts,
        labels=[COLORS[c] for c in color],
        images=images,
        class_text_emb=class_emb,
        class_labels=color,
        attribute=color,
        model=fake_model,
        attack_images=4,
        compare_with=(),
    )
    assert set(study.interventions.intervention) >= {"group_ablation", "concept_removal", "adversarial"}
    adv = study.interventions[
        (study.interventions.intervention == "adversarial") & (study.interventions.metric == "mean_target_activation")
    ].iloc[0]
    assert adv.after > adv.before
    assert json.loads(adv.details)["linf"] <= 8 / 255 + 1e-6
    assert study.images and all(b.startswith(b"\x89PNG") for b in study.images.values())
    path = study.save(tmp_path / "run2")
    back = load_feature_study(path)
    shown = back.samples.dropna(subset=["image"])
    assert len(shown) == len(study.images)
    assert (path / shown.image.iloc[0]).is_file()
    top = back.top_samples
    assert {"feature", "rank", "modality", "sample", "activation", "label", "text"} <= set(top.columns)
    assert top.text.str.startswith("a photo").all()


def test_study_accepts_trained_extractor_and_ncl(planted, trained_topk):
    study = run_feature_study(planted.image, planted.text, extractor=trained_topk.extractor, n_boot=50, compare_with=())
    assert study.extractor_name == "topk" and study.history == []
    ncl = run_feature_study(
        planted.image[:200],
        planted.text[:200],
        extractor="ncl",
        d_sae=16,
        n_boot=50,
        extractor_options={"epochs": 10},
        compare_with=("raw", "topk"),
    )
    assert ncl.extractor_name == "ncl"
    assert set(ncl.comparison.method) == {"ncl", "raw", "topk"}
    assert {"vision", "language", "cross-modal"} & set(ncl.win_rates.category)
    assert ncl.extractor_metrics["temperature"] > 0


def test_study_bad_input():
    x = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    with pytest.raises(ValueError, match="texts has 3 entries"):
        run_feature_study(x, x, texts=["a", "b", "c"], n_boot=0)
    with pytest.raises(ValueError, match="reference_image_emb has 5 rows"):
        run_feature_study(x, x, reference_image_emb=x[:5], n_boot=0)


def test_encode_png_inputs():
    from PIL import Image

    a = encode_png(np.zeros((4, 5, 3), np.uint8))
    assert Image.open(__import__("io").BytesIO(a)).size == (5, 4)
    assert encode_png(np.ones((3, 4, 5), np.float32)).startswith(b"\x89PNG")
    assert encode_png(a) == a
    with pytest.raises(ValueError, match="images\\[2\\]"):
        encode_png(np.full((4, 4, 3), 2.0), where="images[2]")


def test_feature_study_is_a_dataclass():
    assert "features" in FeatureStudy.__dataclass_fields__


def test_interventions_on_a_saved_run(tmp_path, planted_study, planted):
    from modalens.features.interventions import group_ablation, steer, steering_retrieval

    path = planted_study.save(tmp_path / "run3")
    extractor, categories = load_feature_study(path).extractor_and_categories()
    table = group_ablation(extractor, planted.image, planted.text, categories, n_random=1)
    direct = planted_study.interventions
    direct = direct[direct.intervention == "group_ablation"].reset_index(drop=True)
    cols = ["group", "metric", "before", "after"]
    pd.testing.assert_frame_equal(table[cols], direct[cols])
    j = int(planted_study.features.sort_values("frequency_image", ascending=False).feature.iloc[0])
    steered = steer(extractor, planted.text[:20], j, alpha=1.0)
    retr = steering_retrieval(extractor, planted.text[:20], planted.image, j, alphas=(0.0, 0.5, 1.0))
    assert steered.shape == (20, 16) and list(retr.alpha) == [0.0, 0.5, 1.0]
    assert retr.precision_at_k.iloc[-1] >= retr.precision_at_k.iloc[0]
