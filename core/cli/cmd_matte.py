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
        "--trimaps", required=True, nargs="+", help="a trimap for every frame: a sequence pattern or frame=path pairs"
    )
    parser.add_argument("--out", required=True, help="output folder (alpha.####.exr inside) or a pattern")
    common.add_method(parser, "GCA+TAM matting weights (.pth) for --method tcvom")
    common.add_trimap_options(parser)
    common.add_output(parser)
    common.add_job_control(parser)


def main(args: argparse.Namespace) -> int:
    common.setup_logging(args.progress)
    result = pipeline.matte(
        args.plate,
        args.trimaps,
        args.out,
        frames=args.frames,
        shot_range=args.shot_range,
        method=args.method,
        weights=args.weights,
        device=args.device,
        backend=args.backend,
        export_dir=args.export_dir or None,
        precision=args.precision,
        input_colorspace=args.input_colorspace,
        ocio_config=args.ocio_config,
        resize_trimaps=args.resize_trimaps,
        trimap_channel=args.trimap_channel,
        output=args.output,
        alpha_format=args.alpha_format,
        overwrite=args.overwrite,
        progress=args.progress,
    )
    common.report(result, args.progress)
    return 0
