"""Small on-disk training data: a synthetic VideoMatting108-layout set and image-matting folders."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def video_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two synthetic clips of 6 frames at 64x48, listed as the train split."""
    from tcvom.data.synthetic import ShotConfig, write_benchmark

    root = tmp_path_factory.mktemp("video")
    write_benchmark(root, clips=2, config=ShotConfig(width=64, height=48, frames=6), flow=False, composites=False)
    (root / "train_videos.txt").write_text((root / "val_videos.txt").read_text())
    return root


@pytest.fixture(scope="session")
def image_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """fg/, alpha/ and bg/ folders made of synthetic frames (3 foregrounds, 2 backgrounds)."""
    from tcvom.data.synthetic import ShotConfig, SyntheticShot

    root = tmp_path_factory.mktemp("images")
    dirs = {k: root / k for k in ("fg", "alpha", "bg")}
    for d in dirs.values():
        d.mkdir()
    shot = SyntheticShot(ShotConfig(width=64, height=48, frames=5, seed=3))
    for i in range(3):
        fr = shot.render(i)
        cv2.imwrite(str(dirs["fg"] / f"item{i}.png"), np.round(fr.foreground[:, :, ::-1] * 255).astype(np.uint8))
        cv2.imwrite(str(dirs["alpha"] / f"item{i}.png"), np.round(fr.alpha * 255).astype(np.uint8))
    for i in range(2):
        cv2.imwrite(str(dirs["bg"] / f"bg{i}.jpg"), np.round(shot.render(3 + i).background[:, :, ::-1] * 255).astype(np.uint8))
    return dirs
