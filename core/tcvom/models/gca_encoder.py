"""GCA-Matting encoder: a ResNet-D with blocks [3, 4, 4, 2], guidance head and shortcuts.

Y. Li and H. Lu, "Natural Image Matting via Guided Contextual Attention", AAAI 2020
(``resnet_gca_encoder_29``); the encoder of GCA+TAM in Y. Zhang et al., "Attention-guided
Temporally Coherent Video Object Matting", ACM MM 2021. Module names follow the released
checkpoints (``encoder.*`` in ``tcvom_gca_tam_state_dict.tsv``).
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor, nn

from tcvom.models.gca_block import GuidedContextualAttention
from tcvom.models.spectral_norm import SpectralNorm


def sn_conv(cin: int, cout: int, kernel: int = 3, stride: int = 1, padding: int | None = None) -> SpectralNorm:
    """Bias-free spectral-normalised convolution (zero padding ``kernel // 2`` by default)."""
    pad = kernel // 2 if padding is None else padding
    return SpectralNorm(nn.Conv2d(cin, cout, kernel, stride=stride, padding=pad, bias=False))


class EncoderBlock(nn.Module):
    """ResNet basic block; downsampling blocks use AvgPool2d(2) -> SN conv 1x1 -> BN as shortcut."""

    #: conv -> BatchNorm pairs of forward (tcvom.models.bn_folding).
    FOLDABLE_BN = ((("conv1",), "bn1"), (("conv2",), "bn2"))

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = sn_conv(cin, cout, 3, stride)
        self.bn1 = nn.BatchNorm2d(cout)
        self.activation = nn.ReLU(inplace=True)
        self.conv2 = sn_conv(cout, cout, 3)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample: nn.Module | None = None
        if stride != 1:
            self.downsample = nn.Sequential(nn.AvgPool2d(2, stride), sn_conv(cin, cout, 1), nn.BatchNorm2d(cout))
        elif cin != cout:
            self.downsample = nn.Sequential(sn_conv(cin, cout, 1), nn.BatchNorm2d(cout))

    def forward(self, x: Tensor) -> Tensor:
        out = self.activation(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.activation(out + identity)


def _layer(cin: int, cout: int, blocks: int, stride: int) -> nn.Sequential:
    return nn.Sequential(EncoderBlock(cin, cout, stride), *[EncoderBlock(cout, cout) for _ in range(blocks - 1)])


def _shortcut(cin: int, cout: int) -> nn.Sequential:
    # ReLU before BN, as the checkpoints were trained.
    return nn.Sequential(
        sn_conv(cin, cout, 3),
        nn.ReLU(inplace=True),
        nn.BatchNorm2d(cout),
        sn_conv(cout, cout, 3),
        nn.ReLU(inplace=True),
        nn.BatchNorm2d(cout),
    )


def _guidance_step(cin: int, cout: int) -> list[nn.Module]:
    return [
        nn.ReflectionPad2d(1),
        sn_conv(cin, cout, 3, stride=2, padding=0),
        nn.ReLU(inplace=True),
        nn.BatchNorm2d(cout),
    ]


class EncoderOutput(NamedTuple):
    """What the encoder hands to the decoder (all ``B x C x h x w``)."""

    bottleneck: Tensor  # 512 x H/32 x W/32
    shortcut1: Tensor  # 32 x H x W (from the 6-channel input)
    shortcut2: Tensor  # 32 x H/2 x W/2
    shortcut3: Tensor  # 64 x H/4 x W/4
    shortcut4: Tensor  # 128 x H/8 x W/8
    shortcut5: Tensor  # 256 x H/16 x W/16
    guidance: Tensor  # 128 x H/8 x W/8 (from RGB only)
    unknown: Tensor  # 1 x H/8 x W/8 in {0, 1}


class GcaEncoder(nn.Module):
    """``resnet_gca_encoder_29``: input ``B x 6 x H x W`` (normalised RGB + one-hot trimap
    [bg, unknown, fg]); H and W multiples of 32."""

    #: conv -> BatchNorm pairs of forward (tcvom.models.bn_folding).
    FOLDABLE_BN = ((("conv1",), "bn1"), (("conv2",), "bn2"), (("conv3",), "bn3"))

    def __init__(self, layers: tuple[int, int, int, int] = (3, 4, 4, 2), chunk_elements: int = 1 << 24) -> None:
        super().__init__()
        self.conv1 = sn_conv(6, 32, 3, stride=2)
        self.conv2 = sn_conv(32, 32, 3)
        self.conv3 = sn_conv(32, 64, 3, stride=2)
        self.bn1 = nn.BatchNorm2d(32)
        self.bn2 = nn.BatchNorm2d(32)
        self.bn3 = nn.BatchNorm2d(64)
        self.activation = nn.ReLU(inplace=True)
        self.layer1 = _layer(64, 64, layers[0], 1)
        self.layer2 = _layer(64, 128, layers[1], 2)
        self.layer3 = _layer(128, 256, layers[2], 2)
        self.layer_bottleneck = _layer(256, 512, layers[3], 2)
        self.shortcut = nn.ModuleList(
            [_shortcut(6, 32), _shortcut(32, 32), _shortcut(64, 64), _shortcut(128, 128), _shortcut(256, 256)]
        )
        self.guidance_head = nn.Sequential(*_guidance_step(3, 16), *_guidance_step(16, 32), *_guidance_step(32, 128))
        self.gca = GuidedContextualAttention(128, 128, chunk_elements)

    def forward(self, x: Tensor) -> EncoderOutput:
        out = self.activation(self.bn1(self.conv1(x)))
        x1 = self.activation(self.bn2(self.conv2(out)))  # 32 x H/2
        out = self.activation(self.bn3(self.conv3(x1)))  # 64 x H/4
        guidance = self.guidance_head(x[:, :3])
        # Nearest 1/8 sampling of the one-hot unknown channel: pixel (8i, 8j).
        unknown = x[:, 4:5, ::8, ::8]
        x2 = self.layer1(out)  # 64 x H/4
        x3 = self.layer2(x2)  # 128 x H/8
        x3 = self.gca(guidance, x3, unknown)
        x4 = self.layer3(x3)  # 256 x H/16
        bottleneck = self.layer_bottleneck(x4)  # 512 x H/32
        return EncoderOutput(
            bottleneck,
            self.shortcut[0](x),
            self.shortcut[1](x1),
            self.shortcut[2](x2),
            self.shortcut[3](x3),
            self.shortcut[4](x4),
            guidance,
            unknown,
        )
