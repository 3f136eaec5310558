"""The optical-flow trimap propagator of the classical method.

It has the same interface as the STM propagator (``run_pass``), so the shared
:class:`~tcvom.propagation.scheduler.KeyframeSchedule` and the ensemble driver run it
forward and backward between keyframes and blend the passes by distance.

One step of a pass carries the class map of frame p to the next frame t:

1. DIS flow ``t -> p`` and ``p -> t`` (:mod:`tcvom.classical.flow`);
2. the foreground and the background of p are forward-splatted onto t, each with its own
   layer's motion; the unknown band and the fg/bg boundary travel with the foreground;
3. pixels that neither layer reaches (disocclusions), that both reach without a decisive
   colour match (occlusions), or whose flow fails the forward-backward check near the
   boundary become unknown: the band widens rather than guessing;
4. the band is kept from drifting: it may only lie on the keyframe's band carried along
   with the object (its footprint), or up to one motion beyond it or the fg/bg boundary
   where it opens in this frame; the rest falls back to its side. Every pixel closer to
   the boundary than ``min_band`` times the keyframe's typical half-width is unknown, so
   the band can neither grow without bound nor collapse.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import cv2
import numpy as np

from tcvom.classical.flow import FlowEstimator, unreliable_mask
from tcvom.errors import FrameSizeError, InputError
from tcvom.io.sources import FrameReader
from tcvom.io.trimap import check_classified, class_labels, one_hot_labels
from tcvom.propagation.scheduler import Pass


def _distance_to(mask: np.ndarray) -> np.ndarray:
    """float32 ``H x W``: Euclidean distance of every pixel to the nearest True pixel of ``mask``
    (``inf`` everywhere when ``mask`` is empty)."""
    if not mask.any():
        return np.full(mask.shape, np.inf, dtype=np.float32)
    return cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def boundary_distance(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The fg/bg boundary of a class map and every pixel's distance to it.

    ``labels`` is int ``H x W`` with 0 background, 1 unknown, 2 foreground. The boundary is
    the medial line between foreground and background (a pixel is on the foreground side
    when it is nearer to a foreground pixel than to a background one). When the map has
    no foreground (or no background) the unknown region stands in for it. Returns
    (bool ``H x W`` foreground side, float32 ``H x W`` distance in pixels, ``inf`` when
    there is no boundary).
    """
    fg = labels == 2
    bg = labels == 0
    if not fg.any():
        fg = labels >= 1
    if not bg.any():
        bg = labels <= 1
    if not fg.any() or not bg.any() or fg.all() or bg.all():
        return fg, np.full(labels.shape, np.inf, dtype=np.float32)
    side = _distance_to(fg) < _distance_to(bg)
    if side.all() or not side.any():
        return side, np.full(labels.shape, np.inf, dtype=np.float32)
    inside = cv2.distanceTransform(side.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    outside = cv2.distanceTransform((~side).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return side, np.where(side, inside, outside).astype(np.float32)


def _boundary_half_width(labels: np.ndarray, dist: np.ndarray) -> float | None:
    """The band's typical half-width along the fg/bg boundary: the median, over the
    boundary's pixels, of the distance to the nearer known class (None without both known
    classes). ``dist`` is :func:`boundary_distance`'s distance map of ``labels``."""
    edge = np.isfinite(dist) & (dist <= 1.0)
    known_fg, known_bg = labels == 2, labels == 0
    if not edge.any() or not known_fg.any() or not known_bg.any():
        return None
    nearer = np.minimum(_distance_to(known_fg), _distance_to(known_bg))
    return float(np.median(nearer[edge]))


@dataclass(frozen=True)
class BandWidth:
    """How far from the fg/bg boundary the unknown band may reach.

    ``keep``: unknown pixels farther than this fall back to their side (the widest band
    of the keyframe). ``ensure``: pixels nearer than this are always unknown.
    """

    keep: float
    ensure: float

    @classmethod
    def of_trimap(cls, trimap: np.ndarray, min_band: float = 0.75) -> BandWidth:
        """Measure the band of a uint8 0/128/255 keyframe trimap.

        ``keep`` is the largest distance of an unknown pixel from the boundary (99.5th
        percentile, plus a pixel of slack): a wide lobe (a painted strand region) sets it.
        ``ensure`` is ``min_band * w``, w the band's typical half-width along the
        boundary (the median over the boundary's pixels of the distance to the nearer
        known class), which such lobes do not inflate: a band kept that wide all around
        would eat into the object's core. With one known class only, w is twice the
        median distance of the unknown pixels from the boundary.
        """
        labels = class_labels(trimap)
        _, dist = boundary_distance(labels)
        unknown = dist[labels == 1]
        unknown = unknown[np.isfinite(unknown)]
        if labels.min() == 1 or (unknown.size == 0 and (labels == 1).any()):
            return cls(keep=np.inf, ensure=0.0)
        if unknown.size == 0:
            return cls(keep=1.0, ensure=0.0)
        keep = float(np.percentile(unknown, 99.5)) + 1.0
        half_width = _boundary_half_width(labels, dist)
        if half_width is None:  # one known class only: the unknown pixels spread over [0, w]
            half_width = 2.0 * float(np.median(unknown))
        ensure = min(keep, min_band * half_width)
        return cls(keep=keep, ensure=ensure)

    def widest(self, other: BandWidth) -> BandWidth:
        return BandWidth(max(self.keep, other.keep), max(self.ensure, other.ensure))




def _nearest_fill(values: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Each pixel takes ``values`` of the nearest pixel where ``source`` is True."""
    if source.all():
        return values
    _, nearest = cv2.distanceTransformWithLabels(
        (~source).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    seeds = np.flatnonzero(source.ravel())  # DIST_LABEL_PIXEL numbers the seeds in raster order
    flat = values.reshape(-1, *values.shape[2:])
    return flat[seeds[nearest.ravel() - 1]].reshape(values.shape)


def layer_flow(flow: np.ndarray, layer: np.ndarray, reliable: np.ndarray, margin: int) -> np.ndarray:
    """The motion of one layer (foreground or background side) of frame p.

    Near an object's edge DIS blends the two motions; the layer's own motion there is
    taken from its nearest interior pixel (``margin`` pixels from the edge) whose flow
    passed the forward-backward check. ``flow`` is float32 ``H x W x 2``, ``layer`` and
    ``reliable`` bool ``H x W``; returns float32 ``H x W x 2``.
    """
    interior = layer
    if margin > 0:
        size = 2 * margin + 1
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
        interior = cv2.erode(layer.astype(np.uint8), kernel, borderType=cv2.BORDER_REPLICATE) > 0
    for seeds in (interior & reliable, interior, layer & reliable, layer):
        if seeds.any():
            return _nearest_fill(flow, seeds)
    return flow


def _splat(mask: np.ndarray, image: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward-splat the ``mask`` pixels of frame p (and their colours) along ``flow``.

    Returns (bool ``H x W``: where a pixel of the mask landed, float32 ``H x W x 3``: the
    colour it brought). One-pixel holes where the flow stretches are closed.
    """
    height, width = mask.shape
    covered = np.zeros(height * width, dtype=bool)
    colours = np.zeros((height * width, 3), dtype=np.float32)
    ys, xs = np.nonzero(mask)
    tx = np.rint(xs + flow[ys, xs, 0]).astype(np.int64)
    ty = np.rint(ys + flow[ys, xs, 1]).astype(np.int64)
    inside = (tx >= 0) & (tx < width) & (ty >= 0) & (ty < height)
    target = ty[inside] * width + tx[inside]
    covered[target] = True
    colours[target] = image[ys[inside], xs[inside]]
    covered = covered.reshape(height, width)
    colours = colours.reshape(height, width, 3)
    closed = cv2.morphologyEx(covered.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8)) > 0
    holes = closed & ~covered
    if holes.any():
        weight = cv2.blur(covered.astype(np.float32), (3, 3))
        mean = cv2.blur(colours, (3, 3)) / np.maximum(weight, 1e-6)[:, :, None]
        colours[holes] = mean[holes]
    return closed, colours


@dataclass
class FlowPropagator:
    """Propagates keyframe trimaps along DIS optical flow.

    ``flow`` computes the flows (preset and working resolution). ``min_band`` is the
    fraction of the keyframe's typical band half-width that is always kept unknown around
    the boundary. ``alpha1``/``alpha2`` are the forward-backward check's tolerances
    (:func:`~tcvom.classical.flow.unreliable_mask`). ``layer_margin`` is how far inside a
    layer its motion is sampled. ``decisive`` is the colour-error ratio below which an
    occlusion is settled in favour of the layer that matches the frame better (else the
    pixel stays unknown). ``footprint_slack`` (pixels) is how far the band may stray from
    the keyframe's band carried along with the object (the splat rounds to whole pixels).
    """

    flow: FlowEstimator = field(default_factory=FlowEstimator)
    min_band: float = 0.75
    alpha1: float = 0.01
    alpha2: float = 0.5
    layer_margin: int = 6
    decisive: float = 0.5
    footprint_slack: float = 2.0

    def run_pass(
        self,
        frames: FrameReader,
        keyframes: Mapping[int, np.ndarray],
        pass_: Pass,
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(frame, probs)`` for each frame of ``pass_.frames`` in order.

        ``frames.read(frame)`` gives float32 ``H x W x 3`` sRGB in [0, 1]; ``keyframes``
        maps frame -> uint8 ``H x W`` trimap in 0/128/255 and must hold the pass's
        keyframe. ``probs`` is uint8 ``3 x H x W`` (background, unknown, foreground), 255 *
        probability truncated (one-hot here). The first frame is the keyframe itself.
        """
        if pass_.keyframe not in keyframes:
            raise InputError(
                f"the pass from keyframe {pass_.keyframe} has no trimap for it",
                frame=pass_.keyframe,
            )
        prev_image = frames.read(pass_.frames[0])
        shape = prev_image.shape[:2]
        band = None
        for key in pass_.memory_keyframes:
            if key in keyframes:
                width = BandWidth.of_trimap(check_classified(keyframes[key], shape, frame=key, what="keyframe trimap"), self.min_band)
                band = width if band is None else band.widest(width)
        assert band is not None  # the pass's own keyframe is always among its memory keyframes
        labels = class_labels(check_classified(keyframes[pass_.keyframe], shape, frame=pass_.keyframe, what="keyframe trimap"))
        side, _ = boundary_distance(labels)
        footprint = labels == 1
        yield pass_.frames[0], _one_hot_u8(labels)
        prev_gray = self.flow.prepare(prev_image)
        for frame in pass_.frames[1:]:
            image = frames.read(frame)
            if image.shape[:2] != shape:
                raise FrameSizeError(
                    f"the frame is {image.shape[1]} x {image.shape[0]}, the keyframe's is {shape[1]} x {shape[0]}",
                    frame=frame,
                )
            gray = self.flow.prepare(image)
            flow_tp = self.flow.flow_prepared(gray, prev_gray, shape)
            flow_pt = self.flow.flow_prepared(prev_gray, gray, shape)
            labels, side, footprint = self.step(labels, side, footprint, prev_image, image, flow_pt, flow_tp, band)
            prev_gray, prev_image = gray, image
            yield frame, _one_hot_u8(labels)

    def step(
        self,
        labels: np.ndarray,
        side: np.ndarray,
        footprint: np.ndarray,
        image_p: np.ndarray,
        image_t: np.ndarray,
        flow_pt: np.ndarray,
        flow_tp: np.ndarray,
        band: BandWidth,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Carry the class map and the boundary of frame p onto frame t.

        ``labels`` is int8 ``H x W`` (0 background, 1 unknown, 2 foreground) of frame p,
        ``side`` bool ``H x W`` the foreground side of its fg/bg boundary;
        ``image_p``/``image_t`` float32 ``H x W x 3``; ``flow_pt``/``flow_tp`` the flows
        ``p -> t`` and ``t -> p``; ``footprint`` bool ``H x W`` (below). Returns frame t's
        (labels, side, footprint).

        The foreground and the background of p each move with their own layer motion
        (forward splatting); the unknown band and the boundary travel with the
        foreground (an object's edge moves with the object). What neither layer reaches
        (a disocclusion) is unknown. Where both land (an occlusion) the one whose colour
        matches frame t decisively wins, else the pixel is unknown; where the flow fails
        the forward-backward check near the boundary it is unknown. ``footprint`` is the
        keyframe's unknown band carried along with the foreground. With ``m`` = the
        99.5th-percentile motion near the boundary + 2 px + ``footprint_slack``, an
        unknown pixel carried from p stays unknown on the footprint (grown by
        ``footprint_slack``) or, where neither layer reaches it or an occlusion is
        undecided in this frame, within ``m`` of the boundary; a pixel that turns
        unknown in this frame stays unknown within ``m`` of the footprint or the
        boundary. Others, and any farther than ``band.keep`` plus the motion from the
        boundary, fall to their side. When the keyframe has no known background or no
        boundary (``band.keep`` infinite) only the ``keep`` rule applies. Finally every
        pixel within ``band.ensure`` of the boundary is unknown.
        """
        dist_p = _side_distance(side)
        finite = np.isfinite(dist_p)
        if not finite.any():  # no boundary to carry: the map stays as it is
            return labels, side, footprint
        # Only a ring around the boundary can change; far pixels keep their side.
        near = dist_p <= band.keep + 8
        reach = float(np.percentile(np.linalg.norm(flow_pt[near], axis=1), 99.5)) + 2.0
        valid_radius = band.keep + reach + 2.0
        source_radius = valid_radius + reach + 2 * self.layer_margin + 2.0
        source = dist_p <= source_radius
        ys, xs = np.nonzero(source)
        pad = int(np.ceil(reach)) + 2
        y0, y1 = max(0, ys.min() - pad), min(labels.shape[0], ys.max() + pad + 1)
        x0, x1 = max(0, xs.min() - pad), min(labels.shape[1], xs.max() + pad + 1)
        crop = (slice(y0, y1), slice(x0, x1))
        region_labels, region_side, region_footprint = self._step_region(
            labels[crop], side[crop], footprint[crop], source[crop], image_p[crop], image_t[crop],
            flow_pt[crop], flow_tp[crop], band, reach,
        )
        out = np.where(side, 2, 0).astype(np.int8)
        side_t = side.copy()
        valid = dist_p[crop] <= valid_radius
        out[crop][valid] = region_labels[valid]
        side_t[crop][valid] = region_side[valid]
        footprint_t = np.zeros_like(footprint)
        footprint_t[crop][valid] = region_footprint[valid]
        return out, side_t, footprint_t

    def _step_region(
        self,
        labels: np.ndarray,
        side: np.ndarray,
        footprint: np.ndarray,
        source: np.ndarray,
        image_p: np.ndarray,
        image_t: np.ndarray,
        flow_pt: np.ndarray,
        flow_tp: np.ndarray,
        band: BandWidth,
        reach: float,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`step` on a crop; only the ``source`` pixels of p are carried. ``reach``
        bounds the motion (pixels) near the boundary."""
        fg_p, bg_p = (labels == 2) & source, (labels == 0) & source
        reliable_p = ~unreliable_mask(flow_pt, flow_tp, alpha1=self.alpha1, alpha2=self.alpha2)
        fg_motion = layer_flow(flow_pt, fg_p | (side & source & ~bg_p), reliable_p, self.layer_margin)
        bg_motion = layer_flow(flow_pt, bg_p, reliable_p, self.layer_margin)
        fg_t, fg_col = _splat(fg_p, image_p, fg_motion)
        bg_t, bg_col = _splat(bg_p, image_p, bg_motion)
        band_t, _ = _splat((labels == 1) & source, image_p, fg_motion)
        side_t, _ = _splat(side & source, image_p, fg_motion)
        footprint_t, _ = _splat(footprint & source, image_p, fg_motion)

        out = np.full(labels.shape, 1, dtype=np.int8)  # neither layer landed: disoccluded
        out[fg_t & ~bg_t] = 2
        out[bg_t & ~fg_t] = 0
        both = fg_t & bg_t
        if both.any():
            err_fg = np.abs(image_t - fg_col).mean(axis=2)
            err_bg = np.abs(image_t - bg_col).mean(axis=2)
            out[both & (err_fg < self.decisive * err_bg)] = 2
            out[both & (err_bg < self.decisive * err_fg)] = 0
        opened = out == 1  # neither layer lands, or an occlusion is undecided
        out[band_t] = 1
        side_t = (side_t | (out == 2)) & (out != 0)

        dist = _side_distance(side_t)
        unreliable_t = unreliable_mask(flow_tp, flow_pt, alpha1=self.alpha1, alpha2=self.alpha2)
        out[unreliable_t & (dist <= band.keep)] = 1
        # The band carried from frame p may lie on the keyframe's band as it moved with
        # the object (its footprint, give or take the splat's rounding), or within one
        # motion of the boundary where this frame's motion leaves it undecided (neither
        # layer lands, or an occlusion is undecided). Pixels that become unknown in this
        # frame may lie up to one motion beyond the footprint or the boundary. Anything
        # else falls to its side, so a disocclusion is unknown in the frame it opens and
        # does not accumulate.
        near_boundary = dist <= reach + self.footprint_slack
        on_footprint = _grow(footprint_t, self.footprint_slack)
        beside_footprint = _grow(footprint_t, reach + self.footprint_slack)
        allowed = np.where(band_t, on_footprint | (opened & near_boundary), beside_footprint | near_boundary)
        if not np.isfinite(band.keep):  # the keyframe marks no background: nothing to fall to
            allowed[:] = True
        stale = (out == 1) & (~allowed | (dist > band.keep + reach))
        out[stale] = np.where(side_t[stale], 2, 0)
        out[dist <= band.ensure] = 1
        return out, side_t, footprint_t


def _grow(mask: np.ndarray, radius: float) -> np.ndarray:
    """``mask`` dilated by a disc of ``radius`` pixels: the pixels within ``radius`` of it
    (a distance transform, whose cost does not grow with the radius: a dilation with a
    disc as wide as a fast move took seconds a frame at 4K, in one call a stop signal
    could not interrupt)."""
    if not mask.any():
        return np.zeros(mask.shape, dtype=bool)
    return cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE) <= radius


def _side_distance(side: np.ndarray) -> np.ndarray:
    """float32 ``H x W``: each pixel's distance to the edge of the bool region ``side``."""
    if side.all() or not side.any():
        return np.full(side.shape, np.inf, dtype=np.float32)
    inside = cv2.distanceTransform(side.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    outside = cv2.distanceTransform((~side).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return np.where(side, inside, outside).astype(np.float32)


def _one_hot_u8(labels: np.ndarray) -> np.ndarray:
    """uint8 ``3 x H x W``: 255 on the pixel's class (0 bg, 1 unknown, 2 fg), else 0."""
    return one_hot_labels(labels, dtype=np.uint8, on=255)
