"""The exception hierarchy of tcvom and the exit codes a host or farm can read.

Every error says what was wrong, where (file, frame) and what to do. The command line
maps each class to one exit code:

====  =========================================================
code  meaning
====  =========================================================
0     done
1     unexpected failure (a bug: please report it)
2     bad input or usage (a file, frame, size or flag is wrong)
3     a missing optional dependency or weight file
130   interrupted (Ctrl-C)
141   the reader of a job's output went away (a report ends with 0)
====  =========================================================
"""

from __future__ import annotations

import numbers
import os
import reprlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_BAD_INPUT = 2
EXIT_MISSING = 3
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT), as shells report it
EXIT_READER_GONE = 141  # the reader of a job's output went away (SIGPIPE, as shells report it)
INTERRUPTED = "interrupted: finished frames are kept, a rerun resumes"  # its message to hosts
EXIT_TERMINATED = 143  # stopped by SIGTERM (a farm manager, a host's cancel), as shells report it


class Terminated(KeyboardInterrupt):
    """SIGTERM as the command line receives it: stops a job as Ctrl-C does (finished
    frames kept, temporaries removed, a closing ``error`` event), with its own exit code."""

    exit_code = EXIT_TERMINATED
    message = "terminated (SIGTERM): finished frames are kept, a rerun resumes"


#: A stop (Ctrl-C, SIGTERM) whose exception may have been lost: a signal handler's
#: exception raised inside a callback from compiled code (numba compiling through
#: llvmlite's ctypes callbacks) is printed as "Exception ignored" and discarded, and the
#: job ran on to its end with exit code 0. The command line's handlers note it here;
#: :func:`raise_if_stopped` raises it again at the next frame.
_STOPS: list[KeyboardInterrupt] = []


def stopping(exc: KeyboardInterrupt) -> KeyboardInterrupt:
    """Note ``exc`` (a signal handler's) as pending until :func:`clear_stops`; returns it."""
    _STOPS.append(exc)
    return exc


def raise_if_stopped() -> None:
    """Raise a stop noted by :func:`stopping` (one that was lost comes back here); from the
    main thread only, where a signal's exception belongs."""
    import threading

    if _STOPS and threading.current_thread() is threading.main_thread():
        raise _STOPS[-1]


def clear_stops() -> None:
    _STOPS.clear()


@contextmanager
def signals_held() -> Iterator[list[int]]:
    """Hold Ctrl-C (and SIGTERM) back for the block, noting them in the list it yields.

    A KeyboardInterrupt raised inside a compiled module's initialisation (torch, the image
    libraries) surfaces as a traceback, an unrelated ImportError or a C++ ``std::terminate``
    (abort), and a module left half imported (torch) cannot be imported again in that
    process. The caller reads the list after the block. Left alone where another handler
    is installed (a host embedding tcvom) or outside the main thread, where Python allows
    no handler.
    """
    import signal
    import threading

    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    noted = {number: signal.getsignal(number) for number, default in ((signal.SIGINT, signal.default_int_handler),
                                                                      (signal.SIGTERM, signal.SIG_DFL))
             if signal.getsignal(number) is default}  # SIGTERM too: it killed a starting job without a word
    for number in noted:
        signal.signal(number, lambda signum, frame: received.append(signum))
    try:
        yield received
    finally:
        for number, previous in noted.items():
            signal.signal(number, previous)


#: Compiled modules the jobs import when they first need them: imported up front, inside
#: :func:`signals_held`.
COMPILED = ("torch", "OpenImageIO", "PyOpenColorIO", "cv2", "av")


def import_compiled() -> None:
    """Import :data:`COMPILED` (one that is missing is said by the job that needs it)."""
    import importlib

    for name in COMPILED:
        with suppress(ImportError):
            importlib.import_module(name)


def compiled_imported_held() -> None:
    """:func:`import_compiled` under :func:`signals_held` (the Python API's jobs: the command
    line does it while it builds its parser); a stop that came meanwhile is raised after:
    a cancel that lands while torch loads no longer breaks every later run of the process."""
    import signal

    with signals_held() as received:
        import_compiled()
    if received:
        raise Terminated() if signal.SIGTERM in received else KeyboardInterrupt()


class TcvomError(Exception):
    """Base class of every error tcvom raises on purpose."""

    exit_code: int = EXIT_UNEXPECTED

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        frame: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.path = None if path is None else str(path)
        self.frame = frame
        self.hint = hint
        super().__init__(self.__str__())

    def __reduce__(self) -> tuple[object, ...]:
        # Exceptions pickle as ``cls(*args)``, which would lose path / frame / hint and
        # break subclasses with other constructors; rebuild from the attributes instead
        # (errors travel back from Ray workers and other processes as they were raised).
        return (_rebuild, (type(self), dict(self.__dict__)))

    def __str__(self) -> str:
        where = []
        if self.path is not None:
            where.append(self.path)
        if self.frame is not None:
            where.append(f"frame {self.frame}")
        text = f"{': '.join(where)}: {self.message}" if where else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


