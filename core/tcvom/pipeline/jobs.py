"""The jobs behind the command line: ``trimaps``, ``matte`` and ``run`` (both stages).

Each function's keyword arguments are the command's flags (``--input-colorspace`` is
``input_colorspace``...). Frames stream one at a time from the plate to the writers;
every output is written atomically.

Farm use (see ``docs/farm.md``): the *shot* is ``shot_range`` (default: every plate frame
on disk) and ``frames`` selects the part of it a task computes and writes, so a shot run
as chunks gives the same files as a shot run as one task:

- ``trimaps`` works in keyframe segments (:class:`~tcvom.propagation.scheduler.Segment`):
  it propagates every segment that holds a selected frame (or the one ``segment`` named)
  and writes the selected frames;
- ``matte`` mattes the selected frames with their real neighbours in the shot (one frame
  of pre-roll and post-roll), so chunk seams match a single run.

Reruns are incremental (the artist's loop): every output frame has a record of what it was
made from (:mod:`tcvom.farm.records`: the stage's settings and the content of the plate
frames, keyframes or trimaps it read). A frame whose record matches this run's inputs, and
whose file is still the one recorded, is reused and left untouched; any other is computed
and replaced atomically, so a killed task resumes where it stopped and a keyframe edit redoes
only the keyframe segments it bounds and the alphas whose trimaps changed. ``overwrite=True``
recomputes everything. Every output sequence has a job manifest
(:mod:`tcvom.farm.manifest`): a task over part of the shot whose settings differ from the
recorded ones stops with :class:`~tcvom.farm.manifest.SettingsMismatchError` (exit code 2);
a task over the whole shot replaces them, recomputes the frames they made and removes the
outputs it no longer produces.

Runs started together into one output share the work (:func:`_shared_work`): each keyframe
segment of the trimap stage and each frame of the matte stage is computed under a claim
(:class:`~tcvom.farm.locks.FrameClaims`); a run skips a unit another live run holds, waits
for it at the end of its stage and reuses what that run made.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from tcvom import __version__
from tcvom.errors import (
    InputError,
    MissingFrameError,
    TcvomError,
    check_choice,
    check_flag,
    check_text,
    check_whole,
    command_word,
    compiled_imported_held,
    shown,
)
from tcvom.farm import chunks as chunking
from tcvom.farm import manifest
from tcvom.farm.locks import FrameClaims
from tcvom.farm.records import FileDigests, FrameRecords, array_digest, digest, records_folder
from tcvom.io import AlphaWriter, ProbabilityWriter, TrimapWriter, open_frames, open_trimaps
from tcvom.io.atomic import ensure_writable_folder, remove_dead_temporaries
from tcvom.io.colour import config_file, config_identity, config_reference
from tcvom.io.overlap import DEFAULT_DEPTH, ReadAhead, WriteBehind
from tcvom.io.sequence import (
    IMAGE_OUTPUT_SUFFIXES,
    format_range,
    frame_path,
    is_pattern,
    one_spelling,
    output_pattern,
    parse_frame_range,
    parse_sequence,
    path_text,
)
from tcvom.io.sources import (
    MovieFrames,
    TrimapFiles,
    TrimapSpecs,
    is_frame_pair,
    one_job,
    trimap_specs,
)
from tcvom.io.trimap import UNKNOWN, check_channel
from tcvom.io.writers import check_alpha_output
from tcvom.matting.foreground import predicted_colour, rgba_foreground
from tcvom.matting.window import neighbour_window
from tcvom.pipeline import methods
from tcvom.progress import Progress, ProgressMode, check_progress
from tcvom.propagation import check_finetune_backend
from tcvom.propagation.ensemble import RULE, check_keyframes, frames_read, propagate, read_order
from tcvom.propagation.scheduler import KeyframeSchedule, Segment, segment_seeds
from tcvom.review import doubt

EXECUTORS: tuple[str, ...] = ("local", "ray")

FrameSelection = str | int | Sequence[int] | None


@dataclass
class JobResult:
    """What a job did: frames written, frames skipped (already done), where the outputs are.

    ``redone`` lists the computed frames that replace an existing file (stale, incomplete,
    or ``overwrite``).
    """

    method: str
    written: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    redone: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    kept: list[int] = field(default_factory=list)
    """Computed frames whose file already holds what they are given (a keyframe's painted
    trimap): the file stays as it is, only its record learns the new key."""
    stages: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    """Per output (``trimaps``, ``alpha``): frames ``computed``, ``reused`` and ``removed``
    (outputs a whole-shot run no longer produces), for the closing summary of ``run``."""
    methods: dict[str, str] = field(default_factory=dict)
    """Per output (``trimaps``, ``alpha``): the concrete method that made it (``auto`` may
    give a run classical trimaps and network mattes)."""

    def summary(self) -> dict[str, list[int]]:
        """This result's frames as one entry of :attr:`stages`."""
        return {"computed": sorted(self.written), "reused": sorted(self.skipped), "removed": sorted(self.removed)}

    def merge_stage(self, name: str, other: JobResult) -> None:
        """Add the frames of a task of stage ``name`` (its result) to :attr:`stages` only."""
        mine = self.stages.setdefault(name, {"computed": [], "reused": [], "removed": []})
        for kind, frames in other.summary().items():
            mine[kind] = sorted({*mine.get(kind, []), *frames})
        self.methods.update(other.methods)

    def merge(self, other: JobResult) -> None:
        """Add another task's frames (for jobs run as several tasks)."""
        self.written.extend(other.written)
        self.skipped.extend(other.skipped)
        self.redone.extend(other.redone)
        self.removed.extend(other.removed)
        self.outputs.update(other.outputs)
        self.methods.update(other.methods)
        for name, lists in other.stages.items():
            mine = self.stages.setdefault(name, {"computed": [], "reused": [], "removed": []})
            for kind, frames in lists.items():
                mine[kind] = sorted({*mine.get(kind, []), *frames})


def _engine_options(concrete: str, backend: str, export_dir: str | Path | None, precision: str, device: str,
                    stage: str) -> dict[str, Any]:
    """Keyword arguments that pick and configure the engine of the networks of ``stage``
    ("trimaps" or "matte") at ``precision`` (:func:`tcvom.pipeline.methods.resolve_precision`)."""
    if concrete != "tcvom":
        return {}
    chosen = methods.resolve_precision(precision, backend, device)
    if backend == "torch":
        # torch: the matting network takes the dtype; the STM propagator runs float32.
        return {"dtype": methods.TORCH_DTYPES[chosen]} if stage == "matte" else {}
    options: dict[str, Any] = {"export_dir": None if export_dir is None else str(export_dir)}
    if backend == "tensorrt":
        options["engine_options"] = {"precision": chosen}
    return options


def _run_precision(concrete: str, precision: str, backend: str, device: str, stage: str) -> str | None:
    """The precision a stage's frames are made at, as their records keep it: the networks'
    concrete one (``auto`` and the precision it means make the same frames; float32 for the
    STM on torch, whatever the matting network's, see :func:`_engine_options`), none for the
    classical method, which runs no network."""
    if concrete != "tcvom":
        return None
    chosen = methods.resolve_precision(precision, backend, device)  # refused here where it cannot run
    return "fp32" if backend == "torch" and stage == "trimaps" else chosen


def _check_arguments(io_queue: int, progress: str, trimap_channel: str, precision: str, input_colorspace: object,
                     ocio_config: object, **flags: object) -> None:
    """Arguments a job refuses before it reads or writes anything (the Python API's values:
    the command line's parser has checked its own); ``flags`` are its true/false keywords."""
    check_whole(io_queue, "the I/O queue (0: no I/O threads)", 0, unit=" frames")
    check_channel(trimap_channel)  # also when no trimap read would ask (tcvom's own are one channel)
    check_progress(progress)
    check_choice(precision, methods.PRECISIONS, "precision")  # also for the classical method, as the CLI
    check_text(input_colorspace, "input_colorspace (an OpenColorIO colour space's name)")
    check_text(ocio_config, "ocio_config (an OpenColorIO config file or built-in config's name)", path=True)
    for name, value in flags.items():
        check_flag(value, name)


def _config_text(ocio_config: str | os.PathLike[str] | None) -> str | None:
    """``ocio_config`` (checked by :func:`_check_arguments`) as text: a Path failed deep in
    the colour code (API QA)."""
    return None if ocio_config is None else os.fspath(ocio_config)


def _check_not_inputs(pattern: str, frames: Sequence[int], inputs: Mapping[str, Mapping[int, Path]]) -> None:
    """Refuse an output ``pattern`` whose files for ``frames`` are files the job reads:
    ``inputs`` maps what they are (``plate``, ``keyframe trimap``...) to their files by frame.
    A matte written over its plate destroyed every plate frame, and keyframes given as the
    pattern a run writes its trimaps to became keyframes of every frame after one run
    (odd-inputs QA). Files are compared by their folder's real path and their name (each
    folder resolved once; a link in the output's place is the output's, not its target)."""
    folders: dict[str, str] = {}

    def place(path: str | Path) -> str:
        head, name = os.path.split(os.path.abspath(path))
        real = folders.get(head)
        if real is None:
            real = folders[head] = os.path.realpath(head)
        return os.path.join(real, name)

    outputs = {place(frame_path(pattern, f)): f for f in frames}
    for what, files in inputs.items():
        for frame, path in files.items():
            hit = outputs.get(place(path))
            if hit is not None:
                raise InputError(f"the output would replace a file the job reads: frame {hit} of {pattern} is the "
                                 f"{what} file of frame {frame}", path=path,
                                 hint="write to another --out (a trimap fixed by hand is given as a keyframe by "
                                      "its own name: --keyframes FRAME=FILE)")


def _pattern_given(specs: str | Sequence[str], files: Mapping[int, Path]) -> dict[int, Path]:
    """Of trimap ``files``, those a pattern of ``specs`` gave (not a file given by its own
    name, alone or as a FRAME=PATH pair: a trimap fixed by hand in the output is a keyframe)."""
    items = [specs] if isinstance(specs, str | Path) else list(specs)
    named = {os.path.abspath(str(i).partition("=")[2] if is_frame_pair(str(i)) else str(i))
             for i in items if is_frame_pair(str(i)) or not is_pattern(str(i))}
    return {f: p for f, p in files.items() if os.path.abspath(p) not in named}


def _colour_setting(pattern: str, source: Any) -> str | None:
    """The stage setting of ``--input-colorspace`` (:meth:`~tcvom.io.colour.ColourConverter.
    given_setting`), spelt as the output's manifest spells the same colour space: a tcvom
    before 2026-12-07 recorded the flag as typed (an alias, another case, the default by
    name), and its outputs stay the same job (second review)."""
    is_float = bool(getattr(source, "_is_float", False))
    mine = source.colour.given_setting(is_float)
    path = manifest.manifest_path(pattern)
    if not path.is_file():
        return mine
    try:
        recorded = manifest.read_manifest(path).settings.get("input_colorspace")
    except TcvomError:
        return mine  # the claim says what is wrong with it
    return recorded if recorded != mine and source.colour.same_setting(recorded, is_float) else mine


def _open_plate(plate: str | Path, shot_range: FrameSelection, input_colorspace: str | None,
                ocio_config: str | None) -> Any:
    return open_frames(plate, shot_range, colorspace=input_colorspace, ocio_config=ocio_config)


