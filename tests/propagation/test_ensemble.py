"""The ensemble driver with a propagator whose output is known exactly."""

from collections.abc import Iterator, Mapping

import numpy as np

from tcvom.io.trimap import one_hot
from tcvom.propagation.ensemble import propagate
from tcvom.propagation.scheduler import KeyframeSchedule, Pass


class Frames:
    def __init__(self, first: int, last: int, shape=(2, 3)) -> None:
        self.frame_numbers = list(range(first, last + 1))
        self.height, self.width = shape

    def read(self, frame: int) -> np.ndarray:
        return np.zeros((self.height, self.width, 3), np.float32)


class CopyKeyframe:
    """Every frame of a pass gets its keyframe's trimap, at a confidence of ``level``/255."""

    def __init__(self, level: int = 255) -> None:
        self.level = level
        self.calls: list[tuple[int, ...]] = []
        self.memories: list[tuple[int, ...]] = []

    def run_pass(
        self, frames, keyframes: Mapping[int, np.ndarray], pass_: Pass
    ) -> Iterator[tuple[int, np.ndarray]]:
        self.calls.append(pass_.frames)
        self.memories.append(pass_.memory_keyframes)
        probs = (
            one_hot(keyframes[pass_.keyframe], dtype=np.uint8, on=255).astype(np.int32) * self.level // 255
        ).astype(np.uint8)
        for frame in pass_.frames:
            yield frame, probs


def test_closer_keyframe_wins_and_keyframes_are_exact(tmp_path) -> None:
    fg = np.full((2, 3), 255, np.uint8)
    bg = np.zeros((2, 3), np.uint8)
    keys = {1: fg, 11: bg}
    frames = Frames(1, 11)
    results = {r.frame: r for r in propagate(CopyKeyframe(), frames, keys, workdir=tmp_path)}
    assert sorted(results) == list(range(1, 12))
    assert all((results[f].trimap == 255).all() for f in range(1, 6))  # weight of keyframe 1 >= 0.6
    assert all((results[f].trimap == 0).all() for f in range(7, 12))
    assert (results[6].trimap == 0).all()  # 0.5 / 0.5: tie goes to the lower class (background)
    assert np.allclose(results[4].probabilities[2], 0.7) and np.allclose(
        results[4].probabilities[0], 0.3
    )
    assert list(tmp_path.iterdir()) == []  # the disk buffer is cleaned up


def test_the_buffer_a_killed_run_left_is_removed_by_the_next(tmp_path) -> None:
    """Crash QA: a trimap task killed with SIGKILL (a farm's cancel) left its segment buffer
    (tcvom-ensemble-*, 3 bytes per pixel per frame) in $TMPDIR for good; its name said no
    writer, so nothing could tell it from a live run's."""
    import os
    import subprocess
    import sys

    from tcvom.io.atomic import TEMP_MARK, temporary_name

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    left = temporary_name(tmp_path / "tcvom-ensemble")
    left = left.with_name(left.name.replace(f"-{os.getpid()}-", f"-{int(dead.stdout)}-"))
    left.mkdir()
    (left / "1003.u8").write_bytes(b"\0" * 18)
    live = temporary_name(tmp_path / "tcvom-ensemble")  # a concurrent run's, this process alive
    live.mkdir()
    seen = []
    modes: list[int] = []

    class Watching(CopyKeyframe):
        def run_pass(self, frames, keyframes, pass_):
            seen.append(sorted(p.name for p in tmp_path.iterdir()))
            modes.extend(p.stat().st_mode & 0o777 for p in tmp_path.iterdir() if p.name != live.name)
            yield from super().run_pass(frames, keyframes, pass_)

    frames = Frames(1, 11)
    list(propagate(Watching(), frames, {1: np.full((2, 3), 255, np.uint8), 11: np.zeros((2, 3), np.uint8)},
                   workdir=tmp_path))
    assert not left.exists() and live.is_dir()
    assert any(len(names) == 2 and all(TEMP_MARK in n for n in names) for names in seen)  # its own, named so
    assert modes and all(mode == 0o700 for mode in modes)  # private in a shared /tmp, as TemporaryDirectory was
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name]


def test_head_and_tail_use_one_pass_unweighted() -> None:
    unknown = np.full((2, 3), 128, np.uint8)
    prop = CopyKeyframe(level=100)
    results = {r.frame: r for r in propagate(prop, Frames(1, 9), {5: unknown})}
    assert all((r.trimap == 128).all() for r in results.values())
    assert prop.calls == [(5, 4, 3, 2, 1), (5, 6, 7, 8, 9)]


