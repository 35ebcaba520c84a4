"""The feature engine's error for bad input: wrong shapes, unknown features or groups, invalid options."""

from __future__ import annotations

from modalens._core.errors import ModalensError


class FeatureError(ModalensError, ValueError):
    """Embeddings, activations, categories or options that the feature engine cannot use; the message says which."""
