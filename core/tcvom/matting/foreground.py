"""Foreground colour for premultiplied RGBA output, shared by every matting method.

Uses pymatting's multi-level foreground estimation (Germer, Uelwer, Conrad and Harmeling,
"Fast Multi-Level Foreground Estimation", ICPR 2020). The estimate is only needed where
alpha > 0, so it runs on the bounding box of those pixels (plus a margin of context); the
rest of the frame takes the plate's colour (it is multiplied by alpha = 0 anyway).

Scene-linear images (``scene_linear=True``) are never clamped: pymatting works in [0, 1],
so the crop is mapped affinely onto [0, 1] by its own minimum and maximum and the result
mapped back. The compositing equation ``I = a F + (1 - a) B`` is affine-invariant (the
weights sum to 1), so highlights above 1 and negative values keep their exact colour; where
alpha is 1 the foreground is the image itself. Highlights far above the crop's bright
colours (more than :data:`HIGHLIGHT_SPAN` times its 99th percentile, at least 1), and
negatives far below its darkest, are held there for the estimate, the difference given back
to the foreground where alpha > 0: one glint no longer
shrinks the rest of the picture to a sliver of the range. The estimate's smoothing, done in
that mapping, can still carry a highlight's share of the range over a soft edge beside it,
so the premultiplied foreground is held to the plate there (``a F <= I`` where ``I >= 0``:
the background holds no negative light).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tcvom.errors import FrameSizeError, InputError

HIGHLIGHT_SPAN = 2.0
"""How far above the crop's bright colours (its 99th percentile, at least 1) the values a
scene-linear foreground is estimated from reach, and below its darkest (its 1st percentile,
at most 0); brighter highlights and darker negatives are held there for the estimate and
the difference given back to the foreground where the alpha lets it. Soft edges
10 px and more from a 5,000 glint in the example's subject: 0.023 off at twice, 0.046 at
four times, 0.09 at eight, about 0.7 mapped by the max."""


def estimate_foreground(
    image: np.ndarray,
    alpha: np.ndarray,
    *,
    regularization: float = 1e-5,
    margin: int = 16,
    frame: int | None = None,
    scene_linear: bool = False,
) -> np.ndarray:
    """The foreground colour F with ``image ~= alpha F + (1 - alpha) B``.

    ``image`` float ``H x W x 3`` in [0, 1] (display-referred), or any scene-linear values
    with ``scene_linear=True``; ``alpha`` float ``H x W`` in [0, 1]. Returns float32
    ``H x W x 3`` in the image's range (clipped to [0, 1] unless ``scene_linear``);
    premultiply with ``F * alpha[..., None]``.
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
    img = img.astype(np.float32) if scene_linear else np.clip(img, 0.0, 1.0).astype(np.float32)
    a = np.clip(a, 0.0, 1.0).astype(np.float32)
    out = img.copy()
    ys, xs = np.nonzero(a > 0)
    if ys.size == 0:
        return out
    h, w = a.shape
    y0, y1 = max(0, ys.min() - margin), min(h, ys.max() + margin + 1)
    x0, x1 = max(0, xs.min() - margin), min(w, xs.max() + margin + 1)
    from tcvom.classical.solve import pymatting

    estimate_foreground_ml = pymatting().estimate_foreground_ml  # numba-compiled on first import

    crop = (slice(y0, y1), slice(x0, x1))
    values = img[crop]
    low, scale, excess = 0.0, 1.0, None
    if scene_linear:
        # pymatting works in [0, 1]: the crop mapped onto it, its highlights held to a few times
        # its bright colours first. Mapped by its max, one glint (5,000 in a subject of 0.5)
        # shrank the picture to 1e-4 of the range and the smoothing carried 1% of the glint
        # over soft edges 20 px away: F there far above the plate's (colour QA).
        low, high = float(values.min()), float(values.max())
        if high > HIGHLIGHT_SPAN or low < 0.0:  # else nothing is held: no percentile on every frame
            sample = values[::4, ::4]  # the bright (and dark) colours, from a sixteenth of the pixels
            bright, dark = np.percentile(sample, 99), np.percentile(sample, 1)
            held = np.clip(values, max(low, min(float(dark), 0.0) * HIGHLIGHT_SPAN),
                           min(high, max(float(bright), 1.0) * HIGHLIGHT_SPAN))
            low, high = float(held.min()), float(held.max())
            excess, values = values - held, held  # a negative firefly held likewise (code review)
        scale = max(high - low, 1e-6)
    fg = estimate_foreground_ml(
        np.ascontiguousarray((values - low) / scale), np.ascontiguousarray(a[crop]), regularization=regularization
    )
    out[crop] = np.clip(fg, 0.0, 1.0) * scale + low
    if excess is not None:  # the light held back (or dark), where the alpha lets it be the foreground's
        part = a[crop][..., None]
        with np.errstate(over="ignore"):  # a huge value over a faint alpha: held at float32's largest
            given = np.divide(excess, part, out=np.zeros_like(excess), where=part > 0)
            big = np.finfo(np.float32).max
            out[crop] = np.clip(out[crop] + given, -big, big)
    # Where alpha is 1 the equation says F = I exactly; the estimate's smoothing, applied in the
    # crop's [0, 1] mapping, would move opaque pixels next to a highlight by its share of the
    # range (0.6 beside a 60,000 glint).
    opaque = a >= 1.0
    out[opaque] = img[opaque]
    if scene_linear:
        # The same smoothing carries a highlight's share of the range over a soft edge beside
        # it (a F of 21 where the plate holds 0.3 next to a lamp of 100): an element that adds
        # light wherever it is comped. A background holds no negative light, so a F <= I.
        held = (a > 0)[..., None] & (img >= 0)
        with np.errstate(over="ignore"):  # a huge value over a faint alpha: no ceiling (inf) is right
            ceiling = np.divide(img, a[..., None], out=np.full_like(img, np.inf), where=held)
        np.minimum(out, ceiling, out=out)
    return out


