"""The review (tcvom.review.doubt): scores on hand-made stats, the schema on disk, the
suggestions, the unexplained-alpha residual, and a real run writing and rebuilding it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tcvom.errors import InputError
from tcvom.review.doubt import (
    DEFAULT_DRIFT,
    THRESHOLD,
    TrimapStats,
    alpha_residual,
    build_review,
    load_review,
    squash,
    suggest,
    write_review,
)


def _stats(frames, keys, disagreement=None, unknown=100):
    out = {}
    for f in frames:
        d = None if f in keys or disagreement is None else disagreement.get(f)
        out[f] = TrimapStats(f, f in keys, unknown, 400, d)
    return out


def test_two_pass_doubt_follows_the_nearer_pass_and_keyframes_have_none() -> None:
    frames = list(range(11))
    # passes disagree on 100 px everywhere between keyframes 0 and 10 (edge 100 px)
    review = build_review(frames, [0, 10], _stats(frames, {0, 10}, dict.fromkeys(range(1, 10), 100.0)))
    doubt = {r.frame: r.trimap_doubt for r in review.frames}
    assert doubt[0] == doubt[10] == 0.0
    assert doubt[5] == pytest.approx(squash(0.5))  # half-way: D * 5 / 10 over the edge
    assert doubt[1] == pytest.approx(squash(0.1)) and doubt[1] < doubt[3] < doubt[5]
    assert doubt[9] == doubt[1]


def test_a_pass_across_a_cut_is_not_the_one_to_trust() -> None:
    """Review QA: at a hard cut the ensemble leant on the nearer keyframe's pass, which came
    across the cut, and the frames it wrecked (excess error 7 times the run before) had the
    doubt of a frame next to a keyframe. A cut after frame 7 of keyframes 0 and 10."""
    frames = list(range(11))
    stats = _stats(frames, {0, 10}, dict.fromkeys(range(1, 10), 100.0))
    plain = {r.frame: r.trimap_doubt for r in build_review(frames, [0, 10], stats).frames}
    cut = {r.frame: r.trimap_doubt for r in build_review(frames, [0, 10], stats, cuts=[7]).frames}
    assert plain[6] == pytest.approx(squash(0.4), abs=1e-6)  # nearer to 10: D * 4 / 10
    assert cut[6] == pytest.approx(squash(1.0), abs=1e-6) == cut[7]  # 10's pass crossed the cut: the whole disagreement
    assert cut[8] == plain[8] and cut[3] == plain[3]  # the nearer pass came from the cut's own side
    # every pass across a cut (a keyframe on one side only): as doubtful as a frame unlike both
    one_sided = {r.frame: r.trimap_doubt for r in build_review(frames, [0], _stats(frames, {0}), cuts=[4]).frames}
    assert one_sided[5] == one_sided[10] == pytest.approx(squash(3.0), abs=1e-6) and one_sided[4] < 0.5


def test_a_frame_one_pass_decides_at_a_cut_drifts_from_that_pass_keyframe() -> None:
    """The ensemble takes the pass from the cut's own side alone (no disagreement recorded):
    such a frame drifts as a one-pass frame at its distance from that pass's keyframe. Keyframes
    0, 10 and 20; a cut after 17; frames 1-9 give the drift (100 px over 10 frames)."""
    frames = list(range(21))
    stats = _stats(frames, {0, 10, 20}, dict.fromkeys(range(1, 10), 100.0))
    doubt = {r.frame: r.trimap_doubt for r in build_review(frames, [0, 10, 20], stats, cuts=[17]).frames}
    assert doubt[16] == pytest.approx(squash(0.6), abs=1e-6)  # 20's pass crossed: six frames from 10
    assert doubt[17] == pytest.approx(squash(0.7), abs=1e-6)
    assert doubt[18] == pytest.approx(squash(0.2), abs=1e-6)  # 10's pass crossed: two frames from 20
    assert doubt[12] == pytest.approx(squash(0.2), abs=1e-6)  # no disagreement recorded, no cut: the nearer


def test_one_pass_frames_drift_at_the_rate_the_two_pass_frames_show() -> None:
    frames = list(range(21))
    review = build_review(frames, [0, 10], _stats(frames, {0, 10}, dict.fromkeys(range(1, 10), 100.0)))
    doubt = {r.frame: r.trimap_doubt for r in review.frames}
    # drift = (100 / 100) / 10 per frame; the tail frame 20 is 10 frames from keyframe 10
    assert doubt[20] == pytest.approx(squash(1.0), abs=1e-6)
    assert doubt[15] == pytest.approx(squash(0.5))


def test_without_two_pass_frames_the_default_drift_applies() -> None:
    frames = list(range(6))
    doubt = {r.frame: r.trimap_doubt for r in build_review(frames, [0], _stats(frames, {0})).frames}
    assert doubt[0] == 0.0
    assert [doubt[f] for f in range(1, 6)] == pytest.approx([squash(DEFAULT_DRIFT * d) for d in range(1, 6)], abs=1e-6)


def test_schema_threshold_and_suggestions(tmp_path: Path) -> None:
    frames = list(range(1001, 1041))
    disagreement = {f: (2000.0 if 1025 <= f <= 1032 else 5.0) for f in frames}
    review = build_review(frames, [1001, 1040], _stats(frames, {1001, 1040}, disagreement))
    paths = write_review(review, tmp_path / "review")
    data = json.loads(paths["json"].read_text())
    assert data["version"] == 1 and data["keyframes"] == [1001, 1040]
    assert [r["frame"] for r in data["frames"]] == frames
    assert all({"frame", "trimap_doubt", "matte_doubt", "doubt"} <= set(r) for r in data["frames"])
    assert data["doubtful"] == sorted(r["frame"] for r in data["frames"] if r["doubt"] > THRESHOLD)
    assert data["doubtful"] and set(data["doubtful"]) <= set(range(1025, 1033))
    assert 1025 <= data["suggested"][0] <= 1032  # the trouble, not the middle of the shot
    assert not set(data["suggested"]) & {1001, 1040} and len(set(data["suggested"])) == len(data["suggested"])
    lines = paths["csv"].read_text().splitlines()
    assert lines[0].startswith("frame,keyframe,trimap_doubt,matte_doubt,doubt") and len(lines) == 41
    import cv2

    picture = cv2.imread(str(paths["png"]))
    assert picture is not None and picture.shape[1] >= 720
    assert load_review(tmp_path / "review").as_dict() == data


@pytest.mark.parametrize("stop", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_review_whose_write_fails_midway_leaves_the_earlier_one_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop: BaseException) -> None:
    """Crash QA: a disk that filled while the review was written left a lone review.csv (of
    the new review), or the new CSV beside the earlier review.json and plot. Then a Ctrl-C
    during `tcvom review --rebuild` left no review at all: the earlier one stays, whole."""
    from tcvom.review import plot

    frames = list(range(1001, 1011))
    earlier = write_review(build_review(frames, [1001, 1010], _stats(frames, {1001, 1010})), tmp_path / "review")
    before = {key: path.read_bytes() for key, path in earlier.items()}
    review = build_review(frames, [1001, 1005, 1010], _stats(frames, {1001, 1005, 1010}))

    def stopped(*args, **kwargs):
        raise stop

    monkeypatch.setattr(plot, "plot_review", stopped)
    with pytest.raises(type(stop)):
        write_review(review, tmp_path / "review")
    assert {key: path.read_bytes() for key, path in earlier.items()} == before
    assert sorted(p.name for p in (tmp_path / "review").iterdir()) == ["review.csv", "review.json", "review.png"]


def test_a_full_disk_while_the_review_is_written_names_the_review_not_its_staged_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Streaming QA: the error named the hidden staging name (``.review.tcvom-tmp-...json``),
    gone once the run ended, which hosts show the artist; every other full-disk error names
    the file being written."""
    from tcvom.errors import OutputError

    frames = list(range(1001, 1011))
    real = Path.write_bytes

    def full(self: Path, data: bytes) -> int:
        if self.suffix == ".json":
            raise OSError(28, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(OutputError) as caught:
        write_review(build_review(frames, [1001, 1010], _stats(frames, {1001, 1010})), tmp_path / "review")
    assert caught.value.path == str(tmp_path / "review" / "review.json")
    assert "tcvom-tmp" not in str(caught.value) + repr(caught.value) and "No space left" in str(caught.value)
    assert not list((tmp_path / "review").iterdir())  # nothing staged left behind


def test_a_review_stopped_between_its_renames_leaves_no_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The new CSV in place beside the earlier review.json would be a set from two reviews."""
    from tcvom.io import atomic

    frames = list(range(1001, 1011))
    earlier = write_review(build_review(frames, [1001, 1010], _stats(frames, {1001, 1010})), tmp_path / "review")
    review = build_review(frames, [1001, 1005, 1010], _stats(frames, {1001, 1005, 1010}))
    real = atomic.move_into_place
    calls = []

    def second_fails(source, final):
        calls.append(final)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(source, final)

    monkeypatch.setattr(atomic, "move_into_place", second_fails)
    with pytest.raises(KeyboardInterrupt):
        write_review(review, tmp_path / "review")
    assert not any(path.exists() for path in earlier.values())
    assert not list((tmp_path / "review").iterdir())


def test_suggestions_spread_out_over_an_even_doubt() -> None:
    frames = list(range(40))
    picks = suggest(frames, dict.fromkeys(frames, 0.3), [0], count=3)
    assert len(picks) == 3 and len(set(picks)) == 3
    assert min(abs(a - b) for a in picks for b in picks if a != b) >= 8  # not huddled together
    assert suggest(frames, dict.fromkeys(frames, 0.0), [0]) == []  # no doubt, nothing to key


def test_a_keyframe_helps_only_the_frames_of_its_own_picture() -> None:
    """Review QA: with a cut after frame 48 and no keyframe past it, the first suggestion was
    frame 47, before the cut: the model let it help the frames past the cut (keying it made
    them worse). Frames past the cut now need a keyframe of their own picture."""
    frames = list(range(60))
    doubt = {f: min(0.05 * (f - 29), 0.6) for f in range(30, 49)} | dict.fromkeys(range(49, 60), 0.75)
    picks = suggest(frames, doubt, [0, 29], count=3, cuts=[48])
    assert 49 <= picks[0] <= 59, picks
    assert any(30 <= p <= 48 for p in picks), picks  # and the frames before the cut still get one


def test_every_guessed_frame_is_named_however_far_from_its_keyframe() -> None:
    """Code review: the guessed frames were told from the frames past a cut by their value,
    so a one-pass frame 150 frames or more from its keyframe (0.02 x 150 = 3 edge-sizes) was
    left out of `estimated`."""
    frames = list(range(1001, 1301))
    stats = {f: TrimapStats(frame=f, keyframe=f == 1001, unknown=400, foreground=2000, disagreement=None)
             for f in frames}
    review = build_review(frames, [1001], stats)
    assert review.extra["estimated"] == "1002-1300"


def test_load_review_says_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no review") as missing:
        load_review(tmp_path)
    assert missing.value.exit_code == 2
    (tmp_path / "review.json").write_text(json.dumps({"version": 9}))
    with pytest.raises(InputError, match="version 9"):
        load_review(tmp_path)


def test_alpha_residual_ignores_motion_and_sees_a_jump() -> None:
    rng = np.random.default_rng(0)
    texture = rng.random((64, 96, 3)).astype(np.float32)
    import cv2

    texture = cv2.GaussianBlur(texture, (0, 0), 2.0)
    alpha = np.zeros((64, 96), np.float32)
    alpha[20:44, 30:60] = 1.0
    shifted_image = np.roll(texture, 2, axis=1)
    shifted_alpha = np.roll(alpha, 2, axis=1)
    moving = alpha_residual(texture, alpha, shifted_image, shifted_alpha)
    jumped = shifted_alpha.copy()
    jumped[20:30, 62:72] = 1.0  # 100 px that appear from nowhere
    wrong = alpha_residual(texture, alpha, shifted_image, jumped)
    assert moving < 20.0
    assert wrong - moving > 60.0


def test_alpha_residual_counts_all_change_across_a_cut() -> None:
    """A frame of another shot (a cut, a frame swapped in): the flow follows almost nothing,
    and its pixels were all left out as new, so the worst frame of the shot had no matte
    doubt. Across a cut every bit of the alpha's change is unexplained."""
    import cv2

    rng = np.random.default_rng(1)
    texture, other = (cv2.GaussianBlur(rng.random((64, 96, 3)).astype(np.float32), (0, 0), 2.0) for _ in range(2))
    alpha = np.zeros((64, 96), np.float32)
    alpha[20:44, 30:60] = 1.0
    elsewhere = np.zeros_like(alpha)
    elsewhere[5:25, 60:90] = 1.0
    expected = float(np.abs(alpha - elsewhere).sum())
    assert alpha_residual(texture, alpha, other, elsewhere) == pytest.approx(expected)


def test_a_run_waiting_for_the_review_lock_says_so(tmp_path: Path, capsys) -> None:
    """Another run holding the review lock makes this one wait; it says why nothing moves
    (it waited silently), then removes the review."""
    import threading
    import time

    from tcvom.farm.locks import exclusive_lock
    from tcvom.review.doubt import invalidate_review

    write_review(build_review([1, 2], [1], _stats([1, 2], [1])), tmp_path)
    done = threading.Event()
    with exclusive_lock(tmp_path / ".review.lock"):
        worker = threading.Thread(target=lambda: (invalidate_review(tmp_path), done.set()))
        worker.start()
        deadline = time.monotonic() + 30
        while "waiting for another run writing the review" not in capsys.readouterr().err:
            assert time.monotonic() < deadline, "no message while waiting"
            time.sleep(0.05)
        assert not done.is_set() and (tmp_path / "review.json").exists()
    worker.join(30)
    assert done.is_set() and not (tmp_path / "review.json").exists()


def test_a_json_run_waiting_for_the_review_lock_sends_a_message_event(small_example, tmp_path: Path,
                                                                       capsys) -> None:
    """In JSON mode the wait was announced only as text on stderr: a host saw the run stop
    moving with no event saying why."""
    import json
    import threading
    import time

    from tcvom.cli import main
    from tcvom.farm.locks import exclusive_lock

    out = tmp_path / "out"
    args = ["run", "--plate", small_example.plate, "--keyframes", small_example.keyframes, "--out", str(out),
            "--method", "classical", "--progress", "json"]
    assert main(args) == 0
    capsys.readouterr()
    codes: list[int] = []
    with exclusive_lock(out / "review" / ".review.lock"):
        worker = threading.Thread(target=lambda: codes.append(main(args)))  # everything reused: only the review
        worker.start()
        deadline, seen = time.monotonic() + 60, ""
        while "waiting for another run writing the review" not in seen:
            assert time.monotonic() < deadline, "no message while waiting"
            time.sleep(0.05)
            seen += capsys.readouterr().out
    worker.join(60)
    assert codes == [0]
    events = [json.loads(line) for line in seen.splitlines() if line.startswith("{")]
    assert any(e["event"] == "message" and "waiting for another run" in e["message"] for e in events), seen


def _grainy(i: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """A disc moving half a pixel a frame over a flat blue screen with film grain."""
    yy, xx = np.mgrid[:64, :96]
    alpha = np.clip(12.5 - np.hypot(xx - (30 + i * 0.5), yy - 32), 0, 1).astype(np.float32)
    image = alpha[..., None] * np.float32([0.6, 0.4, 0.3]) + (1 - alpha[..., None]) * np.float32([0.05, 0.1, 0.4])
    return np.clip(image + rng.normal(0, 0.03, image.shape), 0, 1).astype(np.float32), alpha


def test_a_frame_unlike_both_neighbours_and_grain_that_is_not() -> None:
    """A turned-over frame between two of one picture is unlike both; on a grainy flat screen
    the flow's followed share wanders around one half for every frame (QA: ordinary frames
    were forced doubtful), which is no frame standing out."""
    from tcvom.review.doubt import alpha_change, unlike_both

    rng = np.random.default_rng(0)
    frames = [_grainy(i, rng) for i in range(12)]
    for i in range(1, 11):
        (before, a0), (image, alpha), (after, a1) = frames[i - 1], frames[i], frames[i + 1]
        shares = [alpha_change(image, alpha, before, a0)[1], alpha_change(image, alpha, after, a1)[1]]
        assert not unlike_both(shares, before, after), (i, shares)
    import cv2

    texture = cv2.GaussianBlur(np.random.default_rng(1).random((64, 96, 3)).astype(np.float32), (0, 0), 2.0)
    before, after = texture, np.roll(texture, 1, axis=1)
    turned = np.ascontiguousarray(texture[::-1, ::-1])
    blank = np.zeros((64, 96), np.float32)
    shares = [alpha_change(turned, blank, before, blank)[1], alpha_change(turned, blank, after, blank)[1]]
    assert unlike_both(shares, before, after), shares


def test_frames_past_a_cut_from_every_keyframe_are_named_per_picture(caplog) -> None:
    """Host QA: the frames to key past cuts were one range over two pictures ("frames
    1004-1010"), a single frame was "frames 1005 lie", and a rerun that reused them said
    nothing; the review names them, one range per picture, on every run."""
    from tcvom.review.doubt import past_cuts, say_past_cuts

    frames = list(range(1001, 1011))
    assert past_cuts(frames, [1001], [1003, 1006]) == [[1004, 1005, 1006], [1007, 1008, 1009, 1010]]
    assert past_cuts(frames, [1001, 1005, 1010], [1003, 1006]) == []
    assert past_cuts(frames, [1001], []) == [] and past_cuts(frames, [], [1003]) == []
    with caplog.at_level("WARNING", logger="tcvom"):
        say_past_cuts(past_cuts(frames, [1001], [1003, 1006]), [1003, 1006])
        say_past_cuts(past_cuts(frames, [1001], [1009]), [1009])
    assert ("frames 1004-1006 and 1007-1010 lie past a cut (the picture cuts after 1003, 1006) from every keyframe: "
            "their trimaps are carried over from another picture. Paint a keyframe in each of 1004-1006, 1007-1010"
            ) in caplog.text
    assert "frame 1010 lies past a cut (the picture cuts after 1009) from every keyframe: its trimap is" in caplog.text


def test_past_cuts_of_part_of_the_shot_use_the_whole_shots_pictures() -> None:
    from tcvom.review.doubt import past_cuts

    shot = list(range(1001, 1009))
    assert past_cuts(shot, [1001, 1008], [1004], shown=range(1002, 1008)) == []
    assert past_cuts(shot, [1001], [1004], shown=range(1003, 1008)) == [[1005, 1006, 1007]]


def test_the_review_table_lines_up_under_frame_numbers_of_ten_digits() -> None:
    """Streaming QA: frames up to 2147483647 are handled, but the table's frame column was 7
    characters wide: every column of their rows stood 3 characters right of its heading."""
    from tcvom.review.doubt import table

    frames = list(range(2147483637, 2147483648))
    lines = table(build_review(frames, [frames[0], frames[-1]], _stats(frames, {frames[0], frames[-1]}))).splitlines()
    heading = lines[0].index("doubt  note")
    rows = [line for line in lines[1:] if line[:1] == " " or line[:1].isdigit()][:len(frames)]
    assert len(rows) == len(frames) and all(row[heading:heading + 6].strip().replace(".", "").isdigit()
                                            and row[heading - 1] == " " for row in rows), lines[:3]
