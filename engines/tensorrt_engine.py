"""The TensorRT back-end: serialized engines built from the exported ONNX graphs.

- Precision: fp16 by default (``BuilderFlag.FP16``; inputs and outputs stay float32),
  fp32 on request.
- Optimisation profiles: one per resolution tier (:data:`TIERS`: padded frames up to 2K
  and up to 4K on the long side) and, for STM, a range of memory-frame counts
  (:data:`MEMORY_FRAMES`). A shot uses the smallest tier its padded size fits; a larger
  frame is refused with an InputError that names the largest tier.
- Cache: engines live in ``<cache>/tensorrt/`` (:func:`tcvom.engines.base.cache_dir`),
  named by a key over the GPU model, the TensorRT version, the ONNX file's SHA-256, the
  profile and the precision, with a JSON sidecar holding those fields. A change in any of
  them gives another key, so a rebuild; an engine whose sidecar does not match (copied
  from another machine, TensorRT upgraded) or that does not deserialise is rebuilt. One
  timing cache per GPU and TensorRT version speeds up rebuilds.
- Running: device buffers (torch CUDA tensors) are allocated and their addresses bound
  to the execution context once per input shape; a shot of fixed size binds each graph
  once (STM's memory graphs once per memory-frame count) and then only copies inputs in.

``tensorrt`` is imported only inside this back-end's functions that need it; without it
:func:`import_tensorrt` raises :class:`tcvom.errors.MissingDependencyError` naming the
``tensorrt`` extra. Nothing here has run on a GPU in the project's CI (see docs/backends.md).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from tcvom.engines.base import Engine, cache_dir
from tcvom.errors import InputError, MissingDependencyError, ReadError
from tcvom.export.graphs import GraphSpec, graph_specs
from tcvom.export.onnx_export import ExportManifest
from tcvom.farm.locks import exclusive_lock
from tcvom.io.atomic import write_bytes

PRECISIONS = ("fp16", "bf16", "fp32")


@dataclass(frozen=True)
class Tier:
    """A resolution tier: padded H and W both at most ``max_side``; TensorRT tunes for ``opt``."""

    name: str
    max_side: int
    opt: tuple[int, int]  # (H, W), multiples of 32


#: Resolution tiers, smallest first: 2K (2048 x 1080 -> padded 2048 x 1088) and 4K / DCI 4K.
TIERS: tuple[Tier, ...] = (Tier("2k", 2048, (1088, 1920)), Tier("4k", 4096, (2176, 3840)))
#: (min, opt, max) memory frames of STM's memory graphs: keyframes + the default cap of 8.
MEMORY_FRAMES: tuple[int, int, int] = (1, 4, 16)
MIN_SIDE = 32


def import_tensorrt() -> Any:
    """``tensorrt``, or MissingDependencyError naming the ``tensorrt`` extra."""
    try:
        import tensorrt  # pyright: ignore[reportMissingImports]  (the tensorrt extra; not installable here)
    except ImportError:
        raise MissingDependencyError("tensorrt", "tensorrt", purpose="the tensorrt back-end") from None
    return tensorrt


def choose_tier(height: int, width: int, tiers: tuple[Tier, ...] = TIERS) -> Tier:
    """The smallest tier holding a padded ``height x width`` frame (InputError if none)."""
    for tier in tiers:
        if max(height, width) <= tier.max_side:
            return tier
    top = tiers[-1]
    raise InputError(
        f"{width}x{height} is larger than the largest TensorRT profile ({top.name}: {top.max_side} pixels a side)",
        hint="use --backend torch or onnxruntime for this resolution",
    )


def profile_shapes(
    spec: GraphSpec, tier: Tier, memory_frames: tuple[int, int, int] = MEMORY_FRAMES
) -> dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
    """Input name -> (min, opt, max) shape of ``spec`` for ``tier``: H and W from 32 to
    ``tier.max_side`` (tuned for ``tier.opt``), T from ``memory_frames``."""
    lo, opt, hi = memory_frames
    if not 1 <= lo <= opt <= hi:
        raise InputError(f"memory frames must satisfy 1 <= min <= opt <= max, not {memory_frames}")
    sizes = (
        {"H": MIN_SIDE, "W": MIN_SIDE, "T": lo},
        {"H": tier.opt[0], "W": tier.opt[1], "T": opt},
        {"H": tier.max_side, "W": tier.max_side, "T": hi},
    )
    return {t.name: tuple(t.resolve(s) for s in sizes) for t in spec.inputs}  # type: ignore[misc]


@dataclass(frozen=True)
class BuildKey:
    """Everything a serialized engine depends on; its hash names the cached file."""

    gpu: str
    tensorrt: str
    onnx_sha256: str
    graph: str
    tier: str
    profile: dict[str, Any]
    precision: str

    def digest(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), sort_keys=True, default=list))


def memory_count(spec: GraphSpec, inputs: Mapping[str, Tensor]) -> int | None:
    """The number of memory frames (symbol ``T``) in ``inputs``, or None if the graph has none."""
    for t in spec.inputs:
        if "T" in t.shape:
            return int(inputs[t.name].shape[t.shape.index("T")])
    return None


def build_key(
    export: ExportManifest, graph: str, tier: Tier, precision: str, *, gpu: str, tensorrt_version: str,
    memory_frames: tuple[int, int, int] = MEMORY_FRAMES,
) -> BuildKey:
    """The :class:`BuildKey` of one graph of an export for a GPU and TensorRT version."""
    if precision not in PRECISIONS:
        raise InputError(f"TensorRT precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    spec = next(s for s in graph_specs(export.network) if s.name == graph)
    profile = {name: [list(s) for s in shapes] for name, shapes in profile_shapes(spec, tier, memory_frames).items()}
    return BuildKey(gpu, tensorrt_version, export.graph_sha256(graph), f"{export.network}.{graph}", tier.name,
                    profile, precision)


def engine_path(key: BuildKey, root: Path | None = None) -> Path:
    """Where the engine of ``key`` is cached: ``<root>/<network>.<graph>-<tier>-<precision>-<hash>.engine``."""
    folder = (cache_dir() / "tensorrt") if root is None else Path(root)
    return folder / f"{key.graph}-{key.tier}-{key.precision}-{key.digest()[:20]}.engine"


def stale_reason(path: Path, key: BuildKey) -> str | None:
    """Why the cached engine at ``path`` cannot be used for ``key`` (None when it can):
    missing, no sidecar, or a sidecar field that differs (GPU, TensorRT version, ONNX
    hash, profile, precision)."""
    if not path.is_file():
        return "not built yet"
    sidecar = path.with_suffix(".json")
    try:
        stored = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return "its description is missing or unreadable"
    wanted = key.to_json()
    for field in ("gpu", "tensorrt", "onnx_sha256", "graph", "tier", "profile", "precision"):
        if stored.get(field) != wanted[field]:
            return f"it was built for {field} {stored.get(field)!r}, this is {wanted[field]!r}"
    return None


def _write_atomic(path: Path, data: bytes) -> None:
    """Publish a cache file. Processes building the same engine (several GPUs of one host
    share the cache) each write a unique temporary name and rename it: the last rename
    wins, every one of them is a whole engine for the same key (the name holds the key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, data)


