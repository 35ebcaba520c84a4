"""Training, evaluation and saving of the reference models.

:func:`train` fits one of :data:`~modalens.models.reference.ARCHITECTURES` on a
:class:`~modalens.data.MultimodalDataset`: it uses the dataset's ``train`` split, stops early on the ``valid`` split
(MAE for regression, cross-entropy for classification), restores the best epoch and reports the ``test`` split.
A dataset without a ``valid`` split gets a seeded 10 % of its training instances held out instead; a dataset
without splits trains on all but that held-out part and has no test report. Metrics are those of
:mod:`modalens.data.metrics` (MMSA conventions for sentiment). Ctrl-C stops training and keeps the
best epoch so far (and, with ``checkpoint_dir``, it is already on disk).

:func:`save_model` writes ``config.json`` + ``model.safetensors``; :func:`load_model` reads them back (safetensors
only, never pickle), validating the configuration and the weights and naming the file at fault.
"""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from modalens._core.errors import ModalensError
from modalens.data.dataset import MultimodalDataset
from modalens.data.metrics import classification_metrics, performance, sentiment_metrics
from modalens.models.loop import Callback, EarlyStopping, FitState, Hook, TimeLimit, fit, shuffled_batches
from modalens.models.reference import (
    ARCHITECTURES,
    ConfigError,
    ReferenceConfig,
    ReferenceModel,
    build_model,
    config_from_dict,
    make_config,
)

FORMAT_NAME = "modalens.reference-model"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_DIR = Path(__file__).parent / "weights"
VALID_SPLIT_NAMES = ("valid", "val", "validation", "dev")


__all__ = [
    "ModelFileError",
    "TrainingError",
    "TrainingHistory",
    "classification_metrics",
    "default_config",
    "evaluate",
    "load_model",
    "load_pretrained",
    "predict",
    "pretrained_dir",
    "read_model_config",
    "save_model",
    "sentiment_metrics",
    "split_indices",
    "train",
]


class ModelFileError(ModalensError, ValueError):
    """A saved model directory is missing a file, or a file is corrupt or does not match; the message names it."""


class TrainingError(ModalensError, ValueError):
    """A dataset cannot be used for training (no labels, an empty split ...)."""


# -- data plumbing -----------------------------------------------------------------------------------------------
def split_indices(dataset: MultimodalDataset, *, seed: int = 0, valid_fraction: float = 0.1) -> dict[str, np.ndarray]:
    """Instance indices for ``train``, ``valid`` and (when the dataset has one) ``test``.

    Named splits are used as they are (``valid`` may also be called ``val``, ``validation`` or ``dev``); a dataset
    whose splits name no ``train`` trains on everything not in valid/test. Without a validation split, a seeded
    ``valid_fraction`` of the training instances is held out.
    """
    n = len(dataset)
    splits = dataset.splits
    out: dict[str, np.ndarray] = {}
    if splits is not None:
        valid_name = next((s for s in VALID_SPLIT_NAMES if (splits == s).any()), None)
        if valid_name is not None:
            out["valid"] = np.flatnonzero(splits == valid_name)
        if (splits == "test").any():
            out["test"] = np.flatnonzero(splits == "test")
        if (splits == "train").any():
            out["train"] = np.flatnonzero(splits == "train")
        else:
            used = np.zeros(n, bool)
            for idx in out.values():
                used[idx] = True
            out["train"] = np.flatnonzero(~used)
    else:
        out["train"] = np.arange(n)
    if "valid" not in out:
        rng = np.random.default_rng(seed)
        train = rng.permutation(out["train"])
        n_valid = max(1, int(round(valid_fraction * train.size)))
        if train.size - n_valid < 1:
            raise TrainingError(
                f"dataset {dataset.name!r}: too few training instances ({train.size}) to hold out a validation part"
            )
        out["valid"], out["train"] = np.sort(train[:n_valid]), np.sort(train[n_valid:])
    if out["train"].size == 0:
        raise TrainingError(f"dataset {dataset.name!r}: the training split is empty")
    return out


