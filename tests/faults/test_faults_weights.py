"""Faults in weight files, back-ends and the other jobs (fault suite of issue 16): a weight
file that is missing, truncated, of another network or a malicious pickle; a back-end the
method cannot use; eval and preview given the wrong folders."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
from fault_helpers import Shot, expect, tcvom


class _Payload:
    """Unpickling this would create the file named in ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mknod if hasattr(os, "mknod") else open, (str(self.marker),))


def _tcvom_run(shot: Shot, *extra: str) -> list[str]:
    return [a if a != "classical" else "tcvom" for a in shot.run_args(*extra)]


def test_weight_file_missing(shot: Shot, capsys) -> None:
    result = tcvom(capsys, *_tcvom_run(shot, "--weights", str(shot.root / "stm.pth")))
    expect(result, 2, "stm.pth", "does not exist", "--weights", root=shot.root)


def test_weight_file_truncated(shot: Shot, capsys) -> None:
    import torch

    path = shot.root / "stm.pth"
    torch.save({"a": torch.zeros(64)}, path)
    path.write_bytes(path.read_bytes()[:40])
    result = tcvom(capsys, *_tcvom_run(shot, "--weights", str(path)))
    expect(result, 2, "stm.pth", "not a readable PyTorch checkpoint", "download it again", root=shot.root)


def test_unusable_matting_weights_are_refused_before_the_trimap_stage(shot: Shot, capsys) -> None:
    """A truncated --matting-weights file, or one of another network, was found by the matte
    stage, after the whole trimap stage (STM fine-tuning: hours on a real shot)."""
    import torch

    truncated = shot.root / "gca.pth"
    torch.save({"a": torch.zeros(64)}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:40])
    other = shot.root / "other.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, other)
    for path, said in ((truncated, "not a readable PyTorch checkpoint"), (other, "missing key")):
        result = tcvom(capsys, *_tcvom_run(shot, "--matting-weights", str(path)))
        expect(result, 2, path.name, said, root=shot.root)
        assert not shot.out.exists(), path.name


def test_matting_weights_of_the_right_network_that_do_not_fit_are_refused_before_the_trimap_stage(
        shot: Shot, gca_model, stm_model, capsys) -> None:
    """Weights QA: a GCA+TAM file with one tensor of another shape (or one missing) passed the
    early check, which read only its kind, and was refused after the trimap stage (5 minutes)."""
    import torch

    stm = shot.root / "stm.pth"
    torch.save(stm_model.state_dict(), stm)
    state = dict(gca_model.state_dict())
    name = next(k for k, v in state.items() if v.ndim == 4)
    wrong = shot.root / "gca_tam_reshaped.pth"
    torch.save({**state, name: torch.zeros(state[name].shape[0] + 1, *state[name].shape[1:])}, wrong)
    result = tcvom(capsys, *_tcvom_run(shot, "--weights", str(stm), "--matting-weights", str(wrong),
                                       "--finetune-steps", "0"))
    expect(result, 2, wrong.name, name, root=shot.root)
    assert not shot.out.exists()
    # Bases QA: STM weights as the matting weights said "pass the GCA+TAM weights", as if
    # no other base were taken
    result = tcvom(capsys, *_tcvom_run(shot, "--weights", str(stm), "--matting-weights", str(stm)))
    expect(result, 2, "an STM trimap-propagation checkpoint, not a matting network",
           "(GCA, FBA, DIM or Index, with the TAM or single-image)", root=shot.root)
    assert not shot.out.exists()


def test_no_matting_weights_anywhere_are_said_before_the_trimap_stage(shot: Shot, capsys, monkeypatch) -> None:
    """Host QA: `run --method tcvom` with STM weights and no matting weights anywhere ran the
    whole trimap stage first, then named `--weights FILE` (the STM's flag in `run`)."""
    import torch

    from tcvom.models.stm import build_stm

    monkeypatch.setenv("TCVOM_DATA_DIR", str(shot.root / "data"))
    monkeypatch.delenv("TCVOM_WEIGHTS", raising=False)
    stm = shot.root / "stm.pth"
    torch.save(build_stm().state_dict(), stm)
    result = tcvom(capsys, *_tcvom_run(shot, "--weights", str(stm)))
    expect(result, 3, "no GCA+TAM", "--matting-weights FILE", root=shot.root)
    assert not shot.out.exists()


