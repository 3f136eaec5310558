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

import builtins
import logging
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from tcvom.errors import FrameSizeError, InputError, check_choice
from tcvom.io.trimap import FOREGROUND, UNKNOWN

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix

METHODS: tuple[str, ...] = ("cf", "lbdm")

# Diagonal shifts tried by the incomplete Cholesky factorisation. pymatting starts at 0,
# which fails (and is redone, at the full cost of a factorisation) on many tiles once
# small entries are dropped; a tiny shift changes only the preconditioner, never the
# solution CG converges to.
_ICHOL_SHIFTS = [1e-4, 1e-3, 1e-2, 0.1, 0.5, 1.0, 10.0, 100.0]


def pymatting() -> Any:
    """The ``pymatting`` module, imported on first use (numba compiles its kernels then).
    Its import starts numba's OpenMP runtime, which set torch's intra-op threads to every
    core: a caller's ``torch.set_num_threads`` (a farm task pinned to one) is kept."""
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else None
    import pymatting as module

    if torch is not None and threads is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    # Its incomplete Cholesky prints a warning when a factorisation needs a larger diagonal
    # shift (which tcvom's shifts expect): during tcvom's own factorisations, to the debug
    # log, without taking over the process's sys.stdout (an application's other threads
    # print there; API QA), and as before for anyone else's.
    ichol = sys.modules.get("pymatting.preconditioner.ichol")
    if ichol is not None and getattr(ichol, "print", None) is not _pymatting_says:
        ichol.print = _pymatting_says  # pyright: ignore[reportAttributeAccessIssue]
    return module


_FACTORISING = threading.local()  # .on: this thread is in one of tcvom's factorisations


def _pymatting_says(*values: Any, **options: Any) -> None:
    """``print`` of pymatting's module that prints its warnings: into tcvom's debug log while
    tcvom factorises (:func:`_factorised`), else printed."""
    if getattr(_FACTORISING, "on", False):
        logging.getLogger("tcvom").debug("pymatting: %s", " ".join(str(v) for v in values))
    else:
        builtins.print(*values, **options)


def _factorised(matrix: Any, **options: Any) -> Any:
    """pymatting's incomplete Cholesky of ``matrix`` (its warnings to the debug log)."""
    _FACTORISING.on = True
    try:
        return pymatting().ichol(matrix, shifts=_ICHOL_SHIFTS, **options)
    finally:
        _FACTORISING.on = False


def _laplacian(method: str, image: np.ndarray, known: np.ndarray, epsilon: float, radius: int) -> csr_matrix:
    """The matting Laplacian (scipy CSR, ``N x N`` for the ``N`` pixels of a float64
    ``H x W x 3`` crop). pymatting compiles its kernels with numba on first import, so it
    is imported only here."""
    if method == "cf":
        return pymatting().cf_laplacian(image, epsilon=epsilon, radius=radius, is_known=known)
    return pymatting().lbdm_laplacian(image, epsilon=epsilon, radius=radius)


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    # Not np.dot: a threaded BLAS dot of 1e4-1e5 elements costs milliseconds on a busy
    # 2-core machine (its threads wait for a core); einsum's own loop costs microseconds.
    return float(np.einsum("i,i->", a, b))


