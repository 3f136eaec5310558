"""The tcvom panel, in the compositor's and the Movie Clip editor's sidebar."""

from __future__ import annotations

import textwrap

import bpy

from . import review


class TCVOM_UL_keyframes(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index):
        row = layout.row(align=True)
        row.prop(item, "frame", text="", emboss=False)
        row.prop(item, "source", text="")
        row.prop(item, "image" if item.source == "IMAGE" else "mask", text="")


def lines(text: str, width: int, scale: float = 1.0) -> list[str]:
    """``text`` in lines that fit a sidebar ``width`` pixels wide at interface ``scale``
    (about 6.5 pixels per character of the interface font)."""
    chars = max(20, int(width / (6.5 * scale)) - 2)
    return textwrap.wrap(text, chars, break_long_words=True, break_on_hyphens=False) or [""]


def wrapped(layout: bpy.types.UILayout, context: bpy.types.Context, text: str) -> None:
    """``text`` as labels of the sidebar's width: one label was cut after about 35
    characters, so the counts, a warning's words and the fix were never seen."""
    region = getattr(context, "region", None)
    scale = context.preferences.system.ui_scale if context.preferences else 1.0
    column = layout.column(align=True)
    for line in lines(text, region.width if region is not None and region.width > 1 else 220, scale):
        column.label(text=line)


def draw_settings(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    settings = context.scene.tcvom
    col = layout.column()
    col.prop(settings, "source_type")
    if settings.source_type == "CLIP":
        col.template_ID(settings, "clip", open="clip.open")
    else:
        col.template_ID(settings, "image", open="image.open")
        col.prop(settings, "image_start")
    layout.label(text="Keyframe trimaps")
    row = layout.row()
    row.template_list("TCVOM_UL_keyframes", "", settings, "keyframes", settings, "keyframe_index", rows=3)
    side = row.column(align=True)
    side.operator("tcvom.keyframe_add", icon="ADD", text="")
    side.operator("tcvom.keyframe_remove", icon="REMOVE", text="")
    col = layout.column()
    col.prop(settings, "method")
    if settings.method != "classical":
        col.prop(settings, "weights")
        col.prop(settings, "matting_weights")
        col.prop(settings, "base")
        col.prop(settings, "device")
        col.prop(settings, "precision")
    col.prop(settings, "input_colorspace")
    col.prop(settings, "node_name")
    layout.operator("tcvom.pull_matte", icon="NODE_COMPOSITING")
    if settings.status:
        wrapped(layout, context, settings.status)
    if settings.output:
        # the loop: look at the doubtful frames, key the one tcvom suggests, pull again
        row = layout.row(align=True)
        row.operator("tcvom.doubtful_jump", icon="TRIA_LEFT", text="Doubtful").direction = "PREVIOUS"
        row.operator("tcvom.doubtful_jump", icon="TRIA_RIGHT", text="Doubtful").direction = "NEXT"
        layout.operator("tcvom.key_suggested", icon="KEYFRAME_HLT")
        if review.cache_gone(settings):  # the .blend without its tcvom_cache folder
            wrapped(layout, context, review.cache_gone_text(settings))
        elif review.other_run(settings):  # undo took the settings back, not the files
            wrapped(layout, context, review.OTHER_RUN)
        elif review.moved(settings):  # the line's scene frames (and the markers') are the plate's before it moved
            wrapped(layout, context, "the plate was moved in time since the last pull: the review and the doubt "
                                     "markers name the scene frames of before. Pull Matte again")
        elif settings.review:
            wrapped(layout, context, settings.review)


class TCVOM_PT_compositor(bpy.types.Panel):
    bl_label = "tcvom Matte"
    bl_space_type = "NODE_EDITOR"
    bl_region_type = "UI"
    bl_category = "tcvom"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return getattr(context.space_data, "tree_type", "") == "CompositorNodeTree"

    def draw(self, context: bpy.types.Context) -> None:
        draw_settings(self.layout, context)


class TCVOM_PT_clip(bpy.types.Panel):
    bl_label = "tcvom Matte"
    bl_space_type = "CLIP_EDITOR"
    bl_region_type = "UI"
    bl_category = "tcvom"

    def draw(self, context: bpy.types.Context) -> None:
        draw_settings(self.layout, context)


classes = (TCVOM_UL_keyframes, TCVOM_PT_compositor, TCVOM_PT_clip)
