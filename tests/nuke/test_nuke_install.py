"""`tcvom nuke install DIR`: the plugin with tcvom's host client vendored, usable by a
Python that has no tcvom (as in Nuke)."""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import shutil
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
    (dest / "tcvom_nuke" / "old_module.py").write_text("stale = True\n")  # of an older version (its record says)
    record = json.loads((dest / "tcvom_install.json").read_text())
    record["files"]["tcvom_nuke/old_module.py"] = hashlib.sha256(b"stale = True\n").hexdigest()
    (dest / "tcvom_install.json").write_text(json.dumps(record))
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


def test_an_upgrade_never_loses_what_is_not_the_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--overwrite replaced a menu.py the user had added a line to, and swapped the plugin in
    a folder that Nuke's own files had joined, without a word (Nuke QA); an empty ~/.nuke was
    accepted as the plugin's folder."""
    dest = tmp_path / "tools"
    assert _run(["install", str(dest)]) == 0
    record = json.loads((dest / "tcvom_install.json").read_text())
    assert record["sha256"]["menu.py"] == hashlib.sha256((dest / "menu.py").read_bytes()).hexdigest()
    with (dest / "menu.py").open("a") as menu:
        menu.write("nuke.pluginAddPath('/studio/tools')  # mine\n")
    with pytest.raises(InputError, match=r"menu\.py of the earlier install was changed since") as error:
        _run(["install", str(dest), "--overwrite"])
    assert error.value.path == str(dest / "menu.py") and "mine" in (dest / "menu.py").read_text()
    (dest / "menu.py").unlink()  # the hint: the change moved elsewhere, the file deleted
    assert _run(["install", str(dest), "--overwrite"]) == 0 and (dest / "menu.py").is_file()
    (dest / "uistate.ini").write_text("x")  # Nuke's own file: this is a home folder
    with pytest.raises(InputError, match=r"not the plugin.s beside an earlier install of it: uistate\.ini"):
        _run(["install", str(dest), "--overwrite"])
    assert (dest / "uistate.ini").read_text() == "x"
    (dest / "uistate.ini").unlink()
    for litter in (".DS_Store", "Thumbs.db"):  # a desktop's files are no one's plugin (code review)
        (dest / litter).write_text("x")
    assert _run(["install", str(dest), "--overwrite"]) == 0
    # files of a studio's own in the plugin's folders, or a node default changed in place: kept
    record = json.loads((dest / "tcvom_install.json").read_text())
    assert record["files"]["tcvom_nuke/hostclient.py"] and record["files"]["gizmos/TCVOM_Inference.gizmo"]
    (dest / "gizmos" / "Studio.gizmo").write_text("Gizmo {}\n")
    with pytest.raises(InputError, match=r"folders hold files that are not the plugin.s, which --overwrite would "
                       r"delete: gizmos/Studio\.gizmo") as error:
        _run(["install", str(dest), "--overwrite"])
    assert error.value.path == str(dest / "gizmos" / "Studio.gizmo") and (dest / "gizmos" / "Studio.gizmo").is_file()
    (dest / "gizmos" / "Studio.gizmo").unlink()
    node = dest / "nodes" / "TCVOM_Matte.nk"
    node.write_text(node.read_text() + "# studio default\n")
    with pytest.raises(InputError, match=r"changed since tcvom installed them.*: nodes/TCVOM_Matte\.nk"):
        _run(["install", str(dest), "--overwrite"])
    assert node.read_text().endswith("# studio default\n")
    node.unlink()
    (dest / "icons" / "Thumbs.db").write_text("x")  # a desktop's file in a folder of the plugin (code review)
    assert _run(["install", str(dest), "--overwrite"]) == 0 and node.is_file()
    (dest / "gizmos" / "TCVOM_Inference.gizmo").unlink()
    (dest / "gizmos" / "TCVOM_Inference.gizmo").symlink_to(tmp_path)  # a link where the plugin's file was
    with pytest.raises(InputError, match=r"changed since tcvom installed them.*gizmos/TCVOM_Inference\.gizmo"):
        _run(["install", str(dest), "--overwrite"])
    (dest / "gizmos" / "TCVOM_Inference.gizmo").unlink()
    assert _run(["install", str(dest), "--overwrite"]) == 0
    # an install older than the record: its init.py compared with this version's
    (dest / "tcvom_install.json").unlink()
    assert _run(["install", str(dest), "--overwrite"]) == 0
    (dest / "tcvom_install.json").unlink()
    (dest / "gizmos" / "Studio.gizmo").write_text("Gizmo {}\n")  # not shipped by this version: not its file
    with pytest.raises(InputError, match=r"not the plugin.s, which --overwrite would delete: gizmos/Studio\.gizmo"):
        _run(["install", str(dest), "--overwrite"])
    (dest / "gizmos" / "Studio.gizmo").unlink()
    (dest / "init.py").write_text((dest / "init.py").read_text() + "# mine\n")
    with pytest.raises(InputError, match=r"init\.py of the earlier install was changed"):
        _run(["install", str(dest), "--overwrite"])
    # ~/.nuke itself, even empty
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home" / ".nuke").mkdir(parents=True)
    with pytest.raises(InputError, match="Nuke's own home folder"):
        _run(["install", str(tmp_path / "home" / ".nuke")])
    assert not list((tmp_path / "home" / ".nuke").iterdir())


