"""Export quirks: the few places where the eager models are not traceable as they stand.

Everything here is applied by :func:`export_mode` to the model being exported, for the
duration of the export only, and touches no model file:

- GCA block (:class:`tcvom.models.gca_block.GuidedContextualAttention`): the eager
  ``_attend`` loops over chunks of query rows (a Python loop whose count depends on the
  frame size, which a trace would freeze), writes the self-mask in place, and rebuilds
  the features with ``F.fold`` (ONNX ``Col2Im``, opset 18, whose exporter cannot take a
  dynamic output size and which TensorRT does not parse). :func:`attend_unchunked`
  computes the same thing in one block, the self-mask scattered onto the diagonal (``N``
  elements: an ``N x N`` 0/1 mask, cast and added, cost ONNX Runtime about a tenth of
  the block's time at 1080p), the attended patches as ``valuesᵀ @ softmaxᵀ`` as the eager block
  computes them (ONNX Runtime's ``MatMul`` runs that order 0.8-0.85 of the time of
  ``softmax @ values`` and a transpose), the fold as a grouped ``conv_transpose2d`` with a
  constant 0/1 kernel (the overlap-add the reference itself writes) and the patch
  extraction (``F.unfold``, which the exporter writes as index ``Gather`` s, 5 % of ONNX
  Runtime's part A) as :func:`unfold_by_conv`, a grouped convolution with a 0/1 kernel.
  Memory is the reference's ``N x N`` scores (N = H/16 * W/16: 266 MB at 1080p, 4.3 GB at
  4K in fp32).
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
- Upsampling transposed convolutions (4x4, stride 2, padding 1: the GCA decoder's): ONNX
  Runtime's CPU ``ConvTranspose`` is a GEMM into a ``16·C_out x H x W`` buffer and a
  col2im, outside its blocked-layout convolutions. :func:`deconv_by_phases` writes it as a
  2x2 convolution to the four output phases (the same multiply-adds) and a grouped 0/1
  ``ConvTranspose`` of stride 2 that interleaves them: 0.59-0.74 of the time in ONNX
  Runtime (docs/BENCHMARKS.md). The eager model keeps ``conv_transpose2d``, which oneDNN
  runs faster than this form.
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


#: Kernel rows (and columns) of a 4x4, stride-2, padding-1 transposed convolution that
#: reach output row ``2k - 1 + r`` from input rows ``k - 1`` and ``k``, for ``r`` = 0, 1.
_PHASE_TAPS = ((2, 0), (3, 1))


def _is_upsampling_deconv(conv: nn.Module) -> bool:
    return (isinstance(conv, nn.ConvTranspose2d) and conv.kernel_size == (4, 4) and conv.stride == (2, 2)
            and conv.padding == (1, 1) and conv.output_padding == (0, 0) and conv.dilation == (1, 1)
            and conv.groups == 1)


def phase_kernel(weight: Tensor) -> Tensor:
    """``C_in x C_out x 4 x 4`` transposed-convolution weight -> ``4·C_out x C_in x 2 x 2``
    convolution weight of :func:`deconv_by_phases`, output channel ``4 o + 2 r_y + r_x``."""
    taps = torch.tensor(_PHASE_TAPS, device=weight.device)
    w = weight[:, :, taps][..., taps]  # C_in x C_out x r_y x t_y x r_x x t_x
    return w.permute(1, 2, 4, 0, 3, 5).reshape(4 * weight.shape[1], weight.shape[0], 2, 2)


def deconv_by_phases(x: Tensor, kernel: Tensor) -> Tensor:
    """``F.conv_transpose2d(x, weight, stride=2, padding=1)`` of a 4x4 ``weight`` with
    ``kernel = phase_kernel(weight)``: a 2x2 convolution over the input padded by one gives
    output rows ``2k - 1`` and ``2k`` (and columns alike) at position ``k`` as four channels;
    a grouped stride-2 transposed convolution with a 0/1 kernel puts them in place, its
    padding dropping the rows and columns outside the output."""
    outputs = kernel.shape[0] // 4
    phases = F.conv2d(x, kernel, padding=1)
    return F.conv_transpose2d(phases, _patch_kernel(outputs, 2, x.dtype, x.device), stride=2, padding=1,
                              groups=outputs)


def _upsample_by_phases(module: SpectralNorm, weight: Tensor) -> None:
    """Make ``module`` (a spectral norm of a bias-free transposed convolution, with
    ``weight``) compute :func:`deconv_by_phases` until its ``forward`` is deleted."""
    kernel = phase_kernel(weight)
    module.forward = lambda x: deconv_by_phases(x, kernel)  # type: ignore[method-assign]


def attend_unchunked(self: GuidedContextualAttention, g: Tensor, features: Tensor, mask: Tensor) -> Tensor:
    """Traceable GCA attention of one sample; same arguments and result as
    ``GuidedContextualAttention._attend`` (g ``1 x C' x h x w``, features ``1 x C x 2h x 2w``,
    mask ``1 x 1 x h x w`` in {0, 1}) -> ``1 x C x 2h x 2w``."""
    _, _, h, w = g.shape
    channels = self.W[0].in_channels  # a constant, so the fold kernel has a static shape
    queries, keys, values, touches, scale = self.prepare(g, features, mask, unfold_by_conv)
    scores = (queries @ keys) * scale
    n = scores.shape[0]
    diagonal = torch.arange(n, device=g.device) * (n + 1)  # of the flattened scores
    flat = scores.reshape(-1)
    flat = flat.scatter(0, diagonal, flat[diagonal] + torch.where(touches, _SELF_MASK, 0.0).to(flat.dtype))
    attended = values.t() @ torch.softmax(flat.reshape(n, n), dim=1).t()  # C*16 x N
    columns = attended.reshape(1, channels * 16, h, w)
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
    forwards: list[nn.Module] = []
    if model.training:
        raise ValueError("export needs the model in eval mode (model.eval())")
    try:
        for module in model.modules():
            if isinstance(module, SpectralNorm):
                weight = module.weight().detach()
                module.weight = lambda weight=weight: weight  # type: ignore[method-assign]
                folded.append(module)
                if _is_upsampling_deconv(module.module):  # the GCA decoder's (bias-free)
                    _upsample_by_phases(module, weight)
                    forwards.append(module)
            if isinstance(module, GuidedContextualAttention):
                module._attend = types.MethodType(attend_unchunked, module)  # type: ignore[method-assign]
                patched.append(module)
            if isinstance(module, TemporalAggregation):
                module.attend = types.MethodType(tam_attend_gathered, module)  # type: ignore[method-assign]
                tams.append(module)
            if isinstance(module, nn.AdaptiveAvgPool2d) and module.output_size not in (1, (1, 1)):
                module.forward = types.MethodType(adaptive_avg_pool, module)  # type: ignore[method-assign]
                forwards.append(module)
            if isinstance(module, WsConv2d):
                weight = standardize(module.weight.detach(), module.eps)
                module.forward = types.MethodType(  # type: ignore[method-assign]
                    lambda self, x, weight=weight: self._conv_forward(x, weight, self.bias), module)
                forwards.append(module)
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
        for module in forwards:
            del module.forward
        for module, chunk in chunks:
            module.read_chunk = chunk
