"""Does the review's "key next" pick better keyframes than evenly spaced or random frames?

On synthetic shots (tcvom.data.synthetic, one per seed; odd seeds have the occluder) an
artist starts from one keyframe (frame 0) and adds keyframes one at a time, painting the
ground-truth trimap (medium width, as the VideoMatting108 evaluation, its kernel scaled
to the frame height) of the chosen frame:

- ``suggested``: the top frame of the review (:mod:`tcvom.review.doubt`) of the current run;
- ``even``: after k additions, k + 1 evenly spaced keyframes
  (:func:`tcvom.evaluation.trimaps.keyframe_positions`, first and last frame included);
- ``every``: the other way to space them evenly, a keyframe every ``n / (k + 1)`` frames
  from frame 0 (``every_positions``; the last frame is never keyed);
- ``random``: k frames drawn at random (``--draws`` draws per shot, averaged).

After each addition the shot is propagated and matted again and scored on every frame
(keyframes included: it is the shot the artist gets): trimap mIoU against the ground-truth
trimaps, and the matte's SSDA and dtSSD (tcvom.evaluation.metrics) over the whole frame
(every strategy is measured on the same pixels; the usual unknown-region mask would reward
a narrower propagated band). Results are averaged over the shots.

Propagated segments and alphas are cached by what they depend on (the keyframes that bound
a segment; a frame's trimap and its neighbours'), so a step recomputes only what changed.

    python benchmarks/bench_review.py --method classical --seeds 0 1 2 3 4 5 --frames 40 --size 192x108
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tcvom.classical import ClassicalSession
from tcvom.classical.flow import cut_pairs
from tcvom.classical.solve import AlphaSolver
from tcvom.data.synthetic import ShotConfig, SyntheticShot
from tcvom.data.vm108 import TRIMAP_KERNELS
from tcvom.evaluation.metrics import dtssd, ssda, trimap_class_counts, trimap_iou
from tcvom.evaluation.trimaps import keyframe_positions
from tcvom.io.sources import ArrayFrames
from tcvom.io.trimap import from_alpha
from tcvom.pipeline import methods
from tcvom.propagation.ensemble import propagate
from tcvom.propagation.scheduler import KeyframeSchedule
from tcvom.review.doubt import TrimapStats, alpha_change, build_review, unlike_both

STRATEGIES = ("suggested", "even", "every", "random")


def every_positions(frames: int, count: int) -> list[int]:
    """``count`` keyframes "every n-th frame": the shot cut into ``count`` equal parts, a
    keyframe at the start of each (frame 0 first, the last frame never)."""
    return sorted({round(i * frames / count) for i in range(count)})


def _digest(array: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(array).tobytes(), digest_size=12).hexdigest()


class CachedSolver(AlphaSolver):
    """The per-frame solve, cached by the frame and its trimap (a benchmark shortcut)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.cache: dict[tuple[int | None, str], np.ndarray] = {}

    def __call__(self, image: np.ndarray, trimap: np.ndarray, frame: int | None = None) -> np.ndarray:
        key = (frame, _digest(trimap))
        if key not in self.cache:
            self.cache[key] = super().__call__(image, trimap, frame)
        return self.cache[key]


class Plate(ArrayFrames):
    """Frames in memory with the size the ensemble asks for."""

    def __init__(self, arrays: Mapping[int, np.ndarray]) -> None:
        super().__init__(arrays)
        self.height, self.width = arrays[self.frame_numbers[0]].shape[:2]


@dataclass
class Shot:
    """One synthetic shot with its ground truth and the caches of its runs."""

    seed: int
    images: dict[int, np.ndarray]
    alphas: dict[int, np.ndarray]
    trimaps: dict[int, np.ndarray]
    segments: dict[Any, list[Any]] = field(default_factory=dict)
    mattes: dict[Any, np.ndarray] = field(default_factory=dict)
    residuals: dict[Any, tuple[float, float]] = field(default_factory=dict)
    solver: CachedSolver = field(default_factory=CachedSolver)

    @property
    def frames(self) -> list[int]:
        return sorted(self.images)