def test_a_failed_upgrade_leaves_the_earlier_install_working(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An --overwrite that fails midway (here: the new icons cannot be moved in) puts every
    old file back: the plugin on NUKE_PATH keeps working, and the error names the folder."""
    dest = tmp_path / "shared" / "tcvom"
    assert _run(["install", str(dest)]) == 0
    (dest / "tcvom_nuke" / "marker.py").write_text("old = True\n")  # a module of the earlier version
    record = json.loads((dest / "tcvom_install.json").read_text())
    record["files"]["tcvom_nuke/marker.py"] = hashlib.sha256(b"old = True\n").hexdigest()
    (dest / "tcvom_install.json").write_text(json.dumps(record))
    before = sorted(str(p.relative_to(dest)) for p in dest.rglob("*"))
    real_replace = os.replace

    def replace(src: object, dst: object) -> None:
        if Path(str(dst)) == dest / "icons" and Path(str(src)).parent.name == "new":  # not when put back
            raise PermissionError(13, "Permission denied", str(dst))
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(InputError, match=r"cannot install the plugin \(Permission denied\)") as error:
        _run(["install", str(dest), "--overwrite"])
    assert error.value.path == str(dest / "icons") and "unchanged" in str(error.value.hint)
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*")) == before  # nothing new, nothing lost, no staging
    assert (dest / "tcvom_nuke" / "marker.py").is_file()
    monkeypatch.setattr(os, "replace", real_replace)
    assert _run(["install", str(dest), "--overwrite"]) == 0
    assert not (dest / "tcvom_nuke" / "marker.py").exists() and (dest / "icons" / "tcvom.png").is_file()
    assert not [p for p in dest.iterdir() if p.name.startswith(".")]


def test_an_upgrade_replaces_a_linked_module_without_touching_its_target(tmp_path: Path) -> None:
    """A development install whose tcvom_nuke links a checkout: the link stayed behind as a
    hidden .tcvom-old-* entry with a "could not delete" warning."""
    dest = tmp_path / "tcvom"
    assert _run(["install", str(dest)]) == 0
    checkout = tmp_path / "checkout_tcvom_nuke"
    (dest / "tcvom_nuke").rename(checkout)
    (dest / "tcvom_nuke").symlink_to(checkout)
    assert _run(["install", str(dest), "--overwrite"]) == 0
    assert not (dest / "tcvom_nuke").is_symlink() and (dest / "tcvom_nuke" / "matte.py").is_file()
    assert not [p for p in dest.iterdir() if p.name.startswith(".")]
    assert (checkout / "matte.py").is_file(), "the link's target is not the install's to delete"


def test_a_wheel_carries_the_plugin_and_the_licence(tmp_path: Path) -> None:
    """Packaging QA: a wheel install had no plugin files, and `tcvom nuke install` told the
    user to copy nuke_plugin/, after which the plugin asked for `tcvom nuke install`. The
    wheel now carries every plugin file (pyproject's data-files) and the licence."""
    import shutil
    import zipfile

    repo = Path(__file__).resolve().parents[2]
    source = tmp_path / "src"  # a copy: setuptools builds in the source folder (build/, egg-info)
    source.mkdir()
    for name in ("pyproject.toml", "MANIFEST.in", "README.md", "LICENSE"):
        shutil.copy2(repo / name, source / name)
    for name in ("core", "engines", "nuke_plugin", "configs"):
        shutil.copytree(repo / name, source / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "--no-index", "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True,
                           check=False)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("tcvom-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    share = [n for n in names if "/data/share/tcvom/nuke_plugin/" in n]
    shipped = sorted(n.split("/data/share/tcvom/nuke_plugin/", 1)[1] for n in share)
    plugin = repo / "nuke_plugin"
    expected = sorted(p.relative_to(plugin).as_posix() for p in plugin.rglob("*")
                      if p.is_file() and "__pycache__" not in p.parts and p.name != "hostclient.py")
    assert shipped == expected
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    # Installed under another prefix (as --user or a system pip puts data files in another
    # share/ than the environment's): the command finds the plugin where the installer put it.
    prefix = tmp_path / "prefix"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                                "--ignore-installed",  # else pip uninstalls the running environment's tcvom
                                "--prefix", str(prefix), str(wheel)], capture_output=True, text=True, check=False)
    assert installed.returncode == 0, installed.stderr
    (site,) = prefix.glob("lib/python3*/site-packages")
    dest = tmp_path / "nuke_tools"
    done = subprocess.run([sys.executable, "-m", "tcvom", "nuke", "install", str(dest)], capture_output=True,
                          text=True, check=False, env={**os.environ, "PYTHONPATH": str(site)}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (dest / "tcvom_nuke" / "hostclient.py").is_file() and (dest / "menu.py").is_file()
    # Packaging QA: the training configs docs/training.md names were in no wheel, and a missing
    # one was said without where tcvom's own are
    configs = sorted(n.split("/data/share/tcvom/configs/", 1)[1] for n in names if "/data/share/tcvom/configs/" in n)
    assert configs == sorted(p.name for p in (repo / "configs").glob("*.toml"))
    missing = subprocess.run([sys.executable, "-m", "tcvom", "train", "gca-tam", "--config", "configs/gca_tam_main.toml"],
                             capture_output=True, text=True, check=False, env={**os.environ, "PYTHONPATH": str(site)},
                             cwd=tmp_path)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr, missing.stderr
    assert str(prefix / "share" / "tcvom" / "configs" / "gca_tam_main.toml") in missing.stderr, missing.stderr
    # `pip install --target DIR` (a studio's shared folder): DIR/share holds the plugin (packaging QA: "not part of
    # this tcvom installation", its RECORD's paths being relative to pip's temporary folder)
    target = tmp_path / "target"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target",
                                str(target), str(wheel)], capture_output=True, text=True, check=False)
    assert installed.returncode == 0, installed.stderr
    done = subprocess.run([sys.executable, "-m", "tcvom", "nuke", "install", str(tmp_path / "from_target")],
                          capture_output=True, text=True, check=False, env={**os.environ, "PYTHONPATH": str(target)},
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "from_target" / "tcvom_nuke" / "nukenode.py").is_file()
    # code review: an install into the --target folder's parent (DIR/../nuke_plugin) was taken
    # for a checkout's plugin source: its upgrade was refused, and other installs copied it
    for flags in ([], ["--overwrite"]):
        done = subprocess.run([sys.executable, "-m", "tcvom", "nuke", "install", str(tmp_path / "nuke_plugin"),
                               *flags], capture_output=True, text=True, check=False,
                              env={**os.environ, "PYTHONPATH": str(target)}, cwd=tmp_path)
        assert done.returncode == 0, done.stderr


