"""Farm scaling and memory: one task against two parallel tasks, and peak memory per task.

Runs on the bundled example with the classical method on the CPU (no weights needed):

1. one task: ``tcvom run`` over the whole shot;
2. two parallel tasks, as a farm would run them: the two keyframe segments
   (``tcvom trimaps --segment 0`` / ``1``) side by side, then the two halves of the shot
   (``tcvom matte --frames ...``) side by side; the files must equal those of (1);
3. peak resident memory of one matte task of ``--chunk`` frames, and of a whole-shot matte,
   on shots of different lengths (it should not grow with the shot).

Usage::

    python benchmarks/bench_farm.py [--width 480 --height 270 --frames 40] [--json out.json]

Timings are wall-clock seconds of the ``tcvom`` processes (start-up included). On a shared
machine they move with the other load; say so when you quote them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psutil

from tcvom.data.example import write_example
from tcvom.io import read_image
from tcvom.io.sequence import format_range


def tcvom_exe() -> str:
    exe = shutil.which("tcvom", path=str(Path(sys.executable).parent)) or shutil.which("tcvom")
    if exe is None:
        raise SystemExit("the tcvom command is not installed")
    return exe


def measured(args: list[str]) -> tuple[float, float]:
    """Run a command; (wall seconds, peak RSS in MiB of it and its children, sampled every 10 ms)."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    watched = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            rss = watched.memory_info().rss + sum(c.memory_info().rss for c in watched.children(recursive=True))
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.01)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {proc.stderr.read() if proc.stderr else ''}")
    return wall, peak / 2**20


def parallel(commands: list[list[str]]) -> tuple[float, list[float]]:
    start = time.perf_counter()
    with ThreadPoolExecutor(len(commands)) as pool:
        results = list(pool.map(measured, commands))
    return time.perf_counter() - start, [peak for _, peak in results]


def same_frames(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir() if not p.name.startswith("."))
    if names != sorted(p.name for p in b.iterdir() if not p.name.startswith(".")):
        return False
    return all(np.array_equal(read_image(a / n)[0], read_image(b / n)[0]) for n in names)


def scaling(root: Path, width: int, height: int, frames: int) -> dict[str, object]:
    shot = write_example(root / "shot", width=width, height=height, frames=frames, progress="none")
    exe = tcvom_exe()
    base = ["--plate", shot.plate, "--method", "classical", "--progress", "none"]
    one_wall, one_peak = measured([exe, "run", *base, "--keyframes", shot.keyframes, "--out", str(root / "one")])
    two = root / "two"
    segments = [[exe, "trimaps", *base, "--keyframes", shot.keyframes, "--out", str(two / "trimaps"),
                 "--segment", str(i)] for i in range(2)]
    numbers = list(range(shot.first, shot.last + 1))
    half = len(numbers) // 2
    chunks = [[exe, "matte", *base, "--trimaps", str(two / "trimaps" / "trimap.####.png"), "--out", str(two / "alpha"),
               "--frames", format_range(part)] for part in (numbers[:half], numbers[half:])]
    tri_wall, tri_peaks = parallel(segments)
    mat_wall, mat_peaks = parallel(chunks)
    identical = same_frames(root / "one" / "alpha", two / "alpha") and same_frames(root / "one" / "trimaps",
                                                                                  two / "trimaps")
    return {
        "shot": f"{width}x{height}, {frames} frames, keyframes {','.join(map(str, shot.keyframe_numbers))}",
        "one_task_s": round(one_wall, 2),
        "one_task_peak_mib": round(one_peak, 1),
        "two_tasks_s": round(tri_wall + mat_wall, 2),
        "two_tasks_trimaps_s": round(tri_wall, 2),
        "two_tasks_matte_s": round(mat_wall, 2),
        "two_tasks_peak_mib": [round(p, 1) for p in tri_peaks + mat_peaks],
        "speed_up": round(one_wall / (tri_wall + mat_wall), 2),
        "identical_files": identical,
    }


def memory(root: Path, width: int, height: int, lengths: list[int], chunk: int) -> list[dict[str, object]]:
    exe = tcvom_exe()
    rows = []
    for length in lengths:
        shot = write_example(root / f"len{length}", width=width, height=height, frames=length, progress="none")
        base = [exe, "matte", "--plate", shot.plate, "--trimaps", shot.trimaps, "--method", "classical",
                "--progress", "none"]
        frames = format_range(list(range(shot.first, shot.first + chunk)))
        chunk_wall, chunk_peak = measured([*base, "--out", str(root / f"chunk{length}"), "--frames", frames])
        whole_wall, whole_peak = measured([*base, "--out", str(root / f"whole{length}")])
        rows.append({"shot_frames": length, "chunk_frames": chunk, "chunk_task_peak_mib": round(chunk_peak, 1),
                     "chunk_task_s": round(chunk_wall, 2), "whole_shot_task_peak_mib": round(whole_peak, 1),
                     "whole_shot_task_s": round(whole_wall, 2)})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--height", type=int, default=270)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--memory-size", type=int, nargs=2, default=(240, 136), metavar=("W", "H"))
    parser.add_argument("--memory-lengths", type=int, nargs="+", default=[12, 48])
    parser.add_argument("--chunk", type=int, default=6)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tcvom-bench-farm-") as tmp:
        root = Path(tmp)
        report = {
            "machine": {"cpus": os.cpu_count(), "load_1min_at_start": round(os.getloadavg()[0], 2)},
            "scaling": scaling(root / "scaling", args.width, args.height, args.frames),
            "memory": memory(root / "memory", *args.memory_size, args.memory_lengths, args.chunk),
        }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
