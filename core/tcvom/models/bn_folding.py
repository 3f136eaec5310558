"""Batch-norm folding for inference: each eval-mode BatchNorm merged into the convolution before it.

S. Ioffe and C. Szegedy, "Batch Normalization", ICML 2015: in eval mode a BatchNorm is
the per-channel affine map ``y = s * x + t`` with ``s = gamma / sqrt(running_var + eps)``
and ``t = beta - s * running_mean``. Applied to a convolution's output (weight ``W``, bias
``b``) it equals one convolution with weight ``s * W`` (scaled per output channel) and bias
``s * b + t``: the same result without a pass over the feature map. A BatchNorm applied to
a sum of convolutions (STM's memory-encoder stem) scales each and adds ``t`` once.

Which BatchNorm follows which convolution is declared, never guessed from names:

- in an ``nn.Sequential``, a convolution immediately followed by a ``BatchNorm2d``;
- in a module whose class lists ``FOLDABLE_BN = ((("conv1",), "bn1"), ...)``: its forward
  applies ``bn1`` directly to the output of ``conv1`` (or to the sum of the listed
  convolutions) and to nothing else.

A foldable convolution is a plain ``nn.Conv2d`` / ``nn.ConvTranspose2d`` (``groups=1`` for
the transposed one) or one wrapped in :class:`tcvom.models.spectral_norm.SpectralNorm`
(its eval-mode weight ``weight_bar / sigma`` is folded). The folded model is for
inference only: its state dict no longer has the BatchNorm keys, so fold a copy
(:func:`folded_copy`), never the model whose weights are saved, hashed or fine-tuned.
"""

from __future__ import annotations

import copy
import itertools

import torch
from torch import Tensor, nn

from tcvom.models.spectral_norm import SpectralNorm

#: Relative tolerance of the per-pair parity check: the largest absolute difference
#: between conv -> BN and the folded convolution, over ``max(1, largest |output|)``.
FOLD_TOLERANCE = 1e-5

_CONVS = (nn.Conv2d, nn.ConvTranspose2d)


def _conv_parts(module: nn.Module) -> tuple[nn.Conv2d | nn.ConvTranspose2d, Tensor] | None:
    """(the convolution, its effective float64 weight), or None when it cannot be folded."""
    conv: nn.Module = module.module if isinstance(module, SpectralNorm) else module
    if type(conv) not in _CONVS:  # subclasses (weight standardisation) compute their own weight
        return None
    assert isinstance(conv, nn.Conv2d | nn.ConvTranspose2d)
    if isinstance(conv, nn.ConvTranspose2d) and conv.groups != 1:
        return None
    with torch.no_grad():
        if isinstance(module, SpectralNorm):
            weight = conv.weight_bar.double() / module.sigma().double()
        else:
            weight = conv.weight.double()
    return conv, weight


def _plain(conv: nn.Conv2d | nn.ConvTranspose2d, weight: Tensor, bias: Tensor | None, dtype: torch.dtype) -> nn.Module:
    """A plain convolution like ``conv`` with ``weight`` and ``bias`` (float64) cast to ``dtype``."""
    kwargs: dict = dict(stride=conv.stride, padding=conv.padding, dilation=conv.dilation, groups=conv.groups,
                        bias=bias is not None, padding_mode=conv.padding_mode)
    if isinstance(conv, nn.ConvTranspose2d):
        kwargs["output_padding"] = conv.output_padding
    out = type(conv)(conv.in_channels, conv.out_channels, conv.kernel_size, device="meta", **kwargs)
    out = out.to_empty(device=weight.device).to(dtype)
    with torch.no_grad():
        out.weight.copy_(weight)
        if bias is not None:
            assert out.bias is not None
            out.bias.copy_(bias)
    return out.train(conv.training)


