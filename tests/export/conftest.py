"""Tiny deterministic networks and one ONNX export of each, shared by the export tests.

The exports go to ``<pytest basetemp>/onnx`` through :func:`tcvom.export.cached_export`,
so tests/engines (which builds the same networks with the same seeds) reuses them.
"""

from __future__ import annotations

import pytest
import torch

from tcvom.export import ExportManifest, cached_export
from tcvom.models import SpectralNorm, build_gca
from tcvom.models.stm import STM, build_stm


def sane_gca(seed: int = 7, temporal: bool = True) -> torch.nn.Module:
    """Random but well-conditioned GCA(+TAM) weights (power-iterated spectral norm, varied BN stats)."""
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
    torch.manual_seed(seed)
    return build_stm()


@pytest.fixture(scope="session")
def gca_model() -> torch.nn.Module:
    torch.set_num_threads(1)
    return sane_gca()


@pytest.fixture(scope="session")
def stm_model() -> STM:
    return seeded_stm()


@pytest.fixture(scope="session")
def gca_export(gca_model, tmp_path_factory) -> ExportManifest:
    return cached_export(gca_model, root=tmp_path_factory.getbasetemp() / "onnx")


@pytest.fixture(scope="session")
def stm_export(stm_model, tmp_path_factory) -> ExportManifest:
    return cached_export(stm_model, root=tmp_path_factory.getbasetemp() / "onnx")


@pytest.fixture(scope="session")
def gca_factory():
    """``sane_gca(seed, temporal)`` for tests that need other weights."""
    return sane_gca