def test_segments_can_run_alone() -> None:
    keys = {
        1: np.zeros((2, 3), np.uint8),
        5: np.full((2, 3), 255, np.uint8),
        9: np.zeros((2, 3), np.uint8),
    }
    schedule = KeyframeSchedule(range(1, 10), keys)
    prop = CopyKeyframe()
    whole = {r.frame: r.trimap for r in propagate(prop, Frames(1, 9), keys, schedule=schedule)}
    parts = {}
    for segment in schedule.segments:
        parts.update(
            {r.frame: r.trimap for r in propagate(prop, Frames(1, 9), keys, segments=[segment])}
        )
    assert whole.keys() == parts.keys() and all((whole[f] == parts[f]).all() for f in whole)


def test_two_passes_record_their_disagreement() -> None:
    fg = np.full((2, 3), 255, np.uint8)
    bg = np.zeros((2, 3), np.uint8)
    half = bg.copy()
    half[0] = 255  # 3 of the 6 pixels differ from the background keyframe
    results = {r.frame: r for r in propagate(CopyKeyframe(), Frames(1, 11), {1: fg, 11: bg})}
    assert results[1].disagreement is None and results[11].disagreement is None  # keyframes
    assert all(results[f].disagreement == 6.0 for f in range(2, 11))  # every pixel, certain both ways
    same = {r.frame: r for r in propagate(CopyKeyframe(), Frames(1, 5), {1: half, 5: half})}
    assert all(same[f].disagreement == 0.0 for f in range(2, 5))
    partial = {r.frame: r for r in propagate(CopyKeyframe(), Frames(1, 5), {1: half, 5: bg})}
    assert partial[3].disagreement == 3.0
    tail = {r.frame: r for r in propagate(CopyKeyframe(), Frames(1, 5), {3: half})}
    assert all(r.disagreement is None for r in tail.values())  # one pass: nothing to compare


class TwoPictures(Frames):
    """A textured picture panning a pixel a frame, cutting to another after ``cut``; with
    ``flash``, that one frame shows the other picture (a frame unlike both neighbours)."""

    def __init__(self, first: int, last: int, cut: int | None = None, flash: int | None = None) -> None:
        super().__init__(first, last, shape=(64, 96))
        self.cut, self.flash = cut, flash

    def read(self, frame: int) -> np.ndarray:
        import cv2

        other = (self.cut is not None and frame > self.cut) or frame == self.flash
        rng = np.random.default_rng(2 if other else 1)  # the other picture coarser: DIS finds no match
        base = cv2.GaussianBlur(rng.random((self.height, self.width, 3), dtype=np.float32), (0, 0), 6 if other else 3)
        return np.clip(np.roll(base, frame, axis=1) * 1.5 - 0.25, 0, 1).astype(np.float32)


def test_no_pass_is_trusted_across_a_cut(caplog) -> None:
    """Review QA: at a hard cut the ensemble leant on the pass that came across it. A cut
    after frame 7 of keyframes 1 and 11: frames up to 7 take keyframe 1's pass alone, the
    rest keyframe 11's, and neither pass runs past the cut."""
    fg = np.full((64, 96), 255, np.uint8)
    bg = np.zeros((64, 96), np.uint8)
    prop = CopyKeyframe()
    with caplog.at_level("INFO", logger="tcvom"):
        results = {r.frame: r for r in propagate(prop, TwoPictures(1, 11, cut=7), {1: fg, 11: bg})}
    assert all((results[f].trimap == 255).all() for f in range(1, 8))  # 6 and 7 went to 11 before
    assert all((results[f].trimap == 0).all() for f in range(8, 12))
    assert all(results[f].disagreement is None for f in range(2, 11))  # one pass decides each
    assert prop.calls == [(1, 2, 3, 4, 5, 6, 7), (11, 10, 9, 8)]
    assert prop.memories == [(1,), (11,)]  # the keyframe across the cut seeds neither (it shows another picture)
    assert "the picture cuts between 7 and 8: each frame of 1-11 takes its trimap from the keyframes on its side" \
        in caplog.text and "past a cut" not in caplog.text
    plain = {r.frame: r for r in propagate(CopyKeyframe(), TwoPictures(1, 11, cut=7), {1: fg, 11: bg}, cuts=False)}
    assert (plain[7].trimap == 0).all() and plain[5].disagreement is not None  # the reference's weighting


