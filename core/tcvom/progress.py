"""Progress reporting for long jobs: a terminal bar, or JSON lines for hosts and farms.

With ``mode="json"`` every event is one JSON object on its own line of standard output,
flushed at once, so a Blender or Nuke adapter or a farm wrapper can parse it:

``{"event": "start", "job": "matte", "total": 40, "unit": "frame", "tcvom": "0.1.0"}`` (``tcvom``: the version
sending it, which a host compares with its add-on's)
``{"event": "progress", "job": "matte", "done": 3, "total": 40, "frame": 1003, "fps": 2.1, "eta_s": 17.6}``
``{"event": "done", "job": "matte", "done": 40, "total": 40, "seconds": 19.2}``
``{"event": "error", "job": "matte", "message": "...", "exit_code": 2, "hint": "..."}`` (``hint``: what to
do, when the error says; also the end of ``message``)
``{"event": "message", "job": "run", "message": "..."}``
``{"event": "plan", "job": "trimaps", "reused": {"trimaps": {"count": 100, "frames": "1001-1040,1061-1120"}},
"computed": {"trimaps": {"count": 20, "frames": "1041-1060", "changed": 20}}}``

With ``mode="bar"`` a tqdm bar (frames done, frames/s, ETA) goes to standard error when it
is a terminal (redirected to a file or a pipe, only the one-line notices go there);
``mode="none"`` prints no progress (one-line notices still go to standard error).
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Literal, TextIO

from tcvom import __version__
from tcvom.errors import InputError, check_choice, raise_if_stopped

ProgressMode = Literal["bar", "json", "none"]
PROGRESS_MODES: tuple[str, ...] = ("bar", "json", "none")


_EMITTING = threading.Lock()  # events come from the job's thread and its writer thread


def check_progress(mode: object) -> None:
    """A ``progress`` argument of the Python API: one of :data:`PROGRESS_MODES`, and "json"
    only in a process with a standard output (API QA: a windowed application's
    ``sys.stdout`` is None, and a job given "json" stopped on an AttributeError)."""
    check_choice(mode, PROGRESS_MODES, "progress")
    if mode == "json" and sys.stdout is None:
        raise InputError("progress 'json' writes JSON lines to the standard output, and this process has none "
                         "(sys.stdout is None)", hint="pass progress='none', or give sys.stdout a stream")


def emit_json(event: str, stream: TextIO | None = None, **fields: Any) -> None:
    """Write one JSON event line and flush it (whole lines, whichever thread emits)."""
    out = stream if stream is not None else sys.stdout
    line = json.dumps({"event": event, **fields}, allow_nan=False) + "\n"
    with _EMITTING:
        try:
            out.write(line)
            out.flush()
        except BrokenPipeError:  # the reader went away: the command line's own ending
            raise
        except OSError as exc:  # a full disk or a failing device where the events go (faults QA: a traceback)
            from tcvom.errors import OutputError

            raise OutputError(f"cannot write the JSON events to the standard output ({exc.strerror or exc})",
                              hint="free space where the standard output goes, or run with --progress none") from exc


def error_fields(exc: BaseException) -> dict[str, Any]:
    """An error event's ``hint`` (what to do, as the message's last parenthesis says it: a
    host shows it as its fix; one naming a command-line flag is the CLI's own), and the
    ``path`` and ``frame`` it names, where it has them (the message names them too)."""
    fields: dict[str, Any] = {}
    for name, kind in (("hint", str), ("path", str), ("frame", int)):
        value = getattr(exc, name, None)
        if isinstance(value, kind) and not isinstance(value, bool) and value != "":
            fields[name] = value
    return fields


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


class Progress:
    """Counts finished units of a job (usually frames) and reports them.

    Use as a context manager; call :meth:`advance` once per finished unit. A job that
    raises inside the ``with`` reports an ``error`` event in JSON mode.
    """

    def __init__(self, job: str, total: int, mode: ProgressMode = "bar", unit: str = "frame") -> None:
        check_progress(mode)
        self.job = job
        self.total = total
        self.mode = mode
        self.unit = unit
        self.done = 0
        self._start = 0.0
        self._bar: Any = None
        self._stream: TextIO | None = None

    def __enter__(self) -> Progress:
        self._start = time.perf_counter()
        # The job's events go to the standard output of its start, whichever thread emits them
        # (an embedding application may swap sys.stdout while the job runs).
        self._stream = sys.stdout
        if self.mode == "json":
            emit_json("start", self._stream, job=self.job, total=self.total, unit=self.unit, tcvom=__version__)
        elif self.mode == "bar" and _is_terminal(sys.stderr):  # a log file gets the notices, not bar redraws
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=self.job, unit=self.unit, file=sys.stderr, dynamic_ncols=True)
        return self

    def advance(self, n: int = 1, frame: int | None = None) -> None:
        """Record ``n`` more finished units; ``frame`` names the last one. A Ctrl-C or
        SIGTERM whose exception compiled code swallowed stops the job here."""
        raise_if_stopped()
        self.done += n
        if self.mode == "json":
            elapsed = time.perf_counter() - self._start
            rate = self.done / elapsed if elapsed > 0 else 0.0
            eta = (self.total - self.done) / rate if rate > 0 else None
            fields: dict[str, Any] = {"done": self.done, "total": self.total, "fps": round(rate, 4)}
            if frame is not None:
                fields["frame"] = frame
            fields["eta_s"] = None if eta is None else round(eta, 2)
            emit_json("progress", self._stream, job=self.job, **fields)
        elif self._bar is not None:
            self._bar.update(n)
            if frame is not None:
                self._bar.set_postfix_str(f"{self.unit} {frame}", refresh=False)

    def plan(self, output: str, *, reused: Sequence[int], computed: Sequence[int], changed: Sequence[int] = ()) -> None:
        """Say, before the work starts, which frames of ``output`` are reused (their inputs
        did not change) and which are computed (``changed``: those whose existing file is
        replaced, the others are new)."""
        from tcvom.io.sequence import format_range

        reused, computed = sorted(reused), sorted(computed)
        if self.mode == "json":
            emit_json(
                "plan",
                self._stream,
                job=self.job,
                reused={output: {"count": len(reused), "frames": format_range(reused) if reused else ""}},
                computed={output: {"count": len(computed), "frames": format_range(computed) if computed else "",
                                   "changed": len(changed)}},
            )
            return
        if not reused and not changed:
            return  # a first run: the bar says it all
        if not reused:  # a rerun that redoes the whole stage (another setting, every segment touched)
            self.message(f"{output}: nothing reused, {len(computed)} to compute ({format_range(computed)}), "
                         f"{len(changed)} of them replacing earlier files")
            return
        text = f"{output}: {len(reused)} frame(s) reused ({format_range(reused)})"
        if computed:
            text += f", {len(computed)} to compute ({format_range(computed)})"
        else:
            text += ", nothing to compute"
        self.message(text)

    def message(self, text: str) -> None:
        """A one-line notice that belongs to the job (not an error; lost where stderr cannot
        take it, a full disk: the job goes on)."""
        if self.mode == "json":
            emit_json("message", self._stream, job=self.job, message=text)
            return
        with contextlib.suppress(OSError):
            if self._bar is not None:
                self._bar.write(text, file=sys.stderr)
            else:
                print(f"tcvom: {text}", file=sys.stderr)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.close()
        if self.mode != "json":
            return
        if exc is None:
            seconds = round(time.perf_counter() - self._start, 3)
            emit_json("done", self._stream, job=self.job, done=self.done, total=self.total, seconds=seconds)
        elif isinstance(exc, (Exception, KeyboardInterrupt)):
            from tcvom.errors import EXIT_INTERRUPTED, EXIT_UNEXPECTED, INTERRUPTED, unexpected

            if isinstance(exc, KeyboardInterrupt):  # named by the stage it stopped, as an error is
                message = getattr(exc, "message", INTERRUPTED)  # SIGTERM's own (tcvom.errors.Terminated)
                code = getattr(exc, "exit_code", EXIT_INTERRUPTED)
                fields = error_fields(exc)
            else:
                from tcvom.errors import from_os_error

                # an OSError as the command line reports it
                shown = (from_os_error(exc) if isinstance(exc, OSError) else None) or exc
                message, code = str(shown), getattr(shown, "exit_code", EXIT_UNEXPECTED)
                if code == EXIT_UNEXPECTED:  # a bug: named as one (an empty AssertionError said nothing)
                    message = f"unexpected failure in the {self.job} stage: {unexpected(exc)}"
                fields = error_fields(shown)
            emit_json("error", self._stream, job=self.job, message=message, exit_code=code, **fields)
            exc.reported_as_json = True  # type: ignore[attr-defined]  # the CLI does not repeat it
