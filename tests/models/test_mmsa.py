"""MMSA's models through modalens.models.mmsa, against MMSA's own code (PyPI ``mmsa`` 2.2.1, installed by make test).

The demo set is written in MMSA's layout (``save_mmsa``); MMSA's own data loader reads it and sizes each model's
``args``; ``AMIO(args)`` is built by MMSA from ``get_config_regression`` (random weights, seeded) and saved as
``MMSA_run`` saves it. The adapter then loads that checkpoint from the data modalens reads (``load_mmsa``) and must
give exactly MMSA's own outputs, called as MMSA's trainers call each model: aligned and unaligned models, models
that average audio and vision over time, Self-MM and MMIM with their lengths, BERT inside (a tiny local BERT).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tests.models import mmsa_setup as setup
from tests.models.tiny_bert import build_tiny_bert
from tests.requirements import require_module

import modalens as ml
from modalens.data.mmsa import load_mmsa
from modalens.data.mmsa_export import save_mmsa
from modalens.models.mmsa import (
    MODEL_NAMES,
    NORMALIZED_BY_DEFAULT,
    UNSUPPORTED,
    MMSAPredictor,
    MMSASpec,
    load_mmsa_model,
    mmsa_config,
)
from modalens.models.predictor import PredictorError

require_module("transformers")
require_module("easydict")
if importlib.util.find_spec("MMSA") is None:  # (importing MMSA itself needs pynvml, which modalens stands in for)
    require_module("MMSA")  # make test installs it: pip install --no-deps mmsa==2.2.1 (see the Makefile)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The demo subset in MMSA's layout, with text_bert from a tiny BERT's vocabulary (32 and 768 wide)."""
    from transformers import AutoTokenizer

    root = tmp_path_factory.mktemp("mmsa")
    demo = setup.demo_subset()
    bert = build_tiny_bert(root / "bert", list(demo.texts))
    wide = build_tiny_bert(root / "bert768", list(demo.texts), hidden=768)  # MISA and MMIM assume BERT-base's width
    tokenizer = AutoTokenizer.from_pretrained(bert)
    data = save_mmsa(demo, root / "unaligned.pkl", tokenizer=tokenizer, max_length=setup.MAX_PIECES)
    # as MMSA's aligned_50.pkl: text pieces, audio and vision of one length (the demo's 20 words)
    aligned = save_mmsa(demo, root / "aligned.pkl", tokenizer=tokenizer, max_length=demo["audio"].n_steps)
    return {"root": root, "data": data, "aligned": aligned, "bert": bert, "wide": wide, "tokenizer": tokenizer}


def modalens_view(files, use_bert: bool, data: str = "data"):
    """The exported file as modalens reads it for a model (text_bert as tokens for BERT-based models)."""
    if use_bert:
        return load_mmsa(files[data], text_field="text_bert", tokenizer=files["tokenizer"])
    return load_mmsa(files[data])


def batch(ds):
    names = ("text", "audio", "vision")
    return {m: ds[m].values for m in names}, {m: ds[m].step_mask() for m in names}


CASES = {  # model: (the file it reads, changes to MMSA's MOSI config)
    # unaligned (need_data_aligned false), audio and vision averaged over time (need_normalized)
    "tfn": ("data", {}),
    "lmf": ("data", {}),
    "lf_dnn": ("data", {}),
    # unaligned sequences, cross-modal attention
    "mult": ("data", {}),
    # aligned models (need_data_aligned): AMIO aligns the sequences first where need_model_aligned says so
    "ef_lstm": ("aligned", {}),
    "mfn": ("aligned", {}),
    "graph_mfn": ("aligned", {}),
    "mfm": ("aligned", {}),  # returns a tuple
    # BERT inside: text_bert [B, 3, L]; Self-MM and MMIM take (features, lengths)
    "self_mm": ("data", {"pretrained": "bert", "text_out": 32}),
    "mmim": ("data", {"pretrained": "wide"}),
    "misa": ("aligned", {"pretrained": "wide"}),  # reads audio and vision with the text's lengths
}


