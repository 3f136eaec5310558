"""Seconds per step of STM trimap propagation: tcvom's path against the reference computation.

Random weights (speed does not depend on them), CPU by default. Two measurements:

- **step** (default): one propagation step in steady state — memorise the previous frame
  with its soft probabilities, read a memory of ``--memory`` frames (``--memory - 1``
  kept frames plus that previous frame), decode — for each variant, interleaved step by
  step in one run so that the machine's load hits all alike. Variants:

  - ``official``: the computation the reference code does each step (STM's
    ``Run_video``, TGM's ``test_mf_2.py``; ``shared/reference/STM_NOTES.md`` sections 5-7),
    re-stated here because the reference is not shipped: the unfolded network in NCHW,
    the previous frame memorised as a batch of N object copies (conv1 on each copy), the
    memory concatenated along T, one affinity matrix for the whole read (softmax over the
    memory axis), and the decoder on ``cat([read-out, query value])`` and on N copies of
    the query's skip features (convFM and the skip branches computed once per object),
    with a new tensor for every ReLU and residual add;
  - ``torch``: tcvom's path through the torch engine with its defaults (the STM
    propagator's ``_memorize`` / ``_segment``, the memory bank's read);
  - ``torch_nofold``, ``torch_channels_last``: the same without BatchNorm folding / with
    channels-last convolutions;
  - ``onnxruntime``: the same path through the ONNX Runtime engine (the ``onnx`` extra).

  Printed: seconds per step (median), each variant's speed-up over ``official`` and the
  largest difference of its class probabilities from ``official``'s. ``--isolate`` runs
  each variant in its own process, still interleaved step by step: in one process the
  reference's large allocations (a whole-memory affinity of N x T*h*w x h*w floats) were
  measured to slow the variant run after them by about 10 %.
- **propagation** (``--propagation``): :class:`tcvom.propagation.stm.StmPropagator` over
  a synthetic shot from one keyframe (frames made in memory), averaged over the frames
  after the first two.

Usage::

    python benchmarks/bench_stm.py --threads 2 --steps 3 --variants official torch onnxruntime
    python benchmarks/bench_stm.py --threads 2 --steps 6 --isolate --variants official torch
    python benchmarks/bench_stm.py --propagation --frames 8
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F
from isolated import (  # the same folder: benchmarks are run as scripts
    Isolated,
    Run,
    base_variant,
    check_variants,
    facts,
    runs_as_tcvom,
)

from tcvom.models.stm import STM, Decoder, MemoryEncoder, Refine, ResBlock, build_stm
from tcvom.propagation.scheduler import KeyframeSchedule
from tcvom.propagation.stm import (
    DEFAULT_MAX_MEMORY,
    DEFAULT_MEM_EVERY,
    MemoryBank,
    StmPropagator,
    padded_size,
    prepare_frame,
)

VARIANTS = ("official", "torch", "torch_nofold", "torch_channels_last", "onnxruntime", "torch_system_malloc")


def _tcvom_process(name: str) -> bool:
    return runs_as_tcvom(name, "official")


class SyntheticFrames:
    def __init__(self, height: int, width: int) -> None:
        rng = np.random.default_rng(0)
        self.base = rng.random((height, width, 3), dtype=np.float32)

    def read(self, frame: int) -> np.ndarray:
        return np.roll(self.base, frame, axis=1)


# --- the reference computation (STM_NOTES.md sections 3-6), for timing only ---------------
# tcvom's modules compute the same sums in fewer steps (the memory encoder's conv1 once per
# frame, the query half of the decoder's convFM once, in-place ReLUs and residual adds, a
# query-major affinity). The reference forwards are re-stated below on tcvom's parameters,
# so that this variant does the work the reference code does. The ResNet stages are
# tcvom's: their in-place residual add is torchvision's own (``out += identity``).

def official_resblock(block: ResBlock, x: torch.Tensor) -> torch.Tensor:
    """STM's ResBlock: ``x + conv2(relu(conv1(relu(x))))``, each step a new tensor."""
    r = block.conv1(F.relu(x))
    r = block.conv2(F.relu(r))
    return x + r


