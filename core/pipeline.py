"""The jobs behind the command line: ``trimaps``, ``matte`` and ``run`` (both stages).

Each function's keyword arguments are the command's flags (``--input-colorspace`` is
``input_colorspace``...). Frames stream one at a time from the plate to the writers;
every output is written atomically, and frames whose output already exists are skipped
unless ``overwrite=True`` (so a killed job resumes where it stopped).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tcvom import methods
from tcvom.errors import InputError
from tcvom.io import AlphaWriter, ProbabilityWriter, TrimapWriter, open_frames, open_trimaps
from tcvom.io.sources import TrimapFiles
from tcvom.progress import Progress, ProgressMode
from tcvom.propagation.ensemble import check_keyframes, propagate
from tcvom.propagation.scheduler import KeyframeSchedule


@dataclass
class JobResult:
    """What a job did: frames written, frames skipped (already done), where the outputs are."""

    method: str
    written: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)


def _open_plate(plate: str | Path, frames: str | None, input_colorspace: str | None, ocio_config: str | None) -> Any:
    return open_frames(plate, frames, colorspace=input_colorspace, ocio_config=ocio_config)


def _keyframes(
    keyframes: str | Sequence[str], plate: Any, resize_trimaps: bool, trimap_channel: str
) -> TrimapFiles:
    source = open_trimaps(
        keyframes,
        size=(plate.width, plate.height),
        resize=resize_trimaps,
        channel=trimap_channel,
        what="keyframe trimap",
        contiguous=False,
    )
    outside = [f for f in source.frame_numbers if f not in set(plate.frame_numbers)]
    if outside:
        raise InputError(
            f"keyframe {outside[0]} lies outside the frame range {plate.first}-{plate.last}",
            path=source.path(outside[0]),
            frame=outside[0],
            hint="paint keyframes on frames of the plate, or widen --frames",
        )
    return source


def trimaps(
    plate: str | Path,
    keyframes: str | Sequence[str],
    out: str | Path,
    *,
    frames: str | None = None,
    method: str = "auto",
    weights: str | Path | None = None,
    device: str = "cpu",
    backend: str = "torch",
    input_colorspace: str | None = None,
    ocio_config: str | None = None,
    resize_trimaps: bool = False,
    trimap_channel: str = "luma",
    probabilities: str | Path | None = None,
    finetune_steps: int | None = None,
    mem_every: int = 5,
    max_memory: int | None = 8,
    overwrite: bool = False,
    progress: ProgressMode = "bar",
    method_options: dict[str, Any] | None = None,
) -> JobResult:
    """Propagate keyframe trimaps to every frame of ``plate`` and write them to ``out``.

    ``out`` is a folder (``trimap.####.png`` inside) or a pattern; ``probabilities``
    optionally names a folder/pattern for the class probabilities as EXR.
    ``finetune_steps`` (default: 500 on CUDA, 0 on CPU), ``mem_every`` and ``max_memory``
    configure the STM propagator of ``method="tcvom"``.
    """
    source = _open_plate(plate, frames, input_colorspace, ocio_config)
    keys = _keyframes(keyframes, source, resize_trimaps, trimap_channel)
    writer = TrimapWriter(out)
    prob_writer = ProbabilityWriter(probabilities) if probabilities else None
    with Progress("trimaps", len(source), progress) as bar:
        concrete = methods.resolve(method, "trimaps", weights, bar.message)
        result = JobResult(concrete, outputs={"trimaps": writer.pattern})
        key_arrays = keys.read_all()
        check_keyframes(source, key_arrays, keys.files)
        schedule = KeyframeSchedule(source.first, source.last, key_arrays)
        todo = [s for s in schedule.segments if overwrite or not all(writer.exists(f) for f in s.outputs)]
        for segment in schedule.segments:
            if segment not in todo:
                result.skipped.extend(segment.outputs)
                bar.advance(len(segment.outputs), frame=segment.last)
        if todo:
            options = dict(method_options or {})
            if concrete == "tcvom":
                options.update(
                    finetune_steps=finetune_steps, mem_every=mem_every, max_memory=max_memory, progress=progress
                )
            propagator = methods.make_propagator(
                concrete, weights=weights, device=device, backend=backend, **options
            )
            for item in propagate(propagator, source, key_arrays, schedule=schedule, segments=todo):
                writer.write(item.frame, item.trimap)
                if prob_writer is not None:
                    prob_writer.write(item.frame, item.probabilities)
                result.written.append(item.frame)
                bar.advance(frame=item.frame)
    if prob_writer is not None:
        result.outputs["probabilities"] = prob_writer.pattern
    return result


_trimaps_stage = trimaps  # `run` has a parameter of the same name


def matte(
    plate: str | Path,
    trimaps: str | Sequence[str],
    out: str | Path,
    *,
    frames: str | None = None,
    method: str = "auto",
    weights: str | Path | None = None,
    device: str = "cpu",
    backend: str = "torch",
    input_colorspace: str | None = None,
    ocio_config: str | None = None,
    resize_trimaps: bool = False,
    trimap_channel: str = "luma",
    output: str = "alpha",
    alpha_format: str = "exr",
    overwrite: bool = False,
    progress: ProgressMode = "bar",
    method_options: dict[str, Any] | None = None,
) -> JobResult:
    """Pull an alpha matte for every frame of ``plate`` from a trimap for every frame.

    ``output="rgba"`` writes the premultiplied foreground (estimated with pymatting's
    multi-level method) with its alpha instead of the alpha alone.
    """
    source = _open_plate(plate, frames, input_colorspace, ocio_config)
    tris = open_trimaps(
        trimaps, source.frame_numbers if not _has_pairs(trimaps) else None,
        size=(source.width, source.height), resize=resize_trimaps, channel=trimap_channel,
    )
    missing = [f for f in source.frame_numbers if f not in tris]
    if missing:
        raise InputError(
            f"matting needs a trimap for every frame; frame {missing[0]} has none",
            frame=missing[0],
            hint="use `tcvom run` with keyframe trimaps to propagate them first",
        )
    writer = AlphaWriter(out, fmt=alpha_format, kind=output)
    with Progress("matte", len(source), progress) as bar:
        concrete = methods.resolve(method, "matte", weights, bar.message)
        result = JobResult(concrete, outputs={"alpha": writer.pattern})
        todo = [f for f in source.frame_numbers if overwrite or not writer.exists(f)]
        result.skipped = [f for f in source.frame_numbers if f not in set(todo)]
        if result.skipped:
            bar.advance(len(result.skipped))
        if todo:
            session = methods.make_session(
                concrete, source, tris, weights=weights, device=device, backend=backend, **(method_options or {})
            )
            for frame, alpha in session.alphas(todo):
                foreground = None
                if output == "rgba":
                    from tcvom.foreground import estimate_foreground

                    foreground = estimate_foreground(source.read(frame), alpha)
                writer.write(frame, alpha, foreground)
                result.written.append(frame)
                bar.advance(frame=frame)
    return result


def _has_pairs(specs: str | Sequence[str]) -> bool:
    items = [specs] if isinstance(specs, str | Path) else list(specs)
    return any("=" in str(i) for i in items)


def run(
    plate: str | Path,
    out: str | Path,
    *,
    keyframes: str | Sequence[str] | None = None,
    trimaps: str | Sequence[str] | None = None,
    frames: str | None = None,
    method: str = "auto",
    weights: str | Path | None = None,
    matting_weights: str | Path | None = None,
    device: str = "cpu",
    backend: str = "torch",
    input_colorspace: str | None = None,
    ocio_config: str | None = None,
    resize_trimaps: bool = False,
    trimap_channel: str = "luma",
    output: str = "alpha",
    alpha_format: str = "exr",
    overwrite: bool = False,
    progress: ProgressMode = "bar",
    finetune_steps: int | None = None,
    mem_every: int = 5,
    max_memory: int | None = 8,
    trimap_options: dict[str, Any] | None = None,
    matte_options: dict[str, Any] | None = None,
) -> JobResult:
    """The whole job: keyframe trimaps -> trimaps for every frame (``out/trimaps``) ->
    alpha for every frame (``out/alpha``).

    Give ``keyframes`` (a few painted trimaps) or ``trimaps`` (one for every frame, which
    skips propagation). ``weights`` is the STM trimap network's file and
    ``matting_weights`` the GCA+TAM file for ``method="tcvom"``.
    """
    if (keyframes is None) == (trimaps is None):
        raise InputError("give either keyframe trimaps (--keyframes) or a trimap for every frame (--trimaps)")
    out = Path(out)
    common = dict(
        frames=frames,
        method=method,
        device=device,
        backend=backend,
        input_colorspace=input_colorspace,
        ocio_config=ocio_config,
        resize_trimaps=resize_trimaps,
        trimap_channel=trimap_channel,
        overwrite=overwrite,
        progress=progress,
    )
    outputs: dict[str, str] = {}
    if keyframes is not None:
        stage = _trimaps_stage(
            plate,
            keyframes,
            out / "trimaps",
            weights=weights,
            finetune_steps=finetune_steps,
            mem_every=mem_every,
            max_memory=max_memory,
            method_options=trimap_options,
            **common,
        )
        outputs.update(stage.outputs)
        trimap_spec: str | Sequence[str] = stage.outputs["trimaps"]
    else:
        assert trimaps is not None
        trimap_spec = trimaps
    result = matte(
        plate,
        trimap_spec,
        out / "alpha",
        weights=matting_weights,
        output=output,
        alpha_format=alpha_format,
        method_options=matte_options,
        **common,
    )
    result.outputs.update(outputs)
    return result
