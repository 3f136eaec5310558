"""Weight-standardised convolution, as FBA Matting's ResNet-50 and decoder use it.

S. Qiao, H. Wang, C. Liu, W. Shen and A. Yuille, "Micro-Batch Training with Batch-Channel
Normalization and Weight Standardization", 2019; used by M. Forte and F. Pitié,
"F, B, Alpha Matting", 2020 (``layers_WS.Conv2d``), the FBA base of TCVOM (ACM MM 2021).

The stored weight is standardised per output channel in every forward pass:
``(w - mean) / (std + eps)`` over the input channels and the kernel window, with the
**unbiased** standard deviation and ``eps = 1e-5`` added **outside** the square root. This
is the ``layers_WS.Conv2d`` of the FBA code TCVOM builds on (the one whose module also
defines ``BatchNorm2d`` as a 32-group GroupNorm); FBA's later rewrite (batch-norm of the
weight: biased variance, eps inside the root, applied in place when the mode changes)
gives other numbers: with deterministic weights the decoder's wide convolutions
(fan-in up to 27,648, variance 7e-5) differ by percents, and F by 1e-2. The state dict
holds the weight as the checkpoint does (``.weight``, ``.bias``), so a checkpoint loads
strictly and saves back unchanged.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def standardize(weight: Tensor, eps: float = 1e-5) -> Tensor:
    """``C_out x C_in x k x k`` weight -> ``(w - mean) / (std + eps)`` per output channel
    (unbiased std, eps outside the root, as the reference)."""
    centred = weight - weight.mean(dim=(1, 2, 3), keepdim=True)
    std = centred.reshape(weight.shape[0], -1).std(dim=1).reshape(-1, 1, 1, 1)
    return centred / (std + eps)


class WsConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose weight is standardised (:func:`standardize`) in ``forward``.

    ``forward(x)`` takes and returns ``B x C x H x W`` like ``nn.Conv2d``.
    """

    eps: float = 1e-5

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, standardize(self.weight, self.eps), self.bias, self.stride, self.padding,
                        self.dilation, self.groups)
