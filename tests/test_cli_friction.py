"""Issue 16, "Friction": the command line as a new user first meets it."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tcvom import pipeline
from tcvom.cli import build_parser, main
from tcvom.errors import InputError
from tcvom.io import read_image, write_image


def run_cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_weights_flags_have_both_names() -> None:
    parser = build_parser()
    base = ["--plate", "p.####.exr", "--out", "o"]
    matte = parser.parse_args(["matte", *base, "--trimaps", "t.####.png", "--matting-weights", "m.pth"])
    assert matte.weights == "m.pth"
    assert parser.parse_args(["matte", *base, "--trimaps", "t.####.png", "--weights", "m.pth"]).weights == "m.pth"
    run = parser.parse_args(["run", *base, "--keyframes", "k.####.png", "--stm-weights", "s.pth",
                             "--matting-weights", "m.pth"])
    assert (run.weights, run.matting_weights) == ("s.pth", "m.pth")
    trimaps = parser.parse_args(["trimaps", *base, "--keyframes", "k.####.png", "--stm-weights", "s.pth"])
    assert trimaps.weights == "s.pth"
    same = parser.parse_args(["matte", *base, "--trimaps", "t.####.png", "--weights", "m.pth", "--matting-weights",
                              "m.pth"])
    assert same.weights == "m.pth"


def test_both_names_of_a_weights_flag_with_two_files_are_refused(capsys) -> None:
    """`--weights A --matting-weights B` matted with whichever came last, without a word."""
    parser = build_parser()
    base = ["--plate", "p.####.exr", "--out", "o"]
    for argv in (["matte", *base, "--trimaps", "t.####.png", "--weights", "index.pth", "--matting-weights", "gca.pth"],
                 ["run", *base, "--keyframes", "k.####.png", "--stm-weights", "a.pth", "--weights", "b.pth"]):
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args(argv)
        assert exit_.value.code == 2
        assert "name two weight files for one network" in capsys.readouterr().err
    spelt = parser.parse_args(["matte", *base, "--trimaps", "t.####.png", "--weights", "./m.pth",
                               "--matting-weights", "m.pth"])  # one file, two spellings
    assert spelt.weights == "m.pth"
    with pytest.raises(SystemExit):  # an empty second value cleared the first without a word
        parser.parse_args(["matte", *base, "--trimaps", "t.####.png", "--weights", "m.pth", "--matting-weights", ""])


def test_a_misspelt_option_is_named_with_the_one_meant(capsys) -> None:
    """`--methd` said only that --out was required (or, given --out, that it was unrecognised
    after forty lines of usage) and never which option was meant."""
    for argv, word, meant in ((["run", "--methd", "classical", "--plate", "p.####.exr"], "--methd", "--method"),
                              (["run", "--meth", "classical"], None, None),
                              (["farm", "template", "j.yaml", "--chunck", "4"], "--chunck", "--chunk"),
                              (["--verison"], "--verison", "--version")):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        err = capsys.readouterr().err
        assert exit_.value.code == 2
        if word is None:
            assert "unrecognised option" not in err and "required" in err  # abbreviated, as argparse allows
        else:
            assert f"unrecognised option {word} (did you mean {meant}?)" in err
    with pytest.raises(SystemExit):  # after "--" every word is a value
        main(["run", "--out", "o", "--", "--methd"])
    assert "unrecognised option" not in capsys.readouterr().err


def test_max_memory_none_is_no_cap(capsys) -> None:
    """docs/trimaps.md names `--max-memory` with no cap, which the command line refused."""
    parser = build_parser()
    base = ["trimaps", "--plate", "p.####.exr", "--out", "o", "--keyframes", "k.####.png"]
    assert parser.parse_args([*base, "--max-memory", "none"]).max_memory is None
    assert parser.parse_args([*base, "--max-memory", "3"]).max_memory == 3
    assert parser.parse_args(base).max_memory == 8
    with pytest.raises(SystemExit):
        parser.parse_args([*base, "--max-memory", "0"])
    assert "must be at least 1, not 0 (or none: no cap)" in capsys.readouterr().err


def test_example_help_explains_every_flag(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["example", "--help"])
    out = capsys.readouterr().out
    assert "plate width in pixels" in out and "plate height in pixels" in out and "random seed" in out


def test_negative_keyframe_numbers_parse() -> None:
    args = build_parser().parse_args(
        ["run", "--plate", "p.####.exr", "--keyframes", "-5=k.png", "3=k2.png", "--out", "o"]
    )
    assert args.keyframes == ["-5=k.png", "3=k2.png"]
    assert build_parser().parse_args(["run", "--plate", "p.####.exr", "--keyframes=-5=k.png", "--out", "o"]).keyframes \
        == ["-5=k.png"]


def test_negative_keyframe_numbers_run(capsys, small_example, tmp_path: Path) -> None:
    """Frames renumbered to -3..4: keyframes before zero given as frame=path pairs."""
    shot = tmp_path / "neg"
    (shot / "plate").mkdir(parents=True)
    for i, n in enumerate(range(small_example.first, small_example.last + 1)):
        pixels, _ = read_image(Path(small_example.plate.replace("####", str(n))), n)
        write_image(shot / "plate" / f"plate.{i - 3:04d}.exr", pixels)
    first = Path(small_example.keyframes.replace("####", str(small_example.first)))
    last = Path(small_example.keyframes.replace("####", str(small_example.last)))
    code, _, err = run_cli(capsys, "trimaps", "--plate", shot / "plate/plate.####.exr", "--keyframes",
                           f"-3={first}", f"4={last}", "--out", tmp_path / "o", "--progress", "none")
    assert code == 0, err
    # a range before zero after its flag ("--frames -3--1" was "expected one argument", exit 2)
    code, _, err = run_cli(capsys, "matte", "--plate", shot / "plate/plate.####.exr", "--trimaps",
                           tmp_path / "o" / "trimap.####.png", "--out", tmp_path / "a", "--frames", "-3--1",
                           "--shot-range", "-3-4", "--method", "classical", "--progress", "none")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "a").glob("alpha.*.exr")) == [
        "alpha.-001.exr", "alpha.-002.exr", "alpha.-003.exr"]
    assert (tmp_path / "o" / "trimap.-003.png").is_file() or any((tmp_path / "o").glob("trimap.-*3.png")), \
        sorted(p.name for p in (tmp_path / "o").iterdir())


def _alpha_folder(small_example, folder: Path, noise: float) -> Path:
    """The truth alpha written as EXRs (as `tcvom run` writes them), with some error added."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for n in range(small_example.first, small_example.last + 1):
        truth, _ = read_image(Path(small_example.alpha.replace("####", str(n))), n)
        alpha = np.clip(truth[:, :, :1] + rng.normal(0, noise, truth[:, :, :1].shape), 0, 1).astype(np.float32)
        write_image(folder / f"alpha.{n:04d}.exr", alpha, channels=("Y",))
    return folder


