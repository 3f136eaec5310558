"""Flags shared by several jobs, so each means the same everywhere."""

from __future__ import annotations

import argparse
import contextlib
import inspect
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from tcvom.errors import command_word
from tcvom.io.overlap import DEFAULT_DEPTH
from tcvom.io.sequence import format_range
from tcvom.io.trimap import TRIMAP_CHANNELS
from tcvom.io.writers import ALPHA_FORMATS, OUTPUT_KINDS
from tcvom.pipeline.methods import BACKENDS, FINETUNE_SCOPES, METHODS, PRECISIONS
from tcvom.progress import PROGRESS_MODES, emit_json


def optional(text: str) -> str | None:
    """An argparse type: an empty value means "not given" (farm templates pass every flag,
    some of them empty)."""
    return text if text.strip() else None


def path_given(text: str) -> str:
    """An argparse type: a path that is not empty (``''`` was the current folder, or a
    traceback)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty: give a path")
    return text


def positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    return _at_least(text, 1)


def non_negative(text: str) -> int:
    """An argparse type: a whole number of at least 0 (the error names the flag, where the
    Python API's check named its keyword: "mem_every must be...")."""
    return _at_least(text, 0)


def _at_least(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}, not {value}")
    return value


def positive_or_none(text: str) -> int | None:
    """An argparse type: a whole number of at least 1, or ``none`` (no cap)."""
    if text.strip().lower() == "none":
        return None
    try:
        return positive(text)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (or none: no cap)") from None


def call_job(job: Callable[..., Any], args: argparse.Namespace, *positional: str) -> Any:
    """Call a Python API job with the parsed flags: ``positional`` names the flags passed by
    position, and every keyword-only parameter of ``job`` takes the flag of the same name.
    This is what keeps the command line 1:1 with the API."""
    params = inspect.signature(job).parameters
    keywords = {
        name: getattr(args, name)
        for name, param in params.items()
        if param.kind is inspect.Parameter.KEYWORD_ONLY and hasattr(args, name)
    }
    return job(*(getattr(args, name) for name in positional), **keywords)


def add_plate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--plate",
        required=True,
        help="the plate: an image sequence (plate.####.exr, plate.%%04d.exr, plate.@.exr) or a movie (mp4, mov)",
    )
    parser.add_argument(
        "--frames",
        type=optional,
        help="frames to process, fileseq syntax (1001-1100, 1001-1100x2); default: the whole shot",
    )
    parser.add_argument(
        "--input-colorspace",
        type=optional,
        help="the plate's colour space (OpenColorIO name: ACEScg, ADX10, 'Linear Rec.709 (sRGB)'...); "
        "default: scene-linear Rec.709 for float files, sRGB for integer files and movies",
    )
    parser.add_argument("--ocio-config", type=optional, help="an OpenColorIO config file or built-in config name")


def add_shot_range(parser: argparse.ArgumentParser) -> None:
    """``--shot-range``: for jobs whose ``--frames`` is a farm task's part of a longer shot."""
    parser.add_argument(
        "--shot-range",
        type=optional,
        help="the whole shot's frames (default: every plate frame on disk). --frames then selects the frames "
        "to compute and write; neighbours outside it are read, never written (except by run, which also makes "
        "the trimaps of their neighbours for its matte). Give every task of a job the same shot",
    )


def add_trimap_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--resize-trimaps", action="store_true", help="scale trimaps of another size (same shape) to the plate's picture (nearest neighbour)"
    )
    parser.add_argument(
        "--trimap-channel",
        choices=TRIMAP_CHANNELS,
        default="luma",
        help="how multi-channel trimaps become one channel (default: Rec.709 luminance of RGB)",
    )


def _same_path(text: str) -> str:
    return os.path.abspath(os.path.expanduser(text))


