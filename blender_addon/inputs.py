"""From the scene's settings to files tcvom can read: the plate, and keyframe trimaps.

Colour: tcvom is always told the plate's colour space (``--input-colorspace``): the
Plate Colour Space field, else the colour space the plate has in Blender, translated to
tcvom's OpenColorIO name by ``hostclient.ocio_colourspace``; a Blender colour space with no
equivalent there is an error, never tcvom's file-type default.

Frame numbers: tcvom numbers a plate by its files (``plate.1001.exr`` is frame 1001) or,
for a movie, from 1. The artist places keyframes on scene frames; ``PlateInfo.shift``
converts (plate frame = scene frame + shift) with Blender's own clip/image frame rules.
Each keyframe remembers the plate frame it was placed or pulled for, so a plate moved in
time since (the clip's Start Frame or Frame Offset) is refused at the pull instead of
giving its trimap to another picture.

Keyframe trimaps are written as 8-bit grey PNGs: a painted image as its Rec. 709
luminance, read as data (the file's values, not Blender's colour-managed ones), a Mask as
255 inside, 0 outside and 128 in its feather (rendered by the compositor's Mask node, the
same rasteriser Blender uses everywhere, which works in background mode). A painted
trimap holds exactly 0 (background, black), 128 (unknown, mid grey) and 255 (foreground,
white); tcvom accepts other values only on anti-aliased edges.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass

import bpy
import numpy as np

from . import nodes
from .hostclient import HostError, ocio_colourspace, sequence_files, sequence_pattern

TRIMAPS = os.path.join("trimaps", "trimap.####.png")  # where tcvom run writes the propagated trimaps

_MOVIE_FIRST_FRAME = 1  # tcvom numbers movie frames from 1, as Blender does
KEYFRAME_TAG = "tcvom_keyframe"  # custom property of the keyframe images the add-on makes (packed into the .blend)


@dataclass
class PlateInfo:
    """The plate as tcvom sees it."""

    datablock: bpy.types.ID  # MovieClip or Image
    path: str  # absolute sequence pattern (####) or movie file
    frames: list[int]  # plate frame numbers
    shift: int  # plate frame = scene frame + shift
    size: tuple[int, int]  # width, height
    image_frames: tuple[int, int, int] | None  # Image node start, offset, duration (Image plates)
    file: str  # the datablock's file: one frame of the sequence, or the movie


def _first_number(path: str) -> int:
    pattern = sequence_pattern(path)
    name = os.path.basename(pattern)
    start = name.index("#")
    digits = os.path.basename(path)[start : start + name.count("#")]
    if int(digits) < 0:
        _refuse_below_zero(os.path.basename(path))
    return int(digits)


def _refuse_below_zero(name: str) -> None:
    """plate.-003.exr (tcvom's and Nuke's name of frame -3): Blender reads the sign as part
    of the name ("plate.-", frame 3) and plays no frame below zero."""
    raise HostError(f"the plate's files are numbered below zero ({name}): Blender plays no frame of a sequence "
                    "below zero, so it would show other frames than tcvom mattes",
                    "renumber the files from 0 or above (e.g. from 1001) and open the plate again")


def frame_shift(settings: bpy.types.PropertyGroup) -> int | None:
    """``PlateInfo.shift`` as the plate's settings make it now, by the same rules as
    :func:`plate_info` but without reading the plate's files (cheap enough for a panel's
    draw); None without a plate."""
    if settings.source_type == "CLIP":
        source = settings.clip
        start = source.frame_start - source.frame_offset if source is not None else 0
    else:
        source, start = settings.image, settings.image_start
    if source is None or source.source not in ("SEQUENCE", "MOVIE"):
        return None
    if source.source == "MOVIE":
        return _MOVIE_FIRST_FRAME - start
    try:
        return _first_number(source.filepath) - start
    except HostError:
        return None


def frame_span(first: int, last: int) -> str:
    """Frames ``first``-``last`` as an artist reads them: ``1001-1008``, ``5``; with a
    negative end ``-4 to 0`` (``-4-0`` reads as a subtraction)."""
    if first == last:
        return str(first)
    return f"{first}-{last}" if first >= 0 else f"{first} to {last}"


def frame_ranges(frames: Iterable[int]) -> str:
    """Frames as ranges: ``[-4, -3, ..., 0, 2, 3, 4, 5]`` as ``-4 to 0, 2-5``."""
    runs: list[list[int]] = []
    for frame in sorted(set(frames)):
        if runs and frame == runs[-1][1] + 1:
            runs[-1][1] = frame
        else:
            runs.append([frame, frame])
    return ", ".join(frame_span(a, b) for a, b in runs)


def missing_file(plate: PlateInfo, frame: int) -> str | None:
    """The file of plate ``frame`` when it lies between the plate's first and last files
    but is not there (a gap in the sequence), else None."""
    if frame in plate.frames or not plate.frames[0] <= frame <= plate.frames[-1]:
        return None
    hashes = re.search(r"#+", os.path.basename(plate.path))
    if hashes is None:
        return None
    head, name = os.path.split(plate.path)
    return os.path.join(head, name.replace(hashes.group(), f"{frame:0{len(hashes.group())}d}", 1))


def plate_info(settings: bpy.types.PropertyGroup) -> PlateInfo:
    """Read the plate settings; raise HostError with the fix when they cannot work."""
    if settings.source_type == "CLIP":
        clip = settings.clip
        if clip is None:
            raise HostError("no Movie Clip is chosen as the plate", "pick the plate's Movie Clip in the tcvom panel")
        path = os.path.normpath(bpy.path.abspath(clip.filepath, library=clip.library))
        if clip.source == "SEQUENCE":
            start = _first_number(path)
            pattern = sequence_pattern(path)
            frames = [f for f, _ in sequence_files(pattern)]
        else:
            start, pattern = _MOVIE_FIRST_FRAME, path
            frames = list(range(start, start + clip.frame_duration))
        shift = start - clip.frame_start + clip.frame_offset
        datablock, image_frames = clip, None
    else:
        image = settings.image
        if image is None:
            raise HostError("no image sequence is chosen as the plate", "pick the plate's Image in the tcvom panel")
        if image.source == "TILED":
            raise HostError(
                f"the image '{image.name}' was opened as UDIM tiles, not as a sequence "
                "(Blender takes files numbered 1001... for UDIM tiles)",
                "set its Source to Image Sequence (Image editor sidebar, Image tab), or open it again "
                "with Detect UDIMs off, or open it as a Movie Clip",
            )
        if image.source not in ("SEQUENCE", "MOVIE"):
            raise HostError(
                f"the image '{image.name}' is a single image, not a sequence or movie",
                "open the plate as an image sequence (select all its frames) or as a Movie Clip",
            )
        path = os.path.normpath(bpy.path.abspath(image.filepath, library=image.library))
        if image.source == "SEQUENCE":
            start = _first_number(path)
            pattern = sequence_pattern(path)
            frames = [f for f, _ in sequence_files(pattern)]
        else:
            start, pattern = _MOVIE_FIRST_FRAME, path
            frames = list(range(start, start + image.frame_duration))
        shift = start - settings.image_start
        datablock = image
        # The compositor's Image node plays every file from the first, as the alpha does:
        # opened from a later file (plate.1003 of 1001-1006) it started there, and the
        # files before it were matted but shown as that file's picture.
        image_frames = (frames[0] - shift, frames[0] - 1, frames[-1] - frames[0] + 1) if frames else None
    if not frames or not os.path.exists(path):
        raise HostError(f"the plate's files are not found: {path}", "relink the plate (File > External Data)")
    if datablock.source == "SEQUENCE" and frames[0] < 0:  # opened from a file at 0 or above, files below beside it
        _refuse_below_zero(os.path.basename(sequence_files(pattern)[0][1]))
    # The file's, not the datablock's: an Image sequence has no size until Blender has shown
    # one of its frames, and a Movie Clip slipped earlier (negative Frame Offset) said 256x256
    # once the .blend was saved (its placeholder), so pulls and "+" keyframes took that size.
    size = _file_info(path)[0]
    return PlateInfo(datablock, pattern, frames, shift, size, image_frames, path)


def _file_info(path: str) -> tuple[tuple[int, int], str]:
    """Size and Blender's colour space of a plate file (a frame or a movie), loaded on its
    own as a Movie Clip, which reads both on load."""
    try:
        clip = bpy.data.movieclips.load(path, check_existing=False)
    except RuntimeError as exc:
        raise HostError(f"the plate file {path} cannot be read by Blender ({exc})", "check the file and relink it") from exc
    try:
        size = (int(clip.size[0]), int(clip.size[1]))
        space = clip.colorspace_settings.name
    finally:
        bpy.data.movieclips.remove(clip)
    if size[0] <= 0 or size[1] <= 0:
        raise HostError(f"the plate file {path} cannot be read by Blender", "check the file and relink it")
    return size, space


def blender_colourspaces() -> list[str]:
    """The names of the colour spaces Blender offers for images and clips."""
    items = bpy.types.ColorManagedInputColorspaceSettings.bl_rna.properties["name"].enum_items
    return [item.identifier for item in items]


COLOURSPACE_FIX = ("type the OpenColorIO name of the colour space the plate's files hold in Plate Colour Space "
                   "(tcvom panel; tcvom info --colorspaces lists them), e.g. Linear Rec.709 (sRGB), ACEScg, "
                   "ARRI LogC3 (EI800)")
"""What to do about a plate colour space tcvom's config does not know."""


