"""The ``tcvom`` command line: a thin shell over the Python API.

Each job is a module in this package with ``NAME``, ``HELP``, ``add_arguments(parser)``
and ``main(args) -> int``; flags map 1:1 to keyword arguments of the API function the
job calls. Errors become exit codes (see :mod:`tcvom.errors`).
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from types import ModuleType
from typing import Any

from tcvom import __version__
from tcvom.errors import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    EXIT_MISSING,
    EXIT_READER_GONE,
    EXIT_UNEXPECTED,
    INTERRUPTED,
    TcvomError,
    Terminated,
    clear_stops,
    from_os_error,
    import_compiled,
    signals_held,
    stopping,
    unexpected,
)
from tcvom.progress import emit_json, error_fields

# Order as shown by ``tcvom --help``.
COMMANDS: tuple[str, ...] = (
    "run",
    "trimaps",
    "matte",
    "eval",
    "export",
    "info",
    "weights",
    "example",
    "review",
    "preview",
    "train",
    "farm",
    "nuke",
)


def _load(name: str) -> ModuleType:
    return importlib.import_module(f"tcvom.cli.cmd_{name}")


# A word that looks like a negative number is a value, not an option (argparse's own rule),
# and so is ``-5=key.png``: a frame=path pair for a frame before zero (``--keyframes -5=k.png``).
_NEGATIVE_VALUE = re.compile(r"^-\d+$|^-\d*\.\d+$|^-\d+=")


def _negative_values(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser._negative_number_matcher = _NEGATIVE_VALUE  # argparse has no public hook for this rule
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tcvom",
        description="Temporally coherent video object matting: keyframe trimaps in, an alpha matte for every frame out.",
        epilog="Exit codes: 0 done, 1 unexpected failure, 2 bad input or usage, 3 missing optional dependency or weights, "
               "130 interrupted, 141 the reader of a job's output went away, 143 stopped by SIGTERM.",
    )
    _negative_values(parser)
    parser.add_argument("--version", action="version", version=f"tcvom {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="JOB")
    for name in COMMANDS:
        module = _load(name)
        job = _negative_values(sub.add_parser(name, help=module.HELP, description=module.HELP))
        module.add_arguments(job)
        job.set_defaults(_module=module)
    return parser


#: Commands that may run the networks on frames: the process keeps its freed memory
#: (:mod:`tcvom.allocator`), so that each frame's large tensors do not page-fault anew.
NETWORK_COMMANDS = frozenset({"run", "trimaps", "matte", "eval", "train", "farm"})


#: Flags whose value is a frame range, which may start before zero.
_RANGE_FLAGS = ("--frames", "--shot-range")
_RANGE_BEFORE_ZERO = re.compile(r"-\d[-\d,:x@]*")


def _ranges_joined(argv: list[str]) -> list[str]:
    """``--frames -3-4`` as ``--frames=-3-4``: argparse takes a value that starts with "-"
    (and is not a plain negative number) for a flag, and said "expected one argument"."""
    joined: list[str] = []
    for arg in argv:
        if joined and joined[-1] in _RANGE_FLAGS and _RANGE_BEFORE_ZERO.fullmatch(arg):
            joined[-1] = f"{joined[-1]}={arg}"
        else:
            joined.append(arg)
    return joined


def _options_of(parser: argparse.ArgumentParser) -> tuple[list[str], dict[str, argparse.ArgumentParser]]:
    """A parser's long options and its actions' parsers (``weights add``, ``farm template``)."""
    options: list[str] = []
    actions: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:  # argparse has no public listing of a parser's options
        options.extend(name for name in action.option_strings if name.startswith("--"))
        if isinstance(action, argparse._SubParsersAction):
            actions.update(action.choices)
    return options, actions


def _unknown_option_named(parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    """Stop at a misspelt option (``--methd``) with the option meant, before argparse's own
    checks: it said only "the following arguments are required" for another flag, or that
    ``--methd`` was unrecognised after a usage of forty lines."""
    options, actions = _options_of(parser)
    for word in argv:
        if word == "--":
            return
        if word in actions:
            parser = actions[word]
            options, actions = _options_of(parser)
            continue
        name = word.partition("=")[0]
        if not name.startswith("--") or any(option.startswith(name) for option in options):
            continue  # a value, or an option as written or abbreviated (argparse takes both)
        meant = difflib.get_close_matches(name, options, n=1)
        parser.error(f"unrecognised option {name}" + (f" (did you mean {meant[0]}?)" if meant else ""))


def _expand_home(value: object) -> object:
    if isinstance(value, list):
        return [_expand_home(item) for item in value]
    if not isinstance(value, str):
        return value
    if value.startswith("~"):
        return os.path.expanduser(value)
    frame, sep, path = value.partition("=")  # a keyframe pair, FRAME=~/key.png
    if sep and path.startswith("~") and frame.strip().lstrip("-").isdigit():
        return f"{frame}={os.path.expanduser(path)}"
    return value


def _home_expanded(args: argparse.Namespace) -> None:
    """``~`` at the start of a path argument means the home folder, as in a shell: a quoted
    pattern (``--plate '~/shot/plate.####.exr'``) or a host's setting keeps it literal, and
    ``--out '~/matte'`` made a folder named ``~``."""
    for name, value in vars(args).items():
        if not name.startswith("_"):
            setattr(args, name, _expand_home(value))


def _is_report(args: argparse.Namespace) -> bool:
    """Whether the command only prints (a reader may stop reading it at any line)."""
    action = getattr(args, "action", None) or getattr(args, "farm_command", None)
    return args.command in ("info", "review") or (args.command, action) in (("weights", "list"), ("farm", "plan"))


def _stdio_kept() -> None:
    """A process started with stdout or stderr closed (a daemonised farm worker) has None
    there: write what would go there to /dev/null instead of failing on the first line."""
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w"))  # noqa: SIM115 (open for the process's life)


def console() -> None:
    """The ``tcvom`` command (console script, ``python -m tcvom``): :func:`main`, then exit
    with its code. Once the job has ended and said so, Ctrl-C or SIGTERM during the
    interpreter's shutdown (torch's exit hooks) no longer prints a traceback over a finished
    job or turns its exit code into a death by signal."""
    global _CONSOLE
    _CONSOLE = True
    try:
        code = main()
    finally:
        _CONSOLE = False  # a later main() in this process (runpy, a test) is a caller's again
    if threading.current_thread() is threading.main_thread():
        for number in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(number) in (signal.SIG_DFL, signal.default_int_handler):
                signal.signal(number, signal.SIG_IGN)
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (:func:`console` exits with it)."""
    _stdio_kept()
    with signals_held() as interrupted:
        parser = build_parser()
        words = _ranges_joined(sys.argv[1:] if argv is None else list(argv))
        _unknown_option_named(parser, words)
        args = parser.parse_args(words)
        _home_expanded(args)
        if args.command is not None:
            import_compiled()
    if interrupted:
        return _interrupted(args, Terminated() if signal.SIGTERM in interrupted else None)
    if args.command is None:
        parser.print_help()
        return 2
    module = args._module
    if args.command in NETWORK_COMMANDS:
        from tcvom.allocator import retain_freed_memory

        retain_freed_memory()
    try:
        with _logger_kept(), _terminate_as_interrupt():
            return int(module.main(args) or 0)
    except TcvomError as exc:
        return _report(args, exc)
    except KeyboardInterrupt as exc:
        return _interrupted(args, exc)
    except BrokenPipeError:
        # The reader of our output went away. Point stdout at /dev/null so Python's final
        # flush stays quiet. For a report (`tcvom info --colorspaces | head`) that is the
        # end of it; a job that stopped before its end must not say "done" to a farm.
        _silence_stdout()
        if _is_report(args):
            return 0
        with suppress(OSError):  # stderr may be the same closed pipe (`2>&1 | head`)
            print(f"tcvom {args.command}: stopped: the reader of its output went away (finished frames are kept, "
                  "a rerun resumes)", file=sys.stderr, flush=True)
        _silence_stream(sys.stderr)
        return EXIT_READER_GONE
    except OSError as exc:
        # The file system refused (not a folder, no permission, disk full): bad input, exit 2.
        said = from_os_error(exc)
        if said is None:
            return _unexpected(args, exc)
        said.reported_as_json = getattr(exc, "reported_as_json", False)  # type: ignore[attr-defined]  # by its stage
        return _report(args, said)
    except ModuleNotFoundError as exc:
        if (exc.name or "").startswith("tcvom.engines"):
            return _report(args, _engines_missing())
        return _unexpected(args, exc)
    except MemoryError:  # a process memory limit (ulimit -v, a farm's cap): no bug of tcvom's, exit 2
        error = TcvomError("out of memory: the job needs more memory than this process may take",
                           hint="raise the process's memory limit (ulimit -v, the farm's cap), or run fewer frames "
                           "or a smaller plate at once")
        error.exit_code = EXIT_BAD_INPUT
        return _report(args, error)
    except Exception as exc:
        return _unexpected(args, exc)