def test_matte_refuses_weights_of_another_base_before_it_claims_the_folder(shot: Shot, capsys) -> None:
    """Bases QA: `matte --weights DIM_SINGLE.pth --base fba` was refused after the matte had
    claimed --out (a manifest recording base fba with the DIM file's digest, and a lock)."""
    import torch

    from tcvom.models.bases import build_matting

    dim = shot.root / "dim_single.pth"
    torch.save(build_matting("dim").state_dict(), dim)
    other = shot.root / "other.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, other)
    for path, extra, said in ((dim, ("--base", "fba"), "fba"), (other, (), "missing key")):
        args = [a if a != "classical" else "tcvom" for a in shot.matte_args("--weights", str(path), *extra)]
        result = tcvom(capsys, *args)
        expect(result, 2, path.name, said, root=shot.root)
        assert not shot.out.exists(), path.name


def test_malicious_pickle_never_runs(shot: Shot, capsys) -> None:
    marker = shot.root / "PWNED"
    path = shot.root / "evil.pth"
    with open(path, "wb") as handle:
        pickle.dump({"state_dict": _Payload(marker)}, handle, protocol=2)
    result = tcvom(capsys, *_tcvom_run(shot, "--weights", str(path)))
    expect(result, 2, "evil.pth", root=shot.root)
    assert not marker.exists()


def test_weights_of_another_network(shot: Shot, capsys) -> None:
    import torch

    path = shot.root / "other.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    result = tcvom(capsys, *_tcvom_run(shot, "--weights", str(path)))
    expect(result, 2, "other.pth", "do not fit the STM", "missing key", root=shot.root)


def test_zero_byte_weights(shot: Shot, capsys) -> None:
    path = shot.root / "empty.pth"
    path.write_bytes(b"")
    result = tcvom(capsys, *_tcvom_run(shot, "--weights", str(path)))
    expect(result, 2, "empty.pth", root=shot.root)


def test_tcvom_weights_variable_names_a_missing_file(shot: Shot, capsys, monkeypatch) -> None:
    monkeypatch.setenv("TCVOM_WEIGHTS", str(shot.root / "gone.pth"))
    result = tcvom(capsys, *shot.run_args("--method", "auto"))
    expect(result, 2, "gone.pth", "TCVOM_WEIGHTS", root=shot.root)


def test_classical_method_with_a_network_backend(shot: Shot, capsys) -> None:
    result = tcvom(capsys, *shot.run_args("--backend", "onnxruntime"))
    expect(result, 2, "classical method runs no network", "--method tcvom", root=shot.root)
    # refused before the stage plans: no plan event announces frames to compute
    result = tcvom(capsys, *shot.run_args("--backend", "onnxruntime", "--progress", "json"))
    assert result.code == 2 and '"event": "error"' in result.out and '"event": "plan"' not in result.out


def test_a_matte_that_auto_runs_classical_says_it_does_not_use_the_backend(shot: Shot, capsys) -> None:
    """QA: `matte --method auto --backend tensorrt` without matting weights ran the classical
    method, saying only that no weights were found: the back-end asked for was dropped
    without a word."""
    result = tcvom(capsys, *shot.matte_args("--method", "auto", "--backend", "onnxruntime"))
    expect(result, 0, "--backend onnxruntime is not used by the matte stage", "runs the classical method",
           root=shot.root)


