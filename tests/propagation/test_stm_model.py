"""The STM network: state-dict layout, loading, parts against the whole, hand-checked pieces."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from tcvom.errors import WeightsError
from tcvom.models.stm import STM, build_stm, load_stm_model, memory_read, soft_aggregation

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
MANIFEST = SHARED / "reference" / "stm_state_dict.tsv"
BENCH_STM = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_stm.py"


@pytest.fixture(scope="module")
def model() -> STM:
    torch.manual_seed(0)
    return build_stm()


def _read_manifest(path: Path) -> dict[str, list[int]]:
    rows = {}
    for line in path.read_text().splitlines():
        if line.strip():
            key, shape = line.split("\t")
            rows[key] = [int(d) for d in shape.strip("[]").split(",") if d.strip()]
    return rows


@pytest.mark.skipif(not MANIFEST.is_file(), reason=f"the reference manifest {MANIFEST} is absent")
def test_state_dict_matches_manifest_key_for_key(model: STM) -> None:
    manifest = _read_manifest(MANIFEST)
    state = model.state_dict()
    assert len(manifest) == 558
    assert set(state) == set(manifest)
    for key, shape in manifest.items():
        assert list(state[key].shape) == shape, key


def test_load_accepts_prefix_and_wrapper_and_is_exact(model: STM, tmp_path: Path) -> None:
    state = {k: v.clone() for k, v in model.state_dict().items()}
    # make the weights distinguishable from a fresh build
    state["Decoder.pred2.bias"] = torch.tensor([0.25, -0.5])
    prefixed = tmp_path / "dp.pth"
    torch.save({"module." + k: v for k, v in state.items()}, prefixed)
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"state_dict": state}, wrapped)
    for path in (prefixed, str(wrapped)):
        loaded = load_stm_model(path)
        assert not loaded.training
        for key, value in state.items():
            assert torch.equal(loaded.state_dict()[key], value), key
    from_dict = load_stm_model({"module." + k: v for k, v in state.items()})
    assert torch.equal(from_dict.Decoder.pred2.bias, state["Decoder.pred2.bias"])


def test_load_reports_missing_and_misshapen_keys(model: STM, tmp_path: Path) -> None:
    state = dict(model.state_dict())
    del state["KV_Q_r4.Key.weight"]
    state["Decoder.pred2.weight"] = torch.zeros(3, 256, 3, 3)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError) as info:
        load_stm_model(path)
    message = str(info.value)
    assert "KV_Q_r4.Key.weight" in message
    assert "Decoder.pred2.weight" in message
    assert str(path) in message
    with pytest.raises(WeightsError, match="does not exist"):
        load_stm_model(tmp_path / "absent.pth")


@torch.inference_mode()
def test_parts_composed_equal_whole_forward(model: STM) -> None:
    torch.manual_seed(1)
    frames = torch.randn(3, 3, 32, 48)
    probs = torch.softmax(torch.randn(3, 3, 32, 48), dim=1)
    query = torch.randn(1, 3, 32, 48)
    whole = model(frames, probs, query)
    keys, values = zip(
        *(model.memorize(frames[t : t + 1], probs[t : t + 1]) for t in range(3)), strict=True
    )
    key, value = torch.cat(keys, dim=2), torch.cat(values, dim=2)
    assert key.shape == (2, 128, 3, 2, 3)
    assert value.shape == (2, 512, 3, 2, 3)
    q_key, q_value, r3, r2 = model.encode_query(query)
    assert (
        q_key.shape == (1, 128, 2, 3) and r3.shape == (1, 512, 4, 6) and r2.shape == (1, 256, 8, 12)
    )
    parts = model.read_decode(key, value, q_key, q_value, r3, r2)
    assert whole.shape == (1, 3, 32, 48)
    torch.testing.assert_close(parts, whole, atol=1e-5, rtol=1e-5)


@torch.inference_mode()
def test_memorize_feeds_each_object_its_mask_and_the_other(model: STM) -> None:
    """Swapping the unknown and foreground channels swaps the two objects' keys."""
    torch.manual_seed(2)
    frame = torch.randn(1, 3, 32, 32)
    probs = torch.softmax(torch.randn(1, 3, 32, 32), dim=1)
    key, value = model.memorize(frame, probs)
    skey, svalue = model.memorize(frame, probs[:, [0, 2, 1]])
    torch.testing.assert_close(key[0], skey[1])
    torch.testing.assert_close(value[1], svalue[0])
    # the background channel is never read
    bkey, _ = model.memorize(frame, torch.cat([torch.zeros_like(probs[:, :1]), probs[:, 1:]], 1))
    torch.testing.assert_close(bkey, key)
    assert not torch.allclose(key[0], key[1])


