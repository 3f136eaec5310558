"""Training data for GCA+TAM and the STM trimap network, streamed from disk.

Zhang et al., "Attention-guided Temporally Coherent Video Object Matting", ACM MM 2021,
sections 3.3 and 3.4; augmentation as the reference training code (``dataset/DIM.py``,
``dataset/VMD.py`` of the TCVOM repository) describes it.

Every dataset is indexed by a *global sample number*: sample ``i`` draws all of its
randomness from ``numpy.random.default_rng([seed, i])``, so a sample is the same whichever
DataLoader worker makes it and whether training was interrupted and resumed. Nothing is
read until a sample is asked for; a sample reads only the frames it uses.

Image-matting data (:class:`ImageMattingFiles`): a folder of foregrounds, a folder of alpha
mattes with the same file names (stems), and a folder of backgrounds (searched
recursively). Turned into three-frame sequences by random affine warps:

- :class:`AffineTripletDataset` (GCA+TAM pre-training): foreground and alpha warped by a
  global transform then by ``[S^-1, I, S]`` of a small random step ``S``, the background by
  its own step; random flip; one random crop of 1x-1.5x the crop size resized to it.
- :class:`StmImageDataset` (STM pre-training): the composite and its trimap classes warped
  by the perspective "fake sequence" of :func:`tcvom.propagation.finetune.fake_sequence`.

Video data in the VideoMatting108 layout (:class:`tcvom.data.vm108.VideoMatting108`, which
the synthetic benchmark writer also produces):

- :class:`VideoWindowDataset` (GCA+TAM main stage): windows of 5 consecutive frames
  (mirrored at the clip ends), reversed with probability 0.5, one random crop of 1x-2x the
  crop size resized to it, horizontal flip, hue / saturation / gamma augmentation drawn
  separately for the foreground and the background (the same for all frames of a sample),
  JPEG compression of the foreground with probability 0.6.
- :class:`StmVideoDataset` (STM main stage): three frames in order with random gaps of at
  most the current maximum frame skip, which grows with the training step.

GCA+TAM samples carry the training mask: the ``0 < alpha < 1`` region dilated by a square
of side ``2r + 1``, ``r`` drawn from ``0..max_radius`` per sample (the same for all frames).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from tcvom.data.vm108 import Clip, ClipFrame, VideoMatting108
from tcvom.errors import FrameSizeError, InputError, ReadError
from tcvom.io.trimap import BACKGROUND, FOREGROUND, UNKNOWN

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
ALPHA_SUFFIXES = (*IMAGE_SUFFIXES, ".exr")  # a compositor's mattes: read with OpenImageIO
#: Scales of the video crop (times the crop size), as the reference.
VIDEO_SCALES = (1.0, 1.25, 1.5, 1.75, 2.0)
#: Crop sizes of the image-data shape augmentation (times the crop size): 512..768 at 512.
IMAGE_SCALES = (1.0, 1.125, 1.25, 1.375, 1.5)
#: The reference pre-crops image data to 800 px for 512 px crops.
IMAGE_PRECROP = 800 / 512
MAX_ATTEMPTS = 30


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """The random generator of global sample ``index``."""
    return np.random.default_rng([int(seed), int(index)])


def reflect_index(k: int, n: int) -> int:
    """Index ``k`` mirrored into ``0..n-1`` without repeating the edge (``-1 -> 1``, ``n -> n-2``)."""
    if n == 1:
        return 0
    period = 2 * (n - 1)
    k = abs(k) % period
    return period - k if k >= n else k


def truncated_normal(rng: np.random.Generator, mean: float, std: float, low: float, high: float) -> float:
    """One draw of a normal distribution truncated to ``[low, high]`` (rejection sampling)."""
    for _ in range(1000):
        v = rng.normal(mean, std)
        if low <= v <= high:
            return float(v)
    return float(np.clip(mean, low, high))


# --- reading ----------------------------------------------------------------------------------


def _imread(path: Path, flags: int) -> np.ndarray:
    data = cv2.imread(str(path), flags)
    if data is None:
        raise ReadError("cannot read the image", path=path, hint="is it a PNG/JPEG/TIFF file?")
    return data


def _unit(x: np.ndarray) -> np.ndarray:
    if np.issubdtype(x.dtype, np.integer):
        return (x / float(np.iinfo(x.dtype).max)).astype(np.float32)
    return x.astype(np.float32)


def read_rgb(path: Path) -> np.ndarray:
    """float32 ``H x W x 3`` RGB in [0, 1]."""
    return _unit(_imread(path, cv2.IMREAD_COLOR)[:, :, ::-1])


def read_alpha(path: Path) -> np.ndarray:
    """float32 ``H x W`` in [0, 1]: a one-channel image, the red channel of an RGB one,
    or the alpha channel of an RGBA one. A matte shuffled into RGB with an opaque (all 1)
    alpha channel is read from its RGB: its alpha channel would train on alpha 1."""
    data = _exr_as_opencv(path) if path.suffix.lower() == ".exr" else _imread(path, cv2.IMREAD_UNCHANGED)
    if data.ndim == 3 and data.shape[2] == 4:
        grey = bool(np.array_equal(data[:, :, 0], data[:, :, 1]) and np.array_equal(data[:, :, 0], data[:, :, 2]))
        full = np.iinfo(data.dtype).max if np.issubdtype(data.dtype, np.integer) else 1.0
        opaque = bool((data[:, :, 3] == full).all())
        data = data[:, :, 2] if opaque and grey and data[:, :, 2].min() != data[:, :, 2].max() else data[:, :, 3]
    elif data.ndim == 3:
        data = data[:, :, 2]  # OpenCV's order is B, G, R: the red channel (a grey one's any)
    return _unit(data)


def _exr_as_opencv(path: Path) -> np.ndarray:
    """An EXR matte (OpenImageIO, :func:`tcvom.io.read_image`) laid out as OpenCV reads other
    files: one channel (Y, or a lone A), else B, G, R and A; values clipped to [0, 1] (a
    filtered matte's slight under- and overshoots)."""
    from tcvom.io import read_image

    pixels, info = read_image(path)
    names = [n.rsplit(".", 1)[-1].upper() for n in info.channels]
    if {"R", "G", "B"} <= set(names):
        order = [names.index(c) for c in ("B", "G", "R", "A") if c in names]
    elif "Y" in names:  # grey, with its A as an RGBA file's (a grey matte with an opaque A is read from Y)
        order = [names.index("Y")] * (3 if "A" in names else 1) + ([names.index("A")] if "A" in names else [])
    else:
        order = [names.index("A") if "A" in names else 0]
    data = np.clip(pixels[:, :, order], 0.0, 1.0).astype(np.float32)
    return data[:, :, 0] if data.shape[2] == 1 else data


def _images(folder: Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in suffixes and p.is_file())


@dataclass(frozen=True)
class ImageMattingFiles:
    """The files of an image-matting dataset: foreground/alpha pairs and backgrounds.

    ``fg_dir`` and ``alpha_dir`` hold images with the same stems (``hair.png`` and
    ``hair.jpg`` pair up); ``bg_dir`` holds backgrounds (any names, searched recursively).
    """

    foregrounds: tuple[Path, ...]
    alphas: tuple[Path, ...]
    backgrounds: tuple[Path, ...]

    @classmethod
    def from_folders(cls, fg_dir: str | Path, alpha_dir: str | Path, bg_dir: str | Path) -> ImageMattingFiles:
        """Pair the files of the three folders; InputError when a folder is missing or empty
        or a foreground has no alpha."""
        folders = {"foreground": Path(fg_dir), "alpha": Path(alpha_dir), "background": Path(bg_dir)}
        for what, folder in folders.items():
            if not folder.is_dir():
                raise InputError(f"the {what} folder does not exist", path=folder)
        fgs = _images(folders["foreground"])
        alphas = {p.relative_to(folders["alpha"]).with_suffix(""): p
                  for p in _images(folders["alpha"], ALPHA_SUFFIXES)}
        bgs = _images(folders["background"])
        kinds = ", ".join(IMAGE_SUFFIXES)
        if not fgs:
            raise InputError(f"the foreground folder holds no images ({kinds})", path=folders["foreground"],
                             hint="foregrounds are sRGB pictures: write them as PNG, JPEG or TIFF")
        if not bgs:
            raise InputError(f"the background folder holds no images ({kinds})", path=folders["background"],
                             hint="backgrounds are sRGB pictures: write them as PNG, JPEG or TIFF")
        pairs = []
        for fg in fgs:
            key = fg.relative_to(folders["foreground"]).with_suffix("")
            if key not in alphas:
                raise InputError(
                    f"no alpha matte for the foreground {fg.name}",
                    path=folders["alpha"],
                    hint=f"give every foreground an alpha with the same name ({', '.join(ALPHA_SUFFIXES)})",
                )
            pairs.append((fg, alphas[key]))
        return cls(tuple(p[0] for p in pairs), tuple(p[1] for p in pairs), tuple(bgs))

    def pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Foreground ``index`` (:func:`read_rgb`) and its alpha (:func:`read_alpha`);
        InputError naming the alpha when their sizes differ (a crop of one would not be of
        the other)."""
        fg, alpha = read_rgb(self.foregrounds[index]), read_alpha(self.alphas[index])
        if fg.shape[:2] != alpha.shape:
            raise InputError(f"the alpha is {alpha.shape[1]}x{alpha.shape[0]}, the foreground "
                             f"{fg.shape[1]}x{fg.shape[0]}", path=self.alphas[index])
        return fg, alpha


# --- geometry ---------------------------------------------------------------------------------


def _resize(x: np.ndarray, size: tuple[int, int], interpolation: int = cv2.INTER_AREA) -> np.ndarray:
    """Resize to ``(width, height)``; float images stay in their range."""
    if (x.shape[1], x.shape[0]) == size:
        return x
    out = cv2.resize(x, size, interpolation=interpolation)
    return np.clip(out, 0.0, 1.0) if interpolation == cv2.INTER_CUBIC else out


def _cover(x: np.ndarray, side: int, interpolation: int) -> np.ndarray:
    """Scale up so that the short side is at least ``side``."""
    h, w = x.shape[:2]
    if min(h, w) >= side:
        return x
    ratio = side / min(h, w)
    return _resize(x, (max(side, round(w * ratio)), max(side, round(h * ratio))), interpolation)


def _random_crop(rng: np.random.Generator, shape: tuple[int, int], size: int) -> tuple[slice, slice]:
    h, w = shape
    y = int(rng.integers(0, h - size + 1))
    x = int(rng.integers(0, w - size + 1))
    return slice(y, y + size), slice(x, x + size)


def _affine(rng: np.random.Generator, width: int, height: int, *, move: float, angle: float,
            scale: tuple[float, float], centre_jitter: float) -> np.ndarray:
    """3x3 matrix: rotation by up to ``angle`` degrees about the jittered centre with a
    scale in ``scale``, then an integer translation up to ``move`` pixels per axis."""
    centre = centre_jitter * 2 * (rng.random(2) - 0.5) + np.array([width / 2, height / 2])
    m = np.eye(3)
    rot = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])),
                                  float((rng.random() - 0.5) * 2 * angle),
                                  float(rng.random() * (scale[1] - scale[0]) + scale[0]))
    m = m @ np.vstack([rot, [0, 0, 1]])
    mv = round(move)
    shift = rng.integers(-mv, mv, 2) if mv > 0 else np.zeros(2)
    return m @ np.array([[1, 0, shift[0]], [0, 1, shift[1]], [0, 0, 1]], dtype=np.float64)


def soft_count(alpha: np.ndarray) -> int:
    """Pixels with ``0 < alpha < 1``."""
    return int(((alpha > 0) & (alpha < 1)).sum())


# --- colour -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColourJitter:
    """One draw of the reference colour augmentation (imgaug ``MultiplyHueAndSaturation``,
    ``GammaContrast``, ``AddToHue``), applied identically to every frame of a sample."""

    multiply: float  # hue and saturation multiplier, TruncNormal(1, 0.2) in [0.5, 1.5]
    gamma: float  # TruncNormal(1, 0.2) in [0.5, 1.5]
    hue_add: float  # imgaug units (-255..255), TruncNormal(0, 10) in [-51, 51]

    @classmethod
    def draw(cls, rng: np.random.Generator) -> ColourJitter:
        return cls(
            truncated_normal(rng, 1.0, 0.2, 0.5, 1.5),
            truncated_normal(rng, 1.0, 0.2, 0.5, 1.5),
            truncated_normal(rng, 0.0, 10.0, -0.2 * 255, 0.2 * 255),
        )

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """float32 ``H x W x 3`` RGB in [0, 1] -> the same, augmented (8-bit HSV as imgaug)."""
        u8 = np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)
        hsv = cv2.cvtColor(u8, cv2.COLOR_RGB2HSV).astype(np.float32)  # H in 0..180
        hsv[:, :, 0] = np.mod(hsv[:, :, 0] * self.multiply, 180)
        hsv[:, :, 1] = np.clip(hsv[:, :, 1] * self.multiply, 0, 255)
        u8 = cv2.cvtColor(np.round(hsv).astype(np.uint8), cv2.COLOR_HSV2RGB)
        out = (u8.astype(np.float32) / 255.0) ** self.gamma
        hsv = cv2.cvtColor(np.round(out * 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
        hsv[:, :, 0] = np.mod(hsv[:, :, 0] + self.hue_add / 255.0 * 180.0, 180)
        return cv2.cvtColor(np.round(hsv).astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32) / 255.0


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip of a float RGB image at ``quality`` (1..100)."""
    u8 = np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)[:, :, ::-1]
    ok, buf = cv2.imencode(".jpg", u8, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("OpenCV could not JPEG-encode a training image")
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1].astype(np.float32) / 255.0


