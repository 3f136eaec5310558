"""tcvom: temporally coherent video object matting (TCVOM, ACM MM 2021) for compositors.

The Python API mirrors the command line (flags map 1:1 to keyword arguments)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__version__ = "0.1.0"


def _writable(folder: Path) -> bool:
    """Whether files can be made in ``folder`` or, where it is not there yet, in the nearest
    folder above it that is."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return candidate.is_dir() and os.access(candidate, os.W_OK | os.X_OK)
    return False


def _numba_cache() -> None:
    """Give numba a cache folder where it would have none: it keeps compiled functions beside
    their sources (``__pycache__``) or in the user's cache folder, and where neither can be
    written (a read-only install run by a farm service user without a home) the import of
    tcvom's and pymatting's compiled functions failed, so every command did (even
    ``--version``). ``NUMBA_CACHE_DIR`` set by the user is left as it is."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    sources = Path(__file__).parent / "classical"
    user = Path(os.environ.get("XDG_CACHE_HOME") or Path(os.path.expanduser("~")) / ".cache") / "numba"
    if _writable(sources / "__pycache__") or _writable(user):
        return
    user_id = os.getuid() if hasattr(os, "getuid") else 0
    os.environ["NUMBA_CACHE_DIR"] = str(Path(tempfile.gettempdir()) / f"tcvom-numba-{user_id}")


_numba_cache()
