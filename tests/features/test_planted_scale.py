"""Known answer at a realistic width: unit-norm embeddings built from planted vision, language and cross-modal atoms
(with a modality gap, as CLIP has); the TopK SAE + MDS pipeline must recover each atom's modality."""

import numpy as np
import pytest

from modalens.features.study import run_feature_study


def _planted_unit_norm(n: int = 1500, d: int = 128, n_atoms: int = 90, per_row: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    atoms = rng.normal(size=(n_atoms, d))
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    kind = np.arange(n_atoms) % 3  # 0 vision, 1 language, 2 cross-modal
    coef = np.zeros((n, n_atoms))
    for i in range(n):
        coef[i, rng.choice(n_atoms, per_row, replace=False)] = rng.uniform(0.5, 1.5, per_row)
    gap = rng.normal(size=d)
    gap /= np.linalg.norm(gap)
    img = (coef * (kind != 1)) @ atoms + 0.5 * gap
    txt = (coef * (kind != 0)) @ atoms - 0.5 * gap
    img /= np.linalg.norm(img, axis=1, keepdims=True)
    txt /= np.linalg.norm(txt, axis=1, keepdims=True)
    return img.astype(np.float32), txt.astype(np.float32), coef > 0, kind


@pytest.mark.slow
def test_topk_pipeline_recovers_planted_modalities():
    img, txt, presence, kind = _planted_unit_norm()
    study = run_feature_study(
        img,
        txt,
        extractor="topk",
        d_sae=256,
        extractor_options={"k": 12, "epochs": 20, "lr": 2e-3},
        n_boot=200,
        compare_with=(),
        n_random=1,
        steer_features=1,
    )
    assert study.extractor_metrics["explained_variance"] > 0.9
    zi = study.extractor.encode_numpy(img)
    zt = study.extractor.encode_numpy(txt)
    cats = study.features.category.to_numpy()
    names = {0: "vision", 1: "language", 2: "cross-modal"}
    hits = 0
    for a in range(presence.shape[1]):
        # the feature that best tracks atom a on the side(s) where it appears
        fired = (zi > 0) | (zt > 0)
        overlap = (fired & presence[:, [a]]).sum(axis=0) / np.maximum(1, (fired | presence[:, [a]]).sum(axis=0))
        hits += cats[int(np.argmax(overlap))] == names[int(kind[a])]
    assert hits / presence.shape[1] >= 0.8
    props = study.proportions
    for c in ("vision", "language", "cross-modal"):
        assert abs(props[c] - 1 / 3) < 0.12, props
    # removing the shared (cross-modal) features destroys retrieval, far more than random features of the same number;
    # removing modality-specific ones does not hurt it (they are what differs between the two sides of a pair)
    ga = study.interventions[study.interventions.intervention == "group_ablation"].set_index(["group", "metric"])
    cross = ga.loc[("cross-modal", "i2t@1")]
    assert cross.after < 0.2 * cross.before and cross.after < cross.control
    for group in ("vision", "language"):
        row = ga.loc[(group, "i2t@5")]
        assert row.after >= row.before - 0.02
