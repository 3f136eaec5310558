"""The PyTorch back-end: the eager model, on CPU or CUDA, with the fast paths of a GPU.

On CUDA it runs in the model's dtype (float32, float16 or bfloat16: cast the model, as
:func:`tcvom.matting.gca_session.load_gca_model` does), optionally channels-last, and
optionally replays CUDA graphs: one graph is captured per graph name and input shapes
(at most ``graph_capacity``, the oldest dropped first), so a shot of fixed size captures
each part once and then only replays it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from tcvom.engines.base import Engine
from tcvom.errors import InputError
from tcvom.export.graphs import GraphSpec, as_outputs, graph_modules, network_of

#: Networks run channels-last by default (measured: docs/backends.md).
CHANNELS_LAST_NETWORKS = ("gca_tam", "gca")
#: Networks whose BatchNorms are folded into their convolutions by default (measured and
#: parity-tested: docs/backends.md, tests/models/test_bn_folding.py).
FOLD_BN_NETWORKS = ("gca_tam", "gca", "stm")


class TorchEngine(Engine):
    """Runs the graphs with the eager ``model`` (GCA+TAM, GCA or STM).

    Args:
        model: the network, already on ``device`` and in its dtype; put in eval mode.
        device: where inputs are moved and outputs live (the model's device by default).
        channels_last: run 4-D convolutions in channels-last memory format; None (default):
            on for the GCA networks, whose convolutions (and transposed convolutions, which
            oneDNN otherwise runs channels-last and copies back) are faster so on CPU too.
        fold_bn: fold each eval-mode BatchNorm into the convolution before it
            (:mod:`tcvom.models.bn_folding`), on a copy of ``model`` (which is left
            unchanged; the copy doubles the weights' memory); None (default): on for
            :data:`FOLD_BN_NETWORKS`.
        cuda_graphs: capture and replay CUDA graphs (CUDA only).
        graph_capacity: the most CUDA graphs kept.
    """

    backend = "torch"

    def __init__(
        self,
        model: nn.Module,
        *,
        device: str | torch.device | None = None,
        channels_last: bool | None = None,
        fold_bn: bool | None = None,
        cuda_graphs: bool = False,
        graph_capacity: int = 8,
    ) -> None:
        param = next(model.parameters())
        super().__init__(network_of(model), param.device if device is None else device)
        if cuda_graphs and self.device.type != "cuda":
            raise InputError("CUDA graphs need a CUDA device", hint="drop cuda_graphs or use --device cuda")
        self.model = model.eval()
        self.dtype = param.dtype
        if fold_bn is None:
            fold_bn = self.network in FOLD_BN_NETWORKS
        self.fold_bn = fold_bn
        if fold_bn:
            from tcvom.models.bn_folding import folded_copy

            self.model = folded_copy(self.model)
        if channels_last is None:
            channels_last = self.network in CHANNELS_LAST_NETWORKS
        self.channels_last = channels_last
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.cuda_graphs = cuda_graphs
        self.graph_capacity = graph_capacity
        self.modules = graph_modules(self.model)
        self._captured: OrderedDict[tuple, tuple[torch.cuda.CUDAGraph, dict[str, Tensor], dict[str, Tensor]]] = OrderedDict()

    def deactivate(self) -> None:
        self._captured.clear()
        super().deactivate()

    def _prepare(self, t: Tensor) -> Tensor:
        t = t.to(device=self.device, dtype=self.dtype if t.is_floating_point() else t.dtype)
        if self.channels_last and t.dim() == 4:
            t = t.contiguous(memory_format=torch.channels_last)
        return t

    def _run(self, spec: GraphSpec, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        with torch.inference_mode():
            return as_outputs(spec, self.modules[spec.name](*(inputs[n] for n in spec.input_names)))

    def _infer(self, spec: GraphSpec, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        feed = {n: self._prepare(inputs[n]) for n in spec.input_names}
        if not self.cuda_graphs:
            return self._run(spec, feed)
        return self._replay(spec, feed)

    def _replay(self, spec: GraphSpec, feed: dict[str, Tensor]) -> dict[str, Tensor]:
        key = (spec.name, *((n, tuple(t.shape), t.dtype) for n, t in feed.items()))
        entry = self._captured.get(key)
        if entry is None:
            static_in = {n: t.clone() for n, t in feed.items()}
            stream = torch.cuda.Stream(self.device)
            stream.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(stream):
                for _ in range(2):  # warm-up on a side stream before capture, as torch asks
                    self._run(spec, static_in)
            torch.cuda.current_stream(self.device).wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = self._run(spec, static_in)
            entry = (graph, static_in, static_out)
            self._captured[key] = entry
            while len(self._captured) > self.graph_capacity:
                self._captured.popitem(last=False)
        else:
            self._captured.move_to_end(key)
        graph, static_in, static_out = entry
        for name, t in feed.items():
            static_in[name].copy_(t)
        graph.replay()
        return {n: t.clone() for n, t in static_out.items()}
