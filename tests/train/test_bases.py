"""Training the FBA, DIM and IndexNet networks (issue 19): a few steps on synthetic video,
every loss term finite, the total going down on one repeated batch, and the saved weights
loading strictly in the inference code with the release key layout."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch

from tcvom.errors import WeightsError
from tcvom.matting.gca_session import load_matting_model
from tcvom.models.bases import build_matting
from tcvom.train.config import gca_tam_config_from_dict
from tcvom.train.loops import load_initial, train_matting
from tcvom.weights import checkpoints


def _cfg(root: Path, out: Path, crop: int, **over: object) -> dict:
    cfg = {"out": str(out), "steps": 3, "batch_size": 1, "seed": 0, "checkpoint_every": 100, "overfit_batches": 1,
           "data": {"kind": "video", "root": str(root), "crop": crop, "workers": 0, "max_radius": 3},
           "optim": {"lr": 1e-3, "schedule": "constant"}}
    cfg.update(over)
    return cfg


def _log(path: Path) -> list[dict[str, float]]:
    with open(path, newline="") as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def _check_run(rows: list[dict[str, float]], terms: tuple[str, ...]) -> None:
    assert len(rows) == 3
    for row in rows:
        assert all(math.isfinite(row[t]) for t in terms), row
    assert rows[-1]["loss"] < rows[0]["loss"], [r["loss"] for r in rows]


@pytest.fixture(scope="module")
def square_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One synthetic clip of 6 frames at 64x64 (FBA's Laplacian loss needs 64-pixel crops)."""
    from tcvom.data.synthetic import ShotConfig, write_benchmark

    root = tmp_path_factory.mktemp("square")
    write_benchmark(root, clips=1, config=ShotConfig(width=64, height=64, frames=6), flow=False, composites=False)
    (root / "train_videos.txt").write_text((root / "val_videos.txt").read_text())
    return root


def test_cli_trains_index_tam_and_the_weights_load_strictly(video_root: Path, tmp_path: Path) -> None:
    from tcvom.cli import main

    config = tmp_path / "index.toml"
    config.write_text(
        'out = "run"\nsteps = 3\noverfit_batches = 1\ncheckpoint_every = 100\n'
        f'[data]\nroot = "{video_root}"\ncrop = 32\nworkers = 0\nmax_radius = 3\n'
        '[optim]\nlr = 1e-3\n'
    )
    assert main(["train", "index-tam", "--config", str(config), "--progress", "none"]) == 0
    rows = _log(tmp_path / "run" / "log.csv")
    _check_run(rows, ("loss", "l_alpha", "l_composition", "l_gradient", "l_tc", "l_af"))
    assert rows[-1]["l_im"] < rows[0]["l_im"]
    state = checkpoints.read_state_dict(tmp_path / "run" / "weights.pth")
    assert checkpoints.identify(state) == "index_tam"
    reference = build_matting("index_tam").state_dict()
    assert list(state) == list(reference), "the saved keys are not the release layout (order included)"
    model = load_matting_model(tmp_path / "run" / "weights.pth", base="index")  # strict
    assert type(model).__name__ == "IndexMatting" and model.temporal
    # The command's base and the config's network must agree.
    config.write_text(config.read_text().replace('out = "run"', 'network = "dim_tam"\nout = "run2"'))
    assert main(["train", "index-tam", "--config", str(config), "--progress", "none"]) == 2


def test_start_weights_across_the_tam(tmp_path: Path) -> None:
    torch.manual_seed(0)
    single = build_matting("index")
    path = tmp_path / "index_single.pth"
    torch.save(single.state_dict(), path)
    tam = build_matting("index_tam")
    missing = load_initial(tam, path)  # type: ignore[arg-type]
    assert missing and all(k.startswith("decoder.fam.") for k in missing)
    got = tam.state_dict()
    assert all(torch.equal(got[k], v) for k, v in single.state_dict().items())
    torch.save(tam.state_dict(), tmp_path / "index_tam.pth")
    back = build_matting("index")
    assert load_initial(back, tmp_path / "index_tam.pth") == []  # type: ignore[arg-type]
    broken = {k: v for k, v in single.state_dict().items() if not k.startswith("encoder.layer0.0")}
    torch.save(broken, tmp_path / "broken.pth")
    with pytest.raises(WeightsError, match="missing"):
        load_initial(build_matting("index"), tmp_path / "broken.pth")  # type: ignore[arg-type]


