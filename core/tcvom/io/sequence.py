"""Image sequences named the way VFX people name them, parsed with fileseq.

Accepted: ``plate.####.exr`` (one ``#`` per digit, as in Nuke), ``plate.%04d.exr``,
``plate.$F4.exr``, ``plate.@.exr`` (unpadded), with or without a frame range in the name
(``plate.1001-1100####.exr``), or a single file ``plate.1001.exr``. Frame ranges use
fileseq's syntax: ``1001-1100``, ``1001-1100x2``, ``1001,1005,1010-1020``; Open Job
Description's step, ``1001-1100:2``, is read as ``1001-1100x2`` (a farm passes a task's
frames in that form), not as fileseq's staggered order of every frame.
"""

from __future__ import annotations

import logging
import numbers
import os
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import fileseq

from tcvom.errors import InputError, MissingFrameError, shown

PAD_STYLE = fileseq.PAD_STYLE_HASH1
log = logging.getLogger("tcvom")
PATTERN_MARKS = ("#", "@", "%", "$F")


#: Open Job Description's stepped range, ``first-last:step`` (one comma-separated part).
_OPENJD_STEP = re.compile(r"^\s*(-?\d+)\s*-\s*(-?\d+)\s*:\s*(-?\d+)\s*$")


def _openjd_step(part: str, text: str) -> str:
    """One part of a range with OpenJD's step as fileseq's ``first-lastxstep`` (a negative
    step runs down, from a larger first frame: ``1010-1001:-2``); any other part as it is."""
    match = _OPENJD_STEP.match(part)
    if match is None:
        return part
    first, last, step = (int(g) for g in match.groups())
    if step == 0 or ((step > 0) != (last >= first) and first != last):
        how = "has a step of 0" if step == 0 else f"steps by {step} away from its last frame"
        raise InputError(f"{text!r} is not a frame range: {part.strip()} {how}",
                         hint="step up from the smaller frame (1001-1010:2) or down from the larger (1010-1001:-2)")
    return f"{first}-{last}x{abs(step)}"


def parse_frame_range(text: str) -> list[int]:
    """Frame numbers of a fileseq range string (``1001-1100``, ``1-10x2``, ``5,7,9``), sorted.

    A part ``first-last:step`` is Open Job Description's step (what an OpenJD chunk of a
    shot on twos looks like, ``1001-1009:2``, or down, ``1009-1001:-2``) and is read as
    fileseq's ``first-lastxstep``:
    fileseq would read ``:`` as a staggered order of *every* frame of the range, which as a
    selection would silently add the frames between the steps.
    """
    parts = [_openjd_step(part, str(text)) for part in str(text).split(",")]
    try:
        frames = sorted(set(fileseq.FrameSet(",".join(parts).strip())))
    except fileseq.MaxSizeException as exc:
        raise InputError(f"the frame range {text!r} holds more than {fileseq.constants.MAX_FRAME_SIZE:,} frames",
                         hint="check the first and last frame numbers") from exc
    except (fileseq.ParseException, ValueError) as exc:
        raise InputError(
            f"{text!r} is not a frame range", hint="write it like 1001-1100, 1001-1100x2 or 1001,1005,1010-1020"
        ) from exc
    if not frames:
        raise InputError(f"the frame range {text!r} holds no frame")
    if any(f != int(f) for f in frames) or "." in str(text):  # fileseq's subframes: 1003.9 was frame 1003
        raise InputError(f"{text!r} is not a frame range: frame numbers and steps are whole numbers",
                         hint="write it like 1001-1100, 1001-1100x2 or 1001,1005,1010-1020")
    return [int(f) for f in frames]


def is_pattern(text: str) -> bool:
    """True if ``text`` names a frame sequence (has a padding mark) rather than one file."""
    name = Path(text).name
    return any(mark in name for mark in PATTERN_MARKS)


def one_spelling(name: str) -> str:
    """A sequence pattern's file name in one spelling, without padding or range
    (``plate.####.exr``, ``plate.%04d.exr``, ``plate.$F4.exr``, ``plate.1001-1008#.exr``:
    ``plate.#.exr``; the padding only says which files are read, and what a frame was made
    from is their content); any other name as it is."""
    if not is_pattern(name):
        return name
    try:
        seq = fileseq.FileSequence(name, pad_style=PAD_STYLE, allow_subframes=False)
    except fileseq.ParseException:
        return name
    return f"{seq.basename()}#{seq.extension()}"


