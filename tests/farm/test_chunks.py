"""Frame selections, chunks and their pre-/post-roll; the plan of a shot's farm tasks."""

from __future__ import annotations

import json

import pytest

from tcvom.cli import main
from tcvom.errors import InputError
from tcvom.farm.chunks import chunk_ranges, select_frames, split, with_neighbours
from tcvom.farm.plan import plan_shot

SHOT = list(range(1001, 1011))


def test_select_frames() -> None:
    assert select_frames(None, SHOT) == SHOT
    assert select_frames("1003-1005", SHOT) == [1003, 1004, 1005]
    assert select_frames("1001-1010x4", SHOT) == [1001, 1005, 1009]
    assert select_frames([1007, 1002, 1002], SHOT) == [1002, 1007]
    with pytest.raises(InputError, match="1011-1012") as info:
        select_frames("1009-1012", SHOT)
    assert info.value.frame == 1011 and info.value.exit_code == 2


def test_neighbours_are_the_pre_and_post_roll() -> None:
    assert with_neighbours([1004, 1005], SHOT) == [1003, 1004, 1005, 1006]
    assert with_neighbours([1001], SHOT) == [1001, 1002]  # mirrored at the shot's start
    assert with_neighbours([1010], SHOT) == [1009, 1010]
    assert with_neighbours([1005], [1005]) == [1005]
    with pytest.raises(InputError):
        with_neighbours([1020], SHOT)


def test_neighbours_and_chunks_of_a_shot_on_twos_or_with_a_gap() -> None:
    """One rule: the previous and next frames of the shot's list, whatever their numbers."""
    twos = list(range(1001, 1010, 2))
    assert with_neighbours([1005], twos) == [1003, 1005, 1007]
    assert with_neighbours([1001], twos) == [1001, 1003] and with_neighbours([1009], twos) == [1007, 1009]
    assert split(twos, 2, twos) == [[1001, 1003], [1005, 1007], [1009]]
    assert chunk_ranges(twos, 3, twos) == ["1001-1005x2", "1007,1009"]
    gap = [1001, 1002, 1003, 1007, 1008]
    assert with_neighbours([1003], gap) == [1002, 1003, 1007] and with_neighbours([1007], gap) == [1003, 1007, 1008]
    assert split(gap, 10, gap) == [gap]  # the gap is not in the shot: the frames either side are neighbours
    assert split([1001, 1003], 10, [*twos, 1002]) == [[1001], [1003]]  # a shot frame left out ends a chunk
    with pytest.raises(InputError, match="1002"):
        with_neighbours([1002], twos)


def test_split_into_contiguous_chunks() -> None:
    assert split(SHOT, 4, SHOT) == [[1001, 1002, 1003, 1004], [1005, 1006, 1007, 1008], [1009, 1010]]
    assert split([1, 2, 3, 7, 8, 9, 10], 3, range(1, 11)) == [[1, 2, 3], [7, 8, 9], [10]]  # a gap ends a chunk
    assert chunk_ranges(SHOT, 5, SHOT) == ["1001-1005", "1006-1010"]
    assert chunk_ranges(SHOT, 100, SHOT) == ["1001-1010"]
    for size in (0, 2.5, "4", True):  # "4" stopped with a TypeError, 2.5 made chunks of 3 frames
        with pytest.raises(InputError, match="chunk size must be a whole number"):
            split(SHOT, size, SHOT)  # type: ignore[arg-type]


def test_plan_of_a_shot(farm_shot) -> None:
    plan = plan_shot(farm_shot.plate, farm_shot.keyframes, chunk=3)
    assert plan.shot == "1001-1008" and plan.keyframes == "1001,1004,1008"
    assert plan.segments == ((0, "1001-1004"), (1, "1005-1008")) and plan.segment_range == "0-1"
    assert plan.chunks == ("1001-1003", "1004-1006", "1007-1008")
    # frames 1006-1008 need the trimap of 1005 (a neighbour) but nothing of segment 0
    part = plan_shot(farm_shot.plate, farm_shot.keyframes, frames="1006-1008", chunk=3)
    assert part.segments == ((1, "1005-1008"),) and part.chunks == ("1006-1008",)
    # the neighbour 1004 of frame 1005 lies in segment 0
    assert plan_shot(farm_shot.plate, farm_shot.keyframes, frames="1005").segment_range == "0-1"
    with pytest.raises(InputError, match="chunk size must be a whole number"):  # even with no matte chunk
        plan_shot(farm_shot.plate, farm_shot.keyframes, chunk=2.5, computed={"trimaps": [1002], "alpha": []})  # type: ignore[arg-type]


def test_farm_plan_command(farm_shot, capsys) -> None:
    code = main(["farm", "plan", "--plate", farm_shot.plate, "--keyframes", farm_shot.keyframes, "--chunk", "4",
                 "--json"])
    plan = json.loads(capsys.readouterr().out)
    assert code == 0 and plan["segment_range"] == "0-1" and plan["chunks"] == ["1001-1004", "1005-1008"]
    assert plan["segments"][1] == {"index": 1, "frames": "1005-1008"}
