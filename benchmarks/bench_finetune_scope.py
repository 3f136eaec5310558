"""STM online fine-tuning per keyframe segment against once on the whole shot (issue 15).

With ``finetune_scope="shot"`` (the paper) STM is tuned once on every keyframe, so every
frame depends on every keyframe and a keyframe edit recomputes the whole shot. With
``"segment"`` (tcvom's default) each segment gets a copy tuned on the keyframes that bound
it, so an edit recomputes only the segments it bounds. This script measures what that
costs in trimap quality and time on synthetic shots (:mod:`tcvom.data.synthetic`, one per
seed, ground-truth "medium" trimaps as keyframes at the first, middle and last frame):
trimap mIoU over the other frames (:mod:`tcvom.evaluation.metrics`) for no fine-tuning,
per-segment and whole-shot fine-tuning, and the seconds each took.

The STM weights are deterministic random ones (``shared/reference/det_weights.py``) or a
file given with ``--weights``; with random weights the figures compare the two schedules
on equal terms but say nothing about the published network's quality.

    python benchmarks/bench_finetune_scope.py --seeds 0 1 2 --size 128x72 --frames 24 --steps 20
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tcvom.data.synthetic import ShotConfig, SyntheticShot
from tcvom.data.vm108 import TRIMAP_KERNELS
from tcvom.evaluation.metrics import trimap_class_counts, trimap_iou
from tcvom.io.sources import ArrayFrames
from tcvom.io.trimap import from_alpha
from tcvom.models.stm import load_stm_model
from tcvom.propagation.ensemble import propagate
from tcvom.propagation.stm import StmPropagator

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "reference"


class Frames(ArrayFrames):
    def __init__(self, arrays: dict[int, np.ndarray]) -> None:
        super().__init__(arrays)
        self.height, self.width = next(iter(arrays.values())).shape[:2]


def stm_state(weights: str | None) -> Any:
    if weights:
        return weights
    sys.path.insert(0, str(SHARED))
    try:
        import det_weights as det  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    return det.stm_state_dict(str(SHARED / "stm_state_dict.tsv"), seed=11, scale=0.68)


def shot_data(seed: int, width: int, height: int, frames: int) -> tuple[Frames, dict[int, np.ndarray]]:
    shot = SyntheticShot(ShotConfig(width=width, height=height, frames=frames, seed=seed, occluder=seed % 2 == 1))
    kernel = max(3, round(TRIMAP_KERNELS["medium"] * height / 270)) | 1
    images, trimaps = {}, {}
    for i in range(frames):
        fr = shot.render(i)
        images[i] = fr.image.astype(np.float32)
        trimaps[i] = from_alpha(np.clip(np.round(fr.alpha * 255.0), 0, 255).astype(np.uint8), kernel)
    return Frames(images), trimaps


def score(model: Any, frames: Frames, truth: dict[int, np.ndarray], keys: list[int], **options: Any) -> dict[str, Any]:
    propagator = StmPropagator(model, **options)
    start = time.perf_counter()
    counts = [trimap_class_counts(item.trimap, truth[item.frame])
              for item in propagate(propagator, frames, {k: truth[k] for k in keys}) if item.frame not in keys]
    return {"miou": round(float(trimap_iou(counts)["mean"]), 4), "seconds": round(time.perf_counter() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--size", default="128x72")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--crop", type=int, default=64, help="fine-tuning crop side")
    parser.add_argument("--lr", type=float, default=1e-6)
    parser.add_argument("--weights", help="an STM weight file (default: deterministic random weights)")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    torch.manual_seed(0)
    width, height = (int(v) for v in args.size.lower().split("x"))
    model = load_stm_model(stm_state(args.weights))
    keys = [0, args.frames // 2, args.frames - 1]
    tune = {"finetune_steps": args.steps, "finetune_size": args.crop, "finetune_lr": args.lr}
    rows = []
    for seed in args.seeds:
        frames, truth = shot_data(seed, width, height, args.frames)
        row = {"seed": seed,
               "none": score(model, frames, truth, keys),
               "segment": score(model, frames, truth, keys, finetune_scope="segment", **tune),
               "shot": score(model, frames, truth, keys, finetune_scope="shot", **tune)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary = {name: {"miou": round(float(np.mean([r[name]["miou"] for r in rows])), 4),
                      "seconds": round(float(np.mean([r[name]["seconds"] for r in rows])), 1)}
               for name in ("none", "segment", "shot")}
    figures = {"size": f"{width}x{height}", "frames": args.frames, "keyframes": keys, **tune,
               "weights": args.weights or "deterministic random (det_weights, seed 11, scale 0.68)",
               "shots": rows, "mean": summary, "load_average": [round(v, 2) for v in os.getloadavg()]}
    print(json.dumps(figures["mean"], indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
