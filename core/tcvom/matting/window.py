"""The neighbour-window policy and the bounded frame cache shared by every matting session.

Frame t is matted from the window (t-1, t, t+1). At the ends of the shot the window is
mirrored as in the reference implementation: the first frame uses (t+1, t, t+1), the last
(t-1, t, t-1); a one-frame shot uses the frame as its own neighbours.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


def neighbour_window(frame: int, first: int, last: int) -> tuple[int, int, int]:
    """(previous, frame, next) for ``frame`` in the shot ``first..last``, mirrored at the ends."""
    if not first <= frame <= last:
        raise ValueError(f"frame {frame} lies outside the shot {first}-{last}")
    if first == last:
        return (frame, frame, frame)
    prev = frame - 1 if frame > first else frame + 1
    nxt = frame + 1 if frame < last else frame - 1
    return (prev, frame, nxt)


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
