"""Drive any propagator over a keyframe schedule and ensemble its passes.

A propagator implements ``run_pass(frames, keyframes, pass_)``, yielding
``(frame, probs)`` for the frames of ``pass_`` in order, ``probs`` being uint8
``3 x H x W`` class probabilities (background, unknown, foreground) scaled to 0..255.

Segments are processed one at a time. In a segment with two passes the first pass's
results are buffered on disk (one small raw file per frame in a temporary folder), so
memory stays flat however far apart the keyframes are; the second pass then combines
each frame as it comes with the weights of :class:`~tcvom.propagation.scheduler.Segment`.
As in the reference, a frame reached by one pass uses it unweighted; the class is the
argmax (ties to the lower class) mapped to 0 / 128 / 255, and a keyframe always gets its
own trimap. A frame reached by two passes also records how much they disagree
(:func:`disagreement`), which the review (:mod:`tcvom.review.doubt`) turns into a doubt score.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from tcvom.errors import FrameSizeError, InputError, OutputError
from tcvom.io.atomic import scratch_folder
from tcvom.io.sequence import format_range
from tcvom.io.sources import FrameSource
from tcvom.io.trimap import CLASS_VALUES, check_keyframe_classes, one_hot
from tcvom.propagation.scheduler import KeyframeSchedule, Pass, Segment

if TYPE_CHECKING:
    from tcvom.classical.flow import FlowEstimator

log = logging.getLogger("tcvom")


class Propagator(Protocol):
    def run_pass(
        self, frames: FrameSource, keyframes: Mapping[int, np.ndarray], pass_: Pass
    ) -> Iterator[tuple[int, np.ndarray]]: ...


@dataclass(frozen=True)
class PropagatedFrame:
    """One frame's result: the trimap (uint8 0/128/255) and the ensembled probabilities
    (float32 ``3 x H x W`` in [0, 1]). ``disagreement`` is :func:`disagreement` of the
    forward and backward passes where two passes decide the frame, else None."""

    frame: int
    trimap: np.ndarray
    probabilities: np.ndarray
    disagreement: float | None = None
    past_cut: bool = False
    """Every pass reached the frame across a cut (no keyframe in its picture): its trimap
    was carried over from another picture."""
    tuned: tuple[str, ...] = ()
    """The propagator's ``tuned_key`` of each pass that decided the frame (fine-tuned STM
    weights; the two passes of a segment across a cut are tuned on other keyframes)."""


def disagreement(first: np.ndarray, second: np.ndarray) -> float:
    """How much two passes disagree on a frame, in pixels: the total-variation distance
    between their class probabilities (uint8 ``3 x H x W``, 255 = certain) summed over the
    frame. A pixel the two passes give to different classes with certainty counts 1."""
    diff = np.abs(first.astype(np.int16) - second.astype(np.int16))
    return float(diff.sum(dtype=np.int64)) / 510.0


def _decide(
    frame: int, weighted: np.ndarray, keyframes: Mapping[int, np.ndarray], disagree: float | None = None,
    tuned: tuple[str, ...] = (),
) -> PropagatedFrame:
    if frame in keyframes:
        return _keyed(frame, keyframes)
    trimap = CLASS_VALUES[np.argmax(weighted, axis=0)]
    total = weighted.sum(axis=0, keepdims=True)
    probs = np.divide(weighted, total, out=np.zeros_like(weighted), where=total > 0)
    return PropagatedFrame(frame, trimap, probs.astype(np.float32), disagree, tuned=tuned)


def _keyed(frame: int, keyframes: Mapping[int, np.ndarray]) -> PropagatedFrame:
    """A keyframe's result: its own trimap, certain."""
    tri = keyframes[frame]
    return PropagatedFrame(frame, tri, one_hot(tri))


