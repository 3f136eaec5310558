"""Config files: defaults, validation, paths; the learning-rate schedules."""

from __future__ import annotations

from pathlib import Path

import pytest

from tcvom.errors import InputError
from tcvom.train.config import (
    OptimConfig,
    gca_tam_config_from_dict,
    load_gca_tam_config,
    load_stm_config,
)
from tcvom.train.loops import learning_rate

REPO = Path(__file__).resolve().parents[2]


def test_toml_defaults_follow_the_stage(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('out = "runs/a"\nsteps = 10\nstage = "main"\n[data]\nroot = "data"\n')
    cfg = load_gca_tam_config(path)
    assert cfg.out == str((tmp_path / "runs/a").resolve())
    assert cfg.data.root == str((tmp_path / "data").resolve())
    assert (cfg.optim.lr, cfg.optim.schedule, cfg.optim.power, cfg.optim.weight_decay) == (1e-4, "poly", 0.9, 1e-4)
    assert (cfg.loss.image, cfg.loss.temporal, cfg.loss.affinity) == (1.0, 0.5, 0.25)
    assert cfg.data.frames == 5
    pre = gca_tam_config_from_dict({"out": "x", "steps": 1, "stage": "pretrain", "init": "w.pth",
                                    "data": {"kind": "image", "fg_dir": "f", "alpha_dir": "a", "bg_dir": "b"}})
    assert pre.optim.lr == 4e-4 and pre.loss.temporal == 0 and pre.loss.affinity == 0
    assert pre.data.frames == 3 and pre.data.eps == pytest.approx(1e-2)


def test_json_config_and_errors_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_text('{"out": "o", "steps": 2, "data": {"root": "d", "crop": 48}}')
    with pytest.raises(InputError, match=r"data\.crop"):
        load_gca_tam_config(path)
    path.write_text('{"out": "o", "steps": 2, "data": {"root": "d", "crops": 64}}')
    with pytest.raises(InputError, match=r"unknown key\(s\) data.crops"):
        load_gca_tam_config(path)
    path.write_text('{"out": "o", "steps": "2", "data": {"root": "d"}}')
    with pytest.raises(InputError, match="'steps' must be an integer"):
        load_gca_tam_config(path)
    path.write_text('{"out": "o", "steps": 2, "data": {"root": "d"}, "optim": {"schedule": "cosine"}}')
    with pytest.raises(InputError, match=r"optim\.schedule"):
        load_gca_tam_config(path)
    path.write_text('{"steps": 2, "data": {"root": "d"}}')
    with pytest.raises(InputError, match="'out'"):
        load_gca_tam_config(path)
    bad = tmp_path / "run.yaml"
    bad.write_text("out: o")
    with pytest.raises(InputError, match=r"toml or \.json"):
        load_gca_tam_config(bad)
    with pytest.raises(InputError, match="does not exist"):
        load_gca_tam_config(tmp_path / "missing.toml")


def test_stm_defaults(tmp_path: Path) -> None:
    path = tmp_path / "stm.toml"
    path.write_text('out = "o"\nsteps = 3\n[data]\nroot = "d"\n')
    cfg = load_stm_config(path)
    assert cfg.optim.schedule == "stair" and cfg.optim.lr == 1e-5 and cfg.unknown_weight == 4.0
    assert cfg.data.max_skip == 75


@pytest.mark.parametrize("name", sorted(str(p.relative_to(REPO)) for folder in ("configs", "benchmarks")
                                         for p in (REPO / folder).glob("*.toml")))
def test_example_configs_parse(name: str) -> None:
    path = REPO / name
    cfg = load_stm_config(path) if path.name.startswith("stm") else load_gca_tam_config(path)
    assert cfg.steps > 0
    if path.parent.name == "benchmarks":  # the benchmark's run stays out of the repository (/out/ is ignored)
        assert Path(cfg.out).is_relative_to(REPO / "out") and Path(cfg.data.root).is_relative_to(REPO / "out")


def test_poly_stair_constant_schedules() -> None:
    poly = OptimConfig(lr=1e-4, schedule="poly", power=0.9)
    assert learning_rate(poly, 0, 100) == pytest.approx(1e-4)
    assert learning_rate(poly, 50, 100) == pytest.approx(1e-4 * 0.5**0.9)
    assert learning_rate(poly, 99, 100) == pytest.approx(1e-4 * 0.01**0.9)
    stair = OptimConfig(lr=1e-5, schedule="stair", milestones=[0.25, 0.5], stair_lrs=[5e-6, 1e-6])
    assert [learning_rate(stair, s, 8) for s in (0, 1, 2, 3, 4, 7)] == pytest.approx([1e-5, 1e-5, 5e-6, 5e-6, 1e-6, 1e-6])
    assert learning_rate(OptimConfig(lr=3e-4, schedule="constant"), 5, 10) == 3e-4
