"""``tcvom review``: doubt per frame and the frames to key next, for an existing output."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from tcvom.cli import common
from tcvom.errors import command_word

NAME = "review"
HELP = "show which frames of an output are doubtful and which frames to key next (reads OUT/review/review.json)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", help="the output folder of `tcvom run` (or its review/ folder, or a review.json)")
    parser.add_argument("--json", action="store_true", help="print review.json instead of the table")
    parser.add_argument("--top", type=int, help="only the N most doubtful frames in the table (default: every frame)")
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="recompute the review from the stored per-frame figures and the alpha files (after farm "
        "tasks, or when the outputs changed); rewrites review.json, review.csv and review.png (OUT/review "
        "is created when the tasks that made OUT wrote none)",
    )
    parser.add_argument("--plate", help="with --rebuild: the plate, when it moved since the run")
    parser.add_argument("--ocio-config", type=common.optional,
                        help="with --rebuild: the OpenColorIO config, when it is elsewhere than the run that made "
                        "the matte found it (another mount); the same config by its content")
    common.add_progress(parser)


def main(args: argparse.Namespace) -> int:
    from tcvom.errors import InputError
    from tcvom.review.doubt import (
        REVIEW_FOLDER,
        AlphaGoneError,
        alphas_gone,
        find_review,
        load_review,
        rebuild_review,
        table,
    )

    common.setup_logging(args.progress)
    if args.top is not None and args.top < 1:
        raise InputError(f"--top must be at least 1, not {args.top}")
    for flag, value in (("--plate", args.plate), ("--ocio-config", args.ocio_config)):
        if value and not args.rebuild:
            raise InputError(f"{flag} only applies with --rebuild")
    folder = find_review(args.out)
    if args.rebuild and not (folder / "review.json").exists():
        # Farm tasks (one segment, one chunk) write no review: build the first one from the
        # manifests and records they left in OUT/trimaps and OUT/alpha.
        from tcvom.pipeline.jobs import review_output

        review, folder = review_output(args.out, plate=args.plate, ocio_config=args.ocio_config, progress=args.progress)
    elif args.rebuild:
        try:
            review = rebuild_review(args.out, plate=args.plate, ocio_config=args.ocio_config, progress=args.progress)
        except AlphaGoneError:
            if folder.name != REVIEW_FOLDER or not (folder.parent / "alpha").is_dir():
                raise
            # OUT/alpha was made again (another format): review the matte its manifest names now
            from tcvom.pipeline.jobs import review_output

            review, folder = review_output(folder.parent, plate=args.plate, ocio_config=args.ocio_config,
                                           progress=args.progress)
    else:
        review = load_review(args.out)
        gone = alphas_gone(review, folder)
        if gone:  # deleted by hand since: the table would show doubts of files that are not there
            from tcvom.io.sequence import format_range

            logging.getLogger("tcvom").warning(
                "frame(s) %s of this review have no alpha file any more: their matte doubt in it describes files "
                "that are gone; `tcvom review %s --rebuild` (or a run) makes the review of what is there",
                format_range(gone), command_word(args.out))
    if args.json and args.progress != "json":  # JSON lines: the result event names review.json
        print(json.dumps(review.as_dict(), indent=1))
        return 0
    if args.progress == "json":  # stdout is JSON lines: the answer as one event, no table
        from tcvom.progress import emit_json

        emit_json("result", job="review", review=str(folder / "review.json"), picture=str(folder / "review.png"),
                  keyframes=review.keyframes, doubtful=review.doubtful, suggested=review.suggested,
                  past_cut=review.extra.get("past_cut") or [])
        return 0
    print(table(review, limit=args.top))
    print(f"picture: {folder / 'review.png'}", file=sys.stderr)
    return 0
