"""An Open Job Description template for a shot (the open job format of AWS Deadline Cloud).

Specification: https://github.com/OpenJobDescription/openjd-specifications (template
schema ``jobtemplate-2023-09`` with the ``TASK_CHUNKING`` extension). The job has three
steps:

- ``Trimaps``: one task per keyframe segment (task parameter ``Segment``, an index into
  the shot's segments, see ``tcvom farm plan``), running ``tcvom trimaps --segment N``;
- ``Matte``: depends on ``Trimaps``; chunks of frames (task parameter ``Frames`` of type
  ``CHUNK[INT]``, ``ChunkSize`` frames each, not necessarily contiguous: a shot on twos
  chunks as ``1001-1009:2``), running ``tcvom matte --frames 1001-1010``;
- ``Review``: depends on ``Matte``; one task, ``tcvom review OUT --rebuild``, which writes
  ``OUT/review`` for the whole shot from what the other tasks recorded.

Every task runs with the same ``--shot-range`` so chunk seams match a single run, and with
the same plate colour space, trimap channel, precision and base. Empty ``TrimapWeights`` /
``MattingWeights`` / ``ShotRange`` / ``InputColorspace`` / ``OcioConfig`` / ``Base`` mean
"not given" (the command line reads an empty value as absent). ``Frames`` and
``TrimapSegments`` are OpenJD range expressions (``1001-1100:2`` for a step).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tcvom.errors import InputError, check_choice, check_whole
from tcvom.io.colour import ColourConverter, config_reference
from tcvom.io.sequence import format_openjd_range, format_range, frame_selection
from tcvom.io.trimap import TRIMAP_CHANNELS
from tcvom.io.writers import ALPHA_FORMATS, OUTPUT_KINDS, check_alpha_output
from tcvom.models.bases import BASES
from tcvom.pipeline.methods import BACKENDS, METHODS, PRECISIONS

SPECIFICATION = "jobtemplate-2023-09"
EXTENSIONS: tuple[str, ...] = ("TASK_CHUNKING",)
TRIMAP_NAME = "trimap.####.png"


def _param(name: str, kind: str, description: str, default: Any = None, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "type": kind, "description": description, **extra}
    if default is not None:
        spec["default"] = default
    return spec


def _openjd_range(frames: str | int | Sequence[int] | None, what: str) -> str | None:
    """A frame range of tcvom's syntax (fileseq's, ``1001-1100x2``; or a frame number or a
    list, as the Python API takes them) as an OpenJD range expression (``1001-1100:2``),
    which the task parameters' ranges must be."""
    return None if frames is None else format_openjd_range(frame_selection(frames, what=what))


def _check_text(value: object, what: str, *, empty: bool = False) -> None:
    """A text argument: a string (``None`` or empty only where ``empty``, meaning "not given")."""
    if (value is None or value == "") and empty:
        return
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{what} must be {'text' if empty else 'non-empty text'}, not {value!r}")


def check_job_output(method: str, output: str, alpha_format: str, base: str | None = None,
                     matting_weights: str | Path | None = None) -> None:
    """Refuse an output a farm job's every Matte task would refuse (layers in a PNG, of the
    classical method, or of weights that predict alpha only: a base other than FBA, or a
    ``matting_weights`` file of another base), when the job is planned (InputError)."""
    check_alpha_output(alpha_format, output)
    if output != "layers":
        return
    from tcvom.pipeline import methods
    from tcvom.pipeline.jobs import check_colour_layers

    if method == "classical":
        check_colour_layers(None)
    elif matting_weights:
        from tcvom.weights.checkpoints import kind_of

        check_colour_layers(kind_of(matting_weights))
    else:
        check_colour_layers(methods.matting_kind(base))


def _check_arguments(values: dict[str, Any]) -> None:
    """What OpenJD would refuse in the template (its parameters' allowed values, minimum
    lengths and types), refused here as an InputError naming the argument: the command
    line's parser checks its own, the Python API's callers get this."""
    _check_name(values["name"])
    check_whole(values["chunk"], "the chunk size", 1, unit=" frame")
    for key, choices in (("method", METHODS), ("backend", BACKENDS), ("output", OUTPUT_KINDS),
                         ("alpha_format", ALPHA_FORMATS),
                         ("trimap_channel", TRIMAP_CHANNELS), ("precision", PRECISIONS)):
        check_choice(values[key], choices, key)
    check_job_output(values["method"], values["output"], values["alpha_format"], values["base"])
    if values["base"]:  # None or empty: the default, as the template's empty Base
        check_choice(values["base"], BASES, "base")
    for key in ("tcvom_command", "device"):
        _check_text(values[key], key)
    for key in ("input_colorspace", "ocio_config"):
        _check_text(values[key], key, empty=True)


#: Seconds a cancelled task has between SIGTERM and SIGKILL: tcvom stops at once on SIGTERM
#: (exit 143), removing its temporaries and a segment's buffer; OpenJD's default cancel is a
#: SIGKILL, which leaves them for the next run to find.
CANCEL_NOTICE_S = 60


