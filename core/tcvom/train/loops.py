"""Training loops: the matting networks (GCA+TAM, FBA+TAM, DIM+TAM, Index+TAM: TAM
pre-training and the main stage; the single-image baselines) and the STM trimap network.

Zhang et al., "Attention-guided Temporally Coherent Video Object Matting", ACM MM 2021,
sections 3.3 (video matting network) and 3.4 (trimap generation), following the reference
training code where the paper is silent (``shared/reference/GCA_TAM_NOTES.md``).

- :func:`train_gca_tam`: pre-training (``stage = "pretrain"``: three affinely warped
  frames of image data, the centre frame predicted, L_im only, everything before the TAM
  frozen in eval mode and run without gradients; by default only the TAM is trained, as in
  the reference code) or the main stage (five frames in, the middle three predicted,
  ``L_im + 0.5 L_tc + 0.25 L_af``, everything trained). ``network = "gca"`` trains the
  single-image baseline on the same windows with L_im only. The other bases train the
  same way with their own L_im (DIM and IndexNet: alpha, composition and gradient; FBA:
  its own terms, :func:`tcvom.train.losses.fba_image_loss`, and L_tc on F and B too).
- :func:`train_stm`: the STM trimap network, image pre-training on perspective "fake
  sequences" then video with a growing maximum frame skip; class-weighted cross-entropy
  (unknown weighted 4), batch norm frozen (eval mode, "bn" parameters not trained).

Both use Adam with coupled weight decay 1e-4 and the schedule of the config, mixed
precision on CUDA when ``amp`` is set, and write into the run folder ``out``:

- ``checkpoint.pt``: model, optimizer and step, for resuming (read with
  ``torch.load(weights_only=True)``);
- ``weights.pth``: the model's flat state_dict in the published key layout, loadable by
  :func:`tcvom.matting.gca_session.load_gca_model` / :func:`tcvom.models.stm.load_stm_model`;
- ``log.csv``: one row per step with the learning rate and every loss term;
- ``config.json``: the resolved config.

A run that finds ``checkpoint.pt`` in ``out`` resumes from it (``resume=False`` starts
over). Every sample's randomness comes from ``(seed, sample number)``, so an interrupted and
resumed run gives the same weights as an uninterrupted one (bit for bit on one CPU thread;
multi-threaded and GPU kernels differ run to run in the last bits).
"""

from __future__ import annotations

import csv
import json
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, default_collate

from tcvom.data.vm108 import FG_FOLDER, split_file, splits
from tcvom.errors import InputError, TcvomError, Terminated, WeightsError, listed_differences
from tcvom.io.atomic import ensure_writable_folder, remove_dead_temporaries, write_text
from tcvom.models import bases
from tcvom.models.gca_tam import FrameFeatures, GcaMatting, make_input
from tcvom.models.split_matting import SplitMatting
from tcvom.progress import Progress, ProgressMode
from tcvom.train import data as tdata
from tcvom.train.config import TC_FRAMES, GcaTamConfig, OptimConfig, StmConfig, to_dict
from tcvom.train.losses import (
    LossWeights,
    affinity_loss,
    fba_image_loss,
    fba_temporal_loss,
    image_loss,
    refine,
    refine_colours,
    temporal_coherence_loss,
    total_loss,
)
from tcvom.weights import checkpoints

CHECKPOINT = "checkpoint.pt"
WEIGHTS = "weights.pth"
LOG = "log.csv"
CHECKPOINT_FORMAT = "tcvom-train-1"


@dataclass
class TrainResult:
    """What a training session did: ``step`` (steps completed in the run), the files, and
    this session's per-step log rows."""

    step: int
    out: Path
    weights: Path
    checkpoint: Path
    log: Path
    rows: list[dict[str, float]] = field(default_factory=list)


# --- schedule and optimizer -----------------------------------------------------------------------


def learning_rate(optim: OptimConfig, step: int, steps: int) -> float:
    """The learning rate of step ``step`` (0-based) of ``steps``.

    ``poly``: ``lr * (1 - step / steps) ** power``; ``stair``: ``lr`` then ``stair_lrs[i]``
    from step ``milestones[i] * steps`` on; ``constant``: ``lr``.
    """
    if optim.schedule == "poly":
        return optim.lr * (1.0 - step / steps) ** optim.power
    if optim.schedule == "stair":
        lr = optim.lr
        for fraction, value in zip(optim.milestones, optim.stair_lrs, strict=True):
            if step >= fraction * steps:
                lr = value
        return lr
    return optim.lr


def _device(name: str, amp: bool, source: str = "") -> torch.device:
    """The config's ``device``; ``source``: the config file, named by the errors."""
    from tcvom.models.devices import resolve_device

    try:
        dev = resolve_device(name, setting='device = "{}" in the training config')
    except InputError as exc:
        raise InputError(f"device: {exc.message}", path=source or None, hint=exc.hint) from exc
    if amp and dev.type != "cuda":
        raise InputError("mixed precision (amp = true) needs a CUDA device", path=source or None,
                         hint="set amp = false in the training config on the CPU")
    return dev


