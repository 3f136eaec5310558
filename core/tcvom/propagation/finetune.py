"""Online fine-tuning of STM on the user's keyframes (TCVOM trimap generation module).

Zhang et al., "Attention-guided Temporally Coherent Video Object Matting", ACM MM 2021,
section 3.4: before propagating, the trimap STM is fine-tuned on the shot's own
keyframes. Reference: TCVOM-TGM ``online_finetune_test.py``, ``dataset.TestDataOnline``
and ``model.FullModelFinetune``, as described in ``shared/reference/STM_NOTES.md``
section 8:

- each step picks one keyframe at random and makes a three-frame "fake sequence" of it
  with random perspective warps (a global transform FM0, then one of [I, S, S^2],
  [S^-1, I, S], [S^-2, S^-1, I] for a random step transform S), out-of-view pixels
  filled with the ImageNet mean and ignored by the loss, one shared random crop;
- frame 0 is memorised with its one-hot trimap, frame 1 is segmented, memorised with
  its predicted soft probabilities (gradients flow), frame 2 is segmented against both;
- class-weighted cross-entropy ([1, unknown_weight, 1], ignore 255) on the soft
  aggregation log-odds, averaged over frames 1 and 2;
- Adam (coupled L2 weight decay 1e-4) at a constant learning rate (1e-6 recommended),
  the whole model in eval mode so batch norm statistics stay frozen, every parameter
  whose name contains "bn" left out (the shortcut BN ``downsample.1`` is still trained,
  as in the reference).

The user's weight file is never written; the tuned state dict is cached per shot under
a key made of the weights, the keyframes' pixels and trimaps, and the options.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import astuple, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from tcvom.errors import InputError
from tcvom.io.hashing import state_sha256
from tcvom.io.sources import FrameReader
from tcvom.io.trimap import one_hot_labels
from tcvom.models.stm import IMAGENET_MEAN, IMAGENET_STD, STM
from tcvom.progress import Progress, ProgressMode
from tcvom.weights.checkpoints import save_torch

log = logging.getLogger("tcvom")
_UNREADABLE_SAID: set[str] = set()  # cache files already warned about (once each per process)

DEFAULT_FINETUNE_STEPS = 500
IGNORE = 255
SEQUENCE_LENGTH = 3


@dataclass(frozen=True)
class FinetuneOptions:
    """Fine-tuning settings; defaults are the reference ``template.yaml`` recommendations.

    ``crop_size``: side of the square training crop (reference 512; frames smaller than
    it are used whole). ``min_object_pixels``: a crop must hold this many non-background
    pixels in every frame (reference 400). ``max_attempts``: fresh warps drawn before a
    sample that misses ``min_object_pixels`` is used anyway (the reference retries
    forever, which never ends on an all-background keyframe).
    """

    steps: int = DEFAULT_FINETUNE_STEPS
    lr: float = 1e-6
    weight_decay: float = 1e-4
    unknown_weight: float = 1.0
    crop_size: int = 512
    min_object_pixels: int = 400
    max_attempts: int = 20
    seed: int = 0


@dataclass(frozen=True)
class KeyframeSample:
    """One keyframe: float32 H x W x 3 sRGB RGB in [0, 1] and its uint8 0/128/255 trimap."""

    frame: int
    image: np.ndarray
    trimap: np.ndarray


def keyframe_samples(
    frames: FrameReader, keyframes: Mapping[int, np.ndarray]
) -> list[KeyframeSample]:
    """Read the keyframes' images; sorted by frame number."""
    from tcvom.propagation.stm import check_trimap

    if not keyframes:
        raise InputError("fine-tuning needs at least one keyframe trimap")
    samples = []
    for frame in sorted(keyframes):
        image = np.asarray(frames.read(frame), dtype=np.float32)
        samples.append(
            KeyframeSample(frame, image, check_trimap(keyframes[frame], frame, image.shape[:2]))
        )
    return samples


# ---------------------------------------------------------------- fake sequences


def _rotate(m: np.ndarray, center: np.ndarray, angle: float, scale: float) -> np.ndarray:
    now = np.concatenate(
        [cv2.getRotationMatrix2D((float(center[0]), float(center[1])), angle, scale), [[0, 0, 1]]]
    )
    return m @ now


