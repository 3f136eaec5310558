import re
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


def _studio_config(folder: Path, *, interchange: bool, extra: str = "") -> Path:
    """A hand-written config with its own colour-space names (none of the built-in studio
    config's): scene-linear Rec.709 as its reference, an sRGB space, and with
    ``interchange`` ACES2065-1 as the ``aces_interchange`` role OpenColorIO identifies
    spaces through (without it, OpenColorIO's heuristics find that space by itself)."""
    role = "aces_interchange: ap0, " if interchange else ""
    ap0 = """  - !<ColorSpace>
    name: ap0
    encoding: scene-linear
    from_scene_reference: !<MatrixTransform> {matrix: [0.4397010, 0.3829780, 0.1773350, 0, 0.0897923, 0.8134230, 0.0967616, 0, 0.0175440, 0.1115440, 0.8707040, 0, 0, 0, 0, 1]}
"""
    text = f"""ocio_profile_version: 2
search_path: luts
roles: {{{role}default: lin, scene_linear: lin, reference: lin, data: raw, color_picking: srgb}}
displays:
  sRGB:
    - !<View> {{name: Standard, colorspace: srgb}}
active_displays: []
active_views: []
colorspaces:
  - !<ColorSpace> {{name: lin, encoding: scene-linear}}
  - !<ColorSpace>
    name: srgb
    encoding: sdr-video
    from_scene_reference: !<ExponentWithLinearTransform> {{gamma: 2.4, offset: 0.055, direction: inverse}}
  - !<ColorSpace> {{name: raw, isdata: true}}
{ap0 if interchange else ""}{extra}"""
    path = folder / f"studio-{interchange}.ocio"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_config_with_its_own_names_converts_as_the_built_in_one(tmp_path: Path) -> None:
    """A studio's config names its spaces its own way: tcvom's defaults (float plates are
    linear Rec.709, the networks see sRGB) are found through its interchange role (it
    failed with an AttributeError traceback)."""
    pixels = np.random.default_rng(5).random((6, 7, 3), dtype=np.float32) * 1.5
    write_image(tmp_path / "p.0001.exr", pixels, pixel_type="float")
    config = str(_studio_config(tmp_path, interchange=True))
    theirs = open_frames(tmp_path / "p.####.exr", ocio_config=config)
    ours = open_frames(tmp_path / "p.####.exr")
    assert np.abs(theirs.read(1) - ours.read(1)).max() < 1e-4
    assert theirs.colour.source_for(True) == "lin" and theirs.colour.target == "srgb"
    assert np.abs(theirs.linear(1) - pixels).max() < 1e-5 and theirs.linear_space == "lin"  # RGBA output: their linear space, unclamped


def test_a_config_where_tcvom_finds_no_space_is_refused_naming_it(tmp_path: Path) -> None:
    config = _studio_config(tmp_path, interchange=False)
    with pytest.raises(InputError, match=re.escape("no colour space 'sRGB Encoded Rec.709 (sRGB)'")) as caught:
        ColourConverter(config=str(config))
    assert caught.value.path == str(config) and "aces_interchange" in str(caught.value)


def test_a_config_without_the_networks_space_says_how_to_add_it(tmp_path: Path) -> None:
    """Colour QA: the refusal listed the space's aliases as "none" (an iterator used up by the
    search) and told a user who had given --input-colorspace to give it, which cannot name
    the space the networks see."""
    text = _studio_config(tmp_path, interchange=True).read_text(encoding="utf-8")
    start = text.index("  - !<ColorSpace>\n    name: srgb")
    no_srgb = text[:start] + text[text.index("  - !<ColorSpace> {name: raw"):]
    config = tmp_path / "no-srgb.ocio"
    config.write_text(no_srgb.replace("color_picking: srgb", "color_picking: lin"), encoding="utf-8")
    with pytest.raises(InputError, match=re.escape("no colour space 'sRGB Encoded Rec.709 (sRGB)'")) as caught:
        ColourConverter("lin", config=str(config))
    aliases = list(ocio.Config.CreateFromBuiltinConfig("studio-config-latest").getColorSpace(
        "sRGB Encoded Rec.709 (sRGB)").getAliases())
    assert aliases and f"nor one of its aliases ({', '.join(aliases)})" in caught.value.message
    assert "add the space to the config" in str(caught.value.hint) and "--input-colorspace" not in str(caught.value.hint)


