"""A real classical run writes OUT/review; a rerun that reuses every frame keeps the same
doubt; `tcvom review` prints, dumps and rebuilds it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tcvom import pipeline
from tcvom.cli import main
from tcvom.review.doubt import load_review, read_trimap_stats, table, trimaps_behind


def _key(example, frame: int) -> str:
    return f"{frame}={example.trimaps.replace('####', str(frame))}"


@pytest.fixture(scope="module")
def reviewed_run(small_example, tmp_path_factory):
    out = tmp_path_factory.mktemp("review") / "out"
    keys = [_key(small_example, 1001), _key(small_example, 1004)]
    result = pipeline.run(small_example.plate, out, keyframes=keys, shot_range="1001-1006", method="classical",
                          progress="none")
    return out, result


def test_run_writes_the_review(reviewed_run) -> None:
    out, result = reviewed_run
    assert result.outputs["review"] == str(out / "review")
    data = json.loads((out / "review" / "review.json").read_text())
    assert data["version"] == 1 and data["keyframes"] == [1001, 1004]
    rows = {r["frame"]: r for r in data["frames"]}
    assert sorted(rows) == list(range(1001, 1007))
    assert rows[1001]["trimap_doubt"] == rows[1004]["trimap_doubt"] == 0.0
    assert all(rows[f]["trimap_doubt"] > 0 for f in (1002, 1003, 1005, 1006))
    assert all(rows[f]["disagreement"] is not None for f in (1002, 1003))  # two passes there
    assert rows[1006]["disagreement"] is None and rows[1006]["trimap_doubt"] > rows[1005]["trimap_doubt"]
    assert all(r["residual"] is not None and r["doubt"] == max(r["trimap_doubt"], r["matte_doubt"])
               for r in rows.values())
    assert data["suggested"] and not set(data["suggested"]) & {1001, 1004}
    assert data["doubtful"] == sorted(f for f, r in rows.items() if r["doubt"] > data["threshold"])
    assert (out / "review" / "review.csv").read_text().count("\n") == 7
    assert (out / "review" / "review.png").stat().st_size > 1000
    stats = read_trimap_stats(str(out / "trimaps" / "trimap.####.png"), range(1001, 1007))
    assert sorted(stats) == list(range(1001, 1007)) and stats[1004].keyframe


def test_a_rerun_that_reuses_every_frame_keeps_the_doubt(reviewed_run, small_example) -> None:
    out, _ = reviewed_run
    before = json.loads((out / "review" / "review.json").read_text())
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "review").iterdir()}
    keys = [_key(small_example, 1001), _key(small_example, 1004)]
    again = pipeline.run(small_example.plate, out, keyframes=keys, shot_range="1001-1006", method="classical",
                         progress="none")
    assert again.written == [] and sorted(again.skipped) == list(range(1001, 1007))
    after = json.loads((out / "review" / "review.json").read_text())
    assert after["frames"] == before["frames"] and after["suggested"] == before["suggested"]
    # the same review: its files are left as they are (none rewritten with the same bytes)
    assert {p.name: p.stat().st_mtime_ns for p in (out / "review").iterdir()} == stamps


def test_tcvom_review_prints_dumps_and_rebuilds(reviewed_run, capsys) -> None:
    out, _ = reviewed_run
    assert main(["review", str(out)]) == 0
    text = capsys.readouterr().out
    assert "key next:" in text and "keyframe" in text and "1006" in text
    assert main(["review", str(out / "review"), "--json"]) == 0
    dumped = json.loads(capsys.readouterr().out)
    assert dumped == load_review(out).as_dict()
    (out / "review" / "review.png").unlink()
    assert main(["review", str(out), "--rebuild", "--json", "--progress", "none"]) == 0
    rebuilt = json.loads(capsys.readouterr().out)
    assert rebuilt["frames"] == dumped["frames"] and (out / "review" / "review.png").exists()


def test_tcvom_review_with_json_progress_prints_json_lines(reviewed_run, capsys) -> None:
    out, _ = reviewed_run
    capsys.readouterr()
    for extra in ([], ["--rebuild"]):
        assert main(["review", str(out), "--progress", "json", *extra]) == 0
        events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        result = events[-1]
        assert result["event"] == "result" and result["job"] == "review"
        assert result["keyframes"] == [1001, 1004] and result["doubtful"] == load_review(out).doubtful
        assert Path(result["review"]) == out / "review" / "review.json"


def test_run_says_where_to_look_when_it_ends(small_example, tmp_path: Path, capsys) -> None:
    """Review QA: `tcvom run` ended naming the review folder only; the artist had to run
    `tcvom review` to learn which frames to look at. Its closing lines and its result event
    now name the doubtful frames and the frames to key next, as the review has them."""
    out = tmp_path / "my out"
    args = ["run", "--plate", small_example.plate, "--keyframes", _key(small_example, 1001), "--out", str(out),
            "--method", "classical"]
    capsys.readouterr()
    assert main([*args, "--progress", "none"]) == 0
    review = load_review(out)
    assert review.suggested
    doubtful = f"{len(review.doubtful)} doubtful frame(s)" if review.doubtful else "no doubtful frame"
    assert (f"tcvom: review: {doubtful}"  # the frames themselves are a range (format_range)
            f"{' (' if review.doubtful else ''}") in capsys.readouterr().err
    assert main([*args, "--progress", "bar"]) == 0  # a rerun, everything reused: said again
    err = capsys.readouterr().err
    assert f"key next: {', '.join(map(str, review.suggested))} (every frame: tcvom review '{out / 'review'}')" in err
    assert main([*args, "--progress", "json"]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert result["doubtful"] == review.doubtful and result["suggested"] == review.suggested


def test_a_run_whose_review_is_gone_at_its_end_still_ends_done(small_example, tmp_path: Path, capsys,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Code review: the closing line read the review after the work; where another run into
    the same output had removed it meanwhile, the finished run exited 2 without its result
    event. It ends done, without the line."""
    from tcvom.review import doubt

    written = doubt.review_output

    def removed_at_once(*args, **kwargs):
        review, paths = written(*args, **kwargs)
        for path in paths.values():
            path.unlink()
        return review, paths

    monkeypatch.setattr(doubt, "review_output", removed_at_once)
    args = ["run", "--plate", small_example.plate, "--keyframes", _key(small_example, 1001), "--out",
            str(tmp_path / "out"), "--method", "classical"]
    assert main([*args, "--progress", "json"]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert result["event"] == "result" and "doubtful" not in result
    assert main([*args, "--progress", "none"]) == 0
    assert "tcvom: review:" not in capsys.readouterr().err


def test_tcvom_review_without_a_review_is_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["review", str(tmp_path)]) == 2
    assert "no review" in capsys.readouterr().err


def test_trimaps_then_matte_review_inside_their_folders(small_example, tmp_path: Path) -> None:
    shot = tmp_path / "shot"
    keys = [_key(small_example, 1001), _key(small_example, 1004)]
    pipeline.trimaps(small_example.plate, keys, shot / "trimaps", shot_range="1001-1005", method="classical",
                     progress="none")
    first = load_review(shot / "trimaps")
    assert first.keyframes == [1001, 1004] and all(r.residual is None for r in first.frames)
    pipeline.matte(small_example.plate, str(shot / "trimaps" / "trimap.####.png"), shot / "alpha",
                   shot_range="1001-1005", method="classical", progress="none")
    both = load_review(shot / "alpha")
    assert not (shot / "review").exists(), "a stage never writes outside the folder it was given"
    assert both.keyframes == [1001, 1004] and all(r.residual is not None for r in both.frames)
    assert [r.trimap_doubt for r in both.frames] == [r.trimap_doubt for r in first.frames]
    assert sorted(p.name for p in (shot / "alpha").iterdir() if p.is_file() and not p.name.startswith(".")) == [
        f"alpha.{f}.exr" for f in range(1001, 1006)]
    # the command line gives --trimaps as a list of one pattern: the same review
    assert main(["matte", "--plate", small_example.plate, "--trimaps", str(shot / "trimaps" / "trimap.####.png"),
                 "--out", str(shot / "cli"), "--shot-range", "1001-1005", "--method", "classical",
                 "--progress", "none"]) == 0
    cli = load_review(shot / "cli")
    assert cli.keyframes == [1001, 1004]
    assert [r.trimap_doubt for r in cli.frames] == [r.trimap_doubt for r in both.frames]
    # and `run --trimaps` of them: it measured every frame against the 16-pixel floor, all doubtful (docs QA)
    assert main(["run", "--plate", small_example.plate, "--trimaps", str(shot / "trimaps" / "trimap.####.png"),
                 "--out", str(shot / "run"), "--shot-range", "1001-1005", "--method", "classical",
                 "--progress", "none"]) == 0
    run = load_review(shot / "run")
    assert run.keyframes == [1001, 1004] and run.doubtful == both.doubtful
    assert [(r.edge, r.matte_doubt, r.trimap_doubt) for r in run.frames] == [
        (r.edge, r.matte_doubt, r.trimap_doubt) for r in both.frames]
    # and rebuilt later (the farm's Review step, `tcvom review OUT --rebuild`): the same (API QA)
    from tcvom.pipeline.jobs import review_output

    shutil.rmtree(shot / "run" / "review")
    rebuilt, _ = review_output(shot / "run")
    assert rebuilt.keyframes == [1001, 1004] and [(r.edge, r.trimap_doubt) for r in rebuilt.frames] == [
        (r.edge, r.trimap_doubt) for r in run.frames]
    # matted again from other trimaps of the same names: the ones the alphas were made from (code review)
    pipeline.trimaps(small_example.plate, keys[:1], shot / "other", shot_range="1001-1005", method="classical",
                     progress="none")
    assert main(["run", "--plate", small_example.plate, "--trimaps", str(shot / "other" / "trimap.####.png"),
                 "--out", str(shot / "run"), "--shot-range", "1001-1005", "--method", "classical",
                 "--progress", "none"]) == 0
    assert load_review(shot / "run").keyframes == [1001]
    shutil.rmtree(shot / "run" / "review")
    assert review_output(shot / "run")[0].keyframes == [1001]


