"""The VideoMatting108 loader (tcvom.data.vm108) on a tiny fake tree and on synthetic output."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from tcvom.data.synthetic import ShotConfig, write_benchmark
from tcvom.data.vm108 import TRIMAP_KERNELS, VideoMatting108
from tcvom.errors import FrameSizeError, InputError, ReadError


def _fake_tree(root: Path) -> dict[str, np.ndarray]:
    """Two clips in two categories; BG as .jpg for one clip and .png (fallback) for the other."""
    rng = np.random.default_rng(0)
    truth: dict[str, np.ndarray] = {}
    corr = {}
    for clip, ext in (("animal/cat", ".jpg"), ("people/walk", ".png")):
        for i in range(3):
            alpha = np.zeros((40, 50), np.uint8)
            alpha[10:30, 10 + i : 30 + i] = 255
            alpha[9, 10:30] = 100  # a soft row
            fg = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
            bg = np.full((40, 50, 3), (10 * i, 100, 200), np.uint8)
            (root / "FG_done" / clip).mkdir(parents=True, exist_ok=True)
            (root / "BG_done" / "bgs" / clip).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / "FG_done" / clip / f"{i:05d}.png"), np.dstack([fg, alpha]))
            # frame_corr names .jpg; the walk clip only has the .png on disk.
            cv2.imwrite(str(root / "BG_done" / "bgs" / clip / f"{i:05d}{ext}"), bg)
            corr[f"{clip}/{i:05d}.png"] = f"bgs/{clip}/{i:05d}.jpg"
            truth[f"{clip}/{i}"] = alpha
    (root / "frame_corr.json").write_text(json.dumps(corr))
    (root / "val_videos.txt").write_text("animal/cat\npeople/walk\n")
    (root / "train_videos.txt").write_text("people/walk\n")
    return truth


def test_reads_and_composites(tmp_path: Path) -> None:
    truth = _fake_tree(tmp_path)
    data = VideoMatting108(tmp_path)
    assert data.clip_names == ["animal/cat", "people/walk"]
    walk = data.clip("people/walk")
    assert len(walk) == 3 and walk.stems == ["00000", "00001", "00002"]
    fr = walk.read(1)
    assert fr.image.dtype == np.float32 and fr.image.shape == (40, 50, 3)
    np.testing.assert_array_equal(fr.alpha_raw, truth["people/walk/1"])
    a = fr.alpha[:, :, None]
    np.testing.assert_allclose(fr.image, fr.foreground * a + fr.background * (1 - a), atol=1e-6)
    # Background is RGB (file is BGR): (10, 100, 200) BGR -> R = 200.
    assert fr.background[0, 0, 0] == pytest.approx(200 / 255)
    assert fr.background[0, 0, 2] == pytest.approx(10 / 255)
    # The .jpg clip decodes too (lossy, so only roughly).
    assert abs(float(data.clip("animal/cat").read(0).background[5, 5, 0]) - 200 / 255) < 0.05
    assert [f.index for f in walk.frames()] == [0, 1, 2]


def test_trimap_widths(tmp_path: Path) -> None:
    _fake_tree(tmp_path)
    clip = VideoMatting108(tmp_path).clip("animal/cat")
    unknown = {w: int((clip.trimap(0, w) == 128).sum()) for w in TRIMAP_KERNELS}
    assert 0 < unknown["narrow"] < unknown["medium"] < unknown["wide"]
    tri = clip.trimap(0, "narrow")
    # The soft row (row 9, columns 10..29) dilated by 11x11: rows 4..14, columns 5..34.
    assert (tri[4:15, 5:35] == 128).all() and tri[3, 20] == 0 and tri[15, 20] == 255
    with pytest.raises(InputError):
        clip.trimap(0, "huge")


def test_clip_filter_and_split(tmp_path: Path) -> None:
    _fake_tree(tmp_path)
    assert VideoMatting108(tmp_path, clips=["cat"]).clip_names == ["animal/cat"]
    assert VideoMatting108(tmp_path, clips=["people/*"]).clip_names == ["people/walk"]
    assert VideoMatting108(tmp_path, split="train").clip_names == ["people/walk"]
    with pytest.raises(InputError, match="dog"):
        VideoMatting108(tmp_path, clips=["dog"])
    with pytest.raises(InputError):
        VideoMatting108(tmp_path, split="test")
    with pytest.raises(InputError):
        VideoMatting108(tmp_path / "nowhere")


def test_broken_files_name_the_file(tmp_path: Path) -> None:
    _fake_tree(tmp_path)
    clip = VideoMatting108(tmp_path).clip("animal/cat")
    clip.fg_path(2).write_bytes(b"not a png")
    with pytest.raises(ReadError, match=r"00002\.png"):
        clip.read(2)
    cv2.imwrite(str(clip.bg_path(1)), np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(FrameSizeError):
        clip.read(1)
    cv2.imwrite(str(clip.fg_path(0)), np.zeros((40, 50, 3), np.uint8))
    with pytest.raises(ReadError, match="RGBA"):
        clip.read(0)
    with pytest.raises(IndexError):
        clip.read(3)


def test_reads_synthetic_benchmark(tmp_path: Path) -> None:
    cfg = ShotConfig(width=64, height=48, frames=3, seed=0)
    names = write_benchmark(tmp_path, clips=2, config=cfg)
    data = VideoMatting108(tmp_path)
    assert data.clip_names == names
    clip = data.clip(names[1])
    assert clip.has_flow()
    fr = clip.read(2)
    comp = cv2.imread(str(tmp_path / "comp" / names[1] / "clip_001.00002.png"))[:, :, ::-1]
    # The written plate is the 8-bit rounding of the loader's float composite.
    assert np.abs(comp / 255.0 - fr.image).max() <= 0.5 / 255 + 1e-6
    flow, valid = clip.flow(0)
    assert flow.shape == (48, 64, 2) and valid.any()
    key = cv2.imread(str(tmp_path / "trimaps/wide" / names[1] / "clip_001.00000.png"), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(key, clip.trimap(0, "wide"))


def test_a_clip_numbered_with_a_gap_is_refused(tmp_path: Path) -> None:
    """Training QA: a frame left out of frame_corr.json (its FG_done file there) made the clip
    two frames shorter in the middle: every later prediction was scored against the next
    frame's truth (metrics 3x off, exit 0), and training took 00001 and 00003 for neighbours."""
    _fake_tree(tmp_path)
    corr_path = tmp_path / "frame_corr.json"
    corr = json.loads(corr_path.read_text())
    left_out = {k: v for k, v in corr.items() if k != "people/walk/00001.png"}
    corr_path.write_text(json.dumps(left_out))
    with pytest.raises(InputError, match=r"clip 'people/walk': frame_corr.json lists its frames without 00001 "
                       r"\(from 00000 to 00002\)") as caught:
        VideoMatting108(tmp_path)
    assert caught.value.path == str(corr_path) and "FG_done/people/walk" in caught.value.hint
    assert VideoMatting108(tmp_path, clips=["cat"]).clip_names == ["animal/cat"]  # the other clip is fine
    corr_path.write_text(json.dumps({**corr, "people/walk/extra.png": "bgs/people/walk/00000.jpg"}))
    with pytest.raises(InputError, match="names its frame 'extra', which is no frame number"):
        VideoMatting108(tmp_path, split="train")
