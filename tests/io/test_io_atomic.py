import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tcvom.errors import OutputError
from tcvom.io import atomic_output, ensure_writable_folder, read_image, write_image


def test_failed_write_leaves_nothing_under_the_final_name(tmp_path: Path) -> None:
    final = tmp_path / "alpha.0001.exr"
    with pytest.raises(RuntimeError), atomic_output(final) as tmp:
        tmp.write_bytes(b"half a frame")
        raise RuntimeError("killed")
    assert not final.exists() and list(tmp_path.iterdir()) == []


def test_rewrite_keeps_the_old_file_until_the_new_one_is_complete(tmp_path: Path) -> None:
    final = write_image(tmp_path / "a.exr", np.zeros((4, 4), np.float32))
    with pytest.raises(KeyboardInterrupt), atomic_output(final) as tmp:
        tmp.write_bytes(b"partial")
        raise KeyboardInterrupt
    assert read_image(final)[0].max() == 0.0


WRITER = """
import sys, numpy as np
from tcvom.io import write_image
folder = sys.argv[1]
pixels = np.random.default_rng(0).random((1080, 1920, 3), dtype=np.float32)
frame = 0
print("ready", flush=True)
while True:
    frame += 1
    write_image(f"{folder}/big.{frame:04d}.exr", pixels, pixel_type="float")
"""


def test_a_killed_writer_leaves_only_complete_frames(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("big.*.exr"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.13)  # most likely in the middle of the next frame
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finals = sorted(tmp_path.glob("big.*.exr"))
    assert len(finals) >= 2
    for path in finals:
        pixels, _ = read_image(path)
        assert pixels.shape == (1080, 1920, 3), path
    leftovers = [p for p in tmp_path.iterdir() if p not in finals]
    assert all(p.name.startswith(".") and ".tcvom-tmp-" in p.name for p in leftovers)


def test_output_folder_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError) as err:
        ensure_writable_folder(blocker / "sub")
    assert err.value.exit_code == 2 and "sub" in str(err.value)


def test_write_text_and_bytes_replace_whole_files_under_unique_names(tmp_path: Path) -> None:
    from tcvom.io.atomic import temporary_name, write_bytes, write_text

    final = tmp_path / "export.json"
    assert temporary_name(final) != temporary_name(final)  # two writers never share a temp name
    write_text(final, "first\n")
    write_bytes(final, b"second\n")
    assert final.read_bytes() == b"second\n" and [p.name for p in tmp_path.iterdir()] == ["export.json"]


