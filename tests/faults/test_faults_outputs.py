"""Faults in outputs and in what is written over: unwritable folders, patterns of the wrong
type, damaged frames of an earlier run, other settings, leftovers of a killed writer
(issue 16, points 4, 6, 8 and the fault suite; issue 21, point 5)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fault_helpers import Shot, expect, snapshot, tcvom, temporaries


def _alpha(shot: Shot, frame: int) -> Path:
    return shot.out / "alpha" / f"alpha.{frame}.exr"


def test_run_refuses_a_file_pattern_before_creating_anything(shot: Shot, capsys) -> None:
    out = shot.root / "result" / "alpha.####.exr"
    result = tcvom(capsys, *shot.run_args("--out", str(out)))
    expect(result, 2, "alpha.####.exr", "is a folder", "tcvom matte", root=shot.root)
    assert not (shot.root / "result").exists()


@pytest.mark.parametrize("pattern", ["m.%04d.exr", "m.####.exr", "m.@.exr", "m.$F4.exr"])
def test_pattern_of_another_type_than_the_format(shot: Shot, capsys, pattern: str) -> None:
    result = tcvom(capsys, *shot.matte_args("--alpha-format", "png16", out=str(shot.root / "o" / pattern)))
    expect(result, 2, pattern, "ends in .exr", ".png", "--alpha-format", root=shot.root)
    assert not list((shot.root / "o").glob("m.*")) if (shot.root / "o").exists() else True


def test_printf_pattern_names_the_files(shot: Shot, capsys) -> None:
    result = tcvom(capsys, *shot.matte_args(out=str(shot.root / "o" / "m.%04d.exr")))
    expect(result, 0, root=shot.root)
    assert sorted(p.name for p in (shot.root / "o").glob("m.*.exr")) == [f"m.{f}.exr" for f in range(1001, 1005)]


def test_pattern_without_a_frame_number(shot: Shot, capsys) -> None:
    result = tcvom(capsys, *shot.matte_args(out=str(shot.root / "o" / "m.####")))
    expect(result, 2, "m.####", "no extension", ".exr", root=shot.root)


def test_output_folder_is_a_file(shot: Shot, capsys) -> None:
    blocker = shot.root / "taken"
    blocker.write_text("a file")
    result = tcvom(capsys, *shot.matte_args(out=str(blocker / "alpha")))
    expect(result, 2, "taken", "cannot create the output folder", root=shot.root)
    assert blocker.read_text() == "a file"


def test_run_says_a_blocked_alpha_folder_before_making_trimaps(shot: Shot, capsys) -> None:
    shot.out.mkdir(parents=True)
    (shot.out / "alpha").write_text("a file")
    result = tcvom(capsys, *shot.run_args())
    expect(result, 2, "alpha is a file, not a folder", "move that file away", root=shot.root)
    assert sorted(p.name for p in shot.out.iterdir()) == ["alpha"]  # no trimaps folder, no trimap computed


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_output_folder_not_writable(shot: Shot, capsys) -> None:
    folder = shot.root / "readonly"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        result = tcvom(capsys, *shot.matte_args(out=str(folder)))
        expect(result, 2, "readonly", "not writable", root=shot.root)
    finally:
        folder.chmod(0o755)


def test_a_folder_where_a_frame_goes(shot: Shot, capsys) -> None:
    (shot.out / "alpha.1003.exr").mkdir(parents=True)
    result = tcvom(capsys, *shot.matte_args())
    expect(result, 2, "alpha.1003.exr", root=shot.root)


def test_resume_keeps_finished_frames_and_redoes_a_truncated_one(shot: Shot, capsys) -> None:
    expect(tcvom(capsys, *shot.run_args()), 0, root=shot.root)
    frame = _alpha(shot, 1003)
    frame.write_bytes(frame.read_bytes()[:100])
    kept = {k: v for k, v in snapshot(shot.out).items() if "1003" not in k and k.endswith((".exr", ".png"))}
    result = tcvom(capsys, *shot.run_args())
    expect(result, 0, "1 to compute (1003)", root=shot.root, kept=kept, kept_in=shot.out)


def test_zero_byte_output_frame_is_redone(shot: Shot, capsys) -> None:
    expect(tcvom(capsys, *shot.matte_args()), 0, root=shot.root)
    (shot.out / "alpha.1002.exr").write_bytes(b"")
    result = tcvom(capsys, *shot.matte_args())
    expect(result, 0, "1 to compute (1002)", root=shot.root)
    assert (shot.out / "alpha.1002.exr").stat().st_size > 0


def test_rerun_with_other_settings(shot: Shot, capsys) -> None:
    expect(tcvom(capsys, *shot.matte_args()), 0, root=shot.root)
    kept = snapshot(shot.out)
    result = tcvom(capsys, *shot.matte_args("--alpha-format", "exr32", "--frames", "1002"))
    expect(result, 2, "other settings", "alpha_format", "no --frames", root=shot.root, kept=kept, kept_in=shot.out)


def test_leftover_temporary_of_a_killed_writer_is_removed(shot: Shot, capsys) -> None:
    import subprocess
    import sys

    expect(tcvom(capsys, *shot.matte_args()), 0, root=shot.root)
    code = ("import sys; from pathlib import Path; from tcvom.io.atomic import temporary_name; "
            "temporary_name(Path(sys.argv[1])).write_bytes(b'')")
    subprocess.run([sys.executable, "-c", code, str(shot.out / "alpha.1002.exr")], check=True)  # exited: dead
    assert any(".tcvom-tmp-" in p.name for p in shot.out.iterdir())
    kept = {k: v for k, v in snapshot(shot.out).items() if ".tcvom-tmp-" not in k}
    result = tcvom(capsys, *shot.matte_args())
    expect(result, 0, "4 frame(s) reused", root=shot.root, kept=kept, kept_in=shot.out)


def test_a_preview_and_a_nuke_export_remove_what_a_killed_one_left(shot: Shot, capsys) -> None:
    """Kill QA: a SIGKILLed `tcvom preview` or `tcvom nuke torchscript` left its partial
    hidden file (up to ~100 MB for TorchScript), and no rerun removed it."""
    import subprocess
    import sys

    import torch

    from tcvom.models import build_gca

    expect(tcvom(capsys, *shot.matte_args()), 0, root=shot.root)
    looks, nuke = shot.root / "looks", shot.root / "nuke"
    looks.mkdir()
    nuke.mkdir()
    weights = shot.root / "gca_tam.pth"
    torch.save(build_gca(temporal=True).state_dict(), weights)
    code = ("import sys; from pathlib import Path; from tcvom.io.atomic import temporary_name; "
            "[temporary_name(Path(p)).write_bytes(b'part') for p in sys.argv[1:]]")
    preview = ["preview", "--plate", shot.plate, "--trimaps", shot.trimaps, "--alpha", str(shot.out / "alpha.####.exr"),
               "--out", str(looks)]
    subprocess.run([sys.executable, "-c", code, str(looks / "contact_sheet.png")], check=True)
    assert len(temporaries(looks)) == 1
    expect(tcvom(capsys, *preview, "--no-movie"), 0, root=shot.root)
    assert not temporaries(looks) and (looks / "contact_sheet.png").is_file()
    movie = shot.root / "movie"
    movie.mkdir()
    subprocess.run([sys.executable, "-c", code, str(movie / "preview.mp4")], check=True)
    assert len(temporaries(movie)) == 1
    from tcvom.io import open_frames
    from tcvom.review.preview import preview_movie  # the movie alone cleans its folder too

    preview_movie(open_frames(shot.plate), str(shot.out / "alpha.####.exr"), movie / "preview.mp4")
    assert not temporaries(movie) and (movie / "preview.mp4").is_file()
    subprocess.run([sys.executable, "-c", code, str(nuke / "t.pt")], check=True)
    assert len(temporaries(nuke)) == 1
    expect(tcvom(capsys, "nuke", "torchscript", "--weights", str(weights), "--out", str(nuke / "t.pt"), "--width",
                 "64", "--height", "32"), 0, root=shot.root)
    assert not temporaries(nuke) and (nuke / "t.pt").is_file()


def test_chunk_of_zero_frames(shot: Shot, capsys) -> None:
    expect(tcvom(capsys, *shot.run_args("--chunk", "0")), 2, "argument --chunk: must be at least 1", root=shot.root)


@pytest.mark.parametrize(("flag", "value", "said"), [("--mem-every", "0", "at least 1"),
                                                      ("--finetune-steps", "-1", "at least 0"),
                                                      ("--io-queue", "-1", "at least 0")])
def test_a_number_flag_out_of_range_names_the_flag(shot: Shot, capsys, flag: str, value: str, said: str) -> None:
    """Networks QA: the command line said "mem_every must be..." and "finetune_steps must
    be... (or None)", the Python API's keywords, for its own flags."""
    result = tcvom(capsys, *shot.run_args(flag, value))
    expect(result, 2, f"argument {flag}: must be {said}, not {value}", root=shot.root)
    assert flag.lstrip("-").replace("-", "_") not in result.err


