"""The STM trimap propagator: keyframe trimaps carried through a shot by STM.

TCVOM's trimap generation module (Zhang et al., ACM MM 2021, section 3.4; reference
code TCVOM-TGM ``test_mf_2.py``) tracks background / unknown / foreground as STM
objects. One :meth:`StmPropagator.run_pass` call runs one pass of a
:class:`tcvom.propagation.scheduler.KeyframeSchedule` and yields the reference's uint8
class probabilities; the ensemble driver combines the passes.

Memory schedule within a pass (position i = 0, 1, ... in the pass; see
``shared/reference/STM_NOTES.md`` section 7):

- i = 0: the pass's keyframe; its result is its own one-hot trimap (x 255).
- i = 1: memory = the fixed memory (the pass's ``memory_keyframes``, memorised with
  their one-hot trimaps).
- i >= 2: the previous frame, memorised with its soft probabilities, is added for this
  step only.
- After frame i, when i - 1 is a multiple of ``mem_every``, the memory used for it
  (fixed + kept + previous frame) is kept.
- ``max_memory`` caps the non-keyframe memory frames of a step (kept + previous): when
  the kept frames reach it, the oldest is evicted (the reference's ``--max_memory``).
  The reference default is no cap; tcvom's default :data:`DEFAULT_MAX_MEMORY` = 8 keeps
  time and memory per frame bounded on long shots (a step reads at most
  ``len(memory_keyframes) + 8`` frames) and equals the reference for the first
  ``5 * 8 = 40`` frames of a pass with the default ``mem_every = 5``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from tcvom.errors import FrameSizeError, InputError
from tcvom.io.sources import FrameReader
from tcvom.io.trimap import check_classified, one_hot
from tcvom.models.stm import IMAGENET_MEAN, IMAGENET_STD, STM
from tcvom.progress import ProgressMode
from tcvom.propagation import check_finetune_backend
from tcvom.propagation.scheduler import Pass

if TYPE_CHECKING:
    from tcvom.engines.base import Engine

DEFAULT_MEM_EVERY = 5
DEFAULT_MAX_MEMORY = 8
PAD_MULTIPLE = 32

_MEAN64 = np.array(IMAGENET_MEAN, dtype=np.float64)
_STD64 = np.array(IMAGENET_STD, dtype=np.float64)


def padded_size(height: int, width: int) -> tuple[int, int]:
    """The reference's padded size: each side rounded up to a multiple of 32."""
    return (-(-height // PAD_MULTIPLE) * PAD_MULTIPLE, -(-width // PAD_MULTIPLE) * PAD_MULTIPLE)


def _reflect_pad(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Mirror (without repeating the edge) at the bottom and right up to ``height x width``."""
    ph, pw = height - array.shape[0], width - array.shape[1]
    pads = ((0, ph), (0, pw)) + ((0, 0),) * (array.ndim - 2)
    return np.pad(array, pads, mode="reflect")


def prepare_frame(rgb: np.ndarray) -> torch.Tensor:
    """float32 H x W x 3 sRGB in [0, 1] (RGB) -> the reference's network input 1 x 3 x Hp x Wp.

    Reproduces TGM's inference preprocessing, quirks included, so the published weights
    see what they were used with (checked against the golden): the reference reads
    frames with OpenCV and never flips them, so the network gets **BGR**; it subtracts
    the RGB-ordered ImageNet mean/std from those BGR channels in float64, and the
    encoders normalise a second time. Then reflect padding at the bottom and right to
    a multiple of 32 (Hp, Wp), cast to float32.
    """
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    normalised = (bgr - _MEAN64) / _STD64
    padded = _reflect_pad(normalised, *padded_size(*rgb.shape[:2]))
    return torch.from_numpy(padded.transpose(2, 0, 1).astype(np.float32))[None]


def check_trimap(trimap: np.ndarray, frame: int, shape: tuple[int, int]) -> np.ndarray:
    """A keyframe trimap as uint8 H x W with only 0 / 128 / 255, or an InputError."""
    return check_classified(trimap, shape, frame=frame, what="keyframe trimap")


def prepare_trimap(trimap: np.ndarray) -> torch.Tensor:
    """uint8 H x W trimap -> one-hot 1 x 3 x Hp x Wp [bg, unknown, fg], reflect-padded."""
    padded = _reflect_pad(one_hot(trimap, axis=-1), *padded_size(*trimap.shape))
    return torch.from_numpy(np.ascontiguousarray(padded.transpose(2, 0, 1)))[None]


class MemoryBank:
    """The memory of one pass: fixed keyframe entries plus kept frames, with eviction.

    Keys are N x 128 x T x h x w and values N x 512 x T x h x w (T along dim 2). The
    kept (non-keyframe) frames are evicted oldest first so that a step never reads more
    than ``max_memory`` of them, the previous frame included.
    """

    def __init__(
        self,
        frames: tuple[int, ...],
        key: torch.Tensor,
        value: torch.Tensor,
        max_memory: int | None,
    ) -> None:
        if max_memory is not None and max_memory < 1:
            raise InputError(
                f"max_memory must be at least 1 (or None for no cap), not {max_memory}"
            )
        self.fixed_frames = frames
        self.fixed_key = key
        self.fixed_value = value
        self.max_memory = max_memory
        self.kept: list[tuple[int, torch.Tensor, torch.Tensor]] = []

    @property
    def frames(self) -> tuple[int, ...]:
        """Frame numbers in permanent memory, in memory order (keyframes first)."""
        return self.fixed_frames + tuple(f for f, _, _ in self.kept)

    def read(
        self, extra: tuple[int, torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[tuple[int, ...], torch.Tensor, torch.Tensor]:
        """(frames, key, value) of the permanent memory plus an optional temporary entry."""
        entries = [*self.kept, extra] if extra is not None else self.kept
        frames = self.fixed_frames + tuple(f for f, _, _ in entries)
        key = torch.cat([self.fixed_key, *(k for _, k, _ in entries)], dim=2)
        value = torch.cat([self.fixed_value, *(v for _, _, v in entries)], dim=2)
        return frames, key, value

    def keep(self, entry: tuple[int, torch.Tensor, torch.Tensor]) -> None:
        """Keep ``(frame, key, value)`` permanently, evicting the oldest kept frame at the cap."""
        self.kept.append(entry)
        if self.max_memory is not None and len(self.kept) >= self.max_memory:
            self.kept.pop(0)


class StmPropagator:
    """Propagates keyframe trimaps with an STM network, one schedule pass at a time.

    ``model`` is an :class:`tcvom.models.stm.STM` with its weights (see
    :func:`tcvom.models.stm.load_stm_model`), moved to ``device``; its weights never change: fine-tuning works on
    a copy. ``mem_every`` and ``max_memory`` set the memory schedule (module docstring).
    ``finetune_steps`` > 0 fine-tunes on the keyframes before the first pass
    (:mod:`tcvom.propagation.finetune`, reference: 500 on a GPU; 0 for a quick preview),
    with ``finetune_lr``, ``finetune_size`` (square crop side) and ``seed``, either per
    pass on the keyframes that seed its memory (``finetune_scope="segment"``, the default:
    a keyframe edit changes only the segments it bounds) or once on every keyframe of the
    shot (``"shot"``: an edit changes every frame); the result is cached under
    ``cache_dir`` when given, keyed by the weights, the keyframes and the options.
    ``engine`` runs the three STM graphs (:mod:`tcvom.engines`; default: the torch engine
    on the model, rebuilt on the fine-tuned copy); an engine of another back-end runs
    fixed exported weights, so it needs ``finetune_steps=0``.
    """

    def __init__(
        self,
        model: STM,
        *,
        device: str | torch.device = "cpu",
        mem_every: int = DEFAULT_MEM_EVERY,
        max_memory: int | None = DEFAULT_MAX_MEMORY,
        finetune_steps: int = 0,
        finetune_lr: float = 1e-6,
        finetune_size: int = 512,
        seed: int = 0,
        finetune_scope: str = "segment",
        cache_dir: str | Path | None = None,
        progress: ProgressMode = "none",
        engine: Engine | None = None,
    ) -> None:
        if mem_every < 1:
            raise InputError(f"mem_every must be at least 1, not {mem_every}")
        if max_memory is not None and max_memory < 1:
            raise InputError(
                f"max_memory must be at least 1 (or None for no cap), not {max_memory}"
            )
        if finetune_steps < 0:
            raise InputError(f"finetune_steps must be 0 or more, not {finetune_steps}")
        if finetune_scope not in ("segment", "shot"):
            raise InputError(f"finetune_scope must be 'segment' or 'shot', not {finetune_scope!r}")
        if engine is not None and engine.network != "stm":
            raise InputError(f"the engine runs the {engine.network} network, not STM")
        if engine is not None:
            check_finetune_backend(engine.backend, finetune_steps)
        self.device = torch.device(device)
        self.base_model = model
        self.model = model.to(self.device).eval()
        self.engine = engine if engine is not None else self._torch_engine(self.model)
        self.mem_every = mem_every
        self.max_memory = max_memory
        self.finetune_steps = finetune_steps
        self.finetune_lr = finetune_lr
        self.finetune_size = finetune_size
        self.seed = seed
        self.finetune_scope = finetune_scope
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.progress = progress
        self._tuned_for: str | None = None
        self._base_sha256: str | None = None
        self.last_memory: tuple[int, ...] = ()
        """Frame numbers the last segmented frame read from memory (for tests and logs)."""

    @property
    def tuned_key(self) -> str | None:
        """The cache key of the fine-tuned weights in use (None: the base weights); the
        file is :func:`tcvom.propagation.finetune.cache_path` of it."""
        return self._tuned_for

    def prepare(self, frames: FrameReader, keyframes: Mapping[int, np.ndarray]) -> None:
        """Fine-tune on ``keyframes`` now (a no-op when ``finetune_steps`` is 0 or the
        model is already tuned for these keyframes). :meth:`run_pass` calls it."""
        if self.finetune_steps == 0:
            return
        from tcvom.propagation import finetune

        samples = finetune.keyframe_samples(frames, keyframes)
        options = finetune.FinetuneOptions(
            steps=self.finetune_steps,
            lr=self.finetune_lr,
            crop_size=self.finetune_size,
            seed=self.seed,
        )
        if self._base_sha256 is None:  # the base weights never change: hash them once
            from tcvom.io.hashing import state_sha256

            self._base_sha256 = state_sha256(self.base_model)
        key = finetune.cache_key(self.base_model, samples, options, base_sha256=self._base_sha256)
        if key == self._tuned_for:
            return
        tuned = copy.deepcopy(self.base_model).to(self.device)
        finetune.finetune_cached(
            tuned,
            samples,
            options,
            key=key,
            cache_dir=self.cache_dir,
            device=self.device,
            progress=self.progress,
        )
        self.model = tuned.eval()
        self.engine = self._torch_engine(self.model)
        self._tuned_for = key

    def _torch_engine(self, model: STM) -> Engine:
        from tcvom.engines.torch_engine import TorchEngine

        return TorchEngine(model, device=self.device)

    def _memorize(self, frames: torch.Tensor, probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.engine.infer("memory_encode", {"frames": frames, "probs": probs})
        return out["key"], out["value"]

    def _segment(self, frame: torch.Tensor, mem_key: torch.Tensor, mem_value: torch.Tensor) -> torch.Tensor:
        """Log-odds 1 x 3 x Hp x Wp of ``frame`` against a memory."""
        q = self.engine.infer("query_encode", {"frame": frame})
        feed = {"mem_key": mem_key, "mem_value": mem_value, "q_key": q["key"], "q_value": q["value"],
                "r3": q["r3"], "r2": q["r2"]}
        return self.engine.infer("read_decode", feed)["logits"]

    def read_order(self, keyframes: Mapping[int, np.ndarray], pass_: Pass) -> list[int]:
        """The plate frames :meth:`run_pass` reads, in the order it reads them (for
        :class:`~tcvom.io.overlap.ReadAhead`): the keyframes it fine-tunes on (to key the
        tuned weights, even when they are cached), those that seed its memory, then the
        pass's other frames."""
        seeds: list[int] = []
        if self.finetune_steps > 0:
            seeds = sorted(keyframes if self.finetune_scope == "shot" else pass_.memory_keyframes)
        return [*seeds, *pass_.memory_keyframes, *pass_.frames[1:]]

    def run_pass(
        self, frames: FrameReader, keyframes: Mapping[int, np.ndarray], pass_: Pass
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(frame, probs)`` for every frame of ``pass_.frames`` in order.

        ``frames.read(f)`` gives float32 H x W x 3 sRGB in [0, 1]; ``keyframes`` maps
        frame -> uint8 H x W trimap (0/128/255) and must hold the pass's
        ``memory_keyframes``. ``probs`` is uint8 3 x H x W (bg, unknown, fg),
        ``uint8(255 * p)`` (truncation, as the reference writes and ensembles them); the
        pass's keyframe yields its own one-hot x 255.
        """
        for frame, probs in self._propagate(frames, keyframes, pass_):
            yield frame, (probs * np.float32(255)).astype(np.uint8)

    def probabilities(
        self, frames: FrameReader, keyframes: Mapping[int, np.ndarray], pass_: Pass
    ) -> Iterator[tuple[int, np.ndarray]]:
        """As :meth:`run_pass`, with float32 3 x H x W probabilities in [0, 1] (for review
        output and tests)."""
        yield from self._propagate(frames, keyframes, pass_)

    @torch.inference_mode()
    def _propagate(
        self, frames: FrameReader, keyframes: Mapping[int, np.ndarray], pass_: Pass
    ) -> Iterator[tuple[int, np.ndarray]]:
        missing = [k for k in pass_.memory_keyframes if k not in keyframes]
        if missing:
            raise InputError(f"no keyframe trimap for frame {missing[0]}", frame=missing[0])
        if pass_.keyframe not in pass_.memory_keyframes:
            raise InputError(
                f"the pass from keyframe {pass_.keyframe} does not hold it in memory",
                frame=pass_.keyframe,
            )
        with torch.inference_mode(False):
            seeds = keyframes if self.finetune_scope == "shot" else {k: keyframes[k] for k in pass_.memory_keyframes}
            self.prepare(frames, seeds)
        device = self.device

        shape: tuple[int, int] | None = None
        onehots: dict[int, torch.Tensor] = {}
        images: dict[int, torch.Tensor] = {}
        for k in pass_.memory_keyframes:
            rgb = np.asarray(frames.read(k))
            shape = _check_frame(rgb, k, shape)
            onehots[k] = prepare_trimap(check_trimap(keyframes[k], k, shape)).to(device)
            images[k] = prepare_frame(rgb).to(device)
        assert shape is not None
        height, width = shape
        self.engine.begin_shot(*padded_size(height, width))
        key, value = self._memorize(
            torch.cat([images[k] for k in pass_.memory_keyframes]),
            torch.cat([onehots[k] for k in pass_.memory_keyframes]),
        )
        bank = MemoryBank(pass_.memory_keyframes, key, value, self.max_memory)

        previous: tuple[int, torch.Tensor, torch.Tensor] | None = None
        for i, f in enumerate(pass_.frames):
            if i == 0:
                probs = onehots[f]
                self.last_memory = ()
            else:
                rgb = np.asarray(frames.read(f))
                _check_frame(rgb, f, shape)
                image = prepare_frame(rgb).to(device)
                extra = None
                if i >= 2 and previous is not None:
                    # the previous frame, memorised with its soft probabilities (padded size)
                    pf, pimage, pprobs = previous
                    pkey, pvalue = self._memorize(pimage, pprobs)
                    extra = (pf, pkey, pvalue)
                self.last_memory, mem_key, mem_value = bank.read(extra)
                probs = F.softmax(self._segment(image, mem_key, mem_value), dim=1)
                if (i - 1) % self.mem_every == 0 and extra is not None:
                    bank.keep(extra)
            previous = (f, images[f] if i == 0 else image, probs)
            yield f, np.ascontiguousarray(probs[0, :, :height, :width].float().cpu().numpy())


def _check_frame(rgb: np.ndarray, frame: int, shape: tuple[int, int] | None) -> tuple[int, int]:
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise InputError(f"a frame must be H x W x 3, got shape {rgb.shape}", frame=frame)
    if shape is not None and rgb.shape[:2] != shape:
        raise FrameSizeError(
            f"the frame is {rgb.shape[1]}x{rgb.shape[0]}, the keyframe is {shape[1]}x{shape[0]}",
            frame=frame,
        )
    return rgb.shape[0], rgb.shape[1]