def normalization_stats(dataset: MultimodalDataset, index: np.ndarray, names: Sequence[str]) -> dict[str, tuple]:
    """Per-feature mean and standard deviation over the real steps of the given instances."""
    stats = {}
    for name in names:
        modality = dataset[name]
        real = modality.values[index][modality.step_mask()[index]].astype(np.float64)
        if real.shape[0] == 0:
            stats[name] = (np.zeros(modality.values.shape[2]), np.ones(modality.values.shape[2]))
        else:
            stats[name] = (real.mean(0), real.std(0))
    return stats


def _batch(
    dataset: MultimodalDataset, names: Sequence[str], index: np.ndarray, device: torch.device
) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
    tensors = [torch.from_numpy(np.ascontiguousarray(dataset[m].values[index])).to(device) for m in names]
    masks = {m: torch.from_numpy(np.ascontiguousarray(dataset[m].step_mask()[index])).to(device) for m in names}
    return tensors, masks


def check_compatible(module: ReferenceModel, dataset: MultimodalDataset) -> None:
    """Raise a clear error if the dataset lacks a modality the model reads or has other feature dimensions."""
    for name, dim in module.config.modalities.items():
        if name not in dataset.modalities:
            raise TrainingError(
                f"the model reads modality {name!r}, which dataset {dataset.name!r} lacks "
                f"(it has {dataset.modality_names})"
            )
        got = dataset[name].values.shape[2]
        if got != dim:
            raise TrainingError(
                f"modality {name!r}: the model expects D = {dim} features, dataset {dataset.name!r} has {got}"
            )