def parse_sequence(text: str, what: str) -> fileseq.FileSequence:
    """``text`` as a fileseq sequence; an :class:`InputError` naming the cause when fileseq
    cannot read it (a folder whose name holds a padding mark is the usual one)."""
    try:
        return fileseq.FileSequence(text, pad_style=PAD_STYLE, allow_subframes=False)
    except fileseq.ParseException as exc:
        folder = str(Path(text).parent)
        marks = [mark for mark in PATTERN_MARKS if mark in folder]
        if marks:
            raise InputError(
                f"the folder {folder} holds {marks[0]!r}, which a sequence pattern reads as a frame number: tcvom "
                "cannot read or write a sequence in it", path=text,
                hint="rename the folder, or reach it through a symbolic link whose path holds no # @ % $F",
            ) from exc
        if is_pattern(text) and not Path(text).is_file():  # shot_%04d_v2.exr (logo@2x.png is a file's name)
            raise _mark_placed(text, what) from exc
        raise InputError(f"cannot parse the {what} ({exc})", path=text) from exc


def _mark_placed(text: str, what: str) -> InputError:
    """The error for a pattern whose frame number mark is not where fileseq reads one."""
    if what.startswith("output"):
        hint = "name the output name.####.ext or name_####.ext"
    else:
        hint = ("name the files name.####.ext or name_####.ext (a suffix after the number needs a dot: "
                "name.####.v2.ext); rename them, or link them under such names")
    return InputError(f"the {what}'s frame number mark is not just before the extension: tcvom reads none there",
                      path=text, hint=hint)


def format_range(frames: list[int]) -> str:
    """A compact fileseq range string for a list of frames (``1001-1003,1005``)."""
    return str(fileseq.FrameSet(frames)) if frames else ""


def format_openjd_range(frames: list[int]) -> str:
    """A compact Open Job Description range expression for a list of frames
    (``1001-1009:2,1020``): fileseq's form with OpenJD's step mark."""
    return format_range(frames).replace("x", ":")