def test_preview_marks_the_review(reviewed_run, small_example, tmp_path: Path) -> None:
    import cv2

    out, _ = reviewed_run
    review = load_review(out)
    worst = max(review.frames, key=lambda r: r.doubt)
    assert main(["preview", "--plate", small_example.plate, "--frames", "1001-1006", "--trimaps",
                 str(out / "trimaps" / "trimap.####.png"), "--alpha", str(out / "alpha" / "alpha.####.exr"),
                 "--out", str(tmp_path), "--rows", "2", "--progress", "none"]) == 0
    sheet = cv2.imread(str(tmp_path / "contact_sheet.png"))
    assert sheet.shape[0] == 2 * 64  # two rows: the most doubtful frames, not four evenly spaced
    assert (tmp_path / "preview.mp4").stat().st_size > 0
    from tcvom.review.preview import most_doubtful

    assert worst.frame in most_doubtful(list(range(1001, 1007)), review.doubt(), 2)


def test_a_matte_of_given_trimaps_is_measured_against_their_band(small_example, tmp_path: Path) -> None:
    """`tcvom matte` on trimaps tcvom did not make (painted, another tool's) has no trimap
    records: every frame's edge size fell to the 16-pixel floor and the whole shot was
    doubtful. The band is read from the trimap files."""
    from tcvom.io import open_trimaps

    out = tmp_path / "alpha"
    assert main(["matte", "--plate", small_example.plate, "--trimaps", small_example.trimaps, "--out", str(out),
                 "--method", "classical", "--progress", "none"]) == 0
    review = load_review(out)
    trimaps = open_trimaps(small_example.trimaps, list(range(1001, 1009)))
    for row in review.frames:
        band = int((trimaps.read(row.frame) == 128).sum())
        assert row.edge == max(band, 16.0) and row.edge > 16.0, row
    assert not review.doubtful and not review.keyframes
    # painted in the alpha channel over black (--trimap-channel A): the band the matte read
    import numpy as np

    from tcvom.io import write_image

    painted = tmp_path / "painted"
    painted.mkdir()
    for f in range(1001, 1009):
        grey = trimaps.read(f).astype(np.float32) / 255.0
        write_image(painted / f"key.{f}.png", np.dstack([np.zeros((*grey.shape, 3), np.float32), grey]),
                    pixel_type="uint8", channels=("R", "G", "B", "A"))
    out = tmp_path / "alpha_a"
    assert main(["matte", "--plate", small_example.plate, "--trimaps", str(painted / "key.####.png"), "--out",
                 str(out), "--trimap-channel", "A", "--method", "classical", "--progress", "none"]) == 0
    assert [r.edge for r in load_review(out).frames] == [r.edge for r in review.frames]
    # an output of an older tcvom keeps no band in its alpha records: read from the files
    from tcvom.farm.records import FrameRecords

    records = FrameRecords(str(tmp_path / "alpha" / "alpha.####.exr"))
    folder = next(p for p in (tmp_path / "alpha").iterdir() if p.name.endswith(".tcvom") and p.is_dir())
    for record in (folder / "frames").glob("*.json"):
        data = json.loads(record.read_text())
        data.pop("review", None)
        record.write_text(json.dumps(data))
    assert records.get(1001) is not None and "review" not in records.get(1001)
    assert main(["review", str(tmp_path / "alpha"), "--rebuild", "--progress", "none"]) == 0
    assert [r.edge for r in load_review(tmp_path / "alpha").frames] == [r.edge for r in review.frames]


def test_preview_does_not_mark_another_mattes_review(reviewed_run, small_example, tmp_path: Path, capsys) -> None:
    """A copy of another version of the matte beside OUT/alpha was marked with the review of
    OUT/alpha (its doubts and "key next" labels), exit 0 without a word."""
    import shutil

    out, _ = reviewed_run
    shot = tmp_path / "shot"
    shutil.copytree(out, shot)
    shutil.copytree(shot / "alpha", shot / "alpha_v2")
    capsys.readouterr()
    assert main(["preview", "--plate", small_example.plate, "--frames", "1001-1006", "--trimaps",
                 str(shot / "trimaps" / "trimap.####.png"), "--alpha", str(shot / "alpha_v2" / "alpha.####.exr"),
                 "--out", str(tmp_path / "pv"), "--no-movie", "--progress", "none"]) == 0
    err = capsys.readouterr().err
    assert "made from another matte" in err and "marking" not in err.replace("not marking", ""), err
    # the matte's own review, its pattern written another way (printf padding, a link to the folder)
    (tmp_path / "link").symlink_to(shot)
    assert main(["preview", "--plate", small_example.plate, "--frames", "1001-1006", "--trimaps",
                 str(shot / "trimaps" / "trimap.####.png"), "--alpha", str(tmp_path / "link" / "alpha" / "alpha.%04d.exr"),
                 "--out", str(tmp_path / "pv2"), "--no-movie", "--progress", "none"]) == 0
    err = capsys.readouterr().err
    assert "another matte" not in err and "marking" in err, err


def test_preview_of_a_plate_too_small_for_a_movie_is_refused(tmp_path: Path, capsys) -> None:
    """A 1-pixel-wide plate ended in an IndexError from the encoder (exit 1)."""
    import numpy as np

    from tcvom.io import write_image

    for name, value in (("plate/plate.1001.exr", 0.5), ("tri/trimap.1001.png", 0.5), ("alpha/alpha.1001.exr", 1.0)):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        write_image(tmp_path / name, np.full((3, 1), value, np.float32), pixel_type="uint8" if "png" in name else "half")
    code = main(["preview", "--plate", str(tmp_path / "plate" / "plate.####.exr"), "--trimaps",
                 str(tmp_path / "tri" / "trimap.####.png"), "--alpha", str(tmp_path / "alpha" / "alpha.####.exr"),
                 "--out", str(tmp_path / "pv"), "--progress", "none"])
    err = capsys.readouterr().err
    assert code == 2 and "1x3" in err and "--no-movie" in err and "Traceback" not in err, err
    assert (tmp_path / "pv" / "contact_sheet.png").is_file() and not (tmp_path / "pv" / "preview.mp4").exists()


def test_preview_of_an_alpha_with_nan_names_the_frame(tmp_path: Path, capsys) -> None:
    """Eval QA: NaN in an alpha EXR showed as black holes on the sheet and in the movie, exit
    0 with a bare numpy warning; eval refuses the same file."""
    import numpy as np

    from tcvom.io import write_image

    for frame in (1001, 1002):
        alpha = np.full((8, 12), 0.5, np.float32)
        if frame == 1002:
            alpha[2:4, 3:6] = np.nan
        for name, value in ((f"plate/plate.{frame}.exr", np.full((8, 12), 0.5, np.float32)),
                            (f"tri/trimap.{frame}.png", np.full((8, 12), 0.5, np.float32)),
                            (f"alpha/alpha.{frame}.exr", alpha)):
            (tmp_path / name).parent.mkdir(exist_ok=True)
            write_image(tmp_path / name, value, pixel_type="uint8" if "png" in name else "float")
    code = main(["preview", "--plate", str(tmp_path / "plate" / "plate.####.exr"), "--trimaps",
                 str(tmp_path / "tri" / "trimap.####.png"), "--alpha", str(tmp_path / "alpha" / "alpha.####.exr"),
                 "--out", str(tmp_path / "pv"), "--no-movie", "--progress", "none"])
    err = capsys.readouterr().err
    assert code == 2 and "6 NaN/infinite" in err and "alpha.1002.exr" in err and "Traceback" not in err, err


def test_mark_frame_frames_doubtful_frames_in_red() -> None:
    import numpy as np

    from tcvom.review.doubt import FrameDoubt, Review
    from tcvom.review.preview import DOUBT_RED, mark_frame

    review = Review(keyframes=[1], frames=[FrameDoubt(1, 0.0, 0.0, 0.0, keyframe=True), FrameDoubt(2, 0.7, 0.1, 0.7)],
                    suggested=[2], doubtful=[2])
    grey = np.full((64, 96, 3), 0.5, np.float32)
    bad, key = mark_frame(grey, 2, review), mark_frame(grey, 1, review)
    assert np.allclose(bad[-1, -1], DOUBT_RED) and np.allclose(key[-1, -1], 0.5)
    assert not np.allclose(key[:12, :40], 0.5)  # the label
    assert np.allclose(grey, 0.5)  # the input is not drawn on


def test_the_hosts_read_what_a_run_writes(reviewed_run) -> None:
    from tcvom.hosts.client import read_review

    out, _ = reviewed_run
    mine = load_review(out)
    theirs = read_review(str(out))
    assert theirs is not None
    assert theirs.keyframes == mine.keyframes and theirs.suggested == mine.suggested
    assert theirs.doubtful == mine.doubtful and theirs.doubt == mine.doubt()


def test_resumed_frames_and_lost_records(small_example, tmp_path: Path) -> None:
    out = tmp_path / "out"
    keys = [_key(small_example, 1001), _key(small_example, 1004)]
    options = dict(keyframes=keys, shot_range="1001-1006", method="classical", progress="none")
    pipeline.run(small_example.plate, out, **options)
    before = {r.frame: r for r in load_review(out).frames}
    (out / "trimaps" / "trimap.1003.png").unlink()  # a task killed before these were written
    (out / "alpha" / "alpha.1003.exr").unlink()
    again = pipeline.run(small_example.plate, out, **options)
    assert sorted(again.written) == [1003]
    after = {r.frame: r for r in load_review(out).frames}
    assert {f: r.trimap_doubt for f, r in after.items()} == {f: r.trimap_doubt for f, r in before.items()}
    assert all(after[f].residual == pytest.approx(before[f].residual, rel=1e-5) for f in after)
    # a trimap whose record is gone (older tcvom, interrupted write) is estimated from its distance
    record = out / "trimaps" / ".trimap.tcvom" / "frames" / "1006.json"
    data = json.loads(record.read_text())
    record.write_text(json.dumps({k: v for k, v in data.items() if k != "review"}))
    assert main(["review", str(out), "--rebuild", "--progress", "none"]) == 0
    rebuilt = {r.frame: r for r in load_review(out).frames}
    assert rebuilt[1006].disagreement is None and rebuilt[1006].trimap_doubt > 0
    assert rebuilt[1005].trimap_doubt == after[1005].trimap_doubt


