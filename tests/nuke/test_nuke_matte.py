"""tcvom_nuke.matte: everything the node does that is not a call into nuke, tested for real."""

from __future__ import annotations

import ast
import os
import shutil
import stat
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from tcvom_nuke import host, matte

from tcvom.io.colour import colour_spaces

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "nuke_plugin"
HostError = matte.HostError


def _script(path: Path, body: str) -> str:
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def _read(file: str, first: int = 1001, last: int = 1008, **kw) -> matte.PlateInput:
    return matte.PlateInput("Read", first, last, file=file, colorspace=kw.pop("colorspace", "default (linear)"), **kw)


# --- knob values ---------------------------------------------------------------------------


def test_keyframes_and_frame_range_are_read_as_data() -> None:
    assert matte.parse_keyframes(" 1040, 1001 1020\n1001") == [1001, 1020, 1040]
    for bad in ("1001 [exec rm]", "1001;1002", "__import__('os')", "10.5"):
        with pytest.raises(HostError, match="not a frame number"):
            matte.parse_keyframes(bad)
    with pytest.raises(HostError, match="no keyframes"):
        matte.parse_keyframes("  ")
    assert matte.frame_range("", (1001, 1100)) == (1001, 1100)
    assert matte.frame_range("1010-1020", (1001, 1100)) == (1010, 1020)
    assert matte.frame_range("1010 1020", (1001, 1100)) == (1010, 1020)
    assert matte.frame_range("1010", (1001, 1100)) == (1010, 1010)
    with pytest.raises(HostError, match="empty"):
        matte.frame_range("1020-1010", (1001, 1100))
    with pytest.raises(HostError, match="frame range knob"):
        matte.frame_range("[frame]", (1001, 1100))
    matte.check_keyframes([1001, 1020], 1001, 1020)
    with pytest.raises(HostError, match="keyframe 1021 lies outside"):
        matte.check_keyframes([1001, 1021], 1001, 1020)
    assert matte.frame_runs([5, 1, 2, 3, 7, 8, 2]) == [(1, 3), (5, 5), (7, 8)]


def test_settings_check_names_the_knob() -> None:
    matte.NodeSettings().check()
    with pytest.raises(HostError, match="back-end knob holds 'tensorflow'"):
        matte.NodeSettings(backend="tensorflow").check()
    with pytest.raises(HostError, match="working space"):
        matte.NodeSettings(working_space=" ").check()
    # Nuke QA: found by tcvom after the renders, saying "--backend" and "--method"
    with pytest.raises(HostError, match="back-end knob holds onnxruntime, but the classical method") as err:
        matte.NodeSettings(method="classical", backend="onnxruntime").check()
    assert "--" not in err.value.message + err.value.fix
    matte.NodeSettings(method="auto", backend="onnxruntime").check()
    # Nuke QA: a device knob of "--help" reached tcvom as a flag ("argument --device: expected one argument")
    for device in ("--help", "gpu", "cuda:x", "cpu cuda"):
        with pytest.raises(HostError, match="the device knob holds"):
            matte.NodeSettings(device=device).check()
    for device in ("cpu", "cuda", "cuda:1", ""):
        matte.NodeSettings(device=device).check()


def test_the_executable_knob_is_a_path_knob_as_the_others(tmp_path: Path) -> None:
    """Nuke QA: a relative tcvom executable was looked up from Nuke's working folder, not the
    script's, and "$TCVOM_ROOT/bin/tcvom" went through as text ("not found")."""
    script = (tmp_path / "comp" / "sh010.nk").as_posix()
    assert matte.executable_path("", script) is None and matte.executable_path("  ", script) is None
    assert matte.executable_path("env/bin/tcvom", script) == (tmp_path / "comp" / "env" / "bin" / "tcvom").as_posix()
    assert matte.executable_path("/opt/tcvom/bin/tcvom", script) == "/opt/tcvom/bin/tcvom"
    for value in ("$TCVOM_ROOT/bin/tcvom", "[getenv TCVOM]/bin/tcvom"):
        with pytest.raises(HostError, match=r"tcvom executable knob holds .* an expression or variable"):
            matte.executable_path(value, script)