class _OneFile(argparse.Action):
    """A flag with two names for one file: given twice with two different files, which one
    the job used would depend on their order (the last one won, without a word)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        earlier = getattr(namespace, self.dest, None)
        said = getattr(namespace, "_weights_flag", None)
        if earlier is not None and (values is None or _same_path(earlier) != _same_path(values)):
            parser.error(f"{said} {earlier} and {option_string} {values or repr('')} name two weight files for one "
                         "network; give one")
        setattr(namespace, self.dest, values)
        namespace._weights_flag = option_string


def add_method(parser: argparse.ArgumentParser, weights_help: str, weights_alias: str | None = None) -> None:
    """``--weights`` (and ``weights_alias``, another name for the same flag: ``--matting-weights``
    in ``matte``, ``--stm-weights`` in ``run``/``trimaps``, so each job also takes the name the
    other jobs use for that file)."""
    parser.add_argument(
        "--method", choices=METHODS, default="auto", help="classical (no weights) or tcvom (networks); default auto"
    )
    names = ("--weights", weights_alias) if weights_alias else ("--weights",)
    parser.add_argument(*names, dest="weights", type=optional, action=_OneFile, help=weights_help)
    parser.add_argument("--device", default="cpu", help="device for the networks: cpu, cuda, cuda:1")
    parser.add_argument(
        "--backend", choices=BACKENDS, default="torch", help="inference back-end for the networks (default torch)"
    )
    parser.add_argument(
        "--export-dir",
        type=optional,
        help="ONNX graphs from `tcvom export` for --backend onnxruntime/tensorrt (default: exported "
        "once per weight file into the user cache folder)"
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="network precision on every back-end: fp32, fp16 (CUDA), bf16 (CUDA, or a CPU with AVX512-BF16); "
        "auto: fp16 for tensorrt, fp32 otherwise (docs/backends.md)",
    )


def add_base(parser: argparse.ArgumentParser) -> None:
    from tcvom.models.bases import BASES

    def base(text: str) -> str | None:
        if not text.strip():
            return None  # a farm template's empty Base
        if text not in BASES:
            raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {', '.join(BASES)})")
        return text

    parser.add_argument(
        "--base", type=base, default=None, metavar="{" + ",".join(BASES) + "}",
        help="matting base whose registered weights to use (default gca); checked against the matting weights file (matte --weights, run --matting-weights)",
    )


def add_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output", choices=OUTPUT_KINDS, default="alpha",
        help="alpha only, premultiplied RGBA, or layers: EXR with A and FBA's foreground and background "
             "colours (fg.R fg.G fg.B bg.R bg.G bg.B; FBA weights only)",
    )
    parser.add_argument(
        "--alpha-format",
        choices=tuple(ALPHA_FORMATS),
        default="exr",
        help="exr (half, one A channel), exr32 (32-bit float), png16, tif16",
    )


def add_job_control(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true", help="recompute frames whose output already exists")
    parser.add_argument(
        "--io-queue",
        type=non_negative,
        default=DEFAULT_DEPTH,
        metavar="N",
        help=f"frames read ahead and written behind on I/O threads, so the networks do not wait on files "
             f"(default {DEFAULT_DEPTH}; 0: no I/O threads, for debugging)",
    )
    parser.add_argument(
        "--no-review",
        dest="review",
        action="store_false",
        help="do not write review/ (doubt per frame and the frames to key next; see `tcvom review`)",
    )
    add_progress(parser)


def add_progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--progress",
        choices=PROGRESS_MODES,
        default="bar",
        help="bar (a progress bar when stderr is a terminal; notices only in a log), json (one JSON object per line on stdout, for hosts and farms) or none",
    )


class _JsonWarnings(logging.Handler):
    """Warnings as JSON events on the stdout of the command's start, whichever thread warns
    and whatever ``sys.stdout`` is by then, as :class:`tcvom.progress.Progress` does."""

    def __init__(self) -> None:
        super().__init__()
        self.stream = sys.stdout

    def emit(self, record: logging.LogRecord) -> None:
        emit_json("warning", self.stream, message=record.getMessage())


def setup_logging(progress: str) -> None:
    """Warnings (NaN pixels...) go to stderr, or become JSON ``warning`` events."""
    log = logging.getLogger("tcvom")
    log.handlers.clear()
    log.propagate = False
    log.setLevel(logging.WARNING)
    if progress == "json":
        log.addHandler(_JsonWarnings())
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("tcvom: warning: %(message)s"))
        log.addHandler(handler)


def report(result: object, progress: str, job: str | None = None) -> None:
    """One closing line (or a JSON ``result`` event of ``job``) saying what the job did: per
    output, the frames computed, reused (their inputs had not changed) and removed, and the
    method that made it."""
    written = getattr(result, "written", [])
    skipped = getattr(result, "skipped", [])
    outputs = getattr(result, "outputs", {})
    method = getattr(result, "method", "")
    methods: dict[str, str] = getattr(result, "methods", {})
    stages: dict[str, dict[str, list[int]]] = getattr(result, "stages", {})
    review = _review_of(outputs.get("review"))
    if progress == "json":
        summary = {
            kind: {name: {"count": len(lists.get(kind, [])), "frames": format_range(lists[kind]) if lists.get(kind) else ""}
                   for name, lists in stages.items()}
            for kind in ("computed", "reused", "removed")
        }
        seen = {} if review is None else {"doubtful": review.doubtful, "suggested": review.suggested}
        emit_json("result", **({"job": job} if job else {}), method=method, methods=methods, written=len(written),
                  skipped=len(skipped), outputs=outputs, **summary, **seen)
        return
    where = ", ".join(f"{k}: {v}" for k, v in outputs.items())
    if len(stages) > 1:
        mixed = len(set(methods.values())) > 1  # auto: classical trimaps (no STM weights), network mattes
        parts = []
        for name, lists in stages.items():
            part = f"{name} {len(lists.get('computed', []))} computed, {len(lists.get('reused', []))} reused"
            if lists.get("removed"):
                part += f", {len(lists['removed'])} removed"
            if mixed and name in methods:
                part += f" by the {methods[name]} method"
            parts.append(part)
        how = "" if mixed else f" with the {method} method"
        _closing(f"tcvom: {'; '.join(parts)}{how} ({where})")
        if review is not None:
            _closing(_where_to_look(review, outputs["review"]))
        return
    extra = f", {len(skipped)} already done" if skipped else ""
    removed = sum(len(lists.get("removed", [])) for lists in stages.values())
    if removed:  # files of another format the output held (said as run says them; movie QA)
        extra += f", {removed} removed"
    _closing(f"tcvom: {len(written)} frame(s) written with the {method} method{extra} ({where})")


def _closing(line: str) -> None:
    """A closing line on stderr, lost where stderr cannot take it (a full disk): the job is
    done, its exit code says so (faults QA: exit 1, as a bug, after every frame was written)."""
    with contextlib.suppress(OSError):
        print(line, file=sys.stderr)


def _review_of(folder: str | None) -> Any:
    """The review a run wrote (``outputs["review"]``), or None where it wrote none or it is
    gone since (another run into the same output removed it): the job is done either way."""
    if folder is None:
        return None
    from tcvom.errors import TcvomError
    from tcvom.review.doubt import load_review

    try:
        return load_review(folder)
    except (TcvomError, OSError):
        return None


def _where_to_look(review: Any, folder: str) -> str:
    """The closing line's second line: the doubtful frames and the frames to key next."""
    doubtful = f"{len(review.doubtful)} doubtful frame(s) ({format_range(review.doubtful)})" if review.doubtful \
        else "no doubtful frame"
    if review.extra.get("estimated"):  # the warning counted them
        doubtful += f", doubt only guessed for {review.extra['estimated']}"
    suggested = ", ".join(map(str, review.suggested)) or "nothing to suggest"
    return f"tcvom: review: {doubtful}; key next: {suggested} (every frame: tcvom review {command_word(folder)})"


def add_stm_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--finetune-steps",
        type=non_negative,
        help="online fine-tuning steps of the STM network on the keyframes (default: 500 on CUDA, 0 on CPU)",
    )
    parser.add_argument(
        "--finetune-scope",
        choices=FINETUNE_SCOPES,
        default="segment",
        help="fine-tune STM per keyframe segment on the two keyframes that bound it (default: an edit recomputes "
        "only the segments it bounds) or once on every keyframe of the shot (an edit recomputes the whole shot)",
    )
    parser.add_argument("--mem-every", type=positive, default=5, help="STM memorises every Nth frame (default 5)")
    parser.add_argument(
        "--max-memory", type=positive_or_none, default=8,
        help="cap on STM memory frames besides the keyframes (default 8; none: no cap, as the reference)"
    )
