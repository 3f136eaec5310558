"""Deep Image Matting encoder: VGG-16 convolutions with BatchNorm, 4 input channels.

N. Xu, B. Price, S. Cohen and T. Huang, "Deep Image Matting", CVPR 2017; the encoder of
DIM+TAM in Y. Zhang et al., "Attention-guided Temporally Coherent Video Object Matting",
ACM MM 2021 (``DIMEncoder``). Module names follow the released checkpoints (``encoder.*``
in ``dim_tam_state_dict.tsv``).

Max pooling keeps, for each pooled value, which of the four pixels of its 2x2 window it
came from (0..3, row-major, the first maximum on ties, as ``nn.MaxPool2d`` picks it), as a
float map at the pooled size: :func:`unpool_2x2` puts decoder values back there. This is
``MaxPool2d(2, 2, return_indices=True)`` / ``MaxUnpool2d(2, 2)`` exactly, without int64
index tensors (half the memory, and a float32 graph boundary for ONNX).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def max_pool_2x2(x: Tensor) -> tuple[Tensor, Tensor]:
    """``B x C x H x W`` (H, W even) -> (max over each 2x2 window ``B x C x H/2 x W/2``,
    position of the maximum in its window, float in {0, 1, 2, 3}, same shape)."""
    b, c, h, w = x.shape
    windows = x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(b, c, h // 2, w // 2, 4)
    pooled, position = windows.max(dim=-1)
    return pooled, position.to(x.dtype)


def unpool_2x2(x: Tensor, position: Tensor) -> Tensor:
    """Inverse of :func:`max_pool_2x2`: ``B x C x h x w`` values placed at ``position`` of
    their 2x2 window, zeros elsewhere -> ``B x C x 2h x 2w``."""
    b, c, h, w = x.shape
    slots = torch.stack([x * (position == k).to(x.dtype) for k in range(4)], dim=2)  # B x C x 4 x h x w
    return F.pixel_shuffle(slots.reshape(b, c * 4, h, w), 2)


class DimEncoderOutput(NamedTuple):
    """Pooling positions of the five stages (``B x C x H/2^k x W/2^k``) and conv6."""

    pos1: Tensor  # 64 x H/2
    pos2: Tensor  # 128 x H/4
    pos3: Tensor  # 256 x H/8
    pos4: Tensor  # 512 x H/16
    pos5: Tensor  # 512 x H/32
    conv6: Tensor  # 4096 x H/32


_STAGES = ((("conv11", "bn11", 4, 64), ("conv12", "bn12", 64, 64)),
           (("conv21", "bn21", 64, 128), ("conv22", "bn22", 128, 128)),
           (("conv31", "bn31", 128, 256), ("conv32", "bn32", 256, 256), ("conv33", "bn33", 256, 256)),
           (("conv41", "bn41", 256, 512), ("conv42", "bn42", 512, 512), ("conv43", "bn43", 512, 512)),
           (("conv51", "bn51", 512, 512), ("conv52", "bn52", 512, 512), ("conv53", "bn53", 512, 512)))


class DimEncoder(nn.Module):
    """VGG-16 encoder of DIM: ``B x 4 x H x W`` (normalised RGB + trimap / 255), H and W
    multiples of 32 -> :class:`DimEncoderOutput`."""

    def __init__(self, in_channels: int = 4) -> None:
        super().__init__()
        # Registration order matches the checkpoints: conv11, bn11, conv12, bn12, ..., conv6.
        for stage in _STAGES:
            for conv, bn, cin, cout in stage:
                self.add_module(conv, nn.Conv2d(in_channels if conv == "conv11" else cin, cout, 3, padding=1))
                self.add_module(bn, nn.BatchNorm2d(cout))
        self.conv6 = nn.Conv2d(512, 4096, 7, padding=3)

    def forward(self, x: Tensor) -> DimEncoderOutput:
        positions = []
        for stage in _STAGES:
            for conv, bn, _, _ in stage:
                x = F.relu(getattr(self, bn)(getattr(self, conv)(x)))
            x, position = max_pool_2x2(x)
            positions.append(position)
        return DimEncoderOutput(*positions, F.relu(self.conv6(x)))