def test_review_after_an_incremental_rerun_equals_one_from_scratch(small_example, tmp_path: Path) -> None:
    """Adding keyframe 1006 to 1001, 1004, 1008 recomputes only segment 1004-1008; the reused
    frames keep their doubt, and the review equals that of a run from scratch."""
    keys = [_key(small_example, f) for f in (1001, 1004, 1008)]
    options = dict(shot_range="1001-1008", method="classical", progress="none")
    out = tmp_path / "out"
    pipeline.run(small_example.plate, out, keyframes=keys, **options)
    before = {r.frame: r for r in load_review(out).frames}
    more = [*keys, _key(small_example, 1006)]
    again = pipeline.run(small_example.plate, out, keyframes=more, **options)
    assert {1002, 1003} <= set(again.stages["trimaps"]["reused"])
    after = load_review(out)
    assert after.keyframes == [1001, 1004, 1006, 1008] and 1006 not in after.suggested
    rows = {r.frame: r for r in after.frames}
    assert rows[1006].trimap_doubt == 0.0
    assert all(rows[f].disagreement == before[f].disagreement for f in (1002, 1003))  # reused
    assert rows[1005].disagreement != before[1005].disagreement  # now between 1004 and 1006
    scratch = tmp_path / "scratch"
    pipeline.run(small_example.plate, scratch, keyframes=more, **options)
    fresh = load_review(scratch)
    assert [r.frame for r in after.frames] == [r.frame for r in fresh.frames]
    assert [r.trimap_doubt for r in after.frames] == pytest.approx([r.trimap_doubt for r in fresh.frames], abs=1e-6)
    assert [r.doubt for r in after.frames] == pytest.approx([r.doubt for r in fresh.frames], abs=1e-6)
    assert after.suggested == fresh.suggested and after.doubtful == fresh.doubtful



def test_a_rebuild_after_an_interrupted_rerun_names_the_alphas_behind(small_example, tmp_path: Path, caplog,
                                                                     monkeypatch) -> None:
    """Crash QA: after a keyframe was added and the rerun stopped once its trimaps were made
    again, `tcvom review --rebuild` reviewed the old alphas as they were, without a word
    (farm plan and a run over part of the shot say they are out of date)."""
    from tcvom.pipeline import jobs

    keys = [_key(small_example, f) for f in (1001, 1004, 1008)]
    options = dict(shot_range="1001-1008", method="classical", progress="none")
    out = tmp_path / "out"
    pipeline.run(small_example.plate, out, keyframes=keys, **options)
    assert "out_of_date" not in jobs.review_output(out)[0].extra

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    more = [*keys, _key(small_example, 1006)]
    with monkeypatch.context() as patch:
        patch.setattr(jobs, "matte", stopped)
        with pytest.raises(KeyboardInterrupt):
            pipeline.run(small_example.plate, out, keyframes=more, **options)
    rebuilt = jobs.review_output(out)[0]  # what `tcvom review OUT --rebuild` does without a review
    behind = rebuilt.extra.get("out_of_date")
    assert behind and set(parse(behind)) <= set(range(1004, 1009)) and 1006 in parse(behind), behind
    assert "out of date" in caplog.text and "out of date" in table(rebuilt)
    away = tmp_path / "away"  # moved: its records name the old place, matched by folder and name
    shutil.move(out, away)
    assert jobs.review_output(away)[0].extra.get("out_of_date") == behind
    shutil.move(away, out)
    pipeline.run(small_example.plate, out, keyframes=more, **options)
    assert "out_of_date" not in load_review(out).extra
    # code review: alphas of trimaps given from elsewhere (run --trimaps into the same output,
    # files of the same names) are not taken for alphas of its own trimaps made again
    pipeline.run(small_example.plate, out, trimaps=small_example.trimaps, **options)
    assert "out_of_date" not in jobs.review_output(out)[0].extra
    moved = tmp_path / "moved"  # a moved output keeps its records' old paths: still measured
    shutil.move(out, moved)
    assert "out_of_date" not in jobs.review_output(moved)[0].extra


def test_a_run_of_part_of_the_shot_names_the_alphas_it_left_out_of_date(small_example, tmp_path: Path) -> None:
    """Loop QA: after a keyframe was added, `run --frames 1001-1008x2` made every trimap
    again and matted the odd frames; its review named no alpha out of date (its warning did),
    while a rebuild of the same files did: what the hosts show came from the run's."""
    from tcvom.pipeline import jobs

    out = tmp_path / "out"
    keys = [_key(small_example, f) for f in (1001, 1008)]
    pipeline.run(small_example.plate, out, keyframes=keys, method="classical", progress="none")
    pipeline.run(small_example.plate, out, keyframes=[*keys, _key(small_example, 1005)], frames="1001-1008x2",
                 method="classical", progress="none")
    behind = load_review(out).extra.get("out_of_date")
    assert behind and set(parse(behind)) <= {1002, 1004, 1006, 1008} and 1004 in parse(behind), behind
    assert jobs.review_output(out)[0].extra.get("out_of_date") == behind


def parse(frames: str) -> list[int]:
    from tcvom.io.sequence import parse_frame_range

    return list(parse_frame_range(frames))


def _strict_json(path: Path) -> dict:
    def refuse(name: str) -> None:
        raise AssertionError(f"{path} holds {name}, which is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_rebuild_from_another_folder_and_of_a_copied_output_reviews_that_output(
        small_example, tmp_path: Path, monkeypatch) -> None:
    """review.json keeps its trimaps and alpha relative to itself: a rebuild run from another
    working folder, or of a copy of the output, finds the output's own files (it used to
    find none, write an empty review and exit 0)."""
    import shutil

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    keys = [_key(small_example, 1001), _key(small_example, 1004)]
    pipeline.run(small_example.plate, "out", keyframes=keys, shot_range="1001-1006", method="classical",
                 progress="none")
    made = load_review(work / "out")
    monkeypatch.chdir(tmp_path)
    shutil.copytree(work / "out", tmp_path / "copy", copy_function=shutil.copy)  # as `cp -r`: the files' times move
    shutil.rmtree(work / "out")  # the copy must not lean on the original
    assert main(["review", "copy", "--rebuild", "--progress", "none"]) == 0
    rebuilt = load_review(tmp_path / "copy")
    assert [r.frame for r in rebuilt.frames] == list(range(1001, 1007)) and rebuilt.keyframes == [1001, 1004]
    assert [r.doubt for r in rebuilt.frames] == [r.doubt for r in made.frames]
    assert [r.trimap_doubt for r in rebuilt.frames] == [r.trimap_doubt for r in made.frames]
    # a moved plate given relative to here is kept absolute: a rebuild from elsewhere finds it
    shutil.copytree(Path(small_example.plate).parent, tmp_path / "moved")
    assert main(["review", "copy", "--rebuild", "--plate", "moved/" + Path(small_example.plate).name,
                 "--progress", "none"]) == 0
    monkeypatch.chdir(work)
    assert main(["review", str(tmp_path / "copy"), "--rebuild", "--progress", "none"]) == 0
    assert load_review(tmp_path / "copy").extra["sources"]["plate"] == str(tmp_path / "moved" /
                                                                          Path(small_example.plate).name)


def test_a_review_written_before_sources_were_relative_still_rebuilds(
        small_example, tmp_path: Path, monkeypatch) -> None:
    """review.json of earlier versions kept the patterns as the run was given them (relative
    to the folder it ran in); a rebuild from that folder still finds the frames. An OCIO
    config file is kept absolute, so a rebuild from elsewhere opens the plate the same way."""
    import PyOpenColorIO as ocio

    monkeypatch.chdir(tmp_path)
    config = ocio.Config.CreateFromBuiltinConfig("studio-config-latest")
    Path("studio.ocio").write_text(config.serialize())
    keys = [_key(small_example, 1001), _key(small_example, 1004)]
    pipeline.run(small_example.plate, "out", keyframes=keys, shot_range="1001-1006", method="classical",
                 ocio_config="studio.ocio", progress="none")
    path = tmp_path / "out" / "review" / "review.json"
    data = json.loads(path.read_text())
    assert data["sources"]["ocio_config"] == str(tmp_path / "studio.ocio")
    made = [r["doubt"] for r in data["frames"]]
    old = {k: v for k, v in data["sources"].items() if k != "relative_to"}
    old.update(trimaps="out/trimaps/trimap.####.png", alpha="out/alpha/alpha.####.exr")
    path.write_text(json.dumps({**data, "sources": old}))
    assert main(["review", "out", "--rebuild", "--progress", "none"]) == 0
    rebuilt = load_review(tmp_path / "out")
    assert [r.frame for r in rebuilt.frames] == list(range(1001, 1007))
    assert [r.doubt for r in rebuilt.frames] == made
    assert rebuilt.extra["sources"]["relative_to"] == "review"  # written in today's form


