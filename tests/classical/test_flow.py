"""DIS flow wrapper, warping and the forward-backward check."""

from __future__ import annotations

import numpy as np
import pytest
from classical_shots import DiscShot, texture

from tcvom.classical.flow import (
    FlowEstimator,
    consistency_error,
    cut_pairs,
    outside_mask,
    unreliable_mask,
    warp,
)


def test_warp_follows_a_constant_flow() -> None:
    data = texture(40, 50, seed=3, scale=2.0)
    flow = np.zeros((40, 50, 2), np.float32)
    flow[:, :, 0] = 3.0  # each pixel of a sits 3 px to the right in b
    out = warp(data, flow)
    np.testing.assert_allclose(out[:, :-3], data[:, 3:], atol=1e-5)
    assert outside_mask(flow)[:, -3:].all() and not outside_mask(flow)[:, :-4].any()


def test_warp_handles_many_channels() -> None:
    data = np.random.default_rng(0).random((20, 30, 6)).astype(np.float32)
    flow = np.zeros((20, 30, 2), np.float32)
    flow[:, :, 1] = -2.0
    out = warp(data, flow)
    assert out.shape == data.shape
    np.testing.assert_allclose(out[2:], data[:-2], atol=1e-5)


def test_dis_recovers_a_translation_and_flags_the_disocclusion() -> None:
    shot = DiscShot(height=96, width=128, dx=4.0)
    flows = FlowEstimator(preset="medium")
    f_tp, f_pt = flows.pair(shot.read(2), shot.read(1))
    inside = shot.alpha(2) > 0.99
    assert np.median(f_tp[inside][:, 0]) == pytest.approx(-4.0, abs=0.5)
    assert np.abs(np.median(f_tp[shot.alpha(2) < 0.01], axis=0)).max() < 0.5
    # A consistent pair: the round trip comes home over most of the frame.
    assert np.median(consistency_error(f_tp, f_pt)) < 0.3
    bad = unreliable_mask(f_tp, f_pt)
    assert bad.mean() < 0.2


def test_flow_estimator_validates_its_options() -> None:
    with pytest.raises(ValueError, match="preset"):
        FlowEstimator(preset="slow")
    with pytest.raises(ValueError, match="one size"):
        FlowEstimator()(np.zeros((8, 8, 3), np.float32), np.zeros((8, 9, 3), np.float32))


def test_large_frames_are_flowed_at_the_working_size() -> None:
    shot = DiscShot(height=200, width=260, radius=50, start=(100, 100), dx=6.0)
    small = FlowEstimator(max_side=130)
    f = small(shot.read(1), shot.read(0))
    assert f.shape == (200, 260, 2)
    # The flow is rescaled to full-resolution pixels.
    assert np.median(f[shot.alpha(1) > 0.99][:, 0]) == pytest.approx(-6.0, abs=1.0)


def test_a_cut_is_a_poor_pair_between_continuous_ones() -> None:
    assert cut_pairs([0.9, 0.9, 0.2, 0.95, 0.9]) == [2]
    assert cut_pairs([0.2, 0.9]) == [0] and cut_pairs([0.9, 0.3]) == [1]  # one pair beside it is enough
    assert cut_pairs([0.4]) == []  # nothing beside it to tell a cut from a poor shot
    assert cut_pairs([0.9, 0.2, 0.2, 0.9]) == []  # a flash: one frame unlike both neighbours
    assert cut_pairs([0.1, 0.13, 0.03, 0.09, 0.07]) == []  # a grainy flat screen: every pair poor
    assert cut_pairs([0.9, 0.45, 0.85]) == []  # not twice as poor as the pairs beside it


def test_the_followed_share_of_a_pan_and_of_another_picture() -> None:
    import cv2

    from tcvom.classical.flow import FOLLOWED

    rng = np.random.default_rng(0)
    one, two = (cv2.GaussianBlur(rng.random((120, 200, 3), dtype=np.float32), (0, 0), 3) for _ in range(2))
    estimator = FlowEstimator()
    assert estimator.share(one, np.roll(one, 2, axis=1)) > 0.9
    assert estimator.share(one, two) < FOLLOWED