def test_a_device_torch_cannot_use_is_refused_before_anything_is_written(shot: Shot, stm_model, capsys) -> None:
    """The trimap network loaded onto --device cuda (no CUDA here) or a typo ("gpu") with
    an "unexpected failure" traceback, exit 1 (the matte stage refused it)."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    weights = shot.root / "stm.pth"
    torch.save(stm_model.state_dict(), weights)
    for device, said in (("cuda", "CUDA was asked for (cuda) but no CUDA device is available"),
                         ("gpu", "unknown device 'gpu'")):
        out = shot.root / f"out-{device}"
        result = tcvom(capsys, "trimaps", "--plate", shot.plate, "--keyframes", shot.keyframes, "--out", str(out),
                       "--method", "tcvom", "--weights", str(weights), "--device", device, "--progress", "none")
        expect(result, 2, said, "--device cpu", root=shot.root)
        assert not out.exists()


def test_fine_tuning_on_an_exported_backend_is_refused_before_the_settings_are_recorded(shot: Shot, stm_model,
                                                                                        capsys) -> None:
    """Network QA: `--backend onnxruntime --finetune-steps 2` printed a plan, recorded those
    settings in the output's manifest (so a later farm task was refused against settings no
    frame was made with), and only then was refused."""
    pytest.importorskip("onnxruntime")
    import torch

    weights = shot.root / "stm.pth"
    torch.save(stm_model.state_dict(), weights)
    out = shot.root / "ort-finetune"
    result = tcvom(capsys, "trimaps", "--plate", shot.plate, "--keyframes", shot.keyframes, "--out", str(out),
                   "--method", "tcvom", "--weights", str(weights), "--backend", "onnxruntime", "--finetune-steps",
                   "2", "--progress", "json")
    expect(result, 2, "online fine-tuning changes the weights, and the onnxruntime back-end", "--finetune-steps 0",
           root=shot.root)
    assert '"event": "plan"' not in result.out and not out.exists()


def test_a_device_onnxruntime_cannot_use_is_refused_before_anything_is_written(shot: Shot, gca_factory,
                                                                              capsys) -> None:
    """Export QA: with --backend onnxruntime, --device gpu / mps was a traceback (exit 1),
    and --device cuda (no CUDA provider) was refused only after the trimap stage."""
    pytest.importorskip("onnxruntime")
    import torch

    matting = shot.root / "gca_tam.pth"
    torch.save(gca_factory().state_dict(), matting)
    for device, said in (("gpu", "unknown device 'gpu'"), ("mps", "unsupported device 'mps'"),
                         ("cuda", "this onnxruntime build has no CUDAExecutionProvider")):
        out = shot.root / f"ort-{device}"
        result = tcvom(capsys, "run", "--plate", shot.plate, "--keyframes", shot.keyframes, "--out", str(out),
                       "--method", "auto", "--matting-weights", str(matting), "--backend", "onnxruntime", "--device",
                       device, "--progress", "none")
        expect(result, 2, said, root=shot.root)
        assert not out.exists()


def test_tensorrt_without_tensorrt(shot: Shot, capsys) -> None:
    pytest.importorskip("torch")
    try:
        import tensorrt  # noqa: F401  # pyright: ignore[reportMissingImports]
    except ImportError:
        pass
    else:
        pytest.skip("TensorRT is installed here")
    from tcvom.engines import require
    from tcvom.errors import MissingDependencyError

    with pytest.raises(MissingDependencyError) as caught:
        require("tensorrt")
    assert caught.value.exit_code == 3 and "pip install" in str(caught.value)


def test_eval_of_a_folder_that_is_not_a_dataset(shot: Shot, capsys) -> None:
    (shot.root / "empty").mkdir()
    result = tcvom(capsys, "eval", "--data", str(shot.root / "empty"), "--predictions", str(shot.root / "empty"),
                   "--out", str(shot.root / "ev"), "--progress", "none")
    expect(result, 2, "empty", "FG_done", "--make-synthetic", root=shot.root)


def test_info_shows_a_weight_configuration_that_runs_stop_on(shot: Shot, capsys, monkeypatch) -> None:
    """`tcvom info` used to print "not found" and exit 0 where every run stops with exit 2."""
    import json

    monkeypatch.setenv("TCVOM_DATA_DIR", str(shot.root / "data"))
    monkeypatch.setenv("TCVOM_WEIGHTS", str(shot.root / "gone.pth"))
    result = tcvom(capsys, "info")
    assert result.code == 2 and "gone.pth" in result.out and "does not exist" in result.out, result.out
    monkeypatch.delenv("TCVOM_WEIGHTS")
    folder = shot.root / "data" / "weights"
    folder.mkdir(parents=True)
    (folder / "weights.json").write_text("{not json", encoding="utf-8")
    result = tcvom(capsys, "info", "--json")
    problems = json.loads(result.out)["weight_problems"]
    assert result.code == 2 and set(problems) >= {"gca_tam", "stm"}
    assert all("registry cannot be read" in text for text in problems.values())
    (folder / "weights.json").unlink()  # nothing configured: fine, nothing to fix
    result = tcvom(capsys, "info", "--json")
    assert result.code == 0 and json.loads(result.out)["weight_problems"] == {}


def test_export_dir_with_the_torch_backend_is_refused(shot: Shot, capsys) -> None:
    """--export-dir was read by no one with --backend torch: the run matted with torch as if
    the graphs were not there."""
    result = tcvom(capsys, *_tcvom_run(shot, "--export-dir", str(shot.root / "exported")))
    expect(result, 2, "--export-dir", "--backend torch", "--backend onnxruntime", root=shot.root)
    assert not list(shot.out.rglob("*.exr"))


def test_export_dir_without_the_export_is_refused_before_any_output(shot: Shot, capsys, shared_dir: Path) -> None:
    """A missing, mistyped or empty --export-dir was found when the first engine opened: the
    trimaps folder (or, with an export of STM only, every trimap) was made first."""
    pytest.importorskip("onnxruntime")
    (shot.root / "notes.txt").write_text("x", encoding="utf-8")
    (shot.root / "empty").mkdir()
    cases = [("gone", "does not exist"), ("notes.txt", "is not a folder"), ("empty", "no gca_tam export here")]
    for name, said in cases:
        result = tcvom(capsys, *_tcvom_run(shot, "--backend", "onnxruntime", "--export-dir", str(shot.root / name)))
        expect(result, 2, name, said, "tcvom export", root=shot.root)  # (gone, notes.txt: `tcvom export --out DIR`)
        assert not shot.out.exists(), name
    # an export of another matting network than the weights' (review: the trimaps were made first)
    import torch

    reference = shared_dir / "reference" / "tcvom_gca_tam_state_dict.tsv"
    keys = [line.split("\t")[0] for line in reference.read_text().splitlines() if line.strip()]
    torch.save({key: torch.zeros(1) for key in keys}, shot.root / "gca_tam.pth")  # named by its keys: GCA+TAM
    (shot.root / "empty" / "gca.json").write_text("{}", encoding="utf-8")  # the single-image network's
    result = tcvom(capsys, *_tcvom_run(shot, "--backend", "onnxruntime", "--export-dir", str(shot.root / "empty"),
                                       "--matting-weights", str(shot.root / "gca_tam.pth")))
    expect(result, 2, "gca_tam.json", "no gca_tam export here", "tcvom export", root=shot.root)
    assert not shot.out.exists()
    # ... and one of that network made from other weights (review: found by the engine, after the trimaps)
    import json

    from tcvom.export.graphs import graph_specs
    from tcvom.export.onnx_export import FORMAT

    (shot.root / "empty" / "gca_tam.json").write_text(json.dumps({
        "format": FORMAT, "network": "gca_tam",
        "graphs": {s.name: {"file": f"gca_tam.{s.name}.onnx", "sha256": "0" * 64} for s in graph_specs("gca_tam")},
        "weights": {"sha256": "0" * 64}}), encoding="utf-8")
    result = tcvom(capsys, *_tcvom_run(shot, "--backend", "onnxruntime", "--export-dir", str(shot.root / "empty"),
                                       "--matting-weights", str(shot.root / "gca_tam.pth")))
    expect(result, 2, "gca_tam.json", "made from other weights", root=shot.root)
    assert not shot.out.exists()
    # ... and one made from these weights whose graph files are gone (export QA: after the trimaps)
    from tcvom.io.hashing import file_sha256

    record = json.loads((shot.root / "empty" / "gca_tam.json").read_text(encoding="utf-8"))
    record["weights"]["sha256"] = file_sha256(shot.root / "gca_tam.pth")
    (shot.root / "empty" / "gca_tam.json").write_text(json.dumps(record), encoding="utf-8")
    result = tcvom(capsys, *_tcvom_run(shot, "--backend", "onnxruntime", "--export-dir", str(shot.root / "empty"),
                                       "--matting-weights", str(shot.root / "gca_tam.pth")))
    expect(result, 2, "gca_tam.part_a.onnx", "graph is missing", root=shot.root)
    assert not shot.out.exists()
    record["weights"]["sha256"] = "0" * 64
    (shot.root / "empty" / "gca_tam.json").write_text(json.dumps(record), encoding="utf-8")
    result = tcvom(capsys, "matte", "--plate", shot.plate, "--trimaps", shot.trimaps, "--out", str(shot.out),
                   "--method", "tcvom", "--matting-weights", str(shot.root / "gca_tam.pth"), "--backend", "onnxruntime",
                   "--export-dir", str(shot.root / "empty"))
    expect(result, 2, "gca_tam.json", "made from other weights", root=shot.root)
    assert not shot.out.exists()  # the matte stage alone made its folder first
    (shot.root / "empty" / "gca_tam.json").write_text("{}", encoding="utf-8")  # the matte's, not STM's
    result = tcvom(capsys, "trimaps", "--plate", shot.plate, "--keyframes", shot.keyframes, "--out", str(shot.out),
                   "--method", "tcvom", "--backend", "onnxruntime", "--export-dir", str(shot.root / "empty"))
    expect(result, 2, "stm.json", "no stm export here", root=shot.root)
    assert not shot.out.exists()


def test_weight_paths_that_are_folders_or_unreadable_say_so(shot: Shot, capsys) -> None:
    """A folder given as --weights was called missing; an unreadable file was called a
    corrupt download; both used to give exit codes that differed by command."""
    folder = shot.root / "weights"
    folder.mkdir()
    result = tcvom(capsys, *_tcvom_run(shot, "--weights", str(folder)))
    expect(result, 2, "is a folder", "TCVOM_WEIGHTS", root=shot.root)
    result = tcvom(capsys, "export", "--weights", str(shot.root / "gone.pth"), "--out", str(shot.root / "x"))
    expect(result, 2, "gone.pth", "does not exist", root=shot.root)  # as in run: exit 2, not 3
    if os.geteuid() == 0:
        return  # root reads a file whatever its mode
    import torch

    locked = shot.root / "locked.pth"
    torch.save({"a": torch.zeros(2)}, locked)
    locked.chmod(0)
    result = tcvom(capsys, "export", "--weights", str(locked), "--out", str(shot.root / "x"))
    expect(result, 2, "locked.pth", "permissions", root=shot.root)
    assert "download" not in result.err


def test_auto_names_single_image_weights_it_does_not_use(shot: Shot, capsys, monkeypatch) -> None:
    """`--base dim` with only single-image DIM weights registered fell back to the classical
    method saying that no weights were found."""
    import torch

    from tcvom.models.bases import build_matting

    data = shot.root / "data"
    monkeypatch.setenv("TCVOM_DATA_DIR", str(data))
    monkeypatch.delenv("TCVOM_WEIGHTS", raising=False)
    (data / "weights").mkdir(parents=True)
    torch.save(build_matting("dim").state_dict(), data / "weights" / "dim_single.pth")
    result = tcvom(capsys, *shot.matte_args("--method", "auto", "--base", "dim"))
    assert result.code == 0, result.err
    assert "only the single-image" in result.err and "--matting-weights" in result.err
    assert str(data / "weights" / "dim_single.pth") in result.err


def test_tcvom_names_the_single_image_weights_it_found_instead(shot: Shot, capsys, monkeypatch) -> None:
    """Bases QA: `--method tcvom --base fba` with only FBA single-image weights configured
    said no FBA weights were found in $TCVOM_WEIGHTS, which named an FBA file; and `auto`
    with only another base's single-image weights never named them."""
    import torch

    from tcvom.models.bases import build_matting

    monkeypatch.setenv("TCVOM_DATA_DIR", str(shot.root / "data"))
    fba = shot.root / "fba_single.pth"
    torch.save(build_matting("fba").state_dict(), fba)
    monkeypatch.setenv("TCVOM_WEIGHTS", str(fba))
    result = tcvom(capsys, *shot.matte_args("--method", "tcvom", "--base", "fba"))
    expect(result, 3, "no FBA+TAM", "only the single-image FBA matting baseline is (" + str(fba),
           "--matting-weights (`tcvom matte`: --weights)", root=shot.root)
    assert "the single-image the single-image" not in result.err
    dim = shot.root / "dim_single.pth"
    torch.save(build_matting("dim").state_dict(), dim)
    monkeypatch.setenv("TCVOM_WEIGHTS", str(dim))
    result = tcvom(capsys, *shot.matte_args("--method", "auto", "--base", "fba"))
    expect(result, 0, "no FBA+TAM (TCVOM video matting) weights found, but the single-image DIM matting baseline is ("
           + str(dim), root=shot.root)


