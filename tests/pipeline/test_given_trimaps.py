"""Trimaps given for every frame (`--trimaps`) are checked as keyframes are: a trimap that
would be classified into a matte of 0 everywhere, or that was painted with other values,
stops with exit 2 naming the file and frame before any frame is written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tcvom.cli import main
from tcvom.io import read_image
from tcvom.io.images import write_image


def _trimaps(example, folder: Path, change=None) -> str:
    """The example's true trimaps (0 / 128 / 255) copied to ``folder``, each passed
    through ``change(frame, trimap)`` (uint8)."""
    folder.mkdir(parents=True, exist_ok=True)
    for frame in range(example.first, example.last + 1):
        pixels, _ = read_image(example.trimaps.replace("####", str(frame)))
        tri = np.round(pixels[..., 0] * 255).astype(np.uint8)
        tri = change(frame, tri) if change else tri
        write_image(folder / f"t.{frame}.png", tri.astype(np.float32) / 255.0, pixel_type="uint8")
    return str(folder / "t.####.png")


def _matte(example, trimaps: str, out: Path, *extra: str) -> int:
    return main(["matte", "--plate", example.plate, "--trimaps", trimaps, "--out", str(out), "--method", "classical",
                 "--progress", "none", *extra])


def test_good_trimaps_pass(small_example, tmp_path: Path) -> None:
    assert _matte(small_example, _trimaps(small_example, tmp_path / "t"), tmp_path / "out") == 0
    alpha, _ = read_image(tmp_path / "out" / "alpha.1004.exr")
    assert alpha.max() == 1.0 and alpha.min() == 0.0


@pytest.mark.parametrize(("name", "change", "message", "frame"), [
    ("label map", lambda f, t: (t // 127).astype(np.uint8), "label map", 1001),  # 0 / 1 / 2
    ("background everywhere", lambda f, t: np.zeros_like(t), "no trimap has foreground", 1001),
    ("painted 0/64/200", lambda f, t: np.where(t == 128, 64, np.where(t == 255, 200, 0)).astype(np.uint8)
     if f == 1005 else t, "values other than 0, 128 and 255", 1005),
    ("all unknown", lambda f, t: np.full_like(t, 128) if f == 1003 else t, "all unknown", 1003),
])
def test_bad_trimaps_are_refused_before_any_frame(small_example, tmp_path: Path, capsys, name, change, message,
                                                  frame) -> None:
    trimaps = _trimaps(small_example, tmp_path / "t", change)
    assert _matte(small_example, trimaps, tmp_path / "out") == 2, name
    err = capsys.readouterr().err
    assert message in err and f"t.{frame}.png" in err and f"frame {frame}" in err, err
    assert "keyframe" not in err, err  # --trimaps are trimaps of every frame, not keyframes
    assert not list((tmp_path / "out").glob("alpha.*.exr"))


def test_part_of_a_shot_may_be_all_background(small_example, tmp_path: Path) -> None:
    """The object may be out of frame for a chunk: only the whole shot must hold some foreground."""
    trimaps = _trimaps(small_example, tmp_path / "t", lambda f, t: np.zeros_like(t) if f in (1003, 1004) else t)
    assert _matte(small_example, trimaps, tmp_path / "out", "--frames", "1003-1004") == 0
    alpha, _ = read_image(tmp_path / "out" / "alpha.1003.exr")
    assert alpha.max() == 0.0


def test_layers_are_refused_before_the_trimap_stage(small_example, tmp_path: Path, capsys) -> None:
    for extra in (["--alpha-format", "png16"], ["--method", "classical"]):
        code = main(["run", "--plate", small_example.plate, "--keyframes", small_example.keyframes, "--out",
                     str(tmp_path), "--output", "layers", "--method", "classical", "--progress", "none", *extra])
        assert code == 2 and "--output layers" in capsys.readouterr().err
        assert not (tmp_path / "trimaps").exists()


def test_masks_given_as_trimaps_are_said_once(small_example, tmp_path: Path, capsys) -> None:
    """Odd-inputs QA: per-frame masks (0 and 255, no unknown) made hard mattes without a word."""
    trimaps = _trimaps(small_example, tmp_path / "t",
                       lambda f, t: np.where(t >= 128, 255, 0).astype(np.uint8) if f in (1002, 1003) else t)
    assert _matte(small_example, trimaps, tmp_path / "out") == 0
    err = capsys.readouterr().err
    assert err.count("no unknown (128) region") == 1 and "t.1002.png: frames 1002-1003: the trimaps have no unknown (128) region" in err, err
    assert _matte(small_example, _trimaps(small_example, tmp_path / "good"), tmp_path / "out2") == 0
    assert "no unknown" not in capsys.readouterr().err


def test_inverted_trimaps_are_said_once(small_example, tmp_path: Path, capsys) -> None:
    """Odd-inputs QA: a trimap painted white for background (as an alpha is) gave an inverted
    matte on every frame, exit 0, unsaid; given trimaps and keyframes alike are said once."""
    trimaps = _trimaps(small_example, tmp_path / "t", lambda f, t: (255 - t).astype(np.uint8) if f == 1002 else t)
    assert _matte(small_example, trimaps, tmp_path / "out") == 0
    err = capsys.readouterr().err
    assert err.count("runs round the frame's border") == 1, err
    assert "t.1002.png: frame 1002: the trimap's foreground (255) runs round the frame's border" in err, err
    keys = tmp_path / "keys"
    keys.mkdir()
    for frame in (1001, 1008):
        pixels, _ = read_image(small_example.keyframes.replace("####", str(frame)))
        write_image(keys / f"key.{frame}.png", 1.0 - pixels[:, :, :1], pixel_type="uint8", channels=("Y",))
    assert main(["run", "--plate", small_example.plate, "--keyframes", str(keys / "key.####.png"), "--out",
                 str(tmp_path / "run"), "--method", "classical", "--progress", "none"]) == 0
    err = capsys.readouterr().err
    assert err.count("runs round the frame's border") == 1 and "frames 1001,1008: the keyframe trimaps'" in err, err
    assert _matte(small_example, _trimaps(small_example, tmp_path / "good"), tmp_path / "out2") == 0
    assert "border" not in capsys.readouterr().err