def _action(args: list[str]) -> dict[str, Any]:
    return {"command": "{{Param.TcvomCommand}}", "args": args,
            "cancelation": {"mode": "NOTIFY_THEN_TERMINATE", "notifyPeriodInSeconds": CANCEL_NOTICE_S}}


def job_template(
    *,
    name: str = "tcvom",
    tcvom_command: str = "tcvom",
    shot_range: str | int | Sequence[int] | None = None,
    frames: str | int | Sequence[int] | None = None,
    segments: str | int | Sequence[int] | None = None,
    chunk: int = 10,
    method: str = "auto",
    backend: str = "torch",
    device: str = "cpu",
    output: str = "alpha",
    alpha_format: str = "exr",
    input_colorspace: str | None = None,
    ocio_config: str | None = None,
    trimap_channel: str = "luma",
    precision: str = "auto",
    base: str | None = None,
) -> dict[str, Any]:
    """The job template as a dict (JSON-ready); keyword arguments become the defaults of its
    parameters (leave ``frames`` or ``segments`` None to make the submitter give it; they
    are tcvom frame ranges, written as OpenJD range expressions).

    The shot's paths (``Plate``, ``Keyframes``, ``OutDir``) get no default: OpenJD only
    accepts a PATH default relative to the template's own folder, so they are given at
    submission (see :func:`job_parameters`).
    """
    _check_arguments(locals())
    if ocio_config or input_colorspace:  # a config or space that does not work: refused here, not by every task
        ColourConverter(input_colorspace or None, ocio_config or None)
    # a config file as an absolute path, as the shot's paths (colour QA: a relative one failed every task)
    ocio_config = config_reference(ocio_config)
    given = shot_range is not None and not (isinstance(shot_range, str) and not shot_range.strip())
    shot = format_range(frame_selection(shot_range, what="shot range")) if given else None
    parameters = [
        _param("TcvomCommand", "STRING", "the tcvom executable on the workers", tcvom_command, minLength=1),
        _param("Plate", "PATH", "the plate: an image sequence pattern (plate.####.exr) or a movie", None,
               objectType="FILE", dataFlow="IN", minLength=1),
        _param("Keyframes", "PATH", "keyframe trimaps, a sequence pattern (key.####.png)", None,
               objectType="FILE", dataFlow="IN", minLength=1),
        _param("OutDir", "PATH", "output folder: trimaps/ and alpha/ are written inside", None,
               objectType="DIRECTORY", dataFlow="OUT", minLength=1),
        _param("ShotRange", "STRING", "the whole shot's frames (empty: every plate frame on disk)",
               shot or ""),
        _param("Frames", "STRING", "frames to matte, an OpenJD range: 1001-1100, 1001-1100:2 on twos",
               _openjd_range(frames, "frames"), minLength=1),
        _param("TrimapSegments", "STRING", "keyframe segments to propagate, e.g. 0-2 (see `tcvom farm plan`)",
               _openjd_range(segments, "segments"), minLength=1),
        _param("ChunkSize", "INT", "frames per matte task", int(chunk), minValue=1),
        _param("Method", "STRING", "matting method", method, allowedValues=list(METHODS)),
        _param("Backend", "STRING", "inference back-end for the networks", backend, allowedValues=list(BACKENDS)),
        _param("Device", "STRING", "device for the networks: cpu, cuda, cuda:1", device, minLength=1),
        _param("Output", "STRING", "what the matte writes: alpha, premultiplied rgba, or layers (FBA weights)",
               output, allowedValues=list(OUTPUT_KINDS)),
        _param("AlphaFormat", "STRING", "alpha file format", alpha_format, allowedValues=list(ALPHA_FORMATS)),
        _param("InputColorspace", "STRING", "the plate's OpenColorIO colour space (empty: tcvom's default for "
               "the plate's file type)", input_colorspace or ""),
        _param("OcioConfig", "STRING", "an OpenColorIO config file or built-in config name (empty: tcvom's "
               "built-in default; $OCIO is not read)", ocio_config or ""),
        _param("TrimapChannel", "STRING", "how multi-channel keyframe trimaps become one channel", trimap_channel,
               allowedValues=list(TRIMAP_CHANNELS)),
        _param("Precision", "STRING", "network precision", precision, allowedValues=list(PRECISIONS)),
        _param("Base", "STRING", "matting base whose registered weights to use (empty: gca, or the weight "
               "file's)", base or "", allowedValues=["", *BASES]),
        _param("TrimapWeights", "PATH", "STM trimap weights for --method tcvom (empty: installed weights)",
               "", objectType="FILE", dataFlow="IN"),
        _param("MattingWeights", "PATH", "GCA+TAM matting weights for --method tcvom (empty: installed weights)",
               "", objectType="FILE", dataFlow="IN"),
    ]
    # "--flag=VALUE": a frame range may start with "-" (frames before zero), which argparse
    # would take for a flag of its own.
    shared = ["--shot-range={{Param.ShotRange}}", "--method", "{{Param.Method}}", "--backend",
              "{{Param.Backend}}", "--device", "{{Param.Device}}", "--precision", "{{Param.Precision}}",
              "--input-colorspace", "{{Param.InputColorspace}}", "--ocio-config", "{{Param.OcioConfig}}",
              "--progress", "json"]
    trimap_args = ["trimaps", "--plate", "{{Param.Plate}}", "--keyframes", "{{Param.Keyframes}}",
                   "--out", "{{Param.OutDir}}/trimaps", "--segment", "{{Task.Param.Segment}}",
                   "--weights", "{{Param.TrimapWeights}}", "--trimap-channel", "{{Param.TrimapChannel}}", *shared]
    matte_args = ["matte", "--plate", "{{Param.Plate}}", "--trimaps", "{{Param.OutDir}}/trimaps/" + TRIMAP_NAME,
                  "--out", "{{Param.OutDir}}/alpha", "--frames={{Task.Param.Frames}}",
                  "--weights", "{{Param.MattingWeights}}", "--base", "{{Param.Base}}", "--output", "{{Param.Output}}",
                  "--alpha-format", "{{Param.AlphaFormat}}", *shared]
    # The tasks above each compute part of the shot and write no review; this one task,
    # after them all, builds it from what they recorded (tcvom.pipeline.jobs.review_output).
    review_args = ["review", "{{Param.OutDir}}", "--rebuild", "--plate", "{{Param.Plate}}", "--ocio-config",
                   "{{Param.OcioConfig}}", "--progress", "json"]
    steps = [
        {
            "name": "Trimaps",
            "description": "propagate the keyframe trimaps, one task per keyframe segment",
            "parameterSpace": {
                "taskParameterDefinitions": [{"name": "Segment", "type": "INT", "range": "{{Param.TrimapSegments}}"}]
            },
            "script": {"actions": {"onRun": _action(trimap_args)}},
        },
        {
            "name": "Matte",
            "description": "matte chunks of frames (one frame of pre- and post-roll each)",
            "dependencies": [{"dependsOn": "Trimaps"}],
            "parameterSpace": {
                "taskParameterDefinitions": [
                    {
                        "name": "Frames",
                        "type": "CHUNK[INT]",
                        "range": "{{Param.Frames}}",
                        "chunks": {"defaultTaskCount": "{{Param.ChunkSize}}", "rangeConstraint": "NONCONTIGUOUS"},
                    }
                ]
            },
            "script": {"actions": {"onRun": _action(matte_args)}},
        },
        {
            "name": "Review",
            "description": "write OUT/review (doubt per frame, the frames to key next) for the whole shot",
            "dependencies": [{"dependsOn": "Matte"}],
            "script": {"actions": {"onRun": _action(review_args)}},
        },
    ]
    return {
        "specificationVersion": SPECIFICATION,
        "extensions": list(EXTENSIONS),
        "name": name,
        "parameterDefinitions": parameters,
        "steps": steps,
    }


