"""A tiny synthetic shot with known motion for the classical-method tests.

A textured disc with a soft edge slides over a textured, slowly panning background; the
ground-truth alpha, the disc's centre and the composite are known exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


def texture(height: int, width: int, seed: int, scale: float) -> np.ndarray:
    """float32 H x W x 3 in [0.1, 0.9]: smoothed colour noise (gives the flow something to track)."""
    rng = np.random.default_rng(seed)
    noise = rng.random((height, width, 3)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), scale)
    smooth -= smooth.min(axis=(0, 1), keepdims=True)
    smooth /= np.maximum(smooth.max(axis=(0, 1), keepdims=True), 1e-6)
    return (0.1 + 0.8 * smooth).astype(np.float32)


@dataclass
class DiscShot:
    """Frames 0..frames-1; the disc centre moves by ``(dx, dy)`` pixels per frame."""

    height: int = 96
    width: int = 128
    frames: int = 8
    radius: float = 22.0
    start: tuple[float, float] = (40.0, 48.0)
    dx: float = 3.0
    dy: float = 0.0
    pan: float = 0.0
    edge: float = 2.5
    seed: int = 0

    def __post_init__(self) -> None:
        pad = int(abs(self.pan) * self.frames) + 4
        self._bg = texture(self.height, self.width + 2 * pad, self.seed, 2.0)
        self._pad = pad
        base = texture(self.height, self.width, self.seed + 1, 1.5)
        self._fg = np.clip(base * np.array([1.0, 0.55, 0.35], np.float32) + 0.15, 0, 1)

    @property
    def frame_numbers(self) -> list[int]:
        return list(range(self.frames))

    @property
    def first(self) -> int:
        return 0

    @property
    def last(self) -> int:
        return self.frames - 1

    def centre(self, frame: int) -> tuple[float, float]:
        return self.start[0] + self.dx * frame, self.start[1] + self.dy * frame

    def alpha(self, frame: int) -> np.ndarray:
        cx, cy = self.centre(frame)
        ys, xs = np.mgrid[0 : self.height, 0 : self.width].astype(np.float32)
        dist = np.hypot(xs - cx, ys - cy)
        return np.clip((self.radius - dist) / self.edge + 0.5, 0.0, 1.0).astype(np.float32)

    def foreground(self, frame: int) -> np.ndarray:
        shift = np.float32([[1, 0, self.dx * frame], [0, 1, self.dy * frame]])
        return cv2.warpAffine(self._fg, shift, (self.width, self.height), borderMode=cv2.BORDER_REFLECT)

    def background(self, frame: int) -> np.ndarray:
        offset = self._pad + self.pan * frame
        shift = np.float32([[1, 0, -offset], [0, 1, 0]])
        return cv2.warpAffine(self._bg, shift, (self.width, self.height), flags=cv2.INTER_LINEAR)

    def read(self, frame: int) -> np.ndarray:
        a = self.alpha(frame)[:, :, None]
        return (a * self.foreground(frame) + (1 - a) * self.background(frame)).astype(np.float32)
