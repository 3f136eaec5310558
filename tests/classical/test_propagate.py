"""The flow propagator: keyframe trimaps carried through a shot with known motion."""

from __future__ import annotations

import numpy as np
import pytest
from classical_shots import DiscShot

from tcvom.classical.propagate import BandWidth, FlowPropagator, boundary_distance
from tcvom.errors import FrameSizeError, InputError
from tcvom.io.trimap import from_alpha
from tcvom.propagation.scheduler import KeyframeSchedule


def _run(shot: DiscShot, kernel: int, keys: list[int]) -> dict[int, list[np.ndarray]]:
    keyframes = {k: from_alpha(shot.alpha(k), kernel) for k in keys}
    schedule = KeyframeSchedule(shot.frame_numbers, keys)
    out: dict[int, list[np.ndarray]] = {}
    for pass_ in schedule.passes:
        for frame, probs in FlowPropagator().run_pass(shot, keyframes, pass_):
            assert probs.dtype == np.uint8 and probs.shape == (3, shot.height, shot.width)
            out.setdefault(frame, []).append(probs)
    return out


@pytest.mark.parametrize("dx, dy, pan", [(4.0, 0.0, 0.0), (-3.0, 2.0, 1.5)])
def test_propagated_trimap_follows_the_motion(dx: float, dy: float, pan: float) -> None:
    shot = DiscShot(height=96, width=128, frames=8, start=(60.0, 44.0), dx=dx, dy=dy, pan=pan)
    results = _run(shot, 7, [0])
    key_count = int((from_alpha(shot.alpha(0), 7) == 128).sum())
    for frame in range(1, shot.frames):
        labels = results[frame][0].argmax(axis=0)
        alpha = shot.alpha(frame)
        side, _ = boundary_distance(labels)
        # Mean boundary displacement: area between the estimated and true edges / perimeter.
        error = (side ^ (alpha >= 0.5)).sum() / (2 * np.pi * shot.radius)
        assert error < 1.5, f"frame {frame}: boundary off by {error:.2f} px"
        # Every soft pixel lies in the unknown band; no confident label is wrong.
        soft = (alpha > 0) & (alpha < 1)
        assert (labels[soft] == 1).all()
        assert not ((labels == 2) & (alpha == 0)).any()
        assert not ((labels == 0) & (alpha == 1)).any()
        # The band neither collapses nor grows without bound.
        count = int((labels == 1).sum())
        assert 0.8 * key_count <= count <= 2.0 * key_count, (frame, count, key_count)


def test_disoccluded_pixels_become_unknown() -> None:
    # Motion (8 px/frame) larger than the band's half-width (3 px): the strip the disc
    # uncovers lies outside any re-derived band and must come out unknown, not foreground.
    shot = DiscShot(height=96, width=128, frames=5, start=(40.0, 48.0), dx=8.0, edge=1.0)
    results = _run(shot, 5, [0])
    for frame in range(1, shot.frames):
        labels = results[frame][0].argmax(axis=0)
        uncovered = (shot.alpha(frame) == 0) & (shot.alpha(frame - 1) == 1)
        assert uncovered.sum() > 50
        assert (labels[uncovered] == 1).mean() > 0.9
        assert not (labels[uncovered] == 2).any()


def test_keyframe_is_returned_exactly_and_passes_meet() -> None:
    shot = DiscShot(height=64, width=96, frames=6, radius=16, start=(30.0, 32.0), dx=3.0)
    results = _run(shot, 7, [0, 5])
    key = from_alpha(shot.alpha(0), 7)
    first = results[0][0]
    assert ((first.argmax(axis=0) == 1) == (key == 128)).all()
    assert set(np.unique(first)) <= {0, 255}
    # Frames between keyframes are reached by the forward and the backward pass.
    assert all(len(results[f]) == 2 for f in range(1, 5))


def test_band_width_is_measured_from_the_keyframe() -> None:
    shot = DiscShot(height=96, width=128, radius=30, start=(64.0, 48.0))
    narrow = BandWidth.of_trimap(from_alpha(shot.alpha(0), 5))
    wide = BandWidth.of_trimap(from_alpha(shot.alpha(0), 21))
    assert narrow.keep < wide.keep and narrow.ensure < wide.ensure
    assert 10.0 <= wide.keep <= 18.0  # about half the band (21 + the soft edge) + slack
    # Wide lobes (painted strand regions) widen how far the band may reach, not the band
    # that is always kept around the whole boundary.
    lobed = from_alpha(shot.alpha(0), 7)
    for y in range(8, 90, 12):
        lobed[y : y + 5, 96:128] = 128
    assert BandWidth.of_trimap(lobed).keep > 25.0
    assert BandWidth.of_trimap(lobed).ensure <= BandWidth.of_trimap(from_alpha(shot.alpha(0), 7)).ensure + 0.5
    everything = BandWidth.of_trimap(np.full((8, 8), 128, np.uint8))
    assert everything.keep == np.inf


