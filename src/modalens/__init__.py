"""modalens: see how multimodal models use their modalities.

The short public API::

    import modalens as ml
    ds = ml.load_dataset("aligned_50.pkl")             # or ml.MultimodalDataset([...])
    predictor = ml.wrap(model, ["text", "audio", "vision"], masker=ml.Masker("mean"))
    expl = ml.explain(predictor, ds.split("test"))
    expl.save("runs/mosi")                              # then: modalens serve runs/mosi
"""

from modalens._core.errors import ModalensError  # noqa: E402
from modalens._core.version import __version__  # noqa: E402
from modalens.app.notebook import show as _show_run  # noqa: E402  (also registers the notebook viewer)
from modalens.data.dataset import MediaColumn, Modality, MultimodalDataset  # noqa: E402
from modalens.data.loaders import list_formats, load_dataset, save_dataset  # noqa: E402
from modalens.interactions import Explanation, TypingConfig, explain, list_methods, load_run  # noqa: E402
from modalens.interactions.config import ExplainConfig  # noqa: E402
from modalens.models import CallablePredictor, Masker, SklearnPredictor, TorchPredictor, wrap  # noqa: E402


def show(run_dir: str, **kwargs: object) -> object:
    """Embed the app for a run directory in a notebook (see :func:`modalens.app.notebook.show`)."""
    return _show_run(run_dir, **kwargs)


__all__ = [
    "CallablePredictor",
    "ExplainConfig",
    "Explanation",
    "Masker",
    "MediaColumn",
    "ModalensError",
    "Modality",
    "MultimodalDataset",
    "SklearnPredictor",
    "TorchPredictor",
    "TypingConfig",
    "explain",
    "list_formats",
    "list_methods",
    "load_dataset",
    "load_run",
    "save_dataset",
    "show",
    "wrap",
    "__version__",
]
