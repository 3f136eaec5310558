import pytest

from tcvom.errors import InputError
from tcvom.propagation import KeyframeSchedule


def covered(schedule: KeyframeSchedule) -> list[int]:
    return [f for s in schedule.segments for f in s.outputs]


@pytest.mark.parametrize(
    "keys", [[1], [5], [10], [1, 10], [3, 7], [1, 3, 5, 8, 10], [2, 4, 6, 8, 9]]
)
def test_segments_partition_the_shot(keys: list[int]) -> None:
    schedule = KeyframeSchedule(range(1, 11), keys)
    assert covered(schedule) == list(range(1, 11))
    for frame in range(1, 11):
        weights = schedule.weights(frame)
        assert abs(sum(w for _, w in weights) - 1.0) < 1e-9 or len(weights) == 1


def test_one_keyframe_in_the_middle_runs_both_ways() -> None:
    schedule = KeyframeSchedule(range(1001, 1011), [1004])
    head, tail = schedule.passes
    assert head.frames == (1004, 1003, 1002, 1001) and head.direction == -1 and head.length == 4
    assert tail.frames == tuple(range(1004, 1011)) and tail.direction == 1 and tail.length == 7
    assert head.memory_keyframes == (1004,)


def test_between_keyframes_weights_are_linear_in_distance() -> None:
    schedule = KeyframeSchedule(range(0, 21), [0, 10, 20])
    forward, backward = schedule.segment_of(3).passes
    assert forward.frames == tuple(range(0, 10)) and backward.frames == tuple(range(10, 0, -1))
    assert forward.memory_keyframes == backward.memory_keyframes == (0, 10)
    weights = {p.keyframe: w for p, w in schedule.weights(3)}
    assert weights == pytest.approx({0: 0.7, 10: 0.3})
    assert {p.keyframe: w for p, w in schedule.weights(10)} == {
        10: 1.0
    }  # a keyframe is its own pass's start


@pytest.mark.parametrize(
    "keys", [[1], [5], [10], [1, 10], [3, 7], [1, 3, 5, 8, 10], [2, 4, 6, 8, 9]]
)
def test_a_shot_on_twos_or_with_a_gap_is_scheduled_as_its_frame_list(keys: list[int]) -> None:
    """Passes step through the shot's list (the neighbour rule of tcvom.matting.window):
    the schedule of frames 1001, 1003, ... (or with a gap) is the schedule on ones,
    renumbered, with the same confidences."""
    for shot in ([1001 + 2 * i for i in range(10)], [1, 2, 3, 4, 5, 9, 10, 11, 12, 13]):
        number = dict(zip(range(1, 11), shot, strict=True))
        ones = KeyframeSchedule(range(1, 11), keys)
        other = KeyframeSchedule(reversed(shot), [number[k] for k in keys])  # any order is accepted
        assert covered(other) == shot
        for a, b in zip(ones.passes, other.passes, strict=True):
            assert tuple(number[f] for f in a.frames) == b.frames and a.length == b.length
            assert b.memory_keyframes == tuple(number[k] for k in a.memory_keyframes)
        for frame in range(1, 11):
            assert [w for _, w in other.weights(number[frame])] == [w for _, w in ones.weights(frame)]
    with pytest.raises(InputError, match="1002"):
        KeyframeSchedule([1001, 1003, 1005], [1002])


def test_keyframes_at_first_and_last_frame_have_no_head_or_tail() -> None:
    schedule = KeyframeSchedule(range(1, 6), [5, 1])  # unsorted is accepted
    assert schedule.keyframes == (1, 5)
    assert len(schedule.segments) == 1 and len(schedule.passes) == 2


def test_one_frame_shot() -> None:
    schedule = KeyframeSchedule(range(7, 8), [7])
    assert covered(schedule) == [7] and schedule.weights(7)[0][1] == 1.0


def test_bad_keyframes() -> None:
    with pytest.raises(InputError, match="more than once"):
        KeyframeSchedule(range(1, 11), [3, 3])
    with pytest.raises(InputError, match="outside the frame range") as err:
        KeyframeSchedule(range(1, 11), [0, 5])
    assert err.value.frame == 0
    with pytest.raises(InputError, match="no keyframe"):
        KeyframeSchedule(range(1, 11), [])
