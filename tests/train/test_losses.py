"""The training losses on small hand-computed tensors."""

from __future__ import annotations

import math

import pytest
import torch

from tcvom.train.losses import (
    LossWeights,
    affinity_loss,
    affinity_targets,
    alpha_loss,
    composition_loss,
    gradient_loss,
    image_loss,
    masked_l1,
    temporal_coherence_loss,
    total_loss,
)


def t4(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)[None, None]


def test_alpha_loss_is_masked_mean_of_refined_prediction() -> None:
    pred = t4([[0.2, 0.9], [0.5, 0.0]])
    gt = t4([[0.0, 1.0], [0.25, 0.0]])
    mask = t4([[1, 0], [1, 0]])
    # Inside the mask: |0.2 - 0| + |0.5 - 0.25| = 0.45 over 2 pixels; outside ignored.
    assert alpha_loss(pred, gt, mask).item() == pytest.approx(0.225)
    # Summed over the batch, divided by the batch's masked pixel count.
    two = alpha_loss(torch.cat([pred, pred]), torch.cat([gt, gt]), torch.cat([mask, torch.zeros_like(mask)]))
    assert two.item() == pytest.approx(0.225)


def test_alpha_loss_empty_mask_is_zero() -> None:
    pred = t4([[0.3, 0.9]])
    loss = alpha_loss(pred, t4([[0.0, 1.0]]), t4([[0.0, 0.0]]))
    assert loss.item() == 0.0


def test_composition_loss_sums_channels_per_masked_pixel() -> None:
    pred = t4([[0.5, 1.0]])
    gt = t4([[1.0, 1.0]])
    mask = t4([[1, 0]])
    fg = torch.ones(1, 3, 1, 2)
    bg = torch.zeros(1, 3, 1, 2)
    image = fg * gt + bg * (1 - gt)
    # Composite at pixel 0 is 0.5 in every channel vs 1.0: 3 * 0.5 over one masked pixel.
    assert composition_loss(pred, gt, mask, fg, bg, image).item() == pytest.approx(1.5)


def test_gradient_loss_hand_computed() -> None:
    pred = t4([[0.0, 1.0]])
    gt = t4([[0.0, 0.0]])
    mask = t4([[1, 1]])
    eps = 1.001e-5
    # pred: dx = [1, 0] (zero-padded), dy = 0 -> magnitudes sqrt(1 + eps), sqrt(eps); gt: sqrt(eps).
    expected = (math.sqrt(1 + eps) - math.sqrt(eps)) / 2
    assert gradient_loss(pred, gt, mask).item() == pytest.approx(expected, rel=1e-5)
    terms = image_loss(pred, gt, mask, terms=("alpha", "gradient"))
    assert set(terms) == {"alpha", "gradient"}
    with pytest.raises(ValueError, match="composition"):
        image_loss(pred, gt, mask, terms=("composition",))
    with pytest.raises(ValueError, match="among"):
        image_loss(pred, gt, mask, terms=("laplacian",))


def test_temporal_coherence_hand_computed() -> None:
    # B=1, T=3, one row of two pixels.
    preds = torch.tensor([[0.5, 0.0], [0.2, 0.0], [0.2, 1.0]]).reshape(1, 3, 1, 1, 2)
    gts = torch.tensor([[0.4, 0.0], [0.4, 0.0], [0.2, 0.5]]).reshape(1, 3, 1, 1, 2)
    masks = torch.tensor([[1, 0], [1, 1], [0, 0]], dtype=torch.float32).reshape(1, 3, 1, 1, 2)
    # Pair (0,1): pred diff [0.3, 0], gt diff [0, 0], mask [1, 0] -> 0.3 / 1.
    # Pair (1,2): pred diff [0, -1], gt diff [0.2, -0.5], mask [1, 1] -> (0.2 + 0.5) / 2.
    expected = (0.3 + 0.35) / 2
    assert temporal_coherence_loss(preds, gts, masks).item() == pytest.approx(expected)
    # A prediction that changes exactly like the truth has no temporal loss.
    assert temporal_coherence_loss(gts + 0.1, gts, torch.ones_like(masks)).item() == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError):
        temporal_coherence_loss(preds[:, :1], gts[:, :1], masks[:, :1])


