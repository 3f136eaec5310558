"""A plate's colour does not depend on an alpha channel it carries (issue 16, point 1).

OpenImageIO premultiplies files that store unassociated alpha (PNG, TIFF with an
unassociated extra sample) on reading unless told not to; a half-transparent PNG plate
then came back with its RGB halved and a different matte.
"""

from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from tcvom.io import open_frames


def _write(path: Path, pixels: np.ndarray, pixel_type: str, *, unassociated: bool) -> None:
    height, width, count = pixels.shape
    spec = oiio.ImageSpec(width, height, count, pixel_type)
    spec.channelnames = ("R", "G", "B", "A")[:count]
    if count == 4:
        spec.alpha_channel = 3
    if unassociated:
        spec.attribute("oiio:UnassociatedAlpha", 1)
    out = oiio.ImageOutput.create(str(path))
    assert out is not None and out.open(str(path), spec), oiio.geterror()
    assert out.write_image(np.ascontiguousarray(pixels))
    out.close()


@pytest.mark.parametrize(
    ("suffix", "pixel_type", "unassociated"),
    [(".png", "uint8", True), (".png", "uint16", True), (".tif", "uint16", True), (".tif", "uint16", False),
     (".tif", "float", False), (".exr", "half", False)],
)
def test_rgba_plate_reads_as_its_rgb(tmp_path: Path, suffix: str, pixel_type: str, unassociated: bool) -> None:
    rng = np.random.default_rng(3)
    rgb = rng.uniform(0.05, 0.95, (12, 16, 3)).astype(np.float32)
    alpha = np.full((12, 16, 1), 0.5, np.float32)
    alpha[:, :4] = 0.0  # fully transparent columns must keep their colour too
    _write(tmp_path / f"rgba.1001{suffix}", np.concatenate([rgb, alpha], axis=2), pixel_type, unassociated=unassociated)
    _write(tmp_path / f"rgb.1001{suffix}", rgb, pixel_type, unassociated=False)
    with_alpha = open_frames(str(tmp_path / f"rgba.####{suffix}")).read(1001)
    without = open_frames(str(tmp_path / f"rgb.####{suffix}")).read(1001)
    tolerance = 1.5 / 255 if pixel_type == "uint8" else 2e-3
    assert np.abs(with_alpha - without).max() <= tolerance
    assert with_alpha[:, :4].mean() > 0.2  # not premultiplied to black


@pytest.mark.parametrize(
    ("suffix", "pixel_type", "unassociated", "said"),
    [(".png", "uint8", True, True), (".tif", "uint16", True, True), (".tif", "uint16", False, False),
     (".exr", "half", False, False)],
)
def test_an_alpha_below_1_beside_unpremultiplied_colour_is_said_once(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                                     suffix: str, pixel_type: str, unassociated: bool,
                                                                     said: bool) -> None:
    """Blender QA: a PNG plate whose alpha is 0 rendered black under a right matte (Blender
    premultiplies such files when it loads them), unsaid: tcvom mattes the stored colour and
    says once that the alpha is below 1 and ignored. Associated-alpha files (EXR, an
    associated TIFF) are shown as stored: nothing to say."""
    rgb = np.full((6, 8, 3), 0.5, np.float32)
    for frame, low in ((1001, 1.0), (1002, 0.0), (1003, 0.0)):
        alpha = np.ones((6, 8, 1), np.float32)
        alpha[:, :2] = low
        _write(tmp_path / f"p.{frame}{suffix}", np.concatenate([rgb, alpha], axis=2), pixel_type,
               unassociated=unassociated)
    frames = open_frames(str(tmp_path / f"p.####{suffix}"))
    for frame in (1001, 1002, 1003):
        frames.read(frame)
    warned = [r.getMessage() for r in caplog.records if "alpha channel is below 1" in r.getMessage()]
    assert len(warned) == said
    if said:
        assert "frame 1002" in warned[0] and "down to 0" in warned[0] and "ignores the alpha" in warned[0]


def test_a_rerun_that_reuses_every_frame_says_the_alpha_again(tmp_path: Path, capsys) -> None:
    """Code review: the warning was said where a frame was read, so a rerun reusing every
    frame (a host's second pull) said nothing, while the host's composite stayed black."""
    from tcvom.cli import main
    from tcvom.data.example import write_example
    from tcvom.io import read_image
    from tcvom.io.sequence import frame_path

    shot = write_example(tmp_path / "ex", width=48, height=32, frames=3)
    for frame in range(shot.first, shot.last + 1):
        rgb = np.clip(read_image(frame_path(shot.plate, frame))[0][:, :, :3], 0, 1)
        alpha = np.ones((*rgb.shape[:2], 1), np.float32)
        alpha[:, :6] = 0.0
        _write(tmp_path / f"p.{frame}.png", np.concatenate([rgb, alpha], axis=2), "uint8", unassociated=True)
    args = ["run", "--plate", str(tmp_path / "p.####.png"), "--keyframes", shot.keyframes, "--out",
            str(tmp_path / "out"), "--method", "classical", "--progress", "none"]
    for _ in range(2):
        assert main(args) == 0
        assert capsys.readouterr().err.count("its alpha channel is below 1 (down to 0)") == 1