def make_loader(dataset: Dataset, batch_size: int, start: int, steps: int, workers: int,
                overfit_batches: int = 0) -> DataLoader:
    """Batches of steps ``start..steps-1``: step s reads samples ``s*B .. s*B+B-1`` (or, with
    ``overfit_batches = N``, those of step ``s mod N``)."""
    indices: list[int] = []
    for step in range(start, steps):
        s = step % overfit_batches if overfit_batches > 0 else step
        indices.extend(range(s * batch_size, (s + 1) * batch_size))
    return DataLoader(
        _ErrorsReturned(dataset) if workers > 0 else dataset,
        batch_size=batch_size,
        sampler=indices,
        collate_fn=_collate if workers > 0 else None,
        num_workers=workers,
        worker_init_fn=_worker_init if workers > 0 else None,
        # Spawned, not forked: a worker forked while the parent's OpenMP or OpenCV thread
        # pools hold a lock deadlocks (seen under pytest). Scripts that train with workers
        # need the usual ``if __name__ == "__main__":`` guard.
        multiprocessing_context="spawn" if workers > 0 else None,
        persistent_workers=False,
        # its own generator: each iterator draws its workers' base seed, which from torch's
        # global one moved the dropout masks of a resumed run (its iterator starts mid-run)
        generator=torch.Generator(),
    )


def _worker_init(_: int) -> None:
    # Workers decode and warp images only; one OpenCV thread each.
    import cv2

    cv2.setNumThreads(1)
    # Ctrl-C in a terminal reaches the workers too: the training process stops at a step
    # boundary and then ends them; a worker that died first failed the batch being loaded
    # with torch's "worker exited unexpectedly". SIGTERM keeps torch's handler (it ends a
    # worker that hangs). Both were blocked while the worker started (_batches).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)


class _ErrorsReturned(Dataset):
    """A dataset whose tcvom errors (a corrupt frame) are returned as the sample, in a
    DataLoader worker: torch re-raised them in the training process as "Caught ReadError
    in DataLoader worker process 1. Original Traceback ...". :func:`_collate` passes the
    error on and :func:`_batches` raises it as it was raised (it pickles whole)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        try:
            return self.dataset[index]
        except TcvomError as exc:
            return exc


def _collate(samples: list[Any]) -> Any:
    """torch's batching, or the first :class:`TcvomError` among the samples."""
    for sample in samples:
        if isinstance(sample, TcvomError):
            return sample
    return default_collate(samples)


# --- run folder: checkpoint, weights, log ------------------------------------------------------


#: Config keys a resumed run may change: where and how it runs and for how long (the
#: schedule is then spread over the new length), not what it learns from or how.
RESUMABLE = frozenset({"out", "steps", "checkpoint_every", "device", "data.workers"})


def _flat(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"data.crop": 512, ...}`` of a nested config dict."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


class _Run:
    """The run folder: checkpoint / weights writing, resume and the CSV log."""

    def __init__(self, out: str | Path, kind: str, config: dict[str, Any], resume: bool) -> None:
        # The run folder is made and checked before training starts; what a killed save left
        # half-written there (a checkpoint's temporary is as big as the checkpoint) is removed.
        self.out = ensure_writable_folder(out, given_as="'out' folder in the config")
        remove_dead_temporaries(self.out)
        self.kind = kind
        self.config = config
        self.resume = resume
        self.checkpoint = self.out / CHECKPOINT
        self.weights = self.out / WEIGHTS
        self.log = self.out / LOG

    def load(self) -> dict[str, Any] | None:
        """The checkpoint to resume from (None: start at step 0), refused if it is of another
        kind of run or was written with another config; then ``config.json`` is this run's."""
        state = self._checkpoint()
        write_text(self.out / "config.json", json.dumps(self.config, indent=1, sort_keys=True))
        return state

    def _checkpoint(self) -> dict[str, Any] | None:
        if not self.resume or not self.checkpoint.exists():
            return None
        try:
            state = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise WeightsError(f"cannot read the training checkpoint: {exc}", path=self.checkpoint,
                               hint="delete it (or pass --no-resume) to start over") from exc
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise WeightsError("not a tcvom training checkpoint", path=self.checkpoint)
        if state.get("kind") != self.kind:
            raise WeightsError(f"the checkpoint is of a {state.get('kind')} run, not {self.kind}",
                               path=self.checkpoint, hint="use another 'out' folder")
        recorded = state.get("config")
        if isinstance(recorded, dict):  # continuing with another dataset, loss or rate mixed two runs
            before, now = _flat(recorded), _flat(self.config)
            frames = before.get("data.frames")
            if isinstance(frames, int) and frames < TC_FRAMES and "loss.temporal" in before:
                before["loss.temporal"] = 0.0  # recorded 0.5 before its default followed the window: never trained
            diffs = [(k, before.get(k, "(none)"), now.get(k, "(none)")) for k in sorted(before.keys() | now.keys())
                     if k not in RESUMABLE and before.get(k, "(none)") != now.get(k, "(none)")]
            if diffs:
                raise InputError(f"the checkpoint was written with another config: {listed_differences(diffs)}",
                                 path=self.checkpoint, hint="resume with the config the run was started with, "
                                 "pass --no-resume to start over, or use another 'out' folder")
        step, steps = state.get("step"), self.config.get("steps")
        if isinstance(step, int) and isinstance(steps, int) and step > steps:
            raise InputError(f"the checkpoint is at step {step}, past the configured {steps} steps",
                             path=self.checkpoint, hint=f"set steps to {step} or more to go on, or pass --no-resume "
                             "to start over")
        return state

    def save(self, step: int, model: nn.Module, optimizer: torch.optim.Optimizer,
             scaler: torch.amp.GradScaler) -> None:
        named = model.state_dict()
        order = getattr(model, "release_order", None)  # a network whose modules are built in another order
        weights = {k: named[k].detach().cpu() for k in (order(list(named)) if order else named)}
        state = {
            "format": CHECKPOINT_FORMAT,
            "kind": self.kind,
            "step": step,
            "model": weights,
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict(),
            "config": self.config,
            "rng": _random_state(),
        }
        checkpoints.save_torch(weights, self.weights)
        checkpoints.save_torch(state, self.checkpoint)

    def open_log(self, start: int, columns: list[str]) -> tuple[Any, csv.DictWriter]:
        """The CSV log, truncated to the rows of steps before ``start`` on a resume."""
        kept: list[dict[str, str]] = []
        if start > 0 and self.log.exists():
            with open(self.log, newline="") as handle:
                kept = [r for r in csv.DictReader(handle) if int(r.get("step", -1)) < start]
        handle = open(self.log, "w", newline="")  # noqa: SIM115  # closed by the caller
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in kept:
            writer.writerow(row)
        return handle, writer


