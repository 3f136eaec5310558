"""EXR plates whose data window crops the picture (a CG render's bounding box, moving from
frame to frame) are matted on the display window, each frame's pixels where they lie and
black around them: the same mattes as full frames holding that black, written over the
whole picture. A data window that reaches outside the shot's picture is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import OpenImageIO as oiio

from tcvom.cli import main
from tcvom.io.images import ImageLayout, read_image, write_image

#: frame -> data window (x, y, width, height) inside the 96x64 display window
BOXES = {1001: (4, 2, 80, 56), 1004: (20, 10, 50, 40), 1006: (0, 30, 96, 34)}


def _boxed(pattern: str, full: Path, crop: Path, crop_suffix: str, **full_format: str) -> tuple[str, str]:
    """The frames of ``pattern`` (the example's) as full frames, zero outside BOXES, and as
    those boxes alone (EXR data windows inside the 96x64 display window): two patterns."""
    full.mkdir()
    crop.mkdir()
    name = Path(pattern).name
    for source in sorted(Path(pattern).parent.glob(name.replace("####", "*"))):
        pixels, _ = read_image(source)
        frame = int(source.name.split(".")[1])
        x, y, w, h = BOXES.get(frame, (0, 0, 96, 64))
        outside = np.zeros_like(pixels)
        outside[y:y + h, x:x + w] = pixels[y:y + h, x:x + w]
        write_image(full / source.name, outside, **full_format)
        write_image(crop / source.with_suffix(crop_suffix).name, pixels[y:y + h, x:x + w],
                    layout=ImageLayout(w, h, x, y, 0, 0, 96, 64))
    return str(full / name), str(crop / Path(name).with_suffix(crop_suffix))


def _plates(plate: str, tmp_path: Path) -> tuple[str, str]:
    """The example plate as full frames black outside BOXES, and as those boxes' pixels alone."""
    return _boxed(plate, tmp_path / "full", tmp_path / "crop", ".exr")


def _matte(plate: str, trimaps: str, out: Path, *extra: str) -> int:
    return main(["matte", "--plate", plate, "--trimaps", trimaps, "--out", str(out), "--method", "classical",
                 "--progress", "none", "--no-review", *extra])


def test_cropped_data_windows_matte_as_the_black_around_them(small_example, tmp_path: Path) -> None:
    full, crop = _plates(small_example.plate, tmp_path)
    assert _matte(full, small_example.trimaps, tmp_path / "a") == 0
    assert _matte(crop, small_example.trimaps, tmp_path / "b") == 0
    for frame in range(1001, 1009):
        want, _ = read_image(tmp_path / "a" / f"alpha.{frame}.exr")
        got, _ = read_image(tmp_path / "b" / f"alpha.{frame}.exr")
        assert got.shape == want.shape == (64, 96, 1), frame
        assert np.array_equal(got, want), frame
    assert read_image(tmp_path / "b" / "alpha.1004.exr")[0][30, 40, 0] > 0  # the object is matted
    inp = oiio.ImageInput.open(str(tmp_path / "b" / "alpha.1004.exr"))
    spec = inp.spec()
    inp.close()
    assert (spec.x, spec.y, spec.width, spec.height) == (0, 0, 96, 64)
    assert (spec.full_x, spec.full_y, spec.full_width, spec.full_height) == (0, 0, 96, 64)


def test_rgba_of_a_cropped_frame_is_black_outside_its_data_window(small_example, tmp_path: Path) -> None:
    _, crop = _plates(small_example.plate, tmp_path)
    assert _matte(crop, small_example.trimaps, tmp_path / "b", "--output", "rgba", "--frames", "1004") == 0
    rgba, _ = read_image(tmp_path / "b" / "alpha.1004.exr")
    assert rgba.shape == (64, 96, 4)
    assert not rgba[:10, :, :3].any() and not rgba[:, :20, :3].any()


def test_a_data_window_outside_the_picture_is_refused(small_example, tmp_path: Path, capsys) -> None:
    _, crop = _plates(small_example.plate, tmp_path)
    path = Path(crop.replace("####", "1005"))
    pixels, _ = read_image(path)
    write_image(path, pixels, layout=ImageLayout(96, 64, -4, 0, 0, 0, 96, 64))
    assert _matte(crop, small_example.trimaps, tmp_path / "b") == 2
    err = capsys.readouterr().err
    assert "plate.1005.exr" in err and "frame 1005" in err and "reach outside" in err, err


def test_a_frame_of_another_display_window_is_refused(small_example, tmp_path: Path, capsys) -> None:
    """Its data window is the shot's, its display window (the picture it belongs to) is not:
    it used to pass."""
    full, _ = _plates(small_example.plate, tmp_path)
    path = Path(full.replace("####", "1005"))
    pixels, _ = read_image(path)
    write_image(path, pixels, layout=ImageLayout(96, 64, 0, 0, 0, 0, 128, 64))
    assert _matte(full, small_example.trimaps, tmp_path / "b") == 2
    err = capsys.readouterr().err
    assert "plate.1005.exr" in err and "frame 1005" in err and "display window" in err, err
    assert not (tmp_path / "b" / "alpha.1005.exr").exists()


def _trimaps(trimaps: str, tmp_path: Path) -> tuple[str, str]:
    """The example trimaps as full frames, background outside BOXES (PNG), and as those
    boxes alone (EXR)."""
    return _boxed(trimaps, tmp_path / "tri-full", tmp_path / "tri-crop", ".exr", pixel_type="uint8")


def test_cropped_exr_trimaps_are_placed_in_the_picture(small_example, tmp_path: Path) -> None:
    """They used to be refused for their size, or, with --resize-trimaps, stretched over the
    picture: now they lie where their data window says, background around them."""
    full, crop = _trimaps(small_example.trimaps, tmp_path)
    assert _matte(small_example.plate, full, tmp_path / "a") == 0
    for name, extra in (("b", ()), ("c", ("--resize-trimaps",))):
        assert _matte(small_example.plate, crop, tmp_path / name, *extra) == 0
        for frame in range(1001, 1009):
            want, _ = read_image(tmp_path / "a" / f"alpha.{frame}.exr")
            got, _ = read_image(tmp_path / name / f"alpha.{frame}.exr")
            assert np.array_equal(got, want), (name, frame)


def test_a_trimap_of_another_picture_or_of_the_overscans_shape_is_said_so(small_example, tmp_path: Path,
                                                                          capsys) -> None:
    """Odd-inputs QA: a cropped EXR keyframe of a picture at (0, 0) on a plate whose picture
    lies at (100, 50), and, on an overscanned plate, a trimap of the whole data window's
    shape with --resize-trimaps, were refused as "another shape (rotated or cropped?)"."""
    moved, over = tmp_path / "moved", tmp_path / "over"
    moved.mkdir()
    over.mkdir()
    for source in sorted(Path(small_example.plate).parent.glob("plate.*.exr")):
        pixels, _ = read_image(source)
        write_image(moved / source.name, pixels, layout=ImageLayout(96, 64, 100, 50, 100, 50, 96, 64))
        wide = np.pad(pixels, ((8, 8), (8, 8), (0, 0)), mode="edge")
        write_image(over / source.name, wide, layout=ImageLayout(112, 80, -8, -8, 0, 0, 96, 64))
    _, crop = _trimaps(small_example.trimaps, tmp_path)
    assert _matte(str(moved / "plate.####.exr"), crop, tmp_path / "a") == 2
    err = capsys.readouterr().err
    assert "the trimap is a crop (data window 80x56 at (4, 2)) of a picture (display window 96x64 at (0, 0)) " \
           "other than the plate's (96x64 at (100, 50))" in err, err
    half = tmp_path / "half"
    half.mkdir()
    for source in sorted(Path(small_example.trimaps).parent.glob("*.png")):
        pixels, _ = read_image(source)
        write_image(half / source.name, np.pad(pixels, ((8, 8), (8, 8), (0, 0)), mode="edge")[::2, ::2],
                    pixel_type="uint8")
    assert _matte(str(over / "plate.####.exr"), str(half / Path(small_example.trimaps).name), tmp_path / "b",
                  "--resize-trimaps") == 2
    err = capsys.readouterr().err
    assert "the trimap is 56x40, the plate is 112x80 (picture 96x64): the shape of the plate's whole data window" \
        in err, err