def test_frames_past_a_cut_from_every_keyframe_take_the_pass_across_it(caplog) -> None:
    """Where no keyframe lies on a frame's side of a cut, the pass across it is all there is
    (the review names those frames, on every run: tests/review)."""
    fg = np.full((64, 96), 255, np.uint8)
    prop = CopyKeyframe()
    with caplog.at_level("INFO", logger="tcvom"):
        results = {r.frame: r for r in propagate(prop, TwoPictures(1, 11, cut=5), {3: fg})}
    assert sorted(results) == list(range(1, 12)) and prop.calls == [(3, 2, 1), tuple(range(3, 12))]
    assert "the picture cuts between 5 and 6: each frame of 3-11" in caplog.text


def test_a_flash_and_a_continuous_shot_are_not_cuts(caplog) -> None:
    """A flash is no cut; the passes step over it (review QA: a pass that went through a
    frame of another shot carried its picture on to the frames after it)."""
    fg = np.full((64, 96), 255, np.uint8)
    bg = np.zeros((64, 96), np.uint8)
    for frames, skipped in ((TwoPictures(1, 11), ()), (TwoPictures(1, 11, flash=6), (6,))):
        prop = CopyKeyframe()
        with caplog.at_level("INFO", logger="tcvom"):
            results = {r.frame: r for r in propagate(prop, frames, {1: fg, 11: bg})}
        assert prop.calls == [tuple(f for f in range(1, 11) if f not in skipped),
                              tuple(f for f in range(11, 1, -1) if f not in skipped)]
        assert sorted(results) == list(range(1, 12))
        assert (results[5].trimap == 255).all() and (results[7].trimap == 0).all()
        assert all(results[f].disagreement is not None for f in range(2, 11))
        assert not any(r.past_cut for r in results.values())
    assert "cuts" not in caplog.text
    assert "frame(s) 6 unlike both neighbours (a flash, a frame of another shot): the passes step over them" \
        in caplog.text


def test_a_flash_takes_the_results_of_the_frames_before_it_in_each_pass() -> None:
    """The frame stepped over gets what each pass gave the frame before it (weighted as its
    own position in the pass)."""

    class Numbered(CopyKeyframe):  # each frame's foreground share says which frame it was computed for
        def run_pass(self, frames, keyframes, pass_):
            self.calls.append(pass_.frames)
            for frame in pass_.frames:
                probs = np.zeros((3, 64, 96), np.uint8)
                probs[2], probs[0] = 100 + frame, 155 - frame
                yield frame, probs

    prop = Numbered()
    results = {r.frame: r for r in propagate(prop, TwoPictures(1, 11, flash=6), {1: np.full((64, 96), 255, np.uint8),
                                                                               11: np.zeros((64, 96), np.uint8)})}
    assert prop.calls == [(1, 2, 3, 4, 5, 7, 8, 9, 10), (11, 10, 9, 8, 7, 5, 4, 3, 2)]
    # the forward pass gave 6 its result for 5, the backward pass its result for 7: both at weight 0.5
    assert np.allclose(results[6].probabilities[2], (0.5 * 105 + 0.5 * 107) / 255)


def test_a_keyed_flash_is_a_picture_of_its_own(caplog) -> None:
    """Review QA: a frame of another shot swapped in is doubtful and "usually the first frame
    to key"; keyed, its passes carried its subject into its neighbours (nine frames wrong,
    each 10x the shot's error, and the review called them the best of the shot). A keyframe
    unlike both neighbours has a cut on either side: its trimap is its own alone."""
    fg = np.full((64, 96), 255, np.uint8)
    bg = np.zeros((64, 96), np.uint8)
    prop = CopyKeyframe()
    with caplog.at_level("INFO", logger="tcvom"):
        results = {r.frame: r for r in propagate(prop, TwoPictures(1, 20, flash=10), {1: fg, 10: bg, 20: fg})}
    assert sorted(results) == list(range(1, 21))
    assert (results[10].trimap == 0).all()
    assert all((results[f].trimap == 255).all() for f in range(1, 21) if f != 10)
    assert not any(r.past_cut for r in results.values())
    assert prop.calls == [tuple(range(1, 10)), tuple(range(20, 10, -1))]  # neither pass of 10 runs
    assert prop.memories == [(1,), (20,)]
    assert "the picture cuts between 9 and 10: each frame of 1-10" in caplog.text
    assert "the picture cuts between 10 and 11: each frame of 10-20" in caplog.text
    # with no other keyframe every frame lies past a cut from it (the review names them)
    alone = {r.frame: r for r in propagate(CopyKeyframe(), TwoPictures(1, 20, flash=10), {10: fg})}
    assert sorted(alone) == list(range(1, 21)) and all((r.trimap == 255).all() for r in alone.values())
    assert [f for f, r in alone.items() if not r.past_cut] == [10]