# --- training masks ---------------------------------------------------------------------------


def training_mask(alpha: np.ndarray, radius: int, eps: float = 0.0) -> np.ndarray:
    """The training mask of one frame: ``0 < alpha < 1`` (after snapping values within
    ``eps`` of 0 / 1) dilated by a square of side ``2 * radius + 1``. float32 {0, 1}."""
    a = np.where(alpha < eps, 0.0, np.where(alpha > 1 - eps, 1.0, alpha)) if eps > 0 else alpha
    soft = ((a > 0) & (a < 1)).astype(np.uint8)
    if radius > 0:
        soft = cv2.dilate(soft, np.ones((2 * radius + 1, 2 * radius + 1), np.uint8))
    return soft.astype(np.float32)


def training_trimap(alpha: np.ndarray, mask: np.ndarray, eps: float = 0.0) -> np.ndarray:
    """uint8 0/128/255 network trimap: unknown in the mask, foreground where alpha is 1."""
    fg = alpha >= 1 - eps if eps > 0 else alpha >= 1
    out = np.where(fg, FOREGROUND, BACKGROUND).astype(np.uint8)
    out[mask > 0] = UNKNOWN
    return out


def matting_sample(
    fg: np.ndarray, bg: np.ndarray, alpha: np.ndarray, radius: int, eps: float
) -> dict[str, torch.Tensor]:
    """Tensors of one GCA+TAM sample from ``T x H x W x 3`` fg / bg and ``T x H x W`` alpha.

    Returns ``image``, ``fg``, ``bg`` (float32 ``T x 3 x H x W`` in [0, 1]), ``alpha`` and
    ``mask`` (float32 ``T x 1 x H x W``) and ``trimap`` (uint8 ``T x 1 x H x W``).
    """
    a3 = alpha[..., None]
    image = fg * a3 + bg * (1 - a3)
    masks = np.stack([training_mask(a, radius, eps) for a in alpha])
    trimaps = np.stack([training_trimap(a, m, eps) for a, m in zip(alpha, masks, strict=True)])

    def chw(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32))

    return {
        "image": chw(image),
        "fg": chw(fg),
        "bg": chw(bg),
        "alpha": torch.from_numpy(np.ascontiguousarray(alpha[:, None], dtype=np.float32)),
        "mask": torch.from_numpy(np.ascontiguousarray(masks[:, None])),
        "trimap": torch.from_numpy(np.ascontiguousarray(trimaps[:, None])),
    }


