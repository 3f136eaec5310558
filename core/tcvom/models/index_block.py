"""IndexNet's depthwise many-to-one index block with context and non-linearity.

H. Lu, Y. Dai, C. Shen and S. Xu, "Indices Matter: Learning to Index for Deep Image
Matting", ICCV 2019 (``DepthwiseM2OIndexBlock``, ``use_nonlinear=True``,
``use_context=True``); used by Index+TAM in Y. Zhang et al., "Attention-guided Temporally
Coherent Video Object Matting", ACM MM 2021. Module names follow the released checkpoints.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _index_branch(channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels, channels, 4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU6(inplace=True),
        nn.Conv2d(channels, channels, 1, bias=False),
    )


class IndexBlock(nn.Module):
    """``forward(x B x C x H x W) -> (encoder index, decoder index)``, both ``B x C x H x W``:
    the softmax-normalised index that weights the pooling and the sigmoid index that
    guides the upsampling."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.indexnet1 = _index_branch(channels)
        self.indexnet2 = _index_branch(channels)
        self.indexnet3 = _index_branch(channels)
        self.indexnet4 = _index_branch(channels)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        b, c, h, w = x.shape
        y = torch.sigmoid(torch.stack([self.indexnet1(x), self.indexnet2(x), self.indexnet3(x), self.indexnet4(x)], dim=2))
        z = F.softmax(y, dim=2)
        index_en = F.pixel_shuffle(z.reshape(b, c * 4, h // 2, w // 2), 2)
        index_de = F.pixel_shuffle(y.reshape(b, c * 4, h // 2, w // 2), 2)
        return index_en, index_de
