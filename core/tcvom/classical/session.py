"""The classical matting session: per-frame pymatting alpha, then temporal aggregation.

One session per shot. Frame t is matted from the shared neighbour window (previous, t,
next) of the shot's frame list (:func:`tcvom.matting.window.neighbour_window`, mirrored at
the ends; a plate on twos or with a gap steps over the frames it lacks): each
frame's per-frame alpha (:class:`~tcvom.classical.solve.AlphaSolver`) and each pair's
DIS flows are computed once and held in bounded frame-indexed caches that are evicted
explicitly as the window moves, so a sequential run costs one solve and one flow pair
per frame.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from tcvom.classical.flow import FlowEstimator, unreliable_mask, warp
from tcvom.classical.solve import AlphaSolver
from tcvom.classical.temporal import AlignedNeighbour, TemporalAggregator
from tcvom.errors import FrameSizeError, InputError
from tcvom.io.sequence import format_range
from tcvom.io.sources import FrameReader, TrimapSource
from tcvom.io.trimap import UNKNOWN
from tcvom.matting.window import FrameCache, first_reads, neighbour_window


@dataclass
class _FrameData:
    image: np.ndarray
    trimap: np.ndarray
    alpha: np.ndarray
    gray: np.ndarray | None = None


@dataclass
class Timings:
    """Seconds spent in each stage since the session was made (for the benchmark)."""

    read: float = 0.0
    solve: float = 0.0
    flow: float = 0.0
    aggregate: float = 0.0
    counts: dict[str, int] = field(default_factory=lambda: {"solve": 0, "flow": 0, "aggregate": 0})


class ClassicalSession:
    """Alpha for every frame of a shot from its frames and trimaps, no weights needed.

    ``temporal=False`` skips the temporal step (and all flow), giving the per-frame
    alpha. ``solver``, ``aggregator`` and ``flow`` replace the default
    :class:`AlphaSolver`, :class:`TemporalAggregator` and :class:`FlowEstimator`;
    ``method`` (``cf`` or ``lbdm``) picks the default solver's pymatting method.
    """

    def __init__(
        self,
        frames: FrameReader,
        trimaps: TrimapSource,
        *,
        temporal: bool = True,
        method: str = "cf",
        solver: AlphaSolver | None = None,
        aggregator: TemporalAggregator | None = None,
        flow: FlowEstimator | None = None,
    ) -> None:
        self.frames = frames
        self.trimaps = trimaps
        self.temporal = temporal
        self.solver = solver if solver is not None else AlphaSolver(method=method)
        self.aggregator = aggregator if aggregator is not None else TemporalAggregator()
        self.flow = flow if flow is not None else FlowEstimator()
        self.frame_numbers = sorted(int(f) for f in frames.frame_numbers)
        if not self.frame_numbers:
            raise InputError("the shot has no frames")
        self._members = set(self.frame_numbers)
        self._frames: FrameCache[_FrameData] = FrameCache(capacity=3)
        # Flows of a pair of neighbours (f, g), f < g, keyed by f: (F_{f -> g}, F_{g -> f}).
        self._flows: FrameCache[tuple[np.ndarray, np.ndarray]] = FrameCache(capacity=2)
        self.timings = Timings()

    def _data(self, frame: int) -> _FrameData:
        data = self._frames.get(frame)
        if data is not None:
            return data
        start = time.perf_counter()
        image = np.asarray(self.frames.read(frame), dtype=np.float32)
        trimap = np.asarray(self.trimaps.read(frame))
        if image.ndim != 3 or image.shape[2] != 3:
            raise InputError(f"a frame must be H x W x 3, got shape {image.shape}", frame=frame)
        if trimap.shape != image.shape[:2]:
            raise FrameSizeError(
                f"the trimap has shape {trimap.shape}, the frame is {image.shape[1]} x {image.shape[0]}",
                frame=frame,
                hint="trimaps must have the plate's resolution",
            )
        if (trimap == UNKNOWN).all():  # the solver needs known pixels; name the trimap file
            where = getattr(self.trimaps, "path", None)
            made = getattr(self.trimaps, "made_by_tcvom", None)
            if callable(made) and made(frame):
                raise InputError("the trimap propagated to this frame is unknown everywhere: the keyframes' "
                                 "foreground and background did not reach it", path=where(frame) if callable(where)
                                 else None, frame=frame,
                                 hint="add a keyframe at or near this frame, with more foreground and background "
                                      "painted in the keyframes")
            raise InputError("the trimap is unknown everywhere; the classical method needs some known pixels",
                             path=where(frame) if callable(where) else None, frame=frame,
                             hint="paint foreground or background into it, or use --method tcvom")
        mid = time.perf_counter()
        alpha = self.solver(image, trimap, frame=frame)
        end = time.perf_counter()
        self.timings.read += mid - start
        self.timings.solve += end - mid
        self.timings.counts["solve"] += 1
        data = _FrameData(image, trimap, alpha)
        self._frames.put(frame, data)
        return data

    def _pair(self, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        """(F_{a -> b}, F_{b -> a}) for neighbouring frames a and b."""
        lo, hi = min(a, b), max(a, b)
        flows = self._flows.get(lo)
        if flows is None:
            start = time.perf_counter()
            dlo, dhi = self._data(lo), self._data(hi)
            for d in (dlo, dhi):
                if d.gray is None:
                    d.gray = self.flow.prepare(d.image)
            shape = dlo.image.shape[:2]
            assert dlo.gray is not None and dhi.gray is not None
            flows = (
                self.flow.flow_prepared(dlo.gray, dhi.gray, shape),
                self.flow.flow_prepared(dhi.gray, dlo.gray, shape),
            )
            self.timings.flow += time.perf_counter() - start
            self.timings.counts["flow"] += 1
            self._flows.put(lo, flows)
        return flows if a == lo else (flows[1], flows[0])

    def per_frame_alpha(self, frame: int) -> np.ndarray:
        """The per-frame alpha (before the temporal step): float32 ``H x W`` in [0, 1]."""
        self._check(frame)
        return self._data(frame).alpha

    def alpha(self, frame: int) -> np.ndarray:
        """The alpha of ``frame``: float32 ``H x W`` in [0, 1], exact 0 / 1 where its trimap
        is known."""
        self._check(frame)
        prev, _, nxt = neighbour_window(frame, self.frame_numbers)
        window = {prev, frame, nxt}
        self._frames.evict_outside(window)
        self._flows.evict_outside({min(frame, n) for n in window if n != frame})
        data = self._data(frame)
        if not self.temporal or frame == prev:
            return data.alpha.copy()
        unknown = data.trimap == UNKNOWN
        if not unknown.any():
            return data.alpha.copy()
        neighbours = []
        for n in sorted({prev, nxt}):
            other = self._data(n)
            flow_tn, flow_nt = self._pair(frame, n)
            start = time.perf_counter()
            valid = ~unreliable_mask(flow_tn, flow_nt)
            neighbours.append(
                AlignedNeighbour(image=warp(other.image, flow_tn), alpha=warp(other.alpha, flow_tn), valid=valid)
            )
            self.timings.aggregate += time.perf_counter() - start
        start = time.perf_counter()
        out = self.aggregator(data.image, data.alpha, unknown, neighbours)
        self.timings.aggregate += time.perf_counter() - start
        self.timings.counts["aggregate"] += 1
        return out

    def read_order(self, frames: Iterable[int]) -> list[int]:
        """The frames (plate and trimap) :meth:`alphas` reads for ``frames``, in the order
        it reads them (for :class:`~tcvom.io.overlap.ReadAhead`): the frame, then its
        neighbours in frame order."""

        def reads(frame: int) -> list[int]:
            if not self.temporal:
                return [frame]
            return [frame, *sorted(set(neighbour_window(frame, self.frame_numbers)) - {frame})]

        return first_reads(frames, reads)

    def alphas(self, frames: Iterable[int] | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """``(frame, alpha)`` for ``frames`` (default: the whole shot) in the order given."""
        wanted = self.frame_numbers if frames is None else frames
        for frame in wanted:
            yield frame, self.alpha(frame)

    def _check(self, frame: int) -> None:
        if frame not in self._members:
            raise InputError(
                f"frame {frame} is not in the shot ({format_range(self.frame_numbers)})", frame=frame
            )
