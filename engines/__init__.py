"""Inference back-ends: each runs the named graphs of one network on tensors behind one
small interface (:class:`tcvom.engines.base.Engine`).

==============  ===========================================  =============================
back-end        runs                                         needs
==============  ===========================================  =============================
``torch``       the eager model (CPU/CUDA, fp16/bf16,        nothing extra
                channels-last, CUDA graphs)
``onnxruntime`` the ONNX export (CPU; CUDA/TensorRT EPs)     ``pip install 'tcvom[onnx]'``
``tensorrt``    engines built from the ONNX export (CUDA)    ``pip install 'tcvom[tensorrt]'``
==============  ===========================================  =============================

:func:`open_engine` builds one from a loaded model; heavy back-ends are imported only
when asked for.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tcvom.engines.base import Engine, cache_dir
from tcvom.errors import InputError, MissingDependencyError

BACKENDS: tuple[str, ...] = ("torch", "onnxruntime", "tensorrt")

__all__ = ["BACKENDS", "Engine", "available", "cache_dir", "open_engine", "require"]


def require(backend: str) -> None:
    """Raise MissingDependencyError (exit 3, naming the extra) when ``backend``'s packages
    are not installed; InputError for an unknown back-end."""
    if backend not in BACKENDS:
        raise InputError(f"back-end must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if backend == "onnxruntime":
        from tcvom.engines.onnxruntime_engine import import_onnxruntime

        import_onnxruntime()
        _need_onnx(backend)
    elif backend == "tensorrt":
        from tcvom.engines.tensorrt_engine import import_tensorrt

        import_tensorrt()
        _need_onnx(backend)


def _need_onnx(backend: str) -> None:
    # the graphs these back-ends run are written by the ONNX export
    if importlib.util.find_spec("onnx") is None:
        raise MissingDependencyError("onnx", "onnx", purpose=f"the {backend} back-end")


def available() -> dict[str, bool]:
    """Back-end -> whether its packages are installed here."""
    result = {}
    for backend in BACKENDS:
        try:
            require(backend)
            result[backend] = True
        except MissingDependencyError:
            result[backend] = False
    return result


def check_made_from(export: Any, weights_sha256: str | None) -> None:
    """Refuse an export (:class:`tcvom.export.ExportManifest`) made from other weights than
    those of ``weights_sha256``: its mattes would be those weights' under this file's name."""
    made_from = (export.data.get("weights") or {}).get("sha256")
    if weights_sha256 is not None and made_from != weights_sha256:
        raise InputError(
            f"this export was made from other weights (SHA-256 {str(made_from)[:12]}...), not the weights "
            f"asked for ({weights_sha256[:12]}...)",
            path=export.path,
            hint="export these weights (`tcvom export --weights FILE --out DIR`), or leave --export-dir out: "
            "tcvom then exports them into its cache on first use",
        )


def open_engine(
    backend: str,
    model: nn.Module,
    *,
    device: str | torch.device = "cpu",
    weights_sha256: str | None = None,
    export_dir: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
    **options: Any,
) -> Engine:
    """An engine of ``backend`` for ``model`` (GCA+TAM, GCA or STM, weights loaded).

    ``torch`` wraps the model (``options``: channels_last, cuda_graphs). ``onnxruntime``
    and ``tensorrt`` run its ONNX export: from ``export_dir`` when given (checked against
    the model's network, and against ``weights_sha256`` when given), else from the user cache folder, exported there on first use
    (:func:`tcvom.export.cached_export`, keyed by ``weights_sha256``). ``options`` go to
    the engine (onnxruntime: providers, threads; tensorrt: precision, tiers,
    memory_frames, cache).
    """
    require(backend)
    if backend == "torch":
        from tcvom.engines.torch_engine import TorchEngine

        return TorchEngine(model, device=device, **options)
    from tcvom.export.graphs import network_of
    from tcvom.export.onnx_export import cached_export, read_manifest

    if export_dir is not None:
        export = read_manifest(export_dir, network_of(model))
        check_made_from(export, weights_sha256)
    else:
        export = cached_export(model, weights_sha256=weights_sha256, progress=progress)
    if backend == "onnxruntime":
        from tcvom.engines.onnxruntime_engine import OnnxRuntimeEngine

        return OnnxRuntimeEngine(export, device=device, **options)
    from tcvom.engines.tensorrt_engine import TensorRTEngine

    return TensorRTEngine(export, device=device, log=progress, **options)
