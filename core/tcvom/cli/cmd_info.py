"""``tcvom info``: what this machine can run (back-ends, devices, weights, colour spaces)."""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import platform
import shlex
import sys
from typing import Any

from tcvom import __version__
from tcvom.errors import EXIT_BAD_INPUT, InputError, TcvomError, command_word

NAME = "info"
HELP = "show the available back-ends, devices and weights (and identify a weight file)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="?", help="an image (its size, channels, pixel types, colour and the tcvom: header of one tcvom wrote) or a "
                        "movie (its frames as tcvom numbers them, size, codec, rate); a .pth/.pt/.ckpt file is identified as --weights does")
    parser.add_argument("--weights", help="identify this weight file (its matting base with or without the TAM, or STM) and check it loads")
    parser.add_argument("--colorspaces", action="store_true", help="list the OpenColorIO colour spaces (with --json: "
                        "with their aliases, and the config's roles)")
    parser.add_argument("--ocio-config", help="the OpenColorIO config to list, or in whose names to say what an "
                        "image's header says of its colour (default: built-in studio config)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


#: Libraries whose import compiles (pymatting's numba functions: 40-50 s on a new machine or
#: user): their version is read from the installed distribution's metadata instead, so a
#: pymatting whose import would fail is not shown "broken" (the classical method says so).
_NOT_IMPORTED = frozenset({"pymatting"})


def _version(module: str) -> str | None:
    if importlib.util.find_spec(module) is None:
        return None
    if module in _NOT_IMPORTED:
        try:
            return importlib.metadata.version(module)
        except importlib.metadata.PackageNotFoundError:
            return "installed"
    try:
        mod = __import__(module)
    except Exception as exc:  # an installed but broken package is worth showing
        return f"broken ({exc})"
    return str(getattr(mod, "__version__", getattr(mod, "VERSION_STRING", "installed")))


def collect() -> dict[str, Any]:
    """Everything ``tcvom info`` shows, as data."""
    import torch

    cuda = torch.cuda.is_available()
    devices = ["cpu"] + [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    backends: dict[str, Any] = {"torch": {"version": torch.__version__, "cuda": cuda}}
    ort = _version("onnxruntime")
    if ort is not None and not ort.startswith("broken"):
        import onnxruntime

        backends["onnxruntime"] = {"version": ort, "providers": onnxruntime.get_available_providers()}
    else:
        backends["onnxruntime"] = None
    backends["tensorrt"] = _version("tensorrt")
    libraries = {name: _version(mod) for name, mod in (
        ("OpenImageIO", "OpenImageIO"), ("PyOpenColorIO", "PyOpenColorIO"), ("av", "av"),
        ("opencv", "cv2"), ("pymatting", "pymatting"), ("onnx", "onnx"), ("numpy", "numpy"),
    )}
    weights: dict[str, str | None] = {}
    weight_problems: dict[str, str] = {}
    from tcvom.weights.registry import KINDS, configured_weights, search_locations

    for kind in KINDS:
        # A configuration that makes runs fail (a registered file gone, a corrupt registry,
        # $TCVOM_WEIGHTS naming nothing) is shown as the error a run would stop with.
        try:
            found = configured_weights(kind)
        except TcvomError as exc:
            found = None
            weight_problems[kind] = str(exc)
        weights[kind] = None if found is None else str(found)
    locations = [str(p) for p in search_locations()]
    return {
        "tcvom": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "devices": devices,
        "backends": backends,
        "libraries": libraries,
        "weights": weights,
        "weight_problems": weight_problems,
        "weight_search": locations,
    }


def show_file(path: str, as_json: bool, ocio_config: str | None = None) -> int:
    """Print an image's size, channels, the colour space tcvom takes it in (and what its
    header says otherwise, in ``ocio_config``'s names) and ``tcvom:`` provenance attributes."""
    from pathlib import Path

    from tcvom.errors import MissingFrameError, ReadError
    from tcvom.io.colour import ColourConverter
    from tcvom.io.images import COLOUR_ATTRIBUTES, PLATE_ATTRIBUTES, image_header, stacked_pictures
    from tcvom.io.sequence import path_text
    from tcvom.io.sources import header_colour, is_movie

    path = path_text(path, "the file", "give an image or movie file")
    colour = ColourConverter(None, ocio_config)  # a config that does not load: refused, as a run refuses it
    if is_movie(path) and Path(path).is_file():
        return _show_movie(path, as_json, ocio_config)
    if not Path(path).exists():
        raise MissingFrameError("file not found", path=path)
    if Path(path).is_dir():
        raise ReadError("cannot read the image header: `tcvom info FILE` reads image files (EXR, PNG, TIFF...)",
                        path=path, hint="for a folder, give one frame's image file")
    spec, info = image_header(path)  # of the part tcvom reads (a multi-part EXR's beauty)
    types = sorted({str(t) for t in spec.channelformats}) or [str(spec.format)]
    data: dict[str, Any] = {"file": path, "size": f"{spec.width}x{spec.height}",
                            "channels": list(spec.channelnames), "pixel_type": ", ".join(types)}
    pictures = stacked_pictures(path)
    if pictures > 1:  # an animated WebP, a TIFF stack: refused as a plate
        data["pictures"] = (f"{pictures} of this size: an animated image or a stack of pages (a plate is read from an "
                            "image sequence or a movie; split it into one, docs/io.md)")
    if info.parts:
        data["part_read"] = info.parts[info.part] + ("" if info.part_clear else " (which part is the plate is unclear)")
        data["parts"] = list(info.parts)
    if (spec.x, spec.y, spec.width, spec.height) != (spec.full_x, spec.full_y, spec.full_width, spec.full_height):
        data["data_window"] = f"({spec.x}, {spec.y}) {spec.width}x{spec.height}"
        data["display_window"] = f"({spec.full_x}, {spec.full_y}) {spec.full_width}x{spec.full_height}"
    for name in PLATE_ATTRIBUTES + COLOUR_ATTRIBUTES:  # what an output keeps from its plate, and its primaries
        value = spec.getattribute(name)
        if value is not None:
            data[name] = [round(float(v), 6) for v in value] if name in COLOUR_ATTRIBUTES else \
                spec.get_string_attribute(name) or value
    if info.orientation != 1:
        data["orientation"] = (f"{info.orientation}: viewers turn or flip the picture; tcvom, like compositors, "
                               "reads it as stored")
    # the colour a plate of such files is taken in, and what its header says otherwise, as a run warns of it
    data["taken_as"] = (f"{colour.source_for(info.is_float)} without --input-colorspace "
                        f"({'floating-point' if info.is_float else 'integer'} files, docs/io.md)")
    said, how = header_colour(colour, info)
    if said is not None:
        data["header_says"] = f"{said} ({how})" + (
            _follow(shlex.quote(said), ocio_config) if colour.config.getColorSpace(said) is not None else "")
    data.update({a.name: a.value for a in spec.extra_attribs if a.name.startswith("tcvom:")})
    return _print(data, as_json)


def _show_movie(path: str, as_json: bool, ocio_config: str | None = None) -> int:
    """A movie as tcvom reads it: its frames as numbered for --keyframes, --frames and the
    outputs, its size and rate."""
    from tcvom.io import MovieFrames, open_frames
    from tcvom.io.sequence import format_range

    movie = open_frames(path, ocio_config=ocio_config)  # its colour warnings in the config's names
    assert isinstance(movie, MovieFrames)  # by its suffix
    frames = movie.frame_numbers
    data = {"file": path, "movie": movie.codec, "frames": format_range(frames), "frame_count": len(frames),
            "size": f"{movie.width}x{movie.height}", "frame_rate": f"{movie.frame_rate:g}" if movie.frame_rate else None,
            "numbering": "frame 1 is the first picture: key it as --keyframes 1=key.png" + (
                f" ... {frames[-1]}=key.png" if len(frames) > 1 else " (the movie's one picture)")}
    movie.read(frames[0])  # the rotation players apply is a decoded picture's
    if movie.rotation:
        data["rotation"] = (f"{movie.rotation} degrees: players rotate the pictures; tcvom reads them as stored "
                            f"({movie.width}x{movie.height}): paint keyframes on the stored pictures")
    if movie.mirrored:
        data["mirror"] = ("players mirror the pictures; tcvom reads them as stored: paint keyframes on the stored "
                          "pictures")
    if movie.interlaced:
        data["interlaced"] = ("each picture holds two fields: tcvom mattes it whole, a moving edge's comb included; "
                              "deinterlace the plate first (ffmpeg -vf bwdif) to matte whole frames")
    if movie.pixel_aspect != 1.0:
        data["pixel_aspect"] = (f"{movie.pixel_aspect:.4g}: players stretch the pictures; the alphas are written "
                                "at the stored size, EXRs with this pixel aspect, other formats with square pixels")
    data.update(movie.colour_report())
    wide = movie.wide_colour()
    if wide is not None:  # said as a file's header is (colour QA: a run's warning only)
        data["header_says"] = wide[0] + _follow(wide[1], ocio_config)
    return _print(data, as_json)


def _follow(space: str, ocio_config: str | None) -> str:
    """How to follow what a file says of its colour: the ``--input-colorspace`` (a word of a
    command line) to pass, with the ``--ocio-config`` it was named in."""
    return (f": pass --input-colorspace {space}" + (f" --ocio-config {command_word(ocio_config)}" if ocio_config else "")
            + " if that is right")


def _print(data: dict[str, Any], as_json: bool) -> int:
    if as_json:
        print(json.dumps(data, indent=2, default=str))
    else:
        for key, value in data.items():
            print(f"{key:>22}: {value}")
    return 0


def main(args: argparse.Namespace) -> int:
    from tcvom.cli import common

    common.setup_logging("none")  # a file's warnings (a movie's colour tags) as every job says them
    if args.file and args.weights:  # bases QA: the weights were never checked (a truncated file, exit 0)
        raise InputError(f"tcvom info looks at one file at a time: {args.weights} (--weights) and {args.file} were "
                         "given", hint="run tcvom info once for each (a weight file with or without --weights)")
    if args.file:
        from tcvom.weights.registry import WEIGHT_SUFFIXES

        if args.weights is None and str(args.file).lower().endswith(WEIGHT_SUFFIXES):
            args.weights = args.file  # a checkpoint, not an image: identified as --weights does (weights QA)
        else:
            return show_file(args.file, args.json, args.ocio_config)
    if args.colorspaces:
        from tcvom.io.colour import colour_space_names

        spaces, roles = colour_space_names(args.ocio_config)
        if args.json:  # colour QA: --json printed the plain list
            print(json.dumps({"colorspaces": [{"name": n, "aliases": a} for n, a in spaces.items()], "roles": roles},
                             indent=1))
            return 0
        for name in spaces:  # one name a line, for scripts (aliases and roles: --json)
            print(name)
        return 0
    if args.weights:
        from tcvom.weights.checkpoints import describe

        info = describe(args.weights)
        if args.json:
            print(json.dumps(info, indent=2, default=str))
        else:
            for key, value in info.items():
                if value is not None:  # no problem: no "problem: None" line
                    print(f"{key:>14}: {value}")
        if info.get("loads", False):
            return 0
        print(f"tcvom info: error: {args.weights}: {info['problem']}", file=sys.stderr)  # why the exit code is 2
        return EXIT_BAD_INPUT
    data = collect()
    # Broken weight configuration: exit 2, as the runs it would make do.
    code = EXIT_BAD_INPUT if data["weight_problems"] else 0
    if args.json:
        print(json.dumps(data, indent=2))
        return code
    out = sys.stdout
    print(f"tcvom {data['tcvom']} on Python {data['python']} ({data['platform']})", file=out)
    print("devices:  " + ", ".join(data["devices"]), file=out)
    print("back-ends:", file=out)
    torch_info = data["backends"]["torch"]
    print(f"  torch        {torch_info['version']} (CUDA {'yes' if torch_info['cuda'] else 'no'})", file=out)
    ort = data["backends"]["onnxruntime"]
    print(
        "  onnxruntime  " + (f"{ort['version']} ({', '.join(ort['providers'])})" if ort else "not installed: pip install 'tcvom[onnx]'"),
        file=out,
    )
    trt = data["backends"]["tensorrt"]
    print("  tensorrt     " + (trt if trt else "not installed: pip install 'tcvom[tensorrt]' (needs NVIDIA's index)"), file=out)
    print("libraries: " + ", ".join(f"{k} {v or 'missing'}" for k, v in data["libraries"].items()), file=out)
    print("weights:", file=out)
    for kind, path in data["weights"].items():
        problem = data["weight_problems"].get(kind)
        print(f"  {kind:<9} {f'error: {problem}' if problem else path or 'not found'}", file=out)
    if data["weight_search"]:
        print("  searched: " + ", ".join(data["weight_search"]), file=out)
    if not any(data["weights"].values()) and not data["weight_problems"]:
        print("  (the built-in classical method needs none; see `tcvom weights add --help`)", file=out)
    return code
