"""A stand-in for Nuke's ``nuke`` module: only the documented behaviour the plugin uses.

- nodes and knobs: ``Node.Class/name/fullName/knob/__getitem__/input/setInput/
  firstFrame/lastFrame``, ``Group.node`` and ``with group:``, knob ``value/getValue/
  setValue``, File knob ``fromUserText("path first-last")`` (sets file and range);
- a Read's output frames (``firstFrame``/``lastFrame``, the frames it renders) moved from
  its file numbers by its ``frame_mode`` ``offset`` / ``start at`` and ``frame`` knobs;
  the Root's ``proxy`` knob;
- ``nodePaste(path)`` (the pasted nodes become selected), ``selectedNode``, ``toNode``, ``allNodes``,
  ``root()`` (``name()`` is the script path, ``"Root"`` when unsaved), ``delete``,
  ``nodes.<Class>(**knobs)``, ``filename(node)`` (the file knob, frame pattern kept);
- ``execute(write, first, last, incr)``: a Write renders its input's frames (raw, the
  channels asked for) to its file pattern; Read nodes read their files, other test nodes
  supply ``pixels(frame)``;
- ``ProgressTask`` (``setProgress``, ``setMessage``, ``isCancelled``; tests cancel it),
  ``executeInMainThread`` (queued; tests run the queue as Nuke's event loop would),
  ``message`` (recorded), ``env["gui"]``, ``menu(...).addMenu/addCommand``, ``pluginAddPath``;
- ``frame()`` / ``frame(f)``: the current frame, which the viewer shows (read / set).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

import nkscript
import numpy as np

env: dict[str, Any] = {"gui": True}
messages: list[str] = []
main_thread_queue: list[tuple[Callable[..., Any], tuple, dict]] = []
progress_tasks: list[ProgressTask] = []
plugin_paths: list[str] = []
menus: dict[str, Menu] = {}
executed: list[tuple[str, int, int]] = []
_frame = [1]
_lock = threading.Lock()

_BOOL_KNOBS = {"raw", "disable", "premultiply"}
_INT_KNOBS = {"first", "last", "origfirst", "origlast", "inputs", "number"}
_USER_TYPES = {3: "int", 6: "bool"}
# Built-in knobs (name, kind, default) of the classes the plugin touches.
_BUILTIN: dict[str, tuple[tuple[str, str, Any], ...]] = {
    "Read": (("file", "str", ""), ("file_type", "str", ""), ("first", "int", 1), ("last", "int", 1),
             ("origfirst", "int", 1), ("origlast", "int", 1), ("raw", "bool", False), ("on_error", "str", "error"),
             ("colorspace", "str", "default"), ("frame_mode", "str", "expression"), ("frame", "str", "")),
    "Write": (("file", "str", ""), ("file_type", "str", ""), ("channels", "str", "rgb"), ("raw", "bool", False)),
}


class Knob:
    def __init__(self, name: str, value: Any = "", kind: str = "str") -> None:
        self._name = name
        self.kind = kind
        self._value = _convert(value, kind)
        self.node: Node | None = None

    def name(self) -> str:
        return self._name

    def value(self) -> Any:
        return self._value

    def getValue(self) -> Any:
        return self._value

    def setValue(self, value: Any) -> bool:
        self._value = _convert(value, self.kind)
        return True

    def fromUserText(self, text: str) -> None:
        """File knob: ``path first-last`` sets the file and the node's frame range."""
        match = re.fullmatch(r"(.*?)\s+(-?\d+)-(-?\d+)", text.strip())
        if match and self.node is not None:
            self._value = match.group(1)
            for name, value in (("first", match.group(2)), ("last", match.group(3))):
                self.node.knob_or_add(name, "int").setValue(int(value))
        else:
            self._value = text.strip()


def _convert(value: Any, kind: str) -> Any:
    if kind == "bool":
        return value if isinstance(value, bool) else str(value).lower() in ("true", "1")
    if kind == "int":
        return int(value) if str(value).strip().lstrip("-").isdigit() else value
    return value


