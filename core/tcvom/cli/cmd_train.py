"""``tcvom train gca-tam|fba-tam|dim-tam|index-tam|stm --config FILE``: train or fine-tune
the networks (see docs/training.md). The matting kinds name the base; the config's
``network`` picks its video network (the default) or its single-image baseline."""

from __future__ import annotations

import argparse
import sys

from tcvom.progress import PROGRESS_MODES, emit_json

NAME = "train"
HELP = "train a matting network (GCA, FBA, DIM, Index, with the TAM) or the STM trimap network (config file)"
#: Matting bases by their command-line name.
MATTING = {"gca-tam": "gca", "fba-tam": "fba", "dim-tam": "dim", "index-tam": "index"}
NETWORKS = (*MATTING, "stm")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("network", choices=NETWORKS,
                        help="the matting base (gca-tam, fba-tam, dim-tam, index-tam) or stm (trimap network)")
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
    if args.network in MATTING:
        cfg = config.load_gca_tam_config(args.config, base=MATTING[args.network])
        result = loops.train_matting(cfg, progress=args.progress, resume=args.resume, stop_after=args.stop_after)
    else:
        result = loops.train_stm(config.load_stm_config(args.config), progress=args.progress,
                                 resume=args.resume, stop_after=args.stop_after)
    if args.progress == "json":
        emit_json("result", job="train", step=result.step, weights=str(result.weights),
                  checkpoint=str(result.checkpoint), log=str(result.log))
    else:
        print(f"tcvom train: step {result.step}; weights {result.weights}; log {result.log}", file=sys.stderr)
    return 0
