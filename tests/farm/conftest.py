"""Fixtures of the farm tests."""

from __future__ import annotations

import pytest
from farm_helpers import Shot, make_shot


@pytest.fixture(scope="session")
def farm_shot(small_example, tmp_path_factory: pytest.TempPathFactory) -> Shot:
    """The small example (96x64, frames 1001-1008) with keyframes 1001, 1004 and 1008."""
    return make_shot(small_example.folder, tmp_path_factory.mktemp("farm") / "shot")
