"""Word alignment of .csd frames against the CMU Multimodal SDK's overlap rule, on frame times with float noise.

The SDK (``mmsdk/mmdatasdk/dataset/dataset.py``, ``mmdataset.align`` / ``__intersect_and_copy``) keeps a frame for a
word interval only when their overlap exceeds ``epsilon = 10e-6`` s, then ``avg`` takes the plain mean of the kept
frames. Every expected value below is worked out by hand from that rule.
"""

from __future__ import annotations

import numpy as np
import pytest

from modalens.data.csd import OVERLAP_EPSILON, load_csd

from .helpers import write_csd


def _accumulated_frames(n: int, step: float = 0.01) -> np.ndarray:
    """Frame k spans [t_k, t_k+1] with t_k computed by summing ``step`` k times, as frame clocks often are."""
    times = [0.0]
    for _ in range(n):
        times.append(times[-1] + step)
    return np.stack([times[:-1], times[1:]], axis=1)


@pytest.fixture
def noisy(tmp_path):
    frames = _accumulated_frames(300)
    # the float noise the test relies on (sums of 0.01 drift from k / 100)
    assert frames[30, 0] > 0.3 and frames[29, 1] > 0.3  # frame 29 pokes 1.1e-16 s into a word starting at 0.3
    assert frames[50, 0] > 0.5  # frame 50 starts after a word ending at 0.5
    assert frames[220, 0] < 2.2 and frames[219, 1] < 2.2  # frame 219 ends before a word starting at 2.2
    assert frames[240, 0] < 2.4  # frame 240 starts 7e-15 s before a word ending at 2.4
    v_feats = np.arange(300, dtype=np.float32)[:, None]
    # a second video with overlaps on either side of the SDK's 1e-5 s
    w_frames = np.array([[0.0, 1.000005], [1.000005, 1.99998], [1.99998, 3.0 + 4e-16]])
    w_feats = np.array([[1.0], [2.0], [3.0]], dtype=np.float32)
    words = {
        "v": (np.array([[b"a"], [b"b"]]), np.array([[0.3, 0.5], [2.2, 2.4]])),
        "w": (np.array([[b"c"], [b"d"]]), np.array([[1.0, 2.0], [3.0, 3.5]])),
    }
    write_csd(tmp_path / "audio.csd", "COVAREP", {"v": (v_feats, frames), "w": (w_feats, w_frames)})
    write_csd(tmp_path / "words.csd", "words", words)
    return tmp_path


def _load(folder, weighting):
    ds = load_csd({"audio": folder / "audio.csd"}, words_csd=folder / "words.csd", weighting=weighting)
    assert ds.ids.tolist() == ["v", "w"]
    return ds["audio"]


def test_sdk_epsilon_is_its_constant():
    assert OVERLAP_EPSILON == 10e-6  # the SDK writes it as 10e-6


def test_uniform_weighting_ignores_float_noise_overlaps(noisy):
    audio = _load(noisy, "uniform")
    # word a [0.3, 0.5]: frames 30 .. 49 overlap by ~0.01 s; frame 29 by 1.1e-16 s (dropped) -> mean(30..49) = 39.5
    # (counting frame 29 gave mean(29..49) = 39.0)
    # word b [2.2, 2.4]: frames 220 .. 239; frame 240 overlaps by 7e-15 s (dropped) -> mean(220..239) = 229.5
    # (counting frame 240 gave 230.0)
    np.testing.assert_array_equal(audio.values[0, :, 0], [39.5, 229.5])
    # word c [1, 2]: frame 1 overlaps by 5e-6 s (<= 1e-5, dropped), frame 2 by 0.999975 s, frame 3 by 2e-5 s (kept)
    # -> (2 + 3) / 2 = 2.5
    assert audio.values[1, 0, 0] == pytest.approx(2.5)
    # word d [3, 3.5]: only frame 3 touches it, by 4e-16 s: no frame overlaps -> zeros, masked out (the SDK drops it)
    np.testing.assert_array_equal(audio.mask, [[True, True], [True, False]])
    assert audio.values[1, 1, 0] == 0.0


def test_overlap_weighting_uses_the_same_rule(noisy):
    audio = _load(noisy, "overlap")
    # equally long frames wholly inside: the same means as the plain average, up to the clock's float noise
    np.testing.assert_allclose(audio.values[0, :, 0], [39.5, 229.5], rtol=1e-6)
    # word c: weights 0.999975 (value 2) and 0.00002 (value 3); frame 1's 5e-6 s is dropped
    assert audio.values[1, 0, 0] == pytest.approx((0.999975 * 2 + 0.00002 * 3) / 0.999995, rel=1e-6)
    np.testing.assert_array_equal(audio.mask, [[True, True], [True, False]])
