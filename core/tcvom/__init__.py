"""tcvom: temporally coherent video object matting (TCVOM, ACM MM 2021) for compositors.

The Python API mirrors the command line (flags map 1:1 to keyword arguments)."""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from pathlib import Path

__version__ = "0.1.0"


def _writable(folder: Path) -> bool:
    """Whether files can be made in ``folder`` or, where it is not there yet, in the nearest
    folder above it that is."""
    for candidate in (folder, *folder.parents):
        try:
            if candidate.exists():
                return candidate.is_dir() and os.access(candidate, os.W_OK | os.X_OK)
        except OSError:  # a home this user cannot enter (a service user with root's HOME): not writable
            return False
    return False


def _compiled_sources() -> list[Path]:
    """The folders of the sources whose numba functions are cached (``cache=True``): tcvom's
    and pymatting's (found without importing it: its import compiles)."""
    import importlib.util

    folders = [Path(__file__).parent / "classical"]
    spec = importlib.util.find_spec("pymatting")
    for root in (spec.submodule_search_locations or []) if spec is not None else []:
        folders += [Path(root), *(p for p in Path(root).iterdir() if (p / "__init__.py").is_file())]
    return folders


def _user_cache() -> Path:
    """numba's user-wide cache folder (its appdirs rule on Linux and macOS)."""
    if sys.platform == "darwin":
        return Path(os.path.expanduser("~/Library/Caches")) / "numba"
    return Path(os.getenv("XDG_CACHE_HOME", os.path.expanduser("~/.cache"))) / "numba"


def _private_folder(base: Path) -> Path:
    """``base``, made for this user only; a new private folder where ``base`` is not that (a
    link, another user's, or writable by others: numba unpickles what its cache holds)."""
    try:
        base.mkdir(mode=0o700, exist_ok=True)
        state = os.lstat(base)
        if (stat.S_ISDIR(state.st_mode) and state.st_uid == os.getuid()
                and not state.st_mode & (stat.S_IWGRP | stat.S_IWOTH)):
            return base
    except OSError:
        pass
    return Path(tempfile.mkdtemp(prefix="tcvom-numba-"))


def _numba_cache() -> None:
    """Give numba a cache folder where it would have none: it keeps compiled functions beside
    their sources (``__pycache__``) or in the user's cache folder, and where neither can be
    written (a read-only install run by a farm service user without a home) the import of
    tcvom's and pymatting's compiled functions failed, so every command did (even
    ``--version``). ``NUMBA_CACHE_DIR`` set by the user is left as it is. POSIX only (on
    Windows ``os.access`` does not read permission lists)."""
    if os.environ.get("NUMBA_CACHE_DIR") or not hasattr(os, "getuid"):
        return
    if _writable(_user_cache()) or all(_writable(folder / "__pycache__") for folder in _compiled_sources()):
        return
    base = Path(tempfile.gettempdir()) / f"tcvom-numba-{os.getuid()}"
    os.environ["NUMBA_CACHE_DIR"] = str(_private_folder(base))


_numba_cache()