_STOPS = {signal.SIGINT, signal.SIGTERM}


def _batches(loader: DataLoader) -> Iterator[dict[str, Tensor]]:
    # Spawned workers take seconds to import torch: Ctrl-C then killed them before their
    # _worker_init ignored it. They start with the two signals blocked (a child keeps its
    # parent's mask), which this process takes again as soon as they are started.
    block = hasattr(signal, "pthread_sigmask") and loader.num_workers > 0 \
        and threading.current_thread() is threading.main_thread()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS) if block else None
    try:
        batches = iter(loader)
    finally:
        if previous is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    for batch in batches:
        if isinstance(batch, TcvomError):  # from a worker (_ErrorsReturned)
            raise batch
        yield batch


class _HeldSignals:
    """Ctrl-C (SIGINT) and SIGTERM held back until the training step being run is complete.

    Raised mid-step, KeyboardInterrupt left a model with the step's batch-norm statistics
    and spectral-norm vectors (its forward pass) or part of Adam's updates, and the
    checkpoint written then mixed two steps, so a resumed run diverged from an
    uninterrupted one. While held (``with``), a signal is only noted; between steps the
    loop checks :attr:`noted`, writes its checkpoint and calls :meth:`deliver`, which
    hands the signal to the handler that was there before (Python's raises
    KeyboardInterrupt, the command line's :class:`tcvom.errors.Terminated`), or raises as
    those do where there was none (SIGTERM: Terminated, exit code 143). A second signal of
    the same kind is not held (a step or a batch that never ends can still be stopped), and
    one noted before the run failed (a worker it killed) stops the run as asked. Outside the
    main thread Python allows no handler (and delivers no signal): nothing is held there.
    """

    def __init__(self) -> None:
        self.noted: list[int] = []
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _HeldSignals:
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                handler = signal.getsignal(number)
                # An ignored signal stays ignored; None (a handler set outside Python) could
                # not be given back.
                if handler is not signal.SIG_IGN and handler is not None:
                    self._previous[number] = handler
                    signal.signal(number, self._note)
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        if kind is not None and self.noted and not issubclass(kind, (KeyboardInterrupt, Terminated)):
            self.deliver()  # the run failed after a signal (a worker it killed): it stops as asked

    def _note(self, signum: int, frame: object) -> None:
        if signum in self.noted:  # asked again while a step or a batch takes its time: now
            for number, handler in self._previous.items():
                signal.signal(number, handler)
            self.noted = [signum]
            self.deliver()
        self.noted.append(signum)

    def deliver(self) -> None:
        """Act on the first noted signal as its previous handler would have."""
        number = self.noted.pop(0)
        handler = self._previous.get(number)
        if callable(handler):
            handler(number, None)
        elif number == signal.SIGTERM:
            raise Terminated
        else:
            raise KeyboardInterrupt


def _loop(run: _Run, *, model: nn.Module, optimizer: torch.optim.Optimizer,
          optim_cfg: OptimConfig, steps: int, start: int, loader: DataLoader, step_fn: Any,
          columns: list[str], scaler: torch.amp.GradScaler, checkpoint_every: int, progress: ProgressMode,
          stop_after: int | None, job: str) -> TrainResult:
    """The shared step loop: schedule, backward, optimizer step, log, checkpoints. Ctrl-C
    and SIGTERM take effect between steps (:class:`_HeldSignals`): the checkpoint of the
    last complete step is written, then the interruption is raised as it was before."""
    handle, writer = run.open_log(start, ["step", "lr", *columns, "seconds"])
    rows: list[dict[str, float]] = []
    step = start
    saved = start
    end = steps if stop_after is None else min(steps, start + stop_after)
    held = _HeldSignals()

    def between_steps() -> None:
        nonlocal saved
        while held.noted:
            if step > saved:
                run.save(step, model, optimizer, scaler)
                saved = step
            held.deliver()

    try:
        with Progress(job, end - start, mode=progress, unit="step") as bar, held:
            between_steps()
            for batch in _batches(loader):
                between_steps()  # a signal while the batch loaded
                if step >= end:
                    break
                tick = time.perf_counter()
                lr = learning_rate(optim_cfg, step, steps)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                optimizer.zero_grad(set_to_none=True)
                loss, terms = step_fn(batch, step)
                if not torch.isfinite(loss):
                    raise InputError(f"the loss is {loss.item()} at step {step}: training diverged", hint="lower the "
                                     "learning rate (optim.lr) and start over (--no-resume), or check 'init' and the "
                                     "data (tcvom info --weights)")
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                _check_finite(model, step, saved)
                step += 1
                row = {"step": step - 1, "lr": lr, **{k: float(v) for k, v in terms.items()},
                       "seconds": round(time.perf_counter() - tick, 4)}
                rows.append(row)
                writer.writerow(row)
                handle.flush()
                bar.advance(frame=step - 1)
                if step % checkpoint_every == 0 and step < end:
                    run.save(step, model, optimizer, scaler)
                    saved = step
                between_steps()
    finally:
        handle.close()
    if step > saved or not run.weights.exists():
        run.save(step, model, optimizer, scaler)
    while held.noted:  # arrived as the last batches' loader closed: the run is saved, it stops as asked
        held.deliver()
    return TrainResult(step, run.out, run.weights, run.checkpoint, run.log, rows)


