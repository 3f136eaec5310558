"""tcvom.farm.locks between two real processes: exclusive_lock (issue 21, point 7), FrameClaims (issue 16, item 9)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tcvom.farm.locks import FrameClaims, exclusive_lock

HOLDER = """
import sys, time
from pathlib import Path
from tcvom.farm.locks import exclusive_lock
lock, held, log = sys.argv[1:4]
with exclusive_lock(lock):
    Path(held).touch()
    time.sleep(1.5)
    with open(log, "a") as f:
        f.write("holder done\\n")
"""


def test_a_second_process_waits_for_the_lock_then_goes_on(tmp_path: Path) -> None:
    lock, held, log = tmp_path / "cache" / ".x.lock", tmp_path / "held", tmp_path / "log"
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock), str(held), str(log)])
    try:
        deadline = time.monotonic() + 60
        while not held.exists():
            assert child.poll() is None and time.monotonic() < deadline, "the holder did not take the lock"
            time.sleep(0.02)
        waited = []
        with exclusive_lock(lock, on_wait=lambda: waited.append(True)), open(log, "a") as f:
            f.write("waiter in\n")
    finally:
        child.wait(timeout=60)
    assert waited == [True]
    assert log.read_text().splitlines() == ["holder done", "waiter in"]  # never both inside
    with exclusive_lock(lock, on_wait=lambda: waited.append(False)):  # free again: no wait
        pass
    assert waited == [True] and child.returncode == 0


def test_a_killed_holder_leaves_the_lock_free(tmp_path: Path) -> None:
    lock, held = tmp_path / ".y.lock", tmp_path / "held"
    script = HOLDER.replace("time.sleep(1.5)", "time.sleep(600)")
    child = subprocess.Popen([sys.executable, "-c", script, str(lock), str(held), str(tmp_path / "log")])
    deadline = time.monotonic() + 60
    while not held.exists():
        assert child.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    child.kill()
    child.wait(timeout=60)
    with exclusive_lock(lock):
        pass


def test_frame_claims_name_frames_and_segments(tmp_path: Path) -> None:
    """FrameClaims: a frame or a named unit (a keyframe segment), held by another live
    process, cannot be claimed; released, it can; a name that is not a plain file name is refused."""
    code = ("import sys; from tcvom.farm.locks import FrameClaims; c = FrameClaims(sys.argv[1]); "
            "assert c.claim('segment.1001-1004') and c.claim(-5); print('held', flush=True); sys.stdin.readline()")
    child = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    mine = FrameClaims(tmp_path)
    try:
        assert not mine.claim("segment.1001-1004") and not mine.claim(-5)
        assert mine.claim("segment.1005-1008") and mine.claim(1003)
    finally:
        child.communicate("\n", timeout=60)
    assert mine.claim("segment.1001-1004") and mine.claim(-5)  # its holder ended
    mine.release_all()
    assert sorted(p.name for p in (tmp_path / "locks").iterdir()) == [
        "-5.lock", "1003.lock", "segment.1001-1004.lock", "segment.1005-1008.lock"]
    for bad in ("../x", ".hidden", ""):
        with pytest.raises(ValueError, match="plain name"):
            mine.claim(bad)


def test_live_writers_count_a_live_process_and_forget_a_killed_one(tmp_path: Path) -> None:
    import platform

    from tcvom.farm.locks import LiveWriters

    script = ("import sys, time\nfrom tcvom.farm.locks import LiveWriters\n"
              "w = LiveWriters(sys.argv[1]); w.join(); print('in', flush=True); time.sleep(600)")
    child = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "in"
        mine = LiveWriters(tmp_path)
        mine.join()
        assert mine.others() == [f"{platform.node()} pid {child.pid}"]
        child.kill()
        child.wait(timeout=60)
        assert mine.others() == []  # its file is gone: not counted again
        assert len(list((tmp_path / "writers").iterdir())) == 1
        mine.leave()
        assert not list((tmp_path / "writers").iterdir())
    finally:
        child.kill()


def test_live_writers_tell_other_inputs_by_the_tag_in_their_name(tmp_path: Path) -> None:
    """Code review: the tag (the keyframes' digest) was read from the writer's locked file,
    which Windows' mandatory locks leave unreadable, so the refusal never fired there; and
    a writer of an older tcvom, with no tag, was taken for one with other keyframes."""
    import platform

    from tcvom.farm.locks import LiveWriters

    script = ("import sys, time\nfrom tcvom.farm.locks import LiveWriters\n"
              "w = LiveWriters(sys.argv[1]); w.join(*sys.argv[2:]); print('in', flush=True); time.sleep(600)")
    tagged = subprocess.Popen([sys.executable, "-c", script, str(tmp_path), "aa11"], stdout=subprocess.PIPE, text=True)
    older = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        for child in (tagged, older):
            assert child.stdout is not None and child.stdout.readline().strip() == "in"
        assert any(p.name.endswith("-aa11.lock") for p in (tmp_path / "writers").iterdir())
        mine = LiveWriters(tmp_path)
        assert mine.others(unlike="bb22") == [f"{platform.node()} pid {tagged.pid}"]  # not the untagged one
        assert mine.others(unlike="aa11") == []
        assert sorted(mine.others()) == sorted(f"{platform.node()} pid {c.pid}" for c in (tagged, older))
    finally:
        tagged.kill()
        older.kill()


def test_a_lock_file_that_is_a_link_touches_nothing_it_names(tmp_path: Path) -> None:
    """Safety QA: a link put in a lock's place in the output's record folder made a run
    create (open for appending) the file it named, anywhere on the disk."""
    from tcvom.farm.locks import LiveWriters

    outside = tmp_path / "victim"
    outside.mkdir()
    claims = FrameClaims(tmp_path / "records")
    (tmp_path / "records" / "locks").mkdir(parents=True)
    for name in ("1005.lock", "claim.lock"):
        (tmp_path / "records" / "locks" / name).symlink_to(outside / f"made_by_{name}")
    assert claims.claim(1005)
    claims.release_all()
    with exclusive_lock(tmp_path / "records" / "locks" / "claim.lock"):
        pass
    writers = LiveWriters(tmp_path / "records")
    (tmp_path / "records" / "writers").mkdir()
    (tmp_path / "records" / "writers" / "1-abc-ff.lock").symlink_to(outside / "made_by_writer")
    assert writers.others() == []
    assert list(outside.iterdir()) == []
    assert not (tmp_path / "records" / "locks" / "1005.lock").is_symlink()
    # code review: the locks/ or writers/ folder itself a link (to a farm's folder of locks)
    (outside / "renderfarm-job.lock").write_bytes(b"not ours")
    for sub in ("locks", "writers"):
        folder = tmp_path / "linked" / sub
        folder.parent.mkdir(exist_ok=True)
        folder.symlink_to(outside, target_is_directory=True)
    assert LiveWriters(tmp_path / "linked").others() == []
    claims = FrameClaims(tmp_path / "linked")
    assert claims.claim(1005)
    claims.release_all()
    writers = LiveWriters(tmp_path / "linked")
    writers.join()
    writers.leave()
    assert sorted(p.name for p in outside.iterdir()) == ["renderfarm-job.lock"]


def test_a_lock_that_cannot_be_opened_is_an_error_at_once(tmp_path: Path, monkeypatch) -> None:
    """Code review: a lock file another user owns (no permission) made the link-replacing
    open retry for ever, a farm task spinning a CPU instead of failing."""
    import errno
    import os

    from tcvom.farm import locks

    def refused(path: str, flags: int) -> int:
        raise PermissionError(errno.EACCES, "Permission denied", path)

    (tmp_path / "theirs.lock").write_bytes(b"")
    monkeypatch.setattr(locks, "_no_link", refused)  # root here may open any file
    with pytest.raises(PermissionError):
        locks.open_lock(tmp_path / "theirs.lock")
    assert os.listdir(tmp_path) == ["theirs.lock"]
