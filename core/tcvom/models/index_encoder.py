"""IndexNet Matting encoder: MobileNetV2 without strides, downsampling by learned index
pooling, with ASPP context; 4 input channels.

H. Lu, Y. Dai, C. Shen and S. Xu, "Indices Matter: Learning to Index for Deep Image
Matting", ICCV 2019 (``IndexMattingEncoder``: output stride 32, depthwise M2O index
blocks); the encoder of Index+TAM in Y. Zhang et al., "Attention-guided Temporally Coherent
Video Object Matting", ACM MM 2021. MobileNetV2: M. Sandler et al., CVPR 2018. Module names
follow the released checkpoints (``encoder.*`` in ``index_tam_state_dict.tsv``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch.nn.functional as F
from torch import Tensor, nn

from tcvom.models.aspp import Aspp
from tcvom.models.index_block import IndexBlock


def conv_bn(cin: int, cout: int, kernel: int = 3) -> nn.Sequential:
    """Convolution (zero padding ``kernel // 2``, no bias) -> BatchNorm -> ReLU6."""
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """MobileNetV2 block, stride 1. The input is zero-padded by one pixel *before* the
    whole block (as the reference's ``fixed_padding``), so the expansion's BatchNorm and
    ReLU6 act on the padding too; the depthwise 3x3 then runs without padding."""

    def __init__(self, cin: int, cout: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = cin * expand_ratio
        self.use_res_connect = cin == cout
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers += [nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True)]
        layers += [
            nn.Conv2d(hidden, hidden, 3, groups=hidden, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv(F.pad(x, (1, 1, 1, 1)))
        return x + out if self.use_res_connect else out


def _layer(expand_ratio: int, cin: int, cout: int, blocks: int) -> nn.Sequential:
    return nn.Sequential(*(InvertedResidual(cin if i == 0 else cout, cout, expand_ratio) for i in range(blocks)))


def _index_pool(x: Tensor, block: IndexBlock) -> tuple[Tensor, Tensor, Tensor]:
    """(x weighted by the encoder index, its 2x2 index pooling ``4 * avg_pool``, the decoder index)."""
    index_en, index_de = block(x)
    x = index_en * x
    return x, 4 * F.avg_pool2d(x, 2, stride=2), index_de


class IndexEncoderOutput(NamedTuple):
    """The encoder's outputs (``B x C x H/s x W/s``), names as in the reference."""

    l: Tensor  # 160 x H/32, after ASPP  # noqa: E741
    l6: Tensor  # 160 x H/16
    idx6: Tensor  # 160 x H/16, decoder index
    l5: Tensor  # 96 x H/16
    l4: Tensor  # 64 x H/8
    idx4: Tensor  # 64 x H/8
    l3: Tensor  # 32 x H/4
    idx3: Tensor  # 32 x H/4
    l2: Tensor  # 24 x H/2
    idx2: Tensor  # 24 x H/2
    l1: Tensor  # 16 x H/2
    l0: Tensor  # 32 x H
    idx0: Tensor  # 32 x H


class IndexEncoder(nn.Module):
    """``B x 4 x H x W`` (normalised RGB + trimap / 255), H and W multiples of 32 ->
    :class:`IndexEncoderOutput`."""

    def __init__(self, in_channels: int = 4) -> None:
        super().__init__()
        # Registration order matches the checkpoints: layer0..7, index blocks, dconv_pp.
        self.layer0 = conv_bn(in_channels, 32, 3)
        self.layer1 = _layer(1, 32, 16, 1)
        self.layer2 = _layer(6, 16, 24, 2)
        self.layer3 = _layer(6, 24, 32, 3)
        self.layer4 = _layer(6, 32, 64, 4)
        self.layer5 = _layer(6, 64, 96, 3)
        self.layer6 = _layer(6, 96, 160, 3)
        self.layer7 = _layer(6, 160, 320, 1)
        self.index0 = IndexBlock(32)
        self.index2 = IndexBlock(24)
        self.index3 = IndexBlock(32)
        self.index4 = IndexBlock(64)
        self.index6 = IndexBlock(160)
        self.dconv_pp = Aspp(320, 160)

    def forward(self, x: Tensor) -> IndexEncoderOutput:
        l0, x, idx0 = _index_pool(self.layer0(x), self.index0)  # 32 x H, pooled to H/2
        l1 = self.layer1(x)  # 16 x H/2
        l2, x, idx2 = _index_pool(self.layer2(l1), self.index2)  # 24 x H/2 -> H/4
        l3, x, idx3 = _index_pool(self.layer3(x), self.index3)  # 32 x H/4 -> H/8
        l4, x, idx4 = _index_pool(self.layer4(x), self.index4)  # 64 x H/8 -> H/16
        l5 = self.layer5(x)  # 96 x H/16
        l6, x, idx6 = _index_pool(self.layer6(l5), self.index6)  # 160 x H/16 -> H/32
        out = self.dconv_pp(self.layer7(x))  # 160 x H/32
        return IndexEncoderOutput(out, l6, idx6, l5, l4, idx4, l3, idx3, l2, idx2, l1, l0, idx0)
