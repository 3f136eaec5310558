"""A chunked run reads each weight file once per process: one load and one SHA-256 for
the whole job, not one of each per chunk (issue 21, point 10)."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

from tcvom import pipeline

_OPENED: Counter[str] = Counter()
_WATCHED: set[str] = set()


def _audit(event: str, args: tuple) -> None:
    if event == "open" and _WATCHED and isinstance(args[0], str | Path) and str(args[0]) in _WATCHED:
        _OPENED[str(args[0])] += 1


@pytest.fixture(scope="module", autouse=True)
def _opens_are_audited() -> None:
    sys.addaudithook(_audit)  # a hook cannot be removed; it counts only while _WATCHED is set


@pytest.mark.slow
def test_run_in_chunks_loads_and_hashes_each_weight_file_once(small_example, stm_model, gca_model,
                                                               tmp_path: Path) -> None:
    import torch

    stm, gca = tmp_path / "stm.pth", tmp_path / "gca_tam.pth"
    torch.save(stm_model.state_dict(), stm)
    torch.save(gca_model.state_dict(), gca)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    _WATCHED.update({str(stm), str(gca)})
    try:
        keys = [f"{f}={small_example.trimaps.replace('####', str(f))}" for f in (1001, 1004)]
        result = pipeline.run(small_example.plate, tmp_path / "out", keyframes=keys, shot_range="1001-1004",
                              method="tcvom", weights=stm, matting_weights=gca, chunk=2, progress="none")
    finally:
        _WATCHED.clear()
        torch.set_num_threads(threads)
    assert sorted(result.written) == [1001, 1002, 1003, 1004]  # 2 matte chunks
    # One torch.load and one SHA-256 (the job manifest's weights digest) per file; the matting
    # file is read once more for its kind before the trimap stage (a file the matte stage would
    # refuse is refused before the trimaps are computed: jobs._check_matting_file). Each read
    # opens the file once before torch.load, to tell TorchScript and safetensors files.
    assert dict(_OPENED) == {str(stm): 3, str(gca): 5}
