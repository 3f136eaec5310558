"""`tcvom run --executor ray` on a local Ray instance gives the files of a local run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from farm_helpers import FRAMES, assert_same_files

from tcvom import pipeline
from tcvom.errors import InputError
from tcvom.io import read_image, write_image

pytestmark = pytest.mark.slow  # starting Ray takes several seconds


def test_ray_executor_equals_a_local_run(farm_shot, tmp_path: Path, capsys, caplog) -> None:
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'ray>=2.9')")
    local = pipeline.run(farm_shot.plate, tmp_path / "local", keyframes=farm_shot.keyframes, method="classical",
                         progress="none")
    import signal

    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    try:
        result = pipeline.run(farm_shot.plate, tmp_path / "ray", keyframes=farm_shot.keyframes, method="classical",
                              executor="ray", chunk=3, progress="none")
        capsys.readouterr()
        again = pipeline.run(farm_shot.plate, tmp_path / "ray", keyframes=farm_shot.keyframes, method="classical",
                             executor="ray", chunk=3, progress="json")
        events = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
        from tcvom.farm.ray_executor import run_with_ray

        # a worker's warning is said by the driver, as tcvom's (it reached stderr without its prefix)
        nan_plate = tmp_path / "nan"
        shutil.copytree(Path(farm_shot.plate).parent, nan_plate)
        pixels, _ = read_image(nan_plate / "plate.1003.exr")
        pixels[0, 0] = np.nan
        write_image(nan_plate / "plate.1003.exr", pixels, pixel_type="float")
        with caplog.at_level("WARNING", logger="tcvom"):
            run_with_ray(None, {"plate": str(nan_plate / "plate.####.exr"), "trimaps": farm_shot.trimaps,
                                "out": str(tmp_path / "nan_out"), "shot_range": "1001-1008", "method": "classical"},
                         FRAMES, chunk=8, progress="none")
        said = [r.getMessage() for r in caplog.records if r.name == "tcvom" and "NaN" in r.getMessage()]
        assert len(said) == 1 and "plate.1003.exr" in said[0], said
        missing = str(tmp_path / "gone" / "plate.####.exr")  # fails in the worker, not here
        with pytest.raises(InputError) as raised:
            run_with_ray(None, {"plate": missing, "trimaps": farm_shot.trimaps, "out": str(tmp_path / "bad"), "shot_range": "1001-1008",
                                "method": "classical"}, FRAMES, chunk=8, progress="none")
    finally:
        ray.shutdown()
        for number, handler in handlers.items():  # Ray's own SIGTERM handler (sys.exit) stopped later tests
            signal.signal(number, handler)
    assert result.method == "classical" and result.written == FRAMES == sorted(local.written)
    assert again.written == [] and again.skipped == FRAMES  # resumable through Ray too
    plans = {e["job"]: e for e in events if e["event"] == "plan"}  # as a local run announces them
    assert plans["trimaps"]["reused"]["trimaps"]["count"] == 8 and plans["matte"]["reused"]["alpha"]["count"] == 8
    assert_same_files(tmp_path / "ray" / "trimaps", tmp_path / "local" / "trimaps", expected=8)
    assert_same_files(tmp_path / "ray" / "alpha", tmp_path / "local" / "alpha", expected=8)
    assert type(raised.value).__module__ == "tcvom.errors" and "gone" in str(raised.value)  # the worker's own error
