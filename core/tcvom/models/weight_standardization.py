"""Weight-standardised convolution, as FBA Matting's ResNet-50 and decoder use it.

S. Qiao, H. Wang, C. Liu, W. Shen and A. Yuille, "Micro-Batch Training with Batch-Channel
Normalization and Weight Standardization", 2019; used by M. Forte and F. Pitié,
"F, B, Alpha Matting", 2020 (``layers_WS.Conv2d``), the FBA base of TCVOM (ACM MM 2021).

The stored weight is standardised per output channel before every convolution:
``(w - mean) / sqrt(var + eps)`` over the input channels and the kernel window (biased
variance, ``eps = 1e-5``), which is what the reference does to its weights when the model
is put in eval mode. The state dict holds the weight as the checkpoint does (``.weight``,
``.bias``), so a checkpoint loads strictly and saves back unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def standardize(weight: Tensor, eps: float = 1e-5) -> Tensor:
    """``C_out x C_in x k x k`` weight -> zero mean, unit (biased) variance per output channel."""
    flat = weight.reshape(weight.shape[0], -1)
    mean = flat.mean(dim=1, keepdim=True)
    var = flat.var(dim=1, unbiased=False, keepdim=True)
    return ((flat - mean) * torch.rsqrt(var + eps)).reshape_as(weight)


class WsConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose weight is standardised (:func:`standardize`) in ``forward``.

    ``forward(x)`` takes and returns ``B x C x H x W`` like ``nn.Conv2d``.
    """

    eps: float = 1e-5

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, standardize(self.weight, self.eps), self.bias, self.stride, self.padding,
                        self.dilation, self.groups)
