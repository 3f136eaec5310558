"""The TensorRT back-end's parts that need no TensorRT: resolution tiers and unsupported
sizes, optimisation profiles, engine cache keys, cache invalidation (another GPU, another
TensorRT version, another ONNX file, a broken sidecar), and the error without TensorRT.
A real build runs only where TensorRT and a GPU are (markers ``tensorrt`` and ``gpu``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tcvom.engines import available
from tcvom.engines.tensorrt_engine import (
    MEMORY_FRAMES,
    TIERS,
    BuildKey,
    build_key,
    choose_tier,
    engine_path,
    memory_count,
    profile_shapes,
    stale_reason,
)
from tcvom.errors import InputError, MissingDependencyError
from tcvom.export import ExportManifest, graph_spec


def fake_export(tmp_path: Path, network: str = "stm", digest: str = "a" * 64) -> ExportManifest:
    from tcvom.export import graph_specs

    graphs = {s.name: {"file": f"{network}.{s.name}.onnx", "sha256": digest} for s in graph_specs(network)}
    return ExportManifest(tmp_path / f"{network}.json", network, {"network": network, "graphs": graphs})


@pytest.mark.parametrize(
    ("size", "tier"),
    [((1088, 1920), "2k"), ((1920, 1088), "2k"), ((1088, 2048), "2k"), ((2176, 3840), "4k"), ((2176, 4096), "4k")],
)
def test_tiers_pick_the_smallest_that_fits(size, tier) -> None:
    assert choose_tier(*size).name == tier


def test_unsupported_resolution_is_refused() -> None:
    with pytest.raises(InputError, match=r"8192x4352 is larger than the largest TensorRT profile \(4k"):
        choose_tier(4352, 8192)


def test_profiles_cover_the_tier_and_memory_frames() -> None:
    part_a = profile_shapes(graph_spec("gca_tam", "part_a"), TIERS[0])
    assert part_a == {"x": ((1, 6, 32, 32), (1, 6, 1088, 1920), (1, 6, 2048, 2048))}
    read = profile_shapes(graph_spec("stm", "read_decode"), TIERS[1], (1, 4, 16))
    assert read["mem_key"] == ((2, 128, 1, 2, 2), (2, 128, 4, 136, 240), (2, 128, 16, 256, 256))
    assert read["r2"] == ((1, 256, 8, 8), (1, 256, 544, 960), (1, 256, 1024, 1024))
    with pytest.raises(InputError, match="memory frames"):
        profile_shapes(graph_spec("stm", "memory_encode"), TIERS[0], (4, 2, 8))


def test_memory_count() -> None:
    spec = graph_spec("stm", "read_decode")
    feed = {"mem_key": torch.zeros(2, 128, 7, 2, 2)}
    assert memory_count(spec, feed) == 7
    assert memory_count(graph_spec("stm", "memory_encode"), {"frames": torch.zeros(3, 3, 32, 32)}) == 3
    assert memory_count(graph_spec("gca_tam", "part_a"), {"x": torch.zeros(1, 6, 32, 32)}) is None


def key_for(tmp_path: Path, **changes: str) -> BuildKey:
    args = {"gpu": "NVIDIA H100", "tensorrt_version": "10.9.0", "precision": "fp16", "digest": "a" * 64}
    args.update(changes)
    export = fake_export(tmp_path, digest=args.pop("digest"))
    precision = args.pop("precision")
    return build_key(export, "read_decode", TIERS[0], precision, **args)


def test_cache_key_changes_with_everything_it_depends_on(tmp_path) -> None:
    base = key_for(tmp_path)
    assert base.digest() == key_for(tmp_path).digest()  # stable
    others = [
        key_for(tmp_path, gpu="NVIDIA L40S"),
        key_for(tmp_path, tensorrt_version="10.10.0"),
        key_for(tmp_path, digest="b" * 64),
        key_for(tmp_path, precision="fp32"),
        build_key(fake_export(tmp_path), "read_decode", TIERS[1], "fp16", gpu="NVIDIA H100", tensorrt_version="10.9.0"),
        build_key(fake_export(tmp_path), "read_decode", TIERS[0], "fp16", gpu="NVIDIA H100", tensorrt_version="10.9.0",
                  memory_frames=(1, 4, 32)),
    ]
    digests = {k.digest() for k in others}
    assert len(digests) == len(others) and base.digest() not in digests
    assert base.profile["mem_key"][2][2] == MEMORY_FRAMES[2]
    with pytest.raises(InputError, match="precision"):
        key_for(tmp_path, precision="int8")


def test_cache_invalidation(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TCVOM_CACHE_DIR", str(tmp_path / "cache"))
    key = key_for(tmp_path)
    path = engine_path(key)
    assert path.parent == tmp_path / "cache" / "tensorrt"
    assert path.name.startswith("stm.read_decode-2k-fp16-") and path.suffix == ".engine"
    assert stale_reason(path, key) == "not built yet"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"serialized engine")
    assert "description is missing" in stale_reason(path, key)
    sidecar = path.with_suffix(".json")
    sidecar.write_text(json.dumps(key.to_json()))
    assert stale_reason(path, key) is None
    # the same file name reached from another machine or TensorRT: its sidecar says so
    for changes, field in (({"gpu": "NVIDIA A6000"}, "gpu"), ({"tensorrt_version": "10.3.0"}, "tensorrt"),
                           ({"digest": "c" * 64}, "onnx_sha256")):
        sidecar.write_text(json.dumps(key_for(tmp_path, **changes).to_json()))
        reason = stale_reason(path, key)
        assert reason is not None and reason.startswith(f"it was built for {field} ")
    sidecar.write_text("{broken")
    assert "unreadable" in stale_reason(path, key)


@pytest.mark.skipif(available()["tensorrt"], reason="TensorRT is installed here")
def test_engine_without_tensorrt_names_the_extra(tmp_path) -> None:
    from tcvom.engines.tensorrt_engine import TensorRTEngine

    with pytest.raises(MissingDependencyError, match=r"pip install 'tcvom\[tensorrt\]'"):
        TensorRTEngine(fake_export(tmp_path))


@pytest.mark.gpu
@pytest.mark.tensorrt
@pytest.mark.slow
@pytest.mark.skipif(not (available()["tensorrt"] and torch.cuda.is_available()), reason="needs TensorRT and a GPU")
def test_tensorrt_matches_torch(stm_model, stm_export, tmp_path) -> None:
    """Builds fp32 engines of the STM graphs (then reuses them) and compares with torch."""
    from tcvom.engines.tensorrt_engine import TensorRTEngine
    from tcvom.engines.torch_engine import TorchEngine
    from tcvom.export.graphs import graph_specs, sample_inputs

    built: list[str] = []
    engine = TensorRTEngine(stm_export, precision="fp32", cache=tmp_path, log=built.append)
    engine.begin_shot(96, 64)
    assert len(built) == 3
    reference = TorchEngine(stm_model)
    feeds = sample_inputs(stm_model, 96, 64, memory_frames=3, seed=2)
    for spec in graph_specs("stm"):
        feed = {k: v.cuda() for k, v in feeds[spec.name].items()}
        got = engine.infer(spec.name, feed)
        want = reference.infer(spec.name, feeds[spec.name])
        for name in spec.output_names:
            assert float((got[name].cpu() - want[name]).abs().max()) <= 1e-3
    again = TensorRTEngine(stm_export, precision="fp32", cache=tmp_path, log=built.append)
    again.begin_shot(96, 64)
    assert len(built) == 3  # loaded from the cache, not rebuilt