# --- datasets ---------------------------------------------------------------------------------


class _Indexed(Dataset):
    """Base: ``length`` virtual samples, sample ``i`` seeded by ``(seed, i)``."""

    def __init__(self, length: int, seed: int) -> None:
        self.length = int(length)
        self.seed = int(seed)

    def __len__(self) -> int:
        return self.length


class AffineTripletDataset(_Indexed):
    """Three-frame sequences from image-matting data (GCA+TAM pre-training).

    Args:
        files: the foreground / alpha / background files.
        crop: output side in pixels (a multiple of 32; paper 512).
        length: number of virtual samples (steps x batch size).
        max_radius: largest dilation radius of the training mask (reference 25).
        eps: alpha values within ``eps`` of 0 / 1 count as 0 / 1 for the mask (reference
            1e-2 for the JPEG-compressed DIM data).
        min_soft: a warped alpha needs this many ``0 < alpha < 1`` pixels (reference 400 at
            800 px, scaled by area here); failing draws are retried.

    Items: see :func:`matting_sample` (T = 3).
    """

    frames = 3

    def __init__(self, files: ImageMattingFiles, crop: int, length: int, *, seed: int = 0,
                 max_radius: int = 25, eps: float = 1e-2, min_soft: int | None = None) -> None:
        super().__init__(length, seed)
        self.files = files
        self.crop = int(crop)
        self.pre = round(crop * IMAGE_PRECROP)
        self.max_radius = int(max_radius)
        self.eps = float(eps)
        self.min_soft = round(400 * (self.pre / 800) ** 2) if min_soft is None else int(min_soft)

    def _warped(self, rng: np.random.Generator, fg: np.ndarray, alpha: np.ndarray, bg: np.ndarray
                ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        side = self.pre
        k = side / 800  # the reference's pixel magnitudes are for 800 px
        fgs: list[np.ndarray] = []
        bgs: list[np.ndarray] = []
        alphas: list[np.ndarray] = []
        for _ in range(MAX_ATTEMPTS):
            m0 = _affine(rng, side, side, move=200 * k, angle=10, scale=(0.9, 1.1), centre_jitter=10 * k)
            fstep = _affine(rng, side, side, move=20 * k, angle=2, scale=(1.0, 1.0), centre_jitter=10 * k)
            bstep = _affine(rng, side, side, move=20 * k, angle=0, scale=(1.0, 1.0), centre_jitter=0)
            fgs, bgs, alphas = [], [], []
            for fm, bm in zip((np.linalg.inv(fstep), np.eye(3), fstep), (np.linalg.inv(bstep), np.eye(3), bstep),
                              strict=True):
                f = fm @ m0
                fgs.append(cv2.warpPerspective(fg, f, (side, side), flags=cv2.INTER_LINEAR))
                alphas.append(np.clip(cv2.warpPerspective(alpha, f, (side, side), flags=cv2.INTER_LINEAR), 0, 1))
                bgs.append(cv2.warpPerspective(bg, bm, (side, side), flags=cv2.INTER_LINEAR,
                                               borderMode=cv2.BORDER_REFLECT_101))
            if all(soft_count(a) >= self.min_soft for a in alphas):
                break
        return fgs, bgs, alphas

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = sample_rng(self.seed, index)
        i = int(rng.integers(len(self.files.foregrounds)))
        j = int(rng.integers(len(self.files.backgrounds)))
        fg, alpha = self.files.pair(i)
        bg = read_rgb(self.files.backgrounds[j])
        fg, alpha = _cover(fg, self.pre, cv2.INTER_AREA), _cover(alpha, self.pre, cv2.INTER_AREA)
        bg = _cover(bg, self.pre, cv2.INTER_CUBIC)
        ys, xs = _random_crop(rng, alpha.shape, self.pre)
        fg, alpha = fg[ys, xs], alpha[ys, xs]
        ys, xs = _random_crop(rng, bg.shape[:2], self.pre)
        bg = bg[ys, xs]
        fgs, bgs, alphas = self._warped(rng, fg, alpha, bg)
        flip = rng.random() < 0.5
        size = min(self.pre, round(self.crop * IMAGE_SCALES[int(rng.integers(len(IMAGE_SCALES)))]))
        ys, xs = _random_crop(rng, (self.pre, self.pre), size)
        out = {"fg": [], "bg": [], "alpha": []}
        for f, b, a in zip(fgs, bgs, alphas, strict=True):
            f, b, a = f[ys, xs], b[ys, xs], a[ys, xs]
            if flip:
                f, b, a = f[:, ::-1], b[:, ::-1], a[:, ::-1]
            out["fg"].append(_resize(np.ascontiguousarray(f), (self.crop, self.crop)))
            out["bg"].append(_resize(np.ascontiguousarray(b), (self.crop, self.crop), cv2.INTER_CUBIC))
            out["alpha"].append(np.clip(_resize(np.ascontiguousarray(a), (self.crop, self.crop)), 0, 1))
        radius = int(rng.integers(0, self.max_radius + 1))
        return matting_sample(np.stack(out["fg"]), np.stack(out["bg"]), np.stack(out["alpha"]), radius, self.eps)


class _VideoBase(_Indexed):
    def __init__(self, root: str | Path, split: str, clips: Sequence[str] | None, crop: int, length: int,
                 seed: int, subset: bool = False) -> None:
        super().__init__(length, seed)
        self.dataset = VideoMatting108(root, split=split, clips=clips, subset=subset)
        self.clips = list(self.dataset)
        if not self.clips:
            raise InputError(f"the '{split}' split lists no clip", path=root)
        self.crop = int(crop)
        lengths = np.array([len(c) for c in self.clips])
        if (lengths == 0).any():
            raise InputError("a clip of the split has no frames", path=root)
        self._check_files()
        self._offsets = np.concatenate([[0], np.cumsum(lengths)])

    def _check_files(self) -> None:
        """Refuse a selection with a missing foreground or background file now, not at the
        step that happens to draw it (hours into a run, or never)."""
        missing = [(clip, i, path) for clip in self.clips for i in range(len(clip))
                   for path in (clip.fg_path(i), clip.bg_path(i)) if not path.is_file()]
        if missing:
            clip, index, path = missing[0]
            more = f" ({len(missing)} files of the selected clips are missing)" if len(missing) > 1 else ""
            raise ReadError(f"the file of frame {index} of clip {clip.name} does not exist{more}", path=path,
                            frame=index, hint="is the dataset complete? or leave the clip out with 'clips'")
        from tcvom.io.images import image_info

        for clip in self.clips:  # a clip smaller than the crop, said now (its first frame's header)
            info = image_info(clip.fg_path(0))
            self._check_crop(clip, 0, (info.height, info.width))

    def _check_crop(self, clip: Clip, index: int, shape: tuple[int, ...]) -> None:
        h, w = shape[:2]
        if min(h, w) < self.crop * min(VIDEO_SCALES):
            raise InputError(f"the frames of clip {clip.name} ({w}x{h}) are smaller than the training crop "
                             f"{self.crop}", path=clip.fg_path(index), frame=index,
                             hint="lower 'crop' in the config, or leave the clip out with 'clips'")

    def _pick(self, rng: np.random.Generator) -> tuple[int, int]:
        """(clip number, frame) uniformly over all frames of the split."""
        k = int(rng.integers(self._offsets[-1]))
        c = int(np.searchsorted(self._offsets, k, side="right") - 1)
        return c, k - int(self._offsets[c])

    @staticmethod
    def _window(clip: Clip, order: list[int]) -> list[ClipFrame]:
        """The frames ``order`` of ``clip``, all of one size (one crop box cuts them all: a
        frame of another size was cut at the wrong place, silently)."""
        frames = [clip.read(i) for i in order]
        shapes = Counter(fr.alpha.shape for fr in frames)
        if len(shapes) > 1:  # the frame of a size the window's others have not is the one at fault
            (common, _), = shapes.most_common(1)
            odd = next(fr for fr in frames if fr.alpha.shape != common)
            others = sorted({fr.index for fr in frames if fr.alpha.shape == common})
            (h, w), (ch, cw) = odd.alpha.shape, common
            many = len(others) > 1
            raise FrameSizeError(f"the frame is {w}x{h}; frame{'s' if many else ''} {', '.join(map(str, others))} of "
                                 f"clip {clip.name} ({clip.fg_path(others[0]).name}{', ...' if many else ''}) "
                                 f"{'are' if many else 'is'} {cw}x{ch}", path=clip.fg_path(odd.index), frame=odd.index,
                                 hint="every frame of a clip must have one size")
        return frames

    def _crop_box(self, rng: np.random.Generator, clip: Clip, frame: ClipFrame) -> tuple[slice, slice]:
        shape = frame.alpha.shape
        h, w = shape
        scales = [s for s in VIDEO_SCALES if int(self.crop * s) <= min(h, w)]
        if not scales:
            self._check_crop(clip, frame.index, shape)
        size = int(self.crop * scales[int(rng.integers(len(scales)))])
        return _random_crop(rng, shape, size)


class VideoWindowDataset(_VideoBase):
    """Windows of ``frames`` consecutive frames from a VideoMatting108-layout dataset (GCA+TAM
    main stage). Items: see :func:`matting_sample` (T = ``frames``).

    Args:
        root, split, clips, subset: the dataset selection (:class:`VideoMatting108`).
        crop: output side (a multiple of 32; paper 512).
        length: number of virtual samples (steps x batch size).
        frames: window length (5: the middle three are predicted).
        max_radius: largest training-mask dilation radius (reference 25).
        flip, colour, jpeg_probability: augmentation switches (paper: on, on, 0.6).
        eps: alpha snapping for the training mask (0, the reference's for video data).
    """

    def __init__(self, root: str | Path, crop: int, length: int, *, split: str = "train",
                 clips: Sequence[str] | None = None, subset: bool = False, seed: int = 0, frames: int = 5,
                 max_radius: int = 25, flip: bool = True, colour: bool = True,
                 jpeg_probability: float = 0.6, eps: float = 0.0) -> None:
        super().__init__(root, split, clips, crop, length, seed, subset)
        self.frames = int(frames)
        self.max_radius = int(max_radius)
        self.eps = float(eps)
        self.flip = flip
        self.colour = colour
        self.jpeg_probability = float(jpeg_probability)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = sample_rng(self.seed, index)
        c, centre = self._pick(rng)
        clip = self.clips[c]
        half = self.frames // 2
        order = [reflect_index(centre + d, len(clip)) for d in range(-half, self.frames - half)]
        if rng.random() < 0.5:
            order = order[::-1]
        frames = self._window(clip, order)
        box = self._crop_box(rng, clip, frames[0])
        for _ in range(MAX_ATTEMPTS):  # every frame needs some soft alpha in the crop
            if all(soft_count(f.alpha[box]) > 0 for f in frames):
                break
            box = self._crop_box(rng, clip, frames[0])
        flip = self.flip and rng.random() < 0.5
        size = (self.crop, self.crop)
        fg_jit = ColourJitter.draw(rng) if self.colour else None
        bg_jit = ColourJitter.draw(rng) if self.colour else None
        quality = 100 - int(rng.integers(70, 100)) if rng.random() < self.jpeg_probability else None
        fgs, bgs, alphas = [], [], []
        for fr in frames:
            f, b, a = fr.foreground[box], fr.background[box], fr.alpha[box]
            if flip:
                f, b, a = f[:, ::-1], b[:, ::-1], a[:, ::-1]
            f = _resize(np.ascontiguousarray(f), size)
            b = _resize(np.ascontiguousarray(b), size)
            a = np.clip(_resize(np.ascontiguousarray(a), size), 0, 1)
            if fg_jit is not None and bg_jit is not None:
                f, b = fg_jit.apply(f), bg_jit.apply(b)
            if quality is not None:
                f = jpeg(f, quality)
            fgs.append(f)
            bgs.append(b)
            alphas.append(a)
        radius = int(rng.integers(0, self.max_radius + 1))
        return matting_sample(np.stack(fgs), np.stack(bgs), np.stack(alphas), radius, self.eps)


# --- STM --------------------------------------------------------------------------------------


def trimap_classes(alpha: np.ndarray) -> np.ndarray:
    """int64 classes of the STM ground truth, no dilation: 1 (unknown) where ``0 < alpha < 1``,
    2 (foreground) where alpha is 1, 0 (background) elsewhere."""
    return np.where((alpha > 0) & (alpha < 1), 1, np.where(alpha >= 1, 2, 0)).astype(np.int64)


def stm_sample(images: np.ndarray, classes: np.ndarray) -> dict[str, torch.Tensor]:
    """``images`` float32 ``T x H x W x 3`` RGB in [0, 1], ``classes`` int64 ``T x H x W``
    (255 = ignore) -> ``{"image": T x 3 x H x W, "classes": T x H x W}`` tensors."""
    return {
        "image": torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32)),
        "classes": torch.from_numpy(np.ascontiguousarray(classes, dtype=np.int64)),
    }


