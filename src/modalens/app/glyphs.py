"""M2Lens-style glyph inputs for the projection, and per-modality contributions of templates.

Two documents, each built once per run snapshot and cached like the server's other documents:

- ``GET /api/runs/{run}/glyphs``: per instance, the inputs of a small *face* (the mean of each facial-expression
  feature over the instance's valid steps, from the run's ``dataset.npz``) and of an *acoustic rose* (per acoustic
  feature group, the summed signed and absolute attribution of the group's features over the whole instance, from
  ``feature_attributions``). Columnar: one array of N values per emotion and per group. ``face`` or ``rose`` is
  ``null`` when the run has no facial-expression features or no acoustic attributions; the projection then keeps
  plain dots.
- ``GET /api/runs/{run}/template-contributions``: per template, per modality of its items, each member's summed
  attribution of the template's items of that modality (aligned with the template's sorted ``members``), so the
  browser can average them over any selection.

Which features are facial expressions and which acoustic group a feature belongs to is decided from feature names
(:func:`emotion_of`, :func:`acoustic_group`): Facet / FER emotion names (``Joy``, ``Joy Evidence`` ...) and COVAREP
names (``F0``, ``VUV``, ``NAQ``, ``MCEP_3`` ...) plus the demo's own (``energy_db``, ``word_duration``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.responses import Response

from modalens.app.data import RunSource, column, dumps

EMOTIONS = ("anger", "contempt", "disgust", "fear", "joy", "sadness", "surprise", "neutral")
_EMOTION_ALIASES = {
    "anger": "anger",
    "angry": "anger",
    "contempt": "contempt",
    "disgust": "disgust",
    "fear": "fear",
    "joy": "joy",
    "happy": "joy",
    "happiness": "joy",
    "sadness": "sadness",
    "sad": "sadness",
    "surprise": "surprise",
    "neutral": "neutral",
}
# feature-name suffixes that still name the emotion itself (Facet writes "Joy Evidence", FER "Joy_prob")
_EMOTION_SUFFIXES = ("", "evidence", "prob", "probability", "score", "intensity")

ACOUSTIC_GROUPS = ("pitch", "voicing", "energy", "spectrum", "voice quality", "timing")
_GROUP_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("pitch", re.compile(r"^(f0|pitch|f0_?hz|logf0)$")),
    ("voicing", re.compile(r"^(vuv|voiced|voicing)$")),
    ("energy", re.compile(r"^(energy.*|loudness.*|rms.*|intensity.*)$")),
    ("spectrum", re.compile(r"^(mcep_?\d+|mfcc_?\d+|hmpd[md]_?\d+|formant.*|f[1-5])$")),
    ("voice quality", re.compile(r"^(naq|qoq|h1h2|psp|mdq|peakslope|rd|rd_conf|creak)$")),
    ("timing", re.compile(r"^(word_duration|duration|speech_rate|pause.*)$")),
)
MIN_EMOTIONS = 2  # a modality is a face when at least this many of its features name emotions


def emotion_of(feature: str) -> str | None:
    """The canonical emotion a feature name stands for (``"Joy Evidence"`` -> ``"joy"``), or None."""
    words = re.split(r"[\s_\-]+", feature.strip().lower())
    if not words or words[0] not in _EMOTION_ALIASES:
        return None
    if " ".join(words[1:]) not in _EMOTION_SUFFIXES:
        return None
    return _EMOTION_ALIASES[words[0]]


def acoustic_group(feature: str) -> str | None:
    """The acoustic group of a feature name (``"MCEP_3"`` -> ``"spectrum"``), or None when it is not acoustic.

    Pitch (F0), voicing (VUV), energy / loudness, spectrum (MCEP, MFCC, HMPD phase, formants), voice quality
    (NAQ, QOQ, H1H2, PSP, MDQ, peak slope, Rd, creak), timing (word duration).
    """
    name = feature.strip().lower()
    for group, pattern in _GROUP_PATTERNS:
        if pattern.match(name):
            return group
    return None


def _face_modality(source: RunSource, dataset: Any) -> tuple[str, dict[str, str]] | None:
    """The first modality whose features name at least :data:`MIN_EMOTIONS` emotions: (name, emotion -> feature)."""
    for spec in source.interaction.dataset.modalities:
        if dataset is None or spec.name not in dataset.modalities:
            continue
        found: dict[str, str] = {}
        for feature in dataset[spec.name].feature_names:
            emotion = emotion_of(feature)
            if emotion is not None and emotion not in found:
                found[emotion] = feature
        if len(found) >= MIN_EMOTIONS:
            return spec.name, found
    return None


def _acoustic_modality(source: RunSource) -> tuple[str, dict[str, str]] | None:
    """The first modality with features in at least two acoustic groups: (name, feature -> group)."""
    for spec in source.interaction.dataset.modalities:
        groups = {f: g for f in spec.feature_names or [] if (g := acoustic_group(f)) is not None}
        if len(set(groups.values())) >= 2:
            return spec.name, groups
    return None


def compact(values: np.ndarray, digits: int = 4) -> list[float | None]:
    """A float column rounded to ``digits`` significant digits (a glyph needs no more; 50,000 instances x 17
    columns at full precision would be a 15 MB document), NaN as None."""
    x = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        exponent = np.floor(np.log10(np.abs(x)))
        factor = 10.0 ** np.where(np.isfinite(exponent), digits - 1 - exponent, 0)
        rounded = np.where(np.isfinite(x) & (x != 0), np.round(x * factor) / factor, x)
    return column(rounded)


def _percentile_range(values: np.ndarray) -> list[float | None]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return [None, None]
    lo, hi = np.percentile(finite, [5, 95])
    return [float(lo), float(hi)]


def face_inputs(source: RunSource) -> dict[str, Any] | None:
    """Per emotion, each instance's mean of that feature over its valid steps (None where it has none)."""
    dataset = source.dataset()  # the snapshot's dataset.npz, shared with the instance detail
    if dataset is None or len(dataset) != source.n:
        return None
    found = _face_modality(source, dataset)
    if found is None:
        return None
    name, by_emotion = found
    modality = dataset[name]
    mask = modality.step_mask().astype(np.float64)  # [N, T]
    count = mask.sum(axis=1)
    emotions = [e for e in EMOTIONS if e in by_emotion]
    values: dict[str, list[float | None]] = {}
    ranges: dict[str, list[float | None]] = {}
    for emotion in emotions:
        d = modality.feature_names.index(by_emotion[emotion])
        x = np.asarray(modality.values[:, :, d], dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, (np.where(mask > 0, x, 0.0)).sum(axis=1) / count, np.nan)
        values[emotion] = compact(mean)
        ranges[emotion] = _percentile_range(mean)
    return {
        "modality": name,
        "emotions": emotions,
        "features": {e: by_emotion[e] for e in emotions},
        "values": values,
        "range": ranges,
    }


