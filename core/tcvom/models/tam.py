"""Temporal Aggregation Module (TAM).

Y. Zhang, C. Wang, M. Cui, P. Ren, X. Xie, X.-S. Hua, H. Bao, Q. Huang and W. Xu,
"Attention-guided Temporally Coherent Video Object Matting", ACM MM 2021 (section 3.1);
``decoder.fam`` in the released checkpoints.

At 1/8 resolution, every unknown position of frame t attends to a 7x7 window of key
features of frame t-1 and of frame t+1. The keys are also the values (no value projection
of the neighbours); zero-padded border keys take part in the softmax with logit 0. Output:
``value_conv(F_t) + agg_prev + agg_next`` at unknown positions, ``value_conv(F_t)`` elsewhere.

The window is gathered one offset at a time, so memory is linear in the number of pixels
(``49 x H/8 x W/8`` logits), never quadratic in the unknown region.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class TemporalAggregation(nn.Module):
    """TAM: ``forward(prev, cur, nxt, unknown) -> B x C x h x w``.

    Args:
        channels: feature channels (128).
        window: attention window size (7 in every released configuration).
    """

    def __init__(self, channels: int = 128, window: int = 7) -> None:
        super().__init__()
        if window < 1 or window % 2 == 0:
            raise ValueError(f"the TAM window must be a positive odd number, not {window}")
        # Registration order key, query, value matches the checkpoints.
        self.key_conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.query_conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.value_conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.window = window

    def attend(self, query: Tensor, neighbour: Tensor) -> tuple[Tensor, Tensor]:
        """Window attention of ``query`` over the keys of one neighbour.

        Args:
            query: ``B x C x h x w`` query features of frame t (``query_conv`` output).
            neighbour: ``B x C x h x w`` TAM-input features of the neighbour frame.

        Returns:
            (aggregate ``B x C x h x w``, logits ``B x window² x h x w``), the logits
            before the softmax, offset index ``ky * window + kx``.
        """
        keys = self.key_conv(neighbour)
        b, c, h, w = keys.shape
        r = self.window // 2
        padded = F.pad(keys, (r, r, r, r))  # zero padding: border keys are 0, logit 0
        norm = math.sqrt(c)
        logits = torch.empty(b, self.window**2, h, w, dtype=keys.dtype, device=keys.device)
        for i in range(self.window**2):
            dy, dx = divmod(i, self.window)
            logits[:, i] = (query * padded[:, :, dy : dy + h, dx : dx + w]).sum(dim=1) / norm
        weights = torch.softmax(logits, dim=1)
        agg = torch.zeros_like(keys)
        for i in range(self.window**2):
            dy, dx = divmod(i, self.window)
            agg += weights[:, i : i + 1] * padded[:, :, dy : dy + h, dx : dx + w]
        return agg, logits

    def forward_with_logits(
        self, prev: Tensor, cur: Tensor, nxt: Tensor, unknown: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """As :meth:`forward`, also returning the raw logits for the affinity loss.

        Returns:
            (output ``B x C x h x w``, logits of prev and of next ``B x window² x (h*w)``,
            zero outside the unknown region).
        """
        mask = unknown.to(cur.dtype)
        query = self.query_conv(cur)
        agg_prev, logits_prev = self.attend(query, prev)
        agg_next, logits_next = self.attend(query, nxt)
        out = self.value_conv(cur) + agg_prev * mask + agg_next * mask
        b = cur.shape[0]
        return out, (logits_prev * mask).reshape(b, self.window**2, -1), (logits_next * mask).reshape(b, self.window**2, -1)

    def forward(self, prev: Tensor, cur: Tensor, nxt: Tensor, unknown: Tensor) -> Tensor:
        """Aggregate the neighbours into frame t.

        Args:
            prev, cur, nxt: ``B x C x h x w`` TAM-input features of frames t-1, t, t+1.
            unknown: ``B x 1 x h x w`` unknown mask of frame t in {0, 1} (the full-resolution
                mask sampled at pixel (8i, 8j)).

        Returns:
            ``B x C x h x w``.
        """
        query = self.query_conv(cur)
        agg_prev, _ = self.attend(query, prev)
        agg_next, _ = self.attend(query, nxt)
        mask = unknown.to(cur.dtype)
        return self.value_conv(cur) + agg_prev * mask + agg_next * mask
