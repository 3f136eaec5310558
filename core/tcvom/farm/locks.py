"""Publishing a file once when several farm tasks race to create it.

Frames need no lock: every writer renames a finished temporary file into place
(:mod:`tcvom.io.atomic`), so two tasks that write the same frame leave one complete file,
never a mixture. What does need one is a file that must be created by exactly one task
and never replaced, such as the job manifest: :func:`publish_exclusive` writes the text
under a temporary name and hard-links it to the final name, which fails if the name is
taken (``link`` is atomic on local file systems and on NFS, where ``O_EXCL`` is not).

A shared cache (the ONNX exports and TensorRT engines of the user cache, which several
GPUs or tasks of one host use together) is built under :func:`exclusive_lock`: the first
process builds, the others wait and then use what it built.

Two runs started into one output share its work through :class:`FrameClaims`: a unit of
work (an alpha frame, or the keyframe segment the trimap stage propagates as one) is
computed under its own lock in the output's record folder, another run skips a unit whose
lock is held and comes back to it at the end of its stage.
"""

from __future__ import annotations

import errno
import os
import sys
import time
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tcvom.io.atomic import make_folder, said_when_full, temporary_name, write_text

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


def publish_exclusive(path: str | Path, text: str) -> bool:
    """Create ``path`` holding ``text`` unless it exists; True if this call created it.

    Readers never see a partial file. On file systems without hard links the file is
    created with ``O_EXCL`` and written in place (a reader may then briefly see it
    partial, see :func:`tcvom.farm.manifest.read_manifest`).
    """
    final = Path(path)
    tmp = temporary_name(final)
    try:
        with said_when_full(final):
            tmp.write_text(text, encoding="utf-8")
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
        with open(final, "x", encoding="utf-8") as handle, said_when_full(final):
            try:
                handle.write(text)
                handle.flush()
            except OSError:  # a partial file must not stand for the whole
                final.unlink(missing_ok=True)
                raise
        return True
    except FileExistsError:
        return False


def replace_file(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, replacing what was there."""
    write_text(path, text)


def _no_link(path: str, flags: int) -> int:
    return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0), 0o666)


def open_lock(path: str | Path) -> Any:
    """Open (create) the lock file ``path`` for reading and appending, never through a
    symbolic link (POSIX: Windows has no ``O_NOFOLLOW``): a link put in its place (to a file
    anywhere) is replaced by a plain lock file, so that locking never creates or touches a
    file it names. Any other error (no permission, a full disk) is raised."""
    for _ in range(3):  # another run may replace the link at the same time
        try:
            return open(path, "a+b", opener=_no_link)  # the caller holds it
        except OSError as exc:
            if exc.errno != errno.ELOOP and not os.path.islink(path):
                raise
            with suppress(FileNotFoundError):
                if os.path.islink(path):
                    os.unlink(path)  # the link, not what it names
    return open(path, "a+b", opener=_no_link)


RECORDS_HINT = "move that file away, or choose another --out: tcvom keeps the outputs' records and locks in that folder"


def own_folder(folder: Path) -> Path:
    """``folder`` made (with its parents) as a folder of its own: a symbolic link in its
    place is removed first, so that locks are never made, or dead runs' files removed, in
    the folder it names."""
    if folder.is_symlink():
        with suppress(FileNotFoundError):
            folder.unlink()
    return make_folder(folder, what="the folder of the outputs' locks", hint=RECORDS_HINT)


@contextmanager
def exclusive_lock(path: str | Path, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (created if missing) for the block.

    Another process holding it makes this one wait; ``on_wait`` is called once first (to
    say why nothing moves). The operating system releases the lock when its process ends,
    so a killed builder never leaves the cache locked. ``flock`` on POSIX (NFS v4 maps it to
    a byte-range lock), ``msvcrt.locking`` on Windows.
    """
    lock = Path(path)
    make_folder(lock.parent, what="the folder of the lock", hint="move that file away: tcvom keeps its locks there")
    handle = open_lock(lock)  # held for the whole block
    try:
        if sys.platform == "win32":
            import msvcrt

            handle.seek(0)  # msvcrt locks from the position, which "a" puts at the end: byte 0 for every holder
            try:
                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            except OSError:
                if on_wait is not None:
                    on_wait()
                while True:  # LK_LOCK gives up after 10 s; keep asking
                    try:
                        msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)
                        break
                    except OSError:
                        continue
        else:
            import fcntl

            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None:
                    on_wait()
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield
    finally:
        handle.close()  # closing releases the lock


