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
"""The files examples wrote into their folder, with their SHA-256 (kept up to date as each
file is written, so an interrupted example's are known too): the next example written there
deletes those it does not write again, and refuses to overwrite a file it did not write."""


def _example_files(paths: Example) -> list[tuple[str, set[int]]]:
    numbers = set(range(paths.first, paths.last + 1))
    return [(paths.plate, numbers), (paths.alpha, numbers), (paths.trimaps, numbers),
            (paths.keyframes, set(paths.keyframe_numbers))]


class _Written:
    """The example folder's :data:`RECORD`: which of its files examples wrote, as they wrote them."""

    def __init__(self, paths: Example) -> None:
        self.paths = paths
        try:
            data = json.loads((paths.folder / RECORD).read_text(encoding="utf-8"))
            files = data.get("files") if isinstance(data, dict) else None
            self.known = isinstance(files, dict)
            self.files: dict[str, str] = dict(files) if isinstance(files, dict) else {}
        except (OSError, ValueError):  # none (a new folder, or one an older tcvom wrote), or unreadable
            self.known, self.files = False, {}

    def name(self, path: Path) -> str:
        return path.relative_to(self.paths.folder).as_posix()

    def ours(self, path: Path) -> bool:
        return self.files.get(self.name(path)) == file_sha256(path, remember=False)

    def wrote(self, path: Path) -> None:
        self.files[self.name(path)] = file_sha256(path, remember=False)

    def save(self) -> None:
        write_text(self.paths.folder / RECORD, json.dumps({"files": self.files}, indent=1) + "\n")


def _clear_the_way(paths: Example, written: _Written) -> None:
    """Before an example is written into a folder that held one: refuse where it would
    overwrite a file the earlier example did not write, or that changed since (a keyframe
    painted or copied in), then delete the earlier example's frames this one does not have
    (fewer frames, other keyframes: the folder held a mix of two shots, wrong mattes and
    scores, while the command named the new one). Files of those sequences that no example
    wrote are kept and named, as the sequences read them too. A folder without a record (an
    older tcvom's example) has its files overwritten as before, and none deleted."""
    from tcvom.io.sequence import frame_path, frames_on_disk

    if written.known:
        taken = [written.name(frame_path(pattern, f)) for pattern, numbers in _example_files(paths)
                 for f in sorted(numbers) if frame_path(pattern, f).is_file() and not written.ours(frame_path(pattern, f))]
        if taken:
            raise OutputError(
                f"{len(taken)} file(s) the example would write over were not written by an example, or changed since: "
                f"{', '.join(taken[:6])}{', ...' if len(taken) > 6 else ''}", path=paths.folder,
                hint="move them out of the folder (or give another --out): tcvom example does not overwrite them")
    kept = []
    for pattern, numbers in _example_files(paths):
        for frame in frames_on_disk(pattern):
            path = frame_path(pattern, frame)
            if frame in numbers:
                continue
            if not written.ours(path):
                kept.append(written.name(path))
                continue
            try:
                path.unlink()
            except OSError as exc:
                raise OutputError(f"cannot remove the earlier example's frame {frame} ({exc.strerror or exc})",
                                  path=path, hint="give an empty folder to write the example into") from exc
            written.files.pop(written.name(path), None)
    if kept:
        why = "not this example's (added, or changed, since an example was written there)" if written.known else \
            "not this example's, and the folder has no record of an earlier example (written by an older tcvom?)"
        log.warning("%s: %d file(s) of the example's sequences are %s, so they are kept, and its sequences read "
                    "them too: %s; give an empty folder for the example alone", paths.folder, len(kept), why,
                    ", ".join(kept[:6]) + (", ..." if len(kept) > 6 else ""))


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
    least 16x16, the synthetic shot's least; ``tcvom example`` asks for 32x32). Into a
    folder that held an example, see :func:`_clear_the_way` (:data:`RECORD`)."""
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
    written = _Written(paths)
    _clear_the_way(paths, written)
    try:
        with Progress("example", frames, progress) as bar:
            for index in range(frames):
                number = FIRST_FRAME + index
                rendered = shot.render(index)
                linear = np.ascontiguousarray(rendered.image, dtype=np.float32).copy()
                to_linear.applyRGB(linear)
                tri = trimap.from_alpha(rendered.alpha, trimap_kernel(width, height))
                tri_pixels = tri.astype(np.float32) / 255.0
                made = [(paths.plate, linear, "half", ("R", "G", "B")), (paths.alpha, rendered.alpha, "uint16", ("Y",)),
                        (paths.trimaps, tri_pixels, "uint8", ("Y",))]
                if number in paths.keyframe_numbers:
                    made.append((paths.keyframes, tri_pixels, "uint8", ("Y",)))
                for pattern, pixels, pixel_type, channels in made:
                    written.wrote(write_image(frame_path(pattern, number), pixels, pixel_type=pixel_type,
                                              channels=channels))
                bar.advance(frame=number)
    finally:  # what was written so far, also of an interrupted example: the next one knows them
        written.save()
    return paths
