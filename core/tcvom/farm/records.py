"""What each output frame was made from, so that a rerun recomputes only what changed.

The artist's loop (paint keyframes, run, look, repaint one, run again) reruns a shot into
the same output many times. Results are reused by content, not by run: beside the job
manifest of an output sequence (``.alpha.tcvom.json``, :mod:`tcvom.farm.manifest`) a
hidden folder (``.alpha.tcvom/frames/``) holds one small JSON record per frame:

- ``key``: a SHA-256 over everything the frame was made from. A propagated trimap: the
  stage's settings, the passes of its keyframe segment, the content of the plate frames
  they read and of the keyframes that seed them. An alpha: the settings, its neighbour
  window (t-1, t, t+1) and the content of those plate frames and trimaps;
- ``file``, ``size``, ``mtime_ns``, ``sha256``: the output file as it was written;
- ``inputs``: the state of the input files read for it (full path, size, modification
  time, SHA-256), for people and as a cache of their digests (a trimap keeps those of its
  own plate frame, the first of a keyframe segment also those the segment reads outside
  itself: each state once, see :func:`tcvom.pipeline.jobs._segment_key`).

A frame is reused when its record's key equals the key of this run's inputs and its file
is still the one written (same name, size and modification time); it is then not touched.
Anything else (no record, another key, a file replaced or truncated since) is computed
again and replaced atomically. One file per frame: farm tasks writing different frames
never write the same record.

Input files are identified by content: :class:`FileDigests` hashes a file once and reuses
a recorded digest while the file's size, modification time, inode and status-change time are
unchanged, so a rerun that reuses everything reads no plate frame.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tcvom.errors import OutputError, TcvomError
from tcvom.farm.locks import RECORDS_HINT
from tcvom.farm.manifest import file_digest, jsonable, records_folder
from tcvom.io.atomic import FULL_ERRNOS, FULL_HINT, atomic_output, make_folder
from tcvom.io.hashing import array_sha256, as_recorded, value_sha256
from tcvom.io.sequence import format_range, parse_sequence

log = logging.getLogger("tcvom")

FORMAT = 1


def digest(value: Any) -> str:
    """``sha256:<hex>`` of a value made of settings, frame numbers and digests."""
    return f"sha256:{value_sha256(jsonable(value))}"


def array_digest(array: np.ndarray) -> str:
    """``sha256:<hex>`` of an array's dtype, shape and values."""
    return f"sha256:{array_sha256(array)}"


class FileDigests:
    """Content digests of input files, computed once and reused while a file's size,
    modification time, inode and status-change time stay as recorded (``known``: path ->
    state, see :meth:`state`)."""

    def __init__(self, known: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self._known: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (known or {}).items()}

    def learn(self, states: Mapping[str, Mapping[str, Any]]) -> None:
        """Remember more recorded states (those already known win: they are this run's)."""
        for path, state in states.items():
            self._known.setdefault(path, dict(state))

    def state(self, path: str | Path) -> dict[str, Any]:
        """``{"size", "mtime_ns", "inode", "ctime_ns", "sha256"}`` of the file now (hashed only
        if one of the others changed). The inode and the status-change time, which no tool sets
        back, tell two frames of one size and time swapped by renaming (loop QA: an unpacked
        plate's frames share a second), or a frame rewritten in place and its time restored;
        a file only touched or moved is hashed again, its content and the keys made from it
        the same."""
        name = str(Path(path).absolute())
        st = os.stat(name)
        now = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino, "ctime_ns": st.st_ctime_ns}
        known = self._known.get(name)
        if known is not None and all(known.get(k) == v for k, v in now.items()):
            return known
        state = {**now, "sha256": file_digest(name)}
        self._known[name] = state
        return state

    def sha256(self, path: str | Path) -> str:
        return str(self.state(path)["sha256"])


