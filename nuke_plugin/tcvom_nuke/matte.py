"""What the TCVOM_Matte node does, without calling ``nuke`` (stdlib only, Python 3.9+).

:mod:`tcvom_nuke.nukenode` reads the knobs into :class:`NodeSettings` and the plate
input into :class:`PlateInput` (plain values, never evaluated), then:

1. :func:`frame_range` and :func:`parse_keyframes`: the frames to matte and the keyframes;
2. :func:`plan_inputs`: pass a plain Read's sequence straight to tcvom, or render the
   plate frames (and always the keyframes of the Trimap input) to EXRs with a Write node;
3. :func:`prepare_run`: the node's one output folder (:func:`node_folder`), the rendered
   inputs installed there (unchanged pixels keep their files), the ``tcvom run`` argument
   list (``--progress json``, ``--input-colorspace`` explicit);
4. :func:`run_job`: the worker loop for a background thread (progress callback, cancel);
5. :func:`alpha_read_values`: the knob values of the Group's internal Read;
6. :func:`review_values` and :func:`review_target`: the last run's review on the node's
   knobs, and the frame its buttons move the viewer to.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from tcvom_nuke.host import load_hostclient

hostclient = load_hostclient()
HostError = hostclient.HostError
RunSpec = hostclient.RunSpec

CACHE_FOLDER = "tcvom_cache"
DEFAULT_WORKING_SPACE = "Linear Rec.709 (sRGB)"
#: OpenColorIO's role names: in the working space knob one would be read as the role of
#: tcvom's own config (its scene_linear is ACEScg), not the comp's.
OCIO_ROLES = ("scene_linear", "rendering", "compositing_linear", "compositing_log", "color_timing", "color_picking",
              "data", "default", "reference", "matte_paint", "texture_paint", "aces_interchange",
              "cie_xyz_d65_interchange")
METHODS = ("auto", "classical", "tcvom")
BACKENDS = ("torch", "onnxruntime", "tensorrt")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
TRIMAP_CHANNELS = ("luma", "R", "G", "B", "A")
#: Still-image formats tcvom reads directly (anything else is rendered to EXR first).
DIRECT_EXTENSIONS = ("exr", "dpx", "tif", "tiff", "png", "jpg", "jpeg", "tga", "cin", "hdr", "sgi")

# The file types whose Nuke Read default (its colorspace knob saying just "default") is the
# comp's scene-linear space: the working space knob's (nuke-default's linear is Linear Rec.709).
_FILE_DEFAULTS = {"exr": "Linear Rec.709 (sRGB)", "hdr": "Linear Rec.709 (sRGB)"}
_DEFAULT_RE = re.compile(r"^default(?:\s*\((.*)\))?$", re.IGNORECASE)
_PRINTF_RE = re.compile(r"%(0?)(\d*)d")


@dataclass
class NodeSettings:
    """The TCVOM_Matte knob values, as plain data (strings are never evaluated)."""

    keyframes: str = ""
    method: str = "auto"
    backend: str = "torch"
    weights: str = ""
    matting_weights: str = ""
    base: str = "gca"
    device: str = "cpu"
    precision: str = "auto"
    working_space: str = DEFAULT_WORKING_SPACE
    trimap_channel: str = "luma"
    cache_dir: str = ""
    frame_range: str = ""
    executable: str = ""

    def check(self) -> None:
        """HostError for a choice tcvom would refuse (before anything is rendered)."""
        for name, value, allowed in (
            ("method", self.method, METHODS),
            ("back-end", self.backend, BACKENDS),
            ("precision", self.precision, PRECISIONS),
            ("trimap channel", self.trimap_channel, TRIMAP_CHANNELS),
        ):
            if value not in allowed:
                raise HostError(f"the {name} knob holds {value!r}", "choose one of " + ", ".join(allowed))
        working_colourspace(self.working_space)
        if self.device.strip() and not re.fullmatch(r"cpu|cuda(:\d+)?", self.device.strip()):
            raise HostError(f"the device knob holds {self.device!r}", "write cpu, cuda or cuda:N (N: the GPU's number)")
        if self.method == "classical" and self.backend != "torch":
            raise HostError(f"the back-end knob holds {self.backend}, but the classical method runs no network",
                            "set back-end to torch, or method to tcvom (or auto) to run the networks")


def working_colourspace(value: str) -> str:
    """tcvom's OpenColorIO name of the working space knob's ``value`` (Nuke's names, such as
    ``linear`` of nuke-default, map as a Read's do; other names go as they are). An empty
    knob or an OpenColorIO role is refused."""
    name = value.strip()
    if not name:
        raise HostError("the working space knob is empty", f"name the comp's colour space, e.g. {DEFAULT_WORKING_SPACE}")
    if name.lower() in OCIO_ROLES:
        raise HostError(f"the working space knob holds {name!r}, an OpenColorIO role rather than a colour space: "
                        "tcvom's own config would read it as its role, not as the comp's space",
                        f"name the comp's colour space, e.g. {DEFAULT_WORKING_SPACE} (nuke-default's linear) or ACEScg")
    return hostclient.ocio_colourspace(name) or name


def working_space_named(error: HostError, working_space: str | None) -> HostError:
    """``error`` of a run whose plate the node rendered in ``working_space`` (``None``: the
    plate Read's files went directly), with tcvom's refusal of that colour space said as the
    working space knob's."""
    if working_space is None or not error.message.startswith("tcvom failed: unknown input colour space"):
        return error
    return HostError(f"the working space knob holds {working_space!r}, which tcvom's OpenColorIO config does not know",
                     "name the comp's working space as tcvom's config names it (tcvom info --colorspaces lists them), "
                     f"e.g. {DEFAULT_WORKING_SPACE} or ACEScg", error.exit_code)


@dataclass
class PlateInput:
    """What the node's plate input is, read from Nuke as values.

    ``node_class`` is the upstream node's class; for a Read, ``file`` is its file name
    (``nuke.filename``: expressions resolved by Nuke, frame pattern kept), ``colorspace``,
    ``raw``, ``frame_mode``/``frame`` (an offset or frame expression) and its
    ``first``/``last`` frames; for any node ``first``/``last`` is its frame range.
    """

    node_class: str
    first: int
    last: int
    file: str = ""
    colorspace: str = ""
    raw: bool = False
    frame_mode: str = ""
    frame: str = ""
    disabled: bool = False


@dataclass
class RenderPlan:
    """Which inputs the node hands tcvom, and which of them a Write node must render first.

    ``plate`` is the sequence tcvom reads; ``plate_frames`` the plate frames to render
    there (empty when a Read's files are passed directly); ``keyframes`` maps each
    keyframe to the EXR its trimap is rendered to; ``colorspace`` is tcvom's
    ``--input-colorspace``.
    """

    plate: str
    plate_frames: list[int]
    keyframes: dict[int, str]
    colorspace: str
    direct: bool
    reason: str
    staging: str


@dataclass
class PreparedRun:
    """A run ready to start: the RunSpec, its output folder, the argument list."""

    spec: Any
    out: str
    args: list[str]
    frames: list[int]


@dataclass
class Outcome:
    """How a worker ended: ``state`` is ``done``, ``failed`` or ``cancelled``."""

    state: str
    files: dict[int, str] = field(default_factory=dict)
    error: Exception | None = None
    status: str = ""


# --- knob values --------------------------------------------------------------------------


def parse_keyframes(text: str) -> list[int]:
    """``"1001 1040"`` / ``"1001, 1040"`` -> sorted unique frame numbers (HostError otherwise)."""
    frames = []
    for token in re.split(r"[,\s]+", text.strip()):
        if not token:
            continue
        if not re.fullmatch(r"-?\d+", token):
            raise HostError(
                f"the keyframes knob holds {token!r}, which is not a frame number",
                "list the frames of the Trimap input that carry painted trimaps, e.g. 1001 1040",
            )
        frames.append(int(token))
    if not frames:
        raise HostError("no keyframes are set", "list the frames of the Trimap input that carry painted trimaps, e.g. 1001 1040")
    return sorted(set(frames))


def frame_range(text: str, default: tuple[int, int]) -> tuple[int, int]:
    """The frames to matte: ``"1001-1100"`` (or ``"1001 1100"``); empty means ``default``."""
    value = text.strip()
    if not value:
        first, last = default
    else:
        match = re.fullmatch(r"(-?\d+)\s*(?:-|\s)\s*(-?\d+)", value) or re.fullmatch(r"(-?\d+)", value)
        if not match:
            raise HostError(f"the frame range knob holds {value!r}", "write it as first-last, e.g. 1001-1100, or leave it empty")
        first = int(match.group(1))
        last = int(match.group(match.lastindex or 1))
    if first > last:
        raise HostError(f"the frame range {first}-{last} is empty", "the first frame must not come after the last")
    return first, last


def check_keyframes(keyframes: Sequence[int], first: int, last: int) -> None:
    """Every keyframe must lie in the frames being matted."""
    outside = [f for f in keyframes if not first <= f <= last]
    if outside:
        raise HostError(
            f"keyframe {outside[0]} lies outside the frame range {first}-{last}",
            "remove it from the keyframes knob or widen the frame range",
        )


def script_folder(script_path: str) -> str:
    """The folder of the saved script; HostError for an unsaved one (Nuke names it ``Root``)."""
    if not script_path or script_path == "Root" or not os.path.isabs(script_path):
        raise HostError("the Nuke script is not saved", "save it first: the matte is cached beside it")
    return os.path.dirname(script_path).replace("\\", "/")


def node_folder(root: str, script_path: str, node_name: str) -> str:
    """The one output folder of a node of a script: ``<root>/<script name>/<node name>``.
    Every Compute runs ``tcvom run`` into it; tcvom reuses what has not changed. A cache
    folder outside the script's folder (a studio scratch disk, ``../cache``) is shared by
    scripts of one name in other shots: there the script's folder is ``<script name>-<8 hex
    digits of its path>``, else two shots' nodes overwrote each other's matte."""
    script = os.path.splitext(os.path.basename(script_path))[0]
    if not _inside(root, script_folder(script_path)):
        script += "-" + hashlib.sha256(_spelled_alike(script_path, root).encode("utf-8")).hexdigest()[:8]
    return hostclient.shot_folder(root, script, node_name).replace("\\", "/")


def folder_shown_by(out: str, shown: dict[str, str | None], own: str | None = None) -> str | None:
    """The node (of ``shown``: the other nodes' names -> the output folder each one's internal
    Read shows) that shows the matte cached in ``out``, which the computing node (showing
    ``own``) does not: a node renamed after its Compute keeps showing the folder of its former
    name, which a new node given that name would compute into (Nuke QA: the renamed node then
    showed the new node's matte). A node showing ``out`` itself owns it (its copies show it too)."""
    def same(a: str, b: str) -> bool:
        try:
            return os.path.samefile(a, b)  # one folder, however spelled (a file system blind to case)
        except OSError:
            return os.path.normcase(os.path.normpath(os.path.abspath(a))) == \
                os.path.normcase(os.path.normpath(os.path.abspath(b)))

    if own and same(own, out):
        return None
    return next((name for name, folder in sorted(shown.items()) if folder and same(folder, out)), None)


def _spelled_alike(path: str, root: str) -> str:
    """``path`` as the same text however it is spelled where it is opened: relative to
    ``root`` (a show and its cache mounted at /mnt or at /Volumes), in one case and with one
    separator (``C:/Shows`` or ``c:\\shows`` on Windows); absolute where the two lie on two
    drives."""
    try:
        text = os.path.relpath(path, root)
    except ValueError:  # another drive
        text = os.path.normpath(path)
    return os.path.normcase(text).replace("\\", "/")


def _inside(folder: str, parent: str) -> bool:
    """Whether ``folder`` is ``parent`` or below it (by path; another drive is not)."""
    a, b = (os.path.normcase(os.path.normpath(p)) for p in (folder, parent))
    try:
        return os.path.commonpath([a, b]) == b
    except ValueError:
        return False


def knob_path(value: str, script_path: str, knob: str, default: str = "") -> str:
    """A path knob's value as a plain path, relative to the script's folder if relative (a
    script opened on another machine, or from another folder, finds the same files);
    ``default`` (relative to the script's folder) for an empty value. HostError for a
    TCL expression or variable, which Nuke's file knobs evaluate and tcvom would not."""
    value = value.strip()
    if _evaluated(value):
        raise HostError(f"the {knob} knob holds {value!r}, an expression or variable that tcvom does not "
                        "evaluate", "write the path as a plain one (absolute, or relative to the script's folder)")
    if value and os.path.isabs(os.path.expanduser(value)):
        return os.path.normpath(os.path.expanduser(value)).replace("\\", "/")
    base = script_folder(script_path)
    return os.path.normpath(base + "/" + (value or default)).replace("\\", "/")


def executable_path(value: str, script_path: str) -> str | None:
    """The tcvom executable knob's path as the other path knobs take theirs (relative to the
    script's folder, an expression or variable refused: it was looked up from Nuke's working
    folder, ``$VAR`` kept as text); None for an empty knob (``$TCVOM_EXECUTABLE``, then
    ``tcvom`` on PATH)."""
    return knob_path(value, script_path, "tcvom executable") if value.strip() else None


def _evaluated(text: str) -> bool:
    """Whether Nuke's file knobs would evaluate part of ``text``: a TCL expression ``[...]``
    or a variable (``$`` before a name, a digit, ``{``, ``(`` or ``:``; TCL reads ``$1x`` as
    the variable ``1x``)."""
    return "[" in text or re.search(r"\$[A-Za-z0-9_{(:]", text) is not None


def cache_root(cache_dir: str, script_path: str) -> str:
    """The cache folder: the knob's value (relative to the script's folder if relative),
    else ``tcvom_cache`` beside the script. HostError where the script's folder would make
    it a path Nuke evaluates: the internal Read and the render Write take paths under it."""
    root = knob_path(cache_dir, script_path, "cache folder", CACHE_FOLDER)
    if _evaluated(root):
        raise HostError(f"the cache folder {root} lies in the script's folder, whose name Nuke's file knobs would "
                        "evaluate ('[' or '$')", "set the cache folder knob to a plain absolute folder, or save "
                        "the script in a folder without '[' or '$'")
    # tcvom refuses them in a sequence's folder: they spell frame numbers
    hostclient.check_cache_folder(root, "set the cache folder knob to a folder without # @ %d")
    return root


# --- which inputs ----------------------------------------------------------------------------


def sequence_pattern(path: str) -> str | None:
    """A Nuke file name with a frame pattern (``%04d``, ``%d``, ``####``) as a ``#`` pattern,
    or None if it names one file."""
    name = path.replace("\\", "/")
    match = _PRINTF_RE.search(os.path.basename(name))
    if match:
        width = int(match.group(2) or "1") if match.group(1) == "0" or match.group(2) else 1
        head, base = os.path.split(name)
        base = base[: match.start()] + "#" * max(width, 1) + base[match.end() :]
        return head + "/" + base if head else base
    if "#" in os.path.basename(name):
        return name
    return None


def read_colourspace(plate: PlateInput, working: str | None = None) -> str | None:
    """tcvom's name for the colour space of a Read's files, or None if not known (the
    plate is then rendered in the working space: the table picks the fast path only). A
    bare "default" of a float file type is the comp's scene-linear space, ``working``
    (tcvom's name of the working space knob; Linear Rec.709, nuke-default's, without it):
    in an ACES comp it was read as Linear Rec.709, a matte of another picture."""
    value = plate.colorspace.strip()
    match = _DEFAULT_RE.match(value)
    if match:
        if match.group(1):
            value = match.group(1).strip()
        else:
            default = _FILE_DEFAULTS.get(plate.file.rsplit(".", 1)[-1].lower())
            return working if default is not None and working is not None else default
    return hostclient.ocio_colourspace(value)


def _missing_files(pattern: str, first: int, last: int) -> list[int]:
    """The frames ``first``-``last`` of a ``#`` pattern whose files are not there."""
    hashes = re.search(r"#+", pattern)
    if hashes is None:
        return []
    width = len(hashes.group(0))
    head, tail = pattern[: hashes.start()], pattern[hashes.end() :]
    return [f for f in range(first, last + 1) if not os.path.isfile(f"{head}{f:0{width}d}{tail}")]  # -5: -005


def direct_plate(plate: PlateInput, first: int, last: int,
                 working: str | None = None) -> tuple[str | None, str | None, str]:
    """(pattern, colour space, reason): a plain Read of a file sequence gives its files to
    tcvom as they are; anything else (pattern None) is rendered first, as is a Read missing
    some of the frames' files (Nuke fills them, by its missing-frames setting, or holds its
    last file past it). ``reason`` says why. ``working``: see :func:`read_colourspace`."""
    if plate.node_class != "Read":
        return None, None, f"the plate input is a {plate.node_class or 'missing'} node, not a Read: rendering it"
    if plate.disabled:
        return None, None, "the plate Read is disabled: rendering its output"
    pattern = sequence_pattern(plate.file)
    if pattern is not None and not os.path.isabs(pattern):
        return None, None, "the plate Read's file name is relative: rendering it"
    if pattern is None:
        return None, None, "the plate Read is not an image sequence: rendering it"
    if re.search(r"%[Vv]", pattern):
        return None, None, "the plate Read's file name holds a view (%V, %v): rendering the current view"
    if len(re.findall(r"#+", pattern)) != 1 or "@" in pattern or "%" in pattern:
        # tcvom would take another run of them for the frame number (Nuke QA)
        return None, None, "the plate Read's file path holds '#', '@' or '%' besides its frame number: rendering it"
    if pattern.rsplit(".", 1)[-1].lower() not in DIRECT_EXTENSIONS:
        return None, None, "tcvom does not read this file type directly: rendering it"
    if plate.frame.strip() or plate.frame_mode.strip() not in ("", "expression", "start at", "offset"):
        return None, None, "the plate Read changes frame numbers (frame knob): rendering it"
    if plate.raw:
        return None, None, "the plate Read is set to raw data: rendering it"
    if not plate.first <= first <= last <= plate.last:
        return None, None, f"the plate Read holds frames {plate.first}-{plate.last} only: rendering"
    colourspace = read_colourspace(plate, working)
    if colourspace is None:
        return None, None, f"the plate Read's colour space {plate.colorspace!r} has no known OpenColorIO name: rendering it"
    missing = _missing_files(pattern, first, last)
    if missing:
        return None, None, (f"the plate Read's files of {len(missing)} frame(s) ({missing[0]}...) are missing, which "
                            "Nuke fills in: rendering it")
    return pattern, colourspace, "the plate Read's files go to tcvom directly"


def plan_inputs(settings: NodeSettings, plate: PlateInput, keyframes: Sequence[int], first: int, last: int,
                staging: str) -> RenderPlan:
    """Decide what tcvom reads: ``staging`` is an empty folder for the rendered EXRs."""
    staging = staging.replace("\\", "/")
    pattern, colourspace, reason = direct_plate(plate, first, last, working_colourspace(settings.working_space))
    keys = {f: f"{staging}/keyframes/key.{f:04d}.exr" if f >= 0 else f"{staging}/keyframes/key.{f}.exr" for f in keyframes}
    if pattern is not None and colourspace is not None:
        return RenderPlan(pattern, [], keys, colourspace, True, reason, staging)
    # A Write node renders the plate in the comp's working space, untouched (raw).
    return RenderPlan(f"{staging}/plate/plate.####.exr", list(range(first, last + 1)), keys,
                      working_colourspace(settings.working_space), False, reason, staging)


def frame_runs(frames: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted frames as contiguous ``(first, last)`` runs (one Write execute each)."""
    runs: list[tuple[int, int]] = []
    for frame in sorted(set(frames)):
        if runs and frame == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], frame)
        else:
            runs.append((frame, frame))
    return runs


def new_staging(root: str) -> str:
    """An empty folder inside the cache root for one press's rendered inputs."""
    try:
        os.makedirs(root, exist_ok=True)
        return tempfile.mkdtemp(prefix=".staging-", dir=root).replace("\\", "/")
    except OSError as exc:
        raise HostError(f"cannot write the cache folder {root} ({exc.strerror})",
                        "set the node's cache folder knob to a folder you can write to") from exc


# --- the run -------------------------------------------------------------------------------------


_EXR_MAGIC = b"\x76\x2f\x31\x01"
_EXR_MULTIPART = 0x1000


# Header attributes that say where and how the pixels lie (a Write puts the input's bbox
# in the data window: a shape moved sideways keeps its chunks' bytes, which carry only y).
_EXR_LAYOUT = frozenset((b"channels", b"compression", b"dataWindow", b"displayWindow", b"lineOrder",
                         b"pixelAspectRatio", b"screenWindowCenter", b"screenWindowWidth", b"tiles", b"type",
                         b"name", b"view", b"multiView"))


def _exr_layout(data: bytes) -> tuple[bytes, int]:
    """An OpenEXR file's layout attributes (names, types and values) and where its pixel
    chunks begin: renders of the same pixels differ only in the rest of the header (time
    stamps and other metadata) and in the chunk offsets."""
    if data[:4] != _EXR_MAGIC or len(data) < 8:
        return b"", 0
    multipart = bool(int.from_bytes(data[4:8], "little") & _EXR_MULTIPART)
    pos = 8
    layout = []
    while True:
        attributes = 0
        while True:
            end = data.index(b"\0", pos)
            if end == pos:  # an empty name ends the header
                pos += 1
                break
            type_end = data.index(b"\0", end + 1)
            size = int.from_bytes(data[type_end + 1 : type_end + 5], "little")
            if data[pos:end] in _EXR_LAYOUT:
                layout.append(data[pos : type_end + 5 + size])
            pos = type_end + 5 + size
            attributes += 1
        if not multipart or attributes == 0:
            break
    # Then the chunk offset table (absolute positions, so it moves with the header's
    # length); the first entry points at the first chunk, where the pixels begin.
    first = int.from_bytes(data[pos : pos + 8], "little")
    if pos < first <= len(data) and (first - pos) % 8 == 0:
        pos = first
    return b"".join(layout), pos


def image_digest(path: str) -> str:
    """sha256 of a rendered image's pixels: an EXR's pixel chunks and layout (windows,
    channels) without the rest of its header, other files whole."""
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        layout, start = _exr_layout(data)
    except ValueError:  # a truncated header: hash everything
        layout, start = b"", 0
    return hashlib.sha256(layout + data[start:]).hexdigest()


def same_pixels(a: str, b: str) -> bool:
    """Whether two renders hold the same pixels (their headers' time stamps may differ)."""
    return image_digest(a) == image_digest(b)


def _check_rendered(plan: RenderPlan) -> dict[str, str]:
    missing = [f"keyframe {f} ({p})" for f, p in sorted(plan.keyframes.items()) if not os.path.isfile(p)]
    plate_files = {}
    for frame in plan.plate_frames:
        path = plan.plate.replace("####", f"{frame:04d}")
        if not os.path.isfile(path):
            missing.append(f"plate frame {frame} ({path})")
        plate_files[os.path.basename(path)] = path
    if missing:
        raise HostError("the Write node did not render " + missing[0], "check the node's inputs render in the viewer")
    return plate_files


def prepare_run(settings: NodeSettings, plan: RenderPlan, command: Sequence[str], out: str, first: int,
                last: int, script_path: str) -> PreparedRun:
    """The argument list of one press into the node's folder ``out``, after the renders.

    The rendered inputs move from the staging folder to ``out/inputs``; a render with the
    same pixels as the file already there is dropped and that file kept untouched (a Write
    stamps each render's header with its time), so tcvom sees only the inputs that really
    changed and recomputes only what they touch. Inputs no longer used are deleted. The
    weight knobs' relative paths are relative to the folder of the script (``script_path``),
    as the cache folder's.
    """
    plate_files = _check_rendered(plan)
    weights, matting = (knob_path(value, script_path, knob) if value.strip() else None
                        for value, knob in ((settings.weights, "trimap weights"),
                                            (settings.matting_weights, "matting weights")))
    spec = RunSpec(
        plate=plan.plate,
        out=out,
        keyframes=dict(plan.keyframes),
        method=settings.method,
        weights=weights,
        matting_weights=matting,
        base=None if settings.matting_weights.strip() else settings.base.strip() or None,
        device=settings.device.strip() or "cpu",
        precision=settings.precision,
        input_colorspace=plan.colorspace,
        shot_range=f"{first}-{last}",  # the node's shot: a rerun with other settings replaces its frames
    )
    spec.check()
    inputs = f"{out}/inputs"
    keys = hostclient.install_folder({os.path.basename(p): p for p in spec.keyframes.values()},
                                     f"{inputs}/keyframes", same_pixels)
    spec = replace(spec, keyframes={f: keys[os.path.basename(p)].replace("\\", "/") for f, p in spec.keyframes.items()})
    if plan.direct:
        shutil.rmtree(f"{inputs}/plate", ignore_errors=True)  # an earlier render of the plate is no longer used
    else:
        hostclient.install_folder(plate_files, f"{inputs}/plate", same_pixels)
        spec = replace(spec, plate=f"{inputs}/plate/" + os.path.basename(plan.plate))
    shutil.rmtree(plan.staging, ignore_errors=True)
    return PreparedRun(spec, out, build_args(command, spec, settings), list(range(first, last + 1)))


#: The flags the node passes from knobs of its own (:func:`build_args`), and the knobs'
#: names: tcvom's advice naming the flag names the knob (``hostclient.Job``'s ``fields``).
KNOB_FLAGS = {"backend": "back-end", "trimap-channel": "trimap channel"}


def build_args(command: Sequence[str], spec: Any, settings: NodeSettings) -> list[str]:
    """``tcvom run`` for ``spec`` (hostclient's argument list) plus the node's back-end and
    trimap channel, before ``--progress json``."""
    args = hostclient.build_run_args(command, spec)
    tail = args[-2:]
    assert tail == ["--progress", "json"], tail  # hostclient's contract
    return [*args[:-2], "--backend", settings.backend, "--trimap-channel", settings.trimap_channel, *tail]


def keyframes_named(error: HostError, keyframes: Mapping[int, str], plate: str | None = None) -> HostError:
    """``error`` with the inputs' rendered files named as :func:`named_keyframes` does; a
    rendered plate frame whose pixels reach past the first frame's (Nuke's bounding box
    moving out over the format, through a Transform) gets the fix a Nuke artist applies."""
    message = named_keyframes(error.message, keyframes, plate)
    if message == error.message:
        return error
    fix = error.fix
    if "the Plate input at frame" in message and "reach outside the shot's picture" in message:
        fix = ("put a Crop node (box: the format) under the Plate input, so that every frame's bounding box "
               "lies inside the format")
    return HostError(message, fix, error.exit_code)


def named_keyframes(message: str, keyframes: Mapping[int, str], plate: str | None = None) -> str:
    """``message`` (an error's, a warning's) with the inputs' rendered files (the node's
    cache) named as the artist knows them: ``.../inputs/keyframes/key.1001.exr: frame 1001``
    is ``the keyframe at frame 1001 (Trimap input)``, and where the node rendered the plate
    (``plate``, its ``####`` pattern) ``.../inputs/plate/plate.1005.exr: frame 1005`` is
    ``the Plate input at frame 1005``."""
    for frame, path in keyframes.items():
        name = f"the keyframe at frame {frame} (Trimap input)"
        for spelt in dict.fromkeys((path, path.replace("/", "\\"))):  # tcvom prints Windows paths with backslashes
            message = message.replace(f"{spelt}: frame {frame}", name).replace(spelt, name)
    if plate:
        head, tail = plate.split("####", 1)
        spelt = "[/\\\\]".join(re.escape(part) for part in re.split(r"[/\\\\]", head))
        rendered = re.compile(spelt + r"(-?\d+)" + re.escape(tail) + r"(?:: frame -?\d+)?")
        message = rendered.sub(lambda m: f"the Plate input at frame {int(m[1])}", message)
    return message


def run_job(job: Any, frames: Sequence[int], progress: Callable[[int, str], None],
            cancelled: Callable[[], bool], poll_interval: float = 0.2,
            keyframes: Mapping[int, str] | None = None, working_space: str | None = None,
            plate: str | None = None) -> Outcome:
    """The worker loop (a background thread's body): poll ``job`` (a started
    ``hostclient.Job``), report ``progress(percent, text)``, cancel the job when
    ``cancelled()`` says so, and collect the alpha of ``frames`` when it is done.
    ``keyframes`` (frame -> the file the node rendered) names them in an error as the
    artist knows them, ``plate`` (the pattern of the plate the node rendered) its frames,
    ``working_space`` (the colour space of a plate the node rendered) the knob of a colour
    space tcvom refused. Never raises: the outcome carries the error."""
    try:
        while True:
            job.poll()
            if job.state != "running":
                break
            if cancelled():
                job.cancel()
                break
            progress(int(job.fraction * 100), job.status_text())
            time.sleep(poll_interval)
        stale = job.stale_note()  # the Read shows those frames as the run before left them
        if job.state == "cancelled" or (cancelled() and job.state != "done"):
            return Outcome("cancelled", status="; ".join(
                part for part in ("cancelled: finished frames stay cached, the next Compute resumes", stale) if part))
        if job.state == "failed":
            error = job.error
            if isinstance(error, HostError):
                error = working_space_named(keyframes_named(error, keyframes or {}, plate), working_space)
            return Outcome("failed", error=error, status="; ".join(part for part in (str(error), stale) if part))
        files = hostclient.collect_alpha(job.out, frames)
        progress(100, "done")
        # a plate alpha below 1 is Blender's concern: Nuke's Read keeps a straight file's colour (code review)
        warned = hostclient.warnings_summary([named_keyframes(w, keyframes or {}, plate) for w in job.warnings
                                              if hostclient.PLATE_ALPHA not in w])
        status = "; ".join(part for part in (hostclient.result_summary(job.result), warned) if part)
        return Outcome("done", files=files, status=status)
    except Exception as exc:  # the thread must always report back to the main thread
        return Outcome("failed", error=exc, status=str(exc))


def alpha_read_values(out: str, first: int, last: int) -> dict[str, Any]:
    """Knob values of the Group's internal Read of the cached alpha (paths with ``/``).

    ``file_text`` goes through the file knob's ``fromUserText`` (file and range); the
    alpha is data, so the Read is raw; a missing frame inside the range is an error, never
    black; outside the computed range the alpha is black (no matte), never the nearest
    computed frame's (a Read's default ``hold``).
    """
    pattern = hostclient.alpha_pattern(out).replace("\\", "/")
    return {
        "file_text": f"{pattern} {first}-{last}",
        "file": pattern,
        "first": first,
        "last": last,
        "origfirst": first,
        "origlast": last,
        "raw": True,
        "on_error": "error",
        "before": "black",
        "after": "black",
    }


def shown_after_stop(out: str, shown: tuple[int, int], wanted: tuple[int, int]) -> tuple[tuple[int, int], str]:
    """After a Compute that stopped (cancelled, failed, killed): the frames (first, last)
    the node's internal Read can show instead of ``shown`` (its range) and what to say of it.
    A run of another range (``wanted``) removes the alphas outside it as its matte stage
    ends, before the run does: stopped then, the Read erred on those frames unsaid (Nuke QA).
    The Read takes the new range where every frame of it is there, else the frames of both;
    frames missing inside the new range (frames the run was to make, which the job's stale
    note names) change nothing."""
    present = {f for f, path in hostclient.sequence_files(hostclient.alpha_pattern(out)) if os.path.isfile(path)}
    gone = [f for f in range(shown[0], shown[1] + 1) if f not in present and not wanted[0] <= f <= wanted[1]]
    if not gone:
        return shown, ""
    said = f"alpha frames {hostclient.compact_frames(gone)} are gone (outside the new frame range)"
    first, last = max(shown[0], wanted[0]), min(shown[1], wanted[1])
    for kept in (wanted, (first, last)):
        if kept[0] <= kept[1] and all(f in present for f in range(kept[0], kept[1] + 1)):
            return kept, f"{said}: the node shows {kept[0]}-{kept[1]}"
    return shown, f"{said}: Compute again"


def output_of(alpha_file: str) -> str | None:
    """The run's output folder from the internal Read's file (``OUT/alpha/alpha.####.exr``),
    or None when the node was not computed."""
    if not alpha_file.strip():
        return None
    return os.path.dirname(os.path.dirname(alpha_file.replace("\\", "/")))


_SHOWN = 8  # suggested frames listed on the knob


def _read_review(out: str | None, frames: tuple[int, int] | None) -> Any:
    """The review of the run in ``out`` (None without one), of the node's ``frames``
    (first, last) only when given: the run also reviews the neighbours it read around them."""
    review = hostclient.read_review(out) if out else None
    return review.within(*frames) if review is not None and frames is not None else review


def review_values(out: str | None, frames: tuple[int, int] | None = None) -> dict[str, str]:
    """The text of the ``suggested`` and ``doubtful`` knobs for the run in ``out`` (of the
    node's ``frames``, first and last, when given)."""
    review = _read_review(out, frames)
    if review is None:
        return {"suggested": "", "doubtful": "no review" if out else ""}
    keys = [str(f) for f in review.suggested if f not in review.keyframes][:_SHOWN]
    doubtful = f"{len(review.doubtful)}: " + " ".join(map(str, review.doubtful)) if review.doubtful else "none"
    if review.estimated:  # the run's warning only counted them
        doubtful += f" (doubt only guessed for {review.guessed()})"
    if review.out_of_date:  # a run of part of the range after an edit: their doubt is of the old matte
        doubtful += (f"; out of date (older than their inputs; compute the whole range): "
                     f"{hostclient.compact_frames(review.out_of_date)}")
    if review.not_reviewed or review.not_matted:
        doubtful += f"; not matted yet: {hostclient.compact_frames(sorted({*review.not_reviewed, *review.not_matted}))}"
    return {"suggested": " ".join(keys), "doubtful": doubtful}


def review_target(out: str | None, current: int, action: str, keyframes: Sequence[int] = (),
                  frames: tuple[int, int] | None = None) -> tuple[int, str]:
    """Where a review button moves the viewer, and what to tell the artist.

    ``action`` is ``next`` / ``previous`` (the doubtful frame after / before ``current``) or
    ``suggested`` (the top suggested frame not in ``keyframes`` yet), among the node's
    ``frames`` (first, last) when given. HostError when there is no review or no such frame.
    """
    review = _read_review(out, frames)
    if review is None:
        raise HostError("the node has no review yet" if out is None else f"the last run left no review in {out}",
                        "press Compute (every run writes a review)")
    if action == "suggested":
        frame = review.best_suggestion(keyframes)
        if frame is None:
            raise HostError("the review suggests no frame that is not a keyframe already", "look at the doubtful frames")
    elif action in ("next", "previous"):
        frame = review.next_doubtful(current, 1 if action == "next" else -1)
        if frame is None:
            where = "after" if action == "next" else "before"
            raise HostError(f"no doubtful frame {where} frame {current}", "the review marks no other frame")
    else:
        raise ValueError(action)
    doubt = review.doubt.get(frame)
    return frame, f"frame {frame}" + (f": doubt {doubt:.3g}" if doubt is not None else "")


def with_keyframe(text: str, frame: int) -> str:
    """The keyframes knob's text with ``frame`` added (sorted, each once)."""
    frames = parse_keyframes(text) if text.strip() else []
    return " ".join(str(f) for f in sorted({*frames, frame}))


def error_text(exc: BaseException) -> str:
    """What ``nuke.message`` shows the artist: the problem and, for HostError, the fix."""
    if isinstance(exc, HostError):
        return f"TCVOM_Matte: {exc.message}" + (f"\n\nFix: {exc.fix}" if exc.fix else "")
    return f"TCVOM_Matte: unexpected error: {exc}"
