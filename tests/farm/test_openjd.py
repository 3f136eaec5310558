"""The Open Job Description template: checked and run locally with openjd-cli (from PyPI),
then compared with a single `tcvom run`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from farm_helpers import assert_same_files, tcvom_exe

from tcvom.cli import main
from tcvom.errors import InputError
from tcvom.farm.chunks import split
from tcvom.farm.openjd import EXTENSIONS, job_template
from tcvom.io.images import read_image
from tcvom.io.sequence import parse_frame_range
from tcvom.review.doubt import load_review


def openjd_exe() -> str:
    pytest.importorskip("openjd.cli", reason="openjd-cli is not installed (pip install 'tcvom[farm]')")
    exe = shutil.which("openjd", path=str(Path(sys.executable).parent)) or shutil.which("openjd")
    if exe is None:
        pytest.skip("the openjd command is not on the PATH")
    return exe


def test_template_structure() -> None:
    template = job_template(frames="1001-1100", segments="0-2", chunk=7)
    trimaps, matte, review = template["steps"]
    assert template["specificationVersion"] == "jobtemplate-2023-09" and "TASK_CHUNKING" in template["extensions"]
    assert trimaps["parameterSpace"]["taskParameterDefinitions"][0]["range"] == "{{Param.TrimapSegments}}"
    assert "--segment" in trimaps["script"]["actions"]["onRun"]["args"]
    assert matte["dependencies"] == [{"dependsOn": "Trimaps"}]
    frames = matte["parameterSpace"]["taskParameterDefinitions"][0]
    assert frames["type"] == "CHUNK[INT]" and frames["chunks"]["rangeConstraint"] == "NONCONTIGUOUS"
    args = matte["script"]["actions"]["onRun"]["args"]
    assert "--frames={{Task.Param.Frames}}" in args
    assert review["dependencies"] == [{"dependsOn": "Matte"}] and "parameterSpace" not in review  # one task
    args = review["script"]["actions"]["onRun"]["args"]
    assert args[:3] == ["review", "{{Param.OutDir}}", "--rebuild"] and "{{Param.Plate}}" in args
    assert args[args.index("--ocio-config") + 1] == "{{Param.OcioConfig}}"  # the config as this job has it (review)
    defaults = {p["name"]: p.get("default") for p in template["parameterDefinitions"]}
    assert defaults["Frames"] == "1001-1100" and defaults["ChunkSize"] == 7 and defaults["TrimapSegments"] == "0-2"
    assert {"Frames", "Keyframes", "TrimapWeights", "MattingWeights", "Backend", "ChunkSize"} <= set(defaults)


def test_a_shot_on_twos_becomes_openjd_ranges_whose_chunks_tcvom_reads_back() -> None:
    """OpenJD's own model expands the template: the defaults are its range expressions
    (fileseq's ``x2`` is not one), the chunks hold consecutive frames of the shot, and
    ``tcvom matte --frames`` reads each chunk as exactly those frames."""
    model = pytest.importorskip("openjd.model", reason="openjd-model is not installed (pip install 'tcvom[farm]')")
    twos = list(range(1001, 1022, 2))
    template = job_template(frames="1001-1021x2", segments="0,2,4", chunk=4, base="fba", precision="fp32",
                            input_colorspace="ACEScg", trimap_channel="A")
    defaults = {p["name"]: p.get("default") for p in template["parameterDefinitions"]}
    assert defaults["Frames"] == "1001-1021:2" and defaults["TrimapSegments"] == "0-4:2"
    assert (defaults["Base"], defaults["Precision"], defaults["InputColorspace"], defaults["TrimapChannel"]) == (
        "fba", "fp32", "ACEScg", "A")
    decoded = model.decode_job_template(template=template, supported_extensions=list(EXTENSIONS))
    values = model.preprocess_job_parameters(
        job_template=decoded, job_parameter_values={"Plate": "/shot/p.####.exr", "Keyframes": "/shot/k.####.png",
                                                    "OutDir": "/shot/out"},
        job_template_dir=Path("/shot"), current_working_dir=Path("/shot"))
    job = model.create_job(job_template=decoded, job_parameter_values=values)
    tasks = {step.name: [{k: v.value for k, v in p.items()} for p in model.StepParameterSpaceIterator(
        space=step.parameterSpace)] for step in job.steps}
    assert [int(t["Segment"]) for t in tasks["Trimaps"]] == [0, 2, 4]
    chunks = [parse_frame_range(t["Frames"]) for t in tasks["Matte"]]
    assert [f for c in chunks for f in c] == twos and max(map(len, chunks)) == 4
    assert all(split(c, 4, twos) == [c] for c in chunks)  # each chunk a run of the shot's list
    given = {name: value.value for name, value in values.items()}
    args = job.steps[1].script.actions.onRun.args
    for flag, name in (("--base", "Base"), ("--precision", "Precision"), ("--input-colorspace", "InputColorspace")):
        assert args[args.index(flag) + 1] == f"{{{{Param.{name}}}}}" and given[name] == defaults[name]
    # the channel picks from the painted keyframes; the matte tasks read tcvom's one-channel trimaps
    keyframe_args = job.steps[0].script.actions.onRun.args
    assert keyframe_args[keyframe_args.index("--trimap-channel") + 1] == "{{Param.TrimapChannel}}"
    assert "--trimap-channel" not in args and given["TrimapChannel"] == "A"


def test_frames_before_zero_reach_the_tasks(tmp_path: Path) -> None:
    """A chunk "-3--1" or a shot range "-3-4" came after its flag as an argument of its own,
    which argparse took for a flag: every such task failed ("expected one argument")."""
    from tcvom.cli import build_parser

    template = job_template(frames="-3-4", segments="0-1", chunk=3, shot_range="-3-4")
    values = {"{{Task.Param.Frames}}": "-3--1", "{{Task.Param.Segment}}": "0"}
    values.update({f"{{{{Param.{p['name']}}}}}": str(p.get("default", "x")) for p in template["parameterDefinitions"]})
    for step in template["steps"][:2]:
        args = step["script"]["actions"]["onRun"]["args"]
        for name, value in values.items():
            args = [a.replace(name, value) for a in args]
        parsed = build_parser().parse_args(args)
        assert parsed.shot_range == "-3-4"
        if step["name"] == "Matte":
            assert parsed.frames == "-3--1"


def test_a_template_openjd_would_refuse_or_fail_is_refused(farm_shot, tmp_path: Path, capsys) -> None:
    """A FRAME=PATH keyframe went into the job as one garbled path (every task failed), and
    a name OpenJD refuses (or reads as an expression) was written: both exit 2 now."""
    shot = ["--plate", farm_shot.plate, "--out", str(tmp_path / "o"), "--method", "classical"]
    pair = f"1001={Path(farm_shot.keyframes).parent / 'key.1001.png'}"
    assert main(["farm", "template", str(tmp_path / "a.json"), *shot, "--keyframes", pair]) == 2
    assert "one sequence pattern, not a FRAME=PATH pair" in capsys.readouterr().err
    for name in ("sh010 {{Task.File.x}}", "x" * 129, "tab\there", ""):
        assert main(["farm", "template", str(tmp_path / "b.json"), "--name", name]) == 2, name
        assert "cannot be an Open Job Description job's name" in capsys.readouterr().err
    # the classical method with a network back-end: every task refused it
    assert main(["farm", "template", str(tmp_path / "d.json"), "--method", "classical", "--backend",
                 "onnxruntime"]) == 2
    assert "classical method runs no network" in capsys.readouterr().err
    assert not (tmp_path / "a.json").exists() and not (tmp_path / "b.json").exists()
    assert not (tmp_path / "d.json").exists()
    assert main(["farm", "template", str(tmp_path / "c.json"), "--name", "sh010 matte v2"]) == 0
    # code review: layers every Matte task refuses (in a PNG, of the classical method), planned exit 0
    for flags, said in ((["--alpha-format", "png16"], "png16 cannot hold them"),
                        (["--method", "classical"], "the classical method predicts none"),
                        ([], "needs a base that predicts foreground and background colours (FBA)"),
                        (["--method", "tcvom", "--base", "gca"], "needs a base that predicts foreground")):
        assert main(["farm", "template", str(tmp_path / "e.json"), "--output", "layers", *flags]) == 2
        assert said in capsys.readouterr().err
        assert main(["farm", "plan", "--plate", farm_shot.plate, "--keyframes", farm_shot.keyframes, "--output",
                     "layers", *flags]) == 2
        assert said in capsys.readouterr().err
    assert not (tmp_path / "e.json").exists()


def test_template_arguments_openjd_would_refuse_are_refused_in_python() -> None:
    """job_template returned templates that `openjd check` refused (a chunk of 0 or 2.5, an
    unknown method or format, a list as the shot range, an empty device); each is an
    InputError naming the argument now, and the Python API's range forms are taken."""
    bad = [("chunk", 0, "the chunk size must be"), ("chunk", 2.5, "the chunk size must be"),
           ("method", "foo", "method must be one of"), ("alpha_format", "jpg", "alpha_format must be one of"),
           ("device", "", "device must be non-empty text"), ("backend", "tensorrt ", "backend must be one of"),
           ("trimap_channel", "Z", "trimap_channel must be one of"), ("precision", "fp8", "precision must be one of"),
           ("base", "gcaa", "base must be one of"), ("tcvom_command", None, "tcvom_command must be non-empty text"),
           ("ocio_config", 3, "ocio_config must be text"), ("shot_range", "1001-x", "is not a frame range"),
           ("frames", "abc", "is not a frame range")]
    for name, value, said in bad:
        with pytest.raises(InputError, match=said):
            job_template(**{name: value})
    template = job_template(shot_range=[1, 2, 3, 5], frames=[1, 2, 3], segments=0, input_colorspace="",
                            ocio_config=None, chunk=np.int64(5), base="")
    json.dumps(template)  # a numpy chunk size stopped the template's writing (not JSON)
    defaults = {p["name"]: p.get("default") for p in template["parameterDefinitions"]}
    assert (defaults["ShotRange"], defaults["Frames"], defaults["TrimapSegments"]) == ("1-3,5", "1-3", "0")


def test_a_shot_template_pins_the_planned_shot(farm_shot, tmp_path: Path) -> None:
    """Farm QA: ShotRange was left empty (every plate frame on disk) while Frames and
    TrimapSegments were of the planned shot, so a plate frame added while the job ran
    changed the shot under the tasks still to run (exit 2: recorded shot differs)."""
    path = tmp_path / "job.json"
    assert main(["farm", "template", str(path), "--plate", farm_shot.plate, "--keyframes", farm_shot.keyframes,
                 "--out", str(tmp_path / "out"), "--method", "classical"]) == 0
    defaults = {p["name"]: p.get("default") for p in json.loads(path.read_text())["parameterDefinitions"]}
    assert (defaults["ShotRange"], defaults["Frames"], defaults["TrimapSegments"]) == ("1001-1008", "1001-1008", "0-1")


def test_empty_template_values_read_as_not_given(capsys) -> None:
    """The template passes every flag; its empty Base / InputColorspace / OcioConfig mean
    the flag's default, and a wrong base is still a usage error."""
    from tcvom.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["matte", "--plate", "p.####.exr", "--trimaps", "t.####.png", "--out", "o",
                              "--base", "", "--input-colorspace", "", "--ocio-config", " "])
    assert (args.base, args.input_colorspace, args.ocio_config) == (None, None, None)
    assert parser.parse_args(["matte", "--plate", "p", "--trimaps", "t", "--out", "o", "--base", "fba"]).base == "fba"
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["matte", "--plate", "p", "--trimaps", "t", "--out", "o", "--base", "fab"])
    assert exit_info.value.code == 2 and "invalid choice: 'fab'" in capsys.readouterr().err


