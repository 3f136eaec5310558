"""Seconds per frame of STM trimap propagation (random weights; speed does not depend on them).

Two figures:

- ``propagation``: :class:`tcvom.propagation.stm.StmPropagator` over a synthetic shot from
  one keyframe (frame reading excluded: frames are made in memory), averaged over the
  frames after the first two;
- ``full memory``: one query frame against a memory of ``1 + max_memory`` frames (one
  keyframe + the cap), the steady state of a long shot, timed on the model parts.

Usage: ``python benchmarks/bench_stm.py [--height 540 --width 960 --frames 8 --threads 0]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from tcvom.models.stm import build_stm
from tcvom.propagation.scheduler import KeyframeSchedule
from tcvom.propagation.stm import (
    DEFAULT_MAX_MEMORY,
    DEFAULT_MEM_EVERY,
    StmPropagator,
    padded_size,
    prepare_frame,
)


class SyntheticFrames:
    def __init__(self, height: int, width: int) -> None:
        rng = np.random.default_rng(0)
        self.base = rng.random((height, width, 3), dtype=np.float32)

    def read(self, frame: int) -> np.ndarray:
        return np.roll(self.base, frame, axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=540)
    parser.add_argument("--width", type=int, default=960)
    parser.add_argument("--frames", type=int, default=8, help="frames to propagate")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    parser.add_argument("--mem-every", type=int, default=DEFAULT_MEM_EVERY)
    parser.add_argument("--max-memory", type=int, default=DEFAULT_MAX_MEMORY)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_stm().to(args.device)
    frames = SyntheticFrames(args.height, args.width)
    trimap = np.zeros((args.height, args.width), np.uint8)
    trimap[args.height // 4 : args.height // 2, args.width // 4 : args.width // 2] = 255
    trimap[args.height // 2 : args.height // 2 + 20, args.width // 4 : args.width // 2] = 128
    (pass_,) = KeyframeSchedule(range(0, args.frames + 1), [0]).passes
    propagator = StmPropagator(
        model, device=args.device, mem_every=args.mem_every, max_memory=args.max_memory
    )
    stamps = []
    for _ in propagator.run_pass(frames, {0: trimap}, pass_):
        stamps.append(time.perf_counter())
    per_frame = np.diff(stamps)[1:]  # from frame 2 on (frame 1 has no previous-frame memorisation)
    hp, wp = padded_size(args.height, args.width)
    print(
        f"device {args.device}, torch threads {torch.get_num_threads()}, {args.width}x{args.height} (padded {wp}x{hp})"
    )
    print(
        f"propagation: {per_frame.mean():.2f} s/frame (min {per_frame.min():.2f}, {len(per_frame)} frames)"
    )

    with torch.inference_mode():
        x = prepare_frame(frames.read(1)).to(args.device)
        probs = torch.softmax(torch.randn(1, 3, hp, wp, device=args.device), dim=1)
        key, value = model.memorize(x, probs)
        t = 1 + args.max_memory
        key, value = key.repeat(1, 1, t, 1, 1), value.repeat(1, 1, t, 1, 1)
        times = []
        for _ in range(2):
            start = time.perf_counter()
            model.memorize(x, probs)  # the previous frame, as every step does
            model.segment(x, key, value)
            times.append(time.perf_counter() - start)
    print(f"full memory ({t} frames): {min(times):.2f} s/frame")


if __name__ == "__main__":
    main()
