"""Shared helpers of the farm tests: a small shot with two keyframe segments, file comparison."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tcvom.io import read_image

FRAMES = list(range(1001, 1009))


@dataclass(frozen=True)
class Shot:
    folder: Path
    plate: str
    keyframes: str
    trimaps: str


def make_shot(example_folder: Path, folder: Path) -> Shot:
    """The 96x64, 8-frame example with a third keyframe at 1004 (segments 1001-1004, 1005-1008)."""
    shutil.copytree(example_folder, folder)
    shutil.copy(folder / "truth" / "trimap.1004.png", folder / "keyframes" / "key.1004.png")
    return Shot(folder, str(folder / "plate" / "plate.####.exr"), str(folder / "keyframes" / "key.####.png"),
                str(folder / "truth" / "trimap.####.png"))


def frame_files(folder: Path) -> dict[str, Path]:
    """The frame files of an output folder (hidden manifests and temporaries, and the review folder, left out)."""
    return {p.name: p for p in sorted(Path(folder).iterdir()) if p.is_file() and not p.name.startswith(".")}


def assert_same_files(a: Path, b: Path, expected: int | None = None) -> None:
    """Both folders hold the same frame files: the same pixels bit for bit, the same pixel type
    and channels (the bytes differ only in the EXR ``DateTime`` attribute OpenImageIO writes)."""
    files_a, files_b = frame_files(a), frame_files(b)
    assert sorted(files_a) == sorted(files_b)
    if expected is not None:
        assert len(files_a) == expected
    for name, path in files_a.items():
        pixels_a, info_a = read_image(path)
        pixels_b, info_b = read_image(files_b[name])
        assert (info_a.channels, info_a.pixel_type) == (info_b.channels, info_b.pixel_type)
        assert np.array_equal(pixels_a, pixels_b), f"{name} differs"


def tcvom_exe() -> str:
    exe = shutil.which("tcvom", path=str(Path(sys.executable).parent))
    assert exe is not None, "the tcvom console script is not installed"
    return exe
