"""benchmarks/gpu_check.py end to end on the CPU with --small (issue 18): the device check
runs, matches the golden outputs in fp32, measures half precision and writes its JSON.
About 1 CPU minute, so marked slow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.slow
def test_gpu_check_small_on_cpu(tmp_path, shared_dir):
    done = subprocess.run([sys.executable, str(BENCHMARKS / "gpu_check.py"), "--out", str(tmp_path), "--device",
                           "cpu", "--small", "--reference", str(shared_dir / "reference")],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((tmp_path / "gpu_check.json").read_text())
    assert results["correctness"]["gca_tam"]["ok"] and results["correctness"]["gca"]["ok"]
    assert results["half_precision"]["float16"]["ok"]  # bf16 is reported, not required
    assert results["gca_tam_session"]["small/float32"]["s_per_frame"] > 0
    assert results["stm_step"]["s_per_step"] > 0
    assert "GCA+TAM cached small/float32" in done.stdout
