"""FBA Matting encoder: a dilated ResNet-50 with GroupNorm and weight-standardised convolutions.

M. Forte and F. Pitié, "F, B, Alpha Matting", arXiv 2003.07711, 2020 (``resnet50_GN_WS``
wrapped in ``ResnetDilated(dilate_scale=8)``); the encoder of FBA+TAM in Y. Zhang et al.,
"Attention-guided Temporally Coherent Video Object Matting", ACM MM 2021. Module names
follow the released checkpoints (``encoder.*`` in ``fba_tam_state_dict.tsv``).

Input: ``B x 11 x H x W`` (ImageNet-normalised RGB, six trimap distance maps, the
background and foreground maps; see :func:`tcvom.models.fba_tam.fba_input`), H and W
multiples of 32. Output stride 8: layer3 and layer4 trade their stride for dilation.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor, nn

from tcvom.models.weight_standardization import WsConv2d


def group_norm(channels: int) -> nn.GroupNorm:
    """FBA's normalisation everywhere: GroupNorm with 32 groups."""
    return nn.GroupNorm(32, channels)


class Bottleneck(nn.Module):
    """ResNet-50 bottleneck (stride and dilation on the 3x3 convolution)."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1, dilation: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = WsConv2d(cin, planes, 1, bias=False)
        self.bn1 = group_norm(planes)
        self.conv2 = WsConv2d(planes, planes, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = group_norm(planes)
        self.conv3 = WsConv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = group_norm(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


def _layer(cin: int, planes: int, blocks: int, stride: int, first_dilation: int, dilation: int) -> nn.Sequential:
    """One ResNet stage. ``first_dilation``/``dilation``: the 3x3 dilation of the first and
    of the other blocks (the reference turns stride 2 into dilation ``dilation // 2``)."""
    downsample = None
    if stride != 1 or cin != planes * 4:
        downsample = nn.Sequential(WsConv2d(cin, planes * 4, 1, stride=stride, bias=False), group_norm(planes * 4))
    blocks_ = [Bottleneck(cin, planes, stride, first_dilation, downsample)]
    blocks_ += [Bottleneck(planes * 4, planes, 1, dilation) for _ in range(blocks - 1)]
    return nn.Sequential(*blocks_)


class FbaEncoderOutput(NamedTuple):
    """The encoder's feature maps (``conv_out`` in the reference), all ``B x C x h x w``."""

    conv1: Tensor  # 64 x H/2
    layer1: Tensor  # 256 x H/4
    layer4: Tensor  # 2048 x H/8


class FbaEncoder(nn.Module):
    """Dilated ResNet-50 (GN + WS), 11 input channels, output stride 8."""

    def __init__(self, in_channels: int = 11) -> None:
        super().__init__()
        self.conv1 = WsConv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = group_norm(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = _layer(64, 64, 3, 1, 1, 1)
        self.layer2 = _layer(256, 128, 4, 2, 1, 1)
        self.layer3 = _layer(512, 256, 6, 1, 1, 2)
        self.layer4 = _layer(1024, 512, 3, 1, 2, 4)

    def forward(self, x: Tensor) -> FbaEncoderOutput:
        """``B x 11 x H x W`` -> :class:`FbaEncoderOutput`."""
        c1 = self.relu(self.bn1(self.conv1(x)))
        l1 = self.layer1(self.maxpool(c1))
        l4 = self.layer4(self.layer3(self.layer2(l1)))
        return FbaEncoderOutput(c1, l1, l4)
