"""GCA+TAM as TorchScript in the form Foundry's CatFileCreator takes (Nuke's Inference node).

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
> 0.9 foreground, unknown between: :mod:`tcvom.io.trimap`). Then part A
(:meth:`GcaMatting.encode`) runs on all three frames, part B (TAM + decoder) on the
centre, and the result is composited with the centre trimap (:func:`composite`): the
same arithmetic as :class:`tcvom.matting.gca_session.GcaTamSession` for one window.

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
from tcvom.io.atomic import atomic_output, write_text
from tcvom.io.trimap import BG_THRESHOLD, FG_THRESHOLD
from tcvom.models.gca_tam import GcaMatting, GcaTam, composite, make_input

CHANNELS_PER_FRAME = 4
INPUT_CHANNELS = 3 * CHANNELS_PER_FRAME
#: CatFileCreator "Channels In", in tensor order (layers tcvom_prev / rgba / tcvom_next).
NUKE_CHANNELS_IN: tuple[str, ...] = tuple(
    f"{layer}.{channel}" for layer in ("tcvom_prev", "rgba", "tcvom_next") for channel in ("red", "green", "blue", "alpha")
)
#: CatFileCreator "Channels Out".
NUKE_CHANNELS_OUT: tuple[str, ...] = ("rgba.alpha",)
MODEL_ID = "tcvom_gca_tam"


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


class NukeMatte(nn.Module):
    """GCA+TAM with one stacked input: ``forward(x) -> alpha``.

    Args:
        model: a :class:`GcaTam` in eval mode (weights loaded).
        linear_input: RGB arrives scene-linear Rec.709 (Nuke's working space) and is
            converted to sRGB here; False: it is already sRGB-encoded in [0, 1].
    """

    def __init__(self, model: GcaTam, *, linear_input: bool = True) -> None:
        super().__init__()
        if not isinstance(model, GcaTam):
            raise TypeError(f"the Nuke export needs a GcaTam model, not {type(model).__name__}")
        self.model = model
        self.linear_input = linear_input

    def _frame(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``1 x 4 x H x W`` (RGB, trimap) -> (network input ``1 x 6 x Hp x Wp``, trimap uint8 ``1 x 1 x H x W``)."""
        rgb = x[:, 0:3].to(torch.float32)
        rgb = srgb_encode(rgb) if self.linear_input else rgb.clamp(0.0, 1.0)
        trimap = classify_trimap(x[:, 3:4].to(torch.float32))
        return make_input(rgb, trimap), trimap

    def forward(self, x: Tensor) -> Tensor:
        """``1 x 12 x H x W`` (frames t-1, t, t+1: RGB + trimap each) -> ``1 x 1 x H x W``
        float32 alpha of frame t in [0, 1], exactly 0 / 1 where the trimap is known."""
        prev, _ = self._frame(x[:, 0:4])
        cur, trimap = self._frame(x[:, 4:8])
        nxt, _ = self._frame(x[:, 8:12])
        dtype = next(self.model.parameters()).dtype
        raw = self.model(prev.to(dtype), cur.to(dtype), nxt.to(dtype))
        return composite(raw, trimap)


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


def _load_tam(weights: str | Path | Mapping[str, Tensor] | GcaMatting, device: torch.device) -> GcaTam:
    from tcvom.matting.gca_session import load_gca_model

    model = weights if isinstance(weights, GcaMatting) else load_gca_model(weights, device=device)
    if not isinstance(model, GcaTam):
        raise WeightsError(
            "these are single-image GCA weights; the Nuke export needs GCA+TAM weights (with decoder.fam.*)",
            path=None if isinstance(weights, Mapping | GcaMatting) else weights,
        )
    return model.eval().to(device=device, dtype=torch.float32)


def build_nuke_module(
    weights: str | Path | Mapping[str, Tensor] | GcaMatting,
    *,
    width: int,
    height: int,
    device: str | torch.device = "cpu",
    linear_input: bool = True,
) -> torch.jit.ScriptModule:
    """The TorchScript module for ``width`` x ``height`` plates on ``device``.

    Args:
        weights: a GCA+TAM weight file, a state_dict, or a loaded :class:`GcaTam`.
        width, height: the plate size (what Nuke's Inference node will pass).
        device: where the graph is traced (a traced graph keeps its device: trace on
            ``cuda`` for "Use GPU if available", on ``cpu`` otherwise).
        linear_input: see :class:`NukeMatte`.

    Returns:
        A scripted module: ``forward(1 x 12 x height x width float) -> 1 x 1 x height x width``.
    """
    from tcvom.matting.gca_session import resolve_device

    if width < 1 or height < 1:
        raise InputError(f"the plate size must be positive, not {width}x{height}")
    dev = resolve_device(device)
    model = _load_tam(weights, dev)
    wrapper = NukeMatte(model, linear_input=linear_input).eval()
    generator = torch.Generator().manual_seed(0)
    example = torch.rand(1, INPUT_CHANNELS, height, width, generator=generator).to(dev)
    with warnings.catch_warnings():
        # Shape arithmetic becomes constants: intended, the module is made for one size.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is what Nuke loads
        with torch.inference_mode(False), torch.no_grad():
            traced = torch.jit.trace(wrapper, example, check_trace=False)
        return torch.jit.script(SizeChecked(traced, height, width))


def cat_settings(width: int, height: int, torchscript: str | Path) -> dict[str, object]:
    """The CatFileCreator knob values for an exported model (also written beside it as JSON)."""
    return {
        "torchScriptFile": str(Path(torchscript).resolve()).replace("\\", "/"),
        "catFile": str(Path(torchscript).resolve().with_suffix(".cat")).replace("\\", "/"),
        "channelsIn": ", ".join(NUKE_CHANNELS_IN),
        "channelsOut": ", ".join(NUKE_CHANNELS_OUT),
        "modelId": MODEL_ID,
        "outputScale": 1,
        "plate_size": [width, height],
        "torch_version": torch.__version__,
    }


def export_torchscript(
    weights: str | Path | Mapping[str, Tensor] | GcaMatting,
    out: str | Path,
    *,
    width: int,
    height: int,
    device: str | torch.device = "cpu",
    linear_input: bool = True,
) -> Path:
    """Write the TorchScript model to ``out`` (``.pt``) and ``out`` + ``.json`` with the
    CatFileCreator settings. Returns the ``.pt`` path. See :func:`build_nuke_module`."""
    out = Path(out)
    if out.suffix != ".pt":
        raise InputError("the TorchScript file must end in .pt (CatFileCreator reads .pt files)", path=out)
    if not out.parent.is_dir():
        raise InputError("the output folder does not exist", path=out.parent)
    module = build_nuke_module(weights, width=width, height=height, device=device, linear_input=linear_input)
    with atomic_output(out) as tmp:
        module.save(str(tmp))
    settings = cat_settings(width, height, out)
    settings["linear_input"] = linear_input
    settings["device"] = str(torch.device(device))
    write_text(out.with_suffix(".json"), json.dumps(settings, indent=2) + "\n")
    return out
