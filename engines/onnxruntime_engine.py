"""The ONNX Runtime back-end: the exported graphs on CPU, or with the CUDA / TensorRT
execution providers when the installed onnxruntime build has them.

``onnxruntime`` is imported when the engine is created; a missing package raises
:class:`tcvom.errors.MissingDependencyError` naming the ``onnx`` extra.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from tcvom.engines.base import Engine
from tcvom.errors import InputError, MissingDependencyError
from tcvom.export.graphs import GraphSpec
from tcvom.export.onnx_export import ExportManifest, check_graph_io, ort_session

PROVIDERS = {
    "cpu": ("CPUExecutionProvider",),
    "cuda": ("CUDAExecutionProvider", "CPUExecutionProvider"),
    "tensorrt": ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
}


def import_onnxruntime() -> Any:
    """``onnxruntime``, or MissingDependencyError naming the ``onnx`` extra."""
    try:
        import onnxruntime
    except ImportError:
        raise MissingDependencyError("onnxruntime", "onnx", purpose="the onnxruntime back-end") from None
    return onnxruntime


def choose_providers(device: str | torch.device, providers: Sequence[str] | None = None) -> list[str]:
    """Execution providers for ``device`` ("cpu" -> CPU; "cuda" -> CUDA then CPU), or the
    ones asked for; each must be in this onnxruntime build (InputError otherwise)."""
    ort = import_onnxruntime()
    available = set(ort.get_available_providers())
    wanted = list(providers) if providers else list(PROVIDERS[torch.device(device).type])
    missing = [p for p in wanted if p not in available and p != "CPUExecutionProvider"]
    if missing:
        raise InputError(
            f"this onnxruntime build has no {', '.join(missing)} (it has {', '.join(sorted(available))})",
            hint="install onnxruntime-gpu for CUDA, or use --device cpu",
        )
    return wanted


class OnnxRuntimeEngine(Engine):
    """Runs the graphs of an export (:func:`tcvom.export.read_manifest`) in ONNX Runtime.

    Args:
        export: the manifest of the exported network.
        device: where outputs are returned ("cpu" or "cuda[:N]"); also picks the
            providers when ``providers`` is not given.
        providers: explicit execution providers, e.g. ``["TensorrtExecutionProvider",
            "CUDAExecutionProvider", "CPUExecutionProvider"]``.
        threads: intra-op threads (None: ONNX Runtime's default, all cores).
    """

    backend = "onnxruntime"

    def __init__(
        self,
        export: ExportManifest,
        *,
        device: str | torch.device = "cpu",
        providers: Sequence[str] | None = None,
        threads: int | None = None,
    ) -> None:
        super().__init__(export.network, device)
        self.export = export
        self.providers = choose_providers(self.device, providers)
        self.threads = threads
        self.sessions: dict[str, Any] = {}

    def activate(self) -> None:
        for name, spec in self.specs.items():
            if name in self.sessions:
                continue
            path = self.export.graph_file(name)
            session = ort_session(path, self.providers, self.threads)
            check_graph_io(session, spec, path)
            self.sessions[name] = session
        super().activate()

    def deactivate(self) -> None:
        self.sessions.clear()
        super().deactivate()

    def _infer(self, spec: GraphSpec, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        feed = {n: np.ascontiguousarray(inputs[n].detach().to("cpu", torch.float32).numpy()) for n in spec.input_names}
        outputs = self.sessions[spec.name].run(list(spec.output_names), feed)
        return {n: torch.from_numpy(o).to(self.device) for n, o in zip(spec.output_names, outputs, strict=True)}

