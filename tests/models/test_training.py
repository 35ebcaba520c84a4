"""Training, metrics and saving of the reference models, on synthetic data with a known answer."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from modalens.data import Modality, MultimodalDataset
from modalens.data.metrics import sentiment_metrics
from modalens.models.reference import ARCHITECTURES, build_model, make_config
from modalens.models.training import (
    ModelFileError,
    TrainingError,
    evaluate,
    load_model,
    save_model,
    split_indices,
    train,
)


def synthetic(n: int = 400, t: int = 8, seed: int = 0, classes: bool = False) -> MultimodalDataset:
    """Sentiment = 3 tanh(text feature 0 + audio feature 1), each constant-plus-noise over the real steps.

    Vision is pure noise; padded steps hold large noise the models must ignore; feature scales differ wildly so
    normalisation matters.
    """
    rng = np.random.default_rng(seed)
    s_text, s_audio = rng.normal(size=n), rng.normal(size=n)
    lengths = rng.integers(3, t + 1, size=n)
    mask = np.arange(t)[None, :] < lengths[:, None]
    text = rng.normal(size=(n, t, 4)).astype(np.float32)
    text[:, :, 0] = s_text[:, None] + 0.3 * rng.normal(size=(n, t))
    audio = rng.normal(size=(n, t, 3)).astype(np.float32) * 50 + 10
    audio[:, :, 1] = 100 * (s_audio[:, None] + 0.3 * rng.normal(size=(n, t))) + 7
    vision = rng.normal(size=(n, t, 2)).astype(np.float32)
    for x in (text, audio, vision):
        x[~mask] = 20 * rng.normal(size=(int((~mask).sum()), x.shape[2]))
    y = 3 * np.tanh(0.9 * s_text + 0.7 * s_audio)
    splits = np.array(["train"] * int(0.7 * n) + ["valid"] * int(0.15 * n) + ["test"] * (n - int(0.85 * n)))
    labels = (y > 0).astype(np.int64) + (y > 1.5) if classes else y.astype(np.float32)
    return MultimodalDataset(
        [
            Modality("text", "text", text, mask=mask),
            Modality("audio", "audio", audio, mask=mask),
            Modality("vision", "vision", vision, mask=mask),
        ],
        labels,
        splits=splits,
        class_names=["neg", "neu", "pos"] if classes else None,
        name="synthetic",
    )


@pytest.fixture(scope="module")
def data() -> MultimodalDataset:
    return synthetic()


@pytest.fixture(scope="module")
def trained(data):
    torch.set_num_threads(1)
    return {arch: train(data, arch, epochs=12, lr=3e-3, seed=0, progress=False) for arch in ARCHITECTURES}


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_each_architecture_beats_a_constant_predictor(data, trained, arch):
    model, history = trained[arch]
    test = data.split("test").labels
    constant = sentiment_metrics(test, np.full_like(test, np.median(data.split("train").labels)))
    assert history.test is not None
    assert history.test["mae"] < 0.5 * constant["mae"], (history.test, constant)
    assert history.test["corr"] > 0.85
    assert history.test["acc2_nonzero"] > 0.85
    assert history.best_epoch is not None and history.best_valid["mae"] == min(e["valid_mae"] for e in history.epochs)
    assert history.split_sizes == {"train": 280, "valid": 60, "test": 60}
    # The restored model is the best epoch's: re-evaluating it gives the recorded test metrics.
    again = evaluate(model, data, np.flatnonzero(data.splits == "test"))
    assert again["mae"] == pytest.approx(history.test["mae"], abs=1e-6)


def test_training_is_seeded(data):
    small = data.take(np.arange(120))
    _, a = train(small, "late_lstm", epochs=2, seed=3, progress=False)
    _, b = train(small, "late_lstm", epochs=2, seed=3, progress=False)
    assert a.epochs[-1]["train_loss"] == b.epochs[-1]["train_loss"]


def test_classification_training():
    data = synthetic(classes=True, seed=1)
    model, history = train(data, "late_lstm", epochs=20, lr=3e-3, progress=False)
    test = data.split("test").labels
    majority = float(np.mean(test == np.bincount(data.split("train").labels).argmax()))
    assert history.monitor == "valid_loss"
    assert history.test["accuracy"] > majority + 0.2, (history.test, majority)
    assert model.config.class_names == ["neg", "neu", "pos"]


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_save_load_round_trip_gives_identical_outputs(data, trained, arch, tmp_path):
    model, history = trained[arch]
    save_model(model, model.config, tmp_path / arch, meta={"history": history.to_dict()})
    loaded = load_model(tmp_path / arch)
    tensors = [torch.from_numpy(data[m].values[:50]) for m in model.modalities]
    masks = {m: torch.from_numpy(data[m].step_mask()[:50]) for m in model.modalities}
    with torch.no_grad():
        assert torch.equal(model(*tensors, masks=masks), loaded(*tensors, masks=masks))
    assert loaded.config == model.config
    assert loaded.meta["history"]["best_epoch"] == history.best_epoch
    # Saving again over an existing directory replaces the files.
    save_model(loaded, None, tmp_path / arch)
    assert sorted(p.name for p in (tmp_path / arch).iterdir()) == ["config.json", "model.safetensors"]


def _saved(tmp_path):
    torch.manual_seed(0)
    model = build_model(make_config("late_lstm", {"text": 4, "audio": 3})).eval()
    return save_model(model, model.config, tmp_path / "m")


def test_corrupt_weights_file_gives_a_clear_error(tmp_path):
    directory = _saved(tmp_path)
    weights = directory / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="model.safetensors: not a readable safetensors file"):
        load_model(directory)
    weights.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ModelFileError, match="model.safetensors"):
        load_model(directory)
    weights.unlink()
    with pytest.raises(ModelFileError, match="model.safetensors: missing"):
        load_model(directory)


def test_config_errors_name_the_file_and_field(tmp_path):
    directory = _saved(tmp_path)
    config_path = directory / "config.json"
    document = json.loads(config_path.read_text())
    config_path.write_text("{not json")
    with pytest.raises(ModelFileError, match="config.json: not valid JSON"):
        load_model(directory)
    document["config"]["hidden"] = -1
    config_path.write_text(json.dumps(document))
    with pytest.raises(ModelFileError, match="config.json: field 'config': hidden"):
        load_model(directory)
    document["config"]["hidden"] = 64  # valid, but the weights were made with 32
    config_path.write_text(json.dumps(document))
    with pytest.raises(ModelFileError, match="weights do not match"):
        load_model(directory)
    document["format_version"] = 99
    config_path.write_text(json.dumps(document))
    with pytest.raises(ModelFileError, match="format_version 99"):
        load_model(directory)
    config_path.unlink()
    with pytest.raises(ModelFileError, match="config.json: missing"):
        load_model(directory)
    with pytest.raises(ModelFileError, match="no such model directory"):
        load_model(tmp_path / "absent")


def test_a_config_claiming_a_huge_model_is_refused_before_anything_is_allocated(tmp_path, monkeypatch):
    import resource
    import time

    directory = _saved(tmp_path)
    config_path = directory / "config.json"
    document = json.loads(config_path.read_text())
    document["config"]["hidden"] = 1_000_000  # about 8e12 LSTM weights: 32 TB if built
    config_path.write_text(json.dumps(document))
    before, clock = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter()
    with pytest.raises(ModelFileError, match=r"config.json: field 'config' claims a model of .*'hidden': 1000000"):
        load_model(directory)
    assert time.perf_counter() - clock < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 256 * 1024  # KiB: nothing was built
    # the cap is configurable; the real model (80 kB) loads under a small cap
    monkeypatch.setenv("MODALENS_MAX_MODEL_BYTES", "1M")
    document["config"]["hidden"] = 32
    config_path.write_text(json.dumps(document))
    load_model(directory)
    monkeypatch.setenv("MODALENS_MAX_MODEL_BYTES", "10K")
    with pytest.raises(ModelFileError, match="over the cap of 10,240 bytes"):
        load_model(directory)
    monkeypatch.setenv("MODALENS_MAX_MODEL_BYTES", "lots")
    with pytest.raises(ModelFileError, match="MODALENS_MAX_MODEL_BYTES"):
        load_model(directory)


def test_split_indices_hold_out_a_validation_part_when_there_is_none():
    data = synthetic(n=100)
    parts = split_indices(data.take(np.flatnonzero(data.splits != "valid")), seed=0)
    assert set(parts) == {"train", "valid", "test"}
    assert parts["valid"].size == 7 and parts["train"].size == 63
    assert not set(parts["valid"]) & set(parts["train"])
    plain = MultimodalDataset([data["text"]], data.labels)
    parts = split_indices(plain)
    assert set(parts) == {"train", "valid"} and parts["train"].size + parts["valid"].size == 100


def test_training_refuses_bad_input(data):
    with pytest.raises(TrainingError, match="no labels"):
        train(MultimodalDataset([data["text"]]), "mult")
    with pytest.raises(TrainingError, match="epochs"):
        train(data, "mult", epochs=0)
    with pytest.raises(KeyError, match="no modality 'image'"):
        train(data, "mult", modalities=["text", "image"])


def test_ctrl_c_keeps_the_best_epoch_so_far(data, tmp_path, monkeypatch):
    """An interrupt during the third epoch returns the best of the first two, which is also on disk."""
    import modalens.models.training as training

    real_predict = training.predict
    calls = {"n": 0}

    def interrupting(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_predict(*args, **kwargs)

    monkeypatch.setattr(training, "predict", interrupting)
    model, history = train(data, "late_lstm", epochs=10, seed=0, progress=False, checkpoint_dir=tmp_path / "ckpt")
    assert history.interrupted and len(history.epochs) == 2
    best = min(history.epochs, key=lambda e: e["valid_mae"])
    assert history.best_epoch == best["epoch"]
    monkeypatch.setattr(training, "predict", real_predict)
    valid = np.flatnonzero(data.splits == "valid")
    assert evaluate(model, data, valid)["mae"] == pytest.approx(best["valid_mae"], abs=1e-6)
    on_disk = load_model(tmp_path / "ckpt")
    assert evaluate(on_disk, data, valid)["mae"] == pytest.approx(best["valid_mae"], abs=1e-6)


# -- the `modalens train` command ----------------------------------------------------------------------------------
def _cli():
    import typer

    from modalens.cli.train import train_command

    app = typer.Typer()
    app.command()(train_command)
    return app


def _mmsa_unaligned_pickle(path, n_per_split=(90, 20, 20), seed=0):
    """An MMSA ``unaligned_50.pkl`` look-alike: unequal T per modality, lengths fields, -inf in audio."""
    import pickle

    rng = np.random.default_rng(seed)
    data = {}
    for split, n in zip(("train", "valid", "test"), n_per_split, strict=True):
        s = rng.normal(size=n)
        text = rng.normal(size=(n, 10, 6)).astype(np.float32)
        text[:, :, 0] = s[:, None] + 0.2 * rng.normal(size=(n, 10))
        audio = rng.normal(size=(n, 25, 5)).astype(np.float32)
        audio[:, 3, 2] = -np.inf
        vision = rng.normal(size=(n, 30, 4)).astype(np.float32)
        data[split] = {
            "id": np.array([f"{split}{i}$_$0" for i in range(n)]),
            "raw_text": np.array(["words"] * n),
            "text": text,
            "audio": audio,
            "vision": vision,
            "audio_lengths": rng.integers(5, 26, size=n),
            "vision_lengths": rng.integers(5, 31, size=n),
            "regression_labels": (3 * np.tanh(s)).astype(np.float32),
        }
    with open(path, "wb") as handle:
        pickle.dump(data, handle, protocol=4)
    return path


def test_train_command_on_an_unaligned_mmsa_pickle(tmp_path):
    from typer.testing import CliRunner

    from modalens.data.loaders import load_dataset

    source = _mmsa_unaligned_pickle(tmp_path / "unaligned_50.pkl")
    out = tmp_path / "model"
    args = [str(source), "-a", "early_lstm", "-o", str(out), "--epochs", "8", "--lr", "0.003", "--nonfinite", "zero"]
    result = CliRunner().invoke(_cli(), [*args, "--option", "hidden=16", "--quiet", "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "metrics.json", "model.safetensors"]
    report = json.loads((out / "metrics.json").read_text())
    assert report["split_sizes"] == {"train": 90, "valid": 20, "test": 20}
    model = load_model(out)
    assert model.config.hidden == 16 and model.config.modalities == {"text": 6, "audio": 5, "vision": 4}
    data = load_dataset(source, nonfinite="zero")
    again = evaluate(model, data, np.flatnonzero(data.splits == "test"))
    assert again["mae"] == pytest.approx(report["test"]["mae"], abs=1e-6)
    # The label follows the text: a trained model beats the constant median prediction.
    test_y = data.split("test").labels
    assert report["test"]["mae"] < 0.8 * np.abs(test_y - np.median(data.split("train").labels)).mean()


def test_train_command_reports_bad_input(tmp_path):
    from typer.testing import CliRunner

    source = _mmsa_unaligned_pickle(tmp_path / "unaligned_50.pkl", n_per_split=(10, 4, 4))
    runner = CliRunner()
    result = runner.invoke(_cli(), [str(source), "-a", "gru", "-o", str(tmp_path / "m")])
    assert result.exit_code != 0 and "gru" in result.output
    result = runner.invoke(_cli(), [str(source), "-o", str(tmp_path / "m"), "--quiet"])
    assert result.exit_code == 2 and "nonfinite" in result.output  # -inf refused by default, with the hint
    result = runner.invoke(_cli(), [str(source), "-o", str(tmp_path / "m"), "--option", "bogus"])
    assert result.exit_code != 0 and "KEY=VALUE" in result.output


def test_reference_training_script_writes_weights_and_measured_metrics(tmp_path, monkeypatch, capsys):
    """The committed-weights script, run on a stand-in demo set: every architecture's files and metrics."""
    import importlib.util
    import sys
    import types
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "train_reference_models.py"
    spec = importlib.util.spec_from_file_location("train_reference_models", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fake_demo = types.ModuleType("modalens.data.demo")
    fake_demo.load_demo = lambda: synthetic(n=120)
    monkeypatch.setitem(sys.modules, "modalens.data.demo", fake_demo)
    assert module.main(["--epochs", "2", "--threads", "1", "--out", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    for arch in ARCHITECTURES:
        report = json.loads((tmp_path / arch / "metrics.json").read_text())
        assert report["epochs_run"] == 2 and report["test"]["n"] == 18
        assert f"| {arch} | {report['test']['mae']:.3f} |" in table
        assert (tmp_path / arch / "model.safetensors").stat().st_size < 5 * 1024 * 1024


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_trained_models_explain_with_the_known_modality_roles(data, trained, arch):
    """Sentiment depends on text and audio only: the noise modality (vision) gets the least Shapley mass."""
    from modalens.interactions import explain

    model, _ = trained[arch]
    result = explain(
        model.to_predictor(),
        data.split("test"),
        feature_method=None,
        templates=False,
        projection=None,
        progress=False,
    )
    frame = result.to_frame()
    share = {m: float(frame[f"shapley_{m}"].abs().mean()) for m in ("text", "audio", "vision")}
    assert share["vision"] < 0.25 * min(share["text"], share["audio"]), share


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_committed_weights_reproduce_their_reported_test_metrics(arch):
    """The weights shipped in src/modalens/models/weights match the demo set and the metrics the README quotes."""
    from modalens.data.demo import load_demo
    from modalens.models.training import load_pretrained, pretrained_dir

    report = json.loads((pretrained_dir(arch) / "metrics.json").read_text())
    model = load_pretrained(arch)
    data = load_demo()
    measured = evaluate(model, data, np.flatnonzero(data.splits == "test"))
    for key in ("mae", "corr", "acc2_nonneg", "acc2_nonzero", "f1_nonzero", "acc7"):
        assert measured[key] == pytest.approx(report["test"][key], abs=1e-5), key
    assert (pretrained_dir(arch) / "model.safetensors").stat().st_size < 5 * 1024 * 1024