def _keyframes(
    keyframes: str | Sequence[str], plate: Any, resize_trimaps: bool, trimap_channel: str
) -> TrimapFiles:
    source = open_trimaps(
        keyframes,
        plate=plate,
        resize=resize_trimaps,
        channel=trimap_channel,
        what="keyframe trimap",
        contiguous=False,
        painted=True,
    )
    outside = [f for f in source.frame_numbers if f not in set(plate.frame_numbers)]
    if outside:
        sequence = getattr(plate, "sequence", None)
        hint = (f"a movie's frames are numbered from its first picture, {plate.first_frame}: give each keyframe "
                f"with the frame it shows, e.g. --keyframes {plate.first_frame}=key.png"
                if isinstance(plate, MovieFrames) else
                "the plate is one file without a frame number, frame 1: give its keyframe as 1=KEY"
                if sequence is not None and not sequence.numbered else  # odd-inputs QA: "widen --shot-range" led on
                "paint keyframes on frames of the plate, or widen --shot-range")
        raise InputError(
            (f"keyframe {outside[0]} lies" if len(outside) == 1 else f"keyframes {format_range(outside)} lie")
            + f" outside the frame range {format_range(plate.frame_numbers)}",  # all of them: one run to fix
            path=source.path(outside[0]),
            frame=outside[0],
            hint=hint,
        )
    return source


def _keyframe_stamp(keyframes: str | Sequence[str], plate: Any, resize_trimaps: bool, trimap_channel: str) -> str:
    """The keyframes' frames and content hashes for the header: ``1001=sha256:..., ...``."""
    keys = _keyframes(keyframes, plate, resize_trimaps, trimap_channel)
    return _stamp_of(doubt.keyframe_file_states(keys.files))


def _stamp_of(states: Mapping[int, Mapping[str, Any]]) -> str:
    """The keyframe stamp of their files' states (:func:`tcvom.review.doubt.keyframe_file_states`)."""
    return ", ".join(f"{frame}={state['sha256']}" for frame, state in states.items())


def _absolute(path: str | Path | None) -> str | None:
    return None if path is None else str(Path(path).absolute())


def _trimaps_place(trimaps: str | Sequence[str], out: str | Path) -> str:
    """Where a matte stage's trimaps lie, as a short digest for its claim on the output
    (:func:`tcvom.farm.manifest.claimed`): by their place from the folder above the alpha
    folder (``../trimaps/trimap.####.png`` for ``OUT/alpha``: the tasks of one farm job on
    hosts that mount the shot elsewhere agree), each pattern in one spelling. Farm QA: two
    `tcvom matte` jobs with other trimaps into one output at once both ended done over a mix
    of the two mattes."""
    root = os.path.dirname(os.path.abspath(out))
    places = []
    for item in [trimaps] if isinstance(trimaps, str) else trimaps:
        pair = is_frame_pair(item)
        frame, _, path = item.partition("=")
        full = os.path.abspath(path if pair else item)
        try:
            place = Path(os.path.relpath(full, root))
        except ValueError:  # another drive (Windows)
            place = Path(full)
        places.append(f"{frame}=" * pair + str(place.parent / one_spelling(place.name)))
    return digest(sorted(places)).removeprefix("sha256:")[:16]


def _names(specs: str | Path | Sequence[str | Path], *, as_given: bool = False) -> list[str]:
    """File names of input specs (patterns or frame=path pairs), without their folders: the
    same shot mounted elsewhere on another farm host is the same input, and so is a pattern
    spelt another way (``%04d`` for ``####``; ``as_given``: as written, for people)."""
    items = [specs] if isinstance(specs, str | Path) else list(specs)
    out = []
    for item in items:
        frame, _, path = str(item).partition("=")
        name = Path(str(item)).name
        out.append(f"{frame}={Path(path).name}" if is_frame_pair(str(item)) else name if as_given else one_spelling(name))
    return out


def _weights_digest(concrete: str, kind: str, weights: str | Path | None) -> str | None:
    if concrete != "tcvom":
        return None
    from tcvom.io.hashing import file_sha256

    return f"sha256:{file_sha256(methods.locate_weights(kind, weights))}"  # hashed once per process


def _matting_network(concrete: str, base: str | None, weights: str | Path | None) -> str | None:
    """The kind of the matting weights a job uses (``"fba_tam"``, ``"gca"``...), before
    the network is loaded: the registered video network of ``base``, or a ``weights``
    file's, read from its keys (once per file in a process); None for the classical method."""
    if concrete != "tcvom":
        return None
    if weights is None:
        return methods.matting_kind(base)  # found by kind (tcvom.weights.registry)
    from tcvom.weights.checkpoints import kind_of

    return kind_of(methods.locate_weights(methods.matting_kind(base), weights))


def _check_export(export_dir: str | Path | None, backend: str, concrete: str, stage: str,
                  weights: str | Path | None, base: str | None = None) -> None:
    """Refuse, before a stage writes anything, an ``--export-dir`` without the export of the
    network the ``stage`` runs, one whose graph files are missing or changed, or one made
    from other weights (as the engine would when it opens, after the stage made its folder,
    or after the trimap stage of a run)."""
    if export_dir is None or backend == "torch" or concrete != "tcvom":
        return
    from tcvom.engines import check_made_from
    from tcvom.export.onnx_export import read_manifest, verify_graphs
    from tcvom.io.hashing import file_sha256

    if stage == "trimaps":
        network, kind = "stm", "stm"
    else:
        network, kind = str(_matting_network(concrete, base, weights)), methods.matting_kind(base)
    export = read_manifest(export_dir, network, verify=False)
    check_made_from(export, file_sha256(methods.locate_weights(kind, weights)))
    verify_graphs(export)  # graph files there and whole (hashed once a process: the engine's check reuses it)


def _check_matting_file(weights: str | Path, base: str | None, *, load: bool = False) -> None:
    """Refuse a matting weight file the matte stage would refuse (unreadable, STM's, of
    another base, of no known network) before a claim is made: read once for its kind,
    loaded only when that kind will not do, for the stage's own error. ``load``: loaded into
    its network whatever its kind (a tensor of another shape, or one missing, is refused
    too), once for the process (:func:`tcvom.pipeline.methods.network`): before the trimap
    stage of a run spends minutes."""
    from tcvom.matting.gca_session import load_matting_model
    from tcvom.models import bases
    from tcvom.weights.checkpoints import kind_of

    if load:  # loaded as the matte stage loads it on the CPU: that stage then takes this one
        methods.network("matting", weights, base=base)
        return
    kind = kind_of(weights)
    if kind not in bases.MATTING_KINDS or (base is not None and bases.base_of(kind) != bases.check_base(base)):
        load_matting_model(weights, base=base)


def _recorded_weights(pattern: str, weights_digest: str | None) -> bool:
    """Whether the output ``pattern`` was made with the weights of ``weights_digest`` (its
    manifest says so): a file read and accepted then, not read again to be checked (a full
    load of the STM file for every rerun and farm task)."""
    path = manifest.manifest_path(pattern)
    if weights_digest is None or not path.is_file():
        return False
    try:
        return manifest.read_manifest(path).settings.get("weights") == weights_digest
    except InputError:
        return False


def _check_stm_file(weights: str | Path | None) -> None:
    """Refuse the STM weights the trimap stage would refuse (none found, unreadable, of
    another network): said before the matting weights are found missing, as the stages run."""
    from tcvom.models.stm import load_stm_model
    from tcvom.weights.checkpoints import kind_of
    from tcvom.weights.registry import find_weights

    path = find_weights("stm", weights)
    if kind_of(path) != "stm":
        load_stm_model(path)


def _config_content(ocio_config: str | None) -> dict[str, str | None]:
    """The stage settings of ``--ocio-config``: a config file by its name without its folder
    (as the plate: the same config on another mount is the same input), a built-in config by
    its name, and its content (an edited file is another config,
    :func:`tcvom.io.colour.config_identity`)."""
    if not ocio_config:
        return {"ocio_config": ocio_config}
    name = Path(ocio_config).name if config_file(ocio_config) else ocio_config
    return {"ocio_config": name, "ocio_config_id": config_identity(ocio_config)}


def _provenance(settings: dict[str, Any], source: Any, precision: str, device: str,
                trimaps: str | Sequence[str]) -> dict[str, str | int | float]:
    """What an alpha EXR was made with, as ``tcvom:`` header attributes (``tcvom info FILE``);
    the matte job corrects ``tcvom:base`` from the network it loads (a ``--weights`` file
    names its own base)."""
    from tcvom import __version__

    stamp: dict[str, str | int | float] = {
        "tcvom:version": __version__,
        "tcvom:method": settings["method"],
        "tcvom:input_colorspace": source.colour.config.getColorSpace(  # the config's own name, not an alias
            source.colour.source_for(bool(getattr(source, "_is_float", False)))).getName(),
        "tcvom:ocio_config": config_reference(source.colour.config_name) or "",
        "tcvom:trimaps": ", ".join(_names(trimaps, as_given=True)),
    }
    if settings["method"] == "tcvom":  # the classical method runs no network: no back-end, base or weights
        stamp["tcvom:backend"] = settings["backend"]
        stamp["tcvom:base"] = settings.get("base") or "gca"
        stamp["tcvom:weights"] = str(settings.get("weights"))
        stamp["tcvom:precision"] = methods.resolve_precision(precision, settings["backend"], device)
    return stamp


def _any_output(writer: Any, shot: Sequence[int]) -> bool:
    """Does the sequence hold any frame already (a manifest left without frames binds nothing)?"""
    if any(writer.exists(f) for f in shot):
        return True
    records = FrameRecords(writer.pattern)
    return any(records.recorded_file(f) is not None for f in records.frames())


def _check_plan(writer: Any, shot: Sequence[int], settings: dict[str, Any]) -> None:
    """A plan (a farm job, the Ray executor's tasks) writes the shot in parts, and each part
    is refused where the output holds frames made with other settings: refused now, before
    a job is submitted whose every task would fail."""
    if not _any_output(writer, shot):
        return
    try:
        manifest.check(writer.pattern, {"version": __version__, **settings})
    except manifest.SettingsMismatchError as exc:
        raise manifest.SettingsMismatchError(
            f"{exc.message}; a job's tasks each write part of the shot and would be refused", path=exc.path,
            hint="run the whole shot once with tcvom run's local executor (which replaces them), or write to "
                 "another --out") from exc


def _remove_dead_temporaries(*records: FrameRecords | None) -> None:
    """Delete what killed runs left half-written in the record folders (a frame's record, a
    fine-tuned cache file); the writers clean the frames' folder themselves."""
    for recorded in records:
        if recorded is not None:
            remove_dead_temporaries(recorded.folder)
            remove_dead_temporaries(records_folder(recorded.pattern) / "cache")


def _settings_key(settings: dict[str, Any]) -> str:
    """The part of a frame's key that the stage's settings make. The shot range is left out:
    a frame's key names the frames it was made from, so a longer shot redoes only its ends."""
    return digest({"version": __version__, **{k: v for k, v in settings.items() if k != "shot"}})


def _plate_inputs(source: Any, frames: Sequence[int], files: FileDigests) -> tuple[list[Any], dict[str, Any]]:
    """The plate frames ``frames`` by content (for a key) and by file state (for the record)."""
    content, states = [], {}
    for frame in frames:
        path = str(Path(source.path(frame)).absolute())
        state = files.state(path)
        states[path] = state
        content.append([frame, state["sha256"]])
    return content, states


