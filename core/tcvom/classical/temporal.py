"""Temporal aggregation of the classical method, in the spirit of TCVOM's TAM.

TCVOM (Zhang et al., "Attention-guided Temporal Coherent Video Object Matting", ACM MM
2021) aggregates, for each position of frame t, features of the neighbouring frames in a
local window with attention weights. The classical method does the same on alpha values:
for every unknown pixel x of frame t it attends over a ``k x k`` window around x in the
flow-aligned frames t-1 and t+1 (and over x in frame t itself), with softmax weights from
colour similarity (the same surface) and alpha similarity (no jump across an edge), and
takes the weighted mean of the alphas. Flicker drops where the image does not change;
where a neighbour's flow fails the forward-backward check its pixels are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit


@dataclass(frozen=True)
class AlignedNeighbour:
    """A neighbour frame warped onto frame t: float32 ``H x W x 3`` image, float32 ``H x W``
    alpha, bool ``H x W`` valid (its flow passed the forward-backward check)."""

    image: np.ndarray
    alpha: np.ndarray
    valid: np.ndarray


# numba (pymatting's JIT, installed with it) keeps the k x k x neighbours loop per unknown
# pixel in registers; the same sums in numpy cost a gather per candidate. Compiled once
# and cached on disk beside this module.
@njit(cache=True, nogil=True)
def _attend(
    image: np.ndarray,
    alpha: np.ndarray,
    ys: np.ndarray,
    xs: np.ndarray,
    images: np.ndarray,
    alphas: np.ndarray,
    valid: np.ndarray,
    radius: int,
    inv_c: float,
    inv_a: float,
    self_logit: float,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    height, width = alpha.shape
    for i in range(ys.size):
        y, x = ys[i], xs[i]
        c0, c1, c2 = image[y, x, 0], image[y, x, 1], image[y, x, 2]
        a0 = alpha[y, x]
        # Streaming softmax: running max, weight sum and weighted alpha sum.
        best = self_logit
        total = 1.0
        acc = a0
        for n in range(images.shape[0]):
            for yy in range(max(0, y - radius), min(height, y + radius + 1)):
                for xx in range(max(0, x - radius), min(width, x + radius + 1)):
                    if not valid[n, yy, xx]:
                        continue
                    d0 = images[n, yy, xx, 0] - c0
                    d1 = images[n, yy, xx, 1] - c1
                    d2 = images[n, yy, xx, 2] - c2
                    a = alphas[n, yy, xx]
                    logit = -((d0 * d0 + d1 * d1 + d2 * d2) * inv_c + (a - a0) * (a - a0) * inv_a)
                    if logit < best - 30.0:
                        continue  # weight below 1e-13 of the best: skip the exp
                    if logit > best:
                        scale = np.exp(best - logit)
                        total = total * scale + 1.0
                        acc = acc * scale + a
                        best = logit
                    else:
                        w = np.exp(logit - best)
                        total += w
                        acc += w * a
        out[y, x] = min(1.0, max(0.0, acc / total))


@dataclass
class TemporalAggregator:
    """Attention over a ``window x window`` neighbourhood of the aligned neighbours.

    The logit of a candidate y for pixel x is
    ``-|I_t(x) - I_n(y)|^2 / (3 sigma_colour^2) - (a_t(x) - a_n(y))^2 / sigma_alpha^2``
    (``|.|^2`` summed over RGB); frame t's own value at x enters with logit ``self_logit``.
    Weights are the softmax of the logits over all candidates.
    """

    window: int = 7
    sigma_colour: float = 0.01
    sigma_alpha: float = 1.0
    self_logit: float = 1.0

    def __post_init__(self) -> None:
        if self.window < 1 or self.window % 2 == 0:
            raise ValueError(f"the attention window must be a positive odd size, not {self.window}")
        if self.sigma_colour <= 0 or self.sigma_alpha <= 0:
            raise ValueError("sigma_colour and sigma_alpha must be positive")

    def __call__(
        self,
        image: np.ndarray,
        alpha: np.ndarray,
        unknown: np.ndarray,
        neighbours: list[AlignedNeighbour],
    ) -> np.ndarray:
        """The aggregated float32 ``H x W`` alpha of frame t.

        ``image`` float32 ``H x W x 3`` in [0, 1], ``alpha`` float32 ``H x W`` in [0, 1] (the
        per-frame estimate), ``unknown`` bool ``H x W``: the only pixels that change.
        """
        out = alpha.astype(np.float32, copy=True)
        ys, xs = np.nonzero(unknown)
        if ys.size == 0 or not neighbours:
            return out
        f32 = np.float32
        _attend(
            np.ascontiguousarray(image, dtype=f32),
            np.ascontiguousarray(alpha, dtype=f32),
            ys.astype(np.int64),
            xs.astype(np.int64),
            np.ascontiguousarray(np.stack([n.image for n in neighbours]), dtype=f32),
            np.ascontiguousarray(np.stack([n.alpha for n in neighbours]), dtype=f32),
            np.ascontiguousarray(np.stack([n.valid for n in neighbours]), dtype=bool),
            self.window // 2,
            1.0 / (3.0 * self.sigma_colour**2),
            1.0 / self.sigma_alpha**2,
            float(self.self_logit),
            out,
        )
        return out
