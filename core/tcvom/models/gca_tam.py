"""GCA+TAM video matting network and the single-image GCA baseline, assembled.

Y. Zhang, C. Wang, M. Cui, P. Ren, X. Xie, X.-S. Hua, H. Bao, Q. Huang and W. Xu,
"Attention-guided Temporally Coherent Video Object Matting", ACM MM 2021; built on
Y. Li and H. Lu, "Natural Image Matting via Guided Contextual Attention", AAAI 2020.

Split for the per-frame cache and for export:

- part A, :meth:`GcaMatting.encode`: one frame's ``B x 6 x H x W`` input ->
  :class:`FrameFeatures` (TAM-input features, the three full/half/quarter-resolution skips,
  the 1/8 unknown mask). Runs once per frame.
- part B, :meth:`GcaMatting.decode`: TAM over the features of t-1, t, t+1 (GCA+TAM only),
  then the rest of the decoder -> ``B x 1 x H x W`` raw alpha of t.

Input contract (:func:`make_input`): RGB sRGB in [0, 1] normalised with the ImageNet mean
and std, then the one-hot trimap [background, unknown, foreground]; H and W reflect-padded
at the bottom/right to multiples of 32 (:func:`pad_to_multiple`). Output contract
(:func:`composite`): ``(tanh + 1) / 2``, then known pixels replaced by the trimap.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tcvom.models.gca_decoder import GcaDecoder
from tcvom.models.gca_encoder import GcaEncoder

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: H and W of the network input must be multiples of this.
MULTIPLE = 32
#: Default bound of the GCA score chunks (floats held at once).
CHUNK_ELEMENTS = 1 << 24


class FrameFeatures(NamedTuple):
    """Part A output for one frame (all ``B x C x h x w``)."""

    features: Tensor  # 128 x H/8 x W/8, TAM input
    shortcut1: Tensor  # 32 x H x W
    shortcut2: Tensor  # 32 x H/2 x W/2
    shortcut3: Tensor  # 64 x H/4 x W/4
    unknown: Tensor  # 1 x H/8 x W/8, the unknown mask sampled at pixel (8i, 8j)


class GcaMatting(nn.Module):
    """Encoder + decoder shared by :class:`GcaTam` and :class:`GcaSingle`."""

    temporal: bool = False

    def __init__(self, *, temporal: bool, window: int = 7, chunk_elements: int = CHUNK_ELEMENTS) -> None:
        super().__init__()
        self.encoder = GcaEncoder(chunk_elements=chunk_elements)
        self.decoder = GcaDecoder(temporal=temporal, window=window, chunk_elements=chunk_elements)

    def encode(self, x: Tensor) -> FrameFeatures:
        """Part A: ``B x 6 x H x W`` network input (H, W multiples of 32) -> :class:`FrameFeatures`."""
        enc = self.encoder(x)
        feats = self.decoder.features(enc.bottleneck, enc.shortcut4, enc.shortcut5, enc.guidance, enc.unknown)
        return FrameFeatures(feats, enc.shortcut1, enc.shortcut2, enc.shortcut3, enc.unknown)

    def decode(self, cur: FrameFeatures, prev: Tensor | None = None, nxt: Tensor | None = None) -> Tensor:
        """Part B: the centre frame's features (and, for GCA+TAM, the neighbours' TAM-input
        features ``B x 128 x H/8 x W/8``) -> raw alpha ``B x 1 x H x W`` in [0, 1]."""
        x = cur.features
        if self.decoder.fam is not None:
            if prev is None or nxt is None:
                raise ValueError("GCA+TAM needs the features of the previous and the next frame")
            x = self.decoder.fam(prev, x, nxt, cur.unknown)
        return self.decoder.head(x, cur.shortcut1, cur.shortcut2, cur.shortcut3)


class GcaTam(GcaMatting):
    """GCA+TAM (TCVOM): ``forward(x_prev, x, x_next) -> raw alpha of the centre frame``."""

    temporal = True

    def __init__(self, *, window: int = 7, chunk_elements: int = CHUNK_ELEMENTS) -> None:
        super().__init__(temporal=True, window=window, chunk_elements=chunk_elements)

    def forward(self, x_prev: Tensor, x: Tensor, x_next: Tensor) -> Tensor:
        """Args: three ``B x 6 x H x W`` inputs (frames t-1, t, t+1, each with its own trimap).

        Returns: ``B x 1 x H x W`` raw alpha ``(tanh + 1) / 2`` of frame t.
        """
        return self.decode(self.encode(x), self.encode(x_prev).features, self.encode(x_next).features)


class GcaSingle(GcaMatting):
    """Single-image GCA baseline (the same weights minus ``decoder.fam.*``): ``forward(x) -> raw alpha``."""

    temporal = False

    def __init__(self, *, chunk_elements: int = CHUNK_ELEMENTS) -> None:
        super().__init__(temporal=False, chunk_elements=chunk_elements)

    def forward(self, x: Tensor) -> Tensor:
        """``B x 6 x H x W`` input -> ``B x 1 x H x W`` raw alpha in [0, 1]."""
        return self.decode(self.encode(x))


def build_gca(*, temporal: bool = True, window: int = 7, chunk_elements: int = CHUNK_ELEMENTS) -> GcaMatting:
    """A GCA+TAM (``temporal=True``) or single-image GCA model in eval mode, untrained."""
    model = GcaTam(window=window, chunk_elements=chunk_elements) if temporal else GcaSingle(chunk_elements=chunk_elements)
    return model.eval()


class GcaPartA(nn.Module):
    """Export wrapper of part A: ``forward(x) -> (features, shortcut1, shortcut2, shortcut3, unknown)``."""

    def __init__(self, model: GcaMatting) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        return tuple(self.model.encode(x))  # type: ignore[return-value]


class GcaPartB(nn.Module):
    """Export wrapper of part B of GCA+TAM:
    ``forward(prev_features, features, next_features, shortcut1, shortcut2, shortcut3, unknown) -> raw alpha``."""

    def __init__(self, model: GcaTam) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        prev_features: Tensor,
        features: Tensor,
        next_features: Tensor,
        shortcut1: Tensor,
        shortcut2: Tensor,
        shortcut3: Tensor,
        unknown: Tensor,
    ) -> Tensor:
        cur = FrameFeatures(features, shortcut1, shortcut2, shortcut3, unknown)
        return self.model.decode(cur, prev_features, next_features)


# --- the input and output contract -------------------------------------------------------


def _reflect_index(size: int, pad: int, device: torch.device) -> Tensor:
    """Indices of ``size + pad`` samples reflected at the end (numpy/torch 'reflect', repeated
    when ``pad >= size`` so tiny images work too)."""
    idx = torch.arange(size + pad, device=device)
    if size == 1:
        return torch.zeros_like(idx)
    period = 2 * (size - 1)
    idx = idx % period
    return torch.where(idx >= size, period - idx, idx)


def pad_to_multiple(x: Tensor, multiple: int = MULTIPLE) -> Tensor:
    """Reflect-pad ``B x C x H x W`` at the bottom and right to multiples of ``multiple``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    if ph < h and pw < w:
        return F.pad(x, (0, pw, 0, ph), mode="reflect")
    x = x.index_select(-2, _reflect_index(h, ph, x.device))
    return x.index_select(-1, _reflect_index(w, pw, x.device))


