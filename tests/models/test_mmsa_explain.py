"""End to end with MMSA's own models: the demo set exported to MMSA's layout, read by MMSA's data loader, a TFN and a
Self-MM (with a tiny local BERT inside) built from MMSA's config and trained a few epochs on the CPU, saved as
``MMSA_run`` saves them, then explained with ``modalens.explain`` and ``modalens explain --model mmsa:...`` and opened
in the app.

Known answers: the adapter's predictions are MMSA's own outputs on the same file; a coalition without audio (TFN)
is the model on the audio baseline averaged over time, as MMSA's loader averages; a coalition without text
(Self-MM) is the model on text_bert whose real pieces are the tokenizer's [MASK] with the attention mask as it was.
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from tests.models import mmsa_setup as setup
from tests.models.tiny_bert import build_tiny_bert
from tests.requirements import require_module

import modalens as ml
from modalens.data.mmsa import load_mmsa
from modalens.data.mmsa_export import save_mmsa
from modalens.models import Masker
from modalens.models.mmsa import load_mmsa_model

require_module("transformers")
require_module("easydict")
if importlib.util.find_spec("MMSA") is None:
    require_module("MMSA")  # make test installs it: pip install --no-deps mmsa==2.2.1 (see the Makefile)

pytestmark = pytest.mark.slow
EXPLAINED = 8  # test instances explained


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo subset, a tiny BERT (in the Self-MM model folder, as a user would ship it) and the MMSA file."""
    from transformers import AutoTokenizer

    root = tmp_path_factory.mktemp("e2e")
    subset = setup.demo_subset()
    bert = build_tiny_bert(root / "self_mm" / "bert", list(subset.texts))
    tokenizer = AutoTokenizer.from_pretrained(bert)
    data = save_mmsa(subset, root / "demo.pkl", tokenizer=tokenizer, max_length=setup.MAX_PIECES)
    return {"root": root, "data": data, "bert": bert, "tokenizer": tokenizer}


def run_cli(*argv: str) -> None:
    from modalens.cli.main import main

    with pytest.raises(SystemExit) as stop:
        main(list(argv))
    assert stop.value.code in (0, None)


def inputs(ds):
    names = ("text", "audio", "vision")
    return {m: ds[m].values for m in names}, {m: ds[m].step_mask() for m in names}


def check_served(run, n: int) -> None:
    """The app serves the run: its instances (Shapley values adding up) and one instance's words and tracks."""
    from modalens.app.server import create_app

    client = TestClient(create_app([run]), base_url="http://127.0.0.1")
    run_id = run.name
    assert [r["id"] for r in client.get("/api/runs").json()] == [run_id]
    doc = client.get(f"/api/runs/{run_id}/instances").json()
    assert doc["n"] == n and doc["modalities"] == ["text", "audio", "vision"]
    total = np.array(doc["columns"]["base_value"]) + sum(np.array(doc["shapley"][m]) for m in doc["modalities"])
    np.testing.assert_allclose(total, doc["columns"]["prediction"], atol=1e-4)
    detail = client.get(f"/api/runs/{run_id}/instances/0").json()
    assert detail["warnings"] == []
    assert detail["words"]["text"] and all(isinstance(w["token"], str) for w in detail["words"]["text"])
    assert {t["modality"] for t in detail["tracks"]} >= {"audio", "vision"}
    return detail