def test_a_rebuild_that_finds_nothing_is_refused_and_keeps_the_review(reviewed_run, tmp_path: Path, capsys) -> None:
    import shutil

    out = tmp_path / "out"
    shutil.copytree(reviewed_run[0] / "review", out / "review")  # a review without its outputs
    before = (out / "review" / "review.json").read_bytes()
    assert main(["review", str(out), "--rebuild", "--progress", "none"]) == 2
    assert "none of the alpha files this review was made from" in capsys.readouterr().err
    assert (out / "review" / "review.json").read_bytes() == before


def test_a_run_of_frames_without_a_keyframe_writes_a_finite_review(small_example, tmp_path: Path) -> None:
    """No keyframe among the computed frames: a finite review, not NaN (which crashed the plot
    after the frames were written, and is not JSON). QA: it said "keyframes: none" and gave
    the two-pass frames a trimap doubt of 0; the keyframes the trimaps were propagated from
    (named in their records) bound the frames, outside them as they are."""
    keys = [_key(small_example, 1001), _key(small_example, 1006)]
    assert main(["run", "--plate", small_example.plate, "--keyframes", *keys, "--out", str(tmp_path),
                 "--shot-range", "1001-1006", "--frames", "1003-1004", "--method", "classical",
                 "--progress", "none"]) == 0
    data = _strict_json(tmp_path / "review" / "review.json")
    rows = {r["frame"]: r for r in data["frames"]}
    assert set(rows) >= {1003, 1004} and data["keyframes"] == [1001, 1006]
    assert all(rows[f]["disagreement"] is not None and rows[f]["trimap_doubt"] > 0 for f in (1003, 1004))
    assert set(data["suggested"]) <= set(rows) - {1001, 1006}  # frames of this output, never a keyframe
    assert (tmp_path / "review" / "review.png").exists()
    assert main(["review", str(tmp_path)]) == 0


def test_changed_outputs_take_the_old_review_away(small_example, tmp_path: Path, capsys) -> None:
    """A rerun that changes frames without writing a review (--no-review, or killed before
    its review) leaves no review describing the old files."""
    keys = [_key(small_example, 1001), _key(small_example, 1004)]
    flags = ["--plate", small_example.plate, "--out", str(tmp_path), "--shot-range", "1001-1006",
             "--method", "classical", "--progress", "none"]
    assert main(["run", *flags, "--keyframes", *keys]) == 0
    assert main(["run", *flags, "--keyframes", *keys, "--no-review"]) == 0  # nothing changed: kept
    assert load_review(tmp_path).keyframes == [1001, 1004]
    assert main(["run", *flags, "--keyframes", *keys, _key(small_example, 1006), "--no-review"]) == 0
    assert not (tmp_path / "review" / "review.json").exists() and not (tmp_path / "review" / "review.png").exists()
    capsys.readouterr()
    assert main(["review", str(tmp_path)]) == 2
    err = capsys.readouterr().err  # where the review would be, and the command that makes it
    assert "no review" in err and str(tmp_path / "review" / "review.json") in err
    assert f"tcvom review {tmp_path} --rebuild" in err
    assert main(["review", str(tmp_path), "--rebuild", "--progress", "none"]) == 0
    assert load_review(tmp_path).keyframes == [1001, 1004, 1006]


def test_a_stage_run_alone_into_a_run_output_takes_its_review_away(small_example, tmp_path: Path, capsys) -> None:
    """``tcvom matte`` (or a farm task) rewriting frames of OUT/alpha makes OUT/review, built
    from them, untrue: it goes too; a review made from other files stays."""
    keys = [_key(small_example, 1001), _key(small_example, 1004)]
    flags = ["--plate", small_example.plate, "--shot-range", "1001-1006", "--method", "classical",
             "--progress", "none"]
    out, other = tmp_path / "out", tmp_path / "other"
    for folder in (out, other):
        assert main(["run", *flags, "--out", str(folder), "--keyframes", *keys]) == 0
    assert main(["matte", *flags, "--trimaps", str(out / "trimaps" / "trimap.####.png"), "--out",
                 str(out / "alpha"), "--frames", "1003", "--overwrite"]) == 0
    assert not (out / "review" / "review.json").exists()
    assert load_review(other).keyframes == [1001, 1004]
    # the trimap stage alone, with another keyframe: the same
    assert main(["trimaps", *flags, "--keyframes", *keys, _key(small_example, 1006), "--out",
                 str(other / "trimaps")]) == 0
    assert not (other / "review" / "review.json").exists()
    capsys.readouterr()


def test_a_rebuild_says_which_alphas_are_gone_and_follows_a_new_format(small_example, tmp_path: Path,
                                                                       capsys) -> None:
    """A rebuild used to show 0 matte doubt, silently, for alpha files that were gone, and for
    all of them after the matte was made again in another format; a look without --rebuild
    showed their old doubt, silently."""
    keys = [_key(small_example, 1001), _key(small_example, 1004)]
    flags = ["--plate", small_example.plate, "--shot-range", "1001-1006", "--method", "classical",
             "--progress", "none"]
    out = tmp_path / "out"
    assert main(["run", *flags, "--out", str(out), "--keyframes", *keys]) == 0
    (out / "alpha" / "alpha.1003.exr").unlink()
    capsys.readouterr()
    # a look (no rebuild) showed the doubt of the deleted file without a word
    assert main(["review", str(out)]) == 0
    err = capsys.readouterr().err
    assert "1003 of this review have no alpha file any more" in err and "--rebuild" in err
    assert main(["review", str(out), "--rebuild", "--progress", "none"]) == 0
    err = capsys.readouterr().err
    assert "alpha.####.exr" in err and "1003" in err and "no alpha file" in err
    assert {r.frame for r in load_review(out).frames if r.residual is None} == {1003}
    # the matte again, alone, as 16-bit PNGs: the EXRs are gone, the rebuild reviews the PNGs
    assert main(["matte", *flags, "--trimaps", str(out / "trimaps" / "trimap.####.png"), "--out",
                 str(out / "alpha"), "--alpha-format", "png16", "--no-review"]) == 0
    assert main(["review", str(out), "--rebuild", "--progress", "none"]) == 0
    rebuilt = load_review(out)
    assert all(r.residual is not None for r in rebuilt.frames) and rebuilt.keyframes == [1001, 1004]
    assert rebuilt.extra["sources"]["alpha"] == "../alpha/alpha.####.png"


def test_a_job_written_before_a_keyframe_was_added_leaves_its_last_segment_out_of_date(
        small_example, tmp_path: Path, capsys) -> None:
    """Farm QA: a job template reused after a keyframe was added (its TrimapSegments 0-1, by
    the keyframes then) ran the two first of the three segments, exit 0; the trimaps of the
    third were still those propagated across the new keyframe, and the review rebuilt after
    it called the whole shot current. It names them out of date."""
    keys = [_key(small_example, 1001), _key(small_example, 1008)]
    flags = ["--plate", small_example.plate, "--method", "classical", "--progress", "none"]
    out = tmp_path / "out"
    assert main(["run", *flags, "--out", str(out), "--keyframes", *keys]) == 0
    assert "out_of_date" not in load_review(out).extra
    keys.insert(1, _key(small_example, 1004))  # segments now 1001-1004 and 1005-1008: the job runs segment 0 only
    assert main(["trimaps", *flags, "--out", str(out / "trimaps"), "--keyframes", *keys, "--segment", "0"]) == 0
    assert main(["matte", *flags, "--out", str(out / "alpha"), "--trimaps", str(out / "trimaps" / "trimap.####.png"),
                 "--no-review"]) == 0
    capsys.readouterr()
    assert main(["review", str(out), "--rebuild", "--progress", "none"]) == 0
    err = capsys.readouterr().err
    assert "the trimaps of frame(s) 1005-1007 were propagated from other keyframes than the keyframes now" in err, err
    assert "tcvom farm template" in err
    assert load_review(out).extra["out_of_date"] == "1004-1008"  # with the alphas beside them
    assert main(["run", *flags, "--out", str(out), "--keyframes", *keys]) == 0  # the shot run again: current
    assert "out_of_date" not in load_review(out).extra


def test_a_keyframe_saved_again_or_fixed_in_the_outputs_own_trimap_is_current(small_example, tmp_path: Path,
                                                                               capsys) -> None:
    """Code review: the keyframe files' states made two false "repainted" warnings (the whole
    shot out of date): a keyframe saved again with the same pixels (other bytes), and a trimap
    of the output fixed by hand and given as a keyframe, which the stage writes again (its
    edge snapped to the three classes), after it had kept the file's state."""
    import cv2

    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    for k in (1001, 1008):
        shutil.copy(small_example.trimaps.replace("####", str(k)), keys_dir / f"key.{k}.png")
    out = tmp_path / "out"
    flags = ["--plate", small_example.plate, "--method", "classical", "--progress", "none", "--out", str(out)]
    assert main(["run", *flags, "--keyframes", str(keys_dir / "key.####.png")]) == 0
    painted = cv2.imread(str(keys_dir / "key.1008.png"), cv2.IMREAD_UNCHANGED)
    before = (keys_dir / "key.1008.png").read_bytes()
    cv2.imwrite(str(keys_dir / "key.1008.png"), painted, [cv2.IMWRITE_PNG_COMPRESSION, 0])  # the same pixels
    assert (keys_dir / "key.1008.png").read_bytes() != before
    capsys.readouterr()
    assert main(["review", str(out), "--rebuild", "--progress", "none"]) == 0
    assert "changed since" not in capsys.readouterr().err and "out_of_date" not in load_review(out).extra
    fixed = cv2.imread(str(out / "trimaps" / "trimap.1004.png"), cv2.IMREAD_UNCHANGED)
    edge = np.argwhere(fixed == 128)[:10]
    fixed[edge[:, 0], edge[:, 1]] = 140  # a brush's soft edge, read as unknown
    cv2.imwrite(str(out / "trimaps" / "trimap.1004.png"), fixed)
    keys = [f"1001={keys_dir / 'key.1001.png'}", f"1004={out / 'trimaps' / 'trimap.1004.png'}",
            f"1008={keys_dir / 'key.1008.png'}"]
    assert main(["run", *flags, "--keyframes", *keys]) == 0
    assert "out_of_date" not in load_review(out).extra
    capsys.readouterr()
    assert main(["review", str(out), "--rebuild", "--progress", "none"]) == 0
    assert "changed since" not in capsys.readouterr().err