def _check_name(name: str) -> None:
    """A job name OpenJD accepts: 1 to 128 characters, no control characters; ``{{`` would
    start one of its expressions."""
    if not 1 <= len(name) <= 128 or "{{" in name or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InputError(f"the job name {name!r} cannot be an Open Job Description job's name",
                         hint="give --name 1 to 128 characters, without control characters or '{{'")


def job_parameters(
    *,
    plate: str | Path,
    keyframes: str | Path,
    out: str | Path,
    trimap_weights: str | Path | None = None,
    matting_weights: str | Path | None = None,
) -> dict[str, str]:
    """The shot's paths as job parameter values (absolute), for ``openjd run --job-param
    file://PARAMS.json`` or a submitter."""
    from tcvom.io.sequence import path_text

    values = {"Plate": path_text(plate, "the plate", "give its image sequence or movie"),
              "Keyframes": path_text(keyframes, "the keyframe trimaps", "give their sequence pattern"),
              "OutDir": path_text(out, "the output folder")}
    if trimap_weights:
        values["TrimapWeights"] = path_text(trimap_weights, "the trimap weights", "give the .pth file")
    if matting_weights:
        values["MattingWeights"] = path_text(matting_weights, "the matting weights", "give the .pth file")
    return {k: str(Path(v).absolute()) for k, v in values.items()}


def write_template(path: str | Path, template: dict[str, Any]) -> Path:
    """Write ``template`` as JSON (``.json``) or YAML (``.yaml`` / ``.yml``, needs PyYAML,
    which ``openjd-cli`` brings)."""
    from tcvom.io.sequence import path_text

    target = Path(path_text(path, "the template's path", "give a .json or .yaml file name"))
    if target.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            from tcvom.errors import MissingDependencyError

            raise MissingDependencyError("PyYAML", "farm", purpose="a YAML template",
                                         alternative="write a .json template") from None
        text = yaml.safe_dump(template, sort_keys=False, width=120)
    else:
        text = json.dumps(template, indent=2) + "\n"
    target.parent.mkdir(parents=True, exist_ok=True)
    from tcvom.io.atomic import write_text

    return write_text(target, text)
