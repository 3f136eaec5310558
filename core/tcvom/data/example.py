"""The bundled example shot, generated deterministically (nothing to download).

``write_example(folder)`` writes a 40-frame 480x270 shot numbered 1001-1040 (a soft-edged
foreground with thin strands and a semi-transparent veil over a moving textured
background, from :mod:`tcvom.data.synthetic`) as a compositor would receive it:

=================================  ===========================================================
``plate/plate.####.exr``           the plate, half-float EXR, scene-linear Rec.709
``keyframes/key.####.png``         painted keyframe trimaps (frames 1001, 1020, 1040)
``truth/alpha.####.png``           ground-truth alpha, 16-bit PNG
``truth/trimap.####.png``          ground-truth trimap of every frame (0/128/255)
=================================  ===========================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tcvom.errors import OutputError, check_choice, check_whole
from tcvom.io import trimap
from tcvom.io.colour import DEFAULT_FLOAT, TARGET, ColourConverter
from tcvom.io.images import write_image
from tcvom.progress import PROGRESS_MODES, Progress, ProgressMode

FIRST_FRAME = 1001
KEYFRAME_OFFSETS = (0, 19, 39)
TRIMAP_KERNEL = 15
"""Width of the unknown band at the full 480x270 size; smaller shots scale it down."""


def trimap_kernel(width: int, height: int) -> int:
    """The unknown band's width for a shot of this size: :data:`TRIMAP_KERNEL` at 270 lines,
    scaled with the height (odd, at least 3), so that small test shots keep foreground in
    their keyframes (a keyframe without foreground is refused)."""
    scaled = round(TRIMAP_KERNEL * min(width, height) / 270)
    return max(3, scaled | 1)


@dataclass(frozen=True)
class Example:
    """Where the example's files are (patterns use ``####``)."""

    folder: Path
    plate: str
    keyframes: str
    alpha: str
    trimaps: str
    first: int
    last: int
    keyframe_numbers: tuple[int, ...]


def example_paths(folder: str | Path, frames: int = 40) -> Example:
    root = Path(folder)
    offsets = sorted({min(o, frames - 1) for o in KEYFRAME_OFFSETS})
    return Example(
        folder=root,
        plate=str(root / "plate" / "plate.####.exr"),
        keyframes=str(root / "keyframes" / "key.####.png"),
        alpha=str(root / "truth" / "alpha.####.png"),
        trimaps=str(root / "truth" / "trimap.####.png"),
        first=FIRST_FRAME,
        last=FIRST_FRAME + frames - 1,
        keyframe_numbers=tuple(FIRST_FRAME + o for o in offsets),
    )


def _remove_other_frames(paths: Example) -> None:
    """Delete the frames of the example's own sequences that this shot does not have: an
    example written again into its folder with fewer frames (or other keyframes) left the
    earlier one's, so the folder held a mix of two shots (wrong mattes, wrong scores, or a
    run refusing a frame of the other size), while the command named the new shot."""
    from tcvom.io.sequence import frame_path, frames_on_disk

    numbers = range(paths.first, paths.last + 1)
    for pattern, keep in ((paths.plate, numbers), (paths.alpha, numbers), (paths.trimaps, numbers),
                          (paths.keyframes, paths.keyframe_numbers)):
        for frame in frames_on_disk(pattern):
            if frame not in keep:
                path = frame_path(pattern, frame)
                try:
                    path.unlink()
                except OSError as exc:
                    raise OutputError(f"cannot remove the earlier example's frame {frame} ({exc.strerror or exc})",
                                      path=path, hint="give an empty folder to write the example into") from exc


def write_example(
    folder: str | Path,
    *,
    width: int = 480,
    height: int = 270,
    frames: int = 40,
    seed: int = 7,
    progress: ProgressMode = "none",
) -> Example:
    """Write the example shot into ``folder`` and return its paths (at least 1 frame of at
    least 16x16, the synthetic shot's least; ``tcvom example`` asks for 32x32). Frames of
    an example written there before that this one does not have are deleted."""
    from tcvom.data.synthetic import ShotConfig, SyntheticShot
    from tcvom.io.sequence import frame_path, path_text

    path_text(folder, "the example's folder", hint="give the folder to write the example into")
    check_whole(frames, "frames", 1)
    check_whole(width, "width", 16, unit=" pixels")
    check_whole(height, "height", 16, unit=" pixels")
    check_whole(seed, "seed", 0)
    check_choice(progress, PROGRESS_MODES, "progress")
    paths = example_paths(folder, frames)
    shot = SyntheticShot(ShotConfig(width=width, height=height, frames=frames, seed=seed))
    converter = ColourConverter()
    to_linear = converter.config.getProcessor(TARGET, DEFAULT_FLOAT).getDefaultCPUProcessor()
    for sub in ("plate", "keyframes", "truth"):
        (paths.folder / sub).mkdir(parents=True, exist_ok=True)
    _remove_other_frames(paths)
    with Progress("example", frames, progress) as bar:
        for index in range(frames):
            number = FIRST_FRAME + index
            rendered = shot.render(index)
            linear = np.ascontiguousarray(rendered.image, dtype=np.float32).copy()
            to_linear.applyRGB(linear)
            write_image(frame_path(paths.plate, number), linear, pixel_type="half", channels=("R", "G", "B"))
            write_image(frame_path(paths.alpha, number), rendered.alpha, pixel_type="uint16", channels=("Y",))
            tri = trimap.from_alpha(rendered.alpha, trimap_kernel(width, height))
            tri_pixels = tri.astype(np.float32) / 255.0
            write_image(frame_path(paths.trimaps, number), tri_pixels, pixel_type="uint8", channels=("Y",))
            if number in paths.keyframe_numbers:
                write_image(frame_path(paths.keyframes, number), tri_pixels, pixel_type="uint8", channels=("Y",))
            bar.advance(frame=number)
    return paths