def _shear(m: np.ndarray, vec: np.ndarray, center: np.ndarray) -> np.ndarray:
    # Reference quirk, kept: the rotation's translation is overwritten before shearing,
    # so the rotation is not about the chosen centre.
    m = m.copy()
    m[0, 2] = -m[0, 1] * center[0] / 2
    m[1, 2] = -m[1, 0] * center[1] / 2
    now = np.array([[1, vec[0], 0], [vec[1], 1, 0], [0, 0, 1]], dtype=np.float32)
    return m @ now


def _move(m: np.ndarray, vec: np.ndarray) -> np.ndarray:
    return m @ np.array([[1, 0, vec[0]], [0, 1, vec[1]], [0, 0, 1]], dtype=np.float32)


def _random_transform(
    rng: np.random.Generator, width: int, height: int, move_max: int
) -> np.ndarray:
    """Rotation +-10 deg about a centre jittered +-10 px, scale [0.9, 1.1), shear [0, 0.1)
    per axis, integer translation in [-move_max, move_max) per axis."""
    center = 10 * 2 * (rng.random(2) - 0.5) + np.array([width / 2, height / 2])
    move = rng.integers(-move_max, move_max, 2) if move_max > 0 else np.zeros(2)
    angle = (rng.random() - 0.5) * 2 * 10
    scale = rng.random() * 0.2 + 0.9
    shear = rng.random(2) * 0.1
    m = _rotate(np.eye(3), center, angle, scale)
    m = _shear(m, shear, center)
    return _move(m, move)


def fake_sequence(
    image: np.ndarray,
    trimap: np.ndarray,
    rng: np.random.Generator,
    *,
    crop_size: int = 512,
    min_object_pixels: int = 400,
    max_attempts: int = 20,
) -> tuple[np.ndarray, np.ndarray]:
    """Three warped, cropped copies of one keyframe.

    ``image`` float32 H x W x 3 RGB in [0, 1], ``trimap`` uint8 H x W 0/128/255 ->
    (images float32 3 x h x w x 3, classes int64 3 x h x w with 0 bg, 1 unknown, 2 fg
    and 255 out of view), h = min(H, crop_size), w = min(W, crop_size).
    """
    height, width = trimap.shape
    ch, cw = min(height, crop_size), min(width, crop_size)
    tri = trimap.astype(np.float32) / 255
    fill = np.array(IMAGENET_MEAN, dtype=np.float32)  # normalises to 0, as the reference's BGR fill
    images = classes = None
    for _ in range(max_attempts):
        fm0 = _random_transform(rng, width, height, move_max=0)
        step = _random_transform(rng, width, height, move_max=20)
        inverse = np.linalg.inv(step)
        patterns = (
            [np.eye(3), step, step @ step],
            [inverse, np.eye(3), step],
            [inverse @ inverse, inverse, np.eye(3)],
        )
        pattern = patterns[int(rng.integers(0, 3))]
        warped_images, warped_tris, valids = [], [], []
        for k in range(SEQUENCE_LENGTH):
            m = pattern[k] @ fm0
            warped = cv2.warpPerspective(image, m, (width, height), flags=cv2.INTER_LINEAR)
            warped_tri = cv2.warpPerspective(tri, m, (width, height), flags=cv2.INTER_NEAREST)
            ones = np.ones((height, width), np.float32)
            valid = cv2.warpPerspective(ones, m, (width, height), flags=cv2.INTER_NEAREST) != 0
            warped[~valid] = fill
            warped_images.append(warped)
            warped_tris.append(warped_tri)
            valids.append(valid)
        good = False
        for _crop_try in range(21):
            y = int(rng.integers(0, height - ch + 1))
            x = int(rng.integers(0, width - cw + 1))
            crop = (slice(y, y + ch), slice(x, x + cw))
            # Reference quirk: it counts values in (0, 255) on trimap / 255, i.e. unknown + fg.
            if all(int((t[crop] > 0).sum()) >= min_object_pixels for t in warped_tris):
                good = True
                break
        images = np.stack([w[crop] for w in warped_images])
        cls = []
        for t, v in zip(warped_tris, valids, strict=True):
            tc = t[crop]
            c = np.where((tc > 0) & (tc < 1), 1, np.rint(2 * tc)).astype(np.int64)
            c[~v[crop]] = IGNORE
            cls.append(c)
        classes = np.stack(cls)
        if good:
            break
    assert images is not None and classes is not None
    return images, classes


