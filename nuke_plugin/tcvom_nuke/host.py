"""Where the plugin finds ``tcvom.hosts.client`` (Nuke's Python has no tcvom installed).

In this order:

1. ``tcvom_nuke/hostclient.py`` beside this file: the copy ``tcvom nuke install DIR``
   writes for a studio install (the repository never holds a second copy);
2. ``core/tcvom/hosts/client.py`` of the repository, when the plugin is used from a checkout
   (``NUKE_PATH=<repo>/nuke_plugin``);
3. ``tcvom.hosts.client`` from an installed tcvom, if Nuke's Python can import it.

The file is loaded as the module ``tcvom_nuke.hostclient``; ``core/tcvom/`` itself is never put
on ``sys.path`` (its folders ``io``, ``data``... would shadow other modules).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from types import ModuleType

MODULE_NAME = "tcvom_nuke.hostclient"
_HERE = os.path.dirname(os.path.abspath(__file__)).replace("\\", "/")


def candidates() -> list[str]:
    """The hostclient files tried, in order (vendored copy, then the checkout's)."""
    return [_HERE + "/hostclient.py", os.path.normpath(_HERE + "/../../core/tcvom/hosts/client.py").replace("\\", "/")]


def load_hostclient() -> ModuleType:
    """The hostclient module; ImportError naming what was tried and the fix."""
    if MODULE_NAME in sys.modules:
        return sys.modules[MODULE_NAME]
    for path in candidates():
        if os.path.isfile(path):
            spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
            if spec is None or spec.loader is None:
                continue
            module = importlib.util.module_from_spec(spec)
            sys.modules[MODULE_NAME] = module  # dataclasses look their module up while it loads
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[MODULE_NAME]
                raise
            return module
    try:
        return importlib.import_module("tcvom.hosts.client")
    except ImportError:
        pass
    raise ImportError(
        "tcvom_nuke cannot find tcvom's hostclient (tried " + ", ".join(candidates()) + " and tcvom.hosts.client); "
        "install the plugin with `tcvom nuke install DIR` and put DIR on NUKE_PATH"
    )
