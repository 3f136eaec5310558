"""Index+TAM video matting network and the single-image IndexNet baseline, assembled.

Y. Zhang et al., "Attention-guided Temporally Coherent Video Object Matting", ACM MM 2021
(``vmn_index``), built on H. Lu, Y. Dai, C. Shen and S. Xu, "Indices Matter: Learning to
Index for Deep Image Matting", ICCV 2019.

Input contract (:meth:`IndexMatting.make_inputs`): ``x`` = normalised RGB and
``trimap / 255`` (4 channels), padded to multiples of 32. Output: ``alpha`` ``B x 1`` at
the padded size, **not clamped** (the reference does not clamp IndexNet; with untrained
weights it leaves [0, 1] far behind): writers clamp it, comparisons happen before.
"""

from __future__ import annotations

from torch import Tensor

from tcvom.models.index_decoder import IndexDecoder
from tcvom.models.index_encoder import IndexEncoder
from tcvom.models.split_matting import Port, SplitMatting, scaled_trimap_input, unknown_from_scaled


class IndexMatting(SplitMatting):
    """IndexNet with (``temporal=True``) or without the TAM."""

    base = "index"
    inputs = (Port("x", 4, 1),)
    feature_channels = 32
    skips = (Port("l3", 32, 4), Port("idx3", 32, 4), Port("l2", 24, 2), Port("idx2", 24, 2),
             Port("l1", 16, 2), Port("l0", 32, 1), Port("idx0", 32, 1))

    def __init__(self, *, temporal: bool = True, window: int = 7) -> None:
        super().__init__(temporal=temporal)
        self.encoder = IndexEncoder(4)
        self.decoder = IndexDecoder(temporal=temporal, window=window)

    @classmethod
    def make_inputs(cls, image: Tensor, trimap: Tensor) -> dict[str, Tensor]:
        return {"x": scaled_trimap_input(image, trimap)}

    def _encode(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        (x,) = inputs
        e = self.encoder(x)
        features = self.decoder.features(e.l, e.l6, e.idx6, e.l5, e.l4, e.idx4)
        return features, unknown_from_scaled(x), e.l3, e.idx3, e.l2, e.idx2, e.l1, e.l0, e.idx0

    def _head(self, x: Tensor, *skips: Tensor) -> tuple[Tensor, ...]:
        return (self.decoder.head(x, *skips),)


def build_index(*, temporal: bool = True, window: int = 7) -> IndexMatting:
    """An Index+TAM (``temporal=True``) or single-image IndexNet model in eval mode, untrained."""
    return IndexMatting(temporal=temporal, window=window).eval()