def _segment_key(
    seg: Segment, settings_key: str, source: Any, files: FileDigests, key_digests: dict[int, str], shot_wide: bool
) -> tuple[str, dict[int, dict[str, Any]]]:
    """What the trimaps of a keyframe segment are made from: its passes, the plate frames
    read (the passes' and the frame on either side that finding cuts reads,
    :func:`tcvom.propagation.ensemble.frames_read`; every keyframe's too where the network is
    fine-tuned on the whole shot) and the keyframes that seed them (every keyframe if they are
    shot-wide). Returns the key, and the input files' states each trimap's record keeps: its own plate
    frame's, and on the segment's first frame those of the frames read outside the segment
    (its bounding keyframes). Every state is recorded once: a record of the whole segment's
    inputs in each trimap grew with the square of the segment's length (173 MB of records,
    read by every rerun, for a 1000-frame shot keyed at its start)."""
    read = sorted(set(frames_read(source.frame_numbers, seg)) | (set(key_digests) if shot_wide else set()))
    seeds = segment_seeds(seg, key_digests, shot_wide)
    plate_content, states = _plate_inputs(source, read, files)
    key = digest({
        "settings": settings_key,
        "passes": [[list(p.frames), list(p.memory_keyframes), p.length] for p in seg.passes],
        "plate": plate_content,
        "keyframes": {k: key_digests[k] for k in seeds},
    })
    paths = {f: str(Path(source.path(f)).absolute()) for f in read}  # a movie: one file for every frame
    shares: dict[int, dict[str, Any]] = {f: {paths[f]: states[paths[f]]} if f in paths else {} for f in seg.outputs}
    shares[seg.first].update({paths[f]: states[paths[f]] for f in read if f not in shares})
    return key, shares


def _finetuned_name(key: str) -> str:
    from tcvom.propagation.finetune import cache_path

    return cache_path(".", key).name


def _prune_finetuned(recorded: FrameRecords) -> None:
    """Delete cached fine-tuned STM weights that no trimap of the shot was made with (each
    is the size of the weight file)."""
    cache = records_folder(recorded.pattern) / "cache"
    if not cache.is_dir():
        return
    used = set()
    for frame in recorded.frames():
        record = recorded.get(frame)
        if record is not None:  # one name, or those of the two passes that decided the frame
            named = record.get("finetuned")
            used.update(named if isinstance(named, list) else [named])
    for path in cache.glob("stm_finetuned_*.pt"):
        if path.name not in used:
            path.unlink(missing_ok=True)
            path.with_suffix(".lock").unlink(missing_ok=True)  # its tuning lock (finetune_cached)


def _segment_claim(seg: Segment) -> str:
    """The name of a keyframe segment's claim (:class:`~tcvom.farm.locks.FrameClaims`): the
    trimap stage propagates a segment as a whole, so concurrent runs share whole segments."""
    return f"segment.{seg.first}-{seg.last}"


def _segments_for(schedule: KeyframeSchedule, selection: list[int], segment: int | None) -> list[Segment]:
    if segment is not None:
        count = len(schedule.segments)
        if not 0 <= segment < count:
            raise InputError(
                f"there is no trimap segment {segment}: keyframes {format_range(list(schedule.keyframes))} "
                f"cut the shot into {count} segment(s), numbered 0-{count - 1}",
                hint="see `tcvom farm plan` for the segments of a shot",
            )
        one = schedule.segments[segment]
        if set(selection).isdisjoint(one.outputs):
            raise InputError(
                f"the frames {format_range(selection)} lie outside trimap segment {segment} "
                f"(frames {format_range(list(one.outputs))}): nothing to compute",
                hint="give frames of the segment, or leave --frames out to compute all of it",
            )
        return [one]
    chosen = set(selection)
    return [s for s in schedule.segments if chosen.intersection(s.outputs)]


