"""``tcvom nuke``: install the Nuke plugin; export GCA+TAM as TorchScript for Nuke's Inference node.

- ``tcvom nuke install DIR``: copies ``nuke_plugin/`` to DIR with tcvom's host-client logic
  (``tcvom.hosts.client``) beside it, so DIR works on ``NUKE_PATH`` without tcvom importable
  from Nuke's Python (:func:`install_plugin`).
- ``tcvom nuke torchscript --weights F --out model.pt --width W --height H``: the
  CatFileCreator form of the matting network (:func:`tcvom.export.torchscript.export_torchscript`).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

from tcvom import __version__
from tcvom.cli import common
from tcvom.errors import InputError, OutputError
from tcvom.io.atomic import move_into_place
from tcvom.io.hashing import file_sha256

NAME = "nuke"
HELP = "Nuke: install the TCVOM_Matte plugin, or export the matting network as TorchScript for the Inference node"

#: What `install` copies from the plugin folder (no caches, no tests).
_PLUGIN_FILES = ("init.py", "menu.py", "tcvom_nuke", "nodes", "gizmos", "icons")
#: The files of an install a user may have edited (Nuke runs them), whose hashes as
#: installed the install's record keeps: an upgrade never replaces an edited one.
_EDITABLE = ("init.py", "menu.py")
#: The record an install leaves beside the plugin (JSON: tcvom's version, _EDITABLE's hashes).
_RECORD = "tcvom_install.json"
#: Files a desktop leaves in any folder (hidden ones, starting with a dot, are not counted either).
_SYSTEM_FILES = ("thumbs.db", "desktop.ini", "icon\r")


def plugin_source() -> Path:
    """The ``nuke_plugin`` folder of this tcvom: a checkout's, or the copy a wheel installs
    into ``share/tcvom`` of its environment (pyproject's data-files)."""
    from tcvom.installed import shared_folder

    found = shared_folder("nuke_plugin", "tcvom_nuke/__init__.py")
    if found is not None:
        return found
    raise InputError(
        "the Nuke plugin files are not part of this tcvom installation",
        hint="install tcvom again (pip install PATH-TO-tcvom, or pip install -e . in its repository): both "
        "install the plugin's files",
    )


def install_plugin(dest: str | Path, *, overwrite: bool = False) -> Path:
    """Copy the plugin to ``dest`` with ``tcvom_nuke/hostclient.py`` vendored from
    :mod:`tcvom.hosts.client`. Returns ``dest`` (absolute); put it on ``NUKE_PATH``.

    ``overwrite`` replaces an earlier install of the plugin there (its files only: stale
    ones go); a folder that holds anything else (``~/.nuke`` with the user's own init.py
    and menu.py) is refused, whether or not ``overwrite`` is given, and so is an install
    whose init.py or menu.py was edited since (:func:`_check_replaceable`) and ``~/.nuke``
    itself, even empty.
    """
    from tcvom.errors import check_flag
    from tcvom.io.sequence import path_text

    check_flag(overwrite, "overwrite")  # "no" replaced an earlier install
    source = plugin_source()
    dest = Path(path_text(dest, "the install folder", "give the folder to install the plugin into")).absolute()
    if dest.resolve() == (Path.home() / ".nuke").resolve():
        raise InputError("the folder is Nuke's own home folder (Nuke runs the init.py and menu.py there, which are "
                         "yours, and keeps its own files there)", path=dest,
                         hint="install into a folder of its own, e.g. ~/.nuke/tcvom, and add that to NUKE_PATH "
                              "(or nuke.pluginAddPath in your init.py)")
    earlier = False
    if dest.exists() and any(dest.iterdir()):
        earlier = (dest / "tcvom_nuke" / "__init__.py").is_file()
        if earlier and (dest.resolve() == source.resolve() or not (
                (dest / "tcvom_nuke" / "hostclient.py").is_file() or (dest / _RECORD).is_file())):
            # An install vendors the host client; a checkout's source finds it (its core/): a copy
            # there would shadow the checkout's own, stale after its next update. A wheel's copy
            # (share/tcvom) finds none: a copy there would outlive the wheel's next upgrade.
            checkout = (dest.resolve().parent / "core" / "tcvom" / "hosts" / "client.py").is_file()
            own = "install into a folder of its own, e.g. ~/.nuke/tcvom"
            raise InputError("the folder is the plugin's source (the nuke_plugin folder of a tcvom checkout or "
                             "installation), not an install", path=dest,
                             hint=f"add it to NUKE_PATH as it is (it finds tcvom's host code itself), or {own}"
                                  if checkout else f"{own}, and add that to NUKE_PATH (this copy, in the wheel's "
                                  "environment, has no host client of its own: the install adds it)")
        if not earlier:
            raise InputError(
                "the folder holds files that are not a tcvom plugin (the plugin's init.py and menu.py would replace "
                "any there)", path=dest,
                hint="install into a folder of its own, e.g. ~/.nuke/tcvom, and add that to NUKE_PATH "
                     "(or nuke.pluginAddPath in your init.py)")
        if not overwrite:
            raise InputError("the folder holds an earlier install of the plugin", path=dest,
                             hint="pass --overwrite to replace it")
        _check_replaceable(dest, source)
    try:
        dest.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".tcvom-install-", dir=dest))
    except OSError as exc:
        raise InputError(f"cannot create the plugin folder ({exc.strerror})", path=exc.filename or dest,
                         hint="install into a folder you can write to") from exc
    try:
        # The whole plugin is copied beside the old one first, then swapped in name by name
        # (renames in one folder): a failed upgrade leaves the earlier install working.
        _copy_plugin(source, staging / "new")
        _swap_in(staging, dest)
    except (OSError, OutputError) as exc:
        if isinstance(exc, OutputError):
            why, where = exc.message, exc.path or dest
        else:
            why = f"cannot install the plugin ({exc.strerror or exc})"
            where = exc.filename if exc.filename and Path(exc.filename).is_absolute() else dest
        raise InputError(why, path=where,
                         hint="the earlier install there is unchanged; make the folder and its files writable by "
                              "you, or install into another folder" if earlier else
                              "install into a folder you can write to") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    left = [p.name for p in dest.iterdir() if p.name.startswith(".tcvom-")]
    if left:
        print(f"tcvom nuke: could not delete the replaced files in {dest}: {', '.join(sorted(left))} (Nuke ignores "
              "them; delete them when you can)", file=sys.stderr)
    return dest


