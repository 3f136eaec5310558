"""The exported graphs: names, inputs, outputs and symbolic shapes, in one table.

Every back-end runs the same named graphs (the networks' cached split):

==========  =====================  ==============================================================
network     graph                  inputs -> outputs
==========  =====================  ==============================================================
gca_tam     ``part_a``             x -> features, shortcut1, shortcut2, shortcut3, unknown
gca_tam     ``part_b``             prev_features, features, next_features, shortcut1..3, unknown -> alpha
gca         ``part_a``             as above (single-image GCA baseline)
gca         ``part_b``             features, shortcut1..3 -> alpha
stm         ``memory_encode``      frames, probs -> key, value
stm         ``query_encode``       frame -> key, value, r3, r2
stm         ``read_decode``        mem_key, mem_value, q_key, q_value, r3, r2 -> logits
==========  =====================  ==============================================================

Shapes are written with symbols: ``H`` and ``W`` (multiples of 32, the padded frame
size), ``H/8`` etc. for the feature maps, ``T`` for the number of memory frames. All
tensors are float32 at the graph boundary. The torch back-end runs :func:`graph_modules`;
the export writes the same modules to ONNX.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from tcvom.errors import InputError
from tcvom.models.dim_tam import DimMatting
from tcvom.models.fba_tam import FbaMatting
from tcvom.models.gca_tam import GcaMatting, GcaPartA, GcaPartB, GcaTam
from tcvom.models.index_tam import IndexMatting
from tcvom.models.split_matting import Port, SplitMatting
from tcvom.models.stm import STM

Dim = int | str
NETWORKS: tuple[str, ...] = ("gca_tam", "gca", "fba_tam", "fba", "dim_tam", "dim", "index_tam", "index", "stm")
#: Frame sizes the graphs take are multiples of this (the sessions pad to it).
MULTIPLE = 32


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output: its name and symbolic shape (ints and symbols)."""

    name: str
    shape: tuple[Dim, ...]

    def resolve(self, sizes: Mapping[str, int]) -> tuple[int, ...]:
        """Concrete shape for ``sizes`` (``{"H": ..., "W": ..., "T": ...}``)."""
        return tuple(dim if isinstance(dim, int) else _eval(dim, sizes) for dim in self.shape)

    def dynamic_axes(self) -> dict[int, str]:
        """Axis -> symbol of the non-constant axes (``torch.onnx.export``'s ``dynamic_axes``)."""
        return {i: dim.replace("/", "_") for i, dim in enumerate(self.shape) if isinstance(dim, str)}


@dataclass(frozen=True)
class GraphSpec:
    """One exported graph of a network."""

    network: str
    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.outputs)

    def to_json(self) -> dict[str, object]:
        return {
            "inputs": [{"name": t.name, "shape": list(t.shape), "dtype": "float32"} for t in self.inputs],
            "outputs": [{"name": t.name, "shape": list(t.shape), "dtype": "float32"} for t in self.outputs],
        }


def _eval(dim: str, sizes: Mapping[str, int]) -> int:
    name, _, divisor = dim.partition("/")
    if name not in sizes:
        raise KeyError(f"no size given for {name!r}")
    return sizes[name] // int(divisor) if divisor else sizes[name]


def _t(name: str, *shape: Dim) -> TensorSpec:
    return TensorSpec(name, shape)


_FEATURES = _t("features", 1, 128, "H/8", "W/8")
_SKIPS = (_t("shortcut1", 1, 32, "H", "W"), _t("shortcut2", 1, 32, "H/2", "W/2"), _t("shortcut3", 1, 64, "H/4", "W/4"))
_UNKNOWN = _t("unknown", 1, 1, "H/8", "W/8")
_ALPHA = _t("alpha", 1, 1, "H", "W")
_PART_A = (_t("x", 1, 6, "H", "W"),), (_FEATURES, *_SKIPS, _UNKNOWN)



