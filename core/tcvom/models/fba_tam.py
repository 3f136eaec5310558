"""FBA+TAM video matting network and the single-image FBA baseline, assembled.

Y. Zhang et al., "Attention-guided Temporally Coherent Video Object Matting", ACM MM 2021
(``vmn_fba``), built on M. Forte and F. Pitié, "F, B, Alpha Matting", arXiv 2003.07711, 2020.
FBA predicts the foreground and background colours as well as alpha.

Input contract (:meth:`FbaMatting.make_inputs`): ``x`` = normalised RGB, six distance
maps of the trimap's background and foreground ("clicks", :func:`fba_click_maps`), the
two binary maps (11 channels), and ``image``, the RGB in [0, 1]; both padded to multiples
of 32 (the trimap before it is encoded). Outputs: ``alpha`` ``B x 1``, ``foreground`` and
``background`` ``B x 3``, in [0, 1] at the padded size, before the known region is filled
in (:func:`tcvom.models.gca_tam.composite` for alpha; the reference puts the input image
into F and B there).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from tcvom.models.fba_decoder import FbaDecoder
from tcvom.models.fba_encoder import FbaEncoder
from tcvom.models.split_matting import Port, SplitMatting, normalise_rgb, pad_frame

#: FBA's distance scale L and the three Gaussian widths (as fractions of L).
CLICK_SCALE = 320
CLICK_SIGMAS = (0.02, 0.08, 0.16)


def fba_click_maps(mask: Tensor) -> Tensor:
    """FBA's three Gaussian maps of the distance to a binary region.

    Args:
        mask: ``B x 1 x H x W`` in {0, 1} (the trimap's background or foreground).

    Returns:
        float32 ``B x 3 x H x W``: ``exp(-d² / (2 (s L)²))`` with d the Euclidean distance
        to the region (OpenCV's exact L2 transform), for s in :data:`CLICK_SIGMAS`; all
        zero where the frame has no such region.
    """
    import cv2

    out = torch.zeros(mask.shape[0], len(CLICK_SIGMAS), *mask.shape[-2:], dtype=torch.float32)
    planes = mask.detach().to("cpu", torch.float32).numpy()
    for i in range(mask.shape[0]):
        plane = planes[i, 0]
        if not plane.any():
            continue
        d = cv2.distanceTransform(((1 - plane) * 255).astype(np.uint8), cv2.DIST_L2, 0)
        # The exact transform's squares are whole numbers; OpenCV's float32 square root of
        # them differs by an ulp with the alignment of its buffer, which FBA amplified into
        # alphas that changed from run to run. The correctly rounded root, every time:
        d = torch.from_numpy(np.sqrt(np.rint(d.astype(np.float64) ** 2)).astype(np.float32))
        d2 = -(d**2)
        for k, s in enumerate(CLICK_SIGMAS):
            out[i, k] = torch.exp(d2 / (2 * (s * CLICK_SCALE) ** 2))
    return out.to(mask.device)


class FbaMatting(SplitMatting):
    """FBA with (``temporal=True``) or without the TAM."""

    base = "fba"
    inputs = (Port("x", 11, 1), Port("image", 3, 1))
    feature_channels = 256
    skips = (Port("conv1", 64, 2), Port("layer1", 256, 4), Port("guide", 8, 1))
    outputs = (Port("alpha", 1, 1), Port("foreground", 3, 1), Port("background", 3, 1))

    def __init__(self, *, temporal: bool = True, window: int = 7) -> None:
        super().__init__(temporal=temporal)
        self.encoder = FbaEncoder(11)
        self.decoder = FbaDecoder(temporal=temporal, window=window)

    @classmethod
    def make_inputs(cls, image: Tensor, trimap: Tensor) -> dict[str, Tensor]:
        rgb, tri = pad_frame(image, trimap)
        bg = (tri == 0).to(torch.float32)
        fg = (tri == 255).to(torch.float32)
        x = torch.cat([normalise_rgb(rgb), fba_click_maps(bg), fba_click_maps(fg), bg, fg], dim=1)
        return {"x": x, "image": rgb}

    def _encode(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        x, image = inputs
        enc = self.encoder(x)
        features = self.decoder.features(enc.layer4)
        known = x[:, 9:11, ::8, ::8].sum(dim=1, keepdim=True)
        unknown = (known < 0.5).to(x.dtype)
        guide = torch.cat([x[:, :3], image, x[:, 9:11]], dim=1)
        return features, unknown, enc.conv1, enc.layer1, guide

    def _head(self, x: Tensor, *skips: Tensor) -> tuple[Tensor, ...]:
        conv1, layer1, guide = skips
        out = self.decoder.head(x, conv1, layer1, guide)
        return out[:, :1], out[:, 1:4], out[:, 4:7]


def build_fba(*, temporal: bool = True, window: int = 7) -> FbaMatting:
    """An FBA+TAM (``temporal=True``) or single-image FBA model in eval mode, untrained."""
    return FbaMatting(temporal=temporal, window=window).eval()