def test_auto_names_another_bases_weights_it_does_not_use(shot: Shot, capsys, monkeypatch) -> None:
    """QA: with Index+TAM weights just added (or in $TCVOM_WEIGHTS), a matte without --base
    said "no GCA+TAM weights found ... install weights with `tcvom weights add FILE`"."""
    import torch

    from tcvom.models.bases import build_matting

    weights = shot.root / "index_tam.pth"
    torch.save(build_matting("index_tam").state_dict(), weights)
    monkeypatch.setenv("TCVOM_WEIGHTS", str(weights))
    result = tcvom(capsys, *shot.matte_args("--method", "auto"))
    expect(result, 0, "no GCA+TAM (TCVOM video matting) weights found, but Index+TAM", str(weights),
           "pass --base index to matte with them", root=shot.root)


def test_auto_names_every_other_base_with_weights(shot: Shot, capsys, monkeypatch) -> None:
    """Bases QA: with FBA+TAM and Index+TAM weights, `--base dim` named only FBA+TAM."""
    import torch

    from tcvom.models.bases import build_matting

    folder = shot.root / "weights"
    folder.mkdir()
    for network in ("fba_tam", "index_tam"):
        torch.save(build_matting(network).state_dict(), folder / f"{network}.pth")
    monkeypatch.setenv("TCVOM_WEIGHTS", str(folder))
    result = tcvom(capsys, *shot.matte_args("--method", "auto", "--base", "dim"))
    expect(result, 0, "no DIM+TAM (TCVOM video matting) weights found, but", "pass --base fba to matte with them",
           "pass --base index to matte with them", root=shot.root)


