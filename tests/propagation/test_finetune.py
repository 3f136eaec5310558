"""Online fine-tuning of STM on the keyframes (tiny sizes, random weights)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tcvom.io.trimap import from_alpha
from tcvom.models.stm import IMAGENET_MEAN, STM, build_stm, load_stm_model
from tcvom.propagation.finetune import (
    FinetuneOptions,
    KeyframeSample,
    _to_tensors,
    cache_key,
    fake_sequence,
    finetune,
    finetune_cached,
    sequence_loss,
)
from tcvom.propagation.scheduler import KeyframeSchedule
from tcvom.propagation.stm import StmPropagator

H, W = 40, 56


class Shot:
    """A rectangle drifting right over a gradient."""

    frame_numbers = tuple(range(6))
    height, width = H, W

    def alpha(self, frame: int) -> np.ndarray:
        a = np.zeros((H, W), np.float32)
        a[10:30, 12 + frame : 36 + frame] = 1.0
        a[10:30, 36 + frame] = 0.5
        return a

    def read(self, frame: int) -> np.ndarray:
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        bg = np.stack([xx / W, yy / H, 0.3 + 0 * xx], axis=-1)
        a = self.alpha(frame)[..., None]
        return (a * np.array([0.9, 0.2, 0.6], np.float32) + (1 - a) * bg).astype(np.float32)

    def trimap(self, frame: int) -> np.ndarray:
        return from_alpha(self.alpha(frame), 5)


def _options(**changes: object) -> FinetuneOptions:
    base = {"steps": 2, "lr": 1e-4, "crop_size": 32, "min_object_pixels": 50, "seed": 3}
    base.update(changes)
    return FinetuneOptions(**base)  # type: ignore[arg-type]


@pytest.fixture()
def model() -> STM:
    torch.manual_seed(7)
    torch.set_num_threads(1)
    return build_stm()


def _sample(frame: int = 0) -> KeyframeSample:
    shot = Shot()
    return KeyframeSample(frame, shot.read(frame), shot.trimap(frame))


def test_fake_sequence_is_three_warped_crops() -> None:
    sample = _sample()
    images, classes = fake_sequence(
        sample.image, sample.trimap, np.random.default_rng(1), crop_size=32
    )
    again, again_classes = fake_sequence(
        sample.image, sample.trimap, np.random.default_rng(1), crop_size=32
    )
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(classes, again_classes)
    assert images.shape == (3, 32, 32, 3) and images.dtype == np.float32
    assert classes.shape == (3, 32, 32) and classes.dtype == np.int64
    assert set(np.unique(classes)) <= {0, 1, 2, 255}
    assert not np.array_equal(classes[0], classes[1]) and not np.array_equal(classes[1], classes[2])
    # out-of-view pixels are ignored and filled with the ImageNet mean (0 after normalising)
    out = classes == 255
    if out.any():
        np.testing.assert_allclose(
            images[out], np.broadcast_to(IMAGENET_MEAN, images[out].shape), atol=1e-6
        )
    # a frame smaller than the crop is used whole
    small, small_classes = fake_sequence(
        sample.image, sample.trimap, np.random.default_rng(2), crop_size=512
    )
    assert small.shape == (3, H, W, 3) and small_classes.shape == (3, H, W)


def test_finetune_reduces_its_own_loss_with_frozen_batch_norm(model: STM) -> None:
    """4 steps at lr 1e-4: the reference's 1e-6 moves the loss by less than the
    step-to-step noise in so few steps, so the test uses a larger rate."""
    sample = _sample()
    images, classes = fake_sequence(
        sample.image, sample.trimap, np.random.default_rng(99), crop_size=32, min_object_pixels=50
    )
    held = _to_tensors(images, classes, torch.device("cpu"))
    before_state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        before = float(sequence_loss(model, *held, unknown_weight=1.0))
    losses = finetune(model, [sample], _options(steps=4))
    with torch.no_grad():
        after = float(sequence_loss(model, *held, unknown_weight=1.0))
    assert len(losses) == 4 and all(np.isfinite(losses))
    assert after < 0.9 * before
    assert not model.training
    state = model.state_dict()
    for key, value in before_state.items():
        changed = not torch.equal(state[key], value)
        if (
            "running_" in key
            or "num_batches" in key
            or ".bn" in key
            or key in ("Encoder_M.mean", "Encoder_M.std")
        ):
            assert not changed, f"{key} must stay frozen"
    # reference quirk: the shortcut batch norm has no "bn" in its name, so it is trained
    assert not torch.equal(
        state["Encoder_Q.res2.0.downsample.1.weight"],
        before_state["Encoder_Q.res2.0.downsample.1.weight"],
    )
    assert not torch.equal(state["Decoder.pred2.weight"], before_state["Decoder.pred2.weight"])


def test_weight_file_untouched_and_tuned_weights_cached(model: STM, tmp_path: Path) -> None:
    weights = tmp_path / "stm.pth"
    torch.save(model.state_dict(), weights)
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    stamp = weights.stat().st_mtime_ns
    base = load_stm_model(weights)
    base_state = {k: v.clone() for k, v in base.state_dict().items()}
    shot = Shot()
    keyframes = {0: shot.trimap(0)}
    (pass_,) = KeyframeSchedule(range(0, 6), keyframes).passes
    cache = tmp_path / "cache"
    tuned = StmPropagator(
        base, finetune_steps=2, finetune_lr=1e-4, finetune_size=32, seed=3, cache_dir=cache
    )
    tuned_out = dict(tuned.probabilities(shot, keyframes, pass_))
    plain_out = dict(StmPropagator(base).probabilities(shot, keyframes, pass_))

    assert hashlib.sha256(weights.read_bytes()).hexdigest() == digest
    assert weights.stat().st_mtime_ns == stamp
    for key, value in base_state.items():
        assert torch.equal(base.state_dict()[key], value), "the caller's model must not change"
    assert max(np.abs(tuned_out[f] - plain_out[f]).max() for f in range(1, 6)) > 1e-4
    cached = list(cache.glob("stm_finetuned_*.pt"))
    assert len(cached) == 1

    # the same weights and keyframes load the cache instead of training again
    samples = [KeyframeSample(0, shot.read(0), keyframes[0])]
    options = FinetuneOptions(steps=2, lr=1e-4, crop_size=32, seed=3)
    again = load_stm_model(weights)
    assert finetune_cached(again, samples, options, cache_dir=cache) is True
    for key, value in tuned.model.state_dict().items():
        assert torch.equal(again.state_dict()[key], value)
    again_out = dict(StmPropagator(again).probabilities(shot, keyframes, pass_))
    np.testing.assert_array_equal(again_out[3], tuned_out[3])
    # a cache file damaged on disk is tuned again and replaced (kill QA: it stopped the run),
    # from the base weights (review: a file missing one tensor loaded the rest first)
    good = cached[0].read_bytes()
    partial = torch.load(cached[0], weights_only=True)
    partial.pop(next(iter(partial)))
    for damage in (lambda: cached[0].write_bytes(good[:100]), lambda: torch.save(partial, cached[0])):
        damage()
        retuned = load_stm_model(weights)
        assert finetune_cached(retuned, samples, options, cache_dir=cache) is False
        for key, value in tuned.model.state_dict().items():
            assert torch.equal(retuned.state_dict()[key], value), key
        assert finetune_cached(load_stm_model(weights), samples, options, cache_dir=cache) is True
    # another keyframe trimap, other weights or other options give another key
    edited = keyframes[0].copy()
    edited[0, 0] = 128
    key = cache_key(base, samples, options)
    assert cache_key(base, [KeyframeSample(0, samples[0].image, edited)], options) != key
    assert cache_key(again, samples, options) != key
    assert cache_key(base, samples, FinetuneOptions(steps=3, lr=1e-4, crop_size=32, seed=3)) != key


def test_progress_is_reported(model: STM, capsys: pytest.CaptureFixture[str]) -> None:
    finetune(model, [_sample()], _options(steps=1), progress="json")
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["event"] for e in events] == ["start", "progress", "done"]
    assert all(e["job"] == "finetune" for e in events)
    assert events[0]["total"] == 1


def test_a_second_process_waits_for_the_tuning_and_loads_it(model: STM, tmp_path: Path, capsys) -> None:
    """Two runs into one output share the cache: while another process tunes (it holds the
    key's lock), finetune_cached waits and loads its result instead of tuning again."""
    import subprocess
    import sys

    from tcvom.propagation.finetune import cache_path

    shot = Shot()
    samples = [KeyframeSample(0, shot.read(0), shot.trimap(0))]
    options = _options()
    key = cache_key(model, samples, options)
    path = cache_path(tmp_path / "cache", key)
    theirs = {k: v + 1 if v.is_floating_point() else v for k, v in model.state_dict().items()}
    torch.save(theirs, tmp_path / "theirs.pt")
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from tcvom.farm.locks import exclusive_lock; "
        "from tcvom.io.atomic import write_bytes; "
        "lock = exclusive_lock(sys.argv[1]); lock.__enter__(); print('held', flush=True); time.sleep(1); "
        "write_bytes(sys.argv[3], Path(sys.argv[2]).read_bytes())"),
        str(path.with_suffix(".lock")), str(tmp_path / "theirs.pt"), str(path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    assert finetune_cached(model, samples, options, key=key, cache_dir=tmp_path / "cache", progress="json") is True
    assert holder.wait(timeout=30) == 0
    said = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["event"] for e in said] == ["message"] and "another run fine-tuning" in said[0]["message"]
    for name, value in theirs.items():
        assert torch.equal(model.state_dict()[name], value)
