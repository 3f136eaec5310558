"""Score trimap propagation the way the paper's Table 4 does: mIoU per class.

Keyframe trimaps are taken from the dataset's ground-truth trimaps of one width at evenly
spaced frames; the propagator fills in every other frame through the shared keyframe
scheduler and ensemble; each propagated trimap is compared with the ground truth of the
same width (IoU of background, unknown and foreground, summed over the frames of a clip,
then averaged over clips). Keyframes themselves are excluded from the score.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tcvom.data.vm108 import Clip, VideoMatting108
from tcvom.errors import InputError
from tcvom.evaluation.metrics import TRIMAP_CLASSES, trimap_class_counts, trimap_iou
from tcvom.io.atomic import write_csv, write_text
from tcvom.pipeline import methods
from tcvom.progress import Progress, ProgressMode
from tcvom.propagation.ensemble import Propagator, propagate

log = logging.getLogger("tcvom")


class ClipFrames:
    """A dataset clip as a frame source (frames numbered 0..n-1, composited on the fly)."""

    def __init__(self, clip: Clip) -> None:
        self.clip = clip
        self.frame_numbers = list(range(len(clip)))
        first = clip.read(0).image
        self.height, self.width = first.shape[:2]

    @property
    def first(self) -> int:
        return 0

    @property
    def last(self) -> int:
        return self.frame_numbers[-1]

    def read(self, frame: int) -> np.ndarray:
        return np.clip(self.clip.read(frame).image, 0.0, 1.0).astype(np.float32)


def keyframe_positions(frames: int, count: int) -> list[int]:
    """``count`` evenly spaced keyframes over ``frames`` frames, always starting at frame 0."""
    if count < 1:
        raise InputError(f"need at least one keyframe, not {count}")
    if count == 1:
        return [0]
    return sorted({round(i * (frames - 1) / (count - 1)) for i in range(count)})


@dataclass
class TrimapReport:
    """mIoU per (width, keyframe count): ``summary[width][str(count)]`` = class IoUs + mean."""

    method: str
    summary: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    clips: dict[str, Any] = field(default_factory=dict)

    def table(self) -> str:
        lines = ["| width | keyframes | " + " | ".join(TRIMAP_CLASSES) + " | mIoU |", "|---" * 6 + "|"]
        for width, by_count in self.summary.items():
            for count, ious in by_count.items():
                cells = " | ".join(f"{ious[c]:.4f}" for c in TRIMAP_CLASSES)
                lines.append(f"| {width} | {count} | {cells} | {ious['mean']:.4f} |")
        return "\n".join(lines)


def evaluate_trimaps(
    data: str | Path,
    out: str | Path,
    *,
    method: str = "classical",
    weights: str | Path | None = None,
    device: str = "cpu",
    keyframes: Sequence[int] = (1, 2, 3),
    widths: Sequence[str] = ("medium",),
    clips: Sequence[str] | None = None,
    split: str = "val",
    progress: ProgressMode = "bar",
    method_options: dict[str, Any] | None = None,
    propagator: Propagator | None = None,
) -> TrimapReport:
    """Propagate ground-truth keyframe trimaps with ``method`` and score every other frame.

    Writes ``trimap_frames.csv`` (per clip, width and keyframe count) and
    ``trimap_summary.json`` / ``trimap_summary.md`` into ``out``. ``propagator`` replaces
    the method's own (any object with ``run_pass``), e.g. to score a new propagator.
    """
    dataset = VideoMatting108(data, split=split, clips=list(clips) if clips else None)
    if propagator is None:
        concrete = methods.resolve(method, "trimaps", weights)
        propagator = methods.make_propagator(concrete, weights=weights, device=device, **(method_options or {}))
    else:
        concrete = type(propagator).__name__
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = TrimapReport(concrete)
    rows: list[dict[str, Any]] = []
    total = sum(len(c) for c in dataset) * len(widths) * len(keyframes)
    with Progress("trimap-eval", total, progress) as bar:
        for width in widths:
            per_count: dict[str, list[dict[str, tuple[int, int]]]] = {str(k): [] for k in keyframes}
            clip_scores: dict[str, list[dict[str, float]]] = {str(k): [] for k in keyframes}
            for clip in dataset:
                source = ClipFrames(clip)
                for count in keyframes:
                    keys = keyframe_positions(len(clip), count)
                    key_trimaps = {k: clip.trimap(k, width) for k in keys}
                    counts = []
                    for item in propagate(propagator, source, key_trimaps):
                        if item.frame not in key_trimaps:
                            counts.append(trimap_class_counts(item.trimap, clip.trimap(item.frame, width)))
                        bar.advance(frame=item.frame)
                    if not counts:  # every frame a keyframe: nothing scored (it read as a perfect 1.0)
                        log.warning("clip %s: with %d keyframes every one of its %d frames is a keyframe: no frame "
                                    "is scored, and the clip is left out of the mean (n/a)", clip.name, count,
                                    len(clip))
                        rows.append({"width": width, "clip": clip.name, "keyframes": count})
                        continue
                    ious = trimap_iou(counts)
                    clip_scores[str(count)].append(ious)
                    per_count[str(count)].extend(counts)
                    rows.append({"width": width, "clip": clip.name, "keyframes": count, **ious})
            # Per clip IoUs averaged over clips, as the paper averages per video.
            report.summary[width] = {
                k: {c: float(np.mean([s[c] for s in v])) for c in (*TRIMAP_CLASSES, "mean")}
                for k, v in clip_scores.items()
                if v
            }
    write_csv(out_dir / "trimap_frames.csv", ["width", "clip", "keyframes", *TRIMAP_CLASSES, "mean"], rows)
    write_text(out_dir / "trimap_summary.json", json.dumps({"method": concrete, "summary": report.summary}, indent=2))
    write_text(out_dir / "trimap_summary.md", f"Trimap propagation ({concrete}), mIoU per class\n\n{report.table()}\n")
    report.clips = {"rows": rows}
    return report