def _port(port: Port, name: str | None = None) -> TensorSpec:
    size = ("H", "W") if port.stride == 1 else (f"H/{port.stride}", f"W/{port.stride}")
    return _t(name or port.name, 1, port.channels, *size)


def split_graphs(cls: type[SplitMatting], temporal: bool) -> tuple[GraphSpec, GraphSpec]:
    """part_a and part_b of an FBA, DIM or IndexNet network, from its class's ports."""
    network = f"{cls.base}_tam" if temporal else cls.base
    features = _port(Port("features", cls.feature_channels, 8))
    skips = tuple(_port(p) for p in cls.skips)
    unknown = _port(Port("unknown", 1, 8))
    part_a = GraphSpec(network, "part_a", tuple(_port(p) for p in cls.inputs), (features, unknown, *skips))
    if temporal:
        inputs = (_port(Port("prev_features", cls.feature_channels, 8)), features,
                  _port(Port("next_features", cls.feature_channels, 8)), unknown, *skips)
    else:
        inputs = (features, *skips)  # without TAM the unknown mask is unused
    return part_a, GraphSpec(network, "part_b", inputs, tuple(_port(p) for p in cls.outputs))


SPLIT_CLASSES: dict[str, type[SplitMatting]] = {"fba": FbaMatting, "dim": DimMatting, "index": IndexMatting}

GRAPHS: dict[str, tuple[GraphSpec, ...]] = {
    **{f"{base}_tam" if temporal else base: split_graphs(cls, temporal)
       for base, cls in SPLIT_CLASSES.items() for temporal in (True, False)},
    "gca_tam": (
        GraphSpec("gca_tam", "part_a", *_PART_A),
        GraphSpec(
            "gca_tam",
            "part_b",
            (_t("prev_features", 1, 128, "H/8", "W/8"), _FEATURES, _t("next_features", 1, 128, "H/8", "W/8"), *_SKIPS, _UNKNOWN),
            (_ALPHA,),
        ),
    ),
    "gca": (
        GraphSpec("gca", "part_a", *_PART_A),
        # without TAM the unknown mask is unused (ONNX would drop the input)
        GraphSpec("gca", "part_b", (_FEATURES, *_SKIPS), (_ALPHA,)),
    ),
    "stm": (
        GraphSpec(
            "stm",
            "memory_encode",
            (_t("frames", "T", 3, "H", "W"), _t("probs", "T", 3, "H", "W")),
            (_t("key", 2, 128, "T", "H/16", "W/16"), _t("value", 2, 512, "T", "H/16", "W/16")),
        ),
        GraphSpec(
            "stm",
            "query_encode",
            (_t("frame", 1, 3, "H", "W"),),
            (_t("key", 1, 128, "H/16", "W/16"), _t("value", 1, 512, "H/16", "W/16"),
             _t("r3", 1, 512, "H/8", "W/8"), _t("r2", 1, 256, "H/4", "W/4")),
        ),
        GraphSpec(
            "stm",
            "read_decode",
            (_t("mem_key", 2, 128, "T", "H/16", "W/16"), _t("mem_value", 2, 512, "T", "H/16", "W/16"),
             _t("q_key", 1, 128, "H/16", "W/16"), _t("q_value", 1, 512, "H/16", "W/16"),
             _t("r3", 1, 512, "H/8", "W/8"), _t("r2", 1, 256, "H/4", "W/4")),
            (_t("logits", 1, 3, "H", "W"),),
        ),
    ),
}


def graph_specs(network: str) -> tuple[GraphSpec, ...]:
    """The graphs of ``network`` ("gca_tam", "gca" or "stm")."""
    try:
        return GRAPHS[network]
    except KeyError:
        raise InputError(f"unknown network {network!r}; use one of {', '.join(NETWORKS)}") from None


def graph_spec(network: str, graph: str) -> GraphSpec:
    """One graph of ``network`` by name."""
    for spec in graph_specs(network):
        if spec.name == graph:
            return spec
    names = ", ".join(s.name for s in graph_specs(network))
    raise InputError(f"the {network} network has no graph {graph!r}; it has {names}")


