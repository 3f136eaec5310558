"""Short CPU training runs: every loss term goes down, checkpoints load in the inference
code, resume gives the same weights, pre-training leaves the frozen layers alone."""

from __future__ import annotations

import csv
import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch

from tcvom.errors import InputError
from tcvom.train.config import gca_tam_config_from_dict, load_gca_tam_config
from tcvom.train.loops import checkpoint_step, train_gca_tam
from tcvom.weights import checkpoints


def _video_cfg(video_root: Path, out: Path, **over: object) -> dict:
    cfg = {"out": str(out), "steps": 6, "batch_size": 1, "seed": 0, "checkpoint_every": 100,
           "data": {"kind": "video", "root": str(video_root), "crop": 32, "workers": 0, "max_radius": 3},
           "optim": {"lr": 1e-3}}
    cfg.update(over)
    return cfg


@pytest.mark.slow
def test_main_stage_reduces_every_term_and_the_session_loads_it(video_root: Path, tmp_path: Path) -> None:
    from tcvom.data.vm108 import VideoMatting108
    from tcvom.matting.gca_session import GcaTamSession, load_gca_model

    cfg = gca_tam_config_from_dict(_video_cfg(video_root, tmp_path / "run", overfit_batches=1,
                                              data={"kind": "video", "root": str(video_root), "crop": 32,
                                                    "workers": 1, "max_radius": 3}))
    result = train_gca_tam(cfg, progress="none")
    assert result.step == 6 and len(result.rows) == 6
    for term in ("l_im", "l_tc", "l_af", "loss"):
        first, last = result.rows[0][term], result.rows[-1][term]
        assert last < first, f"{term} did not go down: {first} -> {last}"
    with open(result.log, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == list(range(6)) and {"l_tc", "l_af", "lr"} <= set(rows[0])
    state = checkpoints.read_state_dict(result.weights)
    assert checkpoints.identify(state) == "gca_tam"
    model = load_gca_model(result.weights)
    clip = next(iter(VideoMatting108(video_root, split="val")))

    class Frames:
        frame_numbers: ClassVar[list[int]] = [0, 1, 2]

        def read(self, i: int) -> np.ndarray:
            return clip.read(i).image

    class Trimaps(Frames):
        def read(self, i: int) -> np.ndarray:
            return clip.trimap(i, "medium")

    session = GcaTamSession(Frames(), Trimaps(), model)
    alpha = session.alpha(1)
    assert alpha.shape == (48, 64) and np.isfinite(alpha).all() and alpha.min() >= 0 and alpha.max() <= 1


@pytest.mark.slow
def test_resume_after_interruption_gives_the_same_weights(video_root: Path, tmp_path: Path) -> None:
    whole = train_gca_tam(gca_tam_config_from_dict(_video_cfg(video_root, tmp_path / "a", steps=3)), progress="none")
    cfg = gca_tam_config_from_dict(_video_cfg(video_root, tmp_path / "b", steps=3))
    first = train_gca_tam(cfg, progress="none", stop_after=2)
    assert first.step == 2 and checkpoint_step(tmp_path / "b") == 2
    second = train_gca_tam(cfg, progress="none")
    assert second.step == 3 and [r["step"] for r in second.rows] == [2]
    a = checkpoints.read_state_dict(whole.weights)
    b = checkpoints.read_state_dict(second.weights)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from the uninterrupted run"
    with open(second.log, newline="") as handle:
        assert [int(r["step"]) for r in csv.DictReader(handle)] == [0, 1, 2]


@pytest.mark.slow
def test_pretrain_trains_only_the_tam(image_folders: dict[str, Path], tmp_path: Path) -> None:
    from tcvom.models import GcaSingle, make_input

    init = tmp_path / "gca.pth"
    torch.manual_seed(1)
    gca = GcaSingle().train()
    with torch.no_grad():  # converge the spectral-norm vectors as a trained checkpoint has them
        for _ in range(10):
            trimap = torch.tensor([0, 128, 255], dtype=torch.uint8)[torch.randint(0, 3, (2, 1, 32, 32))]
            gca(make_input(torch.rand(2, 3, 32, 32), trimap))
    torch.save(gca.state_dict(), init)
    cfg = gca_tam_config_from_dict({
        "out": str(tmp_path / "pre"), "steps": 2, "stage": "pretrain", "init": str(init),
        "data": {"kind": "image", "fg_dir": str(image_folders["fg"]), "alpha_dir": str(image_folders["alpha"]),
                 "bg_dir": str(image_folders["bg"]), "crop": 32, "workers": 0, "max_radius": 2},
    })
    train_gca_tam(cfg, progress="none", stop_after=1)
    result = train_gca_tam(cfg, progress="none")  # a resume of the stage that needs init (code review)
    assert result.step == 2
    before = checkpoints.read_state_dict(init)
    after = checkpoints.read_state_dict(result.weights)
    assert set(after) - set(before) == {k for k in after if k.startswith("decoder.fam.")}
    # Frozen layers (weights, spectral-norm vectors and batch-norm statistics) are untouched.
    assert all(torch.equal(before[k], after[k]) for k in before)
    with open(result.log, newline="") as handle:
        row = next(csv.DictReader(handle))
    assert "l_tc" not in row and "l_af" not in row and float(row["l_im"]) > 0


def test_pretrain_needs_start_weights_and_amp_needs_cuda(image_folders: dict[str, Path], video_root: Path,
                                                         tmp_path: Path) -> None:
    cfg = gca_tam_config_from_dict({
        "out": str(tmp_path / "p"), "steps": 1, "stage": "pretrain",
        "data": {"kind": "image", "fg_dir": str(image_folders["fg"]), "alpha_dir": str(image_folders["alpha"]),
                 "bg_dir": str(image_folders["bg"]), "crop": 32},
    })
    with pytest.raises(InputError, match="init") as caught:
        train_gca_tam(cfg, progress="none")
    assert 'trainable = "all"' in str(caught.value)
    # Training QA: with everything trained nothing is frozen, so no start weights are needed
    # (it was refused, saying the layers before the TAM stay frozen)
    result = train_gca_tam(replace(cfg, out=str(tmp_path / "all"), trainable="all"), progress="none")
    assert result.step == 1 and result.weights.is_file()
    with pytest.raises(InputError, match="CUDA"):
        train_gca_tam(gca_tam_config_from_dict(_video_cfg(video_root, tmp_path / "amp", amp=True)), progress="none")
    # the TAM on frozen random layers: their activations overflow and the loss was NaN at
    # step 0 (exit 1, "lower the learning rate")
    for trainable in ("tam", "tam+head"):
        with pytest.raises(InputError, match="set 'init'"):
            train_gca_tam(gca_tam_config_from_dict(_video_cfg(video_root, tmp_path / trainable, trainable=trainable)),
                          progress="none")
    if not torch.cuda.is_available():  # the fix is in the config: train has no --device flag
        with pytest.raises(InputError, match="CUDA") as caught:
            train_gca_tam(gca_tam_config_from_dict(_video_cfg(video_root, tmp_path / "gpu", device="cuda")),
                          progress="none")
        assert 'device = "cpu" in the training config' in str(caught.value) and "--device" not in str(caught.value)


@pytest.mark.slow
def test_cli_trains_stm_and_the_weights_load(image_folders: dict[str, Path], tmp_path: Path) -> None:
    from tcvom.cli import main
    from tcvom.models.stm import load_stm_model

    config = tmp_path / "stm.toml"
    config.write_text(
        'stage = "pretrain"\nout = "run"\nsteps = 3\nbatch_size = 1\noverfit_batches = 1\n'
        f'[data]\nkind = "image"\nfg_dir = "{image_folders["fg"]}"\nalpha_dir = "{image_folders["alpha"]}"\n'
        f'bg_dir = "{image_folders["bg"]}"\ncrop = 32\nworkers = 0\n'
        '[optim]\nlr = 1e-4\nschedule = "constant"\n'
    )
    assert main(["train", "stm", "--config", str(config), "--progress", "none"]) == 0
    run = tmp_path / "run"
    with open(run / "log.csv", newline="") as handle:
        losses = [float(r["loss"]) for r in csv.DictReader(handle)]
    assert len(losses) == 3 and losses[-1] < losses[0]
    model = load_stm_model(run / "weights.pth")
    assert checkpoints.identify(model.state_dict()) == "stm"
    assert main(["train", "stm", "--config", str(tmp_path / "missing.toml"), "--progress", "none"]) == 2


def test_a_resume_with_another_config_is_refused_and_changes_nothing(video_root: Path, tmp_path: Path) -> None:
    """A resume under a config that changes what is learnt (the rate, the trained layers)
    went on silently, or ended in the optimizer's traceback, and replaced config.json
    either way. It is refused naming the keys; steps (train longer) may change."""
    run = tmp_path / "run"
    train_gca_tam(gca_tam_config_from_dict(_video_cfg(video_root, run, steps=3)), progress="none", stop_after=1)
    written = (run / "config.json").read_bytes()
    for change, named in (({"optim": {"lr": 0.5}}, "optim.lr: 0.001 recorded, 0.5 now"),
                          ({"trainable": "all"}, "trainable: 'auto' recorded, 'all' now")):
        with pytest.raises(InputError, match=re.escape(named)) as caught:
            train_gca_tam(gca_tam_config_from_dict(_video_cfg(video_root, run, steps=3, **change)), progress="none")
        assert caught.value.path == str(run / "checkpoint.pt") and "--no-resume" in str(caught.value)
        assert (run / "config.json").read_bytes() == written and checkpoint_step(run) == 1
    longer = train_gca_tam(gca_tam_config_from_dict(_video_cfg(video_root, run, steps=2, checkpoint_every=7)),
                           progress="none")
    assert longer.step == 2 and '"checkpoint_every": 7' in (run / "config.json").read_text()
    # Fewer steps than the checkpoint's: refused, and config.json still the run's (it said 1 step).
    written = (run / "config.json").read_bytes()
    with pytest.raises(InputError, match="the checkpoint is at step 2, past the configured 1 steps"):
        train_gca_tam(gca_tam_config_from_dict(_video_cfg(video_root, run, steps=1, checkpoint_every=7)),
                      progress="none")
    assert (run / "config.json").read_bytes() == written


def test_a_diverged_loss_is_an_error_with_the_fix(video_root: Path, tmp_path: Path) -> None:
    """A non-finite loss ended in a FloatingPointError reported as a bug (exit 1)."""
    from tcvom.models import build_gca

    state = build_gca(temporal=True).state_dict()
    state["encoder.conv1.module.weight_bar"].fill_(1e30)  # finite, but the activations overflow
    torch.save(state, tmp_path / "damaged.pth")
    cfg = gca_tam_config_from_dict(_video_cfg(video_root, tmp_path / "run", steps=1, init=str(tmp_path / "damaged.pth")))
    with pytest.raises(InputError, match="at step 0: training diverged") as caught:
        train_gca_tam(cfg, progress="none")
    assert "optim.lr" in str(caught.value)


def test_weights_an_update_made_non_finite_are_not_saved(video_root: Path, tmp_path: Path) -> None:
    """Training QA: weight_decay = inf (a finite loss) made half the weights NaN; the run
    exited 0 with a weights.pth that tcvom itself refused to load."""
    cfg = gca_tam_config_from_dict(_video_cfg(video_root, tmp_path / "run", steps=2, optim={"lr": 1e-3}))
    cfg.optim.weight_decay = float("inf")  # the config refuses it now; a script's object may still hold it
    with pytest.raises(InputError, match=r"weight tensors became NaN or infinite at step 0: training diverged "
                       r"\(nothing was saved\)") as caught:
        train_gca_tam(cfg, progress="none")
    assert "--no-resume" in str(caught.value)
    assert not (tmp_path / "run" / "weights.pth").exists() and not (tmp_path / "run" / "checkpoint.pt").exists()


def test_a_run_folder_is_checked_and_cleared_of_a_killed_save(video_root: Path, tmp_path: Path) -> None:
    """Training QA: a save killed mid-write left .checkpoint.tcvom-tmp-... (as big as a
    checkpoint) that no resume removed; a read-only run folder was named by a temporary."""
    import os
    import subprocess
    import sys

    from tcvom.io.atomic import temporary_name

    run = tmp_path / "run"
    run.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leftover = temporary_name(run / "checkpoint.pt")
    leftover = leftover.with_name(leftover.name.replace(f"-{os.getpid()}", f"-{dead.stdout.strip()}"))
    leftover.write_bytes(b"half a checkpoint")
    train_gca_tam(gca_tam_config_from_dict(_video_cfg(video_root, run, steps=1)), progress="none")
    assert not leftover.exists() and (run / "checkpoint.pt").exists()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(InputError, match="is a file, not a folder") as caught:
        train_gca_tam(gca_tam_config_from_dict(_video_cfg(video_root, blocker / "run", steps=1)), progress="none")
    assert caught.value.path == str(blocker / "run") and "'out' folder in the config" in str(caught.value)


def test_a_three_frame_run_from_before_the_l_tc_default_followed_the_window_resumes(video_root: Path,
                                                                                   tmp_path: Path) -> None:
    """Its checkpoint recorded loss.temporal 0.5 (never trained: 3 frames predict one); the
    default is 0 now, and 0.5 is refused: the resume must not call it another config."""
    data = {"kind": "video", "root": str(video_root), "crop": 32, "workers": 0, "max_radius": 3, "frames": 3}
    train_gca_tam(gca_tam_config_from_dict(_video_cfg(video_root, tmp_path / "run", steps=1, data=data)),
                  progress="none")
    state = torch.load(tmp_path / "run" / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert state["config"]["loss"]["temporal"] == 0.0
    state["config"]["loss"]["temporal"] = 0.5  # as the run's config was recorded before
    torch.save(state, tmp_path / "run" / "checkpoint.pt")
    result = train_gca_tam(gca_tam_config_from_dict(_video_cfg(video_root, tmp_path / "run", steps=2, data=data)),
                           progress="none")
    assert result.step == 2


def test_a_missing_init_file_names_the_config_and_key(video_root: Path, tmp_path: Path) -> None:
    config = tmp_path / "run.json"
    import json

    config.write_text(json.dumps(_video_cfg(video_root, tmp_path / "run", steps=1, init="nowhere.pth")))
    with pytest.raises(InputError, match=r"init \(the weights to start from\) is not there") as caught:
        train_gca_tam(load_gca_tam_config(config), progress="none")
    assert caught.value.path == str(config)


def test_an_init_file_that_does_not_load_names_the_config_and_key(video_root: Path, tmp_path: Path) -> None:
    """Bases QA: a truncated init file, or one of another network, was refused naming the
    weight file alone, not the config and key that named it."""
    import json

    from tcvom.errors import TcvomError
    from tcvom.models.bases import build_matting

    torch.save(build_matting("index_tam").state_dict(), tmp_path / "other.pth")
    (tmp_path / "cut.pth").write_bytes((tmp_path / "other.pth").read_bytes()[:4096])
    for name, said in (("cut.pth", "not a readable PyTorch checkpoint"), ("other.pth", "do not fit")):
        config = tmp_path / f"{name}.json"
        config.write_text(json.dumps(_video_cfg(video_root, tmp_path / "run", steps=1, init=name)))
        with pytest.raises(TcvomError) as caught:
            train_gca_tam(load_gca_tam_config(config), progress="none")
        assert f"init (the weights to start from, set in {config})" in str(caught.value), caught.value
        assert said in str(caught.value) and caught.value.path == str(tmp_path / name)


def test_a_resume_does_not_read_init_again(video_root: Path, tmp_path: Path) -> None:
    """Training QA: a run started from `init` could not be resumed once that file was moved
    or cleaned up, although the checkpoint holds the whole model; the advice (set init to a
    .pth file) then met "another config"."""
    from tcvom.models.bases import build_matting

    init = tmp_path / "start.pth"
    torch.save(build_matting("gca_tam").state_dict(), init)
    run = tmp_path / "run"
    train_gca_tam(gca_tam_config_from_dict(_video_cfg(video_root, run, steps=2, init=str(init))), progress="none",
                  stop_after=1)
    init.unlink()
    result = train_gca_tam(gca_tam_config_from_dict(_video_cfg(video_root, run, steps=2, init=str(init))),
                           progress="none")
    assert result.step == 2 and checkpoint_step(run) == 2
    with pytest.raises(InputError, match=r"init \(the weights to start from\) is not there"):  # starting over reads it
        train_gca_tam(gca_tam_config_from_dict(_video_cfg(video_root, run, steps=2, init=str(init))), progress="none",
                      resume=False)


def test_stm_weights_are_saved_in_the_published_key_order(shared_dir: Path, tmp_path: Path) -> None:
    """Training QA: docs/training.md promises the published key order; STM's weights.pth had
    Encoder_M's mask convolutions after its stem (the modules are built in another order)."""
    from tcvom.models.stm import build_stm
    from tcvom.train.loops import _Run

    published = [line.split("\t")[0] for line in (shared_dir / "reference" / "stm_state_dict.tsv").read_text().splitlines()
                 if line.strip()]
    model = build_stm()
    optimizer = torch.optim.Adam(model.parameters())
    _Run(tmp_path / "run", "stm", {}, resume=False).save(0, model, optimizer, torch.amp.GradScaler("cuda", enabled=False))
    saved = checkpoints.read_state_dict(tmp_path / "run" / "weights.pth")
    assert list(saved) == published
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())


def _signalled_at(monkeypatch: pytest.MonkeyPatch, calls: set[int], number: int) -> None:
    """Send ``number`` to this process in the middle of the steps numbered ``calls`` of the
    next session (after the forward pass has updated batch-norm statistics and the
    spectral-norm vectors, before backward and Adam)."""
    import os
    import signal

    from tcvom.train import loops

    original = loops.gca_tam_losses
    count = iter(range(100))

    def losses(*args: object, **kwargs: object) -> object:
        if next(count) in calls:
            os.kill(os.getpid(), signal.Signals(number))
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(loops, "gca_tam_losses", losses)


def _state(run: Path) -> dict:
    return torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)


