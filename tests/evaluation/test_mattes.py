"""`tcvom eval` and tcvom.evaluation.mattes on a tiny synthetic benchmark."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from tcvom.cli import main as cli_main
from tcvom.data.synthetic import ShotConfig, write_benchmark
from tcvom.data.vm108 import VideoMatting108
from tcvom.errors import InputError, MissingFrameError
from tcvom.evaluation import metrics
from tcvom.evaluation.mattes import evaluate, line_plot, prediction_files

CFG = ShotConfig(width=80, height=56, frames=4, seed=0)


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bench")
    write_benchmark(root, clips=2, config=CFG, seed=1)
    return root


def _write_predictions(data: Path, out: Path, widths: list[str], noise: float) -> None:
    for w in widths:
        for clip in VideoMatting108(data):
            folder = out / w / clip.name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(len(clip)):
                a = clip.read(i).alpha
                if noise:
                    a = np.clip(a + np.random.default_rng(i).normal(0, noise, a.shape), 0, 1)
                cv2.imwrite(str(folder / f"{i:05d}_pred.png"), np.round(a * 255).astype(np.uint8))


def test_the_reference_pred_test_names_are_read(bench: Path, tmp_path: Path) -> None:
    """Metrics QA: the reference pred_test.py writes 00012_alpha.png, which was refused."""
    _write_predictions(bench, tmp_path / "pred", ["narrow"], 0.0)
    for path in (tmp_path / "pred").rglob("*_pred.png"):
        path.rename(path.with_name(path.name.replace("_pred", "_alpha")))
    report = evaluate(bench, tmp_path / "out", predictions=tmp_path / "pred", plots=False, progress="none",
                      image_metrics=False)
    assert report.summary["narrow"]["mse"] == 0 and report.summary["narrow"]["pixel_count"] > 0


def test_perfect_predictions_score_zero(bench: Path, tmp_path: Path) -> None:
    _write_predictions(bench, tmp_path / "pred", ["narrow", "medium"], 0.0)
    report = evaluate(bench, tmp_path / "out", predictions=tmp_path / "pred", plots=False, progress="none")
    assert list(report.summary) == ["narrow", "medium"]  # wide has no folder: skipped
    for row in report.summary.values():
        for k in metrics.METRIC_NAMES:
            assert row[k] == pytest.approx(0.0, abs=1e-12), k
        assert row["clips"] == 2 and row["frames"] == 8 and row["pixel_count"] > 0
    assert report.flow["png"] == 6  # 2 clips x 3 pairs, read once for both widths


def test_noisy_predictions_and_reports(bench: Path, tmp_path: Path) -> None:
    _write_predictions(bench, tmp_path / "pred", ["narrow", "wide"], 0.1)
    out = tmp_path / "out"
    report = evaluate(bench, out, predictions=tmp_path / "pred", widths=["narrow", "wide"], worst=2, progress="none")
    narrow, wide = report.summary["narrow"], report.summary["wide"]
    # Noise of std 0.1 (clipped at 0 and 1): MSE well above 0, below 0.01.
    assert 1e-3 < narrow["mse"] < 1e-2
    assert wide["pixel_count"] > narrow["pixel_count"]
    assert narrow["dtssd"] > 0 and narrow["messddt"] > 0 and narrow["grad"] > 0
    # The per-clip JSON and per-frame CSV agree with the summary.
    clips = json.loads((out / "clips.json").read_text())["clips"]
    assert np.mean([c["ssda"] for c in clips["narrow"].values()]) == pytest.approx(narrow["ssda"])
    rows = list(csv.DictReader((out / "frames.csv").open()))
    assert len(rows) == 2 * 2 * 4
    one = [float(r["dtssd"]) for r in rows if r["width"] == "wide" and r["clip"] == "synthetic/clip_000"]
    assert one[-1] == 0.0 and np.mean(one) == pytest.approx(clips["wide"]["synthetic/clip_000"]["dtssd"])
    table = (out / "summary.md").read_text()
    assert "| narrow |" in table and "MSE (x1e3)" in table and "flow for MESSDdt: png: 6 pairs" in table
    strip = cv2.imread(str(out / "plots/narrow/synthetic__clip_001_worst.png"))
    assert strip is not None and strip.shape[1] == 4 * 80
    assert cv2.imread(str(out / "plots/wide/synthetic__clip_000_curves.png")) is not None


def test_dis_flow_and_clip_filter(bench: Path, tmp_path: Path) -> None:
    _write_predictions(bench, tmp_path / "pred", ["medium"], 0.05)
    report = evaluate(
        bench,
        tmp_path / "out",
        predictions=tmp_path / "pred",
        widths=["medium"],
        clips=["clip_001"],
        flow="dis",
        image_metrics=False,
        plots=False,
        progress="none",
    )
    assert report.flow == {"png": 0, "dis": 3, "none": 0}
    assert list(report.clips["medium"]) == ["synthetic/clip_001"]
    assert report.summary["medium"]["messddt"] > 0
    # not measured is not a perfect 0 (table, JSON and CSV showed Grad and Conn as 0)
    assert "grad" not in report.summary["medium"] and "conn" not in report.summary["medium"]
    row = report.table().splitlines()[-1].split(" | ")
    assert row[6:8] == ["n/a", "n/a"], report.table()
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())["summary"]["medium"]
    assert "grad" not in summary and "mse" in summary
    with (tmp_path / "out" / "frames.csv").open() as handle:
        frames = list(csv.DictReader(handle))
    assert frames and all(r["grad"] == "" and r["conn"] == "" and r["mse"] != "" for r in frames)


def test_missing_prediction_frame_is_named(bench: Path, tmp_path: Path) -> None:
    _write_predictions(bench, tmp_path / "pred", ["narrow"], 0.0)
    (tmp_path / "pred/narrow/synthetic/clip_001/00002_pred.png").unlink()
    with pytest.raises(MissingFrameError, match="frame 2"):
        evaluate(bench, tmp_path / "out", predictions=tmp_path / "pred", plots=False, progress="none")
    with pytest.raises(InputError):
        evaluate(bench, tmp_path / "out", predictions=tmp_path / "nothing", progress="none")
    with pytest.raises(InputError):
        evaluate(bench, tmp_path / "out", progress="none")


def test_a_flow_file_or_frame_of_another_size_is_named(bench: Path, tmp_path: Path) -> None:
    """A flow PNG, or a clip's frame, of another size stopped the evaluation with "the arrays
    to compare differ in size" (or "frame 1: frame size changed"): no file, no clip."""
    import shutil

    from tcvom.errors import FrameSizeError

    data = tmp_path / "data"
    shutil.copytree(bench, data)
    _write_predictions(data, tmp_path / "pred", ["narrow"], 0.0)
    clip = list(VideoMatting108(data))[1]
    flow_file = clip.flow_path(1)
    flow_png = cv2.imread(str(flow_file), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(flow_file), cv2.resize(flow_png, (40, 28), interpolation=cv2.INTER_NEAREST))
    with pytest.raises(FrameSizeError, match="the flow is 40x28, the frames of clip synthetic/clip_001 are 80x56") as err:
        evaluate(data, tmp_path / "out", predictions=tmp_path / "pred", widths=["narrow"], plots=False,
                 progress="none")
    assert err.value.path == str(flow_file) and err.value.frame == 1
    for i in (2, 3):  # the clip's last two frames, foreground and background, at another size
        for path in (clip.fg_path(i), clip.bg_path(i)):
            cv2.imwrite(str(path), cv2.resize(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), (64, 56)))
        pred = tmp_path / f"pred/narrow/{clip.name}/{i:05d}_pred.png"
        cv2.imwrite(str(pred), cv2.resize(cv2.imread(str(pred), cv2.IMREAD_UNCHANGED), (64, 56)))
    with pytest.raises(FrameSizeError, match="the frame is 64x56, frame 0 of clip synthetic/clip_001 is 80x56") as err:
        evaluate(data, tmp_path / "out", predictions=tmp_path / "pred", widths=["narrow"], flow="none", plots=False,
                 progress="none")
    assert err.value.path == str(clip.fg_path(2))