def _try_lock(handle: Any) -> bool:
    """Take the exclusive lock on the open file ``handle`` without waiting; False if held."""
    if sys.platform == "win32":
        import msvcrt

        handle.seek(0)  # msvcrt locks from the position, which "a" puts at the end: byte 0 for every holder
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class FrameClaims:
    """Per-unit locks of one output, so that concurrent runs into it share the work.

    A unit is a frame (``1003``: the matte stage) or a named group of frames computed
    together (``"segment.1001-1040"``: a keyframe segment of the trimap stage, propagated
    as a whole). :meth:`claim` takes a unit's lock without waiting (False: another live
    process is computing it); :meth:`wait` takes it waiting for the holder; :meth:`release`
    gives it back once its frames and their records are written. The locks are ``flock``
    locks on files ``locks/<unit>.lock`` of ``folder``: the operating system drops a dead
    process's lock, so a killed run never keeps a unit from being computed.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder) / "locks"
        self._held: dict[int | str, Any] = {}

    def _open(self, unit: int | str) -> Any:
        name = str(unit)
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise ValueError(f"a claim is named by a frame or a plain name, not {name!r}")
        return open_lock(own_folder(self.folder) / f"{name}.lock")

    def claim(self, unit: int | str) -> bool:
        """Hold ``unit``'s lock if no other process does; True if this call took it."""
        handle = self._open(unit)
        if _try_lock(handle):
            self._held[unit] = handle
            return True
        handle.close()
        return False

    def wait(self, unit: int | str) -> None:
        """Hold ``unit``'s lock, waiting for the process that holds it to let it go."""
        handle = self._open(unit)
        while not _try_lock(handle):  # polling keeps one code path for POSIX and Windows
            time.sleep(0.05)
        self._held[unit] = handle

    def release(self, unit: int | str) -> None:
        """Let go of ``unit``'s lock (nothing if this process does not hold it)."""
        handle = self._held.pop(unit, None)
        if handle is not None:
            handle.close()

    def release_all(self) -> None:
        """Let go of every lock this object holds (the end of a stage, or an error)."""
        for unit in list(self._held):
            self.release(unit)


class LiveWriters:
    """The live runs writing one output, so that a run with other settings is not let in.

    Each run holds an exclusive lock on a file of its own in ``folder/writers`` (its host and
    process id inside, for the message) for as long as it writes. A file whose lock can be
    taken is a dead run's, and is removed. :meth:`join` and :meth:`others` must be called
    under one lock shared by every writer of the output (the manifest's claim lock), so that
    a run that has created its file but not yet locked it is never taken for a dead one.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder) / "writers"
        self._handle: Any = None

    def join(self, tag: str = "") -> None:
        """Count this run as writing until :meth:`leave` (or the process ends). ``tag`` (hex
        digits): what it writes from, beyond the settings (the trimaps' keyframes), for
        :meth:`others`; in the file's name, which a held lock leaves readable everywhere."""
        import platform
        import uuid

        own_folder(self.folder)
        name = f"{os.getpid()}-{uuid.uuid4().hex[:12]}" + (f"-{tag}" if tag else "")
        handle = open_lock(self.folder / f"{name}.lock")  # held
        if not _try_lock(handle):  # a fresh unique name: nobody else can hold it
            handle.close()
            raise OSError(f"could not lock {handle.name}")
        handle.write(f"{platform.node()} pid {os.getpid()}".encode())
        handle.flush()
        self._handle = handle

    def leave(self) -> None:
        """Stop counting this run (nothing if it did not join)."""
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.close()
            Path(handle.name).unlink(missing_ok=True)

    def others(self, unlike: str | None = None) -> list[str]:
        """``host pid N`` of every other live writer (``unlike``: of those that joined with
        another tag; one without, an older tcvom's, is left out); dead writers' files are removed."""
        live = []
        mine = None if self._handle is None else Path(self._handle.name)
        linked = self.folder.is_symlink()  # the files of the folder it names are no writers of this output
        for path in sorted(self.folder.glob("*.lock")) if self.folder.is_dir() and not linked else []:
            tag = path.stem.split("-", 2)[2] if path.stem.count("-") >= 2 else ""
            if path == mine or path.is_symlink() or (unlike is not None and tag in ("", unlike)):
                continue
            try:
                handle = open_lock(path)  # closed below
            except OSError:  # removed by its run meanwhile
                continue
            with handle:
                if _try_lock(handle):  # nobody holds it: its run ended without leaving (killed)
                    with suppress(OSError):
                        path.unlink()
                    continue
                try:
                    handle.seek(0)
                    who = handle.read(200).decode("utf-8", "replace")
                except OSError:  # Windows locks are mandatory: the locked byte cannot be read
                    who = ""
                live.append(who or path.stem)
        return live
