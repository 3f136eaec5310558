"""Fixtures of the fault suite: a pristine tiny shot, copied for each fault."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fault_helpers import Shot


@pytest.fixture(scope="session")
def pristine_shot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled example at 32x24, frames 1001-1004, keyframes 1001 and 1004."""
    from tcvom.data.example import write_example

    folder = tmp_path_factory.mktemp("pristine")
    write_example(folder / "shot", width=32, height=24, frames=4)
    return folder / "shot"


@pytest.fixture
def shot(pristine_shot: Path, tmp_path: Path) -> Shot:
    """A fresh copy of the tiny shot in this test's folder (faults damage it freely)."""
    shutil.copytree(pristine_shot, tmp_path / "shot")
    return Shot(tmp_path)
