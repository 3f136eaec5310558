"""Shared fixtures: the reference folder beside the repo, small generated shots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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


def write_sequence(folder: Path, name: str, frames: range, shape: tuple[int, int], seed: int = 0) -> list[Path]:
    """Random sRGB PNG frames ``folder/name.####.png`` (8-bit), returned in frame order."""
    from tcvom.io import write_image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for frame in frames:
        path = folder / f"{name}.{frame:04d}.png"
        write_image(path, rng.random((*shape, 3), dtype=np.float32), pixel_type="uint8")
        paths.append(path)
    return paths
