"""Driving the ``tcvom`` command line from a host application (Blender, Nuke).

Host adapters cannot import tcvom (their Python has no torch, OpenImageIO...), so they
run the ``tcvom`` executable of another environment as a subprocess and read its
``--progress json`` lines. This module holds the logic they share, and nothing else:

- :func:`find_executable`: the ``tcvom`` command of an environment (a path the user set,
  ``$TCVOM_EXECUTABLE``, or ``tcvom`` on ``PATH``);
- :class:`RunSpec` and :func:`build_run_args`: the argument list of ``tcvom run``;
  :func:`ocio_colourspace`: a host's name of the plate's colour space as tcvom's
  OpenColorIO name (``--input-colorspace``), from one table for every host;
- :class:`Job`: the subprocess (an argument list, never a shell) with background threads
  reading its output, :meth:`Job.poll` for a host's timer, :meth:`Job.cancel`, and
  :meth:`Job.wait` for hosts that run synchronously (farm, background mode);
- :func:`shot_folder`: the one output folder of a shot and node, into which every press
  runs ``tcvom run``: tcvom records what each frame was made from and decides what it can
  reuse, so hosts keep no cache key of their own (one that missed what ``--method auto``
  resolves to showed stale mattes); :func:`install_folder` puts the host's exported inputs
  there without touching unchanged files; :func:`result_summary` says what a run did;
- :func:`collect_alpha`: the alpha files of a finished job, checked to be all there;
- :func:`read_review` and :class:`Review`: the run's review (doubtful frames, the frames
  to key next), for the hosts' jump buttons.

It uses the standard library only and runs on Python 3.9 (Nuke 13/14), so a host add-on
can vendor this one file (``build_addon.py`` does) without installing tcvom.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import re
import shutil
import signal
import socket
import stat
import subprocess
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The exit codes of the tcvom command line (tcvom.errors; repeated so hosts need no tcvom).
EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_BAD_INPUT = 2
EXIT_MISSING = 3
EXIT_INTERRUPTED = 130  # Ctrl-C
EXIT_TERMINATED = 143  # SIGTERM from outside the host (a reaper, a logout); the host's own Cancel is "cancelled"

ENV_EXECUTABLE = "TCVOM_EXECUTABLE"
#: The tcvom this file is part of (tcvom.__version__; a test keeps them equal): an add-on
#: vendors it, and says so when the tcvom it runs is another version.
VERSION = "0.1.0"
# argparse's words for an option or choice the command line does not know: an add-on of
# another version asked for it, not the artist.
_UNKNOWN_TO_CLI = re.compile(r"^tcvom [a-z ]+: error: (unrecognised option|unrecognized arguments|argument \S+: "
                             r"invalid choice)")
# tcvom's atomic writers put this in temporary file names (tcvom.io.atomic.TEMP_MARK).
TEMP_MARK = ".tcvom-tmp-"
# Environment variables of the host's own Python that must not leak into tcvom's.
_HOST_PYTHON_VARS = ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONNOUSERSITE", "PYTHONEXECUTABLE")
_FRAME_DIGITS = re.compile(r"(?:(?<=[._])-)?\d+(?!.*\d)")
"""A file name's frame number: its last digits, and a minus sign right after a ``.`` or ``_``
(``plate.-003.exr`` is frame -3, as tcvom writes it; ``plate-1001.exr`` frame 1001)."""
# what tcvom reads as a frame number's padding in a path (tcvom.io.sequence.PATTERN_MARKS)
_PADDING_MARK = re.compile(r"#|@|\$F|%\d*d")


#: Signals that end a process that crashed (the others come from outside: a kill, a hang-up).
_CRASH_SIGNALS = frozenset(int(getattr(signal, name)) for name in ("SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGABRT",
                                                                     "SIGSYS", "SIGTRAP") if hasattr(signal, name))


def _signal_name(number: int) -> str:
    """``9 (SIGKILL)``, or the number alone for a signal this platform does not name."""
    try:
        return f"{number} ({signal.Signals(number).name})"
    except ValueError:
        return str(number)


class HostError(Exception):
    """An error a host shows to the artist: what went wrong and the fix.

    ``exit_code`` is tcvom's (2 bad input, 3 missing weights or package, 1 a bug), or
    ``None`` for problems found before tcvom ran (no executable...).
    """

    def __init__(self, message: str, fix: str = "", exit_code: int | None = None) -> None:
        self.message = message
        self.fix = fix
        self.exit_code = exit_code
        super().__init__(f"{message} ({fix})" if fix else message)


def find_executable(preferred: str | None = None, setting: str = "the add-on preferences") -> list[str]:
    """The command (argument list prefix) that runs tcvom.

    ``preferred`` may be the ``tcvom`` executable, a Python interpreter of an environment
    with tcvom installed (run as ``python -m tcvom``) or the environment's folder (a venv
    or conda env: ``bin/tcvom`` or ``Scripts/tcvom.exe`` inside). Without it,
    ``$TCVOM_EXECUTABLE`` and then ``tcvom`` on ``PATH`` are used. ``setting`` names where
    the artist sets ``preferred`` in the host. Raises :class:`HostError` naming what was
    tried, and that setting, when nothing is found.
    """
    tried = []
    candidates = []
    preferred = (preferred or "").strip() or None  # pasted with a space around it
    if preferred:
        candidates.append((f"the path in {setting}", os.path.expanduser(preferred)))
    elif os.environ.get(ENV_EXECUTABLE):
        candidates.append((f"${ENV_EXECUTABLE}", os.path.expanduser(os.environ[ENV_EXECUTABLE])))
    for origin, path in candidates:
        command = _command_for(path)
        if command:
            return command
        tried.append(f"{origin} ({path})")
    if not candidates:
        found = shutil.which("tcvom")
        if found:
            return [found]
        tried.append("tcvom on PATH")
    raise HostError(
        "the tcvom command line was not found: tried " + ", ".join(tried),
        "install tcvom in a Python environment (pip install of its repository folder, or make venv there) and set its tcvom "
        f"executable or environment folder in {setting}",
    )


def _command_for(path: str) -> list[str] | None:
    p = Path(path)
    if p.is_dir():
        for sub in ("bin/tcvom", "Scripts/tcvom.exe", "Scripts/tcvom", "tcvom", "tcvom.exe"):
            if (p / sub).is_file() and os.access(p / sub, os.X_OK):
                return [str(p / sub)]
        return None
    if p.is_file() and os.access(p, os.X_OK):
        if p.name.lower().startswith("python"):
            return [str(p), "-m", "tcvom"]
        return [str(p)]
    return None


@dataclass
class RunSpec:
    """The inputs and settings of one ``tcvom run`` (flags 1:1).

    ``keyframes`` maps plate frame numbers to keyframe trimap files (absolute paths);
    ``plate`` is a sequence pattern (``plate.####.exr``) or a movie file.
    """

    plate: str
    out: str
    keyframes: dict[int, str] = field(default_factory=dict)
    method: str = "auto"
    weights: str | None = None
    matting_weights: str | None = None
    #: Matting base (gca, fba, dim, index) whose registered weights are used; None: tcvom's default.
    base: str | None = None
    device: str = "cpu"
    precision: str = "auto"
    input_colorspace: str | None = None
    frames: str | None = None
    #: The frames that make up the shot (``--shot-range``): a host's frame range, whose
    #: reruns with other settings then replace its folder's frames, where ``frames`` (a part
    #: of the shot) is refused.
    shot_range: str | None = None
    overwrite: bool = False

    @property
    def uses_weights(self) -> bool:
        """Whether the weight paths matter: the classical method needs none (a host hides its
        weight fields then, and a stale path left in them is neither checked nor passed)."""
        return self.method != "classical"

    def check(self) -> None:
        """Raise :class:`HostError` for inputs that cannot work (before starting tcvom)."""
        if not self.keyframes:
            raise HostError("no keyframe trimaps were given", "add at least one keyframe trimap")
        for frame, path in sorted(self.keyframes.items()):
            if not os.path.isfile(path):
                raise HostError(
                    f"the keyframe trimap of frame {frame} is missing: {path}",
                    "paint or re-assign the keyframe trimap, or remove the keyframe",
                )
        for what, path in (("trimap weights", self.weights), ("matting weights", self.matting_weights)):
            if path and self.uses_weights and not os.path.isfile(path):
                raise HostError(
                    f"the {what} file does not exist: {path}",
                    "download the weights (tcvom weights --help) or choose the classical method",
                    EXIT_MISSING,
                )


def build_run_args(command: Sequence[str], spec: RunSpec) -> list[str]:
    """The full argument list of ``tcvom run`` for ``spec``, with ``--progress json``."""
    args = [*command, "run", "--plate", spec.plate]
    args += ["--keyframes", *[f"{frame}={path}" for frame, path in sorted(spec.keyframes.items())]]
    args += ["--out", spec.out, "--method", spec.method, "--device", spec.device]
    if spec.weights and spec.uses_weights:
        args += ["--weights", spec.weights]
    if spec.matting_weights and spec.uses_weights:
        args += ["--matting-weights", spec.matting_weights]
    if spec.base and spec.method != "classical":
        args += ["--base", spec.base]
    if spec.precision != "auto":
        args += ["--precision", spec.precision]
    if spec.input_colorspace:
        args += ["--input-colorspace", spec.input_colorspace]
    if spec.shot_range:
        args.append(f"--shot-range={spec.shot_range}")  # one argument: "-3-4" alone would read as a flag
    if spec.frames:
        args.append(f"--frames={spec.frames}")
    if spec.overwrite:
        args.append("--overwrite")
    args += ["--progress", "json"]
    return args


# Host colour-space names, lower case -> the same colour space in tcvom's OpenColorIO
# config (the built-in studio-config-latest). A name that is not here has no known
# equivalent: Nuke then renders the plate in its working space, Blender asks the artist.
# The tests check every value against tcvom's config and Blender's names against bpy.
NUKE_COLOURSPACES: dict[str, str] = {  # Read node: nuke-default, ACES 1.x and OCIO v2 configs
    "linear": "Linear Rec.709 (sRGB)",
    "utility - linear - srgb": "Linear Rec.709 (sRGB)",
    "linear rec.709 (srgb)": "Linear Rec.709 (sRGB)",
    "srgb": "sRGB Encoded Rec.709 (sRGB)",
    "utility - srgb - texture": "sRGB Encoded Rec.709 (sRGB)",
    "srgb encoded rec.709 (srgb)": "sRGB Encoded Rec.709 (sRGB)",
    "srgb - texture": "sRGB Encoded Rec.709 (sRGB)",
    "gamma2.2": "Gamma 2.2 Encoded Rec.709",
    "gamma 2.2 encoded rec.709": "Gamma 2.2 Encoded Rec.709",
    "gamma1.8": "Gamma 1.8 Encoded Rec.709",
    "gamma 1.8 encoded rec.709": "Gamma 1.8 Encoded Rec.709",
    "acescg": "ACEScg",
    "aces - acescg": "ACEScg",
    "aces2065-1": "ACES2065-1",
    "aces - aces2065-1": "ACES2065-1",
    "acescct": "ACEScct",
    "aces - acescct": "ACEScct",
    "acescc": "ACEScc",
    "aces - acescc": "ACEScc",
    # Not nuke-default's AlexaV3LogC: the LogC curve alone, where tcvom's space also takes
    # ALEXA Wide Gamut to ACES primaries (a plate of it is rendered through Nuke's own curve).
    "arri logc3 (ei800)": "ARRI LogC3 (EI800)",
    "input - arri - v3 logc (ei800) - wide gamut": "ARRI LogC3 (EI800)",
}
# Blender 4.2-5.0's own config. Not here, on purpose: the display-referred view outputs
# (AgX/Filmic/ACES/Khronos ... sRGB), AgX Log and Filmic Log (no equivalent), Rec.2020
# (2.4 gamma Rec.2020), CIE-XYZ, E-Gamut, Rec.2100, Non-Color (data) and scene_linear
# (a role: whatever the .blend's working space is).
BLENDER_COLOURSPACES: dict[str, str] = {
    "linear rec.709": "Linear Rec.709 (sRGB)",
    "srgb": "sRGB Encoded Rec.709 (sRGB)",
    "rec.1886": "Gamma 2.4 Encoded Rec.709",
    "display p3": "sRGB Encoded P3-D65",
    "linear dci-p3 d65": "Linear P3-D65",
    "linear rec.2020": "Linear Rec.2020",
    "acescg": "ACEScg",
    "aces2065-1": "ACES2065-1",
    "acescct": "ACEScct",
    "acescc": "ACEScc",
}
HOST_COLOURSPACES: dict[str, str] = {**NUKE_COLOURSPACES, **BLENDER_COLOURSPACES}


def ocio_colourspace(name: str) -> str | None:
    """tcvom's OpenColorIO name of a host's colour space ``name`` (any case: Nuke's Read
    names, Blender's), or ``None`` when the table knows no equivalent."""
    return HOST_COLOURSPACES.get(name.strip().lower())


def parse_event(line: str) -> dict[str, Any] | None:
    """One ``--progress json`` line as a dict, or ``None`` for anything else
    (a stray print, a blank line)."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        event = json.loads(text)
    except ValueError:
        return None
    if not isinstance(event, dict) or not isinstance(event.get("event"), str):
        return None
    return event


def sequence_pattern(path: str) -> str:
    """A frame file's path as a ``####`` pattern: ``/a/plate.1001.exr`` -> ``/a/plate.####.exr``.

    The last group of digits in the file name is the frame number (as Blender and Nuke
    read sequences), with a minus sign right after a ``.`` or ``_``, which counts in the
    padding as tcvom and Nuke write it (``plate.-003.exr`` -> ``plate.####.exr``; Blender
    writes ``-0003`` and plays no frame below zero): the width is the picked file's, so of
    a sequence through zero pick a file at 0 or above (``plate.-3.exr`` of an unpadded one
    gives ``##``). Raises :class:`HostError` if the name has no digits, or holds a padding
    mark (``#``, ``@``, ``$F``, ``%04d``).
    """
    head, name = os.path.split(path)
    match = _FRAME_DIGITS.search(name)
    if not match:
        raise HostError(
            f"{path} has no frame number in its name",
            "use an image sequence named like plate.1001.exr, or a movie file",
        )
    mark = _PADDING_MARK.search(name)
    if mark:  # the pattern's padding would not be the only mark: tcvom could not read it
        raise HostError(
            f"{path}: the file name holds {mark.group()!r}, which tcvom reads as a frame number's padding",
            f"rename the files without {mark.group()!r} (or link them under such names)",
        )
    # the sign counts in the padding, as tcvom writes frames (-3 at #### is -003)
    return os.path.join(head, name[: match.start()] + "#" * len(match.group()) + name[match.end() :])


def sequence_files(pattern: str) -> list[tuple[int, str]]:
    """The files of a ``#``-padded sequence pattern on disk, as sorted ``(frame, path)``."""
    head, name = os.path.split(pattern)
    match = re.search(r"#+", name)
    if not match:
        return [(0, pattern)] if os.path.isfile(pattern) else []
    regex = re.compile(re.escape(name[: match.start()]) + "(-?\\d+)" + re.escape(name[match.end() :]) + "$")
    width = len(match.group())
    found = []
    try:
        entries = os.listdir(head or ".")
    except OSError:
        return []
    for entry in entries:
        m = regex.match(entry)
        # the frame's file as tcvom names it: the sign counts in the padding (-3 at #### is -003)
        if m and f"{int(m.group(1)):0{width}d}" == m.group(1):
            found.append((int(m.group(1)), os.path.join(head, entry)))
    return sorted(found)


def _content_token(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _count(result: dict[str, Any], kind: str, output: str) -> int | None:
    entry = result.get(kind)
    if isinstance(entry, dict) and isinstance(entry.get(output), dict):
        count = entry[output].get("count")
        return count if isinstance(count, int) else None
    return None


def result_summary(result: dict[str, Any] | None) -> str:
    """What a finished ``tcvom run`` did, from its ``result`` event, for a status line:
    ``"classical: alpha 2 computed, 6 reused; trimaps 3 computed, 5 reused"`` (older tcvom
    versions: frames written and already done)."""
    if not result:
        return ""
    parts = []
    methods = result.get("methods") if isinstance(result.get("methods"), dict) else {}
    mixed = len(set(methods.values())) > 1  # auto without STM weights: classical trimaps, network mattes
    for output in ("alpha", "trimaps"):
        computed, reused = _count(result, "computed", output), _count(result, "reused", output)
        if computed is None and reused is None:
            continue
        part = f"{output} {computed or 0} computed, {reused or 0} reused"
        removed = _count(result, "removed", output)
        part += f", {removed} removed" if removed else ""
        parts.append(part + (f" ({methods[output]})" if mixed and output in methods else ""))
    if not parts:
        parts.append(f"{result.get('written', 0)} frames computed, {result.get('skipped', 0)} already done")
    method = None if mixed else result.get("method")
    return (f"{method}: " if method else "") + "; ".join(parts)


def warnings_summary(warnings: Sequence[str], limit: int = 2) -> str:
    """The warnings of a finished run (``Job.warnings``) for a status line: ``"2 warnings:
    A; B"``, the first ``limit`` of them and how many more; ``""`` without any."""
    unique = list(dict.fromkeys(w for w in warnings if w))
    if not unique:
        return ""
    shown = "; ".join(unique[:limit])
    more = f" (and {len(unique) - limit} more)" if len(unique) > limit else ""
    return f"{len(unique)} warning{'' if len(unique) == 1 else 's'}: {shown}{more}"


def alpha_pattern(out: str) -> str:
    """Where ``tcvom run --out OUT`` writes the alpha matte."""
    return os.path.join(out, "alpha", "alpha.####.exr")


def collect_alpha(out: str, frames: Sequence[int] | None = None) -> dict[int, str]:
    """The alpha files of a job's output folder, by frame number: of ``frames`` only when
    given (the folder may hold other frames of earlier runs).

    With ``frames`` every one must be there, else :class:`HostError` names the first
    missing frame (a host must never show an empty matte in its place).
    """
    found = dict(sequence_files(alpha_pattern(out)))
    if frames is None:
        return found
    missing = [f for f in frames if f not in found]
    if missing:
        raise HostError(
            f"the alpha of frame {missing[0]} is missing in {os.path.dirname(alpha_pattern(out))} "
            f"({len(missing)} of {len(frames)} frames missing)",
            "run the matte again",
        )
    return {f: found[f] for f in frames}


_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def folder_name(name: str) -> str:
    """``name`` (a scene, node or file name) as one safe folder name.

    Names that are already safe are kept; others are cleaned and get a short hash of the
    original, so two different names never share a folder (``"a b"`` is not ``"a_b"``).
    """
    clean = _UNSAFE_NAME.sub("_", name).strip("._") or "unnamed"
    if clean == name:
        return name
    return f"{clean}-{hashlib.sha256(name.encode('utf-8')).hexdigest()[:8]}"


#: What tcvom reads as a frame number's padding in a sequence's folder (fileseq's: ``#``,
#: ``@``, ``$F`` and a printf ``%d``; a ``%`` otherwise is only a character).


def check_cache_folder(root: str, fix: str) -> None:
    """HostError when the host's cache folder ``root`` holds a padding mark: tcvom cannot
    read or write the sequences kept there (it would fail on the first, naming a folder the
    artist never chose)."""
    mark = _PADDING_MARK.search(root)
    if mark:
        raise HostError(f"the matte cache {root} holds {mark.group()!r}, which tcvom reads as part of a frame number "
                        "in the sequences kept there", fix)


def shot_folder(root: str, *names: str) -> str:
    """The one output folder of a shot and node: ``root/<name>/<name>...``.

    Every press of a host's button runs ``tcvom run`` into this same folder; tcvom records
    what each output was made from and recomputes only what an edit touched (a keyframe,
    a plate frame, the weights ``--method auto`` resolves to).
    """
    return os.path.join(root, *[folder_name(n) for n in names])


def install_file(new: str, target: str, same: Any = None) -> bool:
    """Move ``new`` to ``target`` unless ``target`` already holds the same content, in
    which case ``new`` is deleted and ``target`` keeps its bytes and modification time
    (so tcvom sees an unchanged input). ``same(a, b)`` compares two files (default: their
    bytes). Returns whether ``target`` changed."""
    if os.path.isfile(target):
        equal = same(new, target) if same is not None else _content_token(new) == _content_token(target)
        if equal:
            os.remove(new)
            return False
    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    os.replace(new, target)
    return True


def _is_link(path: str) -> bool:
    """Whether ``path`` is a symbolic link, or a Windows junction (a reparse point, which
    ``os.path.islink`` does not see; untried here: no Windows machine)."""
    if os.path.islink(path):
        return True
    try:
        tag = getattr(os.lstat(path), "st_reparse_tag", 0)  # Windows only
    except OSError:
        return False
    # A junction's tag (mount point), not any reparse point: OneDrive folders are ones too.
    return bool(tag) and tag in (getattr(stat, "IO_REPARSE_TAG_MOUNT_POINT", -1), getattr(stat, "IO_REPARSE_TAG_SYMLINK", -1))


def install_folder(staged: dict[str, str], folder: str, same: Any = None) -> dict[str, str]:
    """Make ``folder`` hold exactly the staged files: ``staged`` maps file names to new
    files, each installed with :func:`install_file`; files of ``folder`` not named (a
    removed keyframe) are deleted. Returns ``{name: path in folder}``. A folder that cannot
    be written is a :class:`HostError`. A link in the folder's place is replaced by a folder:
    the files it names elsewhere (an artist's paintings) are not the cache's to delete."""
    installed = {}
    try:
        if _is_link(folder):
            try:
                os.unlink(folder)  # the link, not what it names
            except OSError:
                os.rmdir(folder)  # a Windows junction (removes the junction, not its folder)
        os.makedirs(folder, exist_ok=True)
        for name, path in staged.items():
            target = os.path.join(folder, name)
            install_file(path, target, same)
            installed[name] = target
        for entry in os.listdir(folder):
            path = os.path.join(folder, entry)
            if entry not in staged and os.path.isfile(path):
                os.remove(path)
    except OSError as exc:
        raise HostError(f"cannot write the inputs into {folder} ({exc.strerror})",
                        "choose a cache folder you can write to") from exc
    return installed


REVIEW_VERSION = 1


def review_path(out: str) -> str:
    """Where ``tcvom run --out OUT`` writes its review."""
    return os.path.join(out, "review", "review.json")


@dataclass
class Review:
    """The review of a run (``OUT/review/review.json``): how doubtful each frame's result is
    and which frames to key next.

    ``doubt`` maps each frame to its score (higher: more doubtful; ``trimap_doubt`` and
    ``matte_doubt`` are its parts); ``suggested`` is ranked best first; ``doubtful`` is
    ascending.
    """

    keyframes: list[int]
    doubt: dict[int, float]
    trimap_doubt: dict[int, float]
    matte_doubt: dict[int, float]
    suggested: list[int]
    doubtful: list[int]
    past_cut: list[tuple[int, int]] = field(default_factory=list)
    """First and last frame of each run of frames past a cut from every keyframe (their
    trimaps came from another picture: one keyframe is needed in each); the run's warning
    names them as tcvom numbers frames, a host shows them as it numbers its own."""
    estimated: list[int] = field(default_factory=list)
    """Frames whose trimap doubt is a guess from their distance to a keyframe (no frame of
    the shot lies between two keyframes to measure its drift): "not doubtful" says little
    there. The run's warning counts them; a host names them as it numbers its own."""
    plate: str = ""
    """The plate the run matted, as an absolute path (its sequence pattern or movie file; ""
    in a review that does not say): a host that has since switched to another plate does not
    take this run's trimaps and frames for the new one's."""
    out_of_date: list[int] = field(default_factory=list)
    """Frames whose alpha is older than what it would be matted from now (a run of part of
    the shot, ``RunSpec.frames``, after an edit; a run stopped between its stages; a plate
    frame rendered again since): reviewed as they are; a run of the whole shot brings them up
    to date. A host may say so beside them, rather than let their doubt pass for the shot's."""
    not_reviewed: list[int] = field(default_factory=list)
    """Frames of the shot with neither a trimap nor an alpha yet (a partial run, a farm job
    not finished): not in :attr:`doubt`."""
    not_matted: list[int] = field(default_factory=list)
    """Frames with a trimap and no alpha yet (a run stopped between its stages, a matte task
    not run): their doubt is their trimap's only."""

    def guessed(self, shift: int = 0) -> str:
        """:attr:`estimated` as a range (``1002-1012``) in a host's numbers (plate frame minus
        ``shift``), or ""."""
        return compact_frames([f - shift for f in self.estimated])

    def next_doubtful(self, frame: int, step: int = 1) -> int | None:
        """The doubtful frame after ``frame`` (``step=-1``: before it), or None."""
        if step > 0:
            return next((f for f in self.doubtful if f > frame), None)
        return next((f for f in reversed(self.doubtful) if f < frame), None)

    def best_suggestion(self, keyed: Sequence[int] = ()) -> int | None:
        """The top suggested frame that is not a keyframe yet (``keyed`` adds the host's
        keyframes that the run did not see), or None."""
        taken = set(self.keyframes) | set(keyed)
        return next((f for f in self.suggested if f not in taken), None)

    def within(self, first: int, last: int) -> Review:
        """The review of frames ``first``-``last`` only: a run of a host's frame range also
        reviews the neighbours it read around it, which the artist cannot key there."""
        def inside(frames: Iterable[int]) -> list[int]:
            return [f for f in frames if first <= f <= last]

        def part(values: dict[int, float]) -> dict[int, float]:
            return {f: v for f, v in values.items() if first <= f <= last}

        past = [(max(a, first), min(b, last)) for a, b in self.past_cut if a <= last and b >= first]
        return Review(inside(self.keyframes), part(self.doubt), part(self.trimap_doubt), part(self.matte_doubt),
                      inside(self.suggested), inside(self.doubtful), past, inside(self.estimated), self.plate,
                      inside(self.out_of_date), inside(self.not_reviewed), inside(self.not_matted))


def review_token(out: str) -> str:
    """An identity of the review of the run in ``out`` (a hash of ``review.json``; empty
    where there is none). A host records the token of the run whose matte it shows: a
    review with another token is of another run (a pull undone since, another session's)."""
    try:
        return _content_token(review_path(out))
    except OSError:
        return ""


def read_review(out: str) -> Review | None:
    """The review of the run in ``out``, or None when there is none (a tcvom without
    reviews, a run that has not finished). A file that is not a review of this version
    raises :class:`HostError` naming the file and what is wrong with it."""
    path = review_path(out)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise HostError(f"the review {path} cannot be read: {exc}", "run the matte again") from exc

    def bad(what: str) -> HostError:
        return HostError(f"the review {path} is not a tcvom review: {what}", "run the matte again")

    try:
        data = json.loads(text)
    except ValueError as exc:
        raise bad(f"not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise bad("not a JSON object")
    if data.get("version") != REVIEW_VERSION:
        raise HostError(
            f"the review {path} has version {data.get('version')!r}; this add-on reads version {REVIEW_VERSION}",
            "use the add-on of the same tcvom version as the command line",
        )

    def frames_of(name: str) -> list[int]:
        value = data.get(name)
        if not isinstance(value, list) or not all(isinstance(f, int) and not isinstance(f, bool) for f in value):
            raise bad(f"{name!r} must be a list of frame numbers")
        return list(value)

    doubt: dict[int, float] = {}
    parts: dict[str, dict[int, float]] = {"trimap_doubt": {}, "matte_doubt": {}}
    rows = data.get("frames")
    if not isinstance(rows, list):
        raise bad("'frames' must be a list")
    for row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("frame"), int):
            raise bad(f"a 'frames' entry has no frame number: {row!r}")
        frame = row["frame"]
        for name, into in (("doubt", doubt), *parts.items()):
            value = row.get(name)
            if not isinstance(value, (int, float)) or isinstance(value, bool):  # a tuple: Python 3.9
                raise bad(f"frame {frame} has no number {name!r}")
            into[frame] = float(value)
    past = data.get("past_cut", [])  # added in session 20: older reviews have none
    if not isinstance(past, list) or not all(
            isinstance(r, list) and len(r) == 2 and all(isinstance(f, int) and not isinstance(f, bool) for f in r)
            for r in past):
        raise bad("'past_cut' must be a list of [first, last] frame pairs")
    ranges = {}
    for name in ("estimated", "out_of_date", "not_reviewed", "not_matted"):  # ranges, added later: older reviews have none
        value = data.get(name, "")
        if not isinstance(value, str):
            raise bad(f"{name!r} must be a frame range")
        ranges[name] = _frames_of(value)
    sources = data.get("sources")
    plate = sources.get("plate") if isinstance(sources, dict) else None
    return Review(frames_of("keyframes"), doubt, parts["trimap_doubt"], parts["matte_doubt"],
                  frames_of("suggested"), sorted(frames_of("doubtful")), [(r[0], r[1]) for r in past],
                  ranges["estimated"], plate if isinstance(plate, str) else "", ranges["out_of_date"],
                  ranges["not_reviewed"], ranges["not_matted"])


PLATE_ALPHA = "its alpha channel is below 1"
"""Words of the run's warning about a plate whose alpha is below 1 beside unpremultiplied
colour (:func:`tcvom.io.sources.say_alpha`), which a host that premultiplies such files on
loading adds its own fix to."""

PAST_CUT = "past a cut (the picture cuts after"
"""Words of the run's warning about frames past a cut from every keyframe
(:func:`tcvom.review.doubt.say_past_cuts`), which a host that numbers frames otherwise
replaces with :attr:`Review.past_cut` in its own numbers."""


def writer_host() -> str:
    """This machine as tcvom names the writer of a temporary (``tcvom.io.atomic._host``:
    host name and process-id namespace; repeated here, as this module is stdlib-only and
    vendored into the hosts)."""
    name = socket.gethostname().replace("-", "_").replace(".", "_") or "localhost"
    try:
        namespace = "".join(c for c in os.readlink("/proc/self/ns/pid") if c.isdigit())
    except OSError:
        return name
    return f"{name}_{namespace}" if namespace else name


def remove_temporaries(out: str, pid: int) -> int:
    """Delete the temporary files that process ``pid`` of this host (a cancelled tcvom) left
    under ``out``; returns how many. Those of any other writer, a live concurrent run
    included, stay (tcvom.io.atomic names each temporary by host and pid)."""
    writer = f"{TEMP_MARK}{writer_host()}-{pid}-"
    removed = 0
    for root, _dirs, files in os.walk(out):
        for name in files:
            if writer in name:
                try:
                    os.remove(os.path.join(root, name))
                    removed += 1
                except OSError:
                    pass
    return removed


def _child_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _HOST_PYTHON_VARS}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _frames_of(text: str) -> list[int]:
    """Frame numbers of a range string as tcvom's events give them (``1001-1004,1006``,
    ``1001-1009x2``); a part it cannot read is left out."""
    frames: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        found = re.fullmatch(r"(-?\d+)(?:-(-?\d+)(?:x(\d+))?)?", part)
        if found:
            first, last, step = found.group(1), found.group(2), found.group(3)
            frames.extend(range(int(first), int(last or first) + 1, int(step or 1)))
    return frames


def compact_frames(frames: Sequence[int]) -> str:
    """``[1001, 1002, 1003, 1006]`` as ``1001-1003,1006``."""
    runs: list[list[int]] = []
    for frame in sorted(frames):
        if runs and frame == runs[-1][1] + 1:
            runs[-1][1] = frame
        else:
            runs.append([frame, frame])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


HOST_FIELDS = {"device": "device", "weights": "trimap weights", "matting-weights": "matting weights",
               "method": "method", "precision": "precision", "base": "base"}
"""The flags of ``tcvom run`` that the hosts have a setting for (:class:`RunSpec`), and the
setting's name in both hosts."""

_COMMAND = re.compile(r"\btcvom(?: [a-z]+)+ --[a-z]")
"""A tcvom command with a flag in advice ("tcvom info --weights FILE"): a host's artist has
no shell to run it in (the host's generic fix says more), and its flag is no setting."""


def _in_host_words(part: str, names: dict[str, str]) -> str:
    """One part of tcvom's advice in a host's words (see :func:`_without_flags`); empty
    when it names a flag the host has no setting for, or a tcvom command with a flag."""
    text = re.sub(r"\s*\([^()]*--[a-z][^()]*\)", "", part)  # "(`run --weights`, ...)": where the CLI takes it
    if _COMMAND.search(text):
        return ""
    fields = "|".join(re.escape(f) for f in names)
    text = re.sub(rf"\bpass (?=--(?:{fields}) [A-Z]{{2,}}\b)", "fill in ", text)  # "pass --weights FILE"
    text = re.sub(rf"\bpass --({fields}) ([^\s,;)]+)",  # "pass --trimap-channel A"
                  lambda m: f"set the {names[m.group(1)]} setting to {m.group(2)}", text)
    text = re.sub(rf"(^|\s)--({fields})(?: [A-Z]{{2,}})?(?=\s|$|[,;)?])",  # FILE, DIR: placeholders, left out
                  lambda m: f"{m.group(1)}the {names[m.group(2)]} setting", text)
    return "" if re.search(r"--[a-z]", text) else text.strip()


def _split_outside_brackets(hint: str) -> list[str]:
    """``hint`` split at ", or " and "; " outside brackets, the separators kept between the
    parts ("flatten it first (Nuke: DeepToImage; oiiotool --flatten)" is one part)."""
    pieces, depth, start, i = [], 0, 0, 0
    while i < len(hint):
        depth += {"(": 1, ")": -1}.get(hint[i], 0)
        separator = next((s for s in (", or ", "; ") if hint.startswith(s, i)), None) if depth == 0 else None
        if separator:
            pieces += [hint[start:i], separator]
            i = start = i + len(separator)
            continue
        i += 1
    return [*pieces, hint[start:]]


def _without_flags(hint: str, fields: dict[str, str] | None = None) -> str:
    """tcvom's advice in a host's words: a flag the host has a setting for named as that
    setting ("use --device cpu": "use the device setting cpu"; a placeholder value such as
    FILE left out), a bracketed list of the flags that take a thing on the command line left
    out (a tcvom command in it too), and the parts (between ", or " and "; ") that name
    another flag, which a host has no field for, or a tcvom command with a flag, left out ("render or copy them
    again, or set the shot ... with --shot-range 1001-1004": "render or copy them again");
    empty when every part names one. ``fields``: the flags of the host's own settings beyond
    :data:`HOST_FIELDS` (a Nuke knob's flag), and their names there."""
    names = {**HOST_FIELDS, **(fields or {})}
    pieces = _split_outside_brackets(hint)
    out = ""
    for separator, part in zip(["", *pieces[1::2]], pieces[0::2]):  # noqa: B905 (no strict=: Python 3.9, Nuke 14)
        said = _in_host_words(part, names)
        if said:
            out += (separator if out else "") + said
    return out


class Job:
    """One tcvom subprocess, read by background threads.

    A host starts it, calls :meth:`poll` from its UI timer (never blocks) or :meth:`wait`
    (blocks), and may :meth:`cancel` it. ``state`` is ``"new"``, ``"running"``, ``"done"``,
    ``"failed"`` or ``"cancelled"``; ``done``/``total`` count frames of the current stage,
    ``stage`` names it (``trimaps``, ``matte``); ``result`` is the final ``result`` event;
    ``error`` a :class:`HostError` when failed.

    Events carry the ``job`` they belong to. A job that starts while a stage is open (the
    STM fine-tuning inside the trimap stage) is a step *of* that stage: it is shown in
    ``step`` (``"finetune 30/40 steps"``) and never replaces the stage, its counts or its
    share of :attr:`fraction`, which only moves forward while the job runs.
    """

    def __init__(self, args: Sequence[str], out: str | None = None, setting: str = "the host's tcvom setting",
                 fields: dict[str, str] | None = None) -> None:
        self.args = list(args)
        self.out = out
        self.setting = setting  # where the artist sets the tcvom to run (find_executable's)
        self.fields = fields  # the flags the host passes from its own settings (:func:`_without_flags`)
        self.state = "new"
        self.stage = ""
        self.done = 0
        self.total = 0
        self.step = ""
        self.stages_seen: list[str] = []
        self._open: list[str] = []  # the jobs started and not yet ended, outermost first
        self._shown = 0.0  # the highest overall fraction reported so far
        self._units: dict[str, str] = {}  # the unit each job counts in (its start event says)
        self.messages: list[str] = []
        self.warnings: list[str] = []
        self.result: dict[str, Any] | None = None
        self.error: HostError | None = None
        self.returncode: int | None = None
        self._events: queue.Queue = queue.Queue()
        self._stderr_tail: list[str] = []
        self._error_event: dict[str, Any] | None = None
        self._proc: subprocess.Popen | None = None
        self._threads: list[threading.Thread] = []
        self._cancelled = False
        self._changing: dict[str, set[int]] = {}  # per output: the frames a stage's plan computes
        self._made: set[int] = set()  # alphas the matte stage finished
        self.version_skew = ""  # the warning when the tcvom that runs is another version

    def start(self) -> Job:
        """Start the subprocess; raises :class:`HostError` if it cannot be started."""
        kwargs: dict[str, Any] = {}
        if os.name == "nt":
            kwargs["creationflags"] = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
        else:
            kwargs["start_new_session"] = True  # the host's Ctrl-C must not reach it; cancel kills its group
        try:
            self._proc = subprocess.Popen(
                self.args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=_child_environment(),
                text=True,
                encoding="utf-8",
                errors="replace",
                bufsize=1,
                **kwargs,
            )
        except OSError as exc:
            raise HostError(
                f"tcvom could not be started ({self.args[0]}): {exc}",
                f"check the tcvom executable set in {self.setting}",
            ) from exc
        self.state = "running"
        for target, name in ((self._read_stdout, "stdout"), (self._read_stderr, "stderr")):
            thread = threading.Thread(target=target, name=f"tcvom-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _read_stdout(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            event = parse_event(line)
            if event is not None:
                self._events.put(event)
        self._proc.wait()
        self._events.put({"event": "_exit", "code": self._proc.returncode})

    def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        for line in self._proc.stderr:
            self._stderr_tail.append(line.rstrip("\n"))
            del self._stderr_tail[:-80]  # a traceback, for tcvom_error.log

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def fraction(self) -> float:
        """Overall progress in [0, 1] (``tcvom run`` has two stages: trimaps, then matte);
        it never goes back while the job runs."""
        if self.state == "done":
            return 1.0
        return self._shown

    def _stage_fraction(self) -> float:
        if not self.total:
            return 0.0
        stage_part = min(self.done / self.total, 1.0)
        stages = 2 if self.stage in ("trimaps", "matte") else 1
        index = 1 if self.stage == "matte" else 0
        return (index + stage_part) / stages

    def status_text(self) -> str:
        """A one-line status for a host's status bar: the stage, its nested step if any,
        the stage's frames and the overall percentage."""
        if self.state == "running" and (self.total or self.step):
            step = f" {self.step}," if self.step else ""
            return f"tcvom {self.stage}:{step} {self.done}/{self.total} frames ({self.fraction * 100:.0f}%)"
        return f"tcvom: {self.state}"

    def poll(self) -> list[dict[str, Any]]:
        """Apply and return the events that arrived since the last call (never blocks)."""
        events = []
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                break
            self._apply(event)
            events.append(event)
        return events

    def _apply(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        job = str(event.get("job") or "")
        # An event of a job other than the outermost open one belongs to a step nested in
        # the stage (older tcvom versions send no job: the event is the stage's own).
        nested = bool(job) and bool(self._open) and job != self._open[0]
        if kind == "start":
            self._units[job] = str(event.get("unit") or "frame")
            self._check_version(event.get("tcvom"))
            if self._open:
                nested = True
            else:
                self.stage = job
                if not self.stages_seen or self.stages_seen[-1] != job:
                    self.stages_seen.append(job)
                self.total = int(event.get("total") or 0)
                self.done = 0
                self.step = ""
            self._open.append(job)
        if kind in ("start", "progress") and nested:
            total = int(event.get("total") or 0)
            done = int(event.get("done") or 0)
            unit = self._units.get(job, "step") + ("" if total == 1 else "s")
            self.step = f"{job} {done}/{total} {unit}" if total else job
        elif kind == "progress":
            self.done = int(event.get("done") or 0)
            self.total = int(event.get("total") or self.total)
            if job == "matte" and isinstance(event.get("frame"), int) and event["frame"] in self._changing.get("alpha", ()):
                self._made.add(event["frame"])
        elif kind in ("done", "error"):
            if job in self._open:
                del self._open[len(self._open) - 1 - self._open[::-1].index(job)]
            self.step = ""
            if kind == "error":
                self._error_event = event
        elif kind == "plan" and isinstance(event.get("computed"), dict):
            for output, planned in event["computed"].items():
                if isinstance(planned, dict):
                    self._changing[str(output)] = set(_frames_of(str(planned.get("frames") or "")))
        elif kind == "message":
            self.messages.append(str(event.get("message", "")))
        elif kind == "warning":
            self.warnings.append(str(event.get("message", "")))
        elif kind == "result":
            self.result = event
        elif kind == "_exit":
            self._finish(int(event["code"]))
        self._shown = max(self._shown, self._stage_fraction())

    def _check_version(self, version: Any) -> None:
        """Warn once when the tcvom that runs is not the one this add-on came with (older
        tcvom sends no version): options, events or files may differ between them."""
        if not isinstance(version, str) or version == VERSION or self.version_skew:
            return
        self.version_skew = (f"this add-on is from tcvom {VERSION} and runs tcvom {version} ({self.args[0]}): "
                             f"install the add-on (Blender) or plugin (Nuke) of tcvom {version}")
        self.warnings.append(self.version_skew)

    def _finish(self, code: int) -> None:
        self.returncode = code
        for thread in self._threads:
            thread.join(timeout=5)
        if self._cancelled:
            self.state = "cancelled"
            if self.out and self._proc is not None:
                remove_temporaries(self.out, self._proc.pid)
            return
        if code == 0 and self.result is not None:
            self.state = "done"
            return
        self.state = "failed"
        self.error = self._error_from(code)

    def stale_note(self, shift: int = 0) -> str:
        """After a run that stopped before its end (cancelled, failed): which alphas still
        hold the matte of the run before (or none), for the host to say beside its status;
        "" when the run changed nothing. The plate and the node show them as they are.
        ``shift``: the host's frame of a plate frame is the plate frame less it (Blender's
        scene frames, as the rest of its panel says them)."""
        if self.state == "done" or not any(self._changing.values()):
            return ""
        left = sorted(self._changing.get("alpha", set()) - self._made)
        if "alpha" not in self._changing:  # stopped in the trimap stage, which had frames to change
            return "the alpha still shows the run before (or nothing, before a first run): run the matte again to " \
                "bring it up to date"
        if not left:
            return ""
        return f"alpha frames {compact_frames([f - shift for f in left])} still show the run before (or nothing): run the " \
            "matte again"

    def _error_from(self, code: int) -> HostError:
        hint = ""
        tail = [line for line in self._stderr_tail if line.strip()]
        if code >= 0 and self._error_event is None and not self.stages_seen and self.result is None and not any(
                "tcvom" in line for line in tail):  # (killed by a signal: tcvom may have crashed while starting)
            # No event and no word of tcvom's own (its usage errors and crashes name it): the
            # host's setting names another program.
            said = f": {tail[-1].strip()}" if tail else ""
            return HostError(f"the program {self.args[0]} did not answer as tcvom does (exit code {code}{said})",
                             f"set the tcvom executable (or its environment folder) in {self.setting}",
                             code)
        if self._error_event is not None:
            message = str(self._error_event.get("message", ""))
            code = int(self._error_event.get("exit_code", code))
            hint = str(self._error_event.get("hint") or "")
            if hint and message.endswith(f" ({hint})"):
                message = message[: -len(hint) - 3]  # the hint becomes the fix, below
            hint = _without_flags(hint, self.fields)
        elif code < 0:  # what it printed last is not why it ended
            message = f"tcvom was ended by signal {_signal_name(-code)}" + (
                f" (its last output: {tail[-1].strip()})" if tail else "")
        elif tail:
            message = tail[-1]
            if _UNKNOWN_TO_CLI.match(message.strip()):  # the add-on's own arguments: not the artist's to change
                return HostError(
                    f"tcvom failed: {message.strip()}",
                    f"the add-on and the tcvom it runs ({self.args[0]}) are different versions: this add-on is "
                    f"from tcvom {VERSION} (`tcvom --version` names the other); install the add-on (Blender) or "
                    "plugin (Nuke) of the same tcvom, or set the host to run that tcvom",
                    code)
        else:
            message = f"tcvom stopped with exit code {code} and no message"
        if self._error_event is None and "No module named tcvom" in message:
            # `python -m tcvom` of a Python without tcvom: the host's setting, not tcvom, is wrong.
            return HostError(
                f"the Python {self.args[0]} has no tcvom installed ({message})",
                "set the tcvom executable (or the environment folder, or a Python of the environment where tcvom "
                f"is installed) in {self.setting}",
                code,
            )
        if hint:  # tcvom's own advice
            fix = hint
        elif code in (EXIT_INTERRUPTED, EXIT_TERMINATED, -signal.SIGINT, -signal.SIGTERM):
            fix = "tcvom was stopped from outside; finished frames are kept: run the matte again to resume"
        elif code == -getattr(signal, "SIGKILL", 9):
            fix = ("tcvom was killed from outside (the system does that when memory runs out: close other "
                   "applications or run fewer frames at once); finished frames are kept: run the matte again to resume")
        elif code < 0 and -code not in _CRASH_SIGNALS:
            fix = "tcvom was stopped from outside; finished frames are kept: run the matte again to resume"
        elif code == EXIT_MISSING:
            fix = "install the missing part or weights (see tcvom weights --help), or use the classical method"
        elif code == EXIT_BAD_INPUT and self._error_event is not None and self._error_event.get("path"):
            fix = "fix the input named above and run again"
        elif code == EXIT_BAD_INPUT:
            fix = "change the setting or input the message names and run again"
        else:
            kept = self._keep_output(tail)
            fix = "this is a bug in tcvom: please report it with " + (
                f"{kept} (what tcvom printed last)" if kept else "the terminal output")
        return HostError(f"tcvom failed: {message}", fix, code)

    def _keep_output(self, tail: list[str]) -> str | None:
        """Write what tcvom printed last (its traceback) to ``tcvom_error.log`` in the job's
        output folder, whole or not at all, and return its path: a host's artist has no
        terminal to report from (Nuke QA). None where there is nothing or nowhere to keep it."""
        if not tail or not self.out or not os.path.isdir(self.out):
            return None
        target = os.path.join(self.out, "tcvom_error.log")
        new = os.path.join(self.out, f".tcvom_error{TEMP_MARK}{writer_host()}-{os.getpid()}-log")
        try:
            with open(new, "w", encoding="utf-8") as handle:
                handle.write("\n".join([" ".join(self.args), *tail, ""]))
            os.replace(new, target)
        except OSError:
            with contextlib.suppress(OSError):
                os.remove(new)
            return None
        return target

    def cancel(self) -> None:
        """Stop the worker (its process group on POSIX). tcvom writes every frame under a
        temporary name first, so no partial frame is left; temporaries are removed."""
        if self._proc is None or self._proc.poll() is not None:
            self._cancelled = self._cancelled or self.state == "running"
            self.poll()  # what it said before it ended (stale_note, the result) is read, not left queued
            return
        self._cancelled = True
        try:
            if os.name == "nt":
                self._proc.terminate()
            else:
                os.killpg(self._proc.pid, signal.SIGTERM)
        except (OSError, ProcessLookupError):
            pass
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        for thread in self._threads:
            thread.join(timeout=10)
        self.poll()

    def wait(self, timeout: float | None = None) -> Job:
        """Block until the job ends (for synchronous hosts); ``poll`` is applied meanwhile.

        Raises ``subprocess.TimeoutExpired`` after ``timeout`` seconds (the job keeps running).
        """
        if self._proc is None:
            raise RuntimeError("the job was not started")
        self._proc.wait(timeout=timeout)
        for thread in self._threads:
            thread.join(timeout=10)
        self.poll()
        return self