@pytest.mark.parametrize(("rendered", "warned", "stale"), [
    (1006, "1005-1008", "1004-1008"),
    # farm QA: the alpha past the segment's last keyframe (1005) was named too, which `farm plan
    # --out` does not redo: the keyframe's trimap is the keyframe, whatever the plate
    (1002, "1001-1004", "1001-1004"),
])
def test_trimaps_of_a_plate_frame_rendered_again_since_are_out_of_date(small_example, tmp_path: Path, capsys,
                                                                       rendered: int, warned: str, stale: str) -> None:
    """Farm QA: a plate frame re-rendered between the Trimaps and Matte steps of a job: every
    matte task and the Review step ended 0 and the review called the shot current, while the
    segment's trimaps were propagated from the old picture (alphas up to 0.03 off a clean run).
    The review names that segment's trimaps and the alphas beside them out of date."""
    from tcvom.io import read_image, write_image

    plate = tmp_path / "plate"
    shutil.copytree(Path(small_example.plate).parent, plate)
    pattern = str(plate / "plate.####.exr")
    keys = [_key(small_example, k) for k in (1001, 1004, 1008)]  # segments 1001-1004 and 1005-1008
    out = tmp_path / "out"
    flags = ["--plate", pattern, "--method", "classical", "--progress", "none"]
    assert main(["trimaps", *flags, "--keyframes", *keys, "--out", str(out / "trimaps")]) == 0
    pixels, _ = read_image(plate / f"plate.{rendered}.exr")
    pixels = pixels.copy()
    pixels[10:30, 20:50] *= 0.5
    write_image(plate / f"plate.{rendered}.exr", pixels)  # rendered again
    assert main(["matte", *flags, "--trimaps", str(out / "trimaps" / "trimap.####.png"), "--out",
                 str(out / "alpha"), "--no-review"]) == 0
    capsys.readouterr()
    assert main(["review", str(out), "--rebuild", "--progress", "none"]) == 0
    err = capsys.readouterr().err
    assert f"the trimaps of frame(s) {warned} were propagated from plate frames changed since" in err, err
    assert load_review(out).extra["out_of_date"] == stale  # with the alpha beside them
    assert main(["run", *flags, "--keyframes", *keys, "--out", str(out)]) == 0  # run again: current
    assert "out_of_date" not in load_review(out).extra
    capsys.readouterr()
    assert main(["review", str(out), "--rebuild", "--progress", "none"]) == 0
    assert "changed since" not in capsys.readouterr().err


def test_trimaps_of_a_keyframe_repainted_between_the_stages_are_out_of_date(small_example, tmp_path: Path,
                                                                           capsys) -> None:
    """Farm QA: a keyframe repainted between a job's Trimaps and Matte steps: the Matte and
    Review steps ended 0 with no word and alphas up to 0.88 off a run with the keyframes on
    disk; the trimap stage kept the keyframes' digests only, so the review compared the trimaps
    with what that stage read. It keeps their files' states, and the review reads them again."""
    from tcvom.io import read_image, write_image

    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    for k in (1001, 1004, 1008):  # segments 1001-1004 and 1005-1008
        shutil.copy(small_example.trimaps.replace("####", str(k)), keys_dir / f"key.{k}.png")
    keys = [str(keys_dir / "key.####.png")]
    out = tmp_path / "out"
    flags = ["--plate", small_example.plate, "--method", "classical", "--progress", "none"]
    assert main(["trimaps", *flags, "--keyframes", *keys, "--out", str(out / "trimaps")]) == 0
    painted, _ = read_image(keys_dir / "key.1008.png")
    write_image(keys_dir / "key.1008.png", np.roll(painted, 3, axis=1), pixel_type="uint8")  # repainted
    assert main(["matte", *flags, "--trimaps", str(out / "trimaps" / "trimap.####.png"), "--out",
                 str(out / "alpha"), "--no-review"]) == 0
    capsys.readouterr()
    assert main(["review", str(out), "--rebuild", "--progress", "none"]) == 0
    err = capsys.readouterr().err
    assert "the keyframe file(s) of frame(s) 1008 changed since the trimaps were made" in err, err
    assert "the trimaps of frame(s) 1005-1008, and the alphas beside them, are out of date" in err, err
    assert load_review(out).extra["out_of_date"] == "1004-1008"  # with the alpha beside them
    assert main(["run", *flags, "--keyframes", *keys, "--out", str(out)]) == 0  # run again: current
    assert "out_of_date" not in load_review(out).extra
    capsys.readouterr()
    assert main(["review", str(out), "--rebuild", "--progress", "none"]) == 0
    assert "changed since" not in capsys.readouterr().err


@pytest.mark.parametrize(("before", "after", "frames", "stale"), [
    # code review: a keyframe removed, then part of the shot run: the frames just made were named,
    # and the trimap of the keyframe removed (a keyframe still, by its record) was not; the
    # alphas beside the trimaps out of date (1003, 1008) are, as the run plans them
    ((1001, 1004, 1008), (1001, 1008), "1001-1002", "1003-1008"),
    # a keyframe added after the last one, or before the first (a run of frames it leaves as they
    # were: no trimap record names it): the frames past it were not named
    ((1001, 1005), (1001, 1005, 1008), "1001-1002", "1005-1008"),
    ((1003, 1008), (1001, 1003, 1008), "1007-1008", "1001-1003"),
])
def test_the_trimaps_the_keyframes_now_would_seed_otherwise_are_out_of_date(
        small_example, tmp_path: Path, before, after, frames: str, stale: str) -> None:
    out = tmp_path / "out"
    flags = ["--plate", small_example.plate, "--method", "classical", "--progress", "none", "--out", str(out)]
    assert main(["run", *flags, "--keyframes", *[_key(small_example, k) for k in before]]) == 0
    assert main(["run", *flags, "--keyframes", *[_key(small_example, k) for k in after], "--frames", frames]) == 0
    assert load_review(out).extra.get("out_of_date") == stale
    if after[-1] == 1008 and before[-1] != 1008:  # keyed since: its file is still the trimap propagated there
        assert 1008 in trimaps_behind(out / "trimaps" / "trimap.####.png", range(1001, 1009))
    assert main(["run", *flags, "--keyframes", *[_key(small_example, k) for k in after]]) == 0
    assert "out_of_date" not in load_review(out).extra


def test_trimaps_of_a_keyframe_repainted_since_are_out_of_date(small_example, tmp_path: Path) -> None:
    """Code review: the seeds were compared by frame number only: after keyframe 1001 was
    repainted and another part of the shot run, the trimaps it had seeded were current."""
    import cv2

    key = tmp_path / "key.1001.png"
    shutil.copy(_key(small_example, 1001).split("=", 1)[1], key)
    out = tmp_path / "out"
    flags = ["--plate", small_example.plate, "--method", "classical", "--progress", "none", "--out", str(out),
             "--keyframes", f"1001={key}", _key(small_example, 1008)]
    assert main(["run", *flags]) == 0
    picture = cv2.imread(str(key), cv2.IMREAD_UNCHANGED)
    picture[:8, :8] = 255  # repainted
    cv2.imwrite(str(key), picture)
    assert main(["run", *flags, "--frames", "1008"]) == 0
    stale = load_review(out).extra.get("out_of_date")
    assert stale is not None and {1001, 1004} <= set(pipeline.jobs.parse_frame_range(stale)), stale
    assert main(["run", *flags]) == 0
    assert "out_of_date" not in load_review(out).extra


def test_out_of_date_given_trimaps_and_the_keyframes_now(small_example, tmp_path: Path) -> None:
    """Stale-loop QA: an edited trimap given with `run --trimaps` then `--frames` elsewhere: the
    run warned, the review named nothing; trimaps given from another output were judged by that
    output's keyframes ("run again" forever); after a keyframe added and `--frames` elsewhere,
    the review listed the old keyframes and suggested keying the frame just keyed."""
    import cv2

    given = tmp_path / "given"
    shutil.copytree(small_example.folder / "truth", given)
    flags = ["--plate", small_example.plate, "--method", "classical", "--progress", "none"]
    out = tmp_path / "out"
    assert main(["run", *flags, "--trimaps", str(given / "trimap.####.png"), "--out", str(out)]) == 0
    picture = cv2.imread(str(given / "trimap.1003.png"), cv2.IMREAD_UNCHANGED)
    picture[20:40, 20:40] = 128
    cv2.imwrite(str(given / "trimap.1003.png"), picture)
    assert main(["run", *flags, "--trimaps", str(given / "trimap.####.png"), "--out", str(out), "--frames",
                 "1007-1008"]) == 0
    assert load_review(out).extra.get("out_of_date") == "1002-1004"
    # keyframe 1004 added, the other segment run: the review's keyframes are the ones now
    keyed = tmp_path / "keyed"
    keys = [_key(small_example, 1001), _key(small_example, 1008)]
    assert main(["run", *flags, "--keyframes", *keys, "--out", str(keyed)]) == 0
    assert main(["run", *flags, "--keyframes", *keys, _key(small_example, 1004), "--out", str(keyed), "--frames",
                 "1001-1004"]) == 0
    review = load_review(keyed)
    assert review.keyframes == [1001, 1004, 1008] and 1004 not in review.suggested
    assert review.extra.get("out_of_date")  # 1005-1007 were propagated from 1001 and 1008
    # those trimaps given to another output: not its own, not judged by the keyframes of the first
    other = tmp_path / "other"
    assert main(["run", *flags, "--trimaps", str(keyed / "trimaps" / "trimap.####.png"), "--out", str(other)]) == 0
    assert "out_of_date" not in load_review(other).extra