def plate_colourspace(settings: bpy.types.PropertyGroup, plate: PlateInfo) -> str:
    """The plate's ``--input-colorspace``: Plate Colour Space, else the plate's colour space
    in Blender, as tcvom's OpenColorIO name. A typed name that is not one of Blender's goes
    to tcvom as it is (tcvom checks it); a Blender name with no equivalent raises HostError."""
    typed = settings.input_colorspace.strip()
    # A new movie Image has no colour space until Blender has shown a frame: its file's.
    name = typed or plate.datablock.colorspace_settings.name or _file_info(plate.file)[1]
    mapped = ocio_colourspace(name)
    if mapped is not None:
        return mapped
    if typed and typed.lower() not in {n.lower() for n in blender_colourspaces()}:
        return typed
    where = f"the plate '{plate.datablock.name}' ({plate.file})"
    if typed:
        what = f"Plate Colour Space '{typed}' (of {where}) is a Blender colour space with"
    else:
        what = f"{where} is in Blender's colour space '{name}', which has"
    raise HostError(f"{what} no equivalent in tcvom's OpenColorIO config", COLOURSPACE_FIX)


def _write_grey_png(path: str, grey: np.ndarray) -> None:
    """Save ``grey`` (float ``H x W`` in [0, 1], Blender's bottom-up rows) as an 8-bit PNG."""
    h, w = grey.shape
    image = bpy.data.images.new("tcvom keyframe export", w, h, alpha=False, float_buffer=False)
    try:
        rgba = np.ones((h, w, 4), dtype=np.float32)
        rgba[:, :, :3] = np.clip(grey, 0.0, 1.0)[:, :, None]
        image.pixels.foreach_set(rgba.ravel())
        image.filepath_raw = path
        image.file_format = "PNG"
        image.save()
    finally:
        bpy.data.images.remove(image)