def test_cache_root_beside_the_script(tmp_path: Path) -> None:
    script = (tmp_path / "shots" / "comp_v001.nk").as_posix()
    assert matte.cache_root("", script) == (tmp_path / "shots" / "tcvom_cache").as_posix()
    assert matte.cache_root("cache/mattes", script) == (tmp_path / "shots" / "cache" / "mattes").as_posix()
    assert matte.cache_root((tmp_path / "abs").as_posix(), script) == (tmp_path / "abs").as_posix()
    for unsaved in ("", "Root"):
        with pytest.raises(HostError, match="not saved"):
            matte.cache_root("", unsaved)
    # Nuke QA: TCL made a folder named "[file dirname ...]" (and the internal Read, which
    # evaluates it, would look elsewhere): refused, as tcvom evaluates no knob text
    for value in ("[file dirname [value root.name]]/mattes", "$env(SHOT)/mattes", "/shows/$1x/mattes"):  # $1x: TCL's
        with pytest.raises(HostError, match="expression or variable that tcvom does not evaluate"):
            matte.cache_root(value, script)
    assert not list(tmp_path.rglob("*"))
    # a Windows hidden share: "$" before a slash is a plain character in TCL too (review)
    assert matte.cache_root("//fileserver/projects$/show/cache", script) == "//fileserver/projects$/show/cache"
    # Nuke QA: a script saved in a folder whose name Nuke evaluates: the default cache beside
    # it would put '[' or '$' into the internal Read's and the render Write's file knobs
    for folder in ("/proj/[wip] comp", "/proj/$TMP_shots"):
        for value in ("", "cache"):
            with pytest.raises(HostError, match="script's folder, whose name Nuke's file knobs would evaluate") as e:
                matte.cache_root(value, folder + "/sh010_v001.nk")
            assert "plain absolute folder" in e.value.fix
        assert matte.cache_root("/mnt/cache", folder + "/sh010_v001.nk") == "/mnt/cache"
    # review: '#', '@' and '%' in the cache folder, which tcvom refuses in a sequence's folder once it runs
    assert matte.cache_root("", "/proj/100%/comp.nk") == "/proj/100%/tcvom_cache"  # a % tcvom reads as text
    for folder, mark in (("/proj/sh#12", "#"), ("/proj/v@2", "@"), ("/proj/50%done", "%d")):
        with pytest.raises(HostError, match=f"the matte cache /proj/.* holds '{mark}', which tcvom reads") as e:
            matte.cache_root("", folder + "/comp.nk")
        assert "cache folder knob" in e.value.fix
    with pytest.raises(HostError, match="holds '#'"):
        matte.cache_root("/mnt/take#2/cache", SCRIPT)


SCRIPT = "/shows/demo/comp_v001.nk"  # the saved script, for the weight knobs' relative paths


# --- which inputs -----------------------------------------------------------------------------


def test_sequence_patterns_of_nuke_file_names() -> None:
    assert matte.sequence_pattern("/p/plate.%04d.exr") == "/p/plate.####.exr"
    assert matte.sequence_pattern("/p/plate.%d.exr") == "/p/plate.#.exr"
    assert matte.sequence_pattern("/p/plate.####.exr") == "/p/plate.####.exr"
    assert matte.sequence_pattern("C:\\p\\plate.%05d.dpx") == "C:/p/plate.#####.dpx"
    assert matte.sequence_pattern("/p/clip.mov") is None


def _files(folder: Path, *suffixes: str, frames: range = range(1001, 1009)) -> str:
    """Empty plate files ``plate.NNNN.<suffix>`` in ``folder`` (the direct path checks they are there)."""
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in suffixes:
        for frame in frames:
            (folder / f"plate.{frame:04d}.{suffix}").write_bytes(b"")
    return folder.as_posix()


def test_a_plain_read_of_a_sequence_goes_to_tcvom_directly(tmp_path: Path) -> None:
    p = _files(tmp_path / "p", "exr", "dpx", "png")
    pattern, space, reason = matte.direct_plate(_read(f"{p}/plate.%04d.exr"), 1001, 1008)
    assert pattern == f"{p}/plate.####.exr" and space == "Linear Rec.709 (sRGB)" and "directly" in reason
    assert matte.direct_plate(_read(f"{p}/plate.%04d.exr", colorspace="default"), 1001, 1008)[1] == "Linear Rec.709 (sRGB)"
    assert matte.direct_plate(_read(f"{p}/plate.%04d.dpx", colorspace="ACES - ACEScct"), 1001, 1008)[1] == "ACEScct"
    assert matte.direct_plate(_read(f"{p}/plate.%04d.png", colorspace="sRGB"), 1001, 1008)[1] == "sRGB Encoded Rec.709 (sRGB)"
    # Nuke QA: a bare "default" of an EXR is the comp's scene-linear space (ACEScg in an ACES comp), not
    # nuke-default's Linear Rec.709 whatever the comp
    assert matte.direct_plate(_read(f"{p}/plate.%04d.exr", colorspace="default"), 1001, 1008, "ACEScg")[1] == "ACEScg"
    assert matte.direct_plate(_read(f"{p}/plate.%04d.exr", colorspace="default (linear)"), 1001, 1008,
                              "ACEScg")[1] == "Linear Rec.709 (sRGB)"
    # Nuke QA: files missing inside the range, or a Read's last frame past its files (Nuke fills them in,
    # or holds the last one) were refused as "plate frame(s) missing": such a Read is rendered
    gap = _files(tmp_path / "gap", "exr")
    (tmp_path / "gap" / "plate.1005.exr").unlink()
    for plate, last in ((_read(f"{gap}/plate.%04d.exr"), 1008), (_read(f"{p}/plate.%04d.exr", last=1010), 1010)):
        pattern, space, reason = matte.direct_plate(plate, 1001, last)
        assert pattern is None and space is None and "missing, which Nuke fills in: rendering" in reason, reason
    # code review: negative frames are spelled as tcvom and printf spell them (-005 of %04d)
    negative = tmp_path / "negative"
    negative.mkdir()
    for frame in (-5, -4, -3):
        (negative / f"plate.{frame:04d}.exr").write_bytes(b"")
    assert sorted(q.name for q in negative.iterdir())[0] == "plate.-003.exr"
    assert matte.direct_plate(_read(f"{negative.as_posix()}/plate.%04d.exr", first=-5, last=-3), -5, -3)[0] == \
        f"{negative.as_posix()}/plate.####.exr"
    cases = {
        "not a Read": matte.PlateInput("Grade", 1001, 1008),
        "not an image sequence": _read("/p/clip.mov"),
        "frame knob": _read("/p/plate.%04d.exr", frame="frame+10"),
        "raw data": _read("/p/plate.%04d.exr", raw=True),
        "holds frames": _read("/p/plate.%04d.exr", first=1003),
        "colour space": _read("/p/plate.%04d.exr", colorspace="my_show_log"),
        "default": _read("/p/plate.%04d.dpx", colorspace="default"),
        "relative": _read("plates/plate.%04d.exr"),
        "disabled": _read("/p/plate.%04d.exr", disabled=True),
        "view": _read("/p/plate_%V.%04d.exr"),  # a stereo Read (Nuke QA: went to tcvom as a literal %V)
        "views": _read("/p/%v/plate.%04d.exr"),
        # '#', '@' or '%' besides the frame number: tcvom would read another frame pattern (Nuke QA)
        "hash in the name": _read("/p/plate_v#2.%04d.exr"),
        "at in the name": _read("/p/pl@te.%04d.exr"),
        "hash in the folder": _read("/p/take#2/plate.%04d.exr"),
        "two hash runs": _read("/p/plate_v#2.####.exr"),
        "percent in the folder": _read("/p/100%/plate.%04d.exr"),
    }
    for why, plate in cases.items():
        pattern, space, reason = matte.direct_plate(plate, 1001, 1008)
        assert pattern is None and space is None, why
        assert "render" in reason, why


