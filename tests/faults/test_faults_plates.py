"""Faults in the plate: missing, corrupt, truncated, zero-byte, mixed-size frames, bad
ranges and colour settings (issue 16, fault suite). Each ends with exit 2 and a message
that names the file, the frame and what was expected, or works where it should."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fault_helpers import HEIGHT, WIDTH, Shot, expect, tcvom, write


def test_plate_pattern_matches_nothing(shot: Shot, capsys) -> None:
    plate = str(shot.folder / "plate" / "nothing.####.exr")
    result = tcvom(capsys, *shot.run_args("--plate", plate))
    expect(result, 2, "nothing.####.exr", "no plate frames match", root=shot.root)
    assert not shot.out.exists()


def test_plate_is_a_folder(shot: Shot, capsys) -> None:
    result = tcvom(capsys, *shot.run_args("--plate", str(shot.folder / "plate")))
    expect(result, 2, "is a folder", "plate.####.exr", root=shot.root)


def test_hole_in_the_plate_names_the_frame_and_the_flag_that_works(shot: Shot, capsys) -> None:
    shot.plate_frame(1003).unlink()
    result = tcvom(capsys, *shot.run_args())
    expect(result, 2, "frame 1003", "missing frame(s) 1003", "--shot-range 1001-1002", root=shot.root)
    # ...and the hint works
    again = shot.run_args("--shot-range", "1001-1002", "--keyframes", f"1001={shot.keyframe(1001)}")
    expect(tcvom(capsys, *again), 0, root=shot.root)


def test_shot_range_beyond_the_files(shot: Shot, capsys) -> None:
    result = tcvom(capsys, *shot.run_args("--shot-range", "1001-1006"))
    expect(result, 2, "plate.1005.exr", "frame 1005", "missing", root=shot.root)


def test_zero_byte_plate_frame(shot: Shot, capsys) -> None:
    shot.plate_frame(1002).write_bytes(b"")
    result = tcvom(capsys, *shot.run_args())
    expect(result, 2, "plate.1002.exr", "frame 1002", "cannot read", root=shot.root)


def test_truncated_plate_frame(shot: Shot, capsys) -> None:
    path = shot.plate_frame(1003)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    result = tcvom(capsys, *shot.run_args())
    expect(result, 2, "plate.1003.exr", "frame 1003", root=shot.root)


def test_text_file_named_exr(shot: Shot, capsys) -> None:
    shot.plate_frame(1004).write_text("not an image\n")
    result = tcvom(capsys, *shot.run_args())
    expect(result, 2, "plate.1004.exr", "frame 1004", "cannot read", root=shot.root)


def test_first_plate_frame_corrupt(shot: Shot, capsys) -> None:
    shot.plate_frame(1001).write_bytes(b"\x76\x2f\x31\x01garbage")
    result = tcvom(capsys, *shot.run_args())
    expect(result, 2, "plate.1001.exr", root=shot.root)


def test_mixed_size_plate(shot: Shot, capsys) -> None:
    write(shot.plate_frame(1003), np.zeros((HEIGHT, WIDTH + 8, 3), np.float32), "half")
    result = tcvom(capsys, *shot.run_args())
    expect(result, 2, "plate.1003.exr", "frame 1003", f"{WIDTH + 8}x{HEIGHT}", f"the shot is {WIDTH}x{HEIGHT}",
           root=shot.root)


def test_single_file_plate_asked_for_frames(shot: Shot, capsys) -> None:
    single = shot.folder / "still.exr"
    single.write_bytes(shot.plate_frame(1001).read_bytes())
    result = tcvom(capsys, *shot.run_args("--plate", str(single), "--shot-range", "1-3"))
    expect(result, 2, "still.exr", "single file", root=shot.root)


def test_garbage_movie(shot: Shot, capsys) -> None:
    movie = shot.folder / "plate.mov"
    movie.write_bytes(b"\x00" * 512)
    result = tcvom(capsys, *shot.run_args("--plate", str(movie)))
    expect(result, 2, "plate.mov", "cannot open the movie", "truncated or damaged", root=shot.root)  # movie QA: a hint


def test_missing_movie(shot: Shot, capsys) -> None:
    result = tcvom(capsys, *shot.run_args("--plate", str(shot.folder / "gone.mp4")))
    expect(result, 2, "gone.mp4", "not found", root=shot.root)


def test_unknown_input_colorspace(shot: Shot, capsys) -> None:
    result = tcvom(capsys, *shot.run_args("--input-colorspace", "NoSuchSpace"))
    expect(result, 2, "NoSuchSpace", "tcvom info --colorspaces", root=shot.root)


def test_missing_ocio_config(shot: Shot, capsys) -> None:
    result = tcvom(capsys, *shot.run_args("--ocio-config", str(shot.root / "missing.ocio")))
    expect(result, 2, "missing.ocio", "not found", root=shot.root)


def test_bad_frame_range_syntax(shot: Shot, capsys) -> None:
    result = tcvom(capsys, *shot.run_args("--frames", "1001-abc"))
    expect(result, 2, "1001-abc", "not a frame range", "1001-1100", root=shot.root)


def test_frames_outside_the_shot(shot: Shot, capsys) -> None:
    result = tcvom(capsys, *shot.run_args("--frames", "1010-1012"))
    expect(result, 2, "1010", root=shot.root)


def test_nan_pixels_are_a_warning_naming_the_frame(shot: Shot, capsys) -> None:
    pixels = np.full((HEIGHT, WIDTH, 3), 0.2, np.float32)
    pixels[2:5, 2:5] = np.nan
    write(shot.plate_frame(1002), pixels, "float")
    result = tcvom(capsys, *shot.run_args())
    expect(result, 0, "plate.1002.exr", "frame 1002", "NaN", root=shot.root)


@pytest.mark.parametrize(("width", "height"), [(2, 2), (11, 11), (1, 40)])
def test_frames_smaller_than_opencv_flow_allows_work(shot: Shot, capsys, width: int, height: int) -> None:
    rng = np.random.default_rng(0)
    for frame in (1, 2, 3):
        write(shot.root / "tiny" / f"p.{frame:04d}.exr", rng.random((height, width, 3), dtype=np.float32), "half")
    key = np.zeros((height, width), np.float32)
    key.flat[::2] = 1.0
    write(shot.root / "tiny" / "k.0001.png", key)
    result = tcvom(capsys, "run", "--plate", str(shot.root / "tiny" / "p.####.exr"), "--keyframes",
                   str(shot.root / "tiny" / "k.####.png"), "--out", str(shot.out), "--method", "classical",
                   "--progress", "none")
    expect(result, 0, root=shot.root)
    assert sorted(p.name for p in (shot.out / "alpha").glob("alpha.*.exr")) == [f"alpha.000{f}.exr" for f in (1, 2, 3)]


def test_json_progress_keeps_warnings_said_on_reader_threads(shot: Shot, capsys) -> None:
    """The classical solve hides pymatting's prints by redirecting stdout; warnings that the
    reader thread said meanwhile went into that redirect and were lost from the JSON stream."""
    frames = sorted(int(p.name.split(".")[1]) for p in Path(shot.plate_frame(1001)).parent.glob("*.exr"))
    for frame in frames:
        pixels = np.full((HEIGHT, WIDTH, 3), 0.2, np.float32)
        pixels[2:5, 2:5] = np.nan
        write(shot.plate_frame(frame), pixels, "float")
    result = tcvom(capsys, *shot.matte_args("--progress", "json"))
    expect(result, 0, root=shot.root)
    events = [json.loads(line) for line in result.out.splitlines()]
    said = sorted(e["message"] for e in events if e["event"] == "warning")
    assert len(said) == len(frames) and all("NaN" in m for m in said), said


def test_a_plate_folder_named_in_latin1_is_named_in_the_error(shot: Shot) -> None:
    """A folder name of non-UTF-8 bytes (an old file server's Latin-1): OpenImageIO takes
    UTF-8 text only, and the run ended in a TypeError traceback, exit 1."""
    import os
    import shutil
    import subprocess
    import sys

    from fault_helpers import Outcome

    folder = shot.root / os.fsdecode(b"lat\xe9")
    shutil.copytree(shot.folder / "plate", folder)
    run = subprocess.run([sys.executable, "-m", "tcvom", "run", "--plate", str(folder / "plate.####.exr"),
                          "--keyframes", shot.keyframes, "--out", str(shot.out), "--method", "classical",
                          "--progress", "none"], capture_output=True, timeout=120)
    err = run.stderr.decode("utf-8", "backslashreplace")
    expect(Outcome(run.returncode, err, ""), 2, "plate.1001.exr", "not valid UTF-8", root=shot.root)
