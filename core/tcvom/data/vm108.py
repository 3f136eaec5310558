"""A streaming reader of the VideoMatting108 layout (TCVOM, ACM MM 2021).

Layout under ``root`` (the synthetic benchmark of :mod:`tcvom.data.synthetic` writes the same)::

    FG_done/<category>/<clip>/<NNNNN>.png     RGBA: foreground colour + alpha (8 or 16 bit)
    BG_done/<...>.jpg                          background frame (a .png of the same name is
                                               used when the .jpg is absent)
    flow_png/<category>/<clip>/flow_<NNNNN>_<MMMMM>.png   16-bit flow (optional)
    frame_corr.json                            "<category>/<clip>/<NNNNN>.png" -> BG path
    {train,val}_videos[_subset].txt            one "<category>/<clip>" per line

Nothing is read until a frame is asked for; a clip is never loaded whole. Frames are
composited in float: ``I = F * alpha + B * (1 - alpha)``, all sRGB in [0, 1]. Evaluation
trimaps come from the ground-truth alpha by dilation of its ``0 < alpha < 1`` region
with square kernels 11 / 25 / 41 (narrow / medium / wide), via :func:`tcvom.io.trimap.from_alpha`.
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tcvom.errors import FrameSizeError, InputError, ReadError, check_choice
from tcvom.io.trimap import from_alpha

TRIMAP_KERNELS: dict[str, int] = {"narrow": 11, "medium": 25, "wide": 41}
FG_FOLDER, BG_FOLDER, FLOW_FOLDER = "FG_done", "BG_done", "flow_png"


@dataclass(frozen=True)
class ClipFrame:
    """One ground-truth frame: ``image``, ``foreground``, ``background`` float32 ``H x W x 3``
    in [0, 1]; ``alpha`` float32 ``H x W`` in [0, 1]; ``alpha_raw`` the alpha as stored
    (uint8 or uint16), from which trimaps are made."""

    index: int
    name: str
    image: np.ndarray
    foreground: np.ndarray
    background: np.ndarray
    alpha: np.ndarray
    alpha_raw: np.ndarray


def _imread(path: Path, flags: int = cv2.IMREAD_UNCHANGED, *, clip: str | None = None,
            frame: int | None = None) -> np.ndarray:
    """Frame ``frame`` of ``clip`` (named in the error) as OpenCV reads it."""
    where = f"clip {clip}: " if clip is not None else ""  # the frame is said by the error
    if not path.is_file():
        raise ReadError(f"{where}the file does not exist", path=path, frame=frame, hint="is the dataset complete?")
    data = cv2.imread(str(path), flags)
    if data is None:
        raise ReadError(f"{where}cannot decode the image (a damaged or cut-short file?)", path=path, frame=frame,
                        hint="replace the file from the dataset" + (
                            ", or leave the clip out (list the other clips in the config's 'clips')"
                            if clip is not None else ""))
    return data


def _unit(x: np.ndarray) -> np.ndarray:
    # Divide in float64, then cast: float32(v / 255.0), as the reference evaluation.
    if np.issubdtype(x.dtype, np.integer):
        return (x / float(np.iinfo(x.dtype).max)).astype(np.float32)
    return x.astype(np.float32)


class Clip:
    """One clip of the dataset; frames are read on demand by 0-based index."""

    def __init__(self, root: Path, name: str, keys: list[str], corr: dict[str, str]) -> None:
        self.root = root
        self.name = name
        self.keys = keys  # "<category>/<clip>/<NNNNN>.png", sorted
        self._corr = corr

    def __len__(self) -> int:
        return len(self.keys)

    def __repr__(self) -> str:
        return f"Clip({self.name!r}, frames={len(self)})"

    @property
    def stems(self) -> list[str]:
        """Frame names without extension (``"00000"``...)."""
        return [os.path.splitext(os.path.basename(k))[0] for k in self.keys]

    def _key(self, index: int) -> str:
        if not 0 <= index < len(self.keys):
            raise IndexError(f"clip {self.name} has frames 0..{len(self.keys) - 1}, not {index}")
        return self.keys[index]

    def fg_path(self, index: int) -> Path:
        return self.root / FG_FOLDER / self._key(index)

    def bg_path(self, index: int) -> Path:
        path = self.root / BG_FOLDER / self._corr[self._key(index)]
        png = path.with_suffix(".png")
        return png if not path.exists() and png.exists() else path  # the name listed when neither is there

    def read_alpha_raw(self, index: int) -> np.ndarray:
        """The alpha channel as stored (uint8 / uint16 ``H x W``)."""
        path = self.fg_path(index)
        fg = _imread(path, clip=self.name, frame=index)
        if fg.ndim != 3 or fg.shape[2] != 4:
            raise ReadError(f"a foreground frame must be RGBA, got shape {fg.shape}", path=path, frame=index)
        return fg[:, :, 3]

    def read(self, index: int) -> ClipFrame:
        """Frame ``index``: foreground, alpha, background and their float composite."""
        path = self.fg_path(index)
        fg = _imread(path, clip=self.name, frame=index)
        if fg.ndim != 3 or fg.shape[2] != 4:
            raise ReadError(f"a foreground frame must be RGBA, got shape {fg.shape}", path=path, frame=index)
        bg_path = self.bg_path(index)
        bg = _imread(bg_path, cv2.IMREAD_COLOR, clip=self.name, frame=index)
        if bg.shape[:2] != fg.shape[:2]:
            raise FrameSizeError(
                f"background {bg.shape[1]}x{bg.shape[0]} differs from foreground {fg.shape[1]}x{fg.shape[0]}",
                path=bg_path,
                frame=index,
            )
        raw = fg[:, :, 3]
        alpha = _unit(raw)
        f = _unit(fg[:, :, 2::-1])
        b = _unit(bg[:, :, ::-1])
        a3 = alpha[:, :, None]
        image = f * a3 + b * (1 - a3)
        return ClipFrame(index, self.stems[index], image, f, b, alpha, raw)

    def frames(self) -> Iterator[ClipFrame]:
        """All frames in order, one at a time."""
        for i in range(len(self)):
            yield self.read(i)

    def trimap(self, index: int, width: str = "medium", alpha_raw: np.ndarray | None = None) -> np.ndarray:
        """uint8 0/128/255 trimap of frame ``index`` at ``width`` (narrow / medium / wide)."""
        check_choice(width, TRIMAP_KERNELS, "trimap width")
        raw = self.read_alpha_raw(index) if alpha_raw is None else alpha_raw
        return from_alpha(raw, TRIMAP_KERNELS[width])

    def flow_path(self, index: int) -> Path:
        """Path of the forward flow PNG ``index -> index + 1``."""
        stems = self.stems
        if not 0 <= index < len(stems) - 1:
            raise IndexError(f"clip {self.name} has no frame after {index}")
        return self.root / FLOW_FOLDER / self.name / f"flow_{stems[index]}_{stems[index + 1]}.png"

    def has_flow(self) -> bool:
        return len(self) > 1 and all(self.flow_path(i).is_file() for i in range(len(self) - 1))

    def flow(self, index: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Forward flow ``index -> index + 1`` from flow_png, or None if the file is absent."""
        from tcvom.evaluation.metrics import read_flow_png

        path = self.flow_path(index)
        return read_flow_png(path) if path.is_file() else None