def test_long_torch_errors_are_cut_at_a_word_and_marked() -> None:
    from tcvom.weights.checkpoints import _clip

    text = "First sentence of the error. " + "word " * 100
    clipped = _clip(text, 100)
    assert clipped.endswith(" ...") and len(clipped) <= 104 and clipped.startswith("First sentence of the error.")
    assert _clip("short text") == "short text"


def test_a_registry_record_outside_its_folder_is_refused(shot: Shot, capsys, monkeypatch) -> None:
    """A hand-edited weights.json naming ../x.pth made runs use a file outside the folder."""
    import json

    import torch

    from tcvom.models.bases import build_matting

    data = shot.root / "data"
    monkeypatch.setenv("TCVOM_DATA_DIR", str(data))
    monkeypatch.delenv("TCVOM_WEIGHTS", raising=False)
    (data / "weights").mkdir(parents=True)
    torch.save(build_matting("gca_tam").state_dict(), data / "outside.pth")
    (data / "weights" / "weights.json").write_text(json.dumps(
        {"weights": [{"file": "../outside.pth", "kind": "gca_tam"}]}), encoding="utf-8")
    result = tcvom(capsys, *shot.matte_args("--method", "auto"))
    expect(result, 2, "weights.json", "'../outside.pth'", "tcvom weights add", root=shot.root)
    result = tcvom(capsys, "info", "--json")
    assert result.code == 2 and "../outside.pth" in json.loads(result.out)["weight_problems"]["gca_tam"]


