"""``tcvom farm``: render-farm helpers.

``tcvom farm template JOB.json`` writes an Open Job Description template (AWS Deadline
Cloud's job format) for a shot; ``tcvom farm plan`` prints a shot's farm tasks (keyframe
segments and matte chunks) for schedulers that take command lines (Deadline, OpenCue,
Tractor). See ``docs/farm.md``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from tcvom.cli import common
from tcvom.errors import InputError
from tcvom.farm.openjd import check_job_output, job_parameters, job_template, write_template
from tcvom.farm.plan import DEFAULT_CHUNK, ShotPlan, plan_shot
from tcvom.io.atomic import write_text
from tcvom.io.sequence import output_pattern
from tcvom.io.sources import is_frame_pair
from tcvom.io.trimap import TRIMAP_CHANNELS
from tcvom.io.writers import TrimapWriter
from tcvom.pipeline.methods import BACKENDS, METHODS, PRECISIONS

NAME = "farm"
HELP = "render-farm helpers: an Open Job Description template, or the farm tasks of a shot"


class _OnePattern(argparse.Action):
    """A farm job's ``--keyframes``: one sequence pattern. Given twice, the last one won
    without a word, and the shot was planned without the first one's keyframes."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        if getattr(namespace, self.dest, None) is not None:
            parser.error(f"{option_string} is given twice; a farm job reads its keyframes as one sequence pattern "
                         "(name the keyframe files after their frames in one folder: key.####.png)")
        setattr(namespace, self.dest, values)


def _shot_flags(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument("--plate", required=required, help="the plate (plate.####.exr)")
    parser.add_argument("--keyframes", required=required, action=_OnePattern,
                        help="keyframe trimaps, a sequence pattern (key.####.png)")
    parser.add_argument("--frames", type=common.optional, help="frames to matte (default: the whole shot)")
    common.add_shot_range(parser)
    parser.add_argument("--chunk", type=common.positive, default=DEFAULT_CHUNK, help=f"frames per matte task (default {DEFAULT_CHUNK})")


def _job_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", choices=METHODS, default="auto")
    parser.add_argument("--backend", choices=BACKENDS, default="torch")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto")
    common.add_base(parser)
    parser.add_argument("--input-colorspace", type=common.optional,
                        help="the plate's colour space (as for tcvom run), passed to every task")
    parser.add_argument("--ocio-config", type=common.optional, help="an OpenColorIO config, passed to every task")
    parser.add_argument("--trimap-channel", choices=TRIMAP_CHANNELS, default="luma",
                        help="how multi-channel keyframe trimaps become one channel (as for tcvom run)")
    common.add_output(parser)  # --output and --alpha-format, as tcvom run takes them
    parser.add_argument("--trimap-weights", help="STM weights of the shot's job (for --method tcvom)")
    parser.add_argument("--matting-weights", help="matting weights of the shot's job, any base (for --method tcvom)")


def _shot_plan(args: argparse.Namespace) -> ShotPlan:
    """The shot's farm tasks; with ``--out``, only those an edit touched (what ``tcvom run``
    into that folder would compute)."""
    computed = None
    check_job_output(args.method, args.output, args.alpha_format, args.base,  # refused here, not by every Matte task
                     args.matting_weights)
    if args.out is not None:  # a folder the job's tasks could not write in: refused here, not by every task
        output_pattern(Path(args.out) / "trimaps", TrimapWriter.default_name())
    if args.out is not None and Path(args.out).is_dir():
        from tcvom import pipeline

        touched = pipeline.run(
            args.plate, args.out, keyframes=args.keyframes, frames=args.frames, shot_range=args.shot_range,
            method=args.method, weights=args.trimap_weights, matting_weights=args.matting_weights,
            device=args.device, backend=args.backend, precision=args.precision, base=args.base,
            input_colorspace=args.input_colorspace, ocio_config=args.ocio_config, trimap_channel=args.trimap_channel,
            output=args.output, alpha_format=args.alpha_format, progress="none", review=False, plan_only=True,
        )
        computed = {name: lists["computed"] for name, lists in touched.stages.items()}
    return plan_shot(args.plate, args.keyframes, frames=args.frames, shot_range=args.shot_range, chunk=args.chunk,
                     computed=computed)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="farm_command", metavar="ACTION", required=True)
    template = sub.add_parser(
        "template",
        help="write an Open Job Description job template (JSON, or YAML by the file's suffix)",
        description="Write an Open Job Description template: a Trimaps step with one task per keyframe "
        "segment, a Matte step of chunked frame tasks depending on it, and a Review step of one task that "
        "writes OUT/review for the whole shot. With --plate, --keyframes and --out "
        "the shot's range, frames and segments become the parameters' defaults (the shot as its plate is now: "
        "frames added to the plate later stay out of the job), and its paths are written to JOB.params.json "
        "for `openjd run --job-param file://JOB.params.json` or a submitter.",
    )
    template.add_argument("path", type=common.path_given, help="the template file to write (tcvom_job.json or .yaml)")
    _shot_flags(template, required=False)
    template.add_argument("--out", help="default output folder of the job (trimaps/ and alpha/ inside); if it holds "
                          "an earlier run, only the segments and chunks whose inputs changed become tasks")
    template.add_argument("--name", default="tcvom", help="the job's name")
    template.add_argument("--tcvom-command", default="tcvom", help="the tcvom executable on the workers")
    _job_flags(template)
    template.set_defaults(_farm=_template)
    plan = sub.add_parser("plan", help="print the farm tasks of a shot: keyframe segments and matte chunks")
    _shot_flags(plan, required=True)
    plan.add_argument("--out", help="the job's output folder: list only the tasks whose inputs changed since its "
                      "frames were made (after a keyframe edit)")
    _job_flags(plan)
    plan.add_argument("--json", action="store_true", help="print JSON")
    plan.set_defaults(_farm=_plan)