def test_a_rebuild_after_a_partial_farm_run_names_the_frames_not_reviewed(small_example, tmp_path: Path,
                                                                         capsys) -> None:
    """After one trimap segment and one matte chunk, the rebuilt review held half the shot
    with exit 0 and no word of the rest."""
    keys = [_key(small_example, 1001), _key(small_example, 1004), _key(small_example, 1008)]
    out = tmp_path / "out"
    assert main(["trimaps", "--plate", small_example.plate, "--keyframes", *keys, "--out", str(out / "trimaps"),
                 "--segment", "0", "--method", "classical", "--progress", "none"]) == 0
    assert main(["matte", "--plate", small_example.plate, "--trimaps", str(out / "trimaps" / "trimap.####.png"),
                 "--out", str(out / "alpha"), "--frames", "1001-1003", "--method", "classical", "--progress",
                 "none"]) == 0
    capsys.readouterr()
    assert main(["review", str(out), "--rebuild", "--plate", small_example.plate, "--progress", "none"]) == 0
    captured = capsys.readouterr()
    assert "frame(s) 1005-1008 of the shot have neither a trimap made by tcvom nor an alpha yet" in captured.err
    assert "not reviewed (no trimap or alpha yet): 1005-1008" in captured.out
    assert load_review(out).extra["not_reviewed"] == "1005-1008"
    # farm QA: a keyframe segment's frame with a trimap and no alpha (its matte task not run) read
    # as a perfect matte (matte_doubt 0) without a word
    assert "frame(s) 1004 have a trimap but no alpha yet" in captured.err
    assert "not matted (a trimap, no alpha yet: its trimap doubt only): 1004" in captured.out
    assert load_review(out).extra["not_matted"] == "1004"
    # a run of part of the shot reviews what it made, without a warning on every run
    assert main(["run", "--plate", small_example.plate, "--keyframes", *keys, "--out", str(tmp_path / "part"),
                 "--frames", "1002-1003", "--method", "classical", "--progress", "none"]) == 0
    assert "not reviewed" not in capsys.readouterr().err


def test_a_run_that_fails_before_writing_a_frame_keeps_the_review(small_example, tmp_path: Path, capsys) -> None:
    """Weights that do not load fail the run before any frame changes: the review still
    describes the files, so it stays."""
    keys = [_key(small_example, 1001), _key(small_example, 1004)]
    flags = ["--plate", small_example.plate, "--out", str(tmp_path / "out"), "--shot-range", "1001-1006",
             "--progress", "none"]
    assert main(["run", *flags, "--keyframes", *keys, "--method", "classical"]) == 0
    before = (tmp_path / "out" / "review" / "review.json").read_bytes()
    bad = tmp_path / "stm.pth"
    bad.write_bytes(b"not a checkpoint")
    capsys.readouterr()
    assert main(["run", *flags, "--keyframes", *keys, _key(small_example, 1006), "--method", "tcvom",
                 "--weights", str(bad)]) == 2
    assert "stm.pth" in capsys.readouterr().err
    assert (tmp_path / "out" / "review" / "review.json").read_bytes() == before


def test_precision_auto_and_what_it_means_make_the_same_frames(small_example, tmp_path: Path) -> None:
    """The classical method runs no network (its frames ignore the precision), and the
    networks' auto is fp32 off TensorRT: switching between them recomputes nothing."""
    keys = [_key(small_example, 1001), _key(small_example, 1004)]
    first = pipeline.run(small_example.plate, tmp_path, keyframes=keys, shot_range="1001-1006", method="classical",
                         progress="none")
    assert len(first.written) == 6
    for precision in ("fp32", "bf16", "auto"):
        again = pipeline.run(small_example.plate, tmp_path, keyframes=keys, shot_range="1001-1006",
                             method="classical", precision=precision, progress="none")
        assert again.written == [] and again.stages["trimaps"]["computed"] == [], precision


def test_a_trimap_stage_takes_away_the_review_of_a_matte_made_from_its_trimaps(small_example, tmp_path: Path,
                                                                                capsys) -> None:
    """The two stages run alone into OUT/trimaps and OUT/alpha: the matte's review (in
    OUT/alpha/review) shows the trimaps it was made from; new trimaps make it untrue."""
    keys = [_key(small_example, 1001), _key(small_example, 1004)]
    flags = ["--plate", small_example.plate, "--shot-range", "1001-1006", "--method", "classical",
             "--progress", "none"]
    out = tmp_path / "out"
    trimaps = str(out / "trimaps" / "trimap.####.png")
    assert main(["trimaps", *flags, "--keyframes", *keys, "--out", str(out / "trimaps")]) == 0
    assert main(["matte", *flags, "--trimaps", trimaps, "--out", str(out / "alpha")]) == 0
    assert (out / "alpha" / "review" / "review.json").exists()
    assert main(["trimaps", *flags, "--keyframes", *keys, "--out", str(out / "trimaps")]) == 0  # nothing changed
    assert (out / "alpha" / "review" / "review.json").exists()
    assert main(["trimaps", *flags, "--keyframes", *keys, _key(small_example, 1006), "--out",
                 str(out / "trimaps")]) == 0
    assert not (out / "alpha" / "review" / "review.json").exists()
    capsys.readouterr()


