"""``tcvom example``: write the bundled example shot (generated, nothing downloaded)."""

from __future__ import annotations

import argparse
import sys

from tcvom.cli import common
from tcvom.errors import command_word

NAME = "example"
HELP = "write the bundled example shot (plate EXRs, keyframe trimaps, ground truth) to a folder"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="folder to write the example into")
    parser.add_argument("--frames", type=int, default=40, help="number of frames (default 40, numbered from 1001)")
    parser.add_argument("--width", type=int, default=480, help="plate width in pixels (default 480, at least 32)")
    parser.add_argument("--height", type=int, default=270, help="plate height in pixels (default 270, at least 32)")
    parser.add_argument(
        "--seed", type=int, default=7,
        help="random seed of the generated shot (default 7): the same seed, size and frames write the same files",
    )
    common.add_progress(parser)


def main(args: argparse.Namespace) -> int:
    from tcvom.data.example import write_example
    from tcvom.errors import InputError

    if args.frames < 1 or args.width < 32 or args.height < 32:
        raise InputError("the example needs at least 1 frame and a size of at least 32x32")
    common.setup_logging(args.progress)  # the files of an earlier example it keeps, said as a job's warnings
    ex = write_example(
        args.out, width=args.width, height=args.height, frames=args.frames, seed=args.seed, progress=args.progress
    )
    keys = ",".join(str(k) for k in ex.keyframe_numbers)
    print(
        f"tcvom: example written to {ex.folder}\n"
        f"  plate:     {ex.plate} ({ex.first}-{ex.last})\n"
        f"  keyframes: {ex.keyframes} ({keys})\n"
        f"  truth:     {ex.alpha}, {ex.trimaps}\n"
        f"try: tcvom run --plate {command_word(ex.plate)} --keyframes {command_word(ex.keyframes)} "
        "--out out/example",
        file=sys.stderr,
    )
    return 0
