"""The CPU fast path of TorchPredictor and the reference models: same outputs as the plain path, less work.

- MulT's attention at inference is written out (``AttentionBlock._attend``) instead of calling
  ``nn.MultiheadAttention``, whose CPU kernel is slow for short sequences and narrow heads;
- ``trim_padding`` cuts the steps past the last real step of groups of rows of about the same length;
- ``rows_per_call`` splits a batch, and with several torch threads the calls run on a pool of one-thread workers.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from modalens.models import TorchPredictor
from modalens.models.predictor import PredictorError, _last_real_step, _trimmed
from modalens.models.reference import AttentionBlock, build_model, make_config

DIMS = {"text": 5, "audio": 3, "vision": 2}
VARIANTS = [
    ("early_lstm", {}),
    ("early_lstm", {"align": "resample"}),
    ("late_lstm", {"pool": "mean"}),
    ("mult", {}),
    ("mult", {"pool": "last", "kernel_size": 3, "cross_layers": 2, "self_layers": 2}),
]


def batch(n: int = 40, steps: dict[str, int] | None = None, seed: int = 0):
    """Rows of many lengths, trailing padding, one row with no real step at all and one with every step real."""
    rng = np.random.default_rng(seed)
    steps = steps or dict.fromkeys(DIMS, 12)
    values, masks = {}, {}
    lengths = rng.integers(1, 13, size=n)
    lengths[3], lengths[4] = 0, 12
    for m, d in DIMS.items():
        t = steps[m]
        values[m] = rng.normal(size=(n, t, d)).astype(np.float32)
        own = np.minimum(lengths, t) if t == 12 else rng.integers(1, t + 1, size=n)
        masks[m] = np.arange(t)[None, :] < own[:, None]
    return values, masks


def predictor(arch: str, options: dict, **kwargs) -> TorchPredictor:
    torch.manual_seed(0)
    return build_model(make_config(arch, DIMS, **options)).eval().to_predictor(**kwargs)


def test_written_out_attention_equals_multihead_attention() -> None:
    torch.manual_seed(1)
    block = AttentionBlock(16, 4, dropout=0.0).eval()
    q, kv = torch.randn(7, 5, 16), torch.randn(7, 9, 16)
    kv_mask = torch.arange(9)[None, :] < torch.tensor([9, 4, 1, 0, 6, 9, 2])[:, None]  # row 3: no real key
    with torch.inference_mode():
        fast = block(q, kv, kv_mask)
        block.train()  # the training path calls nn.MultiheadAttention; no dropout here, so it is deterministic
        plain = block(q, kv, kv_mask)
    assert torch.isfinite(fast).all()
    torch.testing.assert_close(fast, plain, atol=2e-6, rtol=1e-5)


@pytest.mark.parametrize(("arch", "options"), VARIANTS)
def test_trimmed_split_calls_give_the_outputs_of_one_plain_call(arch, options) -> None:
    values, masks = batch()
    plain = predictor(arch, options, trim_padding=False, rows_per_call=None)
    fast = predictor(arch, options)  # the reference models trim; CPU default rows per call
    assert fast.trim_padding and fast.rows_per_call is not None
    fast.rows_per_call = 7  # several calls of rows of different lengths
    np.testing.assert_allclose(fast.predict(values, masks), plain.predict(values, masks), atol=2e-5, rtol=1e-5)


def test_unaligned_modalities_are_trimmed_each_to_its_own_length() -> None:
    values, masks = batch(steps={"text": 12, "audio": 20, "vision": 12})
    masks["audio"][:, 15:] = False
    cut_v, cut_m = _trimmed(values, masks, list(DIMS))
    assert cut_m["audio"].shape[1] == 15 and cut_m["text"].shape[1] == cut_m["vision"].shape[1] == 12
    part = {m: v[5:6] for m, v in values.items()}, {m: v[5:6] for m, v in masks.items()}
    one_v, one_m = _trimmed(*part, list(DIMS))
    end = int(_last_real_step({m: part[1][m] for m in ("text", "vision")}, ["text", "vision"])[0])
    assert one_m["text"].shape[1] == one_m["vision"].shape[1] == max(end, 1)
    plain = predictor("early_lstm", {"align": "resample"}, trim_padding=False, rows_per_call=None)
    fast = predictor("early_lstm", {"align": "resample"}, rows_per_call=5)
    np.testing.assert_allclose(fast.predict(values, masks), plain.predict(values, masks), atol=2e-5, rtol=1e-5)


def test_threads_give_the_same_outputs_as_one_thread() -> None:
    values, masks = batch(n=90)
    fast = predictor("mult", {}, rows_per_call=8)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        alone = fast.predict(values, masks)
        torch.set_num_threads(2)
        pooled = fast.predict(values, masks)
        assert torch.get_num_threads() == 2  # the pool's workers keep their one thread to themselves
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(pooled, alone)


def test_a_module_that_counts_steps_is_left_whole_unless_it_says_otherwise() -> None:
    class Steps(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.full((x.shape[0],), float(x.shape[1]))

    values = {"x": np.zeros((6, 10, 2), np.float32)}
    masks = {"x": np.arange(10)[None, :] < np.array([1, 2, 3, 4, 5, 6])[:, None]}
    whole = TorchPredictor(Steps(), ["x"], output_kind="regression", rows_per_call=2)
    np.testing.assert_array_equal(whole.predict(values, masks)[:, 0], 10.0)
    cut = TorchPredictor(Steps(), ["x"], output_kind="regression", rows_per_call=2, trim_padding=True)
    np.testing.assert_array_equal(cut.predict(values, masks)[:, 0], [1, 2, 3, 4, 5, 6])  # a call per length


@pytest.mark.parametrize("bad", [0, -3, True])
def test_rows_per_call_must_be_a_positive_count(bad) -> None:
    with pytest.raises(PredictorError, match="rows_per_call"):
        TorchPredictor(torch.nn.Identity(), ["x"], rows_per_call=bad)


def test_a_forked_child_gets_a_pool_of_its_own() -> None:
    import multiprocessing as mp

    values, masks = batch(n=30)
    fast = predictor("mult", {}, rows_per_call=8)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        parent = fast.predict(values, masks)  # the parent's pool now exists
        with mp.get_context("fork").Pool(1) as pool:
            child = pool.apply_async(fast.predict, (values, masks)).get(timeout=60)
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(child, parent)


def walk_like(n_inst: int = 5, seed: int = 3) -> tuple[dict, dict]:
    """Rows as attribution sends them: each instance's rows change one modality at a time (so most rows share two
    of their three modality inputs with other rows), a modality blanked to zeros in some rows of every instance
    (equal across instances of one length), plus an instance with no real step."""
    values, masks = batch(n=n_inst, seed=seed)
    rng = np.random.default_rng(seed)
    out_v = {m: [] for m in DIMS}
    out_m = {m: [] for m in DIMS}
    for i in range(n_inst):
        current = {m: values[m][i].copy() for m in DIMS}
        for _ in range(12):
            m = list(DIMS)[rng.integers(len(DIMS))]
            step = rng.integers(12)
            current[m][step] = 0.0 if rng.random() < 0.5 else rng.normal(size=DIMS[m])
            for name in DIMS:
                out_v[name].append(current[name].copy())
                out_m[name].append(masks[name][i])
    return {m: np.stack(v) for m, v in out_v.items()}, {m: np.stack(v) for m, v in out_m.items()}


def plain_and_fast(model: torch.nn.Module, values: dict, masks: dict) -> tuple[torch.Tensor, torch.Tensor]:
    tensors = [torch.as_tensor(values[m]) for m in model.modalities]
    mask_t = {m: torch.as_tensor(masks[m]) for m in model.modalities}
    with torch.inference_mode():
        fast = model(*tensors, masks=mask_t)
    with torch.enable_grad():  # gradients on: the plain pass, module by module
        plain = model(*tensors, masks=mask_t).detach()
    return plain, fast


@pytest.mark.parametrize(
    "options",
    [{}, {"pool": "last", "kernel_size": 3, "cross_layers": 2, "self_layers": 2}, {"heads": 2, "d_model": 8}],
)
def test_mult_inference_pass_equals_the_plain_pass_on_walk_rows(options) -> None:
    from modalens.models.reference import _unique_rows

    values, masks = walk_like()
    torch.manual_seed(0)
    model = build_model(make_config("mult", DIMS, **options)).eval()
    with torch.no_grad():  # non-trivial layer norm affine maps, so folding them into the projections is tested
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.3)
    # the batch repeats modality inputs, so the inference pass does share work
    shared = _unique_rows(torch.as_tensor(values["text"]), torch.as_tensor(masks["text"]))
    assert shared is not None and len(shared[0]) < len(values["text"])
    plain, fast = plain_and_fast(model, values, masks)
    assert torch.isfinite(fast).all()
    torch.testing.assert_close(fast, plain, atol=2e-6, rtol=1e-5)


def test_mult_inference_pass_with_one_modality_and_all_rows_distinct() -> None:
    values, masks = batch(n=17)
    torch.manual_seed(0)
    one = build_model(make_config("mult", {"text": DIMS["text"]})).eval()
    plain, fast = plain_and_fast(one, {"text": values["text"]}, {"text": masks["text"]})
    torch.testing.assert_close(fast, plain, atol=2e-6, rtol=1e-5)
    model = build_model(make_config("mult", DIMS)).eval()
    plain, fast = plain_and_fast(model, values, masks)
    torch.testing.assert_close(fast, plain, atol=2e-6, rtol=1e-5)


def test_distinct_rows_are_found_exactly() -> None:
    from modalens.models.reference import _unique_rows

    x = torch.zeros(6, 3, 2)
    x[1, 0, 0] = 1.0
    x[4] = x[1]
    x[5, 2, 1] = 1e-30  # differs from row 0 by less than the projection resolves in a sum with larger values
    mask = torch.ones(6, 3, dtype=torch.bool)
    mask[3, 2] = False  # same values as row 0, another mask
    first, inverse = _unique_rows(x, mask)
    groups = sorted(sorted(np.flatnonzero(inverse.numpy() == k).tolist()) for k in range(len(first)))
    assert groups == [[0, 2], [1, 4], [3], [5]]
    assert _unique_rows(x[:2], mask[:2]) is None  # all distinct: nothing to share


def test_a_hooked_mult_model_takes_the_plain_pass_and_its_hooks_fire() -> None:
    values, masks = walk_like()
    torch.manual_seed(0)
    model = build_model(make_config("mult", DIMS)).eval()
    seen = []
    handle = model.cross["t0_s1"][0].norm_q.register_forward_hook(lambda _m, _a, out: seen.append(out.shape))
    try:
        plain, fast = plain_and_fast(model, values, masks)
    finally:
        handle.remove()
    assert len(seen) == 2  # fired in both passes: the inference pass stood aside
    torch.testing.assert_close(fast, plain)


def test_mult_inference_pass_with_large_attention_scores_shifts_the_softmax() -> None:
    """Scores beyond the range where exp() is safe unshifted: the pass takes the row maximum off first, as the plain
    pass does, and still gives its outputs (no inf/NaN)."""
    from modalens.models import reference

    values, masks = walk_like()
    torch.manual_seed(0)
    model = build_model(make_config("mult", DIMS)).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.MultiheadAttention):
                module.in_proj_weight.mul_(12.0)
    seen = []
    original = reference._attention

    def watch(query, key, value, pad):
        seen.append(float(query.abs().amax() * key.abs().amax() * query.shape[-1]))
        return original(query, key, value, pad)

    reference._attention = watch
    try:
        plain, fast = plain_and_fast(model, values, masks)
    finally:
        reference._attention = original
    assert max(seen) > reference._SOFTMAX_RANGE  # the shifted branch ran
    assert torch.isfinite(fast).all()
    torch.testing.assert_close(fast, plain, atol=2e-5, rtol=1e-5)


def test_calls_hold_rows_of_one_length_and_short_runs_join_the_call_before() -> None:
    from modalens.models.predictor import _pieces_by_length

    ends = np.array([9] * 10 + [7] * 3 + [5] * 1 + [2] * 5)  # sorted by length, longest first
    pieces = _pieces_by_length(ends, 4)
    assert [(p.start, p.stop) for p in pieces] == [(0, 4), (4, 7), (7, 10), (10, 13), (13, 14), (14, 17), (17, 19)]
    for p in pieces:  # no call over its size, none mixes lengths but where a run was too short for its own
        assert p.stop - p.start <= 4
    big = _pieces_by_length(ends, 16)
    # runs of 3 and 1 rows (under a quarter of 16) join the calls before them, while those stay within 16 rows
    assert [(p.start, p.stop) for p in big] == [(0, 14), (14, 19)]
    assert _pieces_by_length(np.zeros(0, np.int64), 8) == [slice(0, 0)]
