"""The per-shot GCA+TAM matting session: one alpha per frame, each frame's features computed once.

Frame t is matted from the window (previous, t, next) of the shot's frame list (mirrored
at the ends, see :func:`tcvom.matting.window.neighbour_window`). Part A of the network (encoder and the
decoder up to the TAM input) runs once per frame; its output lives in a
:class:`~tcvom.matting.window.FrameCache` keyed by frame number with explicit eviction, so
a sequential pass runs part A N times, not 3N. Part B (TAM + rest of the decoder) runs
once per output frame.

Neighbours are the adjacent frames of the *source* (``frames.frame_numbers``), so a
sequence with gaps uses the nearest existing frames; ask :meth:`GcaTamSession.alphas` for
a sub-range to matte part of a shot with its real neighbours.

Example::

    model = load_gca_model("GCA_TAM_Lim_Ltc_Laf.pth")
    session = GcaTamSession(frames, trimaps, model, device="cuda", dtype=torch.float16)
    for frame, alpha in session.alphas():
        writer.write(frame, alpha)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
from torch import Tensor

from tcvom.errors import FrameSizeError, InputError, MissingFrameError, WeightsError
from tcvom.io.hashing import file_sha256
from tcvom.io.trimap import check_classified
from tcvom.matting.window import FrameCache, neighbour_window
from tcvom.models.gca_tam import GcaMatting, GcaSingle, GcaTam, composite, make_input
from tcvom.weights import checkpoints

if TYPE_CHECKING:
    from tcvom.engines.base import Engine

_HALF = (torch.float16, torch.bfloat16)
_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
           "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}


class FrameReader(Protocol):
    """What the session needs from a frame or trimap source."""

    frame_numbers: list[int]

    def read(self, frame: int) -> np.ndarray: ...


@dataclass
class _Entry:
    """Cached part A output of one frame. ``skips`` (the three shortcut tensors) and the
    trimap are only needed while the frame is the centre, and are dropped after that."""

    features: Tensor  # 1 x 128 x H/8 x W/8
    unknown: Tensor  # 1 x 1 x H/8 x W/8
    skips: tuple[Tensor, Tensor, Tensor] | None
    trimap: Tensor | None  # 1 x 1 x H x W uint8, on the device


def resolve_dtype(dtype: torch.dtype | str) -> torch.dtype:
    """``torch.float32`` / ``"fp16"`` / ``"bfloat16"``... -> a torch dtype (InputError otherwise)."""
    if isinstance(dtype, torch.dtype):
        if dtype not in (torch.float32, *_HALF):
            raise InputError(f"unsupported precision {dtype}; use float32, float16 or bfloat16")
        return dtype
    try:
        return _DTYPES[str(dtype).lower()]
    except KeyError:
        raise InputError(f"unknown precision {dtype!r}; use one of {', '.join(_DTYPES)}") from None


def resolve_device(device: str | torch.device) -> torch.device:
    """A torch device, checking that CUDA is there when asked for."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"unknown device {device!r}", hint="use cpu, cuda or cuda:N") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError("CUDA was asked for but no CUDA device is available", hint="use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(f"there is no CUDA device {dev.index} ({torch.cuda.device_count()} found)")
    elif dev.type != "cpu":
        raise InputError(f"unsupported device {device!r}", hint="use cpu, cuda or cuda:N")
    return dev


def load_gca_model(
    path_or_state: str | Path | Mapping[str, Tensor],
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | str = torch.float32,
) -> GcaMatting:
    """Build and load a matting network from a checkpoint: GCA+TAM or the single-image GCA
    baseline, detected from the keys. Returns the model in eval mode on ``device``.

    Raises:
        MissingWeightsError / ReadError: the file is missing or unreadable.
        WeightsError: the file is an STM checkpoint, or does not fit either network (the
            message lists missing/unexpected keys and shape differences).
    """
    path = None
    if isinstance(path_or_state, str | Path):
        path = Path(path_or_state)
        state = checkpoints.read_state_dict(path)
    else:
        state = checkpoints.normalise_state_dict(path_or_state)
    kind = checkpoints.identify(state)
    if kind == "stm":
        raise WeightsError(
            "this is an STM trimap-propagation checkpoint, not a matting network",
            path=path,
            hint="pass the GCA+TAM weights for matting; STM weights go to trimap propagation",
        )
    model: GcaMatting = GcaSingle() if kind == "gca" else GcaTam()
    what = "single-image GCA" if kind == "gca" else "GCA+TAM"
    checkpoints.load_into(model, state, what=what, path=path)
    return model.eval().to(device=resolve_device(device), dtype=resolve_dtype(dtype))


