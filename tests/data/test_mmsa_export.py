"""save_mmsa writes MMSA's pickle layout: what load_mmsa reads back is what was written, field by field."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from modalens.data.dataset import DatasetError, MultimodalDataset
from modalens.data.loaders import load_dataset, save_dataset
from modalens.data.mmsa import load_mmsa
from modalens.data.mmsa_export import save_mmsa
from modalens.data.synthetic import make_synthetic
from modalens.data.tokens import tokenize
from tests.models.tiny_bert import build_tiny_bert
from tests.requirements import require_module


@pytest.fixture(scope="module")
def demo():
    from modalens.data.demo import load_demo

    ds = load_demo()
    splits = np.asarray(ds.splits)
    return ds.take(
        np.concatenate([np.flatnonzero(splits == s)[:k] for s, k in (("train", 12), ("valid", 4), ("test", 6))])
    )


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory, demo):
    require_module("transformers")
    from transformers import AutoTokenizer

    folder = build_tiny_bert(tmp_path_factory.mktemp("bert"), list(demo.texts))
    return AutoTokenizer.from_pretrained(folder)


def test_features_round_trip(tmp_path, demo):
    path = save_mmsa(demo, tmp_path / "demo.pkl")
    raw = pickle.loads(path.read_bytes())
    assert list(raw) == ["train", "valid", "test"]
    test = raw["test"]
    assert {"raw_text", "id", "text", "audio", "vision", "regression_labels", "audio_lengths", "vision_lengths"} <= set(
        test
    )
    assert "text_bert" not in test and test["text"].dtype == np.float32 and test["raw_text"].dtype == object
    back = load_mmsa(path)
    assert list(back.ids) == list(demo.ids) and list(back.splits) == list(demo.splits)
    assert list(back.texts) == list(demo.texts)
    np.testing.assert_array_equal(back.labels, demo.labels)
    for m in ("text", "audio", "vision"):
        np.testing.assert_array_equal(back[m].values, demo[m].values)
        np.testing.assert_array_equal(back[m].step_mask(), demo[m].step_mask())
    np.testing.assert_array_equal(test["audio_lengths"], demo.split("test")["audio"].step_mask().sum(1))
    # per-instance meta columns come back as meta, as MMSA's own extra fields do
    assert list(back.meta["audio_role"]) == list(demo.meta["audio_role"])
    np.testing.assert_allclose(back.meta["vader_compound"], demo.meta["vader_compound"])
    # save_dataset picks the format from the extension
    again = save_dataset(demo, tmp_path / "again.pkl")
    np.testing.assert_array_equal(load_dataset(again)["vision"].values, demo["vision"].values)


def test_tokenizer_writes_text_bert_and_spreads_the_words(tmp_path, demo, tokenizer):
    path = save_mmsa(demo, tmp_path / "demo.pkl", tokenizer=tokenizer, max_length=40)
    raw = pickle.loads(path.read_bytes())["train"]
    assert raw["text_bert"].shape == (12, 3, 40) and raw["text"].shape == (12, 40, 33)
    words = [
        [w for w, m in zip(row, keep, strict=True) if m]
        for row, keep in zip(demo["text"].words, demo["text"].step_mask(), strict=True)
    ]
    pieces = tokenize([" ".join(w) for w in words], tokenizer, max_length=40)
    tokens = load_mmsa(path, text_field="text_bert", tokenizer=tokenizer)["text"]
    np.testing.assert_array_equal(tokens.values[:, : pieces.values.shape[1]], pieces.values)
    # the loader groups pieces into words by the tokenizer's ## marks (lower case: an uncased vocabulary)
    assert tokens.word_texts[0] == [w.lower() for w in words[0]]
    assert (tokens.segment_ids == 0).all()
    # each piece carries its word's features (the tokenizer's word of each piece); [CLS], [SEP] and padding zeros
    features = load_mmsa(path)["text"]
    index = np.pad(pieces.word_index, ((0, 0), (0, 40 - pieces.values.shape[1])), constant_values=-1)
    values = demo["text"].values
    for i in range(len(demo)):
        steps = np.flatnonzero(demo["text"].step_mask()[i])
        for s in range(40):
            w = index[i, s]
            expected = values[i, steps[w]] if w >= 0 else np.zeros(33, np.float32)
            np.testing.assert_array_equal(features.values[i, s], expected)
    np.testing.assert_array_equal(features.step_mask(), tokens.step_mask())  # text follows text_bert's mask


def test_token_modality_is_written_as_text_bert(tmp_path, demo, tokenizer):
    pieces = tokenize(list(demo.texts), tokenizer, max_length=24)
    ds = MultimodalDataset(
        [pieces, demo["audio"], demo["vision"]], demo.labels, ids=demo.ids, splits=demo.splits, texts=demo.texts
    )
    path = save_mmsa(ds, tmp_path / "tokens.pkl")
    raw = pickle.loads(path.read_bytes())["test"]
    assert "text" not in raw and raw["text_bert"].shape[1:] == (3, pieces.values.shape[1])
    back = load_mmsa(path, text_field="text_bert", tokenizer=tokenizer)
    np.testing.assert_array_equal(back["text"].values, pieces.values)
    np.testing.assert_array_equal(back["text"].step_mask(), pieces.step_mask())
    assert back["text"].word_texts[0] == [w.lower() for w in pieces.word_texts[0]]


def test_refusals(tmp_path, demo):
    syn = make_synthetic(20)
    with pytest.raises(DatasetError, match="no modality 'nope' for MMSA's text"):
        save_mmsa(syn, tmp_path / "x.pkl", text="nope")
    unsplit = MultimodalDataset(list(syn.modalities.values()), syn.labels)
    with pytest.raises(DatasetError, match="give splits="):
        save_mmsa(unsplit, tmp_path / "x.pkl")
    path = save_mmsa(unsplit, tmp_path / "x.pkl", splits=["train"] * 10 + ["test"] * 10)
    assert list(load_mmsa(path).splits) == ["train"] * 10 + ["test"] * 10
    with pytest.raises(DatasetError, match="splits= has 3 names for 20"):
        save_mmsa(unsplit, tmp_path / "x.pkl", splits=["train"] * 3)
