"""One mechanism each (issue 21): atomic writes, hashing and trimap one-hot encoding live
in one module each; these checks read the source and name any copy written again."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The host client is standard-library only: it is copied into the Blender add-on and the
# Nuke plug-in, which cannot import tcvom, so it keeps its own copies.
VENDORED = ("hosts/client.py",)
SOURCES = (ROOT / "core" / "tcvom", ROOT / "engines")


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for folder in SOURCES:
        for path in sorted(folder.rglob("*.py")):
            if "engines" in path.relative_to(ROOT).parts[2:3]:
                continue  # core/tcvom/engines links to engines/: read once
            yield str(path.relative_to(ROOT)), ast.parse(path.read_text(encoding="utf-8"))


def _call_names(node: ast.AST) -> set[str]:
    names = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            func = sub.func
            if isinstance(func, ast.Attribute):
                base = func.value.id if isinstance(func.value, ast.Name) else ""
                names.add(f"{base}.{func.attr}" if base else f".{func.attr}")
            elif isinstance(func, ast.Name):
                names.add(func.id)
    return names


def _functions(tree: ast.Module) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def _functions_calling(home: str, wrong: Callable[[set[str]], bool]) -> list[str]:
    """``file:line name`` of each function outside ``home`` (and the vendored client)
    whose calls ``wrong`` flags."""
    return [f"{name}:{fn.lineno} {fn.name}" for name, tree in _modules() if not name.endswith((home, *VENDORED))
            for fn in _functions(tree) if wrong(_call_names(fn))]


def test_files_are_renamed_into_place_only_by_tcvom_io_atomic() -> None:
    renames = {"os.replace", "os.rename", "tempfile.mkstemp", "tmp.replace", "tmp.rename"}
    found = _functions_calling("io/atomic.py", lambda calls: bool(calls & renames))
    assert found == [], "write through tcvom.io.atomic instead: " + ", ".join(found)


def test_files_and_state_dicts_are_hashed_only_by_tcvom_io_hashing() -> None:
    found = _functions_calling(
        "io/hashing.py", lambda calls: "hashlib.sha256" in calls and bool(calls & {".read", ".state_dict", ".items"})
    )
    assert found == [], "use tcvom.io.hashing (file_sha256 / state_sha256) instead: " + ", ".join(found)


def test_the_file_io_layer_imports_no_job_layer() -> None:
    """tcvom.io (images, movies, sequences, colour, atomic writes, hashing) is what the jobs
    are built on: it imports none of them, not even inside a function (tcvom.io.sources
    imported tcvom.farm.records for one helper)."""
    above = ("tcvom.farm", "tcvom.pipeline", "tcvom.review", "tcvom.cli", "tcvom.hosts", "tcvom.train")
    found = [f"{name}:{node.lineno} {node.module}" for name, tree in _modules() if name.startswith("core/tcvom/io/")
             for node in ast.walk(tree)
             if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(above)]
    found += [f"{name}:{node.lineno} {alias.name}" for name, tree in _modules() if name.startswith("core/tcvom/io/")
              for node in ast.walk(tree) if isinstance(node, ast.Import)
              for alias in node.names if alias.name.startswith(above)]
    assert found == [], "move what tcvom.io needs into tcvom.io: " + ", ".join(found)


def test_trimaps_are_one_hot_encoded_only_by_tcvom_io_trimap() -> None:
    found = []
    for name, tree in _modules():
        if name.endswith("io/trimap.py"):
            continue
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "stack"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "np"  # trimaps are numpy; network graphs encode in torch
                and node.args
                and isinstance(node.args[0], ast.List | ast.ListComp)
                and any(isinstance(sub, ast.Compare) for sub in ast.walk(node.args[0]))
            ):
                found.append(f"{name}:{node.lineno}")
    assert found == [], "use tcvom.io.trimap.one_hot / one_hot_labels instead: " + ", ".join(found)


def test_frame_readers_are_one_protocol_in_tcvom_io_sources() -> None:
    found = []
    for name, tree in _modules():
        if name.endswith("io/sources.py"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any(
                isinstance(base, ast.Name) and base.id == "Protocol" for base in node.bases
            ):
                methods = {item.name for item in node.body if isinstance(item, ast.FunctionDef)}
                if "read" in methods:
                    found.append(f"{name}:{node.lineno} {node.name}")
    assert found == [], "use tcvom.io.sources.FrameReader / FrameSource / TrimapSource instead: " + ", ".join(found)


def test_every_public_function_and_class_is_used_somewhere() -> None:
    """Code nothing calls is deleted (issue 21): each public top-level function or class of
    core/ and engines/ is named somewhere besides its definition (the package, the hosts,
    benchmarks or tests)."""
    import re
    from collections import Counter

    readers = [p for d in ("core/tcvom", "engines", "tests", "benchmarks", "blender_addon", "nuke_plugin")
               for p in (ROOT / d).rglob("*.py") if "core/tcvom/engines" not in p.relative_to(ROOT).as_posix()]
    words = Counter(word for p in readers for word in re.findall(r"\w+", p.read_text(encoding="utf-8")))
    unused = []
    for name, tree in _modules():
        for node in tree.body:
            public = isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("_")
            if public and words[node.name] <= 1:
                unused.append(f"{name}:{node.lineno} {node.name}")
    assert unused == [], "nothing uses these; delete them: " + ", ".join(unused)


def test_the_two_copies_of_the_temporaries_writer_name_stay_the_same() -> None:
    """A temporary's writer (host and process-id namespace) is named by tcvom.io.atomic and
    matched by the hosts' cleanup after a cancel. tcvom.io imports no host module and the
    vendored host client imports nothing of tcvom, so the rule is written twice: the two
    bodies must stay the same (they differed once: a host name with a dot was never matched)."""
    import inspect

    from tcvom.hosts import client
    from tcvom.io import atomic

    def body(function: object) -> str:
        tree = ast.parse(inspect.getsource(function))  # type: ignore[arg-type]
        definition = tree.body[0]
        assert isinstance(definition, ast.FunctionDef)
        statements = definition.body[1:] if isinstance(definition.body[0], ast.Expr) else definition.body
        return "\n".join(ast.unparse(s) for s in statements)

    assert body(atomic._host) == body(client.writer_host)