class ImageSequence:
    """Frame number -> file path of one image sequence, with its frames checked on disk.

    ``frames`` selects a range (fileseq syntax or a list); every selected frame must
    exist. Without it, the range in the pattern is used, or else the frames found on
    disk, which must then be contiguous (a hole in a plate is almost always a failed
    render or copy; ``holes_hint`` is the advice besides rendering it again).
    """

    def __init__(
        self,
        pattern: str | Path,
        frames: str | list[int] | None = None,
        *,
        what: str = "plate",
        contiguous: bool = True,
        holes_hint: str = "set the shot to the frames that exist with --shot-range {frames}",
    ) -> None:
        text = str(pattern)
        self.what = what
        self.contiguous = contiguous
        self.holes_hint = holes_hint  # the second half of the advice for a hole: {frames} the frames there are
        if Path(text).is_dir():
            raise InputError(
                f"the {what} is a folder, not a sequence of files",
                path=text,
                hint=f"name its files with a pattern, e.g. {_suggest_pattern(Path(text))}",
            )
        seq = parse_sequence(text, f"{what} sequence name")
        if not seq.padding() and not seq.frameSet() and is_pattern(text) and not Path(text).is_file():
            # shot_####_v2.exr was "frame 1 missing" (logo@2x.png, a file of that name, is one)
            raise _mark_placed(text, f"{what} sequence name")
        if not seq.padding() and not seq.frameSet():
            # A single file with no frame number: a one-frame "sequence" numbered 1.
            refuse_movie(text, what)
            self._seq = None
            self._single = Path(text)
            self.pattern = text
            selected = [1] if frames is None else frame_selection(frames)
            if selected != [1]:
                stem, suffix = Path(text).stem, Path(text).suffix
                raise InputError(f"the {what} {text} is a single file without a frame number; it has no frames "
                                 f"{format_range(selected)}",
                                 # a plate has no FRAME=PATH form (odd-inputs QA: the hint led nowhere)
                                 hint=f"a plate file without a frame number is frame 1 (key it as 1=KEY); or copy "
                                 f"or link it with its frame in its name ({stem}.{selected[0]}{suffix}) and give that"
                                 if what == "plate" else
                                 f"give it with its frame ({selected[0]}={text}), or "
                                 "name a sequence with a pattern (name.####.ext)" if len(selected) == 1 else
                                 "name a sequence with a pattern (name.####.ext)")
            self.frame_numbers = [1]
            self._check_exist()
            return
        self._single = None
        self._seq = seq
        self.pattern = text
        if frames is not None:
            selected = frame_selection(frames)
        elif seq.frameSet():
            selected = sorted(int(f) for f in seq.frameSet())
        else:
            selected = self._discover(seq)
        self.frame_numbers = selected
        self._check_exist()

    def _discover(self, seq: fileseq.FileSequence) -> list[int]:
        frames = _frames_on_disk(seq)
        in_folder, in_name = (any(mark in text for mark in "\r\n") for text in (seq.dirname(), seq.basename()))
        if not frames and (in_folder or in_name):  # fileseq cannot list such a sequence
            raise InputError(f"the {'folder' if in_folder else 'file'} name holds a line break: tcvom cannot find the "
                             "frames of a sequence so named", path=self.pattern,
                             hint="rename the folder, or reach it through a symbolic link whose path holds no line "
                             "break" if in_folder else "rename the files")
        others = _other_padding(seq, set(frames))
        listed = ", ".join(name for name, _ in others[:3]) + (", ..." if len(others) > 3 else "")
        if not frames:
            raise MissingFrameError(
                f"no {self.what} frames match this pattern" + (
                    f"; files of this name with another padding or extension case exist: {listed}" if others
                    else ""),
                path=self.pattern,
                hint="write the pattern with their padding (one # per digit; @ for unpadded numbers) and their "
                "extension" if others else None)
        if others:
            frame = others[0][1]
            log.warning("%s: %d file(s) of this name have another padding or extension case and are not frames of "
                        "this %s: %s "
                        "(frame %d of this pattern is %s: rename them to match)", self.pattern, len(others),
                        self.what, listed, frame, Path(seq.frame(frame)).name)
        holes = sorted(set(range(frames[0], frames[-1] + 1)) - set(frames)) if self.contiguous else []
        if holes:
            raise MissingFrameError(
                f"the {self.what} sequence {frames[0]}-{frames[-1]} is missing frame(s) {format_range(holes)}",
                path=self.pattern,
                frame=holes[0],
                hint="render or copy them again, or " + self.holes_hint.format(frames=format_range(frames)),
            )
        return frames

    def _check_exist(self) -> None:
        missing = [f for f in self.frame_numbers if not self.path(f).is_file()]
        if missing:
            hint = None
            if len(missing) == len(self.frame_numbers) and self._seq is not None:  # other numbers on disk?
                on_disk = _frames_on_disk(self._seq)
                if on_disk:
                    hint = (f"its files are frames {format_range(on_disk)}: number them as the frames they belong "
                            "to")
            first = self.path(missing[0])
            if first.is_dir() or first.is_symlink():  # named as missing without a word on what is there
                there = "a folder" if first.is_dir() else "a link to nothing"
                hint = f"{there} is there, not an image file" + (f"; {hint}" if hint else "")
            raise MissingFrameError(
                f"{len(missing)} {self.what} frame(s) missing: {format_range(missing)}",
                path=first,
                frame=missing[0],
                hint=hint,
            )

    @property
    def numbered(self) -> bool:
        """Whether the files carry frame numbers (a single file without one is frame 1)."""
        return self._single is None

    def path(self, frame: int) -> Path:
        """The file of ``frame`` (whether or not it is in the selected range)."""
        if self._single is not None:
            return self._single
        assert self._seq is not None
        return Path(self._seq.frame(int(frame)))

    def __len__(self) -> int:
        return len(self.frame_numbers)


RECORDS_SUFFIX = ".tcvom.json"
"""The name's end of the manifest tcvom keeps beside an output sequence (``tcvom.farm.manifest``)."""


def records_path(pattern: str | Path) -> Path:
    """Where the manifest of an output sequence lives: ``alpha.####.exr`` -> ``.alpha.tcvom.json``
    (its records folder is that name without the suffix; :mod:`tcvom.farm.manifest`)."""
    text = str(pattern)
    seq = parse_sequence(text, "sequence")  # a folder holding '#': said, with the fix (was fileseq's exception)
    stem = seq.basename().rstrip("._-") or Path(text).stem
    return Path(seq.dirname() or ".") / f".{stem}{RECORDS_SUFFIX}"