def test_prediction_files_past_the_clip_are_named_as_not_scored(bench: Path, tmp_path: Path, caplog) -> None:
    """A folder with more frames than the truth (another export, an off-by-one range) was
    scored over the truth's frames without a word."""
    _write_predictions(bench, tmp_path / "pred", ["narrow"], 0.0)
    folder = tmp_path / "pred/narrow/synthetic/clip_001"
    (folder / "00004_pred.png").write_bytes((folder / "00003_pred.png").read_bytes())
    report = evaluate(bench, tmp_path / "out", predictions=tmp_path / "pred", plots=False, progress="none")
    assert report.summary["narrow"]["frames"] == 8
    assert "clip_001: 1 prediction file(s) past the clip's frames 0..3 (00004_pred.png) are not scored" in caplog.text
    assert "clip_000" not in caplog.text


def test_a_prediction_with_nan_is_refused_naming_it(bench: Path, tmp_path: Path) -> None:
    """A NaN in a predicted EXR was scored: the table showed 0s and summary.json a bare NaN."""
    from tcvom.io.images import read_image, write_image

    _write_predictions(bench, tmp_path / "pred", ["narrow"], 0.0)
    png = tmp_path / "pred/narrow/synthetic/clip_001/00002_pred.png"
    alpha, _ = read_image(png)
    alpha[3, 3] = np.nan
    write_image(png.with_suffix(".exr"), alpha, pixel_type="float")
    png.unlink()
    with pytest.raises(InputError, match="NaN") as err:
        evaluate(bench, tmp_path / "out", predictions=tmp_path / "pred", plots=False, progress="none")
    assert "00002_pred.exr" in str(err.value) and "frame 2" in str(err.value)


