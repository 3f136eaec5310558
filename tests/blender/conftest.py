"""Blender tests run in their own environment (``make blender-venv``: bpy from PyPI).

Blender reads its user folder (where extensions are installed) from
``BLENDER_USER_RESOURCES`` when ``bpy`` is first imported, so it is pointed at a fresh
temporary folder here, before any test module imports ``bpy``: the tests never touch the
user's own Blender configuration.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

if "BLENDER_USER_RESOURCES" not in os.environ:
    _USER = tempfile.mkdtemp(prefix="tcvom-blender-user-")
    os.environ["BLENDER_USER_RESOURCES"] = _USER
    atexit.register(shutil.rmtree, _USER, ignore_errors=True)  # each run left its folder in the temp folder
