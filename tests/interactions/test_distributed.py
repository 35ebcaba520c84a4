"""The Ray backend of explain() returns what the local backend returns, on a local Ray instance."""

import numpy as np
import pandas as pd
import pytest
from tests.requirements import require_module

import modalens as ml
from modalens.data.synthetic import make_synthetic
from modalens.interactions.distributed import DistributedError, _chunk_rows, map_instances
from modalens.models.glass_box import glass_box_model

ray = require_module("ray")
torch = require_module("torch")

pytestmark = pytest.mark.slow

OPTIONS = dict(n_permutations=4, templates=False, projection=None, progress=False)


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance (2 CPUs) for the module, shut down afterwards so no Ray process outlives the tests."""
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def data():
    return make_synthetic(90, seed=11)


class Interacting(torch.nn.Module):
    """A nonlinear 3-class model in which the modalities interact (products of pooled modality codes)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.enc = torch.nn.ModuleList(torch.nn.Linear(3, 6) for _ in range(3))
        self.head = torch.nn.Linear(6 * 3 + 6, 3)

    def forward(self, text, audio, vision):
        codes = [torch.tanh(enc(x)).mean(1) for enc, x in zip(self.enc, (text, audio, vision), strict=True)]
        return self.head(torch.cat([*codes, codes[0] * codes[1] + codes[1] * codes[2]], dim=1))


def assert_same_explanation(local, remote, exact: bool) -> None:
    compare = np.testing.assert_array_equal if exact else lambda a, b: np.testing.assert_allclose(a, b, atol=1e-9)
    for field in ("outputs", "coalition_values", "shapley", "interactions", "moebius"):
        compare(getattr(local, field), getattr(remote, field))
    np.testing.assert_array_equal(local.target, remote.target)
    for field in ("types", "dominant", "roles"):
        np.testing.assert_array_equal(getattr(local.types, field), getattr(remote.types, field))
    # the Ray backend returns the rows grouped by instance (stable), whatever the chunking; local may group by block
    fa_local = local.feature_attributions.sort_values("instance", kind="stable", ignore_index=True)
    fa_remote = remote.feature_attributions
    assert list(fa_local.columns) == list(fa_remote.columns)
    pd.testing.assert_frame_equal(fa_local, fa_remote, check_exact=exact, atol=1e-9, rtol=0)


def test_glass_box_ray_equals_local(local_ray, data):
    model = glass_box_model()
    local = ml.explain(model, data, **OPTIONS)
    remote = ml.explain(model, data, backend="ray", backend_options={"n_chunks": 4}, **OPTIONS)
    assert_same_explanation(local, remote, exact=True)
    assert remote.config["backend"] == "ray"
    # and the shared answer is the right one: the additive model's terms (text term = 0.7 * valence sum)
    text_term = 0.7 * (data["text"].values[:, :, 0] * data["text"].step_mask()).sum(1)
    np.testing.assert_allclose(remote.shapley[:, 0], text_term, atol=1e-4)


def test_nonlinear_torch_model_ray_equals_local(local_ray, data):
    predictor = ml.wrap(Interacting(), ["text", "audio", "vision"], output_kind="classification")
    local = ml.explain(predictor, data, granularities=("steps", "features"), **OPTIONS)
    # odd chunk count and a small batch: chunk borders fall at different rows than the local batches
    remote = ml.explain(
        predictor, data, backend="ray", backend_options={"n_chunks": 3}, granularities=("steps", "features"), **OPTIONS
    )
    assert not np.allclose(local.interactions, 0, atol=1e-3)  # the model really interacts
    # float32 torch kernels may round differently for different batch sizes, hence the tolerance
    assert_same_explanation(local, remote, exact=False)


def test_map_instances_joins_arrays_and_frames_in_row_order(local_ray, data):
    rows_seen = map_instances(lambda ds, idx: idx[:, None] * 2, data, n_chunks=7)
    np.testing.assert_array_equal(rows_seen[:, 0], 2 * np.arange(len(data)))
    frame = map_instances(lambda ds, idx: pd.DataFrame({"instance": idx, "n": len(ds)}), data, n_chunks=5)
    assert frame["instance"].tolist() == list(range(len(data)))
    assert (frame["n"] == len(data)).all()  # every task sees the whole dataset, shared through the object store


def test_bad_options_are_named():
    with pytest.raises(DistributedError, match="n_chunks"):
        map_instances(lambda ds, idx: idx, make_synthetic(5), n_chunks=0)
    with pytest.raises(DistributedError, match="num_cpus"):
        map_instances(lambda ds, idx: idx, make_synthetic(5), num_cpus=-1)


def test_chunks_cover_rows_once_in_order():
    chunks = _chunk_rows(10, 4)
    assert [len(c) for c in chunks] == [3, 3, 2, 2]
    np.testing.assert_array_equal(np.concatenate(chunks), np.arange(10))
    assert len(_chunk_rows(3, 8)) == 3  # never an empty task
