"""Feature runs compared: matching features across runs by activation and by decoder, on known answers, and the
``modalens features compare`` command with its one-line errors (and those of the other feature commands)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from modalens.cli.features import app
from modalens.features.compare import (
    RunFeatures,
    activation_similarity,
    decoder_similarity,
    match_features,
)
from modalens.features.dashboard import sparse_codes
from modalens.features.errors import FeatureError
from modalens.features.study import run_feature_study

runner = CliRunner()


def _run(name, acts_img, acts_txt, cats, *, model="m", w_dec=None, texts=None):
    f = acts_img.shape[1]
    features = pd.DataFrame(
        {
            "feature": np.arange(f),
            "mds": np.linspace(0.1, 0.9, f),
            "category": cats,
            "stable": np.ones(f, bool),
        }
    )
    n = len(acts_img)
    samples = pd.DataFrame(
        {"sample": np.arange(n), "text": texts if texts is not None else [f"t{i}" for i in range(n)]}
    )
    return RunFeatures(
        name=name,
        model=model,
        features=features,
        dominance={"category_names": ["vision", "language"]},
        metrics={},
        extractor="topk",
        codes=sparse_codes({"image": acts_img, "text": acts_txt}),
        samples=samples,
        n_pairs=n,
        d_in=4,
        w_dec=w_dec,
    )


def test_activation_matching_recovers_a_permutation_of_the_features():
    rng = np.random.default_rng(0)
    n, f = 200, 6
    img = np.where(rng.random((n, f)) < 0.3, rng.exponential(1, (n, f)), 0.0)
    txt = np.where(rng.random((n, f)) < 0.3, rng.exponential(1, (n, f)), 0.0)
    perm = np.array([3, 0, 5, 1, 4, 2])  # feature j of A is feature perm[j] of B
    inv = np.argsort(perm)
    cats = np.array(["vision", "language", "cross-modal", "cross-modal", "vision", "language"])
    a = _run("a", img, txt, cats)
    b = _run("b", img[:, inv], txt[:, inv], cats[inv])
    matches, summary = match_features(a, b, "activation")
    got = dict(zip(matches.feature_a, matches.feature_b, strict=True))
    assert got == {j: int(perm[j]) for j in range(f)}
    assert np.allclose(matches.score, 1.0)
    assert summary["share_good"] == 1.0 and summary["category_agreement"] == 1.0
    assert summary["agreement_matrix"]["vision"]["vision"] == 2


def test_activation_similarity_is_pearson_correlation():
    rng = np.random.default_rng(1)
    a = rng.random((50, 3))
    b = np.stack([a[:, 2] * 2 + 1, rng.random(50), -a[:, 0]], axis=1)
    best, score = activation_similarity(a, b)
    assert best[2] == 0 and score[2] == pytest.approx(1.0)
    expected = max(np.corrcoef(a[:, 1], b[:, k])[0, 1] for k in range(3))
    assert score[1] == pytest.approx(expected)


def test_decoder_matching_by_cosine_and_refused_across_models():
    w_a = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0]])
    w_b = np.array([[0, 0.6, 0.8, 0], [2.0, 0, 0, 0]])
    best, score = decoder_similarity(w_a, w_b)
    assert best.tolist() == [1, 0] and score.tolist() == pytest.approx([1.0, 0.6])
    img = np.ones((4, 2))
    a = _run("a", img, img, np.array(["vision", "language"]), w_dec=w_a)
    b = _run("b", img, img, np.array(["vision", "language"]), model="other", w_dec=w_b)
    with pytest.raises(FeatureError, match="one embedding model"):
        match_features(a, b, "decoder")
    assert match_features(a, b, "auto")[1]["method"] == "activation"  # auto picks what the runs allow


def test_activation_matching_needs_the_same_pairs():
    img = np.ones((4, 2))
    a = _run("a", img, img, np.array(["vision", "language"]))
    b = _run("b", img, img, np.array(["vision", "language"]), texts=["t0", "t1", "other", "t3"])
    with pytest.raises(FeatureError, match="pair 2 differs"):
        match_features(a, b, "activation")


# ------------------------------------------------------------------------------------------------ the command
@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, planted_module):
    root = tmp_path_factory.mktemp("compare")
    p = planted_module
    texts = [f"pair {i}" for i in range(len(p.image))]
    common = {
        "model_info": {"name": "planted"},
        "d_sae": 32,
        "n_boot": 20,
        "n_null": 5,
        "top_k": 5,
        "compare_with": (),
        "steer_features": 0,
        "n_random": 1,
    }
    a = run_feature_study(
        p.image, p.text, extractor="topk", extractor_options={"k": 4, "epochs": 3}, texts=texts, **common
    )
    b = run_feature_study(
        p.image, p.text, extractor="ncl", extractor_options={"k": 8, "epochs": 3}, texts=texts, **common
    )
    return a.save(root / "sae"), b.save(root / "ncl")


@pytest.fixture(scope="module")
def planted_module():
    from tests.features.conftest import make_planted

    return make_planted(n=200)


def test_compare_command_prints_both_runs_and_writes_json(two_runs, tmp_path):
    out = tmp_path / "cmp.json"
    res = runner.invoke(app, ["compare", *map(str, two_runs), "--match", "activation", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "sae" in res.output and "ncl" in res.output and "chance" in res.output
    doc = json.loads(out.read_text())
    assert [r["run"] for r in doc["runs"]] == ["sae", "ncl"]
    assert {p["summary"]["method"] for p in doc["pairs"]} == {"activation"}
    assert doc["pairs"][0]["matches"] and 0 <= doc["pairs"][0]["summary"]["share_good"] <= 1
    # the same model: decoder matching works too
    res = runner.invoke(app, ["compare", *map(str, two_runs), "--match", "decoder"])
    assert res.exit_code == 0, res.output


def test_feature_commands_refuse_bad_inputs_in_one_line(two_runs, tmp_path):
    from tests.app.fixtures import write_interaction_run

    interaction = write_interaction_run(tmp_path / "irun", 20)
    cases = [
        (["compare", str(two_runs[0])], "at least two"),
        (["compare", str(two_runs[0]), str(interaction)], "not a feature run"),
        (["compare", str(two_runs[0]), str(tmp_path / "nope")], "no such run directory"),
        (["compare", *map(str, two_runs), "--match", "words"], "--match must be one of"),
        (["ablate", str(interaction), "demo"], "not a feature run"),
        (
            ["embed", "pairs.csv", str(tmp_path / "o.parquet"), "--model", "hf:" + str(tmp_path / "missing")],
            "does not exist",
        ),
        (["embed", "pairs.csv", str(tmp_path / "o.parquet"), "--model", "hf:./rel/dir"], "does not exist"),
        (
            ["embed", "pairs.csv", str(tmp_path / "o.parquet"), "--model", "two-tower:/no/such.safetensors"],
            "does not exist",
        ),
        (["attack", str(two_runs[0]), "demo", "--feature", "1", "--model", "hf:/no/such/dir"], "does not exist"),
    ]
    wide = tmp_path / "wide.npz"
    np.savez(wide, image=np.ones((5, 7), np.float32), text=np.ones((5, 7), np.float32))
    cases.append((["ablate", str(two_runs[0]), str(wide)], "embeddings are 7-d but the run"))
    for args, expected in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        lines = [line for line in res.output.strip().splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), (args, res.output)
        assert expected in res.output, (args, res.output)
        assert "Repo id" not in res.output
