"""Deep Image Matting decoder: unpooling and 5x5 convolutions; optionally with the TAM at
output stride 8.

N. Xu, B. Price, S. Cohen and T. Huang, "Deep Image Matting", CVPR 2017; the TAM variant is
the decoder of DIM+TAM in Y. Zhang et al., "Attention-guided Temporally Coherent Video
Object Matting", ACM MM 2021 (``DIMDecoder``). Module names follow the released
checkpoints (``decoder.*``).

Split for the per-frame cache: :meth:`DimDecoder.features` (dconv6 to dconv4: the TAM
input, 256 channels at 1/8) runs once per frame; :meth:`DimDecoder.head` runs on the TAM
output of the centre frame.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from tcvom.models.dim_encoder import unpool_2x2
from tcvom.models.tam import TemporalAggregation


class DimDecoder(nn.Module):
    """DIM decoder (``temporal=False``) or the DIM+TAM decoder (``temporal=True``, adds ``fam``)."""

    def __init__(self, *, temporal: bool = True, window: int = 7) -> None:
        super().__init__()
        self.dconv6 = nn.Conv2d(4096, 512, 1)
        self.dconv5 = nn.Conv2d(512, 512, 5, padding=2)
        self.dconv4 = nn.Conv2d(512, 256, 5, padding=2)
        self.dconv3 = nn.Conv2d(256, 128, 5, padding=2)
        self.dconv2 = nn.Conv2d(128, 64, 5, padding=2)
        self.dconv1 = nn.Conv2d(64, 64, 5, padding=2)
        self.alpha_pred = nn.Conv2d(64, 1, 5, padding=2)
        self.fam: TemporalAggregation | None = TemporalAggregation(256, window) if temporal else None

    def features(self, conv6: Tensor, pos5: Tensor, pos4: Tensor) -> Tensor:
        """``B x 4096 x H/32`` and the stage 5 and 4 pooling positions -> ``B x 256 x H/8``."""
        x = F.relu(self.dconv6(conv6))
        x = F.relu(self.dconv5(unpool_2x2(x, pos5)))
        return F.relu(self.dconv4(unpool_2x2(x, pos4)))

    def head(self, x: Tensor, pos3: Tensor, pos2: Tensor, pos1: Tensor) -> Tensor:
        """``B x 256 x H/8`` (TAM output) and the stage 3..1 pooling positions ->
        ``B x 1 x H x W`` alpha clamped to [0, 1], as the reference does."""
        x = F.relu(self.dconv3(unpool_2x2(x, pos3)))
        x = F.relu(self.dconv2(unpool_2x2(x, pos2)))
        x = F.relu(self.dconv1(unpool_2x2(x, pos1)))
        return self.alpha_pred(x).clamp(0, 1)