@pytest.mark.parametrize("name", list(CASES))
def test_adapter_gives_mmsas_own_outputs(files, tmp_path, name):
    data, changes = CASES[name]
    overrides = {k: str(files[v]) if k == "pretrained" else v for k, v in changes.items()}
    args = setup.mmsa_args(name, files[data], **overrides)
    model, loaders = setup.build(args)
    expected = setup.mmsa_predictions(model, args, loaders)
    folder = tmp_path / name
    setup.save_checkpoint(model, args, folder)
    ds = modalens_view(files, bool(args.get("use_bert")), data)
    predictor = load_mmsa_model(folder, dataset=ds)  # a folder: <model>-mosi.pth and config.json
    assert predictor.model_name == name and predictor.use_bert == bool(args.get("use_bert"))
    assert predictor.normalized == bool(args.get("need_normalized"))
    test = ds.split("test")
    got = predictor.predict(*batch(test))
    assert got.shape == (len(test), 1)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    # ml.wrap recognises MMSA's modules: the AMIO MMSA built, with the args it was built from
    wrapped = ml.wrap(model, ["text", "audio", "vision"], config=args)
    assert isinstance(wrapped, MMSAPredictor)
    np.testing.assert_allclose(wrapped.predict(*batch(test)), expected, rtol=1e-4, atol=1e-5)
    # small batches give the same answers (the adapter splits large ones)
    predictor.batch_size = 5
    np.testing.assert_allclose(predictor.predict(*batch(test)), got, rtol=1e-5, atol=1e-6)


def test_wrap_reads_conventions_from_the_module(files):
    """Without a config: Self-MM's name, BERT and lengths from its class; TFN's averaging from MMSA's defaults."""
    args = setup.mmsa_args("self_mm", files["data"], pretrained=str(files["bert"]), text_out=32)
    model, _ = setup.build(args)
    wrapped = ml.wrap(model, ["text", "audio", "vision"])
    assert (wrapped.model_name, wrapped.use_bert, wrapped.normalized) == ("self_mm", True, False)
    bare = ml.wrap(model.Model, ["text", "audio", "vision"])  # the model class without its AMIO
    test = modalens_view(files, True).split("test")
    np.testing.assert_allclose(bare.predict(*batch(test)), wrapped.predict(*batch(test)), rtol=1e-5, atol=1e-6)
    text_head = ml.wrap(model, ["text", "audio", "vision"], output="T")
    assert text_head.output_names == ["T"] and text_head.predict(*batch(test)).shape == (len(test), 1)
    with pytest.raises(PredictorError, match=r"no output 'X'; it has \['M', 'T', 'A', 'V'"):
        ml.wrap(model, ["text", "audio", "vision"], output="X").predict(*batch(test))
    tfn, _ = setup.build(setup.mmsa_args("tfn", files["data"]))
    wrapped = ml.wrap(tfn, ["text", "audio", "vision"])
    assert (wrapped.model_name, wrapped.use_bert, wrapped.normalized) == ("tfn", False, True)
    assert wrapped.supports_gradients and not ml.wrap(model, ["text", "audio", "vision"]).supports_gradients
    assert ml.wrap(tfn, ["t", "a", "v"]).describe()["mmsa"]["model"] == "tfn"


def test_text_kind_is_checked(files, tmp_path):
    args = setup.mmsa_args("self_mm", files["data"], pretrained=str(files["bert"]), text_out=32)
    model, _ = setup.build(args)
    setup.save_checkpoint(model, args, tmp_path / "self_mm")
    with pytest.raises(PredictorError, match="load the file with text_field='text_bert'"):
        load_mmsa_model(tmp_path / "self_mm", dataset=modalens_view(files, False))
    features = modalens_view(files, False).split("test")
    predictor = load_mmsa_model(tmp_path / "self_mm", dataset=modalens_view(files, True))
    with pytest.raises(PredictorError, match="must be a token modality"):
        predictor.predict(*batch(features))
    tfn_args = setup.mmsa_args("tfn", files["data"])
    tfn, _ = setup.build(tfn_args)
    setup.save_checkpoint(tfn, tfn_args, tmp_path / "tfn")
    with pytest.raises(PredictorError, match="holds token ids: load the file with text_field='text'"):
        load_mmsa_model(tmp_path / "tfn", dataset=modalens_view(files, True))