class StmImageDataset(_Indexed):
    """STM pre-training: three perspective-warped copies of a composited image with its
    trimap classes (the fake sequences of online fine-tuning). Items: :func:`stm_sample`, T = 3."""

    def __init__(self, files: ImageMattingFiles, crop: int, length: int, *, seed: int = 0,
                 min_object_pixels: int | None = None) -> None:
        super().__init__(length, seed)
        self.files = files
        self.crop = int(crop)
        self.pre = round(crop * IMAGE_PRECROP)
        self.min_object_pixels = (round(400 * (crop / 512) ** 2) if min_object_pixels is None
                                  else int(min_object_pixels))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        from tcvom.propagation.finetune import fake_sequence

        rng = sample_rng(self.seed, index)
        i = int(rng.integers(len(self.files.foregrounds)))
        j = int(rng.integers(len(self.files.backgrounds)))
        fg, alpha = self.files.pair(i)
        bg = read_rgb(self.files.backgrounds[j])
        fg, alpha = _cover(fg, self.pre, cv2.INTER_AREA), _cover(alpha, self.pre, cv2.INTER_AREA)
        ys, xs = _random_crop(rng, alpha.shape, self.pre)
        fg, alpha = fg[ys, xs], alpha[ys, xs]
        bg = _cover(bg, self.pre, cv2.INTER_CUBIC)
        ys, xs = _random_crop(rng, bg.shape[:2], self.pre)
        bg = bg[ys, xs]
        image = fg * alpha[..., None] + bg * (1 - alpha[..., None])
        classes = trimap_classes(alpha)
        trimap = np.array([BACKGROUND, UNKNOWN, FOREGROUND], np.uint8)[classes]
        images, cls = fake_sequence(image.astype(np.float32), trimap, rng, crop_size=self.crop,
                                    min_object_pixels=self.min_object_pixels)
        return stm_sample(images, cls)