def network_of(model: nn.Module) -> str:
    """"gca_tam", "gca" or "stm" for a model instance."""
    if isinstance(model, STM):
        return "stm"
    if isinstance(model, GcaMatting):
        return "gca_tam" if model.temporal else "gca"
    if isinstance(model, SplitMatting):
        return model.network
    raise TypeError(f"expected a matting model or an STM, got {type(model).__name__}")


# --- the modules behind the graphs (tensors in, tensors out) -----------------------------


class GcaSinglePartB(nn.Module):
    """Part B of the single-image GCA: ``forward(features, shortcut1..3) -> alpha``."""

    def __init__(self, model: GcaMatting) -> None:
        super().__init__()
        self.model = model

    def forward(self, features: Tensor, shortcut1: Tensor, shortcut2: Tensor, shortcut3: Tensor) -> Tensor:
        from tcvom.models.gca_tam import FrameFeatures

        unknown = features.new_zeros(())  # not read without TAM
        return self.model.decode(FrameFeatures(features, shortcut1, shortcut2, shortcut3, unknown))


class SplitPart(nn.Module):
    """Part A or part B of an FBA, DIM or IndexNet network (:class:`SplitMatting`):
    ``forward(*tensors) -> tuple of tensors`` in the order of the graph's spec."""

    def __init__(self, model: SplitMatting, part: str) -> None:
        super().__init__()
        self.model = model
        self.part = part

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        return self.model.part_a(*inputs) if self.part == "part_a" else self.model.part_b(*inputs)


class StmMemoryEncode(nn.Module):
    """``forward(frames T x 3 x H x W, probs T x 3 x H x W) -> (key 2 x 128 x T x h x w, value 2 x 512 x T x h x w)``."""

    def __init__(self, model: STM) -> None:
        super().__init__()
        self.model = model

    def forward(self, frames: Tensor, probs: Tensor) -> tuple[Tensor, Tensor]:
        return self.model.memorize(frames, probs)


