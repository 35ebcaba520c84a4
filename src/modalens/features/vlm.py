"""The demo's two-tower model as a predictor on raw inputs (image patches and caption tokens).

A thin factory over :class:`modalens.models.vlm.ImageTextPredictor`: the image encoder is EfficientNet-Lite0 followed
by the trained image projection, the text encoder all-MiniLM-L6-v2 (token ids through sentence-transformers' own
modules: transformer, mean pooling, normalisation) followed by the text projection, so the scores equal
:class:`~modalens.features.two_tower.TwoTowerModel`'s embeddings' on the unmasked inputs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

from modalens.models.masker import Masker
from modalens.models.vlm import ImageTextPredictor, PredictorError


def two_tower_predictor(
    model: Any = None,
    *,
    output: str = "logit",
    class_prompts: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    image_baseline: Any = "mean_colour",
    token_baseline: str | int = "mask",
    weights: str | os.PathLike | None = None,
    **kwargs: Any,
) -> ImageTextPredictor:
    """An :class:`~modalens.models.vlm.ImageTextPredictor` over a :class:`~modalens.features.two_tower.TwoTowerModel`.

    Parameters
    ----------
    model
        The two-tower model; default: the demo's projections (``features/demo_assets/projection.safetensors``, or
        ``weights``) over the towers of the ``features`` extra.
    output
        ``"logit"`` (temperature-scaled cosine, CLIP's score), ``"cosine"``, or ``"zero-shot"`` over
        ``class_prompts`` (the default when prompts are given).
    image_baseline, token_baseline
        The masker's baselines for absent patches and absent word pieces (MiniLM's vocabulary has ``[MASK]``).
    **kwargs
        Passed to :class:`~modalens.models.vlm.ImageTextPredictor` (``batch_size``, ``cache_size`` ...).
    """
    import torch

    from modalens.features.two_tower import TwoTowerModel

    if model is None:
        from modalens.features.demo import DEMO_ASSETS

        model = TwoTowerModel.load(weights if weights is not None else DEMO_ASSETS / "projection.safetensors")
    heads = model.heads
    sentence = model.text_tower.model  # a SentenceTransformer: Transformer -> Pooling(mean) -> Normalize

    def encode_image(pixels: Any) -> Any:
        return heads.project_image(model.image_tower(pixels))

    def encode_text(input_ids: Any, attention_mask: Any) -> Any:
        features = sentence({"input_ids": input_ids, "attention_mask": attention_mask})
        return heads.project_text(torch.nn.functional.normalize(features["sentence_embedding"], dim=-1))

    if class_prompts is not None and output == "logit":
        output = "zero-shot"
    class_embeddings = None
    if output == "zero-shot":
        if not class_prompts:
            raise PredictorError("output='zero-shot' needs class_prompts")
        class_embeddings = model.encode_texts(list(class_prompts))
    scale = float(heads.logit_scale.detach().clamp(max=math.log(100.0)).exp())
    return ImageTextPredictor(
        encode_image,
        encode_text,
        image_size=model.image_size,
        output=output,
        logit_scale=scale,
        class_embeddings=class_embeddings,
        class_names=class_names if class_names is not None else class_prompts,
        tokenizer=sentence.tokenizer,
        masker=Masker(image_baseline, token_baseline=token_baseline),
        name=model.name,
        **kwargs,
    )
