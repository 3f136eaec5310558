"""ONNX export of the networks' cached split, with a manifest and a parity check.

:func:`export_network` writes, into one folder, one ``.onnx`` file per graph of
:mod:`tcvom.export.graphs` (dynamic H and W, dynamic number of memory frames for STM,
opset :data:`OPSET`), checked with ``onnx.checker``, and ``<network>.json``: the graphs'
files, inputs, outputs and symbolic shapes, their SHA-256, and the source weights'
SHA-256. Then every graph is run in ONNX Runtime on random inputs at a size other than
the traced one and compared with the eager PyTorch model; above the tolerance the export
fails with :class:`ParityError`, and the folder keeps its earlier export (the graphs are
written and checked in a staging folder, then moved in with the manifest last).

Example::

    from tcvom.export import export_weights
    export_weights("GCA_TAM.pth", "exported/")      # exported/gca_tam.json + 2 graphs
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import shutil
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from tcvom import __version__
from tcvom.errors import (
    InputError,
    MissingDependencyError,
    OutputError,
    ReadError,
    TcvomError,
    WeightsError,
)
from tcvom.export.graphs import GraphSpec, graph_modules, graph_specs, network_of, sample_inputs
from tcvom.export.quirks import export_mode
from tcvom.io.atomic import (
    ensure_writable_folder,
    move_into_place,
    remove_dead_temporaries,
    temporary_name,
    write_text,
)
from tcvom.io.hashing import file_sha256, state_sha256

OPSET = 17
#: Revision of the exported graphs' form (tcvom.export.quirks), part of the cache key of
#: :func:`cached_export`: bumped when the same weights export to different graphs, so a
#: cached export of an earlier revision is written again. 2: the TAM gathers the unknown
#: positions, the GCA block unfolds patches by convolution. 3: the decoder's upsampling
#: transposed convolutions by phases, the GCA self-mask scattered onto the diagonal (the
#: graphs changed in b5366ff, whose revision number was not bumped). 4: the decoder blocks'
#: upsampling shortcuts run their 1x1 convolution before the upsampling.
EXPORT_REVISION = 4
FORMAT = "tcvom-onnx/1"
#: Max absolute difference ONNX Runtime vs PyTorch allowed at export (fp32).
TOLERANCE = 1e-4
#: Networks whose float32 rounding alone exceeds :data:`TOLERANCE`: FBA's deep ResNet-50 with
#: GroupNorm and weight standardisation (its eager float32 and float64 results differ by
#: 3e-4 on the golden clip), so ONNX Runtime is held to 1e-3 x the output scale there.
NETWORK_TOLERANCE = {"fba_tam": 1e-3, "fba": 1e-3}
#: Traced size, then the (different) size the parity check runs at: proves H/W are dynamic.
TRACE_SIZE = (64, 64)
PARITY_SIZE = (96, 64)


class ParityError(TcvomError):
    """An exported graph does not reproduce the PyTorch model within the tolerance."""


@dataclass(frozen=True)
class ExportManifest:
    """A folder written by :func:`export_network` (read with :func:`read_manifest`)."""

    path: Path  # the JSON file
    network: str
    data: dict[str, Any]

    @property
    def folder(self) -> Path:
        return self.path.parent

    def graph_file(self, graph: str) -> Path:
        return self.folder / self.data["graphs"][graph]["file"]

    def graph_sha256(self, graph: str) -> str:
        return str(self.data["graphs"][graph]["sha256"])

    @property
    def graphs(self) -> tuple[str, ...]:
        return tuple(self.data["graphs"])


def _require_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise MissingDependencyError("onnx", "onnx", purpose="ONNX export") from None
    return onnx


def _require_ort() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise MissingDependencyError("onnxruntime", "onnx", purpose="the export's parity check") from None
    return onnxruntime


def _export_graph(module: nn.Module, spec: GraphSpec, inputs: Mapping[str, Tensor], opset: int) -> bytes:
    args = tuple(inputs[name] for name in spec.input_names)
    axes = {t.name: t.dynamic_axes() for t in (*spec.inputs, *spec.outputs)}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript-based exporter (no onnxscript needed) warns that it is legacy,
        # and the trace warns about Python ints taken from shapes that are constants here.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, args, buffer, dynamo=False, opset_version=opset, input_names=list(spec.input_names),
            output_names=list(spec.output_names), dynamic_axes=axes, do_constant_folding=True,
        )
    return buffer.getvalue()


def ort_session(path: str | Path, providers: list[str] | None = None, threads: int | None = None) -> Any:
    """An ONNX Runtime session of one graph file (CPU unless ``providers`` say otherwise);
    a file ONNX Runtime cannot load raises :class:`ReadError`. Without its CPU memory arena
    where the process keeps freed memory in its heap (:func:`tcvom.allocator.retaining`)."""
    from tcvom.allocator import retaining

    ort = _require_ort()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL  # fusions, constant folding
    options.enable_cpu_mem_arena = not retaining()
    if threads is not None:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), options, providers=providers or ["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ReadError(f"ONNX Runtime cannot load the graph: {exc}", path=path,
                        hint="re-export it with `tcvom export`") from exc


def check_parity(
    model: nn.Module,
    manifest: ExportManifest,
    *,
    size: tuple[int, int] = PARITY_SIZE,
    memory_frames: int = 3,
    tolerance: float = TOLERANCE,
    seed: int = 1,
) -> dict[str, float]:
    """Run every graph of ``manifest`` in ONNX Runtime (CPU) on random inputs at ``size``
    and compare with ``model`` in PyTorch (fp32, CPU).

    Returns graph -> largest absolute difference over its outputs. Raises
    :class:`ParityError` naming the graph and output when one exceeds ``tolerance`` times
    the output's scale (its largest magnitude, at least 1).
    """
    reference = _cpu_fp32(model)
    inputs = sample_inputs(reference, *size, memory_frames=memory_frames, seed=seed)
    modules = graph_modules(reference)
    result: dict[str, float] = {}
    for spec in graph_specs(manifest.network):
        feed = inputs[spec.name]
        with torch.inference_mode():
            expected = modules[spec.name](*(feed[n] for n in spec.input_names))
        expected = (expected,) if isinstance(expected, Tensor) else expected
        got = ort_session(manifest.graph_file(spec.name)).run(None, {n: t.numpy() for n, t in feed.items()})
        worst = 0.0
        for name, want, have in zip(spec.output_names, expected, got, strict=True):
            if tuple(have.shape) != tuple(want.shape):
                raise ParityError(f"graph {spec.name} output {name}: ONNX Runtime gives shape {have.shape}, "
                                  f"PyTorch {tuple(want.shape)}", path=manifest.graph_file(spec.name))
            if not bool(torch.isfinite(want).all()):  # PyTorch itself: the weights, not the export
                raise InputError(
                    f"graph {spec.name} output {name}: the network gives NaN or infinite values in PyTorch with "
                    "these weights, so no export can be checked",
                    path=manifest.data.get("weights", {}).get("source") or manifest.graph_file(spec.name),
                    hint="are the weights damaged or untrained? tcvom info --weights FILE")
            diff = float((torch.from_numpy(have) - want).abs().max()) if want.numel() else 0.0
            # fp32 rounding grows with the size of the values (logits of large weights reach
            # the hundreds), so the tolerance holds for outputs up to 1 and scales above it.
            scale = max(1.0, float(want.abs().max())) if want.numel() else 1.0
            if not diff <= tolerance * scale:  # also catches NaN
                raise ParityError(
                    f"graph {spec.name} output {name}: ONNX Runtime differs from PyTorch by {diff:.3g} "
                    f"(tolerance {tolerance:g} x output scale {scale:.3g}) at {size[1]}x{size[0]}",
                    path=manifest.graph_file(spec.name),
                    hint="this is an export bug; please report it with the manifest",
                )
            worst = max(worst, diff)
        result[spec.name] = worst
    return result


def _cpu_fp32(model: nn.Module) -> nn.Module:
    param = next(model.parameters())
    if param.device.type == "cpu" and param.dtype == torch.float32 and not model.training:
        return model
    import copy

    return copy.deepcopy(model).to(device="cpu", dtype=torch.float32).eval()


def export_network(
    model: nn.Module,
    out_dir: str | Path,
    *,
    weights_sha256: str | None = None,
    source: str | None = None,
    opset: int = OPSET,
    parity: bool = True,
    tolerance: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> ExportManifest:
    """Export ``model`` (GCA+TAM, GCA or STM, any weights) to ``out_dir``.

    Args:
        model: the network in eval mode; it is copied to CPU fp32 if it is not there.
        out_dir: created if missing; ``<network>.<graph>.onnx`` and ``<network>.json``
            are written there (an existing export of the same network is replaced).
        weights_sha256: the source weight file's SHA-256 (default: a hash of the state dict).
        source: the weight file's name, recorded in the manifest.
        opset: ONNX opset (17 or newer).
        parity: run :func:`check_parity` after writing (raises :class:`ParityError`).
        progress: called with a short line before each step.

    Returns:
        the :class:`ExportManifest` written.
    """
    onnx = _require_onnx()
    if parity:
        _require_ort()  # said before the graphs take their time, not after
    if opset < 17:
        raise InputError(f"the graphs need ONNX opset 17 or newer, not {opset}")
    say = progress or (lambda _line: None)
    network = network_of(model)
    model = _cpu_fp32(model)
    out = ensure_writable_folder(out_dir)
    # The graphs are written and checked in a staging folder; only a checked export replaces
    # the folder's earlier one (a failed export leaves that one as it was). It is named as a
    # temporary: an export killed with it in place leaves one the next export removes.
    remove_dead_temporaries(out)
    staging = temporary_name(out / f"{network}.export")
    try:
        staging.mkdir()
    except OSError as exc:
        raise OutputError(f"cannot write the export ({exc.strerror})", path=out) from exc
    try:
        inputs = sample_inputs(model, *TRACE_SIZE, memory_frames=2)
        modules = graph_modules(model)
        graphs: dict[str, Any] = {}
        with export_mode(model):
            for spec in graph_specs(network):
                say(f"exporting {network} {spec.name}")
                data = _export_graph(modules[spec.name], spec, inputs[spec.name], opset)
                proto = onnx.load_from_string(data)
                onnx.checker.check_model(proto, full_check=True)
                name = f"{network}.{spec.name}.onnx"
                (staging / name).write_bytes(data)
                graphs[spec.name] = {"file": name, "sha256": hashlib.sha256(data).hexdigest(), **spec.to_json()}
        record: dict[str, Any] = {
            "format": FORMAT,
            "network": network,
            "opset": opset,
            "tcvom": __version__,
            "torch": torch.__version__,
            "weights": {"source": source, "sha256": weights_sha256 or state_sha256(model)},
            "size_multiple": 32,
            "graphs": graphs,
        }
        if parity:
            say(f"checking {network} in ONNX Runtime against PyTorch")
            default = NETWORK_TOLERANCE.get(network, TOLERANCE)
            asked = tolerance is not None and tolerance < default  # tighter than the default: the user's to loosen
            if tolerance is None:
                tolerance = default
            try:
                diffs = check_parity(model, ExportManifest(staging / f"{network}.json", network, record),
                                     tolerance=tolerance)
            except ParityError as exc:  # name what was exported, not the staging folder removed below
                message = f"the {network} export of {source or 'these weights'} failed its check: {exc.message}"
                if asked:  # the user's tolerance, tighter than float32 reaches: theirs to loosen
                    raise InputError(message, path=out, hint="the tolerance asked for is not met; leave --tolerance "
                                     f"out (default {default:g}) or loosen it; the folder's earlier export is kept"
                                     ) from exc
                raise ParityError(message, path=out, hint="this is an export bug; please report it with the "
                                  "weights' source and this message; the folder's earlier export is kept") from exc
            record["parity"] = {"size": list(PARITY_SIZE), "tolerance": tolerance, "max_abs_diff": diffs}
        manifest_path = out / f"{network}.json"
        manifest_path.unlink(missing_ok=True)  # graphs and manifest are replaced together: no mixed export
        for graph in graphs.values():
            move_into_place(staging / graph["file"], out / graph["file"])
        write_text(manifest_path, json.dumps(record, indent=2) + "\n")
    except OSError as exc:
        raise OutputError(f"cannot write the export ({exc.strerror})", path=out) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportManifest(manifest_path, network, record)


def _check_export_options(opset: int, tolerance: float | None) -> None:
    import importlib

    newest = int(getattr(importlib.import_module("torch.onnx._constants"), "ONNX_MAX_OPSET", OPSET))
    if not OPSET <= opset <= newest:
        raise InputError(f"opset {opset} is not one tcvom exports: give {OPSET} to {newest} (this torch's newest)")
    if tolerance is not None and not (math.isfinite(tolerance) and tolerance > 0):
        raise InputError(f"the parity tolerance must be a positive number, not {tolerance}",
                         hint="leave --tolerance out for the default, or skip the check with --no-parity")


def _load_for_export(path: Path) -> nn.Module:
    """The network in a weight file; every error names the file."""
    from tcvom.models.bases import MATTING_KINDS
    from tcvom.weights import checkpoints

    state = checkpoints.read_state_dict(path)
    kind = checkpoints.identify(state)
    try:
        if kind == "stm":
            from tcvom.models.stm import load_stm_model

            return load_stm_model(state)
        if kind in MATTING_KINDS:
            from tcvom.matting.gca_session import load_matting_model

            return load_matting_model(state)
    except WeightsError as exc:
        if exc.path is not None:
            raise
        raise WeightsError(exc.message, path=path, hint=exc.hint) from exc
    raise InputError("this file holds no tcvom network (a matting base with or without the TAM, or STM)",
                     path=path, hint="check it with `tcvom info --weights FILE`")


def export_weights(
    weights: str | Path,
    out_dir: str | Path,
    *,
    opset: int = OPSET,
    parity: bool = True,
    tolerance: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> ExportManifest:
    """Export the network in a weight file (any matting base with or without the TAM, or
    STM, detected from its keys). ``opset`` runs from :data:`OPSET` to the newest the
    installed torch exports; ``tolerance`` must be positive (the parity check's)."""
    return export_files([weights], out_dir, opset=opset, parity=parity, tolerance=tolerance, progress=progress)[0]


def export_files(
    weights: Sequence[str | Path],
    out_dir: str | Path,
    *,
    opset: int = OPSET,
    parity: bool = True,
    tolerance: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[ExportManifest]:
    """:func:`export_weights` of several files into one folder, which holds one export per
    network. Every file is read and checked, and two files of one network are refused,
    before anything is written."""
    _check_export_options(opset, tolerance)
    _require_onnx()
    if parity:
        _require_ort()  # before every file is loaded
    models: dict[str, tuple[Path, nn.Module]] = {}
    for item in weights:
        path = Path(item)
        model = _load_for_export(path)
        network = network_of(model)
        if network in models:
            raise InputError(
                f"{models[network][0]} and {path} both hold the {network} network; an export folder holds one "
                "export of each network, so one would overwrite the other",
                hint="export them into separate folders (one `tcvom export` each)",
            )
        models[network] = (path, model)
    return [export_network(model, out_dir, weights_sha256=file_sha256(path), source=path.name, opset=opset,
                           parity=parity, tolerance=tolerance, progress=progress)
            for path, model in models.values()]


def read_manifest(folder: str | Path, network: str, *, verify: bool = True) -> ExportManifest:
    """The export of ``network`` in ``folder`` (or a ``<network>.json`` path).

    With ``verify`` every graph file must exist and have the SHA-256 the manifest records
    (a changed, truncated or swapped file raises :class:`ReadError`).
    """
    p = Path(folder)
    path = p if p.suffix == ".json" else p / f"{network}.json"
    if not path.is_file():
        raise InputError(f"no {network} export here", path=path, hint="write one with `tcvom export`")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ReadError(f"unreadable export manifest: {exc}", path=path) from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ReadError(f"not a {FORMAT} manifest", path=path, hint="re-export with `tcvom export`")
    if data.get("network") != network:
        raise InputError(f"this export holds the {data.get('network')} network, not {network}", path=path)
    expected = {s.name for s in graph_specs(network)}
    graphs = data.get("graphs")
    if not isinstance(graphs, dict) or not all(
            isinstance(g, dict) and isinstance(g.get("file"), str) and isinstance(g.get("sha256"), str)
            for g in graphs.values()):  # a hand-edited manifest: a traceback before
        raise ReadError("the manifest's graphs are not a mapping of graph name to its file and sha256", path=path,
                        hint="re-export with `tcvom export`")
    if not isinstance(data.get("weights") or {}, dict):
        raise ReadError("the manifest's weights are not a mapping (sha256, source)", path=path,
                        hint="re-export with `tcvom export`")
    if set(graphs) != expected:
        raise ReadError(f"the manifest lists graphs {sorted(graphs)}, expected {sorted(expected)}", path=path)
    manifest = ExportManifest(path, network, data)
    if verify:
        verify_graphs(manifest)
    return manifest


def verify_graphs(manifest: ExportManifest) -> None:
    """Every graph file of ``manifest`` must exist and have the SHA-256 it records (a
    changed, truncated or swapped file raises :class:`ReadError`; hashed once a process)."""
    for graph in manifest.graphs:
        file = manifest.graph_file(graph)
        if not file.is_file():
            raise ReadError(f"the {graph} graph is missing", path=file, hint="re-export with `tcvom export`")
        if file_sha256(file) != manifest.graph_sha256(graph):
            raise ReadError(f"the {graph} graph does not match its manifest (changed or corrupt file)",
                            path=file, hint="re-export with `tcvom export`")


def check_graph_io(session: Any, spec: GraphSpec, path: Path) -> None:
    """An ONNX Runtime / TensorRT graph must have the spec's input and output names."""
    inputs = tuple(i.name for i in session.get_inputs())
    outputs = tuple(o.name for o in session.get_outputs())
    if inputs != spec.input_names or outputs != spec.output_names:
        raise ReadError(
            f"this graph has inputs {list(inputs)} and outputs {list(outputs)}; the {spec.network} "
            f"{spec.name} graph has {list(spec.input_names)} -> {list(spec.output_names)}",
            path=path, hint="re-export with `tcvom export`",
        )


def cached_export(
    model: nn.Module,
    *,
    weights_sha256: str | None = None,
    source: str | None = None,
    root: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> ExportManifest:
    """The ONNX export of ``model`` in the user cache folder, written (with the parity
    check) the first time: ``<cache>/onnx/<network>-<weights hash>-opset<N>-r<revision>-tcvom<version>/``.

    The folder is keyed by the weights' SHA-256 (``weights_sha256``, else a hash of the
    state dict), the opset, the export revision (:data:`EXPORT_REVISION`) and the tcvom version; a manifest or graph that fails
    :func:`read_manifest`'s checks is exported again. Processes that share the cache (the
    GPUs of one host) export under a lock (:func:`tcvom.farm.locks.exclusive_lock`): the
    first exports, the others wait and use its export.
    """
    from tcvom.engines.base import cache_dir
    from tcvom.farm.locks import exclusive_lock

    network = network_of(model)
    digest = weights_sha256 or state_sha256(model)
    base = (cache_dir() / "onnx") if root is None else Path(root)
    folder = base / f"{network}-{digest[:16]}-opset{OPSET}-r{EXPORT_REVISION}-tcvom{__version__}"
    try:
        return read_manifest(folder, network)
    except (InputError, ReadError):
        pass
    say = progress or (lambda _line: None)
    with exclusive_lock(base / f".{folder.name}.lock",
                        on_wait=lambda: say(f"waiting for another process exporting {network} to {folder}")):
        try:
            return read_manifest(folder, network)  # exported while this process waited
        except (InputError, ReadError):
            pass
        say(f"exporting {network} to ONNX into {folder} (once for these weights; later runs reuse it)")
        return export_network(model, folder, weights_sha256=digest, source=source, progress=progress)
