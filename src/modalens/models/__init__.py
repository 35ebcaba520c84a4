"""Model adapters, the Predictor protocol, the Masker, reference models and the one training loop."""

from modalens.models.loop import EarlyStopping, Hook, TimeLimit, fit
from modalens.models.masker import Masker, MaskerError
from modalens.models.mmsa import MMSAPredictor, load_mmsa_model  # also registers MMSA's models with wrap()
from modalens.models.predictor import (
    BasePredictor,
    CallablePredictor,
    GradientPredictor,
    Predictor,
    PredictorError,
    SklearnPredictor,
    TorchPredictor,
    wrap,
)

__all__ = [
    "BasePredictor",
    "CallablePredictor",
    "EarlyStopping",
    "GradientPredictor",
    "Hook",
    "MMSAPredictor",
    "Masker",
    "MaskerError",
    "Predictor",
    "PredictorError",
    "SklearnPredictor",
    "TimeLimit",
    "TorchPredictor",
    "fit",
    "load_mmsa_model",
    "wrap",
]