def test_read_colour_spaces_map_to_real_opencolorio_names() -> None:
    names = set(colour_spaces())
    client = matte.hostclient
    assert set(client.HOST_COLOURSPACES.values()) <= names  # Nuke's and Blender's names: one table
    shared = set(client.NUKE_COLOURSPACES) & set(client.BLENDER_COLOURSPACES)
    assert all(client.NUKE_COLOURSPACES[k] == client.BLENDER_COLOURSPACES[k] for k in shared)
    assert all(k == k.lower() for k in client.HOST_COLOURSPACES)
    assert set(matte._FILE_DEFAULTS.values()) <= names
    assert matte.DEFAULT_WORKING_SPACE in names


def test_plan_renders_what_tcvom_cannot_read(tmp_path: Path) -> None:
    staging = tmp_path.as_posix()
    settings = matte.NodeSettings(working_space="ACEScg")
    plan = matte.plan_inputs(settings, matte.PlateInput("Grade", 1, 100), [1005, 1001], 1001, 1010, staging)
    assert not plan.direct and plan.plate_frames == list(range(1001, 1011))
    assert plan.plate == f"{staging}/plate/plate.####.exr" and plan.colorspace == "ACEScg"
    assert plan.keyframes == {1001: f"{staging}/keyframes/key.1001.exr", 1005: f"{staging}/keyframes/key.1005.exr"}
    p = _files(tmp_path / "p", "exr")
    direct = matte.plan_inputs(settings, _read(f"{p}/plate.%04d.exr"), [1001], 1001, 1008, staging)
    assert direct.direct and direct.plate_frames == [] and direct.colorspace == "Linear Rec.709 (sRGB)"
    bare = matte.plan_inputs(settings, _read(f"{p}/plate.%04d.exr", colorspace="default"), [1001], 1001, 1008, staging)
    assert bare.direct and bare.colorspace == "ACEScg"  # the working space knob: the comp's scene-linear


# --- the run --------------------------------------------------------------------------------------


def _rendered_inputs(staging: Path, example, frames=range(1001, 1009)) -> matte.RenderPlan:
    """What the Write node leaves in the staging folder (copies of the example's files)."""
    (staging / "plate").mkdir(parents=True)
    (staging / "keyframes").mkdir()
    for f in frames:
        shutil.copy(example.plate_dir / f"plate.{f}.exr", staging / "plate" / f"plate.{f}.exr")
    keys = {}
    for f in (1001, 1008):
        keys[f] = (staging / "keyframes" / f"key.{f}.png").as_posix()
        shutil.copy(example.keyframe_dir / f"key.{f}.png", keys[f])
    return matte.RenderPlan((staging / "plate" / "plate.####.exr").as_posix(), list(frames), keys,
                            "Linear Rec.709 (sRGB)", False, "rendered", staging.as_posix())


@pytest.fixture
def example(small_example):
    """The bundled example's folders (96x64, frames 1001-1008, keyframes 1001 and 1008)."""

    class Paths:
        plate_dir = Path(small_example.plate).parent
        keyframe_dir = Path(small_example.keyframes).parent

    assert (Paths.plate_dir / "plate.1001.exr").is_file() and small_example.keyframe_numbers == (1001, 1008)
    return Paths


