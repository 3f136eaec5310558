"""Per-frame alpha of the classical method: pymatting inside the unknown band.

Closed-form matting is Levin, Lischinski and Weiss, "A Closed-Form Solution to Natural
Image Matting" (TPAMI 2008); learning-based matting is Zheng and Kambhamettu,
"Learning Based Digital Matting" (ICCV 2009); both as implemented by pymatting
(Germer et al., JOSS 2020).

The solve never covers the whole frame: the unknown band is cut into tiles (a tile is
solved only if its core holds unknown pixels, on a crop with a margin of context around
the core), and when the band is wide it is first solved at half resolution, which
settles the pixels that are clearly foreground or background and leaves a narrow band
for the full-resolution pass. Known pixels are fixed exactly by the trimap.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from tcvom.errors import FrameSizeError, InputError
from tcvom.trimap import FOREGROUND, UNKNOWN

METHODS: tuple[str, ...] = ("cf", "lbdm")


def _estimator(method: str) -> Callable[..., np.ndarray]:
    # pymatting compiles its kernels with numba on first import; import it only when needed.
    from pymatting import estimate_alpha_cf, estimate_alpha_lbdm

    return {"cf": estimate_alpha_cf, "lbdm": estimate_alpha_lbdm}[method]


def band_half_width(unknown: np.ndarray) -> float:
    """A robust half-width (pixels) of the unknown band: the 90th percentile of the unknown
    pixels' distances to the nearest known pixel."""
    if not unknown.any():
        return 0.0
    if unknown.all():
        return float(max(unknown.shape))
    dist = cv2.distanceTransform(unknown.astype(np.uint8), cv2.DIST_L2, 3)
    return float(np.percentile(dist[unknown], 90))


