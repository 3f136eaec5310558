"""Where tcvom finds network weights, and registering downloaded files.

The released checkpoints are hosted outside any package registry; users download them
and either pass them explicitly or register them once with ``tcvom weights add FILE``.

Search order of :func:`find_weights` for a kind (``"gca_tam"``, ``"gca"``, ``"stm"``):

1. an explicit path (``--weights FILE``);
2. the environment variable ``TCVOM_WEIGHTS``: a weight file, or a folder searched for a
   file of that kind;
3. the user data folder ``<data>/weights`` where ``<data>`` is ``$TCVOM_DATA_DIR`` if set,
   else ``$XDG_DATA_HOME/tcvom``, else ``~/.local/share/tcvom`` (``%LOCALAPPDATA%\\tcvom``
   on Windows). Files registered with ``tcvom weights add`` are recorded in
   ``weights.json`` there; the most recently added file of the kind wins.

A place that is configured must be right: a ``--weights`` file or ``$TCVOM_WEIGHTS`` path
that does not exist, a weight file there or in the weights folder that cannot be read, or a
registered file that is gone stops with a :class:`~tcvom.errors.WeightsError` or
:class:`~tcvom.errors.ReadError` (exit code 2) naming the path and where it came from.
:func:`configured_weights` returns ``None`` only when no place holds weights of the kind,
the one case in which ``--method auto`` may fall back to the classical method.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from tcvom.errors import InputError, MissingWeightsError, OutputError, WeightsError, shown
from tcvom.io import atomic
from tcvom.io.hashing import file_sha256
from tcvom.models.bases import MATTING_KINDS
from tcvom.weights import checkpoints

ENV_WEIGHTS = "TCVOM_WEIGHTS"
ENV_DATA_DIR = "TCVOM_DATA_DIR"
REGISTRY = "weights.json"
WEIGHT_SUFFIXES = (".pth", ".pt", ".ckpt", ".pth.tar")
KINDS = (*MATTING_KINDS, "stm")


def data_dir() -> Path:
    """The tcvom user data folder (not created)."""
    override = os.environ.get(ENV_DATA_DIR)
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    if xdg:
        return Path(xdg).expanduser() / "tcvom"
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "tcvom"
    return Path.home() / ".local" / "share" / "tcvom"


def weights_dir() -> Path:
    """The folder ``tcvom weights add`` copies files into (not created)."""
    return data_dir() / "weights"


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise InputError(f"unknown weight kind {kind!r}; use one of {', '.join(KINDS)}")


def _is_weight_file(path: Path) -> bool:
    """A weight file: not a copy being written (or left by a ``weights add`` killed while
    copying, :func:`tcvom.io.atomic.temporary_name`)."""
    return path.is_file() and path.name.lower().endswith(WEIGHT_SUFFIXES) and atomic.temporary_writer(path) is None


def read_registry(folder: Path | None = None) -> list[dict[str, Any]]:
    """The records of ``weights.json`` in ``folder`` (default :func:`weights_dir`), oldest first."""
    path = (folder or weights_dir()) / REGISTRY
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"the weight registry cannot be read ({exc})", path=path,
                         hint="delete it and add the weights again with 'tcvom weights add'") from exc
    records = data.get("weights", []) if isinstance(data, dict) else []
    return [r for r in records if isinstance(r, dict) and "file" in r and "kind" in r]


def _write_registry(folder: Path, records: list[dict[str, Any]]) -> None:
    atomic.write_text(folder / REGISTRY, json.dumps({"weights": records}, indent=1))


def _search_folder(folder: Path, kind: str, origin: str) -> Path | None:
    """A file of ``kind`` in ``folder``: the newest registered one, else the first weight file
    of that kind. Every unregistered weight file is identified, so an unreadable one stops
    the search whatever its name (it may be the file meant)."""
    for record in reversed(read_registry(folder)):
        if record["kind"] != kind:
            continue
        if not isinstance(record["file"], str) or Path(record["file"]).name != record["file"] or "\\" in record["file"]:
            raise WeightsError(
                f"{folder / REGISTRY} registers {checkpoints.kind_name(kind)} weights as {record['file']!r}, which "
                "is not a file in that folder (the registry was edited by hand?)",
                path=folder / REGISTRY,
                hint="register the file again with 'tcvom weights add FILE', or remove its record from "
                     f"{REGISTRY}",
            )
        candidate = folder / record["file"]
        if not candidate.is_file():
            raise WeightsError(
                f"{folder / REGISTRY} registers {checkpoints.kind_name(kind)} weights in {record['file']}, "
                f"which is gone from {origin}",
                path=candidate,
                hint="register the file again with 'tcvom weights add FILE', or forget it with "
                     f"'tcvom weights remove {shlex.quote(record['file'])}'",
            )
        recorded = record.get("sha256")
        if isinstance(recorded, str) and file_sha256(candidate) != recorded:
            raise WeightsError(  # replaced on disk: it may hold another network, which would run as this kind
                f"{folder / REGISTRY} registers {record['file']} as {checkpoints.kind_name(kind)} weights with "
                f"SHA-256 {recorded[:12]}..., and the file now holds other bytes ({file_sha256(candidate)[:12]}...)",
                path=candidate,
                hint=f"register what it holds now with 'tcvom weights add {candidate}', or put the registered file "
                     "back",
            )
        return candidate
    registered = {r["file"] for r in read_registry(folder)}
    found = None
    for candidate in sorted(p for p in folder.iterdir() if _is_weight_file(p) and p.name not in registered):
        if _kind_of(candidate, origin) == kind and found is None:
            found = candidate
    return found


def _kind_of(path: Path, origin: str) -> str:
    """The kind of a configured weight file; a file that cannot be read is an error that
    names where it was configured."""
    try:
        return checkpoints.kind_of(path)
    except InputError as exc:
        raise type(exc)(
            f"the weight file found through {origin} cannot be used: {exc.message}",
            path=path,
            hint=exc.hint or "replace or remove the file",
        ) from exc


def search_locations() -> list[Path]:
    """The places :func:`find_weights` searches after an explicit path, in order."""
    env = os.environ.get(ENV_WEIGHTS)
    return ([Path(env).expanduser()] if env else []) + [weights_dir()]


#: The flags of the command that runs (``stm``, ``matting``), where they are not run's.
_FLAGS: ContextVar[dict[str, str] | None] = ContextVar("tcvom_weights_flags", default=None)


@contextmanager
def flags_named(*, stm: str, matting: str) -> Iterator[None]:
    """Advice given while the block runs names the weight files by these flags (``tcvom
    eval`` takes the STM's as ``--stm-weights`` and the matting network's as ``--weights``)."""
    token = _FLAGS.set({"stm": stm, "matting": matting})
    try:
        yield
    finally:
        _FLAGS.reset(token)


def weights_flag(kind: str | None = None, *, named: bool = False) -> str:
    """The flag that names a weight file of ``kind`` on the command line, with a FILE
    placeholder (``named``: the file is named already, the flag alone): ``tcvom run`` takes
    the matting network's as ``--matting-weights`` (its ``--weights`` is the STM's);
    another command's names are set with :func:`flags_named`."""
    value = "" if named else " FILE"
    flags = _FLAGS.get()
    if flags is not None:
        return flags["stm" if kind is None or kind == "stm" else "matting"] + value
    if kind is None or kind == "stm":
        return f"--weights{value}"
    return f"--matting-weights{value} (`tcvom matte`: --weights{value})"