def test_scripts_of_one_name_in_two_shots_never_share_a_nodes_folder(tmp_path: Path) -> None:
    """Nuke QA: two shots' comp_v001.nk with the cache folder knob on one studio scratch disk
    wrote into one <cache>/comp_v001/TCVOM_Matte1: shot B's Compute overwrote shot A's
    matte, which A's Read then showed without a word."""
    shared = (tmp_path / "scratch").as_posix()
    a, b = (tmp_path / shot / "comp" / "comp_v001.nk" for shot in ("shotA", "shotB"))
    folder_a, folder_b = (matte.node_folder(shared, p.as_posix(), "TCVOM_Matte1") for p in (a, b))
    assert folder_a != folder_b
    assert folder_a.startswith(f"{shared}/comp_v001-") and folder_a.endswith("/TCVOM_Matte1")
    assert matte.node_folder(shared, a.as_posix(), "TCVOM_Matte1") == folder_a  # the same script: the same folder
    # a cache folder inside the script's folder is the script's own (it travels with the script)
    beside = matte.cache_root("", a.as_posix())
    assert matte.node_folder(beside, a.as_posix(), "TCVOM_Matte1") == f"{beside}/comp_v001/TCVOM_Matte1"
    moved = tmp_path / "mnt"  # the show and its scratch disk mounted elsewhere (another OS): the same folder name
    assert matte.node_folder(f"{moved}/scratch", f"{moved}/shotA/comp/comp_v001.nk", "TCVOM_Matte1").rsplit(
        "/", 2)[1] == folder_a.rsplit("/", 2)[1]
    up = matte.cache_root("../cache", a.as_posix())  # shared by the shot's scripts folders
    assert matte.node_folder(up, a.as_posix(), "N") != matte.node_folder(up, (a.parent / "x" / a.name).as_posix(), "N")


def test_prepare_run_keeps_unchanged_renders_in_the_nodes_one_folder(tmp_path: Path, example) -> None:
    settings = matte.NodeSettings(method="classical", backend="torch", trimap_channel="luma")
    root = (tmp_path / "cache").as_posix()
    out = matte.node_folder(root, (tmp_path / "comp_v001.nk").as_posix(), "TCVOM_Matte1")
    assert out == f"{root}/comp_v001/TCVOM_Matte1"  # a cache beside the script: its own
    run = matte.prepare_run(settings, _rendered_inputs(tmp_path / "s1", example), ["/bin/tcvom"], out, 1001, 1008, SCRIPT)
    assert run.out == out and run.frames == list(range(1001, 1009))
    assert not (tmp_path / "s1").exists(), "the rendered inputs move into the node's folder"
    assert run.spec.plate == f"{out}/inputs/plate/plate.####.exr" and os.path.isfile(run.spec.keyframes[1001])
    args = run.args
    assert args[:2] == ["/bin/tcvom", "run"] and args[-2:] == ["--progress", "json"]
    flags = {args[i]: args[i + 1] for i in range(len(args) - 1) if args[i].startswith("--")}
    assert flags["--input-colorspace"] == "Linear Rec.709 (sRGB)" and "--shot-range=1001-1008" in args
    assert flags["--backend"] == "torch" and flags["--trimap-channel"] == "luma" and flags["--method"] == "classical"
    assert flags["--plate"] == run.spec.plate and flags["--out"] == out

    inputs = Path(out, "inputs")

    def stamps() -> dict[str, int]:
        return {p.relative_to(inputs).as_posix(): p.stat().st_mtime_ns for p in inputs.rglob("*") if p.is_file()}

    first = stamps()
    assert len(first) == 10
    # the same pixels rendered again (new files, new times): every input file stays untouched
    time.sleep(0.02)
    matte.prepare_run(settings, _rendered_inputs(tmp_path / "s2", example), ["t"], out, 1001, 1008, SCRIPT)
    assert stamps() == first
    # one plate frame and one keyframe repainted: only their files change
    plan = _rendered_inputs(tmp_path / "s3", example)
    shutil.copy(example.plate_dir / "plate.1002.exr", plan.plate.replace("####", "1003"))
    shutil.copy(example.keyframe_dir / "key.1001.png", plan.keyframes[1008])
    matte.prepare_run(settings, plan, ["t"], out, 1001, 1008, SCRIPT)
    changed = {k for k, v in stamps().items() if v != first[k]}
    assert changed == {"plate/plate.1003.exr", "keyframes/key.1008.png"}
    # a shorter range: the frames no longer used are deleted; a plain Read: no rendered plate
    matte.prepare_run(settings, _rendered_inputs(tmp_path / "s4", example, range(1001, 1007)), ["t"], out, 1001, 1006, SCRIPT)
    assert sorted(p.name for p in (inputs / "plate").iterdir()) == [f"plate.{f}.exr" for f in range(1001, 1007)]
    direct = _rendered_inputs(tmp_path / "s5", example)
    direct.direct, direct.plate_frames, direct.plate = True, [], (example.plate_dir / "plate.####.exr").as_posix()
    assert matte.prepare_run(settings, direct, ["t"], out, 1001, 1008, SCRIPT).spec.plate == direct.plate
    assert not (inputs / "plate").exists()


