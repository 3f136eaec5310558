"""Export quirks: the few places where the eager models are not traceable as they stand.

Everything here is applied by :func:`export_mode` to the model being exported, for the
duration of the export only, and touches no model file:

- GCA block (:class:`tcvom.models.gca_block.GuidedContextualAttention`): the eager
  ``_attend`` loops over chunks of query rows (a Python loop whose count depends on the
  frame size, which a trace would freeze), writes the self-mask in place, and rebuilds
  the features with ``F.fold`` (ONNX ``Col2Im``, opset 18, whose exporter cannot take a
  dynamic output size and which TensorRT does not parse). :func:`attend_unchunked`
  computes the same thing in one block, the self-mask as an added diagonal, the fold as a
  grouped ``conv_transpose2d`` with a constant 0/1 kernel (the overlap-add the reference
  itself writes) and the patch extraction (``F.unfold``, which the exporter writes as index
  ``Gather`` s, 5 % of ONNX Runtime's part A) as :func:`unfold_by_conv`, a grouped
  convolution with a 0/1 kernel. Memory is the reference's ``N x N`` scores
  (N = H/16 * W/16: 266 MB at 1080p, 4.3 GB at 4K in fp32).
- TAM (:class:`tcvom.models.tam.TemporalAggregation`): the eager ``attend`` gathers the
  7x7 windows of the unknown positions only, in chunks (a loop count that depends on the
  unknown area, which a trace would freeze). :func:`tam_attend_gathered` gathers the same
  unknown positions (``NonZero``, data-dependent but traceable) and loops over the 49
  window offsets instead of over chunks: each offset gathers one key row per unknown
  position (``M x C`` for ``M`` unknown positions), so memory stays that of a feature map
  and the cost follows the unknown area, as in the eager module (an earlier export computed
  every position and masked: 0.23 s of ONNX Runtime's 1.75 s at 540p, docs/BENCHMARKS.md).
- Spectral norm (:class:`tcvom.models.spectral_norm.SpectralNorm`): in eval mode the
  weight ``weight_bar / (u · W v)`` is a constant; it is computed once and exported as a
  plain weight (constant folding would otherwise store ``weight_bar`` twice).
- Adaptive average pooling (FBA's pyramid pooling, ``nn.AdaptiveAvgPool2d(s)`` with
  s > 1): ONNX has no adaptive pooling for a dynamic input size.
  :func:`adaptive_avg_pool` computes the same bins (``floor(i n / s)`` to
  ``ceil((i + 1) n / s)``) as two small averaging matrices built from the traced size.
- Weight standardisation (:class:`tcvom.models.weight_standardization.WsConv2d`): in eval
  mode the standardised weight is a constant; it is computed once and exported as a
  plain weight, as for spectral norm.
- STM memory read (:func:`tcvom.models.stm.memory_read`): chunking is turned off
  (``read_chunk = None``) for the same reason: one block, dynamic size.

The parity check of :mod:`tcvom.export.onnx_export` compares the exported graphs with the
unchanged eager model, so these replacements are checked on every export.
"""

from __future__ import annotations

import math
import types
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tcvom.models.gca_block import _SELF_MASK, GuidedContextualAttention
from tcvom.models.spectral_norm import SpectralNorm
from tcvom.models.tam import TemporalAggregation
from tcvom.models.weight_standardization import WsConv2d, standardize


def _bins(n: Tensor | int, s: int, like: Tensor) -> Tensor:
    """``s x n`` averaging matrix of adaptive pooling along one axis of size ``n``."""
    idx = torch.arange(n, device=like.device)
    i = torch.arange(s, device=like.device)
    start = torch.div(i * n, s, rounding_mode="floor")
    end = torch.div((i + 1) * n + (s - 1), s, rounding_mode="floor")
    member = ((idx[None, :] >= start[:, None]) & (idx[None, :] < end[:, None])).to(like.dtype)
    return member / member.sum(dim=1, keepdim=True)


def adaptive_avg_pool(self: nn.AdaptiveAvgPool2d, x: Tensor) -> Tensor:
    """Traceable ``nn.AdaptiveAvgPool2d`` (square output size ``s``): ``B x C x H x W`` ->
    ``B x C x s x s``, the same bins as torch's."""
    size = self.output_size
    s = int(size if isinstance(size, int) else size[0])  # type: ignore[arg-type]
    rows = _bins(x.shape[-2], s, x)  # s x H
    cols = _bins(x.shape[-1], s, x)  # s x W
    return rows @ x @ cols.t()