def test_auto_with_matting_weights_only_gives_the_back_end_to_the_matte_stage(shot: Shot, gca_model, capsys,
                                                                             monkeypatch) -> None:
    """Only GCA+TAM weights configured, --backend onnxruntime: the trimap stage, made
    classical by auto, refused the back-end (exit 2, blaming a classical method nobody
    asked for); its notice said no weights at all were found; the result named one method."""
    import json

    import torch

    weights = shot.root / "gca_tam.pth"
    torch.save(gca_model.state_dict(), weights)
    monkeypatch.setenv("TCVOM_WEIGHTS", str(weights))
    monkeypatch.setenv("XDG_CACHE_HOME", str(shot.root / "cache"))  # the export of these weights goes there
    args = [a for a in shot.run_args() if a not in ("--method", "classical", "none")]
    args = [*args[:-1], "--backend", "onnxruntime", "--progress", "json"]
    result = tcvom(capsys, *args)
    assert result.code == 0, result.err
    events = [json.loads(line) for line in result.out.splitlines()]
    notices = [e["message"] for e in events if e["event"] == "message"]
    exporting = [m for m in notices if m.startswith(("exporting ", "checking "))]  # the export's first use, said
    assert exporting and exporting[0].startswith("exporting gca_tam to ONNX into "), notices
    notices = [m for m in notices if m not in exporting]
    assert len(notices) == 2 and notices[0].startswith("no STM (trimap propagation) weights found (looked in "), notices
    assert notices[1] == ("--backend onnxruntime is not used by the trimaps stage: it has no network weights, so it "
                          "runs the classical method")
    final = events[-1]
    assert final["event"] == "result" and final["job"] == "run"
    assert final["methods"] == {"trimaps": "classical", "alpha": "tcvom"}
    # the classical trimaps do not depend on the back-end: a rerun with torch reuses them
    result = tcvom(capsys, *[a if a != "onnxruntime" else "torch" for a in args])
    final = [json.loads(line) for line in result.out.splitlines()][-1]
    assert result.code == 0 and final["reused"]["trimaps"]["count"] == 4, result.out
    from tcvom import pipeline

    planned = pipeline.run(shot.plate, shot.out, keyframes=shot.keyframes, plan_only=True, progress="none")
    assert planned.methods == {"trimaps": "classical", "alpha": "tcvom"} and planned.method == "tcvom"