def test_bad_keyframes_are_refused() -> None:
    shot = DiscShot(height=32, width=48, frames=3, radius=8, start=(20.0, 16.0))
    pass_ = KeyframeSchedule(range(0, 3), [0]).passes[0]
    with pytest.raises(FrameSizeError, match="frame 0"):
        list(FlowPropagator().run_pass(shot, {0: np.zeros((10, 10), np.uint8)}, pass_))
    with pytest.raises(InputError, match="0, 128 and 255"):
        list(FlowPropagator().run_pass(shot, {0: np.full((32, 48), 7, np.uint8)}, pass_))
    with pytest.raises(InputError, match="no trimap"):
        list(FlowPropagator().run_pass(shot, {}, pass_))


def test_a_local_wide_band_stays_local() -> None:
    # A keyframe whose band is narrow (kernel 7) except for one lobe reaching 26 px out
    # (a painted strand region): the lobe travels with the disc, the band elsewhere stays
    # narrow, and the disc's opaque core stays foreground.
    shot = DiscShot(height=96, width=160, frames=10, radius=22, start=(50.0, 48.0), dx=3.0)
    keyframe = from_alpha(shot.alpha(0), 7)
    cx, cy = shot.centre(0)
    keyframe[int(cy) - 3 : int(cy) + 3, int(cx + shot.radius) : int(cx + shot.radius) + 26] = 128
    schedule = KeyframeSchedule(shot.frame_numbers, [0])
    results = list(FlowPropagator().run_pass(shot, {0: keyframe}, schedule.passes[0]))
    ys, xs = np.mgrid[0 : shot.height, 0 : shot.width]

    def runs(labels: np.ndarray, frame: int) -> tuple[int, int]:
        # Unknown pixels on a row 8 px below the centre, behind and ahead of the disc.
        fx, fy = shot.centre(frame)
        row = labels[int(fy) + 8]
        return int((row[: int(fx)] == 1).sum()), int((row[int(fx) :] == 1).sum())

    key_behind, key_ahead = runs(results[0][1].argmax(axis=0), 0)
    for frame, probs in results[1:]:
        labels = probs.argmax(axis=0)
        alpha = shot.alpha(frame)
        assert not ((labels == 2) & (alpha == 0)).any() and not ((labels == 0) & (alpha == 1)).any()
        # Behind the disc the band takes in what the motion uncovers, but it does not
        # accumulate frame after frame up to the lobe's reach; ahead it stays as it was.
        behind, ahead = runs(labels, frame)
        assert behind <= key_behind + 10 and ahead <= key_ahead + 2, (frame, behind, ahead, key_behind, key_ahead)
        fx, fy = shot.centre(frame)
        core = np.hypot(xs - fx, ys - fy) < shot.radius - 6
        assert (labels[core] == 2).mean() > 0.95, (frame, float((labels[core] == 2).mean()))
        lobe = (np.abs(ys - fy) <= 1) & (xs >= fx + shot.radius + 4) & (xs < fx + shot.radius + 22)
        assert (labels[lobe] == 1).mean() > 0.9, (frame, float((labels[lobe] == 1).mean()))


def test_a_keyframe_without_background_never_gains_background() -> None:
    # Only a foreground core and unknown around it: there is no background the band
    # could fall back to, so nothing may become background.
    shot = DiscShot(height=64, width=96, frames=6, radius=16, start=(30.0, 32.0), dx=4.0)
    keyframe = np.where(shot.alpha(0) == 1, 255, 128).astype(np.uint8)
    schedule = KeyframeSchedule(shot.frame_numbers, [0])
    for frame, probs in FlowPropagator().run_pass(shot, {0: keyframe}, schedule.passes[0]):
        labels = probs.argmax(axis=0)
        assert not (labels == 0).any(), (frame, int((labels == 0).sum()))
        assert not ((labels == 2) & (shot.alpha(frame) < 0.5)).any(), frame


def test_grow_takes_the_pixels_within_the_radius() -> None:
    """The band's growth by the motion: a distance transform now (a dilation by a disc as
    wide as a fast move took seconds a call at 4K; large-frame QA). The pixels within the
    radius, whatever its size, and nothing without a mask."""
    from tcvom.classical.propagate import _grow

    mask = np.zeros((300, 400), bool)
    mask[150, 100] = True
    mask[40:60, 300:320] = True
    ys, xs = np.mgrid[0:300, 0:400]
    near_point = np.hypot(ys - 150, xs - 100)
    near_box = np.hypot(np.clip(ys, 40, 59) - ys, np.clip(xs, 300, 319) - xs)
    for radius in (0.5, 3.5, 40.0, 260.0):
        expected = np.minimum(near_point, near_box) <= radius
        assert (_grow(mask, radius) == expected).all(), radius
    assert not _grow(np.zeros((5, 5), bool), 3.0).any()
