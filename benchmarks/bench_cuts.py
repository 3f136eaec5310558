"""What finding cuts costs the trimap stage (docs/trimaps.md, "Cuts"): the seconds per frame
of :func:`tcvom.propagation.ensemble.find_cuts` (prepare each frame for the flow, the flow
both ways and its forward-backward check at the flow's size) on a generated plate in memory
that pans a textured picture and cuts to another half-way; it checks that the one cut is
found.

    python benchmarks/bench_cuts.py --size 1920x1080 --frames 12

The figure moves with the machine's other load: quote the load average printed with it.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def plate(width: int, height: int, frames: int):
    """A textured picture panning 3 pixels a frame, cutting to another after the middle frame."""
    import cv2

    from tcvom.io.sources import ArrayFrames

    pictures = []
    for seed in (1, 2):
        rng = np.random.default_rng(seed)
        pictures.append(cv2.GaussianBlur(rng.random((height, width, 3), dtype=np.float32), (0, 0), 5) * 3 - 1)
    cut = frames // 2
    return ArrayFrames({f: np.clip(np.roll(pictures[f > cut], 3 * f, axis=1), 0, 1) for f in range(1, frames + 1)}), cut


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="1920x1080", help="WIDTHxHEIGHT")
    parser.add_argument("--frames", type=int, default=12)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    from tcvom.propagation.ensemble import find_cuts

    frames, cut = plate(width, height, args.frames)
    start = time.perf_counter()
    found = find_cuts(frames, list(frames.frame_numbers))
    seconds = time.perf_counter() - start
    if found != [cut]:
        raise SystemExit(f"expected one cut after frame {cut}, found {found}")
    print(json.dumps({"size": args.size, "frames": args.frames, "cuts": found,
                      "seconds_per_frame": round(seconds / args.frames, 4), "load_average": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
