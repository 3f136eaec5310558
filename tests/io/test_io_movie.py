import itertools
import json
import logging
import random
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tcvom.errors import InputError, MissingFrameError
from tcvom.io import MovieFrames, open_frames


def make_movie(
    path: Path, count: int, size=(64, 48), *, slots: list[int] | None = None, options=None, fmt=None, faststart=False,
    rotation: int = 0,
) -> list[np.ndarray]:
    """Frames whose mean grey level encodes the frame index (robust to compression).
    ``slots``: each frame's time in 1/24 s (a variable frame rate when they skip)."""
    frames = []
    with av.open(str(path), "w", format=fmt, options={"movflags": "faststart"} if faststart else {}) as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"g": "8", "crf": "10", **(options or {})}
        if rotation:
            stream.set_display_rotation(rotation)
        if slots is not None:
            stream.time_base = Fraction(1, 1000)
        for i in range(count):
            level = 20 + 8 * i
            img = np.full((size[1], size[0], 3), level, np.uint8)
            frames.append(img)
            picture = av.VideoFrame.from_ndarray(img, format="rgb24")
            if slots is not None:
                picture.pts, picture.time_base = round(slots[i] * 1000 / 24), Fraction(1, 1000)
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return frames


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".MTS", ".m2ts", ".ts", ".mpg"])
def test_movie_random_access(tmp_path: Path, suffix: str) -> None:
    """MPEG transport streams (camera .MTS/.m2ts) went to the image reader, which said the
    file was damaged."""
    path = tmp_path / f"plate{suffix}"
    truth = make_movie(path, 20, fmt="mpegts" if suffix in (".MTS", ".m2ts", ".ts", ".mpg") else None)
    movie = open_frames(path)
    assert isinstance(movie, MovieFrames)
    assert movie.frame_numbers == list(range(1, 21)) and (movie.width, movie.height) == (64, 48)
    for frame in (1, 2, 3, 15, 4, 20, 10, 11):  # sequential, forward jumps and backward seeks
        got = movie.read(frame).mean() * 255
        assert abs(got - truth[frame - 1].mean()) < 2.0, frame


def test_movie_range_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "plate.mp4"
    make_movie(path, 6)
    assert open_frames(path, "2-4").frame_numbers == [2, 3, 4]
    assert open_frames(path, movie_first_frame=1001).frame_numbers[0] == 1001
    with pytest.raises(MissingFrameError, match="outside"):
        open_frames(path, "5-9")
    with pytest.raises(MissingFrameError):
        open_frames(tmp_path / "none.mov")


def decoded_levels(path: Path) -> list[float]:
    """Mean grey level of every picture, in the order PyAV's decoder gives them."""
    with av.open(str(path)) as container:
        return [picture.to_ndarray(format="rgb24").mean() for picture in container.decode(video=0)]


@pytest.mark.parametrize(
    ("name", "fmt", "slots"),
    [
        ("vfr.mp4", None, [0, 1, 2, 3, 7, 8, 9, 10, 17, 18, 19, 20, 30, 31, 40, 41]),  # skips in time
        ("vfr.mkv", None, [0, 1, 2, 5, 6, 7, 12, 13, 14, 15, 22, 23, 24, 25, 26, 40]),
        ("bframes.avi", None, None),  # AVI: times in decoding order, not presentation order
        ("raw.h264", "h264", None),  # an elementary stream: packets without times
    ],
)
def test_movie_frame_is_nth_picture(tmp_path: Path, name: str, fmt: str | None, slots: list[int] | None) -> None:
    """Frame N is the N-th picture shown, whatever the frame rate, in any reading order."""
    path = tmp_path / name
    truth = make_movie(path, 16, slots=slots, options={"g": "4", "bf": "2"}, fmt=fmt)
    levels = decoded_levels(path)
    assert np.abs(np.array(levels) - [img.mean() for img in truth]).max() < 2.0  # the movie is what was written
    movie = MovieFrames(path)
    assert movie.frame_numbers == list(range(1, 17))
    order = movie.frame_numbers + random.Random(0).sample(movie.frame_numbers, 16) + movie.frame_numbers[::-1]
    for frame in order:  # sequential, random (forward and backward seeks) and backward
        got = movie.read(frame).mean() * 255
        assert abs(got - levels[frame - 1]) < 2.0, frame


def test_movie_truncated(tmp_path: Path) -> None:
    """A movie cut short is an input error naming the file and the first missing frame."""
    path = tmp_path / "plate.mp4"
    make_movie(path, 12, faststart=True)  # the header, at the front, lists all 12 frames
    with av.open(str(path)) as container:
        packets = [packet for packet in container.demux(video=0) if packet.size]
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: packets[8].pos + packets[8].size // 2])  # half of the 9th packet
    for frames in (None, "1-4"):  # pictures shown between those held may be lost too: no frame is sure
        with pytest.raises(InputError) as caught:
            open_frames(cut, frames)
        assert str(caught.value).startswith(f"{cut}: frame 9: the movie's header lists 12 frames but the file holds 8")
        assert caught.value.frame == 9 and caught.value.exit_code == 2
    # Nothing but the header: no frame at all.
    (tmp_path / "head.mp4").write_bytes(data[: packets[0].pos + 10])
    with pytest.raises(InputError, match=r"head\.mp4: frame 1: .*missing"):
        open_frames(tmp_path / "head.mp4")


