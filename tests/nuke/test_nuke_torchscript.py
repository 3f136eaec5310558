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
from tcvom.errors import InputError, OutputError, WeightsError
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
    """The model written by `tcvom nuke torchscript` (the CLI job, in-process), into a folder
    it makes (docs QA: "the output folder does not exist", where every other command makes
    its --out folder)."""
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("ts")
    weights = folder / "gca_tam.pth"
    torch.save(state, weights)
    parser = argparse.ArgumentParser()
    cmd_nuke.add_arguments(parser)
    args = parser.parse_args(["torchscript", "--weights", str(weights), "--out", str(folder / "new" / "model.pt"),
                              "--width", str(W), "--height", str(H)])
    assert cmd_nuke.main(args) == 0
    return folder / "new" / "model.pt"


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


def test_a_trimap_with_more_unknown_than_the_trace_saw_is_matted(state, tmp_path: Path) -> None:
    """Bases QA: the trace kept the number of chunks of unknown positions of its example (80 %
    unknown): a frame with more (here all unknown but a strip) failed in Nuke with an
    index_copy_ error, for every base."""
    height, width = 96, 128  # 192 positions at stride 8: more than one chunk of GCA's (167)
    model = load_gca_model(state)
    module = ts.build_nuke_module(model, width=width, height=height)
    assert not any(getattr(m, "every_position", False) for m in model.modules()), "the given model is as it was"
    rng = np.random.default_rng(3)
    frames = {f: rng.random((height, width, 3), dtype=np.float32) for f in (1001, 1002, 1003)}
    trimaps = {f: np.full((height, width), 128, np.uint8) for f in frames}
    for f in frames:
        trimaps[f][-6:] = 255
        trimaps[f][:4] = 0
    with torch.no_grad():
        alpha = module(_stacked(frames, trimaps, (1001, 1002, 1003)))[0, 0].numpy()
    session = GcaTamSession(ArrayFrames(frames), ArrayFrames(trimaps), model)
    np.testing.assert_allclose(alpha, session.alpha(1002), atol=ATOL, rtol=0)


def test_nan_and_infinite_plate_pixels_count_as_black(loaded, state, shot) -> None:
    """A stray NaN or infinity in an EXR plate (a CG render, a denoiser) is 0, as tcvom's own
    colour conversion makes it (tcvom.io.colour): it must not spread NaN over the alpha."""
    frames, trimaps = shot
    bad = {f: frame.copy() for f, frame in frames.items()}
    stacked = _stacked(frames, trimaps, (1001, 1002, 1003))
    for plane, (y, x) in ((4, (20, 24)), (5, (21, 30)), (1, (19, 22))):  # in the unknown band of frames t and t-1
        stacked[0, plane, y, x] = float("nan") if plane != 5 else float("inf")
        bad[1001 + plane // 4][y, x, plane % 4] = 0.0
    stacked[0, 8, 5, 5] = -float("inf")
    bad[1003][5, 5, 0] = 0.0
    with torch.no_grad():
        alpha = loaded(stacked)[0, 0].numpy()
    assert np.isfinite(alpha).all()
    session = GcaTamSession(ArrayFrames(bad), ArrayFrames(trimaps), load_gca_model(state))
    np.testing.assert_allclose(alpha, session.alpha(1002), atol=ATOL, rtol=0)


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
    (tmp_path / "taken").write_text("a file where the folder would be")
    with pytest.raises(OutputError, match="taken") as caught:
        ts.export_torchscript(state, tmp_path / "taken" / "model.pt", width=W, height=H)
    assert caught.value.exit_code == 2


# --- the other bases (issue 19) -------------------------------------------------------------

#: Alpha tolerances of the other bases' exports against the session. FBA's fusion divides
#: by ``|F - B|² + 0.1``, which magnifies the float32 rounding of the sRGB round trip.
BASE_ATOL = {"fba": 1e-3, "dim": ATOL, "index": ATOL}


def test_traceable_distances_match_opencv() -> None:
    import cv2

    from tcvom.models.fba_tam import fba_click_maps

    rng = np.random.default_rng(3)
    masks = (rng.random((2, 1, 37, 53)) > 0.97).astype(np.float32)
    masks[1] = 0  # a frame without the region: all-zero maps
    masks[0, 0, 20:25, 30:40] = 1
    d2 = ts.squared_distance_to(torch.from_numpy(masks))
    cv = cv2.distanceTransform(((1 - masks[0, 0]) * 255).astype(np.uint8), cv2.DIST_L2, 0)
    np.testing.assert_allclose(d2[0, 0].numpy(), cv.astype(np.float64) ** 2, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(ts.fba_click_maps_traceable(torch.from_numpy(masks)).numpy(),
                               fba_click_maps(torch.from_numpy(masks)).numpy(), atol=1e-6)


@pytest.mark.parametrize("base", ["fba", "dim", "index"])
def test_other_bases_export_and_match_the_session(base: str, shot, shared_dir: Path, tmp_path: Path) -> None:
    """The golden README's deterministic weights (seed 2024, scale 1.0, FBA's fix-up)."""
    from tcvom.matting.gca_session import MattingSession, load_matting_model

    torch.set_num_threads(1)
    ref = shared_dir / "reference"
    sys.path.insert(0, str(ref))
    try:
        import det_weights
    finally:
        sys.path.remove(str(ref))
    state = det_weights.make_state_dict(str(ref / f"{base}_tam_state_dict.tsv"), seed=2024, scale=1.0)
    if base == "fba":
        state["decoder.conv_up4.4.weight"][0] *= 0.8
        state["decoder.conv_up4.4.bias"][0] = 0.445
    weights = tmp_path / f"{base}_tam.pth"
    torch.save(state, weights)
    out = ts.export_torchscript(weights, tmp_path / "model.pt", width=W, height=H, base=base)
    settings = json.loads(out.with_suffix(".json").read_text())
    assert settings["modelId"] == f"tcvom_{base}_tam" and settings["channelsOut"] == "rgba.alpha"
    module = torch.jit.load(str(out))
    frames, trimaps = shot
    session = MattingSession(ArrayFrames(frames), ArrayFrames(trimaps), load_matting_model(weights))
    for frame in (1001, 1002, 1003):
        with torch.no_grad():
            alpha = module(_stacked(frames, trimaps, session.window(frame)))[0, 0].numpy()
        expected = session.alpha(frame)
        unknown = trimaps[frame] == 128
        assert np.ptp(expected[unknown]) > 0.05, "the check needs a non-trivial prediction"
        np.testing.assert_allclose(alpha, expected, atol=BASE_ATOL[base], rtol=0)
    with pytest.raises(WeightsError, match="not the gca base"):
        ts.build_nuke_module(weights, width=W, height=H, base="gca")
