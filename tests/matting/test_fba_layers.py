"""FBA's foreground and background colours as EXR layers (issue 19): ``tcvom matte --output
layers`` writes ``A``, ``fg.R fg.G fg.B`` and ``bg.R bg.G bg.B``, scene-linear and never
clamped, with the provenance of every tcvom EXR; bases without colours and formats without
layers are refused with exit code 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest
import torch

from tcvom import cli
from tcvom.io import open_frames, open_trimaps, write_image
from tcvom.io.writers import LAYER_CHANNELS
from tcvom.matting.gca_session import MattingSession
from tcvom.models.bases import build_matting

H, W = 32, 48
FRAMES = (1001, 1002, 1003)
HIGHLIGHT = (4.0, 2.0, 0.5)


def _srgb_to_linear(v: np.ndarray) -> np.ndarray:
    """The sRGB transfer function, written out (IEC 61966-2-1)."""
    v = np.asarray(v, np.float64)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


@pytest.fixture(scope="module")
def fba(tmp_path_factory):
    torch.manual_seed(1)
    model = build_matting("fba_tam")
    path = tmp_path_factory.mktemp("weights") / "FBA_TAM.pth"
    torch.save(model.state_dict(), path)
    return model, path


def _trimap() -> np.ndarray:
    tri = np.zeros((H, W), np.uint8)
    tri[4:28, 6:42] = 128
    tri[10:22, 16:32] = 255
    return tri


def _shot(folder: Path, *, exr: bool = False) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Plates (8-bit sRGB PNG, or float EXR with highlights in the known foreground) and
    trimaps; returns the plates as the network sees them (sRGB in [0, 1]) and the trimaps."""
    rng = np.random.default_rng(2)
    plates, tris = {}, {}
    for frame in FRAMES:
        plate = (rng.random((H, W, 3)) * 255).round().astype(np.float32) / 255
        if exr:
            plate[10:22, 16:32] = HIGHLIGHT
            write_image(folder / f"plate.{frame}.exr", plate, pixel_type="float")
        else:
            write_image(folder / f"plate.{frame}.png", plate, pixel_type="uint8")
        write_image(folder / f"tri.{frame}.png", _trimap().astype(np.float32) / 255, pixel_type="uint8")
        plates[frame], tris[frame] = plate, _trimap()
    return plates, tris


def _matte(folder: Path, weights: Path, *extra: str, suffix: str = "png") -> int:
    return cli.main(["matte", "--plate", str(folder / f"plate.####.{suffix}"),
                     "--trimaps", str(folder / "tri.####.png"), "--out", str(folder / "out"),
                     "--method", "tcvom", "--weights", str(weights), "--progress", "none", *extra])


def _read_layers(path: Path) -> tuple[dict[str, np.ndarray], oiio.ImageSpec]:
    """Every channel of an EXR by name, read with OpenImageIO."""
    inp = oiio.ImageInput.open(str(path))
    assert inp is not None, oiio.geterror()
    spec = inp.spec()
    pixels = inp.read_image(oiio.FLOAT).reshape(spec.height, spec.width, spec.nchannels)
    inp.close()
    return {name: pixels[:, :, i] for i, name in enumerate(spec.channelnames)}, spec


def test_layers_hold_fbas_foreground_and_background_as_the_api_gives_them(fba, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    model, weights = fba
    plates, tris = _shot(tmp_path)
    assert _matte(tmp_path, weights, "--output", "layers", "--alpha-format", "exr32") == 0
    written = sorted((tmp_path / "out").glob("*.exr"))
    assert [p.name for p in written] == [f"alpha.{f}.exr" for f in FRAMES]
    # the API on the frames as tcvom reads them
    session = MattingSession(open_frames(str(tmp_path / "plate.####.png")),
                             open_trimaps(str(tmp_path / "tri.####.png")), model)
    for frame, path in zip(FRAMES, written, strict=True):
        channels, spec = _read_layers(path)
        assert set(channels) == set(LAYER_CHANNELS)
        assert spec.format == oiio.FLOAT
        want = session.layers(frame)
        assert np.abs(channels["A"] - want["alpha"]).max() < 1e-6
        for layer, name in (("fg", "foreground"), ("bg", "background")):
            got = np.stack([channels[f"{layer}.{c}"] for c in "RGB"], axis=2)
            # the API's sRGB colours, linearised (an 8-bit sRGB plate gives linear Rec.709);
            # OpenColorIO's CPU processor is within 2.4e-5 of the written-out curve
            assert np.allclose(got, _srgb_to_linear(want[name]), rtol=1e-4, atol=1e-6), (frame, layer)
        # the network's colours, not the plate's, in the unknown region
        unknown = tris[frame] == 128
        assert np.abs(want["foreground"][unknown] - plates[frame][unknown]).max() > 0.05
        assert spec.get_string_attribute("tcvom:base") == "fba"
        assert spec.get_string_attribute("tcvom:weights").startswith("sha256:")
        assert spec.get_string_attribute("tcvom:method") == "tcvom"
        assert spec.get_int_attribute("tcvom:plate_frame") == frame
        assert spec.get_string_attribute("tcvom:colorspace") == "Linear Rec.709 (sRGB)"


def test_layers_keep_scene_linear_highlights_of_the_plate(fba, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    _, weights = fba
    plates, tris = _shot(tmp_path, exr=True)
    assert _matte(tmp_path, weights, "--output", "layers", suffix="exr") == 0  # half-float EXR
    channels, spec = _read_layers(tmp_path / "out" / "alpha.1002.exr")
    assert spec.format == oiio.HALF
    fg = np.stack([channels[f"fg.{c}"] for c in "RGB"], axis=2)
    bg = np.stack([channels[f"bg.{c}"] for c in "RGB"], axis=2)
    # known foreground: the plate's own values, above 1 (the network saw them clipped to 1)
    assert np.allclose(fg[10:22, 16:32], HIGHLIGHT, rtol=1e-3)
    assert np.allclose(channels["A"][10:22, 16:32], 1.0)
    background = tris[1002] == 0
    assert np.allclose(bg[background], plates[1002][background], atol=2e-3)
    assert fg.min() >= 0.0 and fg[tris[1002] == 128].max() <= 1.0 + 1e-3  # predicted: in [0, 1] linear


def test_layers_are_refused_for_formats_without_layers(fba, tmp_path: Path, capsys) -> None:
    _, weights = fba
    _shot(tmp_path)
    assert _matte(tmp_path, weights, "--output", "layers", "--alpha-format", "png16") == 2
    err = capsys.readouterr().err
    assert "--output layers" in err and "png16 cannot hold them" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # refused before anything is written (docs/io.md)


def test_layers_are_refused_for_bases_without_colours(tmp_path: Path, capsys) -> None:
    torch.manual_seed(3)
    weights = tmp_path / "INDEX_TAM.pth"
    torch.save(build_matting("index_tam").state_dict(), weights)
    _shot(tmp_path)
    assert _matte(tmp_path, weights, "--output", "layers") == 2
    err = capsys.readouterr().err
    assert "predicts foreground and background colours (FBA)" in err and "Index+TAM" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()  # refused before anything is written (docs/io.md)
    code = cli.main(["matte", "--plate", str(tmp_path / "plate.####.png"), "--trimaps", str(tmp_path / "tri.####.png"),
                     "--out", str(tmp_path / "out2"), "--method", "classical", "--output", "layers",
                     "--progress", "none"])
    assert code == 2
    assert "classical method predicts none" in capsys.readouterr().err
    assert not (tmp_path / "out2").exists()