def test_image_digest_ignores_exr_headers(tmp_path: Path) -> None:
    """Time stamps do not count; the data window does (a Roto's keyframe moved sideways was
    taken for the old render, and the old matte kept)."""
    import numpy as np
    import OpenImageIO as oiio

    def write(path: Path, pixels, stamp: str, x: int = 0) -> str:
        spec = oiio.ImageSpec(pixels.shape[1], pixels.shape[0], 4, oiio.HALF)
        spec.x, spec.full_width, spec.full_height = x, 64, 16  # a Write's data window: the input's bbox
        spec.attribute("DateTime", stamp)
        spec.attribute("Software", "Nuke " + stamp)
        out = oiio.ImageOutput.create(str(path))
        out.open(str(path), spec)
        out.write_image(pixels)
        out.close()
        return str(path)

    pixels = np.random.default_rng(1).random((16, 24, 4), dtype=np.float32)
    a = write(tmp_path / "a.exr", pixels, "2024:01:01 10:00:00")
    b = write(tmp_path / "b.exr", pixels, "2025:06:30 23:59:59 render 2")
    c = write(tmp_path / "c.exr", pixels * 0.5, "2024:01:01 10:00:00")
    assert Path(a).read_bytes() != Path(b).read_bytes()
    assert matte.image_digest(a) == matte.image_digest(b) != matte.image_digest(c)
    # A shape moved sideways: the chunks (which carry only their y) are the same bytes.
    moved = write(tmp_path / "moved.exr", pixels, "2024:01:01 10:00:00", x=40)
    assert matte.image_digest(moved) != matte.image_digest(a)
    png = tmp_path / "k.png"
    png.write_bytes(b"not an exr")
    assert matte.image_digest(str(png)) == matte.image_digest(str(png)) and len(matte.image_digest(str(png))) == 64


def test_prepare_run_refuses_missing_renders_and_weights(tmp_path: Path, example) -> None:
    plan = _rendered_inputs(tmp_path / "s", example, frames=range(1001, 1005))
    plan.plate_frames = list(range(1001, 1009))
    with pytest.raises(HostError, match="did not render plate frame 1005"):
        matte.prepare_run(matte.NodeSettings(), plan, ["t"], (tmp_path / "c").as_posix(), 1001, 1008, SCRIPT)
    plan = _rendered_inputs(tmp_path / "s2", example)
    settings = matte.NodeSettings(method="tcvom", weights=(tmp_path / "missing.pth").as_posix())
    with pytest.raises(HostError, match="weights file does not exist") as info:
        matte.prepare_run(settings, plan, ["t"], (tmp_path / "c").as_posix(), 1001, 1008, SCRIPT)
    assert info.value.exit_code == matte.hostclient.EXIT_MISSING
    # Host QA: a relative weight path was looked for in Nuke's working folder, the cache
    # folder's beside the script: both are relative to the script's folder now
    (tmp_path / "weights").mkdir()
    stm = tmp_path / "weights" / "stm.pth"
    stm.write_bytes(b"not checked here")
    script = (tmp_path / "comp.nk").as_posix()
    settings = matte.NodeSettings(method="tcvom", weights="weights/stm.pth", matting_weights=" ")
    run = matte.prepare_run(settings, _rendered_inputs(tmp_path / "s3", example), ["t"], (tmp_path / "c").as_posix(),
                            1001, 1008, script)
    assert run.spec.weights == stm.as_posix() and run.spec.matting_weights is None
    assert run.args[run.args.index("--weights") + 1] == stm.as_posix()
    with pytest.raises(HostError, match=r"matting weights knob holds .* expression"):
        matte.prepare_run(replace(settings, matting_weights="[getenv W]/gca.pth"),
                          _rendered_inputs(tmp_path / "s4", example), ["t"], (tmp_path / "c").as_posix(), 1001, 1008,
                          script)


def test_run_job_with_tcvom_collects_every_frame(tmp_path: Path, example, tcvom_exe: str) -> None:
    settings = matte.NodeSettings(method="classical")
    plate = _read((example.plate_dir / "plate.%04d.exr").as_posix())
    staging = matte.new_staging((tmp_path / "cache").as_posix())
    plan = matte.plan_inputs(settings, plate, [1001, 1008], 1001, 1008, staging)
    assert plan.direct
    for f, path in plan.keyframes.items():  # stands in for the Write node's trimap renders
        os.makedirs(os.path.dirname(path), exist_ok=True)
        shutil.copy(example.keyframe_dir / f"key.{f}.png", path)
    run = matte.prepare_run(settings, plan, [tcvom_exe], (tmp_path / "cache" / "shot" / "node").as_posix(), 1001, 1008, SCRIPT)
    job = matte.hostclient.Job(run.args, out=run.out).start()
    seen: list[int] = []
    outcome = matte.run_job(job, run.frames, lambda pct, text: seen.append(pct), lambda: False, poll_interval=0.05)
    assert outcome.state == "done", outcome.status
    assert sorted(outcome.files) == list(range(1001, 1009)) and seen[-1] == 100
    assert seen == sorted(seen), "progress only moves forward"
    values = matte.alpha_read_values(run.out, 1001, 1008)
    assert values["file_text"] == f"{run.out}/alpha/alpha.####.exr 1001-1008" and "\\" not in values["file"]
    assert values["raw"] is True and values["on_error"] == "error"
    assert values["before"] == values["after"] == "black"  # outside the range: no matte, not frame 1001's


