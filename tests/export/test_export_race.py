"""Two processes building the same cached export at once (issue 21, point 7): the GPUs of
one host share the user cache. Before, both wrote through fixed ``NAME.tmp`` names and one
deleted the manifest the other had written (FileNotFoundError, 3 of 3 tries)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tcvom.export import read_manifest

pytestmark = pytest.mark.slow  # two STM exports' worth of time on a 2-core machine

BUILDER = """
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from conftest import seeded_stm
from tcvom.export import cached_export
model = seeded_stm()
Path(sys.argv[2] + ".ready").touch()
while not Path(sys.argv[2]).parent.joinpath("go").exists():
    time.sleep(0.01)
manifest = cached_export(model, root=sys.argv[1], progress=lambda line: print(line, flush=True))
print("manifest", manifest.path, flush=True)
"""


def test_two_processes_building_one_export_share_it(tmp_path: Path) -> None:
    root = tmp_path / "onnx"
    tests = str(Path(__file__).resolve().parents[1])
    marks = [tmp_path / f"p{i}" for i in range(2)]
    children = [subprocess.Popen([sys.executable, "-c", BUILDER, str(root), str(m), tests],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for m in marks]
    deadline = time.monotonic() + 300
    while not all(Path(f"{m}.ready").exists() for m in marks):
        assert all(c.poll() is None for c in children) and time.monotonic() < deadline
        time.sleep(0.05)
    (tmp_path / "go").touch()  # both start exporting at the same moment
    outputs = [c.communicate(timeout=900) for c in children]
    for child, (_, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err
    exported = [out for out, _ in outputs if any(line.startswith("exporting stm") for line in out.splitlines())]
    assert len(exported) == 1, "exactly one process exports; the other uses its export"
    manifests = {line.split(" ", 1)[1] for out, _ in outputs for line in out.splitlines() if line.startswith("manifest")}
    assert len(manifests) == 1
    manifest = read_manifest(Path(manifests.pop()), "stm")  # verifies every graph's SHA-256
    assert sorted(p.name for p in manifest.folder.iterdir() if ".tcvom-tmp-" in p.name) == []