def test_blenders_own_config_is_found_through_the_aliases(tmp_path: Path) -> None:
    """Colour QA: Blender 5.0's config (its roles include aces_interchange) was refused: its
    sRGB is display-referred, which OpenColorIO's identification does not match, and the
    hint asked for the role it has. Its sRGB carries the built-in space's aliases (srgb_tx,
    srgb_texture); the conversion is the built-in config's."""
    repo = Path(__file__).resolve().parents[2]
    found = sorted(repo.glob(".venv-blender/lib/python3*/site-packages/bpy/*/datafiles/colormanagement/config.ocio"))
    if not found:
        pytest.skip("no Blender config (make blender-venv)")
    pixels = np.random.default_rng(6).random((6, 7, 3), dtype=np.float32) * 1.5
    write_image(tmp_path / "p.0001.exr", pixels, pixel_type="float")
    theirs = open_frames(tmp_path / "p.####.exr", ocio_config=str(found[-1]))
    ours = open_frames(tmp_path / "p.####.exr")
    assert theirs.colour.target == "sRGB"
    assert np.abs(theirs.read(1) - ours.read(1)).max() < 1e-4


def test_a_transform_that_cannot_be_built_is_refused_before_any_frame(tmp_path: Path) -> None:
    """A colour space whose LUT file is missing ended in OpenColorIO's exception and a
    traceback (exit 1); it is an input error naming the config, raised when the plate opens."""
    log = """  - !<ColorSpace>
    name: camlog
    encoding: log
    to_scene_reference: !<FileTransform> {src: missing_camera_log.cube, interpolation: linear}
"""
    config = _studio_config(tmp_path, interchange=True, extra=log)
    with pytest.raises(InputError, match=r"cannot convert 'camlog'.*missing_camera_log\.cube"):
        ColourConverter("camlog", str(config))


def test_a_config_whose_search_for_tcvoms_spaces_meets_a_missing_lut_is_refused(tmp_path: Path) -> None:
    """Colour QA: a site config (or Blender's carried without its luts/ folder) that does not
    name tcvom's spaces is searched by OpenColorIO, which raised ExceptionMissingFile (not an
    ocio.Exception) at the first space of a missing LUT: a traceback, exit 1."""
    config = tmp_path / "site.ocio"
    config.write_text("""ocio_profile_version: 2.1
search_path: luts
roles:
  default: lin
  scene_linear: lin
  aces_interchange: aces
displays:
  sRGB:
    - !<View> {name: Raw, colorspace: lin}
colorspaces:
  - !<ColorSpace>
    name: lin
    encoding: scene-linear
  - !<ColorSpace>
    name: aces
    encoding: scene-linear
    to_scene_reference: !<FileTransform> {src: ap0_to_lin.spimtx}
  - !<ColorSpace>
    name: srgb
    encoding: sdr-video
    from_scene_reference: !<ExponentWithLinearTransform> {gamma: 2.4, offset: 0.055, direction: inverse}
""", encoding="utf-8")
    with pytest.raises(InputError, match=r"a file it names is missing .*ap0_to_lin\.spimtx") as caught:
        ColourConverter("lin", config=str(config))
    assert caught.value.path == str(config) and "search_path" in str(caught.value.hint)


