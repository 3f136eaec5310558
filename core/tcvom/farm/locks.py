"""Publishing a file once when several farm tasks race to create it.

Frames need no lock: every writer renames a finished temporary file into place
(:mod:`tcvom.io.atomic`), so two tasks that write the same frame leave one complete file,
never a mixture. What does need one is a file that must be created by exactly one task
and never replaced, such as the job manifest: :func:`publish_exclusive` writes the text
under a temporary name and hard-links it to the final name, which fails if the name is
taken (``link`` is atomic on local file systems and on NFS, where ``O_EXCL`` is not).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from tcvom.io.atomic import temporary_name, write_text


def publish_exclusive(path: str | Path, text: str) -> bool:
    """Create ``path`` holding ``text`` unless it exists; True if this call created it.

    Readers never see a partial file. On file systems without hard links the file is
    created with ``O_EXCL`` and written in place (a reader may then briefly see it
    partial, see :func:`tcvom.farm.manifest.read_manifest`).
    """
    final = Path(path)
    tmp = temporary_name(final)
    tmp.write_text(text, encoding="utf-8")
    try:
        os.link(tmp, final)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
    finally:
        tmp.unlink(missing_ok=True)
    try:
        with open(final, "x", encoding="utf-8") as handle:
            handle.write(text)
        return True
    except FileExistsError:
        return False


def replace_file(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, replacing what was there."""
    write_text(path, text)
