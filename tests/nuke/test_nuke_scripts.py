"""The Group (.nk) and gizmo text, checked by parsing it: knobs, connections, and that
nothing needs Python (or the plugin) at render time."""

from __future__ import annotations

import re
from pathlib import Path

import nkscript
import pytest

from tcvom.export.torchscript import NUKE_CHANNELS_IN, NUKE_CHANNELS_OUT

PLUGIN = Path(__file__).resolve().parents[2] / "nuke_plugin"
MATTE = PLUGIN / "nodes" / "TCVOM_Matte.nk"
GIZMO = PLUGIN / "gizmos" / "TCVOM_Inference.gizmo"
# Knob callbacks that would run Python when a script loads or renders.
_CALLBACK_KNOBS = ("knobChanged", "onCreate", "onDestroy", "beforeRender", "afterRender", "beforeFrameRender",
                   "afterFrameRender", "autolabel", "updateUI", "onScriptLoad")


def _group(path: Path, cls: str) -> nkscript.Node:
    script = nkscript.parse(path.read_text())
    groups = [n for n in script.nodes if n.cls == cls]
    assert len(groups) == 1
    return groups[0]


def _no_python_at_render_time(group: nkscript.Node) -> None:
    for node in [group, *group.children]:
        for name, word in node.knobs.items():
            assert name not in _CALLBACK_KNOBS, f"{node.name}: {name}"
            assert "[python" not in word.text and "python {" not in word.text, f"{node.name}.{name} runs Python"
    for knob in group.user_knobs:
        if knob.type != 22:  # only buttons (PyScript_Knob) hold Python, run on press
            assert "nuke." not in knob.options.get("T", ""), knob.name


def test_the_parser_follows_the_node_stack() -> None:
    text = "Input {\n inputs 0\n name A\n number 1\n}\nInput {\n inputs 0\n name B\n}\nset N1 [stack 0]\n" \
           "Blur {\n name blur\n}\npush $N1\nMerge2 {\n inputs 2\n name m\n}\npush 0\nGrade {\n name g\n}\n"
    nodes = {n.name: n for n in nkscript.parse(text).nodes}
    assert nodes["blur"].inputs == [nodes["B"]]
    assert nodes["m"].inputs[0] is nodes["B"] and nodes["m"].inputs[1] is nodes["blur"]
    assert nodes["g"].inputs == [None]
    with pytest.raises(ValueError):
        nkscript.parse("Group {\n name g\n}\nBlur {\n}\n")


def test_matte_group_knobs() -> None:
    group = _group(MATTE, "Group")
    names = [k.name for k in group.user_knobs]
    for knob in ("keyframes", "method", "backend", "weights", "matting_weights", "device", "working_space",
                 "trimap_channel", "cache_dir", "frame_range", "premultiply", "compute", "status", "executable"):
        assert knob in names, knob
    assert group.user_knob("method").options["M"].split() == ["auto", "classical", "tcvom"]
    assert group.user_knob("backend").options["M"].split() == ["torch", "onnxruntime", "tensorrt"]
    assert group.user_knob("premultiply").type == 6 and group.knobs["premultiply"].text == "true"
    assert group.knobs["working_space"].text == "Linear Rec.709 (sRGB)"
    compute = group.user_knob("compute")
    assert compute.type == 22 and "tcvom_nuke.nukenode" in compute.options["T"]
    assert "compute(nuke.thisNode())" in compute.options["T"]
    assert group.name.startswith("TCVOM_"), "nodes are name-prefixed"
    # the review: doubtful and suggested frames, buttons that move the viewer there
    for knob in ("doubtful", "suggested"):
        assert group.user_knob(knob).type == 1 and "+DISABLED" in group.user_knob(knob).flags
    for knob, call in (("prev_doubtful", "jump(nuke.thisNode(), -1)"), ("next_doubtful", "jump(nuke.thisNode(), 1)"),
                       ("goto_suggested", "goto_suggested(nuke.thisNode())"),
                       ("add_keyframe", "add_keyframe(nuke.thisNode())")):
        assert group.user_knob(knob).type == 22 and call in group.user_knob(knob).options["T"], knob