def official_refine(refine: Refine, f: torch.Tensor, pm: torch.Tensor) -> torch.Tensor:
    """STM's Refine: ``ResMM(ResFS(convFS(f)) + upsample x2 (pm))``."""
    s = official_resblock(refine.ResFS, refine.convFS(f))
    m = s + F.interpolate(pm, scale_factor=2.0, mode="bilinear", align_corners=False)
    return official_resblock(refine.ResMM, m)


def official_decoder(decoder: Decoder, r4: torch.Tensor, r3: torch.Tensor, r2: torch.Tensor) -> torch.Tensor:
    """STM's Decoder on ``cat([read-out, query value])`` N x 1024 x h x w and N copies of r3, r2."""
    m4 = official_resblock(decoder.ResMM, decoder.convFM(r4))
    m3 = official_refine(decoder.RF3, r3, m4)
    m2 = official_refine(decoder.RF2, r2, m3)
    p2 = decoder.pred2(F.relu(m2))
    return F.interpolate(p2, scale_factor=4.0, mode="bilinear", align_corners=False)


def official_memory_encoder(encoder: MemoryEncoder, frames: torch.Tensor, masks: torch.Tensor,
                            others: torch.Tensor) -> torch.Tensor:
    """STM's Encoder_M on B frame copies: ``conv1(f) + conv1_m(m) + conv1_o(o)``, then the stages."""
    stem = encoder.conv1(encoder.normalise(frames)) + encoder.conv1_m(masks) + encoder.conv1_o(others)
    return encoder.stages(stem)[0]


