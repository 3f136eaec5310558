"""Faults in keyframe trimaps and per-frame trimaps (issue 16, point 2 and the fault suite).

A keyframe painted with other values than 0/128/255, or without foreground or background,
used to give an all-black matte with exit 0; it is now refused before any work, naming
the file, the frame, what was found and what is expected.
"""

from __future__ import annotations

import numpy as np
import pytest
from fault_helpers import HEIGHT, WIDTH, Shot, expect, painted, tcvom, write


def _alpha_files(shot: Shot) -> list[str]:
    folder = shot.out / "alpha"
    return sorted(p.name for p in folder.glob("alpha.*.exr")) if folder.is_dir() else []


@pytest.mark.parametrize("values", [{"middle": 64 / 255, "right": 200 / 255}, {"left": 30 / 255}])
def test_keyframe_painted_with_other_values(shot: Shot, capsys, values: dict[str, float]) -> None:
    write(shot.keyframe(1004), painted(values))
    result = tcvom(capsys, *shot.run_args())
    found = str(round(next(iter(values.values())) * 255))
    expect(result, 2, "key.1004.png", "frame 1004", found, "0, 128 and 255", root=shot.root)
    assert not _alpha_files(shot)


def test_anti_aliased_keyframe_is_accepted(shot: Shot, capsys) -> None:
    import cv2

    key = painted({})
    soft = cv2.resize(cv2.resize(key, (WIDTH // 2, HEIGHT // 2), interpolation=cv2.INTER_AREA), (WIDTH, HEIGHT),
                      interpolation=cv2.INTER_LINEAR)  # edges two pixels wide, in between values
    assert ((soft > 0.05) & (soft < 0.45)).any()
    write(shot.keyframe(1001), soft)
    write(shot.keyframe(1004), soft)
    expect(tcvom(capsys, *shot.run_args()), 0, root=shot.root)


def test_blurred_keyframe_is_refused(shot: Shot, capsys) -> None:
    import cv2

    write(shot.keyframe(1001), cv2.GaussianBlur(painted({}), (0, 0), 6))
    expect(tcvom(capsys, *shot.run_args()), 2, "key.1001.png", "frame 1001", "anti-aliasing", root=shot.root)


def test_no_keyframe_has_foreground(shot: Shot, capsys) -> None:
    for frame in (1001, 1004):
        write(shot.keyframe(frame), painted({"right": 128 / 255}))
    result = tcvom(capsys, *shot.run_args())
    expect(result, 2, "key.1001.png", "frame 1001", "no keyframe trimap has foreground (255)", "would be 0",
           root=shot.root)
    assert not _alpha_files(shot)


def test_no_keyframe_has_background(shot: Shot, capsys) -> None:
    for frame in (1001, 1004):
        write(shot.keyframe(frame), painted({"left": 1.0}))
    result = tcvom(capsys, *shot.run_args())
    expect(result, 2, "frame 1001", "no keyframe trimap has background (0)", root=shot.root)


def test_all_unknown_keyframe_fails_before_any_work(shot: Shot, capsys) -> None:
    write(shot.keyframe(1004), np.full((HEIGHT, WIDTH), 128 / 255, np.float32))
    result = tcvom(capsys, *shot.run_args())
    expect(result, 2, "key.1004.png", "frame 1004", "all unknown", root=shot.root)
    assert not (shot.out / "trimaps").exists() or not list((shot.out / "trimaps").glob("trimap.*.png"))


def test_one_keyframe_without_foreground_is_a_warning(shot: Shot, capsys) -> None:
    write(shot.keyframe(1004), painted({"right": 0.0}))  # the object left the shot
    result = tcvom(capsys, *shot.run_args())
    expect(result, 0, "key.1004.png", "frame 1004", "no foreground", root=shot.root)


def test_keyframe_outside_the_shot(shot: Shot, capsys) -> None:
    result = tcvom(capsys, *shot.run_args("--keyframes", f"2000={shot.keyframe(1001)}"))
    expect(result, 2, "key.1001.png", "frame 2000", "outside the frame range 1001-1004", root=shot.root)
    gapped = tcvom(capsys, *shot.run_args("--keyframes", f"1001={shot.keyframe(1001)}",  # it said "1001-1004"
                                          f"1003={shot.keyframe(1004)}", "--shot-range", "1001-1002,1004"))
    expect(gapped, 2, "frame 1003", "outside the frame range 1001-1002,1004", root=shot.root)
    shorter = tcvom(capsys, *shot.run_args("--shot-range", "1002-1003"))  # every keyframe outside it is named
    expect(shorter, 2, "keyframes 1001,1004 lie outside the frame range 1002-1003", root=shot.root)


def test_keyframe_of_another_size(shot: Shot, capsys) -> None:
    write(shot.keyframe(1004), painted({}, width=WIDTH * 2, height=HEIGHT * 2))
    result = tcvom(capsys, *shot.run_args())
    expect(result, 2, "key.1004.png", "frame 1004", f"{WIDTH * 2}x{HEIGHT * 2}", "--resize-trimaps", root=shot.root)
    expect(tcvom(capsys, *shot.run_args("--resize-trimaps")), 0, root=shot.root)


def test_keyframe_of_another_shape_is_never_stretched(shot: Shot, capsys) -> None:
    """A keyframe turned on its side (a photo's orientation) was stretched onto the plate by
    --resize-trimaps, which the size error itself suggested."""
    write(shot.keyframe(1004), painted({}, width=HEIGHT, height=WIDTH))
    for extra in ((), ("--resize-trimaps",)):
        result = tcvom(capsys, *shot.run_args(*extra))
        expect(result, 2, "key.1004.png", "frame 1004", f"{HEIGHT}x{WIDTH}", "another shape", root=shot.root)
        assert "--resize-trimaps" not in result.err


def test_keyframe_file_missing(shot: Shot, capsys) -> None:
    result = tcvom(capsys, *shot.run_args("--keyframes", f"1001={shot.root / 'nope.png'}"))
    expect(result, 2, "nope.png", "frame 1001", "not found", root=shot.root)


def test_keyframe_given_twice(shot: Shot, capsys) -> None:
    result = tcvom(capsys, *shot.run_args("--keyframes", shot.keyframes, f"1001={shot.keyframe(1004)}"))
    expect(result, 2, "frame 1001", "two keyframe trimaps", root=shot.root)


def test_repeated_keyframes_flags_add_up(shot: Shot, capsys) -> None:
    """`--keyframes 1001=a.png --keyframes 1040=b.png` kept the last flag alone: the shot was
    propagated from one keyframe without a word. Repeated, they add up; a farm job, which
    reads one pattern, refuses a second."""
    import json

    first, last = shot.keyframe(1001), shot.keyframe(1004)
    result = tcvom(capsys, *shot.run_args("--keyframes", f"1001={first}", "--keyframes", f"1004={last}"))
    assert result.code == 0, result.err
    assert json.loads((shot.out / "review" / "review.json").read_text())["keyframes"] == [1001, 1004]
    result = tcvom(capsys, "farm", "plan", "--plate", shot.plate, "--keyframes", f"1001={first}", "--keyframes",
                   f"1004={last}")
    expect(result, 2, "--keyframes is given twice", "one sequence pattern", root=shot.root)


@pytest.mark.parametrize(("spec", "mention"), [("1001=", "not a frame=path pair"), ("abc=k.png", "not a frame number"),
                                               ("1001:k.png", "1001=key.1001.png")])  # a colon for the '=
def test_malformed_keyframe_pair(shot: Shot, capsys, spec: str, mention: str) -> None:
    expect(tcvom(capsys, *shot.run_args("--keyframes", spec)), 2, mention, root=shot.root)


def test_zero_byte_keyframe(shot: Shot, capsys) -> None:
    shot.keyframe(1004).write_bytes(b"")
    expect(tcvom(capsys, *shot.run_args()), 2, "key.1004.png", "frame 1004", root=shot.root)


def test_keyframe_channel_that_does_not_exist(shot: Shot, capsys) -> None:
    result = tcvom(capsys, *shot.run_args("--trimap-channel", "A"))
    expect(result, 2, "key.1001.png", "frame 1001", "no A channel", root=shot.root)


def test_keyframe_with_nan(shot: Shot, capsys) -> None:
    key = painted({})
    key[0, 0] = np.nan
    write(shot.folder / "keyframes" / "nan.1001.exr", key, "float")
    result = tcvom(capsys, *shot.run_args("--keyframes", f"1001={shot.folder / 'keyframes' / 'nan.1001.exr'}"))
    expect(result, 2, "nan.1001.exr", "NaN", root=shot.root)


def test_keyframe_pattern_matches_nothing(shot: Shot, capsys) -> None:
    result = tcvom(capsys, *shot.run_args("--keyframes", str(shot.folder / "keyframes" / "other.####.png")))
    expect(result, 2, "other.####.png", "no keyframe trimap frames match", root=shot.root)


def test_matte_trimap_missing_for_a_frame(shot: Shot, capsys) -> None:
    shot.trimap(1003).unlink()
    result = tcvom(capsys, *shot.matte_args())
    expect(result, 2, "trimap.1003.png", "frame 1003", root=shot.root)


def test_matte_trimap_missing_for_a_neighbour(shot: Shot, capsys) -> None:
    shot.trimap(1004).unlink()
    result = tcvom(capsys, *shot.matte_args("--frames", "1001-1003"))
    expect(result, 2, "frame 1004", "neighbour", "--shot-range", root=shot.root)


def test_matte_trimap_of_another_size(shot: Shot, capsys) -> None:
    write(shot.trimap(1002), painted({}, width=WIDTH + 1))
    result = tcvom(capsys, *shot.matte_args())
    expect(result, 2, "trimap.1002.png", "frame 1002", f"{WIDTH + 1}x{HEIGHT}", root=shot.root)


def test_matte_corrupt_trimap(shot: Shot, capsys) -> None:
    shot.trimap(1002).write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    result = tcvom(capsys, *shot.matte_args())
    expect(result, 2, "trimap.1002.png", "frame 1002", root=shot.root)


def test_trimap_tcvom_made_then_repainted_in_place_is_checked(shot: Shot, capsys) -> None:
    """A trimap tcvom wrote and the artist repainted in place with other values (64 / 200)
    was matted as it was, without a word (exit 0, no solid core); the same file elsewhere is
    refused. An all-unknown repaint gave an error naming no file or frame."""
    import cv2

    made = shot.root / "made"
    result = tcvom(capsys, "trimaps", "--plate", shot.plate, "--keyframes", shot.keyframes, "--out", str(made),
                   "--method", "classical", "--progress", "none")
    assert result.code == 0, result.err
    pattern = str(made / "trimap.####.png")
    assert tcvom(capsys, "matte", "--plate", shot.plate, "--trimaps", pattern, "--out", str(shot.root / "ok"),
                 "--method", "classical", "--progress", "none").code == 0  # as made: not checked, fine
    path = made / "trimap.1003.png"
    tri = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    repainted = tri.copy()
    repainted[tri == 128], repainted[tri == 255] = 64, 200
    cv2.imwrite(str(path), repainted)
    result = tcvom(capsys, "matte", "--plate", shot.plate, "--trimaps", pattern, "--out", str(shot.out),
                   "--method", "classical", "--progress", "none")
    expect(result, 2, "trimap.1003.png", "frame 1003", "values other than 0, 128 and 255", root=shot.root)
    cv2.imwrite(str(path), np.full_like(tri, 128))
    result = tcvom(capsys, "matte", "--plate", shot.plate, "--trimaps", pattern, "--out", str(shot.out),
                   "--method", "classical", "--progress", "none")
    expect(result, 2, "trimap.1003.png", "frame 1003", "unknown everywhere", root=shot.root)


def test_trimap_channel_is_chosen_by_name(shot: Shot, capsys) -> None:
    """--trimap-channel A took the 4th channel by position: a lone A channel, or R,G,B,A,Z
    with the trimap in A, were refused as having no A. Without the flag such a key read as
    all background with a warning that did not say where the trimap was."""
    from tcvom.io import write_image

    key = painted({})
    zeros = np.zeros_like(key)

    def keys(name: str, pixels: np.ndarray, channels: tuple[str, ...]) -> list[str]:
        written = [write_image(shot.folder / "keyframes" / f"{name}.{frame}.exr", pixels, pixel_type="half",
                               channels=channels) for frame in (1001, 1004)]
        return ["--keyframes", *(f"{frame}={path}" for frame, path in zip((1001, 1004), written, strict=True))]

    lone = keys("lone", key[:, :, None], ("A",))
    nuke = keys("nuke", np.dstack([zeros, zeros, zeros, key, zeros + 5]), ("R", "G", "B", "A", "Z"))
    for given in (lone, nuke):
        result = tcvom(capsys, *shot.run_args(*given, "--trimap-channel", "A", "--overwrite"))
        assert result.code == 0, result.err
    result = tcvom(capsys, *shot.run_args(*lone, "--trimap-channel", "R", "--overwrite"))
    expect(result, 2, "lone.1001.exr", "no R channel", "its channels: A", root=shot.root)
    result = tcvom(capsys, *shot.run_args(*nuke, "--overwrite"))  # RGB all 0: no foreground in any key
    # Nuke QA: the shot's "no keyframe has foreground" came first, and a host (which shows the
    # error, not the warnings) heard nothing of the A channel: the keyframe itself is refused
    expect(result, 2, "nuke.1001.exr", "frame 1001", "the keyframe trimap's colour is all black and its A channel "
           "holds a trimap", "pass --trimap-channel A", root=shot.root)
    white = keys("white", np.dstack([zeros + 1, zeros + 1, zeros + 1, key]), ("R", "G", "B", "A"))
    result = tcvom(capsys, *shot.run_args(*white, "--overwrite"))  # painted in alpha over white: no background
    assert result.code == 2 and "no background" in result.err
    assert "white.1001.exr: frame 1001: the keyframe trimap's colour holds no background (0)" in result.err
    assert "--trimap-channel A" in result.err


def test_a_trimap_painted_as_opacity_is_not_read_from_its_colour(shot: Shot, capsys) -> None:
    """Keyframe QA: a white brush on a transparent layer (Krita, Photoshop, GIMP), unknown at
    50 % opacity, has colour 255 wherever painted and the trimap in A: its colour read as a
    trimap made the whole unknown band foreground, exit 0 and no word. A Nuke write of the
    plate's RGB with the roto trimap in A was refused with advice naming R, G and B only."""
    from tcvom.io import write_image

    key = painted({})
    brush = (key > 0).astype(np.float32)

    def keys(name: str, pixels: np.ndarray, suffix: str = "png") -> list[str]:
        written = [write_image(shot.folder / "keyframes" / f"{name}.{frame}.{suffix}", pixels,
                               pixel_type="uint8" if suffix == "png" else "half", channels=("R", "G", "B", "A"))
                   for frame in (1001, 1004)]
        return ["--keyframes", *(f"{frame}={path}" for frame, path in zip((1001, 1004), written, strict=True))]

    opacity = keys("opacity", np.dstack([brush, brush, brush, key]))
    result = tcvom(capsys, *shot.run_args(*opacity, "--overwrite"))
    expect(result, 2, "opacity.1001.png", "frame 1001", "colour holds no unknown (128) and its A channel holds a "
           "trimap", "--trimap-channel A", root=shot.root)
    assert tcvom(capsys, *shot.run_args(*opacity, "--trimap-channel", "A", "--overwrite")).code == 0
    plate = np.random.default_rng(3).random((*key.shape, 3), dtype=np.float32)
    nuke = keys("plate_a", np.dstack([plate, key]), "exr")
    result = tcvom(capsys, *shot.run_args(*nuke, "--overwrite"))
    expect(result, 2, "plate_a.1001.exr", "frame 1001", "its A channel holds a trimap", "pass --trimap-channel A",
           root=shot.root)
    assert tcvom(capsys, *shot.run_args(*nuke, "--trimap-channel", "A", "--overwrite")).code == 0
    # a grey trimap whose alpha cuts out what was painted reads its grey, as before
    grey = keys("grey_cut", np.dstack([key, key, key, brush]))
    assert tcvom(capsys, *shot.run_args(*grey, "--overwrite")).code == 0


def test_float_and_coloured_trimaps_say_what_was_read(shot: Shot, capsys) -> None:
    """A float EXR holding 0/128/255 was reported as holding 32640 and 65025; a coloured
    trimap's luma values were reported with no word that the file is coloured."""
    key = painted({}) * 255
    path = write(shot.folder / "keyframes" / "float.1001.exr", key, "float")
    result = tcvom(capsys, *shot.run_args("--keyframes", f"1001={path}", f"1004={shot.keyframe(1004)}"))
    expect(result, 2, "float.1001.exr", "values up to 255", "divide it by 255", root=shot.root)
    import cv2

    blurred = cv2.GaussianBlur(painted({}), (0, 0), 3)  # Nuke QA: a float file's values said in 8-bit terms
    path = write(shot.folder / "keyframes" / "blurred.1001.exr", blurred, "half")
    result = tcvom(capsys, *shot.run_args("--keyframes", f"1001={path}", f"1004={shot.keyframe(1004)}"))
    expect(result, 2, "blurred.1001.exr", "values other than 0, 0.5 and 1", "unknown 0.5 and foreground 1",
           root=shot.root)
    grey = painted({})
    coloured = np.dstack([grey >= 1.0, (grey > 0) & (grey < 1), np.zeros_like(grey)]).astype(np.float32)
    path = write(shot.folder / "keyframes" / "colour.1001.png", coloured)
    result = tcvom(capsys, *shot.run_args("--keyframes", f"1001={path}", f"1004={shot.keyframe(1004)}"))
    expect(result, 2, "colour.1001.png", "the file is coloured", "--trimap-channel", root=shot.root)


def test_a_propagated_trimap_left_all_unknown_is_said_as_propagated(tmp_path, capsys) -> None:
    """QA: a keyframe of one background and one foreground pixel on a 40x1 plate: the
    propagated trimap of the next frame is unknown everywhere, and the error told the artist
    to paint into that file, one tcvom wrote itself."""
    rng = np.random.default_rng(0)
    for frame in (1001, 1002, 1003):
        write(tmp_path / "plate" / f"p.{frame}.exr", rng.random((1, 40, 3)).astype(np.float32), "half")
    key = np.full((1, 40), 128 / 255, np.float32)
    key[0, 0], key[0, 39] = 0.0, 1.0
    write(tmp_path / "key.1001.png", key)
    result = tcvom(capsys, "run", "--plate", str(tmp_path / "plate" / "p.####.exr"), "--keyframes",
                   str(tmp_path / "key.1001.png"), "--out", str(tmp_path / "out"), "--method", "classical",
                   "--progress", "none")
    expect(result, 2, "trimap.1002.png", "frame 1002", "propagated to this frame is unknown everywhere",
           "add a keyframe at or near this frame", root=tmp_path)


def test_a_keyframe_numbered_like_a_sequence_on_a_movie_plate_says_how_movies_count(shot: Shot, capsys) -> None:
    """I/O QA: key.1001.png on a movie plate said to widen --shot-range, which cannot reach
    1001 (a movie's frames are numbered from 1)."""
    import av

    movie = shot.root / "plate.mp4"
    with av.open(str(movie), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for i in range(4):
            picture = av.VideoFrame.from_ndarray(np.full((HEIGHT, WIDTH, 3), 40 * i, np.uint8), format="rgb24")
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    result = tcvom(capsys, "run", "--plate", str(movie), "--keyframes", str(shot.keyframe(1001)), "--out",
                   str(shot.out), "--method", "classical", "--progress", "none")
    expect(result, 2, "key.1001.png", "outside the frame range 1-4", "numbered from its first picture, 1",
           "--keyframes 1=key.png", root=shot.root)
    assert "--shot-range" not in result.err


def test_a_mask_given_as_a_keyframe_is_said(shot: Shot, capsys) -> None:
    """Odd-inputs QA: a roto mask (0 and 255 only, no unknown band) handed in as a keyframe
    made hard-edged mattes for the whole shot, exit 0 without a word."""
    key = painted({})
    write(shot.keyframe(1004), np.where(key > 0.75, 1.0, 0.0).astype(np.float32))
    result = tcvom(capsys, *shot.run_args())
    expect(result, 0, "key.1004.png", "frame 1004", "no unknown (128) region", "a mask, not a trimap", root=shot.root)
    assert "key.1001.png: frame 1001: the keyframe trimap has no unknown" not in result.err
