"""The matting networks with the TAM (GCA+TAM, FBA+TAM, DIM+TAM, Index+TAM) as TorchScript
in the form Foundry's CatFileCreator takes (Nuke's Inference node).

Y. Zhang, C. Wang, M. Cui, P. Ren, X. Xie, X.-S. Hua, H. Bao, Q. Huang and W. Xu,
"Attention-guided Temporally Coherent Video Object Matting", ACM MM 2021 (the network);
the export quirks live here, the network is :mod:`tcvom.models` unchanged.

Nuke's Inference node passes one ``1 x C x H x W`` tensor to the model and takes one
back. So the three frames GCA+TAM needs are stacked as channels, four per frame
(R, G, B, trimap), in the order previous, current, next::

    channel  0-3   tcvom_prev.red/green/blue/alpha   frame t-1: RGB, trimap
    channel  4-7   rgba.red/green/blue/alpha         frame t:   RGB, trimap
    channel  8-11  tcvom_next.red/green/blue/alpha   frame t+1: RGB, trimap
    output   0     rgba.alpha                        alpha of frame t, in [0, 1]

Inside the module, for each frame: RGB is converted from scene-linear Rec.709 to sRGB
(the piecewise IEC 61966-2-1 curve, the same conversion tcvom applies to float plates
through OpenColorIO) and clamped to [0, 1] (``linear_input=False`` takes sRGB-encoded
input); the trimap channel is classified with tcvom's thresholds (< 0.1 background,
> 0.9 foreground, unknown between: :mod:`tcvom.io.trimap`), the base's input encoding is
made (:func:`tcvom.models.gca_tam.make_input`, :meth:`SplitMatting.make_inputs`). Then
part A runs on all three frames, part B (TAM + decoder) on the centre, and the alpha is
composited with the centre trimap (:func:`composite`): the same arithmetic as
:class:`tcvom.matting.gca_session.MattingSession` for one window. FBA's foreground and
background colours are not returned (one alpha channel for every base).

FBA's input holds Gaussians of the Euclidean distance to the trimap's background and
foreground, which the model computes with OpenCV; a traced graph cannot call OpenCV, so
the export computes the same exact distances in torch (:func:`squared_distance_to`).

The GCA block computes its attention in shape-dependent chunks, and spectral
normalisation keeps no ``weight`` attribute, so the network is *traced* (not scripted) at
one plate size on one device; a small scripted wrapper checks the size of what Nuke
passes and names the size the model was made for. Export again for another resolution
or device.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from tcvom.errors import InputError, WeightsError
from tcvom.io.atomic import ensure_writable_folder, remove_dead_temporaries, write_text
from tcvom.io.trimap import BG_THRESHOLD, FG_THRESHOLD
from tcvom.models.gca_tam import GcaMatting, GcaTam, composite, make_input
from tcvom.models.split_matting import SplitMatting, normalise_rgb, pad_frame
from tcvom.models.tam import TemporalAggregation
from tcvom.weights.checkpoints import save_torch

CHANNELS_PER_FRAME = 4
INPUT_CHANNELS = 3 * CHANNELS_PER_FRAME
#: CatFileCreator "Channels In", in tensor order (layers tcvom_prev / rgba / tcvom_next).
NUKE_CHANNELS_IN: tuple[str, ...] = tuple(
    f"{layer}.{channel}" for layer in ("tcvom_prev", "rgba", "tcvom_next") for channel in ("red", "green", "blue", "alpha")
)
#: CatFileCreator "Channels Out".
NUKE_CHANNELS_OUT: tuple[str, ...] = ("rgba.alpha",)
#: The most elements :func:`squared_distance_to` holds at once per chunk of rows.
EDT_CHUNK_ELEMENTS = 1 << 24


def srgb_encode(linear: Tensor) -> Tensor:
    """Scene-linear Rec.709 -> sRGB-encoded (IEC 61966-2-1), clamped to [0, 1]; any shape."""
    x = linear.clamp(0.0, 1.0)
    high = 1.055 * torch.pow(x.clamp_min(0.0031308), 1.0 / 2.4) - 0.055
    return torch.where(x <= 0.0031308, 12.92 * x, high).clamp(0.0, 1.0)


def srgb_decode(encoded: Tensor) -> Tensor:
    """Inverse of :func:`srgb_encode` on [0, 1] (for tests and for feeding sRGB plates)."""
    x = encoded.clamp(0.0, 1.0)
    high = torch.pow((x.clamp_min(0.04045) + 0.055) / 1.055, 2.4)
    return torch.where(x <= 0.04045, x / 12.92, high)


def classify_trimap(values: Tensor) -> Tensor:
    """``B x 1 x H x W`` float trimap in [0, 1] -> uint8 0 / 128 / 255 (tcvom.io.trimap.classify)."""
    out = torch.full_like(values, 128.0)
    out = torch.where(values < BG_THRESHOLD, torch.zeros_like(values), out)
    out = torch.where(values > FG_THRESHOLD, torch.full_like(values, 255.0), out)
    return out.to(torch.uint8)


def squared_distance_to(mask: Tensor) -> Tensor:
    """Exact squared Euclidean distance of every pixel to the nearest pixel of a region,
    in torch (traceable; OpenCV's ``distanceTransform(DIST_L2, 0)`` squared).

    Args:
        mask: ``B x 1 x H x W`` in {0, 1}.

    Returns:
        float32 ``B x 1 x H x W``: 0 in the region; about 1e16 everywhere when the frame has
        no such pixel (its Gaussians are then 0, as FBA's empty maps).

    Per row, the distance to the nearest region pixel of that row (running max / min of
    the region's column indices), then per pixel the minimum over rows k of
    ``(i - k)² + row_distance(k, j)²``, in chunks of rows (``H² x W`` work).
    """
    b, _, h, w = mask.shape
    inside = mask[:, 0] > 0.5
    far = 1e8
    cols = torch.arange(w, device=mask.device, dtype=torch.float32).expand(b, h, w)
    left = torch.where(inside, cols, torch.full_like(cols, -far)).cummax(dim=2).values
    right = torch.where(inside, cols, torch.full_like(cols, far)).flip(2).cummin(dim=2).values.flip(2)
    row = torch.minimum(cols - left, right - cols)
    row2 = row * row  # B x H x W
    rows = torch.arange(h, device=mask.device, dtype=torch.float32)
    step = max(1, EDT_CHUNK_ELEMENTS // (h * w))
    parts = []
    for start in range(0, h, step):
        di = (rows[start : start + step, None] - rows[None, :]) ** 2  # R x H
        parts.append((di[None, :, :, None] + row2[:, None, :, :]).amin(dim=2))  # B x R x W
    return torch.cat(parts, dim=1)[:, None]


def fba_click_maps_traceable(mask: Tensor) -> Tensor:
    """:func:`tcvom.models.fba_tam.fba_click_maps` in torch (for the traced export)."""
    from tcvom.models.fba_tam import CLICK_SCALE, CLICK_SIGMAS

    d2 = squared_distance_to(mask)
    return torch.cat([torch.exp(-d2 / (2 * (s * CLICK_SCALE) ** 2)) for s in CLICK_SIGMAS], dim=1)


def _split_inputs(model: SplitMatting, image: Tensor, trimap: Tensor) -> dict[str, Tensor]:
    """The base's part A inputs (:meth:`SplitMatting.make_inputs`), FBA's without OpenCV."""
    if model.base != "fba":
        return model.make_inputs(image, trimap)
    rgb, tri = pad_frame(image, trimap)
    bg = (tri == 0).to(torch.float32)
    fg = (tri == 255).to(torch.float32)
    x = torch.cat([normalise_rgb(rgb), fba_click_maps_traceable(bg), fba_click_maps_traceable(fg), bg, fg], dim=1)
    return {"x": x, "image": rgb}


#: A matting network with the TAM of any base.
TamModel = GcaTam | SplitMatting


class NukeMatte(nn.Module):
    """A matting network with the TAM (any base) with one stacked input: ``forward(x) -> alpha``.

    Args:
        model: a :class:`GcaTam`, or a :class:`SplitMatting` with the TAM, in eval mode
            (weights loaded).
        linear_input: RGB arrives scene-linear Rec.709 (Nuke's working space) and is
            converted to sRGB here; False: it is already sRGB-encoded in [0, 1].
    """

    def __init__(self, model: TamModel, *, linear_input: bool = True) -> None:
        super().__init__()
        if not (isinstance(model, GcaTam) or (isinstance(model, SplitMatting) and model.temporal)):
            raise TypeError(f"the Nuke export needs a matting network with the TAM, not {type(model).__name__}")
        self.model = model
        self.linear_input = linear_input

    def _frame(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``1 x 4 x H x W`` (RGB, trimap) -> (sRGB ``1 x 3 x H x W`` in [0, 1], trimap uint8 ``1 x 1 x H x W``)."""
        # NaN and infinities are 0, as tcvom.io.colour makes them: clamping would pass NaN on
        rgb = torch.nan_to_num(x[:, 0:3].to(torch.float32), nan=0.0, posinf=0.0, neginf=0.0)
        rgb = srgb_encode(rgb) if self.linear_input else rgb.clamp(0.0, 1.0)
        return rgb, classify_trimap(x[:, 3:4].to(torch.float32))

    def forward(self, x: Tensor) -> Tensor:
        """``1 x 12 x H x W`` (frames t-1, t, t+1: RGB + trimap each) -> ``1 x 1 x H x W``
        float32 alpha of frame t (in [0, 1] except IndexNet's unclamped prediction),
        exactly 0 / 1 where the trimap is known."""
        frames = [self._frame(x[:, 4 * i : 4 * i + 4]) for i in range(3)]
        trimap = frames[1][1]
        dtype = next(self.model.parameters()).dtype
        model = self.model
        if isinstance(model, GcaTam):
            prev, cur, nxt = (make_input(rgb, tri).to(dtype) for rgb, tri in frames)
            return composite(model(prev, cur, nxt), trimap)
        names = [p.name for p in model.inputs]
        encoded = []
        for rgb, tri in frames:
            inputs = _split_inputs(model, rgb, tri)
            encoded.append(model.part_a(*(inputs[n].to(dtype) for n in names)))
        features, unknown, *skips = encoded[1]
        out = model.part_b(encoded[0][0], features, encoded[2][0], unknown, *skips)
        return composite(out[0], trimap)


class SizeChecked(nn.Module):
    """Scripted guard around the traced network: a wrong input size is a clear error in
    Nuke's Inference node, not a shape mismatch deep inside the graph."""

    def __init__(self, inner: nn.Module, height: int, width: int) -> None:
        super().__init__()
        self.inner = inner
        self.height = height
        self.width = width

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.size(0) != 1 or x.size(1) != 12 or x.size(2) != self.height or x.size(3) != self.width:
            raise RuntimeError(
                f"tcvom: this model takes 1 x 12 x {self.height} x {self.width} (three frames of RGB + trimap, {self.width}x{self.height} plates); got {x.shape}. "
                "Export it again for this size: tcvom nuke torchscript --width W --height H"
            )
        return self.inner(x)


Weights = str | Path | Mapping[str, Tensor] | GcaMatting | SplitMatting


def _load_tam(weights: Weights, device: torch.device, base: str | None = None) -> TamModel:
    from tcvom.matting.gca_session import load_matting_model
    from tcvom.models.bases import kind_name

    if isinstance(weights, GcaMatting | SplitMatting):
        model = weights
    else:
        model = load_matting_model(weights, device=device, base=base)
    if not model.temporal:
        network = model.network if isinstance(model, SplitMatting) else "gca"
        raise WeightsError(
            f"these are weights of {kind_name(network)}; the Nuke export needs a network with the TAM "
            f"({network.upper()}+TAM weights, with decoder.fam.*)",
            path=None if isinstance(weights, Mapping | GcaMatting | SplitMatting) else weights,
        )
    return model.eval().to(device=device, dtype=torch.float32)  # type: ignore[return-value]


def build_nuke_module(
    weights: Weights,
    *,
    width: int,
    height: int,
    device: str | torch.device = "cpu",
    linear_input: bool = True,
    base: str | None = None,
) -> torch.jit.ScriptModule:
    """The TorchScript module for ``width`` x ``height`` plates on ``device``.

    Args:
        weights: a weight file or state_dict of a matting network with the TAM (any base,
            recognised from the keys), or a loaded model.
        base: when given, the base the weights must be of (``gca``, ``fba``, ``dim``, ``index``).
        width, height: the plate size (what Nuke's Inference node will pass).
        device: where the graph is traced (a traced graph keeps its device: trace on
            ``cuda`` for "Use GPU if available", on ``cpu`` otherwise).
        linear_input: see :class:`NukeMatte`.

    Returns:
        A scripted module: ``forward(1 x 12 x height x width float) -> 1 x 1 x height x width``.
    """
    from tcvom.models.devices import resolve_device

    if width < 1 or height < 1:
        raise InputError(f"the plate size must be positive, not {width}x{height}")
    dev = resolve_device(device)
    model = _load_tam(weights, dev, base)
    wrapper = NukeMatte(model, linear_input=linear_input).eval()
    generator = torch.Generator().manual_seed(0)
    example = torch.rand(1, INPUT_CHANNELS, height, width, generator=generator).to(dev)
    # A trace keeps the number of chunks of unknown positions its example had, and a trimap
    # with more unknown positions then failed in Nuke (bases QA): the TAM computes every
    # position while it is traced (a given model's setting is put back).
    tams = [m for m in model.modules() if isinstance(m, TemporalAggregation)]
    kept = [m.every_position for m in tams]
    with warnings.catch_warnings():
        # Shape arithmetic becomes constants: intended, the module is made for one size.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is what Nuke loads
        try:
            for tam in tams:
                tam.every_position = True
            with torch.inference_mode(False), torch.no_grad():
                traced = torch.jit.trace(wrapper, example, check_trace=False)
        finally:
            for tam, every in zip(tams, kept, strict=True):
                tam.every_position = every
        return torch.jit.script(SizeChecked(traced, height, width))


def cat_settings(width: int, height: int, torchscript: str | Path, network: str = "gca_tam") -> dict[str, object]:
    """The CatFileCreator knob values for an exported model (also written beside it as JSON)."""
    return {
        "torchScriptFile": str(Path(torchscript).resolve()).replace("\\", "/"),
        "catFile": str(Path(torchscript).resolve().with_suffix(".cat")).replace("\\", "/"),
        "channelsIn": ", ".join(NUKE_CHANNELS_IN),
        "channelsOut": ", ".join(NUKE_CHANNELS_OUT),
        "modelId": f"tcvom_{network}",
        "outputScale": 1,
        "plate_size": [width, height],
        "torch_version": torch.__version__,
    }


def export_torchscript(
    weights: Weights,
    out: str | Path,
    *,
    width: int,
    height: int,
    device: str | torch.device = "cpu",
    linear_input: bool = True,
    base: str | None = None,
) -> Path:
    """Write the TorchScript model to ``out`` (``.pt``) and ``out`` + ``.json`` with the
    CatFileCreator settings. Returns the ``.pt`` path. See :func:`build_nuke_module`."""
    out = Path(out)
    if out.suffix != ".pt":
        raise InputError("the TorchScript file must end in .pt (CatFileCreator reads .pt files)", path=out)
    ensure_writable_folder(out.parent, create=False)  # what is in the way, said before the model loads
    from tcvom.models.devices import resolve_device

    model = _load_tam(weights, resolve_device(device), base)
    module = build_nuke_module(model, width=width, height=height, device=device, linear_input=linear_input, base=base)
    ensure_writable_folder(out.parent)  # made, as every other command makes its --out folder
    remove_dead_temporaries(out.parent)  # what a killed export left half-written (up to ~100 MB each)
    save_torch(module, out, torch.jit.save)
    network = "gca_tam"
    if isinstance(model, SplitMatting):
        network = model.network
    settings = cat_settings(width, height, out, network)
    settings["linear_input"] = linear_input
    settings["device"] = str(torch.device(device))
    write_text(out.with_suffix(".json"), json.dumps(settings, indent=2) + "\n")
    return out
