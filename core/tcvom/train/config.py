"""Training configuration: dataclasses and the TOML / JSON file format (see docs/training.md).

A config file has top-level keys for the run and three tables, ``[data]``, ``[optim]`` and
``[loss]`` (the last for GCA+TAM only). Every key is optional except ``out``, ``steps`` and
the data location; defaults are the paper's values for the chosen ``stage``. Unknown keys
and values of the wrong type are errors that name the key. Relative paths are relative to
the config file's folder. Nothing in a config is ever evaluated as code.

Example (``configs/gca_tam_main.toml``)::

    stage = "main"
    network = "gca_tam"
    out = "runs/gca_tam_main"
    init = "weights/GCA_TAM_pretrain.pth"
    steps = 100000
    batch_size = 24

    [data]
    kind = "video"
    root = "/data/VideoMatting108"
    crop = 512

    [optim]
    lr = 1e-4
    schedule = "poly"
"""

from __future__ import annotations

import json
import math
import tomllib
import typing
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Literal

from tcvom.errors import InputError
from tcvom.models.bases import MATTING_KINDS, base_of

Stage = Literal["pretrain", "main"]
STAGES: tuple[str, ...] = ("pretrain", "main")
#: Matting networks ``tcvom train`` trains: every base with the TAM and as the baseline.
NETWORKS: tuple[str, ...] = MATTING_KINDS
#: Paper learning rates (pretrain, main) per base (section 3.3; FBA, absent from the
#: paper, from the reference's configs).
PAPER_LR: dict[str, tuple[float, float]] = {"gca": (4e-4, 1e-4), "dim": (1e-5, 1e-5), "index": (1e-4, 1e-4),
                                            "fba": (1e-5, 1e-4)}
SCHEDULES: tuple[str, ...] = ("poly", "stair", "constant")
TRAINABLE: tuple[str, ...] = ("auto", "all", "tam", "tam+head")
DATA_KINDS: tuple[str, ...] = ("video", "image")


@dataclass
class DataConfig:
    """Where the training data is and how it is augmented.

    ``kind = "video"``: a VideoMatting108-layout dataset at ``root`` (``split``, optional
    ``clips`` filter, ``subset``). ``kind = "image"``: image-matting data in ``fg_dir`` /
    ``alpha_dir`` (same file names) with backgrounds in ``bg_dir``.
    """

    kind: str = "video"
    root: str = ""
    split: str = "train"
    clips: list[str] = field(default_factory=list)
    subset: bool = False
    fg_dir: str = ""
    alpha_dir: str = ""
    bg_dir: str = ""
    crop: int = 512
    frames: int = 0  # window length; 0: 5 for any matting network's main stage, 3 for pre-training and STM
    max_radius: int = 25  # training-mask dilation radius drawn from 0..max_radius
    eps: float = -1.0  # alpha snapping for the mask; < 0: 1e-2 for image data, 0 for video
    flip: bool = True
    colour: bool = True
    jpeg_probability: float = 0.6
    workers: int = 4
    # STM main stage: the maximum frame skip grows by one every skip_growth_steps steps.
    max_skip: int = 75
    skip_start: int = 1
    skip_growth_steps: int = 1700


@dataclass
class OptimConfig:
    """Adam with coupled L2 weight decay and a learning-rate schedule.

    ``poly``: ``lr * (1 - step / steps) ** power``. ``stair``: ``lr`` until the first
    milestone, then ``stair_lrs[i]`` from ``milestones[i] * steps`` on (milestones are
    fractions of the run). ``constant``: ``lr`` throughout. ``lr`` left out (0) picks the
    paper's value for the network and stage; a negative one is refused.
    """

    lr: float = 0.0
    schedule: str = ""  # "": poly, or constant for the TAM pre-training of FBA, DIM and IndexNet
    power: float = 0.9
    weight_decay: float = 1e-4
    milestones: list[float] = field(default_factory=lambda: [40 / 150, 80 / 150, 120 / 150])
    stair_lrs: list[float] = field(default_factory=lambda: [5e-6, 1e-6, 5e-7])


@dataclass
class LossConfig:
    """Eq. 6 weights, the L_im terms and the L_af target parameters. A negative weight
    picks the default (pre-training and the single-image baselines: L_im only; the main
    stage of a network with the TAM: 1, 0.5, 0.25). Empty
    ``image_terms`` picks the base's: GCA ``alpha``; DIM and IndexNet ``alpha``,
    ``composition``, ``gradient``; FBA all of :data:`tcvom.train.losses.FBA_TERMS`."""

    image_terms: list[str] = field(default_factory=list)
    image: float = 1.0
    temporal: float = -1.0
    affinity: float = -1.0
    theta: float = 0.3
    target: float = 0.8


