"""FBA Matting decoder: pyramid pooling, bilinear upsampling with skips, and the F, B, alpha
fusion; optionally with the TAM at output stride 8.

M. Forte and F. Pitié, "F, B, Alpha Matting", arXiv 2003.07711, 2020 (``fba_decoder``,
``fba_fusion``); the TAM variant is the decoder of FBA+TAM in Y. Zhang et al.,
"Attention-guided Temporally Coherent Video Object Matting", ACM MM 2021
(``vmn_fba_decoder``). Module names follow the released checkpoints (``decoder.*``).

Split for the per-frame cache: :meth:`FbaDecoder.features` (pyramid pooling and
``conv_up1``: the TAM input, 256 channels at 1/8) runs once per frame;
:meth:`FbaDecoder.head` runs on the TAM output of the centre frame.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tcvom.models.fba_encoder import group_norm
from tcvom.models.tam import TemporalAggregation
from tcvom.models.weight_standardization import WsConv2d

POOL_SCALES = (1, 2, 3, 6)


def fba_fusion(alpha: Tensor, image: Tensor, fg: Tensor, bg: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """FBA's fusion: F and B, then alpha, re-estimated from the compositing equation.

    F first; B from the new F (before F is clamped); alpha from the clamped F and B with
    the prior weight 0.1. The order matters: B from the network's F instead differs by up
    to 0.07 in B and 0.2 in alpha.

    Args:
        alpha: ``B x 1 x H x W`` in [0, 1]; image, fg, bg: ``B x 3 x H x W`` RGB in [0, 1].

    Returns:
        (alpha, F, B), each clamped to [0, 1].
    """
    f = alpha * image + (1 - alpha**2) * fg - alpha * (1 - alpha) * bg
    # B is re-estimated from the new (unclamped) F, as the reference does.
    b = (1 - alpha) * image + (2 * alpha - alpha**2) * bg - alpha * (1 - alpha) * f
    f = f.clamp(0, 1)
    b = b.clamp(0, 1)
    la = 0.1
    alpha = (alpha * la + ((image - b) * (f - b)).sum(1, keepdim=True)) / (((f - b) * (f - b)).sum(1, keepdim=True) + la)
    return alpha.clamp(0, 1), f, b


def _up2(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class FbaDecoder(nn.Module):
    """``fba_decoder`` (``temporal=False``) or ``vmn_fba_decoder`` (``temporal=True``, adds ``fam``)."""

    def __init__(self, *, temporal: bool = True, window: int = 7) -> None:
        super().__init__()
        # Registration order matches the checkpoints: ppm, conv_up1..4, fam.
        self.ppm = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(s), WsConv2d(2048, 256, 1), group_norm(256), nn.LeakyReLU())
            for s in POOL_SCALES
        )
        self.conv_up1 = nn.Sequential(
            WsConv2d(2048 + len(POOL_SCALES) * 256, 256, 3, padding=1), group_norm(256), nn.LeakyReLU(),
            WsConv2d(256, 256, 3, padding=1), group_norm(256), nn.LeakyReLU(),
        )
        self.conv_up2 = nn.Sequential(WsConv2d(256 + 256, 256, 3, padding=1), group_norm(256), nn.LeakyReLU())
        self.conv_up3 = nn.Sequential(WsConv2d(256 + 64, 64, 3, padding=1), group_norm(64), nn.LeakyReLU())
        self.conv_up4 = nn.Sequential(
            nn.Conv2d(64 + 3 + 3 + 2, 32, 3, padding=1), nn.LeakyReLU(),
            nn.Conv2d(32, 16, 3, padding=1), nn.LeakyReLU(),
            nn.Conv2d(16, 7, 1),
        )
        self.fam: TemporalAggregation | None = TemporalAggregation(256, window) if temporal else None

    def features(self, layer4: Tensor) -> Tensor:
        """``B x 2048 x H/8 x W/8`` -> ``B x 256 x H/8 x W/8``, the TAM-input features."""
        size = layer4.shape[-2:]
        pooled = [layer4] + [
            F.interpolate(ppm(layer4), size=size, mode="bilinear", align_corners=False) for ppm in self.ppm
        ]
        return self.conv_up1(torch.cat(pooled, 1))

    def head(self, x: Tensor, conv1: Tensor, layer1: Tensor, guide: Tensor) -> Tensor:
        """The decoder after the TAM.

        Args:
            x: ``B x 256 x H/8 x W/8``; layer1 ``B x 256 x H/4``; conv1 ``B x 64 x H/2``;
            guide: ``B x 8 x H x W``: normalised RGB, RGB in [0, 1], background and
                foreground maps.

        Returns:
            ``B x 7 x H x W``: alpha, F (RGB), B (RGB), each in [0, 1] after the fusion.
        """
        x = self.conv_up2(torch.cat((_up2(x), layer1), 1))
        x = self.conv_up3(torch.cat((_up2(x), conv1), 1))
        out = self.conv_up4(torch.cat((_up2(x), guide), 1))
        alpha = out[:, :1].clamp(0, 1)
        fg = torch.sigmoid(out[:, 1:4])
        bg = torch.sigmoid(out[:, 4:7])
        alpha, fg, bg = fba_fusion(alpha, guide[:, 3:6], fg, bg)
        return torch.cat((alpha, fg, bg), 1)
