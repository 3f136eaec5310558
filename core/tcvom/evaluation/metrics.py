"""The evaluation metrics of TCVOM (ACM MM 2021), implemented once.

Alpha accuracy and temporal coherence as the reference evaluation (``calc_metric.py`` of
the official code) computes them, over the **unknown region** ``m`` of the trimap used
for inference (``0 < trimap < 255``); ``a`` is the predicted alpha, ``g`` the ground
truth, both float ``H x W`` in [0, 1]:

- ``MSE  = mean_m (a - g)^2``
- ``SAD  = mean_m |a - g|``  (a mean, despite the name; tables show it x 1e3, as MSE)
- ``SSDA = sqrt(sum_m (a - g)^2)``
- ``dtSSD_t = sqrt(sum_{m_t} ((a_t - a_{t+1}) - (g_t - g_{t+1}))^2)``
- ``MESSDdt_t = sum_{m_t & valid} |(a_t - g_t)^2 - (A - G)^2|`` where ``A``, ``G`` are
  ``a_{t+1}``, ``g_{t+1}`` sampled bilinearly at ``(x + fx, y + fy)`` with the forward
  flow ``t -> t+1`` (pixel centres at integer coordinates, zero outside the image), and
  ``valid`` excludes pixels whose flow is invalid or not finite.

The last frame of a clip scores 0 for the temporal metrics but counts in the per-clip
average (:func:`average_frames`), and clips are averaged with equal weight
(:func:`average_clips`). Pixel counts are summed.

An empty unknown region gives 0 for every metric (the reference code would give NaN for
the means); ``pixel_count`` is then 0 so the case stays visible.

Also here: the image-matting Gradient and Connectivity errors of Rhemann et al. (CVPR
2009) as the Deep Image Matting evaluation code computes them (raw sums over the unknown
region; tables divide them by 1e3), and per-class IoU of generated trimaps (the paper's
Table 4).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from tcvom.errors import FrameSizeError, InputError, ReadError

FLOW_SCALE = 100.0
TRIMAP_CLASSES: tuple[str, ...] = ("background", "unknown", "foreground")


# ----- helpers -------------------------------------------------------------------------------
def unknown_region(trimap: np.ndarray) -> np.ndarray:
    """bool ``H x W``: ``0 < trimap < 255`` for a uint8 trimap (as the reference evaluation),
    ``0 < trimap < 65535`` for a uint16 one, ``0 < trimap < 1`` for a float one in [0, 1];
    another type, or a float trimap above 1 (0/128/255 as floats), is an InputError (a
    uint16 trimap was scored over no pixel: a perfect 0)."""
    tri = np.asarray(trimap)
    if tri.ndim != 2:
        raise InputError(f"a trimap must be H x W, got shape {tri.shape}")
    if np.issubdtype(tri.dtype, np.floating):
        if tri.size and float(np.nanmax(tri)) > 1:
            raise InputError(f"a float trimap holds values in [0, 1], this one up to {float(np.nanmax(tri)):g}",
                             hint="divide it by 255, or pass it as uint8")
        return (tri > 0) & (tri < 1)
    if tri.dtype not in (np.uint8, np.uint16):
        raise InputError(f"a trimap is uint8, uint16 or float in [0, 1], not {tri.dtype}")
    return (tri > 0) & (tri < np.iinfo(tri.dtype).max)


def _alpha(x: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise InputError(f"{name} must be an H x W alpha, got shape {arr.shape}")
    if arr.dtype in (np.uint8, np.uint16):
        return arr.astype(np.float64) / float(np.iinfo(arr.dtype).max)
    if not np.issubdtype(arr.dtype, np.floating):  # an int64 alpha was divided by 2**63
        raise InputError(f"{name} is uint8, uint16 or float in [0, 1], not {arr.dtype}",
                         hint="pass alpha.astype(np.uint8) for 0-255 values, or alpha / 255.0")
    return arr.astype(np.float64)


def _same_shape(**arrays: np.ndarray) -> None:
    shapes = {k: np.shape(v)[:2] for k, v in arrays.items()}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{k} {v[1]}x{v[0]}" for k, v in shapes.items())
        raise FrameSizeError(f"the arrays to compare differ in size: {listed}")


# ----- per-frame alpha metrics ------------------------------------------------------------------
def mse(alpha: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> float:
    """Mean squared error over ``mask`` (0 for an empty mask)."""
    _same_shape(alpha=alpha, gt=gt, mask=mask)
    m = np.asarray(mask, bool)
    if not m.any():
        return 0.0
    d = _alpha(alpha, "alpha")[m] - _alpha(gt, "gt")[m]
    return float(np.mean(d * d))


def sad(alpha: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> float:
    """Mean absolute difference over ``mask`` (the reference's "SAD"; 0 for an empty mask)."""
    _same_shape(alpha=alpha, gt=gt, mask=mask)
    m = np.asarray(mask, bool)
    if not m.any():
        return 0.0
    return float(np.mean(np.abs(_alpha(alpha, "alpha")[m] - _alpha(gt, "gt")[m])))


def ssda(alpha: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> float:
    """Square root of the summed squared difference over ``mask``."""
    _same_shape(alpha=alpha, gt=gt, mask=mask)
    m = np.asarray(mask, bool)
    d = _alpha(alpha, "alpha")[m] - _alpha(gt, "gt")[m]
    return float(np.sqrt(np.sum(d * d)))


def dtssd(
    alpha: np.ndarray, gt: np.ndarray, alpha_next: np.ndarray, gt_next: np.ndarray, mask: np.ndarray
) -> float:
    """``sqrt(sum_mask ((a_t - a_{t+1}) - (g_t - g_{t+1}))^2)``; ``mask`` is frame t's."""
    _same_shape(alpha=alpha, gt=gt, alpha_next=alpha_next, gt_next=gt_next, mask=mask)
    m = np.asarray(mask, bool)
    da = _alpha(alpha, "alpha") - _alpha(alpha_next, "alpha_next")
    dg = _alpha(gt, "gt") - _alpha(gt_next, "gt_next")
    d = (da - dg)[m]
    return float(np.sqrt(np.sum(d * d)))


def sample_bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sample ``image`` (``H x W``) at float coordinates (pixel centres at integers).

    Corners outside the image count as 0, as ``torch.nn.functional.grid_sample`` with
    ``align_corners=True, padding_mode="zeros"`` does. Computed in float64.
    """
    img = np.asarray(image, np.float64)
    h, w = img.shape
    x0 = np.floor(x)
    y0 = np.floor(y)
    fx, fy = x - x0, y - y0
    x0i, y0i = x0.astype(np.int64), y0.astype(np.int64)
    out = np.zeros(np.shape(x), np.float64)
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            xi, yi = x0i + dx, y0i + dy
            inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            vals = np.zeros(np.shape(x), np.float64)
            vals[inside] = img[yi[inside], xi[inside]]
            out += wx * wy * vals
    return out


@dataclass(frozen=True)
class FlowError:
    """MESSDdt of one frame pair: the paper's value, its L1 variant and the pixel count."""

    messddt: float
    messddt_l1: float
    count: int


def messddt(
    alpha: np.ndarray,
    gt: np.ndarray,
    alpha_next: np.ndarray,
    gt_next: np.ndarray,
    mask: np.ndarray,
    flow: np.ndarray,
    valid: np.ndarray | None = None,
) -> FlowError:
    """MESSDdt of frame t against t+1 with the forward flow ``t -> t+1``.

    ``flow`` is float ``H x W x 2`` (x, y in pixels); ``valid`` (bool ``H x W``, optional)
    marks usable flow; non-finite flow is invalid too. Sum (not mean) over ``mask & valid``
    of ``|(a - g)^2 - (A - G)^2|``; ``messddt_l1`` is the sum of ``|(a - g) - (A - G)|``
    (the reference's "MESSDdt_fix").
    """
    fl = np.asarray(flow, np.float64)
    if fl.ndim != 3 or fl.shape[2] != 2:
        raise InputError(f"flow must be H x W x 2, got shape {fl.shape}")
    _same_shape(alpha=alpha, gt=gt, alpha_next=alpha_next, gt_next=gt_next, mask=mask, flow=fl)
    ok = np.asarray(mask, bool) & np.isfinite(fl).all(axis=2)
    if valid is not None:
        _same_shape(alpha=alpha, valid=valid)
        ok &= np.asarray(valid, bool)
    count = int(ok.sum())
    if count == 0:
        return FlowError(0.0, 0.0, 0)
    ys, xs = np.nonzero(ok)
    sx, sy = xs + fl[ys, xs, 0], ys + fl[ys, xs, 1]
    big_a = sample_bilinear(_alpha(alpha_next, "alpha_next"), sx, sy)
    big_g = sample_bilinear(_alpha(gt_next, "gt_next"), sx, sy)
    e_t = _alpha(alpha, "alpha")[ok] - _alpha(gt, "gt")[ok]
    e_n = big_a - big_g
    return FlowError(
        float(np.sum(np.abs(e_t * e_t - e_n * e_n))), float(np.sum(np.abs(e_t - e_n))), count
    )


# ----- image-matting errors (Rhemann et al. 2009, DIM evaluation code) ------------------------------
def _gauss_gradient_kernel(sigma: float) -> np.ndarray:
    epsilon = 1e-2
    half = int(np.ceil(sigma * np.sqrt(-2 * np.log(np.sqrt(2 * np.pi) * sigma * epsilon))))
    u = np.arange(-half, half + 1, dtype=np.float64)
    g = np.exp(-(u**2) / (2 * sigma**2)) / (sigma * np.sqrt(2 * np.pi))
    dg = -u * g / sigma**2
    hx = g[:, None] * dg[None, :]  # rows: Gaussian, columns: its derivative
    return hx / np.sqrt(np.sum(hx * hx))


def gradient_magnitude(alpha: np.ndarray, sigma: float = 1.4) -> np.ndarray:
    """Magnitude of the Gaussian-derivative gradient (DIM ``gaussgradient``), replicated borders."""
    hx = _gauss_gradient_kernel(sigma)
    img = _alpha(alpha, "alpha")
    # The reference convolves; filter2D correlates, so flip the kernels.
    gx = cv2.filter2D(img, cv2.CV_64F, hx[::-1, ::-1].copy(), borderType=cv2.BORDER_REPLICATE)
    gy = cv2.filter2D(img, cv2.CV_64F, hx.T[::-1, ::-1].copy(), borderType=cv2.BORDER_REPLICATE)
    return np.sqrt(gx * gx + gy * gy)


def gradient_error(alpha: np.ndarray, gt: np.ndarray, mask: np.ndarray, sigma: float = 1.4) -> float:
    """Gradient error: ``sum_mask (|grad a| - |grad g|)^2`` with Gaussian derivatives (sigma 1.4)."""
    _same_shape(alpha=alpha, gt=gt, mask=mask)
    m = np.asarray(mask, bool)
    d = gradient_magnitude(alpha, sigma) - gradient_magnitude(gt, sigma)
    return float(np.sum((d * d)[m]))


def _largest_component(binary: np.ndarray) -> np.ndarray:
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=4)
    if count <= 1:
        return np.zeros(binary.shape, bool)
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == biggest


def connectivity_error(alpha: np.ndarray, gt: np.ndarray, mask: np.ndarray, step: float = 0.1) -> float:
    """Connectivity error (4-connected largest component of both alphas over thresholds of ``step``).

    For each pixel, ``l`` is the last threshold at which it was still in the largest
    common component; ``phi = 1 - d * (d >= 0.15)`` with ``d = alpha - l``; the error is
    ``sum_mask |phi_a - phi_g|``.
    """
    _same_shape(alpha=alpha, gt=gt, mask=mask)
    a, g = _alpha(alpha, "alpha"), _alpha(gt, "gt")
    m = np.asarray(mask, bool)
    # MATLAB's 0:step:1 (the reference's): the first half k*step, the second 1-(n-k)*step, so
    # 0.6 and 0.7 are those numbers (np.arange gave 0.6000000000000001: a 153/255 pixel failed 0.6)
    n = round(1 / step)
    steps = np.array([k * step if 2 * k <= n else 1 - (n - k) * step for k in range(n + 1)])
    level = np.full(a.shape, -1.0)
    for i in range(1, len(steps)):
        omega = _largest_component((a >= steps[i]) & (g >= steps[i]))
        level[(level == -1) & ~omega] = steps[i - 1]
    level[level == -1] = 1.0
    da, dg = a - level, g - level
    phi_a = 1 - da * (da >= 0.15)
    phi_g = 1 - dg * (dg >= 0.15)
    return float(np.sum(np.abs(phi_a - phi_g)[m]))


# ----- trimaps ----------------------------------------------------------------------------------
def trimap_class_counts(pred: np.ndarray, gt: np.ndarray) -> dict[str, tuple[int, int]]:
    """Per class (background / unknown / foreground): (intersection, union) pixel counts.

    Both trimaps are uint8 ``H x W`` in 0 / 128 / 255 (``tcvom.io.trimap`` convention).
    """
    _same_shape(pred=pred, gt=gt)
    p, q = np.asarray(pred), np.asarray(gt)
    out = {}
    for name, value in zip(TRIMAP_CLASSES, (0, 128, 255), strict=True):
        pc, gc = p == value, q == value
        out[name] = (int((pc & gc).sum()), int((pc | gc).sum()))
    return out


def trimap_iou(counts: Iterable[dict[str, tuple[int, int]]]) -> dict[str, float]:
    """IoU per class from summed counts (one frame or a whole clip), plus ``mean`` over classes.

    A class absent from both trimaps everywhere scores 1.0 (nothing to get wrong).
    """
    inter = dict.fromkeys(TRIMAP_CLASSES, 0)
    union = dict.fromkeys(TRIMAP_CLASSES, 0)
    for c in counts:
        for name in TRIMAP_CLASSES:
            inter[name] += c[name][0]
            union[name] += c[name][1]
    out = {name: (inter[name] / union[name] if union[name] else 1.0) for name in TRIMAP_CLASSES}
    out["mean"] = float(np.mean([out[n] for n in TRIMAP_CLASSES]))
    return out


# ----- flow -------------------------------------------------------------------------------------
def read_flow_png(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a VideoMatting108 flow PNG: returns (float32 ``H x W x 2`` flow in px, bool valid).

    16-bit, 3 channels; in OpenCV's BGR order channel 0 is x and 1 is y, each an int16 bit
    pattern of ``flow * 100``; channel 2 is validity (0 = invalid). Invalid flow is NaN.
    """
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise ReadError("cannot read the flow PNG", path=path, hint="is it a 16-bit 3-channel PNG?")
    if raw.dtype != np.uint16 or raw.ndim != 3 or raw.shape[2] != 3:
        raise ReadError(
            f"a flow PNG must be 16-bit with 3 channels, got {raw.dtype} with shape {raw.shape}",
            path=path,
        )
    flow = raw[:, :, :2].view(np.int16).astype(np.float32) / np.float32(FLOW_SCALE)
    valid = raw[:, :, 2] != 0
    flow[~valid] = np.nan
    return flow, valid


def dis_flow(image: np.ndarray, image_next: np.ndarray, check: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Forward flow ``image -> image_next`` with OpenCV's DIS (medium preset).

    Inputs are float ``H x W x 3`` RGB in [0, 1] (or uint8). Returns (float32 ``H x W x 2``,
    bool valid); valid = forward-backward consistent within ``check`` px (+5% of the motion).
    """
    def gray(x: np.ndarray) -> np.ndarray:
        arr = np.asarray(x)
        if arr.dtype != np.uint8:
            arr = np.clip(np.round(arr * 255.0), 0, 255).astype(np.uint8)
        return cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY) if arr.ndim == 3 else arr

    g0, g1 = gray(image), gray(image_next)
    _same_shape(image=g0, image_next=g1)
    dis = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    fw = dis.calc(g0, g1, None)
    bw = dis.calc(g1, g0, None)
    h, w = g0.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    back = cv2.remap(bw, xs + fw[..., 0], ys + fw[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    err = np.hypot(fw[..., 0] + back[..., 0], fw[..., 1] + back[..., 1])
    valid = err <= check + 0.05 * np.hypot(fw[..., 0], fw[..., 1])
    return fw.astype(np.float32), valid


# ----- per-frame record, clip averaging ---------------------------------------------------------
METRIC_NAMES: tuple[str, ...] = (
    "mse",
    "sad",
    "ssda",
    "dtssd",
    "messddt",
    "messddt_l1",
    "grad",
    "conn",
)
COUNT_NAMES: tuple[str, ...] = ("pixel_count", "flow_pixel_count")
TEMPORAL_NAMES: tuple[str, ...] = ("dtssd", "messddt", "messddt_l1")
"""The metrics that compare a frame with the next."""


@dataclass
class FrameScore:
    """Metrics of one frame; temporal ones (dtssd, messddt*) compare it with the next frame."""

    frame: int
    mse: float = 0.0
    sad: float = 0.0
    ssda: float = 0.0
    dtssd: float = 0.0
    messddt: float = 0.0
    messddt_l1: float = 0.0
    grad: float = 0.0
    conn: float = 0.0
    pixel_count: int = 0
    flow_pixel_count: int = 0
    extra: dict[str, float] = field(default_factory=dict)
    unmeasured: tuple[str, ...] = ()
    """Metrics not computed for this frame (``grad``, ``conn`` without image metrics;
    ``messddt``, ``messddt_l1`` without flow to the next frame): left out of :meth:`as_dict`
    and of the averages, where a 0 would read as a perfect score."""

    def as_dict(self) -> dict[str, float | int]:
        d = asdict(self)
        d.update(d.pop("extra"))
        for name in d.pop("unmeasured"):
            d.pop(name, None)
        return d


def average_frames(scores: Sequence[FrameScore]) -> dict[str, float]:
    """Per-clip average as the reference: every metric summed over all frames and divided by
    the frame count (the last frame's temporal metrics are 0 but it is in the denominator);
    pixel counts summed."""
    if not scores:
        raise InputError("cannot average a clip with no frames")
    unmeasured = {name for s in scores for name in s.unmeasured}
    if not sum(s.pixel_count for s in scores):  # no unknown pixel in any truth trimap: no score (not a perfect 0)
        unmeasured |= set(METRIC_NAMES)
    if not sum(s.flow_pixel_count for s in scores):  # eval QA: MESSDdt over no valid flow pixel was a 0 in the JSON
        unmeasured |= {"messddt", "messddt_l1"}
    out: dict[str, float] = {k: float(sum(getattr(s, k) for s in scores)) / len(scores) for k in METRIC_NAMES
                             if k not in unmeasured}
    for k in COUNT_NAMES:
        out[k] = int(sum(getattr(s, k) for s in scores))
    out["frames"] = len(scores)
    return out


def average_clips(clips: Sequence[dict[str, float]]) -> dict[str, float]:
    """Mean of per-clip averages (every clip weighs the same); pixel counts are summed. A clip
    with no unknown pixel in its truth trimaps (``pixel_count`` 0) has no score and is left
    out of the means: ``clips`` and ``frames`` count what was averaged, ``unscored_clips``
    (when there are any) the clips left out. A clip whose flow is valid on no pixel of its
    unknown region has no MESSDdt: it is the mean of the other clips' (none: not measured),
    ``messddt_clips`` how many."""
    if not clips:
        raise InputError("no clip to average")
    scored = [c for c in clips if c.get("pixel_count", 1) > 0]
    out = {k: float(np.mean([c[k] for c in scored])) for k in METRIC_NAMES if scored and all(k in c for c in scored)}
    for k in ("messddt", "messddt_l1"):  # a clip measured over no valid flow pixel has none: the others' mean
        flowed = [c[k] for c in scored if k in c]
        if k not in out and flowed and all(k in c or not c.get("flow_pixel_count", 1) for c in scored):
            out[k] = float(np.mean(flowed))
            out["messddt_clips"] = len(flowed)  # fewer than ``clips``
    for k in (*COUNT_NAMES, "frames"):
        if all(k in c for c in clips):
            out[k] = int(sum(c[k] for c in scored))
    out["clips"] = len(scored)
    if len(scored) < len(clips):
        out["unscored_clips"] = len(clips) - len(scored)
    return out


FlowProvider = Callable[[int, int], "tuple[np.ndarray, np.ndarray] | None"]


class ClipScorer:
    """Scores one clip frame by frame, holding only the previous frame (streaming).

    Call :meth:`add` with consecutive frames, then :meth:`finish`. Temporal metrics of frame
    t are computed when frame t+1 arrives; the last frame gets 0 for them. Flow for
    MESSDdt comes from ``flow(frame_t, frame_t1) -> (flow, valid)`` when given (e.g.
    :func:`read_flow_png`); when it is None or returns None, DIS flow is computed from the
    ``image`` passed to :meth:`add`; without images MESSDdt is skipped and
    :attr:`flow_sources` says so. ``temporal=False`` (frames that are not consecutive, such
    as ground truth on every other frame): no temporal metric is measured, each frame's score
    is complete when it is added.
    """

    def __init__(self, flow: FlowProvider | None = None, image_metrics: bool = True, temporal: bool = True) -> None:
        self._flow = flow
        self._image_metrics = image_metrics
        self._temporal = temporal  # False: the frames added are not consecutive, dtSSD and MESSDdt are not measured
        self._prev: tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, FrameScore] | None = None
        self.scores: list[FrameScore] = []
        self.flow_sources: dict[str, int] = {"png": 0, "dis": 0, "none": 0}

    def add(
        self,
        frame: int,
        alpha: np.ndarray,
        gt: np.ndarray,
        trimap: np.ndarray,
        image: np.ndarray | None = None,
    ) -> FrameScore | None:
        """Add frame ``frame``: alpha and gt float ``H x W`` in [0, 1] (or uint8), trimap
        uint8 0/128/255, image float ``H x W x 3`` (only for DIS flow). Returns the previous
        frame's now complete score, or None for the first frame."""
        a, g = _alpha(alpha, "alpha"), _alpha(gt, "gt")
        _same_shape(alpha=a, gt=g, trimap=trimap)
        m = unknown_region(trimap)
        score = FrameScore(frame=frame, pixel_count=int(m.sum()))
        score.mse, score.sad, score.ssda = mse(a, g, m), sad(a, g, m), ssda(a, g, m)
        if self._image_metrics:
            score.grad = gradient_error(a, g, m)
            score.conn = connectivity_error(a, g, m)
        else:
            score.unmeasured = ("grad", "conn")
        if not self._temporal:
            score.unmeasured = (*score.unmeasured, *TEMPORAL_NAMES)
            self.scores.append(score)
            return score
        done = None
        if self._prev is not None:
            pf, pa, pg, pm, pimg, ps = self._prev
            if pa.shape != a.shape:
                raise FrameSizeError(
                    f"frame size changed from {pa.shape[1]}x{pa.shape[0]} to {a.shape[1]}x{a.shape[0]}",
                    frame=frame,
                )
            ps.dtssd = dtssd(pa, pg, a, g, pm)
            flow = self._flow(pf, frame) if self._flow is not None else None
            source = "png"
            if flow is None and pimg is not None and image is not None:
                flow, source = dis_flow(pimg, image), "dis"
            if flow is None:  # MESSDdt not measured: left out of the reports, not a 0 that reads as perfect
                self.flow_sources["none"] += 1
                ps.unmeasured = (*ps.unmeasured, "messddt", "messddt_l1")
            else:
                self.flow_sources[source] += 1
                err = messddt(pa, pg, a, g, pm, flow[0], flow[1])
                ps.messddt, ps.messddt_l1, ps.flow_pixel_count = err.messddt, err.messddt_l1, err.count
            self.scores.append(ps)
            done = ps
        self._prev = (frame, a, g, m, image, score)
        return done

    def finish(self) -> list[FrameScore]:
        """Close the clip: the last frame is added with temporal metrics 0. Returns all scores."""
        if self._prev is not None:
            last = self._prev[5]
            if self.flow_sources["none"]:  # the clip's MESSDdt is not measured: nor is the last frame's 0
                last.unmeasured = (*last.unmeasured, "messddt", "messddt_l1")
            self.scores.append(last)
            self._prev = None
        return self.scores

    @property
    def flow_source(self) -> str:
        """``png``, ``dis``, ``none`` or a ``+``-joined mix, for the report."""
        used = [k for k, v in self.flow_sources.items() if v]
        return "+".join(used) if used else "none"

