"""The job manifest: what settings made the frames of one output sequence.

Each output sequence of a shot (``trimaps/trimap.####.png``, ``alpha/alpha.####.exr``)
has a JSON manifest beside it, hidden so it does not clutter a compositor's file browser
(``.trimap.tcvom.json``, ``.alpha.tcvom.json``). The first
task to write into the sequence creates it (exclusively, see
:func:`tcvom.farm.locks.publish_exclusive`); every later task compares its own settings
with the recorded ones and refuses to run if they differ, so one sequence never mixes
frames made with different methods, weights, back-ends, inputs or tool versions.

``settings`` are compared; ``info`` (absolute paths, host, time, device) is recorded
for people and never compared, so the same shot mounted at different paths on different
farm hosts is still one job.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tcvom import __version__
from tcvom.errors import InputError, listed_differences
from tcvom.farm.locks import LiveWriters, exclusive_lock, publish_exclusive, replace_file
from tcvom.io.hashing import file_sha256
from tcvom.io.sequence import RECORDS_SUFFIX, check_records_name, records_path

FORMAT = 1
SUFFIX = RECORDS_SUFFIX


class SettingsMismatchError(InputError):
    """A task's settings differ from those that made the frames already in its output."""


def manifest_path(pattern: str | Path) -> Path:
    """Where the manifest of an output sequence lives: ``alpha.####.exr`` -> ``.alpha.tcvom.json``."""
    return records_path(pattern)


def records_folder(pattern: str | Path) -> Path:
    """The hidden folder of an output sequence's records: ``.alpha.tcvom/`` beside
    ``.alpha.tcvom.json``."""
    return manifest_path(pattern).with_suffix("")


def file_digest(path: str | Path) -> str:
    """``sha256:<hex>`` of a file's bytes (read every time: keyframes may be repainted)."""
    return f"sha256:{file_sha256(path, remember=False)}"