def _same(a: object, b: object) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return isinstance(b, list | tuple) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@pytest.fixture
def python_sigint():
    """Ctrl-C as Python takes it (a test suite started in the background by a shell has
    SIGINT ignored, which the training loop then leaves alone)."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_and_sigterm_mid_step_stop_at_the_step_boundary(video_root: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               python_sigint: None) -> None:
    """Ctrl-C or SIGTERM in the middle of a step saved the model with that step's forward
    pass (batch-norm statistics, spectral-norm vectors) under the previous step's number:
    the resumed run diverged from an uninterrupted one. The step now completes, its
    checkpoint is written, then the same KeyboardInterrupt / Terminated is raised."""
    import signal

    from tcvom.cli import _terminate_as_interrupt
    from tcvom.errors import Terminated

    whole = train_gca_tam(gca_tam_config_from_dict(_video_cfg(video_root, tmp_path / "a", steps=4)), progress="none")
    cfg = gca_tam_config_from_dict(_video_cfg(video_root, tmp_path / "b", steps=4))
    sigint = signal.getsignal(signal.SIGINT)
    with monkeypatch.context() as patch:
        _signalled_at(patch, {1}, signal.SIGINT)
        with pytest.raises(KeyboardInterrupt) as caught:
            train_gca_tam(cfg, progress="none")
    assert type(caught.value) is KeyboardInterrupt and checkpoint_step(tmp_path / "b") == 2
    assert signal.getsignal(signal.SIGINT) is sigint  # the handler is given back
    with monkeypatch.context() as patch, _terminate_as_interrupt():  # the command line's SIGTERM handler
        _signalled_at(patch, {0}, signal.SIGTERM)
        with pytest.raises(Terminated):
            train_gca_tam(cfg, progress="none")
    assert checkpoint_step(tmp_path / "b") == 3
    last = train_gca_tam(cfg, progress="none")
    assert last.step == 4 and [r["step"] for r in last.rows] == [3]
    a, b = _state(tmp_path / "a"), _state(tmp_path / "b")
    assert _same(a["model"], b["model"]), "resumed weights differ from the uninterrupted run"
    assert _same(a["optimizer"], b["optimizer"]), "resumed Adam state differs from the uninterrupted run"
    with open(tmp_path / "b" / "log.csv", newline="") as handle:
        assert [int(r["step"]) for r in csv.DictReader(handle)] == [0, 1, 2, 3]
    assert whole.step == 4


def test_a_corrupt_frame_read_by_a_worker_is_the_same_one_line_error(video_root: Path, tmp_path: Path) -> None:
    """With data.workers > 0 a ReadError reached the user as torch's "Caught ReadError in
    DataLoader worker process 0. Original Traceback ..." (27 lines) instead of tcvom's line."""

    from tcvom.errors import ReadError

    root = tmp_path / "data"
    shutil.copytree(video_root, root)
    for png in (root / "FG_done").rglob("*.png"):
        if png.name != "00000.png":  # the first frame's header is read when the run starts (its size)
            png.write_bytes(b"not a PNG")
    errors = []
    for workers in (0, 1):
        data = {"kind": "video", "root": str(root), "crop": 32, "workers": workers, "max_radius": 3}
        cfg = gca_tam_config_from_dict(_video_cfg(root, tmp_path / f"run{workers}", steps=1, data=data))
        with pytest.raises(ReadError) as caught:
            train_gca_tam(cfg, progress="none")
        errors.append(caught.value)
    alone, worker = errors
    assert type(worker) is ReadError and str(worker) == str(alone) and "\n" not in str(worker)
    assert "cannot decode the image" in str(worker) and Path(worker.path or "").parent.parent.parent.name == "FG_done"
    # Eval QA: it named no frame, no clip and no way out
    assert alone.frame is not None and f"frame {alone.frame}: clip " in str(alone), str(alone)
    assert "leave the clip out (list the other clips in the config's 'clips')" in str(alone)


