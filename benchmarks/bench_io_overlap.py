"""Overlapped I/O (issue 18): the matte stage with the I/O threads (``--io-queue 2``) and
without (``--io-queue 0``), in one interleaved run, on a generated shot with EXR plates and
EXR alpha output; ``--stage trimaps`` times the trimap stage instead (the plate read ahead
in the order of the propagation passes, the keyframe trimaps of the example propagated).

Each round runs both settings one after the other (order alternating), so a change in the
machine's load hits both; the figure is the median over rounds. It also times the I/O
alone (read every plate frame and trimap, write every alpha EXR and its record): the most
the threads can hide.

    python benchmarks/bench_io_overlap.py --method classical --size 960x540 --frames 12 --rounds 3
    python benchmarks/bench_io_overlap.py --method tcvom --size 480x272 --frames 8   # deterministic weights
    python benchmarks/bench_io_overlap.py --stage trimaps --method classical --size 960x540 --frames 12

Timings move with the machine's other load: quote the load average printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_incremental import (  # the same folder: benchmarks are run as scripts
    det_gca_weights,
    det_stm_weights,
)


def io_only(plate: str, trimaps: str, out: Path) -> float:
    """Seconds to read every plate frame and trimap and write every alpha EXR with its record."""
    from tcvom.farm.records import FrameRecords
    from tcvom.io import AlphaWriter, open_frames, open_trimaps

    begin = time.perf_counter()
    source = open_frames(plate)
    tris = open_trimaps(trimaps)
    writer = AlphaWriter(out)
    records = FrameRecords(writer.pattern)
    for frame in source.frame_numbers:
        alpha = tris.read(frame).astype("float32") / 255 * source.read(frame)[:, :, 0]
        records.write(frame, writer.write(frame, alpha, plate=source.path(frame)), "io-only")
    return time.perf_counter() - begin


def trimap_io_only(plate: str, keyframes: str, out: Path) -> float:
    """Seconds to read the plate frames in the order the propagation reads them (a frame
    reached by two passes twice) and write a trimap (a keyframe's) with its record per frame."""
    from tcvom.classical import FlowPropagator
    from tcvom.farm.records import FrameRecords
    from tcvom.io import TrimapWriter, open_frames, open_trimaps
    from tcvom.propagation.ensemble import read_order
    from tcvom.propagation.scheduler import KeyframeSchedule

    begin = time.perf_counter()
    source = open_frames(plate)
    keys = open_trimaps(keyframes, contiguous=False).read_all()
    for frame in read_order(FlowPropagator(), keys, KeyframeSchedule(source.frame_numbers, keys).segments,
                            source.frame_numbers):
        source.read(frame)
    writer = TrimapWriter(out)
    records = FrameRecords(writer.pattern)
    trimap = keys[min(keys)]
    for frame in source.frame_numbers:
        records.write(frame, writer.write(frame, trimap), "io-only")
    return time.perf_counter() - begin


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", choices=("matte", "trimaps"), default="matte")
    parser.add_argument("--method", choices=("classical", "tcvom"), default="classical")
    parser.add_argument("--size", default="960x540", help="WxH of the generated shot")
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--queue", type=int, default=2, help="the --io-queue compared with 0")
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))

    from tcvom.data.example import write_example
    from tcvom.pipeline import matte, trimaps

    with tempfile.TemporaryDirectory(prefix="tcvom-io-overlap-") as tmp:
        root = Path(tmp)
        example = write_example(root / "shot", width=width, height=height, frames=args.frames)
        options: dict[str, Any] = {"method": args.method, "progress": "none", "review": False, "overwrite": True}
        if args.stage == "trimaps":
            if args.method == "tcvom":  # fine-tuning off: its own figures (bench_finetune_scope)
                options.update(weights=det_stm_weights(root), finetune_steps=0)

            def stage(out: Path, **more: Any) -> object:
                return trimaps(example.plate, example.keyframes, out, **options, **more)

            def io_alone() -> float:
                return trimap_io_only(example.plate, example.keyframes, root / "io")
        else:
            if args.method == "tcvom":
                options["weights"] = det_gca_weights(root)

            def stage(out: Path, **more: Any) -> object:
                return matte(example.plate, example.trimaps, out, **options, **more)

            def io_alone() -> float:
                return io_only(example.plate, example.trimaps, root / "io")
        stage(root / "warm", frames=f"1001-{1000 + min(3, args.frames)}")
        times: dict[int, list[float]] = {0: [], args.queue: []}
        io_times = []
        for index in range(args.rounds):
            order = (0, args.queue) if index % 2 == 0 else (args.queue, 0)
            for queue in order:
                begin = time.perf_counter()
                stage(root / f"out{queue}", io_queue=queue)
                times[queue].append(time.perf_counter() - begin)
            io_times.append(io_alone())
    sequential, overlapped = statistics.median(times[0]), statistics.median(times[args.queue])
    results = {
        "stage": args.stage, "method": args.method, "size": args.size, "frames": args.frames, "rounds": args.rounds,
        "load_average": os.getloadavg(), "cpus": os.cpu_count(),
        "s_per_frame": {"io_queue_0": sequential / args.frames, f"io_queue_{args.queue}": overlapped / args.frames,
                        "io_only": statistics.median(io_times) / args.frames},
        "runs_s": {str(k): v for k, v in times.items()},
        "speedup": sequential / overlapped,
    }
    print(json.dumps(results, indent=1))
    print(f"{args.stage} {args.method} {args.size} x{args.frames}: {sequential / args.frames:.3f} s/frame sequential, "
          f"{overlapped / args.frames:.3f} overlapped (x{results['speedup']:.2f}); I/O alone "
          f"{results['s_per_frame']['io_only']:.3f} s/frame; load {results['load_average'][0]:.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
