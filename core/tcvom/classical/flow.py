"""Dense optical flow for the classical method: OpenCV DIS, forward-backward checks, warping.

DIS is Kroeger et al., "Fast Optical Flow using Dense Inverse Search" (ECCV 2016), as
implemented by OpenCV (``cv2.DISOpticalFlow``). The forward-backward consistency test is
the one of Sundaram, Brox and Keutzer, "Dense Point Trajectories by GPU-Accelerated Large
Displacement Optical Flow" (ECCV 2010).

Conventions: a flow ``F_{a->b}`` is float32 ``H x W x 2`` (dx, dy) in pixels and says,
for each pixel x of frame a, where that point lies in frame b (``x + F(x)``). Warping
frame b's data with ``F_{a->b}`` (:func:`warp`) aligns it with frame a (backward warping).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

import cv2
import numpy as np

PRESETS: dict[str, int] = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


def _to_gray_u8(image: np.ndarray) -> np.ndarray:
    """float32 ``H x W x 3`` sRGB in [0, 1] (or ``H x W``) -> uint8 ``H x W`` luma."""
    data = np.asarray(image, dtype=np.float32)
    if data.ndim == 3:
        data = cv2.cvtColor(data[:, :, :3], cv2.COLOR_RGB2GRAY)
    return np.clip(data * 255.0 + 0.5, 0, 255).astype(np.uint8)


MIN_DIS_SIDE = 16
"""Smaller images are padded for DIS (OpenCV refuses sides under 12 pixels)."""


@dataclass
class FlowEstimator:
    """DIS optical flow between two frames.

    ``preset`` is one of ``ultrafast``, ``fast``, ``medium`` (OpenCV's DIS presets).
    ``max_side`` caps the longer side of the images the flow is computed on: larger frames
    are downscaled (area filter) first and the flow is upscaled back, which keeps 1080p
    and 4K plates fast; ``None`` computes at full resolution. The default (480) is a
    quarter of 1080p: on the synthetic shots its endpoint error is no worse than at 960
    (DIS's coarse-to-fine search loses nothing a trimap band needs) at a quarter of the
    cost.
    """

    preset: str = "medium"
    max_side: int | None = 480

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"DIS preset must be one of {sorted(PRESETS)}, not {self.preset!r}")
        if self.max_side is not None and self.max_side < 16:
            raise ValueError(f"max_side must be at least 16 pixels, not {self.max_side}")
        self._dis = cv2.DISOpticalFlow.create(PRESETS[self.preset])

    def _scale(self, shape: tuple[int, int]) -> float:
        longest = max(shape)
        if self.max_side is None or longest <= self.max_side:
            return 1.0
        return self.max_side / longest

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """The uint8 grey image DIS works on (downscaled if needed); cache it per frame."""
        gray = _to_gray_u8(image)
        scale = self._scale(gray.shape)
        if scale < 1.0:
            size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        return gray

    def flow_prepared(self, a: np.ndarray, b: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """Flow ``a -> b`` from two :meth:`prepare` d images, at full size ``(H, W)``."""
        small = a.shape[0] < MIN_DIS_SIDE or a.shape[1] < MIN_DIS_SIDE
        if small:
            # DIS refuses images under 12 pixels a side: pad (edge pixels repeated), crop after.
            bottom, right = max(0, MIN_DIS_SIDE - a.shape[0]), max(0, MIN_DIS_SIDE - a.shape[1])
            pad = [cv2.copyMakeBorder(x, 0, bottom, 0, right, cv2.BORDER_REPLICATE) for x in (a, b)]
            flow = self._dis.calc(pad[0], pad[1], None)[: a.shape[0], : a.shape[1]]
        else:
            flow = self._dis.calc(a, b, None)
        return resize_flow(flow, size)

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Flow ``a -> b``: float32 ``H x W x 2`` from two float32 ``H x W x 3`` [0, 1] frames."""
        if a.shape[:2] != b.shape[:2]:
            raise ValueError(f"flow needs two frames of one size, got {a.shape[:2]} and {b.shape[:2]}")
        return self.flow_prepared(self.prepare(a), self.prepare(b), a.shape[:2])

    def share(self, a: np.ndarray, b: np.ndarray) -> float:
        """The share of frame ``a`` whose flow to ``b`` passes the forward-backward check
        (:func:`unreliable_mask`), both computed at the size the flow is (at most
        ``max_side``): what :func:`cut_pairs` reads, at a fraction of a full-size check's cost."""
        return self.pair_share(self.prepare(a), self.prepare(b))[2]

    def pair_share(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """Both flows of two :meth:`prepare` d images at their size, and the share of ``a``
        they follow (pass the forward-backward check of :func:`unreliable_mask`)."""
        size = a.shape[:2]
        forward, backward = self.flow_prepared(a, b, size), self.flow_prepared(b, a, size)
        return forward, backward, float(1.0 - unreliable_mask(forward, backward).mean())

    def pair(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Both flows ``(a -> b, b -> a)`` of two frames, preparing each frame once."""
        pa, pb = self.prepare(a), self.prepare(b)
        size = a.shape[:2]
        return self.flow_prepared(pa, pb, size), self.flow_prepared(pb, pa, size)


def resize_flow(flow: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``flow`` resampled to ``size`` ``(H, W)``, its vectors scaled with it (float32)."""
    height, width = size
    if flow.shape[:2] != (height, width):
        sx = width / flow.shape[1]
        sy = height / flow.shape[0]
        flow = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR)
        flow[:, :, 0] *= sx
        flow[:, :, 1] *= sy
    return flow.astype(np.float32, copy=False)


def _sample_grid(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    height, width = flow.shape[:2]
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return xs + flow[:, :, 0], ys + flow[:, :, 1]


def warp(data: np.ndarray, flow: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Backward-warp ``data`` of frame b with the flow ``F_{a->b}`` so it lines up with frame a.

    ``data`` is ``H x W`` or ``H x W x C`` (C <= 4 per call; more channels are warped in
    groups). Samples that fall outside frame b take the nearest border value; see
    :func:`outside_mask` to find them.
    """
    map_x, map_y = _sample_grid(flow)
    src = np.ascontiguousarray(data)
    if src.ndim == 3 and src.shape[2] > 4:
        parts = [
            cv2.remap(src[:, :, i : i + 4], map_x, map_y, interpolation, borderMode=cv2.BORDER_REPLICATE)
            for i in range(0, src.shape[2], 4)
        ]
        parts = [p if p.ndim == 3 else p[:, :, None] for p in parts]
        return np.concatenate(parts, axis=2)
    out = cv2.remap(src, map_x, map_y, interpolation, borderMode=cv2.BORDER_REPLICATE)
    if src.ndim == 3 and out.ndim == 2:
        out = out[:, :, None]
    return out


def outside_mask(flow: np.ndarray) -> np.ndarray:
    """Boolean ``H x W``: True where ``x + F(x)`` falls outside the frame (new content)."""
    height, width = flow.shape[:2]
    map_x, map_y = _sample_grid(flow)
    return (map_x < -0.5) | (map_x > width - 0.5) | (map_y < -0.5) | (map_y > height - 0.5)


def consistency_error(flow_ab: np.ndarray, flow_ba: np.ndarray) -> np.ndarray:
    """float32 ``H x W``: ``|F_ab(x) + F_ba(x + F_ab(x))|`` in pixels, per pixel of frame a."""
    back = warp(flow_ba, flow_ab)
    return np.linalg.norm(flow_ab + back, axis=2).astype(np.float32)


def unreliable_mask(
    flow_ab: np.ndarray,
    flow_ba: np.ndarray,
    *,
    alpha1: float = 0.01,
    alpha2: float = 0.5,
) -> np.ndarray:
    """Boolean ``H x W``: pixels of frame a whose flow to b cannot be trusted.

    A pixel fails when the forward-backward round trip does not come home,
    ``|F_ab + F_ba(warped)|^2 > alpha1 (|F_ab|^2 + |F_ba(warped)|^2) + alpha2`` (occlusions,
    disocclusions and flow errors, Sundaram et al. 2010), or when its flow leaves frame b.
    """
    back = warp(flow_ba, flow_ab)
    err = np.square(flow_ab + back).sum(axis=2)
    mag = np.square(flow_ab).sum(axis=2) + np.square(back).sum(axis=2)
    return (err > alpha1 * mag + alpha2) | outside_mask(flow_ab)


FOLLOWED = 0.5
"""The share of a frame the flow to a neighbour must follow (pass the forward-backward check,
:func:`followed`) for the two to show one continuous picture; below it the pixels it does
not follow are more than new or hidden ones (a cut, a flash, a frame of another shot)."""

CUT_CONTRAST = 2.0
"""How many times better the flow must follow the pairs of frames next to a cut than the
pair across it (:func:`cut_pairs`)."""


def followed(image: np.ndarray, other: np.ndarray,
             flow: FlowEstimator | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """The DIS flow from ``image`` to ``other`` at full size, the pixels it follows there
    (those that pass the forward-backward check of :func:`unreliable_mask`), and the share
    of the frame it follows at the flow's own size (:meth:`FlowEstimator.share`, which
    :func:`cut_pairs` and the review's :data:`FOLLOWED` decisions read): one pair of flows
    for all three."""
    estimator = flow if flow is not None else FlowEstimator()
    forward, backward, share = estimator.pair_share(estimator.prepare(image), estimator.prepare(other))
    size = image.shape[:2]
    if forward.shape[:2] != size:
        forward, backward = resize_flow(forward, size), resize_flow(backward, size)
    return forward, ~unreliable_mask(forward, backward), share


def cut_pairs(shares: list[float]) -> list[int]:
    """Which pairs of a run of consecutive frames are cuts: ``shares[i]`` is the share of
    frame ``i`` that the flow follows to frame ``i + 1`` (:func:`followed`). Pair ``i`` is a
    cut where its share is under :data:`FOLLOWED` while each pair next to it (one at least)
    is followed at least :data:`FOLLOWED` and :data:`CUT_CONTRAST` times as well (shares from
    :meth:`FlowEstimator.share`): the
    picture is continuous on both sides and breaks between them. A flash (one frame unlike
    both neighbours: two poor pairs in a row) is no cut, nor a grainy flat screen, where
    every share wanders around one half."""
    cuts = []
    for i, share in enumerate(shares):
        beside = shares[max(i - 1, 0):i] + shares[i + 1:i + 2]
        if share < FOLLOWED and beside and min(beside) >= max(FOLLOWED, CUT_CONTRAST * share):
            cuts.append(i)
    return cuts


def stepped_over(frames: Sequence[int], unlike: Iterable[int]) -> list[int]:
    """The frames of ``unlike`` (unlike both neighbours, :func:`unlike_both`) that passes step
    over, in ``frames`` (consecutive, ascending): each but one right after a frame stepped
    over (two in a row: the second, unlike its neighbours' pictures, is a frame of the one
    after it) and but the first and last frames."""
    odd, stepped = set(unlike), []
    for i in range(1, len(frames) - 1):
        if frames[i] in odd and (not stepped or stepped[-1] != frames[i - 1]):
            stepped.append(frames[i])
    return stepped


def cuts_over(frames: Sequence[int], shares: Sequence[float], stepped: Mapping[int, float]) -> list[int]:
    """The frames of ``frames`` (consecutive, ascending) after which the picture cuts to
    another (:func:`cut_pairs`; ``shares[i]``: frame ``i`` followed into frame ``i + 1``),
    with the frames unlike both neighbours (``stepped``: the share the neighbours of each
    follow each other) stepped over (:func:`stepped_over`): their two poor pairs are judged
    as the one pair of their neighbours, as the passes take it, so a flash does not hide a cut
    beside it (code review: a cut one frame past a flash's neighbour was not found)."""
    over = set(stepped_over(frames, stepped))
    kept = [i for i, f in enumerate(frames) if f not in over]
    reduced = [stepped[frames[a + 1]] if b == a + 2 else shares[a] for a, b in pairwise(kept)]
    return [frames[kept[i]] for i in cut_pairs(reduced)]


UNLIKE_MARGIN = 2.0
"""How many times better the neighbours of a frame unlike both must follow each other than
the frame follows either of them (:func:`unlike_both`)."""


def unlike_both(shares: Sequence[float], between: float) -> bool:
    """Whether a frame the flow follows by ``shares`` to its two neighbours shows a picture
    unlike both (a flash, a frame of another shot swapped in): neither share reaches
    :data:`FOLLOWED`, while the neighbours follow each other by ``between`` (at least
    :data:`FOLLOWED`, and :data:`UNLIKE_MARGIN` times the frame's better share). On a grainy
    flat screen every share wanders around one half; only a frame that breaks a continuous
    picture stands out like this."""
    return len(shares) == 2 and max(shares) < FOLLOWED and between >= max(FOLLOWED, UNLIKE_MARGIN * max(shares))
