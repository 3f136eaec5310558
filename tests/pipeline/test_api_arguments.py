"""The Python API takes what a pipeline script naturally passes, and refuses what it cannot
use with a tcvom error before anything is written (QA: bare TypeErrors from deep inside, a
dict of keyframes read as file patterns, folders made before a bad progress mode)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tcvom import pipeline
from tcvom.data.example import write_example
from tcvom.errors import InputError
from tcvom.evaluation.mattes import make_synthetic
from tcvom.io import open_frames, read_image
from tcvom.pipeline.jobs import review_output
from tcvom.review.doubt import load_review, rebuild_review


def _keys(small_example) -> dict[int, str]:
    return {f: small_example.keyframes.replace("####", str(f)) for f in (small_example.first, small_example.last)}


def test_one_frame_a_list_and_a_mapping_of_keyframes(small_example, tmp_path: Path) -> None:
    frame = small_example.first + 2
    result = pipeline.run(small_example.plate, tmp_path / "a", keyframes=_keys(small_example), frames=frame,
                          method="classical", progress="none", review=False)
    assert result.written == [frame]
    pairs = [f"{f}={p}" for f, p in _keys(small_example).items()]
    same = pipeline.run(small_example.plate, tmp_path / "b", keyframes=pairs, frames=[frame], method="classical",
                        progress="none", review=False)
    assert same.written == [frame]
    name = f"alpha.{frame}.exr"
    first, second = (read_image(tmp_path / run / "alpha" / name) for run in ("a", "b"))  # headers hold the time
    assert np.array_equal(first[0], second[0]) and first[1].channels == second[1].channels


@pytest.mark.parametrize(("argument", "said"), [
    ({"chunk": "2"}, "the chunk size must be a whole number of at least 1 frame (or None), not '2'"),
    ({"progress": "quiet"}, "progress must be one of bar, json, none, not 'quiet'"),
    ({"frames": 1001.5j}, "the --frames selection must be a frame range like 1001-1100"),
    ({"shot_range": 2.5}, "the shot range selection must be a frame range like 1001-1100"),
    ({"keyframes": 5}, "keyframe trimaps are given as a file or pattern"),
    ({"keyframes": []}, "keyframe trimaps are given as a file or pattern"),
    ({"keyframes": None, "trimaps": 5}, "trimaps are given as a file or pattern"),
    # API QA, session 20: each of these was a bare TypeError or quietly rounded
    ({"frames": [1001, 1002.5]}, "the --frames selection must be a frame range like 1001-1100"),
    ({"keyframes": {1001.7: "key.png"}}, "a keyframe number must be a whole number, not 1001.7"),
    ({"trimap_options": {"bogus": 1}}, "the classical method's trimaps stage takes no option bogus"),
    ({"matte_options": {"tile": 64, "bogus": 1}}, "the classical method's matte stage takes no option bogus, tile"),
    ({"matte_options": "x"}, "the options of the matte stage are a mapping of keyword to value, not 'x'"),
    ({"mem_every": "5"}, "mem_every must be a whole number of at least 1, not '5'"),
    ({"trimap_options": {"frames": None}}, "the classical method's trimaps stage takes no option frames"),
    ({"matte_options": {"trimaps": None}}, "the classical method's matte stage takes no option trimaps"),
    ({"frames": ["--1002"]}, "the --frames selection must be a frame range like 1001-1100"),
    ({"frames": np.array(1002)}, "the --frames selection must be a frame range like 1001-1100"),
    ({"io_queue": True}, "the I/O queue (0: no I/O threads) must be a whole number of at least 0 frames, not True"),
    # API QA, session 25: text for a true/false keyword counted as true ("no" planned nothing,
    # reported a plan as written; overwrite="no" recomputed a finished shot), fp64 was taken
    # by the classical method, colour keywords failed inside PyOpenColorIO or after the job
    ({"plan_only": "no"}, "plan_only must be True or False, not 'no'"),
    ({"overwrite": "no"}, "overwrite must be True or False, not 'no'"),
    ({"review": "false"}, "review must be True or False, not 'false'"),
    ({"resize_trimaps": 1}, "resize_trimaps must be True or False, not 1"),
    ({"precision": "fp64"}, "precision must be one of auto, fp32, fp16, bf16, not 'fp64'"),
    ({"input_colorspace": 5}, "input_colorspace (an OpenColorIO colour space's name) must be text or None, not 5"),
    ({"input_colorspace": b"ACEScg"}, "input_colorspace (an OpenColorIO colour space's name) must be text or None"),
    ({"ocio_config": 5}, "ocio_config (an OpenColorIO config file or built-in config's name) must be a path or None"),
    ({"keyframes": {1001: None}}, "keyframe trimaps: the file of frame 1001 is given as None, not as a path"),
    ({"keyframes": {1001: np.zeros((48, 64))}}, "keyframe trimaps: the file of frame 1001 is given as array"),
])
def test_arguments_of_another_type_are_refused_before_anything_is_written(small_example, tmp_path: Path,
                                                                         argument: dict, said: str) -> None:
    with pytest.raises(InputError, match=said.replace("(", r"\(").replace(")", r"\)")):
        pipeline.run(small_example.plate, tmp_path / "out", method="classical",
                     **{"progress": "none", "keyframes": small_example.keyframes, **argument})
    assert not (tmp_path / "out").exists()


def test_the_stages_refuse_trimaps_of_another_type(small_example, tmp_path: Path) -> None:
    for job in (pipeline.trimaps, pipeline.matte):
        with pytest.raises(InputError, match="trimaps are given as a file or pattern"):
            job(small_example.plate, 5, tmp_path / job.__name__, method="classical", progress="none")
        assert not (tmp_path / job.__name__).exists()


def test_a_trimap_channel_that_is_none_is_refused_by_every_stage(small_example, tmp_path: Path) -> None:
    """API QA: matte(trimap_channel="Q") ran over tcvom's own one-channel trimaps (no read
    asked the channel), while run and trimaps refused it at the first keyframe read."""
    trimaps = str(small_example.folder / "truth" / "trimap.####.png")
    calls = {"run": lambda out: pipeline.run(small_example.plate, out, keyframes=small_example.keyframes,
                                             method="classical", progress="none", trimap_channel="Q"),
             "trimaps": lambda out: pipeline.trimaps(small_example.plate, small_example.keyframes, out,
                                                     method="classical", progress="none", trimap_channel="Q"),
             "matte": lambda out: pipeline.matte(small_example.plate, trimaps, out, method="classical",
                                                 progress="none", trimap_channel="Q")}
    for name, call in calls.items():
        with pytest.raises(InputError, match="trimap channel must be one of luma, R, G, B, A, not 'Q'"):
            call(tmp_path / name)
        assert not (tmp_path / name).exists()


def test_one_frame_number_as_the_shot_range(small_example, tmp_path: Path) -> None:
    frame = small_example.first + 1
    result = pipeline.run(small_example.plate, tmp_path / "a", keyframes=f"{frame}={_keys(small_example)[small_example.first]}",
                          shot_range=frame, frames=frame, method="classical", progress="none", review=False)
    assert result.written == [frame]


@pytest.mark.parametrize("job", ["run", "trimaps", "matte"])
@pytest.mark.parametrize("out", [None, "", "  "])
def test_an_unset_output_is_refused_not_written_here(small_example, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     job: str, out: object) -> None:
    """API QA: `tcvom matte --out ''` wrote alpha.1001.exr into the current folder, and
    `tp.matte(..., None)` into a folder named None, exit 0 (a host's unset field)."""
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    call = getattr(pipeline, job)
    given = {"run": small_example.keyframes, "trimaps": small_example.keyframes,
             "matte": str(small_example.folder / "truth" / "trimap.####.png")}[job]
    args = (small_example.plate, out) if job == "run" else (small_example.plate, given, out)
    extra = {"keyframes": given} if job == "run" else {}
    with pytest.raises(InputError, match=r"the output folder (or pattern )?is (empty|not a path \(None\))"):
        call(*args, method="classical", progress="none", **extra)
    assert not any(here.iterdir())


def test_an_unset_plate_is_refused(small_example, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"the plate is not a path \(None\)"):
        pipeline.run(None, tmp_path / "out", keyframes=small_example.keyframes, method="classical", progress="none")


def test_a_missing_weight_file_is_refused_before_the_output_folder_is_made(small_example, tmp_path: Path,
                                                                          gca_model) -> None:
    import torch

    from tcvom.errors import TcvomError, WeightsError

    matting, cut = tmp_path / "gca.pth", tmp_path / "cut.pth"
    torch.save(gca_model.state_dict(), matting)
    cut.write_bytes(matting.read_bytes()[: matting.stat().st_size // 2])

    for job in (pipeline.run, pipeline.trimaps):
        args = (tmp_path / "out",) if job is pipeline.run else (small_example.keyframes, tmp_path / "out")
        extra = {"keyframes": small_example.keyframes} if job is pipeline.run else {}
        with pytest.raises(WeightsError, match="the weight file asked for does not exist"):
            job(small_example.plate, *args, method="tcvom", weights=tmp_path / "missing.pth", progress="none", **extra)
        assert not (tmp_path / "out").exists()
        with pytest.raises(InputError, match=r"the weight file is not a path \(5\)"):
            job(small_example.plate, *args, method="tcvom", weights=5, progress="none", **extra)
        assert not (tmp_path / "out").exists()
        # networks QA: GCA weights (or a cut-short file) given as the STM's wrote the trimap stage's
        # folder and manifest, with the refused file's digest, before the refusal
        given = {**extra, "matting_weights": matting} if job is pipeline.run else extra
        for bad, said in ((matting, "not the STM trimap-propagation one"), (cut, "not a readable PyTorch checkpoint")):
            with pytest.raises(TcvomError, match=said):
                job(small_example.plate, *args, method="tcvom", weights=bad, progress="none", **given)
            assert not (tmp_path / "out").exists()


def test_a_numpy_frame_number_is_a_frame(small_example, tmp_path: Path) -> None:
    frame = np.int64(small_example.first + 1)
    result = pipeline.run(small_example.plate, tmp_path / "out", keyframes=small_example.keyframes, frames=frame,
                          method="classical", progress="none", review=False)
    assert result.written == [int(frame)]


def test_numpy_whole_numbers_are_whole_numbers(small_example, tmp_path: Path) -> None:
    """Review: io_queue and chunk refused numpy ints that mem_every took."""
    result = pipeline.run(small_example.plate, tmp_path / "out", keyframes=small_example.keyframes, method="classical",
                          io_queue=np.int64(1), chunk=np.int64(4), progress="none", review=False)
    assert sorted(result.written) == list(range(small_example.first, small_example.last + 1))


def test_the_stages_check_their_flags_and_a_plan_makes_no_folder(small_example, tmp_path: Path) -> None:
    """API QA: trimaps and matte took any value for their true/false keywords, and a plan
    (which computes nothing) made the output folders."""
    trimaps = str(small_example.folder / "truth" / "trimap.####.png")
    for job, given in ((pipeline.trimaps, small_example.keyframes), (pipeline.matte, trimaps)):
        with pytest.raises(InputError, match="plan_only must be True or False, not 'yes'"):
            job(small_example.plate, given, tmp_path / "x", method="classical", progress="none", plan_only="yes")
        planned = job(small_example.plate, given, tmp_path / "plan" / job.__name__, method="classical",
                      progress="none", plan_only=True)
        assert planned.written == list(range(small_example.first, small_example.last + 1))
    planned = pipeline.run(small_example.plate, tmp_path / "plan" / "run", keyframes=small_example.keyframes,
                           method="classical", progress="none", plan_only=True)
    assert planned.written and not (tmp_path / "plan").exists() and not (tmp_path / "x").exists()
    # a plan still refuses an output that could not be written (a farm job's every task would fail)
    from tcvom.errors import OutputError

    (tmp_path / "blocked").write_text("a file where the folder should be")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        pipeline.run(small_example.plate, tmp_path / "blocked" / "out", keyframes=small_example.keyframes,
                     method="classical", progress="none", plan_only=True)
    for flag in (np.True_, np.bool_(False)):  # numpy's bools are bools
        pipeline.run(small_example.plate, tmp_path / "plan" / "np", keyframes=small_example.keyframes,
                     method="classical", progress="none", plan_only=True, review=flag)


def test_a_plate_given_as_an_array_is_named_shortly(small_example, tmp_path: Path) -> None:
    """An array passed as the plate was dumped whole into the message (4818 characters)."""
    with pytest.raises(InputError, match=r"the plate is not a path \(array") as error:
        pipeline.run(np.zeros((480, 640, 3)), tmp_path / "out", keyframes=small_example.keyframes,
                     method="classical", progress="none")
    assert len(str(error.value)) < 300


@pytest.mark.parametrize(("call", "said"), [
    (lambda tmp: write_example(tmp / "ex", frames="5"),
     "frames must be a whole number of at least 1, not '5'"),
    (lambda tmp: write_example(tmp / "ex", width=64.5),
     "width must be a whole number of at least 16 pixels, not 64.5"),
    (lambda tmp: write_example(tmp / "ex", height=np.int64(8)),
     "height must be a whole number of at least 16 pixels, not np.int64(8)"),
    (lambda tmp: write_example(tmp / "ex", seed="a"),
     "seed must be a whole number of at least 0, not 'a'"),
    (lambda tmp: write_example(tmp / "ex", progress="x"),
     "progress must be one of bar, json, none, not 'x'"),
    (lambda tmp: load_review(5),
     "the output folder is not a path (5)"),
    (lambda tmp: rebuild_review(tmp, plate=5),
     "plate (the plate's new place) must be a path or None, not 5"),
    (lambda tmp: rebuild_review(tmp, progress="loud"),
     "progress must be one of bar, json, none, not 'loud'"),
    # API QA (round 3): pathlib's and OpenColorIO's TypeErrors, or a value taken without a word
    (lambda tmp: make_synthetic(tmp / "ex", seed=-4, progress="none"),
     "seed must be a whole number of at least 0, not -4"),
    (lambda tmp: review_output(None),
     "the output folder is not a path (None)"),
    (lambda tmp: review_output(tmp, progress=5),
     "progress must be one of bar, json, none, not 5"),
    (lambda tmp: open_frames(tmp / "p.####.exr", colorspace=Path("ACEScg")),
     "colorspace (an OpenColorIO colour space's name) must be text or None, not PosixPath('ACEScg')"),
    (lambda tmp: pipeline.matte(tmp / "p.####.exr", tmp / "t.####.png", tmp / "ex", provenance="x"),
     "provenance must be a mapping of header names to text (or None), not 'x'"),
])
def test_the_other_entry_points_refuse_values_of_another_type(tmp_path: Path, call, said: str) -> None:
    """API QA: write_example, load_review and rebuild_review failed with TypeErrors and
    ValueErrors from numpy, OpenCV and pathlib."""
    with pytest.raises(InputError, match=said.replace("(", r"\(").replace(")", r"\)")):
        call(tmp_path)
    assert not (tmp_path / "ex").exists()


def test_one_colour_space_in_any_spelling_is_one_setting(small_example, tmp_path: Path) -> None:
    """Farm QA: --input-colorspace was recorded as typed: a task given an alias of the space
    the job's other tasks named (or the plate's default, named) was refused as other
    settings, exit 2, and a whole-shot rerun recomputed every frame."""
    trimaps = str(small_example.folder / "truth" / "trimap.####.png")
    out = tmp_path / "alpha"
    for frames, space in (("1001-1002", "lin_rec709_srgb"), ("1003-1004", "Linear Rec.709 (sRGB)"),
                          ("1005-1006", None), ("1007-1008", "linear rec.709 (srgb)")):
        pipeline.matte(small_example.plate, trimaps, out, frames=frames, method="classical", progress="none",
                       input_colorspace=space, review=False)
    again = pipeline.matte(small_example.plate, trimaps, out, method="classical", progress="none",
                           input_colorspace="lin_rec709_srgb", review=False)
    assert again.written == [] and len(again.skipped) == 8
    from tcvom.io.images import image_header

    assert image_header(out / "alpha.1001.exr")[0].get_string_attribute("tcvom:input_colorspace") == \
        "Linear Rec.709 (sRGB)", "the config's own name, not the alias given"
    # another space is another setting
    with pytest.raises(InputError, match="input_colorspace: None recorded, 'ACEScg' now"):
        pipeline.matte(small_example.plate, trimaps, out, frames="1001", method="classical", progress="none",
                       input_colorspace="ACEScg", review=False)


def test_an_ocio_config_given_as_a_path_is_a_config(small_example, tmp_path: Path) -> None:
    """API QA: ocio_config=Path(...) passed the argument check and failed deep in the colour
    code with AttributeError ('PosixPath' object has no attribute 'startswith')."""
    import PyOpenColorIO as ocio

    config = tmp_path / "cg.ocio"
    config.write_text(ocio.Config.CreateFromBuiltinConfig("cg-config-latest").serialize(), encoding="utf-8")
    out = tmp_path / "out"
    result = pipeline.run(small_example.plate, out, keyframes=small_example.keyframes, method="classical",
                          progress="none", input_colorspace="ACEScg", ocio_config=config)
    assert len(result.written) == 8
    again = pipeline.run(small_example.plate, out, keyframes=small_example.keyframes, method="classical",
                         progress="none", input_colorspace="ACEScg", ocio_config=str(config))
    assert again.written == []  # the same config as text: the same job
    assert review_output(out, ocio_config=config)[1] == out / "review"
    assert open_frames(small_example.plate, ocio_config=config).read(1001).shape[-1] == 3


def test_an_output_that_would_replace_its_inputs_is_refused(small_example, tmp_path: Path) -> None:
    """Odd-inputs QA: `matte --out` given the plate's pattern replaced every plate frame with
    an alpha (then failed on the next read), `trimaps` did so with exit 0, and keyframes kept
    in the pattern a run writes its trimaps to became keyframes of every frame after one run
    (a repainted keyframe then changed two frames: a stale matte, exit 0)."""
    import hashlib
    import shutil

    def sums(folder: Path) -> dict[str, str]:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}

    plate_dir, tri_dir = tmp_path / "plate", tmp_path / "trimaps"
    shutil.copytree(Path(small_example.plate).parent, plate_dir)
    shutil.copytree(small_example.folder / "truth", tri_dir)
    plate, trimaps = str(plate_dir / "plate.####.exr"), str(tri_dir / "trimap.####.png")
    before = {**sums(plate_dir), **sums(tri_dir)}
    with pytest.raises(InputError, match=r"would replace a file the job reads: frame 1001 of .*plate\.####\.exr is "
                                         r"the plate file of frame 1001"):
        pipeline.matte(plate, trimaps, plate, method="classical", progress="none")
    keys = str(Path(small_example.keyframes).parent / "key.####.png")
    with pytest.raises(InputError, match="is the keyframe trimap file of frame 1001"):
        pipeline.trimaps(plate, keys, keys, method="classical", progress="none")
    with pytest.raises(InputError, match="is the trimap file of frame 1002"):
        pipeline.matte(plate, trimaps, trimaps, method="classical", progress="none", frames="1002",
                       alpha_format="png16")
    assert {**sums(plate_dir), **sums(tri_dir)} == before
    shot = tmp_path / "shot"
    (shot / "trimaps").mkdir(parents=True)
    for f in (small_example.first, small_example.last):
        shutil.copy(small_example.keyframes.replace("####", str(f)), shot / "trimaps" / f"trimap.{f}.png")
    with pytest.raises(InputError, match="is the keyframe trimap file of frame 1001"):
        pipeline.run(plate, shot, keyframes=str(shot / "trimaps" / "trimap.####.png"), method="classical",
                     progress="none")
    assert sorted(p.name for p in (shot / "trimaps").iterdir()) == ["trimap.1001.png", "trimap.1008.png"]
    # a trimap fixed by hand, given by its own name, is a keyframe of a run into that output
    pairs = [f"{f}={shot / 'trimaps' / f'trimap.{f}.png'}" for f in (small_example.first, small_example.last)]
    result = pipeline.run(plate, shot, keyframes=pairs, method="classical", progress="none", review=False)
    assert len(result.written) == 8


def test_the_input_checks_keep_what_worked(small_example, tmp_path: Path) -> None:
    """Second review: probabilities were not checked against the plate; a keyframe pattern
    beside a trimap fixed by hand (a FRAME=FILE pair) was refused; a link in the output's
    place to a painted keyframe was taken for the keyframe itself."""
    import shutil

    plate_dir = tmp_path / "plate"
    shutil.copytree(Path(small_example.plate).parent, plate_dir)
    plate = str(plate_dir / "plate.####.exr")
    with pytest.raises(InputError, match="is the plate file of frame 1001"):
        pipeline.trimaps(plate, small_example.keyframes, tmp_path / "t", probabilities=plate, method="classical",
                         progress="none")
    shot = tmp_path / "shot"
    pipeline.run(plate, shot, keyframes=small_example.keyframes, method="classical", progress="none", review=False)
    fixed = f"1004={shot / 'trimaps' / 'trimap.1004.png'}"
    again = pipeline.run(plate, shot, keyframes=[small_example.keyframes, fixed], method="classical",
                         progress="none", review=False)
    assert set(again.written) <= set(range(1001, 1009))
    linked = tmp_path / "linked"
    (linked / "trimaps").mkdir(parents=True)
    for f in (1001, 1008):
        (linked / "trimaps" / f"trimap.{f}.png").symlink_to(small_example.keyframes.replace("####", str(f)))
    done = pipeline.run(plate, linked, keyframes=small_example.keyframes, method="classical", progress="none",
                        review=False)
    assert len(done.written) == 8


def test_a_config_without_tcvoms_defaults_takes_the_space_named(small_example, tmp_path: Path) -> None:
    """Second review: recording --input-colorspace looked up tcvom's default float space,
    which a studio's config may not have: a run naming its own space was refused."""
    config = tmp_path / "v1.ocio"
    config.write_text("""ocio_profile_version: 2
roles: {default: mylinear, scene_linear: mylinear, reference: mylinear, data: raw, color_picking: srgb_tx}
displays:
  sRGB:
    - !<View> {name: Standard, colorspace: srgb_tx}
active_displays: []
active_views: []
colorspaces:
  - !<ColorSpace> {name: mylinear, encoding: scene-linear}
  - !<ColorSpace>
    name: srgb_tx
    encoding: sdr-video
    from_scene_reference: !<ExponentWithLinearTransform> {gamma: 2.4, offset: 0.055, direction: inverse}
  - !<ColorSpace> {name: raw, isdata: true}
""", encoding="utf-8")
    trimaps = str(small_example.folder / "truth" / "trimap.####.png")
    result = pipeline.matte(small_example.plate, trimaps, tmp_path / "out", frames="1001-1002", method="classical",
                            progress="none", input_colorspace="mylinear", ocio_config=str(config), review=False)
    assert result.written == [1001, 1002]


def test_an_output_recorded_with_an_alias_stays_the_same_job(small_example, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Second review: an output whose manifest holds --input-colorspace as an earlier tcvom
    recorded it (as typed) was "other settings" for every later task given the same flag."""
    from tcvom.farm.manifest import manifest_path
    from tcvom.io.colour import ColourConverter

    trimaps = str(small_example.folder / "truth" / "trimap.####.png")
    out = tmp_path / "alpha"
    with monkeypatch.context() as earlier:  # the earlier tcvom: the flag recorded as typed
        earlier.setattr(ColourConverter, "given_setting", lambda self, is_float: self.source)
        pipeline.matte(small_example.plate, trimaps, out, method="classical", progress="none", review=False,
                       input_colorspace="lin_rec709_srgb")
    assert json.loads(manifest_path(str(out / "alpha.####.exr")).read_text())["settings"]["input_colorspace"] == \
        "lin_rec709_srgb"
    for space in ("lin_rec709_srgb", "Linear Rec.709 (sRGB)", None):
        again = pipeline.matte(small_example.plate, trimaps, out, frames="1001-1002", method="classical",
                               progress="none", input_colorspace=space, review=False)
        assert again.written == [] and again.skipped == [1001, 1002]
    with pytest.raises(InputError, match="input_colorspace: 'lin_rec709_srgb' recorded, 'ACEScg' now"):
        pipeline.matte(small_example.plate, trimaps, out, frames="1001", method="classical", progress="none",
                       input_colorspace="ACEScg", review=False)


def test_the_preview_and_eval_functions_check_their_arguments(small_example, tmp_path: Path) -> None:
    """API QA: contact_sheet / preview_movie given the --out folder failed deep in a writer
    (a bare ValueError from PyAV), count=0 and fps=23.976 ended in tracebacks (23.976 is a rate
    now), fps=0 wrote a 24 fps movie; evaluate_sequence took image_metrics="false" as true and None as a path;
    open_trimaps took {1001: path} as a file named 1001."""
    from tcvom.evaluation.mattes import evaluate_sequence
    from tcvom.io import open_frames, open_trimaps
    from tcvom.review.preview import contact_sheet, preview_movie

    frames = open_frames(small_example.plate)
    trimaps = open_trimaps(small_example.trimaps, frames.frame_numbers, plate=frames)
    alpha = small_example.alpha
    for call, said in (
        (lambda: contact_sheet(frames, trimaps, alpha, tmp_path), "out must be the path of the .png file"),
        (lambda: preview_movie(frames, alpha, tmp_path), "out must be the path of the .mp4 file"),
        (lambda: contact_sheet(frames, trimaps, alpha, tmp_path / "c.png", count=0), "count must be a whole"),
        (lambda: contact_sheet(frames, trimaps, alpha, tmp_path / "c.png", count="3"), "count must be a whole"),
        (lambda: preview_movie(frames, alpha, tmp_path / "a.mp4", fps=0), "the frame rate 0 is not a number of frames"),
        (lambda: preview_movie(frames, alpha, tmp_path / "a.mp4", fps=[24]), r"the frame rate is \[24\]"),
        (lambda: evaluate_sequence(alpha, small_example.folder / "truth", image_metrics="false"),
         "image_metrics must be True or False"),
        (lambda: evaluate_sequence(None, small_example.folder / "truth"), "alpha must be a folder or a sequence"),
        # API QA round 2: AttributeErrors from deep inside, and a message naming the file None
        (lambda: preview_movie(small_example.plate, alpha, tmp_path / "a.mp4"),
         "frames must be the plate opened with tcvom.io.open_frames"),
        (lambda: contact_sheet(frames, None, alpha, tmp_path / "c.png"), "trimaps must be the trimaps opened"),
        (lambda: contact_sheet(frames, trimaps, alpha, tmp_path / "c.png", review="x"), "review must be a review"),
        (lambda: contact_sheet(frames, trimaps, None, tmp_path / "c.png"), "alpha_pattern must be the alphas'"),
    ):
        with pytest.raises(InputError, match=said):
            call()
    assert not list(tmp_path.iterdir()), "nothing written"
    assert contact_sheet(frames, trimaps, alpha, tmp_path / "c.png", count=2).is_file()
    with pytest.raises(InputError, match="a frame number is a whole number, not '1001'"):
        frames.read("1001")
    assert frames.read(np.int64(1001)).shape[:2] == (64, 96)
    from tcvom.io import AlphaWriter

    writer = AlphaWriter(tmp_path / "w")
    with pytest.raises(InputError, match=r"an alpha to write is H x W, not \(64, 96, 1\)") as caught:
        writer.write(1001, np.zeros((64, 96, 1), np.float32))
    assert caught.value.frame == 1001 and caught.value.path is not None
    with pytest.raises(InputError, match="a frame number must be a whole number, not 'x'"):
        writer.write("x", np.zeros((64, 96), np.float32))
    with pytest.raises(InputError, match="rgba output needs the foreground colour"):
        AlphaWriter(tmp_path / "w", kind="rgba").write(1001, np.zeros((64, 96), np.float32))
    key = small_example.keyframes.replace("####", "1001")
    mapped = open_trimaps({1001: key}, contiguous=False)
    assert mapped.frame_numbers == [1001] and str(mapped.path(1001)) == key


def test_the_weights_farm_info_nuke_and_example_functions_check_their_arguments(small_example, tmp_path: Path,
                                                                                monkeypatch) -> None:
    """API QA round 5: overwrite="no" replaced a registered weight file and a Nuke install;
    plan_shot took frames outside the shot, floats and an unknown stage key (an empty plan);
    preview_movie took [] for the whole shot and a numpy array for a traceback; None paths
    and a file in the example's way were tracebacks."""
    import numpy as np

    from tcvom.cli.cmd_info import show_file
    from tcvom.cli.cmd_nuke import install_plugin
    from tcvom.data.example import write_example
    from tcvom.errors import OutputError
    from tcvom.farm.openjd import job_parameters, write_template
    from tcvom.farm.plan import plan_shot
    from tcvom.io import open_frames
    from tcvom.review.doubt import trimaps_of_changed_plates
    from tcvom.review.preview import preview_movie
    from tcvom.weights.checkpoints import describe
    from tcvom.weights.registry import add_weights

    monkeypatch.setenv("TCVOM_DATA_DIR", str(tmp_path / "data"))
    plate, keys = small_example.plate, small_example.keyframes
    frames = open_frames(plate)
    (tmp_path / "afile").write_text("x")
    for call, said in (
        (lambda: add_weights(tmp_path / "w.pth", overwrite="no"), "overwrite must be True or False"),
        (lambda: add_weights(None), "the weight file is not a path"),
        (lambda: add_weights(tmp_path / "w.pth", name=Path("x.pth")), "name must be a file name"),
        (lambda: install_plugin(tmp_path / "nk", overwrite="no"), "overwrite must be True or False"),
        (lambda: install_plugin(None), "the install folder is not a path"),
        (lambda: plan_shot(plate, keys, computed={"alpha": [1001, 5000]}), "5000, outside the shot"),
        (lambda: plan_shot(plate, keys, computed={"alpha": [1003.5]}), "computed\\['alpha'\\] frame selection"),
        (lambda: plan_shot(plate, keys, computed={"matte": [1003]}), "computed must map 'trimaps' and 'alpha'"),
        (lambda: preview_movie(frames, small_example.alpha, tmp_path / "p.mp4", frame_numbers=[]), "holds no frame"),
        (lambda: describe(None), "the weight file is not a path"),
        (lambda: show_file(None, False), "the file is not a path"),
        (lambda: job_parameters(plate=None, keyframes=keys, out=tmp_path), "the plate is not a path"),
        (lambda: write_template(None, {}), "the template's path is not a path"),
        (lambda: trimaps_of_changed_plates(tmp_path / "trimap.####.png", None), "review frame selection"),
    ):
        with pytest.raises(InputError, match=said):
            call()
    with pytest.raises(OutputError, match="afile is a file, not a folder"):
        write_example(tmp_path / "afile", width=32, height=32, frames=2)
    assert plan_shot(plate, keys, computed={"alpha": np.array([1003]), "trimaps": []}).chunks == ("1003",)
    movie = preview_movie(frames, small_example.alpha, tmp_path / "two.mp4", frame_numbers=np.array([1001, 1002]))
    assert movie.is_file() and not (tmp_path / "data").exists() and not (tmp_path / "nk").exists()


def test_each_job_of_one_process_says_its_plate_warnings(small_example, tmp_path: Path, caplog) -> None:
    """API QA: a plate's warnings (NaN pixels set to 0, colour headers, grey frames) were said
    once per process: a studio tool's second job in one process said none, though its matte
    had the same pixels set to 0. Each job says them (once, though both stages of a run read
    every frame), and a job on another thread says its own."""
    import threading

    from tcvom.io import write_image

    plate = tmp_path / "plate"
    shutil.copytree(Path(small_example.plate).parent, plate)
    pixels, _ = read_image(plate / "plate.1003.exr")
    pixels = pixels.copy()
    pixels[:3, :4] = np.nan
    write_image(plate / "plate.1003.exr", pixels, pixel_type="half")
    pattern = str(plate / "plate.####.exr")

    def job(out: str) -> None:
        pipeline.run(pattern, tmp_path / out, keyframes=small_example.keyframes, method="classical",
                     progress="none", review=False)

    for out in ("first", "second"):
        caplog.clear()
        job(out)
        assert caplog.text.count("NaN/infinite value(s) set to 0") == 1, (out, caplog.text)
    caplog.clear()
    thread = threading.Thread(target=job, args=("third",))
    thread.start()
    thread.join()
    assert caplog.text.count("NaN/infinite value(s) set to 0") == 1
