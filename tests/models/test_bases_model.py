"""Pieces of the FBA, DIM and IndexNet networks checked against torch's own operators and
hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from tcvom.models.dim_encoder import max_pool_2x2, unpool_2x2
from tcvom.models.fba_tam import fba_click_maps
from tcvom.models.weight_standardization import standardize


def test_pooling_positions_equal_maxpool_and_maxunpool_with_ties():
    torch.manual_seed(0)
    # ReLU-like data: many exact ties at 0, where the chosen position decides the unpooling
    x = torch.relu(torch.randn(2, 5, 8, 12)).round(decimals=1)
    pooled, position = max_pool_2x2(x)
    ref, indices = nn.MaxPool2d(2, 2, return_indices=True)(x)
    assert torch.equal(pooled, ref)
    values = torch.randn_like(pooled)
    assert torch.equal(unpool_2x2(values, position), nn.MaxUnpool2d(2, 2)(values, indices, output_size=x.shape))


def test_weight_standardization_per_output_channel():
    w = torch.randn(4, 3, 3, 3) * 5 + 2
    s = standardize(w).reshape(4, -1)
    assert torch.allclose(s.mean(1), torch.zeros(4), atol=1e-6)
    assert torch.allclose(s.std(1), torch.ones(4), atol=1e-4)  # unbiased, as the reference
    centred = w.reshape(4, -1) - w.reshape(4, -1).mean(1, keepdim=True)
    by_hand = centred / (torch.sqrt((centred**2).sum(1, keepdim=True) / 26) + 1e-5)
    assert torch.allclose(s, by_hand, atol=1e-6)


def test_click_maps_by_hand():
    mask = torch.zeros(2, 1, 5, 7)
    mask[0, 0, 2, 3] = 1  # one pixel; frame 1 has none
    maps = fba_click_maps(mask)
    assert maps.shape == (2, 3, 5, 7)
    assert torch.equal(maps[1], torch.zeros(3, 5, 7))
    d2 = 2.0**2 + 3.0**2  # pixel (0, 0) to (2, 3)
    for k, s in enumerate((0.02, 0.08, 0.16)):
        assert maps[0, k, 2, 3] == 1.0
        assert float(maps[0, k, 0, 0]) == pytest.approx(np.exp(-d2 / (2 * (s * 320) ** 2)), rel=1e-5)


def test_click_maps_are_the_same_every_call():
    """OpenCV's float32 distances moved by an ulp with its buffer's alignment, and FBA turned
    that into alphas that differed between identical runs (up to 3e-4) and chunkings."""
    height, width = 72, 45
    yy, xx = np.mgrid[0:height, 0:width]
    mask = torch.from_numpy(((xx - width * 0.45) ** 2 + (yy - height * 0.5) ** 2 < 13.5**2).astype(np.float32))
    first = fba_click_maps(mask[None, None])
    rng = np.random.default_rng(0)
    held = []
    for _ in range(60):  # allocations of odd sizes between the calls move OpenCV's buffer
        held.append(np.empty(int(rng.integers(1, 100_000)), np.uint8))
        assert torch.equal(fba_click_maps(mask[None, None]), first)


def test_fba_fusion_by_hand():
    """One pixel worked by hand: B is re-estimated from the new F, not the network's F."""
    from tcvom.models.fba_decoder import fba_fusion

    a, img, f0, b0 = 0.5, 0.6, 0.8, 0.2
    f = a * img + (1 - a * a) * f0 - a * (1 - a) * b0  # 0.85
    b = (1 - a) * img + (2 * a - a * a) * b0 - a * (1 - a) * f  # 0.2375, with the new F
    alpha = (a * 0.1 + 3 * (img - b) * (f - b)) / (3 * (f - b) ** 2 + 0.1)
    t = [torch.full((1, n, 1, 1), v) for n, v in ((1, a), (3, img), (3, f0), (3, b0))]
    got_a, got_f, got_b = fba_fusion(*t)
    assert torch.allclose(got_f, torch.full((1, 3, 1, 1), f))
    assert torch.allclose(got_b, torch.full((1, 3, 1, 1), b))
    assert torch.allclose(got_a, torch.full((1, 1, 1, 1), min(max(alpha, 0.0), 1.0)))