def image_pixels(image: bpy.types.Image) -> np.ndarray:
    """An image's pixels as float32 ``H x W x C`` (bottom-up rows, as stored)."""
    w, h = image.size
    data = np.empty(w * h * image.channels, dtype=np.float32)
    image.pixels.foreach_get(data)
    return data.reshape(h, w, image.channels)


def propagated_trimap(out: str, frame: int) -> str | None:
    """The trimap file the run in ``out`` propagated to plate ``frame``, or None."""
    return dict(sequence_files(os.path.join(out, TRIMAPS))).get(frame)


def keyframe_image(name: str, size: tuple[int, int], start: str | None = None) -> bpy.types.Image:
    """A new image of the plate's ``size`` to paint a keyframe trimap on: a copy of the
    trimap file ``start`` (never the file itself, which tcvom owns), else black.

    Packed into the .blend (tagged :data:`KEYFRAME_TAG`; :func:`export_keyframes` packs it
    again once painted): a generated image keeps no painting over a save and reopen."""
    width, height = size
    grey = None
    if start is not None:
        try:
            loaded = bpy.data.images.load(start, check_existing=False)
        except RuntimeError as exc:
            raise HostError(f"the propagated trimap {start} cannot be read ({exc})", "press Pull Matte again") from exc
        try:
            loaded.colorspace_settings.name = "Non-Color"
            if tuple(loaded.size) != (width, height):
                raise HostError(
                    f"the propagated trimap {start} is {loaded.size[0]}x{loaded.size[1]}, "
                    f"the plate is {width}x{height}",
                    "press Pull Matte again",
                )
            grey = image_pixels(loaded)[:, :, 0].copy()
        finally:
            bpy.data.images.remove(loaded)
    image = bpy.data.images.new(name, width, height, alpha=False)
    image.generated_color = (0.0, 0.0, 0.0, 1.0)
    rgba = np.ones((height, width, 4), dtype=np.float32)
    rgba[:, :, :3] = grey[:, :, None] if grey is not None else 0.0
    image.pixels.foreach_set(rgba.ravel())  # pixels set: pack() skips a generated image that has none
    image.update()
    image[KEYFRAME_TAG] = True
    image.pack()
    return image


