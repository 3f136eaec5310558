"""Alpha EXRs carry what they were made with, and `tcvom info FILE` shows it (issue 16)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import OpenImageIO as oiio

from tcvom import __version__, pipeline
from tcvom.cli import main


def test_alpha_exr_header_names_its_making(small_example, tmp_path: Path, capsys) -> None:
    out = tmp_path / "alpha"
    pipeline.matte(small_example.plate, small_example.trimaps, out, frames="1002-1003", method="classical",
                   progress="none", review=False)
    inp = oiio.ImageInput.open(str(out / "alpha.1003.exr"))
    spec = inp.spec()
    inp.close()
    assert spec.get_string_attribute("tcvom:version") == __version__
    assert spec.get_string_attribute("tcvom:method") == "classical"
    assert spec.get_string_attribute("tcvom:backend") == ""  # movie QA: 'torch' on a matte that ran no network
    assert spec.get_string_attribute("tcvom:input_colorspace") == "Linear Rec.709 (sRGB)"
    assert spec.get_string_attribute("tcvom:ocio_config") == "studio-config-latest"  # which config converted
    assert spec.get_string_attribute("tcvom:plate").endswith("plate.1003.exr")
    assert spec.get_int_attribute("tcvom:plate_frame") == 1003
    capsys.readouterr()
    assert main(["info", str(out / "alpha.1003.exr")]) == 0
    shown = capsys.readouterr().out
    assert "tcvom:plate_frame: 1003" in shown and "tcvom:method: classical" in shown
    assert main(["info", str(out / "alpha.1009.exr")]) == 2
    assert "alpha.1009.exr: file not found" in capsys.readouterr().err


def _overscan(plate: str, tmp_path: Path, *, overscan: bool = True) -> str:
    """The example plate re-written with overscan: its 96x64 pixels as a data window at
    (-8, -4) around an 80x56 display window (``overscan``), pixel aspect 2, a timecode and
    24 fps."""
    from tcvom.io.images import read_image

    folder = tmp_path / ("overscan" if overscan else "anamorphic")
    folder.mkdir()
    for source in sorted(Path(plate).parent.glob("*.exr")):
        pixels, _ = read_image(source)
        height, width, count = pixels.shape
        spec = oiio.ImageSpec(width, height, count, "half")
        if overscan:
            spec.x, spec.y, spec.full_x, spec.full_y, spec.full_width, spec.full_height = -8, -4, 0, 0, 80, 56
        spec.attribute("PixelAspectRatio", 2.0)
        spec.attribute("smpte:TimeCode", oiio.TypeTimeCode, (0x01020304, 0))
        spec.attribute("FramesPerSecond", oiio.TypeRational, (24, 1))
        out = oiio.ImageOutput.create(str(folder / source.name))
        assert out.open(str(folder / source.name), spec) and out.write_image(pixels)
        out.close()
    return str(folder / Path(plate).name)


def test_alpha_keeps_the_plates_overscan_aspect_and_timecode(small_example, tmp_path: Path, capsys) -> None:
    plate = _overscan(small_example.plate, tmp_path)
    for kind in ("alpha", "rgba"):
        out = tmp_path / kind
        assert main(["matte", "--plate", plate, "--trimaps", small_example.trimaps, "--out", str(out),
                     "--frames", "1002", "--method", "classical", "--output", kind, "--progress", "none",
                     "--no-review"]) == 0
        inp = oiio.ImageInput.open(str(out / "alpha.1002.exr"))
        spec = inp.spec()
        inp.close()
        assert (spec.x, spec.y, spec.width, spec.height) == (-8, -4, 96, 64)
        assert (spec.full_x, spec.full_y, spec.full_width, spec.full_height) == (0, 0, 80, 56)
        assert spec.get_float_attribute("PixelAspectRatio") == 2.0
        assert spec.get_string_attribute("smpte:TimeCode") == "01:02:03:04"
        assert spec.getattribute("FramesPerSecond") == (24, 1)
        assert spec.get_string_attribute("tcvom:method") == "classical"
    capsys.readouterr()
    assert main(["info", str(tmp_path / "alpha" / "alpha.1002.exr")]) == 0
    shown = capsys.readouterr().out
    assert "data_window: (-8, -4) 96x64" in shown and "display_window: (0, 0) 80x56" in shown
    assert "smpte:TimeCode: 01:02:03:04" in shown and "PixelAspectRatio: 2" in shown


def test_png_alphas_of_an_anamorphic_sequence_are_said_to_have_square_pixels(small_example, tmp_path: Path,
                                                                            capsys) -> None:
    """Odd-inputs QA: a movie whose pixels are not square warned that PNG/TIFF alphas have
    square ones; an anamorphic EXR or DPX sequence matted into png16/tif16 said nothing."""
    plate = _overscan(small_example.plate, tmp_path, overscan=False)
    for fmt, said in (("png16", True), ("tif16", True), ("exr", False)):
        assert main(["matte", "--plate", plate, "--trimaps", small_example.trimaps, "--out", str(tmp_path / fmt),
                     "--frames", "1002", "--method", "classical", "--alpha-format", fmt, "--progress", "none",
                     "--no-review"]) == 0
        err = capsys.readouterr().err
        assert ("pixels are not square (pixel aspect 2)" in err and f"{fmt} alphas have square pixels" in err) == said, err
    assert main(["matte", "--plate", small_example.plate, "--trimaps", small_example.trimaps, "--out",
                 str(tmp_path / "square"), "--frames", "1002", "--method", "classical", "--alpha-format", "png16",
                 "--progress", "none", "--no-review"]) == 0
    assert "not square" not in capsys.readouterr().err


def test_a_farm_matte_task_stamps_the_keyframes_its_trimaps_came_from(small_example, tmp_path: Path) -> None:
    """The farm runs `tcvom trimaps` tasks, then `tcvom matte` tasks on their trimaps: the
    alphas carry the same keyframe stamp as a `run`'s (the trimap records keep it)."""
    from tcvom.io.hashing import file_sha256

    out = tmp_path / "shot"
    assert main(["trimaps", "--plate", small_example.plate, "--keyframes", small_example.keyframes,
                 "--out", str(out / "trimaps"), "--method", "classical", "--progress", "none", "--no-review"]) == 0
    assert main(["matte", "--plate", small_example.plate, "--trimaps", str(out / "trimaps" / "trimap.####.png"),
                 "--out", str(out / "alpha"), "--frames", "1002-1003", "--method", "classical", "--progress", "none",
                 "--no-review"]) == 0
    keys = sorted(Path(small_example.keyframes).parent.glob("key.*.png"))
    expected = ", ".join(f"{k.name.split('.')[1]}=sha256:{file_sha256(k, remember=False)}" for k in keys)
    for frame in (1002, 1003):
        inp = oiio.ImageInput.open(str(out / "alpha" / f"alpha.{frame}.exr"))
        assert inp.spec().get_string_attribute("tcvom:keyframes") == expected, frame
        inp.close()


