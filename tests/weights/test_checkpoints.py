"""Checkpoint reading, strict loading with named mismatches, identification, describe()."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch
from torch import nn

from tcvom.errors import InputError, MissingWeightsError, ReadError, WeightsError
from tcvom.io.hashing import file_sha256
from tcvom.weights import checkpoints


class Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3)
        self.bn = nn.BatchNorm2d(3)


def read_manifest_keys(path):
    return [line.split("\t")[0] for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("layout", ["flat", "wrapped", "module", "wrapped+module", "tutorial", "model+tensor",
                                    "net", "lightning", "own-name", "own-name+tensor"])
def test_read_state_dict_layouts(tmp_path, layout):
    """Training checkpoints as PyTorch's tutorial saves them keep a loss tensor beside the
    wrapped weights: they were taken for a flat state_dict of one tensor, "loss". QA: a
    `{"net": ...}` wrapper was said to hold "no tensors", and a Lightning checkpoint's
    `model.` prefix made every key missing."""
    state = Small().state_dict()
    obj = {f"module.{k}": v for k, v in state.items()} if "module" in layout or layout == "model+tensor" else dict(state)
    if layout == "net":
        obj = {"net": obj, "epoch": 7}
    elif layout == "lightning":
        obj = {"state_dict": {f"module.model.{k}": v for k, v in state.items()}, "epoch": 2, "global_step": 90}
    elif layout == "own-name":
        obj = {"ema_weights": obj, "step": 3, "optimizer": {"state": {}, "param_groups": []}}
    elif layout == "own-name+tensor":  # weights QA: a loss tensor beside it hid the one dict of tensors
        obj = {"weights": obj, "best_loss": torch.tensor(0.01)}
    elif "wrapped" in layout:
        obj = {"state_dict": obj, "epoch": 3}
    elif layout == "tutorial":
        obj = {"epoch": 3, "model_state_dict": obj, "optimizer_state_dict": {"state": {}, "param_groups": []},
               "loss": torch.tensor(0.0123)}
    elif layout == "model+tensor":
        obj = {"model": obj, "epoch": torch.tensor(5)}
    path = tmp_path / "w.pth"
    torch.save(obj, path)
    got = checkpoints.read_state_dict(path)
    assert list(got) == list(state)
    for k in state:
        assert torch.equal(got[k], state[k])
    checkpoints.load_into(Small(), got, what="small", path=path)


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nope.pth"
    with pytest.raises(WeightsError, match=r"nope\.pth") as caught:
        checkpoints.read_state_dict(path)
    assert caught.value.exit_code == 2  # a path the user names: bad input, as in every command


@pytest.mark.parametrize("kind", ["garbage", "truncated", "cut_early"])
def test_corrupt_file_is_a_read_error(tmp_path, kind):
    """API QA: a checkpoint cut to its first 5,000 bytes was "cannot be read (Invalid
    argument) (check the disk or network share it is on)"."""
    path = tmp_path / "bad.pth"
    if kind == "garbage":
        path.write_bytes(b"this is not a checkpoint" * 10)
    else:
        torch.save({"a": torch.zeros(100_000)} if kind == "cut_early" else Small().state_dict(), path)
        data = path.read_bytes()
        path.write_bytes(data[:5000] if kind == "cut_early" else data[: len(data) // 2])
    with pytest.raises(ReadError, match=r"bad\.pth") as err:
        checkpoints.read_state_dict(path)
    assert "truncated or corrupt" in str(err.value) and "disk" not in str(err.value)


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "obj.pth"
    torch.save({"weights": torch.zeros(2), "args": argparse.Namespace(lr=1)}, path)
    with pytest.raises(ReadError, match="other than tensors"):
        checkpoints.read_state_dict(path)


class _Payload:
    def __reduce__(self):
        import os

        return (os.system, ("echo ran > payload-ran",))


def test_a_pickle_that_would_run_code_is_refused_as_such(tmp_path, monkeypatch):
    """QA: a checkpoint whose pickle calls os.system was refused (nothing ran) but said to be
    "truncated or corrupt; download it again"."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pth"
    torch.save({"weights": torch.zeros(2), "x": _Payload()}, path)
    with pytest.raises(ReadError, match=r"other than tensors and is not loaded, for safety \(.*system") as err:
        checkpoints.read_state_dict(path)
    assert "download it again" not in str(err.value)
    assert not (tmp_path / "payload-ran").exists()


def test_no_tensors_is_a_weights_error(tmp_path):
    path = tmp_path / "empty.pth"
    torch.save({"epoch": 3}, path)
    with pytest.raises(WeightsError, match="no tensors"):
        checkpoints.read_state_dict(path)
    # networks QA: a training checkpoint of two sets (params, params_ema) "held no tensors"
    weights = {"conv.weight": torch.zeros(2, 2), "conv.bias": torch.zeros(2)}
    torch.save({"params": weights, "params_ema": weights}, path)
    with pytest.raises(WeightsError, match=r"holds 2 sets of weights \(params, params_ema\)") as caught:
        checkpoints.read_state_dict(path)
    assert "torch.save(torch.load(FILE, weights_only=True)[NAME], 'weights.pth'), NAME one of params, params_ema" \
        in str(caught.value.hint)


def test_load_into_lists_missing_unexpected_and_shapes():
    state = Small().state_dict()
    del state["conv.bias"]
    state["conv.weight"] = torch.zeros(4, 2, 3, 3)
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(WeightsError) as err:
        checkpoints.load_into(Small(), state, what="small", path="x.pth")
    text = str(err.value)
    assert "x.pth" in text and "small" in text
    assert "1 missing key(s): conv.bias" in text
    assert "1 unexpected key(s): extra.weight" in text
    assert "conv.weight [4, 2, 3, 3] (expected [3, 2, 3, 3])" in text


def test_long_lists_are_truncated():
    big = nn.Sequential(*[nn.Linear(1, 1) for _ in range(20)])
    with pytest.raises(WeightsError, match=r"40 missing key\(s\): .* and 32 more"):
        checkpoints.load_into(big, {"x": torch.zeros(1)}, what="big")


def test_non_finite_weights_are_refused():
    state = Small().state_dict()
    state["conv.weight"] = torch.full_like(state["conv.weight"], float("nan"))
    with pytest.raises(WeightsError, match="NaN"):
        checkpoints.load_into(Small(), state, what="small")


def test_identify_from_manifests(shared_dir):
    ref = shared_dir / "reference"
    gca_tam = {k: torch.zeros(1) for k in read_manifest_keys(ref / "tcvom_gca_tam_state_dict.tsv")}
    assert checkpoints.identify(gca_tam) == "gca_tam"
    assert checkpoints.identify({k: v for k, v in gca_tam.items() if not k.startswith("decoder.fam.")}) == "gca"
    stm = {f"module.{k}": torch.zeros(1) for k in read_manifest_keys(ref / "stm_state_dict.tsv")}
    assert checkpoints.identify(stm) == "stm"
    assert checkpoints.identify(Small().state_dict()) == "unknown"


def test_describe_gca_tam_file(tmp_path, capsys):
    from tcvom.models import build_gca

    path = tmp_path / "GCA_TAM.pth"
    model = build_gca(temporal=True)
    torch.save(model.state_dict(), path)
    info = checkpoints.describe(path)
    assert info["kind"] == "gca_tam" and info["loads"] is True and info["problem"] is None
    assert info["tensors"] == 584
    assert info["parameters"] == sum(v.numel() for v in model.state_dict().values())
    assert info["sha256"] == file_sha256(path) and len(info["sha256"]) == 64
    from tcvom.cli import main

    assert main(["info", "--weights", str(path)]) == 0  # surface QA: a file that loads said "problem: None"
    assert "problem" not in capsys.readouterr().out
    # A GCA+TAM file with one tensor of the wrong shape: identified, does not load, says why.
    state = model.state_dict()
    state["decoder.conv2.bias"] = torch.zeros(2)
    torch.save(state, path)
    info = checkpoints.describe(path)
    assert info["kind"] == "gca_tam" and info["loads"] is False
    assert "decoder.conv2.bias [2] (expected [1])" in info["problem"]
    # Bases QA: a GCA+TAM file missing part of its TAM was "the single-image GCA baseline"
    # with unexpected keys; it is a GCA+TAM file missing those keys
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("decoder.fam.query_conv.")}
    torch.save(state, path)
    info = checkpoints.describe(path)
    assert info["kind"] == "gca_tam" and info["loads"] is False
    assert "missing key(s): decoder.fam.query_conv.weight" in info["problem"], info["problem"]


def test_describe_unknown_file(tmp_path, capsys):
    """An unrelated file: `tcvom info --weights` exited 2 with "problem: None" and no word why."""
    from tcvom.cli import main

    path = tmp_path / "other.pth"
    torch.save(Small().state_dict(), path)
    info = checkpoints.describe(path)
    assert info["kind"] == "unknown" and info["loads"] is None and info["tensors"] == 7
    assert "match none of the networks tcvom runs" in info["problem"]
    assert main(["info", "--weights", str(path)]) == 2
    assert f"error: {path}: its keys match none of the networks" in capsys.readouterr().err
    # weights QA: the file given as `tcvom info FILE` was read as an image ("convert it to a type
    # OpenImageIO reads"); a checkpoint's name is identified as --weights does
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"error: {path}: its keys match none of the networks" in err and "OpenImageIO" not in err, err
    # bases QA: --weights with a second file (a glob of two) described the second only, exit 0 for
    # an image, and the weights were never checked
    from tcvom.io import write_image

    write_image(tmp_path / "plate.png", torch.zeros(4, 4, 3).numpy(), pixel_type="uint8")
    for other in (tmp_path / "plate.png", path):
        assert main(["info", "--weights", str(path), str(other)]) == 2
        assert f"one file at a time: {path} (--weights) and {other} were given" in capsys.readouterr().err


# --- where weights are found (tcvom.weights.registry) and `tcvom weights` ------------------------------


@pytest.fixture(scope="module")
def gca_files(tmp_path_factory):
    from tcvom.models import build_gca

    folder = tmp_path_factory.mktemp("downloads")
    tam, single = folder / "GCA_TAM_Lim_Ltc_Laf.pth", folder / "GCA_SINGLE_Lim.pth"
    torch.save(build_gca(temporal=True).state_dict(), tam)
    torch.save(build_gca(temporal=False).state_dict(), single)
    return tam, single


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TCVOM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TCVOM_WEIGHTS", raising=False)
    return tmp_path / "data"


def test_nothing_found_lists_the_search_order(data_dir):
    from tcvom.weights import registry as weights

    assert weights.weights_dir() == data_dir / "weights"
    with pytest.raises(MissingWeightsError) as err:
        weights.find_weights("gca_tam")
    text = str(err.value)
    assert "TCVOM_WEIGHTS" in text and str(data_dir / "weights") in text and "tcvom weights add" in text


def test_a_copy_left_by_a_killed_add_is_no_weight_file(data_dir, gca_files):
    """Weights QA: a `tcvom weights add` killed while copying left a hidden half file whose
    name ends in .pth: every search of the folder read it and failed ("cannot be used") for
    every kind, naming a file the user never made. It is skipped, and the next add removes it."""
    import os

    from tcvom.io import atomic
    from tcvom.weights import registry as weights

    tam, single = gca_files
    weights.add_weights(single)
    folder = data_dir / "weights"
    name = atomic.temporary_name(folder / tam.name).name.replace(f"-{os.getpid()}-", "-4194999-")  # a dead writer
    (folder / name).write_bytes(tam.read_bytes()[: 1 << 16])
    assert weights.find_weights("gca") == folder / single.name
    with pytest.raises(MissingWeightsError):
        weights.find_weights("gca_tam")
    weights.add_weights(tam)
    assert not (folder / name).exists() and weights.find_weights("gca_tam") == folder / tam.name


def test_a_weights_folder_that_cannot_be_written_is_named(data_dir, gca_files, monkeypatch):
    """Weights QA: a read-only data folder was said of a temporary file that no longer exists."""
    import errno
    import shutil

    from tcvom.errors import OutputError
    from tcvom.weights import registry as weights

    tam, _ = gca_files
    (data_dir / "weights").mkdir(parents=True)

    def refused(src, dst, **kw):
        raise OSError(errno.EROFS, "Read-only file system", str(dst))

    monkeypatch.setattr(shutil, "copyfile", refused)  # root writes through a read-only mode
    with pytest.raises(OutputError, match=r"cannot add GCA_TAM_Lim_Ltc_Laf.pth to the weights folder .*"
                                          r"\(Read-only file system\)") as err:
        weights.add_weights(tam)
    assert str(data_dir / "weights") in str(err.value) and "TCVOM_DATA_DIR" in str(err.value.hint)
    assert "tcvom-tmp" not in str(err.value)


def test_add_copies_records_and_is_found(data_dir, gca_files):
    from tcvom.weights import registry as weights

    tam, single = gca_files
    record = weights.add_weights(tam)
    stored = data_dir / "weights" / tam.name
    assert record["kind"] == "gca_tam" and stored.is_file()
    assert file_sha256(stored) == file_sha256(tam)
    assert not [p for p in stored.parent.iterdir() if p.name.endswith(".tmp")]  # no temporaries left
    weights.add_weights(single)
    assert weights.find_weights("gca_tam") == stored
    assert weights.find_weights("gca") == data_dir / "weights" / single.name
    assert [r["kind"] for r in weights.list_weights()] == ["gca_tam", "gca"]
    with pytest.raises(MissingWeightsError):
        weights.find_weights("stm")
    # Explicit path first.
    assert weights.find_weights("gca_tam", single) == single
    with pytest.raises(WeightsError, match=r"missing\.pth") as err:  # a configured path: exit 2, not 3
        weights.find_weights("gca_tam", data_dir / "missing.pth")
    assert err.value.exit_code == 2


def test_a_registered_file_replaced_on_disk_is_refused(data_dir, gca_files):
    """QA: a registered GCA+TAM file overwritten with another network's weights (an "update"
    by hand) ran that network as GCA+TAM, exit 0. It is refused until registered again."""
    import shutil

    from tcvom.weights import registry as weights

    tam, single = gca_files
    stored = Path(weights.add_weights(tam)["path"])
    shutil.copyfile(single, stored)  # the single-image network, under the registered name
    with pytest.raises(WeightsError, match=r"registers GCA_TAM_Lim_Ltc_Laf\.pth as .* now holds other bytes") as err:
        weights.find_weights("gca_tam")
    assert err.value.exit_code == 2 and f"tcvom weights add {stored}" in str(err.value)
    assert weights.add_weights(stored)["kind"] == "gca"  # registered again: what it holds now
    assert weights.find_weights("gca") == stored
    with pytest.raises(MissingWeightsError):
        weights.find_weights("gca_tam")


@pytest.mark.parametrize("name", ["../gone.pth", "/tmp/abs.pth", "sub/x.pth", "weights.json", ".hidden.pth", "",
                                  " ", " x.pth"])
def test_add_refuses_names_outside_the_folder_and_the_registry(data_dir, gca_files, name):
    """--name ../x stored the file outside the weights folder under another name, and
    --name weights.json had the registry overwrite the copy: every later run failed."""
    from tcvom.weights import registry as weights

    tam, _ = gca_files
    with pytest.raises(InputError, match="not a file name") as err:
        weights.add_weights(tam, name=name)
    assert err.value.exit_code == 2
    assert not (data_dir / "weights").exists() or not any((data_dir / "weights").iterdir())
    assert weights.add_weights(tam, name="renamed.pth")["file"] == "renamed.pth"


def test_add_refuses_other_files(data_dir, tmp_path):
    from tcvom.weights import registry as weights

    path = tmp_path / "other.pth"
    torch.save(Small().state_dict(), path)
    with pytest.raises(WeightsError, match="not a tcvom checkpoint"):
        weights.add_weights(path)
    assert weights.list_weights() == []


def test_environment_variable_file_and_folder(data_dir, gca_files, monkeypatch):
    from tcvom.weights import registry as weights

    tam, single = gca_files
    monkeypatch.setenv("TCVOM_WEIGHTS", str(single))
    assert weights.find_weights("gca") == single
    with pytest.raises(MissingWeightsError):  # a GCA file does not serve GCA+TAM
        weights.find_weights("gca_tam")
    monkeypatch.setenv("TCVOM_WEIGHTS", str(tam.parent))  # a folder: files are identified
    assert weights.find_weights("gca_tam") == tam
    assert weights.find_weights("gca") == single
    monkeypatch.setenv("TCVOM_WEIGHTS", str(tam.parent / "nothing-here"))
    with pytest.raises(WeightsError, match="TCVOM_WEIGHTS") as err:
        weights.find_weights("gca_tam")
    assert err.value.exit_code == 2


def _truncated(source, target):
    target.write_bytes(source.read_bytes()[:4096])
    return target


def test_auto_falls_back_only_when_no_weights_are_configured(data_dir, gca_files, monkeypatch, tmp_path):
    """A configured weight path that is missing or unreadable is exit 2 naming the path and
    where it came from, never a notice and classical mattes (issue 21, point 2)."""
    from tcvom.pipeline.methods import resolve, weights_notice
    from tcvom.weights import registry as weights

    notices: list[str] = []
    assert resolve("auto", "matte", None, notices.append) == "classical" and notices == [weights_notice("gca_tam")]
    assert "weights found (looked in " in notices[0] and "): the mattes use the built-in classical method" in notices[0], notices
    data_dir.joinpath("weights").mkdir(parents=True)  # an empty weights folder configures nothing
    assert resolve("auto", "trimaps", None, notices.append) == "classical"

    tam, single = gca_files
    cases = []
    monkeypatch.setenv("TCVOM_WEIGHTS", str(tmp_path / "gone.pth"))  # the variable names nothing
    cases.append(("gone.pth", "TCVOM_WEIGHTS"))
    cut = _truncated(tam, tmp_path / "cut.pth")
    monkeypatch.setenv("TCVOM_WEIGHTS", str(cut))  # the variable names a truncated file
    cases.append(("cut.pth", "TCVOM_WEIGHTS"))
    folder = tmp_path / "env_folder"
    folder.mkdir()
    _truncated(tam, folder / "gca_tam.pth")
    monkeypatch.setenv("TCVOM_WEIGHTS", str(folder))  # a folder holding a truncated file
    cases.append(("gca_tam.pth", f"TCVOM_WEIGHTS folder {folder}"))
    for (name, origin), value in zip(cases, (tmp_path / "gone.pth", cut, folder), strict=True):
        monkeypatch.setenv("TCVOM_WEIGHTS", str(value))
        for stage in ("trimaps", "matte"):
            with pytest.raises(InputError) as err:  # WeightsError or ReadError
                resolve("auto", stage, None, notices.append)
            assert err.value.exit_code == 2 and name in str(err.value) and origin in str(err.value)
    monkeypatch.delenv("TCVOM_WEIGHTS")
    _truncated(single, data_dir / "weights" / "downloaded.pth")  # copied by hand, cut short
    with pytest.raises(ReadError, match=r"downloaded\.pth.*weights folder") as err:
        resolve("auto", "matte", None, notices.append)
    assert str(data_dir / "weights") in str(err.value) and err.value.exit_code == 2
    (data_dir / "weights" / "downloaded.pth").unlink()
    weights.add_weights(tam)
    (data_dir / "weights" / tam.name).unlink()  # registered, then deleted
    with pytest.raises(WeightsError, match=r"weights\.json registers .* gone") as err:
        resolve("auto", "matte", None, notices.append)
    assert tam.name in str(err.value)
    assert len(notices) == 2, "no fallback notice after the first two, unconfigured, cases"


def test_auto_with_a_truncated_weight_file_stops_the_command(data_dir, gca_files, small_example, tmp_path,
                                                               monkeypatch, capsys):
    from tcvom.cli import main

    tam, _ = gca_files
    monkeypatch.setenv("TCVOM_WEIGHTS", str(_truncated(tam, tmp_path / "farm_weights.pth")))
    out = tmp_path / "out"
    code = main(["run", "--plate", small_example.plate, "--keyframes", small_example.keyframes, "--out", str(out),
                 "--progress", "none"])
    err = capsys.readouterr().err
    assert code == 2 and "farm_weights.pth" in err and "TCVOM_WEIGHTS" in err
    assert not list(out.glob("alpha/*.exr")) and "classical" not in err


def test_weights_command(data_dir, gca_files, capsys):
    import json

    from tcvom.cli import main

    tam, _ = gca_files
    assert main(["weights", "add", str(tam), "--name", "mine.pth"]) == 0
    assert "GCA+TAM" in capsys.readouterr().out
    assert main(["weights", "list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [(r["file"], r["kind"], r["present"]) for r in listing["weights"]] == [("mine.pth", "gca_tam", True)]
    bad = data_dir / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    assert main(["weights", "add", str(bad)]) == 2
    assert "corrupt" in capsys.readouterr().err


def test_a_file_of_the_kind_tried_that_does_not_load_is_said_once_and_plainly(tmp_path, capsys):
    """QA: `tcvom info --weights` of a damaged Index+TAM file (one TAM key missing) said the
    path twice, "the the single-image Index ... baseline network", and that the file "looks
    like" the network it had just failed to fit."""
    from tcvom.cli import main
    from tcvom.models.bases import build_matting

    state = build_matting("index_tam").state_dict()
    del state["decoder.fam.query_conv.weight"]
    path = tmp_path / "damaged.pth"
    torch.save(state, path)
    assert main(["info", "--weights", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count(str(path)) == 1 and "the the" not in err and "looks like" not in err, err
    # the file is the Index+TAM one, a key short (was: the single-image Index baseline with 5 unexpected keys)
    assert "do not fit the Index+TAM (TCVOM video matting) network: 1 missing key(s): decoder.fam.query_conv.weight" \
        in err, err


@pytest.mark.parametrize("name", ["gca_tam.part_b.onnx", "gca_tam.json"])
def test_a_file_of_an_export_is_not_called_a_corrupt_download(tmp_path, name):
    """Export QA: an exported graph or manifest given as weights was "truncated or corrupt;
    download it again"."""
    path = tmp_path / name
    path.write_bytes(b"\x08\x07" * 50)
    with pytest.raises(InputError, match="this is a file of an export") as err:
        checkpoints.read_state_dict(path)
    assert "--export-dir" in str(err.value) and "download" not in str(err.value)


@pytest.mark.parametrize("base", ["fba", "dim", "index"])
def test_a_partial_file_of_another_base_is_compared_with_its_own_network(tmp_path, base):
    """Network QA: an encoder-only (or cut short) FBA, DIM or Index file, which matches no
    network, was loaded against GCA+TAM: "538 missing key(s): encoder.conv1..." pointed at
    the wrong network. It is compared with the network whose keys it holds."""
    from tcvom.errors import WeightsError
    from tcvom.matting.gca_session import load_matting_model
    from tcvom.models.bases import build_matting

    state = {k: v for k, v in build_matting(f"{base}_tam").state_dict().items() if k.startswith("encoder.")}
    path = tmp_path / "encoder.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError) as caught:
        load_matting_model(path)
    said = str(caught.value)
    assert f"do not fit the {checkpoints.kind_name(base + '_tam')}" in said and "unexpected key" not in said, said
    assert "decoder." in said


def test_a_torchscript_or_safetensors_file_is_named_as_such(tmp_path, capsys):
    """Back-end QA: the TorchScript model `tcvom nuke torchscript` writes, given back as
    weights, printed torch's UserWarning with a source line and was "truncated or corrupt;
    download it again"; so was a safetensors file."""
    from tcvom.cli import main

    script = tmp_path / "model.pt"
    torch.jit.script(torch.nn.Linear(2, 2)).save(str(script))
    header = b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    for path, said in ((script, "TorchScript model"), (tmp_path / "w.bin", "safetensors file")):
        if path.suffix == ".bin":
            path.write_bytes(len(header).to_bytes(8, "little") + header + b"\x00" * 4)
        with pytest.raises(InputError, match=said) as err:
            checkpoints.read_state_dict(path)
        assert "download" not in str(err.value)
        assert main(["info", "--weights", str(path)]) == 2
        err_text = capsys.readouterr().err
        assert said in err_text and "Warning" not in err_text and "download" not in err_text, err_text
    ordinary = tmp_path / "ordinary.pth"
    torch.save({"w": torch.zeros(2)}, ordinary)  # a zip that is no TorchScript
    assert set(checkpoints.read_state_dict(ordinary)) == {"w"}


def test_weights_remove_takes_a_file_out_of_the_search(data_dir, gca_files, capsys):
    """There was no `tcvom weights remove`: a registered file gone from the folder stopped
    every run ("remove its record from weights.json" by hand), and a file deleted by hand
    while its record stayed could not be forgotten. The file goes with its records, an
    unregistered file in the folder can go too, and another name is refused."""
    from tcvom.cli import main
    from tcvom.weights import registry as weights

    tam, single = gca_files
    first = Path(weights.add_weights(tam, name="first.pth")["path"])
    second = Path(weights.add_weights(tam, name="second.pth")["path"])
    assert weights.find_weights("gca_tam") == second
    assert main(["weights", "remove", "second.pth"]) == 0
    assert "removed GCA+TAM" in capsys.readouterr().out and not second.exists()
    assert weights.find_weights("gca_tam") == first  # the one registered before it, not an error
    first.unlink()  # deleted by hand: its record stops every search
    with pytest.raises(WeightsError, match="gone") as err:
        weights.find_weights("gca_tam")
    assert "tcvom weights remove first.pth" in str(err.value)
    assert main(["weights", "remove", "first.pth"]) == 0
    assert "already gone" in capsys.readouterr().out
    with pytest.raises(MissingWeightsError):
        weights.find_weights("gca_tam")
    loose = data_dir / "weights" / "loose.pth"  # put in the folder by hand, unregistered
    loose.write_bytes(single.read_bytes())
    assert weights.find_weights("gca") == loose
    assert weights.remove_weights("loose.pth")["kind"] == "gca" and not loose.exists()
    assert weights.list_weights() == []
    for name in ("first.pth", "../x.pth", "weights.json", ""):
        assert main(["weights", "remove", name]) == 2, name
        assert "Traceback" not in capsys.readouterr().err
    assert (data_dir / "weights" / "weights.json").exists()