def _cut_short(path: Path, picture: int) -> Path:
    """A copy of the movie ``path`` (``cut.mkv`` beside it) that ends before the packet of
    its ``picture``-th picture, as a copy cut short does."""
    with av.open(str(path)) as container:
        packets = [packet for packet in container.demux(video=0) if packet.size]
    cut = path.with_name("cut.mkv")
    cut.write_bytes(path.read_bytes()[: packets[picture].pos])
    return cut


def test_matroska_truncated(tmp_path: Path) -> None:
    """Matroska lists no frame count: a copy cut short passed as a shorter shot (exit 0, a
    partial matte). Its video track's duration gives it away."""
    path = tmp_path / "plate.mkv"
    make_movie(path, 24)
    assert len(open_frames(path).frame_numbers) == 24  # whole: no complaint
    cut = _cut_short(path, 12)
    with pytest.raises(InputError, match=r"cut\.mkv: frame 1[23]: the movie's video track says it lasts 1\.000 s") as caught:
        open_frames(cut)
    assert "missing" in str(caught.value) and caught.value.exit_code == 2


def test_matroska_whose_first_picture_is_not_at_zero_is_whole(tmp_path: Path) -> None:
    """Odd-inputs QA: FFmpeg's Matroska muxer writes the track's end time as its DURATION: a
    whole file whose first picture is at 1.5 s (a clip cut from a longer one) was refused
    as truncated, "about 36 frame(s) missing". One cut short is still refused."""
    path = tmp_path / "offset.mkv"
    make_movie(path, 20, slots=list(range(36, 56)))
    movie = open_frames(path)
    assert movie.frame_numbers == list(range(1, 21))
    assert abs(movie.read(1).mean() * 255 - 20) < 4 and abs(movie.read(20).mean() * 255 - (20 + 8 * 19)) < 4
    cut = _cut_short(path, 10)
    with pytest.raises(InputError, match=r"cut\.mkv: frame 1[01]: the movie's video track says it lasts") as caught:
        open_frames(cut)
    missing = int(str(caught.value).split("about ")[1].split(" frame")[0])
    assert 5 <= missing <= 11, "the missing pictures are counted from the track's start (not the offset's 36)"


@pytest.mark.parametrize("suffix", [".mkv", ".webm"])
def test_matroska_whose_last_picture_is_held_is_whole(tmp_path: Path, suffix: str) -> None:
    """A variable frame rate that slows at the end (a phone in low light) or a last picture
    held for a second: the track's duration runs past the last picture's time plus one
    average step, and the whole file was refused as truncated. Its packet's own duration
    says how long it is shown."""
    path = tmp_path / f"plate{suffix}"
    times = [0, 17, 33, 50, 67, 133, 200, 267]  # 60 fps slowing to 15 fps, in ms
    with av.open(str(path), "w") as container:
        codec = "libvpx-vp9" if suffix == ".webm" else "libx264"
        stream = container.add_stream(codec, rate=60)
        stream.width, stream.height = 64, 48
        stream.pix_fmt = "yuv420p"
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        packets = []
        for i, at in enumerate(times):
            picture = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 + 20 * i, np.uint8), format="rgb24")
            picture.pts, picture.time_base = at, Fraction(1, 1000)
            packets += stream.encode(picture)
        packets += stream.encode()
        for packet in packets:
            if packet.pts == times[-1]:
                packet.duration = 1000  # held for a second
            container.mux(packet)
    movie = open_frames(path)
    assert movie.frame_numbers == list(range(1, 9))
    assert abs(movie.read(8).mean() * 255 - (20 + 20 * 7)) < 4


def test_movie_damaged_picture(tmp_path: Path) -> None:
    """A picture the decoder refuses is an input error naming the file and the frame, and
    the movie stays readable elsewhere."""
    path = tmp_path / "plate.mp4"
    truth = make_movie(path, 12, options={"g": "4", "bf": "0"})
    with av.open(str(path)) as container:
        keys = [packet for packet in container.demux(video=0) if packet.size and packet.is_keyframe]
    assert len(keys) == 3
    data = bytearray(path.read_bytes())
    data[keys[2].pos + 4 : keys[2].pos + keys[2].size] = b"\xff" * (keys[2].size - 4)  # frame 9's picture
    path.write_bytes(data)
    movie = MovieFrames(path)
    with pytest.raises(InputError, match=r"plate\.mp4: frame 9: cannot decode picture 9 of 12"):
        movie.read(9)
    for frame in (1, 4, 5, 8):
        assert abs(movie.read(frame).mean() * 255 - truth[frame - 1].mean()) < 2.0, frame


