"""Writers for what tcvom produces: alpha mattes and trimaps, one file per frame.

Alpha output (``AlphaWriter``):

=============  ===================================================================
``exr``        half float, a single ``A`` channel (default)
``exr32``      32-bit float, a single ``A`` channel
``png16``      16-bit PNG, one grey channel
``tif16``      16-bit TIFF, one grey channel
=============  ===================================================================

``kind="rgba"`` writes the premultiplied foreground with its alpha (RGBA) instead, in
the same pixel types. EXR RGBA is scene-linear and never clamped: the caller gives the
foreground in the plate's scene-linear space (``linear_space`` is stamped in the header);
integer formats hold display-referred sRGB in [0, 1].

``kind="layers"`` (EXR only) writes alpha with a network's foreground and background
colours as layers for a compositor (:data:`LAYER_CHANNELS`: ``A``, ``fg.R`` ``fg.G``
``fg.B``, ``bg.R`` ``bg.G`` ``bg.B``, OpenEXR/Nuke ``layer.channel`` names). The colours
are straight (not premultiplied), scene-linear as for RGBA and never clamped.

Every file is written under a temporary name in its folder and renamed into place; a
writer removes the temporaries that killed writers left in its folder.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from tcvom.errors import InputError, check_choice
from tcvom.io.atomic import ensure_writable_folder, remove_dead_temporaries
from tcvom.io.colour import interop_id
from tcvom.io.images import ImageLayout, image_layout, write_image
from tcvom.io.sequence import check_records_name, frame_number, frame_path, output_pattern

log = logging.getLogger("tcvom")
HALF_MAX = 65504.0
"""The largest finite half float: larger values of a half EXR are infinity (of their sign)."""
#: Header of the integer files that hold data, not colour (an alpha, a trimap): OpenImageIO
#: then writes no sRGB or gamma tag (a PNG's sRGB/gAMA chunks), which a viewer or a compositor
#: honouring them would apply to the coverage values.
DATA: dict[str, str | int | float] = {"oiio:ColorSpace": "data"}

ALPHA_FORMATS: dict[str, tuple[str, str]] = {
    "exr": ("half", ".exr"),
    "exr32": ("float", ".exr"),
    "png16": ("uint16", ".png"),
    "tif16": ("uint16", ".tif"),
}
OUTPUT_KINDS: tuple[str, ...] = ("alpha", "rgba", "layers")
#: The channels of ``kind="layers"``: alpha, then the foreground and background colours.
LAYER_CHANNELS: tuple[str, ...] = ("A", "fg.R", "fg.G", "fg.B", "bg.R", "bg.G", "bg.B")


class FrameWriter:
    """Writes one file per frame into ``out`` (a folder, or a pattern like ``a.####.exr``)."""

    def __init__(self, out: str | Path, default_name: str, *, format_flag: str | None = None,
                 create: bool = True) -> None:
        """``create=False`` (a plan, which writes nothing) leaves the folder as it is, even
        missing, once it is found that it could be made and written."""
        self.pattern = output_pattern(out, default_name, format_flag=format_flag)
        check_records_name(self.pattern)  # before the folder is made
        self.folder = ensure_writable_folder(Path(self.pattern).parent, create=create)
        self.removed_temporaries: list[Path] = []
        if create:
            self.removed_temporaries = remove_dead_temporaries(self.folder)  # of killed writers

    def path(self, frame: int) -> Path:
        return frame_path(self.pattern, frame_number(frame))

    def exists(self, frame: int) -> bool:
        return self.path(frame).is_file()


def check_alpha_output(fmt: str, kind: str, plate: Any = None) -> None:
    """Refuse an alpha format or output kind :class:`AlphaWriter` cannot write (InputError);
    with the opened ``plate``, a format without windows (PNG, TIFF) for a plate whose frames
    do not lie on its display window (overscan, or a crop reaching outside it): written from
    the frames' top-left corner, its alpha would not line up with the plate's picture."""
    check_choice(fmt, ALPHA_FORMATS, "alpha format")
    check_choice(kind, OUTPUT_KINDS, "output")
    if kind == "layers" and not fmt.startswith("exr"):
        raise InputError(
            f"--output layers writes the foreground and background as EXR layers; {fmt} cannot hold them",
            hint="use --alpha-format exr or exr32 (or --output rgba for a premultiplied foreground)",
        )
    display = getattr(plate, "display", None)
    if fmt.startswith("exr") or display is None:
        return
    canvas = (*plate.origin, plate.width, plate.height)
    if tuple(display) != canvas:
        x, y, w, h = canvas
        raise InputError(
            f"the plate's frames cover {w}x{h} pixels from ({x}, {y}) and its display window is "
            f"{display[2]}x{display[3]} from ({display[0]}, {display[1]}) (overscan): {fmt} keeps no windows, so the "
            "alpha would not line up with the plate's picture", path=plate.path(plate.frame_numbers[0]),
            hint="use --alpha-format exr or exr32, which keep the plate's data and display windows")


class AlphaWriter(FrameWriter):
    """Alpha mattes (or premultiplied RGBA) per frame; see the module doc for formats."""

    def __init__(self, out: str | Path, *, fmt: str = "exr", kind: str = "alpha", name: str = "alpha",
                 create: bool = True) -> None:
        check_alpha_output(fmt, kind)
        self.pixel_type, suffix = ALPHA_FORMATS[fmt]
        self.header = {}
        self._overflow_said = False
        self.fmt = fmt
        self.kind = kind
        super().__init__(out, f"{name}.####{suffix}", format_flag="--alpha-format", create=create)

    header: dict[str, str | int | float]
    """Provenance stamped into every EXR this writer makes (``tcvom:`` attributes)."""

    def as_stored(self, alpha: np.ndarray) -> np.ndarray:
        """``alpha`` (float32, clipped to [0, 1]) rounded as this writer's pixel type stores
        it: the colours estimated for it then hold where the file says alpha 1 (a half
        alpha of 0.99976 or more reads 1.0, and the plate must show through as it is)."""
        a = np.clip(np.asarray(alpha, dtype=np.float32), 0.0, 1.0)
        if self.pixel_type == "half":
            return a.astype(np.float16).astype(np.float32)
        if self.pixel_type == "uint16":
            return (np.round(a * 65535.0) / 65535.0).astype(np.float32)
        return a

    @property
    def scene_linear(self) -> bool:
        """True if RGBA output is written scene-linear (EXR), False for integer formats."""
        return self.fmt.startswith("exr")

    def _attributes(self, frame: int, plate: str | Path | None,
                    stamp: dict[str, str] | None = None) -> dict[str, str | int | float | tuple[float, ...]] | None:
        if not self.fmt.startswith("exr"):
            return None
        stamped: dict[str, str | int | float | tuple[float, ...]] = {**self.header, **(stamp or {})}
        if plate is not None:
            stamped.update({"tcvom:plate": str(Path(plate).absolute()), "tcvom:plate_frame": int(frame)})
        return stamped or None

    def _layout(self, plate: str | Path | None, shape: tuple[int, ...],
                origin: tuple[int, int] | None, colour: bool = False) -> ImageLayout | None:
        """The plate frame's windows and attributes for an EXR output (not for a movie).
        ``origin``: where the output's pixels start (the plate's canvas, which holds a frame
        whose data window crops the picture: the output covers the canvas, not the crop).
        ``colour``: the output's RGB is in the plate's own space, so it keeps the plate's
        primaries (``chromaticities``)."""
        from tcvom.io.sources import MOVIE_SUFFIXES

        if plate is None or not self.fmt.startswith("exr") or Path(plate).suffix.lower() in MOVIE_SUFFIXES:
            return None
        layout = image_layout(plate, colour=colour)
        if origin is not None:
            layout = replace(layout, width=shape[1], height=shape[0], x=origin[0], y=origin[1])
        return layout

    def write(self, frame: int, alpha: np.ndarray, foreground: np.ndarray | None = None,
              *, background: np.ndarray | None = None, linear_space: str | None = None,
              plate: str | Path | None = None, origin: tuple[int, int] | None = None,
              stamp: dict[str, str] | None = None, plate_space: bool = False,
              chromaticities: tuple[float, ...] | None = None, pixel_aspect: float = 1.0,
              interop: str | None = None) -> Path:
        """Write ``alpha`` (float ``H x W`` in [0, 1]). ``kind="rgba"`` needs
        ``foreground`` (``H x W x 3``): scene-linear in ``linear_space`` for EXR (not
        clamped), display-referred sRGB in [0, 1] for integer formats. ``kind="layers"``
        needs ``foreground`` and ``background``, scene-linear in ``linear_space``. ``plate``
        (the plate frame's file) gives an EXR its windows and attributes; ``origin`` is where
        the alpha starts in that picture (the plate source's ``origin``); ``stamp`` adds
        this frame's own ``tcvom:`` attributes to the writer's :attr:`header`.
        ``plate_space``: ``linear_space`` is the plate's own colour space, whose primaries
        (the plate's ``chromaticities``) an RGBA or layers EXR then keeps; where the plate
        has none, ``chromaticities`` (those of ``linear_space``) are written, so that an
        OpenEXR reader does not take them for Rec.709's. ``pixel_aspect``: that of a plate
        without a header to copy it from (a movie's), written as an EXR's ``PixelAspectRatio``.
        ``interop``: the colour interop id of ``linear_space`` (None: as the built-in studio
        config gives it; see :func:`~tcvom.io.colour.interop_id`)."""
        if not np.issubdtype(np.asarray(alpha).dtype, np.floating):  # 200 of a uint8 alpha was written as 1.0
            raise InputError(f"an alpha is float in [0, 1], not {np.asarray(alpha).dtype}", frame=frame,
                             hint="scale integer alphas to [0, 1] first (uint8: / 255)")
        a = np.clip(np.asarray(alpha, dtype=np.float32), 0.0, 1.0)
        if np.isnan(a).any():  # was written as NaN (the matte stage refuses such a matte before)
            raise InputError(f"the alpha holds NaN at {int(np.isnan(a).sum())} pixels", frame=frame,
                             hint="replace NaN first (e.g. numpy.nan_to_num(alpha, nan=0.0))")
        if a.ndim != 2:
            raise InputError(f"an alpha to write is H x W, not {a.shape}", frame=frame, path=self.path(frame),
                             hint="drop the channel axis first (alpha[..., 0])")
        if self.kind == "alpha":
            channels = ("A",) if self.fmt.startswith("exr") else ("Y",)
            layout = self._layout(plate, a.shape, origin)
            return write_image(self.path(frame), a, pixel_type=self.pixel_type, channels=channels,
                               attributes=self._aspect(self._attributes(frame, plate, stamp) or DATA, layout,
                                                       pixel_aspect),
                               layout=layout)
        if foreground is None:
            raise InputError(f"{self.kind} output needs the foreground colour (foreground=)", frame=frame,
                             path=self.path(frame))
        fg = np.asarray(foreground, dtype=np.float32)
        if not self.scene_linear:
            fg = np.clip(fg, 0.0, 1.0)
        if self.kind == "layers":
            if background is None:
                raise InputError("layers output needs the background colour (background=)", frame=frame,
                                 path=self.path(frame))
            pixels = np.concatenate([a[:, :, None], fg, np.asarray(background, dtype=np.float32)], axis=2)
            channels = LAYER_CHANNELS
        else:
            pixels = np.concatenate([fg * a[:, :, None], a[:, :, None]], axis=2)
            channels = ("R", "G", "B", "A")
        if self.pixel_type == "half" and not self._overflow_said and np.abs(pixels).max(initial=0.0) > HALF_MAX:
            self._overflow_said = True  # once per output: a shot of glints would repeat it on every frame
            log.warning("%s: frame %d: colour values beyond +-%g (the largest half float) are written as infinity "
                        "(said for the first such frame only); --alpha-format exr32 keeps them",
                        self.path(frame), frame, HALF_MAX)
        attributes = self._attributes(frame, plate, stamp)
        if self.fmt.startswith("exr") and linear_space:  # OpenImageIO may rename the space: keep ours too
            attributes = {**(attributes or {}), "oiio:ColorSpace": linear_space, "tcvom:colorspace": linear_space}
            interop = interop_id(linear_space) if interop is None else interop
            if interop:  # OpenImageIO finds it through its own config ($OCIO), and drops a name that one lacks
                attributes["colorInteropID"] = interop
        layout = self._layout(plate, a.shape, origin, plate_space)
        kept = layout is not None and any(name == "chromaticities" for name, _, _ in layout.attributes)
        if attributes is not None and chromaticities and not kept:
            attributes["chromaticities"] = chromaticities
        return write_image(self.path(frame), pixels, pixel_type=self.pixel_type, channels=channels,
                           attributes=self._aspect(attributes, layout, pixel_aspect), layout=layout)

    def _aspect(self, attributes: dict[str, Any] | None, layout: ImageLayout | None,
                pixel_aspect: float) -> dict[str, Any] | None:
        """``attributes`` with ``PixelAspectRatio`` for an EXR whose plate has no header to
        copy it from (a movie's pixel aspect); a plate file's own comes with its layout."""
        if pixel_aspect == 1.0 or layout is not None or not self.fmt.startswith("exr"):
            return attributes
        return {**(attributes or {}), "PixelAspectRatio": float(pixel_aspect)}


class TrimapWriter(FrameWriter):
    """Trimaps per frame as 8-bit single-channel PNG holding 0 / 128 / 255."""

    def __init__(self, out: str | Path, *, name: str = "trimap", create: bool = True) -> None:
        super().__init__(out, self.default_name(name), create=create)

    @staticmethod
    def default_name(name: str = "trimap") -> str:
        """The file name pattern a writer given a folder writes to (``output_pattern`` makes the path)."""
        return f"{name}.####.png"

    def write(self, frame: int, trimap: np.ndarray) -> Path:
        tri = np.asarray(trimap)
        if tri.dtype != np.uint8 or tri.ndim != 2:
            raise ValueError("a trimap to write must be uint8 H x W")
        return write_image(self.path(frame), tri.astype(np.float32) / 255.0, pixel_type="uint8", channels=("Y",),
                           attributes=DATA)


class ProbabilityWriter(FrameWriter):
    """Class probabilities per frame (background, unknown, foreground) as half-float EXR for review."""

    def __init__(self, out: str | Path, *, name: str = "probs", create: bool = True) -> None:
        super().__init__(out, f"{name}.####.exr", create=create)

    def write(self, frame: int, probs: np.ndarray) -> Path:
        """``probs``: ``3 x H x W``, uint8 (0..255) or float in [0, 1]."""
        p = np.asarray(probs)
        data = p.astype(np.float32) / 255.0 if p.dtype == np.uint8 else p.astype(np.float32)
        return write_image(
            self.path(frame), np.moveaxis(data, 0, -1), pixel_type="half", channels=("bg", "unknown", "fg")
        )
