from pathlib import Path

import numpy as np
import PyOpenColorIO as ocio
import pytest

from tcvom.errors import InputError
from tcvom.io import ColourConverter, open_frames, write_image


def srgb_oetf(linear: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1, written out independently of OpenColorIO."""
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.power(linear, 1 / 2.4) - 0.055)


def test_exr_defaults_to_scene_linear_and_matches_the_srgb_formula(tmp_path: Path) -> None:
    ramp = np.linspace(0.0, 1.0, 64, dtype=np.float32)
    pixels = np.repeat(ramp[None, :, None], 4, 0).repeat(3, 2)
    write_image(tmp_path / "p.0001.exr", pixels, pixel_type="float")
    seen = open_frames(tmp_path / "p.####.exr").read(1)
    assert np.abs(seen[0, :, 0] - srgb_oetf(ramp)).max() < 2e-4


def test_integer_files_default_to_srgb_unchanged(tmp_path: Path) -> None:
    pixels = np.random.default_rng(0).random((4, 5, 3), dtype=np.float32)
    write_image(tmp_path / "p.0001.png", pixels, pixel_type="uint16")
    assert np.abs(open_frames(tmp_path / "p.####.png").read(1) - pixels).max() < 1e-4


def test_override_matches_opencolorio_processor(tmp_path: Path) -> None:
    pixels = np.random.default_rng(3).random((6, 7, 3), dtype=np.float32) * 0.8
    write_image(tmp_path / "p.0001.exr", pixels, pixel_type="float")
    seen = open_frames(tmp_path / "p.####.exr", colorspace="ACEScg").read(1)
    config = ocio.Config.CreateFromBuiltinConfig("studio-config-latest")  # pyright: ignore[reportAttributeAccessIssue]  (compiled module, no stubs)
    expected = pixels.copy()
    config.getProcessor("ACEScg", "sRGB Encoded Rec.709 (sRGB)").getDefaultCPUProcessor().applyRGB(expected)
    assert np.abs(seen - np.clip(expected, 0, 1)).max() < 1e-5


def test_values_are_clamped_and_nonfinite_counted(tmp_path: Path, caplog) -> None:
    pixels = np.full((4, 4, 3), 5.0, np.float32)
    pixels[0, 0, 0] = np.nan
    pixels[1, 1, 1] = np.inf
    write_image(tmp_path / "p.0001.exr", pixels, pixel_type="float")
    frames = open_frames(tmp_path / "p.####.exr")
    seen = frames.read(1)
    assert seen.min() >= 0.0 and seen.max() <= 1.0 and np.isfinite(seen).all()
    assert frames.nonfinite == {1: 2}
    frames.read(1)  # read again (the trimap and matte stages both read it): said once
    assert caplog.text.count("NaN/infinite") == 1 and "p.0001.exr: frame 1: 2 NaN" in caplog.text


def test_unknown_colour_space_is_an_input_error() -> None:
    with pytest.raises(InputError, match="unknown input colour space"):
        ColourConverter("NotAColourSpace")
