"""Atomic output: write to a temporary file in the target folder, then rename into place.

An interrupted run never leaves a partial file under a final name, and a finished frame
is never replaced by a broken one: ``os.replace`` is atomic on one file system.

A temporary is named ``.NAME.tcvom-tmp-HOST-PID-RANDOM.EXT``, so that a later run can
tell the leftovers of a killed writer from the files of a live one
(:func:`remove_dead_temporaries`).
"""

from __future__ import annotations

import csv
import errno
import io
import os
import re
import secrets
import shutil
import socket
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tcvom.errors import OutputError

TEMP_MARK = ".tcvom-tmp-"


FOREIGN_TEMPORARY_AGE_S = 24 * 3600
"""A temporary of another host (whose processes cannot be checked) is a leftover after a day."""


def _host() -> str:
    """This writer's machine as temporaries name it: the host name and, where it can be
    read, the process-id namespace (containers or cloned nodes sharing a host name share no
    process ids: one must not take another's live writer for dead). Kept equal to
    ``tcvom.hosts.client.writer_host``, which hosts use to clean up after a cancel."""
    name = socket.gethostname().replace("-", "_").replace(".", "_") or "localhost"
    try:
        namespace = "".join(c for c in os.readlink("/proc/self/ns/pid") if c.isdigit())  # pid:[4026531836]
    except OSError:
        return name
    return f"{name}_{namespace}" if namespace else name


#: What follows TEMP_MARK: HOST-PID-RANDOM (HOST absent in older versions), then the extension.
_WRITER = re.compile(r"^(?:(?P<host>.+)-)?(?P<pid>\d+)-[0-9a-f]+(?:\.[^-]*)?$")


def temporary_name(final: Path) -> Path:
    """A hidden name beside ``final`` that keeps its extension (writers pick the format by
    it) and names its writer (host and process id)."""
    token = f"{_host()}-{os.getpid()}-{secrets.token_hex(4)}"
    tail = f"{TEMP_MARK}{token}{final.suffix}"
    stem = final.stem
    room = NAME_MAX - len(tail.encode()) - 1  # a name the file system takes whole for a name it takes
    while stem and len(stem.encode()) > room:
        stem = stem[:-1]  # the stem only helps a reader: the writer is read from the tail
    return final.with_name(f".{stem}{tail}")


NAME_MAX = 255  # bytes in one file name (ext4, XFS, APFS, NTFS...)


def temporary_writer(path: Path) -> tuple[str | None, int] | None:
    """(host, pid) of the writer of a temporary file, host None for names without one
    (older versions); None if ``path`` is not a tcvom temporary."""
    name = path.name
    if TEMP_MARK not in name:
        return None
    match = _WRITER.match(name.split(TEMP_MARK, 1)[1])  # an older name may hold a host with dots
    return None if match is None else (match["host"], int(match["pid"]))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


def remove_dead_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporaries in ``folder`` whose writer is dead (files, and staging folders
    named by :func:`temporary_name`); returns them.

    A temporary of this host is removed when its process no longer runs; one of another
    host (or of a name without a host) when it is older than a day. A live concurrent
    writer's temporaries are left alone.
    """
    removed: list[Path] = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    here = _host()
    now = time.time()
    for path in entries:
        writer = temporary_writer(path)
        if writer is None:
            continue
        host, pid = writer
        try:
            if host == here:
                dead = not _alive(pid)
            else:
                dead = now - path.stat().st_mtime > FOREIGN_TEMPORARY_AGE_S
            if dead:
                if path.is_dir() and not path.is_symlink():  # a staging folder (an export's)
                    shutil.rmtree(path)
                else:
                    path.unlink()
                removed.append(path)
        except OSError:
            continue
    return removed


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
        try:
            os.replace(tmp, final)
        except OSError as exc:
            raise OutputError(f"cannot put the finished file in place ({exc.strerror})", path=final) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def scratch_folder(parent: str | Path | None, name: str) -> Iterator[Path]:
    """A scratch folder in ``parent`` (the temporary folder when None) for the block, named
    by :func:`temporary_name` so that one a killed process left (SIGKILL, a crash) is found
    and removed by the next one here (:func:`remove_dead_temporaries`, called first)."""
    import tempfile

    folder = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    remove_dead_temporaries(folder)
    path = temporary_name(folder / name)
    path.mkdir(mode=0o700)  # the shot's data, in a temporary folder other users share: this user's only
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


FULL_HINT = "is the disk full, or a file size limit (ulimit -f) reached? Nothing was put in its place"
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})
"""A write refused for want of room (disk full, file size limit, quota): said with :data:`FULL_HINT`."""


def write_bytes(final: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``final`` through a unique temporary name; readers see the old file
    or the whole new one, never a part. Returns ``final`` as a Path.

    Raises:
        OutputError: the disk is full or a file size limit is reached (:data:`FULL_HINT`).
    """
    final = Path(final)
    with atomic_output(final) as tmp, said_when_full(final):
        tmp.write_bytes(data)
    return final