def _check_finite(model: nn.Module, step: int, saved: int) -> None:
    """Refuse weights an update made NaN or infinite (a finite loss can still take a step
    that overflows them): such weights were saved, and every later use refused them."""
    tensors = [t for t in _tensors(model).values() if t.is_floating_point()]
    if torch.stack([torch.isfinite(t).all() for t in tensors]).all():
        return
    bad = sum(1 for t in tensors if not torch.isfinite(t).all())
    kept = f"the checkpoint of step {saved} is kept" if saved else "nothing was saved"
    raise InputError(f"{bad} of {len(tensors)} weight tensors became NaN or infinite at step {step}: training "
                     f"diverged ({kept})", hint="lower the learning rate (optim.lr) or the weight decay and start "
                     "over (--no-resume), or check 'init' and the data")


def _optimizer(params: list[nn.Parameter], optim: OptimConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=optim.lr, weight_decay=optim.weight_decay)


def _restore(state: dict[str, Any] | None, model: nn.Module, optimizer: torch.optim.Optimizer,
             scaler: torch.amp.GradScaler, path: Path) -> int:
    if state is None:
        return 0
    checkpoints.load_into(model, state["model"], what="the training run's", path=path)
    try:
        optimizer.load_state_dict(state["optimizer"])
    except (ValueError, KeyError) as exc:  # another set of trained parameters
        raise InputError(f"the checkpoint's optimizer state does not fit this run ({exc})", path=path,
                         hint="resume with the config the run was started with, or pass --no-resume") from exc
    if state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    _set_random_state(state.get("rng"))
    return int(state["step"])  # not past the configured steps (_Run.load)


def _random_state() -> dict[str, Any]:
    """torch's generators as a step leaves them, which the next step's dropout draws from
    (Index's ASPP): a resume re-seeded from the config drew other masks than the run it
    continues (the same weights bit for bit only for networks without dropout)."""
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_random_state(state: object) -> None:
    """Restore :func:`_random_state`'s generators (a checkpoint written before it keeps none:
    its run resumes from the config's seed, as it did)."""
    if not isinstance(state, dict) or not isinstance(state.get("cpu"), Tensor):
        return
    torch.set_rng_state(state["cpu"])
    cuda = state.get("cuda")
    if isinstance(cuda, list) and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


# --- GCA+TAM -----------------------------------------------------------------------------------------


MattingNet = GcaMatting | SplitMatting


def _network(model: MattingNet) -> str:
    """``"gca_tam"``, ``"fba"``... of a matting model."""
    if isinstance(model, GcaMatting):
        return "gca_tam" if model.temporal else "gca"
    return model.network


def _tensors(model: nn.Module) -> dict[str, Tensor]:
    """Parameters and buffers by module path (the same names whatever a state_dict hook does)."""
    return {**dict(model.named_parameters()), **dict(model.named_buffers())}


def load_initial(model: MattingNet, path: str | Path) -> list[str]:
    """Load start weights into a matting model; returns the parameter names left at their
    initial values.

    A video network (with the TAM) accepts the single-image checkpoint of its base (the
    TAM, ``decoder.fam.*``, keeps its random initialisation: the pre-training start); a
    single-image model accepts the video checkpoint of its base (its TAM is dropped); the
    layouts differ for DIM, whose single-image checkpoint has flat key names. Anything
    else must match exactly (the error lists missing and unexpected keys).
    """
    state = checkpoints.read_state_dict(path)
    network = _network(model)
    kind = checkpoints.identify(state)
    if kind not in bases.MATTING_KINDS or kind == network or bases.base_of(kind) != bases.base_of(network):
        checkpoints.load_into(model, state, what=bases.kind_name(network), path=path)
        return []
    source = bases.build_matting(kind)
    checkpoints.load_into(source, state, what=bases.kind_name(kind), path=path)
    have = _tensors(source)
    missing = []
    with torch.no_grad():
        for name, tensor in _tensors(model).items():
            if name in have:
                tensor.copy_(have[name])
            else:
                missing.append(name)
    return missing


#: The former name (GCA only), kept for callers.
load_initial_gca = load_initial


