"""``tcvom train gca-tam|stm --config FILE``: train or fine-tune the networks (see docs/training.md)."""

from __future__ import annotations

import argparse
import sys

from tcvom.progress import PROGRESS_MODES, emit_json

NAME = "train"
HELP = "train GCA+TAM or the STM trimap network with the paper's losses and schedules (config file)"
NETWORKS = ("gca-tam", "stm")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("network", choices=NETWORKS, help="gca-tam (matting network) or stm (trimap network)")
    parser.add_argument("--config", required=True, help="the run's TOML or JSON config (see docs/training.md)")
    parser.add_argument(
        "--no-resume", dest="resume", action="store_false",
        help="start over even if the run folder holds a checkpoint (default: resume from it)",
    )
    parser.add_argument("--stop-after", type=int, help="end this session after N steps (a checkpoint is written)")
    parser.add_argument("--progress", choices=PROGRESS_MODES, default="bar", help="bar, json (JSON lines on stdout) or none")


def main(args: argparse.Namespace) -> int:
    from tcvom.errors import InputError
    from tcvom.train import config, loops

    if args.stop_after is not None and args.stop_after < 1:
        raise InputError(f"--stop-after must be at least 1, got {args.stop_after}")
    if args.network == "gca-tam":
        result = loops.train_gca_tam(config.load_gca_tam_config(args.config), progress=args.progress,
                                     resume=args.resume, stop_after=args.stop_after)
    else:
        result = loops.train_stm(config.load_stm_config(args.config), progress=args.progress,
                                 resume=args.resume, stop_after=args.stop_after)
    if args.progress == "json":
        emit_json("result", job="train", step=result.step, weights=str(result.weights),
                  checkpoint=str(result.checkpoint), log=str(result.log))
    else:
        print(f"tcvom train: step {result.step}; weights {result.weights}; log {result.log}", file=sys.stderr)
    return 0