def test_a_plate_whose_frames_change_type_is_refused_without_a_colour_space(tmp_path: Path) -> None:
    """16-bit sRGB frames then float ones were each read in their type's space, silently
    (a re-exported patch of sRGB values as float got sRGB twice), and stamped with the
    first frame's space."""
    picture = np.random.default_rng(0).random((8, 12, 3), dtype=np.float32)
    write_image(tmp_path / "plate.1001.tif", picture, pixel_type="uint16")
    write_image(tmp_path / "plate.1002.tif", picture, pixel_type="float")
    frames = open_frames(tmp_path / "plate.####.tif")
    frames.read(1001)
    with pytest.raises(InputError, match="the frame is a floating-point file, the plate's first frame an integer") as err:
        frames.read(1002)
    assert err.value.frame == 1002 and "--input-colorspace" in str(err.value)
    named = open_frames(tmp_path / "plate.####.tif", colorspace="sRGB Encoded Rec.709 (sRGB)")
    np.testing.assert_allclose(named.read(1002), named.read(1001), atol=1e-4)  # one space for both: the same


def test_a_header_that_names_another_colour_space_is_said(tmp_path: Path, caplog) -> None:
    """A 16-bit PNG whose header says linear (gAMA 1.0) was taken as sRGB without a word."""
    import OpenImageIO as oiio

    buf = oiio.ImageBuf(oiio.ImageSpec(12, 8, 3, oiio.UINT16))
    buf.specmod().attribute("oiio:ColorSpace", "lin_rec709_scene")
    buf.write(str(tmp_path / "plate.1001.png"))
    write_image(tmp_path / "plain.1001.png", np.zeros((8, 12, 3), np.float32), pixel_type="uint16")
    with caplog.at_level("WARNING", logger="tcvom"):
        open_frames(tmp_path / "plain.####.png")
        assert caplog.records == []  # an sRGB PNG is what tcvom takes it for
        open_frames(tmp_path / "plate.####.png")
    (said,) = [r.getMessage() for r in caplog.records]
    assert "plate.1001.png: its header says colour space 'Linear Rec.709 (sRGB)'" in said
    assert "--input-colorspace 'Linear Rec.709 (sRGB)'" in said
    caplog.clear()
    with caplog.at_level("WARNING", logger="tcvom"):
        open_frames(tmp_path / "plate.####.png", colorspace="Linear Rec.709 (sRGB)")
    assert caplog.records == []


def test_chromaticities_do_not_depend_on_the_configs_view_transform(tmp_path: Path) -> None:
    """Measured through the display-referred XYZ role, a config whose default view transform
    tone-maps gave Rec.709 as (0.645, 0.322, 0.318, 0.563, ...)."""
    config = ocio.Config.CreateFromBuiltinConfig("studio-config-v2.2.0_aces-v1.3_ocio-v2.4")
    config.setDefaultViewTransformName("ACES 1.0 - SDR Video")
    (tmp_path / "tm.ocio").write_text(config.serialize())
    rec709 = (0.64, 0.33, 0.3, 0.6, 0.15, 0.06, 0.3127, 0.329)
    for name in (None, str(tmp_path / "tm.ocio")):
        measured = ColourConverter(None, name).chromaticities("Linear Rec.709 (sRGB)")
        assert measured is not None and np.allclose(measured, rec709, atol=1e-4), (name, measured)


def test_a_header_name_the_config_does_not_know_or_of_one_encoding_is_not_said(tmp_path: Path, caplog) -> None:
    """Every PNG (OpenImageIO: srgb_rec709_scene) was said to contradict the sRGB it is read
    as under a config without that alias; a gAMA 2.2 PNG was said to be another space."""
    import OpenImageIO as oiio

    for name, said in (("srgb", "srgb_rec709_scene"), ("g22", "g22_rec709_scene")):
        buf = oiio.ImageBuf(oiio.ImageSpec(12, 8, 3, oiio.UINT8))
        buf.specmod().attribute("oiio:ColorSpace", said)
        buf.write(str(tmp_path / f"{name}.1001.png"))
    with caplog.at_level("WARNING", logger="tcvom"):
        open_frames(tmp_path / "srgb.####.png", ocio_config="studio-config-v2.1.0_aces-v1.3_ocio-v2.3")
        open_frames(tmp_path / "g22.####.png")
    assert caplog.records == []
    # one encoding, other primaries: an EXR tagged ACEScg is said (it is read as Linear Rec.709)
    buf = oiio.ImageBuf(oiio.ImageSpec(12, 8, 3, oiio.HALF))
    buf.specmod().attribute("oiio:ColorSpace", "lin_ap1_scene")
    buf.write(str(tmp_path / "ap1.1001.exr"))
    with caplog.at_level("WARNING", logger="tcvom"):
        open_frames(tmp_path / "ap1.####.exr")
    assert [r.getMessage() for r in caplog.records if "its header says colour space 'ACEScg'" in r.getMessage()]


