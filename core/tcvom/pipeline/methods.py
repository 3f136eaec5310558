"""The matting methods and how each one's propagator and session are built.

``classical`` needs no downloaded weights (optical-flow propagation, pymatting, a
TAM-like temporal step); ``tcvom`` is the paper's STM trimap propagation and video
matting with one of its bases (GCA, FBA, DIM, IndexNet, with the TAM or as the
single-image baseline; ``base`` picks among registered weights), which need weight files. ``auto`` picks ``tcvom`` when weights of the stage's
kind are configured and ``classical``, with a one-line notice, only when none are: a
configured path that is missing or unreadable is an error (exit code 2), never a silent
fallback (:func:`tcvom.weights.registry.configured_weights`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tcvom.errors import InputError, check_choice

METHODS: tuple[str, ...] = ("auto", "classical", "tcvom")
BACKENDS: tuple[str, ...] = ("torch", "onnxruntime", "tensorrt")

FINETUNE_SCOPES: tuple[str, ...] = ("segment", "shot")
WEIGHTS_NOTICE = (
    "no {network} weights found (looked in {where}): the {stage} use the built-in classical method "
    "(install weights with `tcvom weights add FILE` to use the TCVOM networks)"
)


#: One precision option for every back-end (docs/backends.md, "Precision"): ``auto`` is fp16
#: for TensorRT and fp32 for the others. torch: the matting network's dtype (the STM network
#: runs float32); onnxruntime: fp32 only; tensorrt: builder flags for both networks.
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "fp16", "bf16")
TORCH_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def cpu_has_fast_bf16() -> bool:
    """Whether oneDNN runs bf16 natively on this CPU (AVX512-BF16 or AMX)."""
    import torch

    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(check()) if check is not None else False


def check_device(backend: str, device: str) -> None:
    """Refuse (exit 2) a ``device`` the back-end cannot run on here before any file is read
    or written: a name that is no device (a typo, mps), for torch ``cuda`` without CUDA, for
    onnxruntime a device its build has no execution provider for (the TensorRT engine
    checks its own when it is opened)."""
    from tcvom.models.devices import parse_device, resolve_device

    if backend == "torch":
        resolve_device(device)
        return
    parsed = parse_device(device)
    if backend == "onnxruntime":
        from tcvom.engines.onnxruntime_engine import choose_providers

        choose_providers(parsed)


def resolve_precision(precision: str, backend: str, device: str = "cpu") -> str:
    """``auto``/``fp32``/``fp16``/``bf16`` for ``backend`` on ``device`` -> the concrete one.

    Raises InputError (exit 2) naming what to use instead where the back-end or the
    device cannot run it, or where it would be slower than fp32 (half precision on CPU).
    """
    check_choice(precision, PRECISIONS, "precision")
    if precision == "auto":
        return "fp16" if backend == "tensorrt" else "fp32"
    if precision == "fp32":
        return precision
    if backend == "onnxruntime":
        raise InputError(
            f"the onnxruntime back-end runs the float32 ONNX export; {precision} is not available there",
            hint="use --precision fp32, or --backend torch (CUDA) / tensorrt for half precision",
        )
    if str(device).split(":")[0] == "cpu" and backend == "torch":
        if precision == "fp16":
            raise InputError(
                "fp16 on the CPU is unsupported by many operators and slower than fp32",
                hint="use --precision fp32 on the CPU (or bf16 on a CPU with AVX512-BF16), fp16 on --device cuda",
            )
        if not cpu_has_fast_bf16():
            raise InputError(
                "bf16 on this CPU is slower than fp32: it has no AVX512-BF16 or AMX",
                hint="use --precision fp32 on this CPU, or bf16 on --device cuda",
            )
    return precision


def matting_kind(base: str | None) -> str:
    """The weight kind looked up for matting with ``base`` (default GCA): its video network."""
    from tcvom.models.bases import check_base

    return f"{check_base(base or 'gca')}_tam"


def resolve(
    method: str,
    stage: str,
    weights: str | Path | None,
    notice: Callable[[str], None] | None = None,
    base: str | None = None,
    precision: str = "auto",
) -> str:
    """The concrete method (``classical`` or ``tcvom``) for ``stage`` ("trimaps"/"matte");
    ``base`` is the matting base whose weights ``auto`` looks for. Of ``classical``, asked
    for, ``notice`` says which of the weights, base and precision given it does not use."""
    check_choice(method, METHODS, "method")
    if method != "auto":
        if method == "classical" and notice is not None:
            unused = [f"the weights {weights}"] if weights is not None else []
            unused += [f"--base {base}"] if base is not None and stage == "matte" else []
            unused += [f"--precision {precision}"] if precision != "auto" else []
            if unused:
                notice(f"the classical method runs no network, so the {stage} stage does not use "
                       f"{' or '.join(unused)}")
        return method
    from tcvom.weights.registry import configured_weights

    kind = "stm" if stage == "trimaps" else matting_kind(base)
    if configured_weights(kind, weights) is not None:
        return "tcvom"
    if notice is not None:
        notice(_other_weights_notice(kind) or weights_notice(kind))
    return "classical"


def weights_notice(kind: str) -> str:
    """What ``auto`` says when no weights of ``kind`` are configured (each stage its own)."""
    from tcvom.weights import checkpoints, registry

    stage = "trimaps" if kind == "stm" else "mattes"
    # the folders (a data folder on a farm share that is not mounted is said, not hidden)
    where = ", ".join(str(p) for p in registry.search_locations())
    return WEIGHTS_NOTICE.format(network=checkpoints.kind_name(kind), stage=stage, where=where)


def _other_weights(kind: str) -> str | None:
    """What is configured where no matting weights of ``kind`` are, and how to use it: the
    single-image baseline of the base asked for, or the video network or single-image
    baseline of another base (``auto`` picks none: the one is not the TCVOM network, the
    others not the base asked for); None when nothing is."""
    from tcvom.models.bases import BASES
    from tcvom.weights.checkpoints import kind_name
    from tcvom.weights.registry import configured_weights, weights_flag

    if not kind.endswith("_tam"):
        return None
    single = kind.removesuffix("_tam")
    found = configured_weights(single)
    if found is not None:
        return (f"only {kind_name(single)} is ({found}): pass it with {weights_flag(single, named=True)} to matte with the "
                "single-image network, or add the TAM weights with `tcvom weights add FILE`")
    video = [(base, configured_weights(f"{base}_tam")) for base in BASES if base != single]
    video = [(base, found) for base, found in video if found is not None]
    if video:  # every one of them: the artist picks the base
        return "; ".join(f"{kind_name(base + '_tam')} weights are ({found}): pass --base {base} to matte with them"
                         for base, found in video)
    for base in (b for b in BASES if b != single):
        found = configured_weights(base)
        if found is not None:
            return (f"{kind_name(base)} is ({found}): pass it with {weights_flag(base, named=True)} and --base {base} "
                    "(or no --base) to matte with that single-image network")
    return None


def _other_weights_notice(kind: str) -> str | None:
    """Why ``auto`` falls back to the classical method where :func:`_other_weights` finds
    other weights."""
    from tcvom.weights.checkpoints import kind_name

    other = _other_weights(kind)
    if other is None:
        return None
    return f"no {kind_name(kind)} weights found, but {other}; the built-in classical method is used"


def locate_weights(kind: str, weights: str | Path | None) -> Path:
    """:func:`tcvom.weights.registry.find_weights`; where no matting weights of ``kind`` are
    found, the error says which other matting weights are (:func:`_other_weights`)."""
    from tcvom.errors import MissingWeightsError
    from tcvom.weights.registry import find_weights

    try:
        return find_weights(kind, weights)
    except MissingWeightsError as exc:
        other = _other_weights(kind)
        if other is None:
            raise
        raise MissingWeightsError(exc.message, path=exc.path, frame=exc.frame, hint=other) from None


# The last network of each role ("stm", "matting") loaded in this process, keyed by its
# file's identity and placement: the chunks of `run --chunk N` (and the tasks of one farm
# worker) load each weight file once. Networks are only read (fine-tuning works on a copy).
_NETWORKS: dict[str, tuple[tuple[Any, ...], Any]] = {}


def network(role: str, path: str | Path, *, device: str = "cpu", dtype: Any = "float32", base: str | None = None) -> Any:
    """The network of ``role`` (``"stm"``, or ``"matting"``: any base, with or without the
    TAM; ``base``, when given, must be the file's) loaded from ``path`` on ``device`` in
    ``dtype``, loaded once per process."""
    from tcvom.io.hashing import file_identity

    key = (file_identity(path), str(device), str(dtype), base)
    cached = _NETWORKS.get(role)
    if cached is not None and cached[0] == key:
        return cached[1]
    _NETWORKS.pop(role, None)  # free the previous network before loading another
    if role == "stm":
        from tcvom.models.stm import load_stm_model

        model = load_stm_model(path, device=device)
    elif role == "matting":
        from tcvom.matting.gca_session import load_matting_model

        model = load_matting_model(path, device=device, dtype=dtype, base=base)
    else:
        raise ValueError(f"unknown network role {role!r}")
    _NETWORKS[role] = (key, model)
    return model


def default_finetune_steps(device: str) -> int:
    """Online fine-tuning steps when none are asked for: the reference's 500 on a GPU, none
    on a CPU (a 512x512 step takes seconds there; pass --finetune-steps to insist)."""
    return 500 if str(device).startswith("cuda") else 0


def check_backend(method: str, backend: str, export_dir: str | Path | None = None, asked: str | None = None,
                  notice: Callable[[str], None] | None = None, stage: str = "this") -> None:
    """Refuse a back-end the concrete ``method`` cannot use (or whose package is missing),
    and an ``export_dir`` that back-end would not read, before a stage plans or reads anything.
    ``asked`` is the method the user gave: a stage that ``auto`` made classical (no weights
    of its kind) leaves the back-end to the stage that runs a network, and ``notice`` (a
    stage's) says that the ``stage`` does not use it."""
    check_choice(backend, BACKENDS, "back-end")
    if export_dir is not None and backend == "torch":
        raise InputError(f"--export-dir {export_dir}: an export folder (`tcvom export`'s ONNX graphs) is read only "
                         "by --backend onnxruntime or tensorrt; --backend torch runs the weight file itself",
                         hint="add --backend onnxruntime (or tensorrt) to run them, or leave --export-dir out")
    if method == "classical" and backend != "torch" and asked in (None, "classical"):
        raise InputError(f"the classical method runs no network; --backend {backend} applies to --method tcvom")
    if method == "classical" and backend != "torch" and notice is not None:
        notice(f"--backend {backend} is not used by the {stage} stage: it has no network weights, so it runs the "
               "classical method")
    if method == "tcvom":
        from tcvom.engines import require

        require(backend)  # MissingDependencyError (exit 3) naming the extra
        folder = None if export_dir is None else Path(export_dir)
        if folder is not None and not folder.is_dir():  # its exports: the stage checks them (jobs._check_export)
            raise InputError("--export-dir is not a folder" if folder.exists() else "--export-dir does not exist",
                             path=folder, hint="give the folder `tcvom export --out DIR` wrote")


def check_method_options(method: str, stage: str, options: object) -> dict[str, Any]:
    """The keyword options of ``method``'s ``stage`` ("trimaps" or "matte"; the Python API's
    ``method_options`` / ``matte_options``) as a dict, checked against what the propagator
    or session takes: another type, or a keyword it takes none for, is an InputError naming
    them and the ones it takes (TypeErrors from deep inside before)."""
    if options is None:
        return {}
    if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
        raise InputError(f"the options of the {stage} stage are a mapping of keyword to value, not {options!r}")
    if method == "classical":
        from tcvom.classical import ClassicalSession, FlowPropagator

        target: Any = FlowPropagator if stage == "trimaps" else ClassicalSession
        also: tuple[str, ...] = ()
        given: tuple[str, ...] = ()
    elif stage == "trimaps":
        from tcvom.propagation.stm import StmPropagator

        target, also, given = StmPropagator, ("engine_options", "export_dir"), ("device", "engine")
    else:
        from tcvom.matting.gca_session import build_session

        target, also, given = build_session, (), ("device", "backend", "base", "export_progress")
    params = inspect.signature(target).parameters
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    taken = {name for name, p in params.items() if p.kind in kinds} | set(also)
    yours = taken - set(given) - {"self", "frames", "trimaps", "model", "weights"}  # the call fills in the rest
    unknown = sorted(k for k in options if k not in yours)
    if unknown:
        raise InputError(f"the {method} method's {stage} stage takes no option {', '.join(unknown)}",
                         hint=f"it takes {', '.join(sorted(yours))}")
    return dict(options)


def make_propagator(
    method: str, *, weights: str | Path | None = None, device: str = "cpu", backend: str = "torch",
    notices: Callable[[str], None] | None = None, **options: Any
) -> Any:
    """A propagator (see :mod:`tcvom.propagation.ensemble`) for a concrete method. ``notices``
    is told the steps of an ONNX back-end's export into the user cache on first use, and a
    wait on another process's (the job's messages, :meth:`tcvom.progress.Progress.message`:
    a first run's minute of exporting is no silent hang)."""
    check_backend(method, backend)
    check_method_options(method, "trimaps", options)
    if method == "classical":
        from tcvom.classical import FlowPropagator

        return FlowPropagator(**options)
    if method == "tcvom":
        from tcvom.propagation.stm import StmPropagator
        from tcvom.weights.registry import find_weights

        path = find_weights("stm", weights)
        if options.get("finetune_steps") is None:
            options["finetune_steps"] = default_finetune_steps(device) if backend == "torch" else 0
        engine_options = options.pop("engine_options", None) or {}
        export_dir = options.pop("export_dir", None)
        model = network("stm", path, device=device if backend == "torch" else "cpu")
        if backend == "torch":
            return StmPropagator(model, device=device, **options)
        from tcvom.engines import open_engine
        from tcvom.io.hashing import file_sha256

        engine = open_engine(backend, model, device=device, weights_sha256=file_sha256(path), export_dir=export_dir,
                             progress=notices, **engine_options)
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
    base: str | None = None,
    notices: Callable[[str], None] | None = None,
    **options: Any,
) -> Any:
    """A matting session (``alpha(frame)``, ``alphas(frames)``) for a concrete method;
    ``base`` picks the registered weights of that base (default GCA) and is checked
    against an explicit ``weights`` file; ``notices`` as :func:`make_propagator`'s."""
    check_backend(method, backend)
    check_method_options(method, "matte", options)
    if method == "classical":
        from tcvom.classical import ClassicalSession

        return ClassicalSession(frames, trimaps, **options)
    if method == "tcvom":
        from tcvom.matting.gca_session import build_session

        path = locate_weights(matting_kind(base), weights)
        dtype = options.get("dtype", "float32")
        model = network("matting", path, device=device if backend == "torch" else "cpu",
                        dtype=dtype if backend == "torch" else "float32", base=base)
        return build_session(frames, trimaps, path, device=device, backend=backend, model=model,
                             export_progress=notices, **options)
    raise InputError(f"unknown method {method!r}")
