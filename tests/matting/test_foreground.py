"""Foreground colour estimation for premultiplied RGBA output."""

from __future__ import annotations

import numpy as np
import pytest

from tcvom.errors import FrameSizeError, InputError
from tcvom.matting.foreground import estimate_foreground


def test_foreground_colour_is_recovered_under_partial_alpha() -> None:
    h, w = 40, 56
    xs = np.linspace(-4, 4, w, dtype=np.float32)
    alpha = np.tile(np.clip(xs / 3 + 0.5, 0, 1), (h, 1))
    fg = np.broadcast_to(np.float32([0.9, 0.3, 0.1]), (h, w, 3))
    bg = np.broadcast_to(np.float32([0.1, 0.4, 0.8]), (h, w, 3))
    image = alpha[:, :, None] * fg + (1 - alpha[:, :, None]) * bg
    out = estimate_foreground(image, alpha)
    assert out.dtype == np.float32 and out.shape == (h, w, 3)
    soft = (alpha > 0.2) & (alpha < 1)
    assert np.abs(out[soft] - fg[soft]).max() < 0.05
    # The naive answer (the plate itself) is far off there: the estimate did something.
    assert np.abs(image[soft] - fg[soft]).max() > 0.2
    # Premultiplied by alpha it reproduces the foreground's share of the plate.
    premult = out * alpha[:, :, None]
    np.testing.assert_allclose(premult[soft], (alpha[:, :, None] * fg)[soft], atol=0.05)


def test_zero_alpha_returns_the_plate() -> None:
    image = np.random.default_rng(0).random((8, 9, 3)).astype(np.float32)
    np.testing.assert_array_equal(estimate_foreground(image, np.zeros((8, 9), np.float32)), image)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(FrameSizeError, match="frame 3"):
        estimate_foreground(np.zeros((8, 9, 3), np.float32), np.zeros((8, 8), np.float32), frame=3)
    with pytest.raises(InputError, match="H x W x 3"):
        estimate_foreground(np.zeros((8, 9), np.float32), np.zeros((8, 9), np.float32))
    with pytest.raises(InputError, match="NaN"):
        estimate_foreground(np.zeros((8, 9, 3), np.float32), np.full((8, 9), np.nan, np.float32))
