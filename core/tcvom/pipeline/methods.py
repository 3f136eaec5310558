"""The matting methods and how each one's propagator and session are built.

``classical`` needs no downloaded weights (optical-flow propagation, pymatting, a
TAM-like temporal step); ``tcvom`` is the paper's STM trimap propagation and GCA+TAM
matting, which need weight files. ``auto`` picks ``tcvom`` when its weights are found
and ``classical`` otherwise, with a one-line notice.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tcvom.errors import InputError, MissingWeightsError

METHODS: tuple[str, ...] = ("auto", "classical", "tcvom")
BACKENDS: tuple[str, ...] = ("torch", "onnxruntime", "tensorrt")
WEIGHTS_NOTICE = (
    "no network weights found: using the built-in classical method "
    "(install weights with `tcvom weights add FILE` to use the TCVOM networks)"
)


def _find(kind: str, explicit: str | Path | None) -> Path | None:
    try:
        from tcvom.weights.registry import find_weights
    except ImportError:
        return Path(explicit) if explicit else None
    try:
        return find_weights(kind, explicit)
    except MissingWeightsError:
        if explicit:
            raise
        return None


def resolve(method: str, stage: str, weights: str | Path | None, notice: Callable[[str], None] | None = None) -> str:
    """The concrete method (``classical`` or ``tcvom``) for ``stage`` ("trimaps"/"matte")."""
    if method not in METHODS:
        raise InputError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    if method != "auto":
        return method
    kind = "stm" if stage == "trimaps" else "gca_tam"
    if weights is not None or _find(kind, None) is not None:
        return "tcvom"
    if notice is not None:
        notice(WEIGHTS_NOTICE)
    return "classical"


def default_finetune_steps(device: str) -> int:
    """Online fine-tuning steps when none are asked for: the reference's 500 on a GPU, none
    on a CPU (a 512x512 step takes seconds there; pass --finetune-steps to insist)."""
    return 500 if str(device).startswith("cuda") else 0


def _check_backend(method: str, backend: str) -> None:
    if backend not in BACKENDS:
        raise InputError(f"back-end must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if method == "classical" and backend != "torch":
        raise InputError(f"the classical method runs no network; --backend {backend} applies to --method tcvom")
    if method == "tcvom":
        from tcvom.engines import require

        require(backend)  # MissingDependencyError (exit 3) naming the extra


def make_propagator(
    method: str, *, weights: str | Path | None = None, device: str = "cpu", backend: str = "torch", **options: Any
) -> Any:
    """A propagator (see :mod:`tcvom.propagation.ensemble`) for a concrete method."""
    _check_backend(method, backend)
    if method == "classical":
        from tcvom.classical import FlowPropagator

        return FlowPropagator(**options)
    if method == "tcvom":
        from tcvom.models.stm import load_stm_model
        from tcvom.propagation.stm import StmPropagator

        path = _find("stm", weights)
        if path is None:
            raise MissingWeightsError(
                "the tcvom method needs STM trimap weights",
                hint="pass --weights FILE, set TCVOM_WEIGHTS, or run `tcvom weights add FILE`",
            )
        if options.get("finetune_steps") is None:
            options["finetune_steps"] = default_finetune_steps(device) if backend == "torch" else 0
        engine_options = options.pop("engine_options", None) or {}
        export_dir = options.pop("export_dir", None)
        model = load_stm_model(path, device=device if backend == "torch" else "cpu")
        if backend == "torch":
            return StmPropagator(model, device=device, **options)
        from tcvom.engines import open_engine
        from tcvom.weights.checkpoints import sha256

        engine = open_engine(backend, model, device=device, weights_sha256=sha256(path), export_dir=export_dir,
                             **engine_options)
        return StmPropagator(model, device="cpu", engine=engine, **options)
    raise InputError(f"unknown method {method!r}")


def make_session(
    method: str,
    frames: Any,
    trimaps: Any,
    *,
    weights: str | Path | None = None,
    device: str = "cpu",
    backend: str = "torch",
    **options: Any,
) -> Any:
    """A matting session (``alpha(frame)``, ``alphas(frames)``) for a concrete method."""
    _check_backend(method, backend)
    if method == "classical":
        from tcvom.classical import ClassicalSession

        return ClassicalSession(frames, trimaps, **options)
    if method == "tcvom":
        from tcvom.matting.gca_session import build_session

        path = _find("gca_tam", weights)
        if path is None:
            raise MissingWeightsError(
                "the tcvom method needs GCA+TAM matting weights",
                hint="pass --weights FILE, set TCVOM_WEIGHTS, or run `tcvom weights add FILE`",
            )
        return build_session(frames, trimaps, path, device=device, backend=backend, **options)
    raise InputError(f"unknown method {method!r}")