def test_the_runs_warnings_reach_the_status(tmp_path: Path, example, tcvom_exe: str) -> None:
    """A keyframe without foreground (painted black) emptied the frames near it and the node
    said only what was computed: tcvom's warnings are in the status, named."""
    import numpy as np

    from tcvom.io import read_image, write_image

    settings = matte.NodeSettings(method="classical")
    plate = _read((example.plate_dir / "plate.%04d.exr").as_posix())
    staging = matte.new_staging((tmp_path / "cache").as_posix())
    plan = matte.plan_inputs(settings, plate, [1001, 1008], 1001, 1008, staging)
    for f, path in plan.keyframes.items():
        os.makedirs(os.path.dirname(path), exist_ok=True)
        shutil.copy(example.keyframe_dir / f"key.{f}.png", path)
    key, _ = read_image(plan.keyframes[1008])
    write_image(plan.keyframes[1008], np.zeros(key.shape[:2], np.float32), pixel_type="half", channels=("Y",))
    run = matte.prepare_run(settings, plan, [tcvom_exe], (tmp_path / "cache" / "shot" / "node").as_posix(), 1001, 1008, SCRIPT)
    job = matte.hostclient.Job(run.args, out=run.out).start()
    outcome = matte.run_job(job, run.frames, lambda pct, text: None, lambda: False, poll_interval=0.05,
                            keyframes=run.spec.keyframes)
    assert outcome.state == "done", outcome.status
    assert outcome.status.startswith("classical: alpha 8 computed"), outcome.status
    # named as the artist knows it, not by the node's internal render (Nuke QA)
    assert "; 1 warning: the keyframe at frame 1008 (Trimap input): the keyframe trimap has no foreground" in \
        outcome.status, outcome.status
    assert "inputs/keyframes" not in outcome.status


def test_a_rendered_plate_frame_reaching_past_the_format_is_named_with_its_fix(tmp_path: Path, example,
                                                                                tcvom_exe: str) -> None:
    """Nuke QA: a Transform moving the plate out over the format gave a frame whose bounding
    box (the render's data window) reached past the first frame's; the refusal named the
    node's internal render, not the Plate input, and advised nothing a Nuke artist does."""
    from tcvom.io import read_image, write_image
    from tcvom.io.images import ImageLayout

    settings = matte.NodeSettings(method="classical")
    plan = _rendered_inputs(tmp_path / "staging", example)
    moved = Path(plan.plate.replace("####", "1005"))
    pixels, _ = read_image(moved)
    write_image(moved, pixels, layout=ImageLayout(96, 64, 6, 0, 0, 0, 96, 64))  # 6 pixels past the right edge
    run = matte.prepare_run(settings, plan, [tcvom_exe], (tmp_path / "cache" / "node").as_posix(), 1001, 1008, SCRIPT)
    job = matte.hostclient.Job(run.args, out=run.out).start()
    outcome = matte.run_job(job, run.frames, lambda pct, text: None, lambda: False, poll_interval=0.05,
                            keyframes=run.spec.keyframes, plate=run.spec.plate)
    assert outcome.state == "failed" and outcome.error.exit_code == 2, outcome.status
    assert outcome.error.message.startswith("tcvom failed: the Plate input at frame 1005: the frame's pixels (data window 96x64 "
                                            "at (6, 0)) reach outside"), outcome.error.message
    assert "inputs/plate" not in outcome.error.message
    assert outcome.error.fix.startswith("put a Crop node (box: the format) under the Plate input"), outcome.error.fix
    # Windows: tcvom prints the node's paths with backslashes
    error = matte.HostError("C:\\cache\\node\\inputs\\plate\\plate.0007.exr: frame 7: unreadable", "", 2)
    assert matte.keyframes_named(error, {}, "C:/cache/node/inputs/plate/plate.####.exr").message == \
        "the Plate input at frame 7: unreadable"