def _per_feature_attribution(source: RunSource, modality: str) -> tuple[pd.DataFrame, str] | None:
    """``[N, features]`` attribution of each feature over the whole instance: the ``position = -1`` rows where the
    run has them for this modality, else the feature's per-step rows summed (and the source named)."""
    if "feature_attributions" not in source.run.table_names:
        return None
    fa = source.run.table("feature_attributions")
    fa = fa[(fa["modality"] == modality) & (fa["feature"] != "*")]
    if fa.empty:
        return None
    source.instance_numbers("feature_attributions")
    whole = fa[fa["position"] < 0]
    kind = "features"
    if whole.empty:
        whole, kind = fa, "steps summed"
    wide = whole.pivot_table(index="instance", columns="feature", values="value", aggfunc="sum")
    return wide.reindex(range(source.n)), kind


def rose_inputs(source: RunSource) -> dict[str, Any] | None:
    """Per acoustic group, each instance's summed signed and absolute attribution of the group's features."""
    found = _acoustic_modality(source)
    if found is None:
        return None
    name, feature_group = found
    attributed = _per_feature_attribution(source, name)
    if attributed is None:
        return None
    wide, kind = attributed
    groups = [g for g in ACOUSTIC_GROUPS if g in feature_group.values()]
    signed: dict[str, list[float | None]] = {}
    absolute: dict[str, list[float | None]] = {}
    members: dict[str, list[str]] = {}
    largest: list[np.ndarray] = []
    for group in groups:
        feats = [f for f, g in feature_group.items() if g == group and f in wide.columns]
        members[group] = [f for f, g in feature_group.items() if g == group]
        if not feats:
            signed[group] = absolute[group] = [None] * source.n
            continue
        block = wide[feats].to_numpy(dtype=np.float64)
        known = np.isfinite(block).any(axis=1)
        s = np.where(known, np.nansum(block, axis=1), np.nan)
        a = np.where(known, np.nansum(np.abs(block), axis=1), np.nan)
        signed[group], absolute[group] = compact(s), compact(a)
        largest.append(a)
    stacked = np.concatenate(largest) if largest else np.array([])
    stacked = stacked[np.isfinite(stacked)]
    # petals are scaled by a robust maximum over all groups and instances, so one outlier does not shrink the rest
    scale = float(np.percentile(stacked, 98)) if stacked.size else 0.0
    return {
        "modality": name,
        "groups": groups,
        "features": members,
        "signed": signed,
        "abs": absolute,
        "scale": scale,
        "source": kind,
    }


def glyph_document(source: RunSource) -> dict[str, Any]:
    """The glyph inputs of every instance of an interaction run (see the module docstring)."""
    source.interaction  # noqa: B018 - NotFound for runs of another kind
    return {"n": source.n, "face": face_inputs(source), "rose": rose_inputs(source)}


# -- per-modality contributions of templates ----------------------------------------------------------------------
def _normalise_word(word: Any) -> str:
    return str(word).strip().lower() if isinstance(word, str) else ""