def trimap_one_hot(trimap: Tensor) -> Tensor:
    """``B x 1 x H x W`` uint8 trimap (0 / 128 / 255) -> float32 ``B x 3 x H x W`` one-hot
    [background, unknown, foreground]; unknown is ``0 < trimap < 255`` as in the reference."""
    t = trimap.to(torch.int16)
    return torch.cat([t == 0, (t > 0) & (t < 255), t == 255], dim=1).to(torch.float32)


def make_input(image: Tensor, trimap: Tensor) -> Tensor:
    """The network input of one frame.

    Args:
        image: ``B x 3 x H x W`` float sRGB RGB in [0, 1].
        trimap: ``B x 1 x H x W`` uint8 in 0 / 128 / 255.

    Returns:
        float32 ``B x 6 x Hp x Wp``: ImageNet-normalised RGB then the one-hot trimap,
        reflect-padded to multiples of 32.
    """
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32, device=image.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32, device=image.device).view(1, 3, 1, 1)
    rgb = (image.to(torch.float32) - mean) / std
    return pad_to_multiple(torch.cat([rgb, trimap_one_hot(trimap.to(image.device))], dim=1))


def composite(raw: Tensor, trimap: Tensor) -> Tensor:
    """Final alpha: the prediction in the unknown region, ``trimap / 255`` elsewhere.

    Args:
        raw: ``B x 1 x Hp x Wp`` raw alpha (padded or not); cropped to the trimap's size.
        trimap: ``B x 1 x H x W`` uint8.

    Returns:
        float32 ``B x 1 x H x W`` in [0, 1]; known pixels exactly 0.0 or 1.0.
    """
    h, w = trimap.shape[-2:]
    pred = raw[..., :h, :w].to(torch.float32)
    t = trimap.to(pred.device)
    unknown = (t > 0) & (t < 255)
    return torch.where(unknown, pred, t.to(torch.float32) / 255.0)
