"""Shared fixtures: the reference folder beside the repo, small generated shots, tiny
deterministic networks and one ONNX export of each (shared by tests/export and tests/engines)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import torch

    from tcvom.export import ExportManifest
    from tcvom.models.stm import STM

# No module-level imports of tcvom or torch: tests/blender runs under this file too, in a
# virtual environment that has bpy and neither of them.

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``shared/`` beside the repository (reference notes, manifests, golden data)."""
    if not (SHARED / "reference").is_dir():
        pytest.skip(f"the reference folder {SHARED / 'reference'} is not beside the repository")
    return SHARED


@pytest.fixture(scope="session")
def small_example(tmp_path_factory: pytest.TempPathFactory):
    """The bundled example at a small size: 96x64, 8 frames (1001-1008), keyframes 1001 and 1008."""
    from tcvom.data.example import write_example

    return write_example(tmp_path_factory.mktemp("example"), width=96, height=64, frames=8)



def sane_gca(seed: int = 7, temporal: bool = True) -> torch.nn.Module:
    """Random but well-conditioned GCA(+TAM) weights (power-iterated spectral norm, varied BN stats)."""
    import torch

    from tcvom.models import SpectralNorm, build_gca

    torch.manual_seed(seed)
    model = build_gca(temporal=temporal)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, SpectralNorm):
                for _ in range(5):
                    module.power_iteration()
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.75, 1.25)
    return model.eval()


def seeded_stm(seed: int = 5) -> STM:
    import torch

    from tcvom.models.stm import build_stm

    torch.manual_seed(seed)
    return build_stm()


@pytest.fixture(scope="session")
def gca_model() -> torch.nn.Module:
    import torch

    torch.set_num_threads(1)
    return sane_gca()


@pytest.fixture(scope="session")
def stm_model() -> STM:
    return seeded_stm()


@pytest.fixture(scope="session")
def gca_export(gca_model, tmp_path_factory) -> ExportManifest:
    from tcvom.export import cached_export

    return cached_export(gca_model, root=tmp_path_factory.getbasetemp() / "onnx")


@pytest.fixture(scope="session")
def stm_export(stm_model, tmp_path_factory) -> ExportManifest:
    from tcvom.export import cached_export

    return cached_export(stm_model, root=tmp_path_factory.getbasetemp() / "onnx")


@pytest.fixture(scope="session")
def gca_factory():
    """``sane_gca(seed=7, temporal=True)`` for tests that need other weights."""
    return sane_gca
