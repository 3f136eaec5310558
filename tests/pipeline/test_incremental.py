"""The artist's loop (issue 15): a rerun into the same output recomputes only what an edit
touched, leaves everything else on disk as it was, and gives exactly the pixels of a run
from scratch with the same keyframes (classical method, and the torch engine with tiny
deterministic networks)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from tcvom import pipeline
from tcvom.cli import main
from tcvom.errors import InputError
from tcvom.io import read_image, write_image

FRAMES = list(range(1001, 1009))


def frame_files(folder: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")}


def stamps(out: Path) -> dict[str, tuple[int, bytes]]:
    """(mtime, bytes) of every output frame of a run folder."""
    return {f"{sub}/{name}": (p.stat().st_mtime_ns, p.read_bytes())
            for sub in ("trimaps", "alpha") if (out / sub).is_dir() for name, p in frame_files(out / sub).items()}


def touched(before: dict[str, tuple[int, bytes]], after: dict[str, tuple[int, bytes]], sub: str) -> list[int]:
    """Frames of ``sub`` whose file was written again (or is new)."""
    return sorted(int(name.split(".")[-2]) for name, stamp in after.items()
                  if name.startswith(sub + "/") and before.get(name) != stamp)


def assert_same_pixels(a: Path, b: Path) -> None:
    for sub in ("trimaps", "alpha"):
        files_a, files_b = frame_files(a / sub), frame_files(b / sub)
        assert sorted(files_a) == sorted(files_b), sub
        for name, path in files_a.items():
            pixels_a, _ = read_image(path)
            pixels_b, _ = read_image(files_b[name])
            assert np.array_equal(pixels_a, pixels_b), f"{sub}/{name} differs from the run from scratch"


@pytest.fixture
def shot(small_example, tmp_path: Path) -> Path:
    """The small example (96x64, 1001-1008) with keyframes 1001, 1004 and 1008: segments
    1001-1004 and 1005-1008."""
    folder = tmp_path / "shot"
    shutil.copytree(small_example.folder, folder)
    shutil.copy(folder / "truth" / "trimap.1004.png", folder / "keyframes" / "key.1004.png")
    return folder


def keys(shot: Path) -> str:
    return str(shot / "keyframes" / "key.####.png")


def plate(shot: Path) -> str:
    return str(shot / "plate" / "plate.####.exr")


def scratch(shot: Path, out: Path, **options) -> pipeline.JobResult:
    """A run from scratch into a new folder with the shot's keyframes as they are now."""
    copy = out.parent / (out.name + "-keys")
    shutil.copytree(shot / "keyframes", copy)
    return pipeline.run(plate(shot), out, keyframes=str(copy / "key.####.png"), progress="none", **options)


def classical_run(shot: Path, out: Path) -> list[str]:
    """The command line of a classical `run` of the shot into ``out``, quiet."""
    return ["run", "--plate", plate(shot), "--keyframes", keys(shot), "--out", str(out), "--method", "classical",
            "--progress", "none"]


def repaint_unknown(key: Path) -> None:
    """Paint a block of a trimap file unknown (another keyframe)."""
    pixels, _ = read_image(key)
    pixels[20:40, 30:60] = 128 / 255
    write_image(key, pixels, pixel_type="uint8", channels=("Y",))


