"""MMSA's models as they are: checkpoints of thuiar's MMSA toolkit (PyPI ``mmsa``) as predictors.

MMSA trains multimodal sentiment models -- TFN, LMF, MFN, EF-LSTM, LF-DNN, Graph-MFN, MulT, MISA, MFM, MMIM, BERT-MAG
and the multi-task Self-MM, MLF-DNN, MTFN, MLMF -- behind one wrapper, ``MMSA.models.AMIO(args)``, whose
``forward(text, audio, vision)`` aligns the three sequences first for the models that need it and then calls the
model. :class:`MMSAPredictor` calls MMSA's own modules the way MMSA's trainers and ``MMSA_test`` do:

- **text**: BERT-based models (``use_bert``: Self-MM, MISA, MMIM, BERT-MAG, and MulT with ``use_bert``) read
  ``text_bert`` ``[B, 3, L]`` -- token ids, attention mask, segment ids -- and run BERT inside. The predictor's text
  modality is then a token modality (load it with ``load_mmsa(path, text_field="text_bert")``): absent pieces hold the
  masker's baseline token (``[MASK]`` by default), the attention mask stays as the data says, segment ids are 0 (every
  MMSA dataset holds one sentence per instance). Other models read text features ``[B, L, D]``.
- **audio, vision**: ``[B, T, D]`` features; absent steps and modalities hold the masker's baselines. Models trained
  with ``need_normalized`` (TFN, LMF, MFN, LF-DNN and the multi-task SIMS models by MMSA's defaults) get each
  sequence averaged over time, padding included, as MMSA's data loader does.
- **lengths**: Self-MM and MMIM take ``(audio, audio_lengths)`` and ``(vision, vision_lengths)``; the lengths are the
  number of real steps of each instance (the step mask; MMSA's unaligned files store them as ``audio_lengths`` and
  ``vision_lengths``, real steps first). Models for aligned data (``need_data_aligned``) use the text's lengths, as in
  MMSA.
- **outputs**: MMSA's models return a dict; the fused prediction is ``"M"`` (``output="T"`` picks Self-MM's text head,
  for example). MFM returns a tuple whose first item is the prediction.

Not supported: MCTN (its forward pass needs the labels) and TFR-Net (MMSA's missing-modality inputs).

Checkpoints: :func:`load_mmsa_model` builds ``AMIO(args)`` from MMSA's config -- MMSA's own
``config_regression.json`` with a dataset name (``get_config_regression``), a file in that layout, or a flat JSON of
the arguments (what ``MMSA_test`` reads) -- sizes it to the data (feature sizes and sequence lengths, as MMSA's data
loader does), and loads the weights MMSA saved (``torch.save(model.state_dict(), ...)`` of the AMIO; read with
``weights_only=True``). The command line takes it as ``--model mmsa:...`` (:class:`MMSASpec`).

MMSA itself is imported only when a model is built (:func:`import_mmsa`). Its package imports ``pynvml``
(nvidia-ml-py3) at import time, for choosing a GPU in ``MMSA_run`` only, and sets two CUDA environment variables;
without pynvml a stand-in is handed to MMSA alone, and the environment is restored afterwards.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import tempfile
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modalens.data.dataset import MultimodalDataset
from modalens.models.masker import Masker
from modalens.models.predictor import PredictorError, TorchPredictor, register_adapter

MODEL_NAMES: tuple[str, ...] = (
    "tfn",
    "lmf",
    "mfn",
    "ef_lstm",
    "lf_dnn",
    "graph_mfn",
    "bert_mag",
    "mult",
    "misa",
    "mfm",
    "mmim",
    "mtfn",
    "mlmf",
    "mlf_dnn",
    "self_mm",
)
"""MMSA's names of the models this adapter calls (the keys of ``AMIO``'s model map, lower case)."""

UNSUPPORTED: dict[str, str] = {
    "mctn": "MCTN's forward pass needs the labels (it returns its translation loss with the prediction)",
    "tfr_net": "TFR-Net takes MMSA's missing-modality inputs (each modality with a corrupted copy and masks)",
}
WITH_LENGTHS = frozenset({"self_mm", "mmim"})  # forward(text, (audio, audio_lengths), (vision, vision_lengths))
TUPLE_OUTPUT = frozenset({"mfm"})  # forward returns (prediction, losses ...)
NORMALIZED_BY_DEFAULT = frozenset({"tfn", "lmf", "mfn", "lf_dnn", "mtfn", "mlmf", "mlf_dnn"})
"""Models whose ``need_normalized`` is true in MMSA 2.2.1's ``config_regression.json`` (audio and vision averaged
over time before the model); a config given to the adapter says it for itself."""
DATASETS = ("mosi", "mosei", "sims")
MMSA_MODALITIES = ("text", "audio", "vision")
SPEC_OPTIONS = ("dataset", "pretrained", "output")
SPEC_SYNTAX = "mmsa:[MODEL:]CHECKPOINT.pth|DIR[:CONFIG.json][:dataset=mosi|mosei|sims][:pretrained=BERT_DIR][:output=M]"
_ENV_SET_BY_MMSA = ("CUDA_DEVICE_ORDER", "CUBLAS_WORKSPACE_CONFIG")
_IGNORED_KEYS = ("embeddings.position_ids",)  # a BERT buffer that older transformers saved with the weights


def import_mmsa() -> types.ModuleType:
    """Import MMSA's package (``MMSA`` with ``MMSA.models``), leaving the process as it was.

    MMSA imports ``pynvml`` at import time (only ``MMSA_run`` calls it, to pick the GPU with the most free memory) and
    sets ``CUDA_DEVICE_ORDER`` and ``CUBLAS_WORKSPACE_CONFIG``. Without pynvml installed, MMSA gets a stand-in module
    that is taken out of ``sys.modules`` again, so no other library sees it; the two variables get their old values.
    """
    if "MMSA.models" in sys.modules:
        return sys.modules["MMSA"]
    saved = {key: os.environ.get(key) for key in _ENV_SET_BY_MMSA}
    stand_in = None
    if "pynvml" not in sys.modules and importlib.util.find_spec("pynvml") is None:
        stand_in = _pynvml_stand_in()
        sys.modules["pynvml"] = stand_in
    try:
        import MMSA
        import MMSA.models  # noqa: F401  (AMIO and every model class)
    except ImportError as exc:
        raise PredictorError(
            f"MMSA's models need its package: pip install --no-deps mmsa==2.2.1 easydict ({exc})"
        ) from exc
    finally:
        if stand_in is not None and sys.modules.get("pynvml") is stand_in:
            del sys.modules["pynvml"]
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return MMSA


def _pynvml_stand_in() -> types.ModuleType:
    module = types.ModuleType("pynvml", "Stand-in for nvidia-ml-py3, given to MMSA by modalens (not installed).")

    def unavailable(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("pynvml (nvidia-ml-py3) is not installed; modalens never picks a GPU through MMSA")

    for name in ("nvmlInit", "nvmlDeviceGetCount", "nvmlDeviceGetHandleByIndex", "nvmlDeviceGetMemoryInfo"):
        setattr(module, name, unavailable)
    return module


def is_mmsa_model(model: Any) -> bool:
    """True for a module of MMSA's package (an ``AMIO`` or one of its model classes)."""
    module = getattr(type(model), "__module__", "") or ""
    return module == "MMSA" or module.startswith("MMSA.")