@pytest.mark.parametrize(("flag", "value"), [("--executor", "slurm"), ("--alpha-format", "jpg"),
                                             ("--output", "rgb"), ("--method", "magic")])
def test_flag_value_not_offered(shot: Shot, capsys, flag: str, value: str) -> None:
    result = tcvom(capsys, *shot.run_args(flag, value))
    expect(result, 2, value, "invalid choice", root=shot.root)
    assert not shot.out.exists()


def test_nuke_install_under_a_regular_file(shot: Shot, capsys) -> None:
    blocker = shot.root / "plugins"
    blocker.write_text("x")
    result = tcvom(capsys, "nuke", "install", str(blocker / "tcvom"))
    expect(result, 2, "plugins", root=shot.root)


def test_info_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    import subprocess
    import sys

    # `tcvom info --colorspaces | head -1`: the reader goes away after one line
    with subprocess.Popen([sys.executable, "-m", "tcvom", "info", "--colorspaces"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.readline()
        proc.stdout.close()
        err = proc.stderr.read().decode()
        code = proc.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert code == 0


LIMIT = 1536  # bytes: the tiny shot's trimaps and records fit, its alpha EXRs do not


def _limited(limit: int, *argv: str) -> subprocess.CompletedProcess[str]:
    """``python ARGV`` with files limited to ``limit`` bytes (RLIMIT_FSIZE, as ``ulimit -f``):
    a write past it fails as on a full disk (Python ignores SIGXFSZ)."""
    import resource

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, preexec_fn=cap, timeout=300)


_WRITE = """
import sys, numpy as np
from tcvom.errors import OutputError
from tcvom.io import write_image
pixels = np.random.default_rng(0).random((96, 128), dtype=np.float32)
for name, kind in (("a.png", "uint8"), ("a.exr", "half"), ("a.tif", "uint16")):
    try:
        write_image(sys.argv[1] + "/" + name, pixels, pixel_type=kind)
        print(name, "written")
    except OutputError as exc:
        print(name, "refused:", exc)
"""


def test_a_full_disk_never_leaves_a_truncated_frame(shot: Shot, tmp_path: Path) -> None:
    """A writer that cannot flush its last bytes (PNG) reported success: a truncated frame
    took its final name, the run exited 0 and a rerun reused it as done."""
    folder = tmp_path / "images"
    folder.mkdir()
    result = _limited(4096, "-c", _WRITE, str(folder))
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and all("refused" in line and "disk full" in line for line in lines), result
    assert not list(folder.iterdir()), "nothing may take the frames' names, and no temporary stays"

    from tcvom.io import read_image

    # Whole runs: one keyframe (the alpha EXRs, about 1.6 KB, do not fit), two keyframes (the
    # buffer of a segment's first pass, 2.3 KB a frame, does not: numpy wrote it short).
    for keyframes, told in (([f"1001={shot.keyframe(1001)}"], "disk full"), ([shot.keyframes], "$TMPDIR")):
        out = tmp_path / f"out{len(keyframes)}"
        result = _limited(LIMIT, "-m", "tcvom", "run", "--plate", shot.plate, "--keyframes", *keyframes,
                          "--out", str(out), "--method", "classical", "--progress", "none")
        assert result.returncode == 2 and told in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and not temporaries(out)
        for image in [*out.rglob("*.exr"), *out.rglob("*.png")]:
            read_image(image)  # raises on a truncated file


_RECORDS = """
import sys
from pathlib import Path
from tcvom.errors import OutputError
from tcvom.farm.locks import publish_exclusive
from tcvom.io.atomic import write_text
from tcvom.weights.checkpoints import save_torch
def weights(path, text):  # a training run's save (weights.pth first)
    import torch
    from tcvom.train.loops import _Run
    model = torch.nn.Linear(len(text) // 8, 2)
    optimizer = torch.optim.Adam(model.parameters())
    _Run(path.parent, "gca_tam", {}, resume=False).save(1, model, optimizer, torch.amp.GradScaler("cuda", enabled=False))
def script(path, text):  # the Nuke export
    from tcvom.export.torchscript import export_torchscript
    from tcvom.models import build_gca
    export_torchscript(build_gca(temporal=True), path, width=64, height=32)
for name, write in (("review.json", write_text), ("manifest.json", publish_exclusive), ("weights.pth", weights),
                    ("nuke.pt", script)):
    try:
        write(Path(sys.argv[1]) / name, "x" * 4096)
        print(name, "written")
    except OutputError as exc:
        print(name, "refused:", exc)
"""


def test_a_full_disk_while_writing_a_review_or_manifest_is_said(tmp_path: Path) -> None:
    """Robustness QA: a full disk (or a file size limit) while a run wrote its review or its
    manifest ended in a traceback, exit 1, "(please report this)" (the failed write names no
    file), and the manifest's 0-byte temporary stayed. Both are said as a frame's write is,
    naming the file, and leave nothing behind. Training QA: so is a training checkpoint
    and a TorchScript export (torch turned the write's OSError into a RuntimeError,
    "unexpected pos")."""
    folder = tmp_path / "records"
    folder.mkdir()
    result = _limited(1024, "-c", _RECORDS, str(folder))
    lines = result.stdout.splitlines()
    assert len(lines) == 4 and all("refused" in line and "is the disk full" in line for line in lines), result
    assert "review.json" in lines[0] and "manifest.json" in lines[1] and "weights.pth" in lines[2]
    assert "nuke.pt" in lines[3]
    assert not list(folder.iterdir()), "no file, and no temporary"


def test_a_job_whose_reader_goes_away_does_not_say_done(shot: Shot) -> None:
    """`tcvom run --progress json | head -2` (a host or farm wrapper that stops reading): the
    run stopped after a frame and exited 0, so the task looked done. It exits 141 and says
    why; a rerun resumes. With stdout closed (a daemonised worker) it runs to the end (it
    failed with a traceback)."""
    argv = [sys.executable, "-m", "tcvom", *shot.run_args(), "--progress", "json"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.readline()
        proc.stdout.close()
        err = proc.stderr.read().decode()
        code = proc.wait(timeout=120)
    assert code == 141 and "reader of its output went away" in err and "Traceback" not in err, (code, err)
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:  # `2>&1 | head -1`
        assert proc.stdout is not None
        proc.stdout.readline()
        proc.stdout.close()
        assert proc.wait(timeout=120) == 141  # its own last word to the same closed pipe made it exit 1

    closed = subprocess.run(argv, stderr=subprocess.PIPE, text=True, timeout=120, preexec_fn=lambda: os.close(1))
    assert closed.returncode == 0 and "Traceback" not in closed.stderr, closed.stderr
    assert sorted(p.name for p in (shot.out / "alpha").glob("alpha.*.exr")) == [f"alpha.{f}.exr" for f in range(1001, 1005)]


def test_an_output_link_to_nowhere_is_named(shot: Shot, capsys) -> None:
    """--out a symbolic link whose target is gone said "File exists"."""
    link = shot.root / "matte"
    link.symlink_to(shot.root / "gone" / "matte")
    result = tcvom(capsys, *shot.run_args("--out", str(link)))
    expect(result, 2, "is a link to", "gone/matte", "which does not exist", root=shot.root)


def test_a_quoted_home_folder_is_the_home_folder(shot: Shot, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--out '~/matte'` (quoted, or from a host's setting) made a folder named "~" in the
    working folder; `--plate '~/...'` found no frames."""
    monkeypatch.setenv("HOME", str(shot.root))
    monkeypatch.chdir(shot.folder)
    result = tcvom(capsys, "run", "--plate", "~/shot/plate/plate.####.exr", "--keyframes",
                   "1001=~/shot/keyframes/key.1001.png", "--out", "~/matte", "--method", "classical",
                   "--progress", "none")
    expect(result, 0, root=shot.root)
    assert len(list((shot.root / "matte" / "alpha").glob("alpha.*.exr"))) == 4
    assert not (shot.folder / "~").exists()


def test_an_output_folder_whose_name_holds_a_padding_mark_is_refused(shot: Shot, capsys) -> None:
    """Farm QA: `--out 'o#ut/trimaps'` ended in fileseq's traceback and exit 1 (a bug, which
    a farm retries), after making the folder; `farm template` wrote a job whose every task
    failed so."""
    for command, out in (("trimaps", "o#ut/trimaps"), ("matte", "o@ut/alpha")):
        given = ["--keyframes", shot.keyframes] if command == "trimaps" else ["--trimaps", shot.trimaps]
        result = tcvom(capsys, command, "--plate", shot.plate, *given, "--out", str(shot.root / out), "--method",
                       "classical", "--progress", "none")
        expect(result, 2, out, "holds '" + out[1] + "'", "rename the folder", root=shot.root)
        assert not (shot.root / out.split("/")[0]).exists()
    result = tcvom(capsys, "farm", "template", str(shot.root / "job.yaml"), "--plate", shot.plate, "--keyframes",
                   shot.keyframes, "--out", str(shot.root / "o#ut"))
    expect(result, 2, "o#ut", "rename the folder", root=shot.root)
    assert not (shot.root / "job.yaml").exists()


def test_a_farm_plan_read_in_part_ends_quietly(shot: Shot, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """Docs QA: `tcvom farm plan ... --json | head -1` exited 141, "stopped ... a rerun
    resumes", though a plan computes and writes nothing: a report, as `info` and `review`."""
    import io

    from tcvom.cli import main

    class Gone(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", Gone())
    assert main(["farm", "plan", "--plate", shot.plate, "--keyframes", shot.keyframes, "--json"]) == 0
    assert main(["farm", "plan", "--plate", shot.plate, "--keyframes", shot.keyframes]) == 0
    assert "went away" not in capsys.readouterr().err
