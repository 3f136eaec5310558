"""Round trips through files written by the real libraries (OpenImageIO, OpenCV)."""

from pathlib import Path

import cv2
import numpy as np
import OpenImageIO as oiio
import pytest

from tcvom.errors import MissingFrameError, ReadError
from tcvom.io import AlphaWriter, image_info, open_frames, read_image, write_image


@pytest.mark.parametrize(
    ("suffix", "pixel_type", "tolerance"),
    [(".exr", "half", 1e-3), (".exr", "float", 0), (".tif", "uint16", 1 / 65535), (".png", "uint16", 1 / 65535),
     (".png", "uint8", 1 / 255), (".dpx", "uint16", 1 / 1023), (".jpg", "uint8", 0.08)],
)
def test_round_trip(tmp_path: Path, suffix: str, pixel_type: str, tolerance: float) -> None:
    rng = np.random.default_rng(1)
    pixels = rng.random((16, 24, 3), dtype=np.float32)
    if suffix == ".jpg":  # JPEG is lossy: compare a smooth image
        pixels = np.repeat(np.linspace(0, 1, 24, dtype=np.float32)[None, :, None], 16, 0).repeat(3, 2)
    path = write_image(tmp_path / f"img{suffix}", pixels, pixel_type=pixel_type)
    back, info = read_image(path)
    assert (info.width, info.height) == (24, 16)
    assert back.shape == (16, 24, 3)
    assert np.abs(back - pixels).max() <= tolerance + 1e-6


def test_reads_files_written_by_opencv_and_oiio(tmp_path: Path) -> None:
    image = np.zeros((10, 20, 3), np.uint8)
    image[:, :, 2] = 200  # red in OpenCV's BGR order
    cv2.imwrite(str(tmp_path / "cv.png"), image)
    pixels, _ = read_image(tmp_path / "cv.png")
    assert np.allclose(pixels[0, 0], [200 / 255, 0, 0])
    buf = oiio.ImageBuf(oiio.ImageSpec(20, 10, 4, "half"))
    oiio.ImageBufAlgo.fill(buf, (0.25, 0.5, 0.75, 1.0))
    assert buf.write(str(tmp_path / "oiio.exr"))
    pixels, info = read_image(tmp_path / "oiio.exr")
    assert info.channels == ("R", "G", "B", "A") and info.is_float
    assert np.allclose(pixels[3, 3], [0.25, 0.5, 0.75, 1.0])


def test_alpha_exr_is_half_with_a_single_A_channel(tmp_path: Path) -> None:
    alpha = np.linspace(0, 1, 32 * 8, dtype=np.float32).reshape(8, 32)
    path = AlphaWriter(tmp_path).write(1001, alpha)
    assert path.name == "alpha.1001.exr"
    inp = oiio.ImageInput.open(str(path))
    spec = inp.spec()
    stored = inp.read_image(oiio.FLOAT)
    inp.close()
    assert spec.nchannels == 1 and spec.channelnames == ("A",) and str(spec.format) == "half"
    assert np.abs(stored[:, :, 0] - alpha).max() < 1e-3


def test_alpha_formats_and_rgba(tmp_path: Path) -> None:
    alpha = np.full((4, 6), 0.5, np.float32)
    fg = np.full((4, 6, 3), 0.8, np.float32)
    p32 = AlphaWriter(tmp_path / "a", fmt="exr32").write(1, alpha)
    assert image_info(p32).pixel_type == "float"
    p16 = AlphaWriter(tmp_path / "b", fmt="png16").write(1, alpha)
    assert image_info(p16).pixel_type == "uint16" and p16.suffix == ".png"
    t16 = AlphaWriter(tmp_path / "c", fmt="tif16").write(1, alpha)
    assert image_info(t16).pixel_type == "uint16"
    rgba = AlphaWriter(tmp_path / "d", kind="rgba").write(1, alpha, fg)
    pixels, info = read_image(rgba)
    assert info.channels == ("R", "G", "B", "A")
    # premultiplied; EXR RGBA takes the foreground as given (scene-linear, never clamped)
    assert np.allclose(pixels[0, 0], [0.8 * 0.5] * 3 + [0.5], atol=2e-3)
    bright = AlphaWriter(tmp_path / "e", kind="rgba").write(1, alpha, fg * 5)
    assert np.allclose(read_image(bright)[0][0, 0], [4.0 * 0.5] * 3 + [0.5], atol=2e-2)