def _head_modules(model: MattingNet) -> list[nn.Module]:
    """The decoder layers after the TAM (``trainable = "tam+head"``)."""
    d = model.decoder
    names = {"gca": ("layer3", "layer4", "conv1", "bn1", "conv2"),
             "fba": ("conv_up2", "conv_up3", "conv_up4"),
             "dim": ("dconv3", "dconv2", "dconv1", "alpha_pred"),
             "index": ("decoder_layer3", "decoder_layer2", "decoder_layer1", "decoder_layer0", "pred")}
    return [getattr(d, n) for n in names[bases.base_of(_network(model))]]


def _gca_trainable(model: MattingNet, cfg: GcaTamConfig) -> tuple[list[nn.Parameter], bool]:
    """Set train/eval modes and requires_grad; returns (parameters to train, frozen backbone)."""
    mode = cfg.trainable
    if mode == "auto":
        mode = "tam" if cfg.stage == "pretrain" else "all"
    if mode == "all":
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        return params, False
    if model.decoder.fam is None:
        raise InputError(f"trainable = {mode!r} needs a network with the TAM")
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    modules: list[nn.Module] = [model.decoder.fam]
    if mode == "tam+head":
        modules += _head_modules(model)
    params = []
    for m in modules:
        m.train()
        for name, p in m.named_parameters():
            # Spectral-norm u and v are updated by power iteration, not by the optimizer.
            if not name.endswith(("weight_u", "weight_v")):
                p.requires_grad_(True)
                params.append(p)
    return params, True


def _select(x: Tensor, b: int, t: int, frames: list[int]) -> Tensor:
    """Rows of ``(b*t) x ...`` for the given frame numbers -> ``(b*len(frames)) x ...``."""
    return x.reshape(b, t, *x.shape[1:])[:, frames].flatten(0, 1)


def forward_window(model: GcaMatting, inputs: Tensor, *, frozen: bool = False
                   ) -> tuple[Tensor, Tensor | None, Tensor | None, Tensor]:
    """Predict the inner frames of training windows.

    Args:
        model: :class:`GcaTam` or :class:`GcaSingle`.
        inputs: ``B x T x 6 x H x W`` network inputs (:func:`make_input`), T >= 3,
            H and W multiples of 32.
        frozen: run everything before the TAM without gradients.

    Returns:
        (raw alpha ``B x (T-2) x 1 x H x W`` of frames 1..T-2, TAM logits against the previous
        and the next frame ``B x (T-2) x window² x (H/8 * W/8)`` (None for the single-image
        network), the 1/8 unknown masks ``B x (T-2) x 1 x H/8 x W/8``).
    """
    b, t = inputs.shape[:2]
    inner = list(range(1, t - 1))
    with torch.no_grad() if frozen else nullcontext():
        enc = model.encode(inputs.flatten(0, 1))
    cur = FrameFeatures(*(_select(x, b, t, inner) for x in enc))
    logits_prev = logits_next = None
    x = cur.features
    if model.decoder.fam is not None:
        prev = _select(enc.features, b, t, [i - 1 for i in inner])
        nxt = _select(enc.features, b, t, [i + 1 for i in inner])
        x, lp, ln = model.decoder.fam.forward_with_logits(prev, x, nxt, cur.unknown)
        logits_prev = lp.reshape(b, t - 2, *lp.shape[1:])
        logits_next = ln.reshape(b, t - 2, *ln.shape[1:])
    raw = model.decoder.head(x, cur.shortcut1, cur.shortcut2, cur.shortcut3)
    unknown = cur.unknown.reshape(b, t - 2, *cur.unknown.shape[1:])
    return raw.reshape(b, t - 2, *raw.shape[1:]), logits_prev, logits_next, unknown


def forward_window_split(model: SplitMatting, image: Tensor, trimap: Tensor, *, frozen: bool = False
                         ) -> tuple[tuple[Tensor, ...], Tensor | None, Tensor | None, Tensor]:
    """:func:`forward_window` for the FBA, DIM and IndexNet networks.

    Args:
        model: a :class:`SplitMatting` (with or without the TAM).
        image: ``B x T x 3 x H x W`` RGB in [0, 1]; trimap: ``B x T x 1 x H x W`` uint8
            (H, W multiples of 32), T >= 3.
        frozen: run everything before the TAM without gradients.

    Returns:
        (the network's outputs of frames 1..T-2, each ``B x (T-2) x C x H x W``: alpha, and
        for FBA the foreground and background; the TAM logits and the 1/8 unknown masks as
        :func:`forward_window` returns them).
    """
    b, t = image.shape[:2]
    inner = list(range(1, t - 1))
    inputs = model.make_inputs(image.flatten(0, 1), trimap.flatten(0, 1))
    with torch.no_grad() if frozen else nullcontext():
        features, unknown, *skips = model.part_a(*(inputs[p.name] for p in model.inputs))
    x = _select(features, b, t, inner)
    unknown = _select(unknown, b, t, inner)
    skips = [_select(s, b, t, inner) for s in skips]
    logits_prev = logits_next = None
    fam = model.fam
    if fam is not None:
        prev = _select(features, b, t, [i - 1 for i in inner])
        nxt = _select(features, b, t, [i + 1 for i in inner])
        x, lp, ln = fam.forward_with_logits(prev, x, nxt, unknown)
        logits_prev = lp.reshape(b, t - 2, *lp.shape[1:])
        logits_next = ln.reshape(b, t - 2, *ln.shape[1:])
    outputs = model.head(x, *skips)
    return (tuple(o.reshape(b, t - 2, *o.shape[1:]) for o in outputs), logits_prev, logits_next,
            unknown.reshape(b, t - 2, *unknown.shape[1:]))