def test_eval_without_flow_leaves_messddt_out_of_its_reports(capsys, small_example, tmp_path: Path) -> None:
    """Docs QA: without --plate the table said MESSDdt n/a, but summary.json, clips.json and
    every frames.csv row held 0.0, which reads as a perfect score (Grad and Conn without
    image metrics were already left out)."""
    noisy = _alpha_folder(small_example, tmp_path / "noisy" / "alpha", 0.1)
    code, out, err = run_cli(capsys, "eval", "--alpha", noisy, "--truth", small_example.folder / "truth",
                             "--out", tmp_path / "rep", "--progress", "json")
    assert code == 0, err
    shot = [json.loads(line) for line in out.splitlines() if '"result"' in line][-1]["summary"]["shot"]
    assert "messddt" not in shot and "messddt_l1" not in shot and shot["mse"] > 1e-3
    for name in ("summary.json", "clips.json"):
        assert "messddt" not in (tmp_path / "rep" / name).read_text(), name
    import csv

    with (tmp_path / "rep" / "frames.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows and all(r["messddt"] == "" and r["messddt_l1"] == "" and r["mse"] for r in rows), rows


def test_eval_on_a_full_disk_keeps_its_earlier_report_whole(capsys, small_example, tmp_path: Path) -> None:
    """Robustness QA: with a file size limit (as a full disk), `tcvom eval` wrote frames.csv in
    place, left it cut mid-row beside the old JSON reports, and ended in a traceback (exit 1,
    "please report this"). Each report is now written whole or left as it was, and the job
    says why it stopped (exit 2)."""
    import resource
    import subprocess
    import sys

    noisy = _alpha_folder(small_example, tmp_path / "noisy" / "alpha", 0.1)
    args = ["eval", "--alpha", str(noisy), "--truth", str(small_example.folder / "truth"), "--out", str(tmp_path / "rep"),
            "--plate", small_example.plate, "--progress", "none"]
    assert main(args) == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "rep").iterdir()}
    assert len(before["frames.csv"]) > 1024

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))

    result = subprocess.run([sys.executable, "-m", "tcvom", *args], capture_output=True, text=True, preexec_fn=cap,
                            timeout=300)
    assert result.returncode == 2 and "is the disk full" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "frames.csv" in result.stderr, result.stderr
    assert {p.name: p.read_bytes() for p in (tmp_path / "rep").iterdir()} == before


def test_eval_scores_the_example_against_its_truth(capsys, small_example, tmp_path: Path) -> None:
    truth = small_example.folder / "truth"
    exact = _alpha_folder(small_example, tmp_path / "exact" / "alpha", 0.0)
    noisy = _alpha_folder(small_example, tmp_path / "noisy" / "alpha", 0.1)
    code, out, err = run_cli(capsys, "eval", "--alpha", exact, "--truth", truth, "--progress", "none")
    assert code == 0, err
    assert "shot" in out and "MSE" in out
    row = next(line for line in out.splitlines() if line.startswith("| shot"))
    assert row.count("n/a") == 1, row  # no plate, no flow: MESSDdt unmeasured, not a perfect 0
    code, out, err = run_cli(capsys, "eval", "--alpha", noisy, "--truth", truth, "--plate", small_example.plate,
                             "--out", tmp_path / "rep", "--progress", "json")
    assert code == 0, err
    result = [json.loads(line) for line in out.splitlines() if '"result"' in line][-1]
    shot = result["summary"]["shot"]
    assert shot["frames"] == small_example.last - small_example.first + 1
    assert shot["mse"] > 1e-3 and shot["pixel_count"] > 0 and shot["messddt"] > 0
    assert result["flow"]["dis"] == shot["frames"] - 1
    assert (tmp_path / "rep" / "frames.csv").is_file() and (tmp_path / "rep" / "summary.md").is_file()
    assert "n/a" not in (tmp_path / "rep" / "summary.md").read_text()
    # The exact matte scores 0 (16-bit PNG truth vs half-float EXR: within rounding).
    code, out, _ = run_cli(capsys, "eval", "--alpha", exact, "--truth", truth, "--progress", "json")
    exact_mse = [json.loads(line) for line in out.splitlines() if '"result"' in line][-1]["summary"]["shot"]["mse"]
    assert exact_mse < 1e-6 < shot["mse"]