def test_a_flash_beside_a_cut_does_not_hide_it(caplog) -> None:
    """Code review: a cut needs continuous pairs beside it, and a flash's two pairs are poor:
    with a flash right before a cut, the cut was not found and both passes crossed it. The
    flash is judged as the passes take it, by its neighbours' pair."""
    from tcvom.classical.flow import cuts_over

    fg = np.full((64, 96), 255, np.uint8)
    bg = np.zeros((64, 96), np.uint8)
    prop = CopyKeyframe()
    with caplog.at_level("INFO", logger="tcvom"):
        results = {r.frame: r for r in propagate(prop, TwoPictures(1, 20, cut=10, flash=9), {1: fg, 20: bg})}
    assert "the picture cuts between 10 and 11" in caplog.text
    assert all((results[f].trimap == 255).all() for f in range(1, 11))
    assert all((results[f].trimap == 0).all() for f in range(11, 21))
    assert prop.calls == [(1, 2, 3, 4, 5, 6, 7, 8, 10), tuple(range(20, 10, -1))]
    shares = [0.9] * 7 + [0.2, 0.2, 0.1] + [0.9] * 9  # frames 1-20: 9 a flash (8-9, 9-10), a cut 10-11
    assert cuts_over(list(range(1, 21)), shares, {9: 0.9}) == [10]
    assert cuts_over(list(range(1, 21)), shares, {}) == []  # judged pair by pair, as before


def test_each_frame_names_the_tunings_of_the_passes_that_decided_it() -> None:
    """Network loop QA: on a shot with a cut the two passes of a segment are fine-tuned on
    their own keyframes, but each frame recorded the propagator's latest tuning (the second
    pass's), and the first pass's tuned weights were deleted as unused: every rerun tuned
    again. Each frame names the tunings of the passes that decided it."""

    class Tuned(CopyKeyframe):
        tuned_key: str | None = None

        def run_pass(self, frames, keyframes, pass_):
            self.tuned_key = f"tuned-{pass_.keyframe}"
            yield from super().run_pass(frames, keyframes, pass_)

    fg = np.full((64, 96), 255, np.uint8)
    bg = np.zeros((64, 96), np.uint8)
    cut = {r.frame: r.tuned for r in propagate(Tuned(), TwoPictures(1, 11, cut=7), {1: fg, 11: bg})}
    assert cut == {1: (), **{f: ("tuned-1",) for f in range(2, 8)}, **{f: ("tuned-11",) for f in range(8, 11)}, 11: ()}
    whole = {r.frame: r.tuned for r in propagate(Tuned(), TwoPictures(1, 11, flash=6), {1: fg, 11: bg})}
    assert all(whole[f] == ("tuned-1", "tuned-11") for f in range(2, 11))  # both passes decide (6 stepped over)


def test_the_frame_after_the_last_keyframe_is_checked(caplog) -> None:
    """Cut review: one frame after the last keyframe was never checked."""
    fg = np.full((64, 96), 255, np.uint8)
    with caplog.at_level("INFO", logger="tcvom"):
        list(propagate(CopyKeyframe(), TwoPictures(1, 11, cut=10), {1: fg, 10: fg}))
    assert "the picture cuts between 10 and 11: each frame of 10-11" in caplog.text


def test_a_pass_cut_short_to_its_own_keyframe_is_not_run() -> None:
    """Left by the cut work: with a cut right after a keyframe, its pass still ran for the
    keyframe alone (an STM pass fine-tuned and memorised for a frame that keeps its trimap)."""
    fg = np.full((64, 96), 255, np.uint8)
    bg = np.zeros((64, 96), np.uint8)
    for cut, keys, runs in ((1, {1: fg, 11: bg}, [tuple(range(11, 1, -1))]),
                            (10, {1: fg, 11: bg}, [tuple(range(1, 11))])):
        prop = CopyKeyframe()
        results = {r.frame: r for r in propagate(prop, TwoPictures(1, 11, cut=cut), keys)}
        assert prop.calls == runs
        assert sorted(results) == list(range(1, 12))
        assert (results[1].trimap == 255).all() and (results[11].trimap == 0).all()  # the keyframes, as painted
        assert all((results[f].trimap == (255 if f <= cut else 0)).all() for f in range(2, 11))
        assert not any(r.past_cut for r in results.values())