def split_file(root: str | Path, split: str, subset: bool = False) -> Path:
    """The file listing the clips of ``split`` (``train_videos.txt``...) in a dataset at ``root``."""
    return Path(root) / (f"{split}_videos_subset.txt" if subset else f"{split}_videos.txt")


def splits(root: str | Path, subset: bool = False) -> list[str]:
    """The splits a dataset at ``root`` lists clips for (``subset``: the subsets')."""
    suffix = "_videos_subset.txt" if subset else "_videos.txt"
    return sorted(p.name[: -len(suffix)] for p in Path(root).glob(f"*{suffix}") if p.is_file())


class VideoMatting108:
    """The clips of one split of a VideoMatting108-layout dataset.

    ``clips`` filters by name: full ``"<category>/<clip>"`` names, bare clip names or
    shell patterns (``"animal/*"``); a filter that matches nothing raises InputError.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "val",
        clips: Sequence[str] | None = None,
        subset: bool = False,
    ) -> None:
        self.root = Path(root)
        corr_path = self.root / "frame_corr.json"
        if not (self.root / FG_FOLDER).is_dir() or not corr_path.is_file():
            raise InputError(
                "not a VideoMatting108-layout dataset (FG_done/ or frame_corr.json is missing)",
                path=self.root,
                hint="make a synthetic one with: tcvom eval --make-synthetic DIR",
            )
        split_path = split_file(self.root, split, subset)
        if not split_path.is_file():
            listed = splits(self.root, subset)
            raise InputError(f"the split file for '{split}' is missing", path=split_path,
                             hint=f"the dataset's splits: {', '.join(listed)}" if listed else
                             f"write {split_path.name}, the split's clip names one per line")
        try:
            corr = json.loads(corr_path.read_text())
        except (OSError, ValueError) as exc:
            raise ReadError(f"cannot parse frame_corr.json: {exc}", path=corr_path) from exc
        by_clip: dict[str, list[str]] = {}
        for key in sorted(corr):
            by_clip.setdefault(os.path.dirname(key), []).append(key)
        names = [line.strip() for line in split_path.read_text().splitlines() if line.strip()]
        for name in names:
            if name not in by_clip:
                raise InputError(f"clip '{name}' is listed in the split but has no frame in frame_corr.json", path=split_path)
        if clips:
            selected = [n for n in names if any(_matches(n, pat) for pat in clips)]
            unmatched = [pat for pat in clips if not any(_matches(n, pat) for n in names)]
            if unmatched:
                raise InputError(
                    f"no clip matches {', '.join(map(repr, unmatched))}",
                    path=split_path,
                    hint=f"available: {', '.join(names[:20])}{' ...' if len(names) > 20 else ''}",
                )
            names = selected
        self._clips = {n: Clip(self.root, n, by_clip[n], corr) for n in names}
        for clip in self._clips.values():
            _check_numbering(clip, corr_path)

    @property
    def clip_names(self) -> list[str]:
        return list(self._clips)

    def __len__(self) -> int:
        return len(self._clips)

    def __iter__(self) -> Iterator[Clip]:
        return iter(self._clips.values())

    def clip(self, name: str) -> Clip:
        try:
            return self._clips[name]
        except KeyError:
            raise InputError(f"no clip named '{name}' in this selection", path=self.root) from None


def _check_numbering(clip: Clip, corr_path: Path) -> None:
    """A clip's frames are its ``frame_corr.json`` entries, read by 0-based index (and its
    predictions by that number): refuse entries numbered otherwise than 00000 on without a
    gap (from the file alone: nothing else is read). One left out of the file shifted every
    later frame onto the next one's truth (evaluated, and trained as neighbours, exit 0)."""
    stems = clip.stems
    numbers = [int(s) if s.isdigit() else None for s in stems]
    wrong = next((i for i, n in enumerate(numbers) if n != i), None)
    if wrong is None:
        return
    if numbers[wrong] is None:
        problem = f"frame_corr.json names its frame {stems[wrong]!r}, which is no frame number"
    else:
        problem = f"frame_corr.json lists its frames without {wrong:05d} (from {stems[0]} to {stems[-1]})"
    raise InputError(f"clip '{clip.name}': {problem}: a clip's frames are numbered 00000, 00001, ... without a gap, "
                     "and read (and their predictions named) by that number", path=corr_path,
                     hint=f"give every frame of FG_done/{clip.name} its background in frame_corr.json, or renumber "
                     "the clip's frames from 00000")


def _matches(name: str, pattern: str) -> bool:
    return name == pattern or os.path.basename(name) == pattern or fnmatch.fnmatchcase(name, pattern)