class GcaTamSession:
    """Matting of one shot with GCA+TAM (or the single-image GCA baseline).

    Args:
        frames: ``.frame_numbers`` and ``.read(frame) -> float32 H x W x 3`` sRGB in [0, 1].
        trimaps: ``.read(frame) -> uint8 H x W`` in 0 / 128 / 255, for every frame used
            (including neighbours).
        model: a :class:`GcaTam` or :class:`GcaSingle` (see :func:`load_gca_model`); it is
            moved to ``device`` / ``dtype`` and put in eval mode.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        dtype: float32, float16 or bfloat16 on any device (on CPU half precision is for
            checks: fp16 is slow there and bf16 pays only with AVX512-BF16 or AMX, see
            :func:`tcvom.pipeline.methods.resolve_precision`). Attention scores, softmaxes,
            spectral-norm divisions and the last layer stay float32 (:mod:`tcvom.models`).
        cache_size: frames of part A output kept (at least 3 for GCA+TAM).
        reuse_features: False recomputes all three frames of every window (for checks
            and benchmarks; same result).
        engine: the back-end that runs part A and part B (:mod:`tcvom.engines`, built for
            this model's network); default: the torch engine on ``model``.
    """

    def __init__(
        self,
        frames: FrameReader,
        trimaps: FrameReader,
        model: GcaMatting,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | str = torch.float32,
        cache_size: int = 3,
        reuse_features: bool = True,
        engine: Engine | None = None,
    ) -> None:
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype)
        if not isinstance(model, GcaMatting):
            raise TypeError(f"expected a GCA matting model, got {type(model).__name__}")
        self.temporal = model.temporal
        minimum = 3 if self.temporal else 1
        if cache_size < minimum:
            raise InputError(f"cache_size must be at least {minimum} for this network, not {cache_size}")
        self.frames = frames
        self.trimaps = trimaps
        self.frame_numbers = list(frames.frame_numbers)
        if not self.frame_numbers:
            raise InputError("the shot has no frames")
        self._index = {f: i for i, f in enumerate(self.frame_numbers)}
        self.model = model.eval().to(device=self.device, dtype=self.dtype)
        if engine is None:
            from tcvom.engines.torch_engine import TorchEngine

            engine = TorchEngine(self.model, device=self.device)
        expected = "gca_tam" if self.temporal else "gca"
        if engine.network != expected:
            raise InputError(f"the engine runs the {engine.network} network, the model is {expected}")
        self.engine = engine
        self._padded: tuple[int, int] | None = None
        self.cache: FrameCache[_Entry] = FrameCache(cache_size)
        self.reuse_features = reuse_features
        #: Number of part A runs so far (one per frame on a sequential pass with the cache).
        self.encoded = 0
        self._shape: tuple[int, int] | None = None

    # --- public API ----------------------------------------------------------------------

    def window(self, frame: int) -> tuple[int, ...]:
        """The frames whose features matte ``frame``: (prev, frame, next), or (frame,) for GCA."""
        if frame not in self._index:
            raise MissingFrameError(
                f"frame {frame} is not in the shot ({self.frame_numbers[0]}-{self.frame_numbers[-1]})",
                frame=frame,
            )
        if not self.temporal:
            return (frame,)
        return neighbour_window(frame, self.frame_numbers)

    @torch.inference_mode()
    def alpha(self, frame: int) -> np.ndarray:
        """float32 ``H x W`` alpha in [0, 1] of ``frame``: the prediction in the trimap's
        unknown region, exactly 0 / 1 in its background / foreground."""
        raw, trimap = self._predict(frame)
        return composite(raw, trimap)[0, 0].cpu().numpy()

    @torch.inference_mode()
    def raw_alpha(self, frame: int) -> np.ndarray:
        """float32 ``H x W`` network output ``(tanh + 1) / 2`` of ``frame`` before compositing."""
        raw, trimap = self._predict(frame)
        h, w = trimap.shape[-2:]
        return raw[0, 0, :h, :w].float().cpu().numpy()

    def alphas(self, frames: Iterable[int] | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(frame, alpha)`` for ``frames`` (default: the whole shot) in the given order."""
        for frame in self.frame_numbers if frames is None else frames:
            yield frame, self.alpha(frame)

    def clear(self) -> None:
        """Drop every cached feature (frees memory between shots)."""
        self.cache.clear()

    # --- internals -----------------------------------------------------------------------

    def _read(self, frame: int) -> tuple[Tensor, Tensor]:
        image = np.asarray(self.frames.read(frame))
        trimap = np.asarray(self.trimaps.read(frame))
        if image.ndim != 3 or image.shape[2] != 3:
            raise InputError(f"expected an H x W x 3 RGB frame, got shape {image.shape}", frame=frame)
        if not np.issubdtype(image.dtype, np.floating):
            raise InputError(f"expected float RGB in [0, 1], got {image.dtype}", frame=frame)
        if not np.isfinite(image).all():
            raise InputError("the frame holds NaN or infinite values", frame=frame)
        check_classified(trimap, image.shape[:2], frame=frame)
        if self._shape is None:
            self._shape = trimap.shape
        elif trimap.shape != self._shape:
            raise FrameSizeError(
                f"the frame is {image.shape[1]}x{image.shape[0]}, earlier frames are {self._shape[1]}x{self._shape[0]}",
                frame=frame,
            )
        img = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).to(self.device)
        tri = torch.from_numpy(np.ascontiguousarray(trimap)).to(self.device)
        return img.permute(2, 0, 1).unsqueeze(0), tri[None, None]

    def _encode(self, frame: int) -> _Entry:
        image, trimap = self._read(frame)
        x = make_input(image, trimap).to(self.dtype)
        if self._padded is None:
            self._padded = (x.shape[-2], x.shape[-1])
            self.engine.begin_shot(*self._padded)
        out = self.engine.infer("part_a", {"x": x})
        self.encoded += 1
        return _Entry(out["features"], out["unknown"], (out["shortcut1"], out["shortcut2"], out["shortcut3"]), trimap)

    def _predict(self, frame: int) -> tuple[Tensor, Tensor]:
        """(raw ``1 x 1 x Hp x Wp``, trimap ``1 x 1 x H x W`` uint8) of ``frame``."""
        window = self.window(frame)
        if not self.reuse_features:
            self.cache.clear()
        wanted = list(dict.fromkeys(window))
        centre = self.cache.get(frame)
        missing = [f for f in wanted if f not in self.cache or (f == frame and (centre is None or centre.skips is None))]
        new = [f for f in missing if f not in self.cache]
        if len(self.cache) + len(new) > self.cache.capacity:
            self.cache.evict_outside(set(wanted))
        for f in missing:
            self.cache.put(f, self._encode(f))
        entries = {f: self.cache.get(f) for f in wanted}
        cur = entries[frame]
        assert cur is not None and cur.skips is not None and cur.trimap is not None  # filled above
        feed = {"features": cur.features, "shortcut1": cur.skips[0], "shortcut2": cur.skips[1],
                "shortcut3": cur.skips[2], "unknown": cur.unknown}
        if self.temporal:
            prev, nxt = entries[window[0]], entries[window[2]]
            assert prev is not None and nxt is not None
            feed.update(prev_features=prev.features, next_features=nxt.features)
        raw = self.engine.infer("part_b", feed)["alpha"]
        trimap = cur.trimap
        # The skips are only needed while this frame is the centre: free them now.
        cur.skips = None
        cur.trimap = None
        return raw, trimap


def build_session(
    frames: FrameReader,
    trimaps: FrameReader,
    weights: str | Path | Mapping[str, Tensor],
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | str = torch.float32,
    cache_size: int = 3,
    backend: str = "torch",
    export_dir: str | Path | None = None,
    engine_options: Mapping[str, Any] | None = None,
    model: GcaMatting | None = None,
) -> GcaTamSession:
    """A :class:`GcaTamSession` with the network loaded from ``weights`` (a file or a
    state_dict; GCA+TAM or the single-image GCA baseline, detected from the keys), run by
    ``backend`` ("torch", "onnxruntime", "tensorrt"; see :func:`tcvom.engines.open_engine`:
    the ONNX back-ends use ``export_dir`` or an export cached per weight file).
    ``model`` is the network already loaded from ``weights`` (on ``device`` in ``dtype``
    for the torch back-end, on the CPU in float32 for the others), so that a process
    building many sessions reads the file once (:func:`tcvom.pipeline.methods.network`)."""
    from tcvom.engines import open_engine, require

    require(backend)
    if backend != "torch" and resolve_dtype(dtype) != torch.float32:
        raise InputError(f"the {backend} back-end takes float32 input; its precision is an engine option",
                         hint="pass dtype=float32 (tensorrt: engine_options={'precision': ...}), or backend='torch'")
    if model is None:
        model = load_gca_model(weights, device=device if backend == "torch" else "cpu",
                               dtype=dtype if backend == "torch" else torch.float32)
    digest = file_sha256(weights) if isinstance(weights, str | Path) else None
    engine = open_engine(backend, model, device=device, weights_sha256=digest, export_dir=export_dir,
                         **dict(engine_options or {}))
    return GcaTamSession(frames, trimaps, model, device=device if backend == "torch" else "cpu",
                         dtype=dtype, cache_size=cache_size, engine=engine)
