"""Temporal Aggregation Module (TAM).

Y. Zhang, C. Wang, M. Cui, P. Ren, X. Xie, X.-S. Hua, H. Bao, Q. Huang and W. Xu,
"Attention-guided Temporally Coherent Video Object Matting", ACM MM 2021 (section 3.1);
``decoder.fam`` in the released checkpoints.

At 1/8 resolution, every unknown position of frame t attends to a 7x7 window of key
features of frame t-1 and of frame t+1. The keys are also the values (no value projection
of the neighbours); zero-padded border keys take part in the softmax with logit 0. Output:
``value_conv(F_t) + agg_prev + agg_next`` at unknown positions, ``value_conv(F_t)`` elsewhere.

Only unknown positions are computed (the output uses nothing else): their 7x7 windows are
gathered from the zero-padded keys in chunks of positions, so the cost follows the unknown
area and memory stays bounded whatever the frame size. On the CPU a chunk's windows stay
within about 4 MiB (:data:`CPU_CHUNK_ELEMENTS`): with glibc's default allocator (the
Python API, the Nuke node) each larger block is a fresh ``mmap``, zero-filled page by page
for every chunk. The same values; docs/BENCHMARKS.md, "TAM chunks on the CPU", has the
figures. Finding the unknown positions (``nonzero``) gives a shape that depends on the
data, which a CUDA graph cannot capture and ``torch.compile`` breaks its graph on: there
(and with ``every_position``) every position is computed and the known ones zeroed, the
same values at a cost that follows the frame area.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Gathered window elements per chunk on the CPU (``positions x window² x C``; 2**20 floats
#: = 4 MiB: about 167 positions of 7x7 windows of 128 channels), below glibc's largest mmap
#: threshold (32 MiB), so that chunks reuse the heap's memory.
CPU_CHUNK_ELEMENTS = 1 << 20


class TemporalAggregation(nn.Module):
    """TAM: ``forward(prev, cur, nxt, unknown) -> B x C x h x w``.

    Args:
        channels: feature channels (128).
        window: attention window size (7 in every released configuration).
        chunk_elements: the most gathered window elements held at once
            (``positions x window² x C``; 2**24 floats = 64 MiB); on the CPU at most
            :attr:`cpu_chunk_elements`.
    """

    def __init__(self, channels: int = 128, window: int = 7, chunk_elements: int = 1 << 24) -> None:
        super().__init__()
        if window < 1 or window % 2 == 0:
            raise ValueError(f"the TAM window must be a positive odd number, not {window}")
        # Registration order key, query, value matches the checkpoints.
        self.key_conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.query_conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.value_conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.window = window
        self.chunk_elements = chunk_elements
        #: Chunk bound on the CPU (on a GPU, fewer and larger chunks launch fewer kernels).
        self.cpu_chunk_elements = CPU_CHUNK_ELEMENTS
        #: Compute every position and zero the known ones (static shapes); also on
        #: whenever a CUDA graph is being captured or ``torch.compile`` traces.
        self.every_position = False

    def attend(self, query: Tensor, neighbour: Tensor, unknown: Tensor) -> tuple[Tensor, Tensor]:
        """Window attention of ``query`` over the keys of one neighbour, at unknown positions.

        Args:
            query: ``B x C x h x w`` query features of frame t (``query_conv`` output).
            neighbour: ``B x C x h x w`` TAM-input features of the neighbour frame.
            unknown: ``B x 1 x h x w`` unknown mask of frame t in {0, 1}.

        Returns:
            (aggregate ``B x C x h x w``, logits ``B x window² x h x w`` before the softmax,
            offset index ``ky * window + kx``), both zero outside the unknown region. Only
            unknown positions are computed: the TAM's output uses nothing else.
        """
        keys = self.key_conv(neighbour)
        b, c, h, w = keys.shape
        k2 = self.window**2
        every = self.every_position or _static_shapes(keys)
        table, where, corner, offsets = self.windows(keys, unknown, every_position=every)
        queries = query.permute(0, 2, 3, 1).reshape(b * h * w, c)
        norm = math.sqrt(c)
        step = self.chunk_positions(keys)
        logits_parts, agg_parts = [], []
        for start in range(0, int(where.numel()), step):
            idx = corner[start : start + step, None] + offsets[None, :]  # M x k2
            # float32 whatever the model's dtype: logits and softmax weights lose too much
            # in fp16/bf16 (bf16 rounds a logit of 10 by 0.06).
            windows = table[idx].float()  # M x k2 x C: the keys are also the values
            q = queries[where[start : start + step]].float()  # M x C
            logits = (windows * q[:, None, :]).sum(dim=2) / norm  # M x k2
            agg_parts.append((windows * torch.softmax(logits, dim=1)[:, :, None]).sum(dim=1))
            logits_parts.append(logits)
        agg = keys.new_zeros(b * h * w, c)
        all_logits = keys.new_zeros(b * h * w, k2)
        if logits_parts:
            agg = agg.index_copy(0, where, torch.cat(agg_parts).to(keys.dtype))
            all_logits = all_logits.index_copy(0, where, torch.cat(logits_parts).to(keys.dtype))
        if every:
            keep = (unknown.reshape(b * h * w, 1) > 0).to(keys.dtype)
            agg, all_logits = agg * keep, all_logits * keep
        return (agg.reshape(b, h, w, c).permute(0, 3, 1, 2).contiguous(),
                all_logits.reshape(b, h, w, k2).permute(0, 3, 1, 2).contiguous())

    def chunk_positions(self, keys: Tensor) -> int:
        """Positions per chunk, so that the gathered windows (``M x window² x C``) stay within
        :attr:`chunk_elements`, and within :attr:`cpu_chunk_elements` on the CPU."""
        bound = self.chunk_elements
        if keys.device.type == "cpu":
            bound = min(bound, self.cpu_chunk_elements)
        return max(1, bound // (self.window**2 * keys.shape[1]))

    def windows(
        self, keys: Tensor, unknown: Tensor, *, every_position: bool = False
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Where the windows of the unknown positions lie (shared with the export's
        :func:`tcvom.export.quirks.tam_attend_gathered`).

        Returns ``table`` (the zero-padded keys as rows of C: border keys are 0, logit 0),
        ``where`` (flat ``(b, y, x)`` indices of the unknown positions, or of every
        position with ``every_position``), ``corner`` (row of
        each one's window's top-left key in ``table``) and ``offsets`` (``window²`` row
        offsets of the window's keys from its corner, index ``ky * window + kx``).
        """
        b, c, h, w = keys.shape
        r = self.window // 2
        hp, wp = h + 2 * r, w + 2 * r
        table = F.pad(keys, (r, r, r, r)).permute(0, 2, 3, 1).reshape(b * hp * wp, c)
        if every_position:
            where = torch.arange(b * h * w, device=keys.device)
        else:
            where = (unknown.reshape(b * h * w) > 0).nonzero().squeeze(1)
        bi = torch.div(where, h * w, rounding_mode="floor")
        yx = where - bi * (h * w)
        yi = torch.div(yx, w, rounding_mode="floor")
        corner = bi * (hp * wp) + yi * wp + (yx - yi * w)
        grid = torch.arange(self.window, device=keys.device)
        offsets = (grid[:, None] * wp + grid[None, :]).reshape(self.window**2)
        return table, where, corner, offsets

    def forward_with_logits(
        self, prev: Tensor, cur: Tensor, nxt: Tensor, unknown: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """As :meth:`forward`, also returning the raw logits for the affinity loss.

        Returns:
            (output ``B x C x h x w``, logits of prev and of next ``B x window² x (h*w)``,
            zero outside the unknown region).
        """
        query = self.query_conv(cur)
        agg_prev, logits_prev = self.attend(query, prev, unknown)
        agg_next, logits_next = self.attend(query, nxt, unknown)
        out = self.value_conv(cur) + agg_prev + agg_next
        b = cur.shape[0]
        return out, logits_prev.reshape(b, self.window**2, -1), logits_next.reshape(b, self.window**2, -1)

    def forward(self, prev: Tensor, cur: Tensor, nxt: Tensor, unknown: Tensor) -> Tensor:
        """Aggregate the neighbours into frame t.

        Args:
            prev, cur, nxt: ``B x C x h x w`` TAM-input features of frames t-1, t, t+1.
            unknown: ``B x 1 x h x w`` unknown mask of frame t in {0, 1} (the full-resolution
                mask sampled at pixel (8i, 8j)).

        Returns:
            ``B x C x h x w``.
        """
        query = self.query_conv(cur)
        agg_prev, _ = self.attend(query, prev, unknown)
        agg_next, _ = self.attend(query, nxt, unknown)
        return self.value_conv(cur) + agg_prev + agg_next


def _static_shapes(t: Tensor) -> bool:
    """A CUDA graph is being captured on ``t``'s device, or ``torch.compile`` is tracing:
    no shape may depend on the data."""
    if torch.compiler.is_compiling():
        return True
    return t.is_cuda and torch.cuda.is_current_stream_capturing()
