"""Concurrent runs into one output (issue 16 item 9): the trimap stage shares whole keyframe
segments, the matte stage frames, through the claims of :class:`tcvom.farm.locks.FrameClaims`;
the review is written once the work is done, whole; ``--overwrite`` runs share what they
recompute together."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from farm_helpers import FRAMES, assert_same_files, tcvom_exe

from tcvom import pipeline
from tcvom.farm.records import records_folder
from tcvom.io.images import read_image, write_image
from tcvom.io.sequence import parse_frame_range

SEGMENT_0 = [1001, 1002, 1003, 1004]  # keyframes 1001, 1004, 1008: segments 1001-1004 and 1005-1008
SEGMENT_1 = [1005, 1006, 1007, 1008]

HOLDER = """
import shutil, sys
from pathlib import Path
from tcvom.farm.locks import FrameClaims
from tcvom.farm.records import FrameRecords
from tcvom.io.atomic import write_bytes
folder, unit, action, *rest = sys.argv[1:]
claims = FrameClaims(folder)
assert claims.claim(int(unit) if unit.isdigit() else unit)
print("held", flush=True)
sys.stdin.readline()  # the test says when this run has finished its unit
if action == "copy":  # finish a trimap segment: the files and records another run made
    src, dst, *frames = rest
    for frame in frames:
        shutil.copy2(Path(src) / f"trimap.{frame}.png", Path(dst) / f"trimap.{frame}.png")
        shutil.copy2(Path(src) / ".trimap.tcvom" / "frames" / f"{frame}.json",
                     Path(dst) / ".trimap.tcvom" / "frames" / f"{frame}.json")
elif action == "rewrite":  # recompute an alpha as an --overwrite run does: a new file, a new record
    pattern, frame = rest[0], int(rest[1])
    records = FrameRecords(pattern)
    old = records.get(frame)
    path = Path(pattern).parent / old["file"]
    write_bytes(path, path.read_bytes())
    records.write(frame, path, old["key"], old["inputs"])
"""


def trimap_args(shot, out: Path, *extra: str) -> list[str]:
    return [tcvom_exe(), "trimaps", "--plate", shot.plate, "--keyframes", shot.keyframes, "--out", str(out),
            "--method", "classical", "--progress", "json", *extra]


def hold(folder: Path, unit: str, *action: str) -> subprocess.Popen[str]:
    """A process that holds the claim ``unit`` of the records ``folder`` until told to finish."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), unit, *action],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def events_until_waiting(proc: subprocess.Popen[str]) -> tuple[list[dict[str, Any]], str]:
    """The JSON events of ``proc`` up to its notice that it waits for another run."""
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        event = json.loads(line)
        seen.append(event)
        if event["event"] == "message" and "being computed by another run" in event["message"]:
            return seen, event["message"]
    raise AssertionError(f"the run never said it waits for another run: {seen}")


def computed(result: dict[str, Any], output: str) -> list[int]:
    frames = result["computed"][output]["frames"]
    return parse_frame_range(frames) if frames else []


def finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    return json.loads(stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def single(farm_shot, tmp_path_factory) -> Path:
    """One uninterrupted `run` of the shot (trimaps/, alpha/, review/)."""
    out = tmp_path_factory.mktemp("single") / "out"
    pipeline.run(farm_shot.plate, out, keyframes=farm_shot.keyframes, method="classical", progress="none")
    return out


@pytest.mark.parametrize("holder", ["finishes", "dies"])
def test_a_segment_another_run_holds_is_left_for_the_end(farm_shot, single: Path, tmp_path: Path,
                                                          holder: str) -> None:
    """The trimap stage skips the keyframe segment a live run propagates, says so, waits for
    it and reuses its trimaps; when that run dies instead (its lock dropped by the OS), it
    propagates the segment itself."""
    out = tmp_path / "trimaps"
    action = ["copy", str(single / "trimaps"), str(out), *map(str, SEGMENT_0)] if holder == "finishes" else ["none"]
    other = hold(records_folder(out / "trimap.####.png"), "segment.1001-1004", *action)
    proc = subprocess.Popen(trimap_args(farm_shot, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        before, notice = events_until_waiting(proc)
        assert "1 keyframe segment(s)" in notice and "1001-1004" in notice
        assert sorted(e["frame"] for e in before if e["event"] == "progress") == SEGMENT_1  # the free one first
        assert other.stdin is not None
        if holder == "finishes":
            other.communicate("go\n", timeout=60)
            assert other.returncode == 0
        else:
            other.kill()
            other.wait(timeout=30)
        result = finish(proc)
    finally:
        proc.kill()
        other.kill()
    assert computed(result, "trimaps") == (SEGMENT_1 if holder == "finishes" else FRAMES)
    assert_same_files(out, single / "trimaps", expected=8)


def test_two_runs_started_together_compute_each_segment_and_frame_once(farm_shot, single: Path,
                                                                        tmp_path: Path) -> None:
    """Two `tcvom run` into one output: every keyframe segment's trimaps and every alpha are
    computed by one of them; the files are those of one run, the review is whole."""
    out = tmp_path / "out"
    cmd = [tcvom_exe(), "run", "--plate", farm_shot.plate, "--keyframes", farm_shot.keyframes, "--out", str(out),
           "--method", "classical", "--progress", "json"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [finish(p) for p in procs]
    for output in ("trimaps", "alpha"):
        first, second = (computed(r, output) for r in results)
        assert not set(first) & set(second), (output, first, second)  # nothing twice
        assert sorted(first + second) == FRAMES, (output, first, second)
    for output in ("trimaps", "alpha"):
        assert_same_files(out / output, single / output, expected=8)
    for name in ("review.csv", "review.png"):  # both runs wrote it, whole, from the same files
        assert (out / "review" / name).read_bytes() == (single / "review" / name).read_bytes()
    mine, theirs = (json.loads((o / "review" / "review.json").read_text()) for o in (out, single))
    mine.pop("sources")
    theirs.pop("sources")  # where the run wrote (its paths)
    assert mine == theirs
    assert not [p for p in out.rglob("*") if "tcvom-tmp" in p.name]


def test_overwrite_runs_share_what_they_recompute(farm_shot, tmp_path: Path) -> None:
    """`--overwrite` recomputes the frames that were there when it started, not one that a
    concurrent --overwrite run recomputed meanwhile."""
    out = tmp_path / "alpha"
    pipeline.matte(farm_shot.plate, farm_shot.trimaps, out, method="classical", progress="none")
    pattern = str(out / "alpha.####.exr")
    other = hold(records_folder(pattern), "1003", "rewrite", pattern, "1003")
    cmd = [tcvom_exe(), "matte", "--plate", farm_shot.plate, "--trimaps", farm_shot.trimaps, "--out", str(out),
           "--method", "classical", "--progress", "json", "--overwrite"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, notice = events_until_waiting(proc)
        assert "(1003)" in notice
        other.communicate("go\n", timeout=60)
        assert other.returncode == 0
        result = finish(proc)
    finally:
        proc.kill()
        other.kill()
    assert computed(result, "alpha") == [f for f in FRAMES if f != 1003]
    assert result["reused"]["alpha"]["frames"] == "1003"


def test_an_overwrite_run_alone_recomputes_every_frame(farm_shot, tmp_path: Path) -> None:
    out = tmp_path / "alpha"
    pipeline.matte(farm_shot.plate, farm_shot.trimaps, out, method="classical", progress="none")
    result = pipeline.matte(farm_shot.plate, farm_shot.trimaps, out, method="classical", progress="none",
                            overwrite=True)
    assert sorted(result.written) == FRAMES and not result.skipped


def refused_while_live(live: subprocess.Popen[str], holder: subprocess.Popen[str], capsys, args: list[str],
                       files: Callable[[], Iterable[Path]], *named: str) -> None:
    """While ``live`` (a run waiting for the unit ``holder`` holds) writes, the command
    ``args`` is refused (exit 2) naming that run and ``named``, and leaves ``files`` as they
    were; then ``live`` finishes every alpha."""
    from tcvom.cli import main

    try:
        events_until_waiting(live)
        before = {p.name: p.read_bytes() for p in files()}
        assert main(args) == 2
        err = capsys.readouterr().err
        assert "another tcvom run" in err and f"pid {live.pid}" in err and all(n in err for n in named), err
        assert {p.name: p.read_bytes() for p in files()} == before
        holder.kill()
        holder.wait(timeout=30)
        assert computed(finish(live), "alpha") == FRAMES
    finally:
        live.kill()
        holder.kill()


def test_a_run_with_other_settings_is_refused_while_a_run_writes(farm_shot, tmp_path: Path, capsys) -> None:
    """Two runs into one output with another --alpha-format replaced each other's manifest
    and frames, and both said they were done. The second is refused while the first is
    live, and goes once it has ended."""
    from tcvom.cli import main

    out = tmp_path / "alpha"
    pattern = str(out / "alpha.####.exr")
    other = hold(records_folder(pattern), "1003", "none")  # keeps the first run live, waiting for 1003
    flags = ["matte", "--plate", farm_shot.plate, "--trimaps", farm_shot.trimaps, "--out", str(out), "--method",
             "classical"]
    first = subprocess.Popen([tcvom_exe(), *flags, "--progress", "json"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    refused_while_live(first, other, capsys, [*flags, "--alpha-format", "exr32", "--progress", "none"],
                       lambda: out.glob("alpha.*.exr"), "'exr' recorded, 'exr32' now")
    assert main([*flags, "--alpha-format", "exr32", "--progress", "none"]) == 0  # the first has ended
    assert not list((records_folder(pattern) / "writers").iterdir())


def test_a_matte_of_other_trimaps_is_refused_while_a_matte_writes(farm_shot, tmp_path: Path, capsys) -> None:
    """Farm QA: two `tcvom matte` jobs with other trimaps into one output at once both ended
    done (exit 0) over a mix of the two mattes. The second is refused while the first is
    live."""

    out = tmp_path / "alpha"
    pattern = str(out / "alpha.####.exr")
    other_trimaps = tmp_path / "other"
    shutil.copytree(Path(farm_shot.trimaps).parent, other_trimaps)
    other = hold(records_folder(pattern), "1003", "none")  # keeps the first run live, waiting for 1003
    flags = ["matte", "--plate", farm_shot.plate, "--out", str(out), "--method", "classical"]
    first = subprocess.Popen([tcvom_exe(), *flags, "--trimaps", farm_shot.trimaps, "--progress", "json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = [*flags, "--trimaps", str(other_trimaps / Path(farm_shot.trimaps).name), "--progress", "none"]
    refused_while_live(first, other, capsys, second, lambda: out.glob("alpha.*.exr"), "from other trimaps")


def test_the_matte_tasks_of_one_job_agree_on_their_trimaps_across_mounts(tmp_path: Path) -> None:
    """Code review: the trimaps a farm job's Matte tasks read (OUT/trimaps, beside --out
    OUT/alpha) were known by their absolute path, so two tasks on hosts that mount the shot
    elsewhere refused each other as "from other trimaps"."""
    from tcvom.pipeline.jobs import _trimaps_place

    (tmp_path / "shot" / "out").mkdir(parents=True)
    (tmp_path / "mount").symlink_to(tmp_path / "shot")
    place = {root: _trimaps_place(f"{root}/out/trimaps/trimap.####.png", f"{root}/out/alpha")
             for root in (tmp_path / "shot", tmp_path / "mount")}
    assert place[tmp_path / "shot"] == place[tmp_path / "mount"]
    assert place[tmp_path / "shot"] == _trimaps_place(f"{tmp_path}/shot/out/trimaps/trimap.%04d.png",
                                                      f"{tmp_path}/shot/out/alpha")  # one spelling
    assert place[tmp_path / "shot"] != _trimaps_place(f"{tmp_path}/shot/other/trimap.####.png",
                                                      f"{tmp_path}/shot/out/alpha")


def test_a_run_holds_its_trimaps_while_its_matte_stage_reads_them(farm_shot, tmp_path: Path, capsys) -> None:
    """Between a run's trimap and matte stages the trimaps were not held: a trimap stage
    with other settings could rewrite them while the run's matte read them. It is refused
    until the run has ended."""
    from tcvom.cli import main

    out = tmp_path / "out"
    other = hold(records_folder(out / "alpha" / "alpha.####.exr"), "1003", "none")  # the run waits in its matte
    run = subprocess.Popen([tcvom_exe(), "run", "--plate", farm_shot.plate, "--keyframes", farm_shot.keyframes,
                            "--out", str(out), "--method", "classical", "--progress", "json"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stage = ["trimaps", "--plate", farm_shot.plate, "--keyframes", farm_shot.keyframes, "--out",
             str(out / "trimaps"), "--method", "classical", "--resize-trimaps", "--progress", "none"]
    refused_while_live(run, other, capsys, stage, lambda: (out / "trimaps").glob("trimap.*.png"), "resize_trimaps")
    assert main(stage) == 0  # the run has ended


def test_a_run_from_other_keyframes_is_refused_while_a_run_writes(farm_shot, tmp_path: Path, capsys) -> None:
    """Robustness QA: two runs with other keyframes into one --out at once cut other
    segments, took other segment locks and wrote the same trimap files in turn: both ended
    done (exit 0) over trimaps and alphas made from a mix of both. The second is refused
    while the first is live (runs with the same keyframes still share the work, above)."""
    out = tmp_path / "out"
    keys = tmp_path / "keys"
    shutil.copytree(Path(farm_shot.keyframes).parent, keys)
    painted = sorted(keys.glob("*.png"))[0]
    pixels, _ = read_image(painted)
    pixels[:6, :6] = 128 / 255  # a small edit: another keyframe
    write_image(painted, pixels, pixel_type="uint8", channels=("Y",))
    other = hold(records_folder(out / "alpha" / "alpha.####.exr"), "1003", "none")  # the run waits in its matte
    run = subprocess.Popen([tcvom_exe(), "run", "--plate", farm_shot.plate, "--keyframes", farm_shot.keyframes,
                            "--out", str(out), "--method", "classical", "--progress", "json"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = ["run", "--plate", farm_shot.plate, "--keyframes", str(keys / Path(farm_shot.keyframes).name), "--out",
              str(out), "--method", "classical", "--progress", "none"]
    refused_while_live(run, other, capsys, second, lambda: (out / "trimaps").glob("trimap.*.png"),
                       "from other keyframes")


@pytest.mark.slow  # starting Ray takes several seconds
def test_a_ray_run_holds_its_trimaps_while_its_tasks_run(farm_shot, tmp_path: Path, capsys) -> None:
    """Farm QA: `run --executor ray` did not hold its trimaps while its matte tasks ran, so a
    trimap stage from other keyframes rewrote them meanwhile, and both ended done over alphas
    made from the other's trimaps. It is refused, as against a local run."""
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'ray>=2.9')")
    import time

    from tcvom.cli import main

    out = tmp_path / "out"
    keys = tmp_path / "keys"
    shutil.copytree(Path(farm_shot.keyframes).parent, keys)
    painted = sorted(keys.glob("*.png"))[0]
    pixels, _ = read_image(painted)
    pixels[:6, :6] = 128 / 255
    write_image(painted, pixels, pixel_type="uint8", channels=("Y",))
    alpha = out / "alpha" / "alpha.####.exr"
    other = hold(records_folder(alpha), "1003", "none")  # the run's matte tasks wait for it
    run = subprocess.Popen([tcvom_exe(), "run", "--plate", farm_shot.plate, "--keyframes", farm_shot.keyframes,
                            "--out", str(out), "--method", "classical", "--executor", "ray", "--chunk", "4",
                            "--progress", "none"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not list((records_folder(alpha) / "writers").glob("*.lock")):  # a matte task writes
            assert run.poll() is None and time.monotonic() < deadline, run.communicate()
            time.sleep(0.5)
        stage = ["trimaps", "--plate", farm_shot.plate, "--keyframes", str(keys / Path(farm_shot.keyframes).name),
                 "--out", str(out / "trimaps"), "--method", "classical", "--progress", "none"]
        assert main(stage) == 2
        assert "is writing these frames from other keyframes" in capsys.readouterr().err
        other.kill()
        other.wait(timeout=30)
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
    finally:
        run.kill()
        other.kill()
