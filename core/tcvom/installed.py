"""Folders a tcvom installation carries beside the package: a checkout's top-level
``nuke_plugin/`` and ``configs/``, or the copies a wheel installs into ``share/tcvom`` of
its environment (pyproject's data-files)."""

from __future__ import annotations

import sys
from pathlib import Path


def shared_folder(name: str, marker: str) -> Path | None:
    """This tcvom's folder ``name`` (``"nuke_plugin"``, ``"configs"``), known by the file
    ``marker`` (a path relative to the folder) in it: a checkout's, or a wheel install's
    copy; None where the installation has none."""
    here = Path(__file__).resolve()
    parts = Path(marker).parts
    # a checkout: core/tcvom/ beside pyproject.toml (not `pip install --target DIR/lib`, whose
    # DIR may hold an install of the plugin made from the wheel's copy)
    checkout = here.parents[1].name == "core" and (here.parents[2] / "pyproject.toml").is_file()
    candidates = [*([here.parents[2] / name] if checkout else []), Path(sys.prefix) / "share" / "tcvom" / name,
                  here.parents[1] / "share" / "tcvom" / name]  # `pip install --target DIR`: DIR/share
    try:  # where the installer put the data files (a --user or system install: another scheme's share/)
        from importlib import metadata

        candidates += [Path(str(file.locate())).resolve().parents[len(parts) - 1]
                       for file in metadata.files("tcvom") or () if file.parts[-len(parts) - 1:] == (name, *parts)]
    except metadata.PackageNotFoundError:
        pass
    return next((candidate for candidate in candidates if (candidate / marker).is_file()), None)
