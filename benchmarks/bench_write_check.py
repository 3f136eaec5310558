"""What reading a written frame back costs (``tcvom.io.images.write_image`` checks every
image it writes before renaming it into place: a full disk must not leave a truncated frame
under a frame's name).

Writes a 1080p alpha EXR (half, one channel) and a 1080p trimap PNG (8-bit, one channel)
``--repeat`` times each, alternating the write with its check (interleaved, so the shared
machine's load falls on both), and prints the median seconds of the whole write and of the
check alone. Usage::

    python benchmarks/bench_write_check.py --repeat 9
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def _matte(height: int, width: int) -> np.ndarray:
    """A smooth matte with a soft edge band (compresses as real mattes do, not as noise)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    distance = np.hypot(x - width / 2, y - height / 2) - height / 3
    return np.clip(0.5 - distance / 40.0, 0.0, 1.0)


def main() -> None:
    from tcvom.io.images import _check_written, write_image

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    alpha = _matte(1080, 1920)
    trimap = np.where(alpha >= 1.0, 1.0, np.where(alpha <= 0.0, 0.0, 128 / 255)).astype(np.float32)
    cases = {"alpha EXR (half)": ("a.exr", alpha, "half", ("A",)), "trimap PNG (uint8)": ("t.png", trimap, "uint8", ("Y",))}
    print(f"{platform.node()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}, 1920x1080")
    with tempfile.TemporaryDirectory() as folder:
        times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in cases}
        for _ in range(args.repeat):
            for name, (file, pixels, kind, channels) in cases.items():
                path = Path(folder) / file
                start = time.perf_counter()
                write_image(path, pixels, pixel_type=kind, channels=channels)
                times[name][0].append(time.perf_counter() - start)
                start = time.perf_counter()
                _check_written(path, path)
                times[name][1].append(time.perf_counter() - start)
        for name, (whole, check) in times.items():
            w, c = statistics.median(whole), statistics.median(check)
            print(f"{name}: write {w * 1000:.1f} ms (check included), check {c * 1000:.1f} ms ({c / w:.0%} of it)")


if __name__ == "__main__":
    main()