def jsonable(value: Any) -> Any:
    """Settings as plain JSON values (paths as strings, tuples as lists, keys as strings)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


@dataclass
class JobManifest:
    """``settings`` (compared between tasks) and ``info`` (recorded only)."""

    settings: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        data = {"format": FORMAT, "tool": "tcvom", "settings": jsonable(self.settings), "info": jsonable(self.info)}
        return json.dumps(data, indent=2, sort_keys=False) + "\n"

    def differences(self, other: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
        """``(key, recorded, given)`` for every setting that differs from ``other``."""
        mine, theirs = jsonable(self.settings), jsonable(dict(other))
        keys = sorted(set(mine) | set(theirs))
        return [(k, mine.get(k), theirs.get(k)) for k in keys if mine.get(k) != theirs.get(k)]


def read_manifest(path: str | Path, *, attempts: int = 20) -> JobManifest:
    """Read a manifest; retries briefly if another task is still writing it (only possible
    on file systems without hard links)."""
    file = Path(path)
    for attempt in range(attempts):
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
            break
        except json.JSONDecodeError as exc:
            if attempt == attempts - 1:
                raise InputError(
                    f"the job manifest is not valid JSON ({exc.msg})",
                    path=file,
                    hint="delete it if no task is running; it is recreated from the next task's settings",
                ) from exc
            time.sleep(0.05)
    if not isinstance(data, dict) or data.get("tool") != "tcvom" or "settings" not in data:
        raise InputError("this is not a tcvom job manifest", path=file, hint="delete or move it")
    return JobManifest(dict(data["settings"]), dict(data.get("info", {})))


def default_info() -> dict[str, Any]:
    """What is worth recording about the task that created a manifest."""
    return {"host": platform.node(), "pid": os.getpid(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def claim(
    pattern: str | Path,
    settings: Mapping[str, Any],
    *,
    info: Mapping[str, Any] | None = None,
    replace: bool = False,
) -> Path:
    """Record ``settings`` for the output sequence ``pattern``, or check them against the
    recorded ones. ``replace=True`` (a task that rewrites the whole shot) replaces a
    manifest with other settings instead of refusing, unless a run that holds the output
    (:func:`claimed`) is still writing it. Returns the manifest's path.

    Raises:
        SettingsMismatchError (exit code 2): the sequence was started with other settings,
            or is being written with other settings.
    """
    with claimed(pattern, settings, info=info, replace=replace) as path:
        return path


@contextmanager
def claimed(
    pattern: str | Path,
    settings: Mapping[str, Any],
    *,
    info: Mapping[str, Any] | None = None,
    replace: bool = False,
    inputs: str = "",
    inputs_are: str = "keyframes",
) -> Iterator[Path]:
    """:func:`claim`, then hold the output for the block: while it is held, a run with other
    settings is refused (two runs into one output with another ``--alpha-format`` used to
    replace each other's frames and both report them done), and so is one with other
    ``inputs`` (a digest of what ``inputs_are``: the keyframes of a trimap stage, two runs
    with other keyframes wrote one output's trimaps in turn, and it was neither's, while both
    ended done; the trimaps of a matte stage, likewise)."""
    check_records_name(pattern)
    writers = LiveWriters(records_folder(pattern))
    with exclusive_lock(records_folder(pattern) / "claim.lock"):
        live = writers.others(unlike=inputs) if inputs else []
        if live:
            raise SettingsMismatchError(
                f"another tcvom run ({', '.join(live)}) is writing these frames from other {inputs_are}",
                path=manifest_path(pattern),
                hint="wait for it to finish or stop it, then run again; or write to another --out",
            )
        path = _claim(pattern, settings, info, replace, writers)
        writers.join(inputs)
    try:
        yield path
    finally:
        writers.leave()


def writing_now(pattern: str | Path) -> list[str]:
    """``host pid N`` of every other live run writing the output sequence ``pattern`` now
    (:class:`LiveWriters`, asked under the claim lock as :func:`claimed` asks); none where
    nothing was ever claimed there."""
    folder = records_folder(pattern)
    if not (folder / "writers").is_dir():
        return []
    with exclusive_lock(folder / "claim.lock"):
        return LiveWriters(folder).others()


def _claim(pattern: str | Path, settings: Mapping[str, Any], info: Mapping[str, Any] | None, replace: bool,
           writers: LiveWriters) -> Path:
    path = manifest_path(pattern)
    mine = JobManifest({"version": __version__, **settings}, {**default_info(), **(info or {})})
    if publish_exclusive(path, mine.to_json()):
        return path
    recorded = read_manifest(path)
    diffs = recorded.differences(mine.settings)
    if not diffs:
        return path
    listed = listed_differences(diffs)
    if replace:
        live = writers.others()
        if live:
            raise SettingsMismatchError(
                f"another tcvom run ({', '.join(live)}) is writing these frames with other settings: {listed}",
                path=path,
                hint="wait for it to finish or stop it, then run again; or write to another --out",
            )
        replace_file(path, mine.to_json())
        return path
    raise _made_with_others(path, listed)


def check(pattern: str | Path, settings: Mapping[str, Any]) -> None:
    """Refuse, as :func:`claim` without ``replace`` would, if the recorded settings of
    ``pattern`` differ in any of the keys of ``settings`` (a part of them, known before a
    run's first stage); writes nothing, and passes when there is no manifest yet.

    Raises:
        SettingsMismatchError (exit code 2): the sequence was made with other settings.
    """
    path = manifest_path(pattern)
    if not path.is_file():
        return
    recorded = read_manifest(path)
    diffs = recorded.differences({**recorded.settings, **settings})  # only the keys given can differ
    if diffs:
        raise _made_with_others(path, listed_differences(diffs))


def _made_with_others(path: Path, listed: str) -> SettingsMismatchError:
    return SettingsMismatchError(
        f"the frames here were made with other settings: {listed}",
        path=path,
        hint="give the same settings as the other tasks of this job, write to another --out, "
        "or run the whole shot (no --frames) to make every frame with the new settings",
    )