@one_job  # its plate warnings said once each (a second job in one process said none)
def trimaps(
    plate: str | Path,
    keyframes: TrimapSpecs,
    out: str | Path,
    *,
    frames: FrameSelection = None,
    shot_range: FrameSelection = None,
    segment: int | None = None,
    method: str = "auto",
    weights: str | Path | None = None,
    device: str = "cpu",
    backend: str = "torch",
    export_dir: str | Path | None = None,
    precision: str = "auto",
    input_colorspace: str | None = None,
    ocio_config: str | None = None,
    resize_trimaps: bool = False,
    trimap_channel: str = "luma",
    probabilities: str | Path | None = None,
    finetune_steps: int | None = None,
    finetune_scope: str = "segment",
    mem_every: int = 5,
    max_memory: int | None = 8,
    overwrite: bool = False,
    progress: ProgressMode = "bar",
    method_options: dict[str, Any] | None = None,
    review: bool = True,
    plan_only: bool = False,
    io_queue: int = DEFAULT_DEPTH,
    stale_review: str | Path | None = None,
    hold: ExitStack | None = None,
    claim_only: bool = False,
) -> JobResult:
    """Propagate keyframe trimaps over the shot and write the trimaps of the selected frames.

    ``out`` is a folder (``trimap.####.png`` inside) or a pattern; ``probabilities``
    optionally names a folder/pattern for the class probabilities as EXR.
    ``frames`` selects frames of the shot (``shot_range``, default: the plate on disk);
    ``segment`` (0-based, see ``tcvom farm plan``) restricts the job to one keyframe
    segment, the unit of a farm task. ``plan_only=True`` computes nothing and creates no
    folder (an output that could not be made or written is refused): the result's
    ``written`` lists the frames a run would compute. ``finetune_steps`` (default: 500 on CUDA, 0 on CPU),
    ``mem_every`` and ``max_memory`` configure the STM propagator of ``method="tcvom"``.
    Each trimap's review figures are recorded beside it (:mod:`tcvom.review.doubt`); a job
    over the whole shot with ``review`` also writes the trimap review into ``review/``
    inside the output folder (``shot/trimaps`` -> ``shot/trimaps/review``), never outside it.
    ``io_queue`` plate frames are read ahead on a reader thread, in the order the
    propagation passes ask for them (forward and backward, a frame reached by two passes
    read for each), and as many trimaps are written behind on a writer thread (0: both in
    this thread, for debugging; :mod:`tcvom.io.overlap`); the outputs are the same.
    While the stage writes, a run with other settings into ``out`` is refused; ``hold``, a
    caller's stack, keeps that hold until the caller closes it (``run`` holds the trimaps
    through its matte stage, which reads them); ``claim_only`` takes that hold and computes
    nothing (a Ray run holds them while its tasks run).
    """
    _check_arguments(io_queue, progress, trimap_channel, precision, input_colorspace, ocio_config,
                     resize_trimaps=resize_trimaps, overwrite=overwrite, review=review, plan_only=plan_only,
                     claim_only=claim_only)
    ocio_config = _config_text(ocio_config)
    compiled_imported_held()  # a cancel while torch loads would break every later run of the process
    keyframes = trimap_specs(keyframes, "keyframe trimaps")
    check_whole(segment, "the segment", 0, none=True)
    check_whole(finetune_steps, "finetune_steps", 0, none=True)
    check_whole(mem_every, "mem_every", 1)
    check_whole(max_memory, "max_memory", 1, none=True)
    if method != "classical":
        methods.resolve_precision(precision, backend, device)  # refused before any file is read
        methods.check_device(backend, device)
    check_choice(finetune_scope, methods.FINETUNE_SCOPES, "finetune_scope")
    source = _open_plate(plate, shot_range, input_colorspace, ocio_config)
    shot = list(source.frame_numbers)
    selection = chunking.select_frames(frames, shot)
    keys = _keyframes(keyframes, source, resize_trimaps, trimap_channel)
    pattern = TrimapWriter(out, create=False).pattern
    # before they are read, so that a repaint after is seen (unchanged files, as the last stage kept them)
    key_files = doubt.keyframe_file_states(keys.files, doubt.TrimapOutput(pattern).keyframe_files)
    key_arrays = keys.read_all()
    check_keyframes(source, key_arrays, keys.files)
    schedule = KeyframeSchedule(shot, key_arrays)
    segments = _segments_for(schedule, selection, segment)
    chosen = set(selection)
    wanted = {s: [f for f in s.outputs if f in chosen] for s in segments}
    total = sum(len(v) for v in wanted.values())

    with Progress("trimaps", total, progress) as bar, ExitStack() as held:
        say = (lambda message: None) if claim_only else bar.message  # a hold's notices: the stage's tasks say them
        concrete = methods.resolve(method, "trimaps", weights, say, precision=precision)
        methods.check_backend(concrete, backend, export_dir, asked=method, notice=say, stage="trimaps")
        _check_export(export_dir, backend, concrete, "trimaps", weights)
        options = methods.check_method_options(concrete, "trimaps", method_options)
        weights_digest = _weights_digest(concrete, "stm", weights)  # a weight file that is not there: refused here
        if concrete == "tcvom" and not plan_only and not _recorded_weights(pattern, weights_digest):
            # of another network, or unreadable: refused before the folder and its record are made, loaded
            # as the stage loads it (methods.make_propagator then takes this one)
            from tcvom.weights.registry import find_weights

            methods.network("stm", find_weights("stm", weights), device=device if backend == "torch" else "cpu")
        steps = finetune_steps if finetune_steps is not None else methods.default_finetune_steps(device)
        if concrete == "tcvom":  # refused before the settings are recorded and the plan said (network QA)
            check_finetune_backend(backend, steps)
        writer = TrimapWriter(out, create=not plan_only)  # makes the folder: after every refusal
        prob_writer = ProbabilityWriter(probabilities, create=not plan_only) if probabilities else None
        read = {"plate": {f: source.path(f) for f in shot}, "keyframe trimap": _pattern_given(keyframes, keys.files)}
        for output in (writer, prob_writer):
            if output is not None:
                _check_not_inputs(output.pattern, shot, read)
        shot_wide = False  # does every frame depend on every keyframe (whole-shot fine-tuning)?
        if concrete == "tcvom":
            options.update(finetune_steps=steps, mem_every=mem_every, max_memory=max_memory)
            if steps > 0:
                options["finetune_scope"] = finetune_scope
                shot_wide = finetune_scope == "shot"
        options.update(_engine_options(concrete, backend, export_dir, precision, device, "trimaps"))
        settings = {
            "stage": "trimaps",
            "method": concrete,
            "backend": backend if concrete == "tcvom" else "torch",  # auto's classical stage runs none
            "precision": _run_precision(concrete, precision, backend, device, "trimaps"),
            "weights": weights_digest,
            "plate": _names(plate),
            "shot": format_range(shot),
            "input_colorspace": _colour_setting(writer.pattern, source),
            **_config_content(ocio_config),
            "resize_trimaps": resize_trimaps,
            "trimap_channel": trimap_channel,
            "probabilities": prob_writer is not None,
            # the export is checked against the weights (_check_export): where it lies is no setting
            "options": {k: v for k, v in options.items() if k != "export_dir"},
            "ensemble": RULE,  # trimaps of an earlier rule (across cuts) are made again
        }
        whole = segment is None and selection == shot
        if plan_only:
            _check_plan(writer, shot, settings)
        key_digests = {f: array_digest(a) for f, a in key_arrays.items()}
        if not plan_only:  # held until the stage (or the caller's hold) ends: other settings, and
            # other keyframes, are refused meanwhile
            (hold or held).enter_context(manifest.claimed(
                writer.pattern,
                settings,
                info={"plate": str(Path(plate).absolute()), "device": device, "keyframes": _names(keyframes),
                      "ocio_config": config_reference(ocio_config), "export_dir": _absolute(export_dir)},
                replace=whole or not _any_output(writer, shot),
                inputs=digest(sorted(key_digests.items())).removeprefix("sha256:")[:16],
            ))
            if claim_only:
                return JobResult(concrete, outputs={"trimaps": writer.pattern}, methods={"trimaps": concrete})
        recorded = FrameRecords(writer.pattern)
        prob_records = FrameRecords(prob_writer.pattern) if prob_writer is not None else None
        if not plan_only:
            _remove_dead_temporaries(recorded, prob_records)
        files = FileDigests(recorded.input_states())
        settings_key = _settings_key(settings)
        result = JobResult(concrete, outputs={"trimaps": writer.pattern}, methods={"trimaps": concrete})
        past: list[int] = []  # frames propagated past a cut from every keyframe
        pending: dict[Segment, set[int]] = {}
        seg_keys: dict[Segment, tuple[str, dict[int, dict[str, Any]]]] = {}

        def fresh(frame: int, key: str) -> bool:
            if not recorded.fresh(frame, key, writer.path(frame)):
                return False
            return prob_records is None or prob_records.fresh(frame, key, prob_writer.path(frame))  # type: ignore[union-attr]

        for seg in segments:
            seg_keys[seg] = _segment_key(seg, settings_key, source, files, key_digests, shot_wide)
            key = seg_keys[seg][0]
            present = [f for f in wanted[seg] if writer.exists(f)]
            todo = set(wanted[seg]) if overwrite else {f for f in wanted[seg] if not fresh(f, key)}
            # a keyframe's file left as it was (see finish) replaces nothing
            holds = [f for f in sorted(todo) if f in key_arrays and not overwrite
                     and _holds_trimap(writer.path(f), key_arrays[f])]
            result.kept.extend(holds)
            result.redone.extend(f for f in present if f in todo and f not in holds)
            done = [f for f in wanted[seg] if f not in todo]
            result.skipped.extend(done)
            if todo:
                pending[seg] = todo
        if plan_only:
            result.written = sorted(f for t in pending.values() for f in t)
            result.stages["trimaps"] = result.summary()
            return result
        for seg in segments:  # reused trimaps' records learn their plate files' times (copied plates)
            for frame in wanted[seg]:
                if frame not in pending.get(seg, ()):
                    recorded.learn_inputs(frame, seg_keys[seg][1].get(frame, {}))
        bar.plan("trimaps", reused=result.skipped, computed=sorted(f for t in pending.values() for f in t),
                 changed=result.redone)
        # a keyframe's file that holds its keyframe (the file fixed by hand and given as the keyframe) stays
        kept = set(result.kept)
        _say_edited(writer.pattern, sorted(f for t in pending.values() for f in t
                                           if not overwrite and f not in kept and recorded.edited(f)),
                    "a trimap fixed by hand is used when given as a keyframe (--keyframes FRAME=FILE)")
        # the keyframes this stage runs with, kept for the review (reused trimaps of other keyframes are
        # out of date by them): at its first write, or its end; a stage stopped before either keeps the last
        before_first_write = _BeforeFirstWrite(writer.pattern, stale_review, progress,
                                               then=partial(doubt.record_keyframes, writer.pattern, key_digests,
                                                            key_files))
        if result.skipped:
            bar.advance(len(result.skipped))  # together: no frame (docs/cli.md)
        if pending:
            if concrete == "tcvom":
                options["progress"] = progress
                if shot_wide or options.get("finetune_steps"):
                    options["cache_dir"] = records_folder(writer.pattern) / "cache"
            propagator: Any = None  # made when this run has a segment to compute (another run may do them all)
            since = _finished_since(recorded, sorted(f for t in pending.values() for f in t), overwrite)

            def left(seg: Segment) -> list[int]:
                key = seg_keys[seg][0]
                todo = []
                for frame in pending[seg]:
                    recorded.forget(frame)  # another run may have recorded it since
                    if prob_records is not None:
                        prob_records.forget(frame)
                    if not (fresh(frame, key) and since(frame)):
                        todo.append(frame)
                return todo

            def waiting(segs: list[Segment]) -> str:
                spans = ", ".join(f"{s.first}-{s.last}" for s in segs)
                return (f"trimaps: {len(segs)} keyframe segment(s) were being computed by another run into this "
                        f"output (frames {spans}); waiting for it to finish them")

            claims = FrameClaims(records_folder(writer.pattern))
            units = {seg: sorted(todo) for seg, todo in pending.items()}
            stamp = _stamp_of(key_files)

            def finish(item: Any, key: str, inputs: dict[str, Any], extra: dict[str, Any]) -> None:
                before_first_write()
                # A keyframe's trimap is the keyframe itself: a segment recomputed for its other
                # keyframe leaves the file as it was (only its record learns the new key).
                path = writer.path(item.frame)
                kept = item.frame in key_arrays and not overwrite and _holds_trimap(path, item.trimap)
                written = path if kept else writer.write(item.frame, item.trimap)
                if not kept and os.path.realpath(key_files.get(item.frame, {}).get("path", "")) == \
                        os.path.realpath(written):  # a keyframe given as this output's own trimap, written again
                    key_files[item.frame] = doubt.keyframe_file_states({item.frame: written})[item.frame]
                    doubt.record_keyframes(writer.pattern, key_digests, key_files)
                recorded.write(item.frame, written, key, inputs, **extra)
                if prob_writer is not None and prob_records is not None:
                    prob_records.write(item.frame, prob_writer.write(item.frame, item.probabilities), key, inputs)
                result.written.append(item.frame)
                bar.advance(frame=item.frame)

            try:
                with WriteBehind(io_queue) as behind:
                    for seg, todo in _shared_work(units, left, _segment_claim, claims, behind, bar, result, waiting):
                        key, shares = seg_keys[seg]
                        seeds = {str(k): key_digests[k] for k in segment_seeds(seg, key_digests, shot_wide)}
                        if propagator is None:
                            propagator = methods.make_propagator(  # auto's classical stage: no back-end
                                concrete, weights=weights, device=device,
                                backend=backend if concrete == "tcvom" else "torch", notices=bar.message, **options)
                        # one segment's reads at a time: another run may take the next segment
                        with ReadAhead(source, io_queue) as plate_in:
                            plate_in.start(read_order(propagator, key_arrays, [seg], shot))
                            for item in propagate(propagator, plate_in, key_arrays, schedule=schedule,
                                                  segments=[seg]):
                                if item.frame not in todo:
                                    continue
                                if item.past_cut:
                                    past.append(item.frame)
                                names = [_finetuned_name(t) for t in item.tuned]  # the passes' that decided it
                                extra: dict[str, Any] = {"finetuned": names[0] if len(names) == 1 else names} \
                                    if names else {}
                                extra["review"] = doubt.trimap_record(item.trimap, item.disagreement,
                                                                      item.frame in key_arrays)
                                extra["keyframes"] = stamp  # the matte stage stamps its alpha with it
                                extra["seeds"] = seeds  # the review tells them from the keyframes now
                                behind.submit(partial(finish, item, key, shares[item.frame], extra))
                        behind.submit(partial(claims.release, _segment_claim(seg)))  # once its frames are written
            finally:
                claims.release_all()
        if whole:
            result.removed.extend(recorded.prune(shot))
            if result.removed:
                _invalidate_reviews(writer.pattern, stale_review)
            if prob_records is not None:
                prob_records.prune(shot)
            _prune_finetuned(recorded)
        doubt.record_keyframes(writer.pattern, key_digests, key_files)  # every trimap of the stage's frames is theirs now
    if prob_writer is not None:
        result.outputs["probabilities"] = prob_writer.pattern
    result.stages["trimaps"] = result.summary()
    if review and not (segment is None and selection == shot) and past:  # no review to name them: said here
        doubt.say_past_cuts([sorted(past)])
    if review and segment is None and selection == shot:
        folder = Path(writer.pattern).parent / doubt.REVIEW_FOLDER
        doubt.review_output(source, folder, trimaps=writer.pattern, shot=shot,
                            progress=_review_progress(progress), waiting=progress,
                            sources=_review_sources(plate, shot, input_colorspace, ocio_config))
        result.outputs["review"] = str(folder)
    return result


_trimaps_stage = trimaps  # `run` has a parameter of the same name


def _open_matte_trimaps(
    trimaps: str | Sequence[str], source: Any, selection: list[int], needed: list[int],
    resize_trimaps: bool, trimap_channel: str, *, painted: bool, made: Mapping[str, Any] | None = None,
) -> TrimapFiles:
    chosen = set(selection)
    try:
        tris = open_trimaps(
            trimaps, None if _has_pairs(trimaps) else needed,
            plate=source, resize=resize_trimaps, channel=trimap_channel, painted=painted, made=made,
        )
    except MissingFrameError as exc:
        if exc.frame is None or exc.frame in chosen:
            raise
        raise MissingFrameError(
            f"the trimap of frame {exc.frame} is missing; it is needed as a neighbour of the frames matted",
            path=exc.path,
            frame=exc.frame,
            hint="make the trimaps of the whole shot first, or pass --shot-range to end the shot earlier",
        ) from exc
    missing = [f for f in needed if f not in tris]
    if missing and missing[0] in chosen:
        raise InputError(
            f"matting needs a trimap for every frame; frame {missing[0]} has none",
            frame=missing[0],
            hint="use `tcvom run` with keyframe trimaps to propagate them first",
        )
    if missing:
        raise InputError(
            f"frame {missing[0]} has no trimap; it is needed as a neighbour of the frames matted",
            frame=missing[0],
            hint="give trimaps for the whole shot, or pass --shot-range to end the shot earlier",
        )
    return tris


