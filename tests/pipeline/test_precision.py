"""One precision option for every back-end (issue 21, point 12): what each back-end and
device accepts, the command line refusing half precision where it cannot pay, and the
hosts passing it through."""

from __future__ import annotations

import pytest

from tcvom.errors import InputError
from tcvom.hosts.client import RunSpec, build_run_args
from tcvom.pipeline.methods import cpu_has_fast_bf16, resolve_precision


def test_auto_is_fp16_for_tensorrt_and_fp32_elsewhere():
    assert resolve_precision("auto", "tensorrt", "cuda") == "fp16"
    assert resolve_precision("auto", "torch", "cpu") == "fp32"
    assert resolve_precision("auto", "onnxruntime", "cpu") == "fp32"
    for precision in ("fp32", "fp16", "bf16"):
        assert resolve_precision(precision, "tensorrt", "cuda") == precision
        assert resolve_precision(precision, "torch", "cuda:1") == precision


def test_refusals_name_what_to_use():
    with pytest.raises(InputError, match="float32 ONNX export") as err:
        resolve_precision("bf16", "onnxruntime", "cpu")
    assert "--precision fp32" in (err.value.hint or "")
    with pytest.raises(InputError, match="fp16 on the CPU"):
        resolve_precision("fp16", "torch", "cpu")
    with pytest.raises(InputError, match="precision must be one of"):
        resolve_precision("int8", "torch", "cpu")
    if cpu_has_fast_bf16():
        assert resolve_precision("bf16", "torch", "cpu") == "bf16"
    else:
        with pytest.raises(InputError, match="slower than fp32"):
            resolve_precision("bf16", "torch", "cpu")


def test_command_line_refuses_fp16_on_cpu_with_exit_2(tmp_path, capsys):
    cli = pytest.importorskip("tcvom.cli")
    # refused before any file is opened (the plate does not exist)
    code = cli.main(["matte", "--plate", str(tmp_path / "p.####.png"), "--trimaps", str(tmp_path / "t.####.png"),
                     "--out", str(tmp_path / "out"), "--method", "tcvom", "--precision", "fp16",
                     "--progress", "none"])
    assert code == 2
    err = capsys.readouterr().err
    assert "fp16 on the CPU" in err and "--precision fp32" in err and "--dtype" not in err


def test_hosts_pass_the_precision():
    spec = RunSpec(plate="/p/plate.####.exr", out="/o", keyframes={1: "/k.png"}, precision="bf16")
    args = build_run_args(["tcvom"], spec)
    assert args[args.index("--precision") + 1] == "bf16"
    assert "--precision" not in build_run_args(["tcvom"], RunSpec(plate="/p", out="/o", keyframes={1: "/k"}))
