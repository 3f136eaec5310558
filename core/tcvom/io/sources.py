"""Frame and trimap sources: the only places (with the writers) that read files.

Every source is streamed: nothing is read until a frame is asked for, and nothing is
kept after it is returned, so memory does not grow with the length of a shot.
"""

from __future__ import annotations

import bisect
import functools
import logging
import math
import numbers
import os
import re
import shlex
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar, runtime_checkable

import numpy as np

from tcvom.errors import (
    FrameSizeError,
    InputError,
    MissingFrameError,
    ReadError,
    check_text,
    command_word,
    shown,
)
from tcvom.io import trimap as trimaps
from tcvom.io.colour import ColourConverter, interop_id
from tcvom.io.hashing import as_recorded
from tcvom.io.images import (
    BEAUTY_PARTS,
    FLOAT_FORMATS,
    ImageInfo,
    colour_layers,
    image_info,
    picture_window,
    placed_on,
    read_image,
)
from tcvom.io.sequence import (
    ImageSequence,
    format_range,
    frame_number,
    frame_selection,
    is_pattern,
    path_text,
    refuse_movie,
)
from tcvom.matting.window import FrameCache

if TYPE_CHECKING:
    import av

log = logging.getLogger("tcvom")

MOVIE_SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm", ".mxf",
                            ".ts", ".mts", ".m2ts", ".mpg", ".mpeg", ".vob",  # MPEG streams: camera AVCHD, DVD
                            ".3gp", ".3g2", ".flv", ".wmv", ".asf", ".dv", ".y4m"})  # phones, web, DV, raw YUV


def is_movie(path: str | Path) -> bool:
    """Whether the plate ``path`` is a movie: by its suffix, and an animated GIF or PNG (one
    file of several pictures, which an image reader reads the first of; a sequence of them,
    or one of a single picture, is images)."""
    suffix = Path(path).suffix.lower()
    if suffix in MOVIE_SUFFIXES:
        return True
    if suffix not in (".gif", ".png", ".apng") or is_pattern(str(path)) or not Path(path).is_file():
        return False
    from tcvom.io.images import picture_count

    return picture_count(path) > 1


@runtime_checkable
class FrameReader(Protocol):
    """Frames (or trimaps) by frame number: sorted ``frame_numbers`` and ``read(frame)``.

    The one reader interface of tcvom: every source here fits it, and so does
    :class:`ArrayFrames` (arrays already in memory); sessions and propagators take it.
    """

    frame_numbers: list[int]

    def read(self, frame: int) -> np.ndarray: ...


class FrameSource(FrameReader, Protocol):
    """A shot's frames: ``read(frame)`` -> float32 ``H x W x 3`` sRGB in [0, 1], and their size."""

    width: int
    height: int


class TrimapSource(FrameReader, Protocol):
    """A shot's keyframe or per-frame trimaps: ``read(frame)`` -> uint8 ``H x W`` holding
    0 / 128 / 255 (:mod:`tcvom.io.trimap`)."""


class _Numbered:
    """Something with sorted ``frame_numbers``: its first and last frame and its length."""

    frame_numbers: list[int]

    @property
    def first(self) -> int:
        return self.frame_numbers[0]

    @property
    def last(self) -> int:
        return self.frame_numbers[-1]

    def __len__(self) -> int:
        return len(self.frame_numbers)


class ArrayFrames(_Numbered):
    """Frames (or trimaps) already in memory: ``arrays`` maps frame number -> array, given
    back as is by :meth:`read`. For scripts and tests that hand arrays to a session."""

    def __init__(self, arrays: Mapping[int, np.ndarray]) -> None:
        self.arrays = arrays
        self.frame_numbers = sorted(arrays)

    def read(self, frame: int) -> np.ndarray:
        return self.arrays[frame]


