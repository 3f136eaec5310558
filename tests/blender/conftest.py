"""Blender tests run in their own environment (``make blender-venv``: bpy from PyPI).

Blender reads its user folder (where extensions are installed) from
``BLENDER_USER_RESOURCES`` when ``bpy`` is first imported, so it is pointed at a fresh
temporary folder here, before any test module imports ``bpy``: the tests never touch the
user's own Blender configuration.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="tcvom-blender-user-"))
