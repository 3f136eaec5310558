"""``tcvom run``: keyframe trimaps -> trimaps for every frame -> alpha for every frame."""

from __future__ import annotations

import argparse

from tcvom import pipeline
from tcvom.cli import common

NAME = "run"
HELP = "the whole job: keyframe trimaps in, trimaps and an alpha matte for every frame out"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_plate(parser)
    common.add_shot_range(parser)
    given = parser.add_mutually_exclusive_group(required=True)
    given.add_argument(
        "--keyframes",
        nargs="+", action="extend",
        help="keyframe trimaps: a sequence pattern (key.####.png) or frame=path pairs (1001=a.png 1040=b.png)",
    )
    given.add_argument("--trimaps", nargs="+", action="extend", help="a trimap for every frame instead (skips propagation)")
    parser.add_argument("--out", required=True, help="output folder: trimaps/ and alpha/ are written inside")
    common.add_method(parser, "STM trimap weights (.pth) for --method tcvom (--stm-weights is the same flag)",
                      weights_alias="--stm-weights")
    parser.add_argument("--matting-weights", type=common.optional,
                        help="matting weights (.pth) of any base for --method tcvom")
    common.add_base(parser)
    common.add_stm_options(parser)
    common.add_trimap_options(parser)
    common.add_output(parser)
    common.add_job_control(parser)
    parser.add_argument(
        "--executor",
        choices=pipeline.EXECUTORS,
        default="local",
        help="local (this process) or ray (one task per keyframe segment, then per chunk; RAY_ADDRESS or a local Ray)",
    )
    parser.add_argument(
        "--chunk",
        type=common.positive,
        help="frames per matte task (default: one task; with --executor ray, the frames shared between the CPUs)",
    )


def main(args: argparse.Namespace) -> int:
    common.setup_logging(args.progress)
    result = common.call_job(pipeline.run, args, "plate", "out")
    common.report(result, args.progress, args.command)
    return 0