_LINEAR = ("linear rec.709", "scene_linear")  # Blender's scene-linear space: float pixels kept as in the file


#: Mid grey (0.5, the trimap's unknown) as Blender stores it in a scene-linear float image
#: when it is picked or painted there: colour pickers and brushes give display (sRGB) values.
_PAINTED_GREY = 0.21404


def _srgb_encoded(px: np.ndarray) -> np.ndarray:
    linear = np.clip(px, 0.0, None)
    return np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)


def _as_data(image: bpy.types.Image, px: np.ndarray) -> np.ndarray:
    """``px`` as the values of the image's file. Blender keeps byte images as their file's
    values, but converts float ones (16-bit PNG/TIFF, EXR) to scene linear on load: its
    sRGB curve is undone here; any other colour space is an error with the fix. In a
    scene-linear float image painted in Blender (Image > New with 32-bit Float) the mid grey
    an artist picks is stored as 0.214: that grey is the unknown, as a file's 0.5 is (0 and
    1, the other classes, are the same either way; Blender QA)."""
    settings = image.colorspace_settings
    if image.is_float and not settings.is_data and settings.name.lower() in _LINEAR:
        return np.where(np.abs(px - _PAINTED_GREY) < 0.004, np.float32(0.5), px)
    if not image.is_float or settings.is_data:
        return px
    if settings.name == "sRGB":
        return _srgb_encoded(px)
    raise HostError(
        f"the image '{image.name}' is a float image in Blender's colour space '{settings.name}', "
        "which Blender converts on load, so its values are not the trimap's 0, 128 and 255",
        "set its Color Space to Non-Color (Image editor sidebar, Image tab)",
    )


def painted_trimap(image: bpy.types.Image) -> np.ndarray:
    """A painted keyframe image as grey ``H x W`` in [0, 1]: Rec. 709 luminance of its RGB,
    read as data (see :func:`_as_data`)."""
    px = image_pixels(image)
    if px.shape[2] >= 3:
        rgb = _as_data(image, px[:, :, :3])
        grey = rgb[:, :, 0] * 0.2126 + rgb[:, :, 1] * 0.7152 + rgb[:, :, 2] * 0.0722
        if px.shape[2] >= 4:
            _check_not_painted_as_opacity(image, grey, px[:, :, 3])
        return grey
    return _as_data(image, px[:, :, :1])[:, :, 0]


#: The share of a picture at half opacity past which its alpha holds a painted unknown band
#: (more than anti-aliased edges cross); tcvom's own rule (tcvom.io.trimap.holds_painted_unknown).
_BAND_AREA = 0.01


def _check_not_painted_as_opacity(image: bpy.types.Image, grey: np.ndarray, alpha: np.ndarray) -> None:
    """HostError for a trimap painted as a layer's opacity: a white brush on a transparent
    layer, its unknown at 50 %, whose colour holds no grey (black or white under the
    transparent pixels); read from its colour the whole unknown band was foreground."""
    if ((grey > 0.1) & (grey < 0.9)).any():  # unknown grey in the colour: read from it, as tcvom reads
        return
    if np.count_nonzero(np.abs(alpha - 0.5) <= 0.03) >= _BAND_AREA * alpha.size and (
            (alpha < 0.1).any() or (alpha > 0.9).any()):
        raise HostError(
            f"the image '{image.name}' holds no unknown grey in its colour, and its alpha holds an unknown band at "
            "half opacity (painted as a layer's opacity?): read from its colour, that band would be foreground",
            "paint the unknown band mid grey (128) in the image's colour, with the image opaque",
        )


