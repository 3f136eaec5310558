"""The settings the artist edits: ``scene.tcvom`` (plate, keyframes, method)."""

# No `from __future__ import annotations`: Blender registers properties from evaluated annotations.
import os

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)

from . import inputs


def path_options(version: tuple[int, ...]) -> set[str]:
    """Options of a file-path property: blend-relative paths are declared from Blender 4.5 on.

    Older Blender (the manifest allows 4.2) refuses the option at registration; there the
    add-on still resolves ``//`` paths itself (``bpy.path.abspath``).
    """
    return {"PATH_SUPPORTS_BLEND_RELATIVE"} if tuple(version) >= (4, 5, 0) else set()


_PATH_OPTIONS = path_options(bpy.app.version)


def _keyframe_moved(item: bpy.types.PropertyGroup, _context: bpy.types.Context) -> None:
    """The artist moved the keyframe on purpose: it is for the plate frame it is on now
    (without a plate yet, none: the next pull records it)."""
    _place(item, inputs.frame_shift(item.id_data.tcvom))


def _place(item: bpy.types.PropertyGroup, shift: int | None) -> None:
    """Record the plate frame a keyframe is for: the one its scene frame shows with ``shift``."""
    if shift is None:
        item.plate_frame_known = False
    else:
        item.plate_frame, item.plate_frame_known = item.frame + shift, True


class TCVOM_PG_keyframe(bpy.types.PropertyGroup):
    """One keyframe trimap: a painted image or a Mask, on a scene frame."""

    frame: IntProperty(name="Frame", description="Scene frame of this keyframe", default=1, update=_keyframe_moved)
    # The plate frame the keyframe was placed or last pulled for: a plate moved in time since
    # would give its trimap to another picture, so the pull refuses it (inputs.export_keyframes).
    # Not known in a .blend saved before it was recorded, nor after the artist moved the keyframe.
    plate_frame: IntProperty(name="Plate Frame", description="The plate frame this keyframe was painted for",
                             options={"HIDDEN"})
    plate_frame_known: BoolProperty(options={"HIDDEN"})
    source: EnumProperty(
        name="Trimap",
        items=(
            ("IMAGE", "Image", "An image painted black (background), grey (unknown), white (foreground)"),
            ("MASK", "Mask", "A Mask: inside is foreground, its feather is the unknown band"),
        ),
        default="IMAGE",
    )
    image: PointerProperty(name="Image", type=bpy.types.Image)
    mask: PointerProperty(name="Mask", type=bpy.types.Mask)


class TCVOM_PG_settings(bpy.types.PropertyGroup):
    """What one tcvom matte is made from."""

    source_type: EnumProperty(
        name="Plate",
        items=(
            ("CLIP", "Movie Clip", "The plate is a Movie Clip (movie or image sequence)"),
            ("IMAGE", "Image", "The plate is an Image datablock holding a sequence or movie"),
        ),
        default="CLIP",
    )
    clip: PointerProperty(name="Clip", type=bpy.types.MovieClip)
    image: PointerProperty(name="Image", type=bpy.types.Image)
    image_start: IntProperty(
        name="Start Frame", description="Scene frame that shows the file the plate Image was opened from", default=1
    )
    keyframes: CollectionProperty(type=TCVOM_PG_keyframe)
    keyframe_index: IntProperty(default=0)
    method: EnumProperty(
        name="Method",
        items=(
            ("auto", "Auto", "The networks when their weights are found, else classical"),
            ("classical", "Classical", "Optical flow + closed-form matting, needs no weights"),
            ("tcvom", "TCVOM", "The paper's networks (needs weight files)"),
        ),
        default="auto",
    )
    # Blend-relative paths (//weights/stm.pth) are resolved by the add-on (bpy.path.abspath).
    weights: StringProperty(name="Trimap Weights", subtype="FILE_PATH", options=_PATH_OPTIONS,
                            description="STM trimap network weights (.pth)")
    matting_weights: StringProperty(
        name="Matting Weights", subtype="FILE_PATH", options=_PATH_OPTIONS,
        description="Matting weights (.pth) of any base",
    )
    base: EnumProperty(
        name="Base",
        description="Matting network base whose registered weights are used (a Matting Weights file names its own)",
        items=(
            ("gca", "GCA", "GCA+TAM"),
            ("fba", "FBA", "FBA+TAM (also predicts the foreground colour)"),
            ("dim", "DIM", "DIM+TAM"),
            ("index", "Index", "Index+TAM"),
        ),
        default="gca",
    )
    device: StringProperty(name="Device", default="cpu", description="torch device: cpu, cuda, cuda:1")
    precision: EnumProperty(
        name="Precision",
        items=(
            ("auto", "Auto", "fp32, or fp16 with the TensorRT back-end"),
            ("fp32", "fp32", "Full precision (any device)"),
            ("fp16", "fp16", "Half precision (CUDA)"),
            ("bf16", "bf16", "bfloat16 (CUDA, or a CPU with AVX512-BF16)"),
        ),
        default="auto",
    )
    input_colorspace: StringProperty(
        name="Plate Colour Space",
        description="The plate's colour space, for tcvom: an OpenColorIO name (tcvom info --colorspaces) or "
        "a Blender name with an equivalent; empty: the plate's Color Space in Blender",
    )
    node_name: StringProperty(name="Node", default="tcvom Matte", description="Name of the compositor node")
    cache_key: StringProperty(
        name="Cache Key", description="Earlier versions' per-input-hash cache folder of this node (removed on the next pull)"
    )
    output: StringProperty(name="Output", description="The folder tcvom wrote the last matte to (relative to the .blend)")
    review: StringProperty(name="Review", description="What the last run's review says: doubtful and suggested frames")
    # The plate shift (plate frame - scene frame) the review line and doubt markers were
    # written with: when the plate has moved in time since, they name other scene frames.
    review_shift: IntProperty(options={"HIDDEN"})
    review_shift_known: BoolProperty(options={"HIDDEN"})
    # The review's identity (hostclient.review_token) of the pull whose matte this scene
    # shows: undo restores this, not the files a later pull wrote (review.other_run).
    review_token: StringProperty(options={"HIDDEN"})
    status: StringProperty(name="Status")