def _check(frame: int, probs: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if probs.dtype != np.uint8 or probs.shape != (3, *shape):
        raise ValueError(f"a propagator returned {probs.dtype} {probs.shape} for frame {frame}, not uint8 3x{shape}")
    return probs


_BUFFER_HINT = ("free space there, or point $TMPDIR at a folder with room: a segment between two keyframes "
                "buffers 3 bytes per pixel of each of its frames")


def _store(path: Path, probs: np.ndarray) -> None:
    """One frame of the first pass in the buffer folder. Written by Python, which raises on
    a short write (a full disk); numpy's own file writing may not."""
    try:
        path.write_bytes(probs.tobytes())
    except OSError as exc:
        raise OutputError(f"cannot buffer the first pass of a keyframe segment ({exc.strerror or exc})",
                          path=path.parent, hint=_BUFFER_HINT) from exc


def _load(path: Path, shape: tuple[int, int]) -> np.ndarray:
    data = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    if data.size != 3 * shape[0] * shape[1]:
        raise OutputError(f"a buffered frame of a keyframe segment is incomplete ({data.size} bytes)",
                          path=path, hint=_BUFFER_HINT)
    return data.reshape(3, *shape)


RULE = "cuts-2"
"""The ensemble's rule, part of the trimap stage's settings (:mod:`tcvom.pipeline.jobs`):
trimaps an earlier rule made (one that carried trimaps across cuts, or through a flash or a
keyed frame of another shot) are computed again."""


@dataclass(frozen=True)
class Pictures:
    """Where the picture of a run of frames breaks (:func:`read_pictures`)."""

    cuts: list[int]
    """The frames after which the picture cuts to another."""
    unlike: list[int]
    """Frames, not keyframes, unlike both neighbours (a flash, a frame of another shot
    swapped in) while those follow each other: passes step over them."""


def find_cuts(frames: FrameSource, span: Sequence[int], flow: FlowEstimator | None = None,
              keyframes: Iterable[int] = ()) -> list[int]:
    """The frames of ``span`` (consecutive frames of the shot, ascending) after which the
    picture cuts to another (:attr:`Pictures.cuts` of :func:`read_pictures`)."""
    return read_pictures(frames, span, flow, keyframes).cuts


def read_pictures(frames: FrameSource, span: Sequence[int], flow: FlowEstimator | None = None,
                  keyframes: Iterable[int] = ()) -> Pictures:
    """Where the picture of ``span`` (consecutive frames of the shot, ascending) breaks.

    Cuts (:func:`tcvom.classical.flow.cut_pairs`): a pass that steps over one carries a
    trimap onto a picture it was not painted for. The pairs are judged with :func:`_context`
    (a frame of the shot more on either side), as the review judges them across the whole
    shot, and the one frame after the last keyframe is checked too (:func:`tcvom.classical.flow.cuts_over`:
    a flash stepped over). A flash (a frame unlike both neighbours,
    :func:`tcvom.classical.flow.unlike_both`) is no cut: passes step over it
    from the frame before to the frame after (its trimap is theirs, and it does not pass a
    picture it does not show on to them), unless it is one of ``keyframes``: then it is a
    picture of its own, a cut on either side (a frame of another shot swapped in and keyed,
    as the review advises, would carry its subject to its neighbours)."""
    from tcvom.classical.flow import FOLLOWED, FlowEstimator, cuts_over, stepped_over, unlike_both

    frames_read = _context(frames.frame_numbers, span)
    if len(frames_read) < 3:  # a cut needs a continuous pair beside it
        return Pictures([], [])
    estimator = flow if flow is not None else FlowEstimator()
    keyed = set(keyframes)
    shares: list[float] = []
    unlike: dict[int, float] = {}  # frame -> the share its neighbours follow each other
    recent = [estimator.prepare(frames.read(frames_read[0]))]  # the last three frames read
    for i, frame in enumerate(frames_read[1:], 1):
        recent = [*recent[-2:], estimator.prepare(frames.read(frame))]
        shares.append(estimator.pair_share(recent[-2], recent[-1])[2])
        if i >= 2 and max(shares[-2:]) < FOLLOWED:
            between = estimator.pair_share(recent[0], recent[-1])[2]
            if unlike_both(shares[-2:], between):
                unlike[frames_read[i - 1]] = between
    inside = set(span[:-1])  # a cut after the span's last frame cuts no pass of it
    cuts = set(cuts_over(frames_read, shares, unlike))
    for frame in unlike:
        if frame in keyed:
            cuts.update((frames_read[frames_read.index(frame) - 1], frame))
    over = stepped_over(frames_read, [f for f in unlike if f not in keyed])
    return Pictures(sorted(cuts & inside), [f for f in over if f in span])


def _context(shot: Sequence[int], span: Sequence[int]) -> list[int]:
    """``span`` with the shot's frame before and after it (where there are)."""
    if not span:
        return []
    ordered = list(shot)
    first, last = ordered.index(span[0]), ordered.index(span[-1])
    return ordered[max(first - 1, 0): last + 2]


def frames_read(shot: Sequence[int], segment: Segment, cuts: bool = True) -> list[int]:
    """The plate frames :func:`propagate_segment` reads for ``segment``: the frames its
    passes reach and, with ``cuts``, the shot's frame on either side (:func:`find_cuts` judges
    each pair by the pairs beside it, so those frames decide the segment's trimaps too)."""
    span = _span(segment)
    return _context(shot, span) if cuts else span


def _span(segment: Segment) -> list[int]:
    """The frames the passes of ``segment`` reach, ascending."""
    return sorted({f for p in segment.passes for f in p.frames})


def _across(a: int, b: int, cuts: Iterable[int]) -> bool:
    """Whether a cut lies between frames ``a`` and ``b`` of the shot."""
    low, high = min(a, b), max(a, b)
    return any(low <= c < high for c in cuts)


def _uncut(pass_: Pass, cuts: Iterable[int]) -> set[int]:
    """The frames ``pass_`` reaches before it steps over one of ``cuts`` (a cut ``c`` lies
    between ``c`` and the shot's next frame)."""
    cut = set(cuts)
    reached = set(pass_.frames[:1])
    for a, b in pairwise(pass_.frames):
        if min(a, b) in cut:
            break
        reached.add(b)
    return reached


def _deciders(segment: Segment, cuts: Sequence[int]) -> dict[int, tuple[int, ...]]:
    """The keyframes of the passes that decide each output frame: those that reach it
    without stepping over a cut, or, where every pass reaching it stepped over one, all
    of them (the review names those frames)."""
    uncut = {p.keyframe: _uncut(p, cuts) for p in segment.passes}
    reached = {p.keyframe: set(p.frames) for p in segment.passes}
    out = {}
    for frame in segment.outputs:
        reaching = tuple(k for k, frames in reached.items() if frame in frames)
        out[frame] = tuple(k for k in reaching if frame in uncut[k]) or reaching
    return out


def past_cuts(frames: Sequence[int], keyframes: Iterable[int], cuts: Iterable[int],
              shown: Iterable[int] | None = None) -> list[list[int]]:
    """The frames of ``frames`` (the shot, ascending) that lie past a cut from every
    keyframe, one list per picture (the frames between two cuts): no keyframe lies in their
    picture, so every pass reached them across a cut and carried another picture's trimap
    (the review names them, :mod:`tcvom.review.doubt`). ``shown``: only these frames are listed (a review of
    part of the shot; its pictures and keyframes are still the whole shot's). Empty without
    keyframes or cuts."""
    keys, cut = set(keyframes), set(cuts)
    if not keys or not cut:
        return []
    pictures: list[list[int]] = [[]]
    for frame in frames:
        pictures[-1].append(frame)
        if frame in cut:
            pictures.append([])
    listed = None if shown is None else set(shown)
    out = [[f for f in picture if listed is None or f in listed] for picture in pictures if keys.isdisjoint(picture)]
    return [picture for picture in out if picture]


def _report_cuts(segment: Segment, cuts: Sequence[int]) -> None:
    """Say (at info level) where the picture cuts; the review names the frames no keyframe
    reaches without crossing a cut, on every run (:func:`tcvom.review.doubt.past_cuts`)."""
    span = _span(segment)
    log.info("the picture cuts between %s: each frame of %s takes its trimap from the keyframes on its side",
             ", ".join(f"{c} and {span[span.index(c) + 1]}" for c in cuts), format_range(span))


def _needed(pass_: Pass, frames: Iterable[int], cuts: Sequence[int]) -> Pass | None:
    """``pass_`` cut short after the last of ``frames`` it must decide (None: none), its
    memory without the keyframes across a cut from its own (they show another picture)."""
    wanted = set(frames)
    last = max((i for i, f in enumerate(pass_.frames) if f in wanted), default=None)
    if last is None:
        return None
    memory = tuple(k for k in pass_.memory_keyframes if not _across(pass_.keyframe, k, cuts))
    return replace(pass_, frames=pass_.frames[: last + 1], memory_keyframes=memory)


def propagate_segment(
    propagator: Propagator,
    frames: FrameSource,
    keyframes: Mapping[int, np.ndarray],
    segment: Segment,
    workdir: str | Path | None = None,
    *,
    cuts: bool = True,
) -> Iterator[PropagatedFrame]:
    """Yield the segment's output frames (in the order the last pass reaches them).

    ``cuts``: find where the picture cuts to another (:func:`find_cuts`) and decide each
    frame by the passes that reach it without crossing a cut (a pass is cut short where
    no frame needs it further); False weighs every pass as the reference does."""
    outputs = set(segment.outputs)
    pictures = read_pictures(frames, _span(segment), keyframes=keyframes) if cuts else Pictures([], [])
    found = pictures.cuts
    if pictures.unlike:
        log.info("frame(s) %s unlike both neighbours (a flash, a frame of another shot): the passes step over them",
                 format_range(pictures.unlike))
        propagator = _SteppingOver(propagator, pictures.unlike)
    deciders = _deciders(segment, found)
    stranded: set[int] = set()
    if found:
        _report_cuts(segment, found)
        stranded = {f for picture in past_cuts(_span(segment), [p.keyframe for p in segment.passes], found)
                    for f in picture if f in outputs}

    done: set[int] = set()

    def said(item: PropagatedFrame) -> PropagatedFrame:
        done.add(item.frame)
        return replace(item, past_cut=True) if item.frame in stranded else item

    needed = [p for p in (_needed(p, [f for f in segment.outputs if p.keyframe in deciders[f]], found)
                          for p in segment.passes) if p is not None]
    # a pass cut short to its own keyframe (a cut right after it) has nothing to propagate:
    # running it would fine-tune and memorise for a frame that keeps its trimap anyway
    live = [p for p in needed if len(p.frames) > 1]
    yield from _ensemble(propagator, frames, keyframes, segment, live, deciders, outputs, said, workdir)
    for pass_ in needed:
        if len(pass_.frames) == 1 and pass_.keyframe in outputs and pass_.keyframe not in done:
            yield said(_keyed(pass_.keyframe, keyframes))


class _SteppingOver:
    """``propagator`` with passes that step over the frames ``over`` (:attr:`Pictures.unlike`):
    from the frame before one straight to the frame after it, the frame stepped over taking
    the result of the frame before it in the pass."""

    def __init__(self, propagator: Propagator, over: Iterable[int]) -> None:
        self.propagator = propagator
        self.over = set(over)

    @property
    def tuned_key(self) -> str | None:
        """The wrapped propagator's (fine-tuned STM weights in use)."""
        return getattr(self.propagator, "tuned_key", None)

    def run_pass(
        self, frames: FrameSource, keyframes: Mapping[int, np.ndarray], pass_: Pass
    ) -> Iterator[tuple[int, np.ndarray]]:
        after: dict[int, list[int]] = {}  # frame of the pass -> the frames stepped over right after it
        kept = [pass_.frames[0]]
        for frame in pass_.frames[1:]:
            if frame in self.over:
                after.setdefault(kept[-1], []).append(frame)
            else:
                kept.append(frame)
        for frame, probs in self.propagator.run_pass(frames, keyframes, replace(pass_, frames=tuple(kept))):
            yield frame, probs
            for skipped in after.get(frame, ()):
                yield skipped, probs


def _ensemble(
    propagator: Propagator,
    frames: FrameSource,
    keyframes: Mapping[int, np.ndarray],
    segment: Segment,
    live: Sequence[Pass],
    deciders: Mapping[int, tuple[int, ...]],
    outputs: set[int],
    said: Callable[[PropagatedFrame], PropagatedFrame],
    workdir: str | Path | None,
) -> Iterator[PropagatedFrame]:
    """Run the ``live`` passes of ``segment`` (none, one or two) and yield the output frames
    they decide, each through ``said``."""
    shape = (frames.height, frames.width)
    if not live:
        return

    def tuned(*keys: str | None) -> tuple[str, ...]:
        """The tunings of the passes that decided a frame (code review of the network loop: each
        frame recorded the latest, the second pass's, and the first's file was deleted)."""
        return tuple(sorted({k for k in keys if k is not None}))

    def now() -> str | None:
        return getattr(propagator, "tuned_key", None)

    if len(live) == 1:
        for frame, probs in propagator.run_pass(frames, keyframes, live[0]):
            if frame in outputs:
                yield said(_decide(frame, _check(frame, probs, shape).astype(np.float32), keyframes,
                                   tuned=tuned(now())))
        return
    first, second = live
    with scratch_folder(workdir, "tcvom-ensemble") as buffer:  # a killed run's is removed by the next
        first_tuned: str | None = None
        for frame, probs in propagator.run_pass(frames, keyframes, first):
            first_tuned = now()  # tuned as the pass starts
            if frame in outputs and first.keyframe in deciders[frame]:
                _store(buffer / f"{frame}.u8", _check(frame, probs, shape))
        for frame, probs in propagator.run_pass(frames, keyframes, second):
            if frame not in outputs or second.keyframe not in deciders[frame]:
                continue
            if len(deciders[frame]) == 1:  # the other pass crossed a cut to reach it
                yield said(_decide(frame, _check(frame, probs, shape).astype(np.float32), keyframes,
                                   tuned=tuned(now())))
                continue
            weights = {p.keyframe: w for p, w in segment.weights(frame)}
            total = _check(frame, probs, shape).astype(np.float32) * weights.get(second.keyframe, 0.0)
            stored = buffer / f"{frame}.u8"
            disagree = None
            if stored.exists():
                earlier = _load(stored, shape)
                total += earlier.astype(np.float32) * weights.get(first.keyframe, 0.0)
                disagree = disagreement(earlier, probs)
                stored.unlink()
            both = tuned(first_tuned, now()) if disagree is not None else tuned(now())  # (none stored: not the first pass)
            yield said(_decide(frame, total, keyframes, disagree, tuned=both))
        for frame in sorted(outputs):  # frames only the first pass decides
            stored = buffer / f"{frame}.u8"
            if stored.exists():
                yield said(_decide(frame, _load(stored, shape).astype(np.float32), keyframes,
                                   tuned=tuned(first_tuned)))
                stored.unlink()


def check_keyframes(frames: FrameSource, keyframes: Mapping[int, np.ndarray], sources: Mapping[int, Path] | None = None) -> None:
    """Keyframe trimaps must match the plate's size, lie in its frame range and hold
    foreground and background (:func:`tcvom.io.trimap.check_keyframe_classes`; a single
    keyframe without one of them is a warning)."""
    members = set(frames.frame_numbers)
    for frame, tri in keyframes.items():
        path = None if sources is None else sources.get(frame)
        if frame not in members:
            raise InputError(
                f"keyframe {frame} lies outside the plate's frames {frames.frame_numbers[0]}-{frames.frame_numbers[-1]}",
                path=path,
                frame=frame,
            )
        if tri.shape != (frames.height, frames.width):
            raise FrameSizeError(
                f"the keyframe trimap is {tri.shape[1]}x{tri.shape[0]}, the plate is {frames.width}x{frames.height}",
                path=path,
                frame=frame,
            )
    for warning in check_keyframe_classes(dict(keyframes), dict(sources or {})):
        log.warning("%s", warning)


def read_order(propagator: Propagator, keyframes: Mapping[int, np.ndarray], segments: Iterable[Segment],
               shot: Sequence[int], *, cuts: bool = True) -> list[int]:
    """The plate frames :func:`propagate` reads for ``segments`` of the ``shot`` (the
    plate's frame numbers), in the order it reads
    them (for :class:`~tcvom.io.overlap.ReadAhead`): with ``cuts``, a segment's frames
    (and a frame more on either side) once to find its cuts, then each pass's, a frame
    reached by two passes once for each. A pass cut short at a cut reads fewer: the frames
    read ahead for the rest (at most the read-ahead depth) are dropped. A propagator that
    reads more than the frames of each pass in order says so with its own
    ``read_order(keyframes, pass_)``."""
    reads = getattr(propagator, "read_order", None)
    order: list[int] = []
    for segment in segments:
        around = _context(shot, _span(segment))
        if cuts and len(around) >= 3:
            order.extend(around)
        for pass_ in segment.passes:
            order.extend(reads(keyframes, pass_) if reads is not None else pass_.frames)
    return order


def propagate(
    propagator: Propagator,
    frames: FrameSource,
    keyframes: Mapping[int, np.ndarray],
    *,
    schedule: KeyframeSchedule | None = None,
    segments: Iterable[Segment] | None = None,
    workdir: str | Path | None = None,
    cuts: bool = True,
) -> Iterator[PropagatedFrame]:
    """Propagate ``keyframes`` over every frame of ``frames`` (or the given segments);
    ``cuts`` as in :func:`propagate_segment`."""
    if schedule is None:
        schedule = KeyframeSchedule(frames.frame_numbers, keyframes)
    for segment in schedule.segments if segments is None else segments:
        yield from propagate_segment(propagator, frames, keyframes, segment, workdir, cuts=cuts)
