"""Device check of the neural path (issue 18): correctness, half precision and speed.

One command writes ``gpu_check.json`` into ``--out`` and prints a table::

    python benchmarks/gpu_check.py --out gpu-results                 # CUDA, 1080p and 4K
    python benchmarks/gpu_check.py --out /tmp/c --device cpu --small  # the test suite's run

Sections, in this order (``--sections`` picks some; each one that fails is recorded with
its error and the next runs; ``--budget-s`` skips the sections that would end past it,
from the estimates in :data:`ESTIMATE_S`):

- ``correctness``: GCA+TAM and single-image GCA on the golden frames and weights
  (``shared/reference/golden``) in fp32, TF32 off, against the reference outputs
  (tolerance 5e-5, as the CPU tests);
- ``half_precision``: fp16 and bf16 GCA+TAM alphas against fp32, max and mean absolute
  difference in the unknown region, against the target 2e-2 / 1e-3;
- ``stm_golden``: STM propagation of the golden clip in fp32, TF32 off, against the
  reference probabilities (1e-4) and labels (away from ties), as the CPU tests;
- ``stm_half``: the same under fp16 and bf16 autocast: label agreement with fp32 and the
  largest probability difference;
- ``gca_tam_session``: the cached GCA+TAM session's steady-state seconds per frame (CUDA
  events on CUDA) per size and precision, channels-last (the torch engine's default),
  with peak memory;
- ``stm_step``: one STM step (memory-encode of one frame, query-encode, read-decode
  against a full memory) in fp32;
- ``finetune``: online fine-tuning of STM on a keyframe, 500 steps at 512x512 (``--small``:
  1 step at 64x64): seconds and peak memory;
- ``end_to_end``: ``tcvom run --method tcvom`` on a generated 100-frame 1080p shot with
  EXR plates and EXR alpha when OpenImageIO is importable (``--small``: 6 frames at
  96x64); without it (or with ``--in-memory``) the same stages through the API on frames
  in memory, decoded and encoded with OpenCV (EXR where its codec is there, else 16-bit
  PNG), which the JSON says. Frames per second with decode, inference and writing
  overlapped (``tcvom.io.overlap``); fine-tuning off (it has its own section);
- ``cuda_graphs`` and ``compile``: the cached session at 1080p in fp16 replayed from CUDA
  graphs (the torch engine's ``cuda_graphs``) and under ``torch.compile``; skipped with
  the reason on the CPU.

The device (one H200) lacks OpenImageIO, OpenColorIO, PyAV and fileseq: docs/gpu.md says
what to carry and the command to run there.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")  # OpenCV's EXR codec (the in-memory end to end)

SIZES = {"small": (64, 96), "1080p": (1080, 1920), "4k": (2160, 3840)}
ATOL = 5e-5
HALF_TARGET = (2e-2, 1e-3)  # max, mean abs difference in the unknown region


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


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


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
    # on the device beforehand, as the propagator keeps its memory there
    feeds = {g: {k: v.to(device) for k, v in f.items()} for g, f in feeds.items()}
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


def _det_state(reference: Path, kind: str) -> dict:
    sys.path.insert(0, str(reference))
    try:
        import det_weights
    finally:
        sys.path.remove(str(reference))
    if kind == "stm":
        return det_weights.stm_state_dict(str(reference / "stm_state_dict.tsv"), seed=11, scale=0.68)
    return det_weights.gca_state_dict(str(reference / "tcvom_gca_tam_state_dict.tsv"), seed=2024, scale=1.3)


def _stm_probabilities(reference: Path, golden: dict, device: str, autocast: str | None = None) -> dict[int, np.ndarray]:
    """STM probabilities (3 x H x W) of golden frames 1002-1004 from keyframe 1001 (the
    reference's single forward pass, mem_every 5, no cap, no fine-tuning)."""
    from tcvom.io.sources import ArrayFrames
    from tcvom.models.stm import load_stm_model
    from tcvom.propagation.scheduler import KeyframeSchedule
    from tcvom.propagation.stm import StmPropagator

    frames = ArrayFrames(golden["frames"])
    keyframes = {1001: golden["trimaps"][1001]}
    (pass_,) = KeyframeSchedule(frames.frame_numbers, keyframes).passes
    propagator = StmPropagator(load_stm_model(_det_state(reference, "stm"), device=device), device=device,
                               mem_every=5, max_memory=None, finetune_steps=0)
    dev = torch.device(device)
    with torch.autocast(dev.type, dtype=getattr(torch, autocast or "bfloat16"), enabled=autocast is not None):
        probs = dict(propagator.probabilities(frames, keyframes, pass_))
    return {f: probs[f] for f in (1002, 1003, 1004)}


def stm_golden(reference: Path, golden: dict, device: str) -> dict:
    """fp32 (TF32 off) STM probabilities and labels against the reference."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    want = np.load(reference / "golden" / "stm_probs.npy")
    labels = np.load(reference / "golden" / "stm_trimap.npy")
    got = np.stack(list(_stm_probabilities(reference, golden, device).values()))
    top2 = np.sort(want, axis=1)[:, -2:]
    decided = (top2[:, 1] - top2[:, 0]) >= 1e-3
    mine = np.array([0, 128, 255], np.uint8)[got.argmax(axis=1)]
    diff = float(np.abs(got - want).max())
    agree = float((mine[decided] == labels[decided]).mean())
    return {"max_abs": diff, "tolerance": 1e-4, "label_agreement_away_from_ties": agree,
            "ok": diff <= 1e-4 and agree == 1.0}


def stm_half(reference: Path, golden: dict, device: str) -> dict:
    """STM under fp16 / bf16 autocast against fp32: label agreement, largest probability change."""
    fp32 = np.stack(list(_stm_probabilities(reference, golden, device).values()))
    out: dict = {}
    for dtype in ("float16", "bfloat16"):
        try:
            half = np.stack(list(_stm_probabilities(reference, golden, device, dtype).values()))
        except (RuntimeError, NotImplementedError) as exc:  # an operator without this dtype on this device
            out[dtype] = {"skipped": f"{type(exc).__name__}: {str(exc)[:200]}"}
            continue
        out[dtype] = {"label_agreement": float((half.argmax(axis=1) == fp32.argmax(axis=1)).mean()),
                      "max_abs_probability": float(np.abs(half - fp32).max())}
    return out


def _restore_tf32() -> None:
    """torch's defaults (matmul TF32 off, cuDNN TF32 on) for the speed sections."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = True


def finetune_speed(size: int, steps: int, device: str) -> dict:
    """Online fine-tuning of STM (random weights) on one keyframe of a generated frame."""
    from tcvom.data.synthetic import ShotConfig, SyntheticShot
    from tcvom.io.trimap import from_alpha
    from tcvom.models.stm import build_stm
    from tcvom.propagation import finetune

    side = max(size, 64)
    shot = SyntheticShot(ShotConfig(width=side * 3 // 2, height=side + side // 4, frames=1, seed=3))
    rendered = shot.render(0)
    sample = finetune.KeyframeSample(0, rendered.image.astype(np.float32), from_alpha(rendered.alpha, 9))
    model = build_stm().to(device)
    options = finetune.FinetuneOptions(steps=1, crop_size=size, seed=0)
    if device.startswith("cuda"):
        finetune.finetune(model, [sample], options, device=device)  # warm-up (kernels, allocator)
        _sync(device)
        torch.cuda.reset_peak_memory_stats()
    begin = time.perf_counter()
    losses = finetune.finetune(model, [sample], finetune.FinetuneOptions(steps=steps, crop_size=size, seed=1),
                               device=device)
    _sync(device)
    seconds = time.perf_counter() - begin
    return {"steps": steps, "crop": size, "seconds": seconds, "s_per_step": seconds / steps,
            "finite_losses": bool(np.isfinite(losses).all()), "peak_mib": _peak_mib(device)}


def session_variant(size: tuple[int, int], device: str, dtype: str, frames: int, variant: str) -> dict:
    """The cached session replayed from CUDA graphs (``cuda_graphs``, CUDA only) or under
    ``torch.compile``. The TAM takes its static-shape form in both (:mod:`tcvom.models.tam`)."""
    if variant == "cuda_graphs" and not device.startswith("cuda"):
        return {"skipped": f"{variant} needs a CUDA device (this run: {device})"}
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_gca_tam import _model, _shot

    from tcvom.engines.torch_engine import TorchEngine
    from tcvom.matting.gca_session import GcaTamSession

    model = _model().to(device=device, dtype=getattr(torch, dtype)).eval()
    engine = TorchEngine(model, device=device, cuda_graphs=variant == "cuda_graphs")
    if variant == "compile":
        for name, module in engine.modules.items():
            engine.modules[name] = torch.compile(module, dynamic=False)  # type: ignore[assignment]  # an OptimizedModule
    plate, trimaps = _shot(size, count=frames + 3)
    session = GcaTamSession(plate, trimaps, model, device=device, dtype=dtype, engine=engine)
    begin = time.perf_counter()
    session.alpha(0)
    session.alpha(1)  # a second frame: the first replay / the steady-state shapes
    _sync(device)
    first = time.perf_counter() - begin
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    timer = _timer(device)
    times = [timer(lambda f=f: session.alpha(f)) for f in range(2, frames + 2)]
    median = float(np.median(times))
    return {"s_per_frame": median, "frames_per_s": 1 / median, "first_two_frames_s": first,
            "peak_mib": _peak_mib(device)}


# --- end to end ------------------------------------------------------------------------------


def _e2e_files(root: Path, width: int, height: int, frames: int, device: str, reference: Path) -> dict:
    """``tcvom run --method tcvom`` on a generated shot with EXR plates and EXR alpha."""
    from tcvom.cli import main as tcvom_main
    from tcvom.data.example import write_example

    begin = time.perf_counter()
    example = write_example(root / "shot", width=width, height=height, frames=frames)
    generated = time.perf_counter() - begin
    stm, gca = root / "stm_det.pth", root / "gca_tam_det.pth"
    torch.save(_det_state(reference, "stm"), stm)
    torch.save(_det_state(reference, "gca"), gca)
    common = ["--plate", example.plate, "--method", "tcvom", "--weights", str(stm), "--matting-weights", str(gca),
              "--device", device, "--finetune-steps", "0", "--progress", "none", "--no-review"]
    # a first run on 3 frames loads the networks and warms the kernels (as a farm worker is warm)
    first_key = f"{example.first}={Path(example.keyframes).parent / f'key.{example.first}.png'}"
    if tcvom_main(["run", *common, "--keyframes", first_key, "--out", str(root / "warm"), "--shot-range",
                   f"{example.first}-{example.first + 2}"]) != 0:
        raise RuntimeError("the warm-up run failed")
    timings = {}
    for queue in (0, 2):
        begin = time.perf_counter()
        argv = ["run", *common, "--keyframes", example.keyframes, "--out", str(root / f"out{queue}"),
                "--io-queue", str(queue)]
        if tcvom_main(argv) != 0:
            raise RuntimeError(f"tcvom run --io-queue {queue} failed")
        timings[queue] = time.perf_counter() - begin
    return {"io": "EXR files (OpenImageIO): half-float RGB plates, trimap PNGs, half-float alpha EXR, records",
            "command": f"tcvom run --plate PLATE --keyframes KEYS --method tcvom --device {device} "
                       "--finetune-steps 0 --no-review --io-queue 2 (and 0)",
            "frames": frames, "size": f"{width}x{height}", "shot_generation_s": generated,
            "seconds_io_queue_0": timings[0], "seconds_io_queue_2": timings[2],
            "frames_per_s": frames / timings[2], "frames_per_s_sequential_io": frames / timings[0]}


class _EncodedFrames:
    """Frames held encoded in memory, decoded with OpenCV on ``read`` (what a file read
    costs, without a file system): float32 H x W x 3 sRGB in [0, 1]."""

    def __init__(self, encoded: dict[int, bytes], width: int, height: int) -> None:
        self.encoded = encoded
        self.frame_numbers = sorted(encoded)
        self.width, self.height = width, height

    def read(self, frame: int) -> np.ndarray:
        import cv2

        pixels = cv2.imdecode(np.frombuffer(self.encoded[frame], np.uint8), cv2.IMREAD_UNCHANGED)
        scale = 65535.0 if pixels.dtype == np.uint16 else 1.0
        return np.ascontiguousarray(pixels[:, :, ::-1], dtype=np.float32) / np.float32(scale)


def _encode(image: np.ndarray, exr: bool) -> bytes:
    import cv2

    if exr:
        ok, data = cv2.imencode(".exr", np.ascontiguousarray(image, dtype=np.float32),
                                [cv2.IMWRITE_EXR_TYPE, cv2.IMWRITE_EXR_TYPE_HALF])
    else:
        ok, data = cv2.imencode(".png", np.clip(image * 65535 + 0.5, 0, 65535).astype(np.uint16))
    if not ok:
        raise RuntimeError("OpenCV could not encode a frame")
    return data.tobytes()


def _opencv_exr() -> bool:
    try:
        _encode(np.zeros((2, 2, 3), np.float32), exr=True)
        return True
    except Exception:  # OpenCV built without the EXR codec, or it is switched off
        return False


def _e2e_memory(width: int, height: int, frames: int, device: str, reference: Path) -> dict:
    """The two stages of ``tcvom run`` through the API on frames held encoded in memory:
    STM propagation from the keyframes (reading ahead is the session's; STM reads in pass
    order), then the cached GCA+TAM session with ``ReadAhead`` / ``WriteBehind``, each
    alpha encoded in memory."""
    from tcvom.data.synthetic import ShotConfig, SyntheticShot
    from tcvom.io.overlap import ReadAhead, WriteBehind
    from tcvom.io.sources import ArrayFrames
    from tcvom.io.trimap import from_alpha
    from tcvom.matting.gca_session import GcaTamSession, load_matting_model
    from tcvom.models.stm import load_stm_model
    from tcvom.propagation.ensemble import propagate
    from tcvom.propagation.stm import StmPropagator

    exr = _opencv_exr()
    begin = time.perf_counter()
    shot = SyntheticShot(ShotConfig(width=width, height=height, frames=frames, seed=7))
    first = 1001
    plates, keyframes = {}, {}
    keys = sorted({first, first + min(19, frames - 1), first + min(39, frames - 1)})
    for index in range(frames):
        rendered = shot.render(index)
        plates[first + index] = _encode(rendered.image[:, :, ::-1], exr)
        if first + index in keys:
            keyframes[first + index] = from_alpha(rendered.alpha, 9)
    generated = time.perf_counter() - begin
    source = _EncodedFrames(plates, width, height)
    stm_model = load_stm_model(_det_state(reference, "stm"), device=device)
    gca_model = load_matting_model(_det_state(reference, "gca"), device=device)
    sink: dict[int, int] = {}

    def stages(queue: int) -> float:
        sink.clear()
        start = time.perf_counter()
        propagator = StmPropagator(stm_model, device=device, finetune_steps=0)
        with WriteBehind(queue) as behind:
            trimaps = {}
            for item in propagate(propagator, source, keyframes):
                trimaps[item.frame] = item.trimap
                behind.submit(lambda t=item.trimap: _encode(np.repeat(t[:, :, None], 3, axis=2) / 255.0, False))
        plate_in = ReadAhead(source, queue)
        trimaps_in = ReadAhead(ArrayFrames(trimaps), queue)
        session = GcaTamSession(plate_in, trimaps_in, gca_model, device=device)
        order = session.read_order(source.frame_numbers)
        plate_in.start(order)
        trimaps_in.start(order)
        try:
            with WriteBehind(queue) as behind:
                for frame, alpha in session.alphas():
                    behind.submit(lambda f=frame, a=alpha: sink.__setitem__(f, len(_encode(np.dstack([a] * 3), exr))))
        finally:
            plate_in.close()
            trimaps_in.close()
        return time.perf_counter() - start

    stages(2)  # warm-up: kernels, allocator
    timings = {queue: stages(queue) for queue in (0, 2)}
    return {"io": f"in memory (no OpenImageIO here): plates decoded and alphas encoded with OpenCV as "
                  f"{'half-float EXR' if exr else '16-bit PNG (no OpenCV EXR codec)'}; trimaps kept in memory",
            "frames": frames, "size": f"{width}x{height}", "shot_generation_s": generated,
            "alphas_encoded": len(sink), "seconds_io_queue_0": timings[0], "seconds_io_queue_2": timings[2],
            "frames_per_s": frames / timings[2], "frames_per_s_sequential_io": frames / timings[0]}


def end_to_end(small: bool, device: str, reference: Path, in_memory: bool) -> dict:
    import tempfile

    width, height, frames = (96, 64, 6) if small else (1920, 1080, 100)
    has_oiio = True
    try:
        import OpenImageIO  # noqa: F401
        import PyOpenColorIO  # noqa: F401
    except ImportError:
        has_oiio = False
    with tempfile.TemporaryDirectory(prefix="tcvom-gpu-check-") as tmp:
        if has_oiio and not in_memory:
            return _e2e_files(Path(tmp), width, height, frames, device, reference)
        return _e2e_memory(width, height, frames, device, reference)


# --- the run ---------------------------------------------------------------------------------

SECTIONS = ("correctness", "half_precision", "stm_golden", "stm_half", "gca_tam_session", "stm_step", "finetune",
            "end_to_end", "cuda_graphs", "compile")
ESTIMATE_S = {  # on one H200, full sizes, from the FLOPs (docs/gpu.md); --budget-s skips by these
    "correctness": 15, "half_precision": 5, "stm_golden": 5, "stm_half": 5, "gca_tam_session": 45,
    "stm_step": 10, "finetune": 40, "end_to_end": 90, "cuda_graphs": 15, "compile": 120,
}


def run(out: Path, device: str, small: bool, reference: str | None = None, *, sections: tuple[str, ...] = SECTIONS,
        budget_s: float | None = None, in_memory: bool = False) -> dict:
    import traceback

    from tcvom.models.devices import resolve_device

    started = time.perf_counter()
    resolve_device(device)
    ref = _reference_dir(reference)
    golden = _golden(ref)
    results: dict = {"device": torch.cuda.get_device_name(device) if device.startswith("cuda") else f"cpu "
                     f"({torch.get_num_threads()} threads)", "torch": torch.__version__, "small": small,
                     "budget_s": budget_s, "skipped": {}, "failed": {}}
    sizes = ["small"] if small else ["1080p", "4k"]
    dtypes = ["float32"]
    if device.startswith("cuda"):
        dtypes += ["float16", "bfloat16"]
    elif small:
        dtypes += ["bfloat16"]
    frames = 2 if small else 10
    variant_size, variant_dtype = (SIZES["small"], "float32") if small else (SIZES["1080p"], "float16")
    jobs: dict[str, Callable[[], object]] = {
        "correctness": lambda: correctness(golden, device),
        "half_precision": lambda: half_precision(golden, device),
        "stm_golden": lambda: stm_golden(ref, golden, device),
        "stm_half": lambda: stm_half(ref, golden, device),
        "gca_tam_session": lambda: {f"{s}/{d}": session_speed(SIZES[s], device, d, frames)
                                    for s in sizes for d in dtypes},
        "stm_step": lambda: stm_step(SIZES["small"] if small else SIZES["1080p"], device, memory=2 if small else 9,
                                     repeat=2 if small else 10),
        "finetune": lambda: finetune_speed(64 if small else 512, 1 if small else 500, device),
        "end_to_end": lambda: end_to_end(small, device, ref, in_memory),
        "cuda_graphs": lambda: session_variant(variant_size, device, variant_dtype, frames, "cuda_graphs"),
        "compile": lambda: (session_variant(variant_size, device, variant_dtype, frames, "compile")
                            if device.startswith("cuda") else {"skipped": "compile is timed on CUDA only "
                                                               f"(minutes of compilation; this run: {device})"}),
    }
    out.mkdir(parents=True, exist_ok=True)
    for name in SECTIONS:
        if name not in sections:
            continue
        elapsed = time.perf_counter() - started
        if budget_s is not None and elapsed + (0 if small else ESTIMATE_S[name]) > budget_s:
            results["skipped"][name] = f"budget: {elapsed:.0f} s spent, about {ESTIMATE_S[name]} s more needed"
            (out / "gpu_check.json").write_text(json.dumps(results, indent=1))
            continue
        if name not in ("correctness", "stm_golden"):
            _restore_tf32()
        begin = time.perf_counter()
        try:
            results[name] = jobs[name]()
        except Exception as exc:  # one failed section must not lose the others' figures
            results["failed"][name] = "".join(traceback.format_exception(exc))[-3000:]
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
        results.setdefault("section_s", {})[name] = round(time.perf_counter() - begin, 2)
        results["total_s"] = round(time.perf_counter() - started, 2)
        (out / "gpu_check.json").write_text(json.dumps(results, indent=1))  # what is done survives a kill
    return results


def table(results: dict) -> str:
    rows = [f"device: {results['device']}, torch {results['torch']}", "| check | figure | ok |", "|---|---|---|"]
    for name, r in results.get("correctness", {}).items():
        rows.append(f"| {name} fp32 vs golden | max {r['max_abs']:.2e} (tol {r['tolerance']:g}) | {r['ok']} |")
    for name, r in results.get("half_precision", {}).items():
        rows.append(f"| {name} vs fp32, unknown | max {r['max_abs']:.2e}, mean {r['mean_abs']:.2e} | {r['ok']} |")
    if "stm_golden" in results:
        r = results["stm_golden"]
        rows.append(f"| STM fp32 vs golden | max {r['max_abs']:.2e} (tol {r['tolerance']:g}), labels "
                    f"{r['label_agreement_away_from_ties']:.4f} | {r['ok']} |")
    for name, r in results.get("stm_half", {}).items():
        figure = r.get("skipped") or (f"label agreement {r['label_agreement']:.4f}, "
                                      f"max prob diff {r['max_abs_probability']:.2e}")
        rows.append(f"| STM {name} vs fp32 | {figure} | |")
    for name, r in results.get("gca_tam_session", {}).items():
        rows.append(f"| GCA+TAM cached {name} | {r['s_per_frame']:.3f} s/frame, {r['frames_per_s']:.2f} fps, "
                    f"peak {r['peak_mib']:.0f} MiB | |")
    if "stm_step" in results:
        r = results["stm_step"]
        rows.append(f"| STM step, {r['memory_frames']} memory frames | {r['s_per_step']:.3f} s, "
                    f"peak {r['peak_mib']:.0f} MiB | |")
    if "finetune" in results:
        r = results["finetune"]
        rows.append(f"| STM fine-tuning {r['steps']} steps at {r['crop']}x{r['crop']} | {r['seconds']:.1f} s, "
                    f"peak {r['peak_mib']:.0f} MiB | {r['finite_losses']} |")
    if "end_to_end" in results:
        r = results["end_to_end"]
        rows.append(f"| end to end {r['frames']} frames {r['size']} | {r['frames_per_s']:.2f} fps overlapped I/O, "
                    f"{r['frames_per_s_sequential_io']:.2f} fps sequential ({r['io']}) | |")
    for name in ("cuda_graphs", "compile"):
        if name in results:
            r = results[name]
            figure = r.get("skipped") or f"{r['s_per_frame']:.4f} s/frame, {r['frames_per_s']:.1f} fps"
            rows.append(f"| GCA+TAM cached, {name} | {figure} | |")
    for name, why in results["skipped"].items():
        rows.append(f"| {name} | skipped: {why} | |")
    for name, error in results["failed"].items():
        rows.append(f"| {name} | FAILED: {error.strip().splitlines()[-1]} | False |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for gpu_check.json")
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument("--small", action="store_true", help="tiny sizes (the test suite's run)")
    parser.add_argument("--reference", help="shared/reference folder (default: ../shared/reference beside the repo)")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="the sections to run")
    parser.add_argument("--budget-s", type=float, default=None,
                        help="skip the sections that would end past this many seconds (estimates: ESTIMATE_S)")
    parser.add_argument("--in-memory", action="store_true",
                        help="end to end on frames in memory even where OpenImageIO is importable")
    args = parser.parse_args(argv)
    results = run(Path(args.out), args.device, args.small, args.reference, sections=tuple(args.sections),
                  budget_s=args.budget_s, in_memory=args.in_memory)
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