def _check_replaceable(dest: Path, source: Path) -> None:
    """Refuse an upgrade of the install in ``dest`` that would lose what is not the plugin's:
    other files beside it (Nuke's home folder, a studio's plugin folder), or an init.py or
    menu.py edited since it was installed (the install's record says; an install older than
    the record is compared with this version's files, which have not changed since)."""
    foreign = sorted(p.name for p in dest.iterdir() if p.name not in (*_PLUGIN_FILES, _RECORD, "__pycache__")
                     and not p.name.startswith(".") and p.name.lower() not in _SYSTEM_FILES)
    if foreign:
        raise InputError("the folder holds files that are not the plugin's beside an earlier install of it: "
                         + ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else ""), path=dest,
                         hint="install into a folder of its own, e.g. ~/.nuke/tcvom, and add that to NUKE_PATH "
                              "(or nuke.pluginAddPath in your init.py)")
    try:
        recorded = json.loads((dest / _RECORD).read_text(encoding="utf-8"))["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        recorded = None
    if not isinstance(recorded, dict):  # no record (or not one of ours): this version's files
        recorded = {name: file_sha256(source / name, remember=False) for name in _EDITABLE if (source / name).is_file()}
    changed = [name for name in _EDITABLE if (dest / name).is_file()
               and file_sha256(dest / name, remember=False) != recorded.get(name)]
    _check_subfolders(dest, source)
    if changed:
        raise InputError(f"{' and '.join(changed)} of the earlier install {'were' if len(changed) > 1 else 'was'} "
                         "changed since tcvom installed it, and --overwrite would lose the change", path=dest / changed[0],
                         hint="move your lines to your own init.py or menu.py (in ~/.nuke), delete the changed file, "
                              "then install again")


def _installed_files(folder: Path) -> dict[str, Path]:
    """The files of the plugin's folders (``tcvom_nuke``, ``gizmos``...) under ``folder``, by
    relative path (caches and hidden files left out; a folder that is a link is left out too:
    an upgrade replaces the link, never what it points to)."""
    found = {}
    for name in _PLUGIN_FILES:
        if (folder / name).is_dir() and not (folder / name).is_symlink():
            for path in (folder / name).rglob("*"):
                parts = path.relative_to(folder).parts
                if (path.is_file() or path.is_symlink()) and "__pycache__" not in parts and path.suffix != ".pyc" \
                        and not any(part.startswith(".") for part in parts) and path.name.lower() not in _SYSTEM_FILES:
                    found["/".join(parts)] = path
    return found


def _check_subfolders(dest: Path, source: Path) -> None:
    """Refuse an upgrade that would delete a file in the plugin's folders which is not the
    plugin's (a studio gizmo in ``gizmos/``) or edit-lose one that is (a ``nodes/`` default
    changed): the install's record holds every file's hash. An install from before that
    record is compared by name with this version's files."""
    try:
        recorded = json.loads((dest / _RECORD).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        recorded = None
    present = _installed_files(dest)
    if isinstance(recorded, dict):
        foreign = sorted(name for name in present if name not in recorded)
        edited = sorted(name for name in present if name in recorded and (  # a link where a file was: not as installed
            present[name].is_symlink() or file_sha256(present[name], remember=False) != recorded[name]))
    else:  # an older install: what this version does not ship, its modules apart (older ones may be stale)
        shipped = set(_installed_files(source)) | {"tcvom_nuke/hostclient.py"}
        foreign = sorted(name for name in present if name not in shipped and not (
            name.startswith("tcvom_nuke/") and name.endswith(".py") and name.count("/") == 1))
        edited = []
    if foreign:
        raise InputError("the plugin's folders hold files that are not the plugin's, which --overwrite would delete: "
                         + ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else ""), path=dest / foreign[0],
                         hint="move them to a folder of your own on NUKE_PATH (a studio gizmo folder), then install "
                              "again")
    if edited:
        raise InputError("files of the earlier install were changed since tcvom installed them, and --overwrite "
                         "would lose the change: " + ", ".join(edited[:5]) + (" ..." if len(edited) > 5 else ""),
                         path=dest / edited[0], hint="keep your changed copy elsewhere (a node default in your own "
                         "menu.py), delete the changed file, then install again")


def _copy_plugin(source: Path, new: Path) -> None:
    """The plugin's files from ``source``, with the host client vendored, into ``new``."""
    new.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "hostclient.py")
    for name in _PLUGIN_FILES:
        src = source / name
        if src.is_dir():
            shutil.copytree(src, new / name, ignore=ignore)
        elif src.is_file():
            shutil.copy2(src, new / name)
    hostclient = importlib.import_module("tcvom.hosts.client")
    shutil.copy2(str(hostclient.__file__), new / "tcvom_nuke" / "hostclient.py")
    (new / _RECORD).write_text(json.dumps({"tcvom": __version__, "sha256": {  # swapped in with the files
        name: file_sha256(new / name, remember=False) for name in _EDITABLE}, "files": {
        name: file_sha256(path, remember=False) for name, path in sorted(_installed_files(new).items())}},
        indent=1) + "\n", encoding="utf-8")


