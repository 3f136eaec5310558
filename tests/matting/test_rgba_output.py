"""RGBA output keeps the plate's scene-linear colour (issue 21, points 1 and 11).

The foreground used to be estimated from the networks' clamped sRGB copy of the plate and
written as linear Rec.709 whatever the plate's space: a foreground of (4.0, 2.0, 0.5)
came out (1, 1, 0.5), an ACEScg plate came out in Rec.709 primaries.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from tcvom import pipeline
from tcvom.io import open_frames, read_image, write_image
from tcvom.io.colour import ColourConverter

H, W = 24, 32
FG = (4.0, 2.0, 0.5)
BG = (0.05, 0.2, 0.3)


def _shot(folder: Path, suffix: str = ".exr", pixel_type: str = "float") -> tuple[str, str]:
    plate = np.empty((H, W, 3), np.float32)
    plate[:] = BG
    plate[6:18, 10:22] = FG if pixel_type == "float" else (0.8, 0.6, 0.4)
    tri = np.zeros((H, W), np.float32)
    tri[4:20, 8:24] = 128 / 255
    tri[8:16, 12:20] = 1.0
    for frame in (1001, 1002, 1003):
        write_image(folder / f"plate.{frame}{suffix}", plate, pixel_type=pixel_type)
        write_image(folder / f"tri.{frame}.png", tri, pixel_type="uint8")
    return str(folder / f"plate.####{suffix}"), str(folder / "tri.####.png")


def _matte(tmp_path: Path, plate: str, trimaps: str, **options) -> np.ndarray:
    result = pipeline.matte(plate, trimaps, tmp_path / "out", method="classical", output="rgba",
                            progress="none", **options)
    assert result.written == [1001, 1002, 1003]
    pixels, _ = read_image(tmp_path / "out" / "alpha.1002.exr")
    return pixels


@pytest.mark.parametrize("fmt", ["exr", "exr32"])
def test_highlights_above_one_are_kept(tmp_path: Path, fmt: str) -> None:
    plate, trimaps = _shot(tmp_path)
    rgba = _matte(tmp_path, plate, trimaps, alpha_format=fmt)
    core = rgba[8:16, 12:20]
    assert np.allclose(core[..., 3], 1.0)
    assert np.allclose(core[..., :3], FG, rtol=2e-3)
    # over the plate's own background the comp rebuilds the plate where alpha is 1
    background = np.broadcast_to(np.asarray(BG, np.float32), rgba[..., :3].shape)
    comp = rgba[..., :3] + (1 - rgba[..., 3:]) * background
    assert np.allclose(comp[8:16, 12:20], FG, rtol=2e-3)


def test_acescg_plate_stays_acescg(tmp_path: Path) -> None:
    plate, trimaps = _shot(tmp_path)
    rgba = _matte(tmp_path, plate, trimaps, input_colorspace="ACEScg")
    assert np.allclose(rgba[8:16, 12:20, :3], FG, rtol=2e-3)  # not converted to Rec.709 primaries
    inp = oiio.ImageInput.open(str(tmp_path / "out" / "alpha.1002.exr"))
    assert inp.spec().get_string_attribute("tcvom:colorspace") == "ACEScg"
    inp.close()


def test_srgb_png_plate_is_linearised_for_exr(tmp_path: Path) -> None:
    plate, trimaps = _shot(tmp_path, ".png", "uint16")
    rgba = _matte(tmp_path, plate, trimaps)
    converter = ColourConverter()
    expected = converter.to_linear(np.array([[[0.8, 0.6, 0.4]]], np.float32), is_float=False)[0, 0]
    assert np.allclose(rgba[8:16, 12:20, :3], expected, atol=2e-3)
    assert expected[0] == pytest.approx(0.6038, abs=1e-3)


def test_integer_rgba_stays_display_referred(tmp_path: Path) -> None:
    plate, trimaps = _shot(tmp_path)
    pipeline.matte(plate, trimaps, tmp_path / "out", method="classical", output="rgba", alpha_format="png16",
                   progress="none")
    pixels, _ = read_image(tmp_path / "out" / "alpha.1002.png")
    assert pixels.shape[2] == 4 and pixels.max() <= 1.0
    assert np.allclose(pixels[8:16, 12:20, 3], 1.0)


def test_rgba_reuses_the_frames_read_and_one_processor(tmp_path: Path) -> None:
    plate, _ = _shot(tmp_path)
    source = open_frames(plate, colorspace="ACEScg")
    source.remember(capacity=2)
    source.read(1001)
    source.read(1002)
    Path(source.path(1001)).unlink()  # a second read would fail: the kept pixels are used
    linear = source.linear(1001)
    assert np.allclose(linear[10, 12], FG)
    converter = ColourConverter("sRGB Encoded Rec.709 (sRGB)")
    for _ in range(3):
        converter.to_linear(np.zeros((2, 2, 3), np.float32), is_float=False)
    assert len(converter._processors) == 1


def test_a_networks_own_foreground_is_converted_to_the_plates_space(tmp_path: Path) -> None:
    from tcvom.matting.foreground import rgba_foreground

    plate, _ = _shot(tmp_path)
    source = open_frames(plate)
    predicted = np.full((H, W, 3), 0.8, np.float32)  # display-referred sRGB, as FBA predicts it
    alpha = np.ones((H, W), np.float32)
    trimap = np.full((H, W), 128, np.uint8)
    trimap[8:16, 12:20] = 255
    linear = rgba_foreground(source, 1001, alpha, scene_linear=True, predicted=predicted, trimap=trimap)
    unknown = trimap == 128
    assert np.allclose(linear[unknown], 0.6038, atol=1e-3)
    # the known region takes the plate's own scene-linear values: highlights are not clamped
    assert np.allclose(linear[8:16, 12:20], FG)
    assert rgba_foreground(source, 1001, alpha, scene_linear=False, predicted=predicted, trimap=trimap) is predicted


def test_colour_beyond_half_float_is_named_not_silently_infinite(tmp_path: Path, caplog) -> None:
    from tcvom.io import AlphaWriter

    alpha = np.ones((4, 5), np.float32)
    glint = np.full((4, 5, 3), 2.0, np.float32)
    glint[1, 2] = 1e5
    writer = AlphaWriter(tmp_path / "exr", kind="rgba")
    writer.write(1001, alpha, glint)
    path = tmp_path / "exr" / "alpha.1001.exr"
    assert f"{path}: frame 1001: colour values beyond +-65504" in caplog.text and "exr32" in caplog.text
    written, _ = read_image(path)
    assert np.isinf(written[1, 2, 0])  # what the warning is about
    caplog.clear()
    writer.write(1002, alpha, glint)  # said once per output, not once per frame
    assert "65504" not in caplog.text
    caplog.clear()
    AlphaWriter(tmp_path / "exr32", kind="rgba", fmt="exr32").write(1001, alpha, glint)
    assert "65504" not in caplog.text
    assert read_image(tmp_path / "exr32" / "alpha.1001.exr")[0][1, 2, 0] == 1e5


def test_every_pixel_stored_opaque_shows_the_plate(tmp_path: Path) -> None:
    """Odd-shots QA: a half EXR stores any alpha of 0.99976 or more as 1.0, but the plate
    was kept only where the float alpha was 1: up to 25 edge pixels a frame read A = 1
    with colour 16 % off a bright plate (a dark rim over any background)."""
    h, w = 67, 101
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for i, frame in enumerate((1001, 1002, 1003)):
        a = np.clip(16.75 - np.hypot(xx - w * (0.3 + 0.2 * i), yy - h / 2) + 0.5, 0, 1)  # a soft-edged disc
        bg = np.stack([0.2 + 0.1 * np.sin(xx / 7), 0.3 + 0.1 * np.cos(yy / 5), 0.5 + 0 * xx], -1)
        fg = np.stack([6 + 2 * np.sin(yy / 3), 3 + 0 * xx, 0.5 + 1.5 * np.cos(xx / 4) ** 2], -1)  # scene-linear
        write_image(tmp_path / f"plate.{frame}.exr", a[..., None] * fg + (1 - a[..., None]) * bg, pixel_type="half")
        tri = np.full((h, w), 128 / 255, np.float32)
        tri[a >= 1] = 1.0
        tri[np.hypot(xx - w * (0.3 + 0.2 * i), yy - h / 2) > 20] = 0.0
        write_image(tmp_path / f"tri.{frame}.png", tri, pixel_type="uint8")
    pipeline.matte(str(tmp_path / "plate.####.exr"), str(tmp_path / "tri.####.png"), tmp_path / "out",
                   method="classical", output="rgba", progress="none")
    for frame in (1001, 1002, 1003):
        rgba, _ = read_image(tmp_path / "out" / f"alpha.{frame}.exr")
        plate, _ = read_image(tmp_path / f"plate.{frame}.exr")
        opaque = rgba[..., 3] == 1.0
        assert opaque.any()
        np.testing.assert_allclose(rgba[opaque, :3], plate[opaque], rtol=2e-3, err_msg=str(frame))
