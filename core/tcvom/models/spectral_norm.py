"""Spectral normalisation as the GCA-Matting / TCVOM checkpoints store it.

Y. Li and H. Lu, "Natural Image Matting via Guided Contextual Attention", AAAI 2020, used by
Y. Zhang et al., "Attention-guided Temporally Coherent Video Object Matting" (TCVOM),
ACM MM 2021. Spectral norm itself: T. Miyato et al., ICLR 2018.

The wrapped convolution keeps ``weight_u``, ``weight_v`` and ``weight_bar`` (state-dict keys
``<name>.module.weight_{u,v,bar}``), not torch's built-in ``weight_orig`` naming. The weight
used is ``weight_bar / sigma`` with ``sigma = u · (W v)``, ``W = weight_bar.reshape(shape[0], -1)``
(for a transposed convolution ``shape[0]`` is the input channels). In eval mode u and v are
used exactly as stored; in training mode one power iteration per forward updates them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_EPS = 1e-12


def _normalize(x: Tensor) -> Tensor:
    return x / (x.norm() + _EPS)


class SpectralNorm(nn.Module):
    """Wraps a bias-free ``nn.Conv2d`` or ``nn.ConvTranspose2d`` (kept as ``self.module``).

    ``forward(x)`` takes and returns ``B x C x H x W`` tensors like the wrapped convolution.
    """

    def __init__(self, module: nn.Conv2d | nn.ConvTranspose2d) -> None:
        super().__init__()
        if not isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
            raise TypeError(f"SpectralNorm wraps Conv2d or ConvTranspose2d, not {type(module).__name__}")
        if module.bias is not None:
            raise ValueError("the checkpoints' spectral-norm convolutions have no bias")
        weight = module.weight.detach()
        height = weight.shape[0]
        width = weight[0].numel()
        del module._parameters["weight"]
        # Registration order u, v, bar matches the checkpoints' key order.
        module.register_parameter("weight_u", nn.Parameter(_normalize(torch.randn(height)), requires_grad=False))
        module.register_parameter("weight_v", nn.Parameter(_normalize(torch.randn(width)), requires_grad=False))
        module.register_parameter("weight_bar", nn.Parameter(weight.clone()))
        self.module = module
        # Eval-mode weight, reused while weight_bar, u and v are unchanged (see weight()).
        self._frozen: tuple[tuple, Tensor] | None = None

    def _matrix(self) -> Tensor:
        w = self.module.weight_bar
        return w.reshape(w.shape[0], -1)

    @torch.no_grad()
    def power_iteration(self) -> None:
        """One training-mode step: ``v = normalize(Wᵀu)``, ``u = normalize(W v)``, stored back."""
        w = self._matrix()
        v = _normalize(w.t() @ self.module.weight_u)
        u = _normalize(w @ v)
        self.module.weight_u.copy_(u)
        self.module.weight_v.copy_(v)

    def sigma(self) -> Tensor:
        """The divisor ``u · (W v)`` (a 0-d float32 tensor) from the stored u and v.

        Always accumulated in float32: in fp16 the products of a 4,608-long row can
        overflow and in bf16 the sum loses the digits that scale every weight."""
        m = self.module
        return torch.dot(m.weight_u.float(), self._matrix().float() @ m.weight_v.float())

    def weight(self) -> Tensor:
        """The effective weight ``weight_bar / sigma``.

        Without autograd and in eval mode it is computed once and reused until
        ``weight_bar``, ``u`` or ``v`` change (in place, as loading a state dict does, or by
        replacement, as ``.to()`` does): the same values, without a division of every
        weight per frame and with a weight tensor oneDNN can keep its reordered copy of.
        """
        m = self.module
        if torch.compiler.is_compiling():  # traced: no cache (its data_ptr key breaks the graph)
            return self._divide()
        if self.training or torch.is_grad_enabled():
            self._frozen = None
            return self._divide()
        key = tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in (m.weight_bar, m.weight_u, m.weight_v))
        if self._frozen is None or self._frozen[0] != key:
            self._frozen = (key, self._divide())
        return self._frozen[1]

    def _divide(self) -> Tensor:
        w = self.module.weight_bar
        if w.dtype == torch.float32:
            return w / self.sigma()
        return (w.float() / self.sigma()).to(w.dtype)  # divide in float32, then round once

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            self.power_iteration()
        weight = self.weight()
        m = self.module
        if isinstance(m, nn.ConvTranspose2d):
            return F.conv_transpose2d(
                x, weight, None, m.stride, m.padding, m.output_padding, m.groups, m.dilation
            )
        return m._conv_forward(x, weight, None)