def mask_coverage(mask: bpy.types.Mask, scene_frame: int, size: tuple[int, int]) -> np.ndarray:
    """Render ``mask`` at ``scene_frame`` and ``size`` with the compositor's Mask node
    (feather on) in a temporary scene; returns coverage ``H x W`` in [0, 1].

    An animated Mask takes its shape from the artist's scene frame (the temporary scene's
    frame does not move it), so that scene is moved to ``scene_frame`` and back."""
    artist = bpy.context.scene
    shown = artist.frame_current, artist.frame_subframe
    artist.frame_set(scene_frame)
    try:
        return _render_mask(mask, scene_frame, size)
    finally:
        artist.frame_set(shown[0], subframe=shown[1])


def _render_mask(mask: bpy.types.Mask, scene_frame: int, size: tuple[int, int]) -> np.ndarray:
    scene = bpy.data.scenes.new("tcvom mask render")
    # Blender 4.x refuses to render a scene without a camera, even for the compositor alone.
    camera_data = bpy.data.cameras.new("tcvom mask camera")
    camera = bpy.data.objects.new("tcvom mask camera", camera_data)
    scene.collection.objects.link(camera)
    scene.camera = camera
    tree = None
    folder = tempfile.mkdtemp(prefix="tcvom-mask-")
    out_path = os.path.join(folder, "mask.exr")
    try:
        scene.render.resolution_x, scene.render.resolution_y = size
        scene.render.resolution_percentage = 100
        scene.frame_start = scene.frame_end = scene.frame_current = scene_frame
        scene.view_settings.view_transform = "Standard"
        scene.view_settings.look = "None"
        scene.view_settings.exposure = 0.0
        scene.view_settings.gamma = 1.0
        scene.render.image_settings.file_format = "OPEN_EXR"
        scene.render.image_settings.color_mode = "RGB"
        scene.render.filepath = out_path
        tree = nodes.scene_tree(scene)
        mask_node = tree.nodes.new("CompositorNodeMask")
        mask_node.mask = mask
        nodes.mask_node_scene_size(mask_node)
        tree.links.new(mask_node.outputs[0], nodes.output_socket(tree))
        bpy.ops.render.render(write_still=True, scene=scene.name)
        if not os.path.isfile(out_path):
            raise HostError(f"the mask '{mask.name}' could not be rendered", "check the mask in the Mask editor")
        rendered = bpy.data.images.load(out_path, check_existing=False)
        try:
            coverage = image_pixels(rendered)[:, :, 0].copy()
        finally:
            bpy.data.images.remove(rendered)
    finally:
        if nodes.IS_50 and tree is not None:
            bpy.data.node_groups.remove(tree)
        bpy.data.scenes.remove(scene)
        bpy.data.objects.remove(camera)
        bpy.data.cameras.remove(camera_data)
        for name in os.listdir(folder):
            os.remove(os.path.join(folder, name))
        os.rmdir(folder)
    return coverage


def mask_trimap(mask: bpy.types.Mask, scene_frame: int, size: tuple[int, int]) -> np.ndarray:
    """A Mask as a trimap: 1 inside, 0 outside, 0.5 (unknown) where the feather is."""
    coverage = mask_coverage(mask, scene_frame, size)
    trimap = np.full(coverage.shape, 0.5, dtype=np.float32)
    trimap[coverage >= 0.999] = 1.0
    trimap[coverage <= 0.001] = 0.0
    return trimap


def keyframe_name(item: bpy.types.PropertyGroup) -> str:
    """A keyframe as the artist knows it: its scene frame and its image or Mask."""
    source = item.image if item.source == "IMAGE" else item.mask
    kind = "image" if item.source == "IMAGE" else "Mask"
    return f"the keyframe at scene frame {item.frame}" + (f" ({kind} '{source.name}')" if source is not None else "")