def test_run_stamps_its_keyframes_and_their_hashes(small_example, tmp_path: Path, capsys) -> None:
    from tcvom.io.hashing import file_sha256

    out = tmp_path / "shot"
    pipeline.run(small_example.plate, out, keyframes=small_example.keyframes, frames="1002", method="classical",
                 progress="none", review=False)
    keys = sorted(Path(small_example.keyframes).parent.glob("key.*.png"))
    expected = ", ".join(f"{k.name.split('.')[1]}=sha256:{file_sha256(k, remember=False)}" for k in keys)
    inp = oiio.ImageInput.open(str(out / "alpha" / "alpha.1002.exr"))
    stamp = inp.spec().get_string_attribute("tcvom:keyframes")
    inp.close()
    assert stamp == expected and stamp.startswith("1001=sha256:")
    capsys.readouterr()
    assert main(["info", str(out / "alpha" / "alpha.1002.exr")]) == 0
    assert f"tcvom:keyframes: {expected}" in capsys.readouterr().out


def test_keyframes_of_the_display_window_are_placed_on_an_overscanned_plate(small_example, tmp_path: Path) -> None:
    """Keyframes painted on the display window (what a compositor shows) were refused as
    the wrong size, with a hint to --resize-trimaps, which stretched them over the overscan."""
    import cv2

    from tcvom.io.trimap import UNKNOWN

    plate = _overscan(small_example.plate, tmp_path)
    keys = tmp_path / "display_keys"
    keys.mkdir()
    for frame in (small_example.first, small_example.last):
        full = cv2.imread(small_example.keyframes.replace("####", str(frame)), cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(str(keys / f"key.{frame}.png"), full[4:60, 8:88])  # the 80x56 display window
    out = tmp_path / "placed"
    assert main(["run", "--plate", plate, "--keyframes", str(keys / "key.####.png"), "--out", str(out),
                 "--method", "classical", "--progress", "none", "--no-review"]) == 0
    first = cv2.imread(str(out / "trimaps" / f"trimap.{small_example.first}.png"), cv2.IMREAD_GRAYSCALE)
    given = cv2.imread(str(keys / f"key.{small_example.first}.png"), cv2.IMREAD_GRAYSCALE)
    assert first.shape == (64, 96)  # the data window, overscan included
    assert (first[4:60, 8:88] == given).all() and (first[:4] == UNKNOWN).all() and (first[:, :8] == UNKNOWN).all()


def test_a_half_size_keyframe_of_an_overscanned_plate_is_scaled_to_its_display_window(small_example,
                                                                                        tmp_path: Path) -> None:
    """With --resize-trimaps a proxy-size keyframe painted on the display window was
    stretched over the whole data window (overscan included), moving the matte's edges."""
    import cv2

    from tcvom.io.trimap import UNKNOWN

    plate = _overscan(small_example.plate, tmp_path)
    keys = tmp_path / "proxy_keys"
    keys.mkdir()
    frame = small_example.first
    full = cv2.imread(small_example.keyframes.replace("####", str(frame)), cv2.IMREAD_GRAYSCALE)[4:60, 8:88]
    cv2.imwrite(str(keys / f"key.{frame}.png"), full[::2, ::2])  # 40x28: half the 80x56 display window
    out = tmp_path / "scaled"
    assert main(["trimaps", "--plate", plate, "--keyframes", f"{frame}={keys / f'key.{frame}.png'}", "--frames",
                 str(frame), "--out", str(out), "--method", "classical", "--resize-trimaps", "--progress", "none",
                 "--no-review"]) == 0
    got = cv2.imread(str(out / f"trimap.{frame}.png"), cv2.IMREAD_GRAYSCALE)
    assert got.shape == (64, 96) and (got[:4] == UNKNOWN).all() and (got[:, :8] == UNKNOWN).all()
    want = cv2.resize(full[::2, ::2], (80, 56), interpolation=cv2.INTER_NEAREST)
    assert np.array_equal(got[4:60, 8:88], want)


AP0 = (0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.077, 0.32168, 0.33767)


def test_rgba_in_the_plates_space_keeps_its_primaries(small_example, tmp_path: Path, capsys) -> None:
    """An ACES2065-1 plate's RGBA output was written in ACES2065-1 without its
    ``chromaticities``, which OpenEXR readers then take for Rec.709. Output in another
    space (a log plate linearised to Linear Rec.709) carries that space's; the alpha none."""
    from tcvom.io.images import read_image

    folder = tmp_path / "aces"
    folder.mkdir()
    for source in sorted(Path(small_example.plate).parent.glob("*.exr"))[:2]:
        pixels, _ = read_image(source)
        spec = oiio.ImageSpec(pixels.shape[1], pixels.shape[0], 3, "half")
        spec.attribute("chromaticities", oiio.TypeDesc("float[8]"), AP0)
        out = oiio.ImageOutput.create(str(folder / source.name))
        assert out.open(str(folder / source.name), spec) and out.write_image(pixels)
        out.close()
    plate = str(folder / Path(small_example.plate).name)
    rec709 = (0.64, 0.33, 0.3, 0.6, 0.15, 0.06, 0.3127, 0.329)
    for space, kind, kept in (("ACES2065-1", "rgba", AP0), ("ACEScct", "rgba", rec709), ("ACES2065-1", "alpha", None)):
        out = tmp_path / f"{space}-{kind}"
        assert main(["matte", "--plate", plate, "--trimaps", small_example.trimaps, "--out", str(out), "--frames",
                     str(small_example.first), "--method", "classical", "--output", kind, "--input-colorspace", space,
                     "--progress", "none", "--no-review"]) == 0
        inp = oiio.ImageInput.open(str(out / f"alpha.{small_example.first}.exr"))
        chromaticities = inp.spec().getattribute("chromaticities")
        inp.close()
        if kept:
            assert chromaticities is not None and np.allclose(chromaticities, kept, atol=1e-4), (space, kind)
        else:
            assert chromaticities is None, (space, kind)
    # Colour QA: `tcvom info` left them out, which docs/io.md says it shows
    written = str(out.parent / "ACES2065-1-rgba" / f"alpha.{small_example.first}.exr")
    capsys.readouterr()
    assert main(["info", written, "--json"]) == 0
    assert np.allclose(json.loads(capsys.readouterr().out)["chromaticities"], AP0, atol=1e-4)


def _rgb_to_xyz(chromaticities: tuple[float, ...]) -> np.ndarray:
    """The RGB -> XYZ matrix a reader builds from OpenEXR ``chromaticities`` (white Y = 1)."""
    xy = np.array(chromaticities, dtype=np.float64).reshape(4, 2)
    xyz = np.column_stack([xy[:, 0] / xy[:, 1], np.ones(4), (1 - xy[:, 0] - xy[:, 1]) / xy[:, 1]])
    scale = np.linalg.solve(xyz[:3].T, xyz[3])
    return xyz[:3].T * scale


def test_rgba_of_a_plate_without_primaries_carries_those_of_its_space(small_example, tmp_path: Path) -> None:
    """A float plate named ACEScg (a TIFF, a DPX, an EXR without chromaticities) gave an
    RGBA EXR in ACEScg without them: OpenEXR readers took it for Rec.709. The primaries
    written are what a reader needs to land on OpenColorIO's colours."""
    import PyOpenColorIO as ocio

    out = tmp_path / "acescg"
    assert main(["matte", "--plate", small_example.plate, "--trimaps", small_example.trimaps, "--out", str(out),
                 "--frames", str(small_example.first), "--method", "classical", "--output", "rgba",
                 "--input-colorspace", "ACEScg", "--progress", "none", "--no-review"]) == 0
    inp = oiio.ImageInput.open(str(out / f"alpha.{small_example.first}.exr"))
    chromaticities = inp.spec().getattribute("chromaticities")
    inp.close()
    assert chromaticities is not None
    config = ocio.Config.CreateFromBuiltinConfig("studio-config-latest")
    expected = np.eye(3, dtype=np.float32)
    config.getProcessor("ACEScg", "cie_xyz_d65_interchange").getDefaultCPUProcessor().applyRGB(expected)
    np.testing.assert_allclose(_rgb_to_xyz(chromaticities), expected.T, atol=1e-4)


def test_rgba_names_its_space_whatever_ocio_says(small_example, tmp_path: Path) -> None:
    """Colour QA: with $OCIO naming a missing or broken config (which tcvom does not read),
    OpenImageIO dropped the RGBA EXR's colour space name (oiio:ColorSpace, colorInteropID)."""
    import os
    import subprocess
    import sys

    out = tmp_path / "rgba"
    env = {**os.environ, "OCIO": str(tmp_path / "missing.ocio")}
    subprocess.run([sys.executable, "-m", "tcvom", "matte", "--plate", small_example.plate, "--trimaps",
                    small_example.trimaps, "--out", str(out), "--frames", str(small_example.first), "--method",
                    "classical", "--output", "rgba", "--progress", "none", "--no-review"], check=True, env=env,
                   capture_output=True)
    spec = oiio.ImageInput.open(str(out / f"alpha.{small_example.first}.exr")).spec()
    assert spec.get_string_attribute("colorInteropID") == "lin_rec709_scene"
    assert spec.get_string_attribute("oiio:ColorSpace") == "lin_rec709_scene"


def test_a_format_without_windows_is_refused_for_an_overscanned_plate(small_example, tmp_path: Path,
                                                                      capsys) -> None:
    """Odd-files QA: `--alpha-format png16` (or tif16) of an overscanned plate wrote the data
    window's pixels from the file's corner, 8 pixels off the plate's picture, exit 0."""
    plate = _overscan(small_example.plate, tmp_path)
    for job, given in (("run", "--keyframes"), ("matte", "--trimaps")):
        for fmt in ("png16", "tif16"):
            out = tmp_path / f"{job}_{fmt}"
            code = main([job, "--plate", plate, given, small_example.keyframes if job == "run" else
                         small_example.trimaps, "--out", str(out), "--method", "classical", "--alpha-format", fmt,
                         "--progress", "none"])
            err = capsys.readouterr().err
            assert code == 2 and "(overscan)" in err and "--alpha-format exr" in err, err
            assert f"{fmt} keeps no windows" in err and "plate.1001.exr" in err and not out.exists()
    # a plate whose data window is its display window: PNG alphas as before
    assert main(["matte", "--plate", small_example.plate, "--trimaps", small_example.trimaps, "--frames", "1002",
                 "--out", str(tmp_path / "full"), "--method", "classical", "--alpha-format", "png16",
                 "--progress", "none", "--no-review"]) == 0
