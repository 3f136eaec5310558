"""Benchmark of the matting session of a base with the TAM (GCA by default; ``--base fba``,
``dim``, ``index``), CPU by default.

Measures, per frame size:

- seconds per frame of the whole per-frame path (read, network input, network, composite)
  in steady state, variants interleaved frame by frame in one run so that load on the
  machine hits all alike: the cached session (part A of one new frame + part B), the
  recompute-three-frames path the reference code takes (3 x part A + part B), and
  optionally the cached path without channels-last or through ONNX Runtime; the ratios
  to the cached path are the result (the seconds depend on the machine's load);
- FLOPs per frame of part A and part B (``torch.utils.flop_counter``; matmuls and
  convolutions only, the TAM's element-wise window attention is not counted);
- peak resident memory of a session's first frame (part A of two frames + part B: the
  steady-state peak), each size in a fresh process.

Weights are random (timings do not depend on them). Usage::

    python benchmarks/bench_gca_tam.py --sizes 540p 1080p --memory 1080p 4k --flops 1080p
    python benchmarks/bench_gca_tam.py --sizes 540p --variants cached recompute cached_nchw cached_nofold cached_onnxruntime
    python benchmarks/bench_gca_tam.py --sizes 1080p --frames 4 --isolate --variants cached recompute cached_system_malloc
    python benchmarks/bench_gca_tam.py --device cuda --dtype float16 --sizes 1080p 4k
    python benchmarks/bench_gca_tam.py --base fba --sizes 540p --memory 1080p 4k
    python benchmarks/bench_gca_tam.py --sizes 540p --band 0.3 --isolate --variants cached_system_malloc cached_large_tam_chunks_system_malloc

``--band`` sets the half-width of the trimaps' unknown band around the foreground's edge
(a fraction of the frame height; 0.025 by default, about 1.4 % of the TAM's positions
unknown; 0.3 about 34 %): the TAM's cost follows the unknown area.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np
import torch
from isolated import (  # the same folder: benchmarks are run as scripts
    Isolated,
    Run,
    base_variant,
    check_variants,
    facts,
    runs_as_tcvom,
)

from tcvom.io.sources import ArrayFrames

#: Half-width of the trimaps' unknown band, a fraction of the frame height (``--band``).
BAND = 0.025
#: The matting base benchmarked (``--base``).
BASE = "gca"
SIZES = {"540p": (540, 960), "720p": (720, 1280), "1080p": (1080, 1920), "4k": (2160, 3840)}


def _model(temporal: bool = True):
    from tcvom.models import SpectralNorm
    from tcvom.models.bases import build_matting

    torch.manual_seed(0)
    model = build_matting(f"{BASE}_tam" if temporal else BASE)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, SpectralNorm):
                m.power_iteration()
    return model


def _shot(size: tuple[int, int], count: int = 3):
    h, w = size
    rng = np.random.default_rng(0)
    frames, trimaps = {}, {}
    for f in range(count):
        frames[f] = rng.random((h, w, 3), dtype=np.float32)
        tri = np.zeros((h, w), np.uint8)
        tri[h // 4 : 3 * h // 4, w // 3 :] = 255
        band = max(8, int(h * BAND))  # an unknown band around the foreground edge
        tri[max(0, h // 4 - band) : 3 * h // 4 + band, max(0, w // 3 - band) : w // 3 + band] = 128
        trimaps[f] = tri
    return ArrayFrames(frames), ArrayFrames(trimaps)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


VARIANTS = ("cached", "recompute", "cached_nchw", "cached_nofold", "cached_onnxruntime", "cached_system_malloc",
            "cached_compile", "cached_large_tam_chunks", "cached_large_tam_chunks_system_malloc")


def _sessions(size: tuple[int, int], variants: list[str], device: str, dtype: str, frames: int):
    """One session per variant on the same shot and weights (``cached``: tcvom's per-frame
    path; ``recompute``: part A of t-1, t, t+1 every frame, as the reference code does;
    ``cached_nchw``: the cached path without channels-last; ``cached_nofold``: without
    BatchNorm folding; ``recompute`` runs the unfolded NCHW network, as the reference
    does; ``cached_onnxruntime``: the cached path through the ONNX Runtime engine;
    ``cached_compile``: its torch modules under ``torch.compile``, which compiles in the
    warm-up frame and once more in the first timed frame, the first with a previous and a
    next frame: take the median of 3 frames or more; ``cached_large_tam_chunks``: the TAM
    in 64 MiB chunks on the CPU too, as before its 4 MiB ones)."""
    import copy
    import tempfile

    from tcvom.engines.torch_engine import TorchEngine
    from tcvom.matting.gca_session import GcaTamSession

    plate, trimaps = _shot(size, count=frames)
    base = _model()
    sessions = {}
    for name in variants:
        model = copy.deepcopy(base)
        if name == "cached_onnxruntime":
            from tcvom.engines.onnxruntime_engine import OnnxRuntimeEngine
            from tcvom.export import export_network

            folder = tempfile.mkdtemp(prefix="tcvom-bench-")
            engine = OnnxRuntimeEngine(export_network(model, folder, parity=False), threads=torch.get_num_threads())
            sessions[name] = GcaTamSession(plate, trimaps, model, engine=engine)
            continue
        if name == "cached_large_tam_chunks":
            from tcvom.models.tam import TemporalAggregation

            for module in model.modules():
                if isinstance(module, TemporalAggregation):
                    module.cpu_chunk_elements = module.chunk_elements
        reference = name == "recompute"
        engine = TorchEngine(model.to(device=device, dtype=getattr(torch, dtype)), device=device,
                             channels_last=False if name == "cached_nchw" or reference else None,
                             fold_bn=False if name == "cached_nofold" or reference else None)
        if name == "cached_compile":
            for part, module in engine.modules.items():
                engine.modules[part] = torch.compile(module, dynamic=False)  # type: ignore[assignment]
        sessions[name] = GcaTamSession(plate, trimaps, model, device=device, dtype=dtype,
                                       reuse_features=name != "recompute", engine=engine)
    return sessions


def _tcvom_process(name: str) -> bool:
    return runs_as_tcvom(name, "recompute")


def _timed(session, frame: int, device: str) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    alpha = session.alpha(frame)
    _sync(device)
    return time.perf_counter() - start, alpha


def _framer(size_name: str, name: str, device: str, dtype: str, frames: int, threads: int, base: str,
            band: float) -> Run:
    """``--isolate``: one variant's session in its (spawned) process, warmed up; returns its
    ``run(frame)``."""
    global BASE, BAND
    BASE, BAND = base, band
    torch.set_num_threads(threads)
    session = _sessions(SIZES[size_name], [base_variant(name)], device, dtype, frames + 2)
    (session,) = session.values()
    session.alpha(0)
    _sync(device)
    return lambda frame: _timed(session, frame, device)


def speed(size_name: str, device: str, dtype: str, frames: int, variants: list[str],
          isolate: bool = False) -> dict[str, object]:
    """Whole per-frame path (read, input, network, composite) of each variant, interleaved
    frame by frame in one run: seconds per frame (median of the timed frames) and each
    variant's time over the cached path's (``recompute`` / ``cached`` is the cache's gain).

    ``isolate``: each variant in its own process (benchmarks/isolated.py), tcvom's with the
    ``tcvom`` command's allocator setting, ``recompute`` and ``*_system_malloc`` without."""
    isolated: list[Isolated] = []
    check_variants(variants, isolate)
    if isolate:
        threads = torch.get_num_threads()
        isolated = [Isolated(name, _framer, size_name, name, device, dtype, frames, threads, BASE, BAND,
                             tcvom_process=_tcvom_process(name)) for name in variants]
        runs = {p.name: p.run for p in isolated}
    else:
        sessions = _sessions(SIZES[size_name], variants, device, dtype, frames + 2)
        for session in sessions.values():
            session.alpha(0)  # warm-up: fills frames 0 and 1, first-run allocations
            _sync(device)
        runs = {name: (lambda f, s=session: _timed(s, f, device)) for name, session in sessions.items()}
    times: dict[str, list[float]] = {name: [] for name in runs}
    alphas: dict[str, np.ndarray] = {}
    try:
        for frame in range(1, frames + 1):
            for name, run in runs.items():
                seconds, alphas[name] = run(frame)
                times[name].append(seconds)
            print(size_name, frame, {k: round(v[-1], 3) for k, v in times.items()}, flush=True)
    finally:
        peaks = {p.name: round(p.close()) for p in isolated}
    median = {name: float(np.median(t)) for name, t in times.items()}
    out: dict[str, object] = {
        "frames_timed": frames,
        **facts(list(runs), isolate, _tcvom_process, peaks),
        "seconds": median,
        "all_seconds": times,
    }
    if "cached" in median:
        out["over_cached"] = {name: median[name] / median["cached"] for name in median}
        out["max_abs_diff_vs_cached"] = {name: float(np.abs(alphas[name] - alphas["cached"]).max()) for name in alphas}
    return out


def flops(size_name: str) -> dict[str, float]:
    """FLOPs of part A and part B at one size (CPU, float32)."""
    from torch.utils.flop_counter import FlopCounterMode

    from tcvom.models import make_input

    h, w = SIZES[size_name]
    model = _model()
    tri = torch.full((1, 1, h, w), 128, dtype=torch.uint8)
    x = make_input(torch.rand(1, 3, h, w), tri)
    with torch.inference_mode():
        with FlopCounterMode(display=False) as counter:
            feats = model.encode(x)
        part_a = counter.get_total_flops()
        with FlopCounterMode(display=False) as counter:
            model.decode(feats, feats.features, feats.features)
        part_b = counter.get_total_flops()
    return {
        "part_a_gflop": part_a / 1e9,
        "part_b_gflop": part_b / 1e9,
        "cached_frame_gflop": (part_a + part_b) / 1e9,
        "recompute_frame_gflop": (3 * part_a + part_b) / 1e9,
    }


def _peak_rss_mib() -> float:
    """High-water mark of this process's resident memory (Linux VmHWM; reset on exec,
    unlike getrusage's ru_maxrss, which a child inherits from its parent)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("VmHWM not found in /proc/self/status (Linux only)")


def memory_child(size_name: str, device: str, dtype: str) -> dict[str, float]:
    """Peak memory of the first frame of a 2-frame shot (in this process)."""
    from tcvom.matting.gca_session import GcaTamSession

    frames, trimaps = _shot(SIZES[size_name], count=2)
    model = _model()
    base = _peak_rss_mib()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    session = GcaTamSession(frames, trimaps, model, device=device, dtype=dtype)
    start = time.perf_counter()
    session.alpha(0)
    _sync(device)
    seconds = time.perf_counter() - start
    peak = _peak_rss_mib()
    out = {"peak_rss_mib": peak, "before_mib": base, "seconds_first_frame": seconds}
    if device.startswith("cuda"):
        out["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def memory(size_name: str, device: str, dtype: str) -> dict[str, float]:
    """Run :func:`memory_child` in a fresh process so peaks do not mix."""
    cmd = [sys.executable, __file__, "--memory-child", size_name, "--device", device, "--dtype", dtype, "--base", BASE,
           "--band", str(BAND)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    global BASE, BAND
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="*", default=["540p", "1080p"], choices=list(SIZES))
    parser.add_argument("--memory", nargs="*", default=[], choices=list(SIZES))
    parser.add_argument("--flops", nargs="*", default=[], choices=list(SIZES))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--frames", type=int, default=3, help="frames timed per variant (interleaved)")
    parser.add_argument("--variants", nargs="+", default=["cached", "recompute"], choices=VARIANTS)
    parser.add_argument("--isolate", action="store_true",
                        help="run each variant in its own process (still interleaved frame by frame)")
    parser.add_argument("--out", help="also write the results to this JSON file")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--base", default="gca", choices=("gca", "fba", "dim", "index"))
    parser.add_argument("--band", type=float, default=BAND,
                        help="half-width of the trimaps' unknown band, a fraction of the frame height")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    BASE, BAND = args.base, args.band
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child, args.device, args.dtype)))
        return 0
    results: dict[str, object] = {
        "device": args.device if args.device != "cpu" else f"cpu ({torch.get_num_threads()} threads)",
        "dtype": args.dtype,
        "base": args.base,
        "unknown_band": args.band,
        "torch": torch.__version__,
    }
    for size in args.sizes:
        results[f"speed_{size}"] = speed(size, args.device, args.dtype, args.frames, args.variants, args.isolate)
        print(size, results[f"speed_{size}"], flush=True)
    for size in args.flops:
        results[f"flops_{size}"] = flops(size)
        print(size, results[f"flops_{size}"], flush=True)
    for size in args.memory:
        results[f"memory_{size}"] = memory(size, args.device, args.dtype)
        print(size, results[f"memory_{size}"], flush=True)
    print(json.dumps(results, indent=1))
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(results, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
