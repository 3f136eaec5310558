"""The job manifest: created once, compared by every later task, refused on a mismatch."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from tcvom import __version__
from tcvom.farm.locks import publish_exclusive
from tcvom.farm.manifest import (
    SettingsMismatchError,
    claim,
    file_digest,
    manifest_path,
    read_manifest,
)
from tcvom.farm.outputs import is_complete
from tcvom.io import write_image

SETTINGS = {"stage": "matte", "method": "classical", "backend": "torch", "weights": None, "shot": "1001-1008"}


def test_manifest_path_is_hidden_beside_the_sequence(tmp_path: Path) -> None:
    assert manifest_path(str(tmp_path / "alpha.####.exr")) == tmp_path / ".alpha.tcvom.json"
    assert manifest_path(str(tmp_path / "sh010_matte_v002.%04d.png")) == tmp_path / ".sh010_matte_v002.tcvom.json"


def test_first_claim_records_the_settings_later_ones_compare(tmp_path: Path) -> None:
    pattern = str(tmp_path / "alpha.####.exr")
    path = claim(pattern, SETTINGS, info={"plate": "/mnt/a/plate.####.exr"})
    data = json.loads(path.read_text())
    assert data["settings"]["method"] == "classical" and data["settings"]["version"] == __version__
    assert data["info"]["plate"] == "/mnt/a/plate.####.exr" and data["info"]["host"]
    # same settings, other info (another host, another mount): accepted, nothing rewritten
    before = path.read_bytes()
    claim(pattern, dict(SETTINGS), info={"plate": "/Volumes/a/plate.####.exr"})
    assert path.read_bytes() == before
    with pytest.raises(SettingsMismatchError, match="method: 'classical' recorded, 'tcvom' now") as info:
        claim(pattern, {**SETTINGS, "method": "tcvom"})
    assert info.value.exit_code == 2 and str(path) in str(info.value)
    assert read_manifest(path).settings["method"] == "classical"
    # a task that rewrites the whole shot replaces the record
    claim(pattern, {**SETTINGS, "method": "tcvom"}, replace=True)
    assert read_manifest(path).settings["method"] == "tcvom"


def test_a_broken_manifest_is_an_input_error(tmp_path: Path) -> None:
    pattern = str(tmp_path / "alpha.####.exr")
    manifest_path(pattern).write_text('{"settings": ')
    with pytest.raises(Exception, match="not valid JSON") as info:
        claim(pattern, SETTINGS)
    assert info.value.exit_code == 2


def test_file_digest(tmp_path: Path) -> None:
    (tmp_path / "w.pth").write_bytes(b"abc")
    assert file_digest(tmp_path / "w.pth") == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def _publish(args: tuple[str, str, int]) -> bool:
    path, barrier_file, index = args
    while not Path(barrier_file).exists():  # start together
        pass
    return publish_exclusive(path, json.dumps({"writer": index, "padding": "x" * 200_000}))


def test_two_processes_racing_to_create_a_manifest(tmp_path: Path) -> None:
    target, barrier = tmp_path / "m.json", tmp_path / "go"
    ctx = multiprocessing.get_context("spawn")
    for _round in range(3):
        target.unlink(missing_ok=True)
        barrier.unlink(missing_ok=True)
        with ctx.Pool(2) as pool:
            pending = pool.map_async(_publish, [(str(target), str(barrier), i) for i in range(2)])
            barrier.touch()
            created = pending.get(timeout=60)
        assert sorted(created) == [False, True]  # exactly one winner
        data = json.loads(target.read_text())  # complete, never a mixture
        assert data["writer"] == created.index(True)
    assert not [p for p in tmp_path.iterdir() if "tcvom-tmp" in p.name]


def test_complete_means_the_whole_image_decodes(tmp_path: Path) -> None:
    path = tmp_path / "alpha.1001.exr"
    write_image(path, np.linspace(0, 1, 96 * 64, dtype=np.float32).reshape(64, 96), channels=("A",))
    assert is_complete(path, width=96, height=64, channels=1)
    assert not is_complete(path, width=64, height=96, channels=1)
    assert not is_complete(path, width=96, height=64, channels=4)
    assert not is_complete(tmp_path / "missing.exr", width=96, height=64)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 9 // 10])  # the header still opens
    assert not is_complete(path, width=96, height=64, channels=1)


def test_a_record_learns_a_moved_time_only_of_the_file_it_hashed(tmp_path: Path, monkeypatch) -> None:
    """A copied (touched) output's record learns its new time, so it is hashed once. Review QA:
    the time was read after the hash, so a file another run put there meanwhile (same size,
    other bytes) could be recorded as the old one and reused as it. The time is learnt only
    where the file is the same one before and after the hash."""
    import os

    from tcvom.farm import records as records_module
    from tcvom.farm.records import FrameRecords

    pattern = str(tmp_path / "alpha.####.exr")
    path = tmp_path / "alpha.1001.exr"
    path.write_bytes(b"first bytes")
    FrameRecords(pattern).write(1001, path, "key")
    recorded = json.loads(next((tmp_path / ".alpha.tcvom").rglob("1001.json")).read_text())
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched: same bytes
    assert FrameRecords(pattern).recorded_file(1001) == path
    learnt = json.loads(next((tmp_path / ".alpha.tcvom").rglob("1001.json")).read_text())
    assert learnt["mtime_ns"] == st.st_mtime_ns + 10**9 and learnt["sha256"] == recorded["sha256"]

    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2 * 10**9))
    real = records_module.as_recorded

    def replaced_while_hashing(state, file):
        same = real(state, file)
        other = tmp_path / "other.tmp"
        other.write_bytes(b"other bytez")  # another run's frame, the same size
        os.replace(other, file)
        return same

    monkeypatch.setattr(records_module, "as_recorded", replaced_while_hashing)
    FrameRecords(pattern).recorded_file(1001)
    monkeypatch.undo()
    assert json.loads(next((tmp_path / ".alpha.tcvom").rglob("1001.json")).read_text())["mtime_ns"] == \
        learnt["mtime_ns"]  # not the new file's time
    assert FrameRecords(pattern).recorded_file(1001) is None  # its bytes are not the recorded ones


@pytest.mark.parametrize("named", ["absolute", "relative", "beside"])
def test_a_record_naming_another_file_deletes_nothing(tmp_path: Path, named: str) -> None:
    """Safety QA: a record whose "file" named a path (absolute, or ../..) with that file's
    size and hash made a whole-shot rerun prune it, and a frame written again remove it as
    its "older output": any readable file on the disk could be deleted. Code review: or
    another file of the output's folder (a record's file is its frame's, in any format)."""
    import hashlib
    import os

    from tcvom.farm.records import FrameRecords

    out = tmp_path / "out"
    out.mkdir()
    victim = (out if named == "beside" else tmp_path / "victim") / "comp_v012.nk"
    victim.parent.mkdir(exist_ok=True)
    victim.write_bytes(b"artist comp script")
    pattern = str(out / "alpha.####.exr")
    (out / "alpha.1001.exr").write_bytes(b"an alpha")
    FrameRecords(pattern).write(1001, out / "alpha.1001.exr", "key")
    record_file = next((out / ".alpha.tcvom").rglob("1001.json"))
    crafted = {**json.loads(record_file.read_text()),
               "file": {"absolute": str(victim), "relative": os.path.relpath(victim, out)}.get(named, victim.name),
               "size": victim.stat().st_size, "sha256": "sha256:" + hashlib.sha256(victim.read_bytes()).hexdigest()}
    for frame in (1001, 2000):
        (record_file.parent / f"{frame}.json").write_text(json.dumps({**crafted, "frame": frame}))
    records = FrameRecords(pattern)
    assert records.get(2000) is None and records.recorded_file(1001) is None  # no record: the frame is made again
    (out / "alpha.1001.exr").write_bytes(b"the alpha made again")
    assert records.write(1001, out / "alpha.1001.exr", "key") is None
    assert FrameRecords(pattern).prune([1001]) == []
    assert victim.read_bytes() == b"artist comp script"
    assert FrameRecords(pattern).recorded_file(1001) == out / "alpha.1001.exr"
    (out / "alpha.1001.png").write_bytes(b"the frame in another format")  # what a record may name
    FrameRecords(pattern.replace(".exr", ".png")).write(1001, out / "alpha.1001.png", "key")
    assert FrameRecords(pattern).recorded_file(1001) == out / "alpha.1001.png"
    # ... or in another spelling of the name, which shares the records (code review)
    assert FrameRecords(str(out / "alpha_####.exr")).recorded_file(1001) == out / "alpha.1001.png"
    (out / "1001.exr").write_bytes(b"a frame of a pattern that is the number alone")
    FrameRecords(str(out / "####.exr")).write(1001, out / "1001.exr", "key")
    assert FrameRecords(str(out / "####.exr")).recorded_file(1001) == out / "1001.exr"
