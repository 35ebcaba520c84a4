"""The interaction engine: modality-level Shapley values, interaction types, feature attribution, templates."""

from modalens.interactions.api import explain, explanation_vectors, list_methods
from modalens.interactions.coalitions import InterruptedExplanation, coalition_matrix, evaluate_coalitions
from modalens.interactions.explanation import Explanation, load_run
from modalens.interactions.interaction_types import TypingConfig, classify
from modalens.interactions.methods import CapabilityError, MethodResult, MethodSpec, get_method, method_specs
from modalens.interactions.shapley import interaction_indices, moebius_transform, shapley_values

__all__ = [
    "CapabilityError",
    "Explanation",
    "InterruptedExplanation",
    "MethodResult",
    "MethodSpec",
    "TypingConfig",
    "classify",
    "coalition_matrix",
    "evaluate_coalitions",
    "explain",
    "explanation_vectors",
    "get_method",
    "interaction_indices",
    "list_methods",
    "load_run",
    "method_specs",
    "moebius_transform",
    "shapley_values",
]
