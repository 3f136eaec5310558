"""benchmarks/gpu_check.py on the CPU with --small (issue 18): every section of the device
check runs (CUDA-only variants skip with their reason), matches the golden outputs in fp32,
measures half precision, and writes its JSON; ``--budget-s`` skips what would end past it.
The full run takes several CPU minutes, so it is marked slow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _check(out: Path, shared_dir: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    done = subprocess.run([sys.executable, str(BENCHMARKS / "gpu_check.py"), "--out", str(out), "--device", "cpu",
                           "--small", "--reference", str(shared_dir / "reference"), *extra],
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-2000:]
    return done, json.loads((out / "gpu_check.json").read_text())


@pytest.mark.slow
def test_gpu_check_small_on_cpu(tmp_path, shared_dir):
    done, results = _check(tmp_path, shared_dir)
    assert results["failed"] == {}, results["failed"]
    assert results["correctness"]["gca_tam"]["ok"] and results["correctness"]["gca"]["ok"]
    assert results["half_precision"]["float16"]["ok"]  # bf16 is reported, not required
    assert results["stm_golden"]["ok"]
    for dtype in ("float16", "bfloat16"):
        half = results["stm_half"][dtype]
        assert "skipped" in half or half["label_agreement"] > 0.9
    assert results["gca_tam_session"]["small/float32"]["s_per_frame"] > 0
    assert results["stm_step"]["s_per_step"] > 0
    assert results["finetune"]["steps"] == 1 and results["finetune"]["finite_losses"]
    e2e = results["end_to_end"]
    assert e2e["frames"] == 6 and e2e["frames_per_s"] > 0 and "OpenImageIO" in e2e["io"]
    for variant in ("cuda_graphs", "compile"):
        assert "CUDA" in results[variant]["skipped"]
    assert "GCA+TAM cached small/float32" in done.stdout and "end to end 6 frames" in done.stdout


@pytest.mark.slow
def test_gpu_check_end_to_end_in_memory(tmp_path, shared_dir):
    """The device has no OpenImageIO: the end-to-end section then runs on frames in memory."""
    _, results = _check(tmp_path, shared_dir, "--sections", "end_to_end", "--in-memory")
    e2e = results["end_to_end"]
    assert e2e["alphas_encoded"] == 6 and e2e["frames_per_s"] > 0 and "in memory" in e2e["io"]
    assert set(results["section_s"]) == {"end_to_end"}


def test_gpu_check_budget_skips_what_would_end_past_it(tmp_path, shared_dir):
    done, results = _check(tmp_path, shared_dir, "--budget-s", "0", "--sections", "correctness", "stm_step")
    assert set(results["skipped"]) == {"correctness", "stm_step"}
    assert all(why.startswith("budget") for why in results["skipped"].values())
    assert "correctness" not in results and "| stm_step | skipped: budget" in done.stdout
