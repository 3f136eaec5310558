"""build_addon.py: manifest validation and the zip's layout (needs no bpy)."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
import build_addon  # noqa: E402

sys.path.remove(str(REPO))


def test_zip_has_the_manifest_at_its_root_and_vendors_hostclient(tmp_path: Path) -> None:
    target = build_addon.build(tmp_path)
    assert target.name == "tcvom-0.1.0.zip"
    with zipfile.ZipFile(target) as archive:
        names = set(archive.namelist())
        assert {"blender_manifest.toml", "__init__.py", "operators.py", "nodes.py", "hostclient.py"} <= names
        assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
        assert archive.read("hostclient.py") == (REPO / "core" / "tcvom" / "hosts" / "client.py").read_bytes()
    assert build_addon.build(tmp_path).read_bytes() == target.read_bytes(), "the build is reproducible"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.replace('id = "tcvom"', 'id = "tc-vom"'), "Python identifier"),
        (lambda t: t.replace('version = "0.1.0"', 'version = "1.0"'), "semantic version"),
        (lambda t: t.replace('blender_version_min = "4.2.0"', 'blender_version_min = "4.1.0"'), "4.2.0"),
        (lambda t: t.replace("SPDX:MIT", "MIT"), "SPDX"),
        (lambda t: t.replace('maintainer = "tcvom developers"\n', ""), "maintainer"),
        (lambda t: t + "\n[[broken", "TOML"),
        (lambda t: t.replace('files = "', 'files = "' + "x" * 60), "at most 64 characters"),
        (lambda t: t.replace('cache"', 'cache!"'), "closing bracket"),
    ],
)
def test_manifest_rules(tmp_path: Path, change, message: str) -> None:
    good = (REPO / "blender_addon" / "blender_manifest.toml").read_text()
    assert build_addon.validate_manifest(REPO / "blender_addon" / "blender_manifest.toml")["id"] == "tcvom"
    bad = tmp_path / "blender_manifest.toml"
    bad.write_text(change(good))
    with pytest.raises(build_addon.ManifestError, match=message):
        build_addon.validate_manifest(bad)


def test_the_add_on_and_the_package_have_one_version(tmp_path: Path, monkeypatch) -> None:
    """Packaging QA: the version was written in three places and nothing checked them: a
    bump in one built an add-on that said another. pyproject.toml reads tcvom.__version__;
    a manifest that disagrees is refused."""
    import tomllib

    __version__ = build_addon.package_version()  # (the Blender tests' Python has no tcvom to import)
    assert tomllib.loads((REPO / "blender_addon" / "blender_manifest.toml").read_text())["version"] == __version__
    assert tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dynamic"] == ["version"]
    manifest = tmp_path / "blender_addon" / "blender_manifest.toml"
    manifest.parent.mkdir()
    manifest.write_text((REPO / "blender_addon" / "blender_manifest.toml").read_text().replace(
        f'version = "{__version__}"', 'version = "9.9.9"'))
    monkeypatch.setattr(build_addon, "ADDON", manifest.parent)
    with pytest.raises(build_addon.ManifestError, match=f"version 9.9.9 is not tcvom's {__version__}"):
        build_addon.build(tmp_path / "dist")


def test_an_unwritable_out_is_one_line(tmp_path: Path, capsys) -> None:
    """Packaging QA: `build_addon.py --out /dev/null/x` ended in a traceback."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert build_addon.main(["--out", str(blocker / "dist")]) == 2
    assert f"build_addon: {blocker / 'dist'}: Not a directory" in capsys.readouterr().err


def test_the_nuke_plugin_says_the_package_version() -> None:
    """Packaging QA: the Nuke plugin's version was written by hand and nothing compared it
    with tcvom's (a bumped tcvom installed a plugin saying the old one)."""
    import re

    text = (REPO / "nuke_plugin" / "tcvom_nuke" / "__init__.py").read_text()
    found = re.search(r'^__version__ = "([^"]+)"$', text, re.M)
    assert found is not None and found.group(1) == build_addon.package_version()


def test_an_add_on_folder_without_its_host_client_says_how_to_build_it(tmp_path: Path) -> None:
    """Packaging QA: Blender's own `extension build` zipped the folder without hostclient.py;
    the add-on installed and failed to enable on a bare "No module named ...hostclient"."""
    import importlib
    import shutil

    pytest.importorskip("bpy")
    shutil.copytree(REPO / "blender_addon", tmp_path / "tcvom_unbuilt", ignore=shutil.ignore_patterns("__pycache__"))
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(ImportError, match=r"lacks hostclient\.py .*`python build_addon\.py`") as caught:
            importlib.import_module("tcvom_unbuilt")
        # Packaging QA: Blender 5.0's addon_utils.enable reads the error's name (ex.name + "."):
        # without one, enabling the zip failed on Blender's TypeError, not this message
        assert caught.value.name == "tcvom_unbuilt"
    finally:
        sys.path.remove(str(tmp_path))


def test_build_on_an_older_python_says_which_it_needs(tmp_path: Path) -> None:
    """Packaging QA: on Python 3.10 the script stopped on a traceback (no tomllib)."""
    import glob
    import os
    import subprocess

    older = glob.glob(os.path.expanduser("~/.pyenv/versions/3.[0-9].*/bin/python3.[0-9]")) + glob.glob(
        os.path.expanduser("~/.pyenv/versions/3.10.*/bin/python3.10"))
    older = [exe for exe in older if tuple(map(int, Path(exe).name.removeprefix("python").split("."))) >= (3, 7)]
    if not older:
        pytest.skip("no Python 3.7-3.10 here")
    newest = max(older, key=lambda exe: tuple(map(int, Path(exe).name.removeprefix("python").split("."))))
    proc = subprocess.run([newest, str(REPO / "build_addon.py"), "--out", str(tmp_path)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "needs Python 3.11 or later" in proc.stderr and not list(tmp_path.iterdir())