def search_order(kind: str | None = None) -> list[str]:
    """Human-readable places :func:`find_weights` looks in for ``kind``, in order."""
    env = os.environ.get(ENV_WEIGHTS)
    return [
        weights_flag(kind),
        f"${ENV_WEIGHTS} ({env if env else 'not set'})",
        f"{weights_dir()} (files added with 'tcvom weights add')",
    ]


def find_weights(kind: str, explicit: str | Path | None = None) -> Path:
    """The weight file to use for ``kind`` (``"gca_tam"``, ``"gca"`` or ``"stm"``).

    Raises:
        MissingWeightsError: no place holds weights of the kind (exit code 3; the message
            lists the search order).
        WeightsError / ReadError: a configured path is missing or unreadable (exit code 2;
            see :func:`configured_weights`).
    """
    found = configured_weights(kind, explicit)
    if found is None:
        raise MissingWeightsError(
            f"no {checkpoints.kind_name(kind)} weights found; looked in: {'; '.join(search_order(kind))}",
            hint=f"download the released checkpoint and run 'tcvom weights add FILE', or pass {weights_flag(kind)}",
        )
    return found


def configured_weights(kind: str, explicit: str | Path | None = None) -> Path | None:
    """The weight file of ``kind`` that the configuration names, or ``None`` when no place
    configures weights of that kind (``$TCVOM_WEIGHTS`` unset or holding only other kinds,
    and nothing of the kind in the weights folder).

    Raises:
        WeightsError / ReadError (exit code 2): ``explicit`` or ``$TCVOM_WEIGHTS`` names a
            path that does not exist, ``$TCVOM_WEIGHTS`` names a file that is no tcvom
            checkpoint, a weight file in a searched folder cannot be read, or a registered
            file is gone. The message names the path and where it came from.
    """
    _check_kind(kind)
    if explicit is not None:
        from tcvom.io.sequence import path_text

        path = Path(path_text(explicit, "the weight file", hint="give the path of a .pth file")).expanduser()
        if path.is_dir():
            raise WeightsError(f"a weight file was asked for, and this is a folder; {checkpoints.kind_name(kind)} "
                               "weights are one .pth file", path=path,
                               hint=f"name the file inside it, or set ${ENV_WEIGHTS} to the folder to search it")
        if not path.is_file():
            raise WeightsError("the weight file asked for does not exist", path=path,
                               hint="check the path given on the command line (--weights, --stm-weights, "
                                    "--matting-weights) or in the host's weights field")
        return path
    env = os.environ.get(ENV_WEIGHTS)
    if env:
        path = Path(env).expanduser()
        origin = f"${ENV_WEIGHTS}"
        if path.is_file():
            # A single file serves only its own kind (one variable may hold GCA+TAM weights
            # while STM weights are registered in the data folder).
            found_kind = _kind_of(path, origin)
            if found_kind == kind:
                return path
            if found_kind == "unknown":
                raise WeightsError(f"${ENV_WEIGHTS} names a file that is not a tcvom checkpoint (matting or STM)",
                                   path=path, hint="tcvom info --weights FILE shows what it holds")
        elif path.is_dir():
            found = _search_folder(path, kind, f"the ${ENV_WEIGHTS} folder {path}")
            if found is not None:
                return found
        else:
            raise WeightsError(f"${ENV_WEIGHTS} names a path that does not exist", path=path,
                               hint=f"set {ENV_WEIGHTS} to a weight file or a folder of them, or unset it")
    folder = weights_dir()
    if folder.is_dir():
        return _search_folder(folder, kind, f"the weights folder {folder}")
    return None


