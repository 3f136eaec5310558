"""Atrous spatial pyramid pooling with depthwise-separable branches, as IndexNet uses it.

L.-C. Chen, Y. Zhu, G. Papandreou, F. Schroff and H. Adam, "Encoder-Decoder with Atrous
Separable Convolution for Semantic Image Segmentation", ECCV 2018; in the form of
H. Lu et al., "Indices Matter: Learning to Index for Deep Image Matting", ICCV 2019
(``hlaspp.ASPP``, output stride 32: dilations 1, 2, 4, 8), the context block of Index+TAM
(TCVOM, ACM MM 2021). Module names follow the released checkpoints (``encoder.dconv_pp.*``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _separable(cin: int, cout: int, dilation: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, padding=dilation, dilation=dilation, groups=cin, bias=False),
        nn.BatchNorm2d(cin),
        nn.ReLU6(inplace=True),
        nn.Conv2d(cin, cout, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(inplace=True),
    )


class _Branch(nn.Module):
    def __init__(self, cin: int, cout: int, dilation: int) -> None:
        super().__init__()
        if dilation == 1:
            self.atrous_conv = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))
        else:
            self.atrous_conv = _separable(cin, cout, dilation)

    def forward(self, x: Tensor) -> Tensor:
        return self.atrous_conv(x)


class Aspp(nn.Module):
    """``forward(x B x cin x h x w) -> B x cout x h x w`` (dropout is inactive in eval mode)."""

    def __init__(self, cin: int = 320, cout: int = 160, dilations: tuple[int, int, int, int] = (1, 2, 4, 8), width: int = 256) -> None:
        super().__init__()
        self.aspp1 = _Branch(cin, width, dilations[0])
        self.aspp2 = _Branch(cin, width, dilations[1])
        self.aspp3 = _Branch(cin, width, dilations[2])
        self.aspp4 = _Branch(cin, width, dilations[3])
        self.global_avg_pool = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU6(inplace=True)
        )
        self.bottleneck_conv = nn.Sequential(nn.Conv2d(width * 5, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))
        self.dropout = nn.Dropout(0.5)

    def forward(self, x: Tensor) -> Tensor:
        pooled = F.interpolate(self.global_avg_pool(x), size=x.shape[-2:], mode="nearest")
        x = torch.cat((self.aspp1(x), self.aspp2(x), self.aspp3(x), self.aspp4(x), pooled), dim=1)
        return self.dropout(self.bottleneck_conv(x))
