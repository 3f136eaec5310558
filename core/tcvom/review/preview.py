"""Review outputs: a contact sheet (plate | trimap | alpha | composite over a checkerboard)
and an MP4 preview of the composite, so a matte can be judged at a glance."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from tcvom.io.atomic import atomic_output
from tcvom.io.images import write_image
from tcvom.io.sources import FrameSource, TrimapFiles
from tcvom.progress import Progress, ProgressMode


def checkerboard(height: int, width: int, cell: int = 16) -> np.ndarray:
    """float32 ``H x W x 3`` grey checkerboard (0.35 / 0.65)."""
    yy, xx = np.mgrid[0:height, 0:width]
    board = np.where(((yy // cell) + (xx // cell)) % 2 == 0, 0.35, 0.65).astype(np.float32)
    return np.repeat(board[:, :, None], 3, axis=2)


def composite(image: np.ndarray, alpha: np.ndarray, foreground: np.ndarray | None = None) -> np.ndarray:
    """The plate (or its estimated foreground) over a checkerboard with ``alpha``."""
    fg = image if foreground is None else foreground
    a = alpha[:, :, None]
    return fg * a + checkerboard(*alpha.shape) * (1.0 - a)


def _tile(image: np.ndarray, trimap: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    grey = lambda x: np.repeat(x[:, :, None], 3, axis=2)  # noqa: E731
    return np.concatenate([image, grey(trimap.astype(np.float32) / 255.0), grey(alpha), composite(image, alpha)], 1)


def alpha_reader(pattern: str) -> Callable[[int], np.ndarray]:
    """``read(frame) -> float32 H x W`` alpha in [0, 1] of an alpha (or RGBA) sequence."""
    from tcvom.io.images import read_image
    from tcvom.io.sequence import frame_path

    def read(frame: int) -> np.ndarray:
        pixels, info = read_image(frame_path(pattern, frame), frame)
        index = info.channels.index("A") if "A" in info.channels else 0
        return np.clip(pixels[:, :, index], 0.0, 1.0)

    return read


def contact_sheet(
    frames: FrameSource,
    trimaps: TrimapFiles,
    alpha_pattern: str,
    out: str | Path,
    *,
    count: int = 4,
    max_width: int = 1920,
) -> Path:
    """Write a PNG with ``count`` evenly spaced frames, one row each."""
    numbers = frames.frame_numbers
    picks = sorted({numbers[round(i * (len(numbers) - 1) / max(count - 1, 1))] for i in range(count)})
    read_alpha = alpha_reader(alpha_pattern)
    rows = [_tile(frames.read(f), trimaps.read(f), read_alpha(f)) for f in picks]
    sheet = np.concatenate(rows, 0)
    if sheet.shape[1] > max_width:
        import cv2

        scale = max_width / sheet.shape[1]
        sheet = cv2.resize(sheet, (max_width, round(sheet.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    return write_image(out, sheet, pixel_type="uint8", channels=("R", "G", "B"))


def preview_movie(
    frames: FrameSource,
    alpha_pattern: str,
    out: str | Path,
    *,
    fps: int = 24,
    frame_numbers: Sequence[int] | None = None,
    progress: ProgressMode = "none",
) -> Path:
    """Write an H.264 MP4 of the composite over a checkerboard (written atomically)."""
    import av

    numbers = list(frame_numbers or frames.frame_numbers)
    read_alpha = alpha_reader(alpha_pattern)
    width, height = frames.width - frames.width % 2, frames.height - frames.height % 2
    with atomic_output(out) as tmp, av.open(str(tmp), mode="w") as container, Progress(
        "preview", len(numbers), progress
    ) as bar:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "20"}
        for f in numbers:
            rgb = composite(frames.read(f), read_alpha(f))[:height, :width]
            pixels = np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
            bar.advance(frame=f)
        for packet in stream.encode():
            container.mux(packet)
    return Path(out)