def medium_kernel(height: int) -> int:
    """The medium trimap's kernel (25 px at the synthetic shots' 270 lines) scaled to ``height``."""
    k = max(3, round(TRIMAP_KERNELS["medium"] * height / 270))
    return k if k % 2 else k + 1


def make_shot(seed: int, width: int, height: int, frames: int) -> Shot:
    shot = SyntheticShot(ShotConfig(width=width, height=height, frames=frames, seed=seed, occluder=seed % 2 == 1))
    images, alphas, trimaps = {}, {}, {}
    kernel = medium_kernel(height)
    for i in range(frames):
        fr = shot.render(i)
        images[i], alphas[i] = fr.image, fr.alpha
        trimaps[i] = from_alpha(np.clip(np.round(fr.alpha * 255.0), 0, 255).astype(np.uint8), kernel)
    return Shot(seed, images, alphas, trimaps)


def run_keys(shot: Shot, keys: Sequence[int], propagator: Any, session_options: Mapping[str, Any]) -> dict[str, Any]:
    """Propagate and matte the shot from ``keys`` (ground-truth trimaps); score it; review it."""
    frames = Plate(shot.images)
    key_trimaps = {k: shot.trimaps[k] for k in keys}
    schedule = KeyframeSchedule(shot.frames, key_trimaps)
    items = {}
    for segment in schedule.segments:
        cache_key = (segment.outputs, tuple((p.keyframe, p.memory_keyframes) for p in segment.passes))
        if cache_key not in shot.segments:
            shot.segments[cache_key] = list(propagate(propagator, frames, key_trimaps, segments=[segment]))
        items.update({it.frame: it for it in shot.segments[cache_key]})
    trimaps = {f: items[f].trimap for f in shot.frames}
    stats = {
        f: TrimapStats(f, f in key_trimaps, int((t == 128).sum()), int((t == 255).sum()), items[f].disagreement)
        for f, t in trimaps.items()
    }
    session = ClassicalSession(frames, ArrayFrames(trimaps), solver=shot.solver, **session_options)
    alphas: dict[int, np.ndarray] = {}
    for i, f in enumerate(shot.frames):
        near = shot.frames[max(0, i - 1): i + 2]
        key = (f, tuple(_digest(trimaps[n]) for n in near))
        if key not in shot.mattes:
            shot.mattes[key] = session.alpha(f)
        alphas[f] = shot.mattes[key]
    residuals, unlike, shares = {}, set(), []
    for i, f in enumerate(shot.frames):
        changes = []
        for n in (shot.frames[i - 1] if i > 0 else None, shot.frames[i + 1] if i + 1 < len(shot.frames) else None):
            if n is None:
                continue
            ck = (f, n, _digest(alphas[f]), _digest(alphas[n]))
            if ck not in shot.residuals:
                shot.residuals[ck] = alpha_change(shot.images[f], alphas[f], shot.images[n], alphas[n])
            changes.append(shot.residuals[ck])
        residuals[f] = float(np.mean([c[0] for c in changes]))
        if len(changes) == 2 and unlike_both([c[1] for c in changes], shot.images[shot.frames[i - 1]],
                                             shot.images[shot.frames[i + 1]]):  # as the run's review does
            unlike.add(f)
        if i + 1 < len(shot.frames):
            shares.append(changes[-1][1])  # followed to the next frame (at the flow's size)
    cuts = {shot.frames[i] for i in cut_pairs(shares)}  # as the run's review finds them
    review = build_review(shot.frames, list(keys), stats, residuals, unlike=unlike, cuts=cuts)
    everything = np.ones(shot.images[0].shape[:2], bool)
    counts = [trimap_class_counts(trimaps[f], shot.trimaps[f]) for f in shot.frames]
    frames_list = shot.frames
    ssdas = [ssda(alphas[f], shot.alphas[f], everything) for f in frames_list]
    dts = [dtssd(alphas[f], shot.alphas[f], alphas[g], shot.alphas[g], everything)
           for f, g in itertools.pairwise(frames_list)]
    return {
        "keys": sorted(keys),
        "miou": trimap_iou(counts)["mean"],
        "ssda": float(np.mean(ssdas)),
        "dtssd": float(np.sum(dts) / len(frames_list)),  # the last frame counts 0, as the reference
        "suggested": review.suggested,
        "doubt": {r.frame: r.doubt for r in review.frames},
        "review": review,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", choices=("classical", "tcvom"), default="classical")
    parser.add_argument("--weights", help="STM weights for --method tcvom (trimaps only; the matte stays classical)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--size", default="192x108")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--draws", type=int, default=2, help="random draws per shot")
    parser.add_argument("--json", help="write all results here")
    parser.add_argument("--plots", help="folder for the review picture of each shot's first run")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    options: dict[str, Any] = {}
    if args.method == "tcvom":
        options = {"finetune_steps": 0}
    propagator = methods.make_propagator(args.method, weights=args.weights, **options)
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    results: dict[str, list[list[dict[str, Any]]]] = {s: [] for s in STRATEGIES}
    for seed in args.seeds:
        shot = make_shot(seed, width, height, args.frames)
        n = len(shot.frames)
        first = run_keys(shot, [0], propagator, {})
        if args.plots:
            from tcvom.review.plot import plot_review

            os.makedirs(args.plots, exist_ok=True)
            plot_review(first["review"], os.path.join(args.plots, f"seed{seed}.png"), title=f"seed {seed}, keyframe 0")
        keys = [0]
        runs = [first]
        for _ in range(args.steps):
            pick = next((f for f in runs[-1]["suggested"] if f not in keys), None)
            if pick is None:
                break
            keys = [*keys, pick]
            runs.append(run_keys(shot, keys, propagator, {}))
        results["suggested"].append(runs)
        results["even"].append([first] + [run_keys(shot, keyframe_positions(n, k + 1), propagator, {})
                                          for k in range(1, args.steps + 1)])
        results["every"].append([first] + [run_keys(shot, every_positions(n, k + 1), propagator, {})
                                           for k in range(1, args.steps + 1)])
        for draw in range(args.draws):
            rng = random.Random(seed * 100 + draw)
            order = rng.sample(range(1, n), args.steps)
            results["random"].append([first] + [run_keys(shot, [0, *order[:k]], propagator, {})
                                                for k in range(1, args.steps + 1)])
        line = "  ".join(f"{s}: " + " ".join(f"{r['miou']:.3f}" for r in results[s][-1]) for s in STRATEGIES)
        print(f"seed {seed}: mIoU {line}  suggested keys {runs[-1]['keys']}", flush=True)
    elapsed = time.perf_counter() - start
    print(f"\n{args.method}, {len(args.seeds)} shots of {args.frames} frames at {args.size}; "
          f"{elapsed:.0f} s; load {load_before:.2f} -> {os.getloadavg()[0]:.2f}\n")
    print("| added | strategy | trimap mIoU | SSDA | dtSSD |")
    print("|---|---|---|---|---|")
    summary: dict[str, Any] = {}
    for step in range(args.steps + 1):
        for s in STRATEGIES:
            rows = [r[step] for r in results[s] if len(r) > step]
            m = {k: float(np.mean([r[k] for r in rows])) for k in ("miou", "ssda", "dtssd")}
            summary.setdefault(str(step), {})[s] = m
            print(f"| {step} | {s} | {m['miou']:.4f} | {m['ssda']:.3f} | {m['dtssd']:.3f} |")
    for other in ("even", "every"):
        for metric, better in (("miou", 1), ("ssda", -1), ("dtssd", -1)):
            wins = all(better * (summary[str(k)]["suggested"][metric] - summary[str(k)][other][metric]) > 0
                       for k in range(1, args.steps + 1))
            print(f"suggested beats {other} on {metric} at every step: {wins}")
    if args.json:
        clean = {s: [[{k: v for k, v in r.items() if k not in ("review", "doubt")} for r in runs] for runs in rs]
                 for s, rs in results.items()}
        with open(args.json, "w") as handle:
            json.dump({"args": vars(args), "summary": summary, "runs": clean, "seconds": elapsed}, handle, indent=1)


if __name__ == "__main__":
    main()
