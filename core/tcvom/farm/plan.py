"""The farm tasks of a shot: its keyframe segments (trimap tasks) and frame chunks
(matte tasks), worked out from file names alone (no image is read), or only those an
edit touched (``computed``, from :func:`tcvom.pipeline.jobs.plan_touched`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tcvom.errors import InputError, check_whole, shown
from tcvom.farm.chunks import chunk_ranges, select_frames, with_neighbours
from tcvom.io import open_frames, open_trimaps
from tcvom.io.sequence import format_range, frame_selection, parse_frame_range
from tcvom.io.sources import TrimapSpecs, trimap_specs
from tcvom.propagation.scheduler import KeyframeSchedule

DEFAULT_CHUNK = 10


@dataclass(frozen=True)
class ShotPlan:
    """``segments``: ``(index, frames)`` of the keyframe segments a job needs (trimap
    tasks, ``--segment INDEX``); ``chunks``: ``--frames`` ranges of the matte tasks."""

    shot: str
    keyframes: str
    segments: tuple[tuple[int, str], ...]
    chunks: tuple[str, ...]

    @property
    def segment_range(self) -> str:
        """The segment indices as a range (``0-2``), e.g. for a farm's task parameter
        (empty when there is none)."""
        return format_range([i for i, _ in self.segments]) if self.segments else ""

    @property
    def matte_frames(self) -> str:
        """The frames of the matte chunks as a range (empty when there is none)."""
        frames = [f for c in self.chunks for f in parse_frame_range(c)]
        return format_range(frames) if frames else ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "shot": self.shot,
            "keyframes": self.keyframes,
            "segments": [{"index": i, "frames": f} for i, f in self.segments],
            "segment_range": self.segment_range,
            "chunks": list(self.chunks),
            "matte_frames": self.matte_frames,
        }


def plan_shot(
    plate: str | Path,
    keyframes: TrimapSpecs,
    *,
    frames: str | int | Sequence[int] | None = None,
    shot_range: str | int | Sequence[int] | None = None,
    chunk: int = DEFAULT_CHUNK,
    computed: Mapping[str, Sequence[int]] | None = None,
) -> ShotPlan:
    """The trimap segments and matte chunks that make the ``frames`` of a shot; with
    ``computed`` (``{"trimaps": frames, "alpha": frames}`` a rerun would compute, see
    :func:`tcvom.pipeline.jobs.plan_touched`) only the segments and chunks holding them."""
    check_whole(chunk, "the chunk size", 1, unit=" frame")  # before any file is read
    specs = trimap_specs(keyframes, "keyframe trimaps")
    source = open_frames(plate, shot_range)
    shot = list(source.frame_numbers)
    selection = select_frames(frames, shot)
    keys = open_trimaps(specs, what="keyframe trimap", contiguous=False, plate=source)
    schedule = KeyframeSchedule(shot, keys.frame_numbers)
    needed = set(with_neighbours(selection, shot))
    mattes = selection
    if computed is not None:
        computed = _computed(computed, shot)
        needed = set(computed.get("trimaps", ()))
        mattes = sorted(set(computed.get("alpha", ())))
    segments = tuple(
        (i, format_range(list(s.outputs))) for i, s in enumerate(schedule.segments) if needed.intersection(s.outputs)
    )
    return ShotPlan(format_range(shot), format_range(list(schedule.keyframes)), segments,
                    tuple(chunk_ranges(mattes, chunk, shot)) if mattes else ())


def _computed(computed: object, shot: Sequence[int]) -> dict[str, list[int]]:
    """``computed`` checked: a mapping of "trimaps" and "alpha" to frames of the shot (a key
    of another name planned nothing, a frame outside the shot a chunk of it, a stage's
    ``{"computed": ...}`` lists a TypeError)."""
    if not isinstance(computed, Mapping) or not set(computed) <= {"trimaps", "alpha"}:
        raise InputError(f"computed must map 'trimaps' and 'alpha' to the frames a rerun computes, not "
                         f"{shown(computed)}", hint="give {stage: result.stages[stage]['computed']} of a plan")
    members = set(shot)
    checked = {}
    for stage, frames in computed.items():
        empty = isinstance(frames, Sequence) and not isinstance(frames, str) and len(frames) == 0
        numbers = [] if empty else frame_selection(frames, what=f"computed[{stage!r}] frame")
        outside = [f for f in numbers if f not in members]
        if outside:
            raise InputError(f"computed[{stage!r}] names frame(s) {format_range(outside)}, outside the shot "
                             f"{format_range(list(shot))}")
        checked[stage] = numbers
    return checked