class Node:
    def __init__(self, cls: str, knobs: dict[str, Any] | None = None) -> None:
        self._cls = cls
        self._knobs: dict[str, Knob] = {}
        self._inputs: list[Node | None] = []
        self.parent: Group | None = None
        self.selected = False
        self.pixels: Callable[[int], np.ndarray] | None = None  # test sources
        self.frame_range = (1, 1)
        for name, kind, default in (("name", "str", ""), ("disable", "bool", False), *_BUILTIN.get(cls, ())):
            self.knob_or_add(name, kind).setValue(default)
        for name, value in (knobs or {}).items():
            self.knob_or_add(name, "bool" if name in _BOOL_KNOBS else "int" if name in _INT_KNOBS else "str").setValue(value)

    def knob_or_add(self, name: str, kind: str = "str") -> Knob:
        if name not in self._knobs:
            knob = Knob(name, "", kind)
            knob.node = self
            self._knobs[name] = knob
        return self._knobs[name]

    def Class(self) -> str:
        return self._cls

    def name(self) -> str:
        knob = self._knobs.get("name")
        return knob.value() if knob else ""

    def fullName(self) -> str:
        if self.parent is not None and self.parent is not _root:
            return self.parent.fullName() + "." + self.name()
        return self.name()

    def knob(self, name: str) -> Knob | None:
        return self._knobs.get(name)

    def knobs(self) -> dict[str, Knob]:
        return dict(self._knobs)

    def __getitem__(self, name: str) -> Knob:
        knob = self._knobs.get(name)
        if knob is None:
            raise NameError(f"knob {name} does not exist")
        return knob

    def input(self, i: int) -> Node | None:
        return self._inputs[i] if i < len(self._inputs) else None

    def setInput(self, i: int, node: Node | None) -> bool:
        while len(self._inputs) <= i:
            self._inputs.append(None)
        self._inputs[i] = node
        return True

    def inputs(self) -> int:
        return len(self._inputs)

    def firstFrame(self) -> int:
        knob = self._knobs.get("first")
        if knob is not None and isinstance(knob.value(), int):
            return int(knob.value()) + _read_shift(self)
        return self.frame_range[0]

    def lastFrame(self) -> int:
        knob = self._knobs.get("last")
        if knob is not None and isinstance(knob.value(), int):
            return int(knob.value()) + _read_shift(self)
        return self.frame_range[1]

    def setSelected(self, selected: bool) -> None:
        self.selected = selected


class Group(Node):
    def __init__(self, cls: str = "Group", knobs: dict[str, Any] | None = None) -> None:
        super().__init__(cls, knobs)
        self.children: list[Node] = []

    def node(self, name: str) -> Node | None:
        for child in self.children:
            if child.name() == name:
                return child
        return None

    def nodes(self) -> list[Node]:
        return list(self.children)

    def __enter__(self) -> Group:
        _context.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _context.pop()


class Root(Group):
    def __init__(self) -> None:
        super().__init__("Root", {"name": "Root"})
        self.knob_or_add("proxy", "bool").setValue(False)
        self.script_path = ""

    def name(self) -> str:
        return self.script_path or "Root"


_root = Root()
_context: list[Group] = []


def _current() -> Group:
    return _context[-1] if _context else _root


def reset(script_path: str = "", gui: bool = True) -> Root:
    """Test helper: a new empty session."""
    global _root
    _root = Root()
    _root.script_path = script_path
    _context.clear()
    env["gui"] = gui
    messages.clear()
    main_thread_queue.clear()
    progress_tasks.clear()
    plugin_paths.clear()
    menus.clear()
    executed.clear()
    _frame[0] = 1
    return _root


def frame(f: int | None = None) -> int:
    """Return or set the current frame number (the viewer moves to it)."""
    if f is not None:
        _frame[0] = int(f)
    return _frame[0]


def root() -> Root:
    return _root