def gca_tam_losses(batch: dict[str, Tensor], raw: Tensor, logits_prev: Tensor | None, logits_next: Tensor | None,
                   unknown: Tensor, *, image_terms: tuple[str, ...], weights: LossWeights,
                   colours: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, dict[str, Tensor]]:
    """Eq. 6 on a batch of windows (:func:`forward_window` outputs, shapes there).

    L_im is averaged over the predicted frames (each over the batch), L_tc over consecutive
    predicted pairs, L_af over the predicted frames; a term with weight 0 is not computed.
    ``colours``: FBA's predicted foreground and background (``B x (T-2) x 3 x H x W``):
    then L_im is FBA's (:func:`fba_image_loss`) and L_tc includes F and B
    (:func:`fba_temporal_loss`).
    Returns (total, ``{"loss", "l_im", "l_<image term>"..., "l_tc", "l_af"}`` detached).
    """
    raw = raw.float()
    alpha, mask = batch["alpha"], batch["mask"]
    inner = slice(1, alpha.shape[1] - 1)
    gt, m = alpha[:, inner], mask[:, inner]
    n = raw.shape[1]
    per_term: dict[str, list[Tensor]] = {}
    for i in range(n):
        c = i + 1
        if colours is not None:
            terms = fba_image_loss(raw[:, i], colours[0][:, i].float(), colours[1][:, i].float(), gt[:, i], m[:, i],
                                   batch["fg"][:, c], batch["bg"][:, c], batch["image"][:, c], terms=image_terms)
        else:
            extra = {}
            if "composition" in image_terms:
                extra = {"fg": batch["fg"][:, c], "bg": batch["bg"][:, c], "image": batch["image"][:, c]}
            terms = image_loss(raw[:, i], gt[:, i], m[:, i], terms=image_terms, **extra)
        for k, v in terms.items():
            per_term.setdefault(k, []).append(v)
    im_terms = {k: torch.stack(v).mean() for k, v in per_term.items()}
    l_im = torch.stack(list(im_terms.values())).sum()
    l_tc = None
    if weights.temporal > 0 and n >= 2:
        if colours is not None:
            true_fg, true_bg = batch["fg"][:, inner], batch["bg"][:, inner]
            fgs, bgs = zip(*(refine_colours(colours[0][:, i].float(), colours[1][:, i].float(), true_fg[:, i],
                                            true_bg[:, i], m[:, i]) for i in range(n)), strict=True)
            l_tc = fba_temporal_loss(refine(raw, gt, m), torch.stack(fgs, 1), torch.stack(bgs, 1), gt, true_fg,
                                     true_bg, m)
        else:
            l_tc = temporal_coherence_loss(refine(raw, gt, m), gt, m)
    l_af = None
    if weights.affinity > 0 and logits_prev is not None and logits_next is not None:
        l_af = torch.stack([
            affinity_loss(logits_prev[:, i].float(), logits_next[:, i].float(), alpha[:, i], alpha[:, i + 1],
                          alpha[:, i + 2], unknown[:, i], theta=weights.theta, target=weights.target)
            for i in range(n)
        ]).mean()
    total = total_loss(l_im, l_tc, l_af, weights)
    terms = {"loss": total.detach(), "l_im": l_im.detach(), **{f"l_{k}": v.detach() for k, v in im_terms.items()}}
    if l_tc is not None:
        terms["l_tc"] = l_tc.detach()
    if l_af is not None:
        terms["l_af"] = l_af.detach()
    return total, terms


def _check_folders(cfg: GcaTamConfig | StmConfig) -> None:
    """Refuse a data folder of the config that is not there, naming its key and the config
    file (the dataset's own error named only the folder)."""
    d = cfg.data
    keys = ("root",) if d.kind == "video" else ("fg_dir", "alpha_dir", "bg_dir")
    for key in keys:
        folder = getattr(d, key)
        if not Path(folder).is_dir():
            raise InputError(f"data.{key} is not a folder: {folder}", path=cfg.source or None,
                             hint=f"set data.{key} to the dataset's folder (a relative path is relative to the "
                             "config file)")
    if d.kind == "video" and (Path(d.root) / FG_FOLDER).is_dir():  # a dataset (the dataset says what else is not)
        listed = split_file(d.root, d.split, d.subset)
        if not listed.is_file():
            known = splits(d.root, d.subset)
            if d.subset and split_file(d.root, d.split).is_file():
                hint = f"set data.subset = false (the dataset lists the whole '{d.split}' split, not a subset of it)"
            elif known:
                hint = f"set data.split to one of its splits ({', '.join(known)})"
            else:
                hint = f"write {listed}, the training clips' names one per line"
            raise InputError(f"data.split is '{d.split}', but the dataset has no {listed.name} ({listed})",
                             path=cfg.source or None, hint=hint)


def _resuming(cfg: GcaTamConfig | StmConfig, resume: bool) -> bool:
    """Whether the run goes on from its checkpoint, which holds the whole model: ``init``
    is then not read (it may have been moved or cleaned up since the run started; the
    config, which names it, must still be the run's)."""
    return resume and (Path(cfg.out) / CHECKPOINT).is_file()