def _png_chunks(path: Path) -> list[str]:
    data, at, names = path.read_bytes(), 8, []
    while at < len(data):
        size = int.from_bytes(data[at:at + 4], "big")
        names.append(data[at + 4:at + 8].decode("ascii"))
        at += 12 + size
    return names


def test_alpha_and_trimap_pngs_carry_no_colour_tag(tmp_path: Path) -> None:
    """An alpha or trimap PNG holds coverage, not colour: it was tagged sRGB (sRGB, gAMA
    and cHRM chunks), and a reader honouring the tags would turn 0.5 into about 0.21. The
    RGBA PNG, display sRGB, keeps its tag."""
    from tcvom.io import TrimapWriter

    alpha = np.full((4, 6), 0.5, np.float32)
    for path in (AlphaWriter(tmp_path / "a", fmt="png16").write(1, alpha),
                 TrimapWriter(tmp_path / "t").write(1, np.full((4, 6), 128, np.uint8))):
        chunks = _png_chunks(path)
        assert "IDAT" in chunks and not {"sRGB", "gAMA", "cHRM", "iCCP"} & set(chunks), (path, chunks)
    rgba = AlphaWriter(tmp_path / "r", fmt="png16", kind="rgba").write(1, alpha, np.full((4, 6, 3), 0.8, np.float32))
    assert "sRGB" in _png_chunks(rgba)


def test_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(MissingFrameError):
        read_image(tmp_path / "none.exr")
    (tmp_path / "bad.exr").write_bytes(b"not an exr at all" * 10)
    with pytest.raises(ReadError, match="cannot read") as err:
        read_image(tmp_path / "bad.exr", frame=7)
    assert err.value.frame == 7 and "bad.exr" in str(err.value)


def test_a_truncated_jpeg_is_a_read_error(tmp_path: Path) -> None:
    """OpenImageIO hands back a cut JPEG's missing rows as grey with an error on the side:
    it was matted, exit 0 (QA: a partial copy from a file server)."""
    good = write_image(tmp_path / "plate.1001.jpg", np.random.default_rng(0).random((64, 96, 3), dtype=np.float32),
                       pixel_type="uint8")
    read_image(good)
    data = good.read_bytes()
    (tmp_path / "plate.1002.jpg").write_bytes(data[: len(data) // 3])
    with pytest.raises(ReadError, match="Premature end of JPEG file") as err:
        read_image(tmp_path / "plate.1002.jpg", frame=1002)
    assert err.value.frame == 1002 and "is the file complete?" in str(err.value)


def test_truncated_exr_is_a_read_error(tmp_path: Path) -> None:
    good = write_image(tmp_path / "plate.1001.exr", np.random.default_rng(0).random((64, 64, 3), dtype=np.float32))
    data = good.read_bytes()
    (tmp_path / "plate.1002.exr").write_bytes(data[: len(data) // 2])
    frames = open_frames(tmp_path / "plate.####.exr")
    frames.read(1001)
    with pytest.raises(ReadError) as err:
        frames.read(1002)
    assert err.value.frame == 1002


def test_a_header_text_of_other_bytes_than_utf8_is_written_escaped(tmp_path: Path) -> None:
    """Odd-inputs QA: a movie plate in a Latin-1 folder (Python keeps it as surrogate escapes)
    was read by PyAV, and the first alpha's `tcvom:plate` header failed in OpenImageIO:
    exit 1 after the whole trimap stage. The text is written with the bytes escaped."""
    plate = "/shows/sh\udce9t/plate.mp4"
    write_image(tmp_path / "a.exr", np.zeros((4, 5), np.float32), pixel_type="half", channels=("A",),
                attributes={"tcvom:plate": plate})
    image = oiio.ImageInput.open(str(tmp_path / "a.exr"))
    try:
        assert image.spec().getattribute("tcvom:plate") == "/shows/sh\\udce9t/plate.mp4"
    finally:
        image.close()
