"""GCA+TAM and the GCA baseline against the reference implementation's outputs
(shared/reference/golden, README sections 2, 3 and 8): through the model, through the
session, and through ``tcvom matte`` writing float32 EXR. Tolerance: README §8 (5e-5)."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
import torch

from tcvom.io.sources import ArrayFrames
from tcvom.matting.gca_session import GcaTamSession, load_gca_model
from tcvom.models import GcaSingle, GcaTam, SpectralNorm, composite, make_input
from tcvom.weights import checkpoints

pytestmark = pytest.mark.golden
ATOL = 5e-5
WINDOWS = [(1, 0, 1), (0, 1, 2), (1, 2, 3), (2, 3, 2)]  # README §3 step 1


@pytest.fixture(scope="module")
def golden(shared_dir):
    import cv2

    ref = shared_dir / "reference"
    g = ref / "golden"
    sys.path.insert(0, str(ref))
    try:
        import det_weights
    finally:
        sys.path.remove(str(ref))
    assert torch.get_default_dtype() == torch.float32
    state = det_weights.gca_state_dict(str(ref / "tcvom_gca_tam_state_dict.tsv"), seed=2024, scale=1.3)
    frames = [cv2.cvtColor(cv2.imread(str(g / f"frame_{t:04d}.png")), cv2.COLOR_BGR2RGB) for t in range(4)]
    trimaps = [cv2.imread(str(g / f"trimap_{t:04d}.png"), cv2.IMREAD_GRAYSCALE) for t in range(4)]
    return {
        "dir": g,
        "state": state,
        "single_state": {k: v for k, v in state.items() if not k.startswith("decoder.fam.")},
        "frames": frames,
        "trimaps": trimaps,
        "alpha": np.load(g / "gca_tam_alpha.npy"),
        "raw": np.load(g / "gca_tam_raw.npy"),
        "single": np.load(g / "gca_single_alpha.npy"),
    }


def _input(golden, t):
    image = torch.from_numpy(golden["frames"][t].astype(np.float32) / 255).permute(2, 0, 1)[None]
    return make_input(image, torch.from_numpy(golden["trimaps"][t])[None, None])


def test_spectral_norm_sigmas(golden):
    model = checkpoints.load_into(GcaTam().eval(), golden["state"], what="GCA+TAM")
    sigmas = json.loads((golden["dir"] / "gca_sn_sigma.json").read_text())["sigma"]
    ours = {name: float(m.sigma().detach()) for name, m in model.named_modules() if isinstance(m, SpectralNorm)}
    assert set(ours) == set(sigmas) and len(ours) == 70
    for name, value in sigmas.items():
        assert ours[name] == pytest.approx(value, rel=1e-6), name


def test_gca_tam_model(golden):
    torch.set_num_threads(1)
    model = checkpoints.load_into(GcaTam().eval(), golden["state"], what="GCA+TAM")
    with torch.inference_mode():
        for t, (p, c, n) in enumerate(WINDOWS):
            raw = model(_input(golden, p), _input(golden, c), _input(golden, n))
            assert raw.shape == (1, 1, 96, 224)
            np.testing.assert_allclose(raw[0, 0, :72, :200].numpy(), golden["raw"][t], atol=ATOL, rtol=0)
            alpha = composite(raw, torch.from_numpy(golden["trimaps"][t])[None, None])[0, 0].numpy()
            np.testing.assert_allclose(alpha, golden["alpha"][t], atol=ATOL, rtol=0)
            known = golden["trimaps"][t] != 128
            assert np.array_equal(alpha[known], golden["trimaps"][t][known] / 255.0)


def test_gca_single_model(golden):
    torch.set_num_threads(1)
    model = checkpoints.load_into(GcaSingle().eval(), golden["single_state"], what="GCA")
    with torch.inference_mode():
        for t in range(4):
            raw = model(_input(golden, t))
            alpha = composite(raw, torch.from_numpy(golden["trimaps"][t])[None, None])[0, 0].numpy()
            np.testing.assert_allclose(alpha, golden["single"][t], atol=ATOL, rtol=0)


def _session(golden, state, **kwargs):
    frames = ArrayFrames({1001 + t: f.astype(np.float32) / 255 for t, f in enumerate(golden["frames"])})
    trimaps = ArrayFrames({1001 + t: tri for t, tri in enumerate(golden["trimaps"])})
    return GcaTamSession(frames, trimaps, load_gca_model(state), **kwargs)


def test_gca_tam_session(golden):
    torch.set_num_threads(1)
    session = _session(golden, golden["state"])
    for frame, alpha in session.alphas():
        np.testing.assert_allclose(alpha, golden["alpha"][frame - 1001], atol=ATOL, rtol=0)
    assert session.encoded == 4  # part A once per frame
    np.testing.assert_allclose(session.raw_alpha(1003), golden["raw"][2], atol=ATOL, rtol=0)


def test_gca_single_session(golden):
    torch.set_num_threads(1)
    session = _session(golden, golden["single_state"])
    assert not session.temporal
    for frame, alpha in session.alphas():
        np.testing.assert_allclose(alpha, golden["single"][frame - 1001], atol=ATOL, rtol=0)


def test_tcvom_matte_command_writes_golden_exr(golden, tmp_path):
    cli = pytest.importorskip("tcvom.cli")
    from tcvom.io import read_image

    plate = tmp_path / "plate"
    tris = tmp_path / "trimaps"
    plate.mkdir()
    tris.mkdir()
    for t in range(4):
        shutil.copy(golden["dir"] / f"frame_{t:04d}.png", plate / f"plate.{1001 + t:04d}.png")
        shutil.copy(golden["dir"] / f"trimap_{t:04d}.png", tris / f"tri.{1001 + t:04d}.png")
    weights = tmp_path / "gca_tam.pth"
    torch.save(golden["state"], weights)
    out = tmp_path / "out"
    code = cli.main([
        "matte", "--plate", str(plate / "plate.####.png"), "--trimaps", str(tris / "tri.####.png"),
        "--out", str(out), "--method", "tcvom", "--weights", str(weights),
        "--alpha-format", "exr32", "--progress", "none",
    ])
    assert code == 0
    written = sorted(out.glob("*.exr"))
    assert len(written) == 4
    for t, path in enumerate(written):
        pixels, _ = read_image(path)
        alpha = np.asarray(pixels, dtype=np.float32).reshape(72, 200, -1)[:, :, 0]
        assert pixels.dtype == np.float32
        np.testing.assert_allclose(alpha, golden["alpha"][t], atol=ATOL, rtol=0)


@pytest.mark.parametrize("dtype,max_abs,mean_abs", [("fp16", 2e-2, 1e-3), ("bf16", 6e-2, 5e-3)])
def test_half_precision_on_cpu_against_fp32(golden, dtype, max_abs, mean_abs):
    """Half-precision alpha against fp32 in the trimap's unknown region, on the golden
    weights (chosen to be sensitive: saturating tanh, a strong TAM). fp16 meets issue 18's
    target (max 2e-2, mean 1e-3; measured 6.1e-3 / 5.1e-4); bf16's 8-bit mantissa in the
    activations does not (measured 4.8e-2 / 4.2e-3), whatever stays float32. Scores,
    softmaxes, spectral-norm divisions and the last layer are float32 (models/gca_block.py,
    tam.py, spectral_norm.py, gca_decoder.py); known pixels stay exact."""
    torch.set_num_threads(1)
    fp32 = dict(_session(golden, golden["state"]).alphas())
    half = dict(_session(golden, golden["state"], dtype=dtype).alphas())
    for frame, alpha in fp32.items():
        unknown = golden["trimaps"][frame - 1001] == 128
        diff = np.abs(half[frame] - alpha)[unknown]
        assert diff.max() <= max_abs and diff.mean() <= mean_abs, (frame, diff.max(), diff.mean())
        assert np.array_equal(half[frame][~unknown], alpha[~unknown])