def _plain_name(name: str) -> bool:
    """A name weights are stored under in :func:`weights_dir`: a file of that folder, not
    its registry, a hidden file (a copy being written) or a path elsewhere."""
    return bool(name.strip()) and name not in (".", "..", REGISTRY) and Path(name).name == name \
        and "\\" not in name and not name.startswith(".") and name == name.strip()


def add_weights(path: str | Path, *, name: str | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Check that ``path`` loads into a tcvom network, copy it atomically into
    :func:`weights_dir` and record it. Returns the record (file, kind, sha256, ...).

    Raises:
        WeightsError: the file is not a recognised network or does not load.
        InputError: a different file of that name is already registered (unless ``overwrite``).
    """
    from tcvom.errors import check_flag
    from tcvom.io.sequence import path_text

    check_flag(overwrite, "overwrite")  # "no" replaced the registered file
    source = Path(path_text(path, "the weight file", "give the downloaded .pth file")).expanduser()
    if name is not None and not isinstance(name, str):
        raise InputError(f"name must be a file name (text), not {shown(name)}")
    if name is not None and not _plain_name(name):
        raise InputError(f"--name {name!r} is not a file name tcvom can store weights under", path=source,
                         hint=f"give a plain file name (no folder, not {REGISTRY}, not starting with a dot or a space), "
                         "e.g. --name gca_tam_v2.pth")
    info = checkpoints.describe(source)
    if info["kind"] == "unknown":
        raise WeightsError("the file is not a tcvom checkpoint (a matting base with or without the TAM, or STM)",
                           path=source,
                           hint="tcvom info --weights FILE shows what it holds")
    if info["loads"] is False:
        raise WeightsError(f"the file does not load: {info['problem']}", path=source)
    folder = weights_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the weights folder ({exc.strerror})", path=folder,
                          hint=f"set ${ENV_DATA_DIR} to a folder you can write") from exc
    atomic.remove_dead_temporaries(folder)  # a copy left by a 'weights add' that was killed
    target = folder / (name or source.name)
    records = read_registry(folder)
    if target.exists() and not overwrite and file_sha256(target) != info["sha256"]:
        raise InputError("a different weight file of this name is already registered", path=target,
                         hint="pass --name to register it under another name, or --overwrite")
    try:
        if not (target.exists() and target.samefile(source)):
            with atomic.atomic_output(target) as tmp:
                shutil.copyfile(source, tmp)
                if file_sha256(tmp, remember=False) != info["sha256"]:
                    raise OutputError("the copy differs from the source (disk full or file changing?)", path=target)
        record = {
            "file": target.name,
            "kind": info["kind"],
            "sha256": info["sha256"],
            "tensors": info["tensors"],
            "parameters": info["parameters"],
            "source": str(source.resolve()),
            "added": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        records = [r for r in records if r["file"] != target.name] + [record]
        _write_registry(folder, records)
    except OSError as exc:  # a read-only or full data folder: said of the folder, not of a temporary
        raise OutputError(f"cannot add {source.name} to the weights folder {folder} ({exc.strerror or exc})",
                          path=source, hint=atomic.FULL_HINT if exc.errno in atomic.FULL_ERRNOS else
                          f"make the folder writable, or set ${ENV_DATA_DIR} to a folder you can write") from exc
    return {**record, "path": str(target)}


def list_weights() -> list[dict[str, Any]]:
    """Registered weights (newest last) with ``path`` and ``present`` (the file still exists)."""
    folder = weights_dir()
    return [{**r, "path": str(folder / r["file"]), "present": (folder / r["file"]).is_file()} for r in read_registry(folder)]


def remove_weights(name: str) -> dict[str, Any]:
    """Take the weights stored as ``name`` (a file name as :func:`list_weights` shows it) out
    of :func:`weights_dir`: the file is deleted and its records dropped, so neither a search
    nor ``--method auto`` finds it again. The file goes first: a registry written without it
    while the file stayed would leave it found as an unregistered file of its kind.
    Returns the last record of the name (``kind`` None for an unregistered file) with
    ``path`` and ``deleted`` (whether a file was there).

    Raises:
        InputError: no weights are stored under ``name``, or it is no plain file name.
        OutputError: the file or the registry cannot be changed.
    """
    folder = weights_dir()
    if not isinstance(name, str) or not _plain_name(name):
        raise InputError(f"{name!r} is not the name of a weight file in the weights folder {folder}",
                         hint="give a file name as 'tcvom weights list' shows it (no folder)")
    records = read_registry(folder) if folder.is_dir() else []
    mine = [r for r in records if r["file"] == name]
    target = folder / name
    if not mine and not _is_weight_file(target):
        stored = ", ".join(sorted({r["file"] for r in records})) or "none"
        raise InputError(f"no weights are stored as {name} in the weights folder {folder} (stored: {stored})",
                         hint="'tcvom weights list' shows the stored weights")
    kind = mine[-1]["kind"] if mine else _kind_or_none(target)
    try:
        deleted = target.is_file()
        target.unlink(missing_ok=True)
        if mine:
            _write_registry(folder, [r for r in records if r["file"] != name])
    except OSError as exc:
        raise OutputError(f"cannot remove {name} from the weights folder {folder} ({exc.strerror or exc})",
                          path=target, hint="make the folder writable") from exc
    return {**(mine[-1] if mine else {"file": name}), "kind": kind, "path": str(target), "deleted": deleted}


def _kind_or_none(path: Path) -> str | None:
    """The kind of an unregistered weight file, None where it cannot be read (it goes anyway)."""
    try:
        return checkpoints.kind_of(path)
    except InputError:
        return None
