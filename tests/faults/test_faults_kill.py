"""kill -9 of a whole `tcvom run` process group mid-run, then a resume (issue 16 items 8-9):
the resume ends with exit 0, leaves no temporary, does not touch the frames finished before
the kill and gives the files of an uninterrupted run."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fault_helpers import Shot, expect, snapshot, tcvom, temporaries

from tcvom import pipeline
from tcvom.farm.records import FrameRecords
from tcvom.io import read_image

OUTPUTS = {"trimaps": "trimap.####.png", "alpha": "alpha.####.exr"}


@pytest.fixture(scope="module")
def long_shot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example at 48x32, frames 1001-1012 (long enough to be killed mid-stage)."""
    from tcvom.data.example import write_example

    folder = tmp_path_factory.mktemp("long") / "shot"
    write_example(folder, width=48, height=32, frames=12)
    return folder


@pytest.fixture(scope="module")
def uninterrupted(long_shot: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("whole") / "out"
    pipeline.run(str(long_shot / "plate" / "plate.####.exr"), out,
                 keyframes=str(long_shot / "keyframes" / "key.####.png"), method="classical", progress="none")
    return out


def finished(out: Path) -> dict[str, tuple[str, int]]:
    """The frames recorded as finished (file still the one recorded): name -> (SHA-256, mtime_ns)."""
    done = {}
    for output, pattern in OUTPUTS.items():
        records = FrameRecords(out / output / pattern)
        for frame in records.frames():
            path = records.recorded_file(frame)
            if path is not None:
                done[f"{output}/{path.name}"] = (hashlib.sha256(path.read_bytes()).hexdigest(),
                                                 path.stat().st_mtime_ns)
    return done


def frame_pixels(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: read_image(p)[0] for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")}


@pytest.mark.parametrize("stage", ["trimaps", "matte"])
def test_kill_9_of_the_process_group_then_resume(long_shot: Path, uninterrupted: Path, tmp_path: Path,
                                                   stage: str, capsys: pytest.CaptureFixture[str]) -> None:
    shot = tmp_path / "shot"
    shutil.copytree(long_shot, shot)
    out = tmp_path / "out"
    exe = shutil.which("tcvom", path=str(Path(sys.executable).parent))
    assert exe is not None
    cmd = [exe, "run", "--plate", str(shot / "plate" / "plate.####.exr"),
           "--keyframes", str(shot / "keyframes" / "key.####.png"), "--out", str(out), "--method", "classical",
           "--progress", "json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True)  # its own process group, killed whole
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            event = json.loads(line)
            if event["event"] == "progress" and event["job"] == stage and "frame" in event:
                os.killpg(proc.pid, signal.SIGKILL)  # mid-stage: the next frame is being computed or written
                break
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it was killed"
    kept = finished(out)
    assert kept, "nothing was finished before the kill"
    assert len([k for k in kept if k.startswith("alpha/")]) < 12  # killed before the end

    resumed = tcvom(capsys, *cmd[1:])  # the resume, in this process
    expect(resumed, 0, root=tmp_path)
    result = json.loads(resumed.out.splitlines()[-1])
    assert result["event"] == "result"
    assert result["reused"]["trimaps"]["count"] + result["reused"]["alpha"]["count"] == len(kept)
    now = finished(out)
    assert {name: now.get(name) for name in kept} == kept  # bytes and modification time untouched
    for output in OUTPUTS:
        mine, whole = frame_pixels(out / output), frame_pixels(uninterrupted / output)
        assert sorted(mine) == sorted(whole) and len(mine) == 12
        for name, pixels in mine.items():
            assert np.array_equal(pixels, whole[name]), f"{output}/{name} differs from an uninterrupted run"
    assert (out / "review" / "review.csv").read_bytes() == (uninterrupted / "review" / "review.csv").read_bytes()


def test_leftovers_of_a_killed_run_in_record_and_review_folders_are_removed(shot: Shot, capsys) -> None:
    """A run killed while writing a frame's record or the review leaves a temporary there
    too; the next run removes it (its writer is dead) and keeps every finished file."""
    expect(tcvom(capsys, *shot.run_args()), 0, root=shot.root)
    kept = snapshot(shot.out)
    finals = [shot.out / "alpha" / ".alpha.tcvom" / "frames" / "1002.json",
              shot.out / "trimaps" / ".trimap.tcvom" / "frames" / "1003.json",
              shot.out / "review" / "review.json"]
    code = ("import sys; from pathlib import Path; from tcvom.io.atomic import temporary_name; "
            "[temporary_name(Path(p)).write_bytes(b'{') for p in sys.argv[1:]]")
    subprocess.run([sys.executable, "-c", code, *map(str, finals)], check=True)  # exited: dead
    assert len(temporaries(shot.out)) == 3
    expect(tcvom(capsys, *shot.run_args()), 0, root=shot.root, kept=kept, kept_in=shot.out)
