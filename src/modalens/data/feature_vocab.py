"""What the usual multimodal features measure: a short description and a group for each known feature name.

Covers the acoustic COVAREP set of CMU-MOSI/MOSEI (F0, glottal voice-quality measures, MCEP, HMPD), the Facet and
OpenFace facial sets (emotion evidences, action units by face region, head pose, gaze) and the embedded demo set's
own features (VADER valence, MiniLM and FER principal components, ``energy_db``, ``word_duration``). The instance
view shows the description as a tooltip and orders a modality's feature tracks by group.

Names are matched as datasets spell them: case-insensitively, with a Facet ``Evidence`` suffix or an OpenFace
``_r`` (intensity) / ``_c`` (presence) suffix, and action units with or without a leading zero (``AU1``, ``AU01``).
An unknown name gets ``None``: the view then shows the bare name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["FeatureInfo", "describe_feature"]


@dataclass(frozen=True)
class FeatureInfo:
    """What a feature measures (``description``) and the family it belongs to (``group``)."""

    description: str
    group: str


_PITCH, _VOICE, _SPECTRUM, _PHASE = "pitch", "voice quality", "spectrum", "phase"
_EMOTION, _POSE, _GAZE = "emotion", "head pose", "gaze"

# exact names (lower-cased) -> info; acoustic first, then facial, then the demo set's own
_EXACT: dict[str, FeatureInfo] = {
    "f0": FeatureInfo("fundamental frequency: how high the voice is (Hz; 0 when unvoiced)", _PITCH),
    "vuv": FeatureInfo("voicing: share of the frames where the vocal folds vibrate", _PITCH),
    "naq": FeatureInfo("normalised amplitude quotient of the glottal pulse: low for a tense, pressed voice", _VOICE),
    "qoq": FeatureInfo("quasi-open quotient: how long the glottis stays open in each cycle (breathiness)", _VOICE),
    "h1h2": FeatureInfo("level difference of the first two harmonics (dB): high for a breathy voice", _VOICE),
    "psp": FeatureInfo("parabolic spectral parameter: spectral decay of the glottal source", _VOICE),
    "mdq": FeatureInfo("maxima dispersion quotient: how spread the glottal closures are (lax vs tense)", _VOICE),
    "peakslope": FeatureInfo("slope of the wavelet peaks across scales: steep for a breathy voice", _VOICE),
    "rd": FeatureInfo("Rd shape of the glottal flow: low for tense, high for relaxed phonation", _VOICE),
    "rd_conf": FeatureInfo("confidence of the Rd estimate", _VOICE),
    "creak": FeatureInfo("probability of creaky voice (vocal fry)", _VOICE),
    "energy_db": FeatureInfo("loudness: root-mean-square level of the word's frames (dB)", "loudness"),
    "word_duration": FeatureInfo("time taken to say the word (s)", "timing"),
    # Facet emotions (and the demo face network's seven classes, named after them)
    "anger": FeatureInfo("evidence of an angry expression", _EMOTION),
    "contempt": FeatureInfo("evidence of a contemptuous expression", _EMOTION),
    "disgust": FeatureInfo("evidence of a disgusted expression", _EMOTION),
    "joy": FeatureInfo("evidence of a joyful expression (smile)", _EMOTION),
    "fear": FeatureInfo("evidence of a fearful expression", _EMOTION),
    "sadness": FeatureInfo("evidence of a sad expression", _EMOTION),
    "surprise": FeatureInfo("evidence of a surprised expression", _EMOTION),
    "neutral": FeatureInfo("evidence of a neutral, expressionless face", _EMOTION),
    "baseline": FeatureInfo("Facet's neutral baseline evidence", _EMOTION),
    "confusion": FeatureInfo("evidence of a confused expression", _EMOTION),
    "frustration": FeatureInfo("evidence of a frustrated expression", _EMOTION),
    "positive": FeatureInfo("evidence of a positive expression overall", _EMOTION),
    "negative": FeatureInfo("evidence of a negative expression overall", _EMOTION),
    "pitch": FeatureInfo("head pose: nodding angle (up/down)", _POSE),
    "yaw": FeatureInfo("head pose: turning angle (left/right)", _POSE),
    "roll": FeatureInfo("head pose: tilting angle (towards a shoulder)", _POSE),
    "vader_valence": FeatureInfo("the word's valence in the VADER sentiment lexicon (0 when not listed)", "lexicon"),
}

# FACS action units: name and face region
_AU: dict[int, tuple[str, str]] = {
    1: ("inner brow raiser", "brow"),
    2: ("outer brow raiser", "brow"),
    4: ("brow lowerer", "brow"),
    5: ("upper lid raiser", "eyes"),
    6: ("cheek raiser", "eyes"),
    7: ("lid tightener", "eyes"),
    9: ("nose wrinkler", "nose"),
    10: ("upper lip raiser", "lips"),
    11: ("nasolabial deepener", "lips"),
    12: ("lip corner puller (smile)", "lips"),
    14: ("dimpler", "lips"),
    15: ("lip corner depressor", "lips"),
    16: ("lower lip depressor", "lips"),
    17: ("chin raiser", "chin"),
    18: ("lip pucker", "lips"),
    20: ("lip stretcher", "lips"),
    23: ("lip tightener", "lips"),
    24: ("lip pressor", "lips"),
    25: ("lips part", "lips"),
    26: ("jaw drop", "chin"),
    28: ("lip suck", "chin"),
    43: ("eyes closed", "eyes"),
    45: ("blink", "eyes"),
}

_SUFFIX = re.compile(r"(?:[ _-]?evidence|_r|_c)$", re.IGNORECASE)
_AU_NAME = re.compile(r"^au[ _]?0*(\d{1,2})$", re.IGNORECASE)
_NUMBERED = re.compile(r"^([a-z_]+?)_?(\d+)$", re.IGNORECASE)
_POSE_AXIS = {"rx": "pitch", "ry": "yaw", "rz": "roll", "tx": "x", "ty": "y", "tz": "z"}


def describe_feature(name: str, kind: str | None = None) -> FeatureInfo | None:
    """The description and group of the feature ``name`` (of a modality of ``kind``), or None when unknown.

    ``kind`` separates the one name two vocabularies share: ``pitch`` is a head-pose angle in a vision modality;
    in an audio modality it is the voice's pitch.
    """
    if not isinstance(name, str) or not name or name == "*":
        return None
    if name.lower() == "pitch" and kind == "audio":
        return FeatureInfo("pitch of the voice", _PITCH)
    exact = _EXACT.get(name.lower())
    if exact is not None:
        return exact
    bare = _SUFFIX.sub("", name)
    au = _AU_NAME.match(bare)
    if au:
        number = int(au.group(1))
        if number not in _AU:
            return FeatureInfo(f"facial action unit {number}", "action units")
        what, region = _AU[number]
        strength = {"_r": " (intensity)", "_c": " (present or not)"}.get(name[len(bare) :].lower(), "")
        return FeatureInfo(f"action unit {number}: {what}{strength}", region)
    if bare != name and bare.lower() in _EXACT:  # "Joy Evidence"
        return _EXACT[bare.lower()]
    return _numbered(name)


def _numbered(name: str) -> FeatureInfo | None:
    """Families of numbered coefficients (MCEP_3, HMPDM_0, minilm_pc12, FER_act_pc4, gaze_0_x ...)."""
    lower = name.lower()
    if lower.startswith("pose_") and lower[5:] in _POSE_AXIS:
        axis = _POSE_AXIS[lower[5:]]
        what = f"{axis} angle" if lower[5] == "r" else f"position along {axis}"
        return FeatureInfo(f"head pose: {what}", _POSE)
    if lower.startswith("gaze_"):
        return FeatureInfo(f"gaze direction component {name[5:]}", _GAZE)
    m = _NUMBERED.match(name)
    if not m:
        return None
    stem, k = m.group(1).lower().rstrip("_"), int(m.group(2))
    if stem == "mcep":
        what = "overall level (log energy)" if k == 0 else "spectral envelope (timbre, vowel quality)"
        return FeatureInfo(f"mel-cepstral coefficient {k}: {what}", _SPECTRUM)
    if stem == "hmpdm":
        return FeatureInfo(f"harmonic phase distortion, mean, band {k}: how regular the voice's phase is", _PHASE)
    if stem == "hmpdd":
        return FeatureInfo(f"harmonic phase distortion, deviation, band {k}: phase noise of the voice", _PHASE)
    if stem == "minilm_pc":
        return FeatureInfo(f"principal component {k} of the MiniLM sentence embedding of the words", "embedding")
    if stem == "fer_act_pc":
        return FeatureInfo(
            f"principal component {k} of the face-expression network's last-layer activations", "face embedding"
        )
    return None