class StmQueryEncode(nn.Module):
    """``forward(frame 1 x 3 x H x W) -> (key, value, r3, r2)``."""

    def __init__(self, model: STM) -> None:
        super().__init__()
        self.model = model

    def forward(self, frame: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return self.model.encode_query(frame)


class StmReadDecode(nn.Module):
    """``forward(mem_key, mem_value, q_key, q_value, r3, r2) -> log-odds 1 x 3 x H x W``."""

    def __init__(self, model: STM) -> None:
        super().__init__()
        self.model = model

    def forward(self, mem_key: Tensor, mem_value: Tensor, q_key: Tensor, q_value: Tensor, r3: Tensor, r2: Tensor) -> Tensor:
        return self.model.read_decode(mem_key, mem_value, q_key, q_value, r3, r2)


def graph_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Graph name -> module running it, for a GCA+TAM, GCA or STM model (in the model's
    training mode, which they share)."""
    network = network_of(model)
    modules: dict[str, nn.Module]
    if network == "stm":
        assert isinstance(model, STM)
        modules = {"memory_encode": StmMemoryEncode(model), "query_encode": StmQueryEncode(model),
                   "read_decode": StmReadDecode(model)}
    elif isinstance(model, SplitMatting):
        modules = {"part_a": SplitPart(model, "part_a"), "part_b": SplitPart(model, "part_b")}
    else:
        assert isinstance(model, GcaMatting)
        part_b = GcaPartB(model) if isinstance(model, GcaTam) else GcaSinglePartB(model)
        modules = {"part_a": GcaPartA(model), "part_b": part_b}
    # A new wrapper is in training mode; torch.onnx.export restores the wrapper's mode on
    # the whole tree afterwards, which would leave the model training (BatchNorm on batch stats).
    training = model.training
    for module in modules.values():
        module.train(training)
    return modules


def as_outputs(spec: GraphSpec, result: Tensor | tuple[Tensor, ...]) -> dict[str, Tensor]:
    """A module's result as ``{output name: tensor}``."""
    values = (result,) if isinstance(result, Tensor) else tuple(result)
    return dict(zip(spec.output_names, values, strict=True))


@torch.no_grad()  # not inference_mode: the export traces with these tensors
def sample_inputs(
    model: nn.Module, height: int, width: int, memory_frames: int = 2, seed: int = 0
) -> dict[str, dict[str, Tensor]]:
    """Realistic random inputs of every graph of ``model`` at ``height x width`` (multiples
    of 32): random frames and one-hot / soft trimaps, and for the later graphs the outputs
    of the earlier ones. Returns graph -> input name -> float32 CPU tensor."""
    if height % MULTIPLE or width % MULTIPLE:
        raise InputError(f"graph sizes are multiples of {MULTIPLE}, not {height}x{width}")
    gen = torch.Generator().manual_seed(seed)
    modules = graph_modules(model)

    def trimap(n: int) -> Tensor:
        labels = torch.randint(0, 3, (n, 1, height // 4, width // 4), generator=gen)
        labels = nn.functional.interpolate(labels.float(), size=(height, width), mode="nearest").long()
        return torch.zeros(n, 3, height, width).scatter_(1, labels, 1.0)

    def frame(n: int) -> Tensor:
        return torch.randn(n, 3, height, width, generator=gen)

    if network_of(model) == "stm":
        probs = torch.softmax(4 * torch.randn(memory_frames, 3, height, width, generator=gen), dim=1)
        memory = {"frames": frame(memory_frames), "probs": probs}
        key, value = modules["memory_encode"](*memory.values())
        query = {"frame": frame(1)}
        q = modules["query_encode"](*query.values())
        read = dict(zip(("mem_key", "mem_value", "q_key", "q_value", "r3", "r2"), (key, value, *q), strict=True))
        return {"memory_encode": memory, "query_encode": query, "read_decode": read}
    if isinstance(model, SplitMatting):
        return _split_sample_inputs(model, modules, height, width, gen)
    xs = [torch.cat([frame(1), trimap(1)], dim=1) for _ in range(3)]
    feats = [modules["part_a"](x) for x in xs]
    cur = dict(zip(("features", "shortcut1", "shortcut2", "shortcut3", "unknown"), feats[1], strict=True))
    if network_of(model) == "gca_tam":
        part_b = {"prev_features": feats[0][0], "features": cur["features"], "next_features": feats[2][0],
                  **{k: v for k, v in cur.items() if k != "features"}}
    else:
        part_b = {k: v for k, v in cur.items() if k != "unknown"}
    return {"part_a": {"x": xs[1]}, "part_b": part_b}


def _split_sample_inputs(
    model: SplitMatting, modules: Mapping[str, nn.Module], height: int, width: int, gen: torch.Generator
) -> dict[str, dict[str, Tensor]]:
    """Inputs of part A and part B of an FBA, DIM or IndexNet network: random frames with
    blocky 0 / 128 / 255 trimaps, encoded as the network's input contract says."""
    specs = {s.name: s for s in graph_specs(model.network)}
    frames = []
    for _ in range(3):
        image = torch.rand(1, 3, height, width, generator=gen)
        labels = torch.randint(0, 3, (1, 1, height // 8, width // 8), generator=gen)
        trimap = (nn.functional.interpolate(labels.float(), size=(height, width), mode="nearest") * 127.5).to(torch.uint8)
        frames.append(type(model).make_inputs(image, trimap))
    outs = [dict(zip(specs["part_a"].output_names, modules["part_a"](*f.values()), strict=True)) for f in frames]
    cur = outs[1]
    feed = {}
    for name in specs["part_b"].input_names:
        feed[name] = outs[0]["features"] if name == "prev_features" else outs[2]["features"] if name == "next_features" else cur[name]
    return {"part_a": frames[1], "part_b": feed}
