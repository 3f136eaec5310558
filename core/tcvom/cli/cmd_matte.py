"""``tcvom matte``: alpha for every frame from a trimap for every frame."""

from __future__ import annotations

import argparse

from tcvom import pipeline
from tcvom.cli import common

NAME = "matte"
HELP = "pull an alpha matte for every frame from a trimap for every frame"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_plate(parser)
    common.add_shot_range(parser)
    parser.add_argument(
        "--trimaps", required=True, nargs="+", action="extend", help="a trimap for every frame: a sequence pattern or frame=path pairs"
    )
    parser.add_argument("--out", required=True, help="output folder (alpha.####.exr inside) or a pattern")
    common.add_method(parser, "matting weights (.pth) of any base for --method tcvom (GCA, FBA, DIM, Index; "
                      "with the TAM or the single-image baseline, told from the file); --matting-weights is the same flag, "
                      "as in `tcvom run`", weights_alias="--matting-weights")
    common.add_base(parser)
    common.add_trimap_options(parser)
    common.add_output(parser)
    common.add_job_control(parser)


def main(args: argparse.Namespace) -> int:
    common.setup_logging(args.progress)
    result = common.call_job(pipeline.matte, args, "plate", "trimaps", "out")
    common.report(result, args.progress, args.command)
    return 0
