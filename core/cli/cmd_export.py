"""``tcvom export``: ONNX graphs of the networks' cached split, for the other back-ends."""

from __future__ import annotations

import argparse

from tcvom.errors import TcvomError

NAME = "export"
HELP = "export the networks to ONNX for ONNX Runtime and TensorRT (not available yet)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", required=True, nargs="+", help="weight files to export")
    parser.add_argument("--out", required=True, help="output folder")


class NotAvailable(TcvomError):
    exit_code = 1


def main(args: argparse.Namespace) -> int:
    raise NotAvailable(
        "ONNX export is not part of this version yet",
        hint="the torch back-end runs the networks directly: tcvom run --method tcvom",
    )