class StmVideoDataset(_VideoBase):
    """STM main stage: three frames of a clip in order (reversed with probability 0.5), each
    gap drawn from ``1..max_skip(step)`` where the maximum skip starts at ``skip_start`` and
    grows by one every ``skip_growth_steps`` training steps up to ``max_skip`` (paper: 75,
    one more every two epochs). One random crop (1x-2x, resized) and flip for all frames.
    Items: :func:`stm_sample`, T = 3, classes without dilation (:func:`trimap_classes`)."""

    frames = 3

    def __init__(self, root: str | Path, crop: int, length: int, *, batch_size: int, split: str = "train",
                 clips: Sequence[str] | None = None, subset: bool = False, seed: int = 0, max_skip: int = 75,
                 skip_start: int = 1, skip_growth_steps: int = 1700, flip: bool = True) -> None:
        super().__init__(root, split, clips, crop, length, seed, subset)
        self.batch_size = int(batch_size)
        self.max_skip = int(max_skip)
        self.skip_start = int(skip_start)
        self.skip_growth_steps = max(1, int(skip_growth_steps))
        self.flip = flip

    def skip_at(self, step: int) -> int:
        """The maximum frame skip at training step ``step``."""
        return min(self.max_skip, self.skip_start + step // self.skip_growth_steps)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = sample_rng(self.seed, index)
        c, _ = self._pick(rng)
        clip = self.clips[c]
        n = len(clip)
        skip = self.skip_at(index // self.batch_size)
        gaps = rng.integers(1, skip + 1, 2)
        if gaps.sum() > n - 1:  # a short clip: shrink the gaps to fit
            gaps = np.maximum(np.floor(gaps * (n - 1) / gaps.sum()), 0 if n < 3 else 1).astype(int)
        start = int(rng.integers(0, n - int(gaps.sum())))
        order = [start, start + int(gaps[0]), start + int(gaps.sum())]
        if rng.random() < 0.5:
            order = order[::-1]
        frames = self._window(clip, order)
        box = self._crop_box(rng, clip, frames[0])
        flip = self.flip and rng.random() < 0.5
        size = (self.crop, self.crop)
        images, classes = [], []
        for fr in frames:
            im, a = fr.image[box], fr.alpha[box]
            if flip:
                im, a = im[:, ::-1], a[:, ::-1]
            images.append(_resize(np.ascontiguousarray(im), size))
            classes.append(trimap_classes(np.clip(_resize(np.ascontiguousarray(a), size), 0, 1)))
        return stm_sample(np.stack(images), np.stack(classes))
