"""Which channels of a plate frame are matted: R, G, B by name (in a multi-part EXR, of the
part that has them), else the one colour layer of a multi-layer EXR; several colour
layers, no colour at all, integer IDs or a deep image are refused with the file and frame
(they used to be matted on whichever channels came first)."""

from __future__ import annotations

import json
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
    (("R", "G"), "channels R, G"),  # a UV or motion-vector pass: was matted as grey R
    # odd-files QA: "no ... grey Y: it has channels Y, BY, RY", with a fix (oiiotool --ch) that cannot convert it
    (("Y", "RY", "BY"), "OpenEXR luminance/chroma image (channels Y, BY, RY)"),
])
def test_a_frame_without_one_colour_layer_is_refused(small_example, tmp_path: Path, capsys, channels,
                                                     mention) -> None:
    plate = _plate(small_example, tmp_path, channels, dict.fromkeys(channels, "noise"))
    assert _matte(plate, small_example.trimaps, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "plate.1003.exr" in err and "frame 1003" in err and mention in err, err
    assert not (tmp_path / "out" / "alpha.1003.exr").exists()


def test_a_grey_frame_in_a_colour_plate_is_named(small_example, tmp_path: Path, capsys) -> None:
    """Odd-inputs QA: a one-channel (Y) frame in an RGB plate, likely another pass rendered
    into the sequence, was matted without a word."""
    plate = _plate(small_example, tmp_path, ("Y",), {"Y": "G"})
    capsys.readouterr()
    assert _matte(plate, small_example.trimaps, tmp_path / "out") == 0
    err = capsys.readouterr().err
    assert "plate.1003.exr: frame 1003 is grey (one channel), the plate's first frame colour (R, G, B)" in err, err


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


def _multipart(path: Path, parts: list[tuple[str, tuple[str, ...], np.ndarray]],
               views: tuple[str, ...] = ()) -> None:
    """Write ``path`` as a multi-part EXR of (part name, channel names, H x W x C pixels);
    ``views``: a stereo file's multiView list, each part's view the start of its name."""
    specs = []
    for name, channels, pixels in parts:
        spec = oiio.ImageSpec(pixels.shape[1], pixels.shape[0], len(channels), "half")
        spec.channelnames = channels
        spec.attribute("name", name)
        if views:
            spec.attribute("view", name.split(".")[0])
            spec.attribute("multiView", oiio.TypeDesc(f"string[{len(views)}]"), views)
        specs.append(spec)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), tuple(specs)), out.geterror()
    for index, (_, _, pixels) in enumerate(parts):
        if index:
            assert out.open(str(path), specs[index], "AppendSubimage")
        assert out.write_image(np.ascontiguousarray(pixels, dtype=np.float32))
    out.close()


