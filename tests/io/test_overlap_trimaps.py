"""The trimap stage's plate frames read ahead on a thread (issue 18): in the order the
propagation passes ask for them, so none is read on the computing thread; outputs
byte-identical with and without the thread (classical and STM with fixed weights); a frame
that cannot be read gives the same error and exit code; Ctrl-C does not wait on the reader."""

from __future__ import annotations

import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from test_overlap import _files  # the same folder

from tcvom.io import open_frames
from tcvom.io.overlap import ReadAhead
from tcvom.propagation.ensemble import propagate, read_order
from tcvom.propagation.scheduler import KeyframeSchedule


class Spy:
    """A real frame source that records which frames were read, and on which thread."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.reads: list[tuple[int, str]] = []

    def __getattr__(self, name: str) -> Any:
        if name == "source":
            raise AttributeError(name)
        return getattr(self.source, name)

    def read(self, frame: int) -> np.ndarray:
        self.reads.append((frame, threading.current_thread().name))
        return self.source.read(frame)


@pytest.fixture(scope="module")
def shot(tmp_path_factory: pytest.TempPathFactory):
    """A tiny shot with keyframes 1001 and 1007 inside and a tail after the last one, so
    there are forward, backward and one-pass segments."""
    from tcvom.data.example import write_example

    example = write_example(tmp_path_factory.mktemp("tri-overlap") / "shot", width=40, height=32, frames=9)
    keys = Path(example.folder) / "keys"
    keys.mkdir()
    for frame in (1003, 1007):
        shutil.copy(example.trimaps.replace("####", str(frame)), keys / f"key.{frame}.png")
    return example, str(keys / "key.####.png")


@pytest.fixture(scope="module")
def stm_weights(tmp_path_factory: pytest.TempPathFactory, stm_model) -> Path:
    path = tmp_path_factory.mktemp("stm") / "stm.pth"
    torch.save(stm_model.state_dict(), path)
    return path


def _propagator(method: str, stm_weights: Path, **options: Any) -> Any:
    from tcvom.pipeline import methods

    if method == "tcvom":
        return methods.make_propagator("tcvom", weights=stm_weights, finetune_steps=0, **options)
    return methods.make_propagator("classical")


def _keyframes(shot) -> dict[int, np.ndarray]:
    from tcvom.io import open_trimaps

    return open_trimaps(shot[1], contiguous=False).read_all()


def _spied_shot(shot) -> tuple[Spy, dict[int, np.ndarray], KeyframeSchedule]:
    """The example's plate behind a :class:`Spy`, its keyframes and their schedule."""
    spy = Spy(open_frames(shot[0].plate))
    keys = _keyframes(shot)
    return spy, keys, KeyframeSchedule(spy.frame_numbers, keys)


@pytest.mark.parametrize("method", ["classical", "tcvom"])
def test_read_order_is_the_order_the_passes_read(shot, stm_weights: Path, method: str) -> None:
    spy, keys, schedule = _spied_shot(shot)
    assert len(schedule.segments) == 3  # head, between the keyframes, tail
    propagator = _propagator(method, stm_weights)
    for _ in propagate(propagator, spy, keys, schedule=schedule):
        pass
    reads = [frame for frame, _ in spy.reads]
    assert reads == read_order(propagator, keys, schedule.segments, spy.frame_numbers)
    assert reads.count(1005) == 3  # read to find cuts, then reached by the forward and the backward pass


def test_read_order_of_fine_tuning_reads_the_keyframes_first(shot, stm_weights: Path) -> None:
    spy, keys, schedule = _spied_shot(shot)
    propagator = _propagator("tcvom", stm_weights)
    propagator.finetune_steps, propagator.finetune_size = 1, 32
    segment = schedule.segments[1]
    for _ in propagate(propagator, spy, keys, segments=[segment]):
        pass
    order = read_order(propagator, keys, [segment], spy.frame_numbers)
    assert [frame for frame, _ in spy.reads] == order
    # the segment's frames and one more on either side (to find cuts), the tuning samples, then the memory
    assert order[:11] == [*range(1002, 1009), 1003, 1007, 1003, 1007]