def test_checkpoints_are_checked(files, tmp_path):
    import torch

    args = setup.mmsa_args("tfn", files["data"])
    model, _ = setup.build(args)
    path = setup.save_checkpoint(model, args, tmp_path / "tfn")
    ds = modalens_view(files, False)
    state = torch.load(path, weights_only=True)
    # weights of another shape: a model trained on other features
    bad = dict(state)
    key = next(k for k in bad if k.endswith("audio_subnet.linear_1.weight"))
    bad[key] = torch.zeros(3, 3)
    torch.save(bad, tmp_path / "tfn-mosi.pth")
    with pytest.raises(PredictorError, match=r"1 weights of another shape, e\.g\. Model\.audio_subnet"):
        load_mmsa_model(tmp_path / "tfn-mosi.pth", dataset=ds)
    missing = {k: v for k, v in state.items() if k != key}
    torch.save(missing, tmp_path / "tfn-mosi.pth")
    with pytest.raises(PredictorError, match="1 weights missing"):
        load_mmsa_model(tmp_path / "tfn-mosi.pth", dataset=ds)
    # a checkpoint saved from the bare model (no "Model." prefix) loads too
    torch.save(model.Model.state_dict(), tmp_path / "tfn-mosi.pth")
    assert load_mmsa_model(tmp_path / "tfn-mosi.pth", dataset=ds).model_name == "tfn"
    # a pickle that would run code is refused (weights_only)
    (tmp_path / "evil").mkdir()
    torch.save({"x": subprocess.Popen}, tmp_path / "evil" / "tfn-mosi.pth")
    with pytest.raises(PredictorError, match="loads without running code"):
        load_mmsa_model(tmp_path / "evil" / "tfn-mosi.pth", dataset=ds)
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(PredictorError, match="garbage.pth: not a torch state dict"):
        load_mmsa_model(tmp_path / "garbage.pth", "tfn", dataset_name="mosi", dataset=ds)
    with pytest.raises(PredictorError, match="no such checkpoint"):
        load_mmsa_model(tmp_path / "absent.pth", dataset=ds)
    with pytest.raises(PredictorError, match=r"say which dataset.*dataset=mosi\|mosei\|sims"):
        load_mmsa_model(tmp_path / "garbage.pth", "tfn", dataset=ds)
    with pytest.raises(PredictorError, match="say which MMSA model"):
        load_mmsa_model(tmp_path / "garbage.pth", dataset=ds)


def test_configs(tmp_path, files):
    # MMSA's own config, model and dataset from MMSA_run's file name
    default = mmsa_config(checkpoint="saved_models/self_mm-mosei.pth")
    assert default.model_name == "self_mm" and default.dataset_name == "mosei" and default.use_bert
    assert default.train_mode == "regression" and default.feature_dims == [768, 74, 35]
    assert mmsa_config("MulT", dataset_name="sims").model_name == "mult"
    # a file in MMSA's layout needs the dataset; a flat file names its model
    from MMSA import get_config_all

    layout = tmp_path / "config_regression.json"
    layout.write_text(json.dumps(get_config_all("regression")), encoding="utf-8")
    assert mmsa_config("tfn", config=layout, dataset_name="mosi").hidden_dims == [128, 32, 128]
    with pytest.raises(PredictorError, match="has no settings for dataset 'mosi'"):
        mmsa_config("mlmf", config=layout, dataset_name="mosi")
    flat = tmp_path / "model" / "config.json"
    flat.parent.mkdir()
    (flat.parent / "bert").mkdir()
    flat.write_text(json.dumps({"model_name": "self_mm", "use_bert": True, "pretrained": "bert"}), encoding="utf-8")
    args = mmsa_config(config=flat)
    assert args.model_name == "self_mm" and args.pretrained == str(flat.parent / "bert")  # relative to the config
    with pytest.raises(PredictorError, match="is the config of 'self_mm', not 'tfn'"):
        mmsa_config("tfn", config=flat)
    with pytest.raises(PredictorError, match="cannot be explained as a predictor: MCTN's forward pass needs"):
        mmsa_config("mctn", dataset_name="mosi")
    with pytest.raises(PredictorError, match="unknown MMSA model 'bert'"):
        mmsa_config("bert", dataset_name="mosi")
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    with pytest.raises(PredictorError, match="broken.json: not a readable JSON config"):
        mmsa_config("tfn", config=tmp_path / "broken.json")


def test_spec(tmp_path):
    (tmp_path / "self_mm-mosi.pth").write_bytes(b"")
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    ckpt = tmp_path / "self_mm-mosi.pth"
    spec = MMSASpec.parse(f"mmsa:{ckpt}")
    assert (spec.model, spec.checkpoint, spec.config, spec.dataset, spec.output) == (None, ckpt, None, None, "M")
    spec = MMSASpec.parse(f"mmsa:Self_MM:{ckpt}:{tmp_path / 'config.json'}:dataset=MOSI:pretrained=/b:output=T")
    assert (spec.model, spec.config, spec.dataset, spec.pretrained, spec.output) == (
        "self_mm",
        tmp_path / "config.json",
        "mosi",
        "/b",
        "T",
    )
    assert MMSASpec.parse(f"mmsa:{tmp_path}").checkpoint == tmp_path
    for bad, message in [
        ("mmsa:", "no checkpoint"),
        ("mmsa:tfn", "no checkpoint"),
        (f"mmsa:{tmp_path / 'absent.pth'}", "absent.pth does not exist"),
        (f"mmsa:{ckpt}:{tmp_path / 'absent.json'}", "absent.json is not a file"),
        (f"mmsa:{ckpt}:dataset=imdb", "dataset=imdb is not one of mosi, mosei, sims"),
        (f"mmsa:{ckpt}:colour=red", "unknown option 'colour'"),
        (f"mmsa:{ckpt}:a:b", "too many fields"),
        (f"mmsa:mctn:{ckpt}", "MCTN's forward pass needs the labels"),
    ]:
        with pytest.raises(PredictorError, match=message):
            MMSASpec.parse(bad)


