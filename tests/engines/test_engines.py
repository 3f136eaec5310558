"""The engines behind one interface: torch vs ONNX Runtime parity per part (fp32, 1e-4),
whole shots through the cached GCA+TAM session and the STM propagator on both back-ends
at a size that is not a multiple of 32, and the errors of missing back-ends and misuse."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tcvom.engines import available, cache_dir, open_engine, require
from tcvom.engines.onnxruntime_engine import OnnxRuntimeEngine, choose_providers
from tcvom.engines.torch_engine import TorchEngine
from tcvom.errors import EXIT_MISSING, InputError, MissingDependencyError
from tcvom.export.graphs import graph_specs, sample_inputs
from tcvom.io.hashing import state_sha256
from tcvom.io.sources import ArrayFrames
from tcvom.models import build_gca
from tcvom.models.bn_folding import FOLD_TOLERANCE

torch.set_num_threads(1)
FP32_TOLERANCE = 1e-4


def shot(frames: int, h: int, w: int, seed: int = 0) -> tuple[ArrayFrames, ArrayFrames]:
    rng = np.random.default_rng(seed)
    images, trimaps = {}, {}
    for i in range(frames):
        images[1001 + i] = rng.random((h, w, 3), dtype=np.float32)
        tri = np.zeros((h, w), np.uint8)
        tri[:, w // 2 + i :] = 255
        tri[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4 + i] = 128
        trimaps[1001 + i] = tri
    return ArrayFrames(images), ArrayFrames(trimaps)


def test_torch_engine_runs_the_model_parts(gca_model) -> None:
    engine = TorchEngine(gca_model)
    assert engine.network == "gca_tam" and engine.graphs == ("part_a", "part_b")
    feed = sample_inputs(gca_model, 64, 96, seed=3)
    out = engine.infer("part_a", feed["part_a"])
    with torch.no_grad():
        want = gca_model.encode(feed["part_a"]["x"])
    assert list(out) == ["features", "shortcut1", "shortcut2", "shortcut3", "unknown"]
    # BatchNorms folded (the default) on a copy: the same to 1e-5 of the output's size
    assert engine.fold_bn and engine.model is not gca_model
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in gca_model.modules())
    scale = max(1.0, float(want.features.abs().max()))
    assert float((out["features"] - want.features).abs().max()) <= FOLD_TOLERANCE * scale
    unfolded = TorchEngine(gca_model, fold_bn=False, channels_last=False).infer("part_a", feed["part_a"])
    torch.testing.assert_close(unfolded["features"], want.features, rtol=0, atol=0)
    with pytest.raises(InputError, match="missing"):
        engine.infer("part_b", {"features": out["features"]})
    with pytest.raises(InputError, match="CUDA graphs need a CUDA device"):
        TorchEngine(gca_model, cuda_graphs=True)


@pytest.mark.parametrize("network", ["gca_tam", "stm"])
def test_onnxruntime_matches_torch_per_part(network, gca_model, stm_model, gca_export, stm_export) -> None:
    """fp32 parity per graph at 96x64 (not the traced 64x64), 3 memory frames for STM; GCA+TAM's
    part B also with no unknown position and with every position unknown."""
    model, export = (gca_model, gca_export) if network == "gca_tam" else (stm_model, stm_export)
    ort_engine = OnnxRuntimeEngine(export, threads=1)
    torch_engine = TorchEngine(model)
    feeds = sample_inputs(model, 96, 64, memory_frames=3, seed=11)
    for spec in graph_specs(network):
        got = ort_engine.infer(spec.name, feeds[spec.name])
        want = torch_engine.infer(spec.name, feeds[spec.name])
        assert list(got) == list(want) == list(spec.output_names)
        for name in spec.output_names:
            assert got[name].shape == want[name].shape, (spec.name, name)
            diff = float((got[name] - want[name]).abs().max())
            assert diff <= FP32_TOLERANCE, f"{spec.name}.{name}: {diff}"
    if network == "gca_tam":  # the TAM gathers the unknown positions: none, and all of them
        for fill in (0.0, 1.0):
            feed = {**feeds["part_b"], "unknown": torch.full_like(feeds["part_b"]["unknown"], fill)}
            diff = float((ort_engine.infer("part_b", feed)["alpha"] - torch_engine.infer("part_b", feed)["alpha"]).abs().max())
            assert diff <= FP32_TOLERANCE, f"unknown {fill}: {diff}"


def test_gca_session_onnxruntime_matches_torch_on_a_shot(gca_model, gca_export) -> None:
    """Five frames of 70x50 (padded to 96x64) through the cached session, both back-ends."""
    from tcvom.matting.gca_session import GcaTamSession

    frames, trimaps = shot(5, 50, 70, seed=4)
    reference = GcaTamSession(frames, trimaps, gca_model)
    session = GcaTamSession(frames, trimaps, gca_model, engine=OnnxRuntimeEngine(gca_export, threads=1))
    assert session.engine.backend == "onnxruntime" and reference.engine.backend == "torch"
    worst = 0.0
    for (f, got), (g, want) in zip(session.alphas(), reference.alphas(), strict=True):
        assert f == g and got.shape == want.shape == (50, 70)
        worst = max(worst, float(np.abs(got - want).max()))
        unknown = trimaps.read(f) == 128
        assert np.abs(want[unknown] - 0.5).max() > 1e-3  # a real prediction, not a constant
    assert worst <= FP32_TOLERANCE
    assert session.encoded == reference.encoded == 5  # part A once per frame on both


def test_stm_propagator_onnxruntime_matches_torch(stm_model, stm_export) -> None:
    from tcvom.propagation.scheduler import KeyframeSchedule
    from tcvom.propagation.stm import StmPropagator

    frames, trimaps = shot(4, 40, 56, seed=2)
    keyframes = {1001: trimaps.read(1001)}
    (pass_,) = KeyframeSchedule(range(1001, 1005), [1001]).passes
    reference = dict(StmPropagator(stm_model).probabilities(frames, keyframes, pass_))
    engine = OnnxRuntimeEngine(stm_export, threads=1)
    got = dict(StmPropagator(stm_model, engine=engine).probabilities(frames, keyframes, pass_))
    assert list(got) == list(reference) == [1001, 1002, 1003, 1004]
    for f in got:
        assert got[f].shape == (3, 40, 56)
        assert float(np.abs(got[f] - reference[f]).max()) <= FP32_TOLERANCE, f
    with pytest.raises(InputError, match="fine-tuning"):
        StmPropagator(stm_model, engine=engine, finetune_steps=5)
    with pytest.raises(InputError, match="gca_tam network, not STM"):
        StmPropagator(stm_model, engine=TorchEngine(build_gca(temporal=True)))


def test_open_engine_uses_a_given_export_and_checks_its_network(gca_model, stm_model, gca_export) -> None:
    engine = open_engine("onnxruntime", gca_model, export_dir=gca_export.folder)
    assert isinstance(engine, OnnxRuntimeEngine) and engine.providers == ["CPUExecutionProvider"]
    made_from = state_sha256(gca_model)
    assert isinstance(open_engine("onnxruntime", gca_model, export_dir=gca_export.folder, weights_sha256=made_from),
                      OnnxRuntimeEngine)
    # an export of other weights would matte with them, under this file's name in the provenance
    with pytest.raises(InputError, match="made from other weights") as refused:
        open_engine("onnxruntime", gca_model, export_dir=gca_export.folder, weights_sha256="0" * 64)
    assert str(gca_export.path) in str(refused.value)
    with pytest.raises(InputError, match="no stm export"):
        open_engine("onnxruntime", stm_model, export_dir=gca_export.folder)
    assert isinstance(open_engine("torch", stm_model), TorchEngine)
    with pytest.raises(InputError, match="back-end must be one of"):
        open_engine("openvino", stm_model)


def test_onnxruntime_providers() -> None:
    assert choose_providers("cpu") == ["CPUExecutionProvider"]
    with pytest.raises(InputError, match="has no NoSuchExecutionProvider"):
        choose_providers("cpu", ["NoSuchExecutionProvider"])


@pytest.mark.skipif(available()["tensorrt"], reason="TensorRT is installed here")
def test_missing_tensorrt_is_a_clear_exit_3(gca_model, tmp_path) -> None:
    import sys

    from tcvom.pipeline.methods import make_propagator, make_session

    assert "tensorrt" not in sys.modules  # nothing imported it at module level
    with pytest.raises(MissingDependencyError, match=r"tcvom\[tensorrt\]") as info:
        require("tensorrt")
    assert info.value.exit_code == EXIT_MISSING
    frames, trimaps = shot(1, 32, 32)
    weights = tmp_path / "w.pth"
    with pytest.raises(MissingDependencyError, match=r"tcvom\[tensorrt\]"):
        make_session("tcvom", frames, trimaps, weights=weights, backend="tensorrt")
    with pytest.raises(MissingDependencyError, match=r"tcvom\[tensorrt\]"):
        make_propagator("tcvom", weights=weights, backend="tensorrt")


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("TCVOM_CACHE_DIR", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    (tmp_path / "notes.txt").write_text("x")
    monkeypatch.setenv("TCVOM_CACHE_DIR", str(tmp_path / "notes.txt"))  # export QA: the setting went unnamed
    with pytest.raises(InputError, match=r"\$TCVOM_CACHE_DIR names a file, not a folder"):
        cache_dir()
    monkeypatch.delenv("TCVOM_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "tcvom"
