"""EMAP on glass-box models of known additivity, against brute-force projections."""

from __future__ import annotations

import json

import numpy as np
import pytest

from modalens.data.dataset import Modality, MultimodalDataset
from modalens.interactions.emap import EMAPError, emap
from modalens.models.masker import Masker
from modalens.models.predictor import CallablePredictor

NAMES = ("text", "audio", "vision")


def make_dataset(n: int = 60, seed: int = 0, labels: np.ndarray | None = None) -> MultimodalDataset:
    """Zero-mean features; text and audio have padded steps (masks) holding junk values."""
    rng = np.random.default_rng(seed)
    steps = 5
    mods = []
    for name, dim in zip(NAMES, (3, 2, 4), strict=True):
        x = rng.normal(size=(n, steps, dim))
        mask = None
        if name != "vision":
            mask = np.arange(steps)[None, :] < rng.integers(1, steps + 1, n)[:, None]
            x[~mask] = 40.0  # junk that a model reading the mask never sees
        mods.append(Modality(name, name, x, mask=mask))
    return MultimodalDataset(mods, labels=labels)


def pooled(values: dict, masks: dict, name: str) -> np.ndarray:
    w = masks[name][..., None].astype(np.float64)
    return (values[name] * w).sum(1) / w.sum(1)


def g_text(values, masks):
    return np.tanh(pooled(values, masks, "text").sum(1))


def g_audio(values, masks):
    return np.sin(3 * pooled(values, masks, "audio")[:, 0])


def g_vision(values, masks):
    return values["vision"][:, 0, 0] ** 2


def additive3(values, masks):
    return g_text(values, masks) + g_audio(values, masks) + g_vision(values, masks)


def additive2(values, masks):
    return g_text(values, masks) + g_audio(values, masks)


def t_times_a(values, masks):
    return pooled(values, masks, "text")[:, 0] * pooled(values, masks, "audio")[:, 0]


def predictor(fn, **kwargs) -> CallablePredictor:
    return CallablePredictor(fn, NAMES, **kwargs)


def brute_force_two(fn, ds: MultimodalDataset, a: str, b: str) -> np.ndarray:
    """Hessel & Lee's formula by explicit loops (vision, unused by fn, stays with instance i)."""
    n = len(ds)
    f = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            src = {a: i, b: j, "vision": i}
            values = {m: ds[m].values[[src[m]]].astype(np.float64) for m in NAMES}
            masks = {m: ds[m].step_mask()[[src[m]]] for m in NAMES}
            f[i, j] = fn(values, masks)[0]
    return f.mean(1) + f.mean(0) - f.mean()


def test_two_modality_additive_model_is_its_own_projection():
    ds0 = make_dataset()
    noise = np.random.default_rng(11).normal(scale=0.3, size=60)
    ds = make_dataset(labels=(additive2(ds0.arrays(), ds0.masks()) + noise).astype(np.float32))
    r = emap(predictor(additive2), ds, modalities=["text", "audio"], progress=False)
    assert np.allclose(r.projected, r.original, atol=1e-5)
    assert r.interaction_share < 1e-9
    assert all(abs(v) < 1e-5 for v in r.gap.values())
    assert r.n_evaluations == 60 + 60 * 60
    # The components are the centred one-modality functions.
    text_part = g_text(ds.arrays(), ds.masks())
    assert np.allclose(r.components[:, 0, 0], text_part - text_part.mean(), atol=1e-5)


def test_two_modality_projection_matches_hessel_lee_formula():
    ds = make_dataset(n=23, seed=1)
    # batch_size 7 does not divide n: chunks cut across rows of the mixing matrix.
    r = emap(predictor(t_times_a), ds, modalities=["text", "audio"], batch_size=7, progress=False)
    assert np.allclose(r.projected[:, 0], brute_force_two(t_times_a, ds, "text", "audio"), atol=1e-5)


def test_multiplicative_model_has_constant_projection_and_large_gap():
    n = 200
    ds0 = make_dataset(n=n, seed=2)
    labels = t_times_a(ds0.arrays(), ds0.masks()).astype(np.float32)
    ds = make_dataset(n=n, seed=2, labels=labels)
    r = emap(predictor(t_times_a), ds, modalities=["text", "audio"], max_instances=None, progress=False)
    # f = t * a with zero-mean, independent t and a: E[f | t] = t E[a] ~ 0, so f^ is nearly constant.
    assert r.projected.std() < 0.2 * r.original.std()
    assert r.interaction_share > 0.9
    perf_o, perf_p = r.performance_original, r.performance_projected
    assert perf_o["mae"] == pytest.approx(0.0, abs=1e-6) and perf_o["corr"] == pytest.approx(1.0)
    assert abs(perf_p["corr"]) < 0.3  # the additive projection barely tracks a product
    assert r.gap["mae"] > 0.5 * np.abs(labels).mean()
    assert r.gap["corr"] > 0.7