def add(node: Node, parent: Group | None = None) -> Node:
    """Test helper (what creating a node in the DAG does)."""
    parent = parent or _current()
    node.parent = parent
    parent.children.append(node)
    taken = {n.name() for n in parent.children if n is not node}
    name = node.name() or f"{node.Class()}1"
    base = re.sub(r"\d+$", "", name)
    number = 1
    while name in taken:  # as Nuke does: a pasted or new node gets a free name
        number += 1
        name = f"{base}{number}"
    node.knob_or_add("name").setValue(name)
    return node


class _Nodes:
    def __getattr__(self, cls: str) -> Callable[..., Node]:
        def create(**knobs: Any) -> Node:
            return add(Node(cls, knobs))

        return create


nodes = _Nodes()


def allNodes(filter: str | None = None, group: Group | None = None, recurseGroups: bool = False) -> list[Node]:
    """The nodes of ``group`` (the current one), of class ``filter`` when given; with
    ``recurseGroups`` those inside its groups too."""
    found: list[Node] = []
    for child in (group or _current()).children:
        if filter is None or child.Class() == filter:
            found.append(child)
        if recurseGroups and isinstance(child, Group):
            found.extend(allNodes(filter, child, True))
    return found


def toNode(name: str) -> Node | None:
    group: Group = _root
    parts = name.split(".")
    for i, part in enumerate(parts):
        found = group.node(part)
        if found is None:
            return None
        if i == len(parts) - 1:
            return found
        if not isinstance(found, Group):
            return None
        group = found
    return None


def delete(node: Node) -> None:
    if node.parent is not None:
        node.parent.children.remove(node)


def selectedNode() -> Node:
    for node in _current().children:
        if node.selected:
            return node
    raise ValueError("no node selected")


def _build(parsed: nkscript.Node, parent: Group) -> Node:
    node: Node = Group(parsed.cls) if parsed.cls in ("Group", "Gizmo") else Node(parsed.cls)
    for user in parsed.user_knobs:
        kind = _USER_TYPES.get(user.type, "str")
        value = user.options.get("T", "") if user.type in (22, 26) else ""
        if user.type == 4:  # Enumeration_Knob: value() is the selected item, the first by default
            value = (user.options.get("M", "").split() or [""])[0]
        node.knob_or_add(user.name, kind).setValue(value)
    for name, word in parsed.knobs.items():
        kind = node.knob(name).kind if node.knob(name) else ("bool" if name in _BOOL_KNOBS else "int" if name in _INT_KNOBS else "str")
        node.knob_or_add(name, kind).setValue(word.text)
    add(node, parent)
    if isinstance(node, Group):
        built = {id(child): _build(child, node) for child in parsed.children}
        for source in parsed.children:
            for i, up in enumerate(source.inputs):
                if up is not None:
                    built[id(source)].setInput(i, built[id(up)])
    return node


def nodePaste(path: str) -> Node:
    """Paste the nodes of a script file into the current group; they become selected."""
    with open(path, encoding="utf-8") as handle:
        script = nkscript.parse(handle.read())
    for node in _current().children:
        node.setSelected(False)
    last = None
    for parsed in script.nodes:
        last = _build(parsed, _current())
        last.setSelected(True)
    if last is None:
        raise RuntimeError(f"{path} holds no nodes")
    return last


def filename(node: Node) -> str | None:
    knob = node.knob("file")
    return knob.value() if knob is not None and knob.value() else None


def _frame_path(pattern: str, frame: int) -> str:
    pattern = re.sub(r"%0(\d+)d", lambda m: "#" * int(m.group(1)), pattern)
    return re.sub(r"#+", lambda m: f"{frame:0{len(m.group())}d}", pattern)