def test_tcvom_info_names_a_movies_rotation(tmp_path: Path, capsys) -> None:
    """Media QA: `tcvom info phone.mp4` said nothing of the rotation players apply, while a
    player shows the clip upright 48x64: the artist keys the movie from what info says."""
    from tcvom.cli import main

    make_movie(tmp_path / "phone.mp4", 2, size=(64, 48), rotation=90)
    assert main(["info", str(tmp_path / "phone.mp4"), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["rotation"].startswith("90 degrees") and "64x48" in shown["rotation"], shown
    make_movie(tmp_path / "plain.mp4", 2)
    assert main(["info", str(tmp_path / "plain.mp4"), "--json"]) == 0
    assert "rotation" not in json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("suffix", [".mkv", ".mov"])
def test_a_movie_of_several_video_tracks_reads_the_main_one_and_says_so(tmp_path: Path, caplog, suffix: str) -> None:
    """Media QA: an MKV whose first video track is a one-picture 32x32 thumbnail, the plate
    the second: tcvom read the thumbnail (one frame), and a plate of the same size would have
    been matted from the wrong track without a word. Movie QA: in a MOV, ffmpeg's own pick
    is the thumbnail track (the muxer marks the first track the default)."""
    path = tmp_path / f"two{suffix}"
    with av.open(str(path), "w") as container:
        thumb = container.add_stream("mjpeg", rate=1)
        thumb.width = thumb.height = 32
        thumb.pix_fmt = "yuvj420p"
        plate = container.add_stream("libx264", rate=24)
        plate.width, plate.height, plate.pix_fmt = 64, 48, "yuv420p"
        picture = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 200, np.uint8), format="rgb24")
        for packet in [*thumb.encode(picture.reformat(format="yuvj420p")), *thumb.encode()]:
            container.mux(packet)
        for i in range(6):
            for packet in plate.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 + 30 * i, np.uint8),
                                                                   format="rgb24")):
                container.mux(packet)
        for packet in plate.encode():
            container.mux(packet)
    with caplog.at_level(logging.WARNING, logger="tcvom"):
        movie = MovieFrames(path)
    assert movie.frame_numbers == [1, 2, 3, 4, 5, 6] and (movie.width, movie.height) == (64, 48)
    assert abs(movie.read(4).mean() * 255 - 110) < 3
    assert "holds 2 video tracks; tcvom reads track #1 (h264 64x48" in caplog.text and "#0 mjpeg 32x32" in caplog.text


def test_a_rotated_movie_is_read_as_stored_and_said_once(tmp_path: Path) -> None:
    """Phone footage carries a display rotation that tcvom does not apply: a warning says so
    (once per file), so a keyframe painted on the rotated picture is not a mystery."""
    said: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: said.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("tcvom").addHandler(handler)
    try:
        path = tmp_path / "phone.mp4"
        make_movie(path, 3, size=(64, 48), rotation=90)
        for _ in range(2):
            movie = MovieFrames(path)
            assert movie.read(1).shape == (48, 64, 3) and movie.read(2).shape == (48, 64, 3)
        assert len(said) == 1 and "phone.mp4" in said[0] and "90 degrees" in said[0] and "64x48" in said[0], said
        plain = tmp_path / "plain.mp4"
        make_movie(plain, 2)
        MovieFrames(plain).read(1)
        assert len(said) == 1
    finally:
        logging.getLogger("tcvom").removeHandler(handler)


def test_a_picture_of_another_size_names_the_movie(tmp_path: Path) -> None:
    """Two clips of different sizes joined in one file: the error blamed the keyframe (or the
    trimap) and never named the movie."""
    path = tmp_path / "joined.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mjpeg", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuvj420p"
        small = av.CodecContext.create("mjpeg", "w")
        small.width, small.height, small.pix_fmt = 32, 24, "yuvj420p"
        small.time_base, small.framerate = Fraction(1, 24), Fraction(24)
        for i in range(6):
            first = i < 3
            picture = av.VideoFrame.from_ndarray(np.full((48, 64, 3) if first else (24, 32, 3), 40 * i, np.uint8),
                                                 format="rgb24").reformat(format="yuvj420p")
            picture.pts, picture.time_base = i, Fraction(1, 24)
            for packet in (stream.encode(picture) if first else small.encode(picture)):
                if not first:
                    packet.stream, packet.pts, packet.dts, packet.time_base = stream, i, i, Fraction(1, 24)
                container.mux(packet)
    movie = open_frames(path)
    assert movie.read(3).shape[:2] == (48, 64)
    with pytest.raises(InputError, match=r"joined\.mkv: frame 4: picture 4 of 6 .*is 32 x 24, the movie's video is "
                                         r"64 x 48") as caught:
        movie.read(4)
    assert caught.value.exit_code == 2


