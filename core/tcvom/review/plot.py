"""The review drawn as a picture: doubt per frame, keyframes and suggestions marked.

Drawn with OpenCV (no plotting library needed): one bar per frame (its doubt; red above
the threshold), the trimap and matte doubts as thin lines over the bars, the threshold as a
dashed line, keyframes as blue columns marked ``K``, the suggested frames numbered in
order above their bars.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from tcvom.io.images import write_image

if TYPE_CHECKING:
    from tcvom.review.doubt import Review

# BGR colours (the canvas is converted to RGB at the end).
_BAR = (170, 170, 170)
_BAR_DOUBTFUL = (60, 60, 220)
_TRIMAP = (200, 120, 30)
_MATTE = (40, 160, 60)
_KEY = (235, 200, 150)
_KEY_TEXT = (170, 100, 20)
_SUGGEST = (0, 140, 255)
_INK = (40, 40, 40)
_GRID = (225, 225, 225)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.45, colour=_INK, thick: int = 1,
          centre: bool = False) -> None:
    if centre:
        (w, _), _ = cv2.getTextSize(text, _FONT, scale, thick)
        org = (org[0] - w // 2, org[1])
    cv2.putText(img, text, org, _FONT, scale, colour, thick, cv2.LINE_AA)


def render_review(review: Review, *, title: str = "", width: int | None = None, height: int = 420) -> np.ndarray:
    """The review picture: uint8 ``H x W x 3`` RGB."""
    rows = review.frames
    n = max(len(rows), 1)
    if width is None:
        width = int(np.clip(120 + 12 * n, 720, 1800))
    left, right, top, bottom = 64, 24, 64, 56
    plot_w, plot_h = width - left - right, height - top - bottom
    img = np.full((height, width, 3), 255, np.uint8)
    step = plot_w / n

    def x_of(i: float) -> int:
        return round(left + (i + 0.5) * step)

    def y_of(v: float) -> int:
        return round(top + plot_h * (1.0 - min(max(v, 0.0), 1.0)))

    for v in (0.0, 0.25, 0.5, 0.75, 1.0):
        cv2.line(img, (left, y_of(v)), (left + plot_w, y_of(v)), _GRID, 1)
        _text(img, f"{v:.2f}", (8, y_of(v) + 4), 0.4)
    index = {r.frame: i for i, r in enumerate(rows)}
    half = max(1, int(step * 0.5))
    for k in review.keyframes:
        if k in index:
            x = x_of(index[k])
            cv2.rectangle(img, (x - half, top), (x + half, top + plot_h), _KEY, -1)
    bar = max(1, int(step * 0.7) // 2)
    for i, r in enumerate(rows):
        x = x_of(i)
        colour = _BAR_DOUBTFUL if r.doubt > review.threshold else _BAR
        cv2.rectangle(img, (x - bar, y_of(r.doubt)), (x + bar, y_of(0.0)), colour, -1)
    for values, colour in (([r.trimap_doubt for r in rows], _TRIMAP), ([r.matte_doubt for r in rows], _MATTE)):
        pts = np.array([[x_of(i), y_of(v)] for i, v in enumerate(values)], np.int32)
        if len(pts) > 1:
            cv2.polylines(img, [pts], False, colour, 2, cv2.LINE_AA)
    y = y_of(review.threshold)
    for x0 in range(left, left + plot_w, 12):
        cv2.line(img, (x0, y), (min(x0 + 6, left + plot_w), y), _BAR_DOUBTFUL, 1)
    _text(img, f"doubtful > {review.threshold:g}", (left + plot_w - 130, y - 6), 0.4, _BAR_DOUBTFUL)
    for k in review.keyframes:
        if k in index:
            _text(img, "K", (x_of(index[k]), top + plot_h + 16), 0.45, _KEY_TEXT, 2, centre=True)
    for rank, f in enumerate(review.suggested, 1):
        if f in index:
            x, yb = x_of(index[f]), y_of(next(r.doubt for r in rows if r.frame == f))
            tip = max(top + 14, yb - 4)
            cv2.fillPoly(img, [np.array([[x, tip], [x - 6, tip - 10], [x + 6, tip - 10]], np.int32)], _SUGGEST)
            _text(img, str(rank), (x, tip - 13), 0.45, _SUGGEST, 2, centre=True)
    cv2.rectangle(img, (left, top), (left + plot_w, top + plot_h), _INK, 1)
    every = max(1, int(np.ceil(n / max(plot_w // 48, 1))))
    for i, r in enumerate(rows):
        if i % every == 0 or i == len(rows) - 1:
            x = x_of(i)
            cv2.line(img, (x, top + plot_h), (x, top + plot_h + 4), _INK, 1)
            _text(img, str(r.frame), (x, top + plot_h + 32), 0.4, centre=True)
    _text(img, "frame", (left + plot_w // 2, height - 8), 0.45, centre=True)
    heading = title or "doubt per frame"
    _text(img, heading, (left, 22), 0.6, _INK, 1)
    legend = [("doubt", _BAR), ("trimap", _TRIMAP), ("matte", _MATTE), ("keyframe", _KEY), ("key next", _SUGGEST)]
    x = left
    for name, colour in legend:
        cv2.rectangle(img, (x, 36), (x + 14, 48), colour, -1)
        _text(img, name, (x + 19, 47), 0.42)
        x += 28 + cv2.getTextSize(name, _FONT, 0.42, 1)[0][0]
    nxt = ", ".join(map(str, review.suggested[:5])) or "-"
    _text(img, f"key next: {nxt}", (max(x + 16, left + plot_w - 260), 47), 0.45, _SUGGEST, 1)
    return img[:, :, ::-1].copy()


def plot_review(review: Review, out: str | Path, *, title: str = "") -> Path:
    """Write the review picture as a PNG (atomically)."""
    pixels = render_review(review, title=title).astype(np.float32) / 255.0
    return write_image(out, pixels, pixel_type="uint8", channels=("R", "G", "B"))
