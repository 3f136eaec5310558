"""The neighbour rule and the bounded frame cache shared by every matting session, the
trimap scheduler and the farm chunks.

A shot is the sorted list of its frame numbers (a plate on twos is ``1001, 1003, ...``; a
shot with a gap skips frames). The neighbours of a frame are the previous and next frames
*of that list*, never ``frame - 1`` and ``frame + 1``. Frame t is matted from the window
(previous, t, next). At the ends of the shot the window is mirrored as in the reference
implementation: the first frame uses (next, t, next), the last (previous, t, previous); a
one-frame shot uses the frame as its own neighbours.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


def shot_position(frame: int, shot: Sequence[int]) -> int:
    """The index of ``frame`` in ``shot`` (sorted frame numbers; a list or a range).

    Raises:
        ValueError: ``frame`` is not a frame of the shot.
    """
    i = bisect_left(shot, frame)
    if i == len(shot) or shot[i] != frame:
        span = f"{shot[0]}-{shot[-1]}" if len(shot) else "empty"
        raise ValueError(f"frame {frame} is not a frame of the shot ({span}, {len(shot)} frames)")
    return i


def neighbour_window(frame: int, shot: Sequence[int]) -> tuple[int, int, int]:
    """(previous, frame, next) for ``frame`` in ``shot`` (sorted frame numbers), mirrored at
    the ends: the previous and next frames of the shot's list, whatever their numbers."""
    i = shot_position(frame, shot)
    if len(shot) == 1:
        return (frame, frame, frame)
    prev = shot[i - 1] if i > 0 else shot[i + 1]
    nxt = shot[i + 1] if i < len(shot) - 1 else shot[i - 1]
    return (prev, frame, nxt)


def first_reads(frames: Iterable[int], reads: Callable[[int], Iterable[int]]) -> list[int]:
    """The frames a session reads to matte ``frames`` in that order, each once, in the
    order it first needs them: ``reads(frame)`` lists what matting ``frame`` reads, in its
    order. A session whose cache keeps a window reads each frame once on such a pass; this
    is its ``read_order`` (what :class:`tcvom.io.overlap.ReadAhead` reads ahead)."""
    order: list[int] = []
    seen: set[int] = set()
    for frame in frames:
        for needed in reads(frame):
            if needed not in seen:
                seen.add(needed)
                order.append(needed)
    return order


class FrameCache(Generic[T]):
    """A frame-indexed cache that holds at most ``capacity`` entries.

    Eviction is explicit: :meth:`evict_outside` drops everything a window no longer
    needs. :meth:`put` on a full cache drops the entry farthest from the new frame, so
    the bound holds even if a caller forgets to evict.
    """

    def __init__(self, capacity: int = 3) -> None:
        if capacity < 1:
            raise ValueError("a frame cache needs room for at least one entry")
        self.capacity = capacity
        self._items: OrderedDict[int, T] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, frame: object) -> bool:
        return frame in self._items

    def __iter__(self) -> Iterator[int]:
        return iter(list(self._items))

    def get(self, frame: int) -> T | None:
        item = self._items.get(frame)
        if item is None:
            self.misses += 1
        else:
            self.hits += 1
        return item

    def put(self, frame: int, item: T) -> None:
        if frame not in self._items and len(self._items) >= self.capacity:
            farthest = max(self._items, key=lambda f: abs(f - frame))
            del self._items[farthest]
        self._items[frame] = item

    def evict_outside(self, keep: set[int] | tuple[int, ...]) -> list[int]:
        """Drop every entry whose frame is not in ``keep``; returns the dropped frames."""
        wanted = set(keep)
        dropped = [f for f in self._items if f not in wanted]
        for frame in dropped:
            del self._items[frame]
        return dropped

    def clear(self) -> None:
        self._items.clear()
