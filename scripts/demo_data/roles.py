"""Known modality roles of the demo set: which polarity each non-text modality expresses, and how.

Text always carries the label (the label comes from it). For audio and vision, independently per instance:

- ``agree`` (rate 0.50): the modality expresses the label's polarity;
- ``contradict`` (0.25): it expresses the opposite polarity (for a neutral label: positive or negative, 50/50);
- ``neutral`` (0.25): it expresses neither.

The expressed polarity then sets espeak-ng's prosody (positive: high, wide-ranging, fast, loud; negative: low,
flat, slow, soft; neutral: in between) and picks the face (one whose network-predicted expression has that
polarity).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from demo_data.speech import Voice

ROLE_RATES = {"agree": 0.50, "contradict": 0.25, "neutral": 0.25}
OPPOSITE = {"positive": "negative", "negative": "positive"}
VOICES = [
    "en-us", "en-us+m1", "en-us+m3", "en-us+m7", "en-us+f1", "en-us+f2", "en-us+f4",
    "en", "en+m2", "en+f3", "en-gb-x-rp", "en-gb-x-rp+f5",
]  # fmt: skip
# (pitch 0-100, range 0-100, rate wpm, volume 0-200) uniform bounds by expressed polarity
PROSODY = {
    "positive": {"pitch": (62, 82), "range": (65, 95), "rate": (185, 215), "volume": (110, 130)},
    "neutral": {"pitch": (42, 58), "range": (35, 55), "rate": (160, 180), "volume": (95, 105)},
    "negative": {"pitch": (18, 38), "range": (5, 25), "rate": (125, 150), "volume": (70, 90)},
}


def assign_roles(label_polarity: pd.Series, seed: int) -> pd.DataFrame:
    """Draw ``audio_role``/``vision_role`` and the polarity each modality then expresses, seeded."""
    rng = np.random.default_rng(seed)
    names, rates = list(ROLE_RATES), list(ROLE_RATES.values())
    out = pd.DataFrame({"label_polarity": label_polarity.to_numpy()})
    for modality in ("audio", "vision"):
        roles = rng.choice(names, size=len(out), p=rates)
        coin = rng.random(len(out)) < 0.5
        expressed = []
        for role, label, heads in zip(roles, out["label_polarity"], coin, strict=True):
            if role == "neutral":
                expressed.append("neutral")
            elif role == "agree":
                expressed.append(label)
            elif label == "neutral":
                expressed.append("positive" if heads else "negative")
            else:
                expressed.append(OPPOSITE[label])
        out[f"{modality}_role"] = roles
        out[f"{modality}_expressed"] = expressed
    return out


def draw_voice(expressed: str, rng: np.random.Generator) -> Voice:
    """A voice (any of :data:`VOICES`, independent of the role) with prosody for the expressed polarity."""
    bounds = PROSODY[expressed]
    value = {k: int(round(rng.uniform(*b))) for k, b in bounds.items()}
    return Voice(str(rng.choice(VOICES)), value["pitch"], value["range"], value["rate"], value["volume"])
