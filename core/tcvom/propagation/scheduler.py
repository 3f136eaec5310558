"""The keyframe scheduler shared by every trimap propagator (STM and optical flow).

It reproduces the part structure of the reference trimap propagation (TCVOM-TGM,
``ensemble.py``; see ``shared/reference/STM_NOTES.md``):

- before the first keyframe g_0: one pass backward from g_0 to the first frame;
- between consecutive keyframes g_i < g_j: a forward pass from g_i up to the frame before
  g_j and a backward pass from g_j down to the frame after g_i, both seeded by the two
  keyframes;
- after the last keyframe: one pass forward to the last frame.

A shot is the sorted list of its frame numbers, and a pass steps through that list (the
shared neighbour rule of :mod:`tcvom.matting.window`): on a plate on twos the frame after
1001 is 1003, and a gap in the shot is stepped over. Positions and lengths count frames of
the shot, not frame numbers.

A pass gives each frame a confidence ``1 - position / length`` that falls with the
distance (in frames of the shot) from the pass's keyframe. A frame reached by one pass takes that pass's result
as it is; a frame reached by two is the confidence-weighted sum of both.

Passes are grouped into segments whose output frames partition the shot, so a
propagator can work one segment at a time (bounded memory on long shots, and one farm
task per segment).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from tcvom.errors import InputError
from tcvom.io.sequence import format_range
from tcvom.matting.window import shot_position


@dataclass(frozen=True)
class Pass:
    """One propagation pass: a keyframe and the frames it reaches, in processing order.

    ``frames[0]`` is the pass's own keyframe; ``memory_keyframes`` are the keyframes that
    seed the pass's memory (both ends of an interval, or the one keyframe at the ends of
    the shot); ``length`` is the reference's part length used for the confidence.
    """

    keyframe: int
    frames: tuple[int, ...]
    memory_keyframes: tuple[int, ...]
    length: int

    @property
    def direction(self) -> int:
        """+1 for a forward pass, -1 for a backward one, 0 for a one-frame pass."""
        if len(self.frames) < 2:
            return 0
        return 1 if self.frames[1] > self.frames[0] else -1

    def confidence(self, frame: int) -> float:
        """The pass's confidence at ``frame``: 1 at its keyframe, falling linearly with the
        number of shot frames between them."""
        if frame not in self.frames:
            raise KeyError(f"frame {frame} is not reached by the pass from keyframe {self.keyframe}")
        return 1.0 - self.frames.index(frame) / self.length


@dataclass(frozen=True)
class Segment:
    """Passes that together decide the frames ``outputs`` (frames of the shot, ascending)."""

    outputs: tuple[int, ...]
    passes: tuple[Pass, ...]

    @property
    def first(self) -> int:
        return self.outputs[0]

    @property
    def last(self) -> int:
        return self.outputs[-1]

    def weights(self, frame: int) -> list[tuple[Pass, float]]:
        """The passes that reach ``frame`` with their ensemble weights.

        One pass: weight 1 (its result is used as it is, as the reference does). Two
        passes: their confidences, which sum to 1 between two keyframes.
        """
        reaching = [p for p in self.passes if frame in p.frames]
        if not reaching:
            raise KeyError(f"frame {frame} is not in segment {self.first}-{self.last}")
        if len(reaching) == 1:
            return [(reaching[0], 1.0)]
        return [(p, p.confidence(frame)) for p in reaching]


class KeyframeSchedule:
    """The passes and segments that propagate ``keyframes`` over the shot ``frames``.

    ``frames`` are the shot's frame numbers (any order; a ``range`` for a shot on ones).
    Keyframes may be given in any order; each must be a frame of the shot and appear once.
    """

    def __init__(self, frames: Iterable[int], keyframes: Iterable[int]) -> None:
        shot = sorted({int(f) for f in frames})
        if not shot:
            raise InputError("the shot has no frames")
        given = list(keyframes)
        if not given:
            raise InputError("no keyframe trimap was given", hint="give at least one keyframe")
        duplicates = sorted({k for k in given if given.count(k) > 1})
        if duplicates:
            raise InputError(
                f"keyframe(s) {', '.join(map(str, duplicates))} given more than once",
                hint="give one trimap per keyframe",
            )
        members = set(shot)
        outside = sorted(k for k in given if k not in members)
        if outside:
            raise InputError(
                f"keyframe(s) {', '.join(map(str, outside))} lie outside the frame range {format_range(shot)} of the shot",
                frame=outside[0],
            )
        self.frame_numbers: tuple[int, ...] = tuple(shot)
        self.first = shot[0]
        self.last = shot[-1]
        self.keyframes: tuple[int, ...] = tuple(sorted(given))
        self.segments: tuple[Segment, ...] = tuple(self._plan())

    def _plan(self) -> Sequence[Segment]:
        shot = self.frame_numbers
        at = [shot_position(k, shot) for k in self.keyframes]
        segments: list[Segment] = []
        i0, im = at[0], at[-1]
        g0 = shot[i0]
        if i0 > 0:
            head = Pass(g0, shot[i0::-1], (g0,), i0 + 1)
            segments.append(Segment(shot[: i0 + 1], (head,)))
        for ia, ib in pairwise(at):
            a, b = shot[ia], shot[ib]
            forward = Pass(a, shot[ia:ib], (a, b), ib - ia)
            backward = Pass(b, shot[ib:ia:-1], (a, b), ib - ia)
            start = ia if not segments else ia + 1
            segments.append(Segment(shot[start : ib + 1], (forward, backward)))
        if im < len(shot) - 1:
            tail = Pass(shot[im], shot[im:], (shot[im],), len(shot) - im)
            start = im if not segments else im + 1
            segments.append(Segment(shot[start:], (tail,)))
        if not segments:  # a one-frame shot that is its own keyframe
            segments.append(Segment((g0,), (Pass(g0, (g0,), (g0,), 1),)))
        return segments

    @property
    def passes(self) -> tuple[Pass, ...]:
        return tuple(p for s in self.segments for p in s.passes)

    def segment_of(self, frame: int) -> Segment:
        """The segment whose outputs include ``frame``."""
        for segment in self.segments:
            if frame in segment.outputs:
                return segment
        raise InputError(f"frame {frame} is not a frame of the shot {format_range(list(self.frame_numbers))}",
                         frame=frame)

    def weights(self, frame: int) -> list[tuple[Pass, float]]:
        """Ensemble weights of the passes that decide ``frame`` (see :meth:`Segment.weights`)."""
        return self.segment_of(frame).weights(frame)


def segment_seeds(segment: Segment, keyframes: Iterable[int], shot_wide: bool) -> list[int]:
    """The keyframes that seed a segment's trimaps: its passes' memory keyframes, or every
    keyframe where they are shot-wide (the network fine-tuned on the whole shot). Each
    trimap's record keeps them (``seeds``): the review tells by them a trimap that the
    keyframes as they are now would seed otherwise (:func:`tcvom.review.doubt.trimaps_behind`)."""
    return sorted(keyframes) if shot_wide else sorted({k for p in segment.passes for k in p.memory_keyframes})