def test_affinity_targets_pool_window_and_zero_padding() -> None:
    # 16x16 alpha -> 2x2 after 8x8 average pooling; window 3.
    centre = torch.zeros(1, 1, 16, 16)
    centre[..., :8, :8] = 1.0  # pooled: [[1, 0], [0, 0]]
    nb = torch.zeros(1, 1, 16, 16)
    nb[..., :8, :8] = 0.8  # pooled: [[0.8, 0], [0, 0]]
    tgt = affinity_targets(centre, nb, window=3, theta=0.3, target=0.8)
    assert tgt.shape == (1, 9, 4)
    # Position 0 (pooled centre 1.0): only the neighbour at offset (0, 0) (index 4) has 0.8,
    # |1 - 0.8| = 0.2 < 0.3 -> 0.8; zero-padded and zero neighbours differ by 1 -> 0.
    assert tgt[0, :, 0].tolist() == pytest.approx([0, 0, 0, 0, 0.8, 0, 0, 0, 0])
    # Position 3 (pooled centre 0): neighbours 0 (including the zero padding) match, the one
    # at offset (-1, -1) (index 0) is 0.8 and does not.
    assert tgt[0, :, 3].tolist() == pytest.approx([0, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8])


def test_affinity_loss_bce_on_unknown_positions() -> None:
    centre = torch.zeros(1, 1, 16, 16)
    centre[..., :8, :8] = 1.0
    nb = centre.clone()
    logits_prev = torch.zeros(1, 9, 4)
    logits_next = torch.zeros(1, 9, 4)
    logits_next[0, 4, 0] = 2.0
    unknown = torch.tensor([[1.0, 0.0], [0.0, 0.0]]).reshape(1, 1, 2, 2)
    loss = affinity_loss(logits_prev, logits_next, nb, centre, nb, unknown)

    def bce(x: float, y: float) -> float:
        s = 1 / (1 + math.exp(-x))
        return -(y * math.log(s) + (1 - y) * math.log(1 - s))

    # Only position 0 counts. Its targets: 0.8 at offset index 4, 0 elsewhere (9 entries).
    prev = (bce(0, 0.8) + 8 * bce(0, 0)) / 9
    nxt = (bce(2, 0.8) + 8 * bce(0, 0)) / 9
    assert loss.item() == pytest.approx((prev + nxt) / 2, rel=1e-5)


def test_affinity_loss_zero_without_unknown_but_differentiable() -> None:
    logits = torch.randn(1, 9, 4, requires_grad=True)
    loss = affinity_loss(logits, logits, torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 16, 16),
                         torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 2, 2))
    assert loss.item() == 0.0
    loss.backward()
    assert logits.grad is not None


def test_total_loss_weights() -> None:
    w = LossWeights()
    assert (w.image, w.temporal, w.affinity, w.theta, w.target) == (1.0, 0.5, 0.25, 0.3, 0.8)
    total = total_loss(torch.tensor(0.2), torch.tensor(0.1), torch.tensor(0.4), w)
    assert total.item() == pytest.approx(0.2 + 0.05 + 0.1)
    assert total_loss(torch.tensor(0.2), None, None, w).item() == pytest.approx(0.2)


def test_masked_l1_broadcasts_mask_over_channels() -> None:
    x = torch.ones(1, 3, 1, 1)
    y = torch.zeros(1, 3, 1, 1)
    assert masked_l1(x, y, torch.ones(1, 1, 1, 1)).item() == pytest.approx(3.0)


# --- FBA's image terms (issue 19) -----------------------------------------------------------


def test_laplacian_pyramid_matches_opencv_and_ignores_offsets() -> None:
    import cv2
    import numpy as np

    from tcvom.train.losses import laplacian_loss, laplacian_pyramid

    rng = np.random.default_rng(0)
    img = rng.random((64, 64)).astype(np.float64)
    x = torch.from_numpy(img)[None, None]
    pyramid = laplacian_pyramid(x, levels=2)
    # Level 0 is the image minus OpenCV's pyrUp(pyrDown(image)) (the same kernel and
    # reflect-101 borders; pyrUp's zero insertion and 4x kernel).
    down = cv2.pyrDown(img)
    np.testing.assert_allclose(pyramid[0][0, 0].numpy(), img - cv2.pyrUp(down, dstsize=(64, 64)), atol=1e-12)
    np.testing.assert_allclose(pyramid[1][0, 0].numpy(), down - cv2.pyrUp(cv2.pyrDown(down), dstsize=(32, 32)),
                               atol=1e-12)
    # A constant has an empty pyramid, so a constant offset costs nothing...
    assert laplacian_loss(x + 0.3, x).item() == pytest.approx(0.0, abs=1e-9)
    # ...and an impulse does: level 0 alone weighs |d - (4 G * up(down))| summed.
    y = x.clone()
    y[0, 0, 31, 31] += 1.0
    assert laplacian_loss(y, x).item() > 0.5 / x.numel()