@contextmanager
def said_when_full(final: str | Path) -> Iterator[None]:
    """Raise a write refused for want of room (:data:`FULL_ERRNOS`) in the block as an
    :class:`OutputError` naming ``final`` with :data:`FULL_HINT`: such an OSError names no
    file, and the command line took it for a bug."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in FULL_ERRNOS:
            raise
        raise OutputError(f"cannot write ({exc.strerror})", path=final, hint=FULL_HINT) from exc


def move_into_place(source: str | Path, final: str | Path) -> Path:
    """Rename a finished file (written and checked elsewhere on the same file system, e.g. a
    staging folder beside ``final``) to ``final`` in one step. Returns ``final`` as a Path."""
    final = Path(final)
    try:
        os.replace(source, final)
    except OSError as exc:
        raise OutputError(f"cannot put the finished file in place ({exc.strerror})", path=final) from exc
    return final


def write_text(final: str | Path, text: str) -> Path:
    """:func:`write_bytes` of ``text`` encoded as UTF-8."""
    return write_bytes(final, text.encode("utf-8"))


def write_csv(final: str | Path, fields: Sequence[str], rows: Iterable[Mapping[str, Any]],
              lineterminator: str = "\r\n") -> Path:
    """:func:`write_text` of ``rows`` as CSV with the header ``fields`` (keys not in them are
    left out, missing ones empty)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(fields), extrasaction="ignore", lineterminator=lineterminator)
    writer.writeheader()
    writer.writerows(rows)
    return write_text(final, text.getvalue())


def _why_not_writable(folder: Path) -> str:
    """What the system would say to a write in ``folder``, which ``os.access`` refused."""
    try:
        if os.statvfs(folder).f_flag & getattr(os, "ST_RDONLY", 1):
            return os.strerror(errno.EROFS)
    except (OSError, AttributeError):  # no statvfs (Windows)
        pass
    return os.strerror(errno.EACCES)


def make_folder(folder: str | Path, *, given_as: str = "--out", hint: str | None = None,
                what: str = "the output folder") -> Path:
    """Create ``folder`` (with its parents) if needed; a file or a link to nowhere in the
    way is an :class:`OutputError` naming it (``what`` the folder is; the advice names the
    setting it was ``given_as``, or ``hint`` replaces it), not a bare "File exists"."""
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        for link in (path, *path.parents):  # mkdir says "File exists" for a link to nowhere
            if link.is_symlink() and not link.exists():
                raise OutputError(f"cannot create {what}: {link} is a link to {os.readlink(link)}, which does not "
                                  "exist", path=path,
                                  hint=hint or f"create the folder it points to, or choose another {given_as}") from exc
        for blocker in (path, *path.parents):
            if blocker.exists() and not blocker.is_dir():
                raise OutputError(f"cannot create {what}: {blocker} is a file, not a folder", path=path,
                                  hint=hint or f"move that file away, or choose another {given_as}") from exc
        raise OutputError(f"cannot create {what} ({exc.strerror})", path=path, hint=hint) from exc
    return path


def ensure_writable_folder(folder: str | Path, *, given_as: str = "--out", hint: str | None = None,
                           create: bool = True) -> Path:
    """Create ``folder`` if needed and check that files can be created in it (the errors'
    advice names the setting it was ``given_as``; ``hint`` replaces the advice for a folder
    no setting names, such as an output's review folder). ``create=False`` (a plan, which
    writes nothing) checks the same without creating anything: a file or a dangling link
    in the way, and the nearest folder that exists writable."""
    path = Path(folder)
    if not create:
        existing = next((p for p in (path, *path.parents) if p.exists()), None)
        blocked = next((p for p in (path, *path.parents) if p.is_symlink() and not p.exists()), None)
        if blocked is None and (existing is None or existing.is_dir()):
            if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
                raise OutputError(f"the output folder is not writable ({_why_not_writable(existing)})", path=existing,
                                  hint=hint or f"choose another {given_as}")
            return path
    make_folder(path, given_as=given_as, hint=hint)
    probe = temporary_name(path / "probe.tmp")
    try:
        probe.touch()
    except OSError as exc:
        raise OutputError(
            f"the output folder is not writable ({exc.strerror})", path=path, hint=hint or f"choose another {given_as}"
        ) from exc
    probe.unlink(missing_ok=True)
    return path