def test_eval_names_a_truth_trimap_of_another_size_and_a_folder_of_two_types(capsys, small_example,
                                                                           tmp_path: Path) -> None:
    """A truth trimap of another size said only "the arrays to compare differ in size"; a
    folder holding PNG and EXR alphas was scored on the PNGs without a word."""
    import shutil

    import cv2

    truth = tmp_path / "truth"
    shutil.copytree(small_example.folder / "truth", truth)
    small = cv2.imread(str(truth / "trimap.1003.png"), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(truth / "trimap.1003.png"), cv2.resize(small, (48, 32), interpolation=cv2.INTER_NEAREST))
    exact = _alpha_folder(small_example, tmp_path / "exact" / "alpha", 0.0)
    code, _, err = run_cli(capsys, "eval", "--alpha", exact, "--truth", truth, "--progress", "none", "--no-plots")
    assert code == 2
    assert f"{truth / 'trimap.1003.png'}: frame 1003: the truth trimap is 48x32, the ground truth 96x64" in err
    shutil.copy(small_example.folder / "truth" / "alpha.1001.png", exact / "alpha.1001.png")
    code, _, err = run_cli(capsys, "eval", "--alpha", exact, "--truth", small_example.folder / "truth",
                           "--progress", "none")
    assert code == 2 and "alpha frames of 2 file types (.png, .exr)" in err and "alpha.####.png" in err


def test_eval_blames_the_odd_truth_frame_reads_any_padding_and_names_a_missing_folder(
        capsys, small_example, tmp_path: Path) -> None:
    """Eval QA: a truth frame of another size was blamed on the alpha file; an --alpha folder
    of alpha.01001.png had every frame "missing"; a folder that does not exist was "a single
    file without a frame number"; summary.md called an --alpha run a "predictions folder"."""
    import shutil

    import cv2

    truth = tmp_path / "truth"
    shutil.copytree(small_example.folder / "truth", truth)
    for name in ("alpha.1003.png", "trimap.1003.png"):  # both of frame 1003: only the other truth frames differ
        picture = cv2.imread(str(truth / name), cv2.IMREAD_UNCHANGED)
        cv2.imwrite(str(truth / name), cv2.resize(picture, (48, 32), interpolation=cv2.INTER_NEAREST))
    exact = _alpha_folder(small_example, tmp_path / "exact" / "alpha", 0.0)
    code, _, err = run_cli(capsys, "eval", "--alpha", exact, "--truth", truth, "--progress", "none", "--no-plots")
    assert code == 2 and f"{truth / 'alpha.1003.png'}: frame 1003: the ground truth is 48x32 here, 96x64" in err, err
    first = tmp_path / "first"  # code review: the odd one the first frame, the second was named
    shutil.copytree(small_example.folder / "truth", first)
    for name in ("alpha.1001.png", "trimap.1001.png"):
        picture = cv2.imread(str(first / name), cv2.IMREAD_UNCHANGED)
        cv2.imwrite(str(first / name), cv2.resize(picture, (48, 32), interpolation=cv2.INTER_NEAREST))
    code, _, err = run_cli(capsys, "eval", "--alpha", exact, "--truth", first, "--progress", "none", "--no-plots")
    assert code == 2 and f"{first / 'alpha.1001.png'}: frame 1001: the ground truth is 48x32 here, 96x64 at " \
        "frames 1002-1003" in err, err
    padded = tmp_path / "padded"
    padded.mkdir()
    for n in range(small_example.first, small_example.last + 1):
        shutil.copy(exact / f"alpha.{n}.exr", padded / f"alpha.0{n}.exr")
    code, _, err = run_cli(capsys, "eval", "--alpha", padded, "--truth", small_example.folder / "truth",
                           "--out", tmp_path / "rep", "--progress", "none", "--no-image-metrics")
    assert code == 0, err
    assert f"scored: alpha sequence {padded / 'alpha.#####.exr'}" in (tmp_path / "rep" / "summary.md").read_text()
    assert json.loads((tmp_path / "rep" / "summary.json").read_text())["scored"].endswith("alpha.#####.exr")
    shutil.copy(exact / "alpha.1001.exr", padded / "alpha.001001.exr")  # code review: two paddings, one scored
    code, _, err = run_cli(capsys, "eval", "--alpha", padded, "--truth", small_example.folder / "truth",
                           "--progress", "none")
    assert code == 2 and "holds alpha frames in 2 paddings" in err, err
    for alpha, given in ((tmp_path / "nothing", small_example.folder / "truth"), (exact, tmp_path / "no_truth")):
        code, _, err = run_cli(capsys, "eval", "--alpha", alpha, "--truth", given, "--progress", "none")
        missing = given if alpha == exact else alpha
        assert code == 2 and f"{missing}: no such file or folder" in err, err


def test_eval_never_picks_one_of_several_sequences_or_the_truth_trimaps(capsys, small_example, tmp_path: Path) -> None:
    """Eval QA: a folder of two versions (matte_v1, matte_v2) or of one name in two file types
    scored whichever sequence fileseq listed first, exit 0; a truth folder whose alpha is not
    named alpha.#### was scored against its trimaps."""
    import shutil

    noisy = _alpha_folder(small_example, tmp_path / "noisy", 0.05)
    truth = small_example.folder / "truth"
    versions, types = tmp_path / "versions", tmp_path / "types"
    versions.mkdir()
    types.mkdir()
    for n in range(small_example.first, small_example.last + 1):
        shutil.copy(noisy / f"alpha.{n}.exr", versions / f"matte_v2.{n}.exr")
        shutil.copy(truth / f"alpha.{n}.png", versions / f"matte_v1.{n}.png")
        shutil.copy(noisy / f"alpha.{n}.exr", types / f"matte.{n}.exr")
        shutil.copy(truth / f"alpha.{n}.png", types / f"matte.{n}.png")
    for folder in (versions, types):
        code, _, err = run_cli(capsys, "eval", "--alpha", folder, "--truth", truth, "--progress", "none",
                               "--no-plots", "--no-image-metrics")
        assert code == 2 and f"{folder}: the folder holds no alpha.#### sequence and 2 others" in err, err
        assert "name the sequence to score" in err
    named = tmp_path / "named_truth"
    named.mkdir()
    for n in range(small_example.first, small_example.last + 1):
        shutil.copy(truth / f"alpha.{n}.png", named / f"truth_alpha.{n}.png")
        shutil.copy(truth / f"trimap.{n}.png", named / f"trimap.{n}.png")
    scores = []
    for given in (truth, named):
        code, out, err = run_cli(capsys, "eval", "--alpha", noisy, "--truth", given, "--progress", "json",
                                 "--no-plots", "--no-image-metrics")
        assert code == 0, err
        scores.append([json.loads(line) for line in out.splitlines() if '"result"' in line][-1]["summary"]["shot"])
    assert scores[1] == scores[0]  # the one alpha sequence beside the trimaps is the truth