@pytest.mark.slow
def test_dim_tam_trains_from_single_image_weights(video_root: Path, tmp_path: Path) -> None:
    # The single-image DIM checkpoint has flat keys (conv11.weight...). DIM clamps alpha to
    # [0, 1], so a random start that predicts 0 everywhere would get no gradient: the start
    # weights put the prediction mid-range, as trained weights do.
    torch.manual_seed(0)
    single = build_matting("dim")
    with torch.no_grad():
        single.decoder.alpha_pred.bias.fill_(0.5)  # type: ignore[union-attr]
    init = tmp_path / "dim_single.pth"
    torch.save(single.state_dict(), init)
    assert checkpoints.identify(checkpoints.read_state_dict(init)) == "dim"
    cfg = gca_tam_config_from_dict(_cfg(video_root, tmp_path / "run", 32, init=str(init),
                                        optim={"lr": 1e-4, "schedule": "constant"}), base="dim")
    result = train_matting(cfg, progress="none")
    _check_run(result.rows, ("loss", "l_alpha", "l_composition", "l_gradient", "l_tc", "l_af"))
    assert checkpoints.identify(checkpoints.read_state_dict(result.weights)) == "dim_tam"
    load_matting_model(result.weights, base="dim")


@pytest.mark.slow
def test_fba_tam_trains_with_its_own_losses(square_root: Path, tmp_path: Path) -> None:
    cfg = gca_tam_config_from_dict(_cfg(square_root, tmp_path / "run", 64, optim={"lr": 1e-4, "schedule": "constant"}),
                                   base="fba")
    result = train_matting(cfg, progress="none")
    terms = ("loss", "l_alpha", "l_composition", "l_fb", "l_gradient", "l_exclusion", "l_laplacian", "l_tc", "l_af")
    _check_run(result.rows, terms)
    state = checkpoints.read_state_dict(result.weights)
    assert checkpoints.identify(state) == "fba_tam"
    assert list(state) == list(build_matting("fba_tam").state_dict())
    load_matting_model(result.weights, base="fba")


def test_a_resumed_index_tam_run_ends_with_the_same_weights(video_root: Path, tmp_path: Path) -> None:
    """Training QA: Index's ASPP dropout draws from torch's generator, which a resume seeded
    from the config again (and the data loader's iterator drew from): the resumed run's
    weights differed from the uninterrupted run's from the first step after the stop."""
    from tcvom.train.config import gca_tam_config_from_dict
    from tcvom.train.loops import train_matting

    def config(out: str) -> object:
        return gca_tam_config_from_dict({
            "out": str(tmp_path / out), "network": "index_tam", "steps": 3, "seed": 0, "checkpoint_every": 100,
            "trainable": "all", "data": {"kind": "video", "root": str(video_root), "crop": 32, "workers": 0,
                                         "max_radius": 3}, "optim": {"lr": 1e-3}})

    whole = train_matting(config("a"), progress="none")  # type: ignore[arg-type]
    train_matting(config("b"), progress="none", stop_after=2)  # type: ignore[arg-type]
    resumed = train_matting(config("b"), progress="none")  # type: ignore[arg-type]
    assert resumed.step == 3 and [r["step"] for r in resumed.rows] == [2]
    assert resumed.rows[0]["loss"] == whole.rows[2]["loss"]
    a, b = checkpoints.read_state_dict(whole.weights), checkpoints.read_state_dict(resumed.weights)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ"
