"""A shot run as farm tasks (keyframe segments, frame chunks, any order) gives the same
files, byte for byte, as the shot run as one task."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from farm_helpers import FRAMES, assert_same_files

from tcvom import pipeline
from tcvom.cli import main
from tcvom.io import read_image
from tcvom.review.doubt import load_review

CHUNKS = ("1007-1008", "1001-1003", "1004-1006")  # out of order, as a farm may run them


@pytest.fixture(scope="module")
def single_classical(farm_shot, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("single")
    result = pipeline.run(farm_shot.plate, out, keyframes=farm_shot.keyframes, method="classical", progress="none")
    assert sorted(result.written) == FRAMES
    return out


def test_segments_and_chunks_equal_one_task(farm_shot, single_classical: Path, tmp_path: Path) -> None:
    trimaps = tmp_path / "trimaps"
    for segment in (1, 0):
        done = pipeline.trimaps(farm_shot.plate, farm_shot.keyframes, trimaps, segment=segment,
                                method="classical", progress="none")
        assert sorted(done.written) == ([1001, 1002, 1003, 1004] if segment == 0 else [1005, 1006, 1007, 1008])
    assert_same_files(trimaps, single_classical / "trimaps", expected=8)
    for chunk in CHUNKS:
        pipeline.matte(farm_shot.plate, str(trimaps / "trimap.####.png"), tmp_path / "alpha", frames=chunk,
                       method="classical", progress="none")
    assert_same_files(tmp_path / "alpha", single_classical / "alpha", expected=8)
    # Partial tasks write no review; the farm job's last step (`tcvom review OUT --rebuild`,
    # the OpenJD template's Review step) builds it, the same as the single run's.
    assert not (tmp_path / "review").exists() and not (tmp_path / "alpha" / "review").exists()
    assert main(["review", str(tmp_path), "--rebuild", "--plate", farm_shot.plate, "--progress", "none"]) == 0
    farm, single = load_review(tmp_path), load_review(single_classical)
    assert (tmp_path / "review" / "review.png").is_file()
    assert farm.keyframes == single.keyframes == [1001, 1004, 1008]
    assert farm.frames == single.frames and farm.suggested == single.suggested
    assert farm.extra["sources"]["plate"] == str(Path(farm_shot.plate).absolute())
    assert main(["review", str(tmp_path), "--rebuild", "--progress", "none"]) == 0  # now from review.json
    assert load_review(tmp_path).frames == single.frames


def test_review_of_an_output_without_a_matte(tmp_path: Path, capsys) -> None:
    (tmp_path / "alpha").mkdir()
    assert main(["review", str(tmp_path), "--rebuild", "--progress", "none"]) == 2
    assert "no matte or trimaps made by tcvom" in capsys.readouterr().err


def test_chunk_edges_need_the_real_neighbours(farm_shot, single_classical: Path, tmp_path: Path) -> None:
    """The control: a chunk matted as if it were a whole shot (edges mirrored, the old
    behaviour) differs at its edges, so the test above has teeth (the temporal step uses
    both neighbours)."""
    pipeline.matte(farm_shot.plate, str(single_classical / "trimaps" / "trimap.####.png"), tmp_path,
                   frames="1004-1006", shot_range="1004-1006", method="classical", progress="none")
    differs = []
    for frame in (1004, 1005, 1006):
        mine, _ = read_image(tmp_path / f"alpha.{frame}.exr")
        single, _ = read_image(single_classical / "alpha" / f"alpha.{frame}.exr")
        differs.append(not np.array_equal(mine, single))
    assert differs == [True, False, True]


def test_run_selects_frames_and_makes_their_neighbours_trimaps(farm_shot, single_classical: Path,
                                                               tmp_path: Path) -> None:
    first = pipeline.run(farm_shot.plate, tmp_path, keyframes=farm_shot.keyframes, frames="1006-1008",
                         method="classical", progress="none")
    assert sorted(first.written) == [1006, 1007, 1008]
    assert sorted(int(p.name.split(".")[1]) for p in (tmp_path / "trimaps").glob("trimap.*.png")) == [
        1005, 1006, 1007, 1008]
    second = pipeline.run(farm_shot.plate, tmp_path, keyframes=farm_shot.keyframes, method="classical",
                          chunk=3, progress="none")
    assert sorted(second.written) == [1001, 1002, 1003, 1004, 1005] and sorted(second.skipped) == [1006, 1007, 1008]
    assert_same_files(tmp_path / "alpha", single_classical / "alpha", expected=8)
    assert_same_files(tmp_path / "trimaps", single_classical / "trimaps", expected=8)


@pytest.fixture(scope="module")
def gca_weights(shared_dir: Path, tmp_path_factory) -> Path:
    """Deterministic random GCA+TAM weights (seed 2024, scale 1.3), as in the golden tests."""
    torch = pytest.importorskip("torch")
    sys.path.insert(0, str(shared_dir / "reference"))
    try:
        import det_weights
    finally:
        sys.path.pop(0)
    state = det_weights.gca_state_dict(str(shared_dir / "reference" / "tcvom_gca_tam_state_dict.tsv"),
                                       seed=2024, scale=1.3)
    path = tmp_path_factory.mktemp("weights") / "gca_tam_det.pth"
    torch.save(state, path)
    return path


def test_gca_tam_chunks_equal_one_task(farm_shot, gca_weights: Path, tmp_path: Path) -> None:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        whole = pipeline.matte(farm_shot.plate, farm_shot.trimaps, tmp_path / "single", method="tcvom",
                               weights=gca_weights, progress="none")
        assert whole.method == "tcvom" and sorted(whole.written) == FRAMES
        for chunk in CHUNKS:
            pipeline.matte(farm_shot.plate, farm_shot.trimaps, tmp_path / "chunks", frames=chunk, method="tcvom",
                           weights=gca_weights, progress="none")
    finally:
        torch.set_num_threads(threads)
    assert_same_files(tmp_path / "chunks", tmp_path / "single", expected=8)
    alpha, _ = read_image(tmp_path / "single" / "alpha.1004.exr")
    assert 0.0 < float(alpha.mean()) < 1.0 and len(np.unique(alpha)) > 10  # a real matte, not a constant


def test_frames_outside_the_segment_are_refused(farm_shot, tmp_path: Path, capsys) -> None:
    """Farm QA: `tcvom trimaps --segment 0 --frames 1006-1007` (frames of segment 1) wrote
    nothing and exited 0."""
    out = tmp_path / "trimaps"
    code = main(["trimaps", "--plate", farm_shot.plate, "--keyframes", farm_shot.keyframes, "--out", str(out),
                 "--method", "classical", "--segment", "0", "--frames", "1006-1007", "--progress", "none"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "the frames 1006-1007 lie outside trimap segment 0 (frames 1001-1004)" in err
    assert not out.exists() or not any(out.iterdir())