def test_eval_advice_names_evals_own_weight_flags(capsys, small_example, tmp_path: Path, monkeypatch) -> None:
    """Eval QA: `eval --propagate tcvom` without STM weights said to pass --weights, which is
    eval's matting weights flag; its STM flag is --stm-weights."""
    from tcvom.evaluation.mattes import make_synthetic

    monkeypatch.setenv("TCVOM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TCVOM_WEIGHTS", raising=False)
    make_synthetic(tmp_path / "bench", clips=1, frames=4, width=64, height=48, progress="none")
    code, _, err = run_cli(capsys, "eval", "--data", tmp_path / "bench", "--out", tmp_path / "r", "--propagate",
                           "tcvom", "--widths", "narrow", "--keyframes", "1", "--progress", "none")
    assert code == 3 and "pass --stm-weights FILE" in err and "--weights FILE" not in err.replace("--stm-weights", "")
    code, _, err = run_cli(capsys, "eval", "--data", tmp_path / "bench", "--out", tmp_path / "r2", "--method", "tcvom",
                           "--widths", "narrow", "--progress", "none")
    assert code == 3 and "--weights FILE" in err and "--matting-weights" not in err
    code, _, err = run_cli(capsys, "run", "--plate", small_example.plate, "--keyframes", small_example.keyframes,
                           "--out", tmp_path / "o", "--method", "tcvom", "--progress", "none")  # run's own names
    assert code == 3 and "pass --weights FILE" in err and "--stm-weights" not in err


def test_eval_names_a_plate_of_another_size(capsys, small_example, tmp_path: Path) -> None:
    """Farm QA: a --plate of another size than the alphas said "the arrays to compare differ in
    size: ... flow 48x32", naming no file, frame or flag."""
    import cv2

    plate = tmp_path / "plate"
    plate.mkdir()
    for n in range(small_example.first, small_example.last + 1):
        image, _ = read_image(Path(small_example.plate.replace("####", str(n))), n)
        write_image(plate / f"plate.{n:04d}.exr", cv2.resize(image, (48, 32)), channels=("R", "G", "B"))
    exact = _alpha_folder(small_example, tmp_path / "exact" / "alpha", 0.0)
    code, _, err = run_cli(capsys, "eval", "--alpha", exact, "--truth", small_example.folder / "truth",
                           "--plate", plate / "plate.####.exr", "--progress", "none", "--no-plots")
    assert code == 2
    assert f"{plate / f'plate.{small_example.first:04d}.exr'}: frame {small_example.first}: the plate is 48x32, " \
        "the ground truth 96x64 (give the plate these alphas were made from (--plate))" in err, err


def test_eval_alpha_with_missing_frame(capsys, small_example, tmp_path: Path) -> None:
    alpha = _alpha_folder(small_example, tmp_path / "a", 0.0)
    (alpha / f"alpha.{small_example.first + 2:04d}.exr").unlink()
    code, _, err = run_cli(capsys, "eval", "--alpha", alpha, "--truth", small_example.folder / "truth",
                           "--progress", "none")
    assert code == 2 and str(small_example.first + 2) in err
    code, _, err = run_cli(capsys, "eval", "--alpha", alpha, "--progress", "none")
    assert code == 2 and "--truth" in err


def test_preview_progress_json(capsys, small_example, tmp_path: Path) -> None:
    alpha = _alpha_folder(small_example, tmp_path / "a", 0.0)
    code, out, err = run_cli(capsys, "preview", "--plate", small_example.plate, "--trimaps", small_example.trimaps,
                             "--alpha", alpha / "alpha.####.exr", "--out", tmp_path / "pv", "--progress", "json")
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    kinds = [e["event"] for e in events]
    assert "start" in kinds and "progress" in kinds and kinds[-1] == "result"
    assert Path(events[-1]["outputs"]["contact_sheet"]).is_file() and Path(events[-1]["outputs"]["preview"]).is_file()
    code, out, _ = run_cli(capsys, "preview", "--plate", small_example.plate, "--trimaps", small_example.trimaps,
                           "--alpha", alpha / "alpha.####.exr", "--out", tmp_path / "pv2", "--no-movie",
                           "--progress", "json")
    assert code == 0 and json.loads(out.splitlines()[-1])["event"] == "result"