def test_a_multi_part_exr_is_matted_on_its_beauty_part(small_example, tmp_path: Path, capsys, reference) -> None:
    """AOVs in parts come in any order: a flat diffuse part before the beauty part was matted
    instead of it (exit 0, a wrong matte). Without an R, G, B part the frame is refused."""
    plate = _plate(small_example, tmp_path, ("R", "G", "B"), {"R": "R", "G": "G", "B": "B"})
    path = Path(plate.replace("####", "1003"))
    rgb, _ = read_image(path)
    flat = np.full_like(rgb, 0.02)
    _multipart(path, [("diffuse", ("diffuse.R", "diffuse.G", "diffuse.B"), flat),
                      ("rgba", ("R", "G", "B", "A"), np.dstack([rgb, np.ones(rgb.shape[:2], np.float32)]))])
    assert _matte(plate, small_example.trimaps, tmp_path / "out") == 0
    assert np.allclose(read_image(tmp_path / "out" / "alpha.1003.exr")[0], reference, atol=2e-3)

    _multipart(path, [("diffuse", ("diffuse.R", "diffuse.G", "diffuse.B"), flat),
                      ("specular", ("specular.R", "specular.G", "specular.B"), flat)])
    assert _matte(plate, small_example.trimaps, tmp_path / "refused") == 2
    err = capsys.readouterr().err
    assert "frame 1003" in err and "multi-part" in err and "diffuse (diffuse.R" in err and "specular" in err, err

    # OpenEXR lets parts share channel names: of several R, G, B parts the one named as the
    # beauty is read, whatever its place (colour QA: the first was, a flat AOV, exit 0)
    rgba = np.dstack([rgb, np.ones(rgb.shape[:2], np.float32)])
    _multipart(path, [("diffuse", ("R", "G", "B"), flat), ("rgba", ("R", "G", "B", "A"), rgba)])
    assert _matte(plate, small_example.trimaps, tmp_path / "named") == 0
    assert np.allclose(read_image(tmp_path / "named" / "alpha.1003.exr")[0], reference, atol=2e-3)
    # none named so: refused, every part named
    _multipart(path, [("depth", ("Z",), rgb[..., :1]), ("diffuse", ("R", "G", "B"), flat),
                      ("pass2", ("R", "G", "B", "A"), rgba)])
    capsys.readouterr()
    assert _matte(plate, small_example.trimaps, tmp_path / "unnamed") == 2
    err = capsys.readouterr().err
    assert "frame 1003" in err and "several parts of R, G, B channels" in err and "pass2 (R, G, B, A)" in err, err
    # two views both named as the beauty (stereo): the first, as before
    _multipart(path, [("left.rgba", ("R", "G", "B", "A"), rgba), ("right.rgba", ("R", "G", "B", "A"), rgba * 0.5)])
    assert _matte(plate, small_example.trimaps, tmp_path / "stereo") == 0
    assert np.allclose(read_image(tmp_path / "stereo" / "alpha.1003.exr")[0], reference, atol=2e-3)
    # plates QA: the default view (the first of multiView), whichever eye is stored first
    _multipart(path, [("right.rgba", ("R", "G", "B", "A"), rgba * 0.5), ("left.rgba", ("R", "G", "B", "A"), rgba)],
               views=("left", "right"))
    assert _matte(plate, small_example.trimaps, tmp_path / "hero") == 0
    assert np.allclose(read_image(tmp_path / "hero" / "alpha.1003.exr")[0], reference, atol=2e-3)

    # one part holds the one picture (a colour layer), the other depth: that part is read
    _multipart(path, [("depth", ("Z",), rgb[..., :1] * 100), ("beauty", ("beauty.R", "beauty.G", "beauty.B"), rgb)])
    assert _matte(plate, small_example.trimaps, tmp_path / "layer") == 0
    assert np.allclose(read_image(tmp_path / "layer" / "alpha.1003.exr")[0], reference, atol=2e-3)
    # `tcvom info` shows the part read, not part 0 (QA: it showed the depth part's one channel)
    capsys.readouterr()
    assert main(["info", str(path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["channels"] == ["beauty.R", "beauty.G", "beauty.B"] and shown["pixel_type"] == "half"
    assert shown["part_read"] == "beauty (beauty.R, beauty.G, beauty.B)" and shown["parts"][0] == "depth (Z)"


def test_the_second_page_of_a_tiff_is_not_a_part(small_example, tmp_path: Path) -> None:
    """A grey TIFF with a second page (a thumbnail) was refused as "a multi-part EXR"."""
    grey, _ = read_image(small_example.plate.replace("####", "1001"))
    path = tmp_path / "grey.tif"
    spec = oiio.ImageSpec(96, 64, 1, "uint16")
    thumb = oiio.ImageSpec(24, 16, 3, "uint8")
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), (spec, thumb)), out.geterror()
    assert out.write_image(np.ascontiguousarray(np.clip(grey[..., :1], 0, 1)))
    assert out.open(str(path), thumb, "AppendSubimage") and out.write_image(np.zeros((16, 24, 3), np.float32))
    out.close()
    from tcvom.io import open_frames

    frames = open_frames(str(tmp_path / "grey.tif"), None)
    picture = frames.read(frames.frame_numbers[0])
    assert picture.shape == (64, 96, 3) and np.allclose(picture[..., 0], picture[..., 2])


def test_an_integer_id_pass_is_refused(small_example, tmp_path: Path, capsys) -> None:
    """32-bit integer channels (object or material IDs) were read as an 8-bit picture: white."""
    plate = _plate(small_example, tmp_path, ("R", "G", "B"), {"R": "R", "G": "G", "B": "B"})
    path = Path(plate.replace("####", "1003"))
    spec = oiio.ImageSpec(96, 64, 3, "uint")
    spec.channelnames = ("R", "G", "B")
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec) and out.write_image(np.full((64, 96, 3), 7, np.uint32))
    out.close()
    assert _matte(plate, small_example.trimaps, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "frame 1003" in err and "32-bit integer" in err, err


def test_a_photo_orientation_tag_is_named_once(small_example, tmp_path: Path, capsys) -> None:
    """A JPEG whose orientation tag asks viewers to turn it was matted as stored without a
    word, while the artist paints keyframes on the turned picture a viewer shows."""
    folder = tmp_path / "turned"
    folder.mkdir()
    for source in sorted(Path(small_example.plate).parent.glob("*.exr"))[:2]:
        pixels, _ = read_image(source)
        spec = oiio.ImageSpec(pixels.shape[1], pixels.shape[0], 3, "uint8")
        spec.attribute("Orientation", 6)
        path = folder / source.with_suffix(".jpg").name
        out = oiio.ImageOutput.create(str(path))
        assert out.open(str(path), spec) and out.write_image(np.clip(pixels, 0, 1))
        out.close()
    plate = str(folder / Path(small_example.plate).with_suffix(".jpg").name)
    assert main(["matte", "--plate", plate, "--trimaps", small_example.trimaps, "--out", str(tmp_path / "out"),
                 "--method", "classical", "--frames", "1001-1002", "--progress", "none", "--no-review"]) == 0
    err = capsys.readouterr().err
    assert err.count("orientation 6") == 1 and "reads it as stored (96x64)" in err, err
    assert main(["info", str(folder / "plate.1001.jpg"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["orientation"].startswith("6: viewers turn or flip")


def test_a_trimaps_orientation_tag_is_named_too(small_example, tmp_path: Path, capsys) -> None:
    """Media QA: a keyframe TIFF tagged to be turned 180 degrees was read as stored without a
    word, where a plate with the tag is named."""
    keys = tmp_path / "keys"
    keys.mkdir()
    for frame in (1001, 1008):
        pixels, _ = read_image(small_example.trimaps.replace("####", str(frame)))
        spec = oiio.ImageSpec(pixels.shape[1], pixels.shape[0], 1, "uint8")
        spec.attribute("Orientation", 3)
        path = keys / f"key.{frame}.tif"
        out = oiio.ImageOutput.create(str(path))
        assert out.open(str(path), spec) and out.write_image(pixels[:, :, :1])
        out.close()
    assert main(["run", "--plate", small_example.plate, "--keyframes", str(keys / "key.####.tif"), "--out",
                 str(tmp_path / "out"), "--method", "classical", "--progress", "none", "--no-review"]) == 0
    err = capsys.readouterr().err
    assert err.count("orientation 3") == 2 and "key.1001.tif" in err and "key.1008.tif" in err, err
    assert "check that the keyframe trimap lines up with the plate as stored" in err, err
