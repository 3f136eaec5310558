"""tcvom.matting.window: the one neighbour rule (frames of the shot's list) and the frame cache."""

from __future__ import annotations

import pytest

from tcvom.matting.window import neighbour_window, shot_position


def test_neighbours_are_the_previous_and_next_frames_of_the_shot_list() -> None:
    assert neighbour_window(1004, range(1001, 1011)) == (1003, 1004, 1005)
    twos = [1001, 1003, 1005, 1007]
    assert neighbour_window(1003, twos) == (1001, 1003, 1005)
    assert neighbour_window(1001, twos) == (1003, 1001, 1003)  # mirrored at the start
    assert neighbour_window(1007, twos) == (1005, 1007, 1005)  # and at the end
    gap = [1, 2, 3, 10, 11]
    assert neighbour_window(3, gap) == (2, 3, 10) and neighbour_window(10, gap) == (3, 10, 11)
    assert neighbour_window(5, [5]) == (5, 5, 5)
    assert shot_position(1005, twos) == 2
    for frame, shot in ((1002, twos), (0, gap), (12, gap)):
        with pytest.raises(ValueError, match=f"frame {frame} is not a frame of the shot"):
            neighbour_window(frame, shot)
