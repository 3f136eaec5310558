"""Device check of the neural path (issue 18): correctness, half precision and speed.

One command writes ``gpu_check.json`` into ``--out`` and prints a table::

    python benchmarks/gpu_check.py --out gpu-results                 # CUDA, 1080p and 4K
    python benchmarks/gpu_check.py --out /tmp/c --device cpu --small  # the test suite's run

What it does (this version):

- correctness: the GCA+TAM and single-image GCA sessions on the golden frames and weights
  (``shared/reference/golden``) in fp32, TF32 off, against the reference outputs
  (tolerance 5e-5, as the CPU tests);
- half precision: fp16 and bf16 alphas against fp32 on the same data, max and mean
  absolute difference in the unknown region, against the target 2e-2 / 1e-3;
- speed: the cached GCA+TAM session's steady-state seconds per frame (CUDA events on
  CUDA) per size and precision, channels-last, with peak memory; the STM step (memory-encode
  of one frame, query-encode, read-decode against a full memory) in fp32.

Not in this version (recorded as such in the JSON): STM correctness on the golden
probabilities, 500 steps of online fine-tuning at 512x512, ``torch.compile`` / CUDA graphs
variants, and the end-to-end ``tcvom run --method tcvom`` with EXR I/O.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

SIZES = {"small": (64, 96), "1080p": (1080, 1920), "4k": (2160, 3840)}
ATOL = 5e-5
HALF_TARGET = (2e-2, 1e-3)  # max, mean abs difference in the unknown region
NOT_IN_THIS_VERSION = ["stm_golden", "finetune_500_steps_512", "torch_compile_and_cuda_graphs", "end_to_end_exr"]


def _reference_dir(given: str | None) -> Path:
    path = Path(given) if given else Path(__file__).resolve().parents[1] / ".." / "shared" / "reference"
    if not (path / "golden").is_dir():
        raise SystemExit(f"gpu_check: no golden data in {path} (pass --reference shared/reference)")
    return path


def _golden(reference: Path) -> dict:
    import cv2

    sys.path.insert(0, str(reference))
    try:
        import det_weights
    finally:
        sys.path.remove(str(reference))
    g = reference / "golden"
    state = det_weights.gca_state_dict(str(reference / "tcvom_gca_tam_state_dict.tsv"), seed=2024, scale=1.3)
    frames = {1001 + t: cv2.cvtColor(cv2.imread(str(g / f"frame_{t:04d}.png")), cv2.COLOR_BGR2RGB).astype(np.float32)
              / 255 for t in range(4)}
    trimaps = {1001 + t: cv2.imread(str(g / f"trimap_{t:04d}.png"), cv2.IMREAD_GRAYSCALE) for t in range(4)}
    return {"state": state, "frames": frames, "trimaps": trimaps,
            "alpha": np.load(g / "gca_tam_alpha.npy"), "single": np.load(g / "gca_single_alpha.npy")}


def _alphas(golden: dict, state: dict, device: str, dtype: str = "float32") -> dict[int, np.ndarray]:
    from tcvom.io.sources import ArrayFrames
    from tcvom.matting.gca_session import GcaTamSession, load_gca_model

    session = GcaTamSession(ArrayFrames(golden["frames"]), ArrayFrames(golden["trimaps"]),
                            load_gca_model(state), device=device, dtype=dtype)
    return dict(session.alphas())


def correctness(golden: dict, device: str) -> dict:
    """fp32 (TF32 off) against the reference outputs."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    single_state = {k: v for k, v in golden["state"].items() if not k.startswith("decoder.fam.")}
    out = {}
    for name, state, want in (("gca_tam", golden["state"], golden["alpha"]), ("gca", single_state, golden["single"])):
        got = _alphas(golden, state, device)
        diff = max(float(np.abs(got[f] - want[f - 1001]).max()) for f in got)
        out[name] = {"max_abs": diff, "tolerance": ATOL, "ok": diff <= ATOL}
    return out


def half_precision(golden: dict, device: str) -> dict:
    """fp16 and bf16 GCA+TAM alphas against fp32, unknown region."""
    fp32 = _alphas(golden, golden["state"], device)
    out = {}
    for dtype in ("float16", "bfloat16"):
        half = _alphas(golden, golden["state"], device, dtype)
        diffs = [np.abs(half[f] - fp32[f])[golden["trimaps"][f] == 128] for f in fp32]
        worst, mean = max(float(d.max()) for d in diffs), float(np.mean(np.concatenate(diffs)))
        out[dtype] = {"max_abs": worst, "mean_abs": mean,
                      "ok": worst <= HALF_TARGET[0] and mean <= HALF_TARGET[1]}
    return out