def _model_key(module: Any) -> str:
    inner = getattr(module, "Model", module)
    return type(inner).__name__.lower()


class MMSAPredictor(TorchPredictor):
    """An MMSA model (an ``AMIO``, or a bare model class) called with MMSA's conventions (module docstring).

    Parameters
    ----------
    module
        ``MMSA.models.AMIO(args)`` (aligns for models with ``need_model_aligned``) or one of MMSA's model classes.
    modalities
        The dataset's names for MMSA's text, audio and vision, in that order.
    config
        The ``args`` the model was built from (a dict; MMSA's ``EasyDict`` works); say ``use_bert``,
        ``need_normalized`` and ``train_mode``. Without it these are read from the module and MMSA's defaults.
    model_name
        MMSA's name of the model (``self_mm``, ``mult`` ...); default from the config or the module's class.
    output
        The key of the model's output dict to explain (``"M"``: the fused prediction).
    batch_size
        At most this many rows per forward pass (BERT's memory grows with it).
    checkpoint
        Where the weights came from (shown in run manifests).
    **kwargs
        ``output_kind``, ``output_names``, ``masker``, ``device`` as for :class:`TorchPredictor`.
    """

    def __init__(
        self,
        module: Any,
        modalities: Sequence[str] = MMSA_MODALITIES,
        *,
        config: Mapping[str, Any] | None = None,
        model_name: str | None = None,
        output: str = "M",
        batch_size: int = 256,
        checkpoint: str | os.PathLike | None = None,
        **kwargs: Any,
    ) -> None:
        if not is_mmsa_model(module):
            raise PredictorError(f"expected a module of MMSA's package, got {type(module).__name__}")
        if len(modalities) != 3 or len(set(modalities)) != 3:
            raise PredictorError(
                f"an MMSA model reads three modalities (text, audio, vision, in that order), got {list(modalities)}"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise PredictorError(f"batch_size must be a positive int, got {batch_size!r}")
        args = dict(config or {})
        name = (model_name or args.get("model_name") or _model_key(module)).lower()
        if name in UNSUPPORTED:
            raise PredictorError(f"MMSA's {name} cannot be explained as a predictor: {UNSUPPORTED[name]}")
        if name not in MODEL_NAMES:
            raise PredictorError(f"unknown MMSA model {name!r}; supported: {', '.join(MODEL_NAMES)}")
        inner = getattr(module, "Model", module)
        use_bert = args.get("use_bert")
        if use_bert is None:
            use_bert = getattr(inner, "use_bert", None)
        if use_bert is None:
            use_bert = name == "bert_mag" or any(type(m).__name__ == "BertTextEncoder" for m in inner.modules())
        normalized = args.get("need_normalized")
        if normalized is None:
            normalized = name in NORMALIZED_BY_DEFAULT
        kind = "classification" if args.get("train_mode") == "classification" else "regression"
        kwargs.setdefault("output_kind", kind)
        kwargs.setdefault("output_names", None if kwargs["output_kind"] == "classification" else [output])
        super().__init__(module, modalities, **kwargs)
        self.model_name = name
        self.use_bert = bool(use_bert)
        self.normalized = bool(normalized)
        self.aligned = bool(args.get("need_data_aligned", False))
        self.output = output
        self.batch_size = batch_size
        self.checkpoint = None if checkpoint is None else str(checkpoint)
        self.config = args

    @property
    def supports_gradients(self) -> bool:
        """True for models over features only; token ids (BERT-based models) have no gradient."""
        return not self.use_bert

    # -- the forward pass in MMSA's conventions ---------------------------------------------------------------------
    def forward_tensors(self, tensors: dict[str, Any], masks: dict[str, Any]) -> Any:
        import torch

        t, a, v = self.modalities
        text = tensors[t]
        if self.use_bert:
            if text.ndim != 2 or text.is_floating_point():
                raise PredictorError(
                    f"MMSA's {self.model_name} runs BERT on token ids: modality {t!r} must be a token modality "
                    "(load_mmsa(path, text_field='text_bert')), got features of shape " + str(tuple(text.shape))
                )
            attention = masks[t].to(torch.float32)
            # MMSA's data loader hands text_bert over as float32 [B, 3, L]; BERT's encoder casts the ids back
            text = torch.stack([text.to(torch.float32), attention, torch.zeros_like(attention)], dim=1)
        elif text.ndim != 3:
            raise PredictorError(
                f"MMSA's {self.model_name} reads text features [B, L, D]; modality {t!r} holds token ids (load the "
                "file with text_field='text')"
            )
        audio, vision = tensors[a].to(torch.float32), tensors[v].to(torch.float32)
        if self.normalized:  # MMSA's data loader: the mean over every step, padding included, NaN set to 0
            audio = torch.nan_to_num(audio.mean(dim=1, keepdim=True), nan=0.0)
            vision = torch.nan_to_num(vision.mean(dim=1, keepdim=True), nan=0.0)
        if self.model_name in WITH_LENGTHS:
            audio = (audio, _lengths(masks[a]))
            vision = (vision, _lengths(masks[v]))
        out = self.module(text, audio, vision)
        out = self._pick(out)
        if out.ndim == 1:
            out = out[:, None]
        if self.output_kind == "classification" and self.outputs == "probs":
            out = torch.softmax(out, dim=-1)
        return out

    def _pick(self, out: Any) -> Any:
        if self.model_name in TUPLE_OUTPUT and isinstance(out, tuple | list):
            out = out[0]
        if isinstance(out, Mapping):
            if self.output not in out:
                keys = [k for k, x in out.items() if hasattr(x, "ndim")]
                raise PredictorError(f"MMSA's {self.model_name} returns no output {self.output!r}; it has {keys}")
            out = out[self.output]
        return out

    def forward(self, values: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> np.ndarray:
        n = len(next(iter(values.values())))
        if n <= self.batch_size:
            return super().forward(values, masks)
        parts = []
        for start in range(0, n, self.batch_size):
            rows = slice(start, start + self.batch_size)
            parts.append(
                super().forward({k: x[rows] for k, x in values.items()}, {k: m[rows] for k, m in masks.items()})
            )
        return np.concatenate(parts, axis=0)

    # -- the data it reads --------------------------------------------------------------------------------------------
    def check(self, dataset: MultimodalDataset) -> None:
        """Refuse a dataset this model cannot read, naming what differs (text kind, segment ids, feature sizes)."""
        missing = [m for m in self.modalities if m not in dataset.modalities]
        if missing:
            raise PredictorError(
                f"MMSA's {self.model_name} reads modalities {list(self.modalities)}; the dataset lacks {missing} (it "
                f"has {list(dataset.modalities)})"
            )
        t = self.modalities[0]
        text = dataset[t]
        _check_text(self.model_name, self.use_bert, t, text)
        if self.use_bert and text.segment_ids is not None and np.any(text.segment_ids[text.step_mask()] != 0):
            raise PredictorError(
                f"modality {t!r} has segment ids other than 0; MMSA's datasets hold one sentence per instance and the "
                "adapter passes segment ids 0"
            )
        dims = self.config.get("feature_dims")
        if dims is not None:
            for k, m in enumerate(self.modalities):
                if (k == 0 and self.use_bert) or dataset[m].values.ndim != 3:
                    continue
                if int(dataset[m].values.shape[2]) != int(dims[k]):
                    raise PredictorError(
                        f"modality {m!r} has {dataset[m].values.shape[2]} features; the model was built for {dims[k]}"
                    )

    def describe(self) -> dict:
        out = super().describe()
        out.update(
            name=f"MMSA {self.model_name}",
            mmsa={
                "model": self.model_name,
                "checkpoint": self.checkpoint,
                "use_bert": self.use_bert,
                "need_normalized": self.normalized,
                "need_data_aligned": self.aligned,
                "output": self.output,
            },
        )
        return out


def _check_text(model: str, use_bert: bool, name: str, text: Any) -> None:
    """A BERT-based model reads a token modality (text_bert), any other model text features."""
    if use_bert and text.tokens is None:
        raise PredictorError(
            f"MMSA's {model} runs BERT on text_bert: load the file with text_field='text_bert' (the dataset's "
            f"{name!r} holds features)"
        )
    if not use_bert and text.tokens is not None:
        raise PredictorError(
            f"MMSA's {model} reads text features, but the dataset's {name!r} holds token ids: load the file with "
            "text_field='text'"
        )


def _lengths(mask: Any) -> Any:
    """Real steps per row as MMSA's models take them (int64 on the CPU, at least 1 for ``pack_padded_sequence``)."""
    import torch

    return mask.sum(dim=1).clamp(min=1).to("cpu", dtype=torch.int64)


def _wrap_mmsa(model: Any, modalities: Sequence[str], **kwargs: Any) -> MMSAPredictor:
    return MMSAPredictor(model, modalities, **kwargs)


register_adapter(is_mmsa_model, _wrap_mmsa)


# -- configs and checkpoints ------------------------------------------------------------------------------------------
def mmsa_config(
    model: str | None = None,
    *,
    config: str | os.PathLike | Mapping[str, Any] | None = None,
    dataset_name: str | None = None,
    checkpoint: str | os.PathLike | None = None,
    pretrained: str | os.PathLike | None = None,
) -> Any:
    """MMSA's ``args`` for a model, as an ``EasyDict`` (what MMSA's classes read).

    Parameters
    ----------
    model
        MMSA's model name (``self_mm``, ``MulT`` ...); default from a flat config or the checkpoint's file name
        (``MMSA_run`` saves ``<model>-<dataset>.pth``).
    config
        None: MMSA's own ``config_regression.json``; a file or dict in that layout (``datasetCommonParams`` and one
        entry per model); or a flat dict / JSON file of the arguments (``model_name``, ``use_bert``, ...), which is
        what ``MMSA_test`` reads.
    dataset_name
        ``mosi``, ``mosei`` or ``sims``, for a config in MMSA's layout; default from the checkpoint's file name.
    checkpoint
        The weights file, whose name may say the model and dataset.
    pretrained
        A BERT folder (or name) to use instead of the config's ``pretrained``. A relative ``pretrained`` in a config
        file is taken from the config's folder when such a folder exists there.
    """
    mmsa = import_mmsa()
    from easydict import EasyDict

    stem_model, stem_dataset = _names_from_file(checkpoint)
    where = "MMSA's config_regression.json"
    folder = None
    if config is None:
        raw: dict[str, Any] | None = None
    elif isinstance(config, Mapping):
        raw = json.loads(json.dumps(dict(config), default=str))
        where = "the config"
    else:
        path = Path(config)
        where, folder = str(path), path.parent
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PredictorError(f"{path}: not a readable JSON config ({exc})") from exc
        if not isinstance(raw, dict):
            raise PredictorError(f"{path}: expected a JSON object of MMSA's arguments, got {type(raw).__name__}")
    if raw is None or "datasetCommonParams" in raw:
        name = _model_name(model or stem_model, where)
        ds_name = (dataset_name or stem_dataset or "").lower()
        if ds_name not in DATASETS:
            raise PredictorError(
                f"{where} holds every dataset's settings: say which dataset the model was trained on "
                "(dataset=mosi|mosei|sims; a checkpoint named <model>-<dataset>.pth says it too)"
            )
        layout = raw if raw is not None else mmsa.get_config_all("regression")
        if name not in layout:
            raise PredictorError(
                f"{where} has no entry for model {name!r}; it has {[k for k in layout if k in MODEL_NAMES]}"
            )
        if ds_name not in layout[name].get("datasetParams", {}):
            raise PredictorError(
                f"{where}: model {name!r} has no settings for dataset {ds_name!r} (it has "
                f"{sorted(layout[name].get('datasetParams', {}))})"
            )
        args = _regression_config(mmsa, name, ds_name, raw)
    else:
        name = _model_name(model or raw.get("model_name") or stem_model, where)
        if raw.get("model_name") and str(raw["model_name"]).lower() != name:
            raise PredictorError(f"{where} is the config of {raw['model_name']!r}, not {name!r}")
        args = EasyDict(raw)
        args["model_name"] = name
        if dataset_name is not None:
            args["dataset_name"] = dataset_name.lower()
    args.setdefault("train_mode", "regression")
    if pretrained is not None:
        args["pretrained"] = str(pretrained)
    elif folder is not None and isinstance(args.get("pretrained"), str):
        local = folder / args["pretrained"]
        if not Path(args["pretrained"]).is_absolute() and local.is_dir():
            args["pretrained"] = str(local)
    return args


def _regression_config(mmsa: types.ModuleType, name: str, ds_name: str, raw: dict | None) -> Any:
    """MMSA's ``get_config_regression`` on its own file or on ``raw`` (a config in its layout)."""
    try:
        if raw is None:
            return mmsa.get_config_regression(name, ds_name)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "config.json"
            path.write_text(json.dumps(raw), encoding="utf-8")
            return mmsa.get_config_regression(name, ds_name, str(path))
    except KeyError as exc:
        raise PredictorError(f"MMSA's config for {name!r} on {ds_name!r} lacks {exc}") from exc


def _model_name(name: str | None, where: str) -> str:
    if not name:
        raise PredictorError(
            f"say which MMSA model this is (one of {', '.join(MODEL_NAMES)}): {where} does not, nor does the "
            "checkpoint's file name (<model>-<dataset>.pth)"
        )
    key = str(name).lower()
    if key in UNSUPPORTED:
        raise PredictorError(f"MMSA's {key} cannot be explained as a predictor: {UNSUPPORTED[key]}")
    if key not in MODEL_NAMES:
        raise PredictorError(f"unknown MMSA model {name!r}; supported: {', '.join(MODEL_NAMES)}")
    return key


def _names_from_file(checkpoint: str | os.PathLike | None) -> tuple[str | None, str | None]:
    """Model and dataset from ``MMSA_run``'s file name ``<model>-<dataset>.pth`` (either may be None)."""
    if checkpoint is None:
        return None, None
    stem = Path(checkpoint).stem.lower()
    model, _, dataset = stem.rpartition("-")
    if model in MODEL_NAMES or model in UNSUPPORTED:
        return model, dataset if dataset in DATASETS else None
    return (stem if stem in MODEL_NAMES or stem in UNSUPPORTED else None), None


def _checkpoint_files(checkpoint: str | os.PathLike, config: Any) -> tuple[Path, Any]:
    """The weights file and config of a checkpoint: a file, or a folder of one ``.pth`` and ``config.json``."""
    path = Path(checkpoint).expanduser()
    if path.is_dir():
        weights = sorted([*path.glob("*.pth"), *path.glob("*.pt")])
        if len(weights) != 1:
            raise PredictorError(
                f"{path}: an MMSA model folder holds one weights file (*.pth), found {[w.name for w in weights]}"
            )
        if config is None and (path / "config.json").is_file():
            config = path / "config.json"
        return weights[0], config
    if not path.is_file():
        raise PredictorError(f"{path}: no such checkpoint (an MMSA .pth file, or a folder holding one)")
    return path, config


def _bert_width(args: Any) -> int:
    """The hidden size of the BERT an MMSA model runs (MMSA's data loader assumes 768, BERT-base's)."""
    if args.get("model_name") == "bert_mag":
        return 768
    try:
        from transformers import AutoConfig

        return int(AutoConfig.from_pretrained(str(args.get("pretrained", "bert-base-uncased"))).hidden_size)
    except (OSError, ValueError, ImportError):
        return 768


def fit_to_data(args: Any, dataset: MultimodalDataset, modalities: Sequence[str] = MMSA_MODALITIES) -> Any:
    """Set ``args.feature_dims`` and ``args.seq_lens`` from a dataset, as MMSA's data loader does from its file."""
    text, audio, vision = (dataset[m] for m in modalities)
    width = _bert_width(args) if args.get("use_bert") else int(text.values.shape[-1])
    args["feature_dims"] = [width, int(audio.values.shape[2]), int(vision.values.shape[2])]
    steps = [int(text.values.shape[1]), int(audio.values.shape[1]), int(vision.values.shape[1])]
    if args.get("need_normalized"):
        steps[1] = steps[2] = 1  # MMSA measures the sequences after averaging them over time
    args["seq_lens"] = steps
    return args


def load_mmsa_model(
    checkpoint: str | os.PathLike,
    model: str | None = None,
    *,
    config: str | os.PathLike | Mapping[str, Any] | None = None,
    dataset: MultimodalDataset | None = None,
    dataset_name: str | None = None,
    pretrained: str | os.PathLike | None = None,
    modalities: Sequence[str] = MMSA_MODALITIES,
    output: str = "M",
    device: str = "cpu",
    masker: Masker | None = None,
    batch_size: int = 256,
) -> MMSAPredictor:
    """An MMSA checkpoint as a predictor: ``AMIO(args)`` built by MMSA, sized to the data, with the saved weights.

    Parameters
    ----------
    checkpoint
        The weights MMSA saved (``~/MMSA/saved_models/<model>-<dataset>.pth``), or a folder holding one ``.pth`` and
        optionally ``config.json``.
    model, config, dataset_name, pretrained
        See :func:`mmsa_config`.
    dataset
        The data to explain: feature sizes and sequence lengths come from it (MMSA sizes its models from the data
        file the same way), and it is checked against the model (:meth:`MMSAPredictor.check`). Without it the
        config's ``feature_dims`` and ``seq_lens`` are used.
    modalities
        The dataset's names for text, audio and vision.
    output, device, masker, batch_size
        As for :class:`MMSAPredictor`.
    """
    import torch

    weights, config = _checkpoint_files(checkpoint, config)
    args = mmsa_config(model, config=config, dataset_name=dataset_name, checkpoint=weights, pretrained=pretrained)
    if dataset is not None:
        missing = [m for m in modalities if m not in dataset.modalities]
        if missing:
            raise PredictorError(f"the dataset lacks modalities {missing} (it has {list(dataset.modalities)})")
        _check_text(args["model_name"], bool(args.get("use_bert")), modalities[0], dataset[modalities[0]])
        fit_to_data(args, dataset, modalities)
    elif "feature_dims" not in args:
        raise PredictorError("the config has no feature_dims: give the dataset the model will read (dataset=...)")
    args["device"] = torch.device(device)
    mmsa = import_mmsa()
    try:
        amio = mmsa.models.AMIO(args)
    except OSError as exc:  # transformers cannot find the BERT folder or name (no hub offline)
        raise PredictorError(
            f"MMSA's {args['model_name']} loads BERT from {args.get('pretrained')!r}, which cannot be read "
            f"({exc}); give a local BERT folder (pretrained=... / :pretrained=DIR)"
        ) from exc
    _load_weights(amio, weights)
    predictor = MMSAPredictor(
        amio,
        modalities,
        config=args,
        output=output,
        batch_size=batch_size,
        checkpoint=weights,
        device=device,
        **({} if masker is None else {"masker": masker}),
    )
    if dataset is not None:
        predictor.check(dataset)
    return predictor


def _load_weights(amio: Any, path: Path) -> None:
    """Load MMSA's saved ``state_dict`` into ``amio``, refusing missing, unexpected or misshapen weights by name."""
    import pickle

    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as exc:
        raise PredictorError(f"{path}: not a torch state dict that loads without running code ({exc})") from exc
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PredictorError(f"{path}: expected a state dict of tensors (torch.save(model.state_dict(), path))")
    own = amio.state_dict()
    if not any(k.startswith("Model.") for k in state) and any(k.startswith("Model.") for k in own):
        state = {f"Model.{k}": v for k, v in state.items()}  # saved from the bare model, not the AMIO around it

    def ignored(key: str) -> bool:
        return key.endswith(_IGNORED_KEYS)

    missing = [k for k in own if k not in state and not ignored(k)]
    unexpected = [k for k in state if k not in own and not ignored(k)]
    shapes = [
        f"{k} {tuple(state[k].shape)} (model: {tuple(own[k].shape)})"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    problems = []
    if shapes:
        problems.append(
            f"{len(shapes)} weights of another shape, e.g. {'; '.join(shapes[:3])} -- a model trained on "
            "other features or another config"
        )
    if missing:
        problems.append(f"{len(missing)} weights missing, e.g. {missing[:3]}")
    if unexpected:
        problems.append(f"{len(unexpected)} unknown weights, e.g. {unexpected[:3]}")
    if problems:
        raise PredictorError(f"{path} does not fit MMSA's {type(amio.Model).__name__}: " + "; ".join(problems))
    amio.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)


# -- the command line's --model mmsa:... ---------------------------------------------------------------------------
@dataclass
class MMSASpec:
    """``--model mmsa:[MODEL:]CHECKPOINT.pth|DIR[:CONFIG.json][:key=value ...]`` of the command line.

    Fields are separated by ``:``; ``dataset=``, ``pretrained=`` and ``output=`` fields are options, the rest are in
    order: MMSA's model name (optional when the config or the file name ``<model>-<dataset>.pth`` says it), the weights
    file or a folder holding it (and ``config.json``), and a config (MMSA's layout, which needs ``dataset=``, or a
    flat JSON of the arguments; default MMSA's own ``config_regression.json``).
    """

    checkpoint: Path
    model: str | None = None
    config: Path | None = None
    dataset: str | None = None
    pretrained: str | None = None
    output: str = "M"
    _args: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def parse(cls, spec: str) -> MMSASpec:
        body = spec[len("mmsa:") :] if spec.startswith("mmsa:") else spec
        options: dict[str, str] = {}
        positional: list[str] = []
        for part in body.split(":"):
            key, eq, value = part.partition("=")
            if eq and key in SPEC_OPTIONS:
                if not value:
                    raise PredictorError(f"--model {spec}: option {key}= has no value ({SPEC_SYNTAX})")
                options[key] = value
            elif eq and not Path(part).exists():
                raise PredictorError(f"--model {spec}: unknown option {key!r}; options: {', '.join(SPEC_OPTIONS)}")
            elif part:
                positional.append(part)
        model = None
        if positional and not Path(positional[0]).exists() and positional[0].lower() in (*MODEL_NAMES, *UNSUPPORTED):
            model = _model_name(positional.pop(0), f"--model {spec}")
        if not positional:
            raise PredictorError(f"--model {spec}: no checkpoint; expected {SPEC_SYNTAX}")
        if len(positional) > 2:
            raise PredictorError(f"--model {spec}: too many fields {positional}; expected {SPEC_SYNTAX}")
        checkpoint = Path(positional[0]).expanduser()
        if not checkpoint.exists():
            raise PredictorError(f"--model {spec}: {checkpoint} does not exist; expected {SPEC_SYNTAX}")
        config = Path(positional[1]).expanduser() if len(positional) > 1 else None
        if config is not None and not config.is_file():
            raise PredictorError(f"--model {spec}: config {config} is not a file")
        dataset = options.get("dataset")
        if dataset is not None and dataset.lower() not in DATASETS:
            raise PredictorError(f"--model {spec}: dataset={dataset} is not one of {', '.join(DATASETS)}")
        return cls(
            checkpoint=checkpoint,
            model=model,
            config=config,
            dataset=None if dataset is None else dataset.lower(),
            pretrained=os.path.expanduser(options["pretrained"]) if "pretrained" in options else None,
            output=options.get("output", "M"),
        )

    def args(self) -> Any:
        """MMSA's arguments for this checkpoint (read once)."""
        if self._args is None:
            weights, config = _checkpoint_files(self.checkpoint, self.config)
            self._args = mmsa_config(
                self.model, config=config, dataset_name=self.dataset, checkpoint=weights, pretrained=self.pretrained
            )
        return self._args

    @property
    def uses_bert(self) -> bool:
        return bool(self.args().get("use_bert"))

    def tokenizer(self) -> Any:
        """The tokenizer of the model's BERT (from ``pretrained``), or None for models without BERT."""
        if not self.uses_bert:
            return None
        args = self.args()
        name = args.get("pretrained", "bert-base-uncased")
        if args.get("model_name") == "bert_mag":
            name = "bert-base-chinese" if args.get("language") == "cn" else "bert-base-uncased"
        try:
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(str(name))
        except (OSError, ValueError) as exc:
            raise PredictorError(
                f"MMSA's {args['model_name']} uses BERT {name!r}, whose tokenizer cannot be read ({exc}); give a "
                "local BERT folder (:pretrained=DIR)"
            ) from exc

    def load_options(self) -> dict[str, Any]:
        """What ``load_mmsa`` needs to read the data as MMSA's loader does: ``-inf`` (COVAREP's silence in MOSI and
        MOSEI audio) as 0, and ``text_bert`` through BERT's tokenizer for BERT-based models."""
        if not self.uses_bert:
            return {"nonfinite": "zero"}
        return {"nonfinite": "zero", "text_field": "text_bert", "tokenizer": self.tokenizer()}

    def load(self, dataset: MultimodalDataset | None = None, *, device: str = "cpu") -> MMSAPredictor:
        weights, config = _checkpoint_files(self.checkpoint, self.config)
        args = dict(self.args())
        return load_mmsa_model(
            weights, args["model_name"], config=_flat(args), dataset=dataset, output=self.output, device=device
        )


def _flat(args: Mapping[str, Any]) -> dict[str, Any]:
    """Resolved arguments as a flat config (paths and devices as text)."""
    return {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in args.items() if k != "device"}
