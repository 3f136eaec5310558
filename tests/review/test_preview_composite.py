"""The preview's composite is an over in linear light, shown display-encoded."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from tcvom.io import open_frames, write_image
from tcvom.review.preview import checkerboard, composite


def _decoded(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def _encoded(v: np.ndarray) -> np.ndarray:
    v = np.clip(v, 0.0, None)
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * v ** (1 / 2.4) - 0.055)


def test_the_composite_is_blended_in_linear_light(tmp_path: Path) -> None:
    """Review QA: the preview blended the display-encoded plate with the checkerboard (a dark
    half-transparent edge over the light square showed 83 instead of 122) and clipped
    highlights above 1 before the blend (a hot edge at alpha 0.5 showed 172, not 255)."""
    plate = np.full((32, 32, 3), 0.02, np.float32)
    plate[:, 16:] = 4.0  # a dark edge, a hot highlight
    write_image(tmp_path / "p.1001.exr", plate, pixel_type="float", channels=("R", "G", "B"))
    frames = open_frames(tmp_path / "p.####.exr")
    alpha = np.full((32, 32), 0.5, np.float32)
    shown = composite(frames, frames.linear(1001), alpha)
    expected = np.clip(_encoded(plate * 0.5 + _decoded(checkerboard(32, 32)) * 0.5), 0.0, 1.0)
    assert np.abs(shown - expected).max() < 2e-3
    assert shown[:, 16:].min() == 1.0, "the highlight counts in the blend"
    # where alpha is 0 the checkerboard shows as its own greys, where 1 the plate as read
    np.testing.assert_allclose(composite(frames, frames.linear(1001), np.zeros((32, 32), np.float32)), checkerboard(32, 32),
                               atol=2e-3)
    np.testing.assert_allclose(composite(frames, frames.linear(1001), np.ones((32, 32), np.float32)), frames.read(1001), atol=2e-3)


def test_an_8_bit_srgb_plate_shows_as_it_reads(tmp_path: Path) -> None:
    """An sRGB PNG plate goes through linear and back: where alpha is 1 the composite is the
    plate as read, where 0 the checkerboard (code review: only float plates were tested)."""
    rgb = np.random.default_rng(3).random((24, 40, 3), dtype=np.float32)
    write_image(tmp_path / "p.0001.png", rgb, pixel_type="uint8", channels=("R", "G", "B"))
    frames = open_frames(tmp_path / "p.####.png")
    linear = frames.linear(1)
    np.testing.assert_allclose(composite(frames, linear, np.ones((24, 40), np.float32)), frames.read(1), atol=2e-3)
    half = composite(frames, linear, np.full((24, 40), 0.5, np.float32))
    expected = np.clip(_encoded(_decoded(frames.read(1)) * 0.5 + _decoded(checkerboard(24, 40)) * 0.5), 0, 1)
    assert np.abs(half - expected).max() < 3e-3


def test_the_preview_keeps_a_film_or_video_rate(tmp_path: Path, caplog) -> None:
    """`--fps` took whole numbers only (23.976 was refused) and the movie of a 25 fps plate
    played at 24: an NTSC rate as written means its exact ratio, and the plate movie's rate
    is the default (24 for an image sequence)."""
    import av

    from tcvom.errors import InputError
    from tcvom.review.preview import _declared_rate, movie_rate, preview_movie

    assert movie_rate("23.976") == movie_rate(23.976) == Fraction(24000, 1001) == movie_rate("24000/1001")
    assert movie_rate("29.97") == Fraction(30000, 1001) and movie_rate("25") == 25 and movie_rate(12.5) == Fraction(25, 2)
    assert movie_rate(np.int64(25)) == 25 and movie_rate(np.float32(23.976)) == Fraction(24000, 1001)  # API QA
    for bad in ("0", "-24", "nan", "inf", "abc", "", None, True, "1/5000", 0.0004):  # tiny: was 0, then 24
        with pytest.raises(InputError):
            movie_rate(bad)
    # a movie declaring a rate no preview plays (broken timestamps): 24, and said naming the file
    fast = tmp_path / "fast.mp4"
    with av.open(str(fast), "w") as container:
        stream = container.add_stream("libx264", rate=2000)
        stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
        for packet in [*stream.encode(av.VideoFrame.from_ndarray(np.zeros((24, 32, 3), np.uint8), format="rgb24")),
                       *stream.encode()]:
            container.mux(packet)
    assert _declared_rate(open_frames(fast)) == 24 and "fast.mp4 declares 2000" in caplog.text
    plate = tmp_path / "plate.mp4"
    with av.open(str(plate), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
        for level in (40, 80, 120):
            picture = av.VideoFrame.from_ndarray(np.full((24, 32, 3), level, np.uint8), format="rgb24")
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    for frame in (1, 2, 3):
        write_image(tmp_path / f"alpha.{frame:04d}.exr", np.full((24, 32), 0.5, np.float32))
    frames = open_frames(plate)
    for given, rate in ((None, Fraction(25)), ("23.976", Fraction(24000, 1001))):
        movie = preview_movie(frames, str(tmp_path / "alpha.####.exr"), tmp_path / f"{rate}".replace("/", "_") /
                              "preview.mp4", fps=given)
        with av.open(str(movie)) as written:
            assert written.streams.video[0].average_rate == rate and written.streams.video[0].frames == 3


def test_an_hd_preview_is_bt709_and_says_so(tmp_path: Path) -> None:
    """Colour QA: a 1280x720 preview was encoded with FFmpeg's default BT.601 matrix and no
    tag, which players, Nuke and tcvom read as BT.709 at that size: greens darker, reds and
    cyans moved, under an alpha of 1. It is BT.709, tagged, and reads back as the plate."""
    import av

    from tcvom.review.preview import preview_movie

    width, height = 1280, 720
    patches = np.array([(0.8, 0.2, 0.2), (0.2, 0.8, 0.2), (0.1, 0.7, 0.9)], np.float32)
    picture = np.repeat(patches, width // 3 + 1, axis=0)[:width][None].repeat(height, axis=0)
    for frame in (1, 2):
        write_image(tmp_path / f"plate.{frame:04d}.png", picture, pixel_type="uint8")
        write_image(tmp_path / f"alpha.{frame:04d}.exr", np.ones((height, width), np.float32))
    movie = preview_movie(open_frames(tmp_path / "plate.####.png"), str(tmp_path / "alpha.####.exr"),
                          tmp_path / "pv" / "preview.mp4")
    with av.open(str(movie)) as container:
        context = container.streams.video[0].codec_context
        assert (context.colorspace, context.color_primaries, context.color_trc, context.color_range) == (1, 1, 1, 1)
    back = open_frames(movie)
    shown = back.linear_to_network(back.linear(1))
    for index, colour in enumerate(patches):
        middle = shown[300:400, index * width // 3 + 40:(index + 1) * width // 3 - 40].reshape(-1, 3).mean(0)
        np.testing.assert_allclose(middle, colour, atol=0.01, err_msg=str(index))
