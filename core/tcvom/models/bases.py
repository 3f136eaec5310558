"""The matting bases tcvom runs, and the network kinds of their checkpoints.

Each base comes as the TCVOM video network (``<base>_tam``, with the TAM) and as the
single-image baseline (``<base>``), the eight files of the official release:

=========  ==============================  ==========================================
base       video network                   single-image baseline
=========  ==============================  ==========================================
``gca``    GCA+TAM (:mod:`.gca_tam`)       GCA (Li and Lu, AAAI 2020)
``fba``    FBA+TAM (:mod:`.fba_tam`)       FBA (Forte and Pitié, 2020): also F and B
``dim``    DIM+TAM (:mod:`.dim_tam`)       DIM (Xu et al., CVPR 2017), flat key layout
``index``  Index+TAM (:mod:`.index_tam`)   IndexNet (Lu et al., ICCV 2019)
=========  ==============================  ==========================================
"""

from __future__ import annotations

from torch import nn

from tcvom.errors import InputError

BASES: tuple[str, ...] = ("gca", "fba", "dim", "index")
#: Every matting network kind: the video networks first, then the baselines.
MATTING_KINDS: tuple[str, ...] = tuple(f"{b}_tam" for b in BASES) + BASES
_LABEL = {"gca": "GCA", "fba": "FBA", "dim": "DIM", "index": "Index"}


def base_of(kind: str) -> str:
    """``"fba_tam"`` / ``"fba"`` -> ``"fba"``."""
    base = kind.removesuffix("_tam")
    if base not in BASES:
        raise InputError(f"{kind!r} is not a matting network; use one of {', '.join(MATTING_KINDS)}")
    return base


def is_temporal(kind: str) -> bool:
    """Whether a matting kind is a video network (with the TAM)."""
    return kind.endswith("_tam")


def kind_name(kind: str) -> str:
    """``"fba_tam"`` -> ``"FBA+TAM (TCVOM video matting)"``, ``"dim"`` -> ``"the single-image DIM matting baseline"``."""
    label = _LABEL[base_of(kind)]
    return f"{label}+TAM (TCVOM video matting)" if is_temporal(kind) else f"the single-image {label} matting baseline"


def check_base(base: str) -> str:
    """``base`` when it is one of :data:`BASES` (InputError otherwise)."""
    if base not in BASES:
        raise InputError(f"unknown matting base {base!r}; use one of {', '.join(BASES)}")
    return base


def build_matting(kind: str, *, window: int = 7) -> nn.Module:
    """An untrained matting network of ``kind`` (one of :data:`MATTING_KINDS`) in eval mode."""
    base, temporal = base_of(kind), is_temporal(kind)
    if base == "gca":
        from tcvom.models.gca_tam import build_gca

        return build_gca(temporal=temporal, window=window)
    if base == "fba":
        from tcvom.models.fba_tam import build_fba

        return build_fba(temporal=temporal, window=window)
    if base == "dim":
        from tcvom.models.dim_tam import build_dim

        return build_dim(temporal=temporal, window=window)
    from tcvom.models.index_tam import build_index

    return build_index(temporal=temporal, window=window)
