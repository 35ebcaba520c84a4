"""Shared set-up of the MMSA tests: the demo set in MMSA's layout, MMSA's own data loader and models, a short loop.

Everything MMSA-side is MMSA's own code (``MMSA.data_loader.MMDataLoader`` reads the exported pickle, ``AMIO``
builds the models from ``get_config_regression``); only the training loop is ours (a few Adam steps on MMSA's L1
loss of the fused output "M", as its regression trainers use), because MMSA's trainers run until early stopping.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np

SIZES = {"train": 64, "valid": 16, "test": 24}
MAX_PIECES = 32  # text_bert's length (MMSA's MOSI/MOSEI files use 50)


def demo_subset() -> Any:
    """The first instances of each split of the demo set (``modalens.data.demo.load_demo``)."""
    from modalens.data.demo import load_demo

    ds = load_demo()
    splits = np.asarray(ds.splits)
    return ds.take(np.concatenate([np.flatnonzero(splits == s)[:k] for s, k in SIZES.items()]))


def mmsa_args(name: str, data: Path, **overrides: Any) -> Any:
    """MMSA's regression config of ``name`` for MOSI (``get_config_regression``), reading ``data``, on the CPU."""
    import torch

    from modalens.models.mmsa import mmsa_config

    args = mmsa_config(name, dataset_name="mosi")
    args.update(
        featurePath=str(data),
        custom_feature=None,
        feature_T=None,
        feature_A=None,
        feature_V=None,
        device=torch.device("cpu"),
        train_mode="regression",
        cur_seed=1,
    )
    args.update(overrides)
    return args


def mmsa_loaders(args: Any, batch_size: int = 16) -> dict:
    """MMSA's own data loader over ``args.featurePath`` (it sizes ``args`` from the data, as in ``MMSA_run``)."""
    from MMSA.data_loader import MMDataLoader

    args["batch_size"] = batch_size
    return MMDataLoader(args, num_workers=0)


def call_like_mmsa(model: Any, args: Any, batch: dict) -> Any:
    """The fused output "M" of ``model`` on a batch of MMSA's loader, called as MMSA's trainers call it."""
    text, audio, vision = batch["text"], batch["audio"], batch["vision"]
    if args["model_name"] in ("self_mm", "mmim"):
        audio = (audio, batch["audio_lengths"]) if not args["need_data_aligned"] else (audio, 0)
        vision = (vision, batch["vision_lengths"]) if not args["need_data_aligned"] else (vision, 0)
    out = model(text, audio, vision)
    if isinstance(out, tuple):  # MFM
        out = out[0]
    return out["M"] if isinstance(out, dict) else out


def build(args: Any, seed: int = 0) -> tuple[Any, dict]:
    """MMSA's ``_run`` order: the data loader sizes ``args``, then ``AMIO(args)`` is built."""
    import torch
    from MMSA.models import AMIO

    loaders = mmsa_loaders(args)
    torch.manual_seed(seed)
    return AMIO(args), loaders


def train(model: Any, args: Any, loaders: dict, *, epochs: int, lr: float = 2e-3) -> list[float]:
    """A few epochs of Adam on the L1 loss of "M" (MMSA's regression criterion); returns the mean loss per epoch."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    model.train()
    losses = []
    for _ in range(epochs):
        total, count = 0.0, 0
        for batch in loaders["train"]:
            out = call_like_mmsa(model, args, batch)
            loss = torch.nn.functional.l1_loss(out, batch["labels"]["M"].view(-1, 1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, count = total + float(loss.detach()) * len(out), count + len(out)
        losses.append(total / count)
    model.eval()
    return losses


def mmsa_predictions(model: Any, args: Any, loaders: dict, split: str = "test") -> np.ndarray:
    """MMSA's own outputs "M" on a split, in the file's order (its loader shuffles; batches carry their index)."""
    import torch

    model.eval()
    rows, outs = [], []
    with torch.no_grad():
        for batch in loaders[split]:
            rows.append(np.asarray(batch["index"]))
            outs.append(call_like_mmsa(model, args, batch).numpy())
    order = np.argsort(np.concatenate(rows))
    return np.concatenate(outs)[order]


def save_checkpoint(model: Any, args: Any, folder: Path, *, config: bool = True) -> Path:
    """Save as ``MMSA_run`` does (``state_dict`` to ``<model>-<dataset>.pth``), with a flat ``config.json`` of the
    arguments (what ``MMSA_test`` reads; the sizes MMSA's loader set are left out, the data says them)."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{args['model_name']}-{args['dataset_name']}.pth"
    torch.save(model.state_dict(), path)
    if config:
        skip = {"device", "featurePath", "model_save_path", "feature_dims", "seq_lens"}
        flat = {k: v for k, v in dict(args).items() if k not in skip}
        (folder / "config.json").write_text(json.dumps(copy.deepcopy(flat), default=str, indent=1), encoding="utf-8")
    return path