@one_job  # its plate warnings said once each (a second job in one process said none)
def matte(
    plate: str | Path,
    trimaps: TrimapSpecs,
    out: str | Path,
    *,
    frames: FrameSelection = None,
    shot_range: FrameSelection = None,
    method: str = "auto",
    weights: str | Path | None = None,
    base: str | None = None,
    device: str = "cpu",
    backend: str = "torch",
    export_dir: str | Path | None = None,
    precision: str = "auto",
    input_colorspace: str | None = None,
    ocio_config: str | None = None,
    resize_trimaps: bool = False,
    trimap_channel: str = "luma",
    output: str = "alpha",
    alpha_format: str = "exr",
    overwrite: bool = False,
    progress: ProgressMode = "bar",
    method_options: dict[str, Any] | None = None,
    review: bool = True,
    plan_only: bool = False,
    provenance: dict[str, str] | None = None,
    io_queue: int = DEFAULT_DEPTH,
    stale_review: str | Path | None = None,
    whole_run: bool = False,
    settings_only: bool = False,
) -> JobResult:
    """Pull an alpha matte for the selected frames of the shot from a trimap for every frame.

    ``frames`` selects frames of the shot (``shot_range``, default: the plate on disk);
    each is matted with its neighbours in the shot, whose trimaps must exist too.
    ``weights`` is a matting checkpoint of any base (its base is read from its keys);
    without it, ``base`` ("gca", "fba", "dim", "index"; default gca) picks the registered
    weights. ``output="rgba"`` writes the premultiplied foreground with its alpha instead
    of the alpha alone: FBA's own predicted foreground, for the other bases one estimated
    with pymatting's multi-level method. ``output="layers"`` (EXR, FBA only) writes alpha
    with FBA's foreground and background colours as ``fg.*`` / ``bg.*`` layers. A job over the whole
    shot with ``review`` also writes the review into ``review/`` inside the output folder
    (``shot/alpha`` -> ``shot/alpha/review``), with the trimap doubt when the trimaps are a
    tcvom output.
    ``provenance`` adds ``tcvom:`` header attributes to every EXR (``run`` gives the
    keyframes' frames and content hashes); it is not part of what a frame was made from.
    ``plan_only=True`` computes nothing and creates no folder (an output that could not be
    made or written is refused): the result's ``written`` lists the frames a run
    would compute (those whose inputs changed since their output was made), for a farm
    submission after an edit (:func:`plan_touched`).
    ``io_queue`` frames of plate and trimaps are read ahead on reader threads and as many
    alphas written behind on a writer thread, so the networks do not wait on files (0: all
    in this thread, for debugging; :mod:`tcvom.io.overlap`); the outputs are the same.
    ``whole_run``: the frames are one chunk of a run over the whole shot (``run --chunk``):
    its settings replace those an earlier run recorded, as a task over the whole shot's do
    (a part of the shot is refused other settings). ``settings_only`` (with ``plan_only``):
    only refuse an output made with other settings, the trimaps not read (a plan after an
    edit that touches every alpha, whose trimaps are to be made again).
    """
    _check_arguments(io_queue, progress, trimap_channel, precision, input_colorspace, ocio_config,
                     resize_trimaps=resize_trimaps, overwrite=overwrite, review=review, plan_only=plan_only)
    if provenance is not None and not (isinstance(provenance, Mapping) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in provenance.items())):
        raise InputError(f"provenance must be a mapping of header names to text (or None), not {shown(provenance)}")
    ocio_config = _config_text(ocio_config)
    compiled_imported_held()  # a cancel while torch loads would break every later run of the process
    trimaps = trimap_specs(trimaps)
    if method != "classical":
        methods.resolve_precision(precision, backend, device)  # refused before any file is read
        methods.check_device(backend, device)
    source = _open_plate(plate, shot_range, input_colorspace, ocio_config)
    check_alpha_output(alpha_format, output, source)  # a format without windows for an overscan plate
    shot = list(source.frame_numbers)
    selection = chunking.select_frames(frames, shot)
    needed = chunking.with_neighbours(selection, shot)
    specs = [trimaps] if isinstance(trimaps, str | Path) else list(trimaps)
    # Trimaps tcvom made: their records know their digests (and their values are its own).
    one_pattern = _one_pattern(specs)
    trimap_records = FrameRecords(one_pattern) if one_pattern is not None else None
    made = trimap_records.output_states() if trimap_records is not None else {}
    unused_channel = trimap_channel if made and trimap_channel != "luma" else ""
    if made:  # tcvom's trimaps are one channel: the channel picks from painted ones
        trimap_channel = "luma"
    tris = None if settings_only and plan_only else _open_matte_trimaps(
        trimaps, source, selection, needed, resize_trimaps, trimap_channel, painted=not made, made=made)
    with Progress("matte", len(selection), progress) as bar, ExitStack() as held:
        if unused_channel:
            bar.message(f"{specs[0]}: these trimaps were written by tcvom (one channel): --trimap-channel "
                        f"{unused_channel}, which picks a channel of painted trimaps, is not used")
        concrete = methods.resolve(method, "matte", weights, bar.message, base=base, precision=precision)
        methods.check_backend(concrete, backend, export_dir, asked=method, notice=bar.message, stage="matte")
        _check_export(export_dir, backend, concrete, "matte", weights, base)
        if output == "layers":
            check_colour_layers(_matting_network(concrete, base, weights))
        method_options = methods.check_method_options(concrete, "matte", method_options)
        digest = _weights_digest(concrete, methods.matting_kind(base), weights)  # refused before the folder is made
        if concrete == "tcvom" and weights is not None:  # of another network or base: was refused after the claim
            _check_matting_file(weights, base)
        # makes the folder (not for a plan, which writes nothing): after every refusal
        writer = AlphaWriter(out, fmt=alpha_format, kind=output, create=not plan_only)
        _check_not_inputs(writer.pattern, selection, {"plate": {f: source.path(f) for f in shot},
                                                      "trimap": dict(tris.files) if tris is not None else {}})
        settings = {
            "stage": "matte",
            "method": concrete,
            "backend": backend if concrete == "tcvom" else "torch",  # auto's classical stage runs none
            "precision": _run_precision(concrete, precision, backend, device, "matte"),
            "weights": digest,
            **({"base": base} if base and concrete == "tcvom" else {}),
            "plate": _names(plate),
            "shot": format_range(shot),
            "trimaps": _names(trimaps),
            "input_colorspace": _colour_setting(writer.pattern, source),
            **_config_content(ocio_config),
            "resize_trimaps": resize_trimaps,
            "trimap_channel": trimap_channel,
            "output": output,
            "alpha_format": alpha_format,
            "options": method_options or {},
            # a movie's non-square pixels, which its EXRs carry (square ones keep earlier outputs' keys; a
            # sequence's EXRs copy each frame's header, whose pixels are inputs)
            **({"pixel_aspect": source.pixel_aspect} if isinstance(source, MovieFrames) and source.pixel_aspect != 1.0
               and writer.fmt.startswith("exr") else {}),
        }
        writer.header = {**_provenance(settings, source, precision, device, trimaps), **(provenance or {})}
        whole = selection == shot
        if plan_only:
            _check_plan(writer, shot, settings)
            if tris is None:
                return JobResult(concrete, outputs={"alpha": writer.pattern}, methods={"alpha": concrete})
        else:  # held until the stage ends: a run with other settings is refused meanwhile
            held.enter_context(manifest.claimed(
                writer.pattern,
                settings,
                info={"plate": str(Path(plate).absolute()), "device": device,
                      "ocio_config": config_reference(ocio_config), "export_dir": _absolute(export_dir)},
                replace=whole or whole_run or not _any_output(writer, shot),  # (run prunes after its chunks)
                inputs=_trimaps_place(trimaps, out), inputs_are="trimaps",
            ))
        recorded = FrameRecords(writer.pattern)
        if not plan_only:
            _remove_dead_temporaries(recorded)
            _say_square_pixels(source, writer)
        files = FileDigests(recorded.input_states())
        files.learn(made)
        settings_key = _settings_key(settings)
        keys = {f: _window_key(f, shot, settings_key, source, tris, files) for f in selection}
        result = JobResult(concrete, outputs={"alpha": writer.pattern}, methods={"alpha": concrete})
        # an earlier file of a frame: under this name, or another (another --alpha-format)
        present = {f for f in selection if writer.exists(f) or recorded.recorded_file(f) is not None}
        if overwrite:
            todo = list(selection)
        else:
            todo = [f for f in selection if not recorded.fresh(f, keys[f][0], writer.path(f))]
        result.redone = [f for f in todo if f in present]
        result.skipped = [f for f in selection if f not in set(todo)]
        if plan_only:
            result.written = list(todo)
            result.stages["alpha"] = result.summary()
            return result
        for frame in result.skipped:  # reused alphas' records learn their input files' times (copied plates)
            recorded.learn_inputs(frame, keys[frame][1])
        bar.plan("alpha", reused=result.skipped, computed=todo, changed=result.redone)
        _say_edited(writer.pattern, [f for f in todo if not overwrite and recorded.edited(f)],
                    "to keep a frame fixed by hand, write the fixes to another folder")
        if todo and not made:
            _check_given_trimaps(tris, todo, whole=set(todo) == set(shot))
        before_first_write = _BeforeFirstWrite(writer.pattern, stale_review, progress)
        if result.skipped:
            bar.advance(len(result.skipped))

        def keyframe_stamp(frame: int) -> dict[str, str] | None:
            """The keyframes of the trimap tcvom made for ``frame`` (a farm's matte task has
            no keyframes of its own; ``run`` stamps its keyframes through ``provenance``)."""
            if made and "tcvom:keyframes" not in writer.header and trimap_records is not None:
                stamp = (trimap_records.get(frame) or {}).get("keyframes")
                return {"tcvom:keyframes": stamp} if isinstance(stamp, str) else None
            return None

        since = _finished_since(recorded, todo, overwrite)

        def left(frame: int) -> list[int]:
            recorded.forget(frame)  # another run may have recorded it since
            done = recorded.fresh(frame, keys[frame][0], writer.path(frame)) and since(frame)
            return [] if done else [frame]

        def waiting(frames: list[int]) -> str:
            return (f"alpha: {len(frames)} frame(s) were being computed by another run into this output "
                    f"({format_range(frames)}); waiting for it to finish them")

        claims = FrameClaims(records_folder(writer.pattern))
        if todo:
            if output in ("rgba", "layers"):  # the colours reuse the frames the session reads (and reads ahead)
                source.remember(capacity=io_queue + 4)
            options = {**(method_options or {}),
                       **_engine_options(concrete, backend, export_dir, precision, device, "matte")}
            extra = {"base": base} if concrete == "tcvom" else {}
            plate_in, trimaps_in = ReadAhead(source, io_queue), ReadAhead(tris, io_queue)
            session = methods.make_session(  # auto's classical stage: no back-end
                concrete, plate_in, trimaps_in, weights=weights, device=device,
                backend=backend if concrete == "tcvom" else "torch", notices=bar.message, **extra, **options
            )
            predicts_colour = "foreground" in getattr(session, "colours", ())
            if concrete == "tcvom":  # the base of the network loaded (a --weights file's own)
                writer.header["tcvom:base"] = session.network.removesuffix("_tam")

            chromaticities = source.linear_chromaticities if output != "alpha" else None
            interop = source.linear_interop_id if output != "alpha" else None  # once a job, not a frame

            def finish(frame: int, alpha: np.ndarray, foreground: np.ndarray | None,
                       background: np.ndarray | None) -> None:
                before_first_write()
                written = writer.write(frame, alpha, foreground, background=background,
                                       linear_space=source.linear_space, plate=source.path(frame),
                                       origin=source.origin, stamp=keyframe_stamp(frame),
                                       # the frame's chromaticities go with RGB of its own space, where they are its
                                       plate_space=output != "alpha" and source.keeps_primaries(frame),
                                       chromaticities=chromaticities, pixel_aspect=source.pixel_aspect,
                                       interop=interop)
                # Given trimaps (painted, another tool's) have no records: the alpha's keeps the
                # band of the trimap it was matted from, as the matte read it, for the review.
                extra = {} if made else {"review": {"unknown": int(np.count_nonzero(tris.read(frame) == UNKNOWN))}}
                if recorded.write(frame, written, *keys[frame], **extra) is not None:  # only once the frame is in place
                    result.removed.append(frame)  # its file of another --alpha-format / --output
                claims.release(frame)
                result.written.append(frame)
                bar.advance(frame=frame)

            try:
                with WriteBehind(io_queue) as behind:
                    shared = _shared_work({f: [f] for f in todo}, left, lambda f: f, claims, behind, bar, result,
                                          waiting)
                    frames = (frame for frame, _ in shared)
                    order = session.read_order(todo) if hasattr(session, "read_order") else []
                    plate_in.start(order)
                    trimaps_in.start(order)
                    colours = predicts_colour and output in ("rgba", "layers")
                    for frame, alpha, predicted in _mattes(session, frames, colours):
                        foreground = background = None
                        _check_finite(frame, alpha, concrete, weights)  # before anything clips or rounds it
                        if output != "alpha":  # the colours are made for the alpha the file will hold
                            alpha = writer.as_stored(alpha)
                        trimap = tris.read(frame) if predicted else None  # where the network's colours hold
                        if output == "rgba":
                            foreground = rgba_foreground(source, frame, alpha, scene_linear=writer.scene_linear,
                                                         predicted=predicted.get("foreground"), trimap=trimap)
                        elif output == "layers":
                            assert trimap is not None  # refused before for networks without colours
                            foreground, background = (
                                predicted_colour(source, frame, predicted[name], trimap, scene_linear=True)
                                for name in ("foreground", "background"))
                        behind.submit(partial(finish, frame, alpha, foreground, background))
            finally:
                plate_in.close()
                trimaps_in.close()
                claims.release_all()
        if whole:
            result.removed.extend(recorded.prune(shot))
            if result.removed:
                _invalidate_reviews(writer.pattern, stale_review)
    result.stages["alpha"] = result.summary()
    if review and selection == shot:
        folder = Path(writer.pattern).parent / doubt.REVIEW_FOLDER
        doubt.review_output(source, folder, trimaps=one_pattern, alpha=writer.pattern, shot=shot,
                            progress=_review_progress(progress), waiting=progress,
                            sources=_review_sources(plate, shot, input_colorspace, ocio_config))
        result.outputs["review"] = str(folder)
    return result


