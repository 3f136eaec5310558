"""The artist's loop: what a rerun costs after adding one keyframe (issue 15, "Measured").

A synthetic shot (the bundled example's generator: ``--frames`` frames at ``--size``,
keyframes painted from its ground-truth trimaps at ``--keyframes``) is run once into an
output folder with ``tcvom.pipeline.run``; then one keyframe is added inside one segment
(``--add``) and the same run is repeated into the same folder. Reported:

- the full run's and the rerun's wall-clock and CPU seconds (this process, all threads);
- the frames the rerun computed, per output, against the frames of the segment the new
  keyframe splits (trimaps) and that segment plus one frame on each side (alphas);
- the bound: the rerun may take at most ``touched / total`` of the full run's time plus
  10 % of it, where ``touched`` is the number of alphas recomputed (the larger stage);
- whether the rerun equals a run from scratch with the same keyframes, pixel for pixel
  (``--check``, one more full run).

``--method tcvom`` runs the torch engine on the CPU with deterministic random weights
(``shared/reference/det_weights.py``, as the golden tests); fine-tuning is off (the CPU
default) unless ``--finetune-steps`` is given.

    python benchmarks/bench_incremental.py --method classical --size 480x270 --frames 120
    python benchmarks/bench_incremental.py --method tcvom --size 240x136 --frames 120

Timings move with the machine's other load: quote the load average printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from tcvom import pipeline
from tcvom.data.example import write_example
from tcvom.io import read_image

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "reference"


def _reference_generator():
    """The golden tests' weight generator, ``shared/reference/det_weights.py``."""
    sys.path.insert(0, str(SHARED))
    try:
        import det_weights as det  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    return det


def det_stm_weights(folder: Path) -> Path:
    """Deterministic random STM weights (the golden tests' seed and scale), as a file."""
    import torch

    path = folder / "stm_det.pth"
    state = _reference_generator().stm_state_dict(str(SHARED / "stm_state_dict.tsv"), seed=11, scale=0.68)
    torch.save(state, path)
    return path


def det_gca_weights(folder: Path) -> Path:
    """Deterministic random GCA+TAM weights (the golden tests' seed and scale), as a file."""
    import torch

    path = folder / "gca_tam_det.pth"
    state = _reference_generator().gca_state_dict(str(SHARED / "tcvom_gca_tam_state_dict.tsv"), seed=2024, scale=1.3)
    torch.save(state, path)
    return path


def det_weights(folder: Path) -> tuple[Path, Path]:
    """Deterministic random STM and GCA+TAM weight files."""
    return det_stm_weights(folder), det_gca_weights(folder)


def timed(function: Any, **kwargs: Any) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(**kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def same_pixels(a: Path, b: Path) -> bool:
    for sub in ("trimaps", "alpha"):
        names = sorted(p.name for p in (a / sub).iterdir() if not p.name.startswith("."))
        if names != sorted(p.name for p in (b / sub).iterdir() if not p.name.startswith(".")):
            return False
        for name in names:
            if not np.array_equal(read_image(a / sub / name)[0], read_image(b / sub / name)[0]):
                return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", choices=("classical", "tcvom"), default="classical")
    parser.add_argument("--size", default="480x270", help="WIDTHxHEIGHT")
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--keyframes", default="1001,1040,1120", help="the first run's keyframes")
    parser.add_argument("--add", type=int, default=1020, help="the keyframe added before the rerun")
    parser.add_argument("--finetune-steps", type=int, default=0)
    parser.add_argument("--check", action="store_true", help="also compare with a run from scratch")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    first_keys = [int(k) for k in args.keyframes.split(",")]
    with tempfile.TemporaryDirectory(prefix="tcvom-bench-incremental-") as tmp:
        root = Path(tmp)
        example = write_example(root / "shot", width=width, height=height, frames=args.frames)
        keys = root / "keys"
        keys.mkdir()
        for k in first_keys:
            shutil.copy(root / "shot" / "truth" / f"trimap.{k}.png", keys / f"key.{k}.png")
        options: dict[str, Any] = {"method": args.method, "progress": "none", "review": False}
        if args.method == "tcvom":
            stm, gca = det_weights(root)
            options.update(weights=stm, matting_weights=gca, finetune_steps=args.finetune_steps)
        plate = str(example.plate)
        pattern = str(keys / "key.####.png")
        # warm up (imports, compiled kernels, weights loaded) so the full run is not charged for it
        pipeline.run(plate=plate, out=root / "warm", keyframes=[f"{first_keys[0]}={keys}/key.{first_keys[0]}.png"],
                     shot_range=f"{first_keys[0]}-{first_keys[0] + 2}", **options)
        full, full_wall, full_cpu = timed(pipeline.run, plate=plate, out=root / "out", keyframes=pattern, **options)
        shutil.copy(root / "shot" / "truth" / f"trimap.{args.add}.png", keys / f"key.{args.add}.png")
        again, wall, cpu = timed(pipeline.run, plate=plate, out=root / "out", keyframes=pattern, **options)
        total = len(full.written)
        shot = list(range(1001, 1001 + args.frames))
        below = max(k for k in first_keys if k < args.add)
        above = min(k for k in first_keys if k > args.add)
        segment = [f for f in shot if (below < f <= above) or (f == below == shot[0])]
        near = sorted({f for f in shot if segment[0] - 1 <= f <= segment[-1] + 1})
        trimaps = again.stages["trimaps"]["computed"]
        alphas = again.stages["alpha"]["computed"]
        touched = len(alphas)
        figures = {
            "method": args.method,
            "size": f"{width}x{height}",
            "frames": args.frames,
            "keyframes": first_keys,
            "added": args.add,
            "segment": f"{segment[0]}-{segment[-1]}",
            "full": {"wall_s": round(full_wall, 2), "cpu_s": round(full_cpu, 2), "frames": total},
            "rerun": {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "trimaps": len(trimaps), "alphas": touched},
            "trimaps_only_in_segment": set(trimaps) <= set(segment),
            "alphas_only_in_segment_pm1": set(alphas) <= set(near),
            "bound_fraction": round(touched / total + 0.10, 3),
            "wall_fraction": round(wall / full_wall, 3),
            "cpu_fraction": round(cpu / full_cpu, 3),
            "load_average": [round(v, 2) for v in os.getloadavg()],
            "cpus": os.cpu_count(),
        }
        figures["within_bound_wall"] = figures["wall_fraction"] <= figures["bound_fraction"]
        figures["within_bound_cpu"] = figures["cpu_fraction"] <= figures["bound_fraction"]
        if args.check:
            fresh = root / "fresh"
            pipeline.run(plate=plate, out=fresh, keyframes=pattern, **options)
            figures["equals_run_from_scratch"] = same_pixels(root / "out", fresh)
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