@pytest.mark.parametrize("mixing", ["joint", "independent"])
def test_three_modality_additive_model_is_exact(mixing):
    ds = make_dataset(n=40, seed=3)
    r = emap(predictor(additive3), ds, mixing=mixing, batch_size=333, progress=False)
    assert np.allclose(r.projected, r.original, atol=1e-5)
    assert r.interaction_share < 1e-9
    assert r.groups == list(NAMES)
    # Independent modalities: the parts' variances add up to the output variance (up to sampling covariance).
    assert sum(r.component_shares().values()) == pytest.approx(1.0, abs=0.3)
    assert np.allclose(r.components.mean(0), 0.0, atol=1e-9)
    assert r.n_evaluations == 40 + 3 * 40 * 40
    assert r.performance_original is None and r.gap is None  # no labels


def test_masks_travel_with_their_modality():
    # additive2 reads masked means; junk at padded steps would leak in if masks came from the wrong instance.
    ds = make_dataset(n=30, seed=4)
    r = emap(predictor(additive2), ds, modalities=["text", "audio"], progress=False)
    assert np.allclose(r.projected, r.original, atol=1e-5)


def test_three_modality_joint_mixing_matches_its_definition():
    ds = make_dataset(n=9, seed=5)

    def fn(values, masks):
        return t_times_a(values, masks) * values["vision"][:, 0, 1] + g_vision(values, masks)

    r = emap(predictor(fn), ds, mixing="joint", batch_size=10, progress=False)
    n = len(ds)
    terms, grand = np.zeros((n, 3)), []
    for g, own in enumerate(NAMES):
        f = np.empty((n, n))
        for i in range(n):
            src = {m: (i if m == own else np.arange(n)) for m in NAMES}
            values = {m: ds[m].values[src[m]].reshape(-1, *ds[m].values.shape[1:]) for m in NAMES}
            values = {m: np.broadcast_to(v, (n, *v.shape[1:])) for m, v in values.items()}
            masks = {m: np.broadcast_to(ds[m].step_mask()[src[m]].reshape(-1, 5), (n, 5)) for m in NAMES}
            f[i] = fn(values, masks)
        terms[:, g] = f.mean(1)
        grand.append(f.mean())
    expected = terms.sum(1) - 2 * np.mean(grand)
    assert np.allclose(r.projected[:, 0], expected, atol=1e-5)


def test_independent_mixing_is_unbiased_for_the_product_projection():
    """Averaged over seeds, independent mixing approaches the exact projection under the product of marginals."""
    ds = make_dataset(n=7, seed=6)

    def fn(values, masks):
        return pooled(values, masks, "text")[:, 0] * values["vision"][:, 0, 0] * pooled(values, masks, "audio")[:, 1]

    n = len(ds)
    # Exact product-measure projection from the full n^3 grid f(t_i, a_j, v_k).
    idx = np.stack(np.meshgrid(np.arange(n), np.arange(n), np.arange(n), indexing="ij"), -1).reshape(-1, 3)
    values = {m: ds[m].values[idx[:, g]] for g, m in enumerate(NAMES)}
    masks = {m: ds[m].step_mask()[idx[:, g]] for g, m in enumerate(NAMES)}
    grid = fn(values, masks).reshape(n, n, n)
    exact = grid.mean((1, 2)) + grid.mean((0, 2)) + grid.mean((0, 1)) - 2 * grid.mean()
    runs = [emap(predictor(fn), ds, mixing="independent", seed=s, progress=False).projected[:, 0] for s in range(300)]
    single_error = np.abs(runs[0] - exact).max()
    averaged_error = np.abs(np.mean(runs, 0) - exact).max()
    assert averaged_error < 0.25 * single_error
    assert averaged_error < 0.05 * np.abs(grid).max()


def test_groups_make_a_within_group_interaction_additive():
    ds = make_dataset(n=30, seed=7)

    def fn(values, masks):  # text + (audio x vision)
        return g_text(values, masks) + pooled(values, masks, "audio")[:, 0] * values["vision"][:, 0, 0]

    split = emap(predictor(fn), ds, progress=False)
    grouped = emap(predictor(fn), ds, modalities=["text", ("audio", "vision")], progress=False)
    assert grouped.groups == ["text", "audio+vision"]
    assert np.allclose(grouped.projected, grouped.original, atol=1e-5)
    assert split.interaction_share > 0.3


def test_unlisted_modalities_are_absent():
    ds = make_dataset(n=20, seed=8)

    def fn(values, masks):
        return additive2(values, masks) + 100 * values["vision"][:, 0, 0]

    masker = Masker({"vision": 0.5})
    r = emap(CallablePredictor(fn, NAMES, masker=masker), ds, modalities=["text", "audio"], progress=False)
    assert np.allclose(r.original[:, 0], additive2(ds.arrays(), ds.masks()) + 50.0, atol=1e-4)
    assert np.allclose(r.projected, r.original, atol=1e-4)