# ---------------------------------------------------------------- training


def _to_tensors(
    images: np.ndarray, classes: np.ndarray, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> frames 3 x 3 x Hp x Wp, one-hot 3 x 3 x Hp x Wp, targets 3 x Hp x Wp (padded to 32).

    Fine-tuning feeds **RGB**, ImageNet-normalised, which the encoders normalise again
    (reference quirk: inference feeds BGR). The padding is reflect like inference and
    is ignored by the loss.
    """
    from tcvom.propagation.stm import padded_size

    _, h, w = classes.shape
    hp, wp = padded_size(h, w)
    mean = np.array(IMAGENET_MEAN, np.float32)
    std = np.array(IMAGENET_STD, np.float32)
    x = (images - mean) / std
    x = np.pad(x, ((0, 0), (0, hp - h), (0, wp - w), (0, 0)), mode="reflect")
    frames = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(device)
    known = np.where(classes == IGNORE, 0, classes)
    one_hot = np.pad(one_hot_labels(known, axis=1), ((0, 0), (0, 0), (0, hp - h), (0, wp - w)), mode="reflect")
    targets = np.pad(classes, ((0, 0), (0, hp - h), (0, wp - w)), constant_values=IGNORE)
    return (
        frames,
        torch.from_numpy(np.ascontiguousarray(one_hot)).to(device),
        torch.from_numpy(targets).to(device),
    )


def sequence_loss(
    model: STM,
    frames: torch.Tensor,
    one_hot: torch.Tensor,
    targets: torch.Tensor,
    unknown_weight: float,
) -> torch.Tensor:
    """The reference's fine-tuning loss on one fake sequence.

    ``frames`` 3 x 3 x H x W, ``one_hot`` 3 x 3 x H x W (only frame 0 is used, as memory),
    ``targets`` 3 x H x W int64 (255 ignored). Mean of the weighted cross-entropy of
    frames 1 and 2.
    """
    weight = torch.tensor([1.0, unknown_weight, 1.0], device=frames.device)
    key, value = model.memorize(frames[0:1], one_hot[0:1])
    losses = []
    for t in range(1, SEQUENCE_LENGTH):
        logit = model.segment(frames[t : t + 1], key, value)
        losses.append(
            F.cross_entropy(logit, targets[t : t + 1], weight=weight, ignore_index=IGNORE)
        )
        if t + 1 < SEQUENCE_LENGTH:
            pkey, pvalue = model.memorize(frames[t : t + 1], F.softmax(logit, dim=1))
            key, value = torch.cat([key, pkey], dim=2), torch.cat([value, pvalue], dim=2)
    return sum(losses) / len(losses)


def trainable_parameters(model: STM) -> list[torch.nn.Parameter]:
    """Every parameter whose name does not contain "bn" (reference rule, quirk included)."""
    return [p for name, p in model.named_parameters() if "bn" not in name]


def finetune(
    model: STM,
    samples: Sequence[KeyframeSample],
    options: FinetuneOptions,
    *,
    device: str | torch.device = "cpu",
    progress: ProgressMode = "none",
) -> list[float]:
    """Fine-tune ``model`` in place for ``options.steps`` steps; returns the loss per step.

    The model stays in eval mode (frozen batch norm statistics).
    """
    if not samples:
        raise InputError("fine-tuning needs at least one keyframe trimap")
    device = torch.device(device)
    rng = np.random.default_rng(options.seed)
    model.to(device).eval()
    params = trainable_parameters(model)
    optimizer = torch.optim.Adam(params, lr=options.lr, weight_decay=options.weight_decay)
    losses: list[float] = []
    with Progress("finetune", options.steps, mode=progress, unit="step") as bar:
        for step in range(options.steps):
            sample = samples[int(rng.integers(0, len(samples)))]
            images, classes = fake_sequence(
                sample.image,
                sample.trimap,
                rng,
                crop_size=options.crop_size,
                min_object_pixels=options.min_object_pixels,
                max_attempts=options.max_attempts,
            )
            frames, one_hot, targets = _to_tensors(images, classes, device)
            loss = sequence_loss(model, frames, one_hot, targets, options.unknown_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            bar.advance(1, frame=step)
    for p in model.parameters():
        p.grad = None
    return losses


# ---------------------------------------------------------------- cache


def cache_key(
    model: STM, samples: Sequence[KeyframeSample], options: FinetuneOptions, *, base_sha256: str | None = None
) -> str:
    """Key of a tuned model: base weights + keyframes' frame numbers, pixels, trimaps + options.
    ``base_sha256``: the model's :func:`~tcvom.io.hashing.state_sha256` when already known."""
    digest = hashlib.sha256()
    digest.update((base_sha256 or state_sha256(model)).encode())
    for s in samples:
        digest.update(f"{s.frame}|{s.image.shape}|".encode())
        digest.update(np.ascontiguousarray(s.image, dtype=np.float32).tobytes())
        digest.update(np.ascontiguousarray(s.trimap).tobytes())
    digest.update(repr(astuple(options)).encode())
    return digest.hexdigest()


def cache_path(cache_dir: str | Path, key: str) -> Path:
    return Path(cache_dir) / f"stm_finetuned_{key[:32]}.pt"


def finetune_cached(
    model: STM,
    samples: Sequence[KeyframeSample],
    options: FinetuneOptions,
    *,
    key: str | None = None,
    cache_dir: str | Path | None = None,
    device: str | torch.device = "cpu",
    progress: ProgressMode = "none",
) -> bool:
    """Fine-tune ``model`` in place, or load the cached result. Returns True on a cache hit.

    With ``cache_dir`` the tuned state dict is written there (atomically) as
    ``stm_finetuned_<key>.pt``; the key covers the base weights, the keyframes and the
    options, so a changed keyframe or weight file never reuses a stale result. Processes
    sharing the cache (two runs into one output) tune under a per-key lock
    (:func:`tcvom.farm.locks.exclusive_lock`, ``stm_finetuned_<key>.lock``): the first
    tunes, the others wait and load its result.
    """
    key = key or cache_key(model, samples, options)
    if cache_dir is None:
        finetune(model, samples, options, device=device, progress=progress)
        return False
    from tcvom.farm.locks import exclusive_lock

    path = cache_path(cache_dir, key)
    if _load_cached(model, path, device):
        return True
    def waiting() -> None:
        Progress("finetune", options.steps, progress).message(
            f"waiting for another run fine-tuning the same weights into {path.parent}")

    with exclusive_lock(path.with_suffix(".lock"), on_wait=waiting):
        if _load_cached(model, path, device):  # tuned by another process while this one waited
            return True
        finetune(model, samples, options, device=device, progress=progress)
        save_torch({k: v.detach().cpu() for k, v in model.state_dict().items()}, path)
    return False


def _load_cached(model: STM, path: Path, device: str | torch.device) -> bool:
    """Load the tuned weights cached at ``path`` into ``model``; False if there are none, or
    if the file cannot be read (tcvom's own cache, damaged on disk: the weights are tuned
    again and the file replaced, with a warning, rather than stopping the run)."""
    if not path.is_file():
        return False
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        current = model.state_dict()
        # checked whole first: load_state_dict copies what fits before it refuses the rest,
        # and the model must stay the base network to be tuned again
        if not isinstance(state, dict) or set(state) != set(current):
            raise ValueError("it does not hold this network's tensors")
        wrong = [k for k in current if not isinstance(state[k], torch.Tensor) or state[k].shape != current[k].shape]
        if wrong:
            raise ValueError(f"{len(wrong)} tensor(s) of another shape, e.g. {wrong[0]}")
    except Exception as error:
        if str(path) not in _UNREADABLE_SAID:
            _UNREADABLE_SAID.add(str(path))
            log.warning("%s: the cached fine-tuned weights cannot be read (%s): they are tuned again and replaced",
                        path, " ".join(str(error).split())[:200])
        return False
    model.load_state_dict(state, strict=True)
    model.to(device).eval()
    return True
