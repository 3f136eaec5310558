"""``tcvom preview``: a contact sheet and an MP4 to review a matte."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tcvom.cli import common

log = logging.getLogger(__name__)

NAME = "preview"
HELP = "write a contact sheet (plate | trimap | alpha | composite) and an MP4 preview of a matte"


def _rate(text: str) -> object:
    """An argparse type: :func:`tcvom.review.preview.movie_rate`'s frame rate."""
    from tcvom.errors import InputError
    from tcvom.review.preview import movie_rate

    try:
        return movie_rate(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_plate(parser)
    parser.add_argument("--trimaps", required=True, help="trimap sequence pattern (e.g. out/trimaps/trimap.####.png)")
    parser.add_argument("--alpha", required=True, help="alpha sequence pattern (e.g. out/alpha/alpha.####.exr)")
    parser.add_argument("--out", required=True, help="folder for contact_sheet.png and preview.mp4")
    parser.add_argument("--rows", type=common.positive, default=4, help="frames on the contact sheet (default 4)")
    parser.add_argument("--fps", type=_rate, default=None,
                        help="frame rate of preview.mp4: 24, 25, 23.976, 24000/1001 (default: the plate movie's, "
                             "24 for an image sequence)")
    parser.add_argument("--no-movie", action="store_true", help="skip the MP4")
    parser.add_argument(
        "--review",
        help="a run's review (OUT, OUT/review or review.json) whose doubtful frames are marked; default: the "
        "review beside the alpha folder (OUT/review for OUT/alpha), when there is one",
    )
    common.add_progress(parser)


def main(args: argparse.Namespace) -> int:
    from tcvom.io import ensure_writable_folder, open_frames, open_trimaps
    from tcvom.progress import emit_json
    from tcvom.review.doubt import REVIEW_FOLDER, find_review, load_review, made_from
    from tcvom.review.preview import contact_sheet, preview_movie

    common.setup_logging(args.progress)
    frames = open_frames(args.plate, args.frames, colorspace=args.input_colorspace, ocio_config=args.ocio_config,
                         holes_hint="preview the frames that exist with --frames {frames}")
    trimaps = open_trimaps(args.trimaps, frames.frame_numbers, plate=frames)
    folder = ensure_writable_folder(args.out)
    review = None
    if args.review:
        review = load_review(args.review)
        if not made_from(find_review(args.review), args.alpha):
            log.warning("the review %s was not made from %s: its marks may not fit this matte", args.review,
                        args.alpha)
    else:  # `tcvom matte` writes it in the alpha folder, `tcvom run` beside it
        alpha_folder = Path(args.alpha).parent
        found = [f / REVIEW_FOLDER for f in (alpha_folder, alpha_folder.parent) if (f / REVIEW_FOLDER / "review.json").exists()]
        if found and made_from(found[0], args.alpha):
            review = load_review(found[0])
        elif found:  # another matte's (a copy of another version beside it): its marks would mislead
            log.warning("the review in %s was made from another matte than %s: not marking it (pass --review to "
                        "use it anyway)", found[0], args.alpha)
    if review is not None and args.progress != "json":
        print(f"tcvom: marking {len(review.doubtful)} doubtful frame(s) of the review", file=sys.stderr)
    sheet = contact_sheet(frames, trimaps, args.alpha, Path(folder) / "contact_sheet.png", count=args.rows,
                          review=review)
    outputs = {"contact_sheet": str(sheet)}
    if args.progress != "json":
        print(f"tcvom: contact sheet {sheet}", file=sys.stderr)
    if not args.no_movie:
        movie = preview_movie(frames, args.alpha, Path(folder) / "preview.mp4", fps=args.fps, progress=args.progress,
                              review=review)
        outputs["preview"] = str(movie)
        if args.progress != "json":
            print(f"tcvom: preview {movie}", file=sys.stderr)
    if args.progress == "json":
        emit_json("result", job="preview", outputs=outputs,
                  doubtful=len(review.doubtful) if review is not None else None)
    return 0
