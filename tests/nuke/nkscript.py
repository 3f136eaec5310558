"""A small reader of Nuke's script text (.nk, .gizmo), enough to check the plugin's nodes.

Nuke scripts are TCL-like: ``Class {`` knob lines ``}`` per node, a node stack (a node
with ``inputs N`` takes the top N entries, input 0 being the topmost; ``set N [stack 0]``
names the top, ``push $N`` pushes it again, ``push 0`` pushes nothing), ``Group``/``Gizmo``
bodies up to ``end_group``. Values are kept as text: ``{...}`` groups without their outer
braces, ``"..."`` strings unescaped. Nothing is evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "[": "[", "]": "]", "{": "{", "}": "}", "$": "$"}


@dataclass
class Word:
    text: str
    kind: str  # "bare", "brace" or "quote"


@dataclass
class UserKnob:
    """One ``addUserKnob {TYPE NAME [l LABEL] [t TOOLTIP] [T VALUE] [M {ITEMS}] [+FLAG]}``."""

    type: int
    name: str
    options: dict[str, str] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)


@dataclass
class Node:
    cls: str
    knobs: dict[str, Word] = field(default_factory=dict)
    user_knobs: list[UserKnob] = field(default_factory=list)
    inputs: list[Node | None] = field(default_factory=list)
    children: list[Node] = field(default_factory=list)

    @property
    def name(self) -> str:
        word = self.knobs.get("name")
        return word.text if word else ""

    def child(self, name: str) -> Node:
        for node in self.children:
            if node.name == name:
                return node
        raise KeyError(f"no node {name!r} in {self.name or self.cls}")

    def user_knob(self, name: str) -> UserKnob:
        for knob in self.user_knobs:
            if knob.name == name:
                return knob
        raise KeyError(f"no user knob {name!r} on {self.name or self.cls}")


@dataclass
class Script:
    nodes: list[Node]
    layers: dict[str, list[str]]
    commands: list[list[Word]]


def split_commands(text: str) -> list[list[Word]]:
    """Words of each command (a newline or ``;`` outside braces and quotes ends one)."""
    commands: list[list[Word]] = []
    words: list[Word] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in "\n;":
            if words:
                commands.append(words)
                words = []
            i += 1
        elif c in " \t\r":
            i += 1
        elif c == "#" and not words:
            while i < n and text[i] != "\n":
                i += 1
        elif c == "{":
            depth, j = 1, i + 1
            while j < n and depth:
                if text[j] == "\\":
                    j += 2
                    continue
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            if depth:
                raise ValueError(f"unbalanced brace at character {i}")
            words.append(Word(text[i + 1 : j - 1], "brace"))
            i = j
        elif c == '"':
            out, j = [], i + 1
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    out.append(_ESCAPES.get(text[j + 1], "\\" + text[j + 1]))
                    j += 2
                    continue
                out.append(text[j])
                j += 1
            if j >= n:
                raise ValueError(f"unterminated string at character {i}")
            words.append(Word("".join(out), "quote"))
            i = j + 1
        else:
            j, depth = i, 0
            while j < n and (depth or text[j] not in " \t\r\n;"):
                depth += {"[": 1, "]": -1}.get(text[j], 0)
                j += 1
            words.append(Word(text[i:j], "bare"))
            i = j
    if words:
        commands.append(words)
    return commands


def parse_user_knob(spec: str) -> UserKnob:
    words = [w.text for w in split_commands(spec.replace("\n", " "))[0]]
    knob = UserKnob(int(words[0]), words[1] if len(words) > 1 else "")
    i = 2
    while i < len(words):
        word = words[i]
        if word[:1] in "+-" and len(word) > 1 and not word[1:].isdigit():
            knob.flags.append(word)
            i += 1
        elif i + 1 < len(words):
            knob.options[word] = words[i + 1]
            i += 2
        else:
            i += 1
    return knob


def _node(cls: str, body: str) -> Node:
    node = Node(cls)
    for words in split_commands(body):
        key = words[0].text
        value = words[1] if len(words) > 1 else Word("", "bare")
        if key == "addUserKnob":
            node.user_knobs.append(parse_user_knob(value.text))
        else:
            node.knobs[key] = value
    return node


def parse(text: str) -> Script:
    """Parse script text into its top-level nodes (groups hold their children)."""
    commands = split_commands(text)
    top: list[Node] = []
    layers: dict[str, list[str]] = {}
    frames: list[tuple[list[Node], list[Node | None], dict[str, Node | None], Node | None]] = [(top, [], {}, None)]
    for words in commands:
        nodes, stack, labels, _group = frames[-1]
        head = words[0].text
        if head == "set" and len(words) >= 3 and words[2].text.startswith("[stack"):
            labels[words[1].text] = stack[-1] if stack else None
        elif head == "push":
            ref = words[1].text
            stack.append(None if ref == "0" else labels.get(ref.lstrip("$")))
        elif head == "add_layer":
            names = words[1].text.split()
            layers[names[0]] = names[1:]
        elif head == "end_group":
            frames.pop()
            if not frames:
                raise ValueError("end_group without a group")
        elif len(words) == 2 and words[1].kind == "brace" and head[:1].isalpha():
            node = _node(head, words[1].text)
            count = int(node.knobs["inputs"].text) if "inputs" in node.knobs else 1
            node.inputs = [stack.pop() if stack else None for _ in range(count)]
            stack.append(node)
            nodes.append(node)
            if head in ("Group", "Gizmo"):
                frames.append((node.children, [], {}, node))
        # anything else (version, define_window_layout...) is not about nodes
    if len(frames) != 1:
        raise ValueError("a Group or Gizmo is not closed with end_group")
    return Script(top, layers, commands)


def upstream(node: Node) -> list[Node]:
    """Every node ``node`` depends on, depth first."""
    seen: list[Node] = []
    todo = [n for n in node.inputs if n is not None]
    while todo:
        n = todo.pop()
        if any(n is s for s in seen):
            continue
        seen.append(n)
        todo.extend(i for i in n.inputs if i is not None)
    return seen
