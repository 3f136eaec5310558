"""Build the Blender extension zip: ``python build_addon.py`` -> ``dist/tcvom-<version>.zip``.

The zip holds ``blender_addon/`` (manifest at the zip's root, as Blender's
``extension build`` makes it) plus ``core/tcvom/hosts/client.py`` vendored as
``hostclient.py``, so the add-on needs no tcvom installed inside Blender. The manifest is
validated first (the fields and rules of Blender's extension manifest schema 1.0.0).
"""

from __future__ import annotations

import argparse
import re
import sys
import zipfile

try:
    import tomllib
except ModuleNotFoundError:  # Python before 3.11 (a traceback was all it said)
    sys.exit(f"build_addon.py needs Python 3.11 or later (tomllib); this is Python {sys.version.split()[0]}: "
             "run it with the python of tcvom's environment (.venv/bin/python build_addon.py, or "
             ".venv\\Scripts\\python build_addon.py on Windows)")
from pathlib import Path

ROOT = Path(__file__).resolve().parent
ADDON = ROOT / "blender_addon"
VENDORED = {ROOT / "core" / "tcvom" / "hosts" / "client.py": "hostclient.py"}
REQUIRED = (
    "schema_version",
    "id",
    "version",
    "name",
    "tagline",
    "maintainer",
    "type",
    "blender_version_min",
    "license",
)
_SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$")
_EXCLUDE = ("__pycache__", ".pyc", ".zip")
_FIXED_TIME = (2024, 1, 1, 0, 0, 0)  # reproducible zips


class ManifestError(ValueError):
    """The manifest breaks a rule of Blender's extension schema."""


def validate_manifest(path: Path) -> dict:
    """Parse and check ``blender_manifest.toml``; returns it, raises ManifestError."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ManifestError(f"{path}: cannot be read as TOML: {exc}") from exc
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise ManifestError(f"{path}: missing field(s) {', '.join(missing)}")
    if data["schema_version"] != "1.0.0":
        raise ManifestError(f"{path}: schema_version must be 1.0.0, not {data['schema_version']!r}")
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", data["id"]) or data["id"].startswith("_"):
        raise ManifestError(f"{path}: id {data['id']!r} must be a Python identifier")
    for key in ("version", "blender_version_min") + (("blender_version_max",) if "blender_version_max" in data else ()):
        if not _SEMVER.match(str(data[key])):
            raise ManifestError(f"{path}: {key} {data[key]!r} is not a semantic version (1.2.3)")
    if not _terse(data["tagline"]):
        raise ManifestError(f"{path}: the tagline must be at most 64 characters and end in a letter, digit or "
                            "closing bracket")
    if data["type"] not in ("add-on", "theme"):
        raise ManifestError(f"{path}: type must be add-on or theme")
    if not data["license"] or not all(str(x).startswith("SPDX:") for x in data["license"]):
        raise ManifestError(f"{path}: license entries must be SPDX identifiers (SPDX:MIT)")
    minimum = tuple(int(x) for x in str(data["blender_version_min"]).split(".")[:3])
    if minimum < (4, 2, 0):
        raise ManifestError(f"{path}: extensions need blender_version_min 4.2.0 or later")
    permissions = data.get("permissions", {})
    if not isinstance(permissions, dict) or not all(isinstance(v, str) and _terse(v) for v in permissions.values()):
        raise ManifestError(f"{path}: each permission needs a reason: a string of at most 64 characters ending in a "
                            "letter, digit or closing bracket")
    return data


def _terse(text: str) -> bool:
    """Blender's rule for a tagline or a permission's reason (its strict check, which
    ``blender --command extension validate`` and the extensions site apply)."""
    return 0 < len(text) <= 64 and text == text.strip() and (text[-1].isalnum() or text[-1] in ")]}")


def _files() -> list[tuple[Path, str]]:
    files = []
    for path in sorted(ADDON.rglob("*")):
        rel = path.relative_to(ADDON).as_posix()
        if path.is_file() and not any(part in rel for part in _EXCLUDE):
            files.append((path, rel))
    for source, name in VENDORED.items():
        if (ADDON / name).exists():
            raise ManifestError(f"{ADDON / name} would shadow the vendored {source}; remove it")
        files.append((source, name))
    return files


def package_version(init: Path = ROOT / "core" / "tcvom" / "__init__.py") -> str:
    """tcvom's version, the one place it is written (pyproject.toml reads it too)."""
    match = re.search(r'^__version__ = "([^"]+)"', init.read_text(encoding="utf-8"), re.M)
    if match is None:
        raise ManifestError(f"{init}: no __version__ line")
    return match[1]


def build(out_dir: Path = ROOT / "dist") -> Path:
    """Validate the manifest and write the extension zip; returns its path."""
    manifest = validate_manifest(ADDON / "blender_manifest.toml")
    if manifest["version"] != package_version():
        raise ManifestError(f"{ADDON / 'blender_manifest.toml'}: version {manifest['version']} is not tcvom's "
                            f"{package_version()} (core/tcvom/__init__.py): the add-on drives that tcvom")
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{manifest['id']}-{manifest['version']}.zip"
    tmp = target.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for source, name in _files():
            info = zipfile.ZipInfo(name, _FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, source.read_bytes())
    tmp.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="folder for the zip (default dist/)")
    args = parser.parse_args(argv)
    try:
        target = build(args.out)
    except ManifestError as exc:
        print(f"build_addon: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # an --out that cannot be made or written, a file of the add-on missing (a traceback)
        print(f"build_addon: {exc.filename or args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