def test_classical_edit_recomputes_only_the_segment_it_bounds(shot: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = pipeline.run(plate(shot), out, keyframes=keys(shot), method="classical", progress="none")
    assert sorted(first.stages["trimaps"]["computed"]) == FRAMES and sorted(first.written) == FRAMES
    before = stamps(out)

    # nothing changed: nothing is computed, nothing on disk is touched
    again = pipeline.run(plate(shot), out, keyframes=keys(shot), method="classical", progress="none")
    assert again.written == [] and again.stages["trimaps"]["computed"] == []
    assert sorted(again.stages["alpha"]["reused"]) == FRAMES
    assert stamps(out) == before

    # add a keyframe inside the second segment (1005-1008)
    shutil.copy(shot / "truth" / "trimap.1006.png", shot / "keyframes" / "key.1006.png")
    added = pipeline.run(plate(shot), out, keyframes=keys(shot), method="classical", progress="none")
    after = stamps(out)
    # (the segment's far keyframe, 1008, is computed again and left as it was: it is the keyframe)
    assert touched(before, after, "trimaps") == [1005, 1006, 1007]
    assert sorted(added.stages["trimaps"]["computed"]) == [1005, 1006, 1007, 1008]
    assert sorted(added.stages["trimaps"]["reused"]) == [1001, 1002, 1003, 1004]
    # an alpha is redone only when a trimap of its window changed: at most the segment and one frame before
    assert set(touched(before, after, "alpha")) == set(added.written)
    assert set(added.written) <= {1004, 1005, 1006, 1007, 1008} and added.written
    scratch(shot, tmp_path / "fresh", method="classical")
    assert_same_pixels(out, tmp_path / "fresh")

    # repaint the keyframe 1004: both segments it bounds are redone (every frame here)
    key = shot / "keyframes" / "key.1004.png"
    painted, _ = read_image(key)
    painted = painted.copy()
    assert painted[:8, :8].max() == 0.0
    painted[:8, :8] = 128 / 255  # a corner of the background painted unknown
    write_image(key, painted, pixel_type="uint8", channels=("Y",))
    before = stamps(out)
    repainted = pipeline.run(plate(shot), out, keyframes=keys(shot), method="classical", progress="none")
    assert sorted(repainted.stages["trimaps"]["computed"]) == [1001, 1002, 1003, 1004, 1005, 1006]
    assert touched(before, stamps(out), "trimaps") == [1002, 1003, 1004, 1005]  # keyframes 1001, 1006 kept
    scratch(shot, tmp_path / "fresh2", method="classical")
    assert_same_pixels(out, tmp_path / "fresh2")

    # remove the keyframe again: the segment it split is one segment again
    (shot / "keyframes" / "key.1006.png").unlink()
    removed = pipeline.run(plate(shot), out, keyframes=keys(shot), method="classical", progress="none")
    assert sorted(removed.stages["trimaps"]["computed"]) == [1005, 1006, 1007, 1008]
    scratch(shot, tmp_path / "fresh3", method="classical")
    assert_same_pixels(out, tmp_path / "fresh3")


def test_a_changed_plate_frame_is_redone_with_its_dependants(shot: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    pipeline.run(plate(shot), out, keyframes=keys(shot), method="classical", progress="none")
    before = stamps(out)
    frame = shot / "plate" / "plate.1006.exr"
    pixels, _ = read_image(frame)
    write_image(frame, np.clip(pixels * 0.9, 0, None), pixel_type="half")
    result = pipeline.run(plate(shot), out, keyframes=keys(shot), method="classical", progress="none")
    after = stamps(out)
    assert touched(before, after, "trimaps") == [1005, 1006, 1007]  # the segment that reads 1006 (1008: its keyframe)
    assert 1005 in result.written and 1006 in result.written and 1007 in result.written
    assert 1001 not in result.written and 1002 not in result.written
    # touching a file without changing it recomputes nothing (its content is the same)
    frame.touch()
    assert pipeline.run(plate(shot), out, keyframes=keys(shot), method="classical", progress="none").written == []


def test_a_changed_plate_frame_beside_a_segment_redoes_it(shot: Path, tmp_path: Path) -> None:
    """Rerun review: finding cuts reads the shot's frame on either side of a segment (a pair
    is judged by the pairs beside it), but a segment's key left those frames out, so a
    re-delivered frame that moved a cut into or out of the segment left its trimaps reused
    (exit 0, unlike a run from scratch). 1005 is read by the segment 1001-1004 as well."""
    out = tmp_path / "out"
    pipeline.run(plate(shot), out, keyframes=keys(shot), method="classical", progress="none")
    frame = shot / "plate" / "plate.1005.exr"
    pixels, _ = read_image(frame)
    write_image(frame, np.clip(pixels * 0.9, 0, None), pixel_type="half")
    planned = pipeline.trimaps(plate(shot), keys(shot), out / "trimaps", method="classical", progress="none",
                               plan_only=True)
    assert sorted(planned.written) == FRAMES
    pipeline.run(plate(shot), out, keyframes=keys(shot), method="classical", progress="none")
    scratch(shot, tmp_path / "fresh", method="classical")
    assert_same_pixels(out, tmp_path / "fresh")


def test_another_plate_with_the_same_names_is_not_reused(shot: Path, tmp_path: Path) -> None:
    """Issue 16, point 3: what a frame was made from is the plate's content, not its name."""
    out = tmp_path / "out"
    pipeline.run(plate(shot), out, keyframes=keys(shot), method="classical", progress="none")
    other = tmp_path / "other"
    shutil.copytree(shot, other)
    for path in (other / "plate").iterdir():
        pixels, _ = read_image(path)
        write_image(path, pixels[:, ::-1].copy(), pixel_type="half")
    result = pipeline.run(plate(other), out, keyframes=keys(other), method="classical", progress="none")
    assert sorted(result.written) == FRAMES and sorted(result.stages["trimaps"]["computed"]) == FRAMES


def test_a_pattern_spelt_another_way_is_the_same_input(shot: Path, tmp_path: Path) -> None:
    """The same files as plate.%04d.exr (or $F4, @@@@, a range in the name) recomputed the
    whole shot, and the trimaps spelt another way recomputed every alpha."""
    out = tmp_path / "out"
    pipeline.run(plate(shot), out, keyframes=keys(shot), method="classical", progress="none")
    before = stamps(out)
    for name in ("plate.%04d.exr", "plate.$F4.exr", "plate.@@@@.exr", "plate.1001-1008####.exr",
                 "plate.1001-1008#.exr", "plate.@.exr"):
        result = pipeline.run(str(shot / "plate" / name), out, keyframes=str(shot / "keyframes" / "key.%04d.png"),
                              method="classical", progress="none")
        assert result.written == [] and result.stages["trimaps"]["computed"] == [], name
    spelt = pipeline.matte(str(shot / "plate" / "plate.%04d.exr"), str(out / "trimaps" / "trimap.$F4.png"),
                           out / "alpha", method="classical", progress="none")
    assert spelt.written == []
    assert stamps(out) == before


def test_a_changed_setting_redoes_the_stage_in_the_same_folder(shot: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    pipeline.run(plate(shot), out, keyframes=keys(shot), method="classical", progress="none")
    before = stamps(out)
    result = pipeline.run(plate(shot), out, keyframes=keys(shot), method="classical", alpha_format="png16",
                          progress="none")
    assert sorted(result.written) == FRAMES and result.stages["trimaps"]["computed"] == []
    assert touched(before, stamps(out), "trimaps") == []
    names = sorted(frame_files(out / "alpha"))
    assert names == [f"alpha.{f}.png" for f in FRAMES]  # the EXRs of the old setting are gone
    assert result.stages["alpha"]["removed"] == FRAMES  # and the summary says so
    # a shorter shot: the frames it no longer has are removed with their records
    (shot / "keyframes" / "key.1008.png").unlink()
    short = pipeline.run(plate(shot), out, keyframes=keys(shot), method="classical", alpha_format="png16",
                         shot_range="1001-1006", progress="none")
    assert sorted(short.stages["alpha"]["removed"]) == [1007, 1008]
    assert sorted(frame_files(out / "alpha")) == [f"alpha.{f}.png" for f in range(1001, 1007)]
    assert sorted(short.stages["trimaps"]["removed"]) == [1007, 1008]


def test_a_keyframe_channel_picks_from_the_keyframes_only(shot: Path, tmp_path: Path, capsys) -> None:
    """``--trimap-channel G`` reads the painted keyframes' G; the matte stage reads tcvom's
    own one-channel trimaps as they are (it used to ask them for a G channel and fail), and
    the same run with the luma keyframes makes the same alpha."""
    coloured = tmp_path / "coloured"
    coloured.mkdir()
    for path in sorted((shot / "keyframes").glob("key.*.png")):
        grey, _ = read_image(path)
        noise = np.random.default_rng(0).random(grey.shape[:2], dtype=np.float32)
        write_image(coloured / path.name, np.dstack([noise, grey[..., 0], 1 - noise]).astype(np.float32), pixel_type="uint8")
    out, luma = tmp_path / "out", tmp_path / "luma"
    code = main(["run", "--plate", plate(shot), "--keyframes", str(coloured / "key.####.png"), "--out", str(out),
                 "--trimap-channel", "G", "--method", "classical", "--progress", "none"])
    assert code == 0
    assert "--trimap-channel" not in capsys.readouterr().err  # the keyframes' channel, not a notice
    pipeline.run(plate(shot), luma, keyframes=keys(shot), method="classical", progress="none")
    assert_same_pixels(out, luma)
    # tcvom's own trimaps given to the matte stage: a channel asked for is said to be unused
    code = main(["matte", "--plate", plate(shot), "--trimaps", str(out / "trimaps" / "trimap.####.png"), "--out",
                 str(tmp_path / "again"), "--trimap-channel", "A", "--method", "classical", "--progress", "none"])
    assert code == 0
    assert "--trimap-channel A, which picks a channel of painted trimaps, is not used" in capsys.readouterr().err
    again, first = frame_files(tmp_path / "again"), frame_files(out / "alpha")
    assert sorted(again) == sorted(first)
    assert all(np.array_equal(read_image(again[n])[0], read_image(first[n])[0]) for n in first)


def test_a_leftover_manifest_without_frames_binds_nothing(shot: Path, tmp_path: Path, capsys) -> None:
    """Issue 16, point 7: a manifest left without frames does not block other settings."""
    out = tmp_path / "alpha"
    pipeline.matte(plate(shot), str(shot / "truth" / "trimap.####.png"), out, frames="1001-1002",
                   method="classical", progress="none")
    for path in frame_files(out).values():
        path.unlink()
    code = main(["matte", "--plate", plate(shot), "--trimaps", str(shot / "truth" / "trimap.####.png"), "--out",
                 str(out), "--frames", "1003-1004", "--trimap-channel", "R", "--method", "classical",
                 "--progress", "none"])
    assert code == 0, capsys.readouterr().err


def test_run_says_what_it_reused_and_computed(shot: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    args = ["run", "--plate", plate(shot), "--keyframes", keys(shot), "--out", str(out), "--method", "classical"]
    assert main([*args, "--progress", "none"]) == 0
    capsys.readouterr()
    shutil.copy(shot / "truth" / "trimap.1006.png", shot / "keyframes" / "key.1006.png")
    assert main([*args, "--progress", "json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    plans = {e["job"]: e for e in events if e["event"] == "plan"}
    assert plans["trimaps"]["reused"]["trimaps"] == {"count": 4, "frames": "1001-1004"}
    assert plans["trimaps"]["computed"]["trimaps"]["frames"] == "1005-1008"
    # keyframe 1008's file is left as it was (docs/cli.md): it replaces nothing
    assert plans["trimaps"]["computed"]["trimaps"]["changed"] == 3
    result = events[-1]
    assert result["event"] == "result"
    assert result["computed"]["trimaps"]["frames"] == "1005-1008"
    assert result["reused"]["trimaps"]["count"] == 4
    assert result["reused"]["alpha"]["count"] + result["computed"]["alpha"]["count"] == 8
    assert main([*args, "--progress", "none"]) == 0
    err = capsys.readouterr().err
    assert "8 frame(s) reused" in err and "nothing to compute" in err
    assert "trimaps 0 computed, 8 reused" in err
    # another setting redoes a whole stage: said too, not only on a first run's bar
    assert main([*args, "--progress", "none", "--alpha-format", "exr32"]) == 0
    err = capsys.readouterr().err
    assert "alpha: nothing reused, 8 to compute (1001-1008), 8 of them replacing earlier files" in err
    # --overwrite replaces every file: the plan says so (it said 0 replaced, and the bar nothing)
    assert main([*args, "--progress", "bar", "--overwrite"]) == 0
    err = capsys.readouterr().err
    for stage in ("trimaps", "alpha"):
        assert f"{stage}: nothing reused, 8 to compute (1001-1008), 8 of them replacing earlier files" in err
    assert main([*args, "--progress", "json", "--overwrite"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    changed = {output: c["changed"] for e in events if e["event"] == "plan" for output, c in e["computed"].items()}
    assert changed == {"trimaps": 8, "alpha": 8}


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory, stm_model, gca_model) -> tuple[Path, Path]:
    """Tiny deterministic STM and GCA+TAM weight files (the shared seeded networks)."""
    import torch

    folder = tmp_path_factory.mktemp("weights")
    torch.save(stm_model.state_dict(), folder / "stm.pth")
    torch.save(gca_model.state_dict(), folder / "gca_tam.pth")
    return folder / "stm.pth", folder / "gca_tam.pth"


def test_the_matting_precision_does_not_redo_stm_trimaps_on_torch(shot: Path, tmp_path: Path, weights) -> None:
    """Neural QA: on torch the STM runs float32 whatever --precision says (the matting
    network's), but the trimaps recorded the asked precision: a switch from bf16 to fp32
    recomputed every trimap into the same bytes. They record float32 and are reused."""
    from tcvom.pipeline.methods import cpu_has_fast_bf16

    if not cpu_has_fast_bf16():
        pytest.skip("bf16 is refused on this CPU (no fast bf16)")
    stm = str(weights[0])
    options = {"method": "tcvom", "weights": stm, "finetune_steps": 0, "progress": "none"}
    first = pipeline.trimaps(plate(shot), keys(shot), tmp_path / "t", precision="bf16", **options)
    again = pipeline.trimaps(plate(shot), keys(shot), tmp_path / "t", precision="fp32", **options)
    assert first.written and not again.written and sorted(again.skipped) == sorted(first.written)
    recorded = json.loads(next((tmp_path / "t").glob(".*.tcvom.json")).read_text())
    assert recorded["settings"]["precision"] == "fp32", recorded["settings"]


@pytest.mark.parametrize("finetune", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_tcvom_edit_is_local_and_equals_a_run_from_scratch(shot: Path, tmp_path: Path, weights, finetune) -> None:
    """The torch engine on CPU, with and without online fine-tuning (per segment, cached)."""
    import torch

    stm, gca = weights
    options = dict(method="tcvom", weights=stm, matting_weights=gca, finetune_steps=finetune,
                   trimap_options={"finetune_size": 64} if finetune else None)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path / "out"
        pipeline.run(plate(shot), out, keyframes=keys(shot), progress="none", **options)
        before = stamps(out)
        shutil.copy(shot / "truth" / "trimap.1006.png", shot / "keyframes" / "key.1006.png")
        result = pipeline.run(plate(shot), out, keyframes=keys(shot), progress="none", **options)
        assert sorted(result.stages["trimaps"]["computed"]) == [1005, 1006, 1007, 1008]
        assert touched(before, stamps(out), "trimaps") == [1005, 1006, 1007]  # the keyframe 1008 is left as it was
        assert set(result.written) <= {1004, 1005, 1006, 1007, 1008}
        scratch(shot, tmp_path / "fresh", **options)
    finally:
        torch.set_num_threads(threads)
    assert_same_pixels(out, tmp_path / "fresh")
    alpha, _ = read_image(out / "alpha" / "alpha.1006.exr")
    assert len(np.unique(alpha)) > 10  # a real matte, not a constant
    if finetune:
        cached = list((out / "trimaps" / ".trimap.tcvom" / "cache").glob("stm_finetuned_*.pt"))
        assert len(cached) == 3  # one per segment: 1001-1004, 1005-1006, 1007-1008 (1005-1008 is pruned)


def test_shot_wide_finetuning_redoes_every_segment_when_a_keyframes_plate_changes(shot: Path, tmp_path: Path,
                                                                                  weights) -> None:
    """Rerun review: with --finetune-scope shot the network is tuned on every keyframe's plate
    frame, but a segment's key held its own frames only: a re-delivered keyframe frame left
    the other segments' trimaps, made by the network tuned on the old frame, reused."""
    import torch

    options = {"method": "tcvom", "weights": str(weights[0]), "finetune_steps": 1, "finetune_scope": "shot",
               "method_options": {"finetune_size": 64}, "progress": "none"}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path / "trimaps"
        assert sorted(pipeline.trimaps(plate(shot), keys(shot), out, **options).written) == FRAMES
        frame = shot / "plate" / "plate.1008.exr"
        pixels, _ = read_image(frame)
        write_image(frame, np.clip(pixels * 0.9, 0, None), pixel_type="half")
        planned = pipeline.trimaps(plate(shot), keys(shot), out, plan_only=True, **options)
        # the review names what a run redoes (every segment: the keyframe's frame tuned them all)
        from tcvom.review.doubt import trimaps_of_changed_plates

        assert trimaps_of_changed_plates(out / "trimap.####.png", FRAMES) == FRAMES
        pipeline.trimaps(plate(shot), keys(shot), out, **options)
        assert trimaps_of_changed_plates(out / "trimap.####.png", FRAMES) == []
        # code review: a frame no keyframe is on is read by its own segment only (the review
        # called the whole shot out of date, while a run and a farm plan redo that segment)
        frame = shot / "plate" / "plate.1006.exr"
        pixels, _ = read_image(frame)
        write_image(frame, np.clip(pixels * 0.9, 0, None), pixel_type="half")
        redone = pipeline.trimaps(plate(shot), keys(shot), out, plan_only=True, **options).written
        assert trimaps_of_changed_plates(out / "trimap.####.png", FRAMES) == sorted(redone) != FRAMES
    finally:
        torch.set_num_threads(threads)
    assert sorted(planned.written) == FRAMES  # the segment 1001-1004 too, though it reads 1008 only to tune


def test_a_pruned_frame_whose_file_changed_is_left_and_named(shot: Path, tmp_path: Path, caplog) -> None:
    """An output whose shot gets shorter, where frames the shot no longer has were edited
    since (their bytes changed): they are not tcvom's files any more; they stay, a warning
    names them, and they are not reported as removed (they were, and stayed on disk). A file
    only touched (its time moved, its bytes the same) is still tcvom's."""
    out = tmp_path / "out"
    pipeline.run(plate(shot), out, keyframes=keys(shot), method="classical", progress="none")
    for frame in (1007, 1008):
        path = out / "alpha" / f"alpha.{frame}.exr"
        path.write_bytes(path.read_bytes() + b"\0")  # edited: still an EXR, other bytes
    touched_only = out / "trimaps" / "trimap.1008.png"
    os.utime(touched_only, ns=(touched_only.stat().st_atime_ns, touched_only.stat().st_mtime_ns + 10**9))
    (shot / "keyframes" / "key.1008.png").unlink()
    short = pipeline.run(plate(shot), out, keyframes=keys(shot), method="classical", shot_range="1001-1006",
                         progress="none")
    assert short.stages["alpha"]["removed"] == [] and short.stages["trimaps"]["removed"] == [1007, 1008]
    assert (out / "alpha" / "alpha.1007.exr").is_file() and (out / "alpha" / "alpha.1008.exr").is_file()
    assert not touched_only.exists()
    assert "left 2 file(s)" in caplog.text and "1007-1008" in caplog.text


def test_a_part_refused_for_its_matte_settings_changes_nothing(shot: Path, tmp_path: Path, capsys) -> None:
    """`run --frames ... --alpha-format png16` into a shot made in EXR is refused by the matte
    stage; its trimap stage used to rewrite trimaps and take the shot's review away first."""
    out = tmp_path / "out"
    args = classical_run(shot, out)
    assert main(args) == 0
    before = stamps(out)
    review = {p.name: p.read_bytes() for p in (out / "review").iterdir() if p.is_file()}
    for extra in (["--alpha-format", "png16"], ["--alpha-format", "png16", "--overwrite"], ["--output", "rgba"]):
        capsys.readouterr()
        assert main([*args, "--frames", "1002-1003", *extra]) == 2
        err = capsys.readouterr().err
        assert "made with other settings" in err and "run the whole shot (no --frames)" in err
        assert stamps(out) == before, extra
        assert {p.name: p.read_bytes() for p in (out / "review").iterdir() if p.is_file()} == review


def test_trimap_records_keep_each_input_once(small_example, tmp_path: Path, monkeypatch) -> None:
    """Each trimap's record listed every plate frame of its keyframe segment: the records
    grew with the square of a segment's length (173 MB for 1000 frames keyed at the start),
    and every rerun read them all. Each state is now kept once; a rerun still hashes no
    plate frame and reuses every file."""
    from tcvom.farm.records import FrameRecords
    from tcvom.io import hashing

    out = tmp_path / "trimaps"
    pipeline.trimaps(small_example.plate, small_example.keyframes, out, method="classical", progress="none")
    records = FrameRecords(out / "trimap.####.png")
    frames = list(range(small_example.first, small_example.last + 1))
    inputs = [records.get(f)["inputs"] for f in frames]
    listed = [path for states in inputs for path in states]
    plates = {str(Path(small_example.plate.replace("####", str(f))).absolute()) for f in frames}
    assert sorted(listed) == sorted(plates) and max(map(len, inputs)) == 1  # one segment: each frame its own
    before = stamps(tmp_path)
    hashed: list[str] = []
    read = hashing._read_sha256
    monkeypatch.setattr(hashing, "_read_sha256", lambda path: hashed.append(str(path)) or read(path))  # a spy
    again = pipeline.trimaps(small_example.plate, small_example.keyframes, out, method="classical", progress="none")
    assert again.written == [] and stamps(tmp_path) == before
    assert not [p for p in hashed if p in plates]


def test_files_painted_over_since_are_said_before_they_are_replaced(shot: Path, tmp_path: Path, capsys) -> None:
    """QA: a trimap or alpha fixed by hand was computed again and replaced without a word;
    and a rerun into another --alpha-format, which replaces every alpha, said nothing of it
    before the work (its new names looked like a first run)."""
    out = tmp_path / "out"
    args = classical_run(shot, out)
    assert main(args) == 0
    for path, channels, kind in ((out / "alpha" / "alpha.1005.exr", ("A",), "half"),
                                 (out / "trimaps" / "trimap.1003.png", ("Y",), "uint8")):
        pixels, _ = read_image(path)
        pixels[:4] = 1.0  # painted over
        write_image(path, pixels, pixel_type=kind, channels=channels)
    os.utime(out / "trimaps" / "trimap.1002.png")  # only touched: nothing to say, nothing to redo
    capsys.readouterr()
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "trimap.####.png: 1 file(s) changed since tcvom wrote them are computed again and replaced (1003); " \
           "a trimap fixed by hand is used when given as a keyframe" in err, err
    assert "alpha.####.exr: 1 file(s) changed since tcvom wrote them are computed again and replaced (1005)" in err
    assert "trimaps: 7 frame(s) reused (1001-1002,1004-1008), 1 to compute (1003)" in err
    assert main([*args, "--alpha-format", "png16"]) == 0
    assert "alpha: nothing reused, 8 to compute (1001-1008), 8 of them replacing earlier files" in \
        capsys.readouterr().err


def test_a_keyframes_trimap_painted_over_is_said_unless_it_is_the_keyframe(shot: Path, tmp_path: Path,
                                                                          capsys) -> None:
    """Loop QA: the trimap file of a keyframe's frame, painted over by hand, was put back
    from the keyframe without a word (files of other frames are named first). The file given
    as the keyframe itself (fixed by hand, then passed with --keyframes) is kept, unnamed."""
    out = tmp_path / "out"
    args = classical_run(shot, out)
    assert main(args) == 0
    painted = out / "trimaps" / "trimap.1004.png"
    pixels, _ = read_image(painted)
    pixels[:4] = 1.0
    write_image(painted, pixels, pixel_type="uint8", channels=("Y",))
    capsys.readouterr()
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "trimap.####.png: 1 file(s) changed since tcvom wrote them are computed again and replaced (1004)" in err, err
    assert np.array_equal(read_image(painted)[0], read_image(shot / "keyframes" / "key.1004.png")[0])
    write_image(painted, pixels, pixel_type="uint8", channels=("Y",))  # painted again, and given as the keyframe
    given = [f"{f}={shot / 'keyframes' / f'key.{f}.png'}" for f in (1001, 1008)] + [f"1004={painted}"]
    assert main([*args[:4], *given, *args[5:]]) == 0
    err = capsys.readouterr().err
    assert "changed since tcvom wrote them" not in err and np.array_equal(read_image(painted)[0], pixels), err


def test_a_run_of_some_frames_says_which_others_it_left_out_of_date(shot: Path, tmp_path: Path, capsys) -> None:
    """QA: after a keyframe edit, `run --frames` redid its frames and left the rest of the
    shot made from the old keyframe without a word (its review mixed both)."""
    out = tmp_path / "out"
    args = classical_run(shot, out)
    assert main(args) == 0
    repaint_unknown(shot / "keyframes" / "key.1004.png")  # repainted: more unknown
    capsys.readouterr()
    assert main([*args, "--frames", "1002"]) == 0
    err = capsys.readouterr().err
    # 1008: a keyframe whose file a whole run keeps as it is
    assert "outside this run's frames, trimaps 1004-1007 and alphas 1001,1003-1008 were made from other keyframes" in err, err
    assert main(args) == 0 and "outside this run's frames" not in capsys.readouterr().err
    assert main([*args, "--frames", "1002"]) == 0 and "out of date" not in capsys.readouterr().err
    # review QA: --overwrite redoes this run's frames, it does not make the others out of date; and
    # auto's notices are said once, not again by the check
    auto = [a if a != "classical" else "auto" for a in args]
    assert main([*auto, "--frames", "1002", "--overwrite"]) == 0
    err = capsys.readouterr().err
    assert "out of date" not in err and err.count("no GCA+TAM (TCVOM video matting) weights found") == 1, err


def test_a_run_of_some_frames_beside_a_live_run_into_the_output_judges_no_other_frame(
        shot: Path, tmp_path: Path, capsys) -> None:
    """Loop QA: two `run --frames` chunks into one output at once: one now and then said that
    frames the other was writing (renamed, record not yet written) were out of date and to
    run the whole shot. While another run writes the output, the frames found are said as
    maybe out of date (nothing where none is found); once it has gone, as out of date."""
    from tcvom.farm.locks import LiveWriters
    from tcvom.farm.manifest import records_folder

    out = tmp_path / "out"
    args = classical_run(shot, out)
    assert main(args) == 0
    other = LiveWriters(records_folder(out / "alpha" / "alpha.####.exr"))  # another run, in its matte stage
    other.join()  # nothing edited: a chunk beside another says nothing (code review)
    try:
        assert main([*args, "--frames", "1002"]) == 0
    finally:
        other.leave()
    assert "out of date" not in capsys.readouterr().err
    repaint_unknown(shot / "keyframes" / "key.1004.png")
    capsys.readouterr()
    other.join()
    try:
        assert main([*args, "--frames", "1002"]) == 0
    finally:
        other.leave()
    err = capsys.readouterr().err
    assert "are out of date" not in err and "may be out of date, or only half-recorded by another run writing " \
        "this output now" in err and "--rebuild` names those left behind" in err, err
    assert main([*args, "--frames", "1003"]) == 0
    err = capsys.readouterr().err
    assert "outside this run's frames, trimaps 1005-1007 and alphas" in err and "are out of date" in err, err


def test_a_kept_keyframe_trimap_is_not_said_out_of_date_nor_its_neighbours(shot: Path, tmp_path: Path,
                                                                           capsys) -> None:
    """QA: after an edit of keyframe 1001, a run of frame 1002 said that the trimap of keyframe
    1004 (its file a whole run leaves as it is) and the alpha of 1005 (whose window holds only
    it of the recomputed segment) were out of date; the whole run then reused both."""
    out = tmp_path / "out"
    args = classical_run(shot, out)
    assert main(args) == 0
    repaint_unknown(shot / "keyframes" / "key.1001.png")
    capsys.readouterr()
    assert main([*args, "--frames", "1002"]) == 0
    err = capsys.readouterr().err
    assert "outside this run's frames, alphas 1001,1003-1004 were made from other keyframes" in err, err
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "alpha: 5 frame(s) reused (1002,1005-1008), 3 to compute (1001,1003-1004)" in err, err


def _files_hashed(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> list[Path]:
    """The paths ``module.name`` (a hashing function) is called with from now on."""
    hashed: list[Path] = []
    real = getattr(module, name)

    def counted(path):
        hashed.append(Path(path))
        return real(path)

    monkeypatch.setattr(module, name, counted)
    return hashed


def test_a_copied_output_is_hashed_once_not_on_every_run(shot: Path, tmp_path: Path, monkeypatch) -> None:
    """A copy of an output (`cp -r`: new times, same bytes) is reused; QA: its files were read
    in full on every later run, as their records kept the old times."""
    from tcvom.io import hashing

    out = tmp_path / "out"
    pipeline.run(plate(shot), out, keyframes=keys(shot), method="classical", progress="none")
    copy = tmp_path / "copy"
    shutil.copytree(out, copy, copy_function=shutil.copy)
    read = _files_hashed(monkeypatch, hashing, "_read_sha256")
    for expected in ("every output once", "none"):
        read.clear()
        again = pipeline.run(plate(shot), copy, keyframes=keys(shot), method="classical", progress="none")
        assert again.written == []
        outputs = {p.name for p in read if copy in p.parents}
        if expected == "none":
            assert outputs == set(), sorted(outputs)
        else:
            assert {f"alpha.{f}.exr" for f in range(1001, 1009)} <= outputs


def test_a_plate_copied_again_is_hashed_once_not_on_every_run(shot: Path, tmp_path: Path, monkeypatch) -> None:
    """A plate copied over itself (same bytes, new times) reuses every frame; its files were
    then hashed on every later run, as the reused frames' records kept the old times."""
    out = tmp_path / "out"
    pipeline.run(plate(shot), out, keyframes=keys(shot), method="classical", progress="none")
    for frame in FRAMES:  # copied again: a later time
        path = shot / "plate" / f"plate.{frame}.exr"
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    _plate_hashed_once(monkeypatch, out, shot, keys(shot))


def _plate_hashed_once(monkeypatch, out: Path, where: Path, keyframes: str) -> None:
    """Two reruns into ``out`` of the plate in ``where`` reuse every frame: the first hashes
    every plate frame (they moved), the second none (the records learnt them)."""
    from tcvom.farm import records

    hashed = _files_hashed(monkeypatch, records, "file_digest")
    for expected in ("every plate frame", "none"):
        hashed.clear()
        again = pipeline.run(plate(where), out, keyframes=keyframes, method="classical", progress="none")
        assert again.written == []
        plates = {p.name for p in hashed if p.parent == where / "plate"}
        assert plates == (set() if expected == "none" else {f"plate.{f}.exr" for f in FRAMES}), expected


def test_a_renamed_plate_folder_is_hashed_once_not_on_every_run(shot: Path, tmp_path: Path, monkeypatch) -> None:
    """Loop QA: after the plate folder was renamed every rerun read the whole plate again
    (the reused frames' records kept only the old paths)."""
    out = tmp_path / "out"
    pipeline.run(plate(shot), out, keyframes=keys(shot), method="classical", progress="none")
    moved = tmp_path / "moved"
    shutil.copytree(shot, moved)
    shutil.rmtree(shot / "plate")
    _plate_hashed_once(monkeypatch, out, moved, keys(shot))


def test_the_matte_stage_does_not_hash_the_trimaps_its_run_just_made(shot: Path, tmp_path: Path, monkeypatch) -> None:
    """Code review: the trimaps' records kept no inode nor status-change time, so the matte
    stage could not take their digests from them and read every trimap once more."""
    from tcvom.farm import records

    hashed = _files_hashed(monkeypatch, records, "file_digest")
    pipeline.run(plate(shot), tmp_path / "out", keyframes=keys(shot), method="classical", progress="none")
    trimaps = [p.name for p in hashed if p.parent == tmp_path / "out" / "trimaps"]
    assert sorted(trimaps) == [f"trimap.{f}.png" for f in FRAMES], sorted(trimaps)  # once each, as written


def test_two_plate_frames_of_one_size_and_time_swapped_are_noticed(tmp_path: Path) -> None:
    """Loop QA: two uncompressed frames of one size and one time (an unpacked plate) swapped
    by renaming kept their recorded digests: every frame was reused, six alphas wrong."""
    from tcvom.farm.records import FileDigests

    a, b = tmp_path / "plate.1004.tif", tmp_path / "plate.1012.tif"
    a.write_bytes(b"a" * 64)
    b.write_bytes(b"b" * 64)
    for path in (a, b):
        os.utime(path, ns=(10**18, 10**18))
    known = FileDigests()
    first = {p: known.sha256(p) for p in (a, b)}
    spare = tmp_path / "t"
    a.rename(spare)
    b.rename(a)
    spare.rename(b)
    assert a.stat().st_mtime_ns == b.stat().st_mtime_ns and a.stat().st_size == b.stat().st_size
    again = FileDigests(known._known)  # a later run, from the records
    assert again.sha256(a) == first[b] and again.sha256(b) == first[a]


def test_a_chunked_run_says_what_auto_chose_once(shot: Path, tmp_path: Path, capsys) -> None:
    """QA: `run --chunk 3` without matting weights said "no GCA+TAM ... weights found" once
    per chunk."""
    assert main(["run", "--plate", plate(shot), "--keyframes", keys(shot), "--out", str(tmp_path / "out"),
                 "--method", "auto", "--chunk", "3", "--progress", "none"]) == 0
    err = capsys.readouterr().err
    assert err.count("no GCA+TAM (TCVOM video matting) weights found") == 1, err


def test_a_chunked_run_over_the_whole_shot_takes_other_settings(shot: Path, tmp_path: Path, capsys) -> None:
    """Network loop QA: `run --chunk N` over the whole shot refused a changed setting (each
    chunk being part of the shot), after it had replaced the trimaps and removed the review;
    a run without --chunk takes it. Its chunks now claim the shot as one task."""
    out = tmp_path / "out"
    args = ["run", "--plate", plate(shot), "--keyframes", keys(shot), "--out", str(out), "--method", "classical",
            "--progress", "none"]
    assert main(args) == 0
    assert main([*args, "--output", "rgba", "--chunk", "3"]) == 0, capsys.readouterr().err
    single = tmp_path / "single"
    assert main([*args[:5], "--out", str(single), *args[7:], "--output", "rgba"]) == 0
    assert_same_pixels(out, single)
    assert (out / "review" / "review.json").is_file()
    # a part of the shot is still refused other settings, before its trimaps change
    before = stamps(out)
    assert main([*args, "--output", "alpha", "--chunk", "3", "--frames", "1002-1005"]) == 2
    assert "made with other settings" in capsys.readouterr().err
    assert stamps(out) == before


def test_trimaps_of_another_ensemble_rule_are_made_again(shot: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Cut review: after the ensemble stopped carrying trimaps across cuts, a rerun into an
    older output reused the trimaps the old rule had carried across a cut, without a word."""
    from tcvom.pipeline import jobs

    out = tmp_path / "out"
    pipeline.run(plate(shot), out, keyframes=keys(shot), method="classical", progress="none")
    again = pipeline.run(plate(shot), out, keyframes=keys(shot), method="classical", progress="none")
    assert again.stages["trimaps"]["computed"] == []
    monkeypatch.setattr(jobs, "RULE", "an-earlier-rule")
    older = pipeline.run(plate(shot), out, keyframes=keys(shot), method="classical", progress="none")
    assert sorted(older.stages["trimaps"]["computed"]) == FRAMES


def test_an_edited_ocio_config_redoes_the_frames(shot: Path, tmp_path: Path) -> None:
    """Colour QA: the records kept the --ocio-config path as typed, so frames converted with
    a config since edited were reused; its content (OpenColorIO's cache id) is kept now."""
    import PyOpenColorIO as ocio

    config = tmp_path / "show.ocio"
    text = ocio.Config.CreateFromBuiltinConfig("studio-config-latest").serialize()
    config.write_text(text)
    options = {"method": "classical", "progress": "none", "ocio_config": str(config),
               "input_colorspace": "Linear Rec.709 (sRGB)"}
    out = tmp_path / "alpha"
    trimaps = str(shot / "truth" / "trimap.####.png")
    assert pipeline.matte(plate(shot), trimaps, out, **options).written == FRAMES
    assert pipeline.matte(plate(shot), trimaps, out, **options).written == []  # unchanged: reused
    config.write_text(text.replace("description:", "description: edited,", 1))
    assert pipeline.matte(plate(shot), trimaps, out, **options).written == FRAMES


def test_the_same_ocio_config_by_another_path_is_the_same_input(shot: Path, tmp_path: Path, monkeypatch) -> None:
    """Rerun review: the --ocio-config path as typed was a compared setting (and OpenColorIO's
    cache id holds the folder a search path is resolved in): the same config spelt relative,
    or a copy on another mount, recomputed every frame, and a farm task given the copy was
    refused. The config is its file name and content; the path is recorded for people."""
    import PyOpenColorIO as ocio

    text = ocio.Config.CreateFromBuiltinConfig("studio-config-latest").serialize()
    assert "search_path" in text
    for folder in ("cfg", "mount2/cfg"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "show.ocio").write_text(text)
    monkeypatch.chdir(tmp_path)
    options = {"method": "classical", "progress": "none", "input_colorspace": "Linear Rec.709 (sRGB)"}
    out = tmp_path / "alpha"
    trimaps = str(shot / "truth" / "trimap.####.png")
    assert pipeline.matte(plate(shot), trimaps, out, ocio_config="cfg/show.ocio", **options).written == FRAMES
    assert pipeline.matte(plate(shot), trimaps, out, ocio_config=str(tmp_path / "cfg" / "show.ocio"),
                          **options).written == []
    part = pipeline.matte(plate(shot), trimaps, out, ocio_config=str(tmp_path / "mount2" / "cfg" / "show.ocio"),
                          frames="1001-1004", overwrite=True, **options)  # a farm task on another host
    assert part.written == [1001, 1002, 1003, 1004]
    recorded = json.loads(next(out.glob(".*.tcvom.json")).read_text())
    assert recorded["settings"]["ocio_config"] == "show.ocio", recorded["settings"]
    assert recorded["info"]["ocio_config"] == str(tmp_path / "cfg" / "show.ocio"), recorded["info"]
    from tcvom.pipeline.jobs import review_output

    assert not (tmp_path / "show.ocio").exists()  # the farm's review step opens the recorded path, not the name
    assert review_output(tmp_path, plate=plate(shot))[0].frames
    # review: the first run's config gone, the farm's Review step gives the config it has (the template passes it)
    shutil.move(tmp_path / "cfg", tmp_path / "moved")
    with pytest.raises(InputError, match="config the matte was made with is not there any more") as error:
        review_output(tmp_path, plate=plate(shot))
    assert "--ocio-config" in str(error.value.hint)
    assert main(["review", str(tmp_path), "--rebuild", "--plate", plate(shot), "--ocio-config",
                 str(tmp_path / "mount2" / "cfg" / "show.ocio"), "--progress", "none"]) == 0
    # a built-in config is no file to miss (end-of-session review: it was said to be gone)
    builtin = tmp_path / "builtin"
    pipeline.matte(plate(shot), trimaps, builtin / "alpha", ocio_config="studio-config-latest", frames="1001-1002",
                   **options)
    assert review_output(builtin, plate=plate(shot))[0].frames


def test_a_matte_into_another_format_says_the_files_it_removed(shot: Path, tmp_path: Path, capsys) -> None:
    """Movie QA: `tcvom matte` into an output that held the matte in another format removed
    those files and said so only in its JSON result (`run` says 'N removed')."""
    args = ["matte", "--plate", plate(shot), "--trimaps", str(shot / "truth" / "trimap.####.png"), "--out",
            str(tmp_path / "deliv"), "--method", "classical", "--progress", "none"]
    assert main(args) == 0
    capsys.readouterr()
    assert main([*args, "--alpha-format", "png16"]) == 0
    err = capsys.readouterr().err
    assert "8 frame(s) written with the classical method, 8 removed" in err, err
    assert sorted(p.suffix for p in (tmp_path / "deliv").iterdir() if p.is_file() and not p.name.startswith(".")) == [".png"] * 8