def params_path(template: str | Path) -> Path:
    """Where ``tcvom farm template`` writes the shot's job parameters: ``JOB.params.json``."""
    path = Path(template)
    return path.with_name(f"{path.stem}.params.json")


def _template(args: argparse.Namespace) -> int:
    from tcvom.pipeline import methods

    if args.method == "classical":  # every task would refuse it (what workers have is theirs to say)
        methods.check_backend(args.method, args.backend, asked=args.method)
    frames = args.frames
    segments = None
    shot_range = args.shot_range
    shot_given = [a is not None for a in (args.plate, args.keyframes, args.out)]
    if any(shot_given) and not all(shot_given):
        raise InputError("give --plate, --keyframes and --out together to fill in a shot's parameters, or none")
    if args.keyframes is not None and is_frame_pair(args.keyframes):  # the job passes one --keyframes value
        raise InputError("a farm job reads its keyframes as one sequence pattern, not a FRAME=PATH pair",
                         path=args.keyframes, hint="name the keyframe files after their frames in one folder "
                         "(key.1001.png, key.1040.png) and give --keyframes key.####.png")
    if args.plate is not None:
        shot = _shot_plan(args)
        if not shot.chunks:
            print("tcvom: every frame in --out is up to date; the template covers the whole shot (its tasks "
                  "will find nothing to do)", file=sys.stderr)
            shot = plan_shot(args.plate, args.keyframes, frames=args.frames, shot_range=args.shot_range,
                             chunk=args.chunk)
        whole = plan_shot(args.plate, args.keyframes, frames=args.frames, shot_range=args.shot_range,
                          chunk=args.chunk)
        frames = shot.matte_frames or frames or shot.shot
        # a step needs one task at least: where only alphas need redoing, one segment's check
        segments = shot.segment_range or "0"
        # The shot as planned: segments and chunks are of these frames, and a plate frame
        # added while the job runs would otherwise change the shot under half of its tasks.
        shot_range = whole.shot
    template = job_template(
        name=args.name, tcvom_command=args.tcvom_command, shot_range=shot_range, frames=frames,
        segments=segments, chunk=args.chunk, method=args.method, backend=args.backend, device=args.device,
        output=args.output, alpha_format=args.alpha_format, input_colorspace=args.input_colorspace,
        ocio_config=args.ocio_config,
        trimap_channel=args.trimap_channel, precision=args.precision, base=args.base,
    )
    path = write_template(args.path, template)
    print(f"tcvom: Open Job Description template written to {path}", file=sys.stderr)
    if args.plate is not None:
        values = job_parameters(plate=args.plate, keyframes=args.keyframes, out=args.out,
                                trimap_weights=args.trimap_weights, matting_weights=args.matting_weights)
        params = params_path(path)
        write_text(params, json.dumps(values, indent=2) + "\n")
        command = ["openjd", "run", str(path), "--step", "Review", "--run-dependencies", "--job-param",
                   f"file://{params}"]
        print(f"tcvom: the shot's parameters written to {params}; run the job here with\n  {shlex.join(command)}",
              file=sys.stderr)
    return 0


def _plan(args: argparse.Namespace) -> int:
    shot = _shot_plan(args)
    if args.json:
        print(json.dumps(shot.as_dict(), indent=2))
        return 0
    print(f"shot {shot.shot}, keyframes {shot.keyframes}")
    if not shot.segments and not shot.chunks:  # --out holds the job already, with these inputs
        which = "the frames asked for (--frames)" if getattr(args, "frames", None) else "every trimap and alpha"
        print(f"nothing to do: {which} in --out is up to date (no task to submit)")
        return 0
    print(f"trimap tasks (--segment N), range {shot.segment_range or 'none'}:")
    for index, frames in shot.segments:
        print(f"  {index}: frames {frames}")
    print(f"matte tasks (--frames), {len(shot.chunks)} chunk(s):")
    for chunk in shot.chunks:
        print(f"  {chunk}")
    return 0


def main(args: argparse.Namespace) -> int:
    from tcvom.weights.registry import flags_named

    with flags_named(stm="--trimap-weights", matting="--matting-weights"):  # advice names the farm's own flags
        return int(args._farm(args))
