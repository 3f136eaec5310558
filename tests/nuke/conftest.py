"""Nuke plugin tests: the plugin folder and the stand-in ``nuke`` module on sys.path.

Nuke cannot be installed here. Everything that is not a call into ``nuke`` lives in
``tcvom_nuke.matte`` and is tested for real; ``tcvom_nuke.nukenode`` runs against
``stand_in/nuke.py``, which implements only the documented behaviour the plugin uses.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PLUGIN = REPO / "nuke_plugin"

for path in (str(PLUGIN), str(HERE / "stand_in"), str(HERE)):
    if path not in sys.path:
        sys.path.insert(0, path)


@pytest.fixture
def tcvom_exe() -> str:
    """The tcvom executable of the environment running the tests."""
    exe = os.environ.get("TCVOM_EXECUTABLE") or shutil.which("tcvom") or str(Path(sys.executable).with_name("tcvom"))
    if not os.path.isfile(exe):
        pytest.skip("no tcvom executable (set TCVOM_EXECUTABLE)")
    return exe