class _Frames(_Numbered):
    width: int
    height: int
    origin: tuple[int, int] = (0, 0)
    """Where the frames' pixels start in the picture (a sequence's canvas, see :func:`tcvom.io.images.picture_window`)."""
    display: tuple[int, int, int, int] | None = None
    """A sequence's display window (x, y, width, height), None for movies."""
    pixel_aspect: float = 1.0
    """The pixel aspect (width / height of a pixel): a movie's, or a sequence's first frame's
    header's (each output EXR copies its own frame's, :func:`tcvom.io.images.image_layout`)."""
    colour: ColourConverter
    _recent: FrameCache[tuple[np.ndarray, bool]] | None = None

    def read(self, frame: int) -> np.ndarray:
        raise NotImplementedError

    def remember(self, capacity: int = 4) -> None:
        """Keep the file's pixels of the last ``capacity`` frames read, so that
        :meth:`linear` (RGBA output) reuses what a matting session has just read instead
        of reading and converting the frame again. Off by default (memory)."""
        self._recent = FrameCache(capacity)

    def _keep(self, frame: int, rgb: np.ndarray, is_float: bool) -> None:
        if self._recent is not None:
            self._recent.put(frame, (rgb.copy(), is_float))

    def _raw(self, frame: int) -> tuple[np.ndarray, bool]:
        """The frame's RGB as the file holds it, and whether the file is float."""
        raise NotImplementedError

    @property
    def linear_space(self) -> str:
        """The scene-linear colour space :meth:`linear` returns (see
        :meth:`~tcvom.io.colour.ColourConverter.linear_space`)."""
        return self.colour.linear_space(self._is_float)

    @property
    def linear_interop_id(self) -> str:
        """The colour interop id of :attr:`linear_space` (empty: the config gives none; see
        :func:`~tcvom.io.colour.interop_id`)."""
        return interop_id(self.linear_space, self.colour.config_name)

    @property
    def linear_chromaticities(self) -> tuple[float, ...] | None:
        """OpenEXR's ``chromaticities`` of :attr:`linear_space` (None: the config cannot say)."""
        return self.colour.chromaticities(self.linear_space)

    @property
    def linear_is_own(self) -> bool:
        """Whether :attr:`linear_space` is the plate's own colour space (scene-linear plates)."""
        return self.colour.keeps_space(self._is_float)

    _is_float: bool = False

    def keeps_primaries(self, frame: int) -> bool:
        """Whether an RGBA or layers EXR of ``frame`` keeps the plate's ``chromaticities``:
        it is written in the plate's own space, and those are that space's (a header that
        contradicts ``--input-colorspace`` is not copied beside the space's name)."""
        if not self.linear_is_own:
            return False
        primaries = self.header_primaries(frame)
        return not primaries or self.colour.describes(primaries, self.linear_space)

    def header_primaries(self, frame: int) -> tuple[float, ...]:
        """The ``chromaticities`` of ``frame``'s file (none for a movie)."""
        return ()

    def network_to_linear(self, rgb: np.ndarray) -> np.ndarray:
        """Display-referred sRGB (what the networks see and predict) -> :attr:`linear_space`."""
        return self.colour.from_network(rgb, self.linear_space)

    def linear_to_network(self, rgb: np.ndarray) -> np.ndarray:
        """:attr:`linear_space` -> display-referred sRGB in [0, 1] (a composite made in linear
        light, shown)."""
        return self.colour.to_network_from(rgb, self.linear_space)

    def linear(self, frame: int) -> np.ndarray:
        """float32 ``H x W x 3`` scene-linear RGB of ``frame`` in :attr:`linear_space`,
        never clamped: what RGBA output estimates the foreground from and writes."""
        kept = None if self._recent is None else self._recent.get(frame)
        rgb, is_float = kept if kept is not None else self._raw(frame)
        return self.colour.to_linear(rgb, is_float)

    def frames(self, selection: Sequence[int] | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(frame, image)`` one at a time."""
        for frame in selection if selection is not None else self.frame_numbers:
            yield frame, self.read(frame)

    def _check_frame(self, frame: int) -> None:
        if not isinstance(frame, numbers.Integral) or isinstance(frame, bool):  # "1001" is not 1001 (API QA)
            raise InputError(f"a frame number is a whole number, not {shown(frame)}")
        if frame not in self.frame_numbers:
            raise MissingFrameError(
                f"frame {frame} is not in the shot ({format_range(self.frame_numbers)})", frame=frame
            )


_P = ParamSpec("_P")
_R = TypeVar("_R")


class _Said:
    """Warnings about a plate file given, each once per job (NaN / infinite pixels: both
    stages of a run read every frame; a movie's rotation, a photo's orientation): within
    :func:`one_job` (each job of the Python API, on its own thread too), else once per
    process. Once per process, a second job in one process (a studio tool's) said none."""

    def __init__(self) -> None:
        self._job: ContextVar[set[str] | None] = ContextVar("tcvom_plate_warnings", default=None)
        self._process: set[str] = set()

    def _now(self) -> set[str]:
        said = self._job.get()
        return self._process if said is None else said

    def __contains__(self, key: str) -> bool:
        return key in self._now()

    def add(self, key: str) -> None:
        self._now().add(key)

    @contextmanager
    def job(self) -> Iterator[None]:
        if self._job.get() is not None:  # a stage of a run: the run's job
            yield
            return
        token = self._job.set(set())
        try:
            yield
        finally:
            self._job.reset(token)


_SAID = _Said()


def one_job(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """``function`` as one job whose plate warnings are said once each (:class:`_Said`)."""

    @functools.wraps(function)
    def job(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with _SAID.job():
            return function(*args, **kwargs)

    return job


def _first_look(plate: str | Path) -> bool:
    """Whether a plate with an alpha channel is opened for the first time in this job: its
    first frame's alpha is then checked (:func:`say_alpha`), so that a run reusing every frame
    says it too (code review: a host's second pull said nothing), once per job however often
    the plate is opened."""
    key = f"{Path(plate).absolute()}:alpha-checked"
    if key in _SAID:
        return False
    _SAID.add(key)
    return True


def say_alpha(plate: str | Path, frame: int, alpha: np.ndarray) -> None:
    """Warn (once per plate) of an alpha channel below 1 stored beside unpremultiplied colour
    (PNG, an unassociated TIFF, a movie with alpha): tcvom mattes the colour as stored, while a
    host that premultiplies such files on loading (Blender does) shows it darker under the
    matte, black where the alpha is 0 (Blender QA: a black composite, unsaid)."""
    said = f"{Path(plate).absolute()}:alpha"
    if said in _SAID:
        return
    low = float(np.min(alpha)) if alpha.size else 1.0
    if low > 1.0 - 0.5 / 255:  # opaque (a 10-bit movie's 1023 comes back as 0.99977)
        return
    _SAID.add(said)
    log.warning("%s: frame %d: its alpha channel is below 1 (down to %.3g): tcvom mattes the colour as stored and "
                "ignores the alpha (docs/io.md); a host that applies the alpha to the colour when it loads the file "
                "shows the colour darker under the matte, black where the alpha is 0", plate, frame, low)


def _grey(info: ImageInfo) -> bool:
    """Whether :func:`_rgb` reads the frame as grey (no R, G, B, and no colour layer)."""
    names = list(info.channels)
    return not {"R", "G", "B"} <= set(names) and not colour_layers(names)


def _rgb(pixels: np.ndarray, info: ImageInfo, frame: int) -> np.ndarray:
    """The colour channels of a plate frame, by name: R, G, B (alpha and other channels
    dropped), else the one layer that has them (``beauty.R``..., a multi-layer EXR with one
    colour layer, such as Blender's ``ViewLayer.Combined``); a grey image (Y, or Y and A) is
    repeated. Anything else (several colour layers, or none: depth, normals, a UV pass of R
    and G; 32-bit integer IDs; a multi-part EXR without an R, G, B part) is refused, not
    matted on whichever channels come first."""
    names = list(info.channels)
    if info.pixel_type in ("uint", "int", "uint32", "int32"):
        raise ReadError(
            f"the plate frame stores 32-bit integer channels ({', '.join(names[:8])}): an ID or index pass, not a "
            "picture", path=info.path, frame=frame, hint="give the beauty pass (half or float RGB) as the plate")
    if not info.part_clear:  # a multi-part EXR: which part is the picture?
        several = {"R", "G", "B"} <= set(names)  # the first of several R, G, B parts, none named as the beauty
        raise ReadError(
            ("the plate frame is a multi-part EXR with several parts of R, G, B channels, none of them named as "
             f"the beauty ({', '.join(BEAUTY_PARTS)})" if several else
             "the plate frame is a multi-part EXR with no part of R, G, B channels (the beauty)")
            + f": its parts are {'; '.join(info.parts[:8])}",
            path=info.path, frame=frame,
            hint=("name the beauty's part rgba (Nuke's Write does), or write the beauty as a file of its own "
                  "(oiiotool --subimage NAME)" if several else
                  "write the beauty as R, G, B in one of its parts, or as a file of its own (oiiotool --ch)"))
    if {"R", "G", "B"} <= set(names):
        return pixels[:, :, [names.index(c) for c in ("R", "G", "B")]]
    layers = colour_layers(names)
    if len(layers) == 1:
        return pixels[:, :, [names.index(f"{layers[0]}.{c}") for c in ("R", "G", "B")]]
    if not layers and names[0] in ("Y", "L", "R") and names[1:] in ([], ["A"]):
        return np.repeat(pixels[:, :, :1], 3, axis=2)
    if not layers and {"Y", "RY", "BY"} <= set(names):  # "grey Y" said of a file whose Y is only its luminance
        raise ReadError(
            f"the plate frame is an OpenEXR luminance/chroma image (channels {', '.join(names[:12])}), whose colour "
            "is stored as luminance Y and chroma RY, BY: tcvom reads R, G, B", path=info.path, frame=frame,
            hint="write the plate again as R, G, B (Nuke's Read and OpenEXR's RGBA interface convert luminance/chroma "
                 "to RGB; OpenImageIO reads the channels as stored)")
    found = f"colour layers {', '.join(layers)}" if layers else f"channels {', '.join(names[:12])}"
    raise ReadError(
        f"the plate frame has no single colour layer to matte (R, G, B, or a grey Y alone or with A): it has {found}",
        path=info.path,
        frame=frame,
        hint="write the beauty pass as R, G, B (or as the only colour layer), e.g. with oiiotool --ch",
    )


class SequenceFrames(_Frames):
    """A plate stored as an image sequence (EXR, DPX, TIFF, PNG, JPEG...), read with OpenImageIO."""

    def __init__(
        self,
        pattern: str | Path,
        frames: str | list[int] | None = None,
        *,
        colorspace: str | None = None,
        ocio_config: str | None = None,
        holes_hint: str | None = None,
    ) -> None:
        self.sequence = ImageSequence(pattern, frames, what="plate",
                                      **({"holes_hint": holes_hint} if holes_hint else {}))
        self.frame_numbers = self.sequence.frame_numbers
        wide = [f for f in (self.first, self.last) if not -(2**31) <= f < 2**31]
        if wide:  # the outputs' headers record each frame's number as a 32-bit integer (odd-inputs QA)
            raise InputError(f"frame {wide[0]} is beyond the frame numbers tcvom handles (-2147483648 to "
                             "2147483647: the outputs' headers hold 32-bit integers)", path=str(pattern),
                             frame=wide[0], hint="renumber the sequence (e.g. from 1001)")
        self.colour = ColourConverter(colorspace, ocio_config)
        info = image_info(self.sequence.path(self.first))
        say_orientation(info, "paint keyframes on the picture as stored")
        if info.unassociated and info.alpha >= 0 and _first_look(self.sequence.pattern):
            say_alpha(self.sequence.pattern, self.first, read_image(self.sequence.path(self.first), self.first)[0][
                :, :, info.alpha])
        said, how = header_colour(self.colour, info)
        if said is not None and f"{Path(info.path).absolute()}:colour" not in _SAID:
            _SAID.add(f"{Path(info.path).absolute()}:colour")
            taken = self.colour.source_for(info.is_float)
            log.warning("%s: its header says %s (%s); tcvom takes %s files as %r "
                        "(docs/io.md): if the header is right, pass --input-colorspace %s", info.path,
                        "other primaries" if said == "other primaries" else f"colour space {said!r}", how,
                        "floating-point" if info.is_float else "integer", taken,
                        shlex.quote(said) if self.colour.config.getColorSpace(said) is not None else
                        "NAME (the scan's log space, e.g. ADX10)" if info.log_transfer else "NAME")
        self.display = info.display
        self.pixel_aspect = info.pixel_aspect  # its EXR outputs copy the header's; PNG/TIFF ones are told (jobs)
        x, y, width, height = picture_window(info)
        self.width, self.height = width, height
        self.origin = (x, y)
        self._is_float = info.is_float
        self._is_grey = _grey(info)
        self.nonfinite: dict[int, int] = {}

    def header_primaries(self, frame: int) -> tuple[float, ...]:
        return image_info(self.path(frame)).chromaticities

    def _raw(self, frame: int) -> tuple[np.ndarray, bool]:
        self._check_frame(frame)
        path = self.path(frame)
        pixels, info = read_image(path, frame)
        rgb = _rgb(pixels, info, frame)
        self._check_type(path, frame, info)
        self._say_grey(path, frame, info)
        if info.unassociated and info.alpha >= 0:
            say_alpha(self.sequence.pattern, frame, pixels[:, :, info.alpha])
        return self._placed(path, frame, rgb, info), info.is_float

    def _check_type(self, path: Path, frame: int, info: ImageInfo) -> None:
        """Without ``--input-colorspace`` the colour space is the file type's (float: linear,
        integer: sRGB): a plate whose frames change type mid-shot would be read in two spaces,
        one of them wrongly, and stamped with the first frame's."""
        if info.is_float == self._is_float or self.colour.source is not None:
            return
        kinds = ("an integer", "a floating-point")
        raise InputError(
            f"the frame is {kinds[info.is_float]} file, the plate's first frame {kinds[self._is_float]} one: tcvom "
            "takes each type in its own colour space (float: scene-linear, integer: sRGB), so one of them would be "
            "read wrongly", path=path, frame=frame,
            hint="write the plate's frames alike, or name their colour space with --input-colorspace")

    def _say_grey(self, path: Path, frame: int, info: ImageInfo) -> None:
        """Warn (once per file) of a grey frame in a colour plate, or a colour one in a grey
        plate: likely another pass rendered into the sequence. It is matted as it is."""
        grey = _grey(info)
        if grey == self._is_grey:
            return
        said = f"{Path(path).absolute()}:grey"
        if said not in _SAID:
            _SAID.add(said)
            kinds = ("colour (R, G, B)", "grey (one channel)")
            log.warning("%s: frame %d is %s, the plate's first frame %s: another pass rendered into the sequence? "
                        "It is matted as it is", path, frame, kinds[grey], kinds[self._is_grey])

    def path(self, frame: int) -> Path:
        return self.sequence.path(frame)

    def _placed(self, path: Path, frame: int, rgb: np.ndarray, info: ImageInfo) -> np.ndarray:
        """The frame's pixels on the shot's picture: a data window that crops the shot's
        display window (a CG render's bounding box, which moves from frame to frame) is
        placed where it lies, black around it, as compositors show it."""
        same_display = info.display == self.display and info.display is not None
        if same_display and info.origin == self.origin and (info.width, info.height) == (self.width, self.height):
            return rgb
        dx, dy = info.origin[0] - self.origin[0], info.origin[1] - self.origin[1]
        inside = dx >= 0 and dy >= 0 and dx + info.width <= self.width and dy + info.height <= self.height
        if not same_display:
            if (info.width, info.height) != (self.width, self.height):
                raise FrameSizeError(
                    f"the frame is {info.width}x{info.height}, the shot is {self.width}x{self.height}",
                    path=path,
                    frame=frame,
                    hint="all frames of a plate must have one size (one display window, for EXR)",
                )
            # the same size elsewhere in another picture: neighbours would not line up
            where = (f"the frame's pixels (data window) start at {info.origin}, the shot's at {self.origin}"
                     if info.origin != self.origin else
                     f"the frame's display window (x, y, width, height) is {info.display}, the shot's {self.display}")
            raise FrameSizeError(where, path=path, frame=frame,
                                 hint="all frames of a plate must have one display window (reformat them alike)")
        if not inside:
            raise FrameSizeError(
                f"the frame's pixels (data window {info.width}x{info.height} at {info.origin}) reach outside the "
                f"shot's picture ({self.width}x{self.height} at {self.origin}: the first frame's data and display "
                "windows together)",
                path=path,
                frame=frame,
                hint="give the plate one overscan on every frame (or a data window inside its display window)",
            )
        return placed_on(rgb, info.origin, (*self.origin, self.width, self.height))

    def read(self, frame: int) -> np.ndarray:
        placed, is_float = self._raw(frame)
        path = self.path(frame)
        self._keep(frame, placed, is_float)
        rgb, bad = self.colour.to_network(placed, is_float)
        if bad:
            self.nonfinite[frame] = bad
            said = str(Path(path).absolute())
            if said not in _SAID:  # once per process: both stages of a run read every frame
                _SAID.add(said)
                made = bad - int(np.count_nonzero(~np.isfinite(placed)))
                how = (f" ({made} made by converting it from {self.colour.source_for(is_float)}: is that its colour "
                       "space? see --input-colorspace)") if made else ""
                log.warning("%s: frame %d: %d NaN/infinite value(s) set to 0%s", path, frame, bad, how)
        return rgb


def say_orientation(info: ImageInfo, advice: str) -> None:
    """Warn (once per file) where an image's header asks viewers to turn or flip it (EXIF/TIFF
    orientation): tcvom, like compositors, reads its pixels as stored."""
    said = f"{Path(info.path).absolute()}:orientation"
    if info.orientation != 1 and said not in _SAID:
        _SAID.add(said)
        log.warning("%s: the file asks viewers to turn or flip it (orientation %d); tcvom, like compositors, "
                    "reads it as stored (%dx%d): %s", info.path, info.orientation, info.width, info.height, advice)


def _display_rotation(matrix: tuple[int, ...] | None, mirrored: bool) -> int:
    """The whole degrees a display matrix turns the pictures by, in (-180, 180] (as FFmpeg's
    av_display_rotation_get, from the matrix itself: PyAV's cuts 30.0 to 29, and gives a
    degenerate matrix's NaN as -2147483648); of a mirroring one, the turn after the mirror."""
    if matrix is None:
        return 0
    first, second = math.hypot(matrix[0], matrix[3]), math.hypot(matrix[1], matrix[4])
    if not first or not second:
        return 0
    column = -matrix[0] if mirrored else matrix[0]
    angle = round(-math.degrees(math.atan2(matrix[1] / second, column / first)))
    return 180 if angle == -180 else angle


def _display_matrix(av_frame: Any) -> tuple[int, ...] | None:
    """The 3x3 display matrix a decoded picture carries (FFmpeg's side data, 16.16 fixed
    point, row-major), or None."""
    import struct

    for item in av_frame.side_data:
        # PyAV 18.1.1 iterates the container's types (its keys), 18.1.0 and before its side data
        data = item if hasattr(item, "type") else av_frame.side_data[item]
        if getattr(data.type, "name", "") == "DISPLAYMATRIX" and len(bytes(data)) == 36:
            return struct.unpack("<9i", bytes(data))
    return None


class MovieFrames(_Frames):
    """A plate stored as a movie (mp4, mov...), decoded with PyAV.

    Frames are numbered from ``first_frame`` (default 1, as Blender and Nuke number
    them) in presentation order, for constant and variable frame rates alike: frame
    ``first_frame + i`` is the picture with the ``i``-th smallest presentation time, from
    an index of the packets' times read once on opening (demuxing, no decoding; a few
    bytes a frame). Reading the next frame decodes on; any other frame seeks to the
    nearest keyframe before it and decodes forward to its time, so random access works
    without holding the movie in memory. A movie whose packets carry no trustworthy
    times (raw streams, AVI with B-frames) is counted in decoding order instead, and a
    backward read decodes again from its start.
    """

    def __init__(
        self,
        path: str | Path,
        frames: str | list[int] | None = None,
        *,
        first_frame: int = 1,
        colorspace: str | None = None,
        ocio_config: str | None = None,
    ) -> None:
        import av

        self.path_ = Path(path)
        if not self.path_.is_file():
            raise MissingFrameError("movie file not found", path=self.path_)
        self._open()
        self.width = self._stream.codec_context.width
        self.height = self._stream.codec_context.height
        try:
            self._count, packets = self._index()
        except av.FFmpegError as exc:
            raise InputError(f"cannot read the movie's packets ({exc})", path=self.path_, hint=_DAMAGED) from exc
        self.first_frame = first_frame
        # listed in the header, not in the file (an AVI's header counts the empty "repeat the
        # picture before" slots of a variable frame rate, which its times skip)
        short = max(self._stream.frames - max(packets, self._slots), 0)
        if short:  # pictures shown between the ones held may be missing too: no frame is sure
            missing = list(range(first_frame + self._count, first_frame + self._count + short))
            raise InputError(
                f"the movie's header lists {self._stream.frames} frames but the file holds {packets}: "
                f"frame(s) {format_range(missing)} are missing",
                path=self.path_,
                frame=missing[0],
                hint=_DAMAGED,
            )
        if not self._count:
            raise InputError("the movie has no video frames", path=self.path_)
        self._check_duration()
        available = list(range(first_frame, first_frame + self._count))
        wanted = available if frames is None else frame_selection(frames)
        outside = sorted(set(wanted) - set(available))
        if outside:
            raise MissingFrameError(
                f"the movie has frames {format_range(available)}; frame(s) {format_range(outside)} are outside it",
                path=self.path_,
                frame=outside[0],
            )
        self.frame_numbers = wanted
        # Movies are display-referred video: decoded RGB is taken as sRGB unless told otherwise.
        self.colour = ColourConverter(colorspace, ocio_config)
        self._say_wide_colour()
        self._decoder: Iterator[av.VideoFrame] | None = None
        self._next_index = -1
        # The decoder flagged a picture decoded since the last keyframe as corrupt (FFmpeg
        # conceals the damage): the pictures after it, decoded from it, are wrong too.
        self._damaged = False
        self.rotation: int | None = None
        """Degrees the movie asks players to rotate its pictures by, once a frame is read."""
        self.mirrored = False  # the display matrix mirrors the pictures (read on the first picture decoded)
        self.interlaced = False  # the first picture decoded holds two fields
        aspect = self._stream.sample_aspect_ratio or self._stream.codec_context.sample_aspect_ratio
        self.pixel_aspect = float(aspect) if aspect else 1.0
        # One decode at a time: a reader thread (tcvom.io.overlap) and the caller share the decoder.
        self._lock = threading.RLock()
        shape = self._stream.codec_context.format
        if shape is not None and any(c.is_alpha for c in shape.components) and _first_look(self.path_):
            self.read(self.frame_numbers[0])

    def _open(self) -> None:
        import av

        try:
            self._container = av.open(str(self.path_))
        except (av.FFmpegError, OSError) as exc:
            raise InputError(f"cannot open the movie ({exc})", path=self.path_, hint=_DAMAGED) from exc
        videos = self._container.streams.video
        if not videos:
            raise InputError("the file has no video stream", path=self.path_)
        self._stream = _main_track(list(videos), self._container.streams.best("video"))
        self._stream.thread_type = "AUTO"
        said = f"{self.path_.absolute()}:tracks"
        if len(videos) > 1 and said not in _SAID:
            _SAID.add(said)
            others = ", ".join(f"#{v.index} {v.codec_context.name} {v.codec_context.width}x{v.codec_context.height}"
                               for v in videos if v is not self._stream)
            log.warning("%s: the movie holds %d video tracks; tcvom reads track #%d (%s %dx%d, the main picture "
                        "of the movie), not %s: if the plate is another track, export it on its own",
                        self.path_, len(videos), self._stream.index, self._stream.codec_context.name,
                        self._stream.codec_context.width, self._stream.codec_context.height, others)

    @property
    def codec(self) -> str:
        """The video codec's name (``h264``, ``prores``...)."""
        return str(self._stream.codec_context.name)

    @property
    def frame_rate(self) -> float | None:
        """Pictures per second the movie declares (its average), None if it declares none."""
        rate = self._stream.average_rate or self._stream.guessed_rate
        return float(rate) if rate else None

    def _say_wide_colour(self) -> None:
        """Warn (once per file) where the video is tagged HDR or BT.2020, which tcvom, taking
        movies as sRGB without --input-colorspace, would read as another picture."""
        said = f"{self.path_.absolute()}:colour"
        wide = self.wide_colour()
        if self.colour.source is not None or said in _SAID or wide is None:
            return
        _SAID.add(said)
        log.warning("%s: the video is tagged %s; tcvom takes movies as %r (docs/io.md): if the tag is right, pass "
                    "--input-colorspace %s", self.path_, wide[0], self.colour.source_for(False), wide[1])

    def wide_colour(self) -> tuple[str, str] | None:
        """(the HDR or BT.2020 tag of the video, the ``--input-colorspace`` word that follows
        it: the space's name where the config knows it, else NAME), or None."""
        context = self._stream.codec_context
        transfer, primaries = int(context.color_trc or 0), int(context.color_primaries or 0)
        if transfer not in _HDR and primaries != _BT2020:
            return None
        name, tag = _HDR.get(transfer, (None, "BT.2020 primaries"))
        known = name is not None and self.colour.config.getColorSpace(name) is not None
        return tag, shlex.quote(name) if known and name else "NAME"

    def colour_report(self) -> dict[str, str]:
        """What ``tcvom info`` says of the movie's colour: the space it is taken in, its pixel
        format and, for YCbCr video, the matrix and range it is decoded with (what its tags
        say otherwise: :meth:`wide_colour`) (colour QA: a movie's colour was said only by a
        run's warning, never by `tcvom info --json`)."""
        context = self._stream.codec_context
        report = {"taken_as": f"{self.colour.source_for(False)} without --input-colorspace (movies, docs/io.md)"}
        shape = context.format
        if shape is None:
            return report
        bits = max((c.bits for c in shape.components), default=8)
        alpha = ", with alpha" if any(c.is_alpha for c in shape.components) else ""
        report["pixel_format"] = f"{shape.name} ({bits}-bit{alpha})"
        if shape.name.startswith(("yuv", "nv", "p0", "p2", "p4", "uyv", "yuy", "yvy")):  # YCbCr (not grey, RGB)
            matrix = int(context.colorspace or 0)
            report["matrix"] = (f"untagged: decoded as {'BT.709' if self.height >= HD_LINES else 'BT.601'}"
                                if matrix == _UNSPECIFIED else _MATRIX_NAMES.get(matrix) or _MATRICES.get(matrix)
                                or f"tag {matrix}")
            report["range"] = {2: "full"}.get(int(context.color_range or 0), "limited (video)")
        return report

    def _check_duration(self) -> None:
        """Refuse a movie whose pictures end well before the duration its video track
        declares: Matroska and WebM list no frame count, so a file cut short by a copy
        otherwise passes as a shorter shot."""
        text = str(self._stream.metadata.get("DURATION") or self._stream.metadata.get("duration") or "")
        match = re.fullmatch(r"(\d+):(\d\d):(\d\d(?:\.\d+)?)", text.strip())
        rate = self.frame_rate
        if match is None or not self._pts or not rate:
            return
        declared = int(match[1]) * 3600 + int(match[2]) * 60 + float(match[3])
        step = 1.0 / rate
        start = self._stream.start_time or 0
        # The last picture lasts as long as its packet says (a variable frame rate's last
        # pictures may be held longer than the average's step), else one step.
        shown = float(((self._shown_until or 0) - start) * self._stream.time_base)
        end = max(float((self._pts[-1] - start) * self._stream.time_base) + step, shown)
        # FFmpeg's Matroska muxer writes the track's end time, not its length: in a file it
        # wrote (its ENCODER tag) a track whose first picture is not at 0 ends that much later.
        encoder = str(self._container.metadata.get("ENCODER") or self._container.metadata.get("encoder") or "")
        if encoder.startswith("Lavf"):
            end += max(float(start * self._stream.time_base), 0.0)
        if declared - end > 1.5 * step:
            after = self.first_frame + self._count - 1
            raise InputError(
                f"the movie's video track says it lasts {declared:.3f} s but its pictures end at {end:.3f} s: "
                f"about {round((declared - end) / step)} frame(s) after frame {after} are missing",
                path=self.path_,
                frame=after + 1,
                hint=_DAMAGED,
            )

    def _index(self) -> tuple[int, int]:
        """One pass over the video packets (no decoding): sets ``_pts``, the pictures'
        presentation times, sorted (None when they cannot be trusted), and ``_keys``, the
        keyframes' (presentation time, time to seek to it). Returns how many pictures
        there are and how many packets the file holds."""
        pictures: list[tuple[int | None, bool]] = []  # (pts, cut short by the end of the file)
        self._keys: list[tuple[int, int]] = []
        self._shown_until: int | None = None  # the last picture's end, by its own duration
        packets = 0
        for packet in self._container.demux(self._stream):
            packets += bool(packet.size or packet.pts is not None)  # not the end-of-stream packet
            if packet.size and not packet.is_discard:  # discarded: cut by an edit list
                pictures.append((packet.pts, packet.is_corrupt))
                if packet.pts is not None and packet.duration and not packet.is_corrupt:
                    self._shown_until = max(self._shown_until or 0, packet.pts + packet.duration)
                if packet.is_keyframe and packet.pts is not None:
                    # Demuxers seek by decoding time (mp4) or by presentation time (mkv).
                    seek = packet.pts if packet.dts is None else min(packet.pts, packet.dts)
                    self._keys.append((packet.pts, seek))
        while pictures and pictures[-1][1]:  # a truncated file's last packets are not pictures
            pictures.pop()
            packets -= 1
        times = [t for t, _ in pictures]
        pts = [t for t in times if t is not None]
        # AVI stores no presentation times: with a codec that reorders pictures (B-frames)
        # and times that do not, they are decoding stamps.
        avi = self._container.format.name == "avi"
        stamps = avi and self._stream.codec_context.has_b_frames and pts == sorted(pts)
        # one time unit a picture; with reordered pictures (B-frames) a lost last one would count
        self._slots = max(pts) - min(pts) + 1 if avi and pts and not self._stream.codec_context.has_b_frames else 0
        own_times = len(set(pts)) == len(times)  # every picture has a time of its own
        self._pts = sorted(pts) if own_times and not stamps else None
        held = set(pts)
        self._keys = sorted(key for key in self._keys if key[0] in held)
        if self._stream.codec_context.name in _DRAWN_OVER:  # every picture a "keyframe", none decodable alone
            self._keys = []  # a picture before the last read: decoded from the start
        return len(times), packets

    def path(self, frame: int) -> Path:
        return self.path_

    def _say_display(self, av_frame: Any) -> None:
        """Warn once of what a player does to the pictures that tcvom does not: turn or mirror
        them (the track's display matrix), or stretch them (pixels that are not square)."""
        matrix = _display_matrix(av_frame)
        mirrored = self.mirrored = matrix is not None and matrix[0] * matrix[4] - matrix[1] * matrix[3] < 0
        self.rotation = rotation = _display_rotation(matrix, mirrored)
        self.interlaced = bool(av_frame.interlaced_frame)
        said = f"{self.path_.absolute()}:display"
        if said in _SAID:
            return
        _SAID.add(said)
        shown = f"{av_frame.width}x{av_frame.height}"
        if mirrored:
            turn = f" and rotate them by {rotation} degrees" if rotation else ""
            log.warning("%s: the movie asks players to mirror its pictures%s; tcvom reads them as stored (%s, "
                        "not mirrored): paint keyframes on the pictures as stored, and place the matte like the "
                        "stored plate", self.path_, turn, shown)
        elif rotation:
            log.warning("%s: the movie asks players to rotate its pictures by %d degrees; tcvom reads them as "
                        "stored (%s, not rotated): paint keyframes on the pictures as stored, and place the "
                        "matte like the stored plate", self.path_, rotation, shown)
        if self.interlaced:
            log.warning("%s: the movie is interlaced (each picture holds two fields, taken a field apart); tcvom "
                        "mattes each picture whole, so a moving edge's comb is in its alpha too: deinterlace the "
                        "plate first (ffmpeg -vf bwdif) to matte whole frames", self.path_)
        if self.pixel_aspect != 1.0:
            log.warning("%s: the movie's pixels are not square (pixel aspect %s): the alphas are written at the "
                        "stored size (%s); EXR outputs carry the pixel aspect (PixelAspectRatio), other formats "
                        "have square pixels: give them the plate's pixel aspect in the compositor", self.path_,
                        f"{self.pixel_aspect:.4g}", shown)

    def read(self, frame: int) -> np.ndarray:
        with self._lock:
            return self._decode(frame)

    def _decode(self, frame: int) -> np.ndarray:
        import av

        self._check_frame(frame)
        index = frame - self.first_frame
        expected = f"picture {index + 1} of {self._count}"
        if self._pts is not None:
            expected += f" (at {float(self._pts[index] * self._stream.time_base):.3f} s)"
        try:
            av_frame = self._find(index)
        except av.FFmpegError as exc:
            self._decoder = None
            raise InputError(f"cannot decode {expected} ({exc})", path=self.path_, frame=frame, hint=_DAMAGED) from exc
        if av_frame is None:
            self._decoder = None
            raise MissingFrameError(f"the decoder gave no {expected}", path=self.path_, frame=frame, hint=_DAMAGED)
        if self._damaged:  # concealed by the decoder: a picture with the damage smeared over it
            which = "it" if av_frame.is_corrupt else "a picture before it, which it is decoded from,"
            raise InputError(f"{expected} is damaged: the decoder reports {which} as corrupt", path=self.path_,
                             frame=frame, hint=_DAMAGED + ("" if av_frame.is_corrupt else
                                                           " (the pictures up to the next keyframe are refused; in a "
                                                           "movie without further keyframes, intra refresh, all)"))
        if (av_frame.width, av_frame.height) != (self.width, self.height):
            raise InputError(
                f"{expected} is {av_frame.width} x {av_frame.height}, the movie's video is {self.width} x "
                f"{self.height}: all frames of a plate must have one size",
                path=self.path_, frame=frame, hint="export the movie again at one size")
        self._say_display(av_frame)
        deep = av_frame.format.components and av_frame.format.components[0].bits > 8
        # Video that does not name its YCbCr matrix: BT.709 from 720 lines up, as players and
        # Nuke take it (FFmpeg's own default is BT.601 at every size)
        untagged = av_frame.colorspace == _UNSPECIFIED and not av_frame.format.is_rgb
        matrix = {"src_colorspace": "ITU709"} if untagged and av_frame.height >= HD_LINES else {}
        alpha = any(c.is_alpha for c in av_frame.format.components)  # ProRes 4444, PNG or QuickTime Animation
        try:
            if deep:
                pixels = av_frame.to_ndarray(format="rgba64le" if alpha else "rgb48le", **matrix).astype(np.float32)
                pixels /= 65535.0
            else:
                pixels = av_frame.to_ndarray(format="rgba" if alpha else "rgb24", **matrix).astype(np.float32) / 255.0
            if alpha:
                say_alpha(self.path_, frame, pixels[:, :, 3])
                pixels = np.ascontiguousarray(pixels[:, :, :3])
        except av.FFmpegError as exc:  # movies QA: a matrix FFmpeg's scaler lacks (YCgCo, ICtCp) was a traceback
            raise InputError(
                f"{expected} cannot be converted to RGB: FFmpeg's scaler does not take its YCbCr matrix (tag "
                f"{av_frame.colorspace}: {_MATRICES.get(av_frame.colorspace, 'unknown')}; {exc})",
                path=self.path_, frame=frame, hint="export the movie again with a BT.709, BT.601 or BT.2020 matrix",
            ) from exc
        self._keep(frame, pixels, False)
        rgb, _ = self.colour.to_network(pixels, is_float=False)
        return rgb

    def _find(self, index: int) -> av.VideoFrame | None:
        """Decoded picture ``index`` (0-based, presentation order); None if the decoder
        passes over it. Decodes on from the last picture read when it can."""
        if self._pts is None:  # counted in decoding order, from the start
            if self._decoder is None or index < self._next_index:
                self._rewind(None)
            for av_frame in self._decoder:
                self._note(av_frame)
                self._next_index += 1
                if self._next_index > index:
                    return av_frame
            return None
        target = self._pts[index]
        if self._decoder is None or index != self._next_index:
            # The last keyframe shown before the target: with open GOPs, the pictures
            # shown before a keyframe but decoded after it need the keyframe before.
            key = bisect.bisect_right(self._keys, target, key=itemgetter(0)) - 1
            self._rewind(self._keys[key][1] if key >= 0 else None)
        for again in (False, True):
            # A picture past the target after a seek means the demuxer found no
            # keyframe before it (odd index): decode once more from the start.
            if again:
                self._rewind(None)
            for av_frame in self._decoder:
                self._note(av_frame)
                if av_frame.pts is not None and av_frame.pts < target:
                    continue
                if av_frame.pts == target:
                    self._next_index = index + 1
                    return av_frame
                break
        return None

    def _note(self, av_frame: av.VideoFrame) -> None:
        """Keep track of damage: a corrupt picture taints the pictures decoded after it
        until the next intact keyframe."""
        if av_frame.is_corrupt:
            self._damaged = True
        elif av_frame.key_frame:
            self._damaged = False

    def _rewind(self, pts: int | None) -> None:
        """Seek to the keyframe at or before ``pts``, or open the movie again at its start."""
        if pts is None:
            self._container.close()
            self._open()
        else:
            self._container.seek(pts, stream=self._stream, backward=True, any_frame=False)
        self._decoder = self._container.decode(self._stream)
        self._next_index = 0 if pts is None else -1
        self._damaged = False

    def _raw(self, frame: int) -> tuple[np.ndarray, bool]:
        with self._lock:
            keep, self._recent = self._recent, FrameCache(1)
            try:
                self._decode(frame)
                kept = self._recent.get(frame)
            finally:
                self._recent = keep
        assert kept is not None
        return kept

    def close(self) -> None:
        self._container.close()


_DAMAGED = "the file is truncated or damaged: export or copy it again"
_UNSPECIFIED = 2  # FFmpeg's AVCOL_SPC_UNSPECIFIED: the video names no YCbCr matrix
_MATRICES = {8: "YCgCo", 10: "BT.2020 constant luminance", 11: "SMPTE ST 2085", 12: "chromaticity-derived",
             13: "chromaticity-derived constant luminance", 14: "ICtCp"}
"""Names of the YCbCr matrix tags (FFmpeg's AVColorSpace) a refusal names."""

_MATRIX_NAMES = {1: "BT.709", 4: "FCC", 5: "BT.601", 6: "BT.601", 7: "SMPTE 240M", 9: "BT.2020"}
"""Names of the YCbCr matrix tags FFmpeg's scaler decodes (AVColorSpace), as `tcvom info` says them."""

HD_LINES = 720
"""From this height up, video that names no YCbCr matrix is decoded as BT.709 (HD), below
as BT.601 (SD)."""


def header_colour(colour: ColourConverter, info: ImageInfo) -> tuple[str | None, str]:
    """(what a file's header says of its colour where tcvom takes it otherwise, how it says
    it): a colour space OpenImageIO reads from the header, a DPX's log transfer, or the
    primaries of EXR ``chromaticities``; None where it says nothing else."""
    said = colour.contradicted(info.colorspace, info.is_float)
    if said is None and info.log_transfer and colour.source is None:
        said = f"DPX transfer {info.log_transfer}: a log film scan"  # no config space of that name
    how = "as OpenImageIO reads it"
    if said is None:  # an ACES EXR says so by its primaries alone (SMPTE ST 2065-4)
        said, how = colour.primaries_contradicted(info.chromaticities, info.is_float), "by its chromaticities"
    return said, how


def _main_track(videos: list[Any], best: Any) -> Any:
    """The plate's video track: the picture ffmpeg picks (``best``), unless it is a still (a
    cover picture, a one-picture thumbnail track: a MOV muxer may mark one the default) or
    a smaller picture than another moving track (a proxy); then the largest moving one."""
    from av.stream import Disposition

    def still(video: Any) -> bool:
        return bool(int(video.disposition) & int(Disposition.attached_pic)) or video.frames == 1

    def area(video: Any) -> int:
        return int(video.codec_context.width) * int(video.codec_context.height)

    moving = [v for v in videos if not still(v)] or videos
    largest = max(moving, key=area)  # the first of the largest: the file's order
    if best in moving and area(best) >= area(largest):
        return best
    return largest
# FFmpeg's colour tags (AVColorTransferCharacteristic, AVColorPrimaries) of HDR and wide-gamut video.
_HDR = {16: ("Rec.2100-PQ - Display", "HDR, PQ (SMPTE ST 2084)"), 18: ("Rec.2100-HLG - Display", "HDR, HLG (ARIB STD-B67)")}
_BT2020 = 9


_DRAWN_OVER = frozenset({"apng", "gif"})
"""Codecs of animations whose pictures are drawn over the picture before (their packets all
marked keyframes): an APNG decoder sent a packet after a seek back fails (odd-inputs QA)."""


def open_frames(
    source: str | Path,
    frames: str | int | Sequence[int] | None = None,
    *,
    colorspace: str | None = None,
    ocio_config: str | None = None,
    movie_first_frame: int = 1,
    holes_hint: str | None = None,
) -> SequenceFrames | MovieFrames:
    """Open a plate: an image sequence pattern or a movie file (chosen by the suffix), of
    the ``frames`` of the shot (a range string, one frame number or a list; None: all).
    ``holes_hint``: the advice for a sequence with holes besides rendering them (``{frames}``:
    the frames there are), where the command takes no ``--shot-range``."""
    if frames is not None and not isinstance(frames, str):
        frames = frame_selection(frames, what="shot range")
    text = path_text(source, "the plate", hint="give its image sequence (plate.####.exr) or movie file")
    check_text(colorspace, "colorspace (an OpenColorIO colour space's name)")
    check_text(ocio_config, "ocio_config (an OpenColorIO config file or built-in config's name)", path=True)
    if ocio_config is not None:
        ocio_config = os.fspath(ocio_config)
    if is_movie(text):
        return MovieFrames(text, frames, first_frame=movie_first_frame, colorspace=colorspace, ocio_config=ocio_config)
    _one_picture(text)
    return SequenceFrames(text, frames, colorspace=colorspace, ocio_config=ocio_config, holes_hint=holes_hint)


def _one_picture(text: str) -> None:
    """Refuse a plate file of several pictures (an animated WebP, a TIFF stack): its first
    was matted as a one-frame shot, the rest dropped without a word."""
    if is_pattern(text) or not Path(text).is_file():
        return
    from tcvom.io.images import image_header, stacked_pictures

    count = stacked_pictures(text)
    if count > 1:
        info = image_header(text)[1]
        size = f"{info.width}x{info.height}"
        raise InputError(
            f"the plate file holds {count} pictures of {size} (an animated image or a stack of pages): tcvom reads the "
            "frames of a shot from an image sequence or a movie, and one picture from an image file", path=text,
            hint=f"split it into an image sequence with OpenImageIO's oiiotool (`oiiotool {command_word(text)} --sisplit "
            "-o:all=1 plate.%04d.png`) and give that sequence (--plate plate.####.png)")


# --- trimaps ---------------------------------------------------------------------------------


class TrimapFiles(_Numbered):
    """Trimaps by frame number, classified to uint8 0 / 128 / 255 on reading.

    ``files`` maps frame -> path. ``size`` (width, height) is the plate's size: a trimap
    of another size is an error unless ``resize=True``, which scales it with nearest
    neighbour (never blending classes). An EXR trimap whose data window crops the plate's
    display window (``display``; the plate's picture starts at ``origin``) is placed
    where it lies, background around it, as the plate's own cropped frames are. A trimap of
    the display window's size on an overscanned plate (a bigger picture) is placed on the
    display window, the overscan unknown.
    """

    def __init__(
        self,
        files: Mapping[int, Path],
        *,
        size: tuple[int, int] | None = None,
        resize: bool = False,
        channel: str = "luma",
        painted: bool = False,
        what: str = "trimap",
        origin: tuple[int, int] = (0, 0),
        display: tuple[int, int, int, int] | None = None,
        made: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        if not files:
            raise InputError("no trimap was given")
        self.origin, self.display = origin, display
        self.painted = painted
        self.made = dict(made or {})
        self.what = what
        self.files = dict(sorted(files.items()))
        self.frame_numbers = list(self.files)
        self.size = size
        self.resize = resize
        self.channel = channel

    def __contains__(self, frame: object) -> bool:
        return frame in self.files

    def path(self, frame: int) -> Path:
        return self.files[frame]

    def read(self, frame: int) -> np.ndarray:
        if frame not in self.files:
            raise MissingFrameError(
                f"no trimap for frame {frame} (trimaps are given for {format_range(self.frame_numbers)})",
                frame=frame,
            )
        path = self.files[frame]
        pixels, info = read_image(path, frame)
        say_orientation(info, f"check that the {self.what} lines up with the plate as stored")
        try:
            single = trimaps.to_single_channel(pixels, self.channel, info.channels)
        except InputError as exc:
            raise InputError(exc.message, path=path, frame=frame) from exc
        # A trimap painted as a layer's opacity (in A) under colour that is something else.
        in_alpha = (self.channel == "luma" and "A" in info.channels
                    and trimaps.holds_painted_unknown(pixels[:, :, info.channels.index("A")]))
        if self.painted or (self.made and not self._as_made(path)):
            # the file as painted: where its stray values lie is said in its own pixels
            try:
                trimaps.check_painted(single, path=path, frame=frame, what=self.what,
                                      floating=info.pixel_type in FLOAT_FORMATS)
            except InputError as exc:
                if in_alpha:
                    raise InputError(f"{exc.message}; its colour was read, and its A channel holds a trimap",
                                     path=path, frame=frame, hint="pass --trimap-channel A") from exc
                if self.channel != "luma" or pixels.shape[2] < 3 or np.array_equal(pixels[:, :, 0], pixels[:, :, 1]):
                    raise
                raise InputError(f"{exc.message}; the file is coloured and its luminance was read", path=path,
                                 frame=frame, hint="paint the trimap in grey, or pass --trimap-channel R, G or B "
                                 "if one channel holds it") from exc
        if self.size is not None and self.display is not None and info.display == self.display and (
                (*info.origin, info.width, info.height) != info.display):
            single = self._placed(single, info, path, frame)
        elif self.size is not None and self.display is not None and (info.width, info.height) != self.size and (
                (info.width, info.height) == tuple(self.display[2:])):
            single = self._in_overscan(single)
        elif self.size is not None and (info.width, info.height) != self.size:
            cropped = info.display is not None and (*info.origin, info.width, info.height) != tuple(info.display)
            if cropped and self.display is not None and tuple(info.display) != tuple(self.display):
                raise FrameSizeError(  # was "another shape (rotated or cropped?)", naming neither window
                    f"the trimap is a crop (data window {info.width}x{info.height} at {info.origin}) of a picture "
                    f"(display window {_window(info.display)}) other than the plate's ({_window(self.display)})",
                    path=path, frame=frame, hint="write it with the plate's display window (format), or uncropped "
                    "at the plate's size")
            single = self._scaled(single, info, path, frame)
        try:
            classified = trimaps.classify(single)
        except InputError as exc:
            raise InputError(exc.message, path=path, frame=frame, hint=exc.hint) from exc
        lacks = [name for name, value in (("foreground (255)", trimaps.FOREGROUND), ("background (0)",
                 trimaps.BACKGROUND)) if not (classified == value).any()]
        if in_alpha and not lacks and not (classified == trimaps.UNKNOWN).any():
            # Colour of both other levels (a white brush's) with the unknown band in the opacity: read as the
            # colour, the band was foreground on every frame.
            raise InputError(
                f"the {self.what}'s colour holds no unknown (128) and its A channel holds a trimap with an unknown "
                "band (painted as a layer's opacity?)", path=path, frame=frame,
                hint="pass --trimap-channel A, or --trimap-channel R (G, B) if the colour is the trimap, a mask with "
                     "no unknown")
        if in_alpha and (classified == trimaps.BACKGROUND).all():
            # Black colour with the trimap in A (a Roto's alpha-only output): read as the colour, the
            # keyframe was all background, and the shot's "no keyframe has foreground" said nothing of A.
            raise InputError(f"the {self.what}'s colour is all black and its A channel holds a trimap (an alpha-only "
                             "roto?)", path=path, frame=frame,
                             hint="pass --trimap-channel A, or paint the trimap in grey in the colour channels")
        if self.channel == "luma" and "A" in info.channels and lacks:  # painted in alpha over black or white
            alpha = pixels[:, :, info.channels.index("A")]
            if (alpha > trimaps.FG_THRESHOLD).any() and (alpha < trimaps.BG_THRESHOLD).any():
                log.warning("%s: frame %d: the %s's colour holds no %s and its A channel holds a picture: if the "
                            "trimap is painted in alpha, pass --trimap-channel A", path, frame, self.what,
                            " and no ".join(lacks))
        return classified

    def made_by_tcvom(self, frame: int) -> bool:
        """Whether the trimap of ``frame`` is one tcvom's trimap stage made, as it left it."""
        return self._as_made(self.path(frame))

    def _as_made(self, path: Path) -> bool:
        """Whether ``path`` is a trimap tcvom made, as its record left it (size and time): a
        file repainted in place since is checked as painted."""
        state = self.made.get(str(Path(path).absolute()))
        return state is not None and as_recorded(state, path)

    def _placed(self, single: np.ndarray, info: ImageInfo, path: Path, frame: int) -> np.ndarray:
        """A cropped trimap (data window inside the plate's display window) on the plate's
        picture: background (0) outside its data window, as EXR reads it."""
        assert self.size is not None
        width, height = self.size
        dx, dy = info.origin[0] - self.origin[0], info.origin[1] - self.origin[1]
        if dx < 0 or dy < 0 or dx + info.width > width or dy + info.height > height:
            raise FrameSizeError(
                f"the trimap's pixels (data window {info.width}x{info.height} at {info.origin}) reach outside the "
                f"plate's picture ({width}x{height} at {self.origin})",
                path=path, frame=frame, hint="paint it inside the plate's picture",
            )
        return placed_on(single, info.origin, (*self.origin, width, height))

    def _scaled(self, single: np.ndarray, info: ImageInfo, path: Path, frame: int) -> np.ndarray:
        """A trimap of another size scaled to the plate's picture (``resize``; nearest
        neighbour): to the display window of an overscanned plate, then placed on it. One of
        another shape (rotated, cropped) is refused: scaling would stretch it."""
        assert self.size is not None
        target = self.size
        if self.display is not None and tuple(self.display[2:]) != self.size:
            target = (self.display[2], self.display[3])  # overscan: the picture painted on
        width, height = target
        same_shape = abs(info.width * height - info.height * width) <= max(width, height)  # within a pixel
        told = f"the trimap is {info.width}x{info.height}, the plate is {self.size[0]}x{self.size[1]}" + (
            f" (picture {width}x{height})" if target != self.size else "")
        if not same_shape and target != self.size and \
                abs(info.width * self.size[1] - info.height * self.size[0]) <= max(self.size):
            raise FrameSizeError(  # the data window's shape: "another shape" contradicted the sizes it named
                f"{told}: the shape of the plate's whole data window (overscan) scaled; --resize-trimaps scales a "
                f"trimap to the picture (display window {width}x{height})", path=path, frame=frame,
                hint=f"paint it at the plate's size ({self.size[0]}x{self.size[1]}), or on its picture "
                f"({width}x{height}, or that shape)")
        if not same_shape:
            raise FrameSizeError(
                f"{told}: another shape (aspect {info.width / info.height:.3f}, the plate's {width / height:.3f}), "
                "which scaling would stretch", path=path, frame=frame,
                hint="paint it on the plate's picture (is it rotated, e.g. by a photo's orientation, or cropped?)")
        if not self.resize:
            raise FrameSizeError(told, path=path, frame=frame,
                                 hint="paint it at plate size, or pass --resize-trimaps to scale it (nearest neighbour)")
        import cv2

        scaled = cv2.resize(single, target, interpolation=cv2.INTER_NEAREST)
        return scaled if target == self.size else self._in_overscan(scaled)

    def _in_overscan(self, single: np.ndarray) -> np.ndarray:
        """A trimap of the display window's size on an overscanned plate's picture: placed on
        the display window, the overscan around it unknown (nobody painted it)."""
        assert self.size is not None and self.display is not None
        width, height = self.size
        x, y, w, h = self.display
        dx, dy = x - self.origin[0], y - self.origin[1]
        placed = np.full((height, width), trimaps.UNKNOWN / 255.0, dtype=np.float32)
        left, top = max(dx, 0), max(dy, 0)
        right, bottom = min(dx + w, width), min(dy + h, height)
        placed[top:bottom, left:right] = single[top - dy:bottom - dy, left - dx:right - dx]
        return placed

    def read_all(self) -> dict[int, np.ndarray]:
        """Every trimap, classified (for keyframes: a handful of images)."""
        return {frame: self.read(frame) for frame in self.frame_numbers}


def _window(window: Sequence[int]) -> str:
    """A display window ``(x, y, width, height)`` as said: ``128x96 at (100, 50)``."""
    return f"{window[2]}x{window[3]} at ({window[0]}, {window[1]})"


def _parse_pair(text: str) -> tuple[int, Path]:
    """A :func:`is_frame_pair` text (its frame a number) as ``(frame, path)``."""
    frame_text, _, path_text = text.partition("=")
    if not path_text:
        raise InputError(f"{text!r} is not a frame=path pair", hint="write keyframes like 1001=key.1001.png")
    return int(frame_text.strip()), Path(path_text)


def is_frame_pair(text: str) -> bool:
    """Whether a trimap argument is a ``FRAME=PATH`` pair (``1001=key.png``), not a file or
    a sequence pattern: what comes before its first ``=`` is a frame number, and the text
    does not name a file in an existing folder of that name (``1001=take/key.png``). Any
    other text with ``=`` is a path (Nuke QA: a node in a script folder such as
    ``/shows/seq=010/`` could not Compute, "'/shows/seq' is not a frame number")."""
    before, sep, _ = text.partition("=")
    if not sep or not re.fullmatch(r"\s*-?\d+\s*", before):
        return False
    folder = os.path.dirname(text)
    return not (folder and os.path.isdir(folder))


TrimapSpecs = str | Path | Sequence[str | Path] | Mapping[int, str | Path]
"""Trimap files as jobs take them: a pattern, files or ``FRAME=PATH`` pairs, or (the Python
API) a mapping of frame numbers to files."""


def trimap_specs(trimaps: TrimapSpecs, what: str = "trimaps") -> str | list[str]:
    """The forms of :data:`TrimapSpecs` as :func:`open_trimaps` takes them: ``{1001:
    "key.png"}`` as the pairs ``["1001=key.png"]`` (it was read as patterns named after the
    frame numbers); another type (a number, None, an empty list) is an :class:`InputError`."""

    def named(item: object) -> object:  # Path(""), a path of nothing, is "." as text: said as empty too
        return "" if isinstance(item, os.PathLike) and not Path(item).parts else item

    if isinstance(trimaps, Mapping):
        for frame, path in trimaps.items():
            if not isinstance(path, str | os.PathLike):
                raise InputError(f"{what}: the file of frame {frame} is given as {shown(path)}, not as a path",
                                 hint="give {frame: path} with each path a file name")
            path_text(named(path), f"{what}: the file of frame {frame}", "give {frame: path} with each path a file name")
        return [f"{frame_number(frame, 'keyframe')}={os.fspath(path)}" for frame, path in trimaps.items()]
    hint = "give a sequence pattern (key.####.png), files, or FRAME=PATH pairs (1001=key.png)"
    if isinstance(trimaps, str | Path):  # '' was the current folder: "not a sequence of files"
        return path_text(named(trimaps), f"the name given for the {what}", hint)
    if isinstance(trimaps, Sequence) and trimaps and all(isinstance(item, str | Path) for item in trimaps):
        return [path_text(named(item), f"a name given for the {what}", hint) for item in trimaps]
    raise InputError(f"{what} are given as a file or pattern, a list of them or of FRAME=PATH pairs, or a mapping "
                     f"{{frame: path}}, not {shown(trimaps)}")


def _frame_of_unnumbered(text: str, what: str, plate: _Frames | None) -> int:
    """The frame of a trimap file whose name holds no frame number tcvom reads (``key.png``,
    ``key_0006.png``): the plate's one frame. Of a longer plate it was taken for frame 1,
    which matted the shot from a keyframe on the wrong frame without a word."""
    if plate is not None and len(plate.frame_numbers) == 1:
        return plate.frame_numbers[0]
    digits = re.search(r"(\d+)$", Path(text).stem)
    frame = int(digits.group(1)) if digits else None
    if frame is not None and (plate is None or frame in plate.frame_numbers):
        example = f"{frame}={text}"
    else:  # no number in the name, or one that is no frame of the plate (key_v3.png: a version)
        shot = f", a frame of the plate ({format_range(list(plate.frame_numbers))})" if plate is not None else ""
        example = f"FRAME={text} (FRAME: the frame it was painted on{shot})"
    raise InputError(
        f"the {what} file has no frame number tcvom can read (a file name says its frame as name.FRAME.ext, "
        "e.g. key.1001.png)", path=text,
        hint=f"give its frame with the file, e.g. {example}, or name the files of a sequence with a pattern "
        "(key_####.png)")


def open_trimaps(
    specs: TrimapSpecs,
    frames: str | list[int] | None = None,
    *,
    size: tuple[int, int] | None = None,
    resize: bool = False,
    channel: str = "luma",
    what: str = "trimap",
    contiguous: bool = True,
    painted: bool = False,
    plate: _Frames | None = None,
    made: Mapping[str, Mapping[str, Any]] | None = None,
) -> TrimapFiles:
    """Open trimaps given as a sequence pattern (every frame found, or ``frames``), as
    ``frame=path`` pairs, as a mixture of both, or as a mapping ``{frame: path}``. ``contiguous=False`` accepts a pattern
    whose files on disk have gaps (keyframes 1001, 1020, 1040).

    ``plate`` (a frame source) gives the size the trimaps must have, and the picture that
    cropped EXR trimaps are placed in (:class:`TrimapFiles`); ``size`` alone gives the size.
    Each file must exist; a frame given twice is an error. ``painted=True`` (keyframes)
    refuses values other than 0 / 128 / 255 beyond anti-aliasing
    (:func:`tcvom.io.trimap.check_painted`); ``made`` (absolute path -> recorded size and
    ``mtime_ns``: the trimaps tcvom wrote) exempts those files as their records left them, so
    a trimap repainted in place is checked.
    """
    given = trimap_specs(specs, what + "s")  # a mapping {1001: path} as the pipeline takes it, a wrong type refused
    items = [given] if isinstance(given, str) else given
    files: dict[int, Path] = {}
    for item in items:
        text = str(item)
        entries: list[tuple[int, Path]]
        frame_text, colon, _ = text.partition(":")
        if colon and "=" not in text and frame_text.strip().lstrip("-").isdigit() and not Path(text).exists():
            raise InputError(f"{text!r} is not a frame=path pair", hint="write keyframes like 1001=key.1001.png")
        if "=" in text and not is_frame_pair(text) and not is_pattern(text) and not Path(text).exists():
            raise InputError(f"{text!r} is neither a frame=path pair ({text.partition('=')[0].strip()!r} is not a "
                             "frame number) nor a file", hint="write keyframes like 1001=key.1001.png")
        if is_frame_pair(text):
            entries = [_parse_pair(text)]
            refuse_movie(entries[0][1], what)
        else:
            seq = ImageSequence(text, frames, what=what, contiguous=contiguous)
            entries = [(f, seq.path(f)) for f in seq.frame_numbers]
            if not seq.numbered and frames is None:
                entries = [(_frame_of_unnumbered(text, what, plate), seq.path(1))]
        for frame, path in entries:
            if frame in files:
                raise InputError(f"two {what}s are given for frame {frame}", path=path, frame=frame)
            if not path.is_file():  # a folder or a broken link there is said as such, as for a pattern's files
                there = "a folder" if path.is_dir() else "a link to nothing" if path.is_symlink() else None
                raise MissingFrameError(f"{what} file not found", path=path, frame=frame,
                                        hint=f"{there} is there, not an image file" if there else None)
            files[frame] = path
    if plate is not None:
        size, origin, display = (plate.width, plate.height), plate.origin, plate.display
    else:
        origin, display = (0, 0), None
    return TrimapFiles(files, size=size, resize=resize, channel=channel, painted=painted, what=what, origin=origin,
                       display=display, made=made)
