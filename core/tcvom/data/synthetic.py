"""Synthetic video-matting shots with exact ground truth, and a benchmark writer.

Every frame is composited as ``C = alpha * F + (1 - alpha) * B`` from a foreground ``F``,
an alpha ``alpha`` and a background ``B`` that are returned with it, so the ground truth
is exact. A shot holds what makes video matting hard (the TCVOM paper, ACM MM 2021, lists
them for VideoMatting108): a soft-edged moving silhouette, hair-like strands narrower than
a pixel, a semi-transparent smoke/cloth region, motion blur, an optional occluder that
crosses in front of the subject, colour and lighting drift, and a panning, zooming,
textured background.

Frames are random access: frame ``i`` is computed from the seed and ``i`` alone (the
shot's layout is drawn once from the seed, the motion is an analytic function of time),
so ``render(7)`` gives the same arrays whether or not frames 0..6 were rendered first.
Only numpy and OpenCV are used.

:func:`write_benchmark` writes clips in the VideoMatting108 layout so that
:mod:`tcvom.data.vm108` reads the synthetic benchmark and the real one alike.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from tcvom.data.vm108 import TRIMAP_KERNELS
from tcvom.errors import InputError, OutputError, check_whole
from tcvom.io.trimap import from_alpha
from tcvom.progress import Progress, ProgressMode

# Fractional bits of cv2 drawing coordinates (1/16 px on the supersampled canvas).
_SHIFT = 4
_SUPERSAMPLE = 4


@dataclass(frozen=True)
class ShotConfig:
    """What a synthetic shot contains. All sizes scale with ``min(width, height)``."""

    width: int = 480
    height: int = 270
    frames: int = 40
    seed: int = 0
    strands: int = 14  # hair-like thin strands (sub-pixel width, anti-aliased)
    translucent: bool = True  # a semi-transparent cloth/smoke-like region (alpha 0.2-0.7 varying smoothly)
    motion_blur: bool = True  # alpha and F blurred along the motion
    occluder: bool = False  # an opaque object passing in front of part of the foreground (alpha 1)
    appearance_change: bool = True  # foreground colour/lighting drifts over time
    camera_motion: bool = True  # background pans/zooms slowly


@dataclass(frozen=True)
class SyntheticFrame:
    """One rendered frame; ``image == alpha * foreground + (1 - alpha) * background``.

    - ``image``: float32 ``H x W x 3``, sRGB-encoded, in [0, 1];
    - ``foreground``: float32 ``H x W x 3`` in [0, 1] (defined everywhere, also where alpha is 0);
    - ``background``: float32 ``H x W x 3`` in [0, 1], textured;
    - ``alpha``: float32 ``H x W`` in [0, 1] with exact 0 and 1 regions and soft edges.
    """

    image: np.ndarray
    foreground: np.ndarray
    background: np.ndarray
    alpha: np.ndarray


def _noise(rng: np.random.Generator, height: int, width: int, cells: int, channels: int = 1) -> np.ndarray:
    """Smooth value noise in [0, 1]: a ``cells``-wide random grid upsampled bicubically."""
    ch = max(2, round(cells * height / max(height, width)))
    cw = max(2, round(cells * width / max(height, width)))
    grid = rng.random((ch + 1, cw + 1, channels)).astype(np.float32)
    big = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC).reshape(height, width, channels)
    lo = big.min(axis=(0, 1), keepdims=True)
    hi = big.max(axis=(0, 1), keepdims=True)
    return ((big - lo) / np.maximum(hi - lo, 1e-6)).astype(np.float32)


def _background_canvas(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A textured RGB canvas in [0, 1]: colour noise at several scales plus sharp shapes."""
    base = rng.uniform(0.2, 0.7, size=3).astype(np.float32)
    tex = np.zeros((height, width, 3), np.float32)
    for cells, weight in ((4, 0.35), (12, 0.2), (40, 0.1)):
        tex += weight * (_noise(rng, height, width, cells, 3) - 0.5)
    canvas = np.clip(base + tex, 0.0, 1.0)
    # Sharp-edged shapes give optical flow something to lock on to.
    scale = min(height, width)
    shapes = np.zeros((height, width, 3), np.float32)
    for _ in range(int(0.0004 * height * width) + 6):
        colour = tuple(float(c) for c in rng.uniform(0.05, 0.95, size=3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        size = int(rng.uniform(0.02, 0.09) * scale) + 1
        if rng.random() < 0.5:
            cv2.circle(shapes, (x, y), size, colour, -1, cv2.LINE_AA)
        else:
            cv2.rectangle(shapes, (x, y), (x + 2 * size, y + size), colour, -1, cv2.LINE_AA)
    mask = (shapes.sum(axis=2, keepdims=True) > 0).astype(np.float32)
    canvas = canvas * (1 - 0.8 * mask) + 0.8 * mask * shapes
    for _ in range(8):
        p0 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        p1 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.line(canvas, p0, p1, tuple(float(c) for c in rng.uniform(0, 1, 3)), 1, cv2.LINE_AA)
    return np.clip(canvas, 0.02, 0.98).astype(np.float32)


def _blur_kernel(vx: float, vy: float) -> np.ndarray | None:
    """A normalised linear motion-blur kernel along (vx, vy) px, or None if under 1 px."""
    length = math.hypot(vx, vy)
    if length < 1.0:
        return None
    half = math.ceil(length / 2) + 1
    size = 2 * half + 1
    kernel = np.zeros((size, size), np.float32)
    for s in np.linspace(-0.5, 0.5, max(9, int(4 * length))):
        x, y = half + s * vx, half + s * vy
        x0, y0 = math.floor(x), math.floor(y)
        fx, fy = x - x0, y - y0
        kernel[y0, x0] += (1 - fx) * (1 - fy)
        kernel[y0, x0 + 1] += fx * (1 - fy)
        kernel[y0 + 1, x0] += (1 - fx) * fy
        kernel[y0 + 1, x0 + 1] += fx * fy
    return kernel / kernel.sum()


class SyntheticShot:
    """A seeded synthetic shot; :meth:`render` gives frame ``index`` in any order."""

    def __init__(self, config: ShotConfig) -> None:
        if config.width < 16 or config.height < 16:
            raise InputError(f"a synthetic shot needs at least 16 x 16 pixels, got {config.width} x {config.height}")
        if config.frames < 1:
            raise InputError(f"a synthetic shot needs at least one frame, got frames={config.frames}")
        if config.strands < 0:
            raise InputError(f"strands must be >= 0, got {config.strands}")
        self.config = config
        w, h = config.width, config.height
        rng = np.random.default_rng([config.seed, 0x7C70])
        s = float(min(w, h))
        self._scale = s

        # Body: a star-shaped blob, radius r(phi) = R0 (1 + sum a_k cos(k phi + p_k)).
        self._r0 = rng.uniform(0.19, 0.25) * s
        self._harmonics = [(k, rng.uniform(0.03, 0.12 / k * 2), rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5)]
        self._edge = rng.uniform(1.2, 2.5)  # soft edge width, px
        self._centre0 = np.array([rng.uniform(0.38, 0.62) * w, rng.uniform(0.45, 0.6) * h])
        # Smooth path: speeds stay at a few px/frame (amplitude * omega).
        self._amp = np.array([rng.uniform(0.10, 0.16) * w, rng.uniform(0.04, 0.08) * h])
        speed = rng.uniform(1.5, 3.0) * s / 270.0
        self._omega = np.array([speed / self._amp[0], 0.6 * speed / self._amp[1]])
        self._phase = rng.uniform(0, 2 * np.pi, size=2)
        self._theta0 = rng.uniform(-0.3, 0.3)
        self._theta_amp = rng.uniform(0.05, 0.2)
        self._theta_omega = rng.uniform(0.02, 0.06)

        # Foreground texture, in body coordinates (warped by the body's motion).
        tsize = int(4 * self._r0) + 8
        self._tex_size = tsize
        base = rng.uniform(0.25, 0.85, size=3).astype(np.float32)
        self._fg_tex = np.clip(base + 0.35 * (_noise(rng, tsize, tsize, 6, 3) - 0.5), 0, 1)
        self._gain_phase = rng.uniform(0, 2 * np.pi, size=3)
        self._light_omega = rng.uniform(0.03, 0.08)

        # Strands (body coordinates): anchor angle, direction offset, length, curvature, wave.
        self._strands = [
            {
                "angle": rng.uniform(0, 2 * np.pi),
                "tilt": rng.uniform(-0.6, 0.6),
                "length": rng.uniform(0.45, 1.0) * self._r0,
                "curve": rng.uniform(-0.8, 0.8),
                "wave_amp": rng.uniform(0.5, 2.5) * s / 270.0,
                "wave_len": rng.uniform(0.3, 0.8) * self._r0,
                "wave_omega": rng.uniform(0.1, 0.3),
                "wave_phase": rng.uniform(0, 2 * np.pi),
                "opacity": rng.uniform(0.7, 1.0),
                "thick": int(rng.integers(1, 3)),  # on the 4x canvas: 0.25 or 0.5 px
            }
            for _ in range(config.strands)
        ]
        self._hair = np.clip(base * rng.uniform(0.4, 1.4) + rng.uniform(-0.1, 0.1, 3), 0.05, 0.95).astype(np.float32)

        # Translucent veil: an ellipse attached to the body, density from drifting noise.
        self._veil_angle = rng.uniform(0, 2 * np.pi)
        self._veil_axes = (rng.uniform(0.8, 1.1) * self._r0, rng.uniform(0.4, 0.6) * self._r0)
        self._veil_colour = np.clip(rng.uniform(0.6, 1.0, 3), 0, 1).astype(np.float32)
        margin = int(0.5 * s) + 8
        self._veil_noise = _noise(rng, h + 2 * margin, w + 2 * margin, 5)[:, :, 0]
        self._veil_margin = margin
        self._veil_drift = rng.uniform(-0.6, 0.6, size=2) * s / 270.0

        # Occluder: an opaque ellipse crossing the frame, over the body at mid-shot.
        self._occ_axes = (rng.uniform(0.08, 0.12) * s, rng.uniform(0.25, 0.35) * s)
        self._occ_speed = rng.choice([-1.0, 1.0]) * rng.uniform(3.0, 5.0) * s / 270.0
        self._occ_colour = rng.uniform(0.1, 0.9, 3).astype(np.float32)
        self._occ_dy = rng.uniform(-0.15, 0.15) * h

        # Background canvas, larger than the frame so the camera can move.
        self._bg_margin = int(0.3 * max(w, h)) + 8
        bm = self._bg_margin
        self._bg = _background_canvas(rng, h + 2 * bm, w + 2 * bm)
        self._pan_amp = rng.uniform(0.3, 0.6, size=2) * bm
        self._pan_omega = rng.uniform(0.6, 1.2, size=2) * s / 270.0 / self._pan_amp
        self._pan_phase = rng.uniform(0, 2 * np.pi, size=2)
        self._zoom_amp = rng.uniform(0.02, 0.05)
        self._zoom_omega = rng.uniform(0.01, 0.03)
        self._shutter = rng.uniform(0.5, 1.0)

        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        self._xs, self._ys = xs, ys

    def __len__(self) -> int:
        return self.config.frames

    # ----- motion, analytic in time -----------------------------------------------------
    def centre(self, t: float) -> np.ndarray:
        """Body centre (x, y) in pixels at (possibly fractional) time ``t``."""
        return self._centre0 + self._amp * np.sin(self._omega * t + self._phase) - self._amp * np.sin(self._phase)

    def angle(self, t: float) -> float:
        """Body rotation in radians at time ``t``."""
        return float(self._theta0 + self._theta_amp * math.sin(self._theta_omega * t))

    def occluder_centre(self, t: float) -> np.ndarray:
        mid = 0.5 * (self.config.frames - 1)
        c = self.centre(mid)
        return np.array([c[0] + self._occ_speed * (t - mid), c[1] + self._occ_dy])

    def camera(self, t: float) -> np.ndarray:
        """2x3 affine matrix mapping frame pixel coordinates to background-canvas ones."""
        w, h = self.config.width, self.config.height
        bm = self._bg_margin
        if self.config.camera_motion:
            pan = self._pan_amp * np.sin(self._pan_omega * t + self._pan_phase) - self._pan_amp * np.sin(self._pan_phase)
            zoom = 1.0 + self._zoom_amp * math.sin(self._zoom_omega * t)
        else:
            pan, zoom = np.zeros(2), 1.0
        cx, cy = (w - 1) / 2, (h - 1) / 2
        inv = 1.0 / zoom
        return np.array(
            [[inv, 0.0, bm + cx - cx * inv + pan[0]], [0.0, inv, bm + cy - cy * inv + pan[1]]], np.float64
        )

    # ----- layers ------------------------------------------------------------------------
    def _body_alpha(self, t: float) -> np.ndarray:
        c = self.centre(t)
        dx, dy = self._xs - c[0], self._ys - c[1]
        rho = np.hypot(dx, dy)
        phi = np.arctan2(dy, dx) - self.angle(t)
        r = np.full_like(rho, self._r0)
        for k, a, p in self._harmonics:
            r += self._r0 * a * np.cos(k * phi + p)
        return np.clip((r - rho) / self._edge + 0.5, 0.0, 1.0)

    def _radius(self, phi: float) -> float:
        return self._r0 * (1 + sum(a * math.cos(k * phi + p) for k, a, p in self._harmonics))

    def _body_colour(self, t: float) -> np.ndarray:
        c, th = self.centre(t), self.angle(t)
        half = self._tex_size / 2
        cos, sin = math.cos(th), math.sin(th)
        # image = R (tex - half) + c
        m = np.array([[cos, -sin, c[0] - cos * half + sin * half], [sin, cos, c[1] - sin * half - cos * half]])
        w, h = self.config.width, self.config.height
        colour = cv2.warpAffine(self._fg_tex, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        if self.config.appearance_change:
            gain = 1.0 + 0.15 * np.sin(0.05 * t + self._gain_phase).astype(np.float32)
            psi = self._light_omega * t
            light = 1.0 + 0.2 * ((self._xs - c[0]) * math.cos(psi) + (self._ys - c[1]) * math.sin(psi)) / self._r0
            colour = colour * gain * np.clip(light, 0.6, 1.4)[:, :, None]
        return np.clip(colour, 0.0, 1.0).astype(np.float32)

    def _strand_alpha(self, t: float) -> np.ndarray:
        w, h = self.config.width, self.config.height
        ss = _SUPERSAMPLE
        canvas = np.zeros((h * ss, w * ss), np.uint8)
        c, th = self.centre(t), self.angle(t)
        for st in self._strands:
            phi = st["angle"]
            r_anchor = 0.85 * self._radius(phi)
            a = phi + th
            anchor = c + r_anchor * np.array([math.cos(a), math.sin(a)])
            d = a + st["tilt"]
            direction = np.array([math.cos(d), math.sin(d)])
            normal = np.array([-direction[1], direction[0]])
            s = np.linspace(0.0, st["length"] + 0.15 * self._r0, 24)
            u = s / s[-1]
            wave = st["wave_amp"] * u * np.sin(2 * np.pi * s / st["wave_len"] + st["wave_omega"] * t + st["wave_phase"])
            bend = st["curve"] * st["length"] * u**2 * 0.5
            pts = anchor[None, :] + s[:, None] * direction[None, :] + (wave + bend)[:, None] * normal[None, :]
            # Pixel centres are at integer coordinates; the 4x canvas pixel k covers [k/4 - 1/8...].
            pts4 = (pts * ss + (ss - 1) / 2) * (1 << _SHIFT)
            value = round(255 * st["opacity"])
            cv2.polylines(canvas, [np.round(pts4).astype(np.int32)], False, value, st["thick"], cv2.LINE_AA, _SHIFT)
        small = cv2.resize(canvas.astype(np.float32) / 255.0, (w, h), interpolation=cv2.INTER_AREA)
        return np.clip(small, 0.0, 1.0)

    def _veil_alpha(self, t: float) -> np.ndarray:
        c, th = self.centre(t), self.angle(t)
        a = self._veil_angle + th
        vc = c + 0.95 * self._r0 * np.array([math.cos(a), math.sin(a)])
        dx, dy = self._xs - vc[0], self._ys - vc[1]
        ca, sa = math.cos(a), math.sin(a)
        u, v = dx * ca + dy * sa, -dx * sa + dy * ca
        ax, ay = self._veil_axes
        q = np.sqrt((u / ax) ** 2 + (v / ay) ** 2)
        region = np.clip((1.0 - q) * ay / (0.3 * ay + 2.0), 0.0, 1.0)  # soft edge of ~30% of the minor axis
        m = self._veil_margin
        off = self._veil_drift * t
        shift = np.array([[1.0, 0.0, m + off[0]], [0.0, 1.0, m + off[1]]])
        w, h = self.config.width, self.config.height
        dens = cv2.warpAffine(self._veil_noise, shift, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)
        return (region * (0.2 + 0.5 * dens)).astype(np.float32)

    def _occluder_alpha(self, t: float) -> np.ndarray:
        c = self.occluder_centre(t)
        ax, ay = self._occ_axes
        q = np.sqrt(((self._xs - c[0]) / ax) ** 2 + ((self._ys - c[1]) / ay) ** 2)
        return np.clip((1.0 - q) * ax / 1.5 + 0.5, 0.0, 1.0).astype(np.float32)

    def _blur(self, premult: np.ndarray, alpha: np.ndarray, velocity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        kernel = _blur_kernel(*(self._shutter * velocity))
        if kernel is None:
            return premult, alpha
        stack = np.concatenate([premult, alpha[:, :, None]], axis=2)
        out = cv2.filter2D(stack, -1, kernel, borderType=cv2.BORDER_REPLICATE)
        return out[:, :, :3], out[:, :, 3]

    def background(self, index: int) -> np.ndarray:
        """float32 ``H x W x 3`` background of frame ``index`` (camera motion and grain)."""
        w, h = self.config.width, self.config.height
        m = self.camera(float(index))
        bg = cv2.warpAffine(self._bg, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)
        grain = np.random.default_rng([self.config.seed, 0xB6, index]).normal(0.0, 0.006, size=(h, w, 1))
        return np.clip(bg + grain.astype(np.float32), 0.0, 1.0).astype(np.float32)

    def _check(self, index: int) -> int:
        if not isinstance(index, (int, np.integer)) or not 0 <= index < self.config.frames:
            raise IndexError(f"frame index {index!r} is outside 0..{self.config.frames - 1}")
        return int(index)

    def render(self, index: int) -> SyntheticFrame:
        """Frame ``index`` (0-based); raises IndexError outside ``0..frames-1``."""
        i = self._check(index)
        cfg = self.config
        t = float(i)
        body_col = self._body_colour(t)
        # Layers back to front, "over" in premultiplied form: P = a F + (1 - a) P.
        alpha = np.zeros((cfg.height, cfg.width), np.float32)
        premult = np.zeros((cfg.height, cfg.width, 3), np.float32)

        def over(a: np.ndarray, colour: np.ndarray) -> None:
            nonlocal alpha, premult
            premult = a[:, :, None] * colour + (1 - a[:, :, None]) * premult
            alpha = a + (1 - a) * alpha

        if cfg.translucent:
            veil_col = np.broadcast_to(self._veil_colour, body_col.shape)
            if cfg.appearance_change:
                veil_col = np.clip(veil_col * (1.0 + 0.1 * math.sin(0.07 * t)), 0, 1)
            over(self._veil_alpha(t), veil_col)
        over(self._body_alpha(t), body_col)
        if self._strands:
            hair = np.clip(self._hair * (body_col / np.maximum(body_col.mean(axis=2, keepdims=True), 1e-3)) ** 0.3, 0, 1)
            over(self._strand_alpha(t), hair.astype(np.float32))
        if cfg.motion_blur:
            premult, alpha = self._blur(premult, alpha, self.centre(t + 0.5) - self.centre(t - 0.5))
        if cfg.occluder:
            occ_a = self._occluder_alpha(t)
            shade = 1.0 - 0.25 * np.clip((self._ys - self.occluder_centre(t)[1]) / self._occ_axes[1], -1, 1)
            occ_col = np.clip(self._occ_colour * shade[:, :, None], 0, 1).astype(np.float32)
            occ_p = occ_a[:, :, None] * occ_col
            if cfg.motion_blur:
                occ_p, occ_a = self._blur(occ_p, occ_a, np.array([self._occ_speed, 0.0]))
            premult = occ_p + (1 - occ_a[:, :, None]) * premult
            alpha = occ_a + (1 - occ_a) * alpha
        # Snap float round-off so that opaque and empty regions are exactly 1 and 0.
        alpha = np.where(alpha > 1 - 1e-5, 1.0, np.where(alpha < 1e-5, 0.0, alpha)).astype(np.float32)
        safe = np.maximum(alpha, 1e-6)[:, :, None]
        fg = np.where(alpha[:, :, None] > 0, np.clip(premult / safe, 0, 1), body_col).astype(np.float32)
        bg = self.background(i)
        a3 = alpha[:, :, None]
        image = (a3 * fg + (1 - a3) * bg).astype(np.float32)
        return SyntheticFrame(image=np.clip(image, 0.0, 1.0), foreground=fg, background=bg, alpha=alpha)

    def flow(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Analytic forward flow from frame ``index`` to ``index + 1``.

        Returns ``(flow, valid)``: float32 ``H x W x 2`` (x, y) in pixels and bool ``H x W``.
        Pixels covered by the subject follow its rigid motion (strands and veil move
        approximately so), the rest follows the camera; the occluder's pixels are invalid.
        The last frame has no successor and raises IndexError.
        """
        i = self._check(index)
        if i + 1 >= self.config.frames:
            raise IndexError(f"frame {i} is the last frame; it has no forward flow")
        t = float(i)
        pts = np.stack([self._xs, self._ys], axis=2).astype(np.float64)
        # Background: frame t -> canvas -> frame t+1.
        m0, m1 = self.camera(t), self.camera(t + 1)
        canvas = pts @ m0[:, :2].T + m0[:, 2]
        a1, b1 = m1[:, :2], m1[:, 2]
        bg_next = (canvas - b1) @ np.linalg.inv(a1).T
        # Subject: rotate about its centre and translate.
        c0, c1 = self.centre(t), self.centre(t + 1)
        d = self.angle(t + 1) - self.angle(t)
        rot = np.array([[math.cos(d), -math.sin(d)], [math.sin(d), math.cos(d)]])
        fg_next = (pts - c0) @ rot.T + c1
        subject = self._body_alpha(t) > 0
        if self._strands:
            subject |= self._strand_alpha(t) > 0
        if self.config.translucent:
            subject |= self._veil_alpha(t) > 0
        if self.config.motion_blur:
            subject = cv2.dilate(subject.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        target = np.where(subject[:, :, None], fg_next, bg_next)
        flow = (target - pts).astype(np.float32)
        valid = np.ones(subject.shape, bool)
        if self.config.occluder:
            valid &= cv2.dilate((self._occluder_alpha(t) > 0).astype(np.uint8), np.ones((5, 5), np.uint8)) == 0
        return flow, valid


# ----- benchmark writer ----------------------------------------------------------------------

def encode_flow_png(flow: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Encode flow in the VideoMatting108 PNG form: uint16 ``H x W x 3`` in OpenCV (BGR) order.

    Channel 0 = x flow, 1 = y flow, each ``int16(round(flow * 100))`` as its uint16 bit
    pattern; channel 2 = validity (1 valid, 0 invalid). Write it with ``cv2.imwrite``.
    """
    q = np.clip(np.round(np.nan_to_num(flow) * 100.0), -32768, 32767).astype(np.int16).view(np.uint16)
    out = np.empty((*flow.shape[:2], 3), np.uint16)
    out[:, :, :2] = q
    out[:, :, 2] = valid.astype(np.uint16)
    return out


def _to8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


def _imwrite(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise OutputError("cannot write the image", path=path, hint="check that the folder is writable")


def write_benchmark(
    root: str | Path,
    clips: int = 3,
    config: ShotConfig | None = None,
    seed: int = 0,
    *,
    category: str = "synthetic",
    flow: bool = True,
    composites: bool = True,
    keyframe_every: int = 0,
    alternate_occluder: bool = True,
    progress: ProgressMode = "none",
) -> list[str]:
    """Write ``clips`` synthetic clips under ``root`` in the VideoMatting108 layout.

    Layout (frame names are 5-digit, 0-based, as in VideoMatting108)::

        FG_done/<category>/<clip>/00000.png          RGBA 8-bit: foreground colour + alpha
        BG_done/<category>/<clip>/00000.png          RGB 8-bit background
        flow_png/<category>/<clip>/flow_00000_00001.png   forward flow (if ``flow``)
        frame_corr.json                              FG frame key -> BG frame path
        val_videos.txt                               one "<category>/<clip>" per line
        comp/<category>/<clip>/<clip>.00000.png      the composite plate (if ``composites``)
        trimaps/<width>/<category>/<clip>/<clip>.00000.png   keyframe trimaps, width in
                                                     narrow / medium / wide
        synthetic.json                               the configs used

    Clip ``k`` uses ``config`` (default :class:`ShotConfig`) with seed
    ``seed * 1000 + k``; with ``alternate_occluder`` every second clip (odd ``k``) has the
    occluder and the others not, otherwise ``config.occluder`` holds for all.
    Keyframes are frame 0 and every ``keyframe_every``-th frame (0: frame 0 only).
    Returns the clip names ("<category>/<clip>").
    """
    if clips < 1:
        raise InputError(f"write_benchmark needs clips >= 1, got {clips}")
    check_whole(seed, "seed", 0)  # a negative one was numpy's ValueError, after the folder was made
    out = Path(root)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the benchmark folder: {exc}", path=out) from exc
    base = config or ShotConfig()
    names: list[str] = []
    corr: dict[str, str] = {}
    configs: dict[str, dict] = {}
    with Progress("synthetic", clips * base.frames, mode=progress) as bar:
        for k in range(clips):
            cfg = replace(base, seed=seed * 1000 + k, occluder=(k % 2 == 1) if alternate_occluder else base.occluder)
            shot = SyntheticShot(cfg)
            clip = f"clip_{k:03d}"
            name = f"{category}/{clip}"
            names.append(name)
            configs[name] = cfg.__dict__.copy()
            keys = {0} | (set(range(0, cfg.frames, keyframe_every)) if keyframe_every > 0 else set())
            for i in range(cfg.frames):
                fr = shot.render(i)
                stem = f"{i:05d}"
                rgba = np.concatenate([_to8(fr.foreground)[:, :, ::-1], _to8(fr.alpha)[:, :, None]], axis=2)
                _imwrite(out / "FG_done" / name / f"{stem}.png", rgba)
                _imwrite(out / "BG_done" / name / f"{stem}.png", _to8(fr.background)[:, :, ::-1])
                corr[f"{name}/{stem}.png"] = f"{name}/{stem}.png"
                if composites:
                    # Composite of the quantised layers, as the loader computes it.
                    a = _to8(fr.alpha).astype(np.float32)[:, :, None] / 255.0
                    comp = a * (_to8(fr.foreground) / 255.0) + (1 - a) * (_to8(fr.background) / 255.0)
                    _imwrite(out / "comp" / name / f"{clip}.{stem}.png", _to8(comp)[:, :, ::-1])
                if i in keys:
                    a8 = _to8(fr.alpha)
                    for width, kernel in TRIMAP_KERNELS.items():
                        _imwrite(out / "trimaps" / width / name / f"{clip}.{stem}.png", from_alpha(a8, kernel))
                if flow and i + 1 < cfg.frames:
                    fl, valid = shot.flow(i)
                    _imwrite(out / "flow_png" / name / f"flow_{stem}_{i + 1:05d}.png", encode_flow_png(fl, valid))
                bar.advance(frame=i)
    (out / "frame_corr.json").write_text(json.dumps(corr, indent=1, sort_keys=True))
    (out / "val_videos.txt").write_text("".join(f"{n}\n" for n in names))
    (out / "synthetic.json").write_text(json.dumps({"seed": seed, "clips": configs}, indent=1, sort_keys=True))
    return names