def test_exclusion_loss_hand_computed() -> None:
    from tcvom.train.losses import MASK_EPS, exclusion_loss

    a = torch.zeros(1, 1, 8, 8)
    a[..., 4:] = 1.0  # an edge along x only
    # b flat: no gradient at all, so every product is 0; per level and direction eps ** 0.25.
    flat = exclusion_loss(a, torch.zeros_like(a), levels=3)
    assert flat.item() == pytest.approx(2 * MASK_EPS**0.25, rel=1e-5)
    # The same edge in both layers is what the term penalises: lambda = 2, and the edge
    # covers 8/64, 4/16, 2/4 of the x gradients at levels 0, 1, 2 (y: eps only).
    prod = math.tanh(0.5) ** 2 * math.tanh(1.0) ** 2
    x_terms = [(share * prod + MASK_EPS) ** 0.25 for share in (8 / 64, 4 / 16, 2 / 4)]
    expected = sum(x_terms) / 3 + MASK_EPS**0.25
    assert exclusion_loss(a, a, levels=3).item() == pytest.approx(expected, rel=1e-4)


def test_fba_image_loss_zero_for_the_truth_and_hand_computed() -> None:
    from tcvom.train.losses import FBA_TERMS, fba_image_loss

    torch.manual_seed(0)
    gt = torch.rand(1, 1, 64, 64)
    fg, bg = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
    image = fg * gt + bg * (1 - gt)
    mask = torch.ones_like(gt)
    perfect = fba_image_loss(gt, fg, bg, gt, mask, fg, bg, image)
    assert set(perfect) == set(FBA_TERMS)
    for term in ("alpha", "composition", "fb", "gradient", "laplacian"):
        assert perfect[term].item() == pytest.approx(0.0, abs=1e-6), term
    # One pixel off by 0.5 in alpha: the mean over the 64 x 64 frame.
    pred = gt.clone()
    pred[0, 0, 10, 10] = gt[0, 0, 10, 10] + 0.5
    terms = fba_image_loss(pred, fg, bg, gt, mask, fg, bg, image, terms=("alpha", "composition"))
    assert terms["alpha"].item() == pytest.approx(0.5 / 4096, rel=1e-4)
    # composition: only the 0.25-weighted F a + B (1 - a) term sees alpha: 0.5 |F - B| summed
    # over the channels, over 3 x 4096 elements.
    expected = 0.25 * (0.5 * (fg - bg)[0, :, 10, 10].abs().sum().item()) / (3 * 4096)
    assert terms["composition"].item() == pytest.approx(expected, rel=1e-4)
    # Outside the mask the truth is used: a wrong prediction there costs nothing.
    off = fba_image_loss(pred, 1 - fg, 1 - bg, gt, torch.zeros_like(gt), fg, bg, image)
    assert all(off[t].item() == pytest.approx(0.0, abs=1e-6) for t in ("alpha", "composition", "fb", "laplacian"))
    with pytest.raises(ValueError, match="among"):
        fba_image_loss(gt, fg, bg, gt, mask, fg, bg, image, terms=("sparsity",))


def test_fba_temporal_loss_adds_colours_at_a_quarter() -> None:
    from tcvom.train.losses import fba_temporal_loss

    gts = torch.rand(1, 3, 1, 4, 4)
    masks = torch.ones_like(gts)
    fgs = torch.rand(1, 3, 3, 4, 4)
    bgs = torch.rand(1, 3, 3, 4, 4)
    # Perfect colours: alpha's L_tc alone.
    preds = gts.clone()
    preds[:, 1] += 0.2
    alone = temporal_coherence_loss(preds, gts, masks)
    assert fba_temporal_loss(preds, fgs, bgs, gts, fgs, bgs, masks).item() == pytest.approx(alone.item())
    # F changing by 0.1 more at frame 1: 3 channels per pixel, pairs (0,1) and (1,2) -> 0.3 each.
    moved = fgs.clone()
    moved[:, 1] += 0.1
    got = fba_temporal_loss(preds, moved, bgs, gts, fgs, bgs, masks).item()
    assert got == pytest.approx(alone.item() + 0.25 * 0.3, rel=1e-5)