def _shared_work(units: dict[Any, list[int]], left: Callable[[Any], list[int]], name: Callable[[Any], int | str],
                 claims: FrameClaims, behind: WriteBehind, bar: Progress, result: JobResult,
                 notice: Callable[[list[Any]], str]) -> Iterator[tuple[Any, list[int]]]:
    """The units of work this run computes, each yielded with its frames still to compute
    and holding its claim (the caller releases it once those frames and their records are
    written). ``units`` maps a unit (an alpha frame, or a keyframe segment of the trimap
    stage) to the frames it would write; ``left(unit)`` reads the records again and says
    which of them are still to compute; ``name(unit)`` names its claim (:class:`FrameClaims`).

    Frames finished meanwhile (by another run or farm task) are reused. A unit whose claim
    another live run holds is left for the end of the stage, where ``notice`` says so: then
    this run waits for that run to let it go, reuses the frames whose records now match and
    computes the unit if any is left (the other run stopped, or made them from other
    inputs). Each unit is thus computed once however many runs write into the output
    together. Reused frames are reported through ``behind`` (:class:`WriteBehind`), after
    the frames computed before them, so progress keeps the order of the work.
    """

    def reused(frames: list[int]) -> None:
        result.skipped.extend(frames)
        bar.advance(len(frames))

    def reuse(unit: Any, todo: list[int]) -> None:
        frames = [f for f in units[unit] if f not in set(todo)]
        if frames:
            behind.submit(partial(reused, frames))

    deferred: list[Any] = []
    for unit in units:
        if not left(unit):
            reuse(unit, [])
        elif not claims.claim(name(unit)):
            deferred.append(unit)
        else:
            todo = left(unit)  # another run may have finished some between the two looks
            reuse(unit, todo)
            if todo:
                yield unit, todo
            else:
                claims.release(name(unit))
    if deferred:
        behind.drain()  # what this run computed is written (and its claims let go) before it waits
        bar.message(notice(deferred))
    for unit in deferred:
        claims.wait(name(unit))
        todo = left(unit)
        reuse(unit, todo)
        if todo:
            yield unit, todo
        else:
            claims.release(name(unit))


def _finished_since(recorded: FrameRecords, frames: Sequence[int], overwrite: bool) -> Callable[[int], bool]:
    """Whether a frame whose record matches was written during this run. Without
    ``overwrite`` every matching frame counts; with it only those whose record changed
    since now (another run of the same ``--overwrite`` session wrote it): the frames there
    before are recomputed, the ones a concurrent run recomputed are shared."""
    if not overwrite:
        return lambda frame: True
    before = {f: recorded.get(f) for f in frames}

    def changed(frame: int) -> bool:
        return recorded.get(frame) != before.get(frame)

    return changed


def _mattes(
    session: Any, frames: Iterator[int], colours: bool
) -> Iterator[tuple[int, np.ndarray, dict[str, np.ndarray]]]:
    """``(frame, alpha, colours)``: with ``colours`` (FBA) the network's own colour layers
    by name (``foreground``, ``background``), else alpha alone through the session's
    ``alphas`` (which a classical session runs in order) and an empty dict."""
    if not colours:
        for frame, alpha in session.alphas(frames):
            yield frame, alpha, {}
        return
    for frame in frames:
        layers = session.layers(frame)
        yield frame, layers.pop("alpha"), layers


def _say_square_pixels(source: Any, writer: AlphaWriter) -> None:
    """Warn that a PNG/TIFF alpha of an image sequence whose pixels are not square (an
    anamorphic scan's ``PixelAspectRatio``) has square ones (odd-inputs QA); an EXR carries
    the plate's. A movie says so as it is read."""
    if isinstance(source, MovieFrames) or writer.fmt.startswith("exr") or abs(source.pixel_aspect - 1.0) <= 1e-6:
        return
    logging.getLogger("tcvom").warning(
        "%s: the plate's pixels are not square (pixel aspect %s); %s alphas have square pixels: give them the "
        "plate's pixel aspect in the compositor, or write EXR alphas (--alpha-format exr), which carry it",
        source.path(source.first), f"{source.pixel_aspect:.4g}", writer.fmt)


def _check_given_trimaps(tris: TrimapFiles, frames: list[int], *, whole: bool) -> None:
    """Trimaps given for every frame (``--trimaps``, not made by tcvom) are checked as
    keyframes are, one at a time, before any frame is computed: a frame all unknown, or
    (``whole``: the frames are the whole shot) a shot with no foreground or no background,
    is an InputError naming the file and frame, never a matte of 0 or 1 everywhere. Their
    values are checked on reading (``painted``)."""
    from tcvom.io.trimap import check_class_counts, class_counts, inverted_warning, mask_warning

    counts = {frame: class_counts(tris.read(frame)) for frame in frames}
    paths = {frame: tris.path(frame) for frame in frames}
    check_class_counts(counts, paths, what="trimap", shot=whole)  # its warnings (a frame without foreground) unsaid
    for said in (mask_warning(counts, paths, what="trimap"), inverted_warning(counts, paths, what="trimap")):
        if said:  # roto masks, inverted trimaps given: said once
            logging.getLogger("tcvom").warning("%s", said)


def check_colour_layers(network: str | None) -> None:
    """Refuse ``--output layers`` (before anything is read or claimed) unless the matting
    network (:func:`_matting_network`) predicts foreground and background colours (FBA,
    with or without the TAM)."""
    from tcvom.weights.checkpoints import kind_name

    if network is None:
        raise InputError(
            "--output layers writes a network's foreground and background colours; the classical method predicts none",
            hint="use --method tcvom with FBA weights, or --output rgba (foreground estimated from alpha)",
        )
    if not network.startswith("fba"):
        raise InputError(
            f"--output layers needs a base that predicts foreground and background colours (FBA); "
            f"the weights are {kind_name(network)}, which predicts alpha only",
            hint="use FBA weights (--base fba or an FBA --weights file), or --output rgba",
        )


def _window_key(frame: int, shot: list[int], settings_key: str, source: Any, tris: TrimapFiles,
                files: FileDigests) -> tuple[str, dict[str, Any]]:
    """What the alpha of ``frame`` is made from: its neighbour window and the content of
    those plate frames and trimaps. Returns the key and the input files' states."""
    window = list(neighbour_window(frame, shot))
    plate_content, states = _plate_inputs(source, window, files)
    trimap_content = []
    for f in window:
        path = str(Path(tris.path(f)).absolute())
        states[path] = files.state(path)
        trimap_content.append([f, states[path]["sha256"]])
    key = digest({"settings": settings_key, "window": window, "plate": plate_content, "trimaps": trimap_content})
    return key, states


def _has_pairs(specs: str | Sequence[str]) -> bool:
    items = [specs] if isinstance(specs, str | Path) else list(specs)
    return any(is_frame_pair(str(i)) for i in items)


def _one_pattern(specs: Any) -> str | None:
    """The trimaps' one pattern (the CLI's is a list of one), whose per-frame records say
    what tcvom made; None for frame=path pairs or several patterns."""
    items = [specs] if isinstance(specs, str | Path) else list(specs)
    return str(items[0]) if len(items) == 1 and not _has_pairs(items) else None