def _check_init(cfg: GcaTamConfig | StmConfig) -> None:
    """Refuse an ``init`` that is not a file, naming the key and the config file (the weight
    reader's error named only the path)."""
    if not Path(cfg.init).is_file():
        what = "a folder" if Path(cfg.init).is_dir() else "not there"
        raise InputError(f"init (the weights to start from) is {what}: {cfg.init}", path=cfg.source or None,
                         hint="set init to a .pth file (a relative path is relative to the config file)")


@contextmanager
def _init_named(cfg: GcaTamConfig | StmConfig) -> Iterator[None]:
    """An error reading or loading ``init`` names the key and the config file too (bases QA:
    a truncated file, or one of another base, named the weight file alone)."""
    try:
        yield
    except TcvomError as exc:
        if cfg.source:
            exc.message = f"init (the weights to start from, set in {cfg.source}): {exc.message}"
        raise


def build_gca_dataset(cfg: GcaTamConfig) -> Dataset:
    """The dataset of a GCA+TAM config (affine triplets of image data, or video windows)."""
    length = cfg.steps * cfg.batch_size
    d = cfg.data
    if d.kind == "image" and d.frames != 3:
        stage = " (the main stage's default)" if cfg.stage == "main" else ""
        raise InputError(f"image data makes three-frame sequences, but data.frames is {d.frames}{stage}",
                         path=cfg.source or None, hint='set data.frames = 3 (or stage = "pretrain" for the TAM '
                         'pre-training), or use video data (data.kind = "video")')
    _check_folders(cfg)
    if d.kind == "image":
        files = tdata.ImageMattingFiles.from_folders(d.fg_dir, d.alpha_dir, d.bg_dir)
        return tdata.AffineTripletDataset(files, d.crop, length, seed=cfg.seed, max_radius=d.max_radius, eps=d.eps)
    return tdata.VideoWindowDataset(d.root, d.crop, length, split=d.split, clips=d.clips or None, subset=d.subset,
                                    seed=cfg.seed, frames=d.frames, max_radius=d.max_radius, flip=d.flip,
                                    colour=d.colour, jpeg_probability=d.jpeg_probability, eps=d.eps)


def train_matting(cfg: GcaTamConfig, *, progress: ProgressMode = "bar", resume: bool = True,
                  stop_after: int | None = None) -> TrainResult:
    """Train a matting network (any base with the TAM, or a single-image baseline) as
    ``cfg`` says (a resolved config: :func:`tcvom.train.config.load_gca_tam_config`).

    ``stop_after``: end this session after that many steps (a checkpoint is written; run
    again to continue). Returns a :class:`TrainResult`.
    """
    device = _device(cfg.device, cfg.amp, cfg.source)
    torch.manual_seed(cfg.seed)
    base = bases.base_of(cfg.network)
    model: MattingNet = bases.build_matting(cfg.network)  # type: ignore[assignment]
    if cfg.init:
        if not _resuming(cfg, resume):
            _check_init(cfg)
            with _init_named(cfg):
                load_initial(model, cfg.init)
    elif cfg.stage == "pretrain" and cfg.trainable == "auto":  # the TAM alone, on frozen layers
        raise InputError(f"TAM pre-training starts from single-image {base} weights: set 'init'",
                         path=cfg.source or None, hint="the layers before the TAM stay frozen, so random ones would teach "
                         "nothing; train everything (trainable = \"all\") to start from scratch")
    elif cfg.trainable in ("tam", "tam+head"):
        raise InputError(f"trainable = {cfg.trainable!r} trains the TAM on frozen layers, which start from weights: "
                         "set 'init'", path=cfg.source or None, hint="random frozen layers overflow and would teach nothing; train "
                         "everything (trainable = \"all\") to start from scratch")
    model.to(device)
    params, frozen = _gca_trainable(model, cfg)
    optimizer = _optimizer(params, cfg.optim)
    scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp)
    dataset = build_gca_dataset(cfg)  # checked before the run folder is made or its config.json written
    run = _Run(cfg.out, cfg.network, to_dict(cfg), resume)
    start = _restore(run.load(), model, optimizer, scaler, run.checkpoint)
    loader = make_loader(dataset, cfg.batch_size, start, cfg.steps, cfg.data.workers, cfg.overfit_batches)
    weights = LossWeights(cfg.loss.image, cfg.loss.temporal, cfg.loss.affinity, cfg.loss.theta, cfg.loss.target)
    terms = tuple(cfg.loss.image_terms)
    columns = ["loss", "l_im", *[f"l_{t}" for t in terms]]
    if weights.temporal > 0 and cfg.data.frames >= 4:
        columns.append("l_tc")
    if weights.affinity > 0 and bases.is_temporal(cfg.network):
        columns.append("l_af")

    def step_fn(batch: dict[str, Tensor], step: int) -> tuple[Tensor, dict[str, Tensor]]:
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        b, t = batch["alpha"].shape[:2]
        colours = None
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=cfg.amp):
            if isinstance(model, GcaMatting):
                inputs = make_input(batch["image"].flatten(0, 1), batch["trimap"].flatten(0, 1))
                inputs = inputs.reshape(b, t, *inputs.shape[1:])
                raw, lp, ln, unknown = forward_window(model, inputs, frozen=frozen)
            else:
                outputs, lp, ln, unknown = forward_window_split(model, batch["image"], batch["trimap"], frozen=frozen)
                raw = outputs[0]
                if base == "fba":
                    colours = (outputs[1], outputs[2])
        return gca_tam_losses(batch, raw, lp, ln, unknown, image_terms=terms, weights=weights, colours=colours)

    return _loop(run, model=model, optimizer=optimizer, optim_cfg=cfg.optim, steps=cfg.steps,
                 start=start, loader=loader, step_fn=step_fn, columns=columns, scaler=scaler,
                 checkpoint_every=cfg.checkpoint_every, progress=progress, stop_after=stop_after,
                 job=f"train {cfg.network} {cfg.stage}")