def test_a_png_of_gamma_1_8_or_2_4_is_said(tmp_path: Path, caplog) -> None:
    """Colour QA: PNGs tagged gamma 1.8 and 2.4 (gAMA) were taken as sRGB without a word, as
    every gamma space shares sRGB's encoding and primaries: their linear RGBA output came
    out a third too dark. Gamma 2.2, within 0.034 of sRGB, stays unsaid (test above)."""
    import OpenImageIO as oiio

    for name, said in (("g18", "g18_rec709_scene"), ("g24", "g24_rec709_scene")):
        buf = oiio.ImageBuf(oiio.ImageSpec(12, 8, 3, oiio.UINT16))
        buf.specmod().attribute("oiio:ColorSpace", said)
        buf.write(str(tmp_path / f"{name}.1001.png"))
        caplog.clear()
        with caplog.at_level("WARNING", logger="tcvom"):
            open_frames(tmp_path / f"{name}.####.png")
        warned = [r.getMessage() for r in caplog.records if "its header says colour space" in r.getMessage()]
        gamma = f"{name[1]}.{name[2]}"
        assert len(warned) == 1 and f"'Gamma {gamma} Encoded Rec.709'" in warned[0], warned
        assert f"--input-colorspace 'Gamma {gamma} Encoded Rec.709'" in warned[0]


def test_a_log_dpx_scan_is_said(tmp_path: Path, caplog) -> None:
    """I/O QA: a DPX whose transfer is printing density (OpenImageIO names no colour space)
    or logarithmic (a name no config knows) was matted as sRGB without the warning
    docs/io.md promises for it."""
    import OpenImageIO as oiio

    for name, transfer in (("printing", "Printing density"), ("log", "Logarithmic"), ("video", "Unspecified video")):
        buf = oiio.ImageBuf(oiio.ImageSpec(12, 8, 3, oiio.UINT16))
        buf.specmod().attribute("dpx:Transfer", transfer)
        buf.write(str(tmp_path / f"{name}.1001.dpx"))
    for name, transfer in (("printing", "Printing density"), ("log", "Logarithmic")):
        caplog.clear()
        with caplog.at_level("WARNING", logger="tcvom"):
            open_frames(tmp_path / f"{name}.####.dpx")
        (said,) = [r.getMessage() for r in caplog.records]
        assert f"DPX transfer {transfer}: a log film scan" in said and "--input-colorspace NAME" in said, said
        caplog.clear()
        with caplog.at_level("WARNING", logger="tcvom"):
            open_frames(tmp_path / f"{name}.####.dpx", colorspace="ADX10")
        assert caplog.records == []
    with caplog.at_level("WARNING", logger="tcvom"):
        open_frames(tmp_path / "video.####.dpx")
    assert caplog.records == []


def test_a_config_path_that_is_no_file_is_said_so(tmp_path: Path) -> None:
    """Colour QA: `--ocio-config /nope/config` (no .ocio suffix) or a folder was "could not
    find ... in the built-in configurations"."""
    for name, said in ((str(tmp_path / "nope" / "config"), "config file not found"),
                       ("config.yaml", "config file not found"),  # colour QA: "could not find ... in the built-in"
                       (str(tmp_path), "this is a folder, not an OpenColorIO config file")):
        with pytest.raises(InputError, match=said):
            ColourConverter(config=name)
    assert ColourConverter(config="ocio://studio-config-latest").config is not None