def _python39() -> str | None:
    """A Python 3.9 interpreter (Nuke 14's Python): on PATH, or installed by pyenv."""
    candidates = [shutil.which("python3.9"), *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.9*/bin/python3.9")))]
    for exe in filter(None, candidates):
        probe = subprocess.run([exe, "-c", "import sys; print(sys.version_info[:2] == (3, 9))"], capture_output=True,
                               text=True)
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            return exe
    return None


_JOB_ON_39 = """
import json, sys
from tcvom_nuke import matte
hc = matte.hostclient
tcvom, plate, out, bad, good, first, last = sys.argv[1:8]
frames = list(range(int(first), int(last) + 1))
for key, folder in ((bad, out + "/bad"), (good, out + "/good")):
    spec = hc.RunSpec(plate=plate, out=folder, keyframes={int(first): key, int(last): good.replace(first, last)},
                      method="classical", input_colorspace="Linear Rec.709 (sRGB)", shot_range=first + "-" + last)
    job = hc.Job(matte.build_args([tcvom], spec, matte.NodeSettings(method="classical")), out=folder).start()
    outcome = matte.run_job(job, frames, lambda p, t: None, lambda: False, poll_interval=0.05, keyframes=spec.keyframes)
    print(json.dumps({"state": outcome.state, "error": matte.error_text(outcome.error) if outcome.error else "",
                      "files": len(outcome.files or {}), "review": matte.review_values(folder)}))
"""


def test_the_installed_plugin_runs_jobs_on_python_3_9(tmp_path: Path, small_example, tcvom_exe: str) -> None:
    """Nuke 14 runs Python 3.9: a run that fails with tcvom's advice and one that succeeds,
    driven by the installed plugin and its vendored host client on a real 3.9 (parsing the
    files as 3.9 does not catch a call 3.9 lacks, such as ``zip(strict=True)``)."""
    python39 = _python39()
    if python39 is None:
        pytest.skip("no Python 3.9 interpreter")
    dest = tmp_path / "nuke_tools"
    assert _run(["install", str(dest)]) == 0
    bad = tmp_path / "key.1001.png"
    bad.write_bytes(b"not a png")
    good = small_example.keyframes.replace("####", str(small_example.first))
    proc = subprocess.run([python39, "-S", "-c", _JOB_ON_39, tcvom_exe, small_example.plate, str(tmp_path / "out"),
                           str(bad), good, str(small_example.first), str(small_example.last)],
                          cwd=dest, capture_output=True, text=True, env={"PATH": os.environ.get("PATH", "")},
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    failed, done = (json.loads(line) for line in proc.stdout.splitlines())
    assert failed["state"] == "failed" and "cannot read the image" in failed["error"], failed
    assert "unexpected" not in failed["error"] and "Fix:" in failed["error"], failed
    assert done["state"] == "done" and done["files"] == small_example.last - small_example.first + 1, done
    assert done["review"]["doubtful"], done


def test_install_refuses_the_plugins_source_folder(tmp_path: Path) -> None:
    """Nuke QA: `tcvom nuke install --overwrite REPO/nuke_plugin` took a checkout's plugin for
    an earlier install and vendored a host client there, which then shadowed the checkout's
    own (stale after its next pull)."""
    from tcvom.cli.cmd_nuke import plugin_source

    checkout = tmp_path / "repo" / "nuke_plugin"
    shutil.copytree(plugin_source(), checkout, ignore=shutil.ignore_patterns("hostclient.py", "tcvom_install.json",
                                                                             "__pycache__"))
    (tmp_path / "repo" / "core" / "tcvom" / "hosts").mkdir(parents=True)
    shutil.copy2(Path(plugin_source()).parent / "core" / "tcvom" / "hosts" / "client.py",
                 tmp_path / "repo" / "core" / "tcvom" / "hosts" / "client.py")
    # Packaging QA: a wheel's copy (share/tcvom/nuke_plugin) finds no host client of its own,
    # yet the hint said to put it on NUKE_PATH as it is
    wheel = tmp_path / "venv" / "share" / "tcvom" / "nuke_plugin"
    shutil.copytree(checkout, wheel)
    for target in (checkout, plugin_source(), wheel):
        for flags in ([], ["--overwrite"]):
            with pytest.raises(InputError, match="the folder is the plugin's source") as error:
                _run(["install", str(target), *flags])
            assert ("NUKE_PATH as it is" in str(error.value.hint)) == (target != wheel)
            assert "a folder of its own" in str(error.value.hint)
    assert not (checkout / "tcvom_nuke" / "hostclient.py").exists() and not (checkout / "tcvom_install.json").exists()
    assert not (wheel / "tcvom_nuke" / "hostclient.py").exists()
