"""Single images through OpenImageIO: reading any format it knows, writing atomically."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tcvom.errors import InputError, OutputError, ReadError, check_choice
from tcvom.io.atomic import FULL_HINT, atomic_output

FLOAT_FORMATS = frozenset({"half", "float", "double"})


@dataclass(frozen=True)
class ImageInfo:
    """What a file holds: size, channels and the stored pixel type (``uint8``, ``half``...)."""

    path: str
    width: int
    height: int
    channels: tuple[str, ...]
    pixel_type: str
    origin: tuple[int, int] = (0, 0)
    """Where the pixels (the data window) start in the picture (EXR: not always 0, 0)."""
    display: tuple[int, int, int, int] | None = None
    """The display window (x, y, width, height): the picture's format, which the data
    window may crop (a CG render's bounding box) or exceed (overscan)."""
    parts: tuple[str, ...] = ()
    """Of a multi-part EXR, every part as ``name (channels)``, and ``part`` the one read
    (:func:`_select_part`); empty for a file of one part and other formats."""
    part: int = 0
    orientation: int = 1
    """The file's orientation tag (EXIF / TIFF: 1 as stored, 2-8 flipped or turned), which
    photo viewers apply and compositors (and tcvom) do not."""
    part_clear: bool = True
    """Whether the part read is clearly the picture (False: a multi-part EXR with no R, G, B
    part and not exactly one part holding a single picture)."""
    colorspace: str = ""
    """The colour space OpenImageIO reads from the header (``oiio:ColorSpace``: a PNG's gAMA
    or sRGB chunk, a DPX's transfer), empty where it says none."""
    log_transfer: str = ""
    """A DPX's log transfer (``Printing density``, ``Logarithmic``: a film scan), which
    OpenImageIO names no colour space for (or one no config knows); empty otherwise."""
    chromaticities: tuple[float, ...] = ()
    """An OpenEXR header's ``chromaticities`` (x, y of red, green, blue and white), empty
    where it has none."""
    pixel_aspect: float = 1.0
    """The header's ``PixelAspectRatio`` (an anamorphic scan's: a pixel's width over its height)."""
    alpha: int = -1
    """The index of the alpha channel (-1: none)."""
    unassociated: bool = False
    """Whether the file stores its colour unpremultiplied by its alpha (PNG; a TIFF with an
    unassociated extra sample): a host such as Blender premultiplies it when loading."""

    @property
    def is_float(self) -> bool:
        return self.pixel_type in FLOAT_FORMATS


PLATE_ATTRIBUTES: tuple[str, ...] = ("PixelAspectRatio", "smpte:TimeCode", "FramesPerSecond")
"""Header attributes a matte keeps from its plate so it lines up in a compositor."""

COLOUR_ATTRIBUTES: tuple[str, ...] = ("chromaticities", "adoptedNeutral")
"""Header attributes that say what a file's RGB means (OpenEXR: without ``chromaticities``
the primaries are Rec.709's): kept by a colour output written in the plate's own space."""


@dataclass(frozen=True)
class ImageLayout:
    """Where a file's pixels sit: data window (size and origin), display window, and the
    plate attributes of :data:`PLATE_ATTRIBUTES` it has (name, OpenImageIO type, value)."""

    width: int
    height: int
    x: int
    y: int
    full_x: int
    full_y: int
    full_width: int
    full_height: int
    attributes: tuple[tuple[str, object, object], ...] = ()


def _oiio():
    import OpenImageIO as oiio

    return oiio


def _open(path: str | Path):
    """Open ``path`` for reading with its stored colour untouched by an alpha channel.

    OpenImageIO premultiplies files that store unassociated alpha (PNG, TIFF with an
    unassociated extra sample) unless ``oiio:UnassociatedAlpha`` is set; then a plate's
    RGB would depend on an alpha channel it happens to carry. With the hint every format
    gives back its stored RGB (associated-alpha files such as EXR already do).
    """
    oiio = _oiio()
    config = oiio.ImageSpec()
    config.attribute("oiio:UnassociatedAlpha", 1)
    return oiio.ImageInput.open(_name(path), config)


def _name(path: str | Path) -> str:
    """``path`` as OpenImageIO takes it: UTF-8 text. A name of other bytes (a Latin-1 name
    on an old file server, which Python keeps as surrogate escapes) is refused by name."""
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError("the path is not valid UTF-8, and OpenImageIO opens UTF-8 names only", path=path,
                         hint="rename the file or its folder to UTF-8 (e.g. convmv -f latin1 -t utf8)") from None
    return text


def _select_part(inp: Any) -> tuple[int, tuple[str, ...], bool]:
    """Seek ``inp`` to the part to read; return (its index, every part described, whether
    that part is clearly the picture).

    A file of one part, and any file but an OpenEXR one (a TIFF's further pages are
    thumbnails or masks), reads its first. A multi-part EXR (AOVs in parts, in any order)
    reads its part with R, G, B channels, the beauty (of several, the first named as a beauty:
    :data:`BEAUTY_PARTS`, in a stereo file the default view's, the first its ``multiView``
    lists); without one, the one part that holds a single picture (one
    colour layer, or grey Y); with none or several such parts, which is the plate is unclear
    (the first candidate is read, by readers that do not ask).
    """
    if inp.format_name() != "openexr" or not inp.seek_subimage(1, 0):
        inp.seek_subimage(0, 0)
        return 0, (), True
    parts: list[str] = []
    names_of: list[set[str]] = []
    views: list[object] = []
    hero = None  # a stereo file's default view: the first of its multiView list
    while inp.seek_subimage(len(parts), 0):
        spec = inp.spec()
        names = tuple(spec.channelnames)
        parts.append(f"{spec.getattribute('name') or f'part {len(parts)}'} ({', '.join(names[:8])})")
        names_of.append(set(names))
        views.append(spec.getattribute("view"))
        listed = spec.getattribute("multiView")
        if hero is None and isinstance(listed, (tuple, list)) and listed:
            hero = listed[0]
    beauty = [i for i, names in enumerate(names_of) if {"R", "G", "B"} <= names]
    if len(beauty) > 1:  # OpenEXR lets parts share channel names: the first named as the beauty
        named = [i for i in beauty if _part_name(parts[i]).rsplit(".", 1)[-1].lower() in BEAUTY_PARTS]
        # stereo's left.rgba and right.rgba: the default view's, stored first or not (plates QA:
        # a file storing the right eye first had it matted, the keyframes painted on the left)
        beauty = [i for i in named or beauty if hero is not None and views[i] == hero][:1] or named[:1] or beauty
    pictures = beauty or [i for i, names in enumerate(names_of) if _one_picture(names)]
    chosen = pictures[0] if pictures else 0
    inp.seek_subimage(chosen, 0)
    return chosen, tuple(parts), len(pictures) == 1


#: Names of the beauty among a multi-part EXR's parts of R, G, B channels (Nuke's ``rgba``,
#: Blender's ``ViewLayer.Combined``; compared in lower case, after the last dot).
BEAUTY_PARTS = ("rgba", "rgb", "beauty", "combined")


def _part_name(described: str) -> str:
    """A part's name in :func:`_select_part`'s description ``name (R, G, B)``."""
    return described.rsplit(" (", 1)[0]


def colour_layers(names: Iterable[str]) -> list[str]:
    """The layers of a multi-layer image's channel names that hold a colour (``beauty`` of
    ``beauty.R``, ``beauty.G``, ``beauty.B``), sorted."""
    names = set(names)
    return sorted({n[:-2] for n in names if n.endswith(".R") and f"{n[:-2]}.G" in names and f"{n[:-2]}.B" in names})


def _one_picture(names: set[str]) -> bool:
    """Channels of one picture: grey (Y, with or without A), or a single colour layer."""
    return len(colour_layers(names)) == 1 or names in ({"Y"}, {"Y", "A"})


def _header(path: str | Path) -> tuple[Any, int, tuple[str, ...], bool]:
    """The ImageSpec of the part of a file that is read (:func:`_select_part`), read
    without its pixels, with the part's index, every part described and whether the part
    is clearly the picture."""
    oiio = _oiio()
    inp = _open(path)
    if inp is None:
        raise _read_error(path, oiio.geterror())
    try:
        part, parts, clear = _select_part(inp)
        return oiio.ImageSpec(inp.spec()), part, parts, clear
    finally:
        inp.close()


def picture_window(info: ImageInfo) -> tuple[int, int, int, int]:
    """The picture a file's pixels belong on (x, y, width, height): its data and display
    windows together. Full-frame and overscanned files (the data window holds the display
    window) keep their data window; a cropped one (a CG render's bounding box) is placed on
    its display window, black around it."""
    if info.display is None:
        return (*info.origin, info.width, info.height)
    fx, fy, fw, fh = info.display
    (x, y), w, h = info.origin, info.width, info.height
    left, top = min(x, fx), min(y, fy)
    return left, top, max(x + w, fx + fw) - left, max(y + h, fy + fh) - top


def placed_on(pixels: np.ndarray, origin: tuple[int, int], window: tuple[int, int, int, int]) -> np.ndarray:
    """``pixels`` (``H x W`` or ``H x W x C``) whose top-left pixel lies at ``origin`` (x, y),
    on the picture ``window`` (x, y, width, height): the window's size, zero where they do
    not reach, cropped where they reach past it."""
    x, y, width, height = window
    if tuple(origin) == (x, y) and pixels.shape[:2] == (height, width):
        return pixels
    placed = np.zeros((height, width, *pixels.shape[2:]), dtype=pixels.dtype)
    left, top = max(origin[0], x), max(origin[1], y)
    right, bottom = min(origin[0] + pixels.shape[1], x + width), min(origin[1] + pixels.shape[0], y + height)
    if left < right and top < bottom:
        placed[top - y:bottom - y, left - x:right - x] = \
            pixels[top - origin[1]:bottom - origin[1], left - origin[0]:right - origin[0]]
    return placed


def image_info(path: str | Path) -> ImageInfo:
    """Read only the header of an image."""
    return _info(path, *_header(path))


def _pictures(path: str | Path) -> list[tuple[str, int, int, int]]:
    """Each picture (subimage) of a file as (format, width, height, channels); [] when the
    file cannot be read."""
    inp = _open(path)
    if inp is None:
        return []
    try:
        pictures, index = [], 0
        while index == 0 or inp.seek_subimage(index, 0):
            spec = inp.spec()
            pictures.append((inp.format_name(), spec.width, spec.height, spec.nchannels))
            index += 1
        return pictures
    finally:
        inp.close()


def _png_animation(path: str | Path) -> int:
    """The frame count an animated PNG's ``acTL`` chunk gives (0: a still PNG, or none to
    read). OpenImageIO reads an APNG's first picture only, as a still: its chunks before the
    image data say more."""
    try:
        with open(path, "rb") as handle:
            if handle.read(8) != b"\x89PNG\r\n\x1a\n":
                return 0
            while len(head := handle.read(8)) == 8:
                size, kind = int.from_bytes(head[:4], "big"), head[4:]
                if kind == b"IDAT" or size > 1 << 24:
                    return 0
                if kind == b"acTL":
                    body = handle.read(4)
                    return int.from_bytes(body, "big") if len(body) == 4 else 0
                handle.seek(size + 4, os.SEEK_CUR)  # the chunk's data and its CRC
    except OSError:
        return 0
    return 0


def picture_count(path: str | Path) -> int:
    """How many pictures (subimages) a file holds: an animated GIF's or PNG's frames (0:
    unreadable)."""
    pictures = _pictures(path)
    return max(len(pictures), _png_animation(path)) if pictures and pictures[0][0] == "png" else len(pictures)


def stacked_pictures(path: str | Path) -> int:
    """How many pictures of its first picture's size and channels a file other than an
    OpenEXR one holds (an animated WebP, a TIFF stack of frames: 2 or more; a TIFF's
    thumbnails and 1-bit masks are not counted; 0: unreadable). An EXR's parts are its
    layers, AOVs and views, read by :func:`_select_part`; a PSD's are its layers."""
    pictures = _pictures(path)
    if pictures and pictures[0][0] in ("openexr", "psd"):  # a PSD's further pictures are its layers
        return 1
    return sum(picture[1:] == pictures[0][1:] for picture in pictures)


def image_header(path: str | Path) -> tuple[Any, ImageInfo]:
    """The OpenImageIO ImageSpec (attributes included) of the part of a file tcvom reads,
    and its :class:`ImageInfo` (header only)."""
    header = _header(path)
    return header[0], _info(path, *header)


def _info(path: str | Path, spec: Any, part: int = 0, parts: tuple[str, ...] = (), clear: bool = True) -> ImageInfo:
    return ImageInfo(str(path), spec.width, spec.height, tuple(spec.channelnames), str(spec.format), (spec.x, spec.y),
                     (spec.full_x, spec.full_y, spec.full_width, spec.full_height), parts, part,
                     spec.get_int_attribute("Orientation", 1), clear, spec.get_string_attribute("oiio:ColorSpace", ""),
                     _log_transfer(spec.get_string_attribute("dpx:Transfer", "")), _chromaticities(spec),
                     spec.get_float_attribute("PixelAspectRatio", 1.0) or 1.0, spec.alpha_channel,
                     bool(spec.get_int_attribute("oiio:UnassociatedAlpha", 0)))


def _chromaticities(spec: Any) -> tuple[float, ...]:
    value = spec.getattribute("chromaticities")
    return tuple(float(v) for v in value) if isinstance(value, tuple) and len(value) == 8 else ()


def _log_transfer(transfer: str) -> str:
    return transfer if transfer in ("Printing density", "Logarithmic") else ""


def image_layout(path: str | Path, *, colour: bool = False) -> ImageLayout:
    """Read a file's data/display window, pixel aspect, timecode and frame rate (header
    only); with ``colour`` also its :data:`COLOUR_ATTRIBUTES`."""
    spec = _header(path)[0]
    names = PLATE_ATTRIBUTES + (COLOUR_ATTRIBUTES if colour else ())
    kept = tuple((a.name, a.type, a.value) for a in spec.extra_attribs if a.name in names)
    return ImageLayout(spec.width, spec.height, spec.x, spec.y, spec.full_x, spec.full_y,
                       spec.full_width, spec.full_height, kept)


def _read_error(path: str | Path, detail: str, frame: int | None = None) -> InputError:
    if not Path(path).exists():
        from tcvom.errors import MissingFrameError

        return MissingFrameError("file not found", path=path, frame=frame)
    detail = detail.strip().splitlines()[0] if detail.strip() else "unknown reason"
    hint = "is the file complete?"
    if "could not find a format reader" in detail:  # a file type this OpenImageIO build does not read
        hint = "convert it to a type OpenImageIO reads here (EXR, TIFF, PNG, DPX, JPEG), or is it not an image?"
    return ReadError(f"cannot read the image ({detail})", path=path, frame=frame, hint=hint)


def read_image(path: str | Path, frame: int | None = None) -> tuple[np.ndarray, ImageInfo]:
    """Read a whole image as float32 ``H x W x C`` plus its header.

    Integer files are scaled to [0, 1] by OpenImageIO; float files keep their values
    (scene-linear EXRs may exceed 1). RGB is the stored RGB whatever alpha the file
    carries: files with unassociated alpha (PNG, some TIFFs) are not premultiplied.
    """
    oiio = _oiio()
    inp = _open(path)
    if inp is None:
        raise _read_error(path, oiio.geterror(), frame)
    try:
        part, parts, clear = _select_part(inp)
        spec = inp.spec()
        if spec.deep:  # OpenImageIO would hand back one sample per pixel: not the picture
            raise ReadError("the file is a deep image; tcvom reads flat images", path=path, frame=frame,
                            hint="flatten it first (Nuke: DeepToImage; oiiotool --flatten)")
        pixels = inp.read_image(part, 0, 0, spec.nchannels, oiio.FLOAT)
        if pixels is None or not isinstance(pixels, np.ndarray):
            raise _read_error(path, inp.geterror() or oiio.geterror(), frame)
        if inp.has_error:  # pixels, and an error: a truncated JPEG's missing rows came back grey
            raise _read_error(path, inp.geterror(), frame)
        info = _info(path, spec, part, parts, clear)
    finally:
        inp.close()
    array = np.asarray(pixels, dtype=np.float32)
    if array.ndim == 2:
        array = array[:, :, None]
    return array, info


PIXEL_TYPES: dict[str, str] = {"half": "half", "float": "float", "uint16": "uint16", "uint8": "uint8"}


def alpha_channel(pixels: np.ndarray, channels: Sequence[str], path: str | Path, frame: int | None = None, *,
                  purpose: str = "used") -> np.ndarray:
    """The alpha of a matte file's pixels (``H x W`` or ``H x W x C``, ``channels`` their
    names, empty where the file does not name them) as float32 ``H x W`` in [0, 1]: the
    channel named ``A`` where there is one, else the last of unnamed grey+alpha or RGBA, else
    the first (grey, or RGB written as grey). Other files without an ``A`` (an RGB render
    with depth, AOVs) are an InputError, and so
    is an alpha with NaN or infinite values (``purpose``: what could not be done with it)."""
    count = pixels.shape[2] if pixels.ndim == 3 else 1
    names = list(channels) if len(channels) == count else []  # unnamed: a PNG read by OpenCV
    if pixels.ndim == 2:
        alpha = pixels
    elif "A" in names:
        alpha = pixels[:, :, names.index("A")]
    elif count in (2, 4) and not names:
        alpha = pixels[:, :, -1]
    elif count in (1, 3):
        alpha = pixels[:, :, 0]
    else:
        raise InputError(f"the matte file has {count} channels ({', '.join(names) or 'unnamed'}) and none named A: "
                         "which is the alpha cannot be told", path=path, frame=frame,
                         hint="write the alpha as a channel named A, or as a one-channel file")
    bad = int(np.count_nonzero(~np.isfinite(alpha)))
    if bad:  # a score or a picture of a matte with holes would be NaN (or 0 where NaN compares false)
        raise InputError(f"the alpha has {bad} NaN/infinite value(s); it cannot be {purpose}", path=path,
                         frame=frame, hint="fix the matte (or leave the frame out)")
    return np.clip(alpha.astype(np.float32), 0.0, 1.0)


def write_image(
    path: str | Path,
    pixels: np.ndarray,
    *,
    pixel_type: str = "half",
    channels: tuple[str, ...] | None = None,
    compression: str | None = None,
    attributes: Mapping[str, str | int | float | tuple[float, ...]] | None = None,
    layout: ImageLayout | None = None,
) -> Path:
    """Write ``H x W`` or ``H x W x C`` float pixels atomically (temporary name, then rename).

    ``pixel_type`` is the stored type: ``half``/``float`` (EXR, TIFF) or ``uint8``/``uint16``
    (PNG, TIFF, JPEG): integer types take values in [0, 1], clipped and rounded.
    ``attributes`` are header metadata (``oiio:ColorSpace``, ``tcvom:method``...).
    ``layout`` (a plate's, :func:`image_layout`) gives the file the plate's pixel aspect,
    timecode and frame rate, and, when the pixels are the size of the plate's data window,
    its data-window origin and display window (overscan), so the output lines up with it.
    """
    check_choice(pixel_type, PIXEL_TYPES, "pixel type")
    oiio = _oiio()
    data = np.asarray(pixels, dtype=np.float32)
    if data.ndim == 2:
        data = data[:, :, None]
    height, width, count = data.shape
    if pixel_type in ("uint8", "uint16"):
        data = np.clip(data, 0.0, 1.0)
    final = Path(path)
    spec = oiio.ImageSpec(width, height, count, PIXEL_TYPES[pixel_type])
    if channels is not None:
        if len(channels) != count:
            raise ValueError(f"{len(channels)} channel names for {count} channels")
        spec.channelnames = tuple(channels)
        if "A" in channels:
            spec.alpha_channel = channels.index("A")
    if compression:
        spec.attribute("compression", compression)
    if layout is not None:
        if (layout.width, layout.height) == (width, height):
            spec.x, spec.y = layout.x, layout.y
            spec.full_x, spec.full_y = layout.full_x, layout.full_y
            spec.full_width, spec.full_height = layout.full_width, layout.full_height
        for name, kind, value in layout.attributes:
            spec.attribute(name, kind, value)
    for name, value in (attributes or {}).items():
        if isinstance(value, tuple):  # a float array (chromaticities)
            spec.attribute(name, oiio.TypeDesc(f"float[{len(value)}]"), value)
        elif isinstance(value, str):  # a movie plate's path of other bytes than UTF-8 (OpenImageIO failed): escaped
            spec.attribute(name, value.encode("utf-8", "backslashreplace").decode("utf-8"))
        else:
            spec.attribute(name, value)
    _name(final)
    with atomic_output(final) as tmp:
        out = oiio.ImageOutput.create(str(tmp))
        if out is None:
            raise OutputError(f"no writer for this file type ({oiio.geterror().strip()})", path=final)
        try:
            if not out.open(str(tmp), spec):
                raise OutputError(f"cannot write ({out.geterror().strip()})", path=final)
            written = out.write_image(np.ascontiguousarray(data))
            problem = out.geterror().strip()  # some writers note a short write and go on
            if not written or problem:
                raise OutputError(f"cannot write ({_first_line(problem) or 'no reason given'})", path=final,
                                  hint=FULL_HINT)
        finally:
            out.close()
        _check_written(tmp, final)
    return final




def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _check_written(tmp: Path, final: Path) -> None:
    """Read a just-written temporary back: a writer that could not flush its last bytes (a
    full disk) may still report success, and a truncated frame must never take a frame's
    name (a rerun would reuse it as done)."""
    oiio = _oiio()
    image = oiio.ImageInput.open(str(tmp))
    if image is None:
        raise OutputError(f"the written file cannot be read back ({_first_line(oiio.geterror())})", path=final,
                          hint=FULL_HINT)
    try:
        if image.read_image() is None:
            raise OutputError(f"the written file is incomplete ({_first_line(image.geterror())})", path=final,
                              hint=FULL_HINT)
    finally:
        image.close()
