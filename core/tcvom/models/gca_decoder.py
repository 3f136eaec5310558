"""GCA-Matting decoder with blocks [2, 3, 3, 2], optionally with the TAM at 1/8.

Y. Li and H. Lu, "Natural Image Matting via Guided Contextual Attention", AAAI 2020
(``res_gca_decoder_22``); the TAM variant is the decoder of GCA+TAM in Y. Zhang et al.,
"Attention-guided Temporally Coherent Video Object Matting", ACM MM 2021. Module names
follow the released checkpoints (``decoder.*``).

The decoder is split in two for the per-frame cache: :meth:`GcaDecoder.features` (layer1,
layer2, GCA block: the TAM input) runs once per frame; :meth:`GcaDecoder.head` (layer3,
layer4, final upsampling and convolution) runs on the TAM output of the centre frame.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from tcvom.models.gca_block import GuidedContextualAttention
from tcvom.models.gca_encoder import sn_conv
from tcvom.models.spectral_norm import SpectralNorm
from tcvom.models.tam import TemporalAggregation


def sn_deconv(cin: int, cout: int) -> SpectralNorm:
    """Spectral-normalised ConvTranspose 4x4 stride 2 (doubles H and W), bias-free."""
    return SpectralNorm(nn.ConvTranspose2d(cin, cout, kernel_size=4, stride=2, padding=1, bias=False))


class DecoderBlock(nn.Module):
    """Residual block; the first block of a layer upsamples with a transposed convolution and
    its shortcut is nearest upsample -> SN conv 1x1 -> BN."""

    #: conv -> BatchNorm pairs of forward (tcvom.models.bn_folding).
    FOLDABLE_BN = ((("conv1",), "bn1"), (("conv2",), "bn2"))

    def __init__(self, cin: int, cout: int, upsample: bool = False) -> None:
        super().__init__()
        self.conv1 = sn_deconv(cin, cin) if upsample else sn_conv(cin, cin, 3)
        self.bn1 = nn.BatchNorm2d(cin)
        self.activation = nn.LeakyReLU(0.2, inplace=True)
        self.conv2 = sn_conv(cin, cout, 3)
        self.bn2 = nn.BatchNorm2d(cout)
        self.upsample: nn.Sequential | None = None
        if upsample:
            self.upsample = nn.Sequential(nn.UpsamplingNearest2d(scale_factor=2), sn_conv(cin, cout, 1), nn.BatchNorm2d(cout))
        elif cin != cout:
            self.upsample = nn.Sequential(sn_conv(cin, cout, 1), nn.BatchNorm2d(cout))

    def forward(self, x: Tensor) -> Tensor:
        out = self.activation(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.activation(out + self.shortcut(x))

    def shortcut(self, x: Tensor) -> Tensor:
        """The residual branch. In eval mode the upsampling one runs its 1x1 convolution and
        BatchNorm before the nearest upsampling, which commutes with both (each output pixel
        is a copy of one input pixel, and both act on each pixel alone): the same values from
        a quarter of the pixels, half the channels upsampled, and in an ONNX Runtime graph the
        convolution's blocked layout no longer needs a reorder of the upsampled tensor. In
        training the declared order is kept (BatchNorm's running variance counts pixels)."""
        if self.upsample is None:
            return x
        if self.training or not isinstance(self.upsample[0], nn.UpsamplingNearest2d):
            return self.upsample(x)
        upsample, *pointwise = self.upsample
        for module in pointwise:
            x = module(x)
        return upsample(x)


def _layer(cin: int, cout: int, blocks: int) -> nn.Sequential:
    return nn.Sequential(DecoderBlock(cin, cout, upsample=True), *[DecoderBlock(cout, cout) for _ in range(blocks - 1)])


class GcaDecoder(nn.Module):
    """``res_gca_decoder_22`` (``temporal=False``) or the GCA+TAM decoder (``temporal=True``,
    adds ``fam``)."""

    #: conv -> BatchNorm pairs of forward (tcvom.models.bn_folding).
    FOLDABLE_BN = ((("conv1",), "bn1"),)

    def __init__(
        self,
        layers: tuple[int, int, int, int] = (2, 3, 3, 2),
        *,
        temporal: bool = True,
        window: int = 7,
        chunk_elements: int = 1 << 24,
    ) -> None:
        super().__init__()
        # Registration order matches the checkpoints: conv1, bn1, conv2, layer1..4, gca, fam.
        self.conv1 = sn_deconv(32, 32)
        self.bn1 = nn.BatchNorm2d(32)
        self.leaky_relu = nn.LeakyReLU(0.2, inplace=True)
        self.conv2 = nn.Conv2d(32, 1, kernel_size=3, padding=1)
        self.layer1 = _layer(512, 256, layers[0])
        self.layer2 = _layer(256, 128, layers[1])
        self.layer3 = _layer(128, 64, layers[2])
        self.layer4 = _layer(64, 32, layers[3])
        self.gca = GuidedContextualAttention(128, 128, chunk_elements)
        self.fam: TemporalAggregation | None = TemporalAggregation(128, window, chunk_elements) if temporal else None

    def features(self, bottleneck: Tensor, shortcut4: Tensor, shortcut5: Tensor, guidance: Tensor, unknown: Tensor) -> Tensor:
        """Part of the decoder before the TAM.

        Args:
            bottleneck: ``B x 512 x H/32 x W/32``; shortcut5 ``B x 256 x H/16``;
            shortcut4 ``B x 128 x H/8``; guidance ``B x 128 x H/8``; unknown ``B x 1 x H/8``.

        Returns:
            ``B x 128 x H/8 x W/8``: the TAM-input features.
        """
        x = self.layer1(bottleneck) + shortcut5
        x = self.layer2(x) + shortcut4
        return self.gca(guidance, x, unknown)

    def head(self, x: Tensor, shortcut1: Tensor, shortcut2: Tensor, shortcut3: Tensor) -> Tensor:
        """Part of the decoder after the TAM.

        Args:
            x: ``B x 128 x H/8 x W/8``; shortcut3 ``B x 64 x H/4``; shortcut2 ``B x 32 x H/2``;
            shortcut1 ``B x 32 x H x W``.

        Returns:
            ``B x 1 x H x W`` float32 raw alpha ``(tanh(x) + 1) / 2`` in [0, 1].
        """
        x = self.layer3(x) + shortcut3
        x = self.layer4(x) + shortcut2
        x = self.leaky_relu(self.bn1(self.conv1(x))) + shortcut1
        # The last convolution (32 -> 1) and tanh in float32 whatever the model's dtype: an
        # fp16/bf16 alpha near 0.5 would be rounded to steps of 0.0005/0.004.
        conv = self.conv2
        bias = None if conv.bias is None else conv.bias.float()
        return (F.conv2d(x.float(), conv.weight.float(), bias, padding=1).tanh() + 1.0) / 2.0
