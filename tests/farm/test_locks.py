"""tcvom.farm.locks.exclusive_lock between two real processes (issue 21, point 7)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tcvom.farm.locks import exclusive_lock

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
