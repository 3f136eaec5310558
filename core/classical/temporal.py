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


@dataclass(frozen=True)
class AlignedNeighbour:
    """A neighbour frame warped onto frame t: float32 ``H x W x 3`` image, float32 ``H x W``
    alpha, bool ``H x W`` valid (its flow passed the forward-backward check)."""

    image: np.ndarray
    alpha: np.ndarray
    valid: np.ndarray


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
        r = self.window // 2
        centre_colour = image[ys, xs]
        centre_alpha = alpha[ys, xs]
        inv_c = 1.0 / (3.0 * self.sigma_colour**2)
        inv_a = 1.0 / self.sigma_alpha**2
        # Streaming softmax: running max, weight sum and weighted alpha sum.
        best = np.full(ys.size, self.self_logit, dtype=np.float32)
        total = np.ones(ys.size, dtype=np.float32)
        acc = centre_alpha.astype(np.float32, copy=True)
        for n in neighbours:
            img = np.pad(n.image, ((r, r), (r, r), (0, 0)), mode="edge")
            alp = np.pad(n.alpha, r, mode="edge")
            val = np.pad(n.valid, r, mode="constant", constant_values=False)
            for dy in range(-r, r + 1):
                for dx in range(-r, r + 1):
                    sy, sx = ys + r + dy, xs + r + dx
                    ok = val[sy, sx]
                    a = alp[sy, sx]
                    colour = np.square(img[sy, sx] - centre_colour).sum(axis=1)
                    logit = -(colour * inv_c + np.square(a - centre_alpha) * inv_a)
                    logit = np.where(ok, logit, -np.inf).astype(np.float32)
                    new_best = np.maximum(best, logit)
                    scale = np.exp(best - new_best)
                    w = np.exp(logit - new_best)
                    total = total * scale + w
                    acc = acc * scale + w * a
                    best = new_best
        out[ys, xs] = np.clip(acc / total, 0.0, 1.0)
        return out