def _engines_missing() -> TcvomError:
    """The inference back-ends are missing: this tcvom was installed from a checkout whose
    ``core/tcvom/engines`` link to ``engines/`` is a plain file (git without symlinks, on
    Windows, or a ZIP download), which neither a wheel nor ``sys.path`` takes as a package."""
    from pathlib import Path

    error = TcvomError(
        "tcvom's inference back-ends (tcvom.engines) are not installed: this tcvom was installed from a "
        "checkout in which core/tcvom/engines, a link to the top-level engines/ folder, is a plain file (git "
        "without symlinks, or a ZIP download); the classical method runs without them",
        path=Path(__file__).resolve().parents[1] / "engines",
        hint="in the checkout run `git config core.symlinks true` and `git checkout -- core/tcvom/engines` (on "
             "Windows with Developer Mode on), then install tcvom again",
    )
    error.exit_code = EXIT_MISSING
    return error


@contextmanager
def _logger_kept() -> Iterator[None]:
    """Give the "tcvom" logger back as it was: a job points it at this call's stderr or JSON
    stream, which a Python caller of :func:`main` may close or capture afterwards."""
    log = logging.getLogger("tcvom")
    handlers, propagate, level = list(log.handlers), log.propagate, log.level
    try:
        yield
    finally:
        log.handlers[:] = handlers
        log.propagate, log.level = propagate, level