def test_plate_frames_read_ahead_give_the_same_trimaps(shot, stm_weights: Path) -> None:
    spy, keys, schedule = _spied_shot(shot)
    propagator = _propagator("tcvom", stm_weights)
    got = []
    for segment in schedule.segments:
        with ReadAhead(spy, depth=2) as ahead:
            ahead.start(read_order(propagator, keys, [segment], spy.frame_numbers))
            got.extend((item.frame, item.trimap) for item in propagate(propagator, ahead, keys, segments=[segment]))
    assert "tcvom-read-ahead" in {name for _, name in spy.reads}
    assert len(spy.reads) == len(read_order(propagator, keys, schedule.segments, spy.frame_numbers))  # nothing read twice more
    plain = [(item.frame, item.trimap) for item in propagate(propagator, open_frames(shot[0].plate), keys)]
    assert [f for f, _ in got] == [f for f, _ in plain]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(got, plain, strict=True))


@pytest.mark.parametrize("method", ["classical", "tcvom"])
def test_trimaps_identical_with_and_without_the_reader_thread(shot, stm_weights: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    from tcvom.pipeline import jobs

    example, keyframes = shot
    spies: list[Spy] = []
    opened = jobs._open_plate

    def spied(*args: Any) -> Spy:
        spies.append(Spy(opened(*args)))
        return spies[-1]

    monkeypatch.setattr(jobs, "_open_plate", spied)  # the real source, its reads recorded
    made, threads = {}, {}
    for queue_depth in (0, 2):
        out = tmp_path / f"q{queue_depth}"
        options: dict[str, Any] = {"weights": stm_weights, "finetune_steps": 0} if method == "tcvom" else {}
        result = jobs.trimaps(example.plate, keyframes, out / "trimaps", method=method, progress="none",
                              review=False, probabilities=out / "probs", io_queue=queue_depth, **options)
        assert sorted(result.written) == list(range(1001, 1010))
        made[queue_depth] = _files(out)
        threads[queue_depth] = {name for _, name in spies[-1].reads}
    assert len(made[0]) == 18 and made[0] == made[2]
    assert threads[0] == {"MainThread"}
    assert "tcvom-read-ahead" in threads[2]  # (a frame the thread has not reached yet is read here)


def test_unreadable_plate_frame_in_the_trimap_stage(shot, tmp_path: Path, capsys) -> None:
    from tcvom.cli import main

    example, keyframes = shot
    plate = tmp_path / "plate"
    shutil.copytree(Path(example.plate).parent, plate)
    bad = plate / "plate.1005.exr"
    bad.write_bytes(bad.read_bytes()[:100])  # truncated: read by both passes of the middle segment
    errors = {}
    for queue_depth in (0, 2):
        out = tmp_path / f"trimaps{queue_depth}"
        code = main(["trimaps", "--plate", str(plate / "plate.####.exr"), "--keyframes", keyframes, "--out", str(out),
                     "--method", "classical", "--progress", "none", "--io-queue", str(queue_depth)])
        errors[queue_depth] = capsys.readouterr().err
        assert code == 2, errors[queue_depth]
        assert sorted(p.name for p in out.glob("trimap.*.png")) == ["trimap.1001.png", "trimap.1002.png",
                                                                    "trimap.1003.png"]  # the head segment
    assert "plate.1005.exr" in errors[2] and "frame 1005" in errors[2] and "Traceback" not in errors[2]
    assert errors[0] == errors[2]


class Slow:
    def __init__(self) -> None:
        self.frame_numbers = [1, 2, 3, 4]

    def read(self, frame: int) -> np.ndarray:
        time.sleep(0.3)
        return np.zeros((2, 2), np.float32)


def test_ctrl_c_while_waiting_on_the_reader_does_not_hang() -> None:
    main = threading.main_thread().ident
    assert main == threading.get_ident()
    # Ctrl-C raises KeyboardInterrupt even where the suite runs as a background job, whose
    # shell starts it with SIGINT ignored.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.1, lambda: signal.pthread_kill(main, signal.SIGINT))
    begin = time.perf_counter()
    try:
        with pytest.raises(KeyboardInterrupt), ReadAhead(Slow(), depth=2) as ahead:  # type: ignore[arg-type]
            ahead.start([1, 2, 3, 4])
            timer.start()
            for frame in (1, 2, 3, 4):
                ahead.read(frame)
    finally:
        signal.signal(signal.SIGINT, previous)
    # the interrupt came while waiting for frame 1; closing waits for that one read only
    assert time.perf_counter() - begin < 1.0
    timer.join()
