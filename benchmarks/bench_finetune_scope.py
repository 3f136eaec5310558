"""STM online fine-tuning per keyframe segment against once on the whole shot (issue 15).

With ``--finetune-scope shot`` (the paper) STM is tuned once on every keyframe, so every
frame depends on every keyframe and a keyframe edit recomputes the whole shot. With
``segment`` each segment gets a copy tuned on the keyframes that bound it, so an edit
recomputes only the segments it bounds. This script measures both, and no fine-tuning, on
synthetic shots (:mod:`tcvom.data.synthetic`, one per seed, odd seeds with the occluder),
through the real job (:func:`tcvom.pipeline.trimaps`, what ``tcvom trimaps`` runs):

1. keyframes at the first, middle and last frame, painted from the ground-truth "medium"
   trimaps (kernel 25 at 270 lines, scaled to the height), a run into a fresh folder;
2. the edit: one keyframe added at ``--add`` (a quarter into the shot), the same run
   repeated into the same folder, which recomputes only what the edit touched.

For each: the frames computed, the seconds, trimap mIoU over the frames that are not
keyframes (:mod:`tcvom.evaluation.metrics`) and, with ``--matte``, the SSDA and dtSSD over
the whole frame of the classical matte (:class:`tcvom.classical.ClassicalSession`) pulled
from the propagated trimaps (every frame; a cheap stand-in for a trained matting network).

Weights: ``--stm-weights FILE``, or ``--train CONFIG`` to train them first with
:func:`tcvom.train.loops.train_stm` (``benchmarks/stm_synthetic.toml``: the synthetic data
it names is written first when missing; an existing run folder is resumed), or by default
the deterministic random test weights (``shared/reference/det_weights.py``), which say
nothing about quality. ``--compare-random`` also scores the random weights without
fine-tuning, as the floor the trained ones must clear.

    OMP_NUM_THREADS=1 python benchmarks/bench_finetune_scope.py --train benchmarks/stm_synthetic.toml \\
        --seeds 0 1 2 3 4 5 --size 128x72 --frames 12 --steps 5 --crop 64 --lr 5e-5 --compare-random

(the figures in docs/BENCHMARKS.md; ``--no-edit`` skips the edit run, ``--matte`` adds the
matte scores, ``--merge A.json B.json`` averages runs of other seeds made side by side).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from bench_incremental import det_stm_weights  # the same folder: benchmarks are run as scripts

from tcvom import pipeline
from tcvom.data.synthetic import ShotConfig, SyntheticShot
from tcvom.data.vm108 import TRIMAP_KERNELS
from tcvom.evaluation.metrics import dtssd, ssda, trimap_class_counts, trimap_iou
from tcvom.io import read_image, write_image
from tcvom.io.sources import ArrayFrames
from tcvom.io.trimap import from_alpha

FIRST = 1001
SCOPES = ("none", "segment", "shot")
# The synthetic training data that benchmarks/stm_synthetic.toml names (see its header).
TRAIN_DATA = {"clips": 16, "frames": 40, "width": 128, "height": 72, "seed": 1}


class Frames(ArrayFrames):
    def __init__(self, arrays: dict[int, np.ndarray]) -> None:
        super().__init__(arrays)
        self.height, self.width = next(iter(arrays.values())).shape[:2]


def train(config: str) -> tuple[Path, dict[str, Any]]:
    """Train (or resume, or find finished) the STM run of ``config``; its weights and a summary."""
    from tcvom.evaluation.mattes import make_synthetic
    from tcvom.train.config import load_stm_config
    from tcvom.train.loops import checkpoint_step, train_stm

    cfg = load_stm_config(config)
    root = Path(cfg.data.root)
    if not (root / f"{cfg.data.split}_videos.txt").exists():
        make_synthetic(root, progress="none", **TRAIN_DATA)
    tick = time.perf_counter()
    if checkpoint_step(cfg.out) != cfg.steps:
        train_stm(cfg, progress="bar")
    log = Path(cfg.out) / "log.csv"
    rows = [line.split(",") for line in log.read_text().splitlines()]
    header = rows[0]
    seconds = [float(r[header.index("seconds")]) for r in rows[1:]]
    losses = [float(r[header.index("loss")]) for r in rows[1:]]
    summary = {"config": config, "steps": cfg.steps, "crop": cfg.data.crop, "batch_size": cfg.batch_size,
               "train_seconds_logged": round(sum(seconds)), "this_session_seconds": round(time.perf_counter() - tick),
               "loss_first_50": round(float(np.mean(losses[:50])), 4), "loss_last_50": round(float(np.mean(losses[-50:])), 4)}
    return Path(cfg.out) / "weights.pth", summary


def medium_kernel(height: int) -> int:
    return max(3, round(TRIMAP_KERNELS["medium"] * height / 270)) | 1


def write_shot(folder: Path, seed: int, width: int, height: int, frames: int) -> dict[str, Any]:
    """Plate PNGs and ground truth of one synthetic shot (frames FIRST...)."""
    shot = SyntheticShot(ShotConfig(width=width, height=height, frames=frames, seed=seed, occluder=seed % 2 == 1))
    kernel = medium_kernel(height)
    (folder / "plate").mkdir(parents=True)
    (folder / "truth").mkdir()
    images, alphas, trimaps = {}, {}, {}
    for i in range(frames):
        fr = shot.render(i)
        number = FIRST + i
        write_image(folder / "plate" / f"plate.{number}.png", fr.image, pixel_type="uint8", channels=("R", "G", "B"))
        images[number] = read_image(folder / "plate" / f"plate.{number}.png")[0][:, :, :3]  # what the job reads
        alphas[number] = fr.alpha
        trimaps[number] = from_alpha(np.clip(np.round(fr.alpha * 255.0), 0, 255).astype(np.uint8), kernel)
        write_image(folder / "truth" / f"trimap.{number}.png", trimaps[number].astype(np.float32) / 255.0,
                    pixel_type="uint8", channels=("Y",))
    return {"images": images, "alphas": alphas, "trimaps": trimaps}


def read_trimaps(folder: Path, numbers: list[int]) -> dict[int, np.ndarray]:
    out = {}
    for n in numbers:
        pixels = read_image(folder / f"trimap.{n}.png")[0]
        out[n] = np.clip(np.round(pixels[..., 0] * 255.0), 0, 255).astype(np.uint8)
    return out


def score(truth: dict[str, Any], trimaps: dict[int, np.ndarray], keys: list[int], matte: bool) -> dict[str, float]:
    numbers = sorted(truth["trimaps"])
    counts = [trimap_class_counts(trimaps[n], truth["trimaps"][n]) for n in numbers if n not in keys]
    row = {"miou": round(float(trimap_iou(counts)["mean"]), 4)}
    if matte:
        from tcvom.classical import ClassicalSession

        session = ClassicalSession(Frames(truth["images"]), ArrayFrames(trimaps))
        alphas = {n: session.alpha(n) for n in numbers}
        everything = np.ones(trimaps[numbers[0]].shape, bool)
        gt = truth["alphas"]
        row["ssda"] = round(float(np.mean([ssda(alphas[n], gt[n], everything) for n in numbers])), 3)
        row["dtssd"] = round(float(sum(dtssd(alphas[a], gt[a], alphas[b], gt[b], everything)
                                       for a, b in itertools.pairwise(numbers)) / len(numbers)), 3)
    return row


def job(shot: Path, out: Path, weights: Path, scope: str, tune: dict[str, Any]) -> tuple[Any, float]:
    options: dict[str, Any] = {"finetune_steps": 0}
    if scope != "none":
        options = {"finetune_steps": tune["steps"], "finetune_scope": scope,
                   "method_options": {"finetune_lr": tune["lr"], "finetune_size": tune["crop"]}}
    tick = time.perf_counter()
    result = pipeline.trimaps(str(shot / "plate" / "plate.####.png"), str(shot / "keys" / "key.####.png"), out,
                              method="tcvom", weights=str(weights), progress="none", review=False, **options)
    return result, round(time.perf_counter() - tick, 1)


def run_scope(shot: Path, truth: dict[str, Any], weights: Path, scope: str, keys: list[int], add: int,
              tune: dict[str, Any], matte: bool, edit: bool = True, label: str = "") -> dict[str, Any]:
    keyfolder = shot / "keys"
    shutil.rmtree(keyfolder, ignore_errors=True)
    keyfolder.mkdir()
    for k in keys:
        shutil.copy(shot / "truth" / f"trimap.{k}.png", keyfolder / f"key.{k}.png")
    out = shot / f"out_{label or scope}"  # a fresh folder per row
    first, seconds = job(shot, out, weights, scope, tune)
    numbers = sorted(truth["trimaps"])
    row: dict[str, Any] = {"first": {"computed": len(first.written), "seconds": seconds,
                                     **score(truth, read_trimaps(out, numbers), keys, matte)}}
    if edit:
        shutil.copy(shot / "truth" / f"trimap.{add}.png", keyfolder / f"key.{add}.png")
        again, seconds = job(shot, out, weights, scope, tune)
        row["edit"] = {"computed": len(again.written), "reused": len(again.skipped), "seconds": seconds,
                       "computed_frames": f"{min(again.written)}-{max(again.written)}" if again.written else "",
                       **score(truth, read_trimaps(out, numbers), [*keys, add], matte)}
    return row


def mean(rows: list[dict[str, Any]], *path: str) -> dict[str, float]:
    items = list(rows)
    for p in path:
        items = [r[p] for r in items]
    keys = [k for k, v in items[0].items() if isinstance(v, int | float)]
    return {k: round(float(np.mean([r[k] for r in items])), 4) for k in keys}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    parser.add_argument("--size", default="128x72")
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--add", type=int, default=None, help="the keyframe the edit adds (default: a quarter in)")
    parser.add_argument("--steps", type=int, default=5, help="fine-tuning steps (per segment, or once for the shot)")
    parser.add_argument("--crop", type=int, default=64, help="fine-tuning crop side")
    parser.add_argument("--lr", type=float, default=5e-5, help="fine-tuning learning rate")
    parser.add_argument("--stm-weights", "--weights", dest="weights", help="an STM weight file")
    parser.add_argument("--train", metavar="CONFIG", help="train the STM weights with this config first")
    parser.add_argument("--scopes", nargs="+", choices=SCOPES, default=list(SCOPES))
    parser.add_argument("--matte", action="store_true", help="also score the classical matte (SSDA, dtSSD)")
    parser.add_argument("--no-edit", action="store_true", help="only the first run (no keyframe edit)")
    parser.add_argument("--compare-random", action="store_true",
                        help="also score the deterministic random weights without fine-tuning")
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--merge", nargs="+", metavar="JSON",
                        help="print the means over the shots of these --json files (seeds run in parallel) instead")
    args = parser.parse_args()
    if args.merge:
        shots = [row for name in args.merge for row in json.loads(Path(name).read_text())["shots"]]
        names = [n for n in ("random_none", *SCOPES) if n in shots[0]]
        print(json.dumps({"seeds": [r["seed"] for r in shots],
                          **{n: {part: mean(shots, n, part) for part in shots[0][n]} for n in names}}, indent=2))
        return
    torch.manual_seed(0)
    width, height = (int(v) for v in args.size.lower().split("x"))
    keys = [FIRST, FIRST + args.frames // 2, FIRST + args.frames - 1]
    add = FIRST + (args.add if args.add is not None else args.frames // 4)
    tune = {"steps": args.steps, "crop": args.crop, "lr": args.lr}
    figures: dict[str, Any] = {"size": f"{width}x{height}", "frames": args.frames, "keyframes": keys, "added": add,
                               "finetune": tune, "load_average_start": [round(v, 2) for v in os.getloadavg()]}
    start = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="tcvom-bench-finetune-") as tmp:
        root = Path(tmp)
        if args.train:
            weights, figures["training"] = train(args.train)
            figures["weights"] = f"trained with {args.train}"
        elif args.weights:
            weights = Path(args.weights)
            figures["weights"] = str(weights)
        else:
            weights = det_stm_weights(root)
            figures["weights"] = "deterministic random (det_weights, seed 11, scale 0.68)"
        random = det_stm_weights(root) if args.compare_random else None
        for seed in args.seeds:
            shot = root / f"seed{seed}"
            truth = write_shot(shot, seed, width, height, args.frames)
            row: dict[str, Any] = {"seed": seed}
            if random is not None:
                row["random_none"] = run_scope(shot, truth, random, "none", keys, add, tune, args.matte, edit=False,
                                               label="random")
            for scope in args.scopes:
                row[scope] = run_scope(shot, truth, weights, scope, keys, add, tune, args.matte, edit=not args.no_edit)
            rows.append(row)
            print(json.dumps(row), flush=True)
            if args.json:  # after every shot: an interrupted run keeps the shots it finished
                Path(args.json).write_text(json.dumps({**figures, "shots": rows}, indent=2) + "\n")
    names = (["random_none"] if args.compare_random else []) + list(args.scopes)
    figures["mean"] = {n: {part: mean(rows, n, part) for part in rows[0][n]} for n in names}
    figures["shots"] = rows
    figures["seconds"] = round(time.perf_counter() - start)
    figures["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(figures["mean"], indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
