"""Which channels of a plate frame are matted: R, G, B by name, else the one colour layer of a
multi-layer EXR; several colour layers, no colour at all, or a deep image are refused with
the file and frame (they used to be matted on whichever channels came first)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from tcvom.cli import main
from tcvom.io.images import read_image, write_image


def _plate(small_example, tmp_path: Path, channels: tuple[str, ...], place: dict[str, str]) -> str:
    """The example plate with frame 1003 rewritten with ``channels``: ``place`` maps a channel
    to the plate's R, G, B (or "noise", "Z") it holds."""
    folder = tmp_path / "plate"
    shutil.copytree(Path(small_example.plate).parent, folder)
    path = folder / "plate.1003.exr"
    rgb, _ = read_image(path)
    noise = np.random.default_rng(3).random(rgb.shape[:2], dtype=np.float32)
    planes = {"R": rgb[..., 0], "G": rgb[..., 1], "B": rgb[..., 2], "noise": noise, "Z": noise * 100}
    write_image(path, np.dstack([planes[place[c]] for c in channels]), pixel_type="float", channels=channels)
    return str(folder / "plate.####.exr")


def _matte(plate: str, trimaps: str, out: Path) -> int:
    return main(["matte", "--plate", plate, "--trimaps", trimaps, "--out", str(out), "--method", "classical",
                 "--frames", "1003", "--progress", "none", "--no-review"])


@pytest.fixture
def reference(small_example, tmp_path: Path) -> np.ndarray:
    assert _matte(small_example.plate, small_example.trimaps, tmp_path / "reference") == 0
    return read_image(tmp_path / "reference" / "alpha.1003.exr")[0]


@pytest.mark.parametrize("place", [
    {"Z": "Z", "B": "B", "G": "G", "R": "R"},  # named RGB (OpenImageIO reads them first)
    # the one colour layer, which OpenImageIO reads after AO.Z
    {"AO.Z": "Z", "beauty.B": "B", "beauty.G": "G", "beauty.R": "R", "beauty.A": "noise"},
])
def test_the_colour_channels_are_found_by_name(small_example, tmp_path: Path, reference, place) -> None:
    plate = _plate(small_example, tmp_path, tuple(place), place)
    assert _matte(plate, small_example.trimaps, tmp_path / "out") == 0
    got, _ = read_image(tmp_path / "out" / "alpha.1003.exr")
    assert np.allclose(got, reference, atol=2e-3)  # half plate vs float plate


@pytest.mark.parametrize(("channels", "mention"), [
    (("N.X", "N.Y", "N.Z", "P.X"), "channels N.X, N.Y, N.Z, P.X"),
    (("diffuse.R", "diffuse.G", "diffuse.B", "beauty.R", "beauty.G", "beauty.B"), "colour layers beauty, diffuse"),
])
def test_a_frame_without_one_colour_layer_is_refused(small_example, tmp_path: Path, capsys, channels,
                                                     mention) -> None:
    plate = _plate(small_example, tmp_path, channels, dict.fromkeys(channels, "noise"))
    assert _matte(plate, small_example.trimaps, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "plate.1003.exr" in err and "frame 1003" in err and mention in err, err
    assert not (tmp_path / "out" / "alpha.1003.exr").exists()


def test_a_deep_frame_is_refused(small_example, tmp_path: Path, capsys) -> None:
    plate = _plate(small_example, tmp_path, ("R", "G", "B"), {"R": "R", "G": "G", "B": "B"})
    path = Path(plate.replace("####", "1003"))
    spec = oiio.ImageSpec(96, 64, 2, "float")
    spec.channelnames = ("A", "Z")
    spec.deep = True
    deep = oiio.DeepData()
    deep.init(spec)
    for pixel in range(96 * 64):
        deep.set_samples(pixel, 1)
        deep.set_deep_value(pixel, 0, 0, 1.0)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec) and out.write_deep_image(deep)
    out.close()
    assert _matte(plate, small_example.trimaps, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "plate.1003.exr" in err and "frame 1003" in err and "deep image" in err, err