def predict(
    module: ReferenceModel,
    dataset: MultimodalDataset,
    index: np.ndarray | None = None,
    *,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Model output for the given instances: ``[N]`` for regression, ``[N, C]`` logits for classification."""
    check_compatible(module, dataset)
    device = torch.device(device)
    index = np.arange(len(dataset)) if index is None else np.asarray(index)
    was_training = module.training
    module.eval()
    outs = []
    with torch.inference_mode():
        for start in range(0, index.size, batch_size):
            tensors, masks = _batch(dataset, module.modalities, index[start : start + batch_size], device)
            outs.append(module(*tensors, masks=masks).float().cpu().numpy())
    module.train(was_training)
    if not outs:
        return np.zeros((0,) if module.config.task == "regression" else (0, module.config.n_outputs), np.float32)
    return np.concatenate(outs, axis=0)


def evaluate(
    module: ReferenceModel,
    dataset: MultimodalDataset,
    index: np.ndarray | None = None,
    *,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """Metrics of the model on the given instances (:func:`sentiment_metrics` or :func:`classification_metrics`)."""
    if dataset.labels is None:
        raise TrainingError(f"dataset {dataset.name!r} has no labels to evaluate against")
    index = np.arange(len(dataset)) if index is None else np.asarray(index)
    out = predict(module, dataset, index, batch_size=batch_size, device=device)
    return performance(module.config.task, dataset.labels[index], out)


# -- training ----------------------------------------------------------------------------------------------------
@dataclass
class TrainingHistory:
    """What happened during :func:`train`.

    ``epochs`` holds one dict per finished epoch (``epoch``, ``train_loss``, ``valid_loss``, the validation metrics
    prefixed ``valid_``, ``seconds``); ``best_valid`` and ``test`` are the metrics of the restored best epoch.
    """

    architecture: str
    config: dict[str, Any]
    split_sizes: dict[str, int]
    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None
    best_valid: dict[str, Any] = field(default_factory=dict)
    test: dict[str, Any] | None = None
    stopped_early: bool = False
    interrupted: bool = False
    time_limited: bool = False
    seconds: float = 0.0
    monitor: str = "valid_mae"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN written as null)."""
        return _json_safe(asdict(self))


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def default_config(
    dataset: MultimodalDataset,
    architecture: str,
    modalities: Sequence[str] | None = None,
    **options: Any,
) -> ReferenceConfig:
    """The configuration :func:`train` builds for a dataset: its modalities and dimensions, its label kind."""
    if dataset.labels is None:
        raise TrainingError(f"dataset {dataset.name!r} has no labels to train on")
    names = list(modalities) if modalities is not None else dataset.modality_names
    for name in names:
        if dataset[name].tokens is not None:  # also raises a KeyError naming an unknown modality
            raise TrainingError(
                f"modality {name!r} holds token ids; the reference architectures read float features (embed the "
                "tokens first, or train on the other modalities with modalities=[...])"
            )
    dims = {name: int(dataset[name].values.shape[2]) for name in names}
    if dataset.label_kind == "classification":
        n_classes = len(dataset.class_names) if dataset.class_names else int(dataset.labels.max()) + 1
        options.setdefault("n_classes", max(n_classes, 2))
        options.setdefault("task", "classification")
        if dataset.class_names and len(dataset.class_names) == options["n_classes"]:
            options.setdefault("class_names", list(dataset.class_names))
    else:
        options.setdefault("task", "regression")
        # Sentiment in [-3, 3] keeps its soft bound; other scales train unbounded.
        if "output_range" not in options and np.abs(dataset.labels).max() > 3:
            options["output_range"] = None
    return make_config(architecture, dims, **options)


def train(
    dataset: MultimodalDataset,
    architecture: str | ReferenceConfig,
    *,
    epochs: int = 40,
    lr: float = 1e-3,
    batch_size: int = 32,
    seed: int = 0,
    device: str = "cpu",
    weight_decay: float = 0.0,
    patience: int = 8,
    modalities: Sequence[str] | None = None,
    options: Mapping[str, Any] | None = None,
    checkpoint_dir: str | Path | None = None,
    time_limit: float | None = None,
    progress: bool = True,
) -> tuple[ReferenceModel, TrainingHistory]:
    """Train a reference model on a dataset.

    Parameters
    ----------
    dataset
        Labelled dataset; regression labels train with an L1 loss, class labels with cross-entropy.
    architecture
        A name in :data:`~modalens.models.reference.ARCHITECTURES`, or a ready configuration.
    epochs, lr, batch_size, weight_decay
        Adam settings; gradients are clipped to norm 1.
    seed
        Seeds the weights, the shuffling, dropout and any held-out validation part.
    device
        ``"cpu"`` or ``"cuda"``.
    patience
        Stop after this many epochs without a better validation score.
    modalities
        Train on these modalities only (default: all of the dataset's).
    options
        Architecture options (e.g. ``{"hidden": 64}``) when ``architecture`` is a name.
    checkpoint_dir
        If given, the best model so far is saved there (:func:`save_model`) at every improvement.
    time_limit
        Seconds; no new epoch starts once training has run this long (the best epoch is kept).
    progress
        Show a tqdm bar over epochs.

    Returns
    -------
    (module, history)
        The model at its best validation epoch, in eval mode, and a :class:`TrainingHistory`.
    """
    if dataset.labels is None:
        raise TrainingError(f"dataset {dataset.name!r} has no labels to train on")
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("patience", patience)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise TrainingError(f"{name} must be a positive int, got {value!r}")
    if not lr > 0:
        raise TrainingError(f"lr must be positive, got {lr!r}")
    if isinstance(architecture, ReferenceConfig):
        config = copy.deepcopy(architecture)
    else:
        config = default_config(dataset, architecture, modalities, **dict(options or {}))
    task = config.task
    if task != dataset.label_kind:
        raise TrainingError(
            f"the config's task is {task!r} but dataset {dataset.name!r} has {dataset.label_kind} labels"
        )

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    dev = torch.device(device)
    parts = split_indices(dataset, seed=seed)
    module = build_model(config)
    check_compatible(module, dataset)
    module.set_normalization(normalization_stats(dataset, parts["train"], module.modalities))
    module.to(dev)

    labels = torch.from_numpy(dataset.labels)
    if task == "classification" and (dataset.labels.min() < 0 or dataset.labels.max() >= config.n_outputs):
        raise TrainingError(f"class labels must lie in 0 .. {config.n_outputs - 1}")
    loss_fn = torch.nn.L1Loss() if task == "regression" else torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(module.parameters(), lr=lr, weight_decay=weight_decay)
    history = TrainingHistory(
        architecture=config.architecture,
        config=config.to_dict(),
        split_sizes={k: int(v.size) for k, v in parts.items()},
        monitor="valid_mae" if task == "regression" else "valid_loss",
    )
    started = time.perf_counter()

    def step_loss(index: np.ndarray) -> torch.Tensor:
        tensors, masks = _batch(dataset, module.modalities, index, dev)
        return loss_fn(module(*tensors, masks=masks), labels[index].to(dev))

    def validate(state: FitState) -> None:
        valid_out = predict(module, dataset, parts["valid"], device=dev)
        valid_y = dataset.labels[parts["valid"]]
        valid_loss = float(loss_fn(torch.from_numpy(valid_out), torch.from_numpy(valid_y)))
        metrics = performance(task, valid_y, valid_out)
        row = {"epoch": state.epoch + 1, "train_loss": state.row["loss"], "valid_loss": valid_loss}
        row.update({f"valid_{k}": v for k, v in metrics.items() if isinstance(v, float)})
        row["seconds"] = time.perf_counter() - state.epoch_started
        history.epochs.append(row)
        state.row.update((k, v) for k, v in row.items() if k.startswith("valid_"))
        latest["metrics"] = metrics

    def improved(state: FitState) -> None:
        history.best_epoch, history.best_valid = state.epoch + 1, latest["metrics"]
        if checkpoint_dir is not None:
            save_model(module, config, checkpoint_dir, meta={"history": history.to_dict()})

    latest: dict[str, Any] = {}
    hooks: list[Hook] = [Callback(end_epoch=validate), EarlyStopping(history.monitor, patience, on_improve=improved)]
    if time_limit is not None:
        hooks.append(TimeLimit(time_limit))
    # Ctrl-C keeps what was learned: the best epoch so far is restored, and the history says it was interrupted.
    state = fit(
        module,
        shuffled_batches(parts["train"], batch_size, rng, sort=True),
        step_loss,
        optimizer=optimizer,
        epochs=epochs,
        hooks=hooks,
        clip_grad_norm=1.0,
        batch_weight=len,
        warn_interrupted=False,
        progress=progress,
        desc=f"train {config.architecture}",
        show=("loss", history.monitor),
    )
    history.interrupted = state.interrupted
    history.stopped_early = state.stop_reason == "early_stopping"
    history.time_limited = state.stop_reason == "time_limit"
    if "test" in parts and not history.interrupted:
        history.test = evaluate(module, dataset, parts["test"], device=dev)
    history.seconds = time.perf_counter() - started
    return module, history


# -- saving and loading ------------------------------------------------------------------------------------------
def save_model(
    module: ReferenceModel,
    config: ReferenceConfig | None,
    directory: str | Path,
    *,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``config.json`` and ``model.safetensors`` into ``directory`` (created if needed).

    Both files are written to a temporary directory first and moved into place one by one, so a crash never
    leaves a half-written file. ``meta`` (training history, metrics, dataset description) goes into
    ``config.json`` under ``"meta"``. Returns the directory.
    """
    from safetensors.torch import save_file

    from modalens._core.version import __version__

    config = module.config if config is None else config
    if config.to_dict() != module.config.to_dict():
        raise ConfigError("save_model: the config given differs from the module's own config")
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "modalens_version": __version__,
        "config": config.to_dict(),
        "meta": _json_safe(dict(meta or {})),
    }
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    umask = _current_umask()
    try:
        (tmp / CONFIG_FILE).write_text(json.dumps(document, indent=2, allow_nan=False) + "\n")
        save_file(state, str(tmp / WEIGHTS_FILE), metadata={"format": FORMAT_NAME, "architecture": config.architecture})
        # mkdtemp makes a private (0700) folder; give the saved model the permissions of an ordinary folder.
        tmp.chmod(0o777 & ~umask)
        for name in (CONFIG_FILE, WEIGHTS_FILE):
            (tmp / name).chmod(0o666 & ~umask)
        if not directory.exists():
            os.replace(tmp, directory)
        else:
            if not directory.is_dir():
                raise ModelFileError(f"{directory}: exists and is not a directory")
            for name in (WEIGHTS_FILE, CONFIG_FILE):
                os.replace(tmp / name, directory / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return directory


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_model_config(directory: str | Path) -> tuple[ReferenceConfig, dict[str, Any]]:
    """The validated configuration and the ``meta`` dict of a saved model directory."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelFileError(
            f"{directory}: no such model directory (expected one holding {CONFIG_FILE} and {WEIGHTS_FILE})"
        )
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise ModelFileError(
            f"{path}: missing; a model directory holds {CONFIG_FILE} and {WEIGHTS_FILE} (see save_model)"
        )
    try:
        document = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{path}: field 'format' must be {FORMAT_NAME!r}; this is not a modalens model config")
    version = document.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: format_version {version!r} is not supported (this modalens reads {FORMAT_VERSION})"
        )
    try:
        config = config_from_dict(document.get("config"))
    except (ConfigError, TypeError) as exc:
        raise ModelFileError(f"{path}: field 'config': {exc}") from None
    meta = document.get("meta") or {}
    if not isinstance(meta, dict):
        raise ModelFileError(f"{path}: field 'meta' must be an object")
    _check_claimed_size(path, config)
    return config, meta


