"""The one method contract: the registry, declared capabilities, every method called the same way, the docs table."""

from __future__ import annotations

from math import factorial
from pathlib import Path

import numpy as np
import pytest
import torch

import modalens as ml
from modalens._core.errors import ConfigurationError, ModalensError
from modalens._core.registry import Registry
from modalens.data.synthetic import make_synthetic
from modalens.interactions.attribution import (
    FEATURE_METHODS,
    AttributionError,
    FeatureAttribution,
    exact_feature_shapley,
    integrated_gradients,
    permutation_shapley,
)
from modalens.interactions.coalitions import evaluate_coalitions, subset_membership
from modalens.interactions.emap import EMAPResult, emap
from modalens.interactions.methods import (
    CAPABILITIES,
    LEVELS,
    METHODS,
    TABLE_END,
    TABLE_START,
    CapabilityError,
    MethodResult,
    MethodsAt,
    MethodSpec,
    get_method,
    method_specs,
    method_table,
    register_method,
    render_method_table,
)
from modalens.interactions.pid import PIDPairs, PIDResult, modality_pid
from modalens.interactions.shapley import ModalityAttribution, interaction_indices, shapley_values, shapley_weights
from modalens.models.glass_box import glass_box_model
from modalens.models.predictor import TorchPredictor

DOC = Path(__file__).resolve().parents[2] / "docs" / "attribution.md"
NAMES = ("text", "audio", "vision")

# name -> (level, needs_gradients, batches_across_instances, gives_standard_errors, exact)
EXPECTED = {
    "shapley": ("modality", False, True, False, True),
    "exact": ("feature", False, True, False, True),
    "integrated_gradients": ("feature", True, True, False, False),
    "permutation": ("feature", False, True, True, False),
    "emap": ("dataset", False, True, False, False),
    "pid": ("dataset", False, False, False, False),
}


@pytest.fixture(scope="module")
def data():
    return make_synthetic(24, steps=4, seed=1)


@pytest.fixture(scope="module")
def glass():
    return glass_box_model()


def glass_terms(ds):
    """The glass box's three terms (weights 0.7, 0.5, 0.6), written out independently of the model code."""
    m = ds["text"].step_mask().astype(np.float64)
    count = np.maximum(m.sum(1), 1.0)
    text = 0.7 * (ds["text"].values[:, :, 0] * m).sum(1)
    audio = 0.5 * (ds["audio"].values[:, :, 0] * m).sum(1) / count
    vision = 0.6 * (ds["vision"].values[:, :, 2] * m).sum(1) / count
    return np.stack([text, audio, vision], 1)


