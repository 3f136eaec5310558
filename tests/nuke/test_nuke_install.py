"""`tcvom nuke install DIR`: the plugin with tcvom's host client vendored, usable by a
Python that has no tcvom (as in Nuke)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tcvom.cli import cmd_nuke
from tcvom.errors import InputError
from tcvom.hosts import client as hostclient


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    cmd_nuke.add_arguments(parser)
    return cmd_nuke.main(parser.parse_args(argv))


def test_install_vendors_hostclient_and_imports_without_tcvom(tmp_path: Path) -> None:
    dest = tmp_path / "nuke_tools"
    assert _run(["install", str(dest)]) == 0
    for name in ("init.py", "menu.py", "tcvom_nuke/matte.py", "tcvom_nuke/nukenode.py", "nodes/TCVOM_Matte.nk",
                 "gizmos/TCVOM_Inference.gizmo", "icons/tcvom.png"):
        assert (dest / name).is_file(), name
    assert (dest / "tcvom_nuke" / "hostclient.py").read_bytes() == Path(hostclient.__file__).read_bytes()
    assert not list(dest.rglob("__pycache__"))
    # -S: no site-packages (no tcvom, no numpy), as in Nuke's own Python
    code = "import tcvom_nuke.matte as m; print(m.hostclient.__file__)"
    proc = subprocess.run([sys.executable, "-S", "-c", code], cwd=dest, capture_output=True, text=True,
                          env={"PATH": os.environ.get("PATH", "")})
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()) == dest / "tcvom_nuke" / "hostclient.py"
    with pytest.raises(InputError, match="earlier install"):
        _run(["install", str(dest)])
    (dest / "tcvom_nuke" / "old_module.py").write_text("stale = True\n")  # of an older version
    assert _run(["install", str(dest), "--overwrite"]) == 0
    assert not (dest / "tcvom_nuke" / "old_module.py").exists() and (dest / "tcvom_nuke" / "matte.py").is_file()


def test_install_never_replaces_a_users_own_nuke_folder(tmp_path: Path) -> None:
    """~/.nuke holds the user's init.py and menu.py: the plugin's would replace them."""
    home = tmp_path / ".nuke"
    home.mkdir()
    (home / "init.py").write_text("# mine\n")
    for flags in ([], ["--overwrite"]):
        with pytest.raises(InputError, match="not a tcvom plugin") as error:
            _run(["install", str(home), *flags])
        assert "folder of its own" in str(error.value.hint)
    assert (home / "init.py").read_text() == "# mine\n" and not (home / "tcvom_nuke").exists()