def check_records_name(pattern: str | Path) -> None:
    """Refuse an output whose manifest's name (:func:`records_path`) no file system takes,
    before anything is written (faults QA: "File name too long" about that hidden file, for
    frame files that would fit)."""
    from tcvom.io.atomic import NAME_MAX

    name = records_path(pattern).name
    size = len(os.fsencode(name))
    if size > NAME_MAX:
        raise InputError(f"the output name {Path(str(pattern)).name!r} is too long: tcvom keeps its records beside "
                         f"it in {name[:24]}...{RECORDS_SUFFIX} ({size} bytes; a file name holds at most "
                         f"{NAME_MAX})", path=pattern, hint=f"shorten the name before the frame number by "
                         f"{size - NAME_MAX} byte(s) or more")


def refuse_movie(path: str | Path, what: str) -> None:
    """Refuse a movie where tcvom reads image files (trimaps, keyframes, alphas to score: a
    roto tool's export): it was "a single file without a frame number", with advice to
    give its frame whose run then had no reader for the file."""
    from tcvom.io.sources import is_movie

    if is_movie(path) and Path(path).is_file():
        raise InputError(f"the {what} is a movie: tcvom reads {what}s from image files, one file per frame", path=path,
                         hint=f"export the {what}s as an image sequence (PNG, TIFF or EXR, e.g. name.####.png) and "
                         "give its pattern")


def _frames_on_disk(seq: fileseq.FileSequence) -> list[int]:
    """The frame numbers of the files of ``seq``'s padding on disk, sorted (none: [])."""
    pattern = f"{seq.dirname()}{seq.basename()}{seq.padding()}{seq.extension()}"
    try:
        found = fileseq.findSequenceOnDisk(pattern, strictPadding=True, pad_style=PAD_STYLE)
    except (fileseq.FileSeqException, OSError):
        return []
    return sorted(int(f) for f in (found.frameSet() or []))


def frames_on_disk(pattern: str | Path) -> list[int]:
    """The frame numbers of the files of ``pattern`` (its own padding) on disk, sorted."""
    return _frames_on_disk(parse_sequence(str(pattern), "sequence name"))


def _other_padding(seq: fileseq.FileSequence, frames: set[int]) -> list[tuple[str, int]]:
    """(name, frame number) of the files in the sequence's folder that carry its name and extension around a
    frame number but are not its frames (another padding: ``plate.1.exr`` or
    ``plate.-0002.exr`` beside ``plate.####.exr``; the extension in another case:
    ``plate.0005.PNG`` beside ``plate.####.png``, a render from another machine)."""
    folder = Path(seq.dirname() or ".")
    shape = re.compile(re.escape(seq.basename()) + r"(-?\d+)(?i:" + re.escape(seq.extension()) + ")$")
    try:
        names = sorted(entry.name for entry in folder.iterdir())
    except OSError:
        return []
    others = []
    for name in names:
        match = shape.match(name)
        if match is None:
            continue
        frame = int(match[1])
        own = Path(seq.frame(frame))
        if frame not in frames or (own.name != name and not _same_file(folder / name, own)):
            others.append((name, frame))
    return others


def _same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two names are one file (a file system blind to case: ``.PNG`` is ``.png``)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def sequences_in(folder: str | Path) -> list[str]:
    """The patterns of the numbered file sequences in ``folder`` (a file alone counts),
    in fileseq's order; none when it cannot be listed."""
    try:
        found = fileseq.findSequencesOnDisk(str(folder), pad_style=PAD_STYLE)
    except (fileseq.FileSeqException, OSError):
        found = []
    return [f"{seq.dirname()}{seq.basename()}{seq.padding()}{seq.extension()}" for seq in found if seq.padding()]


def _suggest_pattern(folder: Path) -> str:
    """A sequence pattern for the first image sequence in ``folder`` (for hints)."""
    found = sequences_in(folder)
    return found[0] if found else str(folder / "plate.####.exr")