def _rebuild(cls: type[TcvomError], state: dict[str, object]) -> TcvomError:
    """The unpickling half of :meth:`TcvomError.__reduce__`."""
    error = cls.__new__(cls)
    error.__dict__.update(state)
    error.args = (str(error),)
    return error


class InputError(TcvomError):
    """A file, frame, size or argument the user gave is not what tcvom expects."""

    exit_code = EXIT_BAD_INPUT


class MissingFrameError(InputError):
    """A frame of a sequence is not on disk."""


class FrameSizeError(InputError):
    """A frame or trimap does not have the size of the shot."""


class ReadError(InputError):
    """A file exists but cannot be decoded (corrupt, truncated, wrong format)."""


class OutputError(InputError):
    """An output cannot be written (folder missing or not writable, disk full)."""


def from_os_error(exc: OSError) -> TcvomError | None:
    """The error a refusal of the file system is reported as (a file named: bad input,
    exit code 2; a write without a file name on a full disk too); None for an OSError that
    names no file (a bug, exit code 1). The command line and a stage's JSON event agree."""
    from tcvom.io.atomic import FULL_ERRNOS, FULL_HINT

    if exc.filename is None:
        return OutputError(f"cannot write ({exc.strerror})", hint=FULL_HINT) if exc.errno in FULL_ERRNOS else None
    return OutputError(exc.strerror or str(exc), path=exc.filename)


class MissingDependencyError(TcvomError):
    """An optional package (an extra) is not installed."""

    exit_code = EXIT_MISSING

    def __init__(self, package: str, extra: str | None = None, *, purpose: str = "", alternative: str = "") -> None:
        how = f"pip install 'tcvom[{extra}]'" if extra else f"pip install {package}"
        what = f" for {purpose}" if purpose else ""
        hint = f"install it with: {how}" + (f", or {alternative}" if alternative else "")
        super().__init__(f"the optional package '{package}' is needed{what}", hint=hint)
        self.package = package
        self.extra = extra


class MissingWeightsError(TcvomError):
    """A network weight file was asked for and is not found."""

    exit_code = EXIT_MISSING


class WeightsError(InputError):
    """A weight file exists but does not fit the network (keys, shapes, format)."""


def listed_differences(diffs: Sequence[tuple[str, Any, Any]], limit: int = 4) -> str:
    """``"key: 'a' recorded, 'b' now; ..."`` of ``(key, recorded, now)`` differences (a job
    manifest's settings, a training checkpoint's config), the first ``limit`` of them."""
    listed = "; ".join(f"{k}: {old!r} recorded, {new!r} now" for k, old, new in diffs[:limit])
    return listed + (f" (and {len(diffs) - limit} more)" if len(diffs) > limit else "")


def shown(value: object) -> str:
    """``repr(value)`` for an error message, shortened (an array given where a path was
    expected is not dumped whole)."""
    return reprlib.repr(value)


def command_word(path: str | os.PathLike[str]) -> str:
    """A path as one word of a command to copy into a shell: quoted, and one starting with
    ``-`` as ``./-x``, which no option parser takes for a flag (``tcvom review -o3/review``
    was "the following arguments are required")."""
    import shlex

    text = os.fspath(path)
    return shlex.quote(f"./{text}" if text.startswith("-") else text)


def check_flag(value: object, what: str) -> None:
    """A true/false argument of the Python API: anything but True or False (numpy's too) is
    an InputError; a string such as "no" would otherwise count as true."""
    if not isinstance(value, bool) and not (type(value).__module__ == "numpy" and
                                            type(value).__name__ in ("bool", "bool_")):
        raise InputError(f"{what} must be True or False, not {shown(value)}")


def check_text(value: object, what: str, *, path: bool = False) -> None:
    """An optional text argument of the Python API (``path``: or a path): None, or text;
    another type is an InputError, not a failure deep inside a library."""
    if value is None or isinstance(value, str) or (path and isinstance(value, os.PathLike)):
        return
    raise InputError(f"{what} must be {'a path' if path else 'text'} or None, not {shown(value)}")


def check_whole(value: object, what: str, least: int, *, none: bool = False, unit: str = "") -> None:
    """A whole-number argument of the Python API (the command line's parser checks its own;
    numpy's ints are whole numbers, True is not): another type or a smaller value is an
    InputError before anything is read or written."""
    if value is None and none:
        return
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < least:
        spare = " (or None)" if none else ""
        raise InputError(f"{what} must be a whole number of at least {least}{unit}{spare}, not {shown(value)}")


def check_choice(value: object, choices: Iterable[str], what: str) -> None:
    """An argument of the Python API that must be one of ``choices`` (the command line's
    parser checks its own): anything else is an InputError naming them."""
    allowed = list(choices)
    if not isinstance(value, str) or value not in allowed:
        raise InputError(f"{what} must be one of {', '.join(allowed)}, not {shown(value)}")


def unexpected(exc: BaseException) -> str:
    """A bug's exception as said to the user: its type, and its text where it has one
    (``AssertionError``, ``KeyError: 'x'``)."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