# A model config claims its size through its fields (hidden widths, layers, feature dimensions); the model is built
# only once that claim is under this cap. MODALENS_MAX_MODEL_BYTES (bytes, or with K/M/G/T) changes it.
MAX_MODEL_BYTES = 4 << 30


def max_model_bytes() -> int:
    """The cap on a loaded model's parameter bytes: ``MODALENS_MAX_MODEL_BYTES`` or 4 GiB."""
    raw = os.environ.get("MODALENS_MAX_MODEL_BYTES")
    if not raw:
        return MAX_MODEL_BYTES
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    text = raw.strip().upper().removesuffix("IB").removesuffix("B")
    unit = text[-1] if text and text[-1] in units else ""
    try:
        return int(float(text[: len(text) - len(unit)]) * units[unit])
    except ValueError:
        raise ModelFileError(f"MODALENS_MAX_MODEL_BYTES: expected a number of bytes such as 2G, got {raw!r}") from None


def _check_claimed_size(path: Path, config: ReferenceConfig) -> None:
    """Count the parameters the config claims (built on torch's meta device: nothing is allocated) against the cap."""
    with torch.device("meta"):
        claimed = sum(p.numel() for p in build_model(config).parameters()) * 4  # float32
    cap = max_model_bytes()
    if claimed > cap:
        sizes = {name: getattr(config, name) for name in config._size_fields()}
        sizes["modalities"] = dict(config.modalities)
        raise ModelFileError(
            f"{path}: field 'config' claims a model of {claimed:,} parameter bytes ({sizes}), over the cap of "
            f"{cap:,} bytes; raise it with MODALENS_MAX_MODEL_BYTES"
        )


