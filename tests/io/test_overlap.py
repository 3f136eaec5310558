"""tcvom.io.overlap: frames read ahead on a thread and outputs written behind on another
(issue 18), bounded, with errors at the frame they belong to; and the jobs' outputs with
the I/O threads byte-identical to those without."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tcvom.errors import InputError, OutputError
from tcvom.io.overlap import ReadAhead, WriteBehind


class Recording:
    """A reader that records what it was asked for and fails on ``bad`` frames."""

    def __init__(self, frames: list[int], bad: int | None = None, delay: float = 0.0) -> None:
        self.frame_numbers = frames
        self.bad = bad
        self.delay = delay
        self.reads: list[int] = []
        self.threads: set[str] = set()
        self.width = 8

    def read(self, frame: int) -> np.ndarray:
        time.sleep(self.delay)
        self.reads.append(frame)
        self.threads.add(threading.current_thread().name)
        if frame == self.bad:
            raise InputError("cannot read this frame", path=f"plate.{frame}.exr", frame=frame)
        return np.full((2, 2), frame, dtype=np.float32)


def test_read_ahead_gives_each_frame_once_from_its_thread() -> None:
    reader = Recording(list(range(1, 21)))
    with ReadAhead(reader, depth=3) as ahead:
        ahead.start(reader.frame_numbers)
        deadline = time.monotonic() + 30
        while len(reader.reads) < 3:  # the thread fills its depth before anything is asked
            assert time.monotonic() < deadline, "the read-ahead thread read nothing"
            time.sleep(0.01)
        got = [int(ahead.read(f)[0, 0]) for f in reader.frame_numbers]
    assert got == reader.frame_numbers
    # nothing read twice; a frame the thread has not reached yet (a loaded machine) is read
    # by the caller instead of waited for, so both threads may have read
    assert sorted(reader.reads) == reader.frame_numbers
    assert reader.reads[:3] == [1, 2, 3] and "tcvom-read-ahead" in reader.threads
    assert ahead.width == 8  # other attributes are the reader's


def test_read_ahead_is_bounded() -> None:
    reader = Recording(list(range(100)))
    ahead = ReadAhead(reader, depth=2)
    ahead.start(reader.frame_numbers)
    for frame in range(10):
        ahead.read(frame)
        time.sleep(0.02)  # give the thread time to run as far ahead as it may
        assert len(reader.reads) <= frame + 1 + 2
    ahead.close()
    assert len(reader.reads) <= 13


def test_read_ahead_error_is_raised_at_its_frame_only() -> None:
    reader = Recording([1, 2, 3, 4, 5], bad=3)
    with ReadAhead(reader, depth=4) as ahead:
        ahead.start(reader.frame_numbers)
        time.sleep(0.05)  # the thread has failed on frame 3 by now
        assert ahead.read(1)[0, 0] == 1 and ahead.read(2)[0, 0] == 2
        with pytest.raises(InputError) as caught:
            ahead.read(3)
    assert caught.value.frame == 3 and "plate.3.exr" in str(caught.value.path)


def test_read_ahead_out_of_order_reads_in_the_caller() -> None:
    reader = Recording([1, 2, 3, 4, 5, 6], delay=0.01)
    with ReadAhead(reader, depth=2) as ahead:
        ahead.start([1, 2, 3, 4, 5, 6])
        assert ahead.read(1)[0, 0] == 1
        assert ahead.read(5)[0, 0] == 5  # passes 2-4 over
        assert ahead.read(2)[0, 0] == 2  # behind the order: read here
        assert ahead.read(6)[0, 0] == 6
    assert "MainThread" in reader.threads


def test_read_ahead_depth_zero_reads_in_the_caller() -> None:
    reader = Recording([1, 2])
    ahead = ReadAhead(reader, depth=0)
    ahead.start([1, 2])
    assert [int(ahead.read(f)[0, 0]) for f in (1, 2)] == [1, 2]
    assert reader.threads == {"MainThread"}
    ahead.close()


def test_write_behind_runs_jobs_in_order_on_its_thread() -> None:
    done: list[tuple[int, str]] = []
    with WriteBehind(depth=2) as behind:
        for i in range(20):
            behind.submit(lambda i=i: done.append((i, threading.current_thread().name)))
    assert [i for i, _ in done] == list(range(20))
    assert {name for _, name in done} == {"tcvom-write-behind"}


def test_write_behind_failure_stops_later_jobs_and_surfaces() -> None:
    done: list[int] = []

    def job(i: int) -> None:
        if i == 3:
            raise OutputError("cannot write", path=f"alpha.{i}.exr", frame=i)
        done.append(i)

    with pytest.raises(OutputError) as caught, WriteBehind(depth=2) as behind:
        for i in range(10):
            behind.submit(lambda i=i: job(i))
            time.sleep(0.01)
    assert caught.value.frame == 3
    assert done == [0, 1, 2]


def test_write_behind_writes_what_was_submitted_before_the_callers_error() -> None:
    done: list[int] = []
    with pytest.raises(RuntimeError, match="compute failed"), WriteBehind(depth=4) as behind:
        for i in range(3):
            behind.submit(lambda i=i: (time.sleep(0.02), done.append(i)))
        raise RuntimeError("compute failed")
    assert done == [0, 1, 2]


# --- the jobs, with and without the I/O threads ---------------------------------------------


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory):
    from tcvom.data.example import write_example

    return write_example(tmp_path_factory.mktemp("overlap") / "shot", width=48, height=32, frames=6)


_CAPTURE_DATE = re.compile(rb"capDate\x00string\x00\x13\x00\x00\x00.{19}", re.DOTALL)


def _files(folder: Path) -> dict[str, bytes]:
    """Every image's bytes, the EXR header's capture date (the time of writing) blanked."""
    return {str(p.relative_to(folder)): _CAPTURE_DATE.sub(b"capDate", p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix in (".exr", ".png")}


@pytest.mark.parametrize("output", ["alpha", "rgba"])
def test_matte_outputs_identical_with_and_without_io_threads(example, tmp_path: Path, output: str) -> None:
    from tcvom.pipeline import matte

    made = {}
    for queue_depth in (0, 3):
        out = tmp_path / f"q{queue_depth}"
        result = matte(example.plate, example.trimaps, out, method="classical", output=output,
                       progress="none", review=False, io_queue=queue_depth)
        assert sorted(result.written) == list(range(1001, 1007))
        made[queue_depth] = _files(out)
    assert len(made[0]) == 6 and made[0] == made[3]


def test_run_outputs_and_progress_order_identical(example, tmp_path: Path, capsys) -> None:
    from tcvom.cli import main

    made, events = {}, {}
    for queue_depth in (0, 2):
        out = tmp_path / f"q{queue_depth}"
        capsys.readouterr()
        code = main(["run", "--plate", example.plate, "--keyframes", example.keyframes, "--out", str(out),
                     "--method", "classical", "--progress", "json", "--no-review", "--io-queue", str(queue_depth)])
        assert code == 0
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
        events[queue_depth] = [(e["job"], e.get("frame")) for e in lines if e["event"] == "progress"]
        made[queue_depth] = _files(out)
    assert made[0] == made[2] and len(made[0]) == 12
    assert events[0] == events[2]
    frames = [f for j, f in events[2] if j == "matte"]
    assert frames == list(range(1001, 1007))  # every frame reported, in order, from the writer thread


def test_failed_write_on_the_writer_thread_is_the_clean_error(example, tmp_path: Path, capsys) -> None:
    from tcvom.cli import main

    out = tmp_path / "alpha"
    (out / "alpha.1004.exr").mkdir(parents=True)  # a folder where frame 1004 goes
    code = main(["matte", "--plate", example.plate, "--trimaps", example.trimaps, "--out", str(out),
                 "--method", "classical", "--progress", "none", "--io-queue", "3"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "alpha.1004.exr" in err and "Traceback" not in err
    written = sorted(p.name for p in out.glob("alpha.*.exr") if p.is_file())
    assert written == [f"alpha.{f}.exr" for f in (1001, 1002, 1003)]  # nothing after the failed frame
    records = sorted(p.name for p in (out / ".alpha.tcvom" / "frames").glob("*.json"))
    assert records == [f"{f}.json" for f in (1001, 1002, 1003)]
    assert not [p for p in out.iterdir() if ".tcvom-tmp-" in p.name]


def test_negative_io_queue_is_refused(example, tmp_path: Path, capsys) -> None:
    from tcvom.cli import main

    with pytest.raises(SystemExit) as stopped:  # the parser's refusal, naming the flag
        main(["matte", "--plate", example.plate, "--trimaps", example.trimaps, "--out", str(tmp_path / "a"),
              "--method", "classical", "--progress", "none", "--io-queue", "-1"])
    assert stopped.value.code == 2
    assert "argument --io-queue: must be at least 0, not -1" in capsys.readouterr().err


def test_write_behind_drain_waits_for_the_jobs_submitted() -> None:
    done: list[int] = []
    with WriteBehind(depth=3) as behind:
        for i in range(3):
            behind.submit(lambda i=i: (time.sleep(0.02), done.append(i)))
        behind.drain()
        assert done == [0, 1, 2]
        behind.submit(lambda: done.append(3))
    assert done == [0, 1, 2, 3]
