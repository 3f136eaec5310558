"""Frame selections, chunks and the frames a chunk reads around itself.

A farm task works on a *selection* of the shot's frames (``--frames``, fileseq syntax);
the shot itself (``--shot-range``, default: every plate frame on disk) fixes which frames
are neighbours, so a chunk reads one frame of pre-roll and post-roll and its first and
last frames are matted exactly as in a run over the whole shot.
"""

from __future__ import annotations

from collections.abc import Sequence

from tcvom.errors import InputError, check_whole
from tcvom.io.sequence import format_range, frame_selection
from tcvom.matting.window import neighbour_window


def select_frames(frames: str | int | Sequence[int] | None, shot: Sequence[int], *, what: str = "--frames") -> list[int]:
    """The selected frames (sorted); all of ``shot`` without a selection.

    Raises:
        InputError: a selected frame is not a frame of the shot.
    """
    members = list(shot)
    if frames is None:
        return members
    selected = frame_selection(frames, what=what)
    inside = set(members)
    outside = [f for f in selected if f not in inside]
    if outside:
        raise InputError(
            f"{what} {format_range(selected)} reaches beyond the shot {format_range(members)}: "
            f"frame(s) {format_range(outside)} are not in it",
            frame=outside[0],
            hint="choose frames of the plate, or widen --shot-range",
        )
    return selected


def with_neighbours(selection: Sequence[int], shot: Sequence[int]) -> list[int]:
    """``selection`` plus the neighbours its frames are matted with (the pre-roll and
    post-roll of a chunk), as frames of ``shot`` (sorted; mirrored at the shot's ends)."""
    members = sorted(shot)
    needed: set[int] = set()
    for frame in selection:
        try:
            needed.update(neighbour_window(frame, members))
        except ValueError:
            raise InputError(f"frame {frame} is not in the shot {format_range(members)}", frame=frame) from None
    return sorted(needed)


def split(frames: Sequence[int], size: int, shot: Sequence[int]) -> list[list[int]]:
    """Chunks of at most ``size`` frames, each a run of consecutive frames *of the shot's
    list* (a plate on twos chunks as ``1001-1009x2``); a frame of the shot left out of
    ``frames`` ends a chunk."""
    check_whole(size, "the chunk size", 1, unit=" frame")
    members = sorted(shot)
    chunks: list[list[int]] = []
    for frame in sorted(set(frames)):
        if chunks and len(chunks[-1]) < size and neighbour_window(chunks[-1][-1], members)[2] == frame:
            chunks[-1].append(frame)
        else:
            chunks.append([frame])
    return chunks


def chunk_ranges(frames: Sequence[int], size: int, shot: Sequence[int]) -> list[str]:
    """:func:`split` as fileseq range strings (``1001-1010``), ready for ``--frames``."""
    return [format_range(c) for c in split(frames, size, shot)]
