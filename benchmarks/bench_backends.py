"""ONNX Runtime vs PyTorch, seconds per frame on this machine's CPU (or a GPU).

Per network and frame size, the per-frame work of a shot in steady state, through the
engines the sessions use (:mod:`tcvom.engines`):

- GCA+TAM: part A of one new frame + part B (what the cached session runs per frame);
- STM: query-encode + read-decode against ``--memory`` memory frames + memory-encode of
  the previous frame (what the propagator runs per frame).

Both back-ends get the same inputs and the same thread count; the ratio is
``onnxruntime / torch`` (below 1: ONNX Runtime is faster). Weights are random (timings do
not depend on them); the graphs are exported into a temporary folder first. Usage::

    python benchmarks/bench_backends.py --sizes 540p 1080p --repeat 2 --json
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time

import torch

SIZES = {"540p": (544, 960), "1080p": (1088, 1920), "4k": (2176, 3840)}  # padded to multiples of 32


def _models() -> dict[str, torch.nn.Module]:
    from tcvom.models import SpectralNorm, build_gca
    from tcvom.models.stm import build_stm

    torch.manual_seed(0)
    gca = build_gca(temporal=True)
    with torch.no_grad():
        for m in gca.modules():
            if isinstance(m, SpectralNorm):
                m.power_iteration()
    return {"gca_tam": gca.eval(), "stm": build_stm()}


def _frame_work(network: str) -> list[str]:
    return ["part_a", "part_b"] if network == "gca_tam" else ["memory_encode", "query_encode", "read_decode"]


def _time(engine, feeds: dict, graphs: list[str], repeat: int) -> float:
    for graph in graphs:  # warm-up (allocations, ONNX Runtime's first-run planning)
        engine.infer(graph, feeds[graph])
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for graph in graphs:
            engine.infer(graph, feeds[graph])
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["540p"], choices=sorted(SIZES))
    parser.add_argument("--networks", nargs="+", default=["gca_tam", "stm"], choices=["gca_tam", "stm"])
    parser.add_argument("--memory", type=int, default=4, help="STM memory frames read per frame")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from tcvom.engines.onnxruntime_engine import OnnxRuntimeEngine
    from tcvom.engines.torch_engine import TorchEngine
    from tcvom.export import export_network
    from tcvom.export.graphs import sample_inputs

    torch.set_num_threads(args.threads)
    models = _models()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for network in args.networks:
            model = models[network]
            export = export_network(model, folder, parity=False)
            engines = {"torch": TorchEngine(model), "onnxruntime": OnnxRuntimeEngine(export, threads=args.threads)}
            for size in args.sizes:
                h, w = SIZES[size]
                feeds = sample_inputs(model, h, w, memory_frames=args.memory)
                if network == "stm":  # per frame: memorise one frame (the previous), read T
                    feeds["memory_encode"] = {k: v[:1] for k, v in feeds["memory_encode"].items()}
                times = {name: _time(e, feeds, _frame_work(network), args.repeat) for name, e in engines.items()}
                row = {"network": network, "size": size, "padded": [h, w], "threads": args.threads,
                       "torch_s": round(times["torch"], 3), "onnxruntime_s": round(times["onnxruntime"], 3),
                       "ratio_ort_over_torch": round(times["onnxruntime"] / times["torch"], 3)}
                rows.append(row)
                if not args.json:
                    print(f"{network:8} {size:6} torch {row['torch_s']:.3f} s/frame, onnxruntime "
                          f"{row['onnxruntime_s']:.3f} s/frame, ratio {row['ratio_ort_over_torch']:.2f}", flush=True)
    if args.json:
        print(json.dumps({"machine": platform.processor() or platform.machine(), "torch": torch.__version__,
                          "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