#: The former name (GCA only), kept for callers.
train_gca_tam = train_matting


# --- STM -------------------------------------------------------------------------------------------------


def build_stm_dataset(cfg: StmConfig) -> Dataset:
    """The dataset of an STM config (fake sequences of image data, or video triplets)."""
    length = cfg.steps * cfg.batch_size
    d = cfg.data
    _check_folders(cfg)
    if d.kind == "image":
        files = tdata.ImageMattingFiles.from_folders(d.fg_dir, d.alpha_dir, d.bg_dir)
        return tdata.StmImageDataset(files, d.crop, length, seed=cfg.seed)
    return tdata.StmVideoDataset(d.root, d.crop, length, batch_size=cfg.batch_size, split=d.split,
                                 clips=d.clips or None, subset=d.subset, seed=cfg.seed, max_skip=d.max_skip,
                                 skip_start=d.skip_start, skip_growth_steps=d.skip_growth_steps, flip=d.flip)


def stm_inputs(image: Tensor, classes: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """One sample -> (frames ``T x 3 x H x W`` ImageNet-normalised RGB (the encoders normalise
    again, as in the reference training), one-hot ``T x 3 x H x W``, targets ``T x H x W``)."""
    from tcvom.models.stm import IMAGENET_MEAN, IMAGENET_STD

    mean = torch.tensor(IMAGENET_MEAN, device=image.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=image.device).view(1, 3, 1, 1)
    known = torch.where(classes == 255, torch.zeros_like(classes), classes)
    one_hot = F.one_hot(known, 3).permute(0, 3, 1, 2).float()
    return (image - mean) / std, one_hot, classes


def train_stm(cfg: StmConfig, *, progress: ProgressMode = "bar", resume: bool = True,
              stop_after: int | None = None) -> TrainResult:
    """Train the STM trimap network as ``cfg`` says (a resolved config:
    :func:`tcvom.train.config.load_stm_config`). ``data.kind`` picks the data (``image``
    for the pre-training, ``video`` for the main stage); start the main stage from the
    pre-trained weights (``init``)."""
    from tcvom.models.stm import build_stm
    from tcvom.propagation.finetune import sequence_loss, trainable_parameters

    device = _device(cfg.device, cfg.amp, cfg.source)
    torch.manual_seed(cfg.seed)
    model = build_stm()
    if cfg.init and not _resuming(cfg, resume):  # (STM needs no init: nothing refused without one)
        _check_init(cfg)
        with _init_named(cfg):
            checkpoints.load_into(model, checkpoints.read_state_dict(cfg.init), what="STM trimap propagation",
                                  path=cfg.init)
    model.to(device).eval()  # batch norm statistics stay frozen, as in STM and TGM
    params = trainable_parameters(model)
    keep = {id(p) for p in params}
    for p in model.parameters():
        p.requires_grad_(id(p) in keep)
    optimizer = _optimizer(params, cfg.optim)
    scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp)
    dataset = build_stm_dataset(cfg)  # checked before the run folder is made or its config.json written
    run = _Run(cfg.out, "stm", to_dict(cfg), resume)
    start = _restore(run.load(), model, optimizer, scaler, run.checkpoint)
    loader = make_loader(dataset, cfg.batch_size, start, cfg.steps, cfg.data.workers, cfg.overfit_batches)
    columns = ["loss"]
    if isinstance(dataset, tdata.StmVideoDataset):
        columns.append("max_skip")

    def step_fn(batch: dict[str, Tensor], step: int) -> tuple[Tensor, dict[str, Tensor]]:
        losses = []
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=cfg.amp):
            for image, classes in zip(batch["image"], batch["classes"], strict=True):
                frames, one_hot, targets = stm_inputs(image.to(device), classes.to(device))
                losses.append(sequence_loss(model, frames, one_hot, targets, cfg.unknown_weight).float())
        loss = torch.stack(losses).mean()
        terms = {"loss": loss.detach()}
        if isinstance(dataset, tdata.StmVideoDataset):
            terms["max_skip"] = torch.tensor(float(dataset.skip_at(step)))
        return loss, terms

    return _loop(run, model=model, optimizer=optimizer, optim_cfg=cfg.optim, steps=cfg.steps,
                 start=start, loader=loader, step_fn=step_fn, columns=columns, scaler=scaler,
                 checkpoint_every=cfg.checkpoint_every, progress=progress, stop_after=stop_after,
                 job=f"train stm {cfg.stage}")


def checkpoint_step(out: str | Path) -> int | None:
    """The step of the training checkpoint in a run folder, or None when there is none."""
    path = Path(out) / CHECKPOINT
    if not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    return int(state["step"])