def _swap_in(staging: Path, dest: Path) -> None:
    """Rename ``dest``'s plugin files aside (in ``dest``, so a folder another user owns moves
    too) and move ``staging/new``'s in their place; on any failure put the old ones back.
    Old files that cannot be deleted stay as hidden ``.tcvom-old-*`` entries in ``dest``."""
    def aside(name: str) -> Path:
        return dest / f".tcvom-old-{staging.name.removeprefix('.tcvom-install-')}-{name}"

    def move(source: Path, target: Path) -> None:
        try:
            move_into_place(source, target)
        except OutputError as exc:  # name the plugin file that would not move (the other name is hidden)
            reason = exc.message.rsplit("(", 1)[-1].rstrip(")") if "(" in exc.message else exc.message
            named = target if source.parent == staging / "new" else source
            raise OutputError(f"cannot install the plugin ({reason})", path=named) from exc

    moved: list[str] = []
    placed: list[str] = []
    try:
        for name in (*_PLUGIN_FILES, _RECORD):
            if (dest / name).exists() or (dest / name).is_symlink():
                move(dest / name, aside(name))
                moved.append(name)
        for name in (*_PLUGIN_FILES, _RECORD):
            if (staging / "new" / name).exists():
                move(staging / "new" / name, dest / name)
                placed.append(name)
    except OutputError:
        for name in placed:
            move_into_place(dest / name, staging / "new" / name)
        for name in moved:
            move_into_place(aside(name), dest / name)
        raise
    for name in moved:
        old = aside(name)
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:  # a file, or a link (a development install linking a checkout): the link goes, not its target
            with contextlib.suppress(OSError):
                old.unlink()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="nuke_command", metavar="ACTION", required=True)
    install = sub.add_parser("install", help="copy the plugin (with tcvom's host client) to a folder for NUKE_PATH")
    install.add_argument("dest", type=common.path_given, help="the folder to install into (then add it to NUKE_PATH)")
    install.add_argument("--overwrite", action="store_true", help="replace an earlier install of the plugin there")
    ts = sub.add_parser("torchscript", help="export a matting network with the TAM as TorchScript for CatFileCreator "
                                            "(Nuke's Inference node)")
    ts.add_argument("--weights", required=True,
                    help="matting weights with the TAM (.pth): GCA+TAM, FBA+TAM, DIM+TAM or Index+TAM, told from the keys")
    ts.add_argument("--base", choices=("gca", "fba", "dim", "index"),
                    help="the base the weights must be of (default: whatever the file holds)")
    ts.add_argument("--out", required=True, type=common.path_given, help="the TorchScript file to write (.pt); settings go to the .json beside it")
    ts.add_argument("--width", type=int, required=True, help="plate width in pixels (the model runs at this size only)")
    ts.add_argument("--height", type=int, required=True, help="plate height in pixels")
    ts.add_argument("--device", default="cpu", help="cpu, or cuda for 'Use GPU if available' (the graph keeps its device)")
    ts.add_argument(
        "--srgb-input",
        action="store_true",
        help="the Inference node gets sRGB-encoded RGB (default: scene-linear Rec.709, converted inside the model)",
    )


def main(args: argparse.Namespace) -> int:
    if args.nuke_command == "install":
        dest = install_plugin(args.dest, overwrite=args.overwrite)
        print(f"tcvom: Nuke plugin installed in {dest}; add it to NUKE_PATH", file=sys.stderr)
        return 0
    from tcvom.export.torchscript import export_torchscript

    out = export_torchscript(
        args.weights, args.out, width=args.width, height=args.height, device=args.device,
        linear_input=not args.srgb_input, base=args.base,
    )
    settings = json.loads(out.with_suffix(".json").read_text())
    print(f"tcvom: wrote {out} (CatFileCreator settings in {out.with_suffix('.json')}):", file=sys.stderr)
    for key in ("channelsIn", "channelsOut", "modelId"):
        print(f"  {key}: {settings[key]}", file=sys.stderr)
    return 0