def _read_shift(node: Node) -> int:
    """How far a Read's frame knob moves its output frames from its file numbers: ``offset``
    adds the frame knob, ``start at`` makes it the first output frame (``expression`` with
    a formula is not modelled: 0)."""
    if node.Class() != "Read":
        return 0
    mode, value = str(node["frame_mode"].value()), str(node["frame"].value()).strip()
    if not value.lstrip("-").isdigit():
        return 0
    if mode == "offset":
        return int(value)
    if mode == "start at":
        return int(value) - int(node["first"].value())
    return 0


def _pixels(node: Node, frame: int) -> np.ndarray:
    if node.pixels is not None:
        return node.pixels(frame)
    if node.Class() == "Read":
        import OpenImageIO as oiio

        data = oiio.ImageInput.open(_frame_path(node["file"].value(), frame - _read_shift(node)))
        if data is None:
            raise RuntimeError(f"{node.name()}: cannot read frame {frame}")
        try:
            return data.read_image(format="float")
        finally:
            data.close()
    raise RuntimeError(f"the stand-in cannot render a {node.Class()} node")


def execute(node: Node, first: int, last: int, incr: int = 1) -> None:
    """Render a Write node's input for frames first..last."""
    import OpenImageIO as oiio

    if node.Class() != "Write":
        raise RuntimeError(f"{node.name()} cannot be executed")
    source = node.input(0)
    if source is None:
        raise RuntimeError(f"{node.name()}: no input")
    channels = {"rgb": 3, "rgba": 4, "alpha": 1}[str(node["channels"].value())]
    for frame in range(first, last + 1, incr):
        pixels = np.asarray(_pixels(source, frame), dtype=np.float32)
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        if pixels.shape[2] < channels:
            pad = np.zeros((*pixels.shape[:2], channels - pixels.shape[2]), np.float32)
            pixels = np.concatenate([pixels, pad], axis=2)
        pixels = np.ascontiguousarray(pixels[:, :, :channels])
        path = _frame_path(node["file"].value(), frame)
        spec = oiio.ImageSpec(pixels.shape[1], pixels.shape[0], channels, oiio.HALF)
        out = oiio.ImageOutput.create(path)
        out.open(path, spec)
        out.write_image(pixels)
        out.close()
        executed.append((node.name(), frame, channels))


class ProgressTask:
    def __init__(self, name: str, maximum: int = 100, flags: int = 0) -> None:
        self.title = name
        self.progress: list[int] = []
        self.texts: list[str] = []
        self.cancel_requested = False
        with _lock:
            progress_tasks.append(self)

    def setProgress(self, i: int) -> None:
        self.progress.append(int(i))

    def setMessage(self, s: str) -> None:
        self.texts.append(s)

    def isCancelled(self) -> bool:
        return self.cancel_requested


def executeInMainThread(call: Callable[..., Any], args: tuple | Any = (), kwargs: dict | None = None) -> None:
    if not isinstance(args, tuple):
        args = (args,)
    with _lock:
        main_thread_queue.append((call, args, kwargs or {}))


def run_main_thread_queue() -> int:
    """Test helper: what Nuke's event loop does with executeInMainThread calls."""
    count = 0
    while True:
        with _lock:
            if not main_thread_queue:
                return count
            call, args, kwargs = main_thread_queue.pop(0)
        call(*args, **kwargs)
        count += 1


def message(prompt: str) -> None:
    messages.append(prompt)


def thisNode() -> Node:
    raise RuntimeError("thisNode() is only set while a knob's script runs")


class Menu:
    def __init__(self, name: str) -> None:
        self.name = name
        self.items: dict[str, Any] = {}
        self.icon = ""

    def addMenu(self, name: str, icon: str = "", **_: Any) -> Menu:
        sub = self.items.setdefault(name, Menu(name))
        sub.icon = icon
        return sub

    def addCommand(self, name: str, command: Any = None, shortcut: str = "", icon: str = "", **_: Any) -> None:
        self.items[name] = {"command": command, "icon": icon}


def menu(name: str) -> Menu:
    return menus.setdefault(name, Menu(name))


def pluginAddPath(path: str) -> None:
    plugin_paths.append(path)
