"""IndexNet Matting decoder: index-guided upsampling with skips; optionally with the TAM at
output stride 8.

H. Lu, Y. Dai, C. Shen and S. Xu, "Indices Matter: Learning to Index for Deep Image
Matting", ICCV 2019 (``IndexMattingDecoder``, ``IndexedUpsamlping`` blocks, 5x5 kernels);
the TAM variant is the decoder of Index+TAM in Y. Zhang et al., "Attention-guided
Temporally Coherent Video Object Matting", ACM MM 2021 (``IndexMattingDecoder_VMN``).
Module names follow the released checkpoints (``decoder.*``).

Split for the per-frame cache: :meth:`IndexDecoder.features` (decoder layers 6 to 4: the
TAM input, 32 channels at 1/8) runs once per frame; :meth:`IndexDecoder.head` runs on the
TAM output of the centre frame.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tcvom.models.index_encoder import conv_bn
from tcvom.models.tam import TemporalAggregation


class IndexedUpsampling(nn.Module):
    """``forward(x, skip, index=None)``: ``x`` upsampled (nearest) to the skip's size and
    weighted by the decoder index when given, concatenated with the skip, 5x5 conv-BN-ReLU6."""

    def __init__(self, cin: int, cout: int, kernel: int = 5) -> None:
        super().__init__()
        self.dconv = conv_bn(cin, cout, kernel)

    def forward(self, x: Tensor, skip: Tensor, index: Tensor | None = None) -> Tensor:
        if index is not None:
            x = index * F.interpolate(x, size=skip.shape[-2:], mode="nearest")
        return self.dconv(torch.cat((x, skip), dim=1))


class IndexDecoder(nn.Module):
    """IndexNet decoder (``temporal=False``) or the Index+TAM decoder (``temporal=True``, adds ``fam``)."""

    def __init__(self, *, temporal: bool = True, window: int = 7) -> None:
        super().__init__()
        self.decoder_layer6 = IndexedUpsampling(160 * 2, 96)
        self.decoder_layer5 = IndexedUpsampling(96 * 2, 64)
        self.decoder_layer4 = IndexedUpsampling(64 * 2, 32)
        self.decoder_layer3 = IndexedUpsampling(32 * 2, 24)
        self.decoder_layer2 = IndexedUpsampling(24 * 2, 16)
        self.decoder_layer1 = IndexedUpsampling(16 * 2, 32)
        self.decoder_layer0 = IndexedUpsampling(32 * 2, 32)
        self.pred = nn.Sequential(conv_bn(32, 1, 5), nn.Conv2d(1, 1, 5, padding=2, bias=False))
        self.fam: TemporalAggregation | None = TemporalAggregation(32, window) if temporal else None

    def features(self, l: Tensor, l6: Tensor, idx6: Tensor, l5: Tensor, l4: Tensor, idx4: Tensor) -> Tensor:  # noqa: E741
        """Decoder layers 6, 5, 4 -> ``B x 32 x H/8 x W/8``, the TAM-input features."""
        x = self.decoder_layer6(l, l6, idx6)
        x = self.decoder_layer5(x, l5)
        return self.decoder_layer4(x, l4, idx4)

    def head(self, x: Tensor, l3: Tensor, idx3: Tensor, l2: Tensor, idx2: Tensor, l1: Tensor, l0: Tensor, idx0: Tensor) -> Tensor:
        """Decoder layers 3..0 and the prediction -> ``B x 1 x H x W`` alpha, not clamped
        (the reference does not clamp IndexNet's output)."""
        x = self.decoder_layer3(x, l3, idx3)
        x = self.decoder_layer2(x, l2, idx2)
        x = self.decoder_layer1(x, l1)
        x = self.decoder_layer0(x, l0, idx0)
        return self.pred(x)