def test_model_table_matches_mmsa():
    """The adapter's table of models agrees with the installed MMSA (AMIO's map, the defaults of its config)."""
    from MMSA import get_config_all

    config = get_config_all("regression")
    assert set(MODEL_NAMES) | set(UNSUPPORTED) == {k for k in config if k != "datasetCommonParams"}
    normalized = {
        k for k, v in config.items() if k != "datasetCommonParams" and v["commonParams"].get("need_normalized")
    }
    assert normalized == NORMALIZED_BY_DEFAULT


def test_import_leaves_the_process_as_it_was():
    """MMSA imports pynvml and sets two CUDA variables at import; neither outlives modalens' import of it."""
    code = (
        "import os, sys\n"
        "from modalens.models.mmsa import import_mmsa\n"
        "real = __import__('importlib').util.find_spec('pynvml') is not None\n"
        "import_mmsa()\n"
        "import MMSA.utils.functions as f\n"
        "assert 'CUDA_DEVICE_ORDER' not in os.environ and 'CUBLAS_WORKSPACE_CONFIG' not in os.environ\n"
        "assert real or ('pynvml' not in sys.modules and 'stand-in' in f.pynvml.__doc__.lower())\n"
        "print('ok', real)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_DEVICE_ORDER", "CUBLAS_WORKSPACE_CONFIG")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("ok")


def test_unsupported_and_foreign_modules(files):
    import torch

    with pytest.raises(PredictorError, match="expected a module of MMSA's package"):
        MMSAPredictor(torch.nn.Linear(2, 1))
    args = setup.mmsa_args("tfn", files["data"])
    model, _ = setup.build(args)
    with pytest.raises(PredictorError, match="reads three modalities"):
        MMSAPredictor(model, ["text", "audio"])
    with pytest.raises(PredictorError, match="TFR-Net takes MMSA's missing-modality inputs"):
        MMSAPredictor(model, model_name="tfr_net")
    assert isinstance(ml.wrap(torch.nn.Linear(2, 1), ["x"]), ml.TorchPredictor)  # other modules as before
    assert Path(files["data"]).is_file()


def test_cli_refusals(files, tmp_path, capsys):
    """Bad --model mmsa:... specs and mismatched checkpoints end in one error line (exit status 2)."""
    from modalens.cli.main import main

    args = setup.mmsa_args("tfn", files["data"])
    model, _ = setup.build(args)
    checkpoint = setup.save_checkpoint(model, args, tmp_path / "tfn", config=False)
    # the data is read as MMSA's loader reads it (-inf audio as 0; text_bert through BERT's tokenizer)
    assert MMSASpec.parse(f"mmsa:{checkpoint}").load_options() == {"nonfinite": "zero"}
    options = MMSASpec.parse(f"mmsa:self_mm:{checkpoint}:dataset=mosi:pretrained={files['bert']}").load_options()
    assert options["text_field"] == "text_bert" and options["tokenizer"].mask_token == "[MASK]"
    for spec, message in [
        (f"mmsa:{tmp_path / 'absent.pth'}", "absent.pth does not exist"),
        (f"mmsa:{checkpoint}:dataset=imdb", "dataset=imdb is not one of"),
        # no hub: bert-base-uncased (MMSA's default) is not on this machine
        (
            f"mmsa:self_mm:{checkpoint}",
            r"uses BERT 'bert-base-uncased', whose tokenizer cannot be read.*pretrained=DIR",
        ),
        (f"mmsa:self_mm:{checkpoint}:pretrained={files['bert']}", r"tfn-mosi\.pth does not fit MMSA's SELF_MM"),
    ]:
        with pytest.raises(SystemExit) as stop:
            main(["explain", str(files["data"]), "--model", spec, "--out", str(tmp_path / "run")])
        err = capsys.readouterr().err
        assert stop.value.code == 2 and "error:" in err and "Traceback" not in err, err
        assert re.search(message, " ".join(err.split())), err