def _patch_kernel(channels: int, size: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``(C * size²) x 1 x size x size`` 0/1 kernel: a grouped (``groups=C``) conv2d with it
    is F.unfold, a grouped conv_transpose2d F.fold, of ``C x size x size`` patches laid out
    as F.unfold lays them."""
    eye = torch.eye(size * size, dtype=dtype, device=device).reshape(size * size, 1, size, size)
    return eye.repeat(channels, 1, 1, 1)


def unfold_by_conv(x: Tensor, kernel_size: int, stride: int = 1) -> Tensor:
    """``F.unfold(x, kernel_size, stride=stride)`` as a grouped convolution with a constant
    0/1 kernel (output channel ``c * k² + i`` takes pixel ``i`` of the window of channel
    ``c``, F.unfold's order): the exporter writes F.unfold as index ``Gather`` s, which ONNX
    Runtime runs several times slower than this convolution."""
    channels = int(x.shape[1])  # a constant of the model, so the kernel is a constant
    kernel = _patch_kernel(channels, kernel_size, x.dtype, x.device)
    return F.conv2d(x, kernel, stride=stride, groups=channels).flatten(2)


def attend_unchunked(self: GuidedContextualAttention, g: Tensor, features: Tensor, mask: Tensor) -> Tensor:
    """Traceable GCA attention of one sample; same arguments and result as
    ``GuidedContextualAttention._attend`` (g ``1 x C' x h x w``, features ``1 x C x 2h x 2w``,
    mask ``1 x 1 x h x w`` in {0, 1}) -> ``1 x C x 2h x 2w``."""
    _, _, h, w = g.shape
    channels = self.W[0].in_channels  # a constant, so the fold kernel has a static shape
    queries, keys, values, touches, scale = self.prepare(g, features, mask, unfold_by_conv)
    scores = (queries @ keys) * scale
    idx = torch.arange(scores.shape[0], device=g.device)
    self_match = (idx[:, None] == idx[None, :]) & touches[None, :]
    scores = scores + self_match.to(scores.dtype) * _SELF_MASK
    attended = torch.softmax(scores, dim=1) @ values  # N x C*16
    columns = attended.t().reshape(1, channels * 16, h, w)
    kernel = _patch_kernel(channels, 4, columns.dtype, columns.device)
    return F.conv_transpose2d(columns, kernel, stride=2, padding=1, groups=channels) / 4.0


def tam_attend_gathered(
    self: TemporalAggregation, query: Tensor, neighbour: Tensor, unknown: Tensor
) -> tuple[Tensor, Tensor]:
    """Traceable TAM window attention; same arguments and results as
    ``TemporalAggregation.attend`` (query and neighbour ``B x C x h x w``, unknown
    ``B x 1 x h x w``) -> (aggregate ``B x C x h x w``, logits ``B x window² x h x w``),
    zero outside the unknown region. The unknown positions are gathered as the eager
    module gathers them; the loop runs over the window's offsets (a count fixed by the
    model), one key row per unknown position each."""
    keys = self.key_conv(neighbour)
    b, c, h, w = keys.shape
    table, where, corner, offsets = self.windows(keys, unknown)
    queries = query.permute(0, 2, 3, 1).reshape(-1, c)[where] / math.sqrt(c)  # M x C
    rows = [corner + offsets[i] for i in range(self.window**2)]  # each window key's rows in table
    logits = torch.stack([(table[row] * queries).sum(dim=1) for row in rows], dim=1)  # M x window²
    weights = torch.softmax(logits, dim=1)
    agg = weights[:, 0:1] * table[rows[0]]
    for i in range(1, len(rows)):
        agg = agg + weights[:, i : i + 1] * table[rows[i]]
    agg = keys.new_zeros(b * h * w, c).index_copy(0, where, agg)
    logits = keys.new_zeros(b * h * w, len(rows)).index_copy(0, where, logits)
    return (agg.reshape(b, h, w, c).permute(0, 3, 1, 2),
            logits.reshape(b, h, w, len(rows)).permute(0, 3, 1, 2))


@contextmanager
def export_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Apply the export quirks to ``model`` (in place) and undo them on exit."""
    patched: list[nn.Module] = []
    folded: list[nn.Module] = []
    chunks: list[tuple[nn.Module, object]] = []
    tams: list[nn.Module] = []
    pools: list[nn.Module] = []
    if model.training:
        raise ValueError("export needs the model in eval mode (model.eval())")
    try:
        for module in model.modules():
            if isinstance(module, SpectralNorm):
                weight = module.weight().detach()
                module.weight = lambda weight=weight: weight  # type: ignore[method-assign]
                folded.append(module)
            if isinstance(module, GuidedContextualAttention):
                module._attend = types.MethodType(attend_unchunked, module)  # type: ignore[method-assign]
                patched.append(module)
            if isinstance(module, TemporalAggregation):
                module.attend = types.MethodType(tam_attend_gathered, module)  # type: ignore[method-assign]
                tams.append(module)
            if isinstance(module, nn.AdaptiveAvgPool2d) and module.output_size not in (1, (1, 1)):
                module.forward = types.MethodType(adaptive_avg_pool, module)  # type: ignore[method-assign]
                pools.append(module)
            if isinstance(module, WsConv2d):
                weight = standardize(module.weight.detach(), module.eps)
                module.forward = types.MethodType(  # type: ignore[method-assign]
                    lambda self, x, weight=weight: self._conv_forward(x, weight, self.bias), module)
                pools.append(module)
            if hasattr(module, "read_chunk"):
                chunks.append((module, module.read_chunk))
                module.read_chunk = None
        yield model
    finally:
        for module in patched:
            del module._attend
        for module in folded:
            del module.weight
        for module in tams:
            del module.attend
        for module in pools:
            del module.forward
        for module, chunk in chunks:
            module.read_chunk = chunk