@one_job  # its plate warnings said once each (a second job in one process said none)
def run(
    plate: str | Path,
    out: str | Path,
    *,
    keyframes: TrimapSpecs | None = None,
    trimaps: TrimapSpecs | None = None,
    frames: FrameSelection = None,
    shot_range: FrameSelection = None,
    method: str = "auto",
    weights: str | Path | None = None,
    matting_weights: str | Path | None = None,
    base: str | None = None,
    device: str = "cpu",
    backend: str = "torch",
    export_dir: str | Path | None = None,
    precision: str = "auto",
    input_colorspace: str | None = None,
    ocio_config: str | None = None,
    resize_trimaps: bool = False,
    trimap_channel: str = "luma",
    output: str = "alpha",
    alpha_format: str = "exr",
    overwrite: bool = False,
    progress: ProgressMode = "bar",
    finetune_steps: int | None = None,
    finetune_scope: str = "segment",
    mem_every: int = 5,
    max_memory: int | None = 8,
    executor: str = "local",
    chunk: int | None = None,
    trimap_options: dict[str, Any] | None = None,
    matte_options: dict[str, Any] | None = None,
    review: bool = True,
    plan_only: bool = False,
    io_queue: int = DEFAULT_DEPTH,
) -> JobResult:
    """The whole job: keyframe trimaps -> trimaps (``out/trimaps``) -> alpha (``out/alpha``).

    Give ``keyframes`` (a few painted trimaps) or ``trimaps`` (one for every frame, which
    skips propagation). ``weights`` is the STM trimap network's file and
    ``matting_weights`` the matting file (any base) for ``method="tcvom"``, ``base`` the
    matting base whose registered weights are used without it. ``frames`` selects the
    frames of the shot to matte (their neighbours' trimaps are made too).

    ``executor="local"`` runs here, one stage after the other, the matte stage in chunks
    of ``chunk`` frames when given (each chunk as a farm task would run it);
    ``executor="ray"`` runs one Ray task per keyframe segment, then one per chunk, on the
    Ray cluster of ``RAY_ADDRESS`` or a local one (needs ``pip install ray``).

    ``plan_only=True`` computes nothing, creates no folder and returns :func:`plan_touched`: what a run would
    compute. With ``review`` the run then writes ``out/review`` (:mod:`tcvom.review.doubt`): doubt
    per frame as review.json, review.csv and review.png, and the frames to key next.
    ``io_queue`` is both stages' (see :func:`matte`).
    """
    _check_arguments(io_queue, progress, trimap_channel, precision, input_colorspace, ocio_config,
                     resize_trimaps=resize_trimaps, overwrite=overwrite, review=review, plan_only=plan_only)
    ocio_config = _config_text(ocio_config)
    compiled_imported_held()  # a cancel while torch loads would break every later run of the process
    if (keyframes is None) == (trimaps is None):
        raise InputError("give either keyframe trimaps (--keyframes) or a trimap for every frame (--trimaps)")
    keyframes = None if keyframes is None else trimap_specs(keyframes, "keyframe trimaps")
    trimaps = None if trimaps is None else trimap_specs(trimaps)
    check_choice(executor, EXECUTORS, "executor")
    check_whole(chunk, "the chunk size", 1, none=True, unit=" frame")
    text = path_text(out, "the output folder")
    if is_pattern(text) and Path(text).suffix.lower() in IMAGE_OUTPUT_SUFFIXES:  # --out shot/matte.####.exr
        raise InputError(
            "`run` writes two sequences (trimaps/ and alpha/), so --out is a folder, not a file pattern",
            path=out,
            hint=f"pass --out {Path(str(out)).parent}, or make the alpha alone with `tcvom matte --out {out}`",
        )
    parse_sequence(str(Path(text) / "trimaps" / TrimapWriter.default_name()), "output pattern")  # "shot #5": said now
    out = Path(out)
    check_alpha_output(alpha_format, output)  # refused before the trimap stage, as the matte stage would
    # The matte stage's weights and back-end, checked before the trimap stage spends its time.
    matte_method = methods.resolve(method, "matte", matting_weights, base=base)
    if matting_weights is not None and method != "classical":
        from tcvom.weights.registry import configured_weights

        configured_weights(methods.matting_kind(base), matting_weights)  # a path that does not exist: exit 2
        if matte_method == "tcvom":
            _check_matting_file(matting_weights, base)
    methods.check_backend(matte_method, backend, export_dir, asked=method, stage="matte")
    _check_export(export_dir, backend, matte_method, "matte", matting_weights, base)
    if matting_weights is not None and matte_method == "tcvom" and keyframes is not None:
        _check_matting_file(matting_weights, base, load=True)  # whole, before a trimap stage runs first
    methods.check_method_options(matte_method, "matte", matte_options)
    trimap_method = None if keyframes is None else methods.resolve(method, "trimaps", weights)
    if trimap_method is not None:
        methods.check_backend(trimap_method, backend, export_dir, asked=method, stage="trimaps")
        _check_export(export_dir, backend, trimap_method, "trimaps", weights)
        methods.check_method_options(trimap_method, "trimaps", trimap_options)
    if matte_method == "tcvom" and matting_weights is None:  # none anywhere: said after the trimap stage before
        from tcvom.errors import MissingWeightsError

        try:
            methods.locate_weights(methods.matting_kind(base), None)
        except MissingWeightsError:
            if trimap_method == "tcvom":  # what is wrong with the STM weights first, as the stages run
                _check_stm_file(weights)
            raise
    if backend != "torch" and matte_method == "classical" and trimap_method in (None, "classical"):
        raise InputError(f"no stage of this run has network weights (auto runs the classical method), so --backend "
                         f"{backend} has nothing to run", hint="install weights (tcvom weights add FILE), or use "
                         "--backend torch (the default)")
    if output == "layers":
        check_colour_layers(_matting_network(matte_method, base, matting_weights))
    source = _open_plate(plate, shot_range, input_colorspace, ocio_config)
    check_alpha_output(alpha_format, output, source)  # a format without windows for an overscan plate
    shot = list(source.frame_numbers)
    selection = chunking.select_frames(frames, shot)
    common: dict[str, Any] = dict(
        shot_range=format_range(shot),
        method=method,
        device=device,
        backend=backend,
        export_dir=export_dir,
        precision=precision,
        input_colorspace=input_colorspace,
        ocio_config=ocio_config,
        resize_trimaps=resize_trimaps,
        trimap_channel=trimap_channel,
        overwrite=overwrite,
        io_queue=io_queue,
    )
    common["stale_review"] = out / doubt.REVIEW_FOLDER  # the run's review, made from both stages' outputs
    trimap_job: dict[str, Any] | None = None
    if keyframes is not None:
        trimap_job = dict(
            plate=plate,
            keyframes=keyframes,
            out=out / "trimaps",
            frames=format_range(chunking.with_neighbours(selection, shot)),
            weights=weights,
            finetune_steps=finetune_steps,
            finetune_scope=finetune_scope,
            mem_every=mem_every,
            max_memory=max_memory,
            method_options=trimap_options,
            review=False,
            **common,
        )
        trimap_spec: str | Sequence[str] = output_pattern(out / "trimaps", TrimapWriter.default_name())  # no folder yet
    else:
        assert trimaps is not None
        trimap_spec = trimaps
    matte_job: dict[str, Any] = dict(
        plate=plate,
        trimaps=trimap_spec,
        out=out / "alpha",
        weights=matting_weights,
        base=base,
        output=output,
        alpha_format=alpha_format,
        method_options=matte_options,
        review=False,
        **common,
    )
    if keyframes is not None:
        matte_job["provenance"] = {"tcvom:keyframes": _keyframe_stamp(keyframes, source, resize_trimaps, trimap_channel)}
        matte_job["trimap_channel"] = "luma"  # the channel picks from the keyframes; the trimaps are tcvom's own
    if plan_only:
        return plan_touched(trimap_job, matte_job, selection)
    if trimap_job is not None and (matte_job["out"].exists() or matte_job["out"].is_symlink()):
        ensure_writable_folder(matte_job["out"])  # a blocked alpha folder is said before the trimaps take their time
    if executor == "ray":
        from tcvom.farm.ray_executor import run_with_ray

        with ExitStack() as hold:  # the trimaps held while the tasks run, as a local run holds them
            if trimap_job is not None:
                _trimaps_stage(**{**trimap_job, "progress": "none", "review": False}, hold=hold, claim_only=True)
            done = run_with_ray(trimap_job, matte_job, selection, chunk=chunk, progress=progress)
        if selection != shot:
            _say_out_of_date(trimap_job, matte_job, shot, selection, done.methods)
        if review:
            _review_run(source, out, trimap_job, matte_job, done, progress)
        return done
    first: JobResult | None = None
    parts = chunking.chunk_ranges(selection, chunk, shot) if chunk else [format_range(selection)]
    result: JobResult | None = None
    with ExitStack() as hold:  # the trimaps stay held while the matte stage reads them
        if trimap_job is not None:
            if selection != shot:  # a part whose matte will be refused changes no trimap first
                _check_part_settings(matte_job, shot)
            first = _trimaps_stage(progress=progress, hold=hold, **trimap_job)
        for part in parts:
            job = matte_job if result is None else _as_chosen(matte_job, result.methods["alpha"])  # said once
            done = matte(frames=part, progress=progress, whole_run=selection == shot, **job)
            if result is None:
                result = done
            else:
                result.merge(done)
    assert result is not None
    if selection == shot and len(parts) > 1:  # each chunk is part of the shot: prune once, here
        removed = FrameRecords(result.outputs["alpha"]).prune(shot)
        result.removed.extend(removed)
        result.stages["alpha"]["removed"] = sorted({*result.stages["alpha"]["removed"], *removed})
    if first is not None:
        result.outputs.update(first.outputs)
        result.stages.update(first.stages)
        result.methods.update(first.methods)
    if selection != shot:
        _say_out_of_date(trimap_job, matte_job, shot, selection, result.methods)
    if review:
        _review_run(source, out, trimap_job, matte_job, result, progress)
    return result


def _as_chosen(job: dict[str, Any], method: str) -> dict[str, Any]:
    """A stage job given the concrete method ``auto`` chose for it before, so that it neither
    says its notices again nor refuses the run's back-end (a classical stage runs none; its
    settings record torch and no weights either way)."""
    unused = {"backend": "torch", "export_dir": None, "weights": None}
    return {**job, "method": method, **(unused if method == "classical" else {})}


def _say_out_of_date(trimap_job: dict[str, Any] | None, matte_job: dict[str, Any], shot: list[int],
                     selection: list[int], chosen: Mapping[str, str]) -> None:
    """After a run of some frames: warn of the files outside them that a run of the whole
    shot would compute again (made from other keyframes, plate frames or trimaps), as
    :func:`plan_touched` plans them; frames never computed and files painted over by hand
    (said when they are replaced) are left out. ``chosen``: the methods the run used (per
    output), planned as such so that ``auto`` does not say its notices again."""

    def as_run(job: dict[str, Any], method: str | None) -> dict[str, Any]:
        # --overwrite redoes this run's frames, not the others
        return {**(_as_chosen(job, method) if method else job), "overwrite": False}

    stages = (("trimaps", trimap_job and output_pattern(trimap_job["out"], TrimapWriter.default_name()),
               set(parse_frame_range(trimap_job["frames"])) if trimap_job else set()),
              ("alphas", AlphaWriter(matte_job["out"], fmt=matte_job["alpha_format"], kind=matte_job["output"]).pattern,
               set(selection)))
    whole = None if trimap_job is None else as_run({**trimap_job, "frames": format_range(shot)}, chosen.get("trimaps"))
    planned = plan_touched(whole, as_run(matte_job, chosen.get("alpha")), shot)
    said = []
    for stage, pattern, done in stages:
        if not pattern:
            continue
        records = FrameRecords(pattern)
        frames = planned.stages.get("trimaps" if stage == "trimaps" else "alpha", {}).get("computed", [])
        kept = set(planned.kept) if stage == "trimaps" else set()  # keyframes whose files hold their trimaps
        stale = [f for f in frames if f not in done and f not in kept and records.get(f) is not None
                 and not records.edited(f)]
        if stale:
            said.append(f"{stage} {format_range(stale)}")
    busy = [who for _, pattern, _ in stages if pattern for who in manifest.writing_now(pattern)] if said else []
    if busy:  # its files are being written: a frame between its rename and its record looked out of date (loop QA)
        logging.getLogger("tcvom").warning(
            "%s: outside this run's frames, %s may be out of date, or only half-recorded by another run writing this "
            "output now (%s); once it has ended, `tcvom review %s --rebuild` names those left behind",
            Path(matte_job["out"]).parent, " and ".join(said), ", ".join(sorted(set(busy))),
            command_word(Path(matte_job["out"]).parent))
    elif said:
        logging.getLogger("tcvom").warning(
            "%s: outside this run's frames, %s were made from other keyframes, plate frames or trimaps and are out "
            "of date; run the whole shot (without --frames) to update them", Path(matte_job["out"]).parent,
            " and ".join(said))


def _say_edited(pattern: str, frames: Sequence[int], hint: str) -> None:
    """Warn, before they are replaced, of the files of ``frames`` changed since tcvom wrote
    them (painted over by hand): a rerun computes them again."""
    if frames:
        logging.getLogger("tcvom").warning(
            "%s: %d file(s) changed since tcvom wrote them are computed again and replaced (%s); %s",
            pattern, len(frames), format_range(frames), hint)


def _holds_trimap(path: Path, trimap: np.ndarray) -> bool:
    """Whether the trimap file at ``path`` (one tcvom wrote) holds ``trimap`` (uint8 0/128/255)."""
    from tcvom.io import read_image

    if not path.is_file():
        return False
    try:
        pixels, _ = read_image(path)
    except InputError:
        return False
    stored = np.rint(pixels[:, :, 0] * 255.0).astype(np.uint8)
    return stored.shape == trimap.shape and bool(np.array_equal(stored, trimap))


def _check_finite(frame: int, alpha: np.ndarray, method: str, weights: str | Path | None) -> None:
    """A matte with NaN or infinite values is never written (a compositor would merge it as
    garbage): the networks give them with damaged or untrained weights, or overflowing in
    half precision."""
    bad = int(np.size(alpha) - np.count_nonzero(np.isfinite(alpha)))
    if bad:
        raise InputError(
            f"the {method} method's matte holds {bad} NaN or infinite value(s); nothing was written for this frame",
            path=weights, frame=frame,
            hint="are the matting weights damaged or untrained (tcvom info --weights FILE)? With --precision fp16 "
                 "or bf16, try fp32")


