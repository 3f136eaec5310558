"""The truncated ResNet-50 that both STM encoders are built on.

He et al., "Deep Residual Learning for Image Recognition", CVPR 2016, in the
torchvision "v1.5" form (stride on the 3x3 convolution of a bottleneck). STM
(Oh et al., "Video Object Segmentation using Space-Time Memory Networks", ICCV 2019)
uses the stem and the first three stages only (``layer1..layer3``, renamed
``res2..res4``); ``layer4``, the pooling and the classifier are not used and are not in
the state dict. Written here because torchvision is not a dependency; the parameter
names match torchvision's so official checkpoints load unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

BN_EPS = 1e-5
EXPANSION = 4


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (stride) -> 1x1 (x4) with a residual shortcut.

    ``B x inplanes x H x W`` -> ``B x 4*width x H/stride x W/stride``. The first block of a
    stage has a projection shortcut (``downsample.0`` conv, ``downsample.1`` BN).
    """

    #: conv -> BatchNorm pairs of forward (tcvom.models.bn_folding).
    FOLDABLE_BN = ((("conv1",), "bn1"), (("conv2",), "bn2"), (("conv3",), "bn3"))

    def __init__(self, inplanes: int, width: int, stride: int = 1, project: bool = False) -> None:
        super().__init__()
        out = width * EXPANSION
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width, eps=BN_EPS)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width, eps=BN_EPS)
        self.conv3 = nn.Conv2d(width, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out, eps=BN_EPS)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if project:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, out, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out, eps=BN_EPS),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y.add_(shortcut))  # in place, as torchvision's ``out += identity``


def make_stage(inplanes: int, width: int, blocks: int, stride: int) -> nn.Sequential:
    """A ResNet stage: ``blocks`` bottlenecks, the first one projecting and striding."""
    layers = [Bottleneck(inplanes, width, stride, project=True)]
    layers += [Bottleneck(width * EXPANSION, width) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class TruncatedResNet50(nn.Module):
    """Stem + ``res2`` (1/4, 256 ch) + ``res3`` (1/8, 512) + ``res4`` (1/16, 1024).

    Subclasses feed :meth:`stem_input` their own first-convolution sum; the rest is shared.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=BN_EPS)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.res2 = make_stage(64, 64, 3, 1)
        self.res3 = make_stage(256, 128, 4, 2)
        self.res4 = make_stage(512, 256, 6, 2)

    def stages(self, stem: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``B x 64 x H/2 x W/2`` conv1 output (before BN) -> (r4, r3, r2)."""
        x = self.maxpool(self.relu(self.bn1(stem)))
        r2 = self.res2(x)
        r3 = self.res3(r2)
        r4 = self.res4(r3)
        return r4, r3, r2