def test_a_plate_whose_chromaticities_name_another_space_is_said(tmp_path: Path, caplog) -> None:
    """Colour QA: an ACES2065-1 EXR tagged by its chromaticities alone (SMPTE ST 2065-4) was
    read as Linear Rec.709 without a word; Rec.709 primaries, or the space given, say nothing."""
    from tcvom.io.colour import AP0

    image = np.random.default_rng(0).random((8, 12, 3), dtype=np.float32)
    written = ColourConverter().chromaticities("ACEScg")  # colour QA: as tcvom's RGBA output tags ACEScg
    assert written is not None and abs(written[6] - 0.3127) < 1e-3  # (its white adapted to D65)
    for name, primaries in (("ap0", AP0), ("ap1", (0.713, 0.293, 0.165, 0.83, 0.128, 0.044, 0.32168, 0.33767)),
                            ("ours", written), ("rec709", (0.64, 0.33, 0.3, 0.6, 0.15, 0.06, 0.3127, 0.329))):
        write_image(tmp_path / f"{name}.0001.exr", image, channels=("R", "G", "B"),
                    attributes={"chromaticities": primaries})
    with caplog.at_level("WARNING", logger="tcvom"):
        open_frames(str(tmp_path / "ap0.####.exr"))
        open_frames(str(tmp_path / "ap1.####.exr"))
        open_frames(str(tmp_path / "ours.####.exr"))
    assert "ap0.0001.exr: its header says colour space 'ACES2065-1' (by its chromaticities)" in caplog.text
    assert "ours.0001.exr: its header says colour space 'ACEScg' (by its chromaticities)" in caplog.text
    assert "pass --input-colorspace ACES2065-1" in caplog.text and "pass --input-colorspace ACEScg" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="tcvom"):
        open_frames(str(tmp_path / "rec709.####.exr"))
        open_frames(str(tmp_path / "ap0.####.exr"), colorspace="ACES2065-1")
    assert "colour space" not in caplog.text
    # review: DCI-P3 primaries with the DCI white were named Linear P3-D65 (another white)
    write_image(tmp_path / "dci.0001.exr", image, channels=("R", "G", "B"),
                attributes={"chromaticities": (0.68, 0.32, 0.265, 0.69, 0.15, 0.06, 0.314, 0.351)})
    with caplog.at_level("WARNING", logger="tcvom"):
        open_frames(str(tmp_path / "dci.####.exr"))
    assert "its header says other primaries" in caplog.text and "P3-D65" not in caplog.text