def test_the_working_space_knob_is_checked_and_named(tmp_path: Path, example, tcvom_exe: str) -> None:
    """The working space went to tcvom as typed (Nuke QA): nuke-default's "linear" failed after
    every render with an error naming no knob, and the role "scene_linear" became tcvom's own
    ACEScg (a different matte, exit 0)."""
    for role in ("scene_linear", " Compositing_Linear "):
        with pytest.raises(HostError, match=r"working space knob holds .*an OpenColorIO role") as err:
            matte.NodeSettings(working_space=role).check()
        assert "Linear Rec.709 (sRGB)" in err.value.fix
    staging = matte.new_staging((tmp_path / "cache").as_posix())
    linear = matte.plan_inputs(matte.NodeSettings(working_space="linear"), matte.PlateInput("Grade", 1001, 1008),
                               [1001, 1008], 1001, 1008, staging)
    assert linear.colorspace == "Linear Rec.709 (sRGB)", "a Nuke name maps as a Read's does"
    # a name tcvom's config does not know: refused by tcvom, said as the knob's
    settings = matte.NodeSettings(method="classical", working_space="Linear Rec709")
    plan = replace(_rendered_inputs(tmp_path / "staging", example),
                   colorspace=matte.plan_inputs(settings, matte.PlateInput("Grade", 1001, 1008), [1001], 1001, 1008,
                                                staging).colorspace)
    run = matte.prepare_run(settings, plan, [tcvom_exe], (tmp_path / "cache" / "node").as_posix(), 1001, 1008, SCRIPT)
    job = matte.hostclient.Job(run.args, out=run.out).start()
    outcome = matte.run_job(job, run.frames, lambda pct, text: None, lambda: False, poll_interval=0.05,
                            keyframes=run.spec.keyframes, working_space=plan.colorspace)
    assert outcome.state == "failed" and outcome.error.exit_code == 2
    assert outcome.error.message == "the working space knob holds 'Linear Rec709', which tcvom's OpenColorIO config " \
        "does not know", outcome.error
    assert "tcvom info --colorspaces" in outcome.error.fix


def test_cancel_stops_the_worker(tmp_path: Path) -> None:
    worker = _script(tmp_path / "slow_tcvom", (
        "import json, sys, time\n"
        "print(json.dumps({'event': 'start', 'job': 'matte', 'total': 100}), flush=True)\n"
        "for i in range(100):\n"
        "    print(json.dumps({'event': 'progress', 'job': 'matte', 'done': i, 'total': 100}), flush=True)\n"
        "    time.sleep(0.2)\n"
    ))
    job = matte.hostclient.Job([worker], out=str(tmp_path)).start()
    seen: list[int] = []
    start = time.monotonic()
    outcome = matte.run_job(job, [1], lambda pct, text: seen.append(pct), lambda: len(seen) >= 2, poll_interval=0.05)
    assert outcome.state == "cancelled" and "resumes" in outcome.status
    assert time.monotonic() - start < 10
    assert job._proc.poll() is not None, "the worker process is gone"


def test_a_failing_worker_reports_the_error_with_the_fix(tmp_path: Path) -> None:
    worker = _script(tmp_path / "bad_tcvom", (
        "import json, sys\n"
        "print(json.dumps({'event': 'error', 'job': 'run', 'message': 'frame 1003: the trimap is 10x10', 'exit_code': 2}))\n"
        "sys.exit(2)\n"
    ))
    job = matte.hostclient.Job([worker], out=str(tmp_path)).start()
    outcome = matte.run_job(job, [1], lambda pct, text: None, lambda: False, poll_interval=0.02)
    assert outcome.state == "failed" and outcome.error.exit_code == 2
    text = matte.error_text(outcome.error)
    assert "frame 1003" in text and "Fix:" in text
    # a worker that says it is done but left frames missing is an error too, never an empty matte
    quiet = _script(tmp_path / "quiet_tcvom", "import json\nprint(json.dumps({'event': 'result', 'written': 0}))\n")
    job = matte.hostclient.Job([quiet], out=str(tmp_path)).start()
    outcome = matte.run_job(job, [1001], lambda pct, text: None, lambda: False, poll_interval=0.02)
    assert outcome.state == "failed" and "alpha of frame 1001 is missing" in outcome.status


# --- how the plugin finds hostclient; Python 3.9 ------------------------------------------------


def test_hostclient_comes_from_the_checkout_not_a_copy() -> None:
    assert not (PLUGIN / "tcvom_nuke" / "hostclient.py").exists(), "the repository must not hold a second copy"
    assert Path(matte.hostclient.__file__).resolve() == (REPO / "core" / "tcvom" / "hosts" / "client.py").resolve()
    assert host.candidates()[1] == (REPO / "core" / "tcvom" / "hosts" / "client.py").as_posix()


def test_without_hostclient_the_import_error_says_how_to_install(tmp_path: Path) -> None:
    shutil.copytree(PLUGIN / "tcvom_nuke", tmp_path / "tcvom_nuke", ignore=shutil.ignore_patterns("__pycache__"))
    # -S: no site-packages, so no installed tcvom either (as in Nuke's Python)
    proc = subprocess.run([sys.executable, "-S", "-c", "import tcvom_nuke.matte"], cwd=tmp_path,
                          capture_output=True, text=True, env={"PATH": os.environ.get("PATH", "")})
    assert proc.returncode != 0 and "tcvom nuke install" in proc.stderr