def test_subsampling_is_seeded():
    ds = make_dataset(n=120, seed=9)
    a = emap(predictor(additive2), ds, max_instances=25, seed=4, progress=False)
    b = emap(predictor(additive2), ds, max_instances=25, seed=4, progress=False)
    c = emap(predictor(additive2), ds, max_instances=25, seed=5, progress=False)
    assert len(a.index) == 25 and len(set(a.index.tolist())) == 25 and (np.diff(a.index) > 0).all()
    assert np.array_equal(a.index, b.index) and not np.array_equal(a.index, c.index)
    assert list(a.ids) == [str(i) for i in a.index]


def test_classifier_projection_keeps_probabilities_summing_to_one():
    n = 80
    ds0 = make_dataset(n=n, seed=10)
    logit = 3 * t_times_a(ds0.arrays(), ds0.masks())
    labels = (logit > 0).astype(np.int64)
    ds = make_dataset(n=n, seed=10, labels=labels)

    def clf(values, masks):
        p1 = 1 / (1 + np.exp(-3 * t_times_a(values, masks)))
        return np.stack([1 - p1, p1], 1)

    r = emap(predictor(clf, output_kind="classification"), ds, target=1, progress=False)
    assert r.original.shape == (n, 2) and r.projected.shape == (n, 2)
    assert np.allclose(r.projected.sum(1), 1.0, atol=1e-6)  # the projection is linear and sum-preserving
    assert r.performance_original["accuracy"] == 1.0
    assert r.gap["accuracy"] > 0.2
    assert r.target == 1 and r.interaction_share > 0.5
    frame = r.to_frame()
    assert len(frame) == 2 * n and {"component_text", "component_vision"} <= set(frame.columns)
    summary = json.loads(json.dumps(r.to_dict()))
    assert summary["method"] == "emap" and summary["n_instances"] == n


def test_constant_model_share_is_nan_with_note():
    r = emap(predictor(lambda values: np.ones(len(values["text"]))), make_dataset(n=10), progress=False)
    assert np.isnan(r.interaction_share)
    assert any("constant" in note for note in r.notes)
    assert r.to_dict()["interaction_share"] is None


def test_emap_rejects_bad_arguments():
    ds = make_dataset(n=10)
    p = predictor(additive2)
    with pytest.raises(EMAPError, match="at least two"):
        emap(p, ds, modalities=["text"], progress=False)
    with pytest.raises(EMAPError, match="not read"):
        emap(p, ds, modalities=["text", "video"], progress=False)
    with pytest.raises(EMAPError, match="at most once"):
        emap(p, ds, modalities=["text", ("text", "audio")], progress=False)
    with pytest.raises(EMAPError, match="mixing"):
        emap(p, ds, mixing="random", progress=False)
    with pytest.raises(EMAPError, match="target"):
        emap(p, ds, target="class 7", progress=False)
    with pytest.raises(EMAPError, match="lacks"):
        emap(CallablePredictor(additive2, ["text", "face"]), ds, progress=False)


class _LateFusion:
    """Factory for tiny torch fusion models over (text, audio, vision); built lazily so torch imports stay local."""

    @staticmethod
    def build(kind: str):
        import torch

        torch.manual_seed(0)

        class Model(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.enc = torch.nn.ModuleDict(
                    {
                        # No biases and an odd activation: zero-mean inputs give zero-mean codes, so the bilinear
                        # model below has (almost) no main effects.
                        m: torch.nn.Sequential(torch.nn.Linear(d, 8, bias=False), torch.nn.Tanh())
                        for m, d in zip(NAMES, (3, 2, 4), strict=True)
                    }
                )
                self.head = torch.nn.ModuleDict({m: torch.nn.Linear(8, 1) for m in NAMES})
                self.bilinear = torch.nn.Bilinear(8, 8, 1, bias=False)

            def forward(self, text, audio, vision, masks):
                z = {}
                for m, x in zip(NAMES, (text, audio, vision), strict=True):
                    w = masks[m][..., None].float()
                    z[m] = self.enc[m]((x * w).sum(1) / w.sum(1))
                if kind == "late":  # sum of per-modality heads: additive by construction
                    return sum(self.head[m](z[m]) for m in NAMES)[:, 0]
                return self.bilinear(z["text"], z["audio"])[:, 0]  # text x audio interaction only

        return Model()


@pytest.mark.parametrize("kind", ["late", "bilinear"])
def test_torch_fusion_models(kind):
    from modalens.models.predictor import TorchPredictor

    ds = make_dataset(n=50, seed=12)
    p = TorchPredictor(_LateFusion.build(kind), NAMES, pass_masks=True)
    r = emap(p, ds, batch_size=512, progress=False)
    if kind == "late":
        assert np.allclose(r.projected, r.original, atol=1e-5)
        assert r.interaction_share < 1e-8
    else:
        assert r.interaction_share > 0.5
        # Vision is not read at all: its additive component is exactly zero.
        assert np.allclose(r.components[:, 2], 0.0, atol=1e-6)