@dataclass
class _RunConfig:
    out: str = ""
    steps: int = 0
    stage: str = "main"
    init: str = ""
    batch_size: int = 1
    seed: int = 0
    device: str = "cpu"
    amp: bool = False
    checkpoint_every: int = 1000
    overfit_batches: int = 0  # > 0: cycle the first N batches (a sanity check that the net can fit)
    #: The config file this was read from ("": built from a mapping), for the errors that
    #: name a key of it. Not a key of the file, nor of config.json and the checkpoint.
    source: str = field(default="", repr=False, compare=False, metadata={"key": False})


@dataclass
class GcaTamConfig(_RunConfig):
    """A matting-network training run: GCA+TAM, FBA+TAM, DIM+TAM or Index+TAM, or a
    single-image baseline (``network``: one of :data:`NETWORKS`; empty: the video network
    of the base the command names, GCA by default).

    ``trainable``: ``auto`` (pre-training: the TAM only, as the reference code; main stage:
    everything), ``all``, ``tam`` or ``tam+head`` (the TAM and the decoder layers after it,
    as the paper's text says). Frozen layers are kept in eval mode.
    """

    network: str = ""
    trainable: str = "auto"
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)


@dataclass
class StmConfig(_RunConfig):
    """An STM trimap-network training run (pre-training on image data, then video)."""

    unknown_weight: float = 4.0
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(schedule="stair"))


# --- resolving defaults and checking ------------------------------------------------------------


def _need(cond: bool, message: str, path: Path | None) -> None:
    if not cond:
        raise InputError(f"config: {message}", path=path)


MAX_LR = 1.0
"""The largest learning rate a config may give (the paper's are 1e-5 to 4e-4)."""

TC_FRAMES = 4
"""The fewest window frames L_tc can be computed on (the window's first and last frames only
give the predicted ones their neighbours)."""


def _check_common(cfg: _RunConfig, data: DataConfig, optim: OptimConfig, path: Path | None) -> None:
    _need(bool(cfg.out), "'out' (the run folder) is required", path)
    _need(cfg.steps > 0, f"'steps' must be positive, got {cfg.steps}", path)
    _need(cfg.stage in STAGES, f"'stage' must be one of {STAGES}, got {cfg.stage!r}", path)
    _need(cfg.batch_size > 0, f"'batch_size' must be positive, got {cfg.batch_size}", path)
    _need(cfg.checkpoint_every > 0, "'checkpoint_every' must be positive", path)
    _need(cfg.overfit_batches >= 0, "'overfit_batches' must be >= 0", path)
    _need(cfg.seed >= 0, f"'seed' must be >= 0, got {cfg.seed}", path)
    _need(data.kind in DATA_KINDS, f"data.kind must be one of {DATA_KINDS}, got {data.kind!r}", path)
    _need(data.crop >= 32 and data.crop % 32 == 0, f"data.crop must be a positive multiple of 32, got {data.crop}", path)
    _need(data.workers >= 0, "data.workers must be >= 0", path)
    _need(data.max_radius >= 0, "data.max_radius must be >= 0", path)
    _need(data.eps < 0.5, f"data.eps (alpha snapping) must be below 0.5 (< 0: the default), got {data.eps}", path)
    _need(0.0 <= data.jpeg_probability <= 1.0, "data.jpeg_probability must be in [0, 1]", path)
    if data.kind == "video":
        _need(bool(data.root), "data.root (a VideoMatting108-layout folder) is required for video data", path)
    else:
        _need(bool(data.fg_dir and data.alpha_dir and data.bg_dir),
              "data.fg_dir, data.alpha_dir and data.bg_dir are required for image data", path)
    _need(optim.schedule in SCHEDULES, f"optim.schedule must be one of {SCHEDULES}, got {optim.schedule!r}", path)
    # Adam's step is about lr per weight: above 1 it only diverges (1e300 overflowed inside torch).
    _need(0 < optim.lr <= MAX_LR, f"optim.lr must be above 0 and at most {MAX_LR:g} (or left out for the paper's), "
          f"got {optim.lr}", path)
    _need(optim.power >= 0 and math.isfinite(optim.power), f"optim.power must be >= 0, got {optim.power}", path)
    _need(0 <= optim.weight_decay < math.inf, f"optim.weight_decay must be a finite number >= 0, got "
          f"{optim.weight_decay}", path)
    _need(all(0 < lr <= MAX_LR for lr in optim.stair_lrs), f"optim.stair_lrs must each be above 0 and at most "
          f"{MAX_LR:g}, got {optim.stair_lrs}", path)
    _need(len(optim.milestones) == len(optim.stair_lrs), "optim.milestones and optim.stair_lrs differ in length", path)
    _need(list(optim.milestones) == sorted(optim.milestones) and all(0 <= m <= 1 for m in optim.milestones),
          "optim.milestones must be increasing fractions of the run in [0, 1]", path)