def _tagged_movie(path: Path, **tags: int) -> Path:
    """A two-picture 64x48 H.264 movie whose codec context carries ``tags`` (``color_trc``,
    ``color_primaries``, ``colorspace``: FFmpeg's numbers)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for name, value in tags.items():
            setattr(stream.codec_context, name, value)
        for i in range(2):
            picture = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 * i, np.uint8), format="rgb24")
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_a_movie_tagged_hdr_or_bt2020_is_said(tmp_path: Path, caplog) -> None:
    """I/O QA: an HLG (BT.2020) movie was matted as sRGB without a word, where an image whose
    header names another colour space gets a warning."""
    for name, transfer, primaries in (("hlg", 18, 9), ("pq", 16, 9), ("wide", 14, 9), ("sdr", 1, 1)):
        _tagged_movie(tmp_path / f"{name}.mp4", color_trc=transfer, color_primaries=primaries)
    for name, said in (("hlg", "HLG (ARIB STD-B67); tcvom takes movies as 'sRGB Encoded Rec.709 (sRGB)' (docs/io.md): "
                               "if the tag is right, pass --input-colorspace 'Rec.2100-HLG - Display'"),
                       ("pq", "--input-colorspace 'Rec.2100-PQ - Display'"),
                       ("wide", "tagged BT.2020 primaries; tcvom takes movies as 'sRGB Encoded Rec.709 (sRGB)' "
                                "(docs/io.md): if the tag is right, pass --input-colorspace NAME")):
        caplog.clear()
        with caplog.at_level("WARNING", logger="tcvom"):
            open_frames(tmp_path / f"{name}.mp4")
        (message,) = [r.getMessage() for r in caplog.records]
        assert said in message, message
    caplog.clear()
    with caplog.at_level("WARNING", logger="tcvom"):
        open_frames(tmp_path / "sdr.mp4")
        open_frames(tmp_path / "hlg.mp4")  # said once per file
    assert caplog.records == []


def test_tcvom_info_says_a_movies_colour(tmp_path: Path, capsys) -> None:
    """Colour QA: `tcvom info --json` of a movie said nothing of its colour: neither the space
    it is taken in nor its HDR / BT.2020 tag (a run's warning only, which a host reading the
    JSON never sees), nor the matrix and range it is decoded with."""
    from tcvom.cli import main

    _tagged_movie(tmp_path / "pq.mp4", color_trc=16, color_primaries=9, colorspace=9, color_range=2)
    _tagged_movie(tmp_path / "plain.mp4")
    assert main(["info", str(tmp_path / "pq.mp4"), "--json"]) == 0
    pq = json.loads(capsys.readouterr().out)
    assert pq["taken_as"].startswith("sRGB Encoded Rec.709 (sRGB) without --input-colorspace")
    assert pq["header_says"] == ("HDR, PQ (SMPTE ST 2084): pass --input-colorspace 'Rec.2100-PQ - Display' if that "
                                 "is right")
    assert (pq["matrix"], pq["range"], pq["pixel_format"]) == ("BT.2020", "full", "yuvj420p (8-bit)")
    assert main(["info", str(tmp_path / "plain.mp4"), "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert "header_says" not in plain and plain["matrix"] == "untagged: decoded as BT.601"
    assert plain["range"] == "limited (video)"
    with av.open(str(tmp_path / "grey.mov"), "w") as container:  # code review: grey is no YCbCr
        stream = container.add_stream("png", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "gray"
        for packet in stream.encode(av.VideoFrame.from_ndarray(np.full((48, 64), 90, np.uint8), format="gray")):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    assert main(["info", str(tmp_path / "grey.mov"), "--json", "--ocio-config", "studio-config-latest"]) == 0
    grey = json.loads(capsys.readouterr().out)
    assert grey["pixel_format"] == "gray (8-bit)" and "matrix" not in grey and "range" not in grey
    assert main(["info", str(tmp_path / "pq.mp4"), "--json", "--ocio-config", "studio-config-latest"]) == 0
    assert json.loads(capsys.readouterr().out)["header_says"].endswith("--ocio-config studio-config-latest if that "
                                                                       "is right")


def _mpeg4(path: Path, levels: list[int], *, slots: list[int] | None = None, options: dict | None = None,
           aspect: Fraction | None = None) -> None:
    """A 64x48 MPEG-4 movie of flat pictures of these grey ``levels`` (``slots``: their times)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=24, options=options or {})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        if aspect is not None:
            stream.codec_context.sample_aspect_ratio = aspect
        for i, level in enumerate(levels):
            picture = av.VideoFrame.from_ndarray(np.full((48, 64, 3), level, np.uint8), format="rgb24")
            if slots is not None:
                picture.pts = slots[i]
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_a_mirrored_or_stretched_movie_is_said_so_and_an_avi_of_repeat_slots_is_whole(tmp_path: Path, caplog,
                                                                                       capsys) -> None:
    """Plates QA: a track matrix that mirrors (x scaled by -1) was said to be a turn by -180
    degrees (rotating the plate upright turned it upside down); a 2:1 pixel aspect went
    unsaid (square-pixel alphas); an intact variable-frame-rate AVI, whose header counts the
    empty "repeat the picture" slots, was refused as truncated."""
    import struct

    from tcvom.cli import main

    make_movie(tmp_path / "m.mp4", 3)
    data = bytearray((tmp_path / "m.mp4").read_bytes())
    at = data.find(b"tkhd")
    data[at + 44:at + 80] = struct.pack(">9I", (-0x10000) & 0xFFFFFFFF, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    (tmp_path / "mirror.mp4").write_bytes(bytes(data))
    _mpeg4(tmp_path / "wide.mov", [40 * i for i in range(3)], aspect=Fraction(2, 1))
    slots = [0, 1, 2, 4, 5, 6, 8, 9]  # every 4th slot empty: a repeat of the picture before
    _mpeg4(tmp_path / "vfr.avi", [20 + 25 * i for i in range(len(slots))], slots=slots)
    with caplog.at_level(logging.WARNING, logger="tcvom"):
        MovieFrames(tmp_path / "mirror.mp4").read(1)
        MovieFrames(tmp_path / "wide.mov").read(1)
        avi = MovieFrames(tmp_path / "vfr.avi")
    assert "mirror.mp4: the movie asks players to mirror its pictures" in caplog.text
    assert "-180" not in caplog.text
    assert "wide.mov: the movie's pixels are not square (pixel aspect 2)" in caplog.text
    assert avi.frame_numbers == list(range(1, len(slots) + 1))
    assert abs(avi.read(len(slots)).mean() * 255 - (20 + 25 * (len(slots) - 1))) < 10  # the last picture, lossy
    assert main(["info", str(tmp_path / "mirror.mp4"), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert "mirror" in shown and "rotation" not in shown


def test_the_display_rotation_is_read_from_the_matrix() -> None:
    """Code review: PyAV's angle cut 30 degrees to 29 and gave a degenerate matrix's NaN as
    -2147483648 degrees; a vertical flip (a mirror turned half way) read -180."""
    import math

    from tcvom.io.sources import _display_rotation

    def turned(degrees: float, mirror: bool = False) -> tuple[int, ...]:
        c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
        m = [c, -s, s, c]  # FFmpeg's av_display_rotation_set (counter-clockwise, sign as it stores it)
        if mirror:
            m[0], m[2] = -m[0], -m[2]
        return (round(m[0] * 65536), round(m[1] * 65536), 0, round(m[2] * 65536), round(m[3] * 65536), 0, 0, 0,
                1 << 30)

    assert _display_rotation(turned(30), False) == 30 and _display_rotation(turned(90), False) == 90
    assert _display_rotation(turned(0, mirror=True), True) == 0  # a horizontal flip: no turn
    assert _display_rotation(turned(180, mirror=True), True) == 180  # a vertical flip
    assert _display_rotation((0,) * 8 + (1 << 30,), False) == 0 and _display_rotation(None, False) == 0


def test_a_truncated_avi_with_b_frames_is_still_refused(tmp_path: Path) -> None:
    """Code review: counting an AVI's time slots (for its repeat slots) took a B-frame AVI cut
    short, whose last times survive the lost picture, for a whole one."""
    path = tmp_path / "b.avi"
    _mpeg4(path, [10 * i for i in range(20)], options={"bf": "2"})
    whole = MovieFrames(path)
    assert whole.frame_numbers == list(range(1, 21))
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.95)])
    with pytest.raises(InputError, match="header lists 20 frames but the file holds"):
        MovieFrames(path)


