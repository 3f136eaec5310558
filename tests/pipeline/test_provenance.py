"""Alpha EXRs carry what they were made with, and `tcvom info FILE` shows it (issue 16)."""

from __future__ import annotations

from pathlib import Path

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
    assert spec.get_string_attribute("tcvom:backend") == "torch"
    assert spec.get_string_attribute("tcvom:input_colorspace") == "Linear Rec.709 (sRGB)"
    assert spec.get_string_attribute("tcvom:plate").endswith("plate.1003.exr")
    assert spec.get_int_attribute("tcvom:plate_frame") == 1003
    capsys.readouterr()
    assert main(["info", str(out / "alpha.1003.exr")]) == 0
    shown = capsys.readouterr().out
    assert "tcvom:plate_frame: 1003" in shown and "tcvom:method: classical" in shown
    assert main(["info", str(out / "alpha.1009.exr")]) == 2
    assert "alpha.1009.exr: file not found" in capsys.readouterr().err