def _check_part_settings(matte_job: dict[str, Any], shot: Sequence[int]) -> None:
    """Before the trimap stage of a run over part of the shot: refuse the settings the matte
    stage would refuse (those given to ``run`` as they are), so that a refused run leaves
    the trimaps and the review of the shot as they were."""
    writer = AlphaWriter(matte_job["out"], fmt=matte_job["alpha_format"], kind=matte_job["output"])
    if not _any_output(writer, shot):
        return
    keys = ("alpha_format", "output", "input_colorspace", "resize_trimaps")
    # an edited config: the matte stage's claim refuses it (review)
    manifest.check(writer.pattern, {**{key: matte_job[key] for key in keys}, **_config_content(matte_job["ocio_config"])})


def _review_run(source: Any, out: Path, trimap_job: dict[str, Any] | None, matte_job: dict[str, Any],
                result: JobResult, progress: ProgressMode) -> None:
    """Write ``out/review`` (doubt per frame, the frames to key next) for the whole shot."""
    folder = out / doubt.REVIEW_FOLDER
    # the trimaps given (`run --trimaps`): their records, where tcvom made them, hold each frame's band
    trimap_pattern = (TrimapWriter(trimap_job["out"]).pattern if trimap_job is not None
                      else _one_pattern(matte_job["trimaps"]))
    alpha_pattern = AlphaWriter(matte_job["out"], fmt=matte_job["alpha_format"], kind=matte_job["output"]).pattern
    sources = _review_sources(matte_job["plate"], list(source.frame_numbers), matte_job["input_colorspace"],
                              matte_job["ocio_config"])
    doubt.review_output(source, folder, trimaps=trimap_pattern, alpha=alpha_pattern,
                        progress=_review_progress(progress), waiting=progress, sources=sources)
    result.outputs["review"] = str(folder)


def review_output(out: str | Path, *, plate: str | Path | None = None, ocio_config: str | None = None,
                  progress: ProgressMode = "none") -> tuple[doubt.Review, Path]:
    """Write the review of a run's output folder ``out`` (``out/trimaps``, ``out/alpha``, as
    :func:`run` and the farm job lay them out; or a stage's own, the folder `tcvom matte` or
    `tcvom trimaps` wrote into) into ``out/review`` from what its tasks left:
    the alpha manifest (plate, shot, colour handling, alpha format), the per-frame records
    of the trimaps and the alpha files. This is how a farm job's last step writes the
    review that its partial tasks (one segment, one chunk) do not. ``plate`` replaces the
    recorded plate path (the shot is mounted elsewhere on this host), ``ocio_config`` the
    recorded config's (the path of the run that first made the matte: the same config
    elsewhere is the same input, so a later run or farm task need not have found it there).
    Returns the review and its folder.

    Raises:
        InputError: neither ``out/alpha`` nor ``out`` holds a matte (or trimaps) made by tcvom.
    """
    root = Path(path_text(out, "the output folder", hint="give the folder `tcvom run` or the farm job wrote into"))
    check_text(plate, "plate (the plate's new place)", path=True)
    check_text(ocio_config, "ocio_config (an OpenColorIO config file or built-in config's name)", path=True)
    check_progress(progress)
    ocio_config = _config_text(ocio_config)
    settings: dict[str, Any] | None = None
    recorded_plate = config = None
    # a run's or farm job's output (OUT/alpha), or a stage's own (`tcvom matte --out`, `tcvom
    # trimaps --out`: newcomer QA, the --rebuild the review's hint named failed there)
    stages = ((root / "alpha", "matte"), (root, "matte"), (root, "trimaps"))
    made, stage = root / "alpha", "matte"
    for made, stage in stages:
        for path in sorted(made.glob(f".*{manifest.SUFFIX}")):
            found = manifest.read_manifest(path)
            if found.settings.get("stage") == stage:
                settings, recorded_plate = found.settings, found.info.get("plate")
                # the config's path is recorded for people (the settings hold its name): an older
                # tcvom's manifest holds the path in the settings
                config = ocio_config or found.info.get("ocio_config", settings.get("ocio_config"))
                break
        if settings is not None:
            break
    if settings is None:
        raise InputError("no matte or trimaps made by tcvom in this output (no tcvom manifest in it or its alpha/ "
                         "folder)", path=root, hint="give the folder that `tcvom run`, a stage or the farm job wrote into")
    spec = plate or recorded_plate
    if not spec:
        raise InputError("the matte's manifest does not say which plate it was made from",
                         path=root / "alpha", hint="give the plate (--plate)")
    shot = parse_frame_range(settings["shot"])
    if ocio_config is None and config_file(config) and not Path(str(config)).is_file():
        raise InputError("the OpenColorIO config the matte was made with is not there any more", path=config,
                         hint="give it where it is now (--ocio-config)")
    source = _open_plate(spec, settings["shot"], settings.get("input_colorspace"), config)
    alpha = None if stage == "trimaps" else AlphaWriter(made, fmt=settings.get("alpha_format", "exr"),
                                                        kind=settings.get("output", "alpha")).pattern
    trimap_writer = TrimapWriter(made if stage == "trimaps" else root / "trimaps")
    trimap_pattern = trimap_writer.pattern if manifest.manifest_path(trimap_writer.pattern).exists() else None
    if trimap_pattern is None and alpha is not None:  # tcvom's trimaps the matte read from elsewhere (`run
        trimap_pattern = _made_trimaps_read(alpha)  # --trimaps`, `tcvom matte`): their records hold each band
    if plate:  # the shot moved: its frames must be the files the matte was made from
        doubt.check_given_plate(source, (alpha, trimap_pattern))
    folder = root / doubt.REVIEW_FOLDER
    review, _ = doubt.review_output(source, folder, trimaps=trimap_pattern, alpha=alpha, shot=shot,
                                    progress=_review_progress(progress), waiting=progress, say_left=True,
                                    sources=_review_sources(spec, shot, settings.get("input_colorspace"), config))
    return review, folder


def _made_trimaps_read(alpha_pattern: str) -> str | None:
    """The sequence of trimaps made by tcvom that the alpha frames of ``alpha_pattern`` were
    made from, as their records name their inputs (of a matte rerun from another copy of
    them, the one most frames name); None for painted trimaps (the alpha records keep their
    band) or ones no longer there."""
    name = re.compile(re.escape(TrimapWriter.default_name()).replace(re.escape("####"), r"-?\d+") + "$")
    records = FrameRecords(alpha_pattern)
    named: dict[str, int] = {}
    for frame in records.frames():
        record = records.get(frame) or {}
        for pattern in {TrimapWriter(Path(path).parent).pattern for path in record.get("inputs", {})
                        if name.match(Path(path).name)}:
            named[pattern] = named.get(pattern, 0) + 1
    made = sorted((count, pattern) for pattern, count in named.items() if manifest.manifest_path(pattern).exists())
    return made[-1][1] if made else None


def _invalidate_reviews(pattern: str, stale_review: str | Path | None, progress: ProgressMode = "none") -> None:
    """The outputs of ``pattern`` are about to change: remove the reviews made from them (the
    stage's own, ``review/`` beside them, ``stale_review``, the run's, and, when made from
    them, a ``run`` output's ``OUT/review`` one folder up (a stage or farm task run alone
    into ``OUT/alpha``) and the review of a folder beside (``OUT/alpha/review`` of a matte
    of the trimaps in ``OUT/trimaps``)), so that a run killed before it writes a new one, or run without one,
    leaves no review that no longer describes the files."""
    own = Path(pattern).parent
    made_from = [folder for folder in (own.parent / doubt.REVIEW_FOLDER, *_sibling_reviews(own))
                 if doubt.made_from(folder, pattern)]
    for folder in (own / doubt.REVIEW_FOLDER, stale_review, *made_from):
        if folder is not None:
            doubt.invalidate_review(folder, progress)


def _sibling_reviews(folder: Path) -> list[Path]:
    """The review folders of the folders beside ``folder``: OUT/alpha/review, made by a
    matte stage from the trimaps in OUT/trimaps."""
    try:
        return [entry / doubt.REVIEW_FOLDER for entry in folder.parent.iterdir()
                if entry != folder and (entry / doubt.REVIEW_FOLDER).is_dir()]
    except OSError:  # the parent cannot be listed: only the known places are checked
        return []


class _BeforeFirstWrite:
    """Calls :func:`_invalidate_reviews` once, just before a stage writes its first frame: a
    run that fails earlier (weights that do not load, a device that is not there) leaves the
    review of the untouched outputs in place."""

    def __init__(self, pattern: str, stale_review: str | Path | None, progress: ProgressMode,
                 then: Callable[[], None] | None = None) -> None:
        self.pattern, self.stale_review, self.progress, self.done = pattern, stale_review, progress, False
        self.then = then  # what else is done once, before the first write

    def __call__(self) -> None:
        if not self.done:
            self.done = True
            _invalidate_reviews(self.pattern, self.stale_review, self.progress)
            if self.then is not None:
                self.then()


def _review_progress(progress: ProgressMode) -> ProgressMode:
    """The review step shows a terminal bar but sends no JSON events: hosts follow the two
    stages (trimaps, matte) of a run, and the review costs a fraction of the matte stage.
    A wait for another run's review lock is still announced in the run's mode (``waiting``)."""
    return "bar" if progress == "bar" else "none"


def _review_sources(plate: str | Path, shot: list[int], input_colorspace: str | None,
                    ocio_config: str | None) -> dict[str, Any]:
    """How the review opens the plate again (``tcvom review --rebuild``)."""
    return {"plate": str(Path(plate).absolute()), "shot": format_range(shot),
            "input_colorspace": input_colorspace, "ocio_config": config_reference(ocio_config)}


def plan_touched(trimap_job: dict[str, Any] | None, matte_job: dict[str, Any], selection: list[int]) -> JobResult:
    """What a run of these stage jobs (as :func:`run` builds them) would compute, computing
    nothing: ``stages["trimaps"]["computed"]`` are the trimaps whose inputs changed (whole
    keyframe segments), ``stages["alpha"]["computed"]`` the alphas whose window holds such a
    trimap or whose own inputs changed. A farm job submitted after an edit has tasks for
    these only (:func:`tcvom.farm.plan.plan_shot`, the Ray executor)."""
    shot = parse_frame_range(matte_job["shot_range"])
    touched: list[int] = []
    result = JobResult("", outputs={})
    if trimap_job is not None:
        planned = _trimaps_stage(**{**trimap_job, "progress": "none", "review": False, "plan_only": True})
        touched = [f for f in planned.written if f not in set(planned.kept)]  # their files stay as they are
        result.kept = planned.kept
        result.method = planned.method
        result.stages.update(planned.stages)
        result.methods.update(planned.methods)
    changed = set(touched)
    near = [f for f in selection if changed.intersection(neighbour_window(f, shot))]
    rest = [f for f in selection if f not in set(near)]
    alphas = list(near)
    if rest:  # their windows' trimaps are all there and unchanged
        planned = matte(**{**matte_job, "frames": rest, "progress": "none", "review": False, "plan_only": True})
        alphas.extend(planned.written)
        result.methods.update(planned.methods)
    if "alpha" not in result.methods:  # every alpha is near a changed trimap: the settings checked alone
        # (farm QA: a plan with another --alpha-format was accepted, and every Matte task then refused)
        planned = matte(**{**matte_job, "frames": selection, "progress": "none", "review": False, "plan_only": True,
                           "settings_only": True})
        result.methods.update(planned.methods)
    result.method = result.methods["alpha"]  # the matte's, as a run's result names it
    result.written = sorted(alphas)
    result.skipped = [f for f in selection if f not in set(alphas)]
    result.stages["alpha"] = result.summary()
    return result