@pytest.mark.parametrize("output", ["alpha", "rgba"])
def test_the_alphas_of_a_movie_of_wide_pixels_carry_its_pixel_aspect(tmp_path: Path, output: str) -> None:
    """Left in session 26: a 2:1 movie was warned about, but its EXR alphas said square
    pixels, so Nuke and Blender showed them half as wide as the plate."""
    from tcvom.cli import main
    from tcvom.io import write_image
    from tcvom.io.images import image_layout

    _mpeg4(tmp_path / "wide.mov", [40 + 30 * i for i in range(3)], aspect=Fraction(2, 1))
    trimap = np.zeros((48, 64), np.float32)
    trimap[10:38, 16:48], trimap[16:32, 24:40] = 128 / 255, 1.0
    for frame in (1, 2, 3):
        write_image(tmp_path / f"tri.{frame:04d}.png", trimap, pixel_type="uint8")
    for fmt in ("exr", "png16"):
        out = tmp_path / f"{output}_{fmt}"
        assert main(["matte", "--plate", str(tmp_path / "wide.mov"), "--trimaps", str(tmp_path / "tri.####.png"),
                     "--out", str(out), "--method", "classical", "--output", output, "--alpha-format", fmt,
                     "--progress", "none"]) == 0
        written = sorted((out / "alpha" if (out / "alpha").is_dir() else out).glob("*.0002.*"))
        assert len(written) == 1, written
        aspect = dict((name, value) for name, _, value in image_layout(written[0]).attributes).get("PixelAspectRatio")
        assert aspect == (2.0 if fmt == "exr" else None), (fmt, aspect)
        # code review: part of the frames' settings, so that an output made before (square) is made again whole
        settings = json.loads(next(out.rglob(".alpha.tcvom.json")).read_text())["settings"]
        assert settings.get("pixel_aspect") == (2.0 if fmt == "exr" else None)


