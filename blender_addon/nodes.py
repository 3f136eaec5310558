"""The compositor side: the scene's compositor tree and the tcvom matte group node.

Blender 5.0 changed the compositor API: the scene's tree is ``scene.compositing_node_group``
(a node group whose Group Output is the result) instead of ``scene.node_tree`` with a
Composite node, and node settings such as Set Alpha's mode or the Mask node's size became
inputs. Every version difference lives in this module.
"""

from __future__ import annotations

import bpy

from .hostclient import HostError

IS_50 = bpy.app.version >= (5, 0, 0)
MATH_NODE = "ShaderNodeMath" if IS_50 else "CompositorNodeMath"  # 5.0 shares the shader editor's Math node
NODE_TAG = "tcvom_matte"  # custom property marking our group node in the scene's tree
VIEWER_TAG = "tcvom_viewer"  # marks the Viewer our node feeds when the scene's output is taken


def scene_tree(scene: bpy.types.Scene) -> bpy.types.NodeTree:
    """The scene's compositor tree, created (with an output) if the scene has none."""
    if IS_50:
        tree = scene.compositing_node_group
        if tree is None:
            tree = bpy.data.node_groups.new(f"{scene.name} Compositing", "CompositorNodeTree")
            scene.compositing_node_group = tree
        return tree
    scene.use_nodes = True
    return scene.node_tree


def output_socket(tree: bpy.types.NodeTree) -> bpy.types.NodeSocket:
    """The socket whose image is the scene's composite: Group Output (5.0) or Composite (4.x)."""
    if IS_50:
        if not any(i.in_out == "OUTPUT" and i.item_type == "SOCKET" for i in tree.interface.items_tree):
            tree.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
        node = next((n for n in tree.nodes if n.bl_idname == "NodeGroupOutput"), None)
        if node is None:
            node = tree.nodes.new("NodeGroupOutput")
            node.location = (400, 0)
        return node.inputs[0]
    node = next((n for n in tree.nodes if n.bl_idname == "CompositorNodeComposite"), None)
    if node is None:
        node = tree.nodes.new("CompositorNodeComposite")
        node.location = (400, 0)
    return node.inputs["Image"]


def set_alpha_mode(node: bpy.types.Node, mode: str) -> None:
    """Set Alpha's mode: "Apply Mask" (RGBA times the alpha, the premultiplied result the
    compositor expects) or "Replace Alpha" (RGB kept, alpha replaced)."""
    if "Type" in node.inputs:
        node.inputs["Type"].default_value = mode
    else:
        node.mode = {"Apply Mask": "APPLY", "Replace Alpha": "REPLACE_ALPHA"}[mode]


def plate_socket(source: bpy.types.Node) -> bpy.types.NodeSocket:
    """The plate picture among an Image or Movie Clip node's outputs: "Image", or for a
    multilayer EXR its "Combined" pass or its one colour pass (tcvom reads that layer)."""
    if "Image" in source.outputs:
        return source.outputs["Image"]
    if "Combined" in source.outputs:
        return source.outputs["Combined"]
    colours = [s for s in source.outputs if s.type == "RGBA"]
    if len(colours) == 1:
        return colours[0]
    raise HostError(f"the plate image has no Combined pass but {len(colours)} colour passes "
                    f"({', '.join(s.name for s in colours)}), so which one is the plate is unclear",
                    "render or save the plate with one colour pass (or its Combined pass)")


def mask_node_scene_size(node: bpy.types.Node) -> None:
    """A Mask node rendered at the scene's resolution, with its feather."""
    if "Size Source" in node.inputs:
        node.inputs["Size Source"].default_value = "Scene Size"
        node.inputs["Feather"].default_value = True
    else:
        node.size_source = "SCENE"
        node.use_feather = True


_OUTPUTS: tuple[tuple[str, str], ...] = (("Image", "NodeSocketColor"), ("Alpha", "NodeSocketFloat"))


def _group_interface(group: bpy.types.NodeTree) -> None:
    """The group's two outputs. Kept when they are there already: clearing them would remove
    the artist's links from the node's outputs on every press."""
    have = [(item.name, getattr(item, "socket_type", None), getattr(item, "in_out", None))
            for item in group.interface.items_tree if getattr(item, "item_type", "SOCKET") == "SOCKET"]
    if have == [(name, kind, "OUTPUT") for name, kind in _OUTPUTS]:
        return
    group.interface.clear()
    group.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
    group.interface.new_socket("Alpha", in_out="OUTPUT", socket_type="NodeSocketFloat")