def test_generic_template_passes_openjd_check(tmp_path: Path, capsys) -> None:
    exe = openjd_exe()
    assert main(["farm", "template", str(tmp_path / "generic.json"), "--chunk", "25"]) == 0
    assert not (tmp_path / "generic.params.json").exists()
    check = subprocess.run([exe, "check", str(tmp_path / "generic.json")], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert main(["farm", "template", str(tmp_path / "half.json"), "--plate", "p.####.exr"]) == 2
    assert "together" in capsys.readouterr().err


def test_a_cancelled_task_gets_sigterm_first(farm_shot, tmp_path: Path, capsys) -> None:
    """Crash QA: the template declared no cancelation, and OpenJD's default is SIGKILL: a
    cancelled task never ran tcvom's SIGTERM path (exit 143, temporaries and a segment's
    buffer removed). The actions notify first; a stand-in worker records what it got."""
    import os
    import signal
    import time

    exe = openjd_exe()
    said = tmp_path / "said"
    worker = tmp_path / "worker.py"
    worker.write_text(f"#!{sys.executable}\n"
                      "import pathlib, signal, sys, time\n"
                      f"said = pathlib.Path({str(said)!r})\n"
                      "def stop(signum, frame):\n"
                      "    said.write_text(signal.Signals(signum).name)\n"
                      "    sys.exit(143)\n"
                      "signal.signal(signal.SIGTERM, stop)\n"
                      "said.write_text('started')\n"
                      "time.sleep(120)\n")
    worker.chmod(0o755)
    job = tmp_path / "job" / "tcvom_job.yaml"
    assert main(["farm", "template", str(job), "--plate", farm_shot.plate, "--keyframes", farm_shot.keyframes,
                 "--out", str(tmp_path / "farm"), "--method", "classical", "--tcvom-command", str(worker)]) == 0
    params = job.with_name("tcvom_job.params.json")
    log = tmp_path / "openjd.log"
    with log.open("w") as out:
        run = subprocess.Popen([exe, "run", str(job), "--step", "Trimaps", "--job-param", f"file://{params}"],
                               stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            deadline = time.monotonic() + 90
            while not (said.exists() and said.read_text() == "started") and time.monotonic() < deadline:
                time.sleep(0.1)
            assert said.exists(), log.read_text()[-3000:]
            os.kill(run.pid, signal.SIGINT)  # cancel, as a farm's UI does
            run.wait(timeout=90)
        finally:
            if run.poll() is None:
                os.killpg(run.pid, signal.SIGKILL)
    text = log.read_text()
    assert 'Sending signal "term"' in text and said.read_text() == "SIGTERM", text[-3000:]


@pytest.mark.slow  # about 15 s: ten tcvom processes
def test_openjd_check_and_run_equal_a_single_run(farm_shot, tmp_path: Path, capsys) -> None:
    """Of an RGBA output too (colour QA: `farm template` and `farm plan` took no --output, and
    the template's Matte tasks wrote alphas only)."""
    exe = openjd_exe()
    job = tmp_path / "job" / "tcvom_job.yaml"
    code = main(["farm", "template", str(job), "--plate", farm_shot.plate, "--keyframes", farm_shot.keyframes,
                 "--out", str(tmp_path / "farm"), "--chunk", "3", "--method", "classical", "--output", "rgba",
                 "--tcvom-command", tcvom_exe()])
    assert code == 0, capsys.readouterr().err
    check = subprocess.run([exe, "check", str(job)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and "passes validation" in check.stdout, check.stdout + check.stderr
    params = job.with_name("tcvom_job.params.json")
    assert json.loads(params.read_text())["Plate"] == str(Path(farm_shot.plate).absolute())
    ran = subprocess.run([exe, "run", str(job), "--step", "Review", "--run-dependencies", "--job-param",
                          f"file://{params}"], capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    # two keyframe segments, three chunks of at most 3 frames, then the review
    assert "Chunks run: 6" in ran.stdout, ran.stdout[-3000:]
    single = tmp_path / "single"
    code = main(["run", "--plate", farm_shot.plate, "--keyframes", farm_shot.keyframes, "--out", str(single),
                 "--method", "classical", "--output", "rgba", "--progress", "none"])
    assert code == 0
    assert_same_files(tmp_path / "farm" / "trimaps", single / "trimaps", expected=8)
    assert_same_files(tmp_path / "farm" / "alpha", single / "alpha", expected=8)
    assert read_image(next((single / "alpha").glob("*.exr")))[0].shape[-1] == 4
    assert load_review(tmp_path / "farm").frames == load_review(single).frames
    capsys.readouterr()
    assert main(["farm", "plan", "--plate", farm_shot.plate, "--keyframes", farm_shot.keyframes, "--out",
                 str(tmp_path / "farm"), "--method", "classical", "--output", "rgba"]) == 0
    assert "nothing to do" in capsys.readouterr().out  # the RGBA job's own settings


def test_a_template_makes_a_relative_ocio_config_absolute_and_refuses_one_that_fails(
        tmp_path: Path, capsys, monkeypatch) -> None:
    """Colour QA: `farm template --ocio-config site.ocio` kept the relative path while the
    shot's paths were made absolute, so every task, run from another folder, failed (exit 2);
    a config that does not load was written into the job for every task to refuse."""
    import PyOpenColorIO as ocio

    monkeypatch.chdir(tmp_path)
    Path("site.ocio").write_text(ocio.Config.CreateFromBuiltinConfig("studio-config-latest").serialize())
    assert main(["farm", "template", "job.json", "--ocio-config", "site.ocio"]) == 0
    defaults = {p["name"]: p.get("default") for p in json.loads(Path("job.json").read_text())["parameterDefinitions"]}
    assert defaults["OcioConfig"] == str(tmp_path / "site.ocio")
    assert main(["farm", "template", "builtin.json", "--ocio-config", "ocio://cg-config-latest"]) == 0
    defaults = {p["name"]: p.get("default")
                for p in json.loads(Path("builtin.json").read_text())["parameterDefinitions"]}
    assert defaults["OcioConfig"] == "ocio://cg-config-latest"
    capsys.readouterr()
    for flags, said in ((["--ocio-config", "gone.ocio"], "gone.ocio"),
                        (["--input-colorspace", "NoSuchSpace"], "unknown input colour space 'NoSuchSpace'")):
        assert main(["farm", "template", "bad.json", *flags]) == 2
        assert said in capsys.readouterr().err
    assert not Path("bad.json").exists()