@pytest.mark.parametrize(("suffix", "codec", "size"), [
    (".3gp", "libx264", (64, 48)), (".3g2", "libx264", (64, 48)), (".flv", "flv", (64, 48)),
    (".wmv", "wmv2", (64, 48)), (".asf", "wmv2", (64, 48)), (".vob", "mpeg2video", (64, 48)),
    (".y4m", "rawvideo", (64, 48)), (".dv", "dvvideo", (720, 576)),
])
def test_movies_of_phones_the_web_dv_and_raw_yuv_are_movies(tmp_path: Path, suffix: str, codec: str,
                                                            size: tuple[int, int]) -> None:
    """Plates QA: a phone's .3gp (and .flv, .y4m...) went to the image reader, "cannot read
    the image ... convert it to EXR, TIFF, PNG": the same bytes named .mp4 read as a movie."""
    path = tmp_path / f"plate{suffix}"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv411p" if codec == "dvvideo" else "yuv420p"
        for i in range(6):
            picture = av.VideoFrame.from_ndarray(np.full((size[1], size[0], 3), 20 + 35 * i, np.uint8), format="rgb24")
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    movie = open_frames(path)
    assert isinstance(movie, MovieFrames) and movie.frame_numbers == [1, 2, 3, 4, 5, 6]
    for frame in (1, 2, 6, 3, 5, 4):  # in order, and seeking back
        assert abs(movie.read(frame).mean() * 255 - (20 + 35 * (frame - 1))) < 4, (suffix, frame)


def _animation(path: Path, codec: str, pix_fmt: str, levels: list[int], fmt: str | None = None) -> None:
    """An animation of 64x48 pictures, each flat grey at one of ``levels``."""
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, pix_fmt
        for level in levels:
            picture = av.VideoFrame.from_ndarray(np.full((48, 64, 3), level, np.uint8), format="rgb24")
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_an_animated_gif_is_read_as_a_movie(tmp_path: Path) -> None:
    """Plates QA: an animated GIF went to the image reader, which read its first picture: a
    one-frame plate, matted with exit 0 and its other pictures dropped without a word."""
    path = tmp_path / "anim.gif"
    _animation(path, "gif", "rgb8", [40 + 50 * i for i in range(5)])
    movie = open_frames(path)
    assert isinstance(movie, MovieFrames) and movie.frame_numbers == [1, 2, 3, 4, 5]
    levels = [movie.read(frame).mean() * 255 for frame in movie.frame_numbers]
    assert all(b > a + 20 for a, b in itertools.pairwise(levels)), levels  # each picture its own, in order
    # code review: GIF images (a sequence, or one of a single picture) stay images
    from tcvom.io import SequenceFrames, write_image

    for frame in (1001, 1002):
        write_image(tmp_path / f"plate.{frame}.gif", np.full((8, 8, 3), 0.5, np.float32), pixel_type="uint8")
    assert isinstance(open_frames(tmp_path / "plate.####.gif"), SequenceFrames)
    assert open_frames(tmp_path / "plate.1001.gif").frame_numbers == [1001]