def test_info_lists_colour_spaces_as_json_with_aliases_and_roles(capsys) -> None:
    """Colour QA: `tcvom info --colorspaces --json` printed the plain list (not JSON), and
    nothing listed the aliases and roles --input-colorspace takes."""
    import json

    from tcvom.cli import main

    assert main(["info", "--colorspaces", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    spaces = {s["name"]: s["aliases"] for s in listed["colorspaces"]}
    assert "lin_ap1_scene" in spaces["ACEScg"] and listed["roles"]["aces_interchange"] == "ACES2065-1"
    assert main(["info", "--colorspaces"]) == 0
    assert capsys.readouterr().out.splitlines() == list(spaces)  # one name a line, for scripts


def test_info_says_the_colour_a_file_is_taken_in_and_what_its_header_says(tmp_path: Path, capsys) -> None:
    """Colour QA: `tcvom info` on an EXR tagged ACEScg said nothing of colour, while a run
    warns of it: it shows the space a plate of such files is taken in, and the header's."""
    import json

    from tcvom.cli import main

    image = np.random.default_rng(0).random((8, 12, 3), dtype=np.float32)
    write_image(tmp_path / "aces.0001.exr", image, channels=("R", "G", "B"), attributes={"oiio:ColorSpace": "ACEScg"})
    write_image(tmp_path / "plain.0001.exr", image, channels=("R", "G", "B"))
    assert main(["info", str(tmp_path / "aces.0001.exr"), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["taken_as"].startswith("Linear Rec.709 (sRGB) without --input-colorspace")
    assert shown["header_says"].startswith("ACEScg (as OpenImageIO reads it): pass --input-colorspace ACEScg")
    assert main(["info", str(tmp_path / "plain.0001.exr"), "--json"]) == 0
    assert "header_says" not in json.loads(capsys.readouterr().out)


def test_values_a_conversion_makes_non_finite_are_zeroed_and_counted(tmp_path: Path, caplog) -> None:
    """Colour QA: a linear plate (values up to 18) declared ACEScct: OpenColorIO's log-to-linear
    curve made NaN/inf, which went to the matting unsaid (an alpha run exited 0) or failed an
    RGBA run naming no file. They are set to 0, counted, and the warning says where they came from."""
    image = np.zeros((8, 12, 3), np.float32)
    image[:, :6] = 18.0  # far past ACEScct's range
    converter = ColourConverter("ACEScct")
    rgb, bad = converter.to_network(image, is_float=True)
    assert bad > 0 and np.isfinite(rgb).all()
    assert np.isfinite(converter.to_linear(image, is_float=True)).all()
    assert ColourConverter().to_network(image, is_float=True)[1] == 0  # no conversion made them
    write_image(tmp_path / "hdr.0001.exr", image, channels=("R", "G", "B"))
    with caplog.at_level("WARNING", logger="tcvom"):
        frames = open_frames(str(tmp_path / "hdr.####.exr"), colorspace="ACEScct")
        frames.read(1)
    assert f"NaN/infinite value(s) set to 0 ({bad} made by converting it from ACEScct" in caplog.text


def test_rgba_output_keeps_the_plates_chromaticities_only_where_they_are_its_spaces(tmp_path: Path) -> None:
    """Colour QA: an ACEScg plate whose header says AP0 chromaticities, given as ACEScg, was
    written with AP0 chromaticities beside colorInteropID lin_ap1_scene (two readers, two
    colours); one taken as Linear Rec.709 kept its AP1 ones beside a Rec.709 name."""
    from tcvom.io import image_info
    from tcvom.io.colour import AP0
    from tcvom.pipeline import run

    ap1 = (0.713, 0.293, 0.165, 0.83, 0.128, 0.044, 0.32168, 0.33767)
    image = np.random.default_rng(0).random((32, 48, 3), dtype=np.float32)
    key = np.zeros((32, 48, 1), np.float32)
    key[8:24, 12:36] = 128 / 255
    key[12:20, 18:30] = 1.0
    write_image(tmp_path / "key.png", key, pixel_type="uint8")
    cases = {"ap0_as_acescg": (AP0, "ACEScg"), "ap1_as_acescg": (ap1, "ACEScg"), "ap1_as_default": (ap1, None)}
    for name, (primaries, given) in cases.items():
        (tmp_path / name).mkdir()
        write_image(tmp_path / name / "p.0001.exr", image, channels=("R", "G", "B"),
                    attributes={"chromaticities": primaries})
        run(str(tmp_path / name / "p.####.exr"), tmp_path / f"out_{name}", keyframes=[f"1={tmp_path / 'key.png'}"],
            method="classical", output="rgba", input_colorspace=given, progress="none")
    written = {name: image_info(tmp_path / f"out_{name}" / "alpha" / "alpha.0001.exr").chromaticities
               for name in cases}
    converter = ColourConverter()
    # frames of one shot whose headers differ: each frame's own is judged (code review)
    (tmp_path / "mixed").mkdir()
    for frame, primaries in ((1, ap1), (2, AP0)):
        write_image(tmp_path / "mixed" / f"p.{frame:04d}.exr", image, channels=("R", "G", "B"),
                    attributes={"chromaticities": primaries})
    run(str(tmp_path / "mixed" / "p.####.exr"), tmp_path / "out_mixed",
        keyframes=[f"1={tmp_path / 'key.png'}", f"2={tmp_path / 'key.png'}"], method="classical", output="rgba",
        input_colorspace="ACEScg", progress="none")
    mixed = [image_info(tmp_path / "out_mixed" / "alpha" / f"alpha.{f:04d}.exr").chromaticities for f in (1, 2)]
    assert np.allclose(mixed[0], ap1, atol=1e-4)
    assert np.allclose(mixed[1], converter.chromaticities("ACEScg"), atol=1e-4)
    assert np.allclose(written["ap0_as_acescg"], converter.chromaticities("ACEScg"), atol=1e-4)
    assert np.allclose(written["ap1_as_acescg"], ap1, atol=1e-4)  # the plate's own, as it is
    assert np.allclose(written["ap1_as_default"], converter.chromaticities("Linear Rec.709 (sRGB)"), atol=1e-4)


def test_rgba_output_names_the_interop_id_a_configs_alias_gives(tmp_path: Path) -> None:
    """Colour QA: with a config that declares no interop ids but lists them as aliases
    (Blender 5.0's "Linear Rec.709" has the alias lin_rec709_scene), RGBA EXRs were written
    without colorInteropID, and OpenImageIO dropped the config's own name from
    oiio:ColorSpace: the header named no space a reader knows."""
    import OpenImageIO as oiio

    from tcvom.io.colour import interop_id
    from tcvom.pipeline import run

    extra = """  - !<ColorSpace>
    name: Linear Rec.709
    aliases: [Linear, lin_rec709_scene, lin_srgb]
    encoding: scene-linear
  - !<ColorSpace>
    name: sRGB Texture
    aliases: [srgb_rec709_display, srgb_rec709_scene]
    from_scene_reference: !<ExponentWithLinearTransform> {gamma: 2.4, offset: 0.055, direction: inverse}
"""
    config = str(_studio_config(tmp_path, interchange=True, extra=extra))
    assert interop_id("Linear Rec.709", config) == "lin_rec709_scene"
    # code review: Blender's "sRGB" lists the display's id first; a file holds no display signal
    assert interop_id("sRGB Texture", config) == "srgb_rec709_scene"
    assert interop_id("lin", config) == ""  # no alias that is an interop id: none is made up
    image = np.random.default_rng(1).random((32, 48, 3), dtype=np.float32)
    write_image(tmp_path / "p.0001.exr", image, channels=("R", "G", "B"))
    key = np.zeros((32, 48, 1), np.float32)
    key[8:24, 12:36] = 128 / 255
    key[12:20, 18:30] = 1.0
    write_image(tmp_path / "key.png", key, pixel_type="uint8")
    run(str(tmp_path / "p.####.exr"), tmp_path / "out", keyframes=[f"1={tmp_path / 'key.png'}"], method="classical",
        output="rgba", input_colorspace="Linear Rec.709", ocio_config=config, progress="none")
    spec = oiio.ImageInput.open(str(tmp_path / "out" / "alpha" / "alpha.0001.exr")).spec()
    assert spec.getattribute("colorInteropID") == "lin_rec709_scene"
    assert spec.getattribute("oiio:ColorSpace") == "lin_rec709_scene"
    assert spec.getattribute("tcvom:colorspace") == "Linear Rec.709"


def test_a_studio_config_without_tcvoms_spaces_says_which_opencolorio_is_needed(monkeypatch) -> None:
    """Packaging QA: OpenColorIO 2.3 (which pyproject allowed) has a studio config whose sRGB
    is named "sRGB - Texture": every colour command failed with "'NoneType' object has no
    attribute 'getAliases'". A name its built-in config lacks stands in for that here."""
    from tcvom.io import colour

    monkeypatch.setattr(colour, "TARGET", "sRGB - Texture of another OpenColorIO")
    with pytest.raises(InputError, match=r"built-in studio config without the colour space") as caught:
        ColourConverter()
    assert "OpenColorIO 2.5 or later" in str(caught.value.hint)


def _site_config(folder: Path) -> Path:
    """The built-in studio config as a site might rename it: ACEScg is 'ACES - ACEScg', with
    no aliases and no interop id (names no header carries)."""
    text = ocio.Config.CreateFromBuiltinConfig("studio-config-latest").serialize()  # pyright: ignore[reportAttributeAccessIssue]
    text = text.replace("    name: ACEScg\n    aliases: [ACES - ACEScg, lin_ap1, lin_ap1_scene]\n"
                        "    interop_id: lin_ap1_scene\n", "    name: ACES - ACEScg\n")
    text = text.replace(": ACEScg\n", ": ACES - ACEScg\n")  # the roles naming it
    assert "aliases: [ACES - ACEScg" not in text
    path = folder / "site.ocio"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_header_name_a_site_config_lacks_is_said_as_the_site_config_names_it(tmp_path: Path, caplog, capsys) -> None:
    """Colour QA: an EXR tagged colorInteropID lin_ap1_scene was matted as Linear Rec.709 without
    a word under a site config that names ACEScg otherwise (the built-in config warns), and
    `tcvom info FILE --ocio-config` ignored the config (a missing one too) and advised a name
    that config does not have."""
    import json

    from tcvom.cli import main

    site = str(_site_config(tmp_path))
    image = np.random.default_rng(0).random((8, 12, 3), dtype=np.float32)
    write_image(tmp_path / "ap1.0001.exr", image, channels=("R", "G", "B"), attributes={"oiio:ColorSpace": "lin_ap1_scene"})
    with caplog.at_level("WARNING", logger="tcvom"):
        open_frames(tmp_path / "ap1.####.exr", ocio_config=site)
    said = [r.getMessage() for r in caplog.records if "its header says" in r.getMessage()]
    assert len(said) == 1 and "--input-colorspace 'ACES - ACEScg'" in said[0], said
    assert main(["info", str(tmp_path / "ap1.0001.exr"), "--json", "--ocio-config", site]) == 0
    shown = json.loads(capsys.readouterr().out)["header_says"]
    assert shown.startswith("ACES - ACEScg") and f"--input-colorspace 'ACES - ACEScg' --ocio-config {site}" in shown
    assert main(["info", str(tmp_path / "ap1.0001.exr"), "--ocio-config", str(tmp_path / "none.ocio")]) == 2
    assert "none.ocio" in capsys.readouterr().err
    # a config with no such space at all: said by the built-in config's name
    write_image(tmp_path / "other.0001.exr", image, channels=("R", "G", "B"),
                attributes={"oiio:ColorSpace": "lin_ap1_scene"})
    caplog.clear()
    with caplog.at_level("WARNING", logger="tcvom"):
        open_frames(tmp_path / "other.####.exr", ocio_config=str(_studio_config(tmp_path, interchange=True)))
    said = [r.getMessage() for r in caplog.records if "its header says" in r.getMessage()]
    assert len(said) == 1 and "colour space 'ACEScg'" in said[0] and "--input-colorspace NAME" in said[0], said


def test_a_config_file_that_does_not_parse_says_why_whatever_its_suffix(tmp_path: Path) -> None:
    """Colour QA: an existing but broken config.yaml / .yml / .ocioz was "config file not
    found", OpenColorIO's reason dropped; an unknown space's hint listed the built-in config's
    spaces, not those of the config given."""
    for name in ("bad.yaml", "bad.yml", "bad.ocioz"):
        (tmp_path / name).write_text("ocio_profile_version: 2\nroles: [this is: not valid\n")
        with pytest.raises(InputError, match="cannot load the OpenColorIO config") as caught:
            ColourConverter(config=str(tmp_path / name))
        assert "config file not found" not in str(caught.value)
    with pytest.raises(InputError, match="unknown input colour space") as caught:
        ColourConverter("ACEScg", str(_site_config(tmp_path)))
    assert f"tcvom info --colorspaces --ocio-config {tmp_path / 'site.ocio'}" in str(caught.value)