def _clip_driver(owner: bpy.types.bpy_struct, path: str, clip: bpy.types.MovieClip | None, expression: str,
                 now: bool = False) -> None:
    """Drive ``owner.path`` by ``expression`` of the clip's Start Frame (``start``) and
    Frame Offset (``offset``; no clip: neither), and with ``now``, of the current frame of
    the scene being evaluated (a simple expression: no Python runs). Not the driver's own
    ``frame``: that is the evaluation time, which Output > Time Stretching remaps, while the
    Movie Clip and Image nodes read the scene's frame. Not one scene's frame either: a Full
    Copy of the scene shares the group, and followed the original's frame (an empty matte,
    or a black silhouette past the plate's end, by where the original was parked)."""
    driver = owner.driver_add(path).driver
    driver.type = "SCRIPTED"
    for name, prop in (("start", "frame_start"), ("offset", "frame_offset")) if clip is not None else ():
        variable = driver.variables.new()
        variable.name, variable.type = name, "SINGLE_PROP"
        variable.targets[0].id_type = "MOVIECLIP"
        variable.targets[0].id = clip
        variable.targets[0].data_path = prop
    if now:
        variable = driver.variables.new()
        variable.name, variable.type = "now", "CONTEXT_PROP"
        variable.targets[0].context_property = "ACTIVE_SCENE"
        variable.targets[0].data_path = "frame_current"
    driver.expression = expression


def _follow_clip(matte: bpy.types.Node, shown: bpy.types.Node, clip: bpy.types.MovieClip) -> None:
    """Drive the alpha node's start frame by the clip's Start Frame and Frame Offset: the
    Movie Clip node reads them live, so a clip slipped after the pull (Footage Settings)
    moved the plate under a fixed matte. The alpha belongs to the plate's frames, so it
    moves with them.

    Outside its frames the Movie Clip node shows nothing, while an Image node holds its last
    file (a black silhouette of the last matte after the plate's end): ``shown``, a Math
    node multiplying the alpha, is driven to 1 on the scene frames the plate plays, else 0.
    (Not the clip's own alpha: that is the plate's alpha channel in a clip that has one.)"""
    constant = matte.frame_start - clip.frame_start + clip.frame_offset
    _clip_driver(matte, "frame_start", clip, f"start - offset + {constant}")
    last = constant + matte.frame_duration - 1
    _clip_driver(shown.inputs[1], "default_value", clip,
                 f"(now >= start - offset + {constant}) * (now <= start - offset + {last})", now=True)


def build_group(
    name: str,
    plate: bpy.types.ID,
    alpha_image: bpy.types.Image,
    *,
    alpha_first: int,
    alpha_count: int,
    shift: int,
    plate_image_frames: tuple[int, int, int] | None = None,
) -> bpy.types.NodeTree:
    """(Re)build the node group ``name``: plate -> Set Alpha(1) -> Set Alpha(matte) -> Image, and Alpha
    (for a Movie Clip, the matte times 1 where the clip plays, 0 before and after it).

    ``plate`` is a MovieClip (read with its own frame settings) or an Image sequence/movie
    (``plate_image_frames`` = Image node start, offset, duration). The alpha sequence's
    first file is frame ``alpha_first``; plate frame = scene frame + ``shift``. A Movie
    Clip plate's Plate Shown follows the frame of whichever scene is evaluated.
    """
    group = bpy.data.node_groups.get(name)
    if group is None or group.bl_idname != "CompositorNodeTree":
        group = bpy.data.node_groups.new(name, "CompositorNodeTree")
    group.nodes.clear()
    if group.animation_data is not None:  # the drivers of the nodes just removed
        for fcurve in list(group.animation_data.drivers):
            group.animation_data.drivers.remove(fcurve)
    _group_interface(group)

    if isinstance(plate, bpy.types.MovieClip):
        source = group.nodes.new("CompositorNodeMovieClip")
        source.clip = plate
    else:
        source = group.nodes.new("CompositorNodeImage")
        source.image = plate
        if plate_image_frames is not None:
            source.frame_start, source.frame_offset, source.frame_duration = plate_image_frames
    source.name = source.label = "Plate"
    source.location = (-400, 100)

    matte = group.nodes.new("CompositorNodeImage")
    matte.name = matte.label = "tcvom Alpha"
    matte.image = alpha_image
    # Image node: file frame = scene frame - start + 1 + offset; we want scene frame + shift.
    matte.frame_offset = alpha_first - 1
    matte.frame_start = alpha_first - shift
    matte.frame_duration = alpha_count
    matte.location = (-400, -200)
    alpha = matte.outputs["Alpha"]
    shown = group.nodes.new(MATH_NODE)
    shown.name = shown.label = "Plate Shown"
    shown.operation = "MULTIPLY"
    shown.location = (-200, -200)
    group.links.new(alpha, shown.inputs[0])
    alpha = shown.outputs[0]
    if isinstance(plate, bpy.types.MovieClip):
        _follow_clip(matte, shown, plate)
    else:
        # An Image plate's node and the alpha's hold their last file after it, on the same
        # frames; before their first they read the file numbered one below it, which is
        # none, except for a plate numbered from 0: its frame 0 and matte were shown on every
        # scene frame before its Start Frame (Blender reads no frame below 0). 0 there.
        _clip_driver(shown.inputs[1], "default_value", None, f"now >= {matte.frame_start}", now=True)

    # the plate's own alpha (0 in an EXR Nuke wrote from a plate without one) is not the
    # matte's business, as tcvom ignores it: opaque first, then the matte applied
    opaque = group.nodes.new("CompositorNodeSetAlpha")
    opaque.name = opaque.label = "Plate Opaque"
    set_alpha_mode(opaque, "Replace Alpha")
    opaque.inputs["Alpha"].default_value = 1.0
    opaque.location = (-200, 150)
    set_alpha = group.nodes.new("CompositorNodeSetAlpha")
    set_alpha_mode(set_alpha, "Apply Mask")
    set_alpha.location = (-30, 0)

    out = group.nodes.new("NodeGroupOutput")
    out.location = (150, 0)
    group.links.new(plate_socket(source), opaque.inputs["Image"])
    group.links.new(opaque.outputs["Image"], set_alpha.inputs["Image"])
    group.links.new(alpha, set_alpha.inputs["Alpha"])
    group.links.new(set_alpha.outputs["Image"], out.inputs["Image"])
    group.links.new(alpha, out.inputs["Alpha"])
    return group


