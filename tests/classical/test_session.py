"""The classical matting session: caches, temporal switch, errors."""

from __future__ import annotations

import numpy as np
import pytest
from classical_shots import DiscShot

from tcvom.classical import ClassicalSession
from tcvom.errors import FrameSizeError, InputError
from tcvom.io.sources import ArrayFrames
from tcvom.io.trimap import from_alpha


def _shot() -> tuple[DiscShot, ArrayFrames]:
    shot = DiscShot(height=48, width=64, frames=5, radius=12, start=(24.0, 24.0), dx=2.0)
    return shot, ArrayFrames({f: from_alpha(shot.alpha(f), 7) for f in range(shot.frames)})


def test_sequential_run_solves_each_frame_once_with_bounded_caches() -> None:
    shot, trimaps = _shot()
    session = ClassicalSession(shot, trimaps)
    seen = []
    for frame, alpha in session.alphas():
        seen.append(frame)
        assert alpha.dtype == np.float32 and alpha.shape == (48, 64)
        known = trimaps.read(frame) != 128
        assert (alpha[known] == (trimaps.read(frame)[known] == 255)).all()
        assert len(session._frames) <= 3 and len(session._flows) <= 2
        assert set(session._frames) <= {frame - 1, frame, frame + 1}
    assert seen == list(range(5))
    assert session.timings.counts["solve"] == 5
    assert session.timings.counts["flow"] == 4  # one pair per neighbouring frames


def test_temporal_switch_and_random_access() -> None:
    shot, trimaps = _shot()
    plain = ClassicalSession(shot, trimaps, temporal=False)
    smooth = ClassicalSession(shot, trimaps)
    a_plain = plain.alpha(2)
    np.testing.assert_array_equal(a_plain, ClassicalSession(shot, trimaps).per_frame_alpha(2))
    a_smooth = smooth.alpha(2)
    unknown = trimaps.read(2) == 128
    assert not np.array_equal(a_plain[unknown], a_smooth[unknown])
    assert (a_plain[~unknown] == a_smooth[~unknown]).all()
    # Random access gives what a sequential run gives.
    sequential = dict(ClassicalSession(shot, trimaps).alphas())
    np.testing.assert_allclose(a_smooth, sequential[2], atol=1e-6)
    assert plain.timings.counts["flow"] == 0


def test_errors_name_the_frame() -> None:
    shot, trimaps = _shot()
    with pytest.raises(InputError, match="not in the shot"):
        ClassicalSession(shot, trimaps).alpha(9)
    bad = ArrayFrames({f: np.zeros((10, 10), np.uint8) for f in range(5)})
    with pytest.raises(FrameSizeError, match="frame 1"):
        ClassicalSession(shot, bad).alpha(1)