classes = (TCVOM_PG_keyframe, TCVOM_PG_settings)


#: The settings holding paths the add-on resolves itself (``//`` = the .blend's folder).
PATHS = ("output", "weights", "matting_weights")


#: The values :func:`remap_relative_paths` replaced: (scene name, setting, value before).
_REMAPPED: list[tuple[str, str, str]] = []


@bpy.app.handlers.persistent
def remap_relative_paths(filepath: str, *_: object) -> None:
    """Before a save into another folder (``save_pre``: ``bpy.data.filepath`` is still the
    old file), keep the add-on's ``//`` paths pointing where they point, as Blender's
    Remap Relative does for its own (the alpha Image's): the last run's folder and its
    review, and blend-relative weight files. :func:`restore_after_copy` puts them back
    when the save was a copy (the session stays on its file)."""
    _REMAPPED.clear()
    old = bpy.data.filepath
    if not old or not filepath:
        return
    old_dir, new_dir = os.path.dirname(os.path.abspath(old)), os.path.dirname(os.path.abspath(filepath))
    if old_dir == new_dir:
        return
    for scene in bpy.data.scenes:
        settings = scene.tcvom
        for name in PATHS:
            value = getattr(settings, name)
            if value.startswith("//"):
                target = bpy.path.abspath(value, start=old_dir)
                try:
                    setattr(settings, name, bpy.path.relpath(target, start=new_dir))
                except ValueError:  # another drive: no relative path there
                    setattr(settings, name, target)
                _REMAPPED.append((scene.name, name, value))


@bpy.app.handlers.persistent
def restore_after_copy(filepath: str, *_: object) -> None:
    """After a Save Copy (``save_post``: the session is not on ``filepath``), or a save that
    failed (``save_post_fail``), the session's paths are relative to its own file again."""
    if _REMAPPED and os.path.abspath(bpy.data.filepath) != os.path.abspath(filepath):
        for scene_name, name, value in _REMAPPED:
            scene = bpy.data.scenes.get(scene_name)
            if scene is not None:
                setattr(scene.tcvom, name, value)
    _REMAPPED.clear()


@bpy.app.handlers.persistent
def keep_keyframe_paintings(*_: object) -> None:
    """Before a save (``save_pre``): keyframe images painted since the last pull are packed
    again (:func:`inputs.repack_keyframe_images`), so saving keeps them."""
    for scene in bpy.data.scenes:
        inputs.repack_keyframe_images(scene.tcvom)


@bpy.app.handlers.persistent
def place_unplaced_keyframes(*_: object) -> None:
    """After a .blend is opened (``load_post``): a keyframe of a file saved before keyframes
    remembered their plate frame is for the plate frame its scene frame shows as the file
    was saved, and so is the review line (else a plate moved later would go unseen)."""
    for scene in bpy.data.scenes:
        settings = scene.tcvom
        shift = inputs.frame_shift(settings)
        if shift is None:
            continue
        for item in settings.keyframes:
            if not item.plate_frame_known:
                _place(item, shift)
        if settings.review and not settings.review_shift_known:
            settings.review_shift, settings.review_shift_known = shift, True


def register_properties() -> None:
    bpy.types.Scene.tcvom = PointerProperty(type=TCVOM_PG_settings)
    bpy.app.handlers.save_pre.append(keep_keyframe_paintings)
    bpy.app.handlers.load_post.append(place_unplaced_keyframes)
    bpy.app.handlers.save_pre.append(remap_relative_paths)
    bpy.app.handlers.save_post.append(restore_after_copy)
    if hasattr(bpy.app.handlers, "save_post_fail"):  # Blender 4.2+ (a save into a folder it cannot write)
        bpy.app.handlers.save_post_fail.append(restore_after_copy)


def unregister_properties() -> None:
    for handlers, handler in ((bpy.app.handlers.save_pre, keep_keyframe_paintings),
                              (bpy.app.handlers.load_post, place_unplaced_keyframes),
                              (bpy.app.handlers.save_pre, remap_relative_paths),
                              (bpy.app.handlers.save_post, restore_after_copy),
                              (getattr(bpy.app.handlers, "save_post_fail", []), restore_after_copy)):
        if handler in handlers:
            handlers.remove(handler)
    del bpy.types.Scene.tcvom