def test_tfn_end_to_end(demo, tmp_path):
    args = setup.mmsa_args("tfn", demo["data"])  # MMSA's own MOSI config, as it ships
    model, loaders = setup.build(args)
    losses = setup.train(model, args, loaders, epochs=6)
    assert losses[-1] < losses[0]
    expected = setup.mmsa_predictions(model, args, loaders)
    # saved as MMSA_run saves it: <model>-<dataset>.pth, no config (MMSA's own config_regression.json applies)
    checkpoint = setup.save_checkpoint(model, args, tmp_path / "saved_models", config=False)

    ds = load_mmsa(demo["data"])
    predictor = load_mmsa_model(checkpoint, dataset=ds, masker=Masker("mean").fit(ds.split("train")))
    test = ds.split("test")
    np.testing.assert_allclose(predictor.predict(*inputs(test)), expected, rtol=1e-4, atol=1e-5)
    # without audio: the model on the audio baseline (the training mean), averaged over time as MMSA's loader does
    import torch

    values, masks = inputs(test)
    baseline = np.broadcast_to(
        predictor.masker.baseline("audio", *test["audio"].values.shape[1:]), values["audio"].shape
    )
    with torch.no_grad():
        by_hand = model(
            torch.as_tensor(values["text"]),
            torch.as_tensor(baseline).mean(1, keepdim=True),
            torch.as_tensor(values["vision"]).mean(1, keepdim=True),
        )["M"].numpy()
    np.testing.assert_allclose(predictor.predict(values, masks, absent=["audio"]), by_hand, rtol=1e-4, atol=1e-5)

    expl = ml.explain(predictor, test.take(range(EXPLAINED)), n_permutations=4, projection="pca", progress=False)
    np.testing.assert_allclose(expl.predictions, expected[:EXPLAINED, 0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(expl.shapley.sum(1), expl.predictions - expl.base_values, atol=1e-4)
    np.testing.assert_allclose(expl.coalition_values[:, 0b101], by_hand[:EXPLAINED, 0], rtol=1e-4, atol=1e-5)
    fa = expl.feature_attributions
    assert set(fa["modality"]) == {"text", "audio", "vision"}
    assert expl.model["mmsa"]["model"] == "tfn" and expl.model["mmsa"]["need_normalized"]

    # the command line: the checkpoint alone names the model and the dataset
    out = tmp_path / "runs" / "tfn"
    run_cli(
        "explain", str(demo["data"]), "--model", f"mmsa:{checkpoint}", "--out", str(out),
        "--limit", str(EXPLAINED), "--n-permutations", "2", "--projection", "pca",
    )  # fmt: skip
    run = ml.load_run(out)
    np.testing.assert_allclose(run.predictions, expected[:EXPLAINED, 0], rtol=1e-4, atol=1e-5)
    assert run.model["mmsa"]["checkpoint"] == str(checkpoint)
    check_served(out, EXPLAINED)


def test_self_mm_end_to_end(demo, tmp_path):
    import torch

    folder = demo["bert"].parent  # self_mm/: the weights, config.json and bert/
    args = setup.mmsa_args("self_mm", demo["data"], pretrained=str(demo["bert"]), text_out=32)
    model, loaders = setup.build(args)
    losses = setup.train(model, args, loaders, epochs=6, lr=1e-3)
    assert np.isfinite(losses).all()
    expected = setup.mmsa_predictions(model, args, loaders)
    setup.save_checkpoint(model, args, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "pretrained": "bert"}))  # relative: ships with it

    tokenizer = demo["tokenizer"]
    ds = load_mmsa(demo["data"], text_field="text_bert", tokenizer=tokenizer)
    predictor = load_mmsa_model(folder, dataset=ds)
    assert predictor.use_bert and ds["text"].tokens.mask_id == tokenizer.mask_token_id
    test = ds.split("test")
    values, masks = inputs(test)
    np.testing.assert_allclose(predictor.predict(values, masks), expected, rtol=1e-4, atol=1e-5)
    # without text: every real piece is [MASK], [CLS]/[SEP]/[PAD] stay, the attention mask is the data's
    predictor.masker.bind(ds)
    ids = values["text"]
    special = np.isin(ids, [tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id])
    masked = np.where(special, ids, tokenizer.mask_token_id)
    text_bert = np.stack([masked, masks["text"], np.zeros_like(ids)], 1).astype(np.float32)
    lengths = {m: torch.as_tensor(masks[m].sum(1)) for m in ("audio", "vision")}
    with torch.no_grad():
        by_hand = model(
            torch.as_tensor(text_bert),
            (torch.as_tensor(values["audio"]), lengths["audio"]),
            (torch.as_tensor(values["vision"]), lengths["vision"]),
        )["M"].numpy()
    np.testing.assert_allclose(predictor.predict(values, masks, absent=["text"]), by_hand, rtol=1e-4, atol=1e-5)

    explained = test.take(range(EXPLAINED))
    expl = ml.explain(predictor, explained, n_permutations=4, players="words", projection="pca", progress=False)
    np.testing.assert_allclose(expl.predictions, expected[:EXPLAINED, 0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(expl.shapley.sum(1), expl.predictions - expl.base_values, atol=1e-4)
    np.testing.assert_allclose(expl.coalition_values[:, 0b110], by_hand[:EXPLAINED, 0], rtol=1e-4, atol=1e-5)
    words = expl.word_attributions
    assert words is not None and len(words)
    first = words[words["instance"] == words["instance"].min()]
    assert list(first["text"]) == explained["text"].word_texts[0]  # the words, each the sum of its pieces
    assert expl.model["mmsa"]["model"] == "self_mm" and expl.model["mmsa"]["use_bert"]

    # the command line: the model folder (weights, config.json, bert/); the data is read as text_bert through BERT's
    # own tokenizer
    out = tmp_path / "runs" / "self_mm"
    run_cli(
        "explain", str(demo["data"]), "--model", f"mmsa:{folder}", "--out", str(out),
        "--limit", str(EXPLAINED), "--n-permutations", "2", "--players", "words", "--projection", "pca",
    )  # fmt: skip
    run = ml.load_run(out)
    np.testing.assert_allclose(run.predictions, expected[:EXPLAINED, 0], rtol=1e-4, atol=1e-5)
    assert run.dataset["text"].tokens is not None
    detail = check_served(out, EXPLAINED)
    pieces = run.dataset["text"].words[0]
    shown = {w["position"]: w["token"] for w in detail["words"]["text"]}
    assert shown and all(shown[p] == pieces[p] for p in shown)  # the word pieces, at their positions
    assert pieces[0] == tokenizer.cls_token and 0 not in shown  # [CLS] is no player