def test_matte_doubt_of_a_run_over_every_other_frame_and_of_a_removed_alpha(small_example, tmp_path: Path,
                                                                           capsys) -> None:
    """With --frames ...x2 no matted frame had a matted neighbour: the matte doubt was 0 (fully
    confident) everywhere. A frame whose alpha was removed showed 0 too once a rebuild had
    warned about it."""
    keys = [_key(small_example, 1001), _key(small_example, 1006)]
    out = tmp_path / "out"
    assert main(["run", "--plate", small_example.plate, "--out", str(out), "--shot-range", "1001-1006", "--frames",
                 "1001-1006x2", "--method", "classical", "--progress", "none", "--keyframes", *keys]) == 0
    rows = {r.frame: r for r in load_review(out).frames}
    assert all(rows[f].residual is not None for f in (1001, 1003, 1005))  # compared with the next matted frame
    assert any(rows[f].matte_doubt > 0 for f in (1001, 1003, 1005))
    (out / "alpha" / "alpha.1003.exr").unlink()
    for _ in range(2):  # the first rebuild warns; every one shows it unknown
        assert main(["review", str(out), "--rebuild", "--progress", "none"]) == 0
    capsys.readouterr()
    assert main(["review", str(out)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()[:4] == "1003"}
    assert "n/a" in lines["1003"] and "matte doubt unknown" in lines["1003"]


def test_a_rebuild_whose_plate_moved_says_to_give_it(small_example, tmp_path: Path, capsys) -> None:
    """QA: the rebuild said only "6 plate frame(s) missing" when the plate had moved."""
    import shutil

    plate = tmp_path / "plate"
    shutil.copytree(Path(small_example.plate).parent, plate)
    pattern = str(plate / Path(small_example.plate).name)
    pipeline.run(pattern, tmp_path / "out", keyframes=[_key(small_example, 1001)], shot_range="1001-1004",
                 method="classical", progress="none")
    plate.rename(tmp_path / "moved")
    capsys.readouterr()
    assert main(["review", str(tmp_path / "out"), "--rebuild", "--progress", "none"]) == 2
    err = capsys.readouterr().err
    assert "missing" in err and "if it has moved, give it where it is now (--plate)" in err, err
    moved = str(tmp_path / "moved" / Path(small_example.plate).name)
    assert main(["review", str(tmp_path / "out"), "--rebuild", "--plate", moved, "--progress", "none"]) == 0


def test_a_rebuild_refuses_a_plate_that_is_not_the_outputs(small_example, tmp_path: Path, capsys) -> None:
    """QA: `review --rebuild --plate OTHER` took another plate (another size, or one with a
    cut), wrote it into the review's sources (exit 0), and every later rebuild read it."""
    import shutil

    from tcvom.io.images import read_image, write_image

    pipeline.run(small_example.plate, tmp_path / "out", keyframes=[_key(small_example, 1001)], shot_range="1001-1004",
                 method="classical", progress="none")
    other = tmp_path / "other"
    shutil.copytree(Path(small_example.plate).parent, other)
    first = other / Path(small_example.plate).name.replace("####", "1001")
    pixels, _ = read_image(first)
    write_image(first, pixels * 0.5)  # another frame of the same size and frame numbers
    capsys.readouterr()
    given = str(other / Path(small_example.plate).name)
    assert main(["review", str(tmp_path / "out"), "--rebuild", "--plate", given, "--progress", "none"]) == 2
    err = capsys.readouterr().err
    assert f"{first}: frame 1001: this plate frame is not the one the output was made from" in err, err
    assert load_review(tmp_path / "out").extra["sources"]["plate"] == str(Path(small_example.plate).absolute())
    # an output without a review yet (a farm job's, before its Review step) is checked alike
    shutil.rmtree(tmp_path / "out" / "review")
    assert main(["review", str(tmp_path / "out"), "--rebuild", "--plate", given, "--progress", "none"]) == 2
    assert "this plate frame is not the one the output was made from" in capsys.readouterr().err
    assert not (tmp_path / "out" / "review" / "review.json").exists()
    assert main(["review", str(tmp_path / "out"), "--rebuild", "--progress", "none"]) == 0
    # QA: a review folder that cannot be written advised "choose another --out", a flag
    # `tcvom review` does not have
    review = tmp_path / "out" / "review"
    shutil.rmtree(review)
    review.write_text("")
    capsys.readouterr()
    assert main(["review", str(tmp_path / "out"), "--rebuild", "--progress", "none"]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and "review folder: make it writable" in err and "--out" not in err, err


def test_a_frame_of_another_shot_dropped_in_is_doubtful_and_keyed_first(small_example, tmp_path: Path) -> None:
    """QA: a frame unlike both neighbours (another shot's here; a flash, a black frame) was
    ranked below its own neighbours: its widened band hid its residual. The flow follows it
    to neither neighbour, which makes it doubtful in its own right; its neighbours are not."""
    import shutil

    from tcvom.io.images import read_image, write_image

    plate = tmp_path / "plate"
    shutil.copytree(Path(small_example.plate).parent, plate)
    pattern = str(plate / Path(small_example.plate).name)
    swapped = Path(pattern.replace("####", "1004"))
    pixels, _ = read_image(swapped)
    write_image(swapped, np.ascontiguousarray(pixels[::-1, ::-1]), pixel_type="half")  # turned over
    keys = [_key(small_example, 1001), _key(small_example, 1008)]
    pipeline.run(pattern, tmp_path / "out", keyframes=keys, method="classical", progress="none")
    review = load_review(tmp_path / "out")
    doubt = review.doubt()
    assert review.doubtful == [1004] and review.suggested[0] == 1004, (review.doubtful, review.suggested, doubt)
    assert doubt[1004] > doubt[1003] and doubt[1004] > doubt[1005]


def test_a_keyed_frame_of_another_shot_stays_its_own(tmp_path: Path) -> None:
    """Review QA: keying the swapped-in frame, as the review advises, carried its subject into
    its neighbours (frames 1008-1016 of a 40-frame shot 10x their error, and the review rated
    them the best of the shot). A keyframe unlike both neighbours is a picture of its own:
    the frames before it are made from the keyframes before it alone, exactly, and the
    review measures each neighbour on its own side."""
    from tcvom.data.example import write_example
    from tcvom.io.images import read_image

    a = write_example(tmp_path / "a", width=96, height=64, frames=12)
    b = write_example(tmp_path / "b", width=96, height=64, frames=12, seed=11)
    plate = tmp_path / "plate"
    shutil.copytree(Path(a.plate).parent, plate)
    shutil.copy(Path(b.plate).parent / "plate.1007.exr", plate / "plate.1007.exr")
    pattern = str(plate / "plate.####.exr")
    keys = {1001: a.folder / "truth" / "trimap.1001.png", 1007: b.folder / "truth" / "trimap.1007.png",
            1012: a.folder / "truth" / "trimap.1012.png"}
    pipeline.run(pattern, tmp_path / "out", keyframes=keys, method="classical", progress="none")
    pipeline.run(pattern, tmp_path / "before", keyframes={1001: keys[1001]}, shot_range="1001-1006",
                 method="classical", progress="none")
    for f in range(1002, 1007):
        made, alone = (read_image(tmp_path / o / "trimaps" / f"trimap.{f}.png")[0] for o in ("out", "before"))
        assert np.array_equal(made, alone), f
    review = load_review(tmp_path / "out")
    assert "past_cut" not in review.extra and 1007 in review.keyframes
    rows = {f.frame: f for f in review.frames}
    assert rows[1006].matte_doubt is not None and rows[1008].matte_doubt is not None


def _two_shots_cut(tmp_path: Path, keys: dict[int, str]):
    """Frames 1001-1004 of one 96x64 example shot ("a") and 1005-1008 of another ("b") in
    tmp_path/cut/plate, the truth trimaps of ``keys`` (frame -> shot) as keyframes."""
    import shutil

    from tcvom.data.example import write_example

    shots = {"a": write_example(tmp_path / "a", width=96, height=64, frames=8),
             "b": write_example(tmp_path / "b", width=96, height=64, frames=8, seed=11)}
    for sub in ("plate", "keyframes"):
        (tmp_path / "cut" / sub).mkdir(parents=True)
    for f in range(1001, 1009):
        shutil.copy(Path(shots["a" if f <= 1004 else "b"].plate).parent / f"plate.{f}.exr", tmp_path / "cut" / "plate")
    for f, name in keys.items():
        shutil.copy(shots[name].folder / "truth" / f"trimap.{f}.png", tmp_path / "cut" / "keyframes" / f"key.{f}.png")
    return shots["a"], shots["b"]


def test_frames_past_a_cut_are_named_on_every_run(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Host QA: the frames past a cut from every keyframe were named only by the run that
    computed them; a rerun that reused them said nothing. The review names them each run."""
    _two_shots_cut(tmp_path, {1001: "a"})
    for _ in range(2):
        caplog.clear()
        with caplog.at_level("WARNING", logger="tcvom"):
            pipeline.run(str(tmp_path / "cut" / "plate" / "plate.####.exr"), tmp_path / "out",
                         keyframes=str(tmp_path / "cut" / "keyframes" / "key.####.png"), method="classical",
                         progress="none")
        assert "frames 1005-1008 lie past a cut (the picture cuts after 1004) from every keyframe" in caplog.text
    review = json.loads((tmp_path / "out" / "review" / "review.json").read_text())
    assert review["past_cut"] == [[1005, 1008]]
    # and for an artist who opens the review later (review QA: the table and its JSON left them out)
    capsys.readouterr()
    assert main(["review", str(tmp_path / "out")]) == 0
    assert "past a cut from every keyframe (paint a keyframe in each): 1005-1008" in capsys.readouterr().out
    assert main(["review", str(tmp_path / "out"), "--progress", "json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["past_cut"] == [[1005, 1008]]


def test_no_trimap_is_carried_over_a_cut_and_the_review_knows(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Review QA: at a hard cut the ensemble leant on the nearer keyframe's pass, which came
    across the cut (37 % of frame 1004's trimap wrong), and the review gave the frame the
    doubt of one next to a keyframe. Frames 1001-1004 of one shot, 1005-1008 of another;
    keyframes 1001 and 1006: each frame now takes the pass from its own side of the cut."""
    a, b = _two_shots_cut(tmp_path, {1001: "a", 1006: "b"})
    out = tmp_path / "out"
    with caplog.at_level("INFO", logger="tcvom"):
        pipeline.run(str(tmp_path / "cut" / "plate" / "plate.####.exr"), out,
                     keyframes=str(tmp_path / "cut" / "keyframes" / "key.####.png"), method="classical",
                     progress="none", frames="1001-1006")
    assert "the picture cuts between 1004 and 1005" in caplog.text
    import cv2

    for frame, truth in ((1004, a), (1005, b)):
        trimap = cv2.imread(str(out / "trimaps" / f"trimap.{frame}.png"), cv2.IMREAD_GRAYSCALE)
        wrong = int((trimap != cv2.imread(str(truth.folder / "truth" / f"trimap.{frame}.png"), cv2.IMREAD_GRAYSCALE)).sum())
        assert wrong < 0.1 * trimap.size, (frame, wrong)  # 2,282 of 6,144 pixels for 1004 before
    cache = json.loads((out / "review" / "matte.cache.json").read_text())
    assert [int(f) for f, entry in cache.items() if entry["share"] is not None and entry["share"] < 0.5] == [1004]
    review = load_review(out / "review")
    rows = {r.frame: r for r in review.frames}
    # 1004 took 1001's pass alone: a one-pass frame three frames from its keyframe
    from tcvom.review.doubt import DEFAULT_DRIFT, squash

    assert rows[1004].disagreement is None and rows[1005].disagreement is None
    assert rows[1004].trimap_doubt == pytest.approx(squash(3 * DEFAULT_DRIFT), abs=1e-6)
    assert rows[1005].trimap_doubt == pytest.approx(squash(DEFAULT_DRIFT), abs=1e-6)
    # the trimap stage alone reviews with the same cuts (review: it had none without a matte)
    alone = tmp_path / "alone"
    pipeline.trimaps(str(tmp_path / "cut" / "plate" / "plate.####.exr"), str(tmp_path / "cut" / "keyframes" /
                     "key.####.png"), alone, method="classical", progress="none", frames="1001-1006",
                     shot_range="1001-1006")
    trimap_rows = {r.frame: r for r in load_review(alone / "review").frames}
    assert trimap_rows[1004].trimap_doubt == pytest.approx(squash(3 * DEFAULT_DRIFT), abs=1e-6)


def test_frames_beside_a_cut_are_not_doubted_for_their_change_across_it(tmp_path: Path) -> None:
    """Review QA: the frames on either side of a cut, keyframes included and the best frames
    of the shot, were flagged doubtful: their whole alpha change across the cut counted as
    unexplained. Each is now measured against its neighbour on its own side only."""
    _two_shots_cut(tmp_path, {1001: "a", 1004: "a", 1005: "b", 1008: "b"})
    out = tmp_path / "out"
    pipeline.run(str(tmp_path / "cut" / "plate" / "plate.####.exr"), out,
                 keyframes=str(tmp_path / "cut" / "keyframes" / "key.####.png"), method="classical", progress="none")
    review = load_review(out / "review")
    rows = {r.frame: r for r in review.frames}
    assert review.doubtful == [], review.doubtful
    # as their neighbours on their own side (before: 0.13 and 0.12, five times as much; on
    # the QA's 320x180 shot above the threshold)
    for frame, beside in ((1004, 1003), (1005, 1006)):
        assert rows[frame].residual is not None and rows[frame].matte_doubt < 2 * rows[beside].matte_doubt, rows[frame]


def test_a_trimap_doubt_no_two_pass_frame_measures_is_said_to_be_a_guess(tmp_path: Path,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    """Review QA: with a keyframe in each picture of a cut shot, every frame is decided by one
    pass (the other crossed the cut), so no frame measured the shot's drift: the default
    drift made every frame 'not doubtful', on a shot whose frames were twelve times as wrong
    as on another alike. Those frames are now named as guessed, on every run and in the table."""
    _two_shots_cut(tmp_path, {1001: "a", 1006: "b"})
    plate, keys = str(tmp_path / "cut" / "plate" / "plate.####.exr"), str(tmp_path / "cut" / "keyframes" / "key.####.png")
    with caplog.at_level("WARNING", logger="tcvom"):
        pipeline.run(plate, tmp_path / "out", keyframes=keys, method="classical", progress="none")
    assert "the trimap doubt of 6 frame(s) is a guess from their distance to a keyframe" in caplog.text, caplog.text
    review = load_review(tmp_path / "out" / "review")
    assert review.extra["estimated"] == "1002-1005,1007-1008"
    assert "trimap doubt guessed from distance (no two-pass frame measures the drift): 1002-1005,1007-1008" in \
        table(review)
    shutil.copy(tmp_path / "cut" / "keyframes" / "key.1006.png", tmp_path / "cut" / "keyframes" / "key.1008.png")
    caplog.clear()
    with caplog.at_level("WARNING", logger="tcvom"):  # 1007 lies between two keyframes of one picture: measured
        pipeline.run(plate, tmp_path / "out", keyframes=keys, method="classical", progress="none")
    assert "is a guess from their distance" not in caplog.text
    assert "estimated" not in load_review(tmp_path / "out" / "review").extra


def test_a_frame_alone_in_its_picture_at_the_head_is_reviewed_with_an_unknown_matte_doubt(tmp_path: Path) -> None:
    """Code review: with one frame of the previous shot at the head, its only neighbour lies
    across the cut; the matte-only review then dropped it as "not reviewed (no trimap or
    alpha yet)" although it has an alpha. It is reviewed, its matte doubt unknown."""
    from tcvom.data.example import write_example

    shots = {"a": write_example(tmp_path / "a", width=96, height=64, frames=8),
             "b": write_example(tmp_path / "b", width=96, height=64, frames=8, seed=11)}
    for sub in ("plate", "trimaps"):
        (tmp_path / "cut" / sub).mkdir(parents=True)
    for f in range(1001, 1009):
        source = shots["a" if f == 1001 else "b"]
        shutil.copy(Path(source.plate).parent / f"plate.{f}.exr", tmp_path / "cut" / "plate")
        shutil.copy(source.folder / "truth" / f"trimap.{f}.png", tmp_path / "cut" / "trimaps")
    result = pipeline.matte(str(tmp_path / "cut" / "plate" / "plate.####.exr"),
                            str(tmp_path / "cut" / "trimaps" / "trimap.####.png"), tmp_path / "out" / "alpha",
                            method="classical", progress="none")
    review = load_review(result.outputs["review"])
    rows = {r.frame: r for r in review.frames}
    assert "not_reviewed" not in review.extra and sorted(rows) == list(range(1001, 1009))
    assert rows[1001].residual is None and rows[1002].residual is not None
    assert "1001" in table(review).splitlines()[1] and "matte doubt unknown" in table(review).splitlines()[1]


def test_a_run_of_part_of_the_shot_names_the_frames_past_a_cut_rightly(tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    """Review of the cut work: a run of part of the shot judged the pictures from its own
    frames (a false warning where both pictures had a keyframe outside them), found no cut
    among its alphas (--frames 1005-1008: silent) or the wrong one (x2: after 1003)."""
    _two_shots_cut(tmp_path, {1001: "a", 1008: "b"})
    plate, keys = str(tmp_path / "cut" / "plate" / "plate.####.exr"), str(tmp_path / "cut" / "keyframes" / "key.####.png")
    with caplog.at_level("WARNING", logger="tcvom"):
        pipeline.run(plate, tmp_path / "both", keyframes=keys, method="classical", progress="none", frames="1003-1006")
    assert "past a cut" not in caplog.text
    (tmp_path / "cut" / "keyframes" / "key.1008.png").unlink()
    for name, frames in (("part", "1005-1008"), ("x2", "1001-1008x2")):
        caplog.clear()
        with caplog.at_level("WARNING", logger="tcvom"):
            pipeline.run(plate, tmp_path / name, keyframes=keys, method="classical", progress="none", frames=frames)
        assert "past a cut (the picture cuts after 1004) from every keyframe" in caplog.text, (name, caplog.text)
        review = json.loads((tmp_path / name / "review" / "review.json").read_text())
        assert review["past_cut"] and review["past_cut"][0][0] >= 1005, (name, review["past_cut"])
    caplog.clear()
    with caplog.at_level("WARNING", logger="tcvom"):  # the stage alone, on part of the shot: no review, said here
        pipeline.trimaps(plate, keys, tmp_path / "tri", method="classical", progress="none", frames="1005-1008")
    assert "frames 1005-1008 lie past a cut from every keyframe" in caplog.text


def test_a_removed_keyframe_leaves_the_review(small_example, tmp_path: Path) -> None:
    """Loop QA: after a keyframe was deleted, the rerun's review still listed it (the reused
    trimaps' records named it), called it a keyframe and had the frames before it two-pass."""
    options = {"shot_range": "1001-1008", "method": "classical", "progress": "none"}
    out, fresh = tmp_path / "inc", tmp_path / "fresh"
    pipeline.run(small_example.plate, out, keyframes=[_key(small_example, f) for f in (1001, 1004, 1008)], **options)
    pipeline.run(small_example.plate, out, keyframes=[_key(small_example, f) for f in (1001, 1004)], **options)
    pipeline.run(small_example.plate, fresh, keyframes=[_key(small_example, f) for f in (1001, 1004)], **options)
    rerun, scratch = (json.loads((o / "review" / "review.json").read_text()) for o in (out, fresh))
    assert rerun["keyframes"] == scratch["keyframes"] == [1001, 1004]
    rows = {r["frame"]: r for r in rerun["frames"]}
    assert rows[1008]["trimap_doubt"] > rows[1007]["trimap_doubt"] > 0  # one pass from 1004, drifting
    assert rerun["suggested"] == scratch["suggested"]


def test_the_table_names_frames_past_a_cut_with_the_shots_step() -> None:
    """Review QA: on a shot on twos the run warned of frames 50-78x2 past a cut, the review
    table said 50-78 (odd frames that do not exist)."""
    from tcvom.review.doubt import FrameDoubt, Review, table

    frames = [FrameDoubt(f, 0.1, 0.1, 0.1, keyframe=f == 0) for f in range(0, 80, 2)]
    review = Review(keyframes=[0], frames=frames, suggested=[], doubtful=[], extra={"past_cut": [[50, 78], [4, 4]]})
    assert "past a cut from every keyframe (paint a keyframe in each): 50-78x2, 4" in table(review)


def test_preview_of_a_plate_on_twos_advises_its_own_flag(tmp_path: Path, small_example,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Review QA: a plate numbered in steps was refused by `tcvom preview` with the advice
    --shot-range, which preview does not take (its --frames does it)."""
    import shutil

    from tcvom.errors import MissingFrameError
    from tcvom.io import open_frames

    folder = tmp_path / "twos"
    shutil.copytree(Path(small_example.plate).parent, folder)
    for frame in (1002, 1004, 1006):
        (folder / f"plate.{frame}.exr").unlink()
    hint = "preview the frames that exist with --frames {frames}"
    with pytest.raises(MissingFrameError) as caught:
        open_frames(str(folder / "plate.####.exr"), holes_hint=hint)
    assert "preview the frames that exist with --frames 1001-1007x2,1008" in str(caught.value)
    assert main(["preview", "--plate", str(folder / "plate.####.exr"), "--trimaps", small_example.trimaps,
                 "--alpha", small_example.alpha, "--out", str(tmp_path / "pv"), "--no-movie"]) == 2
    err = capsys.readouterr().err
    assert "with --frames 1001-1007x2,1008" in err and "--shot-range" not in err, err


def test_a_review_reads_each_record_once(reviewed_run, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """The review asked the trimaps' records, the alphas' and the kept keyframes each question
    anew (its keyframe check, its plate check, its stale alphas): every file up to four times."""
    out, _ = reviewed_run
    reads: dict[str, int] = {}
    read_text = Path.read_text

    def counted(self: Path, *args, **kwargs) -> str:
        if self.suffix == ".json" and "review" not in self.parts:
            reads[str(self)] = reads.get(str(self), 0) + 1
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", counted)
    assert main(["review", str(out), "--rebuild", "--progress", "none"]) == 0
    capsys.readouterr()
    assert any(p.endswith("keyframes.json") for p in reads), reads  # the reads are the ones counted
    assert sum(p.endswith(f"{1003}.json") for p in reads) == 2, reads  # a trimap's record and an alpha's
    assert {p: n for p, n in reads.items() if n > 1} == {}


def test_a_stage_output_without_a_review_is_rebuilt(small_example, tmp_path: Path, capsys) -> None:
    """Newcomer QA: on a `tcvom matte --no-review` (or `tcvom trimaps`) output without a
    review, `tcvom review OUT` told to run `tcvom review OUT --rebuild`, which then failed:
    "no matte made by tcvom in this output (its alpha/ folder has no tcvom manifest)"."""
    keys = [_key(small_example, 1001), _key(small_example, 1008)]
    trimaps, mattes = tmp_path / "tri", tmp_path / "mat"
    assert main(["trimaps", "--plate", small_example.plate, "--keyframes", *keys, "--out", str(trimaps),
                 "--method", "classical", "--progress", "none"]) == 0
    assert main(["matte", "--plate", small_example.plate, "--trimaps", str(trimaps / "trimap.####.png"),
                 "--out", str(mattes), "--method", "classical", "--no-review", "--progress", "none"]) == 0
    shutil.rmtree(trimaps / "review")
    for folder in (mattes, trimaps):
        capsys.readouterr()
        assert main(["review", str(folder)]) == 2 and f"tcvom review {folder} --rebuild" in capsys.readouterr().err
        assert main(["review", str(folder), "--rebuild", "--progress", "none"]) == 0, capsys.readouterr().err
        review = load_review(folder)
        assert review.keyframes == [1001, 1008] and len(review.frames) == 8
        assert (review.extra["sources"]["alpha"] is None) == (folder == trimaps)
