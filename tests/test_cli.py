"""The command line as a user runs it: explain a dataset file with a model factory, then read the run back."""

import subprocess
import sys

import numpy as np

import modalens as ml
from modalens.data.synthetic import make_synthetic
from modalens.models.glass_box import glass_box_model


def run_cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "modalens.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=600
    )


def test_explain_writes_a_run_directory(tmp_path):
    data = tmp_path / "syn.npz"
    ml.save_dataset(make_synthetic(120, seed=1), data)
    out = tmp_path / "run"
    args = ["explain", str(data), "--model", "modalens.models.glass_box:glass_box_model", "--out", str(out)]
    result = run_cli(*args, "--feature-method", "none", "--projection", "pca", "--baseline", "zeros")
    assert result.returncode == 0, result.stderr
    expl = ml.load_run(out)
    assert len(expl) == int((make_synthetic(120, seed=1).splits == "test").sum())
    assert np.allclose(expl.shapley.sum(1), expl.predictions - expl.base_values, atol=1e-4)
    # a second run into the same directory is refused unless --overwrite
    again = run_cli(*args, "--feature-method", "none")
    assert again.returncode != 0 and "exists" in again.stderr + again.stdout


def test_bad_inputs_get_clear_errors(tmp_path):
    bogus = tmp_path / "data.xyz"
    bogus.write_text("not a dataset")
    result = run_cli("explain", str(bogus), "--model", "modalens.models.glass_box:glass_box_model")
    assert result.returncode == 2
    assert "error:" in result.stderr and "data.xyz" in result.stderr and "unknown dataset format" in result.stderr
    assert "Traceback" not in result.stderr  # bad input is one clear line, not a stack
    data = tmp_path / "syn.npz"
    ml.save_dataset(make_synthetic(30), data)
    result = run_cli("explain", str(data), "--model", "no.such.module:factory")
    assert result.returncode != 0 and "cannot import" in result.stderr + result.stdout


def test_methods_lists_the_registry():
    result = run_cli("methods")
    assert result.returncode == 0
    assert "shapley" in result.stdout and "permutation" in result.stdout


def test_truth_compares_roles_and_reports_glass_box_accuracy(tmp_path):
    out = tmp_path / "run"
    ml.explain(
        glass_box_model(),
        make_synthetic(150, seed=2),
        feature_method=None,
        templates=False,
        projection=None,
        progress=False,
    ).save(out)
    result = run_cli("truth", str(out), "--glass-box")
    assert result.returncode == 0, result.stderr
    assert "sign_agreement" in result.stdout and "known roles" in result.stdout
    assert "type accuracy 1.000" in result.stdout


def test_explain_names_the_model_and_records_its_baselines(tmp_path):
    """--name lands in model.name (default: the --model spec), shown by the app's run list; the run records the
    baselines serve --model rebuilds the masker from (zeros here, so no number is fitted)."""
    import json

    from fastapi.testclient import TestClient

    from modalens.app.server import create_app

    data = tmp_path / "syn.npz"
    ml.save_dataset(make_synthetic(60, seed=4), data)
    spec = "modalens.models.glass_box:glass_box_model"
    common = ["--feature-method", "none", "--no-templates", "--projection", "none", "--baseline", "zeros"]
    named, plain = tmp_path / "named", tmp_path / "plain"
    for out, extra in ((named, ["--name", "Glass box v2"]), (plain, [])):
        result = run_cli("explain", str(data), "--model", spec, "--out", str(out), *common, *extra)
        assert result.returncode == 0, result.stderr
    runs = TestClient(create_app([named, plain]), base_url="http://127.0.0.1").get("/api/runs").json()
    assert {r["id"]: r["model"] for r in runs} == {"named": "Glass box v2", "plain": spec}
    record = json.loads((plain / "manifest.json").read_text())["config"]["predictor"]
    assert record["command"] == "explain" and record["spec"] == spec
    assert record["baselines"] == {"text": "zeros", "audio": "zeros", "vision": "zeros"}
