"""ONNX export of the networks' cached split (GCA+TAM part A / part B; STM memory-encode /
query-encode / read-decode), with a manifest and a parity check against ONNX Runtime.
See docs/backends.md."""

from tcvom.export.graphs import GRAPHS, NETWORKS, GraphSpec, TensorSpec, graph_spec, graph_specs
from tcvom.export.onnx_export import (
    OPSET,
    TOLERANCE,
    ExportManifest,
    ParityError,
    cached_export,
    check_parity,
    export_files,
    export_network,
    export_weights,
    read_manifest,
)

__all__ = [
    "GRAPHS",
    "NETWORKS",
    "OPSET",
    "TOLERANCE",
    "ExportManifest",
    "GraphSpec",
    "ParityError",
    "TensorSpec",
    "cached_export",
    "check_parity",
    "export_files",
    "export_network",
    "export_weights",
    "graph_spec",
    "graph_specs",
    "read_manifest",
]
