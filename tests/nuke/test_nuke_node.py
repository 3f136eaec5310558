"""tcvom_nuke.nukenode against the stand-in ``nuke`` module (stand_in/nuke.py): the node is
pasted from its .nk, Compute renders with Write nodes, runs the real tcvom in a worker
thread under a ProgressTask, and the result arrives through executeInMainThread."""

from __future__ import annotations

import json
import runpy
import shutil
import stat
import sys
import time
from pathlib import Path

import cv2
import nuke  # the stand-in
import numpy as np
import pytest
from tcvom_nuke import nukenode

from tcvom.io import read_image as _read_image

PLUGIN = Path(__file__).resolve().parents[2] / "nuke_plugin"


def read_image(path: str) -> np.ndarray:
    return _read_image(path)[0]


@pytest.fixture
def shot(small_example, tmp_path: Path):
    """A saved script with the example's plate as a Read and a trimap source node."""
    nuke.reset(script_path=(tmp_path / "comp" / "shot_v001.nk").as_posix(), gui=True)
    plate_dir = Path(small_example.plate).parent
    key_dir = Path(small_example.keyframes).parent
    read = nuke.add(nuke.Node("Read", {"file": (plate_dir / "plate.%04d.exr").as_posix(), "first": 1001,
                                        "last": 1008, "colorspace": "default (linear)"}))

    def trimap_pixels(frame: int) -> np.ndarray:
        grey = cv2.imread(str(key_dir / f"key.{frame}.png"), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0
        return np.dstack([grey, grey, grey, np.ones_like(grey)])

    trimap = nuke.add(nuke.Node("RotoPaint"))
    trimap.pixels = trimap_pixels
    return read, trimap


def _matte_node(read, trimap, executable: str) -> nuke.Node:
    node = nukenode.create_matte()
    node.setInput(0, read)
    node.setInput(1, trimap)
    node["keyframes"].setValue("1001 1008")
    node["method"].setValue("classical")
    node["executable"].setValue(executable)
    return node


def _wait(run: nukenode.MatteRun) -> None:
    assert run.thread is not None
    run.thread.join(timeout=120)
    assert not run.thread.is_alive()
    assert nuke.run_main_thread_queue() == 1  # the result comes back through the main thread


def test_init_and_menu_only_set_paths_and_menus() -> None:
    nuke.reset()
    runpy.run_path(str(PLUGIN / "init.py"))
    assert nuke.plugin_paths == ["./icons", "./gizmos"] and not nuke.menus
    runpy.run_path(str(PLUGIN / "menu.py"))
    sub = nuke.menus["Nodes"].items["TCVOM"]
    assert sub.icon == "tcvom.png" and set(sub.items) == {"TCVOM_Matte", "TCVOM_Inference"}
    assert all(item["icon"] == "tcvom.png" for item in sub.items.values())
    assert "create_matte()" in sub.items["TCVOM_Matte"]["command"]
    assert "TCVOM_Inference" in sub.items["TCVOM_Inference"]["command"]
    assert (PLUGIN / "gizmos" / "TCVOM_Inference.gizmo").is_file()
    icon = cv2.imread(str(PLUGIN / "icons" / "tcvom.png"), cv2.IMREAD_UNCHANGED)
    assert icon is not None and icon.shape == (32, 32, 4) and icon[..., 3].max() == 255


def test_compute_in_the_gui_runs_in_the_background_then_caches(shot, tcvom_exe: str) -> None:
    read, trimap = shot
    node = _matte_node(read, trimap, tcvom_exe)
    assert node.Class() == "Group" and node.node("tcvom_alpha") is not None
    run = nukenode.compute(node)
    assert run is not None, nuke.messages
    assert run.prepared.spec.plate.endswith("plate.####.exr")
    assert "directly" in run.reason, "a plain Read's files go to tcvom as they are"
    assert [(f, c) for _, f, c in nuke.executed] == [(1001, 4), (1008, 4)], "only the keyframes were rendered"
    assert nukenode.running() == [node.fullName()]
    _wait(run)
    assert nukenode.running() == [] and nuke.messages == []
    task = nuke.progress_tasks[-1]
    assert task.progress and task.progress[-1] == 100
    alpha = node.node("tcvom_alpha")
    out = run.prepared.out
    assert out.startswith((Path(nuke.root().name()).parent / "tcvom_cache").as_posix())
    assert alpha["file"].value() == f"{out}/alpha/alpha.####.exr"
    assert (alpha["first"].value(), alpha["last"].value()) == (1001, 1008) and alpha["raw"].value() is True
    assert out == (Path(nuke.root().name()).parent / "tcvom_cache" / "shot_v001" / node.fullName()).as_posix()
    assert "8 frames" in node["status"].value() and "alpha 8 computed, 0 reused" in node["status"].value()
    a = read_image(f"{out}/alpha/alpha.1004.exr")
    assert a.min() < 0.05 and a.max() > 0.95
    # the run's own review on the node's knobs, and its suggestion one button away
    review = nukenode.matte.hostclient.read_review(out)
    assert review is not None and review.suggested and set(review.doubt) == set(range(1001, 1009))
    suggested = [f for f in review.suggested if f not in (1001, 1008)]
    assert node["suggested"].value() == " ".join(map(str, suggested[:8]))
    assert node["doubtful"].value() == (f"{len(review.doubtful)}: " + " ".join(map(str, review.doubtful))
                                        if review.doubtful else "none")
    assert nukenode.goto_suggested(node) == suggested[0] == nuke.frame()

    # unchanged inputs: tcvom runs into the same folder and reuses every frame, untouched
    stamps = {p.name: p.stat().st_mtime_ns for p in Path(out, "alpha").glob("alpha.*.exr")}
    again = nukenode.compute(node)
    assert again is not None and again.prepared.out == out
    _wait(again)
    assert "alpha 0 computed, 8 reused" in node["status"].value(), node["status"].value()
    assert {p.name: p.stat().st_mtime_ns for p in Path(out, "alpha").glob("alpha.*.exr")} == stamps


def _write_review(out: str, suggested: list[int], doubtful: list[int]) -> None:
    """A review of the schema ``tcvom run`` writes (``review/review.json``)."""
    frames = [{"frame": f, "trimap_doubt": 0.4 if f in doubtful else 0.0, "matte_doubt": 0.05,
               "doubt": 0.45 if f in doubtful else 0.05} for f in range(1001, 1009)]
    Path(out, "review").mkdir(exist_ok=True)
    Path(out, "review", "review.json").write_text(json.dumps(
        {"version": 1, "keyframes": [1001, 1008], "frames": frames, "suggested": suggested, "doubtful": doubtful}))


def test_the_doubtful_knob_names_the_frames_whose_doubt_is_guessed(tmp_path: Path) -> None:
    """Farm/host QA: the run's warning counts the frames whose trimap doubt is a guess and
    says to look at them; the node's knobs never said which."""
    out = str(tmp_path)
    _write_review(out, suggested=[1004], doubtful=[])
    path = Path(out, "review", "review.json")
    path.write_text(json.dumps({**json.loads(path.read_text()), "estimated": "1002-1007"}))
    assert nukenode.matte.review_values(out)["doubtful"] == "none (doubt only guessed for 1002-1007)"


def test_the_doubtful_knob_names_frames_out_of_date_and_not_matted(tmp_path: Path) -> None:
    """Session 34: the review of a run stopped between its stages (or after a plate frame was
    rendered again) names the alphas older than their inputs, and those not matted yet; the
    knob said only their doubt, which is of the old matte (frames with a trimap and no alpha
    too: farm QA). Of the node's range only."""
    out = str(tmp_path)
    _write_review(out, suggested=[1004], doubtful=[1003])
    path = Path(out, "review", "review.json")
    path.write_text(json.dumps({**json.loads(path.read_text()), "out_of_date": "1002-1003,1007", "not_reviewed": "1008",
                                                       "not_matted": "1005"}))
    assert nukenode.matte.review_values(out)["doubtful"] == (
        "1: 1003; out of date (older than their inputs; compute the whole range): 1002-1003,1007; not matted yet: "
        "1005,1008")
    assert nukenode.matte.review_values(out, (1001, 1005))["doubtful"] == (
        "1: 1003; out of date (older than their inputs; compute the whole range): 1002-1003; not matted yet: 1005")


def test_review_knobs_move_the_viewer_to_doubtful_and_suggested_frames(shot, tcvom_exe: str) -> None:
    read, trimap = shot
    nuke.env["gui"] = False
    node = _matte_node(read, trimap, tcvom_exe)
    assert nukenode.jump(node, 1) is None  # never computed: no review to jump in
    assert "no review yet" in nuke.messages[-1] and "Fix: press Compute" in nuke.messages[-1]
    run = nukenode.compute(node)
    assert run is not None
    _write_review(run.prepared.out, suggested=[1004, 1001, 1006], doubtful=[1003, 1004, 1006])
    nukenode.show_review(node)
    assert node["suggested"].value() == "1004 1006"  # keyframes are not suggested again
    assert node["doubtful"].value() == "3: 1003 1004 1006"
    nuke.frame(1001)
    assert [nukenode.jump(node, 1) for _ in range(3)] == [1003, 1004, 1006] and nuke.frame() == 1006
    messages = len(nuke.messages)
    assert nukenode.jump(node, 1) is None and nuke.frame() == 1006
    assert "no doubtful frame after frame 1006" in nuke.messages[messages]
    assert nukenode.jump(node, -1) == 1004 and "frame 1004: doubt 0.45" in node["status"].value()

    # the loop: go to the suggested frame, add it as a keyframe, the next suggestion moves on
    nuke.frame(1001)
    assert nukenode.goto_suggested(node) == 1004 and nuke.frame() == 1004
    assert nukenode.add_keyframe(node) == 1004
    assert node["keyframes"].value() == "1001 1004 1008" and "paint its trimap" in node["status"].value()
    assert nukenode.goto_suggested(node) == 1006
    assert nukenode.add_keyframe(node) == 1006 and nukenode.add_keyframe(node) == 1006
    assert node["keyframes"].value() == "1001 1004 1006 1008"
    assert nukenode.goto_suggested(node) is None and "suggests no frame" in nuke.messages[-1]

    # a node computed for part of the plate: the neighbours its run read are not suggested
    alpha = node.node("tcvom_alpha")
    alpha["first"].setValue(1003)
    alpha["last"].setValue(1006)
    _write_review(run.prepared.out, suggested=[1002, 1005, 1007], doubtful=[1002, 1004, 1007])
    nukenode.show_review(node)
    assert node["suggested"].value() == "1005" and node["doubtful"].value() == "1: 1004"
    nuke.frame(1003)
    assert nukenode.jump(node, 1) == 1004 and nukenode.jump(node, 1) is None


def test_compute_without_gui_renders_the_plate_and_matches_the_direct_read(shot, tcvom_exe: str) -> None:
    read, trimap = shot
    direct = nukenode.compute(_matte_node(read, trimap, tcvom_exe))
    _wait(direct)
    nuke.env["gui"] = False  # nuke -t: synchronous
    grade = nuke.add(nuke.Node("Grade"))  # not a Read: its output is rendered to EXR
    grade.pixels = lambda frame: read_image(read["file"].value().replace("%04d", str(frame)))
    grade.frame_range = (1001, 1008)
    nuke.executed.clear()
    node = _matte_node(grade, trimap, tcvom_exe)
    run = nukenode.compute(node)
    assert run is not None and run.thread is None and "not a Read" in run.reason
    assert run.prepared.spec.input_colorspace == "Linear Rec.709 (sRGB)"  # the working space
    assert sorted(f for _, f, c in nuke.executed if c == 3) == list(range(1001, 1009))
    assert node.node("tcvom_alpha")["file"].value() == f"{run.prepared.out}/alpha/alpha.####.exr"
    kept = sorted(p.name for p in Path(run.prepared.out, "inputs", "plate").iterdir())
    assert kept == [f"plate.{f}.exr" for f in range(1001, 1009)], "the rendered plate stays: the next run compares it"
    for frame in (1001, 1004, 1008):
        rendered = read_image(f"{run.prepared.out}/alpha/alpha.{frame}.exr")
        straight = read_image(f"{direct.prepared.out}/alpha/alpha.{frame}.exr")
        np.testing.assert_allclose(rendered, straight, atol=2e-3)


def test_a_read_with_a_frame_offset_mattes_its_output_frames(shot, tcvom_exe: str, tmp_path: Path) -> None:
    """A plate delivered from frame 1, moved to comp frames 1001-1008 with the Read's frame
    offset: the node's range is the Read's output frames (its first/last knobs hold the
    file numbers 1-8; keyframes 1001 and 1008 were refused as outside "1-8")."""
    read, trimap = shot
    nuke.env["gui"] = False
    files = tmp_path / "from_one"
    files.mkdir()
    for frame in range(1001, 1009):
        shutil.copy(read["file"].value().replace("%04d", str(frame)), files / f"plate.{frame - 1000:04d}.exr")
    shifted = nuke.add(nuke.Node("Read", {"file": (files / "plate.%04d.exr").as_posix(), "first": 1, "last": 8,
                                           "frame_mode": "offset", "frame": "1000", "colorspace": "default (linear)"}))
    assert (shifted.firstFrame(), shifted.lastFrame()) == (1001, 1008)
    run = nukenode.compute(_matte_node(shifted, trimap, tcvom_exe))
    assert run is not None and (run.first, run.last) == (1001, 1008), nuke.messages
    assert "frame knob" in run.reason  # rendered through a Write: tcvom sees comp frame numbers
    assert sorted(f for _, f, c in nuke.executed if c == 3) == list(range(1001, 1009))
    direct = nukenode.compute(_matte_node(read, trimap, tcvom_exe))
    assert direct is not None
    for frame in (1001, 1004, 1008):  # the same pictures on the same frames: the same matte
        np.testing.assert_allclose(read_image(f"{run.prepared.out}/alpha/alpha.{frame}.exr"),
                                   read_image(f"{direct.prepared.out}/alpha/alpha.{frame}.exr"), atol=2e-3)


def test_proxy_mode_is_refused_and_the_status_counts_the_frames_of_the_range(shot, tcvom_exe: str) -> None:
    """In proxy mode Reads give proxy files and Writes render at proxy size: a Compute would
    replace the full-resolution matte with a small one, so it is refused. A narrower frame
    range's status counts its own frames (it counted every alpha file of the folder)."""
    read, trimap = shot
    nuke.env["gui"] = False
    node = _matte_node(read, trimap, tcvom_exe)
    first = nukenode.compute(node)
    assert first is not None and node["status"].value().startswith("8 frames (1001-1008)")
    stamps = {p.name: p.stat().st_mtime_ns for p in Path(first.prepared.out, "alpha").glob("alpha.*.exr")}
    nuke.root()["proxy"].setValue(True)
    with pytest.raises(RuntimeError, match="proxy mode is on"):
        nukenode.compute(node)
    assert "turn proxy mode off" in nuke.messages[-1]
    assert {p.name: p.stat().st_mtime_ns for p in Path(first.prepared.out, "alpha").glob("alpha.*.exr")} == stamps
    nuke.root()["proxy"].setValue(False)
    node["frame_range"].setValue("1001-1004")
    node["keyframes"].setValue("1001")
    assert nukenode.compute(node) is not None
    assert node["status"].value().startswith("4 frames (1001-1004)"), node["status"].value()


def test_a_repainted_keyframe_recomputes_only_the_frames_it_bounds(shot, tcvom_exe: str) -> None:
    """Keyframes 1001, 1004, 1008; repainting 1008 touches the segment 1004-1008 only (and
    the alpha of 1003, whose neighbour 1004 it is at most): frames 1001-1002 keep their
    files, byte for byte and time."""
    read, trimap = shot
    nuke.env["gui"] = False
    paint = trimap.pixels
    assert paint is not None
    edited: set[int] = set()

    def pixels(frame: int) -> np.ndarray:
        image = paint(1001 if frame == 1004 else frame).copy()  # 1004: any valid trimap will do
        if frame in edited:
            image[:6, :6, :3] = 1.0  # a corner painted foreground
        return image

    trimap.pixels = pixels
    node = _matte_node(read, trimap, tcvom_exe)
    node["keyframes"].setValue("1001 1004 1008")
    first = nukenode.compute(node)
    assert first is not None
    out = Path(first.prepared.out)

    def files() -> dict[str, tuple[int, bytes]]:
        return {p.relative_to(out).as_posix(): (p.stat().st_mtime_ns, p.read_bytes())
                for sub in ("alpha", "trimaps") for p in (out / sub).glob(sub.rstrip("s") + ".*")}

    before = files()
    edited.add(1008)
    second = nukenode.compute(node)
    assert second is not None and second.prepared.out == first.prepared.out
    after = files()
    untouched = {k for k in before if after.get(k) == before[k]}
    for frame in (1001, 1002):
        assert f"alpha/alpha.{frame}.exr" in untouched and f"trimaps/trimap.{frame}.png" in untouched, frame
    assert "alpha/alpha.1008.exr" not in untouched and "trimaps/trimap.1008.png" not in untouched
    assert "computed" in node["status"].value() and "reused" in node["status"].value()


def test_weights_added_after_a_compute_are_used_by_the_next(shot, tcvom_exe: str, gca_model, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 21, point 4: with method auto, weights that appear after a Compute (here
    $TCVOM_WEIGHTS) change what auto resolves to; the next Compute must use them, never
    keep the classical matte as "up to date". The node keeps no key of its own: tcvom,
    which records the method and weights each frame was made with, decides. (Matting
    weights only, to keep the test short: the trimap stage stays classical and reused.)"""
    import torch

    monkeypatch.setenv("TCVOM_DATA_DIR", str(tmp_path / "data"))  # nothing registered
    monkeypatch.delenv("TCVOM_WEIGHTS", raising=False)
    read, trimap = shot
    nuke.env["gui"] = False
    node = _matte_node(read, trimap, tcvom_exe)
    node["method"].setValue("auto")
    first = nukenode.compute(node)
    assert first is not None and first.outcome is not None
    assert first.outcome.status.startswith("classical:"), first.outcome.status
    alpha = Path(first.prepared.out, "alpha")
    classical = {p.name: read_image(str(p)) for p in alpha.glob("alpha.*.exr")}

    weights = tmp_path / "weights"
    weights.mkdir()
    torch.save(gca_model.state_dict(), weights / "gca_tam.pth")
    monkeypatch.setenv("TCVOM_WEIGHTS", str(weights))
    second = nukenode.compute(node)
    assert second is not None and second.outcome is not None and second.prepared.out == first.prepared.out
    status = node["status"].value()
    assert "alpha 8 computed, 0 reused (tcvom); trimaps 0 computed, 8 reused (classical)" in status, status
    assert "up to date" not in status
    changed = [name for name, old in classical.items() if not np.array_equal(read_image(str(alpha / name)), old)]
    assert len(changed) >= 6, "the networks' matte replaced the classical one"


def test_a_failed_run_that_wrote_frames_takes_the_stale_review_off_the_knobs(shot, tcvom_exe: str) -> None:
    """The suggested and doubtful knobs kept the review of the run before a failed one,
    though tcvom had removed it with the first frame the failed run wrote."""
    read, trimap = shot
    node = _matte_node(read, trimap, tcvom_exe)
    run = nukenode.compute(node)
    assert run is not None, nuke.messages
    _wait(run)
    assert node["doubtful"].value() not in ("", "no review")
    blocked = Path(run.prepared.out, "alpha", "alpha.1005.exr")
    blocked.unlink()
    (blocked / "blocked").mkdir(parents=True)  # the frame to recompute cannot take its name
    again = nukenode.compute(node)
    assert again is not None
    _wait(again)
    assert "alpha.1005.exr" in nuke.messages[-1]
    assert not Path(run.prepared.out, "review", "review.json").exists()
    assert (node["suggested"].value(), node["doubtful"].value()) == ("", "no review")
    assert node["status"].value().endswith("alpha frames 1005 still show the run before (or nothing): run the matte "
                                           "again"), node["status"].value()


def test_a_run_of_a_narrower_range_that_stops_after_removing_frames_narrows_the_read(shot, tcvom_exe: str,
                                                                                      tmp_path: Path) -> None:
    """Nuke QA: a Compute of a narrower frame range cancelled (or killed) after its matte stage
    removed the alphas outside the range left the internal Read on the old range, erring on
    those frames in the viewer and on the farm, while the status said nothing of them."""
    read, trimap = shot
    node = _matte_node(read, trimap, tcvom_exe)
    run = nukenode.compute(node)
    assert run is not None, nuke.messages
    _wait(run)
    lost = tmp_path / "lost_tcvom"  # the run ends, then its process is lost (exit 1, as a crash after the work)
    lost.write_text(f"#!{sys.executable}\nimport subprocess, sys\n"
                    f"subprocess.run([{tcvom_exe!r}, *sys.argv[1:]])\nsys.exit(1)\n")
    lost.chmod(lost.stat().st_mode | stat.S_IXUSR)
    node["executable"].setValue(str(lost))
    node["frame_range"].setValue("1001-1004")
    node["keyframes"].setValue("1001")
    again = nukenode.compute(node)
    assert again is not None, nuke.messages
    _wait(again)
    assert not Path(run.prepared.out, "alpha", "alpha.1006.exr").exists()
    alpha = node.node("tcvom_alpha")
    assert (alpha["first"].value(), alpha["last"].value()) == (1001, 1004)
    assert "alpha frames 1005-1008 are gone (outside the new frame range): the node shows 1001-1004" in \
        node["status"].value(), node["status"].value()


def test_cancel_in_the_progress_window_stops_the_worker(shot, tmp_path: Path) -> None:
    read, trimap = shot
    slow = tmp_path / "slow_tcvom"
    slow.write_text(f"#!{sys.executable}\nimport json, time\n"
                    "print(json.dumps({'event': 'start', 'job': 'matte', 'total': 8}), flush=True)\n"
                    "time.sleep(60)\n")
    slow.chmod(slow.stat().st_mode | stat.S_IXUSR)
    node = _matte_node(read, trimap, str(slow))
    run = nukenode.compute(node)
    deadline = time.monotonic() + 10
    while not nuke.progress_tasks and time.monotonic() < deadline:
        time.sleep(0.02)
    start = time.monotonic()
    nuke.progress_tasks[-1].cancel_requested = True
    _wait(run)
    assert time.monotonic() - start < 15
    assert run.job._proc.poll() is not None, "the worker process was stopped"
    assert "cancelled" in node["status"].value() and nuke.messages == []
    assert node.node("tcvom_alpha")["file"].value() == "", "nothing is shown for a cancelled run"


def test_errors_reach_the_artist_through_nuke_message(shot, tcvom_exe: str) -> None:
    read, trimap = shot
    node = _matte_node(read, trimap, tcvom_exe)
    node["keyframes"].setValue("1001 [exec rm -rf /]")
    assert nukenode.compute(node) is None
    assert "not a frame number" in nuke.messages[-1] and "Fix:" in nuke.messages[-1]
    node["keyframes"].setValue("1001 1020")
    assert nukenode.compute(node) is None and "keyframe 1020 lies outside" in nuke.messages[-1]
    node["keyframes"].setValue("1001")
    node.setInput(1, None)
    assert nukenode.compute(node) is None and "Trimap input is not connected" in nuke.messages[-1]
    assert "Trimap input" in node["status"].value()
    node.setInput(1, trimap)
    nuke.root().script_path = ""
    assert nukenode.compute(node) is None and "not saved" in nuke.messages[-1]
    nuke.env["gui"] = False  # in nuke -t a failure also stops the script
    with pytest.raises(RuntimeError, match="not saved"):
        nukenode.compute(node)


def test_a_cache_folder_or_executable_that_does_not_work_names_the_knob(shot, tcvom_exe: str, tmp_path: Path) -> None:
    """An unwritable cache folder showed "unexpected error"; a wrong tcvom executable knob
    was blamed on "the add-on preferences", which Nuke does not have."""
    read, trimap = shot
    node = _matte_node(read, trimap, "/nonexistent/tcvom")
    assert nukenode.compute(node) is None
    assert "the node's tcvom executable knob" in nuke.messages[-1] and "preferences" not in nuke.messages[-1]
    node["executable"].setValue(tcvom_exe)
    in_the_way = tmp_path / "not a folder"
    in_the_way.write_text("a file where the cache folder should be")
    node["cache_dir"].setValue(str(in_the_way))
    assert nukenode.compute(node) is None
    message = nuke.messages[-1]
    assert "cannot write the cache folder" in message and "cache folder knob" in message, message
    assert "unexpected" not in message


def test_a_keyframe_tcvom_refuses_is_named_as_the_artist_knows_it(shot, tcvom_exe: str) -> None:
    """tcvom named the node's own rendered file (.../inputs/keyframes/key.1001.exr), which
    the artist never made."""
    read, trimap = shot
    trimap.pixels = lambda frame: np.dstack([np.zeros((64, 96), np.float32)] * 3 + [np.ones((64, 96), np.float32)])
    node = _matte_node(read, trimap, tcvom_exe)
    run = nukenode.compute(node)
    assert run is not None, nuke.messages
    _wait(run)
    said = nuke.messages[-1]
    assert "the keyframe at frame 1001 (Trimap input)" in said and "inputs/keyframes" not in said, said


def test_a_changed_setting_recomputes_a_range_shorter_than_the_read(shot, tcvom_exe: str) -> None:
    """Nuke QA: with the node's frame range a part of the Read's frames, a changed setting
    (the trimap channel, the Read's colour space) failed on every press with "the frames
    here were made with other settings", and nothing in the node undid it. The node's range
    is its shot: a rerun with other settings replaces its frames."""
    read, trimap = shot
    nuke.env["gui"] = False
    node = _matte_node(read, trimap, tcvom_exe)
    node["keyframes"].setValue("1001")
    node["frame_range"].setValue("1001-1005")
    first = nukenode.compute(node)
    assert first is not None and first.outcome is not None
    node["trimap_channel"].setValue("G")
    second = nukenode.compute(node)
    assert second is not None and second.outcome is not None, node["status"].value()
    assert "5 frames (1001-1005)" in node["status"].value() and "trimaps 5 computed" in node["status"].value()


def test_cancelling_the_input_render_is_not_an_error(shot, tcvom_exe: str, monkeypatch) -> None:
    """Nuke QA: Cancel in Nuke's own render progress (nuke.execute raises "Cancelled") showed
    "unexpected error: Cancelled" in a message box."""
    read, trimap = shot
    node = _matte_node(read, trimap, tcvom_exe)
    shown = len(nuke.messages)

    def cancelled(*args, **kwargs):
        raise RuntimeError("Cancelled")

    monkeypatch.setattr(nuke, "execute", cancelled)
    assert nukenode.compute(node) is None
    assert len(nuke.messages) == shown and "cancelled while rendering the inputs" in node["status"].value()
    cache = Path(nuke.root().name()).parent / "tcvom_cache"
    assert not [p for p in cache.rglob(".staging-*")]  # the partial renders are gone


def test_a_failed_input_render_names_the_input_and_the_frames(shot, tcvom_exe: str, monkeypatch) -> None:
    """Nuke QA: a keyframe whose Read has no file at that frame failed the input render with
    "unexpected error: Read2: cannot read frame 1005", no fix and no input named."""
    read, trimap = shot
    node = _matte_node(read, trimap, tcvom_exe)

    def failing(write, first, last, incr=1):
        raise RuntimeError(f"Read2: cannot read frame {first}")

    monkeypatch.setattr(nuke, "execute", failing)
    assert nukenode.compute(node) is None
    said = nuke.messages[-1]
    assert "unexpected" not in said and "rendering the Trimap input (a keyframe) at frame 1001 to " in said, said
    assert "failed: Read2: cannot read frame" in said and "Viewer" in said and "not painted yet" in said, said


def test_a_node_renamed_while_it_computes_gets_its_matte(shot, tcvom_exe: str) -> None:
    """Nuke QA: renaming the node during a Compute lost the finished matte, said the node was
    deleted, left the status at "computing..." for good, and let a second Compute start."""
    read, trimap = shot
    node = _matte_node(read, trimap, tcvom_exe)
    run = nukenode.compute(node)
    assert run is not None, nuke.messages
    node["name"].setValue("Matte_hero")
    assert nukenode.compute(node) is None and "already computing" in nuke.messages[-1]
    assert nukenode.running() == ["Matte_hero"]
    other = _matte_node(read, trimap, tcvom_exe)  # named as the first was: its folder is being written (code review)
    other["name"].setValue(run.node_name)
    assert nukenode.compute(other) is None and "still computing into the folder of that name" in nuke.messages[-1]
    nuke.delete(other)
    nuke.messages.clear()
    _wait(run)
    assert nuke.messages == [] and "8 frames" in node["status"].value(), (nuke.messages, node["status"].value())
    assert node.node("tcvom_alpha")["file"].value() == f"{run.prepared.out}/alpha/alpha.####.exr"
    # deleted while it computes: said so, and nothing is applied
    again = nukenode.compute(node)
    assert again is not None
    nuke.delete(node)
    _wait(again)
    assert "Matte_hero was deleted while its matte was computed" in nuke.messages[-1]


def test_a_new_node_given_a_computed_nodes_former_name_does_not_replace_its_matte(shot, tcvom_exe: str) -> None:
    """Nuke QA: a computed node renamed (Matte_hero) kept showing the folder of its former
    name; a new node, given that free name, computed into it and the hero showed its matte."""
    read, trimap = shot
    hero = _matte_node(read, trimap, tcvom_exe)
    first = nukenode.compute(hero)
    assert first is not None
    _wait(first)
    former = first.node_name
    hero["name"].setValue("Matte_hero")
    shown = hero.node("tcvom_alpha")["file"].value()
    before = read_image(f"{first.prepared.out}/alpha/alpha.1005.exr")
    other = _matte_node(read, trimap, tcvom_exe)
    other["name"].setValue(former)
    other["keyframes"].setValue("1001")
    nuke.messages.clear()
    assert nukenode.compute(other) is None
    assert f"Matte_hero shows the matte cached in {first.prepared.out}, the folder of this node's name" in \
        nuke.messages[-1], nuke.messages
    assert "give this node another name" in nuke.messages[-1]
    assert hero.node("tcvom_alpha")["file"].value() == shown
    np.testing.assert_array_equal(read_image(f"{first.prepared.out}/alpha/alpha.1005.exr"), before)
    other["name"].setValue("Matte_other")
    run = nukenode.compute(other)
    assert run is not None and run.prepared.out != first.prepared.out
    _wait(run)
    # reviews: a copy of a computed node shows its folder too; the node itself still computes into it
    hero["name"].setValue(former)
    copy = _matte_node(read, trimap, tcvom_exe)
    copy.node("tcvom_alpha")["file"].setValue(shown)
    again = nukenode.compute(hero)
    assert again is not None and again.prepared.out == first.prepared.out, nuke.messages
    _wait(again)


def test_terminal_mode_names_the_working_space_knob(shot, tcvom_exe: str) -> None:
    """Nuke QA: in `nuke -t` a working space tcvom does not know failed naming tcvom's flag
    and config, not the knob; the GUI named the knob (the two ran the worker loop apart)."""
    read, trimap = shot
    read["colorspace"].setValue("weird")  # a colour space tcvom cannot read: the node renders the plate
    node = _matte_node(read, trimap, tcvom_exe)
    node["working_space"].setValue("Bogus")
    nuke.env["gui"] = False
    with pytest.raises(RuntimeError, match="the working space knob holds 'Bogus'"):
        nukenode.compute(node)
