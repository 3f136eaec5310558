"""Shared fixtures: the reference folder beside the repo, small generated shots."""

from __future__ import annotations

from pathlib import Path

import pytest

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
    from tcvom.example import write_example

    return write_example(tmp_path_factory.mktemp("example"), width=96, height=64, frames=8)