def _timer(device: str) -> Callable[[Callable[[], object]], float]:
    def run(fn: Callable[[], object]) -> float:
        if device.startswith("cuda"):
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            stop.record()
            torch.cuda.synchronize()
            return start.elapsed_time(stop) / 1000
        begin = time.perf_counter()
        fn()
        return time.perf_counter() - begin
    return run


def _peak_mib(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    with open("/proc/self/status") as status:  # process high-water mark (Linux)
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def session_speed(size: tuple[int, int], device: str, dtype: str, frames: int) -> dict:
    """Steady-state seconds per frame of the cached GCA+TAM session (after a warm-up frame)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_gca_tam import _model, _shot

    from tcvom.matting.gca_session import GcaTamSession

    plate, trimaps = _shot(size, count=frames + 2)
    session = GcaTamSession(plate, trimaps, _model(), device=device, dtype=dtype)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    session.alpha(0)
    timer = _timer(device)
    times = [timer(lambda f=f: session.alpha(f)) for f in range(1, frames + 1)]
    median = float(np.median(times))
    return {"s_per_frame": median, "frames_per_s": 1 / median, "peak_mib": _peak_mib(device)}


def stm_step(size: tuple[int, int], device: str, memory: int, repeat: int) -> dict:
    """One propagation step of STM in fp32: memorise a frame, encode the query, read and decode."""
    from tcvom.engines.torch_engine import TorchEngine
    from tcvom.export.graphs import sample_inputs
    from tcvom.models.stm import build_stm

    h, w = (-(-size[0] // 32) * 32, -(-size[1] // 32) * 32)
    model = build_stm().to(device)
    feeds = sample_inputs(model, h, w, memory_frames=memory)
    feeds["memory_encode"] = {k: v[:1] for k, v in feeds["memory_encode"].items()}
    engine = TorchEngine(model, device=device)
    graphs = ("memory_encode", "query_encode", "read_decode")

    def step() -> None:
        for graph in graphs:
            engine.infer(graph, feeds[graph])

    step()
    timer = _timer(device)
    median = float(np.median([timer(step) for _ in range(repeat)]))
    return {"s_per_step": median, "steps_per_s": 1 / median, "memory_frames": memory, "peak_mib": _peak_mib(device)}


def run(out: Path, device: str, small: bool, reference: str | None = None) -> dict:
    from tcvom.matting.gca_session import resolve_device

    resolve_device(device)
    golden = _golden(_reference_dir(reference))
    results: dict = {"device": torch.cuda.get_device_name(device) if device.startswith("cuda") else f"cpu "
                     f"({torch.get_num_threads()} threads)", "torch": torch.__version__, "small": small,
                     "not_in_this_version": NOT_IN_THIS_VERSION}
    results["correctness"] = correctness(golden, device)
    results["half_precision"] = half_precision(golden, device)
    sizes = ["small"] if small else ["1080p", "4k"]
    dtypes = ["float32"]
    if device.startswith("cuda"):
        dtypes += ["float16", "bfloat16"]
    elif small:
        dtypes += ["bfloat16"]
    frames = 2 if small else 10
    results["gca_tam_session"] = {f"{s}/{d}": session_speed(SIZES[s], device, d, frames) for s in sizes for d in dtypes}
    stm_size = SIZES["small"] if small else SIZES["1080p"]
    results["stm_step"] = stm_step(stm_size, device, memory=2 if small else 9, repeat=2 if small else 10)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(results, indent=1))
    return results


def table(results: dict) -> str:
    rows = [f"device: {results['device']}, torch {results['torch']}", "| check | figure | ok |", "|---|---|---|"]
    for name, r in results["correctness"].items():
        rows.append(f"| {name} fp32 vs golden | max {r['max_abs']:.2e} (tol {r['tolerance']:g}) | {r['ok']} |")
    for name, r in results["half_precision"].items():
        rows.append(f"| {name} vs fp32, unknown | max {r['max_abs']:.2e}, mean {r['mean_abs']:.2e} | {r['ok']} |")
    for name, r in results["gca_tam_session"].items():
        rows.append(f"| GCA+TAM cached {name} | {r['s_per_frame']:.3f} s/frame, {r['frames_per_s']:.2f} fps, "
                    f"peak {r['peak_mib']:.0f} MiB | |")
    r = results["stm_step"]
    rows.append(f"| STM step, {r['memory_frames']} memory frames | {r['s_per_step']:.3f} s, peak {r['peak_mib']:.0f} MiB | |")
    rows.append("not in this version: " + ", ".join(results["not_in_this_version"]))
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for gpu_check.json")
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument("--small", action="store_true", help="tiny sizes (the test suite's run)")
    parser.add_argument("--reference", help="shared/reference folder (default: ../shared/reference beside the repo)")
    args = parser.parse_args(argv)
    results = run(Path(args.out), args.device, args.small, args.reference)
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
