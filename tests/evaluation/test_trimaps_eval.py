import json
from pathlib import Path

import numpy as np
import pytest

from tcvom.data.vm108 import VideoMatting108
from tcvom.evaluation.mattes import make_synthetic
from tcvom.evaluation.trimaps import evaluate_trimaps, keyframe_positions
from tcvom.io.trimap import one_hot


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bench")
    make_synthetic(root, clips=1, frames=6, width=96, height=64, seed=3, progress="none")
    return root


class Oracle:
    """Yields the ground-truth trimap of each frame: a perfect propagator."""

    def __init__(self, root: Path, width: str) -> None:
        self.clip = next(iter(VideoMatting108(root)))
        self.width = width

    def run_pass(self, frames, keyframes, pass_):
        for frame in pass_.frames:
            yield frame, one_hot(self.clip.trimap(frame, self.width), dtype=np.uint8, on=255)


class Frozen:
    """Yields the keyframe's trimap everywhere: ignores the motion."""

    def run_pass(self, frames, keyframes, pass_):
        for frame in pass_.frames:
            yield frame, one_hot(keyframes[pass_.keyframe], dtype=np.uint8, on=255)


def test_keyframe_positions() -> None:
    assert keyframe_positions(10, 1) == [0]
    assert keyframe_positions(10, 2) == [0, 9]
    assert keyframe_positions(10, 3) == [0, 4, 9] or keyframe_positions(10, 3) == [0, 5, 9]


def test_perfect_propagation_scores_one_and_frozen_scores_less(bench: Path, tmp_path: Path) -> None:
    perfect = evaluate_trimaps(bench, tmp_path / "a", widths=["narrow"], keyframes=[1, 2], propagator=Oracle(bench, "narrow"),
                               progress="none")
    assert perfect.summary["narrow"]["1"]["mean"] == pytest.approx(1.0)
    frozen = evaluate_trimaps(bench, tmp_path / "b", widths=["narrow"], keyframes=[1], propagator=Frozen(),
                              progress="none")
    ious = frozen.summary["narrow"]["1"]
    assert 0.0 < ious["unknown"] < 1.0 and ious["mean"] < 1.0
    saved = json.loads((tmp_path / "b" / "trimap_summary.json").read_text())
    assert saved["summary"]["narrow"]["1"]["mean"] == pytest.approx(ious["mean"])
    assert (tmp_path / "b" / "trimap_frames.csv").read_text().startswith("width,clip,keyframes")


def test_classical_method_runs(bench: Path, tmp_path: Path) -> None:
    report = evaluate_trimaps(bench, tmp_path, method="classical", widths=["medium"], keyframes=[2], progress="none")
    ious = report.summary["medium"]["2"]
    assert all(0.0 <= ious[k] <= 1.0 for k in ious) and np.isfinite(ious["mean"])


def test_a_clip_whose_every_frame_is_a_keyframe_is_not_a_perfect_score(bench: Path, tmp_path: Path, caplog) -> None:
    """Metrics QA: with as many keyframes as frames nothing was scored, and the clip read
    mIoU 1.0 (into the mean of a dataset of short and long clips)."""
    report = evaluate_trimaps(bench, tmp_path, widths=["narrow"], keyframes=[6, 2], propagator=Frozen(),
                              progress="none")
    assert "6" not in report.summary["narrow"] and report.summary["narrow"]["2"]["mean"] < 1
    assert "every one of its 6 frames is a keyframe" in caplog.text
    rows = (tmp_path / "trimap_frames.csv").read_text().splitlines()
    assert any(r.startswith("narrow,") and ",6," in r and r.endswith(",,,,") for r in rows), rows
