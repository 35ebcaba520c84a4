"""The glass-box model over the synthetic set (:mod:`modalens.data.synthetic`): additive, so its true modality
contributions are known in closed form (:func:`modalens.data.synthetic.glass_box_terms`)."""

from __future__ import annotations

import numpy as np

from modalens.data.synthetic import GLASS_BOX_WEIGHTS
from modalens.models.predictor import CallablePredictor


def glass_box_model(weights: tuple[float, float, float] = GLASS_BOX_WEIGHTS) -> CallablePredictor:
    """An additive model over the synthetic set: w_t * text valence sum + w_a * mean F0 + w_v * mean AU12.

    Its modality Shapley values under a zero baseline are exactly its three terms.
    """
    w_text, w_audio, w_vision = weights

    def predict(values: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> np.ndarray:
        m = masks["text"].astype(np.float32)
        count = np.maximum(m.sum(1), 1.0)
        text_term = (values["text"][:, :, 0] * m).sum(1)
        audio_term = (values["audio"][:, :, 0] * m).sum(1) / count
        vision_term = (values["vision"][:, :, 2] * m).sum(1) / count
        return w_text * text_term + w_audio * audio_term + w_vision * vision_term

    return CallablePredictor(predict, ["text", "audio", "vision"])
