"""Run a shot on Ray: one task per keyframe segment, then one task per chunk of frames.

For pipelines that schedule with Ray instead of a render farm. The tasks are the same
calls a farm task makes (:func:`tcvom.pipeline.trimaps` with ``segment=``,
:func:`tcvom.pipeline.matte` with ``frames=``), so the files are the same as a run in
one process. Ray connects to ``RAY_ADDRESS`` when set and otherwise starts a local
instance for the job (an already initialised Ray is used as it is).
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

from tcvom.errors import MissingDependencyError, TcvomError
from tcvom.farm.chunks import chunk_ranges
from tcvom.farm.plan import plan_shot
from tcvom.farm.records import FrameRecords
from tcvom.io.sequence import format_range, frame_path, parse_frame_range
from tcvom.io.writers import AlphaWriter, TrimapWriter
from tcvom.progress import Progress, ProgressMode


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("ray", "farm", purpose="--executor ray",
                                     alternative="use --executor local") from None
    return ray


class TaskError:
    """A tcvom error raised in a Ray worker, returned as data (Ray would wrap a raised one
    in its own traceback); :func:`_raise_if_error` raises it again here, as it was."""

    def __init__(self, error: TcvomError) -> None:
        self.error = error


class _Collected(logging.Handler):
    """A worker's tcvom warnings, kept to go back with its result."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _task(stage: str, job: dict[str, Any]) -> tuple[Any, list[str]]:
    """Runs in a Ray worker: one stage call; tcvom errors come back as data, not tracebacks,
    and its warnings as messages, which the driver says as its own (a worker's stderr
    reached the terminal without tcvom's prefix, and never a host's JSON events)."""
    from tcvom import pipeline

    log = logging.getLogger("tcvom")
    kept = (log.handlers, log.propagate, log.level)  # a worker process is reused; a local call's logger is put back
    collected = _Collected()
    log.handlers, log.propagate = [collected], False
    log.setLevel(logging.WARNING)
    function = pipeline.trimaps if stage == "trimaps" else pipeline.matte
    try:
        return function(progress="none", **job), collected.messages
    except TcvomError as exc:
        return TaskError(exc), collected.messages
    finally:
        log.handlers, log.propagate = kept[0], kept[1]
        log.setLevel(kept[2])


def _raise_if_error(returned: tuple[Any, list[str]], said: set[str]) -> Any:
    """A task's result; its warnings are said here (each once per run), its error raised."""
    value, warnings = returned
    for message in warnings:
        if message not in said:
            said.add(message)
            logging.getLogger("tcvom").warning("%s", message)
    if isinstance(value, TaskError):
        raise value.error
    return value


def _gather(ray: Any, refs: dict[Any, int], stage: str, progress: ProgressMode, output: str,
            reused: list[int], computed: list[int], pattern: str, kept: list[int] | None = None) -> list[Any]:
    """The tasks' results as they finish; the stage's plan (``output``'s frames reused and
    computed, those of ``pattern`` on disk replaced, but for ``kept`` ones: keyframes whose
    files stay) is announced first, as a local run does."""
    results = []
    said: set[str] = set()
    stay = set(kept or ())
    records = FrameRecords(pattern)  # a frame's earlier file under another name (format) is replaced too
    with Progress(stage, sum(refs.values()), progress) as bar:
        bar.plan(output, reused=reused, computed=computed,
                 changed=[f for f in computed if f not in stay and (Path(frame_path(pattern, f)).exists()
                                                                    or records.recorded_file(f) is not None)])
        waiting = list(refs)
        while waiting:
            ready, waiting = ray.wait(waiting, num_returns=1)
            for ref in ready:
                results.append(_raise_if_error(ray.get(ref), said))
                bar.advance(refs[ref])
    return results


def run_with_ray(
    trimap_job: dict[str, Any] | None,
    matte_job: dict[str, Any],
    selection: list[int],
    *,
    chunk: int | None = None,
    progress: ProgressMode = "bar",
) -> Any:
    """Both stages of :func:`tcvom.pipeline.run` as Ray tasks; returns the merged JobResult.

    Only the keyframe segments and chunks whose inputs changed since their outputs were
    made get a task (:func:`tcvom.pipeline.jobs.plan_touched`; every one the first time).
    ``chunk`` frames per matte task (default: those frames shared evenly between the
    cluster's CPUs).
    """
    ray = _ray()
    started = False
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"), include_dashboard=False, logging_level="ERROR")
        started = True
    try:
        remote = ray.remote(num_cpus=1)(_task)
        from tcvom.pipeline.jobs import JobResult, plan_touched

        # Tasks only for what changed since the output was made (all of it the first time).
        touched = plan_touched(trimap_job, matte_job, selection)
        shot = parse_frame_range(matte_job["shot_range"])
        merged = JobResult(touched.method, outputs={}, methods=dict(touched.methods))
        if trimap_job is not None:
            computed = {"trimaps": touched.stages["trimaps"]["computed"]}
            plan = plan_shot(trimap_job["plate"], trimap_job["keyframes"], frames=format_range(selection),
                             shot_range=trimap_job["shot_range"], computed=computed)
            refs = {remote.remote("trimaps", {**trimap_job, "segment": index}): len(parse_frame_range(frames))
                    for index, frames in plan.segments}
            merged.outputs["trimaps"] = TrimapWriter(trimap_job["out"]).pattern
            merged.stages["trimaps"] = {"computed": [], "reused": [], "removed": []}
            for done in _gather(ray, refs, "trimaps", progress, "trimaps", touched.stages["trimaps"]["reused"],
                                touched.stages["trimaps"]["computed"], merged.outputs["trimaps"], touched.kept):
                merged.outputs.update(done.outputs)
                merged.merge_stage("trimaps", done)
            stage = merged.stages["trimaps"]
            stage["reused"] = sorted(set(touched.stages["trimaps"]["reused"]) - set(stage["computed"]))
        todo = touched.written
        if chunk is None:
            cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
            chunk = max(1, math.ceil(max(len(todo), 1) / cpus))
        refs = {remote.remote("matte", {**matte_job, "frames": part}): len(parse_frame_range(part))
                for part in (chunk_ranges(todo, chunk, shot) if todo else [])}
        alpha = AlphaWriter(matte_job["out"], fmt=matte_job.get("alpha_format", "exr"),
                            kind=matte_job.get("output", "alpha"), create=False).pattern
        for done in _gather(ray, refs, "matte", progress, "alpha", touched.skipped, todo, alpha):
            merged.merge(done)
    finally:
        if started:
            ray.shutdown()
    merged.skipped.extend(f for f in touched.skipped if f not in set(merged.written) | set(merged.skipped))
    merged.written.sort()
    merged.skipped.sort()
    merged.outputs.setdefault("alpha", alpha)
    merged.stages["alpha"] = merged.summary()
    return merged
