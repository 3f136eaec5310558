"""The one interface every inference back-end implements, and the user cache folder.

An engine runs the named graphs of one network (:mod:`tcvom.export.graphs`) on torch
tensors; it knows nothing about shots or frames. As Polygraphy's runners::

    with engine:                                   # activate() ... deactivate()
        engine.begin_shot(height, width)           # optional: bind buffers for a size
        out = engine.infer("part_a", {"x": x})     # {"features": ..., "shortcut1": ...}

Inputs are float tensors (on any device, in any float dtype the engine accepts); outputs
are tensors on ``engine.device``.
"""

from __future__ import annotations

import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import torch
from torch import Tensor

from tcvom.errors import InputError
from tcvom.export.graphs import GraphSpec, graph_spec, graph_specs

ENV_CACHE_DIR = "TCVOM_CACHE_DIR"


def cache_dir() -> Path:
    """The tcvom user cache folder (not created): ``$TCVOM_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/tcvom``, else ``~/.cache/tcvom`` (``%LOCALAPPDATA%\\tcvom\\cache``)."""
    override = os.environ.get(ENV_CACHE_DIR)
    if override:
        folder = Path(override).expanduser()
        if folder.exists() and not folder.is_dir():  # was "Not a directory" at a path under it, the setting unnamed
            raise InputError(f"${ENV_CACHE_DIR} names a file, not a folder", path=folder,
                             hint=f"point ${ENV_CACHE_DIR} at a folder, or unset it for the user cache")
        return folder
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "tcvom"
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "tcvom" / "cache"
    return Path.home() / ".cache" / "tcvom"


class Engine(ABC):
    """Runs the graphs of one network. Subclasses implement :meth:`_infer` (and may
    override :meth:`activate`, :meth:`deactivate`, :meth:`begin_shot`)."""

    #: "torch", "onnxruntime" or "tensorrt".
    backend: str = ""

    def __init__(self, network: str, device: str | torch.device = "cpu") -> None:
        self.network = network
        self.specs: dict[str, GraphSpec] = {s.name: s for s in graph_specs(network)}
        self.device = torch.device(device)
        self.active = False

    @property
    def graphs(self) -> tuple[str, ...]:
        return tuple(self.specs)

    def activate(self) -> None:
        """Load what the engine needs (sessions, engines); called by ``infer`` when needed."""
        self.active = True

    def deactivate(self) -> None:
        """Release what :meth:`activate` loaded."""
        self.active = False

    def begin_shot(self, height: int, width: int) -> None:
        """A shot of padded size ``height x width`` starts (TensorRT picks its profile and
        binds buffers here). Raises InputError for a size the engine cannot run."""
        if height % 32 or width % 32:
            raise InputError(f"graph inputs are padded to multiples of 32, not {width}x{height}")

    def infer(self, graph: str, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Run ``graph`` on ``inputs`` (name -> tensor, the names of the graph's spec).

        Returns output name -> tensor on :attr:`device`.
        """
        spec = self.specs.get(graph) or graph_spec(self.network, graph)
        missing = [n for n in spec.input_names if n not in inputs]
        if missing:
            raise InputError(f"the {self.network} {graph} graph needs inputs {list(spec.input_names)}; "
                             f"missing {missing}")
        if not self.active:
            self.activate()
        return self._infer(spec, inputs)

    @abstractmethod
    def _infer(self, spec: GraphSpec, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]: ...

    def __enter__(self) -> Engine:
        self.activate()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.deactivate()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.network!r}, device={str(self.device)!r})"
