"""tcvom Matte: a compositor node with a temporally coherent alpha matte.

The matte is computed out of process by the tcvom command line of another Python
environment (set in the preferences, or found on PATH); Blender only reads the cached
EXR sequence through a node group. See docs/blender.md in the tcvom repository.
"""

from __future__ import annotations

from pathlib import Path

import bpy

if not Path(__file__).with_name("hostclient.py").is_file():
    # Blender's own `extension build` zips the folder as it is, without the host client
    # that build_addon.py vendors: the zip installed, and enabling it failed on a bare
    # "No module named ...hostclient".
    raise ImportError("this tcvom add-on lacks hostclient.py (tcvom's host client): build its zip with "
                      "`python build_addon.py` in the tcvom repository, not with Blender's `extension build`",
                      name=__name__)  # Blender 5.0's enable adds ex.name to a string: None was its TypeError

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
