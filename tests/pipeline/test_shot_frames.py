"""Shots on twos and with a gap: every stage (trimap propagation, classical and GCA+TAM
matting, farm chunks) steps through the shot's frame list, the one neighbour rule of
:mod:`tcvom.matting.window`. So a shot's trimaps and mattes are those of the same images
numbered on ones."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tcvom import pipeline
from tcvom.io import read_image

CASES = {
    # name: (shot, how the shot is given: "range" = --shot-range, "pattern" = the plate pattern)
    "twos": ([1001, 1003, 1005, 1007], "range"),
    "twos-pattern": ([1001, 1003, 1005, 1007], "pattern"),
    "gap": ([1001, 1002, 1003, 1006, 1007, 1008], "range"),
}


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory, stm_model, gca_model) -> tuple[Path, Path]:
    """Tiny deterministic STM and GCA+TAM weight files (the shared seeded networks)."""
    import torch

    folder = tmp_path_factory.mktemp("weights")
    torch.save(stm_model.state_dict(), folder / "stm.pth")
    torch.save(gca_model.state_dict(), folder / "gca_tam.pth")
    return folder / "stm.pth", folder / "gca_tam.pth"


def _renumbered(example, shot: list[int], folder: Path) -> tuple[str, list[str]]:
    """The shot's plate frames copied as a plate on ones (1, 2, ...) with keyframes on its
    first and last frame; returns (plate pattern, keyframe pairs)."""
    (folder / "plate").mkdir(parents=True)
    for i, frame in enumerate(shot, start=1):
        shutil.copy(Path(example.plate.replace("####", str(frame))), folder / "plate" / f"plate.{i:04d}.exr")
    keys = [f"{i}={example.trimaps.replace('####', str(f))}" for i, f in ((1, shot[0]), (len(shot), shot[-1]))]
    return str(folder / "plate" / "plate.####.exr"), keys


def _frames(folder: Path, stem: str) -> dict[int, np.ndarray]:
    return {int(p.name.split(".")[1]): read_image(p)[0] for p in sorted(folder.glob(f"{stem}.*.*"))}


@pytest.mark.parametrize(("method", "case"), [
    ("classical", "twos"), ("classical", "gap"),
    pytest.param("tcvom", "twos-pattern", marks=pytest.mark.slow), pytest.param("tcvom", "gap", marks=pytest.mark.slow),
])
def test_shot_equals_the_same_frames_numbered_on_ones(small_example, weights, tmp_path: Path, method: str,
                                                      case: str) -> None:
    import torch

    shot, given = CASES[case]
    stm, gca = weights
    options = dict(method=method, progress="none")
    if method == "tcvom":
        options.update(weights=stm, matting_weights=gca)
    keys = [f"{f}={small_example.trimaps.replace('####', str(f))}" for f in (shot[0], shot[-1])]
    if given == "range":
        plate, shot_range = small_example.plate, ",".join(str(f) for f in shot)
    else:
        plate, shot_range = small_example.plate.replace("####", f"{shot[0]}-{shot[-1]}x2#"), None
    ones_plate, ones_keys = _renumbered(small_example, shot, tmp_path / "ones")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = pipeline.run(plate, tmp_path / "shot", keyframes=keys, shot_range=shot_range, **options)
        pipeline.run(ones_plate, tmp_path / "ones_out", keyframes=ones_keys, **options)
    finally:
        torch.set_num_threads(threads)
    assert result.method == method and sorted(result.written) == shot
    for stage, stem in (("trimaps", "trimap"), ("alpha", "alpha")):
        got, expected = _frames(tmp_path / "shot" / stage, stem), _frames(tmp_path / "ones_out" / stage, stem)
        assert sorted(got) == shot and sorted(expected) == list(range(1, len(shot) + 1))
        for i, frame in enumerate(shot, start=1):
            assert np.array_equal(got[frame], expected[i]), f"{stage} of frame {frame} differs from frame {i} on ones"
    middle, _ = read_image(tmp_path / "shot" / "alpha" / f"alpha.{shot[len(shot) // 2]}.exr")
    assert 0.0 < float(middle.mean()) < 1.0 and len(np.unique(middle)) > 10  # a real matte
