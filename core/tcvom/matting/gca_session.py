"""The per-shot matting session of every base (GCA, FBA, DIM, IndexNet, with or without the
TAM): one alpha per frame, each frame's features computed once.

The session knows the networks only through their graph table
(:mod:`tcvom.export.graphs`): part A's inputs come from the base's input contract, its
outputs are the TAM-input ``features``, the ``unknown`` mask and the skips the centre frame
needs; part B takes the neighbours' ``prev_features`` / ``next_features`` and the centre's
tensors by name. FBA also returns the foreground and background colours
(:meth:`MattingSession.layers`).

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

    model = load_matting_model("FBA_TAM_Lim_Ltc_Laf.pth")
    session = MattingSession(frames, trimaps, model, device="cuda", dtype=torch.float16)
    for frame, alpha in session.alphas():
        writer.write(frame, alpha)
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from tcvom.errors import FrameSizeError, InputError, MissingFrameError, WeightsError
from tcvom.export.graphs import graph_spec, network_of
from tcvom.io.hashing import file_sha256
from tcvom.io.sources import FrameReader, TrimapSource
from tcvom.io.trimap import check_classified
from tcvom.matting.window import FrameCache, first_reads, neighbour_window
from tcvom.models import bases
from tcvom.models.devices import resolve_device
from tcvom.models.gca_tam import GcaMatting, composite, make_input
from tcvom.models.split_matting import SplitMatting
from tcvom.weights import checkpoints

#: A matting network of any base (see :mod:`tcvom.models.bases`).
MattingModel = GcaMatting | SplitMatting

if TYPE_CHECKING:
    from tcvom.engines.base import Engine

_HALF = (torch.float16, torch.bfloat16)
_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
           "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}


@dataclass
class _Entry:
    """Cached part A output of one frame. ``skips`` (part A's other outputs, by name), the
    trimap and the image are only needed while the frame is the centre, and are dropped
    after that."""

    features: Tensor  # 1 x C x H/8 x W/8
    unknown: Tensor  # 1 x 1 x H/8 x W/8
    skips: dict[str, Tensor] | None
    trimap: Tensor | None  # 1 x 1 x H x W uint8, on the device
    image: Tensor | None  # 1 x 3 x H x W in [0, 1], kept for networks that predict colours


def resolve_dtype(dtype: torch.dtype | str) -> torch.dtype:
    """``torch.float32`` / ``"fp16"`` / ``"bfloat16"``... -> a torch dtype (InputError otherwise).

    ``torch.float64`` is taken as a dtype (not by name: no command offers it): checks against
    reference outputs use it where float32 rounding decides a max-pool's winner."""
    if isinstance(dtype, torch.dtype):
        if dtype not in (torch.float32, torch.float64, *_HALF):
            raise InputError(f"unsupported precision {dtype}; use float32, float16 or bfloat16")
        return dtype
    try:
        return _DTYPES[str(dtype).lower()]
    except KeyError:
        raise InputError(f"unknown precision {dtype!r}; use one of {', '.join(_DTYPES)}") from None


def load_matting_model(
    path_or_state: str | Path | Mapping[str, Tensor],
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | str = torch.float32,
    base: str | None = None,
) -> MattingModel:
    """Build and load a matting network from a checkpoint: any base with or without the
    TAM (the eight released files), detected from the keys. ``base`` (``"gca"``,
    ``"fba"``, ``"dim"``, ``"index"``), when given, must be the file's. Returns the model
    in eval mode on ``device``.

    Raises:
        WeightsError / ReadError: the file is missing or unreadable.
        WeightsError: the file is an STM checkpoint, of another base than ``base``, or does
            not fit any network (the message lists missing/unexpected keys and shape
            differences).
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
            hint="pass the weights of a matting network for matting (GCA, FBA, DIM or Index, with the TAM or "
            "single-image); STM weights go to trimap propagation (--weights of run and trimaps)",
        )
    if kind not in bases.MATTING_KINDS:
        # Not recognised: compare with the video network of the base asked for, else the one
        # whose keys it shares most of (GCA+TAM when none), so that the error lists the
        # missing and unexpected keys of the network it is part of.
        kind = f"{bases.check_base(base)}_tam" if base else checkpoints.closest_matting_kind(state) or "gca_tam"
    if base is not None and bases.base_of(kind) != bases.check_base(base):
        raise WeightsError(
            f"the file holds {checkpoints.kind_name(kind)}, not the {base} base asked for",
            path=path,
            hint=f"drop --base, or pass --base {bases.base_of(kind)}",
        )
    model = bases.build_matting(kind)
    checkpoints.load_into(model, state, what=checkpoints.kind_name(kind), path=path)
    return model.eval().to(device=resolve_device(device), dtype=resolve_dtype(dtype))  # type: ignore[return-value]


#: The former name, kept for callers of the GCA-only session.
load_gca_model = load_matting_model


class MattingSession:
    """Matting of one shot with any base, with the TAM or as the single-image baseline.

    Args:
        frames: ``.frame_numbers`` and ``.read(frame) -> float32 H x W x 3`` sRGB in [0, 1].
        trimaps: ``.read(frame) -> uint8 H x W`` in 0 / 128 / 255, for every frame used
            (including neighbours).
        model: a matting network of any base (see :func:`load_matting_model`); it is
            put in eval mode; on another device or in another dtype than ``device`` /
            ``dtype``, a copy is converted (the caller's model is left as it was).
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        dtype: float32, float16 or bfloat16 on any device (on CPU half precision is for
            checks: fp16 is slow there and bf16 pays only with AVX512-BF16 or AMX, see
            :func:`tcvom.pipeline.methods.resolve_precision`). Attention scores, softmaxes,
            spectral-norm divisions and the last layer stay float32 (:mod:`tcvom.models`).
        cache_size: frames of part A output kept (at least 3 with the TAM).
        reuse_features: False recomputes all three frames of every window (for checks
            and benchmarks; same result).
        engine: the back-end that runs part A and part B (:mod:`tcvom.engines`, built for
            this model's network); default: the torch engine on ``model``.
    """

    def __init__(
        self,
        frames: FrameReader,
        trimaps: TrimapSource,
        model: MattingModel,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | str = torch.float32,
        cache_size: int = 3,
        reuse_features: bool = True,
        engine: Engine | None = None,
    ) -> None:
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype)
        if not isinstance(model, GcaMatting | SplitMatting):
            raise TypeError(f"expected a matting network, got {type(model).__name__}")
        self.temporal = model.temporal
        self.network = network_of(model)
        minimum = 3 if self.temporal else 1
        if cache_size < minimum:
            raise InputError(f"cache_size must be at least {minimum} for this network, not {cache_size}")
        self.frames = frames
        self.trimaps = trimaps
        self.frame_numbers = list(frames.frame_numbers)
        if not self.frame_numbers:
            raise InputError("the shot has no frames")
        self._index = {f: i for i, f in enumerate(self.frame_numbers)}
        first = next(model.parameters(), None)
        if first is not None and (first.dtype != self.dtype or not _same_device(first.device, self.device)):
            model = copy.deepcopy(model)  # converted: the caller's model keeps its weights (QA: fp16 rounded them)
        self.model = model.eval().to(device=self.device, dtype=self.dtype)
        if engine is None:
            from tcvom.engines.torch_engine import TorchEngine

            engine = TorchEngine(self.model, device=self.device)
        if engine.network != self.network:
            raise InputError(f"the engine runs the {engine.network} network, the model is {self.network}")
        self.engine = engine
        self._part_b = graph_spec(self.network, "part_b")
        #: The part B outputs besides alpha (FBA: "foreground", "background").
        self.colours = tuple(n for n in self._part_b.output_names if n != "alpha")
        self._make_inputs = type(model).make_inputs if isinstance(model, SplitMatting) else _gca_inputs
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
        """float32 ``H x W`` alpha of ``frame``: the prediction in the trimap's unknown
        region, exactly 0 / 1 in its background / foreground. In [0, 1] but for IndexNet,
        whose prediction is not clamped here (as the reference's; the writers clamp what
        they write, docs/networks.md)."""
        out, trimap, _ = self._predict(frame)
        return composite(out["alpha"], trimap)[0, 0].cpu().numpy()

    @torch.inference_mode()
    def layers(self, frame: int) -> dict[str, np.ndarray]:
        """Everything the network predicts for ``frame``: ``"alpha"`` (as :meth:`alpha`) and,
        for FBA, ``"foreground"`` and ``"background"``: float32 ``H x W x 3`` sRGB in
        [0, 1], the network's colours in the trimap's unknown region and the plate's
        colour in its known region (as the reference fills them)."""
        out, trimap, image = self._predict(frame)
        result = {"alpha": composite(out["alpha"], trimap)[0, 0].cpu().numpy()}
        h, w = trimap.shape[-2:]
        unknown = (trimap > 0) & (trimap < 255)
        for name in self.colours:
            assert image is not None  # kept for networks with colour outputs
            colour = torch.where(unknown, out[name][..., :h, :w].to(torch.float32), image)
            result[name] = colour[0].permute(1, 2, 0).cpu().numpy()
        return result

    @torch.inference_mode()
    def raw_alpha(self, frame: int) -> np.ndarray:
        """float32 ``H x W`` network output of ``frame`` before compositing (GCA:
        ``(tanh + 1) / 2``; IndexNet: not clamped)."""
        out, trimap, _ = self._predict(frame)
        h, w = trimap.shape[-2:]
        return out["alpha"][0, 0, :h, :w].float().cpu().numpy()

    def alphas(self, frames: Iterable[int] | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(frame, alpha)`` for ``frames`` (default: the whole shot) in the given order."""
        for frame in self.frame_numbers if frames is None else frames:
            yield frame, self.alpha(frame)

    def read_order(self, frames: Iterable[int]) -> list[int]:
        """The frames (plate and trimap) this session reads to matte ``frames`` in that
        order from an empty cache, in the order it reads them (for
        :class:`~tcvom.io.overlap.ReadAhead`)."""
        if not self.reuse_features:
            return [f for frame in frames for f in dict.fromkeys(self.window(frame))]
        return first_reads(frames, lambda frame: dict.fromkeys(self.window(frame)))

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
        inputs = {k: v.to(self.dtype) for k, v in self._make_inputs(image, trimap).items()}
        if self._padded is None:
            x = next(iter(inputs.values()))
            self._padded = (x.shape[-2], x.shape[-1])
            self.engine.begin_shot(*self._padded)
        out = self.engine.infer("part_a", inputs)
        self.encoded += 1
        features, unknown = out.pop("features"), out.pop("unknown")
        return _Entry(features, unknown, out, trimap, image if self.colours else None)

    def _predict(self, frame: int) -> tuple[dict[str, Tensor], Tensor, Tensor | None]:
        """(part B outputs ``1 x C x Hp x Wp`` by name, trimap ``1 x 1 x H x W`` uint8,
        image ``1 x 3 x H x W`` or None) of ``frame``."""
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
        feed = {"features": cur.features, "unknown": cur.unknown, **cur.skips}
        if self.temporal:
            prev, nxt = entries[window[0]], entries[window[2]]
            assert prev is not None and nxt is not None
            feed.update(prev_features=prev.features, next_features=nxt.features)
        out = self.engine.infer("part_b", {name: feed[name] for name in self._part_b.input_names})
        trimap, image = cur.trimap, cur.image
        # The skips are only needed while this frame is the centre: free them now.
        cur.skips = None
        cur.trimap = None
        cur.image = None
        return out, trimap, image


#: The former name of :class:`MattingSession`.
GcaTamSession = MattingSession


def _same_device(a: torch.device, b: torch.device) -> bool:
    """Whether two devices are one ("cuda" is the current CUDA device, "cuda:0" one of them)."""
    if a.type != b.type:
        return False
    if a.type != "cuda" or a.index == b.index:
        return True
    current = torch.cuda.current_device()
    return (current if a.index is None else a.index) == (current if b.index is None else b.index)


def _gca_inputs(image: Tensor, trimap: Tensor) -> dict[str, Tensor]:
    """GCA's part A input (:func:`tcvom.models.gca_tam.make_input`) by graph input name."""
    return {"x": make_input(image, trimap)}


def build_session(
    frames: FrameReader,
    trimaps: TrimapSource,
    weights: str | Path | Mapping[str, Tensor],
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | str = torch.float32,
    cache_size: int = 3,
    backend: str = "torch",
    export_dir: str | Path | None = None,
    engine_options: Mapping[str, Any] | None = None,
    model: MattingModel | None = None,
    base: str | None = None,
    export_progress: Callable[[str], None] | None = None,
) -> MattingSession:
    """A :class:`MattingSession` with the network loaded from ``weights`` (a file or a
    state_dict; any base with or without the TAM, detected from the keys; ``base``, when
    given, must be the file's), run by
    ``backend`` ("torch", "onnxruntime", "tensorrt"; see :func:`tcvom.engines.open_engine`:
    the ONNX back-ends use ``export_dir`` or an export cached per weight file).
    ``model`` is the network already loaded from ``weights`` (on ``device`` in ``dtype``
    for the torch back-end, on the CPU in float32 for the others), so that a process
    building many sessions reads the file once (:func:`tcvom.pipeline.methods.network`).
    ``export_progress`` is told the steps of an export on first use (and a wait on another
    process's), :func:`tcvom.export.cached_export`."""
    from tcvom.engines import open_engine, require

    require(backend)
    if backend != "torch" and resolve_dtype(dtype) != torch.float32:
        raise InputError(f"the {backend} back-end takes float32 input; its precision is an engine option",
                         hint="pass dtype=float32 (tensorrt: engine_options={'precision': ...}), or backend='torch'")
    if model is None:
        model = load_matting_model(weights, device=device if backend == "torch" else "cpu",
                                   dtype=dtype if backend == "torch" else torch.float32, base=base)
    digest = file_sha256(weights) if isinstance(weights, str | Path) else None
    engine = open_engine(backend, model, device=device, weights_sha256=digest, export_dir=export_dir,
                         progress=export_progress, **dict(engine_options or {}))
    return MattingSession(frames, trimaps, model, device=device if backend == "torch" else "cpu",
                         dtype=dtype, cache_size=cache_size, engine=engine)
