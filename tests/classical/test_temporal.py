"""The TAM-like temporal aggregation."""

from __future__ import annotations

import numpy as np
import pytest
from classical_shots import texture

from tcvom.classical.temporal import AlignedNeighbour, TemporalAggregator


def _scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    image = texture(40, 48, seed, 2.0)
    xs = np.linspace(-3, 3, 48, dtype=np.float32)
    alpha = np.tile(np.clip(xs / 2 + 0.5, 0, 1), (40, 1))
    unknown = (alpha > 0) & (alpha < 1)
    return image, alpha, unknown


def test_identical_neighbours_change_little() -> None:
    image, alpha, unknown = _scene()
    same = AlignedNeighbour(image, alpha, np.ones_like(unknown))
    out = TemporalAggregator()(image, alpha, unknown, [same, same])
    # The centre of each window matches exactly and dominates; similar colours elsewhere
    # in the window add a little spatial smoothing.
    assert np.abs(out - alpha).mean() < 0.01
    flat = np.full_like(alpha, 0.4)
    out = TemporalAggregator()(image, flat, unknown, [AlignedNeighbour(image, flat, np.ones_like(unknown))])
    np.testing.assert_allclose(out, flat, atol=1e-6)


def test_flicker_is_averaged_out_where_the_image_is_still() -> None:
    image, alpha, unknown = _scene()
    rng = np.random.default_rng(1)

    def noisy() -> np.ndarray:
        return np.clip(alpha + rng.normal(0, 0.05, alpha.shape).astype(np.float32) * unknown, 0, 1)

    current = noisy()
    neighbours = [AlignedNeighbour(image, noisy(), np.ones_like(unknown)) for _ in range(2)]
    out = TemporalAggregator()(image, current, unknown, neighbours)
    before = np.abs(current - alpha)[unknown].mean()
    after = np.abs(out - alpha)[unknown].mean()
    assert after < 0.75 * before
    # Known pixels are never touched.
    assert (out[~unknown] == current[~unknown]).all()


def test_invalid_neighbour_pixels_are_ignored() -> None:
    image, alpha, unknown = _scene()
    wrong = AlignedNeighbour(image, 1.0 - alpha, np.zeros_like(unknown))
    out = TemporalAggregator()(image, alpha, unknown, [wrong])
    np.testing.assert_allclose(out, alpha, atol=1e-6)


def test_different_colours_get_little_weight() -> None:
    image, alpha, unknown = _scene()
    other = AlignedNeighbour(np.clip(image + 0.3, 0, 1), 1.0 - alpha, np.ones_like(unknown))
    out = TemporalAggregator()(image, alpha, unknown, [other])
    assert np.abs(out - alpha)[unknown].max() < 0.01


def test_window_must_be_odd() -> None:
    with pytest.raises(ValueError, match="odd"):
        TemporalAggregator(window=4)


def test_compiled_attention_matches_the_formula() -> None:
    # The softmax of the documented logits, written out for a few pixels.
    image, alpha, unknown = _scene(seed=4)
    rng = np.random.default_rng(5)
    neighbours = [
        AlignedNeighbour(
            np.clip(image + rng.normal(0, 0.01, image.shape).astype(np.float32), 0, 1),
            np.clip(alpha + rng.normal(0, 0.1, alpha.shape).astype(np.float32), 0, 1),
            rng.random(alpha.shape) > 0.2,
        )
        for _ in range(2)
    ]
    agg = TemporalAggregator(window=5, sigma_colour=0.05, sigma_alpha=0.5, self_logit=0.5)
    out = agg(image, alpha, unknown, neighbours)
    h, w = alpha.shape
    for y, x in [(0, 20), (10, 22), (39, 25), (20, 28)]:
        assert unknown[y, x]
        logits, values = [agg.self_logit], [alpha[y, x]]
        for n in neighbours:
            for yy in range(max(0, y - 2), min(h, y + 3)):
                for xx in range(max(0, x - 2), min(w, x + 3)):
                    if n.valid[yy, xx]:
                        colour = float(np.square(n.image[yy, xx] - image[y, x]).sum())
                        logits.append(-colour / (3 * 0.05**2) - (n.alpha[yy, xx] - alpha[y, x]) ** 2 / 0.5**2)
                        values.append(n.alpha[yy, xx])
        weights = np.exp(np.array(logits) - max(logits))
        expected = float((weights * np.array(values)).sum() / weights.sum())
        assert out[y, x] == pytest.approx(expected, abs=1e-5)