@dataclass
class AlphaSolver:
    """Alpha from an image and a trimap, solved on tiles around the unknown band.

    ``method``: ``cf`` (closed-form) or ``lbdm`` (learning-based). ``epsilon`` is the
    matting Laplacian's regulariser, ``radius`` its window radius. ``tile`` is the core
    size of a tile and ``margin`` the context around it. When the band's half-width
    exceeds ``coarse_band`` pixels the band is first solved at half resolution and only
    pixels whose coarse alpha lies in ``(settle, 1 - settle)`` (grown by ``grow`` pixels)
    are solved again at full resolution. ``rtol`` and ``maxiter`` bound the conjugate
    gradient solve.
    """

    method: str = "cf"
    epsilon: float = 1e-6
    radius: int = 1
    tile: int = 256
    margin: int = 12
    coarse_band: float = 16.0
    settle: float = 0.02
    grow: int = 2
    rtol: float = 1e-5
    maxiter: int = 2000

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"the alpha method must be one of {', '.join(METHODS)}, not {self.method!r}")
        if self.tile < 16 or self.margin < self.radius + 1:
            raise ValueError("tile must be at least 16 pixels and margin larger than the window radius")

    def __call__(self, image: np.ndarray, trimap: np.ndarray, frame: int | None = None) -> np.ndarray:
        """float32 ``H x W`` alpha in [0, 1] of a float32 ``H x W x 3`` image in [0, 1] and a
        uint8 ``H x W`` 0/128/255 trimap; exactly 0 / 1 where the trimap is known."""
        img = np.asarray(image)
        tri = np.asarray(trimap)
        if img.ndim != 3 or img.shape[2] != 3:
            raise InputError(f"the image must be H x W x 3, got shape {img.shape}", frame=frame)
        if tri.shape != img.shape[:2]:
            raise FrameSizeError(
                f"the trimap is {tri.shape[1] if tri.ndim > 1 else '?'} x {tri.shape[0]}, "
                f"the frame {img.shape[1]} x {img.shape[0]}",
                frame=frame,
            )
        return self._solve(img.astype(np.float64), tri, depth=0)

    def _solve(self, image: np.ndarray, trimap: np.ndarray, depth: int) -> np.ndarray:
        unknown = trimap == UNKNOWN
        alpha = (trimap == FOREGROUND).astype(np.float32)
        if not unknown.any():
            return alpha
        if unknown.all():
            raise InputError("the trimap is unknown everywhere; alpha needs some known pixels")
        if depth < 3 and min(trimap.shape) >= 64 and band_half_width(unknown) > self.coarse_band:
            trimap = self._narrow(image, trimap, depth)
            unknown = trimap == UNKNOWN
            alpha = (trimap == FOREGROUND).astype(np.float32)
        self._solve_tiles(image, trimap, unknown, alpha)
        return alpha

    def _narrow(self, image: np.ndarray, trimap: np.ndarray, depth: int) -> np.ndarray:
        """Solve at half resolution and settle the pixels that are clearly fg or bg."""
        height, width = trimap.shape
        half = (max(1, width // 2), max(1, height // 2))
        small_image = cv2.resize(image, half, interpolation=cv2.INTER_AREA)
        unknown_share = cv2.resize((trimap == UNKNOWN).astype(np.float32), half, interpolation=cv2.INTER_AREA)
        fg_share = cv2.resize((trimap == FOREGROUND).astype(np.float32), half, interpolation=cv2.INTER_AREA)
        # A cell with any foreground stays foreground (small cores must survive), else
        # any unknown makes it unknown.
        small = np.where(unknown_share > 0, UNKNOWN, 0).astype(np.uint8)
        small[fg_share > 0] = FOREGROUND
        if not ((small == FOREGROUND).any() and (small == 0).any() and (small == UNKNOWN).any()):
            return trimap  # too small to coarsen faithfully: solve at this resolution
        coarse = self._solve(small_image, small, depth + 1)
        up = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)
        mixed = (up > self.settle) & (up < 1.0 - self.settle)
        if self.grow > 0:
            size = 2 * self.grow + 1
            mixed = cv2.dilate(mixed.astype(np.uint8), np.ones((size, size), np.uint8)) > 0
        out = trimap.copy()
        unknown = trimap == UNKNOWN
        out[unknown & (up >= 0.5)] = FOREGROUND
        out[unknown & (up < 0.5)] = 0
        out[unknown & mixed] = UNKNOWN
        return out

    def _solve_tiles(self, image: np.ndarray, trimap: np.ndarray, unknown: np.ndarray, alpha: np.ndarray) -> None:
        estimate = _estimator(self.method)
        height, width = trimap.shape
        step = self.tile
        # Which tiles hold unknown pixels: one count per tile from a coarse grid.
        rows, cols = -(-height // step), -(-width // step)
        padded = np.zeros((rows * step, cols * step), dtype=bool)
        padded[:height, :width] = unknown
        busy = padded.reshape(rows, step, cols, step).any(axis=(1, 3))
        trimap_f = trimap.astype(np.float64) / 255.0
        is_fg, is_bg = trimap == FOREGROUND, trimap == 0
        if not is_fg.any() or not is_bg.any():
            # With one known class only, the matting Laplacian's minimiser is that
            # class's constant (its null space holds the constant image).
            alpha[unknown] = 1.0 if is_fg.any() else 0.0
            return
        for r, c in zip(*np.nonzero(busy), strict=True):
            y0, x0 = r * step, c * step
            y1, x1 = min(height, y0 + step), min(width, x0 + step)
            margin = self.margin
            while True:  # widen the context until it holds both known classes
                cy0, cx0 = max(0, y0 - margin), max(0, x0 - margin)
                cy1, cx1 = min(height, y1 + margin), min(width, x1 + margin)
                if is_fg[cy0:cy1, cx0:cx1].any() and is_bg[cy0:cy1, cx0:cx1].any():
                    break
                margin *= 2
            with contextlib.redirect_stdout(io.StringIO()):  # pymatting prints ichol retries
                result = estimate(
                    np.ascontiguousarray(image[cy0:cy1, cx0:cx1]),
                    np.ascontiguousarray(trimap_f[cy0:cy1, cx0:cx1]),
                    laplacian_kwargs={"epsilon": self.epsilon, "radius": self.radius},
                    cg_kwargs={"rtol": self.rtol, "maxiter": self.maxiter},
                )
            core = (slice(y0 - cy0, y1 - cy0), slice(x0 - cx0, x1 - cx0))
            target = alpha[y0:y1, x0:x1]
            mask = unknown[y0:y1, x0:x1]
            target[mask] = np.clip(result[core][mask], 0.0, 1.0)