class TensorRTEngine(Engine):
    """Runs an export's graphs as TensorRT engines on a CUDA device.

    Args:
        export: the ONNX export (:func:`tcvom.export.read_manifest`).
        device: a CUDA device.
        precision: "fp16" (default), "bf16" or "fp32".
        tiers: resolution tiers, smallest first.
        memory_frames: (min, opt, max) STM memory frames.
        cache: the engine cache folder (default ``<cache>/tensorrt``).
        log: called with a line when an engine is (re)built.
    """

    backend = "tensorrt"

    def __init__(
        self,
        export: ExportManifest,
        *,
        device: str | torch.device = "cuda",
        precision: str = "fp16",
        tiers: tuple[Tier, ...] = TIERS,
        memory_frames: tuple[int, int, int] = MEMORY_FRAMES,
        cache: str | Path | None = None,
        log: Any = None,
    ) -> None:
        self.trt = import_tensorrt()
        super().__init__(export.network, device)
        if self.device.type != "cuda" or not torch.cuda.is_available():
            raise InputError("the tensorrt back-end needs a CUDA device", hint="use --device cuda")
        if precision not in PRECISIONS:
            raise InputError(f"TensorRT precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        self.export = export
        self.precision = precision
        self.tiers = tiers
        self.memory_frames = memory_frames
        self.cache = (cache_dir() / "tensorrt") if cache is None else Path(cache)
        self.log = log or (lambda _line: None)
        self.gpu = torch.cuda.get_device_name(self.device)
        self.logger = self.trt.Logger(self.trt.Logger.WARNING)
        self.tier: Tier | None = None
        self._engines: dict[str, Any] = {}
        self._contexts: dict[str, Any] = {}
        self._bound: dict[str, tuple[tuple, dict[str, Tensor], dict[str, Tensor]]] = {}

    # --- building and loading ------------------------------------------------------------

    def _timing_cache_path(self) -> Path:
        name = hashlib.sha256(f"{self.gpu}|{self.trt.__version__}".encode()).hexdigest()[:16]
        return self.cache / f"timing-{name}.cache"

    def _build(self, graph: str, key: BuildKey, tier: Tier) -> bytes:
        trt = self.trt
        builder = trt.Builder(self.logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, self.logger)
        onnx_path = self.export.graph_file(graph)
        if not parser.parse(onnx_path.read_bytes()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise ReadError(f"TensorRT cannot parse the graph: {errors}", path=onnx_path,
                            hint="re-export with `tcvom export`")
        config = builder.create_builder_config()
        if self.precision == "fp16":
            config.set_flag(trt.BuilderFlag.FP16)
        elif self.precision == "bf16":
            config.set_flag(trt.BuilderFlag.BF16)  # TensorRT 9.0 and later
        profile = builder.create_optimization_profile()
        for name, (lo, opt, hi) in key.profile.items():
            profile.set_shape(name, lo, opt, hi)
        config.add_optimization_profile(profile)
        timing_path = self._timing_cache_path()
        timing = config.create_timing_cache(timing_path.read_bytes() if timing_path.is_file() else b"")
        config.set_timing_cache(timing, ignore_mismatch=False)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise ReadError(f"TensorRT could not build an engine for {graph} ({tier.name})", path=onnx_path)
        _write_atomic(timing_path, bytes(config.get_timing_cache().serialize()))
        return bytes(serialized)

    @staticmethod
    def _cached(runtime: Any, path: Path, key: BuildKey) -> tuple[Any, str]:
        """(the cached engine, "") or (None, why it cannot be used)."""
        reason = stale_reason(path, key)
        if reason is not None:
            return None, reason
        engine = runtime.deserialize_cuda_engine(path.read_bytes())
        return (engine, "") if engine is not None else (None, "it does not deserialise")

    def _load(self, graph: str, tier: Tier) -> Any:
        trt = self.trt
        key = build_key(self.export, graph, tier, self.precision, gpu=self.gpu, tensorrt_version=trt.__version__,
                        memory_frames=self.memory_frames)
        path = engine_path(key, self.cache)
        runtime = trt.Runtime(self.logger)
        engine, reason = self._cached(runtime, path, key)
        if engine is not None:
            return engine
        # GPUs of one host share the cache: the first builds, the others wait and load it.
        with exclusive_lock(path.with_name(f".{path.name}.lock"),
                            on_wait=lambda: self.log(f"waiting for another process building {path.name}")):
            engine, reason = self._cached(runtime, path, key)
            if engine is not None:
                return engine
            self.log(f"building the TensorRT engine {path.name} ({reason}); this takes minutes once")
            data = self._build(graph, key, tier)
            _write_atomic(path, data)
            _write_atomic(path.with_suffix(".json"), (json.dumps(key.to_json(), indent=2) + "\n").encode())
        engine = runtime.deserialize_cuda_engine(data)
        if engine is None:
            raise ReadError("TensorRT cannot load the engine it just built", path=path)
        return engine

    # --- the engine interface ----------------------------------------------------------

    def begin_shot(self, height: int, width: int) -> None:
        super().begin_shot(height, width)
        tier = choose_tier(height, width, self.tiers)
        if tier != self.tier:
            self.deactivate()
            for graph in self.graphs:
                self._engines[graph] = self._load(graph, tier)
                self._contexts[graph] = self._engines[graph].create_execution_context()
            self.tier = tier
            self.active = True
        self._bound.clear()

    def activate(self) -> None:
        if self.tier is None:
            raise InputError("call begin_shot(height, width) before running TensorRT graphs")
        super().activate()

    def deactivate(self) -> None:
        self._bound.clear()
        self._contexts.clear()
        self._engines.clear()
        self.tier = None
        super().deactivate()

    def _bind(self, spec: GraphSpec, inputs: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        shapes = tuple(tuple(inputs[n].shape) for n in spec.input_names)
        bound = self._bound.get(spec.name)
        if bound is not None and bound[0] == shapes:
            return bound[1], bound[2]
        assert self.tier is not None
        frames = memory_count(spec, inputs)
        if frames is not None and frames > self.memory_frames[2]:
            raise InputError(f"{frames} memory frames; the TensorRT profile allows {self.memory_frames[2]}",
                             hint="lower --max-memory, or build with larger memory_frames")
        context = self._contexts[spec.name]
        ins: dict[str, Tensor] = {}
        for name, shape in zip(spec.input_names, shapes, strict=True):
            context.set_input_shape(name, shape)
            ins[name] = torch.empty(shape, dtype=torch.float32, device=self.device)
            context.set_tensor_address(name, ins[name].data_ptr())
        outs: dict[str, Tensor] = {}
        for name in spec.output_names:
            shape = tuple(context.get_tensor_shape(name))
            outs[name] = torch.empty(shape, dtype=torch.float32, device=self.device)
            context.set_tensor_address(name, outs[name].data_ptr())
        self._bound[spec.name] = (shapes, ins, outs)
        return ins, outs

    def _infer(self, spec: GraphSpec, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        ins, outs = self._bind(spec, inputs)
        for name, buffer in ins.items():
            buffer.copy_(inputs[name])
        stream = torch.cuda.current_stream(self.device)
        if not self._contexts[spec.name].execute_async_v3(stream.cuda_stream):
            raise RuntimeError(f"TensorRT failed to run {spec.network} {spec.name}")
        return {name: t.clone() for name, t in outs.items()}