def _writer_process(folder: Path) -> tuple[subprocess.Popen, Path]:
    """A process that opens a temporary for ``alpha.1005.exr`` and stays in the middle of writing."""
    code = ("import sys, time; from pathlib import Path; from tcvom.io.atomic import temporary_name; "
            "t = temporary_name(Path(sys.argv[1]) / 'alpha.1005.exr'); t.write_bytes(b'half'); "
            "print(t, flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, Path(proc.stdout.readline().strip())


def test_temporaries_of_killed_writers_are_removed_not_those_of_live_ones(tmp_path: Path) -> None:
    from tcvom.io import AlphaWriter
    from tcvom.io.atomic import FOREIGN_TEMPORARY_AGE_S, temporary_writer

    dead, dead_tmp = _writer_process(tmp_path)
    live, live_tmp = _writer_process(tmp_path)
    try:
        os.kill(dead.pid, signal.SIGKILL)
        dead.wait()
        assert dead_tmp.is_file()
        dead_writer, live_writer = temporary_writer(dead_tmp), temporary_writer(live_tmp)
        assert dead_writer is not None and live_writer is not None
        assert dead_writer[1] == dead.pid and dead_writer[0] == live_writer[0]  # this host
        foreign_old = tmp_path / ".alpha.1006.tcvom-tmp-farmnode_7-4242-deadbeef.exr"
        foreign_new = tmp_path / ".alpha.1007.tcvom-tmp-farmnode_7-4243-deadbeef.exr"
        for path in (foreign_old, foreign_new):
            path.write_bytes(b"x")
        old = time.time() - FOREIGN_TEMPORARY_AGE_S - 60
        os.utime(foreign_old, (old, old))
        writer = AlphaWriter(tmp_path)  # a resumed run opening the output folder
        assert sorted(writer.removed_temporaries) == sorted([dead_tmp, foreign_old])
        assert not dead_tmp.exists() and not foreign_old.exists()
        assert live_tmp.is_file() and foreign_new.is_file()  # a live writer, a recent one on another host
    finally:
        live.kill()
        live.wait()


def test_the_writer_of_a_temporary_is_read_whatever_its_host_name(tmp_path: Path) -> None:
    """A fully qualified host name (farm01.example.com, name.local) used to make a temporary
    unrecognisable, so a killed writer's leftover stayed forever."""
    from tcvom.io import AlphaWriter
    from tcvom.io.atomic import FOREIGN_TEMPORARY_AGE_S, temporary_name, temporary_writer

    names = {".alpha.1004.tcvom-tmp-farm01.example.com-12345-abcd1234.exr": ("farm01.example.com", 12345),
             ".alpha.1005.tcvom-tmp-farm_02-7-abcd1234.exr": ("farm_02", 7),
             ".alpha.1006.tcvom-tmp-4242-abcd1234.exr": (None, 4242),  # no host: an older version
             ".alpha.1007.tcvom-tmp-notes.txt": None, "alpha.1008.exr": None}
    assert {name: temporary_writer(Path(name)) for name in names} == names
    mine = temporary_writer(temporary_name(tmp_path / "alpha.1001.exr"))
    assert mine is not None and mine[1] == os.getpid() and "." not in str(mine[0])
    leftover = tmp_path / ".alpha.1004.tcvom-tmp-farm01.example.com-12345-abcd1234.exr"
    leftover.write_bytes(b"x")
    old = time.time() - FOREIGN_TEMPORARY_AGE_S - 60
    os.utime(leftover, (old, old))
    assert AlphaWriter(tmp_path).removed_temporaries == [leftover] and not leftover.exists()


def test_a_temporary_of_another_process_namespace_is_foreign(tmp_path: Path) -> None:
    """Containers (or cloned nodes) sharing one host name have their own process ids: a
    live writer's temporary in another namespace was removed as dead (its pid does not run
    here), failing that writer. Writers are named by host and namespace; the hosts' cleanup
    after a cancel names them the same way (it matched no name with a dot in the host)."""
    from tcvom.hosts import client as hostclient
    from tcvom.io import AlphaWriter
    from tcvom.io.atomic import _host, temporary_name, temporary_writer

    assert hostclient.writer_host() == _host()
    mine = temporary_writer(temporary_name(tmp_path / "alpha.1001.exr"))
    assert mine is not None and mine[0] == _host()
    name_only = _host().rsplit("_", 1)[0] if os.path.exists("/proc/self/ns/pid") else "elsewhere"
    dead = 2**22 + 17  # above Linux's pid_max: runs nowhere here
    other_namespace = tmp_path / f".alpha.1002.tcvom-tmp-{name_only}_1-{dead}-abcd1234.exr"
    this_namespace = tmp_path / f".alpha.1003.tcvom-tmp-{_host()}-{dead}-abcd1234.exr"
    for path in (other_namespace, this_namespace):
        path.write_bytes(b"x")
    assert AlphaWriter(tmp_path).removed_temporaries == [this_namespace]
    assert other_namespace.is_file()
    assert hostclient.remove_temporaries(str(tmp_path), dead) == 0  # only this namespace's writer's


def test_a_long_frame_name_gets_a_temporary_the_file_system_takes(tmp_path: Path) -> None:
    """The temporary added about 50 characters to a frame's name: a legal 230-character
    name failed with "File name too long" on its temporary."""
    from tcvom.io.atomic import atomic_output, temporary_name, temporary_writer

    final = tmp_path / ("a" * 230 + ".1001.exr")
    temporary = temporary_name(final)
    assert len(temporary.name.encode()) <= 255 and temporary.suffix == ".exr"
    from tcvom.io.atomic import _host

    assert temporary_writer(temporary) == (_host(), os.getpid())
    with atomic_output(final) as tmp:
        tmp.write_bytes(b"frame")
    assert final.read_bytes() == b"frame"


def test_a_folder_on_a_read_only_mount_is_said_to_be_so(tmp_path: Path) -> None:
    """Crash QA: `farm plan` on a read-only mount said "Permission denied" (a plan writes
    nothing and checks the folder with os.access), where `run` said "Read-only file system"."""
    import subprocess

    from tcvom.errors import OutputError
    from tcvom.io.atomic import ensure_writable_folder

    mount = tmp_path / "ro"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("no tmpfs can be mounted here (needs root)")
    try:
        (mount / "done").mkdir()
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True, capture_output=True)
        for create in (False, True):
            with pytest.raises(OutputError, match="Read-only file system"):
                ensure_writable_folder(mount / "done" / "trimaps", create=create)
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)