def test_a_network_back_end_with_no_weights_at_all_is_refused(shot: Shot, capsys) -> None:
    """With no weights, auto runs classical stages only: --backend onnxruntime had nothing to
    run and was ignored without a word."""
    args = [a for a in shot.run_args() if a not in ("--method", "classical")]
    result = tcvom(capsys, *args, "--backend", "onnxruntime")
    expect(result, 2, "no stage of this run has network weights", "--backend onnxruntime", root=shot.root)
    assert not shot.out.exists()


def test_a_matting_weight_path_that_does_not_exist_stops_the_run_before_its_trimaps(shot: Shot, capsys) -> None:
    result = tcvom(capsys, *shot.run_args("--method", "auto", "--matting-weights", str(shot.root / "nope.pth")))
    expect(result, 2, "nope.pth", "does not exist", root=shot.root)
    assert not shot.out.exists(), "the trimap stage ran first"


def test_weights_that_give_nan_never_write_a_matte(shot: Shot, gca_model, capsys) -> None:
    """Weights of finite values whose network overflows (damaged, or untrained: a freshly
    built GCA+TAM saved as it is) gave NaN alphas, written as frames with exit 0. (A file
    holding NaN itself is refused when it is loaded.)"""
    import torch

    state = {k: v.clone() for k, v in gca_model.state_dict().items()}
    name = next(k for k, v in state.items() if k.endswith("weight") and v.dim() == 4)
    state[name][0] = 3e38  # finite; the activations overflow to infinity
    weights = shot.root / "damaged.pth"
    torch.save(state, weights)
    result = tcvom(capsys, "matte", "--plate", shot.plate, "--trimaps", shot.trimaps, "--out", str(shot.out),
                   "--method", "tcvom", "--matting-weights", str(weights), "--progress", "none")
    expect(result, 2, "damaged.pth", "NaN or infinite", root=shot.root)
    assert not list(shot.out.glob("alpha.*.exr"))
    # RGBA: checked before the alpha is rounded as the file stores it (review: infinity became 1)
    result = tcvom(capsys, "matte", "--plate", shot.plate, "--trimaps", shot.trimaps, "--out", str(shot.out),
                   "--method", "tcvom", "--matting-weights", str(weights), "--output", "rgba", "--progress", "none")
    expect(result, 2, "damaged.pth", "NaN or infinite", root=shot.root)
    assert not list(shot.out.glob("alpha.*.exr"))
    # the ONNX export's parity check blamed itself ("this is an export bug", exit 1)
    result = tcvom(capsys, "export", "--weights", str(weights), "--out", str(shot.root / "onnx"))
    expect(result, 2, "damaged.pth", "NaN or infinite values in PyTorch", root=shot.root)
    assert "export bug" not in result.err


