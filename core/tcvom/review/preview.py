"""Review outputs: a contact sheet (plate | trimap | alpha | composite over a checkerboard)
and an MP4 preview of the composite, so a matte can be judged at a glance.

Given a run's review (:mod:`tcvom.review.doubt`), both mark it: the contact sheet shows the
most doubtful frames instead of evenly spaced ones, every row labelled with its frame and
doubt, doubtful rows framed in red; the movie labels every frame (``KEY`` on keyframes) and
frames doubtful frames in red with their doubt, so scrubbing it shows where to look.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tcvom.errors import InputError, check_text, check_whole, compiled_imported_held, shown
from tcvom.io.atomic import atomic_output, ensure_writable_folder, remove_dead_temporaries
from tcvom.io.images import write_image
from tcvom.io.sequence import frame_selection
from tcvom.io.sources import MovieFrames, SequenceFrames, TrimapFiles
from tcvom.progress import Progress, ProgressMode

if TYPE_CHECKING:
    from tcvom.review.doubt import Review

log = logging.getLogger("tcvom")
DOUBT_RED = (0.86, 0.16, 0.16)
_BT709, _LIMITED = 1, 1  # FFmpeg's AVCOL_SPC/PRI/TRC_BT709 and AVCOL_RANGE_MPEG
Plate = SequenceFrames | MovieFrames  # what tcvom.io.open_frames gives: frames with their colour


def movie_rate(value: object) -> Fraction:
    """A frame rate as the preview movie keeps it: a whole number, a ratio ("24000/1001") or
    a decimal, where the NTSC rates as written (23.976, 29.97, 59.94) mean their exact
    ratios (24000/1001...); another type, nothing or no positive rate is an InputError."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real | str):  # numpy's numbers too
        raise InputError(f"the frame rate is {shown(value)}: give a number of frames per second (24, 23.976, "
                         "24000/1001)")
    try:
        rate = Fraction(value.strip() if isinstance(value, str) else float(value) if isinstance(value, np.floating)
                        else int(value) if isinstance(value, np.integer) else value)
    except (ValueError, ZeroDivisionError, OverflowError, TypeError):
        rate = Fraction(0)
    if rate < Fraction(1, 1000) or rate > 1000:  # NaN, inf: refused by Fraction above
        raise InputError(f"the frame rate {value!s} is not a number of frames per second from 1/1000 to 1000",
                         hint="give e.g. 24, 25, 23.976 or 24000/1001")
    ntsc = Fraction(math.ceil(rate) * 1000, 1001)
    if rate.denominator != 1 and abs(rate - ntsc) < Fraction(1, 1000):
        return ntsc  # 23.976 is the name of 24000/1001, not 2997/125
    return rate.limit_denominator(1001)


def _declared_rate(frames: Plate) -> Fraction:
    """The plate movie's own rate for its preview, 24 for an image sequence, or for a movie
    that declares none or one no preview plays (broken timestamps: said, naming the file)."""
    declared = frames.frame_rate if isinstance(frames, MovieFrames) else None
    if declared is None:
        return Fraction(24)
    try:
        return movie_rate(declared)
    except InputError:
        log.warning("%s declares %s frames per second, which no preview plays: the preview plays at 24 (pass --fps "
                    "to choose)", frames.path(frames.frame_numbers[0]), declared)
        return Fraction(24)


