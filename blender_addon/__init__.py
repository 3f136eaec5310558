"""tcvom Matte: a compositor node with a temporally coherent alpha matte.

The matte is computed out of process by the tcvom command line of another Python
environment (set in the preferences, or found on PATH); Blender only reads the cached
EXR sequence through a node group. See docs/blender.md in the tcvom repository.
"""

from __future__ import annotations

import bpy

from . import operators, prefs, props, review, ui

_classes = (*props.classes, *prefs.classes, *operators.classes, *review.classes, *ui.classes)


def register() -> None:
    for cls in _classes:
        bpy.utils.register_class(cls)
    props.register_properties()


def unregister() -> None:
    props.unregister_properties()
    for cls in reversed(_classes):
        bpy.utils.unregister_class(cls)
