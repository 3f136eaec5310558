"""The keyframe scheduler shared by every trimap propagator (STM and optical flow).

It reproduces the part structure of the reference trimap propagation (TCVOM-TGM,
``ensemble.py``; see ``shared/reference/STM_NOTES.md``):

- before the first keyframe g_0: one pass backward from g_0 to the first frame;
- between consecutive keyframes g_i < g_j: a forward pass g_i .. g_j-1 and a backward
  pass g_j .. g_i+1, both seeded by the two keyframes;
- after the last keyframe: one pass forward to the last frame.

A pass gives each frame a confidence ``1 - position / length`` that falls with the
distance from the pass's keyframe. A frame reached by one pass takes that pass's result
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
        """The pass's confidence at ``frame``: 1 at its keyframe, falling linearly."""
        position = abs(frame - self.keyframe)
        if frame not in self.frames:
            raise KeyError(f"frame {frame} is not reached by the pass from keyframe {self.keyframe}")
        return 1.0 - position / self.length


@dataclass(frozen=True)
class Segment:
    """Passes that together decide the frames ``outputs`` (inclusive range, ascending)."""

    first: int
    last: int
    passes: tuple[Pass, ...]

    @property
    def outputs(self) -> range:
        return range(self.first, self.last + 1)

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
    """The passes and segments that propagate ``keyframes`` over frames ``first..last``.

    Keyframes may be given in any order; each must lie inside the shot and appear once.
    """

    def __init__(self, first: int, last: int, keyframes: Iterable[int]) -> None:
        if last < first:
            raise InputError(f"the frame range {first}-{last} is empty")
        given = list(keyframes)
        if not given:
            raise InputError("no keyframe trimap was given", hint="give at least one keyframe")
        duplicates = sorted({k for k in given if given.count(k) > 1})
        if duplicates:
            raise InputError(
                f"keyframe(s) {', '.join(map(str, duplicates))} given more than once",
                hint="give one trimap per keyframe",
            )
        outside = sorted(k for k in given if not first <= k <= last)
        if outside:
            raise InputError(
                f"keyframe(s) {', '.join(map(str, outside))} lie outside the frame range {first}-{last}",
                frame=outside[0],
            )
        self.first = first
        self.last = last
        self.keyframes: tuple[int, ...] = tuple(sorted(given))
        self.segments: tuple[Segment, ...] = tuple(self._plan())

    def _plan(self) -> Sequence[Segment]:
        keys = self.keyframes
        segments: list[Segment] = []
        g0, gm = keys[0], keys[-1]
        if g0 > self.first:
            head = Pass(g0, tuple(range(g0, self.first - 1, -1)), (g0,), g0 - self.first + 1)
            segments.append(Segment(self.first, g0, (head,)))
        for a, b in pairwise(keys):
            length = b - a
            forward = Pass(a, tuple(range(a, b)), (a, b), length)
            backward = Pass(b, tuple(range(b, a, -1)), (a, b), length)
            start = a if not segments else a + 1
            segments.append(Segment(start, b, (forward, backward)))
        if gm < self.last:
            tail = Pass(gm, tuple(range(gm, self.last + 1)), (gm,), self.last - gm + 1)
            start = gm if not segments else gm + 1
            segments.append(Segment(start, self.last, (tail,)))
        if not segments:  # a one-frame shot that is its own keyframe
            segments.append(Segment(g0, g0, (Pass(g0, (g0,), (g0,), 1),)))
        return segments

    @property
    def passes(self) -> tuple[Pass, ...]:
        return tuple(p for s in self.segments for p in s.passes)

    def segment_of(self, frame: int) -> Segment:
        """The segment whose outputs include ``frame``."""
        for segment in self.segments:
            if segment.first <= frame <= segment.last:
                return segment
        raise InputError(f"frame {frame} lies outside the shot {self.first}-{self.last}", frame=frame)

    def weights(self, frame: int) -> list[tuple[Pass, float]]:
        """Ensemble weights of the passes that decide ``frame`` (see :meth:`Segment.weights`)."""
        return self.segment_of(frame).weights(frame)