def official_memorize(model: STM, frame: torch.Tensor, probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """STM's ``memorize`` of one frame: the frame repeated once per object, each copy with
    its object's mask and the clamped sum of the others -> key N x 128 x 1 x h x w, value
    N x 512 x 1 x h x w."""
    n = model.num_objects
    frames, masks, others = [], [], []
    for o in range(1, n + 1):
        frames.append(frame)
        masks.append(probs[:, o : o + 1])
        others.append((probs[:, 1:o].sum(1, keepdim=True) + probs[:, o + 1 : n + 1].sum(1, keepdim=True)).clamp(0, 1))
    r4 = official_memory_encoder(model.Encoder_M, torch.cat(frames), torch.cat(masks), torch.cat(others))
    key, value = model.KV_M_r4(r4)
    return key.unsqueeze(2), value.unsqueeze(2)


def official_segment(model: STM, frame: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """STM's ``segment``: query encoder, the space-time read as one matrix product over the
    whole memory, the decoder on N copies of the query features -> log-odds 1 x K x H x W."""
    n = model.num_objects
    r4, r3, r2 = model.Encoder_Q(frame)
    k4, v4 = model.KV_Q_r4(r4)
    k4e, v4e, r3e, r2e = (t.expand(n, -1, -1, -1) for t in (k4, v4, r3, r2))
    b, ck, t, h, w = keys.shape
    mi = keys.reshape(b, ck, t * h * w).transpose(1, 2)
    p = F.softmax(torch.bmm(mi, k4e.reshape(b, ck, h * w)) / math.sqrt(ck), dim=1)
    mem = torch.bmm(values.reshape(b, values.shape[1], t * h * w), p).reshape(b, -1, h, w)
    logits = official_decoder(model.Decoder, torch.cat([mem, v4e], dim=1), r3e, r2e)
    ps = F.softmax(logits, dim=1)[:, 1]
    background = torch.prod(1 - ps, dim=0, keepdim=True)
    em = torch.cat([background, ps], dim=0).clamp(1e-7, 1 - 1e-7)
    return torch.log(em / (1 - em)).unsqueeze(0)


# --- the step benchmark ---------------------------------------------------------------

class _Step:
    """One variant: a memory of ``memory - 1`` kept frames, then steps."""

    def __init__(self, name: str, model: STM, frames: list[torch.Tensor], probs: list[torch.Tensor], threads: int) -> None:
        self.name = name
        self.official = name == "official"
        if self.official:
            self.model = copy.deepcopy(model).eval()
            with torch.inference_mode():
                parts = [official_memorize(self.model, f, p) for f, p in zip(frames, probs, strict=True)]
            self.keys = torch.cat([k for k, _ in parts], dim=2)
            self.values = torch.cat([v for _, v in parts], dim=2)
            return
        if name == "onnxruntime":
            from tcvom.engines.onnxruntime_engine import OnnxRuntimeEngine
            from tcvom.export import export_network

            folder = tempfile.mkdtemp(prefix="tcvom-bench-stm-")
            engine = OnnxRuntimeEngine(export_network(copy.deepcopy(model), folder, parity=False), threads=threads)
        else:
            from tcvom.engines.torch_engine import TorchEngine

            options = {"fold_bn": False} if name == "torch_nofold" else {}
            if name == "torch_channels_last":
                options["channels_last"] = True
            engine = TorchEngine(copy.deepcopy(model), **options)
        self.propagator = StmPropagator(model, engine=engine)
        engine.begin_shot(*frames[0].shape[-2:])
        with torch.inference_mode():
            key, value = self.propagator._memorize(torch.cat(frames), torch.cat(probs))
        self.bank = MemoryBank(tuple(range(len(frames))), key, value, None)

    @torch.inference_mode()
    def step(self, previous: torch.Tensor, previous_probs: torch.Tensor, frame: torch.Tensor) -> torch.Tensor:
        """Class probabilities 1 x K x H x W of ``frame``."""
        if self.official:
            pkey, pvalue = official_memorize(self.model, previous, previous_probs)
            keys = torch.cat([self.keys, pkey], dim=2)
            values = torch.cat([self.values, pvalue], dim=2)
            return F.softmax(official_segment(self.model, frame, keys, values), dim=1)
        pkey, pvalue = self.propagator._memorize(previous, previous_probs)
        _, keys, values = self.bank.read((-1, pkey, pvalue))
        return F.softmax(self.propagator._segment(frame, keys, values), dim=1)


def _soft(hp: int, wp: int, seed: int) -> torch.Tensor:
    """Soft class probabilities 1 x 3 x hp x wp, the same for a seed in every process."""
    generator = torch.Generator().manual_seed(seed)
    return torch.softmax(4 * torch.randn(1, 3, hp, wp, generator=generator), dim=1)


class _Case:
    """The shot every variant steps through: ``memory - 1`` kept frames, then step ``s``'s
    previous frame (with its probabilities) and query frame, the same in every process."""

    def __init__(self, height: int, width: int, memory: int) -> None:
        self.source = SyntheticFrames(height, width)
        self.memory = memory
        self.hp, self.wp = padded_size(height, width)
        self.kept = [prepare_frame(self.source.read(i)) for i in range(memory - 1)]
        self.kept_probs = [_soft(self.hp, self.wp, i) for i in range(memory - 1)]

    def step_inputs(self, s: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        read = self.source.read
        return (prepare_frame(read(self.memory + s)), _soft(self.hp, self.wp, 1000 + s),
                prepare_frame(read(self.memory + s + 1)))

    def runner(self, name: str, threads: int) -> _Step:
        torch.manual_seed(0)
        return _Step(name, build_stm(), self.kept, self.kept_probs, threads)


def _timed(runner: _Step, case: _Case, s: int) -> tuple[float, np.ndarray]:
    inputs = case.step_inputs(s)
    start = time.perf_counter()
    probs = runner.step(*inputs)
    return time.perf_counter() - start, probs.numpy()


def _stepper(name: str, height: int, width: int, memory: int, threads: int) -> Run:
    """``--isolate``: build one variant in its (spawned) process; returns its ``run(s)``."""
    torch.set_num_threads(threads)
    case = _Case(height, width, memory)
    runner = case.runner(base_variant(name), threads)
    return lambda s: _timed(runner, case, s)


def step_benchmark(height: int, width: int, memory: int, steps: int, variants: list[str], threads: int,
                   isolate: bool = False) -> dict:
    """Seconds per step of each variant, interleaved step by step; ratios to ``official``.

    ``isolate``: each variant runs in its own process (still interleaved), so that one
    variant's large allocations (the reference's whole-memory affinity) cannot slow the
    next one down through the shared heap and caches; tcvom's variants then run with the
    ``tcvom`` command's allocator setting, ``official`` and ``*_system_malloc`` without.
    """
    case = _Case(height, width, memory)
    check_variants(variants, isolate)
    if isolate:
        isolated = [Isolated(name, _stepper, name, height, width, memory, threads, tcvom_process=_tcvom_process(name))
                    for name in variants]
        runs = {p.name: p.run for p in isolated}
    else:
        isolated = []
        runners = {name: case.runner(name, threads) for name in variants}
        runs = {name: (lambda s, r=runner: _timed(r, case, s)) for name, runner in runners.items()}
    times: dict[str, list[float]] = {name: [] for name in variants}
    diffs: dict[str, float] = {name: 0.0 for name in variants}
    try:
        for s in range(steps + 1):  # step 0 warms up (first-run allocations, oneDNN primitives)
            out: dict[str, np.ndarray] = {}
            for name, run in runs.items():
                seconds, out[name] = run(s)
                if s:
                    times[name].append(seconds)
            reference = out.get("official", out[variants[0]])
            for name, probs in out.items():
                diffs[name] = max(diffs[name], float(np.abs(probs - reference).max()))
            if s:
                print(f"step {s}", {k: round(v[-1], 3) for k, v in times.items()}, flush=True)
    finally:
        peaks = {p.name: round(p.close()) for p in isolated}
    median = {name: float(np.median(t)) for name, t in times.items()}
    result: dict[str, object] = {
        "size": f"{width}x{height} (padded {case.wp}x{case.hp})",
        "memory_frames": memory,
        "threads": threads,
        **facts(list(variants), isolate, _tcvom_process, peaks),
        "seconds": median,
        "all_seconds": times,
        "max_abs_prob_diff_vs_first": diffs,
    }
    if "official" in median:
        result["speedup_over_official"] = {name: median["official"] / t for name, t in median.items()}
    return result


def propagation_benchmark(height: int, width: int, frames_count: int, mem_every: int, max_memory: int, device: str) -> float:
    """Mean seconds per frame of a propagator pass over a synthetic shot."""
    torch.manual_seed(0)
    model = build_stm().to(device)
    frames = SyntheticFrames(height, width)
    trimap = np.zeros((height, width), np.uint8)
    trimap[height // 4 : height // 2, width // 4 : width // 2] = 255
    trimap[height // 2 : height // 2 + 20, width // 4 : width // 2] = 128
    (pass_,) = KeyframeSchedule(range(0, frames_count + 1), [0]).passes
    propagator = StmPropagator(model, device=device, mem_every=mem_every, max_memory=max_memory)
    stamps = []
    for _ in propagator.run_pass(frames, {0: trimap}, pass_):
        stamps.append(time.perf_counter())
    per_frame = np.diff(stamps)[1:]  # from frame 2 on (frame 1 has no previous-frame memorisation)
    print(f"propagation: {per_frame.mean():.2f} s/frame (min {per_frame.min():.2f}, {len(per_frame)} frames)")
    return float(per_frame.mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--height", type=int, default=540)
    parser.add_argument("--width", type=int, default=960)
    parser.add_argument("--threads", type=int, default=0, help="torch / ONNX Runtime threads (0: torch default)")
    parser.add_argument("--memory", type=int, default=5, help="memory frames read per step (previous frame included)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per variant (after one warm-up)")
    parser.add_argument("--variants", nargs="+", default=["official", "torch"], choices=VARIANTS)
    parser.add_argument("--propagation", action="store_true", help="time a propagator pass instead")
    parser.add_argument("--frames", type=int, default=8, help="frames to propagate (--propagation)")
    parser.add_argument("--mem-every", type=int, default=DEFAULT_MEM_EVERY)
    parser.add_argument("--max-memory", type=int, default=DEFAULT_MAX_MEMORY)
    parser.add_argument("--device", default="cpu", help="device of --propagation")
    parser.add_argument("--isolate", action="store_true",
                        help="run each variant in its own process (still interleaved step by step)")
    parser.add_argument("--out", help="also write the step results to this JSON file")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory < 1:
        parser.error("--memory must be at least 1")
    if args.propagation:
        propagation_benchmark(args.height, args.width, args.frames, args.mem_every, args.max_memory, args.device)
        return 0
    result = step_benchmark(args.height, args.width, args.memory, args.steps, args.variants,
                            torch.get_num_threads(), isolate=args.isolate)
    print(json.dumps(result, indent=1))
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(result, handle, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