def rgba_foreground(source: Any, frame: int, alpha: np.ndarray, *, scene_linear: bool,
                    predicted: np.ndarray | None = None, trimap: np.ndarray | None = None) -> np.ndarray:
    """The foreground of ``frame`` for RGBA output.

    ``scene_linear`` (EXR output): estimated from and returned in the plate's scene-linear
    values (``source.linear(frame)``, in ``source.linear_space``), never clamped, reusing
    the pixels the matting session has just read when ``source.remember()`` is on.
    Otherwise (integer formats): from the display-referred frame the networks saw, in [0, 1].
    ``predicted``: a network's own foreground (e.g. FBA's), used instead of the estimate,
    through :func:`predicted_colour` (which needs the frame's ``trimap``).
    """
    if predicted is not None:
        if trimap is None:
            raise ValueError("a predicted foreground needs the frame's trimap")
        return predicted_colour(source, frame, predicted, trimap, scene_linear=scene_linear)
    image = source.linear(frame) if scene_linear else source.read(frame)
    return estimate_foreground(image, alpha, frame=frame, scene_linear=scene_linear)


def predicted_colour(source: Any, frame: int, colour: np.ndarray, trimap: np.ndarray, *,
                     scene_linear: bool) -> np.ndarray:
    """A colour layer a network predicts (FBA's foreground or background) for output.

    ``colour``: float32 ``H x W x 3`` display-referred sRGB in [0, 1], as the session's
    ``layers`` gives it (the plate's colour in the trimap's known region); ``trimap`` uint8
    0 / 128 / 255. Integer formats (``scene_linear=False``) take it as it is. For EXR the
    network's colour is converted to ``source.linear_space`` in the unknown region (it
    holds no highlights above 1) and the known region takes the plate's own scene-linear
    values, never clamped, as the reference puts the input image there.
    """
    if not scene_linear:
        return colour
    out = np.array(source.linear(frame), dtype=np.float32)
    tri = np.asarray(trimap)
    unknown = (tri > 0) & (tri < 255)
    if unknown.shape != out.shape[:2]:
        raise FrameSizeError(f"the trimap is {tri.shape[1]}x{tri.shape[0]}, the frame {out.shape[1]}x{out.shape[0]}",
                             frame=frame)
    if unknown.any():
        out[unknown] = source.network_to_linear(colour)[unknown]
    return out