@pytest.mark.parametrize("suffix", [".png", ".apng"])
def test_an_animated_png_is_read_as_a_movie(tmp_path: Path, suffix: str, capsys) -> None:
    """Odd-inputs QA: an animated PNG went to the image reader, which reads its first picture
    only (OpenImageIO sees a still): one frame matted, exit 0, the others dropped unsaid."""
    from tcvom.cli import main
    from tcvom.io import SequenceFrames, write_image

    path = tmp_path / f"clip{suffix}"
    _animation(path, "apng", "rgb24", [30 + 40 * i for i in range(6)], fmt="apng")
    movie = open_frames(path)
    assert isinstance(movie, MovieFrames) and movie.frame_numbers == [1, 2, 3, 4, 5, 6]
    assert [round(movie.read(f).mean() * 255) for f in (6, 1, 3)] == [230, 30, 110]
    assert main(["info", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["frame_count"] == 6
    write_image(tmp_path / "still.1001.png", np.full((8, 8, 3), 0.5, np.float32), pixel_type="uint8")
    assert isinstance(open_frames(tmp_path / "still.1001.png"), SequenceFrames)  # a still PNG stays an image


@pytest.mark.parametrize("suffix", [".webp", ".tif"])
def test_a_plate_file_of_several_pictures_is_refused(tmp_path: Path, suffix: str, capsys) -> None:
    """Plates QA: an animated WebP or a TIFF stack went to the image reader, which read its
    first picture: a one-frame plate, matted with exit 0 and eleven pictures dropped."""
    from PIL import Image

    from tcvom.cli import main

    pictures = [Image.fromarray(np.full((32, 48, 3), 30 * i, np.uint8)) for i in range(1, 5)]
    path = tmp_path / f"stack{suffix}"
    pictures[0].save(path, save_all=True, append_images=pictures[1:], **({"lossless": True} if suffix == ".webp" else {}))
    with pytest.raises(InputError, match=r"holds 4 pictures of 48x32") as caught:
        open_frames(path)
    assert "oiiotool" in caught.value.hint and str(path) in str(caught.value)
    assert main(["info", str(path)]) == 0 and "pictures: 4 of this size" in capsys.readouterr().out
    # a TIFF whose further pages are a thumbnail and a 1-bit mask is one picture, as before
    Image.new("L", (48, 32)).save(tmp_path / "mask.tif")
    pictures[0].save(tmp_path / "one.tif", save_all=True,
                     append_images=[pictures[1].resize((12, 8)), Image.new("1", (48, 32))])
    assert open_frames(tmp_path / "one.tif").frame_numbers == [1]


def test_a_movie_given_as_keyframes_or_trimaps_is_refused_as_one(tmp_path: Path) -> None:
    """Plates QA: a roto movie as --keyframes was "no frame number ... give FRAME=roto.mov",
    whose run then said OpenImageIO has no reader for it."""
    from tcvom.io import open_trimaps

    make_movie(tmp_path / "roto.mov", 3)
    for given in (str(tmp_path / "roto.mov"), f"1={tmp_path / 'roto.mov'}", {1: tmp_path / "roto.mov"}):
        with pytest.raises(InputError, match="the keyframe trimap is a movie: tcvom reads keyframe trimaps from image "
                           "files") as caught:
            open_trimaps(given, what="keyframe trimap")
        assert "image sequence" in caught.value.hint
    with pytest.raises(InputError, match="the trimap is a movie"):
        open_trimaps(str(tmp_path / "roto.mov"), [1, 2, 3])


def test_a_picture_the_decoder_conceals_and_those_decoded_from_it_are_refused(tmp_path: Path) -> None:
    """Movie QA: bytes damaged inside a P-picture's packet were concealed by FFmpeg (the
    picture flagged corrupt) and every picture after it, decoded from it, was matted
    without a word. They are input errors up to the next keyframe, which reads again; so
    is the last picture of a transport stream cut short (its packet is not flagged, the
    picture is)."""
    path = tmp_path / "plate.mp4"
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 128, 96, "yuv420p"
        stream.options = {"g": "8", "crf": "10", "bf": "0"}
        for i in range(12):
            picture = av.VideoFrame.from_ndarray(np.roll(base, 2 * i, axis=1), format="rgb24")
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with av.open(str(path)) as container:
        packets = [packet for packet in container.demux(video=0) if packet.size]
    fifth = packets[4]  # no B-frames: decoding order is presentation order
    data = bytearray(path.read_bytes())
    for i in range(fifth.pos + 20, fifth.pos + fifth.size - 4, 5):
        data[i] ^= 0xA5
    path.write_bytes(data)
    with av.open(str(path)) as container:
        flagged = [i + 1 for i, frame in enumerate(container.decode(video=0)) if frame.is_corrupt]
    if 5 not in flagged:
        pytest.skip(f"this FFmpeg flags no concealed picture here ({flagged})")
    movie = MovieFrames(path)
    for frame in range(1, 5):
        movie.read(frame)
    with pytest.raises(InputError, match=r"plate\.mp4: frame 5: picture 5 of 12 .*is damaged: the decoder reports it as"):
        movie.read(5)
    with pytest.raises(InputError, match=r"frame 7: .*a picture before it, which it is decoded from, as corrupt"):
        MovieFrames(path).read(7)  # a fresh reader, seeking: the damage is found on the way
    assert MovieFrames(path).read(9).shape == (96, 128, 3)  # the next keyframe's pictures are whole again


def test_an_untagged_hd_movie_is_decoded_as_bt709(tmp_path: Path) -> None:
    """Movie QA: video that names no YCbCr matrix was decoded with BT.601 at every size
    (FFmpeg's default): an untagged 1280x720 H.264 read sRGB (200, 50, 100) as (187, 29,
    99). From 720 lines up it is BT.709, as players and Nuke take it; below, BT.601."""
    r, g, b = 200 / 255, 50 / 255, 100 / 255
    for (width, height), (kr, kb) in (((1280, 720), (0.2126, 0.0722)), ((320, 240), (0.299, 0.114))):
        y = kr * r + (1 - kr - kb) * g + kb * b
        levels = (round(16 + 219 * y), round(128 + 224 * (b - y) / (2 * (1 - kb))),
                  round(128 + 224 * (r - y) / (2 * (1 - kr))))
        path = tmp_path / f"untagged{height}.mp4"
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libx264", rate=24)
            stream.width, stream.height, stream.pix_fmt, stream.options = width, height, "yuv420p", {"qp": "0"}
            planes = np.stack([np.full((height, width), v, np.uint8) for v in levels])
            picture = av.VideoFrame.from_ndarray(planes, format="yuv444p").reformat(format="yuv420p")
            for packet in [*stream.encode(picture), *stream.encode()]:
                container.mux(packet)
        raw, _ = MovieFrames(path)._raw(1)
        assert np.abs(raw[height // 2, width // 2] * 255 - [200, 50, 100]).max() <= 2.5, (height, raw[0, 0] * 255)


def test_a_movie_of_a_matrix_ffmpeg_cannot_convert_is_refused(tmp_path: Path, capsys) -> None:
    """Movie QA: video tagged YCgCo (x264's --colormatrix YCgCo), BT.2020 constant luminance
    or ICtCp stopped `tcvom info` and `run` on a traceback from FFmpeg's scaler (exit 1)."""
    from tcvom.cli import main

    path = _tagged_movie(tmp_path / "ycgco.mp4", colorspace=8)  # YCgCo
    from tcvom.io import write_image

    key = np.zeros((48, 64), np.float32)
    key[10:30, 20:40], key[12:28, 22:38] = 0.5, 1.0
    write_image(tmp_path / "key.png", key, pixel_type="uint8", channels=("Y",))
    for args in (["info", str(path)], ["run", "--plate", str(path), "--keyframes", f"1={tmp_path / 'key.png'}",
                                       "--out", str(tmp_path / "o"), "--method", "classical", "--progress", "none"]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert f"{path}: frame 1: picture 1 of 2" in err and "YCbCr matrix (tag 8: YCgCo" in err, err
        assert "Traceback" not in err and "export the movie again with a BT.709" in err


def test_an_interlaced_movie_is_said_in_a_warning_and_in_tcvom_info(tmp_path: Path, caplog, capsys) -> None:
    """Left since session 32: an interlaced (broadcast) movie was matted picture by picture
    without a word, its fields' comb on a moving edge carried into the alpha."""
    from tcvom.cli import main

    fields = tmp_path / "broadcast.mp4"
    make_movie(fields, 3, options={"flags": "+ilme+ildct", "x264-params": "interlaced=1"})
    make_movie(tmp_path / "plain.mp4", 3)
    with caplog.at_level(logging.WARNING, logger="tcvom"):
        MovieFrames(fields).read(2)
        MovieFrames(tmp_path / "plain.mp4").read(2)
    said = [r.getMessage() for r in caplog.records if "interlaced" in r.getMessage()]
    assert len(said) == 1 and "broadcast.mp4" in said[0] and "deinterlace" in said[0], said
    assert main(["info", str(fields), "--json"]) == 0
    assert "two fields" in json.loads(capsys.readouterr().out)["interlaced"]
    assert main(["info", str(tmp_path / "plain.mp4"), "--json"]) == 0
    assert "interlaced" not in json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(("codec", "pix_fmt"), [("png", "rgba"), ("prores_ks", "yuva444p10le")])
def test_a_movie_with_alpha_is_matted_on_its_colour_and_its_alpha_below_1_said(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, codec: str, pix_fmt: str) -> None:
    """Blender QA: a plate whose alpha is 0 renders black under its matte in a host that
    premultiplies it on loading (Blender's Movie Clip), unsaid. tcvom reads the colour as
    stored, and says once that the alpha is below 1 and ignored."""
    ramp = np.linspace(40, 200, 64)[None, :, None] + np.linspace(0, 20, 48)[:, None, None]
    pictures = [np.broadcast_to(ramp + np.array([0, 10 * i, 5 * i]), (48, 64, 3)).astype(np.uint8) for i in range(3)]
    with av.open(str(tmp_path / "alpha.mov"), "w") as container:
        stream = container.add_stream(codec, rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, pix_fmt
        for i, rgb in enumerate(pictures):
            alpha = np.full((48, 64, 1), 255 if i == 0 else 0, np.uint8)
            picture = av.VideoFrame.from_ndarray(np.concatenate([rgb, alpha], axis=2), format="rgba")
            for packet in stream.encode(picture.reformat(format=pix_fmt)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    movie = open_frames(tmp_path / "alpha.mov")
    for frame, rgb in zip((1, 2, 3), pictures, strict=True):
        read = movie.read(frame)
        assert read.shape == (48, 64, 3) and read.flags.c_contiguous
        assert np.abs(read * 255 - rgb).max() < 4  # the colour as stored, not premultiplied to black
    warned = [r.getMessage() for r in caplog.records if "alpha channel is below 1" in r.getMessage()]
    assert len(warned) == 1 and "frame 2" in warned[0] and "down to 0" in warned[0], warned
