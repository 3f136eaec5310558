"""DIM+TAM video matting network and the single-image DIM baseline, assembled.

Y. Zhang et al., "Attention-guided Temporally Coherent Video Object Matting", ACM MM 2021
(``vmn_dim``), built on N. Xu, B. Price, S. Cohen and T. Huang, "Deep Image Matting",
CVPR 2017.

Input contract (:meth:`DimMatting.make_inputs`): ``x`` = normalised RGB and
``trimap / 255`` (4 channels), padded to multiples of 32. Output: ``alpha`` ``B x 1``,
clamped to [0, 1] by the network, at the padded size.

The released single-image DIM checkpoint (``DIM_SINGLE_Lim.pth``) is another module with
flat key names (``conv11.weight``, ``dconv6.weight``, ``alpha_pred.weight``; see
``dim_single_state_dict.tsv``): :class:`DimMatting` without the TAM saves and loads that
layout (state-dict hooks map it onto ``encoder.*`` / ``decoder.*``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from tcvom.models.dim_decoder import DimDecoder
from tcvom.models.dim_encoder import DimEncoder
from tcvom.models.split_matting import Port, SplitMatting, scaled_trimap_input, unknown_from_scaled

_DECODER_KEYS = ("dconv", "alpha_pred")


def _flat(key: str) -> str:
    return key.split(".", 1)[1] if key.startswith(("encoder.", "decoder.")) else key


def _nested(key: str) -> str:
    return ("decoder." if key.startswith(_DECODER_KEYS) else "encoder.") + key


class DimMatting(SplitMatting):
    """DIM with (``temporal=True``) or without the TAM (then with the flat key layout)."""

    base = "dim"
    inputs = (Port("x", 4, 1),)
    feature_channels = 256
    skips = (Port("pos3", 256, 8), Port("pos2", 128, 4), Port("pos1", 64, 2))

    def __init__(self, *, temporal: bool = True, window: int = 7) -> None:
        super().__init__(temporal=temporal)
        self.encoder = DimEncoder(4)
        self.decoder = DimDecoder(temporal=temporal, window=window)
        if not temporal:
            self.register_state_dict_post_hook(_flatten_keys)
            self.register_load_state_dict_pre_hook(_nest_keys)

    @classmethod
    def make_inputs(cls, image: Tensor, trimap: Tensor) -> dict[str, Tensor]:
        return {"x": scaled_trimap_input(image, trimap)}

    def _encode(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        (x,) = inputs
        enc = self.encoder(x)
        features = self.decoder.features(enc.conv6, enc.pos5, enc.pos4)
        return features, unknown_from_scaled(x), enc.pos3, enc.pos2, enc.pos1

    def _head(self, x: Tensor, *skips: Tensor) -> tuple[Tensor, ...]:
        return (self.decoder.head(x, *skips),)


def _flatten_keys(module: nn.Module, state: dict[str, Any], prefix: str, local_metadata: Any) -> None:
    """state_dict post-hook of the single DIM: ``encoder.conv11.weight`` -> ``conv11.weight``."""
    for key in [k for k in state if k.startswith(prefix)]:
        state[prefix + _flat(key[len(prefix):])] = state.pop(key)


def _nest_keys(module: nn.Module, state: Mapping[str, Any], prefix: str, *args: Any) -> None:
    """load_state_dict pre-hook of the single DIM: ``conv11.weight`` -> ``encoder.conv11.weight``."""
    assert isinstance(state, dict)
    for key in [k for k in state if k.startswith(prefix)]:
        rest = key[len(prefix):]
        if not rest.startswith(("encoder.", "decoder.")):
            state[prefix + _nested(rest)] = state.pop(key)


def build_dim(*, temporal: bool = True, window: int = 7) -> DimMatting:
    """A DIM+TAM (``temporal=True``) or single-image DIM model in eval mode, untrained."""
    return DimMatting(temporal=temporal, window=window).eval()