def frame_number(value: object, what: str = "frame") -> int:
    """A frame number given in Python: an int (numpy's too), a whole float or the digits of
    one; 1002.5, True or "abc" is an :class:`InputError` (``int()`` cut 1002.5 to 1002)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and float(value).is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        return int(value)
    raise InputError(f"a {what} number must be a whole number, not {value!r}")


def frame_selection(frames: str | int | Sequence[int], *, what: str = "frame") -> list[int]:
    """Sorted unique frame numbers of a fileseq range string, one frame number or a list
    (the Python API's forms of ``--frames`` and ``--shot-range``; ``what`` names it)."""
    if isinstance(frames, str):
        return parse_frame_range(frames)
    if isinstance(frames, numbers.Integral) and not isinstance(frames, bool):
        return [int(frames)]
    message = (f"the {what} selection must be a frame range like 1001-1100, a frame number or a list of "
               f"them, not {frames!r}")
    if not isinstance(frames, Iterable):
        raise InputError(message)
    try:
        result = sorted({frame_number(f) for f in frames})
    except (InputError, TypeError) as exc:  # TypeError: a 0-d numpy array
        raise InputError(message) from exc
    if not result:
        raise InputError(f"the {what} selection holds no frame")
    return result


SUFFIX_ALIASES: dict[str, str] = {".tiff": ".tif", ".jpeg": ".jpg"}


def path_text(value: object, what: str, hint: str = "give a file pattern or a folder") -> str:
    """``value`` (text or a path) as text; None, another type or empty text is an
    :class:`InputError` naming ``what`` (an unset field of a host, a script's None), never a
    path that quietly means the current folder or a folder named "None"."""
    text = os.fspath(value) if isinstance(value, os.PathLike) else value
    if isinstance(text, str) and text.strip():
        return text
    got = "empty" if isinstance(text, str) else f"not a path ({shown(value)})"
    raise InputError(f"{what} is {got}", hint=hint)


IMAGE_OUTPUT_SUFFIXES = frozenset({".exr", ".png", ".tif", ".tiff", ".jpg", ".jpeg", ".dpx"})
"""Suffixes of an ``--out`` of frames that names one image rather than a folder (an existing
folder so named, or one written with a trailing slash, is still a folder)."""


def output_pattern(out: str | Path, default_name: str, *, format_flag: str | None = None) -> str:
    """Where a job writes frames: ``out`` itself if it is a sequence pattern, else
    ``out/default_name`` (a folder). ``default_name`` carries the padding and the file
    type, e.g. ``alpha.####.exr``.

    The one parser and check of output patterns: ``####``, ``%04d``, ``$F4`` and ``@``
    all go through fileseq here, and a pattern whose extension is not the file type
    written (``--out m.%04d.exr`` with PNG output) is an :class:`InputError`
    (``format_flag`` names the flag that picks the type, for the hint).
    """
    text = path_text(out, "the output folder or pattern")
    if not is_pattern(text):
        suffix = Path(text).suffix.lower()
        folder = text.endswith(("/", os.sep)) or Path(text).is_dir()  # "a.exr/" names a folder
        if suffix in IMAGE_OUTPUT_SUFFIXES and not folder:  # made a folder named a.exr
            raise InputError("the output names one image file, but a job writes a file a frame", path=text,
                             hint=f"give a folder, or a pattern of the frames' names like "
                             f"{Path(text).with_suffix('').name}.####{Path(default_name).suffix}")
        pattern = str(Path(text) / default_name)
        parse_sequence(pattern, "output pattern")  # a folder whose path holds # @ % $F: refused, with the fix
        return pattern
    seq = parse_sequence(text, "output pattern")
    if not seq.padding():
        raise InputError("the output pattern has no frame number", path=text,
                         hint="write it like name.####.exr, name.%04d.exr or name.@.exr")
    if seq.frameSet():
        raise InputError("an output pattern names no frame range", path=text,
                         hint="select the frames with --frames instead")
    want = Path(default_name).suffix.lower()
    have = seq.extension().lower()
    if SUFFIX_ALIASES.get(have, have) != SUFFIX_ALIASES.get(want, want):
        pick = f", or choose the format that writes {have} files with {format_flag}" if format_flag and have else ""
        raise InputError(
            f"the output pattern ends in {have or 'no extension'}, but this output is written as {want} files",
            path=text,
            hint=f"name the files like NAME.####{want}{pick}",
        )
    return text


def frame_path(pattern: str, frame: int) -> Path:
    """The file of ``frame`` in an output ``pattern``."""
    return Path(_output_sequence(str(pattern)).frame(int(frame)))


@lru_cache(maxsize=64)
def _output_sequence(pattern: str) -> fileseq.FileSequence:
    """An output pattern parsed once (fileseq's parse took 0.5 ms, five times a frame of a
    rerun: 2.5 s of a 1000-frame shot's no-op rerun)."""
    return fileseq.FileSequence(pattern, pad_style=PAD_STYLE, allow_subframes=False)