#: The matting config's alias (the class keeps its first name for callers).
MattingConfig = GcaTamConfig


def default_image_terms(base: str) -> list[str]:
    """The L_im terms of a base (the paper's for GCA, DIM and IndexNet; FBA's own)."""
    from tcvom.train.losses import FBA_TERMS

    if base == "gca":
        return ["alpha"]
    if base == "fba":
        return list(FBA_TERMS)
    return ["alpha", "composition", "gradient"]


def resolve_gca_tam(cfg: GcaTamConfig, path: Path | None = None, *, base: str | None = None) -> GcaTamConfig:
    """Fill the stage and base defaults (paper values) and check every field; InputError on
    a bad one. ``base`` (the command's): the network must be of it; an empty network is
    its video network (GCA+TAM without a base)."""
    pre = cfg.stage == "pretrain"
    network = cfg.network or f"{base or 'gca'}_tam"
    _need(network in NETWORKS, f"'network' must be one of {NETWORKS}, got {network!r}", path)
    net_base = base_of(network)
    if base is not None:
        _need(net_base == base, f"'network' is {network!r}, not of the {base} base the command names", path)
    data = replace(cfg.data)
    if data.frames == 0:
        data.frames = 3 if pre else 5
    if data.eps < 0:
        data.eps = 1e-2 if data.kind == "image" else 0.0
    optim = replace(cfg.optim)
    if optim.lr == 0:
        optim.lr = PAPER_LR[net_base][0 if pre else 1]
    if not optim.schedule:
        optim.schedule = "constant" if pre and net_base != "gca" else "poly"
    loss = replace(cfg.loss)
    if not loss.image_terms:
        loss.image_terms = default_image_terms(net_base)
    # L_tc and L_af train the TAM's video behaviour: the single-image baselines are
    # fine-tuned with L_im only (paper section 4, Table 1: "+F"), the TAM pre-training likewise.
    video = not pre and "_tam" in network
    if loss.temporal < 0:  # L_tc compares consecutive predicted frames: 3 frames predict one
        loss.temporal = 0.5 if video and data.frames >= TC_FRAMES else 0.0
    if loss.affinity < 0:
        loss.affinity = 0.25 if video else 0.0
    out = replace(cfg, network=network, data=data, optim=optim, loss=loss)
    _check_common(out, data, optim, path)
    _need(out.trainable in TRAINABLE, f"'trainable' must be one of {TRAINABLE}, got {out.trainable!r}", path)
    _need(data.frames >= 3, f"data.frames must be at least 3, got {data.frames}", path)
    if "_tam" not in network:
        _need(out.trainable in ("auto", "all"), f"the single-image {net_base} baseline has no TAM to train alone", path)
        _need(out.stage == "main", f"the single-image {net_base} baseline has no TAM pre-training stage", path)
        _need(loss.affinity == 0, f"loss.affinity (L_af, on the TAM's attention) needs the TAM: the single-image "
              f"{net_base} baseline has none, set it to 0 or leave it out", path)
    from tcvom.train.losses import FBA_TERMS, IMAGE_TERMS

    known = FBA_TERMS if net_base == "fba" else IMAGE_TERMS
    bad = [t for t in loss.image_terms if t not in known]
    _need(not bad, f"loss.image_terms of the {net_base} base must be among {known}, got {loss.image_terms}", path)
    if net_base == "fba" and "laplacian" in loss.image_terms:
        _need(data.crop >= 64, f"FBA's Laplacian loss needs data.crop >= 64, got {data.crop}", path)
    for name in ("image", "temporal", "affinity"):
        _need(0 <= getattr(loss, name) < math.inf, f"loss.{name} must be a finite number >= 0", path)
    _need(loss.temporal == 0 or data.frames >= TC_FRAMES, f"loss.temporal (L_tc, between consecutive predicted "
          f"frames) needs data.frames >= {TC_FRAMES}: a window of {data.frames} frames predicts only its middle one; "
          "set data.frames to 5 (the paper's) or loss.temporal to 0", path)
    _need(0.0 <= loss.target <= 1.0, f"loss.target (the L_af BCE target) must be in [0, 1], got {loss.target}", path)
    _need(0.0 < loss.theta <= 1.0, f"loss.theta (an alpha difference) must be in (0, 1], got {loss.theta}", path)
    return out