class Linear(torch.nn.Module):
    """A differentiable linear model over the synthetic set's three modalities."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.w = torch.nn.ParameterDict({m: torch.nn.Parameter(torch.randn(4, 3)) for m in NAMES})

    def forward(self, text: torch.Tensor, audio: torch.Tensor, vision: torch.Tensor) -> torch.Tensor:
        return sum((x * self.w[m]).sum((1, 2)) for m, x in zip(NAMES, (text, audio, vision), strict=True))


# -- the registry ----------------------------------------------------------------------------------------------


def test_one_registry_holds_every_method_with_its_capabilities():
    assert isinstance(METHODS, Registry)
    assert {s.name: (s.level, *s.capabilities().values()) for s in method_specs()} == EXPECTED
    assert ml.list_methods() == {
        "modality": ["shapley"],
        "feature": ["exact", "integrated_gradients", "permutation"],
        "dataset": ["emap", "pid"],
    }
    assert [s.level for s in method_specs()] == sorted((s.level for s in method_specs()), key=LEVELS.index)
    for spec in method_specs():
        assert isinstance(spec, MethodSpec) and spec.description and "\n" not in spec.description
        assert list(spec.capabilities()) == list(CAPABILITIES)
        assert {"predictor", "dataset", "target", "index"}.isdisjoint(spec.options)
        assert spec.describe()["name"] == spec.name
    assert get_method("permutation").run is permutation_shapley
    assert get_method("permutation_shapley") is get_method("permutation")  # aliases
    assert get_method("ig").run is integrated_gradients
    assert list(FEATURE_METHODS) == ["exact", "integrated_gradients", "permutation"]
    assert "emap" not in FEATURE_METHODS and "exact" in FEATURE_METHODS


def test_declared_options_come_from_the_signatures():
    perm = get_method("permutation")
    assert perm.options["n_permutations"] == 16 and perm.options["granularity"] == "steps"
    assert set(get_method("exact").options) == {"granularity", "batch_size", "progress", "max_players", "players"}
    shared = {"n_permutations": 8, "seed": 3, "batch_size": 64, "progress": False, "unrelated": 1}
    assert perm.accepted(shared) == {"n_permutations": 8, "seed": 3, "batch_size": 64, "progress": False}
    assert get_method("exact").accepted(shared) == {"batch_size": 64, "progress": False}
    assert get_method("pid").accepted(shared) == {"seed": 3, "batch_size": 64}


def test_unknown_names_and_options_are_refused_with_the_choices(data, glass):
    with pytest.raises(ConfigurationError, match=r"unknown feature method 'lime'.*permutation"):
        MethodsAt("feature")["lime"]
    with pytest.raises(ConfigurationError, match="unknown modality method 'emap'"):
        get_method("emap", level="modality")
    with pytest.raises(ConfigurationError, match="unknown method 'nope'"):
        get_method("nope")
    with pytest.raises(ConfigurationError, match=r"takes no option\(s\) \['n_steps'\].*n_permutations"):
        get_method("permutation")(glass, data, n_steps=4)
    with pytest.raises(ConfigurationError, match="level"):
        method_specs("instance")


def test_a_new_method_registers_through_the_same_contract(data, glass):
    def bad(predictor, dataset, *, granularity="steps"):
        raise AssertionError("never called")

    with pytest.raises(ConfigurationError, match=r"lacks \['target', 'index'\]"):
        register_method("bad", "feature", description="no contract")(bad)
    assert "bad" not in METHODS

    @register_method("first_step", "feature", description="All credit to each modality's first step")
    def first_step(predictor, dataset, *, target=None, index=None, granularity="steps", progress=True):
        exact = exact_feature_shapley(
            predictor, dataset, target=target, index=index, granularity=granularity, progress=progress
        )
        exact.method = "first_step"
        return exact

    try:
        assert ml.list_methods()["feature"] == ["exact", "first_step", "integrated_gradients", "permutation"]
        result = get_method("first_step")(glass, data, index=np.arange(3), granularity="features", progress=False)
        assert isinstance(result, MethodResult) and result.method == "first_step" and result.seconds > 0
    finally:
        METHODS.unregister("first_step")
    assert "first_step" not in ml.list_methods()["feature"]


# -- every method through the contract gives the numbers of the direct call -----------------------------------


def test_every_result_shares_the_base_class():
    for cls, level in (
        (ModalityAttribution, "modality"),
        (FeatureAttribution, "feature"),
        (EMAPResult, "dataset"),
        (PIDResult, "dataset"),
        (PIDPairs, "dataset"),
    ):
        assert issubclass(cls, MethodResult) and cls.level == level


def test_modality_shapley_through_the_contract(data, glass):
    spec = get_method("shapley", level="modality")
    result = spec(glass, data, progress=False)
    assert isinstance(result, ModalityAttribution) and result.method == "shapley" and result.level == "modality"
    direct = evaluate_coalitions(glass, data, progress=False)
    np.testing.assert_array_equal(result.coalition_values, direct)
    np.testing.assert_array_equal(result.shapley, shapley_values(direct[:, :, :1])[..., 0])
    np.testing.assert_array_equal(result.interactions, interaction_indices(direct[:, :, :1])[..., 0])
    np.testing.assert_allclose(result.shapley, glass_terms(data), atol=1e-5)  # additive, zero baseline
    np.testing.assert_allclose(result.interactions, 0, atol=1e-5)
    np.testing.assert_allclose(result.shapley.sum(1), result.prediction - result.base_value, atol=1e-5)
    assert result.n_evaluations == len(data) * 8 and result.cost()["seconds"] > 0
    part = spec(glass, data, index=np.array([5, 2]), target=0, progress=False)
    np.testing.assert_array_equal(part.instances, [5, 2])
    np.testing.assert_array_equal(part.shapley, result.shapley[[5, 2]])


@pytest.mark.parametrize("name", ["permutation", "exact"])
@pytest.mark.parametrize("granularity", ["steps", "features"])
def test_feature_methods_through_the_contract(data, glass, name, granularity):
    spec = get_method(name)
    direct_fn = {"permutation": permutation_shapley, "exact": exact_feature_shapley}[name]
    options = {"n_permutations": 4, "seed": 2} if name == "permutation" else {}
    index = np.arange(10)
    result = spec(glass, data, target=None, index=index, granularity=granularity, progress=False, **options)
    direct = direct_fn(glass, data, index=index, granularity=granularity, progress=False, **options)
    assert isinstance(result, FeatureAttribution) and result.method == name and result.level == "feature"
    for m in NAMES:
        np.testing.assert_array_equal(result.values[m], direct.values[m])
    assert result.n_evaluations == direct.n_evaluations
    # the glass box is additive: exact and sampled values agree with its closed form
    if granularity == "steps":
        text = 0.7 * data["text"].values[index, :, 0] * data["text"].step_mask()[index]
        np.testing.assert_allclose(result.values["text"], text, atol=1e-5)
    else:
        np.testing.assert_allclose(result.values["audio"][:, 0], glass_terms(data)[index, 1], atol=1e-5)
        np.testing.assert_allclose(result.values["vision"][:, 2], glass_terms(data)[index, 2], atol=1e-5)
    np.testing.assert_allclose(result.total(), result.prediction - result.base_value, atol=1e-5)


def test_integrated_gradients_through_the_contract(data):
    predictor = TorchPredictor(Linear(), list(NAMES))
    assert predictor.supports_gradients
    result = get_method("integrated_gradients")(predictor, data, granularity="steps", n_steps=8, progress=False)
    direct = integrated_gradients(predictor, data, n_steps=8, progress=False)
    w = {m: p.detach().numpy() for m, p in predictor.module.w.items()}
    for m in NAMES:
        np.testing.assert_allclose(result.values[m], direct.values[m], rtol=1e-6, atol=1e-7)
        cells = data[m].values * w[m][None] * data[m].step_mask()[:, :, None]  # zero baseline: w * x per cell
        np.testing.assert_allclose(result.values[m], cells.sum(2), atol=1e-4)


def test_dataset_methods_through_the_contract(data, glass):
    result = get_method("emap")(glass, data, progress=False)
    direct = emap(glass, data, progress=False)
    assert isinstance(result, EMAPResult) and result.level == "dataset"
    np.testing.assert_array_equal(result.projected, direct.projected)
    assert result.interaction_share < 0.01  # nearly additive (audio and vision average over the text's real steps)
    rows = np.arange(3, 19)
    subset = get_method("emap")(glass, data, index=rows, progress=False)
    np.testing.assert_array_equal(subset.index, rows)
    np.testing.assert_allclose(subset.projected, emap(glass, data.take(rows), progress=False).projected)

    pid = get_method("pid")(glass, data, about="label", n_clusters=3)
    assert isinstance(pid, PIDPairs) and list(pid.pairs) == ["text+audio", "text+vision", "audio+vision"]
    for pair, part in pid.pairs.items():
        a, b = pair.split("+")
        alone = modality_pid(None, data, (a, b), n_clusters=3)
        assert part.atoms() == alone.atoms() and part.total == alone.total
    assert set(pid.to_dict()) == set(pid.pairs) and len(pid.to_frame()) == 3
    unlabelled = ml.MultimodalDataset([data[m] for m in NAMES])
    about = get_method("pid")(glass, unlabelled, pairs=[("text", "audio")], n_clusters=3)
    assert about.about == "prediction" and about.n_evaluations == len(data)


def test_explain_calls_every_stage_through_the_contract(data, glass):
    expl = ml.explain(
        glass, data, n_permutations=2, templates=False, projection=None, emap=True, pid=True, progress=False
    )
    np.testing.assert_allclose(expl.shapley, glass_terms(data), atol=1e-5)
    assert set(expl.dataset_measures) == {"emap", "pid"}
    assert expl.dataset_measures["emap"]["method"] == "emap"
    assert set(expl.dataset_measures["pid"]) == {"text+audio", "text+vision", "audio+vision"}
    fa = expl.feature_attributions
    steps = get_method("permutation")(glass, data, n_permutations=2, granularity="steps", progress=False)
    text = fa[(fa.modality == "text") & (fa.feature == "*")].sort_values(["instance", "position"])
    np.testing.assert_allclose(text.value, steps.to_frame(data).query("modality == 'text'").value, atol=1e-12)


# -- capabilities ----------------------------------------------------------------------------------------------


def test_gradient_methods_refuse_predictors_without_gradients(data, glass):
    assert not glass.supports_gradients
    with pytest.raises(CapabilityError, match=r"integrated_gradients needs gradients.*supports_gradients is False"):
        get_method("integrated_gradients")(glass, data, progress=False)
    with pytest.raises(CapabilityError, match="TorchPredictor.*exact, permutation"):
        integrated_gradients(glass, data, progress=False)  # the direct call checks the same declaration
    with pytest.raises(CapabilityError):
        ml.explain(glass, data, feature_method="integrated_gradients", templates=False, projection=None, progress=False)
    assert issubclass(CapabilityError, AttributionError) and issubclass(CapabilityError, ModalensError)


def test_capability_is_declared_not_sniffed(data):
    class Pretender:
        """Has forward_tensors / to_tensors but does not declare gradient support: still refused."""

        def __init__(self, inner):
            self.inner = inner
            self.modalities, self.masker = inner.modalities, inner.masker
            self.output_kind, self.output_names = inner.output_kind, inner.output_names
            self.forward_tensors, self.to_tensors = inner.forward_tensors, inner.to_tensors
            self.predict, self.describe = inner.predict, inner.describe

    inner = TorchPredictor(Linear(), list(NAMES))
    with pytest.raises(CapabilityError, match="Pretender"):
        get_method("integrated_gradients")(Pretender(inner), data, progress=False)

    class Declared(Pretender):
        supports_gradients = True

    result = get_method("integrated_gradients")(Declared(inner), data, n_steps=4, progress=False)
    assert isinstance(result, FeatureAttribution)


# -- one set of exact Shapley weights --------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0, 1, 2, 3, 5, 7])
def test_shapley_weights_follow_the_definition(p):
    member = subset_membership(p)
    w = shapley_weights(p)
    assert w.shape == (2**p, p) and member.shape == (2**p, p)
    for c in range(2**p):
        size = int(member[c].sum())
        for j in range(p):
            s = size - 1 if member[c, j] else size
            weight = factorial(s) * factorial(p - s - 1) / factorial(p)
            assert w[c, j] == (weight if member[c, j] else -weight)
    if p:
        np.testing.assert_allclose(w.sum(0), 0, atol=1e-12)  # a constant game gives every player 0
        efficiency = np.zeros(2**p)
        efficiency[[0, -1]] = -1.0, 1.0  # the values add up to v(all) - v(none)
        np.testing.assert_allclose(w.sum(1), efficiency, atol=1e-12)


# -- the generated docs table ----------------------------------------------------------------------------------


def test_docs_method_table_matches_the_registry():
    text = DOC.read_text(encoding="utf-8")
    assert TABLE_START in text and TABLE_END in text
    assert render_method_table(text) == text, "docs/attribution.md is stale: run python scripts/update_method_table.py"
    for spec in method_specs():
        assert f"`{spec.name}`" in method_table()
