"""Network modules, one paper component per file (see docs/networks.md).

GCA+TAM (TCVOM, ACM MM 2021) and the single-image GCA baseline (Li and Lu, AAAI 2020).
"""

from tcvom.models.gca_block import GuidedContextualAttention
from tcvom.models.gca_decoder import GcaDecoder
from tcvom.models.gca_encoder import GcaEncoder
from tcvom.models.gca_tam import (
    FrameFeatures,
    GcaMatting,
    GcaPartA,
    GcaPartB,
    GcaSingle,
    GcaTam,
    build_gca,
    composite,
    make_input,
    pad_to_multiple,
    trimap_one_hot,
)
from tcvom.models.spectral_norm import SpectralNorm
from tcvom.models.tam import TemporalAggregation

__all__ = [
    "FrameFeatures",
    "GcaDecoder",
    "GcaEncoder",
    "GcaMatting",
    "GcaPartA",
    "GcaPartB",
    "GcaSingle",
    "GcaTam",
    "GuidedContextualAttention",
    "SpectralNorm",
    "TemporalAggregation",
    "build_gca",
    "composite",
    "make_input",
    "pad_to_multiple",
    "trimap_one_hot",
]