def _bn_affine(bn: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """(s, t) of an eval-mode BatchNorm, float64."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("a BatchNorm without running statistics cannot be folded")
    with torch.no_grad():
        scale = torch.rsqrt(bn.running_var.double() + bn.eps)
        if bn.weight is not None:
            scale = scale * bn.weight.double()
        shift = -scale * bn.running_mean.double()
        if bn.bias is not None:
            shift = shift + bn.bias.double()
    return scale, shift


def _fold_group(convs: list[nn.Module], bn: nn.BatchNorm2d) -> list[nn.Module] | None:
    """The folded convolutions for ``bn(sum(convs(x_i)))``, or None when one cannot be folded."""
    parts = [_conv_parts(c) for c in convs]
    if any(p is None for p in parts):
        return None
    scale, shift = _bn_affine(bn)
    originals, folds = [], []
    for i, part in enumerate(parts):
        assert part is not None
        conv, weight = part
        view = (1, -1, 1, 1) if isinstance(conv, nn.ConvTranspose2d) else (-1, 1, 1, 1)
        bias = None if conv.bias is None else conv.bias.detach().double()
        new_bias = None if bias is None else bias * scale
        if i == 0:
            new_bias = shift if new_bias is None else new_bias + shift
        originals.append((conv, weight, bias))
        folds.append((conv, weight * scale.view(view), new_bias))
    _check(originals, bn, folds)
    return [_plain(conv, w, b, weight_dtype(conv)) for conv, w, b in folds]


def weight_dtype(conv: nn.Module) -> torch.dtype:
    """The dtype of a convolution's weight (``weight_bar`` for a spectral-norm one)."""
    weight = getattr(conv, "weight_bar", None)
    if weight is None:
        weight = conv.weight
    assert isinstance(weight, Tensor)
    return weight.dtype


_Parts = list[tuple[nn.Conv2d | nn.ConvTranspose2d, Tensor, Tensor | None]]


def _matrix(conv: nn.Module, weight: Tensor) -> Tensor:
    """The weight as an ``out_channels x (in_channels/groups * kernel)`` matrix."""
    if isinstance(conv, nn.ConvTranspose2d):
        weight = weight.transpose(0, 1)
    return weight.reshape(weight.shape[0], -1)


def _check(originals: _Parts, bn: nn.BatchNorm2d, folds: _Parts) -> None:
    """Parity of one fold, in float32 whatever the model's dtype (this checks the algebra;
    rounding to a half-precision model is the model's own): every output channel of the
    convolutions' sum at one random receptive field (a matrix-vector product; a
    convolution's output at any position is one), through the BatchNorm, against the
    folded convolutions."""
    generator = torch.Generator().manual_seed(0)
    reference: Tensor | None = None
    result: Tensor | None = None
    with torch.no_grad():
        for (conv, weight, bias), (_, new_weight, new_bias) in zip(originals, folds, strict=True):
            matrix = _matrix(conv, weight).float()
            patch = torch.randn(matrix.shape[1], generator=generator).to(matrix.device)
            ref = matrix @ patch + (0.0 if bias is None else bias.float())
            out = _matrix(conv, new_weight).float() @ patch + (0.0 if new_bias is None else new_bias.float())
            reference = ref if reference is None else reference + ref
            result = out if result is None else result + out
        assert reference is not None and result is not None
        reference = copy.deepcopy(bn).float().eval()(reference.view(1, -1, 1, 1)).flatten()
    error = (reference - result).abs().max().item()
    bound = FOLD_TOLERANCE * max(1.0, reference.abs().max().item())
    if not error <= bound:
        raise RuntimeError(f"folding a BatchNorm changed the result by {error:.3g} (bound {bound:.3g})")


def fold_batchnorm(model: nn.Module) -> int:
    """Fold every declared conv -> BatchNorm pair of ``model`` in place (module docstring).

    Each folded BatchNorm becomes ``nn.Identity`` and its convolution a plain one with the
    folded weight and bias, in the convolution's dtype (computed in float64). Each fold is
    checked on a random input against the unfolded pair, in float32, within
    :data:`FOLD_TOLERANCE` relative (a RuntimeError otherwise). Returns the number of
    BatchNorms folded. ``model`` must be in eval mode (a training BatchNorm uses the
    batch's statistics, which no folding reproduces).
    """
    if model.training:
        raise ValueError("fold_batchnorm needs a model in eval mode")
    count = 0
    for module in list(model.modules()):
        if isinstance(module, nn.Sequential):
            names = list(module._modules)
            for a, b in itertools.pairwise(names):
                conv, bn = module._modules[a], module._modules[b]
                if isinstance(bn, nn.BatchNorm2d) and conv is not None:
                    folded = _fold_group([conv], bn)
                    if folded is not None:
                        module._modules[a], module._modules[b] = folded[0], nn.Identity()
                        count += 1
        for conv_names, bn_name in getattr(type(module), "FOLDABLE_BN", ()):
            bn = getattr(module, bn_name)
            if not isinstance(bn, nn.BatchNorm2d):  # already folded
                continue
            folded = _fold_group([getattr(module, n) for n in conv_names], bn)
            if folded is None:
                continue
            for name, new in zip(conv_names, folded, strict=True):
                setattr(module, name, new)
            setattr(module, bn_name, nn.Identity())
            count += 1
    return count


def folded_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` (in eval mode) with its BatchNorms folded; ``model`` is unchanged."""
    copied = copy.deepcopy(model).eval()
    fold_batchnorm(copied)
    return copied