def _interrupted(args: argparse.Namespace, exc: KeyboardInterrupt | None = None) -> int:
    message = getattr(exc, "message", INTERRUPTED)  # SIGTERM's own (Terminated)
    code = getattr(exc, "exit_code", EXIT_INTERRUPTED)
    word = message.partition(":")[0]
    _last_words(args, exc if exc is not None else KeyboardInterrupt(),  # the last word
                f"tcvom {args.command}: {word}" if args.command else f"tcvom: {word}", message=message, exit_code=code)
    return code


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a farm manager stopping a task, a host's cancel) stops the job as Ctrl-C
    does: temporaries removed, a closing JSON ``error`` event, exit code 143. Without it the
    process died mid-frame with no last word. Left alone where another handler is installed
    (a host embedding tcvom) or outside the main thread, and given back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    stopped: list[float] = []  # when the first signal stopped the job

    def repeated() -> bool:
        """A signal within :data:`REPEAT_WINDOW` of the first (a farm's repeated TERM, a
        double Ctrl-C) does not break the first one's clean-up; a later one stops it too."""
        now = time.monotonic()
        if stopped and now - stopped[0] < REPEAT_WINDOW:
            return True
        stopped[:] = [now]
        return False

    def terminated(signum: int, frame: object) -> None:
        if not repeated():
            raise stopping(Terminated())

    def interrupted(signum: int, frame: object) -> None:
        if not repeated():
            raise stopping(KeyboardInterrupt())

    # Each exception is also noted: raised inside compiled code's callback (numba compiling)
    # it is lost, and the job stops at its next frame instead (tcvom.errors.stopping).
    # Windows: Ctrl-Break (a farm's notify-then-terminate cancel there) is a SIGTERM (not run here: no Windows)
    sigbreak = getattr(signal, "SIGBREAK", None)
    breaks = [(sigbreak, terminated, signal.SIG_DFL)] if sigbreak is not None else []
    handlers = {number: handler for number, handler, default in (
        (signal.SIGTERM, terminated, signal.SIG_DFL), (signal.SIGINT, interrupted, signal.default_int_handler),
        *breaks) if signal.getsignal(number) is default}
    previous = {number: signal.signal(number, handler) for number, handler in handlers.items()}
    try:
        yield
    finally:
        for number, handler in previous.items():
            # the command's job has ended: it says so and exits, and a signal meanwhile (a
            # second Ctrl-C or TERM) would kill it by signal or raise in console()
            signal.signal(number, signal.SIG_IGN if _CONSOLE else handler)
        clear_stops()


REPEAT_WINDOW = 1.0
"""Seconds after a stopping signal in which another is taken for the same stop."""
_CONSOLE = False
"""Whether this process is the ``tcvom`` command (:func:`console`), not a Python caller of
:func:`main`, whose own handlers come back after the job."""


def _report(args: argparse.Namespace, exc: TcvomError) -> int:
    _last_words(args, exc, f"tcvom {args.command}: error: {exc}", message=str(exc), exit_code=exc.exit_code,
                **error_fields(exc))
    return exc.exit_code


def _last_words(args: argparse.Namespace, exc: BaseException, line: str, **event: Any) -> None:
    """Say how the command ended on stderr, and as a JSON ``error`` event with ``--progress
    json``, as far as those streams take it: one that cannot (a full disk, the stream the
    error was about) loses its word, and the exit code still says it (faults QA: a second
    traceback, exit 1)."""
    with suppress(OSError):
        print(line, file=sys.stderr, flush=True)
    if getattr(args, "progress", None) == "json" and not getattr(exc, "reported_as_json", False):
        with suppress(OSError, TcvomError):
            emit_json("error", job=args.command, **event)


def _unexpected(args: argparse.Namespace, exc: BaseException) -> int:
    """A bug: say so, with the traceback, and exit 1."""
    import traceback

    with suppress(OSError):
        traceback.print_exception(exc)
    _last_words(args, exc, f"tcvom {args.command}: unexpected failure: {unexpected(exc)} (please report this)",
                message=f"unexpected failure: {unexpected(exc)}", exit_code=EXIT_UNEXPECTED)
    return EXIT_UNEXPECTED


def _silence_stdout() -> None:
    _silence_stream(sys.stdout)


def _silence_stream(stream: object) -> None:
    """Point a standard stream's file at /dev/null (a closed pipe: Python's final flush of
    what is left in it would fail)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())  # type: ignore[attr-defined]
    except (OSError, ValueError, AttributeError):  # not a real file (captured in a test)
        pass


if __name__ == "__main__":
    sys.exit(main())
