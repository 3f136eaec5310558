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

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tcvom.errors import OutputError, check_choice, check_whole
from tcvom.io import trimap
from tcvom.io.atomic import write_text
from tcvom.io.colour import DEFAULT_FLOAT, TARGET, ColourConverter
from tcvom.io.hashing import file_sha256
from tcvom.io.images import write_image
from tcvom.progress import PROGRESS_MODES, Progress, ProgressMode

log = logging.getLogger("tcvom")

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


RECORD = ".tcvom-example.json"
"""The files an example wrote into its folder, with their SHA-256: the next example written
there removes those of them it does not write again, and nothing else."""


def _example_files(paths: Example) -> list[tuple[str, Iterable[int]]]:
    numbers = range(paths.first, paths.last + 1)
    return [(paths.plate, numbers), (paths.alpha, numbers), (paths.trimaps, numbers),
            (paths.keyframes, paths.keyframe_numbers)]


def _remove_other_frames(paths: Example) -> None:
    """Delete the frames of an example written into this folder before that this one does
    not have (fewer frames, other keyframes): the folder held a mix of two shots (wrong
    mattes, wrong scores, a run refusing a frame of the other size) while the command named
    the new one. Only files the earlier example wrote (its :data:`RECORD`), unchanged since,
    are deleted: one added to its sequences or changed since (a keyframe copied in) is kept
    and named, as the sequences read it too."""
    from tcvom.io.sequence import frame_path, frames_on_disk

    try:
        written = json.loads((paths.folder / RECORD).read_text(encoding="utf-8")).get("files", {})
    except (OSError, ValueError, AttributeError):
        written = {}
    kept = []
    for pattern, keep in _example_files(paths):
        keep = set(keep)
        for frame in frames_on_disk(pattern):
            if frame in keep:
                continue
            path = frame_path(pattern, frame)
            name = path.relative_to(paths.folder).as_posix()
            if not isinstance(written, dict) or written.get(name) != file_sha256(path, remember=False):
                kept.append(name)
                continue
            try:
                path.unlink()
            except OSError as exc:
                raise OutputError(f"cannot remove the earlier example's frame {frame} ({exc.strerror or exc})",
                                  path=path, hint="give an empty folder to write the example into") from exc
    if kept:
        log.warning("%s: %d file(s) of the example's sequences are not this example's (added, or changed, since an "
                    "example was written there), so they are kept, and its sequences read them too: %s; give an "
                    "empty folder for the example alone", paths.folder, len(kept), ", ".join(kept[:6]) +
                    (", ..." if len(kept) > 6 else ""))


def _record_files(paths: Example) -> None:
    """:data:`RECORD` of the files this example wrote."""
    from tcvom.io.sequence import frame_path

    files = {}
    for pattern, frames in _example_files(paths):
        for frame in frames:
            path = frame_path(pattern, frame)
            files[path.relative_to(paths.folder).as_posix()] = file_sha256(path, remember=False)
    write_text(paths.folder / RECORD, json.dumps({"files": files}, indent=1) + "\n")


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
    least 16x16, the synthetic shot's least; ``tcvom example`` asks for 32x32). Frames
    that an example written there before wrote and this one does not have are deleted
    (:data:`RECORD`); other files are kept, and named."""
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
    from tcvom.io.atomic import make_folder

    for sub in ("plate", "keyframes", "truth"):  # a file in the way: said as the folder it blocks
        make_folder(paths.folder / sub, given_as="--out", what="the example's folder")
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
    _record_files(paths)
    return paths
