"""The STM propagator driven by the keyframe schedule, at tiny sizes with random weights."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import pytest
import torch

from tcvom.errors import FrameSizeError, InputError
from tcvom.io.trimap import from_alpha, one_hot
from tcvom.models.stm import STM, build_stm
from tcvom.propagation.ensemble import propagate
from tcvom.propagation.scheduler import KeyframeSchedule, Pass
from tcvom.propagation.stm import DEFAULT_MAX_MEMORY, MemoryBank, StmPropagator, padded_size


class Shot:
    """A square moving right over a gradient; frames and trimaps made on demand."""

    def __init__(self, count: int, height: int = 20, width: int = 36, first: int = 0) -> None:
        self.frame_numbers = list(range(first, first + count))
        self.height, self.width = height, width
        self.reads: list[int] = []

    def alpha(self, frame: int) -> np.ndarray:
        a = np.zeros((self.height, self.width), np.float32)
        x = 4 + (frame - self.frame_numbers[0]) % (self.width - 16)
        a[5:15, x : x + 10] = 1.0
        a[5:15, x + 10] = 0.5
        return a

    def read(self, frame: int) -> np.ndarray:
        self.reads.append(frame)
        yy, xx = np.mgrid[0 : self.height, 0 : self.width].astype(np.float32)
        bg = np.stack([xx / self.width, yy / self.height, 0.3 + 0 * xx], axis=-1)
        fg = np.array([0.9, 0.2, 0.6], np.float32)
        a = self.alpha(frame)[..., None]
        return (a * fg + (1 - a) * bg).astype(np.float32)

    def trimap(self, frame: int) -> np.ndarray:
        return from_alpha(self.alpha(frame), 3)


@pytest.fixture(scope="module")
def model() -> STM:
    torch.manual_seed(5)
    torch.set_num_threads(1)
    return build_stm()


class Recording:
    """Runs the STM propagator and keeps what each pass yielded."""

    def __init__(self, propagator: StmPropagator) -> None:
        self.propagator = propagator
        self.passes: list[tuple[Pass, list[tuple[int, np.ndarray]]]] = []

    def run_pass(
        self, frames: Shot, keyframes: Mapping[int, np.ndarray], pass_: Pass
    ) -> Iterator[tuple[int, np.ndarray]]:
        out: list[tuple[int, np.ndarray]] = []
        self.passes.append((pass_, out))
        for item in self.propagator.run_pass(frames, keyframes, pass_):
            out.append(item)
            yield item


@pytest.mark.parametrize(
    "keys",
    [[5], [0], [11], [0, 11], [2, 7], [0, 3, 6, 8, 11]],
    ids=["one-middle", "one-first", "one-last", "first-and-last", "two", "five"],
)
def test_schedule_passes_through_propagator(model: STM, keys: list[int]) -> None:
    shot = Shot(12)
    keyframes = {k: shot.trimap(k) for k in keys}
    recording = Recording(StmPropagator(model))
    results = {r.frame: r for r in propagate(recording, shot, keyframes)}
    schedule = KeyframeSchedule(range(0, 12), keys)
    assert [p for p, _ in recording.passes] == list(schedule.passes)
    for pass_, out in recording.passes:
        assert [f for f, _ in out] == list(pass_.frames)
        for f, probs in out:
            assert probs.dtype == np.uint8 and probs.shape == (3, 20, 36)
            if f == pass_.keyframe:
                np.testing.assert_array_equal(probs, (one_hot(keyframes[f]) * 255).astype(np.uint8))
            else:
                total = probs.astype(int).sum(axis=0)
                assert total.min() >= 252 and total.max() <= 255  # truncated 255 * softmax
    assert sorted(results) == list(range(12))
    for f, result in results.items():
        assert result.trimap.dtype == np.uint8 and result.trimap.shape == (20, 36)
        assert set(np.unique(result.trimap)) <= {0, 128, 255}
        if f in keyframes:
            np.testing.assert_array_equal(result.trimap, keyframes[f])


def test_interval_passes_hold_both_keyframes_in_memory(model: STM) -> None:
    shot = Shot(8)
    keyframes = {1: shot.trimap(1), 6: shot.trimap(6)}
    propagator = StmPropagator(model)
    schedule = KeyframeSchedule(range(0, 8), keyframes)
    forward, backward = schedule.segments[1].passes
    seen = []
    for _ in propagator.run_pass(shot, keyframes, forward):
        seen.append(propagator.last_memory)
    assert seen[1] == (1, 6) and seen[2] == (1, 6, 2)
    seen = []
    for _ in propagator.run_pass(shot, keyframes, backward):
        seen.append(propagator.last_memory)
    assert seen[1] == (1, 6) and seen[2] == (1, 6, 5)


def test_keyframe_without_foreground(model: STM) -> None:
    shot = Shot(5)
    trimap = shot.trimap(0)
    trimap[trimap == 255] = 128
    all_background = np.zeros_like(trimap)
    for tri in (trimap, all_background):
        (pass_,) = KeyframeSchedule(range(0, 5), [0]).passes
        out = dict(StmPropagator(model).probabilities(shot, {0: tri}, pass_))
        assert sorted(out) == [0, 1, 2, 3, 4]
        for probs in out.values():
            assert np.isfinite(probs).all()
            np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=1e-5)
        assert out[0][2].max() == 0  # the keyframe itself has no foreground


@pytest.mark.parametrize(
    ("max_memory", "expected"),
    [
        (
            None,
            [
                (),
                (0,),
                (0, 1),
                (0, 2),
                (0, 2, 3),
                (0, 2, 4),
                (0, 2, 4, 5),
                (0, 2, 4, 6),
                (0, 2, 4, 6, 7),
            ],
        ),
        (2, [(), (0,), (0, 1), (0, 2), (0, 2, 3), (0, 2, 4), (0, 4, 5), (0, 4, 6), (0, 6, 7)]),
    ],
)
def test_memory_schedule_as_reference(model: STM, max_memory: int | None, expected: list) -> None:
    """mem_every 2: frame i keeps frame i-1 when i-1 is a multiple of 2; the previous frame
    is always read; the cap evicts the oldest kept frame (hand-worked from test_mf_2.py)."""
    shot = Shot(9)
    (pass_,) = KeyframeSchedule(range(0, 9), [0]).passes
    propagator = StmPropagator(model, mem_every=2, max_memory=max_memory)
    seen = [propagator.last_memory for _ in propagator.run_pass(shot, {0: shot.trimap(0)}, pass_)]
    assert seen == expected


def test_memory_bank_eviction_over_a_long_shot() -> None:
    fixed_key, fixed_value = torch.zeros(2, 4, 2, 1, 1), torch.zeros(2, 6, 2, 1, 1)
    bank = MemoryBank((100, 2100), fixed_key, fixed_value, max_memory=DEFAULT_MAX_MEMORY)
    for frame in range(101, 2100):
        entry = (frame, torch.full((2, 4, 1, 1, 1), float(frame)), torch.zeros(2, 6, 1, 1, 1))
        frames, key, value = bank.read(entry)
        assert key.shape[2] == value.shape[2] == len(frames) <= 2 + DEFAULT_MAX_MEMORY
        if frame % 5 == 0:
            bank.keep(entry)
    assert len(bank.kept) == DEFAULT_MAX_MEMORY - 1
    assert bank.frames == (100, 2100, 2065, 2070, 2075, 2080, 2085, 2090, 2095)
    _, key, _ = bank.read()
    assert key[0, 0, 2:, 0, 0].tolist() == [2065, 2070, 2075, 2080, 2085, 2090, 2095]
    unbounded = MemoryBank((0,), fixed_key[:, :, :1], fixed_value[:, :, :1], max_memory=None)
    for frame in range(1, 50):
        unbounded.keep((frame, fixed_key[:, :, :1], fixed_value[:, :, :1]))
    assert len(unbounded.frames) == 50


@pytest.mark.slow
def test_memory_cap_on_a_long_shot(model: STM) -> None:
    shot = Shot(150, height=12, width=24)
    (pass_,) = KeyframeSchedule(range(0, 150), [0]).passes
    propagator = StmPropagator(model, mem_every=2, max_memory=4)
    sizes = []
    for _frame, probs in propagator.run_pass(shot, {0: shot.trimap(0)}, pass_):
        sizes.append(len(propagator.last_memory))
        assert len(sizes) == 1 or propagator.last_memory[0] == 0  # the keyframe always stays
        assert probs.shape == (3, 12, 24)
    assert max(sizes) == 1 + 4
    assert set(sizes[20:]) == {5}  # keyframe + 3 kept + the previous frame, from then on
    assert shot.reads == list(range(150))  # each frame read once, in order


def test_bad_keyframes_are_reported(model: STM) -> None:
    shot = Shot(4)
    (pass_,) = KeyframeSchedule(range(0, 4), [0]).passes
    propagator = StmPropagator(model)
    bad = shot.trimap(0)
    bad[0, 0] = 100
    with pytest.raises(InputError, match="other than 0, 128 and 255") as info:
        list(propagator.run_pass(shot, {0: bad}, pass_))
    assert info.value.frame == 0
    with pytest.raises(FrameSizeError):
        list(propagator.run_pass(shot, {0: np.zeros((10, 10), np.uint8)}, pass_))
    with pytest.raises(InputError, match="uint8"):
        list(propagator.run_pass(shot, {0: shot.trimap(0).astype(np.float32)}, pass_))
    with pytest.raises(InputError, match="no keyframe trimap for frame 0"):
        list(propagator.run_pass(shot, {}, pass_))
    with pytest.raises(InputError, match="mem_every"):
        StmPropagator(model, mem_every=0)
    with pytest.raises(InputError, match="max_memory"):
        StmPropagator(model, max_memory=0)
    with pytest.raises(InputError, match="more than once"):
        KeyframeSchedule(range(0, 4), [2, 0, 2])


def test_frame_of_another_size_is_reported(model: STM) -> None:
    class Uneven(Shot):
        def read(self, frame: int) -> np.ndarray:
            image = super().read(frame)
            return image[:-2] if frame == 2 else image

    shot = Uneven(4)
    (pass_,) = KeyframeSchedule(range(0, 4), [0]).passes
    with pytest.raises(FrameSizeError) as info:
        list(StmPropagator(model).run_pass(shot, {0: shot.trimap(0)}, pass_))
    assert info.value.frame == 2


def test_padded_size_rounds_up_to_32() -> None:
    assert padded_size(72, 200) == (96, 224)
    assert padded_size(64, 32) == (64, 32)
    assert padded_size(1080, 1920) == (1088, 1920)
