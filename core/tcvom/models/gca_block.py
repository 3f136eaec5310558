"""Guided contextual attention (GCA) block.

Y. Li and H. Lu, "Natural Image Matting via Guided Contextual Attention", AAAI 2020
(section 3); reused unchanged in both the encoder and the decoder of TCVOM
(Y. Zhang et al., ACM MM 2021).

The block matches 3x3 patches of low-level guidance features at 1/16 resolution against
all others (an N x N attention, N = (H/16)(W/16)) and rebuilds the 1/8 features from 4x4
patches with the attention weights. The reference computes the whole N x N matrix at once;
here it is computed in chunks of query positions, which gives the same values (up to
float rounding) with memory linear in N, so 4K frames fit in a few GB.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_NORM_FLOOR = 1e-4
_SELF_MASK = -1e4


class GuidedContextualAttention(nn.Module):
    """GCA block (``encoder.gca`` / ``decoder.gca``).

    Args:
        channels: channels of the 1/8 features that are rebuilt (128).
        guidance_channels: channels of the guidance features (128); reduced to half by
            ``guidance_conv``.
        chunk_elements: the most score-matrix elements held at once (memory bound of the
            chunked attention; 2**24 floats = 64 MiB).
    """

    def __init__(self, channels: int = 128, guidance_channels: int = 128, chunk_elements: int = 1 << 24) -> None:
        super().__init__()
        self.guidance_conv = nn.Conv2d(guidance_channels, guidance_channels // 2, kernel_size=1)
        self.W = nn.Sequential(
            nn.Conv2d(channels, channels, kernel_size=1, bias=False),
            nn.BatchNorm2d(channels),
        )
        self.chunk_elements = chunk_elements

    def forward(self, guidance: Tensor, features: Tensor, unknown: Tensor) -> Tensor:
        """Contextual attention.

        Args:
            guidance: ``B x 128 x H/8 x W/8`` guidance features (from the RGB image).
            features: ``B x 128 x H/8 x W/8`` features to rebuild.
            unknown: ``B x 1 x H/8 x W/8`` unknown mask in {0, 1}.

        Returns:
            ``B x 128 x H/8 x W/8``: ``W(attended) + features``.
        """
        g = self.guidance_conv(guidance)
        # Nearest x1/2 sampling (rows/columns 0, 2, 4, ...) as F.interpolate(scale 1/2) does.
        g = g[:, :, ::2, ::2]
        mask = unknown[:, :, ::2, ::2]
        out = [self._attend(g[i : i + 1], features[i : i + 1], mask[i : i + 1]) for i in range(features.shape[0])]
        return self.W(torch.cat(out, dim=0)) + features

    @staticmethod
    def prepare(
        g: Tensor, features: Tensor, mask: Tensor, unfold: Callable[..., Tensor] = F.unfold
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """The attention's operands for one sample (shared with the export path, which
        passes its own ``unfold``, ``F.unfold``'s arguments and result).

        Returns ``queries`` ``N x C'*9`` (raw 3x3 guidance patches), ``keys`` ``C'*9 x N``
        (the same, L2-normalised), ``values`` ``N x C*16`` (4x4 feature patches), ``touches``
        ``N`` (bool: the patch touches the unknown region) and ``scale`` ``N`` (per source
        patch score scale), with ``N = h * w``.
        """
        # 3x3 reflect-padded patches of the guidance, as columns: [C'*9, N].
        patches = unfold(F.pad(g, (1, 1, 1, 1), mode="reflect"), kernel_size=3)[0]
        norms = patches.square().sum(dim=0).sqrt().clamp_min(_NORM_FLOOR)
        keys = patches / norms  # normalised source patches
        queries = patches.t()  # [N, C'*9], not normalised

        # 4x4 patches (stride 2, reflect pad 1) of the 1/8 features: [N, C*16].
        values = unfold(F.pad(features, (1, 1, 1, 1), mode="reflect"), kernel_size=4, stride=2)[0].t()

        # Per source patch: touches the unknown region (any pixel of its reflect-padded 3x3
        # neighbourhood), which selects its score scale and the self-mask.
        touches = unfold(F.pad(mask, (1, 1, 1, 1), mode="reflect"), kernel_size=3)[0].mean(dim=0) > 0
        u = mask.mean()
        k = 1 - u
        unknown_scale = torch.clamp(torch.sqrt(u / k), 0.1, 10)
        known_scale = torch.clamp(torch.sqrt(k / u), 0.1, 10)
        touches_f = touches.to(g.dtype)
        scale = unknown_scale * touches_f + known_scale * (1 - touches_f)  # [N]
        return queries, keys, values, touches, scale

    def _attend(self, g: Tensor, features: Tensor, mask: Tensor) -> Tensor:
        """One sample: g ``1 x C' x h x w`` (1/16), features ``1 x C x 2h x 2w``, mask ``1 x 1 x h x w``."""
        _, _, h, w = g.shape
        n = h * w
        # Scores and softmax in float32 whatever the model's dtype: the scores of raw guidance
        # patches run to hundreds, where fp16/bf16 rounding (0.25-2) would reshuffle the
        # softmax. The weighted sum of patches runs in the model's dtype.
        queries, keys, values, touches, scale = self.prepare(g.float(), features, mask.float())

        rows = max(1, min(n, self.chunk_elements // max(n, 1)))
        # The attended patches are computed transposed (C*16 x N, what F.fold takes), so
        # no transposed copy is made before the fold.
        columns = None if rows >= n else values.new_empty(values.shape[1], n)
        for start in range(0, n, rows):
            stop = min(n, start + rows)
            scores = (queries[start:stop] @ keys) * scale  # [rows, N]
            # A patch must not match itself, for unknown source patches only.
            idx = torch.arange(start, stop, device=g.device)
            diag = torch.where(touches[idx], _SELF_MASK, 0.0).to(scores.dtype)
            scores[idx - start, idx] += diag
            part = values.t() @ torch.softmax(scores, dim=1).to(values.dtype).t()  # [C*16, rows]
            if columns is None:
                columns = part
            else:
                columns[:, start:stop] = part
        assert columns is not None
        # Overlap-add of the 4x4 patches = conv_transpose2d(stride 2, padding 1); / 4 as the reference.
        out = F.fold(
            columns.unsqueeze(0),
            output_size=features.shape[-2:],
            kernel_size=4,
            stride=2,
            padding=1,
        )
        return out / 4.0
