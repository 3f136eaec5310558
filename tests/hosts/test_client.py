"""tcvom.hosts.client: the stdlib-only logic the Blender and Nuke adapters share."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from tcvom.hosts import client as hostclient
from tcvom.hosts.client import HostError, Job, RunSpec

REPO = Path(__file__).resolve().parents[2]


def _tcvom() -> str:
    exe = os.environ.get("TCVOM_EXECUTABLE") or shutil.which("tcvom") or str(Path(sys.executable).with_name("tcvom"))
    if not os.path.isfile(exe):
        pytest.skip("no tcvom executable (set TCVOM_EXECUTABLE)")
    return exe


def _script(path: Path, body: str) -> Path:
    """A small executable Python script (stands in for a worker that misbehaves)."""
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_build_run_args_maps_every_setting_to_its_flag() -> None:
    spec = RunSpec(
        plate="/p/plate.####.exr", out="/o", keyframes={1020: "/k/b.png", 1001: "/k/a.png"}, method="tcvom",
        weights="/w/stm.pth", matting_weights="/w/gca.pth", device="cuda", input_colorspace="ACEScg",
        frames="1001-1040", overwrite=True,
    )
    args = hostclient.build_run_args(["/bin/tcvom"], spec)
    assert args[:4] == ["/bin/tcvom", "run", "--plate", "/p/plate.####.exr"]
    k = args.index("--keyframes")
    assert args[k + 1 : k + 3] == ["1001=/k/a.png", "1020=/k/b.png"]  # sorted by frame
    pairs = {args[i]: args[i + 1] for i in range(len(args) - 1) if args[i].startswith("--") and args[i] != "--keyframes"}
    assert pairs["--out"] == "/o" and pairs["--method"] == "tcvom" and pairs["--device"] == "cuda"
    assert pairs["--weights"] == "/w/stm.pth" and pairs["--matting-weights"] == "/w/gca.pth"
    assert pairs["--input-colorspace"] == "ACEScg" and "--frames=1001-1040" in args
    assert "--overwrite" in args and args[-2:] == ["--progress", "json"]
    plain = hostclient.build_run_args(["py", "-m", "tcvom"], RunSpec("/p.mov", "/o", {1: "/k.png"}))
    assert "--weights" not in plain and "--overwrite" not in plain and not any("--frames" in a for a in plain)
    # frames and keyframes before zero reach tcvom's parser as values ("--frames -3-4" was a usage error)
    from tcvom.cli import build_parser

    before_zero = RunSpec("/p.####.exr", "/o", {-3: "/k/a.png", 0: "/k/b.png"}, frames="-3-4")
    parsed = build_parser().parse_args(hostclient.build_run_args(["tcvom"], before_zero)[1:])
    assert parsed.frames == "-3-4" and parsed.keyframes == ["-3=/k/a.png", "0=/k/b.png"]


def test_the_artists_base_reaches_tcvom_run() -> None:
    import argparse

    from tcvom.cli import cmd_run

    spec = RunSpec("/p/plate.####.exr", "/o", {1001: "/k/a.png"}, method="tcvom", base="fba")
    args = hostclient.build_run_args(["/bin/tcvom"], spec)
    assert args[args.index("--base") + 1] == "fba"
    parser = argparse.ArgumentParser()
    cmd_run.add_arguments(parser)
    assert parser.parse_args(args[2:]).base == "fba"  # the real command line takes it
    classical = hostclient.build_run_args(["/bin/tcvom"], RunSpec("/p.mov", "/o", {1: "/k.png"}, method="classical",
                                                                   base="fba"))
    assert "--base" not in classical


def test_parse_event_ignores_what_is_not_an_event() -> None:
    assert hostclient.parse_event('{"event": "progress", "done": 3}\n') == {"event": "progress", "done": 3}
    for line in ("", "hello", "{not json", '{"done": 3}', "[1, 2]", '{"event": 5}'):
        assert hostclient.parse_event(line) is None


def test_sequence_pattern_and_files(tmp_path: Path) -> None:
    assert hostclient.sequence_pattern("/a/b2/plate_v3.1001.exr") == "/a/b2/plate_v3.####.exr"
    assert hostclient.sequence_pattern("/a/shot.00012.png") == "/a/shot.#####.png"
    with pytest.raises(HostError, match="no frame number"):
        hostclient.sequence_pattern("/a/plate.exr")
    # Blender QA: "sh#1_plate.1001.exr" became "sh#1_plate.####.exr", whose first '#' was then
    # taken for the padding (a ValueError traceback in the add-on's panel and pull)
    for marked, mark in (("sh#1_plate", "#"), ("sh@1_plate", "@"), ("sh$F1_plate", "$F"), ("p%04d_x", "%04d")):
        with pytest.raises(HostError, match=re.escape(f"the file name holds '{mark}'")):
            hostclient.sequence_pattern(f"/a/{marked}.1001.exr")
    assert hostclient.sequence_pattern("/a/sh%1_plate.1001.exr") == "/a/sh%1_plate.####.exr"  # no printf mark
    for f in (1003, 1001, 1002):
        (tmp_path / f"plate.{f}.exr").write_bytes(b"x")
    (tmp_path / "plate.1001.exr.tcvom-tmp-1").write_bytes(b"x")
    (tmp_path / "other.1001.exr").write_bytes(b"x")
    files = hostclient.sequence_files(str(tmp_path / "plate.####.exr"))
    assert [f for f, _ in files] == [1001, 1002, 1003]


def test_frames_below_zero_are_named_as_tcvom_names_them(tmp_path: Path) -> None:
    """Host QA: the sign counts in the padding (frame -3 at #### is plate.-003.exr): the
    client found no file of a frame below zero (a finished run's matte "missing, run the
    matte again"), and turned plate.-003.exr into plate.-###.exr, which tcvom reads as
    frames 1-3 of another sequence."""
    assert hostclient.sequence_pattern("/a/plate.-003.exr") == "/a/plate.####.exr"
    assert hostclient.sequence_pattern("/a/plate_-03.exr") == "/a/plate_###.exr"
    assert hostclient.sequence_pattern("/a/plate-1001.exr") == "/a/plate-####.exr"  # a dash between: no sign
    exe = _tcvom()
    subprocess.run([exe, "example", "--out", str(tmp_path / "ex"), "--width", "48", "--height", "32",
                    "--frames", "4", "--progress", "none"], check=True, capture_output=True)
    plate = tmp_path / "plate"
    plate.mkdir()
    for f in range(1001, 1005):  # frames -2 .. 1
        shutil.copy(tmp_path / "ex" / "plate" / f"plate.{f}.exr", plate / f"plate.{f - 1003:04d}.exr")
    (plate / "plate.-0002.exr").write_bytes(b"not this sequence's: five characters at ####")
    pattern = hostclient.sequence_pattern(str(plate / "plate.-002.exr"))
    assert [f for f, _ in hostclient.sequence_files(pattern)] == [-2, -1, 0, 1]
    keys = {-2: str(tmp_path / "ex" / "keyframes" / "key.1001.png"), 1: str(tmp_path / "ex" / "keyframes" / "key.1004.png")}
    spec = RunSpec(pattern, str(tmp_path / "out"), keys, method="classical")
    job = Job(hostclient.build_run_args([exe], spec), out=spec.out).start().wait()
    assert job.state == "done", job.error
    alphas = hostclient.collect_alpha(spec.out, [-2, -1, 0, 1])
    assert [Path(p).name for p in alphas.values()] == ["alpha.-002.exr", "alpha.-001.exr", "alpha.0000.exr",
                                                        "alpha.0001.exr"]


def test_find_executable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = tmp_path / "env"
    (env / "bin").mkdir(parents=True)
    exe = _script(env / "bin" / "tcvom", "")
    assert hostclient.find_executable(str(exe)) == [str(exe)]
    assert hostclient.find_executable(str(env)) == [str(exe)]  # an environment folder
    python = _script(tmp_path / "python3", "")
    assert hostclient.find_executable(str(python)) == [str(python), "-m", "tcvom"]
    monkeypatch.setenv(hostclient.ENV_EXECUTABLE, str(exe))
    assert hostclient.find_executable() == [str(exe)]
    monkeypatch.delenv(hostclient.ENV_EXECUTABLE)
    monkeypatch.setenv("PATH", str(env / "bin"))
    assert hostclient.find_executable() == [str(exe)]
    with pytest.raises(HostError, match=r"not found.*/nowhere/tcvom") as info:
        hostclient.find_executable("/nowhere/tcvom")
    assert "preferences" in info.value.fix
    assert hostclient.find_executable(f" {exe}  ") == [str(exe)]  # pasted with spaces around it (Blender QA)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(HostError, match="tcvom on PATH"):
        hostclient.find_executable()


def test_run_spec_check_names_the_missing_file(tmp_path: Path) -> None:
    with pytest.raises(HostError, match="no keyframe"):
        RunSpec("p", "o").check()
    with pytest.raises(HostError, match="frame 7 is missing"):
        RunSpec("p", "o", {7: str(tmp_path / "gone.png")}).check()
    key = tmp_path / "k.png"
    key.write_bytes(b"x")
    with pytest.raises(HostError, match="matting weights file does not exist") as info:
        RunSpec("p", "o", {7: str(key)}, matting_weights=str(tmp_path / "w.pth")).check()
    assert info.value.exit_code == hostclient.EXIT_MISSING
    # the classical method needs no weights: a stale path in the hidden weight fields is left out
    stale = RunSpec("p", "o", {7: str(key)}, method="classical", weights=str(tmp_path / "gone" / "stm.pth"),
                    matting_weights=str(tmp_path / "w.pth"))
    stale.check()
    args = hostclient.build_run_args(["/bin/tcvom"], stale)
    assert "--weights" not in args and "--matting-weights" not in args


def test_collect_alpha_refuses_an_incomplete_matte(tmp_path: Path) -> None:
    (tmp_path / "alpha").mkdir()
    (tmp_path / "alpha" / "alpha.1001.exr").write_bytes(b"x")
    assert list(hostclient.collect_alpha(str(tmp_path))) == [1001]
    with pytest.raises(HostError, match="frame 1002 is missing"):
        hostclient.collect_alpha(str(tmp_path), [1001, 1002])
    (tmp_path / "alpha" / "alpha.1002.exr").write_bytes(b"x")  # of an earlier, longer run
    assert list(hostclient.collect_alpha(str(tmp_path), [1001])) == [1001]


def test_job_runs_tcvom_and_reads_its_progress(tmp_path: Path) -> None:
    exe = _tcvom()
    subprocess.run([exe, "example", "--out", str(tmp_path / "ex"), "--width", "48", "--height", "32",
                    "--frames", "3", "--progress", "none"], check=True, capture_output=True)
    keys = {f: str(tmp_path / "ex" / "keyframes" / f"key.{f}.png") for f in (1001, 1003)}
    spec = RunSpec(str(tmp_path / "ex" / "plate" / "plate.####.exr"), str(tmp_path / "out"), keys, method="classical")
    job = Job(hostclient.build_run_args([exe], spec), out=spec.out).start()
    seen = []
    while job.running:
        seen.extend(e["event"] for e in job.poll())
        time.sleep(0.05)
    assert job.state == "done", job.error
    assert job.stages_seen == ["trimaps", "matte"] and job.fraction == 1.0
    assert "progress" in seen and "result" in seen
    assert job.result["written"] == 3
    assert sorted(hostclient.collect_alpha(spec.out, [1001, 1002, 1003])) == [1001, 1002, 1003]
    assert not job.version_skew and not job.warnings  # the add-on and the tcvom it runs are one version


def test_the_client_is_the_version_of_its_tcvom() -> None:
    import tcvom

    assert tcvom.__version__ == hostclient.VERSION  # vendored into the add-ons, which compare it with tcvom's


def test_an_addon_of_another_version_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An artist upgrades tcvom and keeps the add-on (or the reverse): the add-on says which
    versions meet, and an option the other does not know is not called the artist's to change."""
    exe = _tcvom()
    subprocess.run([exe, "example", "--out", str(tmp_path / "ex"), "--width", "48", "--height", "32",
                    "--frames", "2", "--progress", "none"], check=True, capture_output=True)
    keys = {f: str(tmp_path / "ex" / "keyframes" / f"key.{f}.png") for f in (1001, 1002)}
    spec = RunSpec(str(tmp_path / "ex" / "plate" / "plate.####.exr"), str(tmp_path / "out"), keys, method="classical")
    monkeypatch.setattr(hostclient, "VERSION", "0.0.1")
    job = Job(hostclient.build_run_args([exe], spec), out=spec.out).start().wait(timeout=120)
    assert job.state == "done", job.error
    import tcvom

    assert job.warnings == [job.version_skew]  # once, although every stage starts
    assert f"from tcvom 0.0.1 and runs tcvom {tcvom.__version__}" in job.version_skew
    newer = Job([*hostclient.build_run_args([exe], spec), "--despill-strength", "2"]).start().wait(timeout=120)
    assert newer.state == "failed" and newer.error is not None and newer.returncode == hostclient.EXIT_BAD_INPUT
    assert "--despill-strength" in newer.error.message
    assert "different versions" in newer.error.fix and "this add-on is from tcvom 0.0.1" in newer.error.fix
    # a value the artist typed is still the artist's to change
    typo = Job(hostclient.build_run_args([exe], replace(spec, frames="10x1"))).start().wait(timeout=120)
    assert typo.error is not None and "different versions" not in typo.error.fix


def test_job_reports_tcvom_errors_with_a_fix(tmp_path: Path) -> None:
    exe = _tcvom()
    spec = RunSpec(str(tmp_path / "missing.####.exr"), str(tmp_path / "out"), {1: str(tmp_path / "k.png")})
    job = Job(hostclient.build_run_args([exe], spec)).start().wait(timeout=120)
    assert job.state == "failed" and job.returncode == hostclient.EXIT_BAD_INPUT
    assert job.error is not None and job.error.exit_code == hostclient.EXIT_BAD_INPUT
    assert "missing" in job.error.message and job.error.fix


def test_tcvoms_own_hint_is_the_fix_unless_it_names_a_flag(tmp_path: Path) -> None:
    """A host showed tcvom's hint inside the message and a generic fix under it; a hint
    naming a command-line flag (which a host has no way to pass) sent the artist nowhere."""
    exe = _tcvom()
    key = tmp_path / "k.png"
    key.write_bytes(b"not a png")
    example = tmp_path / "ex"
    subprocess.run([exe, "example", "--out", str(example), "--width", "32", "--height", "32", "--frames", "3",
                    "--progress", "none"], check=True, capture_output=True)
    spec = RunSpec(str(example / "plate" / "plate.####.exr"), str(tmp_path / "out"), {1001: str(key)})
    job = Job(hostclient.build_run_args([exe], spec)).start().wait(timeout=120)
    assert job.error is not None and job.error.exit_code == hostclient.EXIT_BAD_INPUT
    assert job.error.fix == "is the file complete?" and not job.error.message.endswith("(is the file complete?)")
    (example / "plate" / "plate.1002.exr").unlink()  # a hole: the hint names --shot-range
    job = Job(hostclient.build_run_args([exe], replace(spec, keyframes={1001: str(example / "keyframes" /
                                                                                  "key.1001.png")}))).start()
    job.wait(timeout=120)
    assert job.error is not None and "missing frame(s) 1002" in job.error.message
    # the advice without its flag (QA: "--shot-range" in the message, then a generic fix)
    assert job.error.fix == "render or copy them again" and "--" not in job.error.message


def test_an_error_naming_no_input_does_not_point_at_one(tmp_path: Path) -> None:
    """Nuke QA: "device cuda" without a GPU (tcvom's hint: use --device cpu, a flag) came
    with "fix the input named above", where none is named. The error event now carries the
    path it names, and the generic fix says "input named above" only when there is one."""
    exe = _tcvom()
    example = tmp_path / "ex"
    subprocess.run([exe, "example", "--out", str(example), "--width", "32", "--height", "32", "--frames", "3",
                    "--progress", "none"], check=True, capture_output=True)
    spec = RunSpec(str(example / "plate" / "plate.####.exr"), str(tmp_path / "out"),
                   {1001: str(example / "keyframes" / "key.1001.png")}, device="cuda:99")
    job = Job(hostclient.build_run_args([exe], spec)).start().wait(timeout=120)
    assert job.error is not None and job.error.exit_code == hostclient.EXIT_BAD_INPUT, job.error
    assert "cuda" in job.error.message and "named above" not in job.error.fix and "setting" in job.error.fix
    missing = replace(spec, device="cpu", keyframes={1001: str(tmp_path / "gone.png")})
    job = Job(hostclient.build_run_args([exe], missing)).start().wait(timeout=120)
    assert job.error is not None and "gone.png" in job.error.message and "named above" in job.error.fix


def test_job_failure_without_json_uses_stderr(tmp_path: Path) -> None:
    worker = _script(tmp_path / "w", "import sys\nprint('plain text')\n"
                     "sys.stderr.write('tcvom run: unexpected failure: boom: it broke\\n')\nsys.exit(1)\n")
    job = Job([str(worker)]).start().wait(timeout=30)
    assert job.state == "failed" and job.returncode == 1
    assert "boom: it broke" in job.error.message and "bug" in job.error.fix
    # Nuke QA: the traceback was thrown away, and the artist has no terminal to report from
    out = tmp_path / "out"
    out.mkdir()
    job = Job([str(worker)], out=str(out)).start().wait(timeout=30)
    log = out / "tcvom_error.log"
    assert f"report it with {log}" in job.error.fix, job.error.fix
    assert "boom: it broke" in log.read_text() and not [p for p in out.iterdir() if p != log]
    ok_but_silent = _script(tmp_path / "s", "pass\n")
    job = Job([str(ok_but_silent)]).start().wait(timeout=30)
    assert job.state == "failed", "exit 0 without a result event is not success"


def test_a_program_that_is_not_tcvom_is_the_settings_fault(tmp_path: Path) -> None:
    """The host's tcvom setting names another program (/bin/true, another tool): the artist
    was told it was a bug in tcvom, or that the input was wrong."""
    other = _script(tmp_path / "other_tool", "import sys\nsys.stderr.write('hello from some other tool\\n')\n"
                    "sys.exit(2)\n")
    for program, said in ((str(other), "hello from some other tool"), (shutil.which("true") or "/bin/true", "")):
        job = Job([program, "run"]).start().wait(timeout=30)
        assert job.state == "failed" and job.error is not None
        assert f"the program {program} did not answer as tcvom does" in job.error.message and said in job.error.message
        assert "tcvom setting" in job.error.fix and "bug" not in job.error.fix
    crashed = _script(tmp_path / "crashed", "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    job = Job([str(crashed), "run"]).start().wait(timeout=30)  # tcvom crashing while it starts: a bug
    assert job.error is not None and "did not answer" not in job.error.message and "bug" in job.error.fix


def test_a_python_without_tcvom_is_the_settings_fault_not_a_bug(tmp_path: Path, monkeypatch) -> None:
    """The host's tcvom setting names a Python whose environment lacks tcvom (-S: without
    its site-packages, as a system Python): say so, not "a bug in tcvom"."""
    monkeypatch.chdir(tmp_path)
    job = Job([sys.executable, "-S", "-m", "tcvom", "run"]).start().wait(timeout=30)
    assert job.state == "failed" and job.error is not None
    assert f"the Python {sys.executable} has no tcvom installed" in job.error.message
    assert "bug" not in job.error.fix and "tcvom setting" in job.error.fix
    # each host names its own place for it (Blender QA: "the host's tcvom setting" in Blender)
    named = Job([sys.executable, "-S", "-m", "tcvom", "run"], setting="the add-on preferences (Preferences > "
                "Add-ons > tcvom Matte > tcvom)").start().wait(timeout=30)
    assert named.error is not None and "in the add-on preferences (Preferences > Add-ons" in named.error.fix
    for other in ([str(_script(tmp_path / "ls_like", "import sys\nsys.exit(2)\n"))], ):
        named = Job([*other, "run"], setting="the node's tcvom executable knob").start().wait(timeout=30)
        assert named.error is not None and named.error.fix.endswith("in the node's tcvom executable knob")
    with pytest.raises(HostError) as caught:  # a program that cannot be started at all
        Job([str(tmp_path / "nowhere" / "tcvom"), "run"], setting="the node's tcvom executable knob").start()
    assert caught.value.fix == "check the tcvom executable set in the node's tcvom executable knob"


def test_cancel_kills_the_worker_and_removes_only_its_temporaries(tmp_path: Path) -> None:
    out = tmp_path / "out"
    worker = _script(
        tmp_path / "w",
        "import json, pathlib, sys, time\n"
        f"out = pathlib.Path({str(out)!r}); (out / 'alpha').mkdir(parents=True)\n"
        "print(json.dumps({'event': 'start', 'job': 'matte', 'total': 100}), flush=True)\n"
        f"import os; host = {hostclient.writer_host()!r}\n"
        "(out / 'alpha' / f'.alpha.1001.tcvom-tmp-{host}-{os.getpid()}-ab12.exr').write_bytes(b'partial')\n"
        "(out / 'alpha' / f'.alpha.1002.tcvom-tmp-{host}-{os.getppid()}-cd34.exr').write_bytes(b'other')\n"
        "print(json.dumps({'event': 'progress', 'job': 'matte', 'done': 1, 'total': 100}), flush=True)\n"
        "time.sleep(60)\n",
    )
    job = Job([str(worker)], out=str(out)).start()
    deadline = time.monotonic() + 30
    while job.done < 1:
        job.poll()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert job.running and 0 < job.fraction < 1 and "1/100" in job.status_text()
    start = time.monotonic()
    job.cancel()
    assert time.monotonic() - start < 10
    assert job.state == "cancelled" and job.returncode is not None
    # only the cancelled process's temporary goes; another live writer's (here: our pid) stays
    assert [p.name for p in (out / "alpha").iterdir()] == [f".alpha.1002.tcvom-tmp-{hostclient.writer_host()}-{os.getpid()}-cd34.exr"]


def test_module_is_stdlib_only_and_python39_syntax() -> None:
    """Host adapters vendor the file into Blender/Nuke, whose Python has no tcvom deps."""
    import ast

    source = (REPO / "core" / "tcvom" / "hosts" / "client.py").read_text()
    tree = ast.parse(source, feature_version=(3, 9))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)
    assert "from __future__ import annotations" in source  # the X | None annotations stay strings on 3.9


@pytest.mark.slow
def test_progress_names_the_stage_and_never_goes_back(small_example, stm_model, gca_model, tmp_path: Path,
                                                      capsys) -> None:
    """The JSON events of a real `tcvom run` (STM fine-tuning nested in the trimap stage, the
    matte in two chunks) replayed one at a time into a Job: the overall fraction only moves
    forward, and the stage shown is the job's own, with the fine-tuning as its step
    (issue 21, point 13)."""
    import torch

    from tcvom.cli import main

    stm, gca = tmp_path / "stm.pth", tmp_path / "gca.pth"
    torch.save(stm_model.state_dict(), stm)
    torch.save(gca_model.state_dict(), gca)
    keys = [f"{f}={small_example.trimaps.replace('####', str(f))}" for f in (1001, 1003)]
    code = main(["run", "--plate", small_example.plate, "--shot-range", "1001-1003", "--keyframes", *keys,
                 "--out", str(tmp_path / "out"), "--method", "tcvom", "--weights", str(stm), "--matting-weights",
                 str(gca), "--finetune-steps", "1", "--chunk", "2", "--progress", "json"])
    lines = [line for line in capsys.readouterr().out.splitlines() if hostclient.parse_event(line)]
    assert code == 0 and any('"job": "finetune"' in line for line in lines)
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n")
    acks = tmp_path / "acks"
    acks.mkdir()
    replay = _script(tmp_path / "replay", (
        "import pathlib, sys, time\n"
        f"lines = pathlib.Path({str(tmp_path / 'events.jsonl')!r}).read_text().splitlines()\n"
        "for i, line in enumerate(lines):\n"
        "    print(line, flush=True)\n"
        f"    while not pathlib.Path({str(acks)!r}, str(i)).exists():\n"
        "        time.sleep(0.002)\n"
    ))
    job = Job([str(replay)]).start()
    seen = []
    for i in range(len(lines)):
        deadline = time.monotonic() + 30
        while not (events := job.poll()):
            assert time.monotonic() < deadline
            time.sleep(0.002)
        assert len(events) == 1
        seen.append((events[0], job.stage, job.fraction, job.status_text()))
        (acks / str(i)).touch()
    job.wait(timeout=30)
    fractions = [f for _, _, f, _ in seen]
    assert fractions == sorted(fractions), f"progress went back: {fractions}"
    assert 0 < fractions[-1] <= 1 and job.state == "done" and job.fraction == 1.0
    assert job.stages_seen == ["trimaps", "matte"]
    tuning = [(stage, text) for event, stage, _, text in seen if event.get("job") == "finetune"]
    assert tuning and all(stage == "trimaps" for stage, _ in tuning)
    assert "tcvom trimaps: finetune 1/1 step, 0/3 frames (0%)" in [text for _, text in tuning]
    assert all(f <= 0.5 for _, stage, f, _ in seen if stage == "trimaps")  # the first of two stages


def _review(out: Path, **fields) -> Path:
    data = {"version": 1, "keyframes": [1001, 1010],
            "frames": [{"frame": f, "trimap_doubt": 0.1, "matte_doubt": 0.2, "doubt": 0.3} for f in range(1001, 1011)],
            "suggested": [1006, 1001, 1003], "doubtful": [1006, 1003, 1004]}
    data.update(fields)
    path = out / "review" / "review.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def test_read_review_and_walk_its_frames(tmp_path: Path) -> None:
    assert hostclient.read_review(str(tmp_path)) is None  # no review (yet): not an error
    path = _review(tmp_path)
    assert hostclient.review_path(str(tmp_path)) == str(path)
    review = hostclient.read_review(str(tmp_path))
    assert review is not None and review.doubtful == [1003, 1004, 1006]
    assert review.doubt[1005] == 0.3 and review.trimap_doubt[1005] == 0.1 and review.matte_doubt[1005] == 0.2
    assert [review.next_doubtful(f) for f in (1001, 1003, 1005, 1006)] == [1003, 1004, 1006, None]
    assert [review.next_doubtful(f, -1) for f in (1010, 1004, 1003)] == [1006, 1003, None]
    assert review.best_suggestion() == 1006  # 1001 is a keyframe of the run
    assert review.best_suggestion(keyed=[1006]) == 1003
    assert review.best_suggestion(keyed=[1006, 1003]) is None
    # A host's frame range: the neighbours the run read around it are not the artist's to key.
    part = review.within(1004, 1009)
    assert part.suggested == [1006] and part.doubtful == [1004, 1006] and part.keyframes == []
    assert sorted(part.doubt) == list(range(1004, 1010)) and part.next_doubtful(1006) is None
    assert review.past_cut == []  # a review without cuts (or of a tcvom before them)
    path.write_text(json.dumps({**json.loads(path.read_text()), "past_cut": [[1002, 1005], [1008, 1010]]}))
    cut = hostclient.read_review(str(tmp_path))
    assert cut is not None and cut.past_cut == [(1002, 1005), (1008, 1010)]
    assert cut.within(1004, 1009).past_cut == [(1004, 1005), (1008, 1009)]
    # frames whose trimap doubt is a guess (session 22): named by the host in its own numbers
    assert cut.estimated == [] and cut.guessed() == ""
    path.write_text(json.dumps({**json.loads(path.read_text()), "estimated": "1002-1004,1007"}))
    guessed = hostclient.read_review(str(tmp_path))
    assert guessed is not None and guessed.estimated == [1002, 1003, 1004, 1007]
    assert guessed.guessed(1000) == "2-4,7" and guessed.within(1004, 1009).estimated == [1004, 1007]


def test_the_review_says_which_frames_are_out_of_date_and_not_reviewed(tmp_path: Path) -> None:
    """Host QA: the client's review left out ``out_of_date`` and ``not_reviewed`` (after a run
    of part of the shot, its suggestions led to stale frames with nothing to say so), and
    ``within`` dropped the plate (a narrowed review passed for any plate's)."""
    _review(tmp_path, out_of_date="1004-1010", not_reviewed="1008-1010", not_matted="1006-1007",
            sources={"plate": "/abs/plate.####.exr"})
    review = hostclient.read_review(str(tmp_path))
    assert review is not None and review.out_of_date == list(range(1004, 1011))
    assert review.not_reviewed == [1008, 1009, 1010] and review.plate == "/abs/plate.####.exr"
    part = review.within(1002, 1008)
    assert part.out_of_date == list(range(1004, 1009)) and part.not_reviewed == [1008]
    assert review.not_matted == [1006, 1007] and review.within(1007, 1009).not_matted == [1007]
    assert part.plate == "/abs/plate.####.exr"
    _review(tmp_path)  # a review of a tcvom before them, or of a shot all current
    old = hostclient.read_review(str(tmp_path))
    assert old is not None and old.out_of_date == [] and old.not_reviewed == []
    _review(tmp_path, out_of_date=[1004])
    with pytest.raises(HostError, match=re.escape("'out_of_date' must be a frame range")):
        hostclient.read_review(str(tmp_path))


@pytest.mark.parametrize(("text", "expected"), [
    ("{not json", "not JSON"),
    ("[1, 2]", "not a JSON object"),
    (json.dumps({"version": 1, "keyframes": [1], "frames": [], "suggested": ["1004"], "doubtful": []}),
     "'suggested' must be a list of frame numbers"),
    (json.dumps({"version": 1, "keyframes": [1], "frames": [{"frame": 1, "doubt": 0.1}], "suggested": [],
                 "doubtful": []}), "frame 1 has no number 'trimap_doubt'"),
    (json.dumps({"version": 1, "keyframes": [1], "frames": {}, "suggested": [], "doubtful": []}), "'frames' must be a list"),
    (json.dumps({"version": 1, "keyframes": [1], "frames": [], "suggested": [], "doubtful": [], "past_cut": [[1]]}),
     "'past_cut' must be a list of [first, last] frame pairs"),
    (json.dumps({"version": 1, "keyframes": [1], "frames": [], "suggested": [], "doubtful": [], "estimated": [2]}),
     "'estimated' must be a frame range"),
])
def test_a_broken_review_names_the_file_and_the_fault(tmp_path: Path, text: str, expected: str) -> None:
    path = _review(tmp_path)
    path.write_text(text)
    with pytest.raises(HostError, match=re.escape(expected)) as caught:
        hostclient.read_review(str(tmp_path))
    assert str(path) in caught.value.message and caught.value.fix


def test_a_review_of_another_version_says_which_versions(tmp_path: Path) -> None:
    _review(tmp_path, version=2)
    with pytest.raises(HostError, match=r"version 2; this add-on reads version 1") as caught:
        hostclient.read_review(str(tmp_path))
    assert "same tcvom version" in caught.value.fix


def test_shot_folder_is_one_safe_folder_per_shot_and_node(tmp_path: Path) -> None:
    assert hostclient.shot_folder("/c", "shot_v001", "tcvom_Matte1") == os.path.join("/c", "shot_v001", "tcvom_Matte1")
    odd = hostclient.folder_name("tcvom Matte/../x")
    assert "/" not in odd and " " not in odd and not odd.startswith(".")
    assert odd != hostclient.folder_name("tcvom_Matte_.._x"), "different names never share a folder"
    assert hostclient.folder_name("tcvom Matte") == hostclient.folder_name("tcvom Matte")  # stable
    assert hostclient.folder_name("..") != "" and hostclient.folder_name("..") not in (".", "..")


def test_result_summary_says_what_was_computed_and_reused() -> None:
    result = {"event": "result", "method": "classical", "written": 3, "skipped": 5,
              "computed": {"trimaps": {"count": 4, "frames": "1005-1008"}, "alpha": {"count": 3, "frames": "1006-1008"}},
              "reused": {"trimaps": {"count": 4, "frames": "1001-1004"}, "alpha": {"count": 5, "frames": "1001-1005"}},
              "removed": {"trimaps": {"count": 0, "frames": ""}, "alpha": {"count": 2, "frames": "1009-1010"}}}
    assert hostclient.result_summary(result) == (
        "classical: alpha 3 computed, 5 reused, 2 removed; trimaps 4 computed, 4 reused")
    mixed = {**result, "method": "tcvom", "methods": {"trimaps": "classical", "alpha": "tcvom"}}  # auto, no STM
    assert hostclient.result_summary(mixed) == (
        "alpha 3 computed, 5 reused, 2 removed (tcvom); trimaps 4 computed, 4 reused (classical)")
    older = {"event": "result", "method": "tcvom", "written": 8, "skipped": 0}
    assert hostclient.result_summary(older) == "tcvom: 8 frames computed, 0 already done"
    assert hostclient.result_summary(None) == ""


def test_warnings_summary_counts_and_shows_the_first() -> None:
    assert hostclient.warnings_summary([]) == ""
    assert hostclient.warnings_summary(["a"]) == "1 warning: a"
    assert hostclient.warnings_summary(["a", "b", "a", "c", ""]) == "3 warnings: a; b (and 1 more)"


def test_install_folder_keeps_unchanged_files_untouched(tmp_path: Path) -> None:
    folder = tmp_path / "keyframes"
    staging = tmp_path / "staging"
    staging.mkdir()

    def stage(**files: bytes) -> dict[str, str]:
        for name, data in files.items():
            (staging / name).write_bytes(data)
        return {name: str(staging / name) for name in files}

    hostclient.install_folder(stage(a=b"A", b=b"B", c=b"C"), str(folder))
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    time.sleep(0.02)
    installed = hostclient.install_folder(stage(a=b"A", b=b"B2"), str(folder))
    assert installed == {"a": str(folder / "a"), "b": str(folder / "b")}
    assert sorted(p.name for p in folder.iterdir()) == ["a", "b"], "a removed keyframe's file is deleted"
    assert (folder / "a").stat().st_mtime_ns == before["a"], "an unchanged file keeps its time"
    assert (folder / "b").read_bytes() == b"B2" and list(staging.iterdir()) == []
    # a host's own comparison (a Nuke render differs from the last in its header only)
    assert not hostclient.install_file(str(next(iter(stage(x=b"B3").values()))), str(folder / "b"),
                                       same=lambda new, old: True)
    assert (folder / "b").read_bytes() == b"B2"
    # a folder that cannot be written is the artist's error with the fix, not a traceback
    (tmp_path / "blocked").write_text("a file where the folder should be")
    with pytest.raises(hostclient.HostError, match=r"cannot write the inputs into .*blocked"):
        hostclient.install_folder(stage(a=b"A"), str(tmp_path / "blocked" / "keyframes"))


def test_a_job_stopped_from_outside_is_not_called_a_bug(tmp_path: Path) -> None:
    """SIGTERM from a reaper or a logout (not the host's Cancel) ended in "this is a bug in
    tcvom: please report it with the terminal output"."""
    worker = _script(tmp_path / "w", "import json, sys\n"
                     "print(json.dumps({'event': 'start', 'job': 'run', 'total': 4}), flush=True)\n"
                     "print(json.dumps({'event': 'error', 'job': 'matte', 'exit_code': 143, 'message': "
                     "'terminated (SIGTERM): finished frames are kept, a rerun resumes'}), flush=True)\n"
                     "sys.stderr.write('tcvom run: terminated\\n')\nsys.exit(143)\n")
    job = Job([str(worker)]).start().wait(timeout=30)
    assert job.state == "failed" and job.error is not None and job.error.exit_code == 143
    assert "bug" not in job.error.fix and "run the matte again to resume" in job.error.fix


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize(("how", "fix"), [("SIGKILL", "memory runs out"), ("SIGHUP", "stopped from outside"),
                                         ("SIGSEGV", "this is a bug")])
def test_a_job_killed_by_a_signal_says_so(tmp_path: Path, how: str, fix: str) -> None:
    """A worker killed by the out-of-memory killer (SIGKILL) was "a bug in tcvom: please
    report it with the terminal output", its message "stopped with exit code -9" (Nuke QA);
    a crash stays a bug."""
    worker = _script(tmp_path / "w", "import json, os, signal, sys\n"
                     "print(json.dumps({'event': 'start', 'job': 'run', 'total': 4}), flush=True)\n"
                     "sys.stderr.write('tcvom: warning: something earlier\\n'); sys.stderr.flush()\n"
                     f"os.kill(os.getpid(), signal.{how})\n")
    job = Job([str(worker)]).start().wait(timeout=30)
    number = int(getattr(signal, how))
    assert job.state == "failed" and job.error is not None and job.error.exit_code == -number
    assert job.error.message.startswith(f"tcvom failed: tcvom was ended by signal {number} ({how})"), job.error.message
    assert "something earlier" in job.error.message and fix in job.error.fix, job.error


def test_a_stopped_run_says_which_alphas_still_show_the_run_before(tmp_path: Path) -> None:
    """A cancelled or failed pull left the node showing new and old alphas side by side
    and said only "finished frames stay cached"."""
    def worker(events: str) -> Job:
        script = _script(tmp_path / "w", "import json, sys\n" + "".join(
            f"print(json.dumps({event}), flush=True)\n" for event in events.split("|")) + "sys.exit(2)\n")
        return Job([str(script)]).start().wait(timeout=30)

    plan = ("{'event': 'plan', 'job': 'matte', 'reused': {'alpha': {'count': 2, 'frames': '1001-1002'}}, "
            "'computed': {'alpha': {'count': 5, 'frames': '1003-1006,1008', 'changed': 5}}}")
    made = "|".join(f"{{'event': 'progress', 'job': 'matte', 'done': {i + 3}, 'total': 7, 'frame': {f}}}"
                    for i, f in enumerate((1003, 1004)))
    error = "{'event': 'error', 'job': 'matte', 'exit_code': 2, 'message': 'x: frame 1005: cannot write'}"
    job = worker("|".join((plan, made, error)))
    assert job.state == "failed"
    assert job.stale_note() == "alpha frames 1005-1006,1008 still show the run before (or nothing): run the matte again"
    assert job.stale_note(1000) == "alpha frames 5-6,8 still show the run before (or nothing): run the matte again"
    trimaps = ("{'event': 'plan', 'job': 'trimaps', 'reused': {'trimaps': {'count': 0, 'frames': ''}}, "
               "'computed': {'trimaps': {'count': 8, 'frames': '1001-1008', 'changed': 8}}}")
    # (Nuke QA: "the run before" on a node never computed: "or nothing" now)
    assert "the alpha still shows the run before (or nothing" in worker("|".join((trimaps, error))).stale_note()
    assert worker(error).stale_note() == ""  # refused before anything changed


def test_a_cancel_after_the_worker_ended_reads_what_it_said(tmp_path: Path) -> None:
    """A run that finished just before Esc was reported by its events left in the queue:
    frames it had finished were said to show the run before."""
    plan = ("{'event': 'plan', 'job': 'matte', 'computed': {'alpha': {'count': 2, 'frames': '1001-1002'}}}")
    made = "|".join(f"{{'event': 'progress', 'job': 'matte', 'done': {i + 1}, 'total': 2, 'frame': {f}}}"
                    for i, f in enumerate((1001, 1002)))
    result = "{'event': 'result', 'job': 'run', 'written': 2}"
    script = _script(tmp_path / "w", "import json\n" + "".join(
        f"print(json.dumps({event}), flush=True)\n" for event in (plan, *made.split("|"), result)))
    job = Job([str(script)]).start()
    assert job._proc is not None
    job._proc.wait(timeout=30)
    for thread in job._threads:
        thread.join(timeout=10)
    job.cancel()  # pressed after the worker ended, before the host's next poll
    assert job.stale_note() == "" and job.result is not None


def test_advice_names_the_hosts_settings_for_the_flags_it_has() -> None:
    """Host QA: "unknown device 'CPU'" came with the generic fix, its hint ("use --device
    cpu (or cuda, cuda:N)") dropped whole for naming a flag; a flag the host has a setting
    for is named as that setting, the others are still left out."""
    assert hostclient._without_flags("use --device cpu (or cuda, cuda:N)") == "use the device setting cpu (or cuda, cuda:N)"
    assert hostclient._without_flags("use --precision fp32, or --backend torch for half precision") == \
        "use the precision setting fp32"
    assert hostclient._without_flags("render them again, or set the shot with --shot-range 1001-1004") == \
        "render them again"
    # Nuke QA: the node's own knobs (back-end, trimap channel), which Blender lacks, were left out too
    knobs = {"backend": "back-end", "trimap-channel": "trimap channel"}
    assert hostclient._without_flags("pass --trimap-channel A", knobs) == "set the trimap channel setting to A"
    assert hostclient._without_flags("pass --trimap-channel A") == ""
    assert hostclient._without_flags("pass --trimap-channel A, or paint the trimap in grey in the colour channels") \
        == "paint the trimap in grey in the colour channels"  # Blender, which has no such setting
    assert hostclient._without_flags("install weights (tcvom weights add FILE), or use --backend torch (the default)",
                                     knobs) == \
        "install weights (tcvom weights add FILE), or use the back-end setting torch (the default)"
    assert hostclient.ocio_colourspace("AlexaV3LogC") is None  # nuke-default's: the curve, not the gamut too


def test_advice_with_flags_in_brackets_and_commands_keeps_its_sense() -> None:
    """Host QA: "pass it as the matting weights (`run --matting-weights`, ...); the trimaps
    need the STM weights (...)" reached the artist as nothing (the generic fix), "X; Y" as
    "X, or Y", and a tcvom command in advice had its flag turned into a setting (it is left
    out: the artist has no shell)."""
    assert hostclient._without_flags(
        "pass it as the matting weights (`run --matting-weights`, `matte --weights`); the trimaps need the STM "
        "weights (`run --weights`, `trimaps --weights`)") == "pass it as the matting weights; the trimaps need the STM weights"
    assert hostclient._without_flags("the download may be truncated or corrupt; download it again") == \
        "the download may be truncated or corrupt; download it again"
    assert hostclient._without_flags(
        "download the released checkpoint and run 'tcvom weights add FILE', or pass --matting-weights FILE "
        "(`tcvom matte`: --weights FILE)") == \
        "download the released checkpoint and run 'tcvom weights add FILE', or fill in the matting weights setting"
    assert hostclient._without_flags(
        "are the matting weights damaged or untrained (tcvom info --weights FILE)? With --precision fp16 or bf16, "
        "try fp32") == "are the matting weights damaged or untrained? With the precision setting fp16 or bf16, try fp32"
    assert hostclient._without_flags("unknown space (list them with: tcvom info --colorspaces)") == "unknown space"
    assert hostclient._without_flags("list them with: tcvom info --colorspaces") == ""  # the host's generic fix
    assert hostclient._without_flags("use FBA weights (--base fba or an FBA --weights file), or --output rgba") == \
        "use FBA weights"
    # review: a "; " inside brackets cut the bracket in half ("flatten it first (Nuke: DeepToImage")
    assert hostclient._without_flags("flatten it first (Nuke: DeepToImage; oiiotool --flatten)") == "flatten it first"


def test_matting_weights_given_as_trimap_weights_come_with_advice_that_says_so(tmp_path: Path) -> None:
    """Host QA: the GCA+TAM file in the trimap weights field came with the generic fix."""
    import torch

    from tcvom.models import build_gca

    exe = _tcvom()
    example = tmp_path / "ex"
    subprocess.run([exe, "example", "--out", str(example), "--width", "32", "--height", "32", "--frames", "3",
                    "--progress", "none"], check=True, capture_output=True)
    gca = tmp_path / "gca.pth"
    torch.save(build_gca(temporal=True).state_dict(), gca)
    spec = RunSpec(str(example / "plate" / "plate.####.exr"), str(tmp_path / "out"),
                   {1001: str(example / "keyframes" / "key.1001.png")}, method="tcvom", weights=str(gca),
                   matting_weights=str(gca))
    job = Job(hostclient.build_run_args([exe], spec)).start().wait(timeout=120)
    assert job.error is not None and "not the STM" in job.error.message, job.error
    assert job.error.fix == "pass it as the matting weights; the trimaps need the STM weights"


def test_the_hosts_refuse_the_cache_folders_tcvom_refuses(tmp_path: Path) -> None:
    """The host client (stdlib only) refuses a cache folder exactly where tcvom cannot read a
    sequence in it (code review: it refused any '%', which tcvom reads only as %d)."""
    from tcvom.errors import InputError
    from tcvom.io.sequence import parse_sequence

    for folder in ("/proj/shot", "/proj/100%", "/proj/a%x", "/proj/v$f", "/proj/sh#12", "/proj/v@2", "/proj/v$F2",
                   "/proj/50%done", "/proj/a%04d"):
        try:
            parse_sequence(f"{folder}/tcvom_cache/alpha.####.exr", "the alpha")
            tcvom_refuses = False
        except InputError:
            tcvom_refuses = True
        if tcvom_refuses:
            with pytest.raises(HostError, match=f"the matte cache {re.escape(folder)}/tcvom_cache holds"):
                hostclient.check_cache_folder(f"{folder}/tcvom_cache", "fix")
        else:
            hostclient.check_cache_folder(f"{folder}/tcvom_cache", "fix")


def test_install_folder_replaces_a_link_in_the_folders_place(tmp_path: Path) -> None:
    """Safety QA: a cache's keyframes folder that was a link to an artist's folder had every
    other file of that folder deleted at the next Compute / Pull Matte."""
    painted = tmp_path / "artist_paint"
    painted.mkdir()
    (painted / "roto_v003.png").write_bytes(b"roto")
    folder = tmp_path / "cache" / "keyframes"
    folder.parent.mkdir()
    folder.symlink_to(painted, target_is_directory=True)
    (tmp_path / "key.1001.png").write_bytes(b"key")
    installed = hostclient.install_folder({"key.1001.png": str(tmp_path / "key.1001.png")}, str(folder))
    assert installed == {"key.1001.png": str(folder / "key.1001.png")}
    assert not folder.is_symlink() and sorted(p.name for p in folder.iterdir()) == ["key.1001.png"]
    assert sorted(p.name for p in painted.iterdir()) == ["roto_v003.png"]
