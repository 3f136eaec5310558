"""Foreground colour for premultiplied RGBA output, shared by every matting method.

Uses pymatting's multi-level foreground estimation (Germer, Uelwer, Conrad and Harmeling,
"Fast Multi-Level Foreground Estimation", ICPR 2020). The estimate is only needed where
alpha > 0, so it runs on the bounding box of those pixels (plus a margin of context); the
rest of the frame takes the plate's colour (it is multiplied by alpha = 0 anyway).
"""

from __future__ import annotations

import numpy as np

from tcvom.errors import FrameSizeError, InputError


def estimate_foreground(
    image: np.ndarray,
    alpha: np.ndarray,
    *,
    regularization: float = 1e-5,
    margin: int = 16,
    frame: int | None = None,
) -> np.ndarray:
    """The foreground colour F with ``image ~= alpha F + (1 - alpha) B``.

    ``image`` float ``H x W x 3`` in [0, 1], ``alpha`` float ``H x W`` in [0, 1]. Returns
    float32 ``H x W x 3`` in [0, 1]; premultiply with ``F * alpha[..., None]``.
    ``regularization`` is pymatting's smoothness weight; ``frame`` only names the frame in
    errors.
    """
    img = np.asarray(image)
    a = np.asarray(alpha)
    if img.ndim != 3 or img.shape[2] != 3:
        raise InputError(f"the image must be H x W x 3, got shape {img.shape}", frame=frame)
    if a.shape != img.shape[:2]:
        raise FrameSizeError(
            f"the alpha has shape {a.shape}, the image is {img.shape[1]} x {img.shape[0]}",
            frame=frame,
        )
    if not (np.isfinite(a).all() and np.isfinite(img).all()):
        raise InputError("the image or alpha holds NaN or infinite values", frame=frame)
    img = np.clip(img, 0.0, 1.0).astype(np.float32)
    a = np.clip(a, 0.0, 1.0).astype(np.float32)
    out = img.copy()
    ys, xs = np.nonzero(a > 0)
    if ys.size == 0:
        return out
    h, w = a.shape
    y0, y1 = max(0, ys.min() - margin), min(h, ys.max() + margin + 1)
    x0, x1 = max(0, xs.min() - margin), min(w, xs.max() + margin + 1)
    from pymatting import estimate_foreground_ml  # numba-compiled on first import

    crop = (slice(y0, y1), slice(x0, x1))
    fg = estimate_foreground_ml(
        np.ascontiguousarray(img[crop]), np.ascontiguousarray(a[crop]), regularization=regularization
    )
    out[crop] = np.clip(fg, 0.0, 1.0)
    return out