def test_memory_read_is_a_convex_combination_over_all_memory() -> None:
    torch.manual_seed(3)
    mem_key = torch.randn(2, 8, 3, 2, 2)
    q_key = torch.randn(2, 8, 2, 2)
    # constant memory values read back exactly that constant
    out = memory_read(mem_key, torch.full((2, 4, 3, 2, 2), 0.75), q_key)
    torch.testing.assert_close(out, torch.full((2, 4, 2, 2), 0.75))
    # one dominant memory position (in the second memory frame) is read almost alone
    mem_key = torch.zeros(1, 8, 2, 2, 2)
    mem_key[0, :, 1, 0, 1] = 10.0
    values = torch.zeros(1, 4, 2, 2, 2)
    values[0, :, 1, 0, 1] = torch.tensor([1.0, 2.0, 3.0, 4.0])
    out = memory_read(mem_key, values, torch.ones(1, 8, 2, 2))
    np.testing.assert_allclose(out[0, :, 0, 0].numpy(), [1, 2, 3, 4], atol=1e-6)


def test_soft_aggregation_against_hand_values() -> None:
    p = torch.tensor([0.5, 0.25]).view(2, 1, 1)
    logit = soft_aggregation(p)
    # background = (1 - 0.5)(1 - 0.25) = 0.375; odds 0.6, 1, 1/3
    np.testing.assert_allclose(logit.flatten().numpy(), np.log([0.6, 1.0, 1 / 3]), rtol=1e-6)
    probs = torch.softmax(logit, dim=1).flatten().numpy()
    np.testing.assert_allclose(probs, np.array([0.6, 1.0, 1 / 3]) / (0.6 + 1 + 1 / 3), rtol=1e-6)
    # saturated inputs are clamped, so the log-odds stay finite
    assert torch.isfinite(soft_aggregation(torch.tensor([1.0, 0.0]).view(2, 1, 1))).all()


def test_blocked_memory_read_equals_one_block() -> None:
    torch.manual_seed(4)
    mem_key, mem_value = torch.randn(2, 16, 3, 5, 7), torch.randn(2, 8, 3, 5, 7)
    q_key = torch.randn(2, 16, 5, 7)
    whole = memory_read(mem_key, mem_value, q_key)
    for chunk in (1, 8, 34, 35, 100):
        torch.testing.assert_close(memory_read(mem_key, mem_value, q_key, chunk), whole)


def _official() -> ModuleType:
    """benchmarks/bench_stm.py: its ``official_*`` functions re-state the reference forwards."""
    spec = importlib.util.spec_from_file_location("bench_stm", BENCH_STM)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(BENCH_STM.parent))  # it imports its neighbours, as a script does
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH_STM.parent))
    return module


@pytest.mark.parametrize("engine", [False, True], ids=["eager", "torch-engine"])
def test_memorize_and_segment_equal_the_reference_computation(model: STM, engine: bool) -> None:
    """tcvom's memorize / read_decode (conv1 once per frame, convFM's query half and the
    skip branches once, in-place activations, a query-major affinity) against the
    reference's per-object computation (STM_NOTES.md sections 5-6, re-stated in the
    benchmark): the same log-odds up to float rounding, eager and through the default
    torch engine (BatchNorm folded, channels-last)."""
    official = _official()
    generator = torch.Generator().manual_seed(2)
    frames = torch.randn(3, 3, 64, 96, generator=generator)
    probs = torch.softmax(3 * torch.randn(3, 3, 64, 96, generator=generator), dim=1)
    query = torch.randn(1, 3, 64, 96, generator=generator)
    with torch.inference_mode():
        parts = [official.official_memorize(model, frames[t : t + 1], probs[t : t + 1]) for t in range(3)]
        want_key = torch.cat([k for k, _ in parts], dim=2)
        want_value = torch.cat([v for _, v in parts], dim=2)
        want = official.official_segment(model, query, want_key, want_value)
        if engine:
            from tcvom.engines.torch_engine import TorchEngine

            runner = TorchEngine(model)
            memory = runner.infer("memory_encode", {"frames": frames, "probs": probs})
            key, value = memory["key"], memory["value"]
            q = runner.infer("query_encode", {"frame": query})
            got = runner.infer("read_decode", {"mem_key": key, "mem_value": value, "q_key": q["key"],
                                               "q_value": q["value"], "r3": q["r3"], "r2": q["r2"]})["logits"]
        else:
            key, value = model.memorize(frames, probs)
            got = model.segment(query, key, value)
    torch.testing.assert_close(key, want_key, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(value, want_value, rtol=1e-5, atol=1e-5)
    assert got.shape == want.shape == (1, model.num_objects + 1, 64, 96)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.softmax(got, dim=1), torch.softmax(want, dim=1), rtol=0, atol=1e-5)