def test_data_errors_name_the_config_file_and_key_before_the_run_folder_is_written(
        image_folders: dict[str, Path], video_root: Path, tmp_path: Path) -> None:
    """A missing data.root named only the folder, image data in the main stage said "set
    data.frames = 3" without the config file, and both came after config.json was written."""
    config = tmp_path / "run.toml"
    config.write_text('out = "run"\nsteps = 1\n[data]\nroot = "no-such-folder"\nworkers = 0\n')
    with pytest.raises(InputError, match=r"data\.root is not a folder") as caught:
        train_gca_tam(load_gca_tam_config(config), progress="none")
    assert caught.value.path == str(config) and "relative to the config file" in str(caught.value)
    folders = "".join(f'{key} = "{image_folders[name]}"\n' for key, name in
                      (("fg_dir", "fg"), ("alpha_dir", "alpha"), ("bg_dir", "bg")))
    config.write_text(f'out = "run"\nsteps = 1\n[data]\nkind = "image"\ncrop = 32\n{folders}')
    with pytest.raises(InputError, match=r"data\.frames is 5 \(the main stage's default\)") as caught:
        train_gca_tam(load_gca_tam_config(config), progress="none")
    assert caught.value.path == str(config) and 'stage = "pretrain"' in str(caught.value)
    config.write_text(f'out = "run"\nsteps = 1\nstage = "pretrain"\n[data]\nkind = "image"\ncrop = 32\n{folders}')
    with pytest.raises(InputError, match="set 'init'") as caught:
        train_gca_tam(load_gca_tam_config(config), progress="none")
    assert caught.value.path == str(config)
    # Docs QA: a dataset made by `tcvom eval --make-synthetic` (the advice for a folder that is
    # none) lists only its val split; the default train split was missing, said without the key
    made = tmp_path / "made"
    shutil.copytree(video_root, made)
    (made / "train_videos.txt").unlink()
    config.write_text('out = "run"\nsteps = 1\n[data]\nroot = "made"\nworkers = 0\n')
    with pytest.raises(InputError, match=r"data\.split is 'train', but the dataset has no train_videos\.txt") as caught:
        train_gca_tam(load_gca_tam_config(config), progress="none")
    assert caught.value.path == str(config) and "set data.split to one of its splits (val)" in str(caught.value)
    config.write_text('out = "run"\nsteps = 1\n[data]\nroot = "made"\nsplit = "val"\nsubset = true\nworkers = 0\n')
    with pytest.raises(InputError, match=r"no val_videos_subset\.txt.*set data\.subset = false"):
        train_gca_tam(load_gca_tam_config(config), progress="none")
    config.write_text('out = "run"\nsteps = 1\namp = true\n[data]\nroot = "."\n')
    with pytest.raises(InputError, match=r"amp = true") as caught:
        train_gca_tam(load_gca_tam_config(config), progress="none")
    assert caught.value.path == str(config)
    assert not (tmp_path / "run").exists()


def test_a_second_signal_is_not_held_and_one_noted_before_a_failure_stops_the_run(python_sigint: None) -> None:
    """Review: a step or a batch that never ended could not be stopped by any number of
    Ctrl-C; a worker killed by the Ctrl-C as it started made the run a failure (exit 1)."""
    import os
    import signal

    from tcvom.errors import Terminated
    from tcvom.train.loops import _HeldSignals

    before = signal.getsignal(signal.SIGINT)
    held = _HeldSignals()
    with pytest.raises(KeyboardInterrupt), held:
        os.kill(os.getpid(), signal.SIGINT)
        assert held.noted == [signal.SIGINT]  # the first is held to the step's end
        os.kill(os.getpid(), signal.SIGINT)
        raise AssertionError("the second Ctrl-C was held")
    assert signal.getsignal(signal.SIGINT) is before
    with pytest.raises(Terminated), _HeldSignals():
        os.kill(os.getpid(), signal.SIGTERM)
        raise RuntimeError("DataLoader worker (pid 1) exited unexpectedly")
