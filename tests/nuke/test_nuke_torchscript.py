"""TorchScript export for Nuke's Inference node: loads back with torch.jit.load and matches
the GcaTamSession's alpha (deterministic weights: det_weights.py, seed 2024, scale 1.3).

Tolerance: 1e-4 absolute on alpha in [0, 1] (measured about 1.5e-6: float32 rounding of
the linear -> sRGB round trip and of the traced graph).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tcvom.cli import cmd_nuke
from tcvom.errors import InputError, WeightsError
from tcvom.export import torchscript as ts
from tcvom.io.colour import ColourConverter
from tcvom.io.sources import ArrayFrames
from tcvom.io.trimap import classify
from tcvom.matting.gca_session import GcaTamSession, load_gca_model

ATOL = 1e-4
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
H, W = 40, 56  # not multiples of 32: the padding is exercised


@pytest.fixture(scope="module")
def state(shared_dir: Path) -> dict[str, torch.Tensor]:
    ref = shared_dir / "reference"
    sys.path.insert(0, str(ref))
    try:
        import det_weights
    finally:
        sys.path.remove(str(ref))
    return det_weights.gca_state_dict(str(ref / "tcvom_gca_tam_state_dict.tsv"), seed=2024, scale=1.3)


@pytest.fixture(scope="module")
def shot() -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    rng = np.random.default_rng(7)
    frames, trimaps = {}, {}
    yy, xx = np.mgrid[0:H, 0:W]
    for i, f in enumerate((1001, 1002, 1003)):
        frames[f] = rng.random((H, W, 3), dtype=np.float32)
        d = np.hypot(yy - 20, xx - 24 - 2 * i)
        trimaps[f] = np.where(d < 8, 255, np.where(d < 15, 128, 0)).astype(np.uint8)
    return frames, trimaps


@pytest.fixture(scope="module")
def exported(state: dict[str, torch.Tensor], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model written by `tcvom nuke torchscript` (the CLI job, in-process)."""
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("ts")
    weights = folder / "gca_tam.pth"
    torch.save(state, weights)
    parser = argparse.ArgumentParser()
    cmd_nuke.add_arguments(parser)
    args = parser.parse_args(["torchscript", "--weights", str(weights), "--out", str(folder / "model.pt"),
                              "--width", str(W), "--height", str(H)])
    assert cmd_nuke.main(args) == 0
    return folder / "model.pt"


@pytest.fixture(scope="module")
def loaded(exported: Path) -> torch.jit.ScriptModule:
    return torch.jit.load(str(exported))


def _stacked(frames: dict[int, np.ndarray], trimaps: dict[int, np.ndarray], window: tuple[int, ...]) -> torch.Tensor:
    """The Inference node's input: for each frame of the window, scene-linear RGB + trimap / 255."""
    parts = []
    for f in window:
        srgb = torch.from_numpy(frames[f]).permute(2, 0, 1)[None].double()
        parts += [ts.srgb_decode(srgb).float(), torch.from_numpy(trimaps[f]).float()[None, None] / 255.0]
    return torch.cat(parts, dim=1)


def test_loaded_torchscript_matches_the_session(loaded, state, shot) -> None:
    frames, trimaps = shot
    module = loaded
    session = GcaTamSession(ArrayFrames(frames), ArrayFrames(trimaps), load_gca_model(state))
    for frame in (1001, 1002, 1003):  # first and last use the mirrored window
        window = session.window(frame)
        with torch.no_grad():
            alpha = module(_stacked(frames, trimaps, window))
        assert alpha.shape == (1, 1, H, W)
        expected = session.alpha(frame)
        unknown = trimaps[frame] == 128
        assert unknown.any() and np.ptp(expected[unknown]) > 0.05, "the check needs a non-trivial prediction"
        np.testing.assert_allclose(alpha[0, 0].numpy(), expected, atol=ATOL, rtol=0)
    # the neighbours matter: the wrong window gives another alpha
    with torch.no_grad():
        other = module(_stacked(frames, trimaps, (1001, 1002, 1001)))[0, 0].numpy()
    assert np.abs(other - session.alpha(1002)).max() > 10 * ATOL


def test_the_cat_settings_name_the_gizmo_layers(exported: Path) -> None:
    settings = json.loads(exported.with_suffix(".json").read_text())
    channels = [c.strip() for c in settings["channelsIn"].split(",")]
    assert len(channels) == ts.INPUT_CHANNELS == 12
    assert channels[4:8] == ["rgba.red", "rgba.green", "rgba.blue", "rgba.alpha"]
    assert channels[0].startswith("tcvom_prev.") and channels[8].startswith("tcvom_next.")
    assert settings["channelsOut"] == "rgba.alpha" and settings["plate_size"] == [W, H]
    assert settings["linear_input"] is True


def test_wrong_size_is_a_clear_error(loaded) -> None:
    module = loaded
    with pytest.raises(Exception, match="Export it again"):
        module(torch.zeros(1, 12, H + 32, W))
    with pytest.raises(Exception, match="Export it again"):
        module(torch.zeros(1, 9, H, W))


def test_srgb_encode_matches_opencolorio() -> None:
    linear = np.concatenate([np.linspace(0.0, 1.2, 301, dtype=np.float32), [0.001, 0.0031308, 0.02]])
    rgb = np.repeat(linear[None, :, None], 3, axis=2)
    expected, _ = ColourConverter("Linear Rec.709 (sRGB)").to_network(rgb.copy(), True)
    got = ts.srgb_encode(torch.from_numpy(rgb)).numpy()
    np.testing.assert_allclose(got, expected, atol=2e-4)
    back = ts.srgb_decode(ts.srgb_encode(torch.from_numpy(linear).double())).numpy()
    np.testing.assert_allclose(back, np.clip(linear, 0, 1), atol=1e-9)


def test_trimap_classification_is_tcvoms() -> None:
    values = np.array([[0.0, 0.05, 0.0999, 0.1, 0.5, 0.9, 0.9001, 1.0, 1.5, -0.2]], dtype=np.float32)
    got = ts.classify_trimap(torch.from_numpy(values)[None, None])[0, 0].numpy()
    np.testing.assert_array_equal(got, classify(values))


def test_single_image_weights_and_bad_paths_are_refused(state, tmp_path: Path) -> None:
    single = {k: v for k, v in state.items() if not k.startswith("decoder.fam.")}
    with pytest.raises(WeightsError, match="GCA\\+TAM"):
        ts.build_nuke_module(single, width=W, height=H)
    with pytest.raises(InputError, match=r"\.pt"):
        ts.export_torchscript(state, tmp_path / "model.cat", width=W, height=H)
    with pytest.raises(InputError, match="does not exist"):
        ts.export_torchscript(state, tmp_path / "nowhere" / "model.pt", width=W, height=H)