def test_matting_weights_given_for_the_trimaps_name_the_right_flag(shot: Shot, capsys) -> None:
    """QA: `run --weights INDEX_TAM.pth` (in `matte`, --weights is the matting file) gave a
    dump of 558 missing and 555 unexpected STM keys, with no word of --matting-weights."""
    import torch

    from tcvom.models.bases import build_matting

    weights = shot.root / "INDEX_TAM.pth"
    torch.save({"state_dict": build_matting("index_tam").state_dict()}, weights)
    result = tcvom(capsys, *shot.run_args("--method", "tcvom", "--weights", str(weights)))
    expect(result, 2, "INDEX_TAM.pth", "holds the Index+TAM (TCVOM video matting) network, not the STM",
           "run --matting-weights", root=shot.root)
    assert "missing" not in result.err


def test_weights_given_to_the_classical_method_are_said_unused(shot: Shot, capsys) -> None:
    """Docs QA: `--method classical --matting-weights FILE` ignored the file without a word
    (a user who meant the networks got classical mattes, exit 0); so were --base and
    --precision, which the classical method does not use either."""
    stm, gca = shot.root / "stm.pth", shot.root / "gca.pth"
    result = tcvom(capsys, *shot.run_args("--weights", str(stm), "--matting-weights", str(gca), "--frames", "1002"))
    assert result.code == 0, result.err
    for path in (stm, gca):  # once each, also with the out-of-date check of a --frames run
        assert result.err.count(f"does not use the weights {path}") == 1
    assert "the classical method runs no network, so the matte stage does not use the weights" in result.err
    result = tcvom(capsys, *shot.run_args("--base", "fba", "--precision", "fp16", "--frames", "1002"))
    assert result.code == 0, result.err
    assert "so the trimaps stage does not use --precision fp16" in result.err
    assert "so the matte stage does not use --base fba or --precision fp16" in result.err
