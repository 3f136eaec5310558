"""``tcvom eval``: score mattes against a VideoMatting108-layout dataset (or make a synthetic one)."""

from __future__ import annotations

import argparse
import sys

from tcvom.cli import common
from tcvom.errors import InputError
from tcvom.progress import PROGRESS_MODES, emit_json

NAME = "eval"
HELP = "score mattes (a predictions folder or a method run) with the paper's metrics; --make-synthetic writes a benchmark"

_WIDTHS = ("narrow", "medium", "wide")


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT, e.g. 480x270, not {text!r}") from None
    return w, h


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="the dataset root (VideoMatting108 layout: FG_done/, BG_done/, frame_corr.json)")
    parser.add_argument("--out", help="folder for frames.csv, clips.json, summary.md and plots/")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--predictions", help="folder of mattes laid out as <width>/<category>/<clip>/<frame>.png")
    what.add_argument("--method", choices=("auto", "classical", "tcvom"), help="run this method and score its mattes")
    what.add_argument(
        "--alpha",
        help="one shot's alpha: a folder (out/ex/alpha) or a pattern (alpha.####.exr), scored against --truth",
    )
    shot = parser.add_argument_group("one shot against its ground truth (--alpha; e.g. the bundled example)")
    shot.add_argument(
        "--truth",
        help="ground truth: a folder with alpha.####.png and trimap.####.png (`tcvom example` writes truth/), "
        "or an alpha pattern with --truth-trimaps",
    )
    shot.add_argument("--truth-trimaps", help="trimap pattern whose unknown region is scored (default: the --truth folder's)")
    shot.add_argument("--plate", help="the plate, for the optical flow of MESSDdt (without it MESSDdt is not computed: n/a in the table)")
    shot.add_argument("--frames", help="score only these frames (e.g. 1001-1040x4 where the ground truth is of every "
                      "4th frame; frames that are not consecutive get no dtSSD or MESSDdt). Default: every ground-truth "
                      "frame, which must be consecutive")
    parser.add_argument("--weights", help="matting weights (.pth, any base: read from its keys) for --method tcvom")
    parser.add_argument("--device", default="cpu", help="torch device for --method tcvom: cpu, cuda, cuda:1")
    parser.add_argument("--widths", nargs="+", choices=_WIDTHS, default=list(_WIDTHS), help="trimap widths to evaluate")
    parser.add_argument("--clips", nargs="+", action="extend", help="only these clips: names, bare clip names or patterns (animal/*)")
    parser.add_argument("--split", default="val", help="the split file to read: <split>_videos.txt (default val)")
    parser.add_argument("--subset", action="store_true", help="read <split>_videos_subset.txt instead")
    parser.add_argument(
        "--flow",
        choices=("auto", "png", "dis", "none"),
        default="auto",
        help="flow for MESSDdt: the dataset's flow_png, OpenCV DIS, auto (png where present, else DIS) or none",
    )
    parser.add_argument(
        "--no-image-metrics", dest="image_metrics", action="store_false", help="skip the Gradient and Connectivity errors"
    )
    parser.add_argument("--no-plots", dest="plots", action="store_false", help="write no PNG plots")
    parser.add_argument("--worst", type=common.non_negative, default=3, help="worst frames per clip in the image strips (default 3)")
    tri = parser.add_argument_group("trimap propagation (tcvom.evaluation.trimaps: mIoU per class, paper Table 4)")
    tri.add_argument(
        "--propagate",
        choices=("auto", "classical", "tcvom"),
        help="propagate ground-truth keyframe trimaps with this method and score mIoU (instead of mattes)",
    )
    tri.add_argument(
        "--keyframes", type=int, nargs="+", default=[1, 2, 3], help="keyframe counts to score (default 1 2 3)"
    )
    tri.add_argument("--stm-weights", help="STM trimap weights (.pth) for --propagate tcvom")
    syn = parser.add_argument_group("synthetic benchmark (tcvom.evaluation.mattes.make_synthetic)")
    syn.add_argument("--make-synthetic", metavar="DIR", help="write a synthetic benchmark to DIR (and score on it if asked)")
    syn.add_argument("--synthetic-clips", type=int, default=3, help="number of clips (default 3)")
    syn.add_argument("--synthetic-frames", type=int, default=40, help="frames per clip (default 40)")
    syn.add_argument("--synthetic-size", type=_size, default=(480, 270), help="WIDTHxHEIGHT (default 480x270)")
    syn.add_argument("--seed", type=common.non_negative, default=0, help="seed of the synthetic benchmark (default 0)")
    parser.add_argument("--progress", choices=PROGRESS_MODES, default="bar", help="bar, json (JSON lines on stdout) or none")


def main(args: argparse.Namespace) -> int:
    from tcvom.weights.registry import flags_named

    with flags_named(stm="--stm-weights", matting="--weights"):  # advice names eval's own flags
        return _main(args)


