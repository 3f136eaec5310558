"""Add-on preferences: where the tcvom command line is."""

# No `from __future__ import annotations`: Blender registers properties from evaluated annotations.
import os

import bpy
from bpy.props import StringProperty

from .hostclient import HostError, find_executable


class TCVOM_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    tcvom_path: StringProperty(
        name="tcvom",
        subtype="FILE_PATH",
        description="The tcvom executable, the python of its environment, or the environment's folder. "
        "Empty: $TCVOM_EXECUTABLE, then tcvom on PATH",
    )

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.prop(self, "tcvom_path")
        try:
            command = find_executable(self.tcvom_path or None)
            if os.path.basename(command[0]).lower().startswith(("tcvom", "python")):
                layout.label(text="Found: " + " ".join(command), icon="CHECKMARK")
            else:  # a wrapper may be: a pull says whether it answers as tcvom does
                layout.label(text="Will run: " + " ".join(command) + " (not named tcvom or python)", icon="QUESTION")
        except HostError as exc:
            layout.label(text=exc.message, icon="ERROR")
            layout.label(text=exc.fix)


def preferences(context: bpy.types.Context) -> TCVOM_AP_preferences | None:
    addon = context.preferences.addons.get(__package__)
    return addon.preferences if addon is not None else None


classes = (TCVOM_AP_preferences,)
