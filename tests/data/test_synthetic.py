"""The synthetic shot generator and the benchmark writer (tcvom.data.synthetic)."""

from __future__ import annotations

import json
from dataclasses import replace

import cv2
import numpy as np
import pytest

from tcvom.data.synthetic import ShotConfig, SyntheticShot, encode_flow_png, write_benchmark
from tcvom.errors import InputError

SMALL = ShotConfig(width=96, height=64, frames=6, seed=3, occluder=True)


def test_same_seed_gives_identical_frames() -> None:
    a, b = SyntheticShot(SMALL).render(2), SyntheticShot(SMALL).render(2)
    for name in ("image", "foreground", "background", "alpha"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def test_different_seed_gives_different_frames() -> None:
    a = SyntheticShot(SMALL).render(2)
    b = SyntheticShot(replace(SMALL, seed=4)).render(2)
    assert np.abs(a.alpha - b.alpha).max() > 0.5
    assert np.abs(a.background - b.background).mean() > 0.02


def test_random_access_equals_sequential() -> None:
    seq = SyntheticShot(SMALL)
    frames = [seq.render(i) for i in range(len(seq))]
    for i in (5, 0, 3):
        f = SyntheticShot(SMALL).render(i)
        assert np.array_equal(f.image, frames[i].image)
        assert np.array_equal(f.alpha, frames[i].alpha)


def test_composite_identity_and_ranges() -> None:
    shot = SyntheticShot(SMALL)
    for i in range(len(shot)):
        f = shot.render(i)
        assert f.image.dtype == np.float32 and f.image.shape == (64, 96, 3)
        assert f.alpha.shape == (64, 96) and f.alpha.dtype == np.float32
        a = f.alpha[:, :, None]
        np.testing.assert_allclose(f.image, a * f.foreground + (1 - a) * f.background, atol=1e-6)
        for arr in (f.image, f.foreground, f.background, f.alpha):
            assert arr.min() >= 0.0 and arr.max() <= 1.0
        assert (f.alpha == 0).any() and (f.alpha == 1).any()
        soft = (f.alpha > 0) & (f.alpha < 1)
        assert soft.sum() > 50
        # The background is textured, not flat.
        assert f.background.std(axis=(0, 1)).min() > 0.03


def test_strands_are_thin_soft_structures() -> None:
    cfg = ShotConfig(width=240, height=160, frames=2, seed=1, strands=14, translucent=False, motion_blur=False)
    with_strands = SyntheticShot(cfg).render(0).alpha
    without = SyntheticShot(replace(cfg, strands=0)).render(0).alpha
    added = (with_strands - without) > 0.02
    assert added.sum() > 100
    # Thin: hardly any strand pixel is opaque, and a 3x3 erosion removes nearly all of them.
    assert (with_strands[added] < 0.9).mean() > 0.9
    eroded = cv2.erode(added.astype(np.uint8), np.ones((3, 3), np.uint8))
    assert eroded.sum() < 0.2 * added.sum()


def test_translucent_region_is_partial() -> None:
    cfg = ShotConfig(width=240, height=160, frames=1, seed=2, strands=0, motion_blur=False)
    with_veil = SyntheticShot(cfg).render(0).alpha
    without = SyntheticShot(replace(cfg, translucent=False)).render(0).alpha
    veil = (with_veil - without) > 0.01
    assert veil.sum() > 200
    assert 0.15 < np.median(with_veil[veil & (without == 0)]) < 0.75


def test_motion_is_smooth() -> None:
    shot = SyntheticShot(ShotConfig(frames=40))
    steps = [np.hypot(*(shot.centre(t + 1) - shot.centre(t))) for t in range(39)]
    assert 0.1 < max(steps) < 6.0


def test_index_out_of_range() -> None:
    shot = SyntheticShot(SMALL)
    with pytest.raises(IndexError):
        shot.render(6)
    with pytest.raises(IndexError):
        shot.render(-1)
    with pytest.raises(InputError):
        SyntheticShot(replace(SMALL, frames=0))


def test_flow_follows_the_subject() -> None:
    cfg = replace(SMALL, motion_blur=False, occluder=False)
    shot = SyntheticShot(cfg)
    flow, valid = shot.flow(1)
    assert flow.shape == (64, 96, 2) and valid.all()
    a1, a2 = shot.render(1).alpha, shot.render(2).alpha
    # Backward-warp alpha of frame 2 with the flow 1->2: it lands on frame 1's alpha.
    ys, xs = np.mgrid[0:64, 0:96].astype(np.float32)
    warped = cv2.remap(a2, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR)
    body = (a1 == 1) & (cv2.erode((a1 == 1).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0)
    assert np.abs(warped - a1)[body].mean() < 0.02
    with pytest.raises(IndexError):
        shot.flow(5)


def test_flow_png_encoding_round_trip(tmp_path) -> None:
    flow = np.array([[[1.234, -0.5], [-300.0, 2.0]]], np.float32)
    valid = np.array([[True, False]])
    cv2.imwrite(str(tmp_path / "f.png"), encode_flow_png(flow, valid))
    raw = cv2.imread(str(tmp_path / "f.png"), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and raw.shape == (1, 2, 3)
    decoded = raw[..., :2].view(np.int16).astype(np.float32) / 100
    np.testing.assert_allclose(decoded, np.round(flow * 100) / 100, atol=1e-6)
    assert raw[0, 0, 2] == 1 and raw[0, 1, 2] == 0


def test_write_benchmark_layout(tmp_path) -> None:
    cfg = ShotConfig(width=64, height=48, frames=3, seed=0)
    names = write_benchmark(tmp_path, clips=2, config=cfg, seed=5)
    assert names == ["synthetic/clip_000", "synthetic/clip_001"]
    corr = json.loads((tmp_path / "frame_corr.json").read_text())
    assert len(corr) == 6 and corr["synthetic/clip_001/00002.png"] == "synthetic/clip_001/00002.png"
    assert (tmp_path / "val_videos.txt").read_text().split() == names
    fg = cv2.imread(str(tmp_path / "FG_done/synthetic/clip_000/00001.png"), cv2.IMREAD_UNCHANGED)
    assert fg.shape == (48, 64, 4)
    shot = SyntheticShot(replace(cfg, seed=5000))
    np.testing.assert_array_equal(fg[..., 3], np.round(shot.render(1).alpha * 255).astype(np.uint8))
    assert (tmp_path / "flow_png/synthetic/clip_000/flow_00001_00002.png").is_file()
    assert not (tmp_path / "flow_png/synthetic/clip_000/flow_00002_00003.png").exists()
    assert (tmp_path / "comp/synthetic/clip_001/clip_001.00000.png").is_file()
    tri = cv2.imread(str(tmp_path / "trimaps/medium/synthetic/clip_000/clip_000.00000.png"), cv2.IMREAD_UNCHANGED)
    assert set(np.unique(tri)) <= {0, 128, 255} and (tri == 128).any()