def test_prediction_file_names(tmp_path: Path) -> None:
    for name in ("00003.png", "alpha.0004.exr", "00005_pred.png", "00005_tri.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert {k: p.name for k, p in prediction_files(tmp_path).items()} == {
        3: "00003.png",
        4: "alpha.0004.exr",
        5: "00005_pred.png",
    }
    (tmp_path / "frame_0003.tif").write_bytes(b"")
    with pytest.raises(InputError, match="two prediction files"):
        prediction_files(tmp_path)


def test_line_plot_draws() -> None:
    img = line_plot("t", {"a": [0.0, 1.0, 0.5]}, size=(300, 120))
    assert img.shape == (120, 300, 3) and (img != 255).any()


def test_cli_make_synthetic_and_score(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "syn"
    code = cli_main(
        ["eval", "--make-synthetic", str(data), "--synthetic-clips", "1", "--synthetic-frames", "3",
         "--synthetic-size", "64x48", "--progress", "none"]
    )
    assert code == 0 and (data / "frame_corr.json").is_file()
    _write_predictions(data, tmp_path / "pred", ["wide"], 0.0)
    code = cli_main(
        ["eval", "--data", str(data), "--predictions", str(tmp_path / "pred"), "--out", str(tmp_path / "out"),
         "--widths", "wide", "--no-plots", "--progress", "none"]
    )
    assert code == 0
    assert "| wide |" in capsys.readouterr().out
    # Bad input is exit code 2 with a message, not a traceback.
    assert cli_main(["eval", "--data", str(tmp_path / "none"), "--predictions", "x", "--out", "y"]) == 2


def test_method_mode_runs_the_pipeline(bench: Path, tmp_path: Path) -> None:
    pytest.importorskip("tcvom.pipeline")
    try:
        from tcvom.classical import ClassicalSession  # noqa: F401
    except ImportError:
        pytest.skip("the classical matting session is not available yet")
    report = evaluate(
        bench, tmp_path / "out", method="classical", widths=["narrow"], clips=["clip_000"],
        image_metrics=False, plots=False, progress="none",
    )
    row = report.summary["narrow"]
    assert row["frames"] == 4 and 0 <= row["mse"] < 0.1
    assert len(list((tmp_path / "out/work/alpha/narrow/synthetic/clip_000").glob("alpha.*.png"))) == 4


def test_an_rgb_prediction_is_read_from_the_same_channel_whatever_its_type(tmp_path: Path) -> None:
    """A 16-bit RGB PNG was scored on its blue channel (OpenCV's order), a TIFF or EXR of the
    same picture on its red one."""
    from tcvom.evaluation.mattes import read_prediction
    from tcvom.io import write_image

    alpha = np.linspace(0, 1, 48, dtype=np.float32).reshape(6, 8)
    rgb = np.dstack([alpha, np.zeros_like(alpha), np.full_like(alpha, 0.25)])
    read = {}
    for name, pixel_type in (("a.png", "uint16"), ("a.tif", "uint16"), ("a.exr", "float")):
        write_image(tmp_path / name, rgb, pixel_type=pixel_type)
        read[name] = read_prediction(tmp_path / name, 0)
    for name, values in read.items():
        np.testing.assert_allclose(values, alpha, atol=1e-4, err_msg=name)


def test_a_prediction_is_scored_on_its_channel_named_a(tmp_path: Path) -> None:
    """Eval QA: an RGBA EXR with a depth channel (R, G, B, A, Z: a comp's output) was scored
    on R (premultiplied colour), exit 0. The channel named A is the alpha wherever it is; a
    file of several channels none of which is A cannot be told, and says so."""
    from tcvom.errors import InputError
    from tcvom.evaluation.mattes import read_prediction
    from tcvom.io import write_image

    alpha = np.linspace(0, 1, 48, dtype=np.float32).reshape(6, 8)
    depth = np.full_like(alpha, 7.0)
    layouts = {
        "rgbaz.exr": (np.dstack([0.9 * alpha, 0.5 * alpha, 0.1 * alpha, alpha, depth]), ("R", "G", "B", "A", "Z")),
        "az.exr": (np.dstack([alpha, depth]), ("A", "Z")),
        "rgba.exr": (np.dstack([0.9 * alpha, 0.5 * alpha, 0.1 * alpha, alpha]), ("R", "G", "B", "A")),
        "ya.exr": (np.dstack([0.3 * alpha, alpha]), ("Y", "A")),
    }
    for name, (pixels, channels) in layouts.items():
        write_image(tmp_path / name, pixels, pixel_type="float", channels=channels)
        np.testing.assert_allclose(read_prediction(tmp_path / name, 0), alpha, atol=1e-6, err_msg=name)
    write_image(tmp_path / "rgbz.exr", np.dstack([alpha, alpha, alpha, depth]), pixel_type="float",
                channels=("R", "G", "B", "Z"))
    with pytest.raises(InputError, match=r"4 channels \(R, G, B, Z\) and none named A") as error:
        read_prediction(tmp_path / "rgbz.exr", 1001)
    assert error.value.frame == 1001 and str(tmp_path / "rgbz.exr") in str(error.value.path)


def test_sparse_ground_truth_is_scored_with_frames(small_example, tmp_path: Path, capsys) -> None:
    """Eval QA: ground truth of every other frame was refused with advice to use --shot-range,
    which eval does not take. --frames scores those frames, without the temporal metrics
    (they compare each frame with the next, which has no truth)."""
    import shutil

    truth = tmp_path / "truth"
    truth.mkdir()
    kept = range(small_example.first, small_example.last + 1, 2)
    for f in kept:
        for name in (f"alpha.{f}.png", f"trimap.{f}.png"):
            shutil.copy(Path(small_example.folder) / "truth" / name, truth / name)
    alpha = tmp_path / "alpha"
    shutil.copytree(Path(small_example.folder) / "truth", alpha)
    for f in kept:  # a wrong prediction on the frames scored
        (alpha / f"alpha.{f}.png").write_bytes((alpha / f"alpha.{f + 1}.png").read_bytes())
    args = ["eval", "--alpha", str(alpha / "alpha.####.png"), "--truth", str(truth), "--plate", small_example.plate,
            "--progress", "none"]
    assert cli_main(args) == 2
    err = capsys.readouterr().err
    steps = f"{small_example.first}-{small_example.last - 1}x2"
    assert f"--frames {steps}" in err and "--shot-range" not in err, err
    assert cli_main([*args, "--frames", steps, "--out", str(tmp_path / "report")]) == 0
    captured = capsys.readouterr()
    assert "not consecutive" in captured.err, captured.err
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    row = summary["summary"]["shot"]
    assert row["frames"] == len(kept) and row["sad"] > 0
    assert not {"dtssd", "messddt", "messddt_l1"} & set(row), row
    header = captured.out.splitlines()[0].split("|")
    cells = captured.out.splitlines()[2].split("|")
    assert cells[header.index(" dtSSD ")].strip() == "n/a" and cells[header.index(" MESSDdt ")].strip() == "n/a"
    for flag, value in (("--frames", steps), ("--plate", small_example.plate)):
        assert cli_main(["eval", "--data", str(tmp_path), flag, value, "--out", str(tmp_path / "x"),
                         "--progress", "none"]) == 2
        assert f"{flag} is for scoring one shot" in capsys.readouterr().err


def test_a_width_whose_truth_trimaps_cover_the_subject_names_the_clip(tmp_path: Path) -> None:
    """Eval QA: --method on a small synthetic clip, whose medium band covers its subject, was
    refused naming a work file tcvom wrote itself (work/trimaps/...), with no word of the
    clip or the width to leave out."""
    from tcvom.errors import InputError
    from tcvom.evaluation.mattes import evaluate, make_synthetic

    make_synthetic(tmp_path / "bench", clips=1, frames=4, width=96, height=64, progress="none")
    with pytest.raises(InputError) as caught:
        evaluate(tmp_path / "bench", tmp_path / "r", method="classical", widths=["medium"], plots=False)
    assert "clip synthetic/clip_000, medium trimaps (made from its ground truth): no trimap has foreground" in str(
        caught.value)
    assert caught.value.path is not None and "FG_done" in caught.value.path and "--widths" in str(caught.value)


def test_a_bounding_box_exr_is_scored_on_its_display_window(small_example, tmp_path: Path, capsys) -> None:
    """Eval QA: an alpha EXR whose data window is its bounding box (a Nuke render with a bbox)
    was refused as another size, as prediction or as truth (naming the other, full-size file);
    it is placed on its display window, as plates and trimaps are."""
    import shutil

    import OpenImageIO as oiio

    from tcvom.io import read_image

    cropped = tmp_path / "cropped"
    cropped.mkdir()
    for path in sorted((Path(small_example.folder) / "truth").glob("alpha.*.png")):
        alpha = read_image(path)[0][..., 0]
        ys, xs = np.nonzero(alpha)
        top, left = int(ys.min()), int(xs.min())
        box = np.ascontiguousarray(alpha[top:ys.max() + 1, left:xs.max() + 1])
        assert box.shape != alpha.shape
        spec = oiio.ImageSpec(box.shape[1], box.shape[0], 1, "float")
        spec.x, spec.y, spec.full_width, spec.full_height = left, top, alpha.shape[1], alpha.shape[0]
        spec.channelnames = ("A",)
        out = oiio.ImageOutput.create(str(cropped / path.with_suffix(".exr").name))
        assert out.open(str(cropped / path.with_suffix(".exr").name), spec) and out.write_image(box[..., None])
        out.close()
    truth = Path(small_example.folder) / "truth"
    assert cli_main(["eval", "--alpha", str(cropped / "alpha.####.exr"), "--truth", str(truth), "--progress", "none",
                     "--out", str(tmp_path / "a")]) == 0
    row = json.loads((tmp_path / "a" / "summary.json").read_text())["summary"]["shot"]
    assert row["sad"] < 1e-6 and row["mse"] < 1e-6 and row["frames"] == 8, row  # the truth's 8 bits as floats
    for path in truth.glob("trimap.*.png"):
        shutil.copy(path, cropped / path.name)
    assert cli_main(["eval", "--alpha", str(truth / "alpha.####.png"), "--truth", str(cropped), "--progress", "none",
                     "--out", str(tmp_path / "b")]) == 0
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["summary"]["shot"]["sad"] < 1e-6
    capsys.readouterr()
    # review: a box reaching past the display window (a blur at the edge) is cropped to it
    from tcvom.evaluation.mattes import read_prediction

    wide = np.random.default_rng(3).random((20, 30), dtype=np.float32)
    spec = oiio.ImageSpec(30, 20, 1, "float")
    spec.x, spec.y, spec.full_x, spec.full_y, spec.full_width, spec.full_height = -4, 2, 0, 0, 24, 16
    spec.channelnames = ("A",)
    out = oiio.ImageOutput.create(str(tmp_path / "edge.exr"))
    assert out.open(str(tmp_path / "edge.exr"), spec) and out.write_image(wide[..., None])
    out.close()
    expected = np.zeros((16, 24), np.float32)
    expected[2:16, 0:24] = wide[0:14, 4:28]
    np.testing.assert_array_equal(read_prediction(tmp_path / "edge.exr", 1), expected)


def test_the_datasets_flags_are_refused_with_alpha_and_flow_none_is_kept(small_example, tmp_path: Path,
                                                                          capsys) -> None:
    """Eval QA: with --alpha, --propagate, --data, --widths... were ignored (exit 0, another
    protocol than the one asked) and --flow none still measured MESSDdt from DIS flow."""
    truth = str(Path(small_example.folder) / "truth")
    shot = ["eval", "--alpha", str(Path(truth) / "alpha.####.png"), "--truth", truth, "--progress", "none"]
    for flags, named in ((["--propagate", "classical"], "--propagate"), (["--data", str(tmp_path)], "--data"),
                         (["--widths", "medium"], "--widths"), (["--flow", "png"], "--flow png"),
                         (["--seed", "5"], "--seed"), (["--device", "cuda:7"], "--device"),
                         (["--make-synthetic", str(tmp_path / "s")], "--make-synthetic")):
        assert cli_main([*shot, *flags]) == 2, flags
        assert f"{named} is for scoring a dataset (--data), not one shot (--alpha)" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
    assert cli_main([*shot, "--flow", "dis"]) == 2
    assert "--flow dis computes the flow for MESSDdt from the plate" in capsys.readouterr().err
    assert cli_main([*shot, "--plate", small_example.plate, "--flow", "none", "--out", str(tmp_path / "n")]) == 0
    row = json.loads((tmp_path / "n" / "summary.json").read_text())["summary"]["shot"]
    assert "messddt" not in row and "dtssd" in row, row
    assert cli_main([*shot, "--plate", small_example.plate, "--out", str(tmp_path / "d")]) == 0
    assert "messddt" in json.loads((tmp_path / "d" / "summary.json").read_text())["summary"]["shot"]