def place_group_node(scene: bpy.types.Scene, group: bpy.types.NodeTree, key: str) -> tuple[bpy.types.Node, str]:
    """The scene's tcvom node for ``key`` (the settings' node name), updated in place if it
    exists, else added, and a note for the artist ("" when there is nothing to say).

    The node feeds the composite output when that is free. The artist's nodes and links are
    never removed or rewired: when the output is taken (a CG scene's Render Layers, the
    artist's comp), the node feeds a Viewer of its own beside it instead, and the note says
    so."""
    tree = scene_tree(scene)
    node = next((n for n in tree.nodes if n.get(NODE_TAG) == key), None)
    if node is None:
        node = tree.nodes.new("CompositorNodeGroup")
        node[NODE_TAG] = key
        node.location = _free_location(tree)
        node.width = 200
    node.node_tree = group
    node.name = node.label = key
    target = output_socket(tree)
    if any(link.to_socket == target for link in node.outputs["Image"].links):
        return node, ""
    if not target.is_linked:
        tree.links.new(node.outputs["Image"], target)
        return node, ""
    viewer = next((n for n in tree.nodes if n.get(VIEWER_TAG) == key), None)
    if viewer is None:
        viewer = tree.nodes.new("CompositorNodeViewer")
        viewer[VIEWER_TAG] = key
        viewer.location = (node.location.x + node.width + 60, node.location.y)
    viewer.name = viewer.label = f"{key} Viewer"
    if not any(link.to_node == viewer for link in node.outputs["Image"].links):
        tree.links.new(node.outputs["Image"], viewer.inputs["Image"])
    tree.nodes.active = viewer
    return node, (
        f"the compositor's output is taken by your nodes, so '{key}' feeds its own Viewer "
        f"('{viewer.name}'); connect it to the output yourself to render the matte"
    )


def _free_location(tree: bpy.types.NodeTree) -> tuple[float, float]:
    """Below every node already in ``tree``, so ours covers none of the artist's."""
    if not tree.nodes:
        return (0.0, 0.0)
    lowest = min(n.location.y - n.dimensions.y for n in tree.nodes)
    left = min(n.location.x for n in tree.nodes)
    return (left, lowest - 80.0)


def alpha_image(name: str, first_file: str) -> bpy.types.Image:
    """The Image datablock reading the cached alpha sequence (data, not colour)."""
    image = bpy.data.images.get(name)
    if image is None:
        image = bpy.data.images.load(first_file, check_existing=False)
        image.name = name
    else:
        image.filepath = first_file
    image.source = "SEQUENCE"
    image.colorspace_settings.name = "Non-Color"
    image.reload()
    return image
