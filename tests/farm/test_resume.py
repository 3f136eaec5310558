"""Resumable, race-free tasks: killed tasks, incomplete files, two tasks on the same frames,
and tasks with other settings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from farm_helpers import FRAMES, assert_same_files, frame_files, tcvom_exe

from tcvom import pipeline
from tcvom.cli import main
from tcvom.farm.locks import FrameClaims
from tcvom.farm.outputs import is_complete
from tcvom.farm.records import records_folder
from tcvom.io.sequence import parse_frame_range


@pytest.fixture(scope="module")
def single(farm_shot, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("single")
    pipeline.matte(farm_shot.plate, farm_shot.trimaps, out, method="classical", progress="none")
    return out


def matte_args(shot, out: Path, *extra: str) -> list[str]:
    return ["matte", "--plate", shot.plate, "--trimaps", shot.trimaps, "--out", str(out), "--method", "classical",
            *extra]


def test_a_killed_task_leaves_no_partial_frame_and_resumes(farm_shot, single: Path, tmp_path: Path) -> None:
    out = tmp_path / "alpha"
    proc = subprocess.Popen([tcvom_exe(), *matte_args(farm_shot, out, "--progress", "json")],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if json.loads(line)["event"] == "progress":
            proc.kill()  # mid-job: the next frame is being computed or written
            break
    proc.wait(timeout=60)
    assert proc.returncode != 0
    done = frame_files(out)
    assert 1 <= len(done) < 8
    assert all(is_complete(p, width=96, height=64, channels=1) for p in done.values())
    result = pipeline.matte(farm_shot.plate, farm_shot.trimaps, out, method="classical", progress="none")
    assert sorted(result.skipped) == sorted(int(n.split(".")[1]) for n in done)
    assert sorted(result.written + result.skipped) == FRAMES
    assert_same_files(out, single, expected=8)


def test_an_incomplete_frame_is_made_again(farm_shot, single: Path, tmp_path: Path) -> None:
    out = tmp_path / "alpha"
    pipeline.matte(farm_shot.plate, farm_shot.trimaps, out, method="classical", progress="none")
    broken = out / "alpha.1005.exr"
    broken.write_bytes(broken.read_bytes()[:-200])  # as an interrupted copy would leave it
    result = pipeline.matte(farm_shot.plate, farm_shot.trimaps, out, method="classical", progress="none")
    assert result.written == [1005] and result.redone == [1005] and len(result.skipped) == 7
    assert_same_files(out, single, expected=8)


def test_two_tasks_writing_the_same_frames(farm_shot, single: Path, tmp_path: Path) -> None:
    out = tmp_path / "alpha"
    cmd = [tcvom_exe(), *matte_args(farm_shot, out, "--progress", "json")]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
        results.append(json.loads(stdout.splitlines()[-1]))
    assert all(r["written"] + r["skipped"] == 8 for r in results)
    assert_same_files(out, single, expected=8)
    assert not [p for p in out.iterdir() if "tcvom-tmp" in p.name]


def test_two_runs_started_together_compute_each_frame_once(farm_shot, single: Path, tmp_path: Path) -> None:
    """Issue 16 item 9: the second run skips the frames the first holds, waits for them at the
    end and reuses them; together they compute the shot once and say so."""
    out = tmp_path / "alpha"
    cmd = [tcvom_exe(), *matte_args(farm_shot, out, "--progress", "json")]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    computed: list[list[int]] = []
    messages: list[str] = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
        events = [json.loads(line) for line in stdout.splitlines()]
        messages += [e["message"] for e in events if e["event"] == "message"]
        last = events[-1]
        assert last["event"] == "result" and last["written"] + last["skipped"] == 8
        frames = last["computed"]["alpha"]["frames"]
        computed.append(parse_frame_range(frames) if frames else [])
    assert sorted(computed[0] + computed[1]) == FRAMES  # every frame once, none twice
    if computed[0] and computed[1]:  # they overlapped in time: the later one said it waited
        assert any("being computed by another run" in m for m in messages), messages
    assert_same_files(out, single, expected=8)
    assert not [p for p in out.iterdir() if "tcvom-tmp" in p.name]


def test_a_frame_claimed_by_a_dead_run_is_computed(farm_shot, single: Path, tmp_path: Path) -> None:
    """A claim dies with its process: a frame whose lock file a killed run left is computed."""
    out = tmp_path / "alpha"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from tcvom.farm.locks import FrameClaims; "
        "c = FrameClaims(sys.argv[1]); assert c.claim(1003); print('held', flush=True); time.sleep(60)"),
        str(records_folder(out / "alpha.####.exr"))], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    assert not FrameClaims(records_folder(out / "alpha.####.exr")).claim(1003)  # held by a live process
    holder.kill()
    holder.wait(timeout=30)
    result = pipeline.matte(farm_shot.plate, farm_shot.trimaps, out, method="classical", progress="none")
    assert sorted(result.written) == FRAMES
    assert_same_files(out, single, expected=8)


def run_cli(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, str]:
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def test_a_task_with_other_settings_is_refused(farm_shot, tmp_path: Path, capsys) -> None:
    out = tmp_path / "alpha"
    assert run_cli(capsys, matte_args(farm_shot, out, "--frames", "1001-1004", "--progress", "none"))[0] == 0
    code, err = run_cli(capsys, matte_args(farm_shot, out, "--frames", "1005-1008", "--trimap-channel", "R",
                                           "--progress", "none"))
    assert code == 2 and "other settings" in err and "trimap_channel" in err and ".alpha.tcvom.json" in err
    assert len(frame_files(out)) == 4  # nothing written
    # --overwrite of part of the shot would mix settings too
    code, err = run_cli(capsys, matte_args(farm_shot, out, "--frames", "1005-1008", "--trimap-channel", "R",
                                           "--overwrite", "--progress", "none"))
    assert code == 2
    # the same settings carry on; a whole-shot --overwrite starts the sequence again
    assert run_cli(capsys, matte_args(farm_shot, out, "--frames", "1005-1008", "--progress", "none"))[0] == 0
    assert len(frame_files(out)) == 8
    code, err = run_cli(capsys, matte_args(farm_shot, out, "--trimap-channel", "R", "--overwrite",
                                           "--progress", "none"))
    assert code == 0, err


def test_task_selection_errors(farm_shot, tmp_path: Path, capsys) -> None:
    code, err = run_cli(capsys, ["trimaps", "--plate", farm_shot.plate, "--keyframes", farm_shot.keyframes,
                                 "--out", tmp_path / "t", "--segment", "2", "--method", "classical",
                                 "--progress", "none"])
    assert code == 2 and "segment 2" in err and "0-1" in err
    code, err = run_cli(capsys, matte_args(farm_shot, tmp_path / "a", "--frames", "1007-1012", "--progress", "none"))
    assert code == 2 and "1009-1012" in err and "--shot-range" in err
    # a chunk needs its neighbours' trimaps: a shot cut short by --shot-range does not
    partial = tmp_path / "tri"
    partial.mkdir()
    for frame in (1001, 1002, 1003):
        (partial / f"trimap.{frame}.png").write_bytes(Path(farm_shot.trimaps.replace("####", str(frame))).read_bytes())
    args = ["matte", "--plate", farm_shot.plate, "--trimaps", str(partial / "trimap.####.png"), "--out",
            tmp_path / "b", "--frames", "1002-1003", "--method", "classical", "--progress", "none"]
    code, err = run_cli(capsys, args)
    assert code == 2 and "1004" in err and "neighbour" in err
    assert run_cli(capsys, [*args, "--shot-range", "1001-1003"])[0] == 0


def test_a_file_in_place_of_a_record_folder_is_named(farm_shot, single: Path, tmp_path: Path, capsys) -> None:
    """Crash QA: a file where the records' folder (or its frames/ or locks/) is gave "[Errno
    17] File exists" with exit code 1 in the stage's JSON event, or blamed a record file
    that does not exist; the output folders themselves were named ("is a file, not a
    folder"). So are these now, exit code 2 in every event, the stage's the last."""
    import shutil

    for inside in ("", "frames", "locks"):
        out = tmp_path / f"out_{inside or 'records'}"
        shutil.copytree(single, out)
        folder = records_folder(out / "alpha.####.exr")
        blocked = folder / inside if inside else folder
        shutil.rmtree(blocked)
        blocked.write_text("x")
        code = main([*matte_args(farm_shot, out, "--overwrite"), "--progress", "json"])
        captured = capsys.readouterr()
        events = [json.loads(line) for line in captured.out.splitlines() if line.startswith("{")]
        errors = [e for e in events if e["event"] == "error"]
        assert code == 2, captured.err
        assert len(errors) == 1 and errors[0]["exit_code"] == 2, errors
        assert f"{blocked} is a file, not a folder" in errors[0]["message"], errors
        assert "move that file away" in errors[0]["hint"] and "Traceback" not in captured.err