def export_keyframes(settings: bpy.types.PropertyGroup, plate: PlateInfo, folder: str) -> dict[int, str]:
    """Write every keyframe trimap to ``folder/key.<plate frame>.png``; ``{frame: path}``.

    Raises HostError for a keyframe with no image/mask, outside the plate or on a frame
    missing from its files, of the wrong size, or whose plate frame is another than the one
    it was placed or last pulled for (the plate was moved in time since). Once all are
    written, each keyframe records its plate frame, and the keyframe images the add-on made
    that were painted since are packed again, so the .blend keeps what was pulled.
    """
    if len(settings.keyframes) == 0:
        raise HostError("there are no keyframe trimaps", "add a keyframe (painted image or Mask) in the tcvom panel")
    width, height = plate.size
    written: dict[int, str] = {}
    on_plate = set(plate.frames)
    image_plate = plate.image_frames is not None
    for item in settings.keyframes:
        frame = item.frame + plate.shift
        where = f"the keyframe at scene frame {item.frame}"
        if item.plate_frame_known and item.plate_frame != frame and item.plate_frame not in on_plate:
            raise HostError(  # not a slip: the plate was replaced by one numbered otherwise (a movie from 1)
                f"{keyframe_name(item)} was {'painted' if item.source == 'IMAGE' else 'drawn'} for plate frame "
                f"{item.plate_frame}, which the plate ({plate.path}: frames {frame_ranges(plate.frames)}) does not "
                f"hold: the plate was replaced or renumbered since (scene frame {item.frame} shows plate frame "
                f"{frame})",
                f"if scene frame {item.frame} shows the picture it was painted for, type its Frame again in the "
                "tcvom panel (it is then placed there); else move it onto that picture",
            )
        if item.plate_frame_known and item.plate_frame != frame:
            setting = ("the Start Frame in the tcvom panel" if image_plate
                       else "the Movie Clip's Start Frame and Frame Offset (Clip editor, Footage Settings)")
            now = item.plate_frame - plate.shift
            raise HostError(
                f"{keyframe_name(item)} was {'painted' if item.source == 'IMAGE' else 'drawn'} for plate frame "
                f"{item.plate_frame}, which scene frame {now} "
                f"shows now: the plate was moved in time since (scene frame {item.frame} shows plate frame {frame})",
                f"move the keyframe to scene frame {now} (its Frame in the tcvom panel), or set {setting} back",
            )
        missing = missing_file(plate, frame)
        if missing is not None:
            raise HostError(
                f"{where} is plate frame {frame}, which is missing from the plate's files ({plate.path}: frames "
                f"{frame_ranges(plate.frames)})",
                f"move the keyframe onto a frame whose file is there, or render or copy the missing file {missing}",
            )
        if frame not in on_plate:
            start = ("the Start Frame in the tcvom panel" if image_plate
                     else "the Movie Clip's Start Frame (Clip editor, Footage Settings)")
            raise HostError(
                f"{where} is plate frame {frame}, outside the plate ({frame_span(plate.frames[0], plate.frames[-1])})",
                f"move the keyframe onto a frame of the plate, or if the plate plays on other scene frames than "
                f"you see it on, set {start} to the scene frame that should show the file the plate was opened "
                "from",
            )
        if frame in written:
            raise HostError(f"two keyframes are on scene frame {item.frame}", "remove one of them")
        if item.source == "IMAGE":
            image = item.image
            if image is None:
                raise HostError(f"{where} has no trimap image", "paint a trimap image and pick it for the keyframe")
            if image.source == "TILED":  # its pixels are the first tile's: another keyframe's, as key.1001.png
                raise HostError(
                    f"{where}: the image '{image.name}' was opened as UDIM tiles (Blender takes files numbered "
                    "1001... for UDIM tiles), so its pixels are another file's",
                    "open the keyframe file again with Detect UDIMs off (Image > Open, sidebar), or set its Source "
                    "to Single Image",
                )
            if image.source in ("SEQUENCE", "MOVIE"):
                raise HostError(f"{where}: the image '{image.name}' is an image sequence or movie, not one trimap",
                                "set its Source to Single Image (Image editor sidebar, Image tab), or open the "
                                "keyframe's one file")
            _reload_if_unpainted(image)
            if image.size[0] == 0:
                file = bpy.path.abspath(image.filepath) if image.filepath and image.packed_file is None else ""
                if file and not os.path.isfile(file):
                    raise HostError(f"{where}: the image '{image.name}' has no pixels: its file {file} is not found",
                                    "put the file back, or open it from where it is now (Image > Replace)")
                raise HostError(f"{where}: the image '{image.name}' has no pixels", "reload or repaint it")
            if (image.size[0], image.size[1]) != (width, height):
                raise HostError(
                    f"{where}: the trimap '{image.name}' is {image.size[0]}x{image.size[1]}, "
                    f"the plate is {width}x{height}",
                    "paint the trimap on an image of the plate's size",
                )
            if image.source == "GENERATED" and not image.is_dirty:
                raise HostError(
                    f"{where}: the image '{image.name}' holds no painting, only Blender's generated fill: a generated "
                    "image that was not packed or saved comes back so when the .blend is opened again",
                    "paint the trimap again (the pull packs it into the .blend), or pick a saved trimap image",
                )
            try:
                grey = painted_trimap(image)
            except HostError as exc:
                raise HostError(f"{where}: {exc.message}", exc.fix) from exc
        else:
            if item.mask is None:
                raise HostError(f"{where} has no Mask", "pick the Mask for the keyframe")
            grey = mask_trimap(item.mask, item.frame, (width, height))
        path = os.path.join(folder, f"key.{frame:04d}.png")
        _write_grey_png(path, grey)
        written[frame] = path
    for item in settings.keyframes:
        item.plate_frame, item.plate_frame_known = item.frame + plate.shift, True
    repack_keyframe_images(settings)  # so the .blend keeps what was pulled
    return written


