"""A user with CMU-MOSI / MOSEI files (MMSA pickles or CMU-SDK .csd) and no model of their own: train, explain, read.

The fixtures are tiny files written in the real layouts (tests/data/helpers.py); the CLI is run as a user runs it.
"""

import subprocess
import sys

import numpy as np
import pytest

import modalens as ml
from tests.data.helpers import write_corpus, write_mmsa


def run_cli(*args):
    result = subprocess.run([sys.executable, "-m", "modalens.cli", *args], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"modalens {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.slow
@pytest.mark.parametrize("aligned", [True, False])
def test_train_then_explain_an_mmsa_pickle(tmp_path, aligned):
    data = tmp_path / ("aligned_50.pkl" if aligned else "unaligned_50.pkl")
    write_mmsa(data, aligned=aligned)
    model_dir, run_dir = tmp_path / "model", tmp_path / "run"
    run_cli("train", str(data), "-a", "mult", "-o", str(model_dir), "--epochs", "2", "--nonfinite", "zero")
    assert (model_dir / "model.safetensors").is_file()
    run_cli("explain", str(data), "--model", str(model_dir), "--out", str(run_dir), "--n-permutations", "2")
    expl = ml.load_run(run_dir)
    assert expl.modalities == ["text", "audio", "vision"]
    assert len(expl) == 3  # the test split of the fixture
    assert np.allclose(expl.shapley.sum(1), expl.predictions - expl.base_values, atol=1e-4)
    assert expl.feature_attributions is not None
    assert expl.dataset.ids[0].startswith("vid")


@pytest.mark.slow
def test_train_then_explain_cmu_sdk_sequences(tmp_path):
    corpus = write_corpus(tmp_path / "corpus")
    model_dir, run_dir = tmp_path / "model", tmp_path / "run"
    run_cli("train", str(corpus), "-a", "late_lstm", "-o", str(model_dir), "--epochs", "2")
    run_cli("explain", str(corpus), "--model", str(model_dir), "--out", str(run_dir), "--feature-method", "none")
    expl = ml.load_run(run_dir)
    assert len(expl) > 0 and len(expl.modalities) >= 2
    assert np.isfinite(expl.shapley).all()
