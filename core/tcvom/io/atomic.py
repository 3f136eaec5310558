"""Atomic output: write to a temporary file in the target folder, then rename into place.

An interrupted run never leaves a partial file under a final name, and a finished frame
is never replaced by a broken one: ``os.replace`` is atomic on one file system.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tcvom.errors import OutputError

TEMP_MARK = ".tcvom-tmp-"


def temporary_name(final: Path) -> Path:
    """A hidden name beside ``final`` that keeps its extension (writers pick the format by it)."""
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    return final.with_name(f".{final.stem}{TEMP_MARK}{token}{final.suffix}")


@contextmanager
def atomic_output(final: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; rename it to ``final`` when the block succeeds.

    On any failure (including KeyboardInterrupt) the temporary file is removed and the
    final name is left as it was.
    """
    final = Path(final)
    tmp = temporary_name(final)
    try:
        yield tmp
        if not tmp.exists():
            raise OutputError("the writer produced no file", path=final)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(final: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``final`` through a unique temporary name; readers see the old file
    or the whole new one, never a part. Returns ``final`` as a Path."""
    final = Path(final)
    with atomic_output(final) as tmp:
        tmp.write_bytes(data)
    return final


def write_text(final: str | Path, text: str) -> Path:
    """:func:`write_bytes` of ``text`` encoded as UTF-8."""
    return write_bytes(final, text.encode("utf-8"))


def ensure_writable_folder(folder: str | Path) -> Path:
    """Create ``folder`` if needed and check that files can be created in it."""
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output folder ({exc.strerror})", path=path) from exc
    probe = temporary_name(path / "probe.tmp")
    try:
        probe.touch()
    except OSError as exc:
        raise OutputError(
            f"the output folder is not writable ({exc.strerror})", path=path, hint="choose another --out"
        ) from exc
    probe.unlink(missing_ok=True)
    return path