def _reload_if_unpainted(image: bpy.types.Image) -> None:
    """Read a keyframe image opened from a file, and not painted in Blender since, from its
    file again: a file repainted in another program (Krita, Photoshop) was pulled as Blender
    first read it, the matte "current" and the repaint ignored. A painting in Blender
    (``is_dirty``) or a packed copy is the artist's and stays."""
    if image.source != "FILE" or image.packed_file is not None or image.is_dirty or not image.filepath:
        return
    if os.path.isfile(bpy.path.abspath(image.filepath, library=image.library)):  # gone: its pixels as before
        image.reload()


def unsaved_keyframe_images(settings: bpy.types.PropertyGroup) -> str:
    """A note naming the keyframe images opened from a file and painted in Blender since it
    was saved, or since the artist packed them ("" if none): the pull reads their painting,
    which neither the file nor the .blend keeps (Blender QA: reopened, the keyframe was the
    file's again while the compositor showed the painting's matte, and the next pull undid
    it without a word). Images the add-on packs again itself (:func:`repack_keyframe_images`)
    are not named."""
    unsaved, unpacked = [], []
    for item in settings.keyframes:
        image = item.image if item.source == "IMAGE" else None
        if image is None or image.source != "FILE" or not image.is_dirty:
            continue
        if image.packed_file is None:
            unsaved.append(item)
        elif not image.get(KEYFRAME_TAG):  # packed by the artist: its packed copy is the one before the painting
            unpacked.append(item)
    notes = []
    if unsaved:
        named = ", ".join(f"'{item.image.name}' (scene frame {item.frame})" for item in unsaved)
        notes.append(f"keyframe image(s) {named} painted in Blender and not saved: save them (Image > Save, Alt+S) or "
                     "pack them (Image > Pack), or the painting this matte was pulled from is lost when the .blend is "
                     "opened again")
    if unpacked:
        named = ", ".join(f"'{item.image.name}' (scene frame {item.frame})" for item in unpacked)
        notes.append(f"keyframe image(s) {named} painted in Blender since they were packed: pack them again (Image > "
                     "Pack), or the painting this matte was pulled from is lost when the .blend is opened again")
    return "; ".join(notes)


def repack_keyframe_images(settings: bpy.types.PropertyGroup) -> None:
    """Pack again the keyframe images painted in Blender since they were made or last packed
    (generated ones, and the ones the add-on made or packed: tagged :data:`KEYFRAME_TAG`):
    a generated or packed image keeps its painting over a save and reopen only so. At each
    pull, and before each save (``props.keep_keyframe_paintings``). An image opened from a
    file stays the file's (the pull says when it is painted and not saved:
    :func:`unsaved_keyframe_images`)."""
    for item in settings.keyframes:
        image = item.image if item.source == "IMAGE" else None
        if image is not None and image.is_dirty and (
                image.source == "GENERATED" or (image.packed_file is not None and image.get(KEYFRAME_TAG))):
            image[KEYFRAME_TAG] = True  # packed, it is a file image: the tag says it is the add-on's to pack again
            image.pack()
