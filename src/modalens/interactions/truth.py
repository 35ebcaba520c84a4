"""Truth against explanation: do explained modality roles match the roles a dataset was built with?

A dataset with known roles stores, per instance and modality, whether that modality's cue was set to ``agree``
with the label, ``contradict`` it, or stay ``neutral`` (columns like ``meta["audio_role"]``). A model that uses the
cue as built should give that modality a Shapley value whose sign matches the label's sign when it agrees, the
opposite sign when it contradicts, and a small share when neutral. We score exactly that:

- ``sign agreement`` over instances whose role is agree/contradict and whose label is not 0: the share where
  sign(phi_m) == sign(label) for agree, and sign(phi_m) == -sign(label) for contradict;
- ``neutral share``: mean share |phi_m| / sum|phi| where the role is neutral (small is good), against the mean
  share where it is not neutral.

A model may legitimately ignore a cue (then its sign is noise): the table shows how a model *actually* uses each
modality, which is the point of comparing several models against one truth.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from modalens.data.dataset import DatasetError
from modalens.interactions.explanation import Explanation
from modalens.interactions.interaction_types import TypingConfig, classify

ROLE_VALUES = ("agree", "contradict", "neutral")


def role_columns(explanation: Explanation, suffix: str = "_role") -> dict[str, str]:
    """Modality -> metadata column holding its known role (``<modality>_role``), for the modalities that have one."""
    meta = explanation.dataset.meta
    if meta is None:
        return {}
    return {m: f"{m}{suffix}" for m in explanation.modalities if f"{m}{suffix}" in meta.columns}


def role_agreement(explanation: Explanation, columns: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Per modality and known role: count, sign agreement, mean share, and how often each explained role occurs.

    Parameters
    ----------
    explanation
        An explanation of a regression model over a dataset with known roles.
    columns
        Modality -> metadata column of roles; defaults to :func:`role_columns`.
    """
    columns = dict(columns or role_columns(explanation))
    if not columns:
        raise DatasetError("the dataset has no role columns (meta['<modality>_role']); nothing to compare against")
    labels = explanation.dataset.labels
    if labels is None:
        raise DatasetError("role agreement needs labels (their sign is what a modality agrees or disagrees with)")
    meta = explanation.dataset.meta
    label_sign = np.sign(labels)
    rows = []
    for modality, column in columns.items():
        if column not in meta.columns:
            raise DatasetError(f"metadata has no column {column!r} for modality {modality!r}")
        m = explanation.modalities.index(modality)
        phi = explanation.shapley[:, m]
        share = explanation.types.shares[:, m]
        explained_roles = explanation.types.roles[:, m]
        known = meta[column].astype(str).to_numpy()
        for role in ROLE_VALUES:
            sel = known == role
            if not sel.any():
                continue
            row = {
                "modality": modality,
                "known_role": role,
                "count": int(sel.sum()),
                "mean_share": float(share[sel].mean()),
            }
            usable = sel & (label_sign != 0)
            if role != "neutral" and usable.any():
                expected = label_sign[usable] * (1 if role == "agree" else -1)
                row["sign_agreement"] = float((np.sign(phi[usable]) == expected).mean())
            else:
                row["sign_agreement"] = np.nan
            for explained in ("dominant", "supporting", "opposing", "minor"):
                row[f"explained_{explained}"] = float((explained_roles[sel] == explained).mean())
            rows.append(row)
    return pd.DataFrame(rows)


def type_by_roles(explanation: Explanation, columns: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Cross-table: known role combination (e.g. ``audio=agree, vision=contradict``) x explained interaction type."""
    columns = dict(columns or role_columns(explanation))
    meta = explanation.dataset.meta
    combo = [", ".join(f"{m}={meta[c].iloc[i]}" for m, c in columns.items()) for i in range(len(explanation))]
    return pd.crosstab(
        pd.Series(combo, name="known roles"), pd.Series(explanation.type_labels(), name="explained type")
    )


def typing_accuracy(
    explanation: Explanation, true_contributions: np.ndarray, config: TypingConfig | None = None
) -> dict:
    """How often the explained type equals the type of a glass-box model's known contributions.

    ``true_contributions`` is ``[N, M]``: each modality's exact contribution relative to the baseline (for an
    additive model, its term at the input minus its term at the baseline).
    """
    config = config or explanation.typing
    truth = classify(np.asarray(true_contributions, dtype=np.float64), None, config)
    explained = explanation.types
    same_type = truth.types == explained.types
    same_dominant = truth.dominant == explained.dominant
    return {
        "n": len(explanation),
        "type_accuracy": float(same_type.mean()),
        "type_and_dominant_accuracy": float((same_type & same_dominant).mean()),
        "confusion": pd.crosstab(
            pd.Series(truth.types, name="true type"), pd.Series(explained.types, name="explained type")
        ),
    }
