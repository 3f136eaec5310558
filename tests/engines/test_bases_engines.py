"""FBA, DIM and IndexNet (with and without the TAM) on the ONNX Runtime back-end: the export's
own parity check (per graph, fp32, 1e-4 x output scale), then a whole shot through the cached
session on both back-ends. IndexNet runs by default; the larger bases are marked slow."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tcvom.engines.onnxruntime_engine import OnnxRuntimeEngine
from tcvom.io.sources import ArrayFrames
from tcvom.matting.gca_session import MattingSession
from tcvom.models.bases import build_matting

pytest.importorskip("onnxruntime")
FP32_TOLERANCE = 1e-4
SLOW = pytest.mark.slow


def _model(kind: str) -> torch.nn.Module:
    torch.manual_seed(3)
    model = build_matting(kind)
    with torch.no_grad():  # varied BatchNorm statistics, as a trained file has
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.75, 1.25)
    return model.eval()


def _shot(frames: int, h: int, w: int) -> tuple[ArrayFrames, ArrayFrames]:
    rng = np.random.default_rng(4)
    images, trimaps = {}, {}
    for i in range(frames):
        images[1001 + i] = rng.random((h, w, 3), dtype=np.float32)
        tri = np.zeros((h, w), np.uint8)
        tri[:, w // 2 + i :] = 255
        tri[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4 + i] = 128
        trimaps[1001 + i] = tri
    return ArrayFrames(images), ArrayFrames(trimaps)


@pytest.mark.parametrize("kind", [
    "index_tam", "index",
    pytest.param("dim_tam", marks=SLOW), pytest.param("dim", marks=SLOW),
    pytest.param("fba_tam", marks=SLOW), pytest.param("fba", marks=SLOW),
])
def test_export_parity_and_session_on_onnxruntime(kind, tmp_path) -> None:
    from tcvom.export import export_network

    torch.set_num_threads(1)
    model = _model(kind)
    manifest = export_network(model, tmp_path / "onnx")  # raises ParityError past tolerance
    assert manifest.network == kind
    tolerance = FP32_TOLERANCE * (10 if kind.startswith("fba") else 1)  # NETWORK_TOLERANCE
    frames, trimaps = _shot(3, 50, 70)
    reference = MattingSession(frames, trimaps, model)
    session = MattingSession(frames, trimaps, model, engine=OnnxRuntimeEngine(manifest, threads=1))
    for frame in frames.frame_numbers:
        want, got = reference.layers(frame), session.layers(frame)
        assert list(got) == list(want)
        for name in want:
            scale = max(1.0, float(np.abs(want[name]).max()))
            assert np.abs(got[name] - want[name]).max() <= tolerance * scale, (frame, name)
    assert session.encoded == reference.encoded == 3
    if kind.startswith("fba"):
        assert set(want) == {"alpha", "foreground", "background"}
