"""Overlapped I/O for the per-frame stages: frames are decoded ahead on a reader thread
(:class:`ReadAhead`) and outputs written behind on a writer thread (:class:`WriteBehind`),
so that the networks do not wait on files. The matte stage reads ahead in its session's
``read_order``; the trimap stage in the order its propagation passes read the plate
(:func:`tcvom.propagation.ensemble.read_order`: forward and backward, a frame reached by two
passes read once for each), one keyframe segment at a time.

Both are bounded: at most ``depth`` frames are decoded ahead of the one the session asks
for, and at most ``depth`` finished frames wait to be written, so memory does not grow with
the length of a shot. ``depth=0`` does everything in the calling thread (the sequential
path, for debugging: ``--io-queue 0``).

Errors keep their place in the sequence:

- a frame the reader thread could not read raises its own exception (the same
  :class:`~tcvom.errors.TcvomError`, naming file and frame) when the session asks for
  that frame, not before, so every frame before it is matted and written as without the
  thread;
- a failed write raises at the next :meth:`WriteBehind.submit` or when the block ends, and
  nothing submitted after it is written; the frames before it were written and recorded.

A job submitted to :class:`WriteBehind` writes its frame atomically (:mod:`tcvom.io.atomic`)
and records it afterwards, as in the sequential path, so an interrupted run leaves no
partial frame and loses no finished one: when the block ends with an error or an
interrupt, the frames already submitted are still written before it propagates.
"""

from __future__ import annotations

import contextlib
import contextvars
import queue
import threading
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from tcvom.errors import raise_if_stopped
from tcvom.io.sources import FrameReader

DEFAULT_DEPTH = 2
"""Frames read ahead and frames waiting to be written (``--io-queue``)."""

_STOP = object()