def test_preview_of_an_alpha_of_another_size_and_into_a_new_folder(capsys, small_example, tmp_path: Path) -> None:
    """A proxy's alpha over the plate was numpy's broadcast error, exit 1 "please report";
    the API's preview_movie into a folder not yet made was PyAV's error without a path."""
    from tcvom.io import open_frames
    from tcvom.review.preview import preview_movie

    half = tmp_path / "half"
    half.mkdir()
    for n in range(small_example.first, small_example.last + 1):
        truth, _ = read_image(Path(small_example.alpha.replace("####", str(n))), n)
        write_image(half / f"alpha.{n:04d}.exr", np.ascontiguousarray(truth[::2, ::2, :1]), channels=("A",))
    code, _, err = run_cli(capsys, "preview", "--plate", small_example.plate, "--trimaps", small_example.trimaps,
                           "--alpha", half / "alpha.####.exr", "--out", tmp_path / "pv", "--progress", "none")
    assert code == 2 and f"alpha.{small_example.first:04d}.exr: frame {small_example.first}: the alpha is 48x32, " \
        "the plate is 96x64" in err, err
    made = preview_movie(open_frames(small_example.plate), str(_alpha_folder(small_example, tmp_path / "a", 0.0)
                                                               / "alpha.####.exr"), tmp_path / "new" / "pv.mp4")
    assert made.is_file() and made.stat().st_size > 0


def test_preview_counts_and_a_review_of_a_file_are_refused(tmp_path: Path, capsys) -> None:
    for flag, said in (("--fps", "the frame rate 0 is not a number of frames per second"),
                       ("--rows", "must be at least 1, not 0")):
        with pytest.raises(SystemExit) as stop:
            main(["preview", "--plate", "p.####.exr", "--trimaps", "t", "--alpha", "a", "--out", str(tmp_path),
                  flag, "0"])
        assert stop.value.code == 2 and f"argument {flag}: {said}" in capsys.readouterr().err
    picture = tmp_path / "alpha.1001.exr"
    picture.write_bytes(b"not a folder")
    assert main(["review", str(picture)]) == 2
    assert "this is a file, not an output folder" in capsys.readouterr().err


def test_eval_names_alpha_frames_without_truth(capsys, small_example, tmp_path: Path) -> None:
    """A truth shorter than the alpha scores the frames it has, and says which were left out."""
    import shutil

    alpha = _alpha_folder(small_example, tmp_path / "a", 0.0)
    truth = tmp_path / "truth"
    shutil.copytree(small_example.folder / "truth", truth)
    for n in (small_example.last - 1, small_example.last):
        for name in (f"alpha.{n}.png", f"trimap.{n}.png"):
            (truth / name).unlink()
    code, _, err = run_cli(capsys, "eval", "--alpha", alpha, "--truth", truth, "--progress", "none")
    assert code == 0, err
    left = f"{small_example.last - 1}-{small_example.last}"
    assert "2 alpha frame(s) have no ground truth and are not scored" in err and left in err


def test_example_try_line_runs_as_printed_from_a_folder_with_a_space(tmp_path: Path) -> None:
    """The `try:` line printed paths unquoted: pasted into a shell, a folder with a space
    split into two arguments."""
    import shlex
    import subprocess
    import sys

    out = tmp_path / "my shots"
    done = subprocess.run([sys.executable, "-m", "tcvom", "example", "--out", str(out), "--width", "32", "--height",
                           "32", "--frames", "2", "--progress", "none"], capture_output=True, text=True, check=True)
    line = next(x for x in done.stderr.splitlines() if x.startswith("try: "))
    argv = shlex.split(line.removeprefix("try: "))
    assert argv[argv.index("--plate") + 1] == str(out / "plate" / "plate.####.exr")
    assert argv[argv.index("--keyframes") + 1].startswith(str(out / "keyframes"))


