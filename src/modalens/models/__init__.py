"""Model adapters, the Predictor protocol and the Masker."""

from modalens.models.masker import Masker, MaskerError
from modalens.models.predictor import (
    BasePredictor,
    CallablePredictor,
    Predictor,
    PredictorError,
    SklearnPredictor,
    TorchPredictor,
    wrap,
)

__all__ = [
    "BasePredictor",
    "CallablePredictor",
    "Masker",
    "MaskerError",
    "Predictor",
    "PredictorError",
    "SklearnPredictor",
    "TorchPredictor",
    "wrap",
]
