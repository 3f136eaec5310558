import pytest

from tcvom.errors import InputError
from tcvom.propagation import KeyframeSchedule


def covered(schedule: KeyframeSchedule) -> list[int]:
    return [f for s in schedule.segments for f in s.outputs]


@pytest.mark.parametrize(
    "keys", [[1], [5], [10], [1, 10], [3, 7], [1, 3, 5, 8, 10], [2, 4, 6, 8, 9]]
)
def test_segments_partition_the_shot(keys: list[int]) -> None:
    schedule = KeyframeSchedule(1, 10, keys)
    assert covered(schedule) == list(range(1, 11))
    for frame in range(1, 11):
        weights = schedule.weights(frame)
        assert abs(sum(w for _, w in weights) - 1.0) < 1e-9 or len(weights) == 1


def test_one_keyframe_in_the_middle_runs_both_ways() -> None:
    schedule = KeyframeSchedule(1001, 1010, [1004])
    head, tail = schedule.passes
    assert head.frames == (1004, 1003, 1002, 1001) and head.direction == -1 and head.length == 4
    assert tail.frames == tuple(range(1004, 1011)) and tail.direction == 1 and tail.length == 7
    assert head.memory_keyframes == (1004,)


def test_between_keyframes_weights_are_linear_in_distance() -> None:
    schedule = KeyframeSchedule(0, 20, [0, 10, 20])
    forward, backward = schedule.segment_of(3).passes
    assert forward.frames == tuple(range(0, 10)) and backward.frames == tuple(range(10, 0, -1))
    assert forward.memory_keyframes == backward.memory_keyframes == (0, 10)
    weights = {p.keyframe: w for p, w in schedule.weights(3)}
    assert weights == pytest.approx({0: 0.7, 10: 0.3})
    assert {p.keyframe: w for p, w in schedule.weights(10)} == {
        10: 1.0
    }  # a keyframe is its own pass's start


def test_keyframes_at_first_and_last_frame_have_no_head_or_tail() -> None:
    schedule = KeyframeSchedule(1, 5, [5, 1])  # unsorted is accepted
    assert schedule.keyframes == (1, 5)
    assert len(schedule.segments) == 1 and len(schedule.passes) == 2


def test_one_frame_shot() -> None:
    schedule = KeyframeSchedule(7, 7, [7])
    assert covered(schedule) == [7] and schedule.weights(7)[0][1] == 1.0


def test_bad_keyframes() -> None:
    with pytest.raises(InputError, match="more than once"):
        KeyframeSchedule(1, 10, [3, 3])
    with pytest.raises(InputError, match="outside the frame range") as err:
        KeyframeSchedule(1, 10, [0, 5])
    assert err.value.frame == 0
    with pytest.raises(InputError, match="no keyframe"):
        KeyframeSchedule(1, 10, [])