class ReadAhead:
    """A :class:`~tcvom.io.sources.FrameReader` that reads the frames of ``order`` ahead on
    a thread, at most ``depth`` beyond the last one asked for.

    ``order`` (given to :meth:`start`) is the order in which the session will ask for
    frames (its ``read_order``); it is a hint: a frame asked for out of that order is read
    in the calling thread, and frames passed over are dropped. Other attributes
    (``width``, ``path``...) are those of the wrapped reader. Use as a context manager,
    or call :meth:`close`.
    """

    def __init__(self, reader: FrameReader, depth: int = DEFAULT_DEPTH) -> None:
        if depth < 0:
            raise ValueError(f"the read-ahead depth must be 0 or more, not {depth}")
        self.reader = reader
        self.frame_numbers = reader.frame_numbers
        self.depth = depth
        self._order: list[int] = []
        self._positions: dict[int, list[int]] = {}
        self._ready: dict[int, tuple[bool, Any]] = {}  # position -> (read, array or exception)
        self._cursor = 0  # first position not yet asked for
        self._next = 0  # next position the thread reads
        self._busy: int | None = None  # position the thread is reading
        self._closed = False
        self._changed = threading.Condition()
        self._reading = threading.Lock()  # one read at a time: sources keep decoder state
        self._thread: threading.Thread | None = None

    def __getattr__(self, name: str) -> Any:
        if name == "reader":  # not set yet (copies, pickling)
            raise AttributeError(name)
        return getattr(self.reader, name)

    def start(self, order: Sequence[int]) -> None:
        """Begin reading ``order`` ahead (nothing with ``depth=0`` or an empty order)."""
        if self.depth == 0 or not order or self._thread is not None:
            return
        self._order = list(order)
        for position, frame in enumerate(self._order):
            self._positions.setdefault(frame, []).append(position)
        # in the job's context: its warnings said once per job (tcvom.io.sources.one_job)
        self._thread = threading.Thread(target=contextvars.copy_context().run, args=(self._run,),
                                        name="tcvom-read-ahead", daemon=True)
        self._thread.start()

    def read(self, frame: int) -> Any:
        """The wrapped reader's ``read(frame)``: its array, or its exception raised here."""
        position = self._claim(frame)
        if position is None:
            with self._reading:
                return self.reader.read(frame)
        with self._changed:
            while position not in self._ready:
                self._changed.wait()
            done, value = self._ready.pop(position)
        if not done:
            raise value
        return value

    def _claim(self, frame: int) -> int | None:
        """The position of ``frame`` the thread reads or has read for this call, or None:
        read it here (not in the order, passed over, or the thread has not reached it)."""
        if self._thread is None:
            return None
        with self._changed:
            position = next((p for p in self._positions.get(frame, ()) if p >= self._cursor), None)
            if position is None:
                return None
            for stale in [p for p in self._ready if p < position]:
                del self._ready[stale]
            self._cursor = position + 1
            self._changed.notify_all()
            if position in self._ready or self._busy == position:
                return position
            self._next = max(self._next, position + 1)
            return None

    def _run(self) -> None:
        while True:
            with self._changed:
                self._next = max(self._next, self._cursor)
                while not self._closed and self._next < len(self._order) and self._next - self._cursor >= self.depth:
                    self._changed.wait()
                    self._next = max(self._next, self._cursor)
                if self._closed or self._next >= len(self._order):
                    return
                position = self._busy = self._next
                self._next += 1
            try:
                with self._reading:
                    item: tuple[bool, Any] = (True, self.reader.read(self._order[position]))
            except BaseException as exc:  # raised in the caller's thread, at that frame
                item = (False, exc)
            with self._changed:
                self._busy = None
                if position >= self._cursor - 1:  # still wanted (or being waited for)
                    self._ready[position] = item
                self._changed.notify_all()

    def close(self) -> None:
        """Stop the thread (after the read it is doing) and drop what it read ahead."""
        with self._changed:
            self._closed = True
            self._ready.clear()
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class WriteBehind:
    """Runs write jobs on one thread, in the order submitted, at most ``depth`` waiting.

    A job is a callable that writes one frame and records it (and reports progress, so
    progress events keep the frames' order). With ``depth=0`` a job runs inside
    :meth:`submit`. Use as a context manager: leaving the block waits for every job
    submitted; the first failed job's exception is raised there (or at the next
    :meth:`submit`), and the jobs after it are not run.
    """

    def __init__(self, depth: int = DEFAULT_DEPTH) -> None:
        if depth < 0:
            raise ValueError(f"the write-behind depth must be 0 or more, not {depth}")
        self.depth = depth
        self._jobs: queue.Queue[Any] = queue.Queue(maxsize=max(depth, 1))
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> WriteBehind:
        if self.depth > 0:
            self._thread = threading.Thread(target=contextvars.copy_context().run, args=(self._run,),
                                            name="tcvom-write-behind", daemon=True)
            self._thread.start()
        return self

    def submit(self, job: Callable[[], object]) -> None:
        """Queue ``job`` (waiting while ``depth`` jobs wait); raises a failed job's error, or
        a Ctrl-C or SIGTERM whose exception compiled code swallowed (a frame boundary of the
        job's own thread, where the progress its writer reports is not)."""
        raise_if_stopped()
        self._raise()
        if self._thread is None:
            job()
            return
        self._jobs.put(job)

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def drain(self) -> None:
        """Wait until every job submitted so far has run (before waiting on something else,
        such as another run's claim); raises a failed job's error."""
        if self._thread is not None:
            self._jobs.join()
        self._raise()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is _STOP:
                    return
                if self._error is None:  # after a failed job the later ones are dropped; the queue still drains
                    job()
            except BaseException as exc:  # raised in the submitting thread
                self._error = exc
            finally:
                self._jobs.task_done()

    def close(self) -> None:
        """Wait for every job submitted; raise the first failed job's error."""
        if self._thread is not None:
            self._jobs.put(_STOP)
            self._thread.join()
            self._thread = None
        self._raise()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None or isinstance(exc, Exception):
            # The frames submitted before the caller's error are finished work: write them.
            # A failed write came from an earlier frame than the caller's error: it wins.
            self.close()
            return
        # An interrupt: write what was submitted, then let the interrupt (not a write error) through.
        with contextlib.suppress(Exception):
            self.close()
