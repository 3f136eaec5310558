"""The floor baseline of docs/evaluation.md: the prediction is the trimap itself (unknown =
128/255), scored on the default synthetic benchmark with its flow PNGs.

Usage: python benchmarks/eval_floor.py WORK_DIR (makes WORK_DIR/bench once, about 35 s).
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from tcvom.data.vm108 import VideoMatting108
from tcvom.evaluation.mattes import evaluate, make_synthetic


def main(root: Path) -> None:
    if not (root / "bench").exists():
        make_synthetic(root / "bench", progress="none")
    for width in ("narrow", "medium", "wide"):
        for clip in VideoMatting108(root / "bench"):
            folder = root / "pred" / width / clip.name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(len(clip)):
                trimap = clip.trimap(i, width, clip.read(i).alpha_raw)
                cv2.imwrite(str(folder / f"{i:05d}_pred.png"), trimap.astype(np.uint8))
    report = evaluate(root / "bench", root / "out", predictions=root / "pred", plots=False, progress="none")
    print(report.table())


if __name__ == "__main__":
    main(Path(sys.argv[1]))