def test_matte_group_renders_with_nothing_but_nuke() -> None:
    group = _group(MATTE, "Group")
    output = [n for n in group.children if n.cls == "Output"]
    assert len(output) == 1
    premult = output[0].inputs[0]
    assert premult.cls == "Premult" and re.fullmatch(r"\{!parent\.premultiply\}", premult.knobs["disable"].text)
    copy = premult.inputs[0]
    assert copy.cls == "Copy" and copy.knobs["from0"].text == "rgba.alpha" and copy.knobs["to0"].text == "rgba.alpha"
    plate, alpha = copy.inputs  # B (the plate) and A (the cached alpha)
    assert plate.cls == "Input" and plate.name == "Plate" and "number" not in plate.knobs
    assert alpha.cls == "Read" and alpha.name == "tcvom_alpha"
    assert alpha.knobs["raw"].text == "true" and alpha.knobs["on_error"].text == "error"
    assert alpha.knobs["before"].text == alpha.knobs["after"].text == "black"
    inputs = sorted((int(n.knobs["number"].text) if "number" in n.knobs else 0, n.name)
                    for n in group.children if n.cls == "Input")
    assert inputs == [(0, "Plate"), (1, "Trimap")]
    _no_python_at_render_time(group)


def test_inference_gizmo_feeds_three_frames_as_the_exported_channels() -> None:
    script = nkscript.parse(GIZMO.read_text())
    gizmo = _group(GIZMO, "Gizmo")
    _no_python_at_render_time(gizmo)
    out = gizmo.child("Output1").inputs[0]
    assert out.cls == "Premult"
    copy = out.inputs[0]
    assert copy.inputs[0].name == "Plate", "the matte goes onto the untouched (linear) plate"
    inference = copy.inputs[1]
    assert inference.cls == "Inference"
    assert {k.name: k.options["T"] for k in gizmo.user_knobs if k.type == 41}["modelFile"] == "Inference1.modelFile"

    # the channels that reach the Inference node, and from which frame offset
    def channels(node: nkscript.Node, offset: int = 0) -> dict[str, tuple[str, int]]:
        if node.cls == "Input":
            return {c: (node.name, offset) for c in ("rgba.red", "rgba.green", "rgba.blue", "rgba.alpha")}
        if node.cls == "TimeOffset":
            expr = node.knobs["time_offset"].text
            match = re.fullmatch(r'\{"frame (<=|>=) parent\.(first|last)_frame \? (-?1) : (-?1)"\}', expr)
            assert match, expr
            return channels(node.inputs[0], offset - int(match.group(4)))  # +1 shows the frame before
        if node.cls == "Copy":
            result = channels(node.inputs[0], offset)
            source = channels(node.inputs[1], offset)
            for i in range(4):
                if f"from{i}" in node.knobs:
                    result[node.knobs[f"to{i}"].text] = source[node.knobs[f"from{i}"].text]
            return result
        raise AssertionError(f"unexpected {node.cls}")

    fed = channels(inference.inputs[0])
    for channel in NUKE_CHANNELS_IN:
        layer = channel.split(".")[0]
        assert layer == "rgba" or channel in script.layers[layer], channel
    expected_offset = {"tcvom_prev": -1, "rgba": 0, "tcvom_next": 1}
    for channel in NUKE_CHANNELS_IN:
        source, offset = fed[channel]
        assert offset == expected_offset[channel.split(".")[0]], channel
        assert source == ("Trimap" if channel.endswith(".alpha") else "Plate"), channel
    assert NUKE_CHANNELS_OUT == ("rgba.alpha",) and copy.knobs["from0"].text == "rgba.alpha"
    # mirrored at the ends like the session: at the first frame "previous" is t+1
    prev = gizmo.child("prev_frame").knobs["time_offset"].text
    nxt = gizmo.child("next_frame").knobs["time_offset"].text
    assert prev == '{"frame <= parent.first_frame ? -1 : 1"}' and nxt == '{"frame >= parent.last_frame ? 1 : -1"}'