def _main(args: argparse.Namespace) -> int:
    from tcvom.evaluation import mattes as evaluate

    common.setup_logging(args.progress)
    if args.alpha is not None:
        _check_shot_flags(args)
        return _score_shot(args)
    for flag, value in (("--truth", args.truth), ("--truth-trimaps", args.truth_trimaps), ("--frames", args.frames),
                        ("--plate", args.plate)):
        if value is not None:
            raise InputError(f"{flag} is for scoring one shot", hint="give the shot's alpha with --alpha")
    data = args.data
    if args.make_synthetic:
        width, height = args.synthetic_size
        names = evaluate.make_synthetic(
            args.make_synthetic,
            clips=args.synthetic_clips,
            frames=args.synthetic_frames,
            width=width,
            height=height,
            seed=args.seed,
            progress=args.progress,
        )
        if args.progress == "json":
            emit_json("result", job="eval", synthetic=str(args.make_synthetic), clips=names)
        else:
            print(f"tcvom eval: wrote {len(names)} synthetic clip(s) to {args.make_synthetic}", file=sys.stderr)
        if args.predictions is None and args.method is None and args.propagate is None:
            return 0
        data = data or args.make_synthetic
    if data is None:
        raise InputError("give the dataset with --data (or write one with --make-synthetic DIR)")
    if args.out is None:
        raise InputError("give an output folder with --out")
    if args.propagate is not None:
        from tcvom.evaluation.trimaps import evaluate_trimaps

        trimap_report = evaluate_trimaps(
            data,
            args.out,
            method=args.propagate,
            weights=args.stm_weights,
            device=args.device,
            keyframes=args.keyframes,
            widths=args.widths,
            clips=args.clips,
            split=args.split,
            progress=args.progress,
        )
        if args.progress == "json":
            emit_json("result", job="eval", trimap_summary=trimap_report.summary)
        else:
            print(trimap_report.table())
        if args.predictions is None and args.method is None:
            return 0
    if args.predictions is None and args.method is None:
        raise InputError("give --predictions FOLDER to score, --method to run and score, or --propagate")
    report = evaluate.evaluate(
        data,
        args.out,
        predictions=args.predictions,
        method=args.method,
        weights=args.weights,
        device=args.device,
        widths=args.widths,
        clips=args.clips,
        split=args.split,
        subset=args.subset,
        flow=args.flow,
        image_metrics=args.image_metrics,
        plots=args.plots,
        worst=args.worst,
        progress=args.progress,
    )
    if args.progress == "json":
        emit_json("result", job="eval", summary=report.summary, flow=report.flow, outputs=report.outputs)
    else:
        print(report.table())
        used = ", ".join(f"{k} {v}" for k, v in report.flow.items() if v) or "none"
        print(f"tcvom eval: flow pairs for MESSDdt: {used}; reports in {args.out}", file=sys.stderr)
    return 0


_SHOT_FLAGS = frozenset({"alpha", "truth", "truth_trimaps", "plate", "frames", "out", "progress", "flow",
                         "image_metrics", "plots", "worst"})
"""What ``--alpha`` takes (a shot's report has no plots: those flags change nothing there)."""


def _check_shot_flags(args: argparse.Namespace) -> None:
    """Refuse the dataset's flags with ``--alpha``: every flag of eval but :data:`_SHOT_FLAGS`
    given another value than its default (eval QA: ``--propagate``, ``--data``, ``--widths``,
    ``--seed`` and the rest were ignored, exit 0, as another protocol than the one asked)."""
    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    given = [action.option_strings[-1] for action in parser._actions  # the parser's own list of flags
             if action.dest not in _SHOT_FLAGS and getattr(args, action.dest, None) != action.default]
    if args.flow == "png":
        given.append("--flow png")
    if given:
        raise InputError(f"{given[0]} is for scoring a dataset (--data), not one shot (--alpha)",
                         hint="score the shot with --alpha, --truth, --plate (MESSDdt from its DIS flow; --flow none: "
                         "without it) and --frames; a dataset with --data and --predictions or --method")
    if args.flow == "dis" and args.plate is None:
        raise InputError("--flow dis computes the flow for MESSDdt from the plate: give the shot's --plate",
                         hint="or leave --flow out (without --plate MESSDdt is not measured)")


def _score_shot(args: argparse.Namespace) -> int:
    """``--alpha A --truth T``: one shot against its ground truth."""
    from tcvom.evaluation import mattes as evaluate

    if args.truth is None:
        raise InputError("give the ground truth of --alpha with --truth (a folder such as ex/truth)")
    report = evaluate.evaluate_sequence(
        args.alpha,
        args.truth,
        args.out,
        truth_trimaps=args.truth_trimaps,
        plate=None if args.flow == "none" else args.plate,  # no flow: no MESSDdt
        frames=args.frames,
        image_metrics=args.image_metrics,
        progress=args.progress,
    )
    if args.progress == "json":
        emit_json("result", job="eval", summary=report.summary, flow=report.flow, outputs=report.outputs)
    else:
        print(report.table())
        where = f"; reports in {args.out}" if args.out else ""
        print(f"tcvom eval: {args.alpha} against {args.truth}{where}", file=sys.stderr)
    return 0