def resolve_stm(cfg: StmConfig, path: Path | None = None) -> StmConfig:
    """Fill the stage defaults (paper values) and check every field."""
    optim = replace(cfg.optim)
    if optim.lr == 0:
        optim.lr = 1e-5
    if not optim.schedule:
        optim.schedule = "stair"
    data = replace(cfg.data)
    if data.frames == 0:
        data.frames = 3
    out = replace(cfg, optim=optim, data=data)
    _check_common(out, data, optim, path)
    _need(data.frames == 3, "STM trains on three-frame sequences (data.frames = 3)", path)
    _need(out.unknown_weight > 0, "'unknown_weight' must be positive", path)
    _need(data.max_skip >= 1 and data.skip_start >= 1, "data.max_skip and data.skip_start must be >= 1", path)
    return out


# --- reading files --------------------------------------------------------------------------------

_PATH_KEYS = {"out", "init", "root", "fg_dir", "alpha_dir", "bg_dir"}


def _convert(value: Any, kind: Any, where: str, path: Path | None) -> Any:
    origin = typing.get_origin(kind)
    if kind is bool:
        _need(isinstance(value, bool), f"'{where}' must be true or false, got {value!r}", path)
        return value
    if kind is int:
        _need(isinstance(value, int) and not isinstance(value, bool), f"'{where}' must be an integer, got {value!r}", path)
        return value
    if kind is float:
        _need(isinstance(value, int | float) and not isinstance(value, bool), f"'{where}' must be a number, got {value!r}", path)
        return float(value)
    if kind is str:
        _need(isinstance(value, str), f"'{where}' must be a string, got {value!r}", path)
        return value
    if origin is list:
        (item,) = typing.get_args(kind)
        _need(isinstance(value, list), f"'{where}' must be a list, got {value!r}", path)
        return [_convert(v, item, f"{where}[{i}]", path) for i, v in enumerate(value)]
    if is_dataclass(kind):
        _need(isinstance(value, dict), f"'{where}' must be a table, got {value!r}", path)
        return _build(kind, value, f"{where}.", path)
    raise TypeError(f"unsupported config field type {kind!r}")  # a bug in this module


def _build(cls: type, values: dict[str, Any], prefix: str, path: Path | None) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in fields(cls) if f.metadata.get("key", True)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise InputError(f"config: unknown key(s) {', '.join(prefix + k for k in unknown)}",
                         path=path, hint=f"known keys: {', '.join(sorted(prefix + n for n in names))}")
    kwargs = {}
    for key, value in values.items():
        v = _convert(value, hints[key], prefix + key, path)
        if key in _PATH_KEYS and v and path is not None and not Path(v).is_absolute():
            v = str((path.parent / v).resolve())
        kwargs[key] = v
    return cls(**kwargs)


def read_mapping(path: str | Path) -> dict[str, Any]:
    """The raw table of a ``.toml`` or ``.json`` config file."""
    p = Path(path)
    if not p.is_file():
        from tcvom.installed import shared_folder

        shipped = shared_folder("configs", "gca_tam_main.toml")
        hint = None
        if shipped is not None and (shipped / p.name).is_file():  # a wheel install has them in share/tcvom
            hint = (f"tcvom's own {p.name} is {shipped / p.name}: copy it into your project and edit it (its "
                    "relative paths, out and init, are taken from the config file's folder)")
        raise InputError("the config file does not exist", path=p, hint=hint)
    try:
        if p.suffix.lower() == ".toml":
            with open(p, "rb") as handle:
                return tomllib.load(handle)
        if p.suffix.lower() == ".json":
            data = json.loads(p.read_text())
            if not isinstance(data, dict):
                raise InputError("a JSON config must be an object", path=p)
            return data
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot parse the config: {exc}", path=p) from exc
    raise InputError("the config must be a .toml or .json file", path=p)


def load_gca_tam_config(path: str | Path, *, base: str | None = None) -> GcaTamConfig:
    """Read, fill in and check a matting training config file (``base``: the command's,
    see :func:`resolve_gca_tam`)."""
    p = Path(path).resolve()
    return resolve_gca_tam(replace(_build(GcaTamConfig, read_mapping(p), "", p), source=str(p)), p, base=base)


def load_stm_config(path: str | Path) -> StmConfig:
    """Read, fill in and check an STM training config file."""
    p = Path(path).resolve()
    return resolve_stm(replace(_build(StmConfig, read_mapping(p), "", p), source=str(p)), p)


def gca_tam_config_from_dict(values: dict[str, Any], *, base: str | None = None) -> GcaTamConfig:
    """A checked :class:`GcaTamConfig` from a mapping laid out like the file."""
    return resolve_gca_tam(_build(GcaTamConfig, values, "", None), base=base)


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict of a config (what the checkpoint and ``config.json`` hold; not
    the file it was read from, which may move between sessions of a run)."""
    values = asdict(cfg)
    values.pop("source", None)
    return values