def checkerboard(height: int, width: int, cell: int = 16) -> np.ndarray:
    """float32 ``H x W x 3`` grey checkerboard (0.35 / 0.65)."""
    yy, xx = np.mgrid[0:height, 0:width]
    board = np.where(((yy // cell) + (xx // cell)) % 2 == 0, 0.35, 0.65).astype(np.float32)
    return np.repeat(board[:, :, None], 3, axis=2)


def composite(frames: Plate, linear: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """A plate frame (``linear``: :meth:`~tcvom.io.sources.SequenceFrames.linear` of
    ``frames``) over a checkerboard with ``alpha``, as shown: blended in the plate's
    scene-linear space (as a compositor's over; highlights above 1 count), then
    display-encoded (sRGB, the checkerboard's greys as shown)."""
    a = alpha[:, :, None]
    board = frames.network_to_linear(checkerboard(*alpha.shape))
    return frames.linear_to_network(linear * a + board * (1.0 - a))


def _tile(frames: Plate, frame: int, trimap: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    grey = lambda x: np.repeat(x[:, :, None], 3, axis=2)  # noqa: E731
    linear = frames.linear(frame)  # decoded once: the plate as shown, and the composite
    return np.concatenate([frames.linear_to_network(linear), grey(trimap.astype(np.float32) / 255.0), grey(alpha),
                           composite(frames, linear, alpha)], 1)


def alpha_reader(pattern: str, size: tuple[int, int] | None = None) -> Callable[[int], np.ndarray]:
    """``read(frame) -> float32 H x W`` alpha in [0, 1] of an alpha (or RGBA) sequence;
    with ``size`` (the plate's width, height) an alpha of another size is refused."""
    from tcvom.errors import FrameSizeError
    from tcvom.io.images import alpha_channel, read_image
    from tcvom.io.sequence import frame_path

    def read(frame: int) -> np.ndarray:
        path = frame_path(str(pattern), frame)
        pixels, info = read_image(path, frame)
        if size is not None and (info.width, info.height) != size:
            raise FrameSizeError(f"the alpha is {info.width}x{info.height}, the plate is {size[0]}x{size[1]}",
                                 path=path, frame=frame, hint="give the alpha made from this plate")
        return alpha_channel(pixels, info.channels, path, frame, purpose="shown")

    return read


def most_doubtful(numbers: Sequence[int], doubt: dict[int, float], count: int) -> list[int]:
    """Up to ``count`` frames, most doubtful first but at least ``len / (2 count)`` frames of
    the shot apart (neighbours of a bad frame look alike), returned in frame order."""
    order = list(numbers)
    gap = max(1, len(order) // (2 * max(count, 1)))
    chosen: list[int] = []
    for f in sorted((f for f in order if f in doubt), key=lambda f: (-doubt[f], f)):
        if all(abs(order.index(f) - order.index(c)) >= gap for c in chosen):
            chosen.append(f)
        if len(chosen) == count:
            break
    return sorted(chosen)


def _check_file_out(out: object, suffix: str, example: str) -> None:
    """``out`` of the Python API: a path of a ``suffix`` file, not a folder (the command's
    --out is one; its file names are the command's own)."""
    check_text(out, "out", path=True)
    if out is None or Path(out).is_dir() or Path(out).suffix.lower() != suffix:
        raise InputError(f"out must be the path of the {suffix} file to write, not {shown(out)}",
                         hint=f"e.g. {Path(str(out or '.')) / example}" if out is not None else None)


def _check_inputs(frames: object, alpha_pattern: object, review: object, trimaps: object = "") -> None:
    """The preview's inputs as the Python API takes them (else an InputError naming the
    argument, not an AttributeError deep inside): the plate and trimaps opened, the alpha a
    sequence pattern, the review one read (or None)."""
    from tcvom.review.doubt import Review

    if not isinstance(frames, SequenceFrames | MovieFrames):
        raise InputError(f"frames must be the plate opened with tcvom.io.open_frames, not {shown(frames)}",
                         hint="frames = tcvom.io.open_frames(plate_pattern)")
    if trimaps != "" and not isinstance(trimaps, TrimapFiles):
        raise InputError(f"trimaps must be the trimaps opened with tcvom.io.open_trimaps, not {shown(trimaps)}",
                         hint="trimaps = tcvom.io.open_trimaps(trimap_pattern, frames.frame_numbers, plate=frames)")
    if not isinstance(alpha_pattern, str | Path):
        raise InputError(f"alpha_pattern must be the alphas' sequence pattern, not {shown(alpha_pattern)}",
                         hint="e.g. 'out/alpha/alpha.####.exr'")
    if review is not None and not isinstance(review, Review):
        raise InputError(f"review must be a review read with tcvom.review.doubt.load_review, or None, not {shown(review)}")


def contact_sheet(
    frames: Plate,
    trimaps: TrimapFiles,
    alpha_pattern: str,
    out: str | Path,
    *,
    count: int = 4,
    max_width: int = 1920,
    review: Review | None = None,
) -> Path:
    """Write a PNG with ``count`` frames, one row each: evenly spaced, or with a ``review``
    the most doubtful frames (:func:`most_doubtful`), labelled and doubtful ones framed.
    ``out`` is the PNG's path (``tcvom preview`` names it ``OUT/contact_sheet.png``)."""
    compiled_imported_held()  # a cancel while a compiled library loads would break the process
    _check_inputs(frames, alpha_pattern, review, trimaps)
    check_whole(count, "count", 1)
    check_whole(max_width, "max_width", 16)
    _check_file_out(out, ".png", "contact_sheet.png")
    numbers = frames.frame_numbers
    picks = sorted({numbers[round(i * (len(numbers) - 1) / max(count - 1, 1))] for i in range(count)})
    doubt = review.doubt() if review is not None else {}
    if doubt:
        picks = most_doubtful(numbers, doubt, count) or picks
    read_alpha = alpha_reader(alpha_pattern, (frames.width, frames.height))
    remove_dead_temporaries(ensure_writable_folder(Path(out).parent))  # a killed preview's partial file
    rows = []
    for f in picks:
        row = _tile(frames, f, trimaps.read(f), read_alpha(f))
        if review is not None:
            row = mark_frame(row, f, review)
        rows.append(row)
    sheet = np.concatenate(rows, 0)
    if sheet.shape[1] > max_width:
        import cv2

        scale = max_width / sheet.shape[1]
        sheet = cv2.resize(sheet, (max_width, round(sheet.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    return write_image(out, sheet, pixel_type="uint8", channels=("R", "G", "B"))


def mark_frame(image: np.ndarray, frame: int, review: Review) -> np.ndarray:
    """``image`` (float32 ``H x W x 3`` in [0, 1]) with the frame number, ``KEY`` on a
    keyframe, and on a doubtful frame a red frame and its doubt; a copy."""
    import cv2

    out = np.ascontiguousarray(image, dtype=np.float32).copy()
    height, width = out.shape[:2]
    scale = max(0.35, min(height, width) / 400.0)
    thick = max(1, round(scale * 2))
    row = next((r for r in review.frames if r.frame == frame), None)
    label = str(frame)
    if frame in set(review.keyframes):
        label += " KEY"
    doubtful = row is not None and row.doubt > review.threshold
    if row is not None:
        label += f" doubt {row.doubt:.2f}"
    if frame in review.suggested:
        label += f" key next #{review.suggested.index(frame) + 1}"
    (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    pad = max(2, th // 3)
    out[: th + base + 2 * pad, : tw + 2 * pad] *= 0.35  # a dark box behind the text
    ink = np.zeros((height, width), np.uint8)  # OpenCV draws text on 8-bit images only
    cv2.putText(ink, label, (pad, th + pad), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thick, cv2.LINE_AA)
    cover = ink.astype(np.float32)[:, :, None] / 255.0
    colour = np.array(DOUBT_RED if doubtful else (1.0, 1.0, 1.0), np.float32)
    out = out * (1.0 - cover) + colour * cover
    if doubtful:
        border = max(2, round(min(height, width) / 60))
        edge = np.zeros((height, width), bool)
        edge[:border], edge[-border:], edge[:, :border], edge[:, -border:] = True, True, True, True
        out[edge] = colour
    return out.astype(np.float32)


def preview_movie(
    frames: Plate,
    alpha_pattern: str,
    out: str | Path,
    *,
    fps: int | float | Fraction | str | None = None,
    frame_numbers: str | int | Sequence[int] | None = None,
    progress: ProgressMode = "none",
    review: Review | None = None,
) -> Path:
    """Write an H.264 MP4 of the composite over a checkerboard (written atomically); with a
    ``review`` every frame is labelled and doubtful frames are framed in red. ``out`` is the
    movie's path (``tcvom preview`` names it ``OUT/preview.mp4``); ``fps`` a frame rate as
    :func:`movie_rate` reads it, by default the plate movie's (24 for an image sequence);
    ``frame_numbers`` (default: every frame of the plate) as ``frames`` elsewhere: a range,
    a frame or frames, played in order, each once."""
    compiled_imported_held()  # a cancel while a compiled library loads would break the process
    import av

    _check_inputs(frames, alpha_pattern, review)
    rate = movie_rate(fps) if fps is not None else _declared_rate(frames)
    _check_file_out(out, ".mp4", "preview.mp4")

    numbers = list(frames.frame_numbers) if frame_numbers is None else \
        frame_selection(frame_numbers, what="preview frame")  # [] was the whole shot, an array a traceback
    read_alpha = alpha_reader(alpha_pattern, (frames.width, frames.height))
    remove_dead_temporaries(ensure_writable_folder(Path(out).parent))  # a killed preview's partial file
    width, height = frames.width - frames.width % 2, frames.height - frames.height % 2
    if width < 2 or height < 2:  # H.264 in 4:2:0 takes even sizes of 2 and more
        raise InputError(f"the plate is {frames.width}x{frames.height}: an MP4 preview needs at least 2x2 pixels",
                         hint="pass --no-movie (the contact sheet is written)")
    with atomic_output(out) as tmp, av.open(str(tmp), mode="w") as container, Progress(
        "preview", len(numbers), progress
    ) as bar:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "20"}
        # BT.709, limited range, and said so: untagged, FFmpeg's default BT.601 was read back
        # as BT.709 from 720 lines up (by players, Nuke and tcvom), a hue shift the matte never made
        context = stream.codec_context
        context.colorspace = context.color_primaries = context.color_trc = _BT709
        context.color_range = _LIMITED
        for f in numbers:
            rgb = composite(frames, frames.linear(f), read_alpha(f))[:height, :width]
            if review is not None:
                rgb = mark_frame(rgb, f, review)
            pixels = np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)
            picture = av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(
                format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")
            picture.colorspace, picture.color_range = _BT709, _LIMITED
            for packet in stream.encode(picture):
                container.mux(packet)
            bar.advance(frame=f)
        for packet in stream.encode():
            container.mux(packet)
    return Path(out)
