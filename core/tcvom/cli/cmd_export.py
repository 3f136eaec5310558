"""``tcvom export``: ONNX graphs of the networks' cached split, for the other back-ends.

A thin shell over :func:`tcvom.export.export_files`; each flag is one keyword argument.
"""

from __future__ import annotations

import argparse
import json
import sys

from tcvom.cli import common

NAME = "export"
HELP = "export the networks to ONNX (with a parity check against PyTorch) for ONNX Runtime and TensorRT"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", required=True, nargs="+", action="extend",
                        help="weight files to export (any matting base with or without the TAM, and/or STM, detected from their keys)")
    parser.add_argument("--out", required=True, type=common.path_given, help="output folder (<network>.json + one .onnx per graph)")
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset, from 17 to the newest the installed torch exports (default: 17)")
    parser.add_argument("--tolerance", type=float, default=None,
                        help="largest ONNX Runtime vs PyTorch difference accepted, relative: times max(1, largest |output|) (default: 1e-4, FBA 1e-3)")
    parser.add_argument("--no-parity", action="store_true", help="skip the ONNX Runtime parity check")
    parser.add_argument("--json", action="store_true", help="print one JSON line per exported network")


def main(args: argparse.Namespace) -> int:
    from tcvom.export import OPSET, export_files

    manifests = export_files(
        args.weights,
        args.out,
        opset=OPSET if args.opset is None else args.opset,
        parity=not args.no_parity,
        tolerance=args.tolerance,
        progress=None if args.json else (lambda line: print(line, file=sys.stderr)),
    )
    for manifest in manifests:
        parity = manifest.data.get("parity", {}).get("max_abs_diff", {})
        if args.json:
            print(json.dumps({"manifest": str(manifest.path), "network": manifest.network, "parity": parity}))
        else:
            worst = f", parity max |diff| {max(parity.values()):.2g}" if parity else ""
            print(f"{manifest.network}: {manifest.path} ({len(manifest.graphs)} graphs{worst})")
    return 0
