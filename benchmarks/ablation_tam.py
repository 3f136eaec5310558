"""A small ablation in the spirit of the TCVOM paper's Table 1, on synthetic data, on the CPU.

Zhang et al., "Attention-guided Temporally Coherent Video Object Matting", ACM MM 2021,
Table 1 compares the single-image base network with +TAM trained with L_im only and +TAM
trained with L_im + L_tc + L_af. This script trains three networks for the same number of
steps from the same random initialisation (the layers they share start identical):

1. ``gca``      : single-image GCA, L_im;
2. ``tam_lim``  : GCA+TAM, L_im only (``loss.temporal = loss.affinity = 0``);
3. ``tam_full`` : GCA+TAM, L_im + 0.5 L_tc + 0.25 L_af;

on synthetic clips (``tcvom.data.synthetic.write_benchmark``) and scores each with
``tcvom.evaluation.mattes.evaluate`` (method ``tcvom``, the clips' own trimaps) on held-out synthetic
clips. Random-initialised backbones trained for minutes are nowhere near the paper's
networks: read the numbers as a check that the pipeline runs end to end and as a rough
signal, not as a reproduction of Table 1.

Usage::

    python benchmarks/ablation_tam.py --out /tmp/ablation --steps 40 --crop 64
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

from tcvom.data.synthetic import ShotConfig, write_benchmark
from tcvom.evaluation.mattes import evaluate
from tcvom.train.config import gca_tam_config_from_dict
from tcvom.train.loops import train_gca_tam

VARIANTS = {
    "gca": {"network": "gca", "loss": {"temporal": 0.0, "affinity": 0.0}},
    "tam_lim": {"network": "gca_tam", "loss": {"temporal": 0.0, "affinity": 0.0}},
    "tam_full": {"network": "gca_tam", "loss": {"temporal": 0.5, "affinity": 0.25}},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--lr", type=float, default=4e-4)
    parser.add_argument("--train-clips", type=int, default=3)
    parser.add_argument("--val-clips", type=int, default=2)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--size", default="128x96", help="WIDTHxHEIGHT of the synthetic clips")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--widths", nargs="+", default=["medium"])
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    width, height = (int(v) for v in args.size.split("x"))
    shot = ShotConfig(width=width, height=height, frames=args.frames)
    train_root, val_root = args.out / "train_data", args.out / "val_data"
    if not train_root.exists():
        write_benchmark(train_root, clips=args.train_clips, config=shot, seed=1, flow=False, composites=False)
        (train_root / "train_videos.txt").write_text((train_root / "val_videos.txt").read_text())
    if not val_root.exists():
        write_benchmark(val_root, clips=args.val_clips, config=shot, seed=2, flow=True, composites=False)
    results: dict[str, dict] = {}
    for name, variant in VARIANTS.items():
        run = args.out / "runs" / name
        shutil.rmtree(run, ignore_errors=True)
        cfg = gca_tam_config_from_dict({
            "out": str(run), "steps": args.steps, "batch_size": args.batch_size, "seed": 0,
            "checkpoint_every": args.steps, "network": variant["network"],
            "data": {"kind": "video", "root": str(train_root), "crop": args.crop, "workers": 1, "max_radius": 8},
            "optim": {"lr": args.lr},
            "loss": variant["loss"],
        })
        tick = time.perf_counter()
        res = train_gca_tam(cfg, progress="none")
        train_s = time.perf_counter() - tick
        tick = time.perf_counter()
        report = evaluate(val_root, args.out / "eval" / name, method="tcvom", weights=res.weights,
                          widths=args.widths, flow="png", image_metrics=False, plots=False, progress="none")
        eval_s = time.perf_counter() - tick
        first, last = res.rows[: max(1, len(res.rows) // 5)], res.rows[-max(1, len(res.rows) // 5):]
        results[name] = {
            "train_seconds": round(train_s, 1),
            "eval_seconds": round(eval_s, 1),
            "train_loss_first": sum(r["loss"] for r in first) / len(first),
            "train_loss_last": sum(r["loss"] for r in last) / len(last),
            "scores": report.summary,
        }
        print(name, json.dumps(results[name]), file=sys.stderr, flush=True)
    (args.out / "ablation.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                        "results": results}, indent=1))
    print("| variant | MSE x1e3 | SAD x1e3 | dtSSD | MESSDdt | train loss first->last | train s |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        for w, s in r["scores"].items():
            print(f"| {name} ({w}) | {s['mse'] * 1e3:.2f} | {s['sad'] * 1e3:.2f} | {s['dtssd']:.3f} | "
                  f"{s['messddt']:.3f} | {r['train_loss_first']:.4f} -> {r['train_loss_last']:.4f} | "
                  f"{r['train_seconds']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