def _pcg(
    matrix: csr_matrix,
    rhs: np.ndarray,
    x0: np.ndarray,
    precondition: Callable[[np.ndarray], np.ndarray],
    rtol: float,
    maxiter: int,
) -> np.ndarray:
    """Preconditioned conjugate gradients (Hestenes and Stiefel 1952) for the symmetric
    positive definite ``matrix``: float64 ``N`` solution, from ``x0``, after at most
    ``maxiter`` iterations or once ``|r| <= rtol |rhs|``. Not converging is not an error:
    a capped refinement stops early on purpose."""
    x = np.array(x0, dtype=np.float64)
    r = rhs - matrix @ x
    limit = (rtol * np.sqrt(_dot(rhs, rhs))) ** 2
    if _dot(r, r) <= limit:
        return x
    z = precondition(r)
    p = z.copy()
    rz = _dot(r, z)
    for _ in range(maxiter):
        q = matrix @ p
        step = rz / _dot(p, q)
        x += step * p
        r -= step * q
        if _dot(r, r) <= limit:
            break
        z = precondition(r)
        rz, rz_old = _dot(r, z), rz
        p *= rz / rz_old
        p += z
    return x


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
    gradient solve, preconditioned by an incomplete Cholesky factorisation. The
    full-resolution pass starts from the upsampled coarse alpha, which is already close:
    it is refined by at most ``refine_iterations`` Jacobi-preconditioned CG iterations
    (no factorisation; ``None`` solves it like the coarse pass). ``workers`` tiles are
    solved at once (threads: pymatting's kernels and the sparse products release the
    GIL); results do not depend on it.
    """

    method: str = "cf"
    epsilon: float = 1e-6
    radius: int = 1
    tile: int = 256
    margin: int = 12
    coarse_band: float = 8.0
    settle: float = 0.02
    grow: int = 2
    rtol: float = 1e-5
    maxiter: int = 2000
    refine_iterations: int | None = 50
    workers: int = field(default_factory=lambda: min(2, os.cpu_count() or 1))

    def __post_init__(self) -> None:
        check_choice(self.method, METHODS, "the alpha method")
        if self.tile < 16 or self.margin < self.radius + 1:
            raise ValueError("tile must be at least 16 pixels and margin larger than the window radius")
        if self.refine_iterations is not None and self.refine_iterations < 0:
            raise ValueError(f"refine_iterations must be >= 0 or None, not {self.refine_iterations}")
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, not {self.workers}")

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
        short = 2 * self.radius + 1 - min(tri.shape)  # the Laplacian's window must fit (a 1- or 2-pixel strip)
        if short > 0:  # the edge repeated: the strip solved as the picture of which it is a slice
            pad = ((0, max(0, 2 * self.radius + 1 - tri.shape[0])), (0, max(0, 2 * self.radius + 1 - tri.shape[1])))
            solved = self._solve(np.pad(img.astype(np.float64), (*pad, (0, 0)), mode="edge"),
                                 np.pad(tri, pad, mode="edge"), depth=0)
            return np.ascontiguousarray(solved[: tri.shape[0], : tri.shape[1]])
        return self._solve(img.astype(np.float64), tri, depth=0)

    def _solve(self, image: np.ndarray, trimap: np.ndarray, depth: int) -> np.ndarray:
        unknown = trimap == UNKNOWN
        alpha = (trimap == FOREGROUND).astype(np.float32)
        if not unknown.any():
            return alpha
        if unknown.all():
            raise InputError("the trimap is unknown everywhere; alpha needs some known pixels")
        guess = None
        if depth < 3 and min(trimap.shape) >= 64 and band_half_width(unknown) > self.coarse_band:
            trimap, guess = self._narrow(image, trimap, depth)
            unknown = trimap == UNKNOWN
            alpha = (trimap == FOREGROUND).astype(np.float32)
        self._solve_tiles(image, trimap, unknown, alpha, guess)
        return alpha

    def _narrow(self, image: np.ndarray, trimap: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Solve at half resolution and settle the pixels that are clearly fg or bg.

        Returns the narrowed trimap and the upsampled coarse alpha (float64 ``H x W``, the
        fine solve's starting point), or the trimap unchanged and None when the band is too
        small to coarsen faithfully."""
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
            return trimap, None  # too small to coarsen faithfully: solve at this resolution
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
        return out, up.astype(np.float64)

    def _solve_tiles(
        self,
        image: np.ndarray,
        trimap: np.ndarray,
        unknown: np.ndarray,
        alpha: np.ndarray,
        guess: np.ndarray | None = None,
    ) -> None:
        """Fill ``alpha`` (float32 ``H x W``) at the ``unknown`` pixels, tile by tile."""
        height, width = trimap.shape
        step = self.tile
        is_fg, is_bg = trimap == FOREGROUND, trimap == 0
        if not is_fg.any() or not is_bg.any():
            # With one known class only, the matting Laplacian's minimiser is that
            # class's constant (its null space holds the constant image).
            alpha[unknown] = 1.0 if is_fg.any() else 0.0
            return
        # Which tiles hold unknown pixels: one count per tile from a coarse grid.
        rows, cols = -(-height // step), -(-width // step)
        padded = np.zeros((rows * step, cols * step), dtype=bool)
        padded[:height, :width] = unknown
        busy = padded.reshape(rows, step, cols, step).any(axis=(1, 3))
        jobs = []
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
            jobs.append(((y0, y1, x0, x1), (cy0, cy1, cx0, cx1)))

        def run(job: tuple[tuple[int, int, int, int], tuple[int, int, int, int]]) -> None:
            (y0, y1, x0, x1), (cy0, cy1, cx0, cx1) = job
            crop = (slice(cy0, cy1), slice(cx0, cx1))
            result = self._solve_crop(
                image[crop], unknown[crop], is_fg[crop], None if guess is None else guess[crop]
            )
            core = (slice(y0 - cy0, y1 - cy0), slice(x0 - cx0, x1 - cx0))
            target = alpha[y0:y1, x0:x1]
            mask = unknown[y0:y1, x0:x1]
            target[mask] = result[core][mask]  # tiles' cores are disjoint: no race

        if self.workers > 1 and len(jobs) > 1:
            with ThreadPoolExecutor(max_workers=min(self.workers, len(jobs))) as pool:
                list(pool.map(run, jobs))
        else:
            for job in jobs:
                run(job)

    def _solve_crop(
        self, image: np.ndarray, unknown: np.ndarray, is_fg: np.ndarray, guess: np.ndarray | None
    ) -> np.ndarray:
        """float32 ``h x w`` alpha of one crop (float64 ``h x w x 3`` image, bool masks);
        valid at the ``unknown`` pixels, which are solved with the known ones fixed.

        The matting Laplacian is split into its unknown block ``L_U`` and the coupling
        ``R`` to the known pixels, and ``L_U x = -R a_K`` is solved by preconditioned
        conjugate gradients (Grady et al. 2005, as pymatting's closed-form estimator does).
        """
        known = ~unknown
        lap = _laplacian(self.method, np.ascontiguousarray(image), known, self.epsilon, self.radius)
        flat_u = np.flatnonzero(unknown)
        flat_k = np.flatnonzero(known)
        rows = lap[flat_u]
        l_u = rows[:, flat_u].tocsr()
        rhs = -(rows[:, flat_k] @ is_fg.ravel()[flat_k].astype(np.float64))
        n = flat_u.size
        if guess is not None and self.refine_iterations is not None:
            # A refinement from a close start: a few cheap iterations beat a factorisation.
            diagonal = l_u.diagonal()
            x = _pcg(l_u, rhs, guess.ravel()[flat_u], lambda r: r / diagonal, self.rtol, self.refine_iterations)
        else:
            try:  # room for 200 factor entries per unknown is plenty on a 5 x 5 stencil
                chol = _factorised(l_u, max_nnz=max(1 << 20, 200 * n))
            except ValueError:  # more fill than that: pymatting's own (4 GB) ceiling
                chol = _factorised(l_u)
            x0 = np.zeros(n) if guess is None else guess.ravel()[flat_u]
            x = _pcg(l_u, rhs, x0, chol, self.rtol, self.maxiter)
        out = np.zeros(unknown.shape, np.float32)
        out.ravel()[flat_u] = np.clip(x, 0.0, 1.0)
        return out