def test_info_and_review_name_what_they_read(capsys, tmp_path: Path) -> None:
    """`info` on a movie said only that the header cannot be read; `review` of a folder that
    does not exist named FOLDER/review.json, a file it does not look for."""
    import av

    movie = tmp_path / "shot.mov"
    movie.write_bytes(b"\x00" * 64)
    code, _, err = run_cli(capsys, "info", movie)
    assert code == 2 and "cannot open the movie" in err and str(movie) in err, err
    # a movie that reads: how tcvom numbers its frames (for --keyframes 1=...), size and rate
    with av.open(str(movie), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 16, "yuv420p"
        for _ in range(3):
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.zeros((16, 32, 3), np.uint8), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    code, out, err = run_cli(capsys, "info", movie, "--json")
    data = json.loads(out)
    assert code == 0 and data["frames"] == "1-3" and data["size"] == "32x16" and data["frame_rate"] == "25", err
    assert "--keyframes 1=" in data["numbering"]
    code, _, err = run_cli(capsys, "review", tmp_path / "nowhere")
    assert code == 2 and "nowhere: this folder does not exist" in err and "review.json" not in err.split("(")[0], err


def test_the_default_bar_is_not_drawn_into_a_log(capsys, small_example, tmp_path: Path) -> None:
    """`tcvom run ... 2> run.log`: the log filled with the bar's carriage-return redraws."""
    code, _, err = run_cli(capsys, "run", "--plate", small_example.plate, "--keyframes", small_example.keyframes,
                           "--out", tmp_path / "o", "--method", "classical", "--frames", "1001-1003")
    assert code == 0 and "\r" not in err and "%|" not in err, repr(err)
    assert "alpha 3 computed" in err


def test_a_trimap_file_without_a_frame_number_is_not_taken_for_frame_one(capsys, small_example, tmp_path: Path) -> None:
    """`--keyframes key_1008.png` (fileseq reads a frame number only as name.FRAME.ext) was
    keyed on frame 1: exit 0 with a matte from a keyframe on the wrong frame, or, on a plate
    from 1001, "keyframe 1 lies outside", a frame nobody typed."""
    shot = small_example.folder
    keys = tmp_path / "keys"
    keys.mkdir()
    for name in ("key_1008.png", "key.png", "key_v3.png"):
        (keys / name).write_bytes((shot / "keyframes/key.1008.png").read_bytes())
    plate = shot / "plate/plate.####.exr"
    first = shot / "keyframes/key.1001.png"
    # QA: key_v3.png was advised as "3=key_v3.png", its version taken for a frame
    for name, meant in (("key_1008.png", "1008="), ("key.png", "FRAME="), ("key_v3.png", "FRAME=")):
        code, _, err = run_cli(capsys, "run", "--plate", plate, "--keyframes", first, keys / name, "--out",
                               tmp_path / name, "--method", "classical", "--progress", "none")
        assert code == 2
        assert f"{keys / name}: the keyframe trimap file has no frame number" in err and meant in err
        assert "lies outside" not in err
    code, _, err = run_cli(capsys, "run", "--plate", plate, "--keyframes", first, f"1008={keys / 'key_1008.png'}",
                           "--out", tmp_path / "paired", "--method", "classical", "--progress", "none")
    assert code == 0, err
    # a plate of one frame: the one keyframe file is that frame's, whatever its name
    code, _, err = run_cli(capsys, "run", "--plate", shot / "plate/plate.1008.exr", "--keyframes", keys / "key.png",
                           "--out", tmp_path / "one", "--method", "classical", "--progress", "none")
    assert code == 0, err
    assert (tmp_path / "one/alpha/alpha.1008.exr").is_file()


def test_stray_values_of_a_scaled_keyframe_are_placed_in_the_file(capsys, small_example, tmp_path: Path) -> None:
    """With --resize-trimaps the area was said in the plate's pixels after scaling (400
    pixels at x 6-25), in front of the path of a file where it is 100 pixels at x 3-12."""
    import cv2

    keys = tmp_path / "keys"
    keys.mkdir()
    for frame in (small_example.first, small_example.last):
        full = cv2.imread(str(small_example.folder / f"keyframes/key.{frame}.png"), cv2.IMREAD_GRAYSCALE)
        half = cv2.resize(full, (48, 32), interpolation=cv2.INTER_NEAREST)
        if frame == small_example.first:
            half[2:12, 3:13] = 64
        cv2.imwrite(str(keys / f"key.{frame}.png"), half)
    code, _, err = run_cli(capsys, "trimaps", "--plate", small_example.plate, "--keyframes", keys / "key.####.png",
                           "--resize-trimaps", "--out", tmp_path / "out", "--method", "classical", "--progress", "none")
    assert code == 2
    assert "(100 pixels within x 3-12, y 2-11 from the top left): 64 (100 pixels)" in err


def test_a_single_trimap_file_and_an_unknown_file_type_say_what_to_do(capsys, small_example, tmp_path: Path) -> None:
    """"is a single file; it has no frames 1003" said nothing of the pair that works, and a
    file type OpenImageIO does not read was asked "is the file complete?"."""
    key = tmp_path / "key.png"
    key.write_bytes((small_example.folder / "keyframes/key.1001.png").read_bytes())
    code, _, err = run_cli(capsys, "matte", "--plate", small_example.folder / "plate/plate.1003.exr", "--trimaps", key,
                           "--out", tmp_path / "o", "--method", "classical", "--progress", "none")
    assert code == 2 and f"give it with its frame (1003={key})" in err
    (tmp_path / "heic").mkdir()
    (tmp_path / "heic/plate.1001.heic").write_bytes(bytes(range(256)))
    code, _, err = run_cli(capsys, "run", "--plate", tmp_path / "heic/plate.####.heic", "--keyframes",
                           small_example.folder / "keyframes/key.1001.png", "--out", tmp_path / "h", "--method",
                           "classical", "--progress", "none")
    assert code == 2 and "plate.1001.heic" in err and "convert it to a type OpenImageIO reads here" in err
    assert "is the file complete" not in err


def test_run_out_is_a_folder_whatever_its_name_unless_no_sequence_can_be_kept_there(capsys, small_example,
                                                                                     tmp_path: Path) -> None:
    """Odd-inputs QA: `run --out "100% final"` was refused as a file pattern (io.md: "always a
    folder, whatever its name"), and `matte --trimaps "shot #5/trimaps/trimap.####.png"` ended
    in fileseq's exception, exit 1."""
    flags = ["--plate", small_example.plate, "--keyframes", small_example.keyframes, "--method", "classical",
             "--shot-range", "1001-1008", "--progress", "none"]
    code, _, err = run_cli(capsys, "run", *flags, "--out", tmp_path / "100% final")
    assert code == 0, err
    assert (tmp_path / "100% final" / "alpha" / "alpha.1008.exr").is_file()
    code, _, err = run_cli(capsys, "run", *flags, "--out", tmp_path / "shot #5")
    assert code == 2 and "the folder" in err and "holds '#'" in err, err
    assert not (tmp_path / "shot #5").exists()  # refused before anything was made
    code, _, err = run_cli(capsys, "run", *flags, "--out", tmp_path / "matte.####.exr")
    assert code == 2 and "so --out is a folder, not a file pattern" in err, err
    marked = tmp_path / "sh #5"
    shutil.copytree(tmp_path / "100% final" / "trimaps", marked / "trimaps")
    code, _, err = run_cli(capsys, "matte", "--plate", small_example.plate, "--trimaps",
                           marked / "trimaps" / "trimap.####.png", "--out", tmp_path / "m", "--method", "classical",
                           "--progress", "none")
    assert code == 2 and "holds '#', which a sequence pattern reads as a frame number" in err, err
    assert "Traceback" not in err and "please report" not in err


def test_the_command_line_surface_refuses_what_it_took_wrongly(capsys, small_example, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Surface QA: `--frames 1003.9` matted frame 1003 (fileseq's subframes cut down); an empty
    output path was the current folder (`export --out ''`, `nuke install ''`) or a traceback
    (`farm template ''`); `eval --seed -4` a numpy traceback; `review --json --progress json`
    printed indented JSON among the event lines."""
    trimaps = str(small_example.folder / "truth" / "trimap.####.png")
    for frames in ("1003.9", "1001-1005x1.5", "1003.2,1003.7"):
        code, _, err = run_cli(capsys, "matte", "--plate", small_example.plate, "--trimaps", trimaps, "--out",
                               tmp_path / "m", "--method", "classical", "--frames", frames, "--progress", "none")
        assert code == 2 and "frame numbers and steps are whole numbers" in err, (frames, err)
    assert not (tmp_path / "m").exists()
    monkeypatch.chdir(tmp_path)
    for args in (["farm", "template", ""], ["export", "--weights", "x.pth", "--out", ""], ["nuke", "install", ""],
                 ["eval", "--make-synthetic", "syn", "--seed", "-4"]):
        with pytest.raises(SystemExit) as caught:
            main(args)
        assert caught.value.code == 2, args
    assert capsys.readouterr().err.count("is empty: give a path") == 3
    assert not list(tmp_path.iterdir())
    out = tmp_path / "o"
    assert main(["run", "--plate", small_example.plate, "--keyframes", small_example.keyframes, "--out", str(out),
                 "--method", "classical", "--progress", "none"]) == 0
    capsys.readouterr()
    assert main(["review", str(out), "--json", "--progress", "json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["result"]


def test_an_empty_keyframe_or_trimap_name_is_refused_as_empty(capsys, small_example, tmp_path: Path) -> None:
    """`--keyframes ''` was read as the current folder ("': the keyframe trimap is a folder");
    `--keyframes key.png ' '` as a sequence named by blanks; the API's {1001: ''} likewise."""
    for flag, given in (("--keyframes", [""]), ("--keyframes", [small_example.keyframes, " "]), ("--trimaps", [""])):
        code, _, err = run_cli(capsys, "run", "--plate", small_example.plate, flag, *given, "--out", tmp_path / "o",
                               "--method", "classical", "--progress", "none")
        assert code == 2 and "given for the" in err and "is empty" in err and "FRAME=PATH" in err, (given, err)
    for given in ({1001: ""}, {1001: Path("")}):  # code review: Path("") is "." as text
        with pytest.raises(InputError, match="the file of frame 1001 is empty"):
            pipeline.matte(small_example.plate, given, tmp_path / "m", method="classical", progress="none")
    for given in (Path(""), [Path("")]):
        with pytest.raises(InputError, match="given for the trimaps is empty"):
            pipeline.matte(small_example.plate, given, tmp_path / "m", method="classical", progress="none")
    assert not (tmp_path / "o").exists() and not (tmp_path / "m").exists()


def test_an_example_written_again_into_its_folder_is_that_example_alone(capsys, caplog, tmp_path: Path) -> None:
    """Docs QA: `tcvom example --out ex --frames 6` into a folder holding a 12-frame example
    said "1001-1006" and left plate, truth and keyframe 1007-1012: the shot it named was a mix
    of two (a run of the suggested command refused the other size's keyframe 1012)."""
    folder = tmp_path / "ex"
    assert main(["example", "--out", str(folder), "--width", "48", "--height", "32", "--frames", "12",
                 "--progress", "none"]) == 0
    assert main(["example", "--out", str(folder), "--width", "40", "--height", "32", "--frames", "6",
                 "--progress", "none"]) == 0
    capsys.readouterr()
    names = {sub: sorted(p.name for p in (folder / sub).iterdir()) for sub in ("plate", "keyframes", "truth")}
    assert names["plate"] == [f"plate.{f}.exr" for f in range(1001, 1007)]
    assert names["keyframes"] == ["key.1001.png", "key.1006.png"]
    assert names["truth"] == sorted([f"alpha.{f}.png" for f in range(1001, 1007)] +
                                    [f"trimap.{f}.png" for f in range(1001, 1007)])
    assert main(["run", "--plate", str(folder / "plate" / "plate.####.exr"), "--keyframes",
                 str(folder / "keyframes" / "key.####.png"), "--out", str(tmp_path / "o"), "--method", "classical",
                 "--progress", "none"]) == 0
    # code review: only the files an example wrote go; a keyframe the user copied in (as BENCHMARKS.md
    # has users do) or a plate frame changed since stays, and is named
    shutil.copy(folder / "truth" / "trimap.1004.png", folder / "keyframes" / "key.1004.png")
    pixels, _ = read_image(folder / "plate" / "plate.1005.exr")
    write_image(folder / "plate" / "plate.1005.exr", pixels * 0.5, pixel_type="half", channels=("R", "G", "B"))
    caplog.clear()
    capsys.readouterr()
    assert main(["example", "--out", str(folder), "--width", "40", "--height", "32", "--frames", "3",
                 "--progress", "none"]) == 0
    err = capsys.readouterr().err + caplog.text
    assert "2 file(s) of the example's sequences are not this example's" in err, err
    assert "keyframes/key.1004.png" in err and "plate/plate.1005.exr" in err
    assert sorted(p.name for p in (folder / "plate").iterdir()) == [f"plate.{f}.exr" for f in (1001, 1002, 1003, 1005)]
    assert sorted(p.name for p in (folder / "keyframes").iterdir()) == ["key.1001.png", "key.1003.png",
                                                                        "key.1004.png"]
    # second review: a file the user made inside the new example's frames was written over, then
    # (recorded as the example's) deleted by the next one: refused, nothing written
    painted = folder / "keyframes" / "key.1002.png"
    shutil.copy(folder / "truth" / "trimap.1002.png", painted)
    before = painted.read_bytes()
    code, _, err = run_cli(capsys, "example", "--out", folder, "--width", "40", "--height", "32", "--frames", "2",
                           "--progress", "none")
    assert code == 2 and "1 file(s) the example would write over were not written by an example" in err, err
    assert "keyframes/key.1002.png" in err and painted.read_bytes() == before
    assert (folder / "plate" / "plate.1003.exr").is_file()  # nothing deleted either


def test_an_alpha_movie_to_score_is_named_as_a_movie(capsys, small_example, tmp_path: Path) -> None:
    """Training QA: `eval --alpha FOLDER` of a folder holding only alpha.mov said
    "alpha.1001.png: 6 alpha frame(s) missing", a file that never was; the movie given
    itself was "a single file without a frame number"."""
    import av

    folder = tmp_path / "mov"
    folder.mkdir()
    with av.open(str(folder / "alpha.mov"), "w") as container:
        stream = container.add_stream("png", rate=24)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "gray"
        for packet in stream.encode(av.VideoFrame.from_ndarray(np.zeros((64, 96), np.uint8), format="gray")):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    for given in (folder, folder / "alpha.mov"):
        code, _, err = run_cli(capsys, "eval", "--alpha", given, "--truth", small_example.folder / "truth",
                               "--out", tmp_path / "rep", "--progress", "none")
        assert code == 2 and f"{folder / 'alpha.mov'}: the alpha is a movie" in err, err
        assert "image sequence" in err and "missing" not in err


def test_a_full_standard_stream_is_an_error_or_lost_words_never_a_traceback(small_example, tmp_path: Path) -> None:
    """Faults QA: `--progress json >/dev/full` ended in two tracebacks (exit 1), and a full
    stderr turned a finished job into exit 1 ("a bug") when its closing line failed."""
    import subprocess
    import sys

    args = [sys.executable, "-m", "tcvom", "run", "--plate", small_example.plate, "--keyframes",
            small_example.keyframes, "--method", "classical", "--frames", "1001-1003", "--shot-range", "1001-1008"]
    with open("/dev/full", "w") as full:
        result = subprocess.run([*args, "--out", str(tmp_path / "json"), "--progress", "json"], stdout=full,
                                stderr=subprocess.PIPE, text=True, timeout=300)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert "cannot write the JSON events to the standard output (No space left on device)" in result.stderr
        result = subprocess.run([*args, "--out", str(tmp_path / "quiet"), "--progress", "none"], stderr=full,
                                stdout=subprocess.PIPE, timeout=300)
    assert result.returncode == 0
    assert sorted(p.name for p in (tmp_path / "quiet" / "alpha").glob("*.exr")) == [
        f"alpha.{f}.exr" for f in (1001, 1002, 1003)]


def test_commands_it_prints_and_names_it_refuses_work_as_given(small_example, tmp_path: Path, capsys,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Faults QA: the closing line's `tcvom review -o3/review` was read as a flag; a 245-letter
    output name failed on tcvom's hidden record file ("File name too long"); a keyframe
    given as FRAME=FOLDER was "file not found"; an out-of-memory process was "a bug"."""
    monkeypatch.chdir(tmp_path)
    flags = ["--plate", small_example.plate, "--method", "classical"]
    keys = ["--keyframes", small_example.keyframes]
    code, _, err = run_cli(capsys, "run", *flags, *keys, "--out=-o3", "--progress", "none")
    assert code == 0 and "(every frame: tcvom review ./-o3/review)" in err, err
    assert run_cli(capsys, "review", "./-o3/review")[0] == 0
    long = "L" * 245
    code, _, err = run_cli(capsys, "matte", *flags, "--trimaps", "./-o3/trimaps/trimap.####.png", "--out",
                           f"o4/{long}.####.exr", "--progress", "none")
    assert code == 2 and "is too long: tcvom keeps its records beside it" in err and "by 2 byte(s)" in err, err
    assert not (tmp_path / "o4").exists()
    (tmp_path / "kd" / "key.1008.png").mkdir(parents=True)
    code, _, err = run_cli(capsys, "run", *flags, "--keyframes", f"1001={small_example.trimaps.replace('####', '1001')}",
                           f"1008={tmp_path / 'kd' / 'key.1008.png'}", "--out", "o5", "--progress", "none")
    assert code == 2 and "(a folder is there, not an image file)" in err, err
    from tcvom.cli import cmd_info

    def exhausted(_args: object) -> int:
        raise MemoryError

    monkeypatch.setattr(cmd_info, "main", exhausted)
    code, _, err = run_cli(capsys, "info")
    assert code == 2 and "out of memory" in err and "please report" not in err, err


def test_a_still_plate_without_a_frame_number_gets_advice_that_works(capsys, small_example, tmp_path: Path) -> None:
    """Odd-inputs QA: a still plate (IMG_4031.png) keyed as 4031 was told to widen
    --shot-range, then to give the plate as 4031=IMG_4031.png, a form --plate does not take."""
    import shutil

    plate = tmp_path / "IMG_4031.exr"
    shutil.copy(small_example.plate.replace("####", "1001"), plate)
    key = small_example.keyframes.replace("####", "1001")
    code, _, err = run_cli(capsys, "run", "--plate", plate, "--keyframes", f"4031={key}", "--out", tmp_path / "o",
                           "--method", "classical", "--progress", "none")
    assert code == 2 and "the plate is one file without a frame number, frame 1: give its keyframe as 1=KEY" in err, err
    code, _, err = run_cli(capsys, "run", "--plate", plate, "--keyframes", f"4031={key}", "--shot-range", "4031",
                           "--out", tmp_path / "o", "--method", "classical", "--progress", "none")
    assert code == 2 and "copy or link it with its frame in its name (IMG_4031.4031.exr)" in err and "4031=" not in err
    code, _, err = run_cli(capsys, "run", "--plate", plate, "--keyframes", f"1={key}", "--out", tmp_path / "o",
                           "--method", "classical", "--progress", "none")
    assert code == 0, err
