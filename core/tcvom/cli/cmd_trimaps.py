"""``tcvom trimaps``: propagate keyframe trimaps to every frame."""

from __future__ import annotations

import argparse

from tcvom import pipeline
from tcvom.cli import common

NAME = "trimaps"
HELP = "propagate a few keyframe trimaps to every frame of the plate"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_plate(parser)
    common.add_shot_range(parser)
    parser.add_argument(
        "--keyframes",
        required=True,
        nargs="+", action="extend",
        help="keyframe trimaps: a sequence pattern (key.####.png) or frame=path pairs (1001=a.png 1040=b.png)",
    )
    parser.add_argument("--out", required=True, help="output folder (trimap.####.png inside) or a pattern")
    parser.add_argument(
        "--segment",
        type=int,
        help="only this keyframe segment (0-based; one farm task each, see `tcvom farm plan`)",
    )
    parser.add_argument("--probabilities", help="also write class probabilities as EXR to this folder or pattern")
    common.add_method(parser, "STM trimap weights (.pth) for --method tcvom (--stm-weights is the same flag)",
                      weights_alias="--stm-weights")
    common.add_stm_options(parser)
    common.add_trimap_options(parser)
    common.add_job_control(parser)


def main(args: argparse.Namespace) -> int:
    common.setup_logging(args.progress)
    result = common.call_job(pipeline.trimaps, args, "plate", "keyframes", "out")
    common.report(result, args.progress, args.command)
    return 0
