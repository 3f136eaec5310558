"""tcvom.io.hashing: the one file and state-dict SHA-256 of the project."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from tcvom.io.hashing import file_identity, file_sha256, state_sha256

ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_file_sha256_is_remembered_per_identity_and_sees_a_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "w.pth"
    path.write_bytes(b"abc")
    assert file_sha256(path) == ABC == file_sha256(path, remember=False)
    before = file_identity(path)
    path.write_bytes(b"abd")
    os.utime(path, ns=(before[4] + 1_000_000, before[4] + 1_000_000))  # coarse clocks: move mtime on
    assert file_identity(path) != before
    assert file_sha256(path) == file_sha256(path, remember=False) != ABC


def test_state_sha256_is_one_format_for_modules_and_state_dicts() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    state = model.state_dict()
    digest = state_sha256(model)
    assert len(digest) == 64
    assert state_sha256(state) == digest
    assert state_sha256(dict(reversed(list(state.items())))) == digest  # order does not count
    with torch.no_grad():
        model[0].weight[0, 0, 0, 0] += 1e-3
    assert state_sha256(model) != digest
    assert len(state_sha256(model.to(torch.bfloat16))) == 64  # dtypes numpy lacks hash too


def test_the_finetune_cache_key_uses_the_same_state_digest() -> None:
    """The STM fine-tune cache and the export manifests key weights by one digest."""
    from tcvom.propagation import finetune

    assert not hasattr(finetune, "state_hash")
    assert finetune.state_sha256 is state_sha256