def load_model(directory: str | Path, *, device: str = "cpu") -> ReferenceModel:
    """Load a model saved by :func:`save_model` (safetensors only), in eval mode.

    The module gets a ``meta`` attribute with the saved metadata. Raises :class:`ModelFileError` naming the file
    when a file is missing, unreadable, or does not match the configuration.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    config, meta = read_model_config(directory)
    path = Path(directory) / WEIGHTS_FILE
    if not path.is_file():
        raise ModelFileError(f"{path}: missing; the weights of a model saved by save_model")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{path}: not a readable safetensors file ({exc})") from None
    module = build_model(config)
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        raise ModelFileError(
            f"{path}: weights do not match the {config.architecture} config in {CONFIG_FILE}: "
            f"missing {missing[:5]}, unexpected {unexpected[:5]}, wrong shape {wrong[:5]}"
        )
    bad = sorted(k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all())
    if bad:
        raise ModelFileError(f"{path}: non-finite values in {bad[:5]}")
    module.load_state_dict(state)
    module.meta = meta
    return module.to(torch.device(device)).eval()


def pretrained_dir(architecture: str) -> Path:
    """Where the committed weights of a reference architecture (trained on the demo dataset) live."""
    if architecture not in ARCHITECTURES:
        raise ConfigError(f"architecture: unknown {architecture!r}; choose one of {list(ARCHITECTURES)}")
    return WEIGHTS_DIR / architecture


def load_pretrained(architecture: str, *, device: str = "cpu") -> ReferenceModel:
    """The committed reference model of an architecture, trained on the embedded demo dataset."""
    directory = pretrained_dir(architecture)
    if not (directory / WEIGHTS_FILE).is_file():
        raise ModelFileError(
            f"{directory}: no committed weights for {architecture!r}; run scripts/train_reference_models.py"
        )
    return load_model(directory, device=device)