def template_contributions(source: RunSource) -> dict[str, Any]:
    """Per template and modality, each member's summed attribution of the template's items of that modality.

    An item's attribution follows :func:`modalens.interactions.templates.item_attributions`: a word item is the
    summed attribution of the instance's steps holding that word (``feature = "*"`` rows), a feature item the
    feature's attribution over the whole instance (``position = -1`` rows, else its step rows summed). Values are
    aligned with the template's members sorted by instance (as ``/templates`` lists them); null where unknown.
    """
    source.table("templates")
    templates = source.run.table("templates")
    members: dict[int, np.ndarray] = {}
    if "template_members" in source.run.table_names:
        tm = source.run.table("template_members")
        for tid, group in tm.groupby("template_id", sort=False):
            members[int(tid)] = np.sort(group["instance"].to_numpy())
    words: pd.Series | None = None
    features: pd.Series | None = None
    if "feature_attributions" in source.run.table_names:
        # only the rows of words and features some template names are ever looked up: filter before grouping
        rests = {str(item).partition(":")[2] for items in templates["items"] for item in items}
        wanted_words = {_normalise_word(r) for r in rests}
        wanted_features = {r.rsplit(" ", 1)[0] for r in rests if " " in r}
        fa = source.run.table("feature_attributions")
        steps = fa[(fa["feature"] == "*") & (fa["position"] >= 0)]
        if "token" in steps.columns and len(steps):
            word = steps["token"].astype(object).where(steps["token"].notna(), "").astype(str).str.strip().str.lower()
            keep = word.isin(wanted_words) & (word != "")
            w = steps[keep].assign(word=word[keep])
            words = w.groupby(["instance", "modality", "word"])["value"].sum()
        named = fa[fa["feature"].isin(wanted_features)]
        whole = named[named["position"] < 0]
        # a modality with no whole-instance rows falls back to its per-step rows summed
        has_whole = set(whole["modality"].unique())
        fallback = named[(named["position"] >= 0) & ~named["modality"].isin(has_whole)]
        features = pd.concat([whole, fallback]).groupby(["instance", "modality", "feature"])["value"].sum()
    word_modalities = set(words.index.get_level_values(1).unique()) if words is not None else set()
    words_by_key, features_by_key = _dense(words, source.n), _dense(features, source.n)
    out = []
    for rec in templates.to_dict("records"):
        tid = int(rec["template_id"])
        inst = members.get(tid, np.array([], dtype=np.int64))
        per: dict[str, np.ndarray] = {}
        # the item's own prefix names its modality (the ``modalities`` column may list each modality once)
        for item in list(rec["items"]):
            modality, _, rest = str(item).partition(":")
            # a modality with words makes word items; any other makes "<feature> <level>" items
            if modality in word_modalities:
                table, key = words_by_key, _normalise_word(rest)
            else:
                table, key = features_by_key, rest.rsplit(" ", 1)[0]
            column_of = table.get((modality, key)) if table is not None else None
            value = column_of[inst] if column_of is not None else np.full(len(inst), np.nan)
            acc = per.setdefault(modality, np.zeros(len(inst)))
            # unknown items count as unknown (NaN), not zero, as in mine_templates
            per[modality] = acc + value
        # 7 significant digits: half the bytes of full precision (71 MB at 500,000 instances); a bar shows far less
        out.append({"template_id": tid, "values": {m: compact(v, 7) for m, v in per.items()}})
    return {"templates": out}


def _dense(grouped: pd.Series | None, n: int) -> dict[tuple[str, str], np.ndarray] | None:
    """``(instance, modality, key) -> value`` as one ``[N]`` array (NaN where absent) per ``(modality, key)``."""
    if grouped is None:
        return None
    flat = grouped.reset_index()
    inst_col, mod_col, key_col = flat.columns[:3]
    out: dict[tuple[str, str], np.ndarray] = {}
    for (modality, key), group in flat.groupby([mod_col, key_col], sort=False, observed=True):
        arr = np.full(n, np.nan)
        arr[group[inst_col].to_numpy(dtype=np.int64)] = group["value"].to_numpy(dtype=np.float64)
        out[(str(modality), str(key))] = arr
    return out


def add_glyph_routes(app: FastAPI, *, get_run: Callable[[str], Any], send: Callable[..., Any]) -> None:
    """Register ``/glyphs`` and ``/template-contributions`` on ``app`` (cached per run snapshot by ``send``)."""

    @app.get("/api/runs/{run_id}/glyphs", tags=["interaction runs"])
    async def glyphs(request: Request, run_id: str) -> Response:
        """Per instance, face inputs (mean facial-expression features) and acoustic-rose petals (attribution per
        acoustic feature group); ``face`` / ``rose`` are null when the run has no such features."""
        return await send(request, get_run(run_id), lambda s: dumps(glyph_document(s)))

    @app.get("/api/runs/{run_id}/template-contributions", tags=["interaction runs"])
    async def contributions(request: Request, run_id: str) -> Response:
        """Per template and modality, each member's summed attribution of the template's items of that modality."""
        return await send(request, get_run(run_id), lambda s: dumps(template_contributions(s)))
