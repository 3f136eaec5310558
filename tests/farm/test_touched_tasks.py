"""A farm job after a keyframe edit has tasks only for the segments and chunks the edit
touched (issue 15, Hosts: farm): `tcvom farm plan/template --out`, and the Ray executor."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from farm_helpers import FRAMES, assert_same_files

from tcvom import pipeline
from tcvom.cli import main
from tcvom.io import read_image, write_image


@pytest.fixture
def edited(farm_shot, tmp_path: Path) -> tuple[Path, str, str]:
    """A run of the farm shot (keyframes 1001, 1004, 1008) into ``out``, then a keyframe
    added at 1006 (segments 1001-1004, 1005-1006, 1007-1008). Returns (out, old keys, new keys)."""
    old = tmp_path / "old"
    shutil.copytree(Path(farm_shot.keyframes).parent, old)
    out = tmp_path / "out"
    pipeline.run(farm_shot.plate, out, keyframes=str(old / "key.####.png"), method="classical", progress="none")
    new = tmp_path / "new"
    shutil.copytree(old, new)
    shutil.copy(Path(farm_shot.trimaps.replace("####", "1006")), new / "key.1006.png")
    return out, str(old / "key.####.png"), str(new / "key.####.png")


def plan(capsys, farm_shot, out: Path, keys: str) -> dict:
    assert main(["farm", "plan", "--plate", farm_shot.plate, "--keyframes", keys, "--out", str(out), "--method",
                 "classical", "--chunk", "2", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_plan_after_an_edit_lists_only_the_touched_tasks(farm_shot, edited, capsys) -> None:
    out, old, new = edited
    untouched = plan(capsys, farm_shot, out, old)
    assert untouched["segments"] == [] and untouched["chunks"] == []
    assert main(["farm", "plan", "--plate", farm_shot.plate, "--keyframes", old, "--out", str(out), "--method",
                 "classical", "--chunk", "2"]) == 0
    said = capsys.readouterr().out  # QA: "trimap tasks (--segment N), range :" and "0 chunk(s):"
    assert "nothing to do: every trimap and alpha in --out is up to date" in said and "range :" not in said, said
    touched = plan(capsys, farm_shot, out, new)
    assert [s["index"] for s in touched["segments"]] == [1, 2]  # 1005-1006 and 1007-1008, not 1001-1004
    frames = [int(f) for c in touched["chunks"] for f in pipeline.jobs.parse_frame_range(c)]
    assert frames and set(frames) <= {1004, 1005, 1006, 1007, 1008}
    # the tasks of that plan make what a run from scratch makes
    for segment in touched["segments"]:
        pipeline.trimaps(farm_shot.plate, new, out / "trimaps", segment=segment["index"], method="classical",
                         progress="none")
    for chunk in touched["chunks"]:
        pipeline.matte(farm_shot.plate, str(out / "trimaps" / "trimap.####.png"), out / "alpha", frames=chunk,
                       method="classical", progress="none")
    fresh = out.parent / "fresh"
    pipeline.run(farm_shot.plate, fresh, keyframes=new, method="classical", progress="none")
    assert_same_files(out / "trimaps", fresh / "trimaps", expected=8)
    assert_same_files(out / "alpha", fresh / "alpha", expected=8)
    assert plan(capsys, farm_shot, out, new)["chunks"] == []


def test_template_after_an_edit_has_the_touched_tasks(farm_shot, edited, tmp_path: Path, capsys) -> None:
    out, _, new = edited
    job = tmp_path / "job.json"
    assert main(["farm", "template", str(job), "--plate", farm_shot.plate, "--keyframes", new, "--out", str(out),
                 "--method", "classical"]) == 0
    params = {p["name"]: p.get("default") for p in json.loads(job.read_text())["parameterDefinitions"]}
    assert params["TrimapSegments"] == "1-2"
    assert set(pipeline.jobs.parse_frame_range(params["Frames"])) <= {1004, 1005, 1006, 1007, 1008}
    # farm QA: where only an alpha needs redoing, every trimap segment became a task (each found
    # nothing to do); a step needs one task, so one segment's check
    pipeline.run(farm_shot.plate, out, keyframes=new, method="classical", progress="none")
    (out / "alpha" / "alpha.1007.exr").unlink()
    assert main(["farm", "template", str(job), "--plate", farm_shot.plate, "--keyframes", new, "--out", str(out),
                 "--method", "classical"]) == 0
    params = {p["name"]: p.get("default") for p in json.loads(job.read_text())["parameterDefinitions"]}
    assert params["TrimapSegments"] == "0" and 1007 in pipeline.jobs.parse_frame_range(params["Frames"])


def test_a_job_into_frames_of_other_settings_is_refused_when_planned(farm_shot, edited, tmp_path: Path,
                                                                      capsys) -> None:
    """Planned into an output of other settings, every task of the job was refused (exit 2,
    "do not retry") after it was submitted; plan and template now refuse it up front."""
    out, old, _ = edited
    for trimap_setting, args in ((False, ["--alpha-format", "png16"]), (True, ["--trimap-channel", "R"])):
        for command in (["plan"], ["template", str(tmp_path / "job.json")]):
            code = main(["farm", *command, "--plate", farm_shot.plate, "--keyframes", old, "--out", str(out),
                         "--method", "classical", *args])
            err = capsys.readouterr().err
            assert code == 2, err
            assert "made with other settings" in err and "tasks each write part of the shot" in err
            assert ("trimap_channel" if trimap_setting else "alpha_format") in err
    assert not (tmp_path / "job.json").exists()
    # farm QA: an edit that touches every alpha planned no matte, and the settings went unchecked
    # (the Trimaps tasks rewrote the trimaps, then every Matte task was refused)
    every = tmp_path / "every"
    shutil.copytree(Path(old).parent, every)
    for key in every.glob("key.*.png"):
        pixels, _ = read_image(key)
        pixels[:4, :4] = 0.5  # each keyframe repainted: every segment and alpha touched
        write_image(key, pixels, pixel_type="uint8", channels=("Y",))
    before = {p.name: p.stat().st_mtime_ns for p in (out / "trimaps").glob("trimap.*.png")}
    for command in (["plan"], ["template", str(tmp_path / "job.json")]):
        code = main(["farm", *command, "--plate", farm_shot.plate, "--keyframes", str(every / "key.####.png"), "--out",
                     str(out), "--method", "classical", "--alpha-format", "png16"])
        err = capsys.readouterr().err
        assert code == 2 and "made with other settings" in err and "alpha_format" in err, err
    assert not (tmp_path / "job.json").exists()
    assert {p.name: p.stat().st_mtime_ns for p in (out / "trimaps").glob("trimap.*.png")} == before
    assert main(["farm", "plan", "--plate", farm_shot.plate, "--keyframes", str(every / "key.####.png"), "--out",
                 str(out), "--method", "classical"]) == 0  # the same settings: planned


@pytest.mark.slow
def test_ray_after_an_edit_runs_only_the_touched_tasks(farm_shot, edited, capsys) -> None:
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'ray>=2.9')")
    out, _, new = edited
    local = out.parent / "local"
    shutil.copytree(out, local)

    def plans() -> dict[str, dict]:
        events = [e for e in map(json.loads, capsys.readouterr().out.splitlines()) if e.get("event") == "plan"]
        return {name: counts for e in events for name, counts in e["computed"].items()}

    capsys.readouterr()
    pipeline.run(farm_shot.plate, local, keyframes=new, method="classical", chunk=2, progress="json")
    planned_here = plans()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    try:
        result = pipeline.run(farm_shot.plate, out, keyframes=new, method="classical", executor="ray", chunk=2,
                              progress="json")
    finally:
        ray.shutdown()
    # the plan events count the frames that replace files as a local run's do (farm QA: always 0)
    planned = plans()
    assert planned["trimaps"] == planned_here["trimaps"] and planned["trimaps"]["changed"] > 0
    assert planned["alpha"]["changed"] == planned["alpha"]["count"] == len(result.written) > 0
    assert result.stages["trimaps"]["computed"] == [1005, 1006, 1007, 1008]
    assert result.stages["trimaps"]["reused"] == [1001, 1002, 1003, 1004]
    assert set(result.written) <= {1004, 1005, 1006, 1007, 1008}
    assert sorted(result.written + result.skipped) == FRAMES
    fresh = out.parent / "fresh"
    pipeline.run(farm_shot.plate, fresh, keyframes=new, method="classical", progress="none")
    assert_same_files(out / "alpha", fresh / "alpha", expected=8)