def test_plugin_code_parses_as_python_3_9() -> None:
    files = [*PLUGIN.glob("*.py"), *(PLUGIN / "tcvom_nuke").glob("*.py")]
    assert len(files) >= 6
    for path in files:
        source = path.read_text()
        tree = ast.parse(source, filename=str(path), feature_version=(3, 9))
        for node in ast.walk(tree):
            assert not isinstance(node, ast.Match), f"{path}: match needs Python 3.10"
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("isinstance", "issubclass"):
                assert not isinstance(node.args[1], ast.BinOp), f"{path}:{node.lineno}: X | Y at runtime"
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("eval", "exec"):
                pytest.fail(f"{path}:{node.lineno}: eval/exec")
        uses_annotations = any(isinstance(n, (ast.AnnAssign, ast.arg)) and getattr(n, "annotation", None) is not None
                               for n in ast.walk(tree))
        if uses_annotations:
            assert "from __future__ import annotations" in source, f"{path}: annotations would run on 3.9"
        assert "nuke.tcl" not in source and "nuke.eval" not in source.replace("nuke.evaluate", "")


def test_keyframes_are_named_whatever_separator_tcvom_prints() -> None:
    """On Windows tcvom prints the node's forward-slash paths with backslashes."""
    path = "C:/shots/comp/tcvom_cache/TCVOM_Matte1/inputs/keyframes/key.1001.exr"
    for printed in (path, path.replace("/", "\\")):
        error = matte.HostError(f"{printed}: frame 1001: the keyframe trimap is all unknown", "paint it", 2)
        named = matte.keyframes_named(error, {1001: path})
        assert named.message == "the keyframe at frame 1001 (Trimap input): the keyframe trimap is all unknown"
        assert (named.fix, named.exit_code) == ("paint it", 2)


def test_a_stopped_run_leaves_the_read_on_frames_that_are_there(tmp_path: Path) -> None:
    """Nuke QA and review: a run of another range stopped after it removed the alphas outside
    that range left the internal Read on them (erring), unsaid."""
    folder = tmp_path / "alpha"
    folder.mkdir()

    def there(*frames: int) -> None:
        for old in folder.iterdir():
            old.unlink()
        for frame in frames:
            (folder / f"alpha.{frame:04d}.exr").write_bytes(b"x")

    there(*range(1001, 1009))
    assert matte.shown_after_stop(str(tmp_path), (1001, 1008), (1001, 1004)) == ((1001, 1008), "")
    there(*range(1005, 1009))  # disjoint: the new range is whole
    kept, said = matte.shown_after_stop(str(tmp_path), (1001, 1004), (1005, 1008))
    assert kept == (1005, 1008) and said == "alpha frames 1001-1004 are gone (outside the new frame range): " \
        "the node shows 1005-1008"
    there(*range(1003, 1009))  # the new range not whole yet: the frames of both
    kept, said = matte.shown_after_stop(str(tmp_path), (1001, 1008), (1003, 1012))
    assert kept == (1003, 1008) and said.endswith("the node shows 1003-1008")
    there(1001, 1002, 1004)  # a frame of the new range missing (the run was to make it): nothing said
    assert matte.shown_after_stop(str(tmp_path), (1001, 1004), (1001, 1004)) == ((1001, 1004), "")


def test_a_plate_alpha_below_1_is_not_said_in_nuke(tmp_path: Path, example, tcvom_exe: str) -> None:
    """Code review: tcvom's warning of a plate alpha below 1 is for hosts that multiply a
    straight file's colour by it on loading (Blender); Nuke's Read keeps the colour, so the
    node's status left it out, not one of its two warning slots."""
    import numpy as np

    from tcvom.io import read_image, write_image

    folder = tmp_path / "png"
    folder.mkdir()
    for frame in range(1001, 1009):
        rgb = np.clip(read_image(example.plate_dir / f"plate.{frame}.exr")[0][:, :, :3], 0, 1)
        rgba = np.concatenate([rgb, np.zeros((*rgb.shape[:2], 1), np.float32)], axis=2)
        write_image(folder / f"plate.{frame}.png", rgba, pixel_type="uint8", channels=("R", "G", "B", "A"))
    settings = matte.NodeSettings(method="classical")
    plate = _read((folder / "plate.%04d.png").as_posix())
    staging = matte.new_staging((tmp_path / "cache").as_posix())
    plan = matte.plan_inputs(settings, plate, [1001, 1008], 1001, 1008, staging)
    assert plan.direct
    for f, path in plan.keyframes.items():
        os.makedirs(os.path.dirname(path), exist_ok=True)
        shutil.copy(example.keyframe_dir / f"key.{f}.png", path)
    run = matte.prepare_run(settings, plan, [tcvom_exe], (tmp_path / "cache" / "shot" / "node").as_posix(), 1001, 1008,
                            SCRIPT)
    job = matte.hostclient.Job(run.args, out=run.out).start()
    outcome = matte.run_job(job, run.frames, lambda pct, text: None, lambda: False, poll_interval=0.05)
    assert outcome.state == "done", outcome.status
    assert any(matte.hostclient.PLATE_ALPHA in w for w in job.warnings)  # tcvom said it
    assert "alpha channel" not in outcome.status and "warning" not in outcome.status, outcome.status