class FrameRecords:
    """The per-frame records of one output sequence (``pattern``, e.g. ``out/alpha.####.exr``)."""

    def __init__(self, pattern: str | Path) -> None:
        self.pattern = str(pattern)
        self.folder = records_folder(pattern) / "frames"
        self._cache: dict[int, dict[str, Any] | None] = {}
        self._name_shape: re.Pattern[str] | None = None  # a frame's file name (:meth:`_names_frame`)

    def _path(self, frame: int) -> Path:
        return self.folder / f"{int(frame)}.json"

    def _names_frame(self, name: object, frame: int) -> bool:
        """Whether a record's ``file`` is ``frame``'s file of this output (in any format: the
        name of the pattern's frame, any suffix). One naming another file (a path, ``..``, an
        artist's file beside the outputs) would have a rerun replace or prune that file, so
        such a record is no record (its frame is made again)."""
        if not isinstance(name, str) or "\0" in name or Path(name).name != name or name in ("", ".", ".."):
            return False
        if self._name_shape is None:  # the records' folder is shared by a name's spellings (matte.####, matte_####)
            stem = re.escape(parse_sequence(self.pattern, "output pattern").basename().rstrip("._-"))
            self._name_shape = re.compile(stem + r"[._-]?(-?\d+)\.[A-Za-z0-9]+")
        shape = self._name_shape.fullmatch(name)
        return shape is not None and int(shape[1]) == int(frame)

    def get(self, frame: int) -> dict[str, Any] | None:
        """The record of ``frame``, or None (none, or unreadable: the frame is then redone)."""
        if frame not in self._cache:
            try:
                data = json.loads(self._path(frame).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                data = None
            ok = (isinstance(data, dict) and data.get("format") == FORMAT and isinstance(data.get("key"), str)
                  and self._names_frame(data.get("file"), frame))
            self._cache[frame] = data if ok else None
        return self._cache[frame]

    def forget(self, frame: int) -> None:
        """Drop what this object read of ``frame``'s record: the next look reads the file
        again (another process may have written it meanwhile)."""
        self._cache.pop(frame, None)

    def frames(self) -> list[int]:
        """Frames that have a record (sorted)."""
        if not self.folder.is_dir():
            return []
        found = []
        for entry in self.folder.iterdir():
            stem, dot, ext = entry.name.partition(".")
            if ext == "json" and dot and stem.lstrip("-").isdigit():
                found.append(int(stem))
        return sorted(found)

    def input_states(self) -> dict[str, dict[str, Any]]:
        """The recorded states of every input file (path -> state), for :class:`FileDigests`."""
        states: dict[str, dict[str, Any]] = {}
        for frame in self.frames():
            record = self.get(frame)
            if record is not None:
                states.update(record.get("inputs", {}))
        return states

    def output_states(self) -> dict[str, dict[str, Any]]:
        """The recorded states of the output files (path -> state), for a later stage that
        reads them (the matte stage reading these trimaps)."""
        states = {}
        for frame in self.frames():
            record = self.get(frame)
            if record is not None:
                path = str((Path(self.pattern).parent / str(record.get("file", ""))).absolute())
                states[path] = {k: record.get(k) for k in ("size", "mtime_ns", "inode", "ctime_ns", "sha256")}
        return states

    def fresh(self, frame: int, key: str, path: str | Path) -> bool:
        """True if ``path`` is the file recorded for ``frame`` and was made from ``key``."""
        record = self.get(frame)
        if record is None or record["key"] != key or record.get("file") != Path(path).name:
            return False
        return self._as_written(frame, record, Path(path))

    def recorded_file(self, frame: int) -> Path | None:
        """The output file the record of ``frame`` names, if it is still the one written."""
        record = self.get(frame)
        if record is None:
            return None
        path = Path(self.pattern).parent / str(record.get("file", ""))
        return path if self._as_written(frame, record, path) else None

    def _as_written(self, frame: int, record: dict[str, Any], path: Path) -> bool:
        """:func:`~tcvom.io.hashing.as_recorded`; a file whose time moved with its bytes kept
        (an output copied, or touched) has its record learn the new time, so that it is
        hashed once, not on every later run. The time learnt is that of the file hashed (the
        same file, size and time before and after the hash), and only a record no other run
        rewrote meanwhile is rewritten; one that cannot be written (a read-only copy) is
        left, and the file is hashed again next time."""
        try:
            before = os.stat(path)
        except OSError:
            return False
        if not as_recorded(record, path):
            return False
        if record.get("mtime_ns") != before.st_mtime_ns:
            try:
                after = os.stat(path)
                same = (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size,
                                                                            before.st_mtime_ns)
                if same and json.loads(self._path(frame).read_text(encoding="utf-8")) == record:
                    self._store(frame, {**record, "mtime_ns": before.st_mtime_ns, "inode": before.st_ino,
                                        "ctime_ns": before.st_ctime_ns})
            except (OSError, ValueError, TcvomError):
                pass
        return True

    def learn_inputs(self, frame: int, inputs: Mapping[str, Mapping[str, Any]]) -> None:
        """A reused frame's record learns its input files' states now (a plate copied again
        keeps its bytes, not its times; a plate folder renamed, its paths; the frame's key, made
        from their content, has matched), so that they are hashed once, not on every later run.
        Only a record no other run rewrote meanwhile is rewritten; one that cannot be written (a
        read-only copy) is left."""
        record = self.get(frame)
        if record is None or not isinstance(record.get("inputs"), dict) or not inputs:
            return
        now = {path: dict(state) for path, state in inputs.items()}
        if now == record["inputs"]:
            return
        try:
            if json.loads(self._path(frame).read_text(encoding="utf-8")) == record:
                self._store(frame, {**record, "inputs": now})
        except (OSError, ValueError, TcvomError):
            pass

    def write(self, frame: int, path: str | Path, key: str, inputs: Mapping[str, Any] | None = None,
              **extra: Any) -> Path | None:
        """Record that ``path`` (just written) holds ``frame`` made from ``key`` and the
        input files ``inputs`` (path -> state); ``extra`` fields are recorded as they are.
        An older output of the frame under another name (another format) is removed and
        returned."""
        file = Path(path)
        old = self.recorded_file(frame)
        st = file.stat()
        record = {
            "format": FORMAT,
            "frame": int(frame),
            "file": file.name,
            "key": key,
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "inode": st.st_ino,  # for the stage that reads it (output_states: FileDigests' state)
            "ctime_ns": st.st_ctime_ns,
            "sha256": file_digest(file),
            "inputs": dict(inputs or {}),
            **extra,
        }
        make_folder(self.folder, what="the folder of the frames' records", hint=RECORDS_HINT)
        try:
            self._store(frame, record)
        except OSError as exc:  # a full disk or a file size limit said as such (FULL_HINT), as for the frames
            raise OutputError(f"cannot record what frame {frame} was made from ({exc.strerror})",
                              path=self._path(frame), frame=frame,
                              hint=FULL_HINT if exc.errno in FULL_ERRNOS else None) from exc
        if old is not None and old.name != file.name:
            old.unlink(missing_ok=True)
            return old
        return None

    def _store(self, frame: int, record: dict[str, Any]) -> None:
        """Write ``record`` as the record of ``frame`` (atomically) and remember it."""
        with atomic_output(self._path(frame)) as tmp:
            Path(tmp).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        self._cache[frame] = record

    def edited(self, frame: int) -> bool:
        """Whether the output file the record of ``frame`` names is there but changed since
        tcvom wrote it (its bytes differ: painted over by hand, or another tool's)."""
        record = self.get(frame)
        if record is None:
            return False
        path = Path(self.pattern).parent / str(record.get("file", ""))
        return path.is_file() and not self._as_written(frame, record, path)

    def remove(self, frame: int) -> Path | None:
        """Delete the output of ``frame`` (if it is still the one recorded) and its record;
        returns the file deleted."""
        path = self.recorded_file(frame)
        if path is not None:
            path.unlink(missing_ok=True)
        self._path(frame).unlink(missing_ok=True)
        self._cache[frame] = None
        return path

    def prune(self, keep: Iterable[int]) -> list[int]:
        """Remove the outputs and records of every recorded frame not in ``keep`` (frames a
        whole-shot run no longer produces); returns the frames whose file was deleted. A
        file that changed since it was recorded (edited: its bytes differ) is not
        tcvom's to delete: it stays, and a warning names it."""
        wanted = set(keep)
        deleted, left = [], []
        for frame in (f for f in self.frames() if f not in wanted):
            file = Path(self.pattern).parent / str((self.get(frame) or {}).get("file", ""))
            if self.remove(frame) is not None:
                deleted.append(frame)
            elif file.is_file():
                left.append(frame)
        if left:
            log.warning("%s: left %d file(s) of frames the shot no longer has (%s): they changed since tcvom "
                        "wrote them; delete them if they are not yours", self.pattern, len(left), format_range(left))
        return deleted

