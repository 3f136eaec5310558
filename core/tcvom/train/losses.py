"""The training losses of TCVOM: L_im, L_tc and L_af, and their weighted total.

Y. Zhang, C. Wang, M. Cui, P. Ren, X. Xie, X.-S. Hua, H. Bao, Q. Huang and W. Xu,
"Attention-guided Temporally Coherent Video Object Matting", ACM MM 2021, section 3.2
(Eqs. 4-6), as the reference training code computes them (``shared/reference/
GCA_TAM_NOTES.md``, "Losses (training)"):

- :func:`alpha_loss` (L_im for GCA): L1 between the prediction composited with the ground
  truth outside the training mask and the ground truth, summed over the mask and divided
  by its pixel count (over the whole batch). :func:`composition_loss` and
  :func:`gradient_loss` are the extra L_im terms of the DIM / Index bases.
- :func:`temporal_coherence_loss` (L_tc): masked L1 between the predicted and the true
  temporal differences, ``(a_t - a_{t+1})`` vs ``(g_t - g_{t+1})``, mask of frame t.
- :func:`affinity_loss` (L_af): binary cross-entropy with logits between the TAM's raw
  attention logits and a target of ``1 - s = 0.8`` where the 8x8-pooled ground-truth alpha
  of the centre and of the neighbour differ by less than ``theta = 0.3`` (0 elsewhere), at
  the unknown positions of the 1/8 mask, averaged over the two neighbours.
- :func:`fba_image_loss`: FBA's own image terms as the reference trains FBA+TAM
  (``FullModel.fba_single_image_loss``, ``utils/loss_func.py``): alpha, composition,
  F/B, gradient, exclusion and Laplacian terms, means over the whole frame;
  :func:`fba_temporal_loss` adds L_tc of F and B (weight 0.25 each) to that of alpha.
- :func:`total_loss`: ``L_im + 0.5 L_tc + 0.25 L_af``.

All alphas are float in [0, 1]; masks are {0, 1} floats or bools of the same shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

#: Denominator floor and mask threshold of the reference ``L1_mask``.
MASK_EPS = 1.001e-5
#: The TAM works at 1/8 resolution.
TAM_STRIDE = 8
#: Terms that :func:`image_loss` knows.
IMAGE_TERMS: tuple[str, ...] = ("alpha", "composition", "gradient")
#: Terms that :func:`fba_image_loss` knows (each with the reference's weight inside).
FBA_TERMS: tuple[str, ...] = ("alpha", "composition", "fb", "gradient", "exclusion", "laplacian")
#: Weight of the F and B terms against alpha's in FBA's losses (the reference's 0.25).
FBA_FB_WEIGHT = 0.25
#: Levels of FBA's Laplacian loss; the crop must be at least 64 pixels for five levels
#: (the reflect padding of the 5x5 Gaussian needs 3 pixels at 1/16).
LAPLACIAN_LEVELS = 5
#: Levels of FBA's exclusion loss on F and B.
EXCLUSION_LEVELS = 3


@dataclass(frozen=True)
class LossWeights:
    """Weights of Eq. 6 and the affinity-target parameters (paper values by default)."""

    image: float = 1.0
    temporal: float = 0.5
    affinity: float = 0.25
    theta: float = 0.3  # |alpha_c - alpha_nb| below this is "similar"
    target: float = 0.8  # 1 - label smoothing s (s = 0.2)


def masked_l1(x: Tensor, y: Tensor, mask: Tensor | None) -> Tensor:
    """``sum(|x - y| * mask) / count(mask > eps)`` over all elements (the reference ``L1_mask``).

    Args:
        x, y: tensors of one shape (e.g. ``B x 1 x H x W``).
        mask: same shape or broadcastable to it (a ``B x 1 x H x W`` mask on ``B x 3 x H x W``
            images sums the channels and divides by the pixel count, as the reference does),
            values in [0, 1]; None: the mean of ``|x - y|`` over every element.

    Returns:
        0-d tensor; 0 when the mask is empty.
    """
    if mask is None:
        return (x - y).abs().mean()
    mask = mask.to(x.dtype)
    res = (x - y).abs() * mask
    count = (mask > MASK_EPS).to(x.dtype).sum()
    return res.sum() / count.clamp(MASK_EPS, res.numel() + 1)


def refine(pred: Tensor, gt: Tensor, mask: Tensor) -> Tensor:
    """The prediction inside the mask, the ground truth outside (``B x 1 x H x W``)."""
    return torch.where(mask.bool(), pred, gt)


def alpha_loss(pred: Tensor, gt: Tensor, mask: Tensor) -> Tensor:
    """L_im of GCA: masked L1 of the refined prediction against the ground truth.

    Args:
        pred: ``B x 1 x H x W`` raw predicted alpha in [0, 1].
        gt: ``B x 1 x H x W`` ground-truth alpha in [0, 1].
        mask: ``B x 1 x H x W`` training mask (the dilated ``0 < alpha < 1`` region).
    """
    return masked_l1(refine(pred, gt, mask), gt, mask)


def composition_loss(pred: Tensor, gt: Tensor, mask: Tensor, fg: Tensor, bg: Tensor, image: Tensor) -> Tensor:
    """Composition L1 (DIM / Index bases): ``F a + B (1 - a)`` against the image, in the mask
    (summed over the three channels, divided by the masked pixel count).

    ``fg``, ``bg``, ``image``: ``B x 3 x H x W`` in [0, 1]; the others as :func:`alpha_loss`.
    """
    a = refine(pred, gt, mask)
    comp = fg * a + bg * (1.0 - a)
    return masked_l1(comp, image, mask)


def image_gradient(x: Tensor) -> tuple[Tensor, Tensor]:
    """Forward differences along x and y, zero-padded at the right / bottom (``B x C x H x W``)."""
    dy = F.pad(x[:, :, 1:, :] - x[:, :, :-1, :], (0, 0, 0, 1))
    dx = F.pad(x[:, :, :, 1:] - x[:, :, :, :-1], (0, 1, 0, 0))
    return dx, dy


def gradient_l1(x: Tensor, y: Tensor, mask: Tensor | None) -> Tensor:
    """:func:`masked_l1` of the gradient magnitudes ``sqrt(dx² + dy² + eps)`` of x and y
    (the reference ``L1_grad``; ``mask`` None: the mean over every element)."""
    px, py = image_gradient(x)
    gx, gy = image_gradient(y)
    mag_p = torch.sqrt(px**2 + py**2 + MASK_EPS)
    mag_g = torch.sqrt(gx**2 + gy**2 + MASK_EPS)
    return masked_l1(mag_p, mag_g, mask)


def gradient_loss(pred: Tensor, gt: Tensor, mask: Tensor) -> Tensor:
    """L1 of gradient magnitudes ``sqrt(dx² + dy² + eps)`` in the mask (DIM / Index bases)."""
    return gradient_l1(refine(pred, gt, mask), gt, mask)


def image_loss(
    pred: Tensor,
    gt: Tensor,
    mask: Tensor,
    *,
    terms: tuple[str, ...] = ("alpha",),
    fg: Tensor | None = None,
    bg: Tensor | None = None,
    image: Tensor | None = None,
) -> dict[str, Tensor]:
    """The L_im terms asked for, by name (``alpha``, ``composition``, ``gradient``).

    Shapes as :func:`alpha_loss` / :func:`composition_loss`; ``composition`` needs ``fg``,
    ``bg`` and ``image``. Returns ``{term: 0-d tensor}``; L_im is their sum.
    """
    unknown = [t for t in terms if t not in IMAGE_TERMS]
    if unknown or not terms:
        raise ValueError(f"image loss terms must be among {IMAGE_TERMS}, got {terms}")
    out: dict[str, Tensor] = {}
    if "alpha" in terms:
        out["alpha"] = alpha_loss(pred, gt, mask)
    if "composition" in terms:
        if fg is None or bg is None or image is None:
            raise ValueError("the composition term needs fg, bg and image")
        out["composition"] = composition_loss(pred, gt, mask, fg, bg, image)
    if "gradient" in terms:
        out["gradient"] = gradient_loss(pred, gt, mask)
    return out


# --- FBA's image terms ---------------------------------------------------------------------------

#: The 5x5 binomial kernel of OpenCV's pyrDown / pyrUp.
_GAUSS = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])


def _gauss(x: Tensor) -> Tensor:
    """5x5 binomial blur per channel with reflect padding (``B x C x H x W``, H and W > 2)."""
    k = torch.outer(_GAUSS, _GAUSS).to(device=x.device, dtype=x.dtype) / 256.0
    c = x.shape[1]
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), k.expand(c, 1, 5, 5), groups=c)


def laplacian_pyramid(x: Tensor, levels: int = LAPLACIAN_LEVELS) -> list[Tensor]:
    """The Laplacian pyramid of FBA's loss: per level, the image minus the up-sampled (zeros
    between samples, blurred with 4x the kernel) down-sampled blur; ``B x C x H x W`` with
    H and W divisible by ``2**levels`` and at least ``3 * 2**(levels - 1)``."""
    pyramid = []
    current = x
    for _ in range(levels):
        down = _gauss(current)[:, :, ::2, ::2]
        up = torch.zeros_like(current)
        up[:, :, ::2, ::2] = down
        pyramid.append(current - 4.0 * _gauss(up))
        current = down
    return pyramid


def laplacian_loss(x: Tensor, y: Tensor, levels: int = LAPLACIAN_LEVELS) -> Tensor:
    """FBA's Laplacian loss: ``sum_l 2**l * sum |L_l(x) - L_l(y)|`` divided by ``x.numel()``."""
    total = sum((2.0**level) * (a - b).abs().sum()
                for level, (a, b) in enumerate(zip(laplacian_pyramid(x, levels), laplacian_pyramid(y, levels),
                                                    strict=True)))
    return torch.as_tensor(total) / x.numel()


def exclusion_loss(a: Tensor, b: Tensor, levels: int = EXCLUSION_LEVELS) -> Tensor:
    """Gradient exclusion between two images (Zhang, Ng and Chen, "Single Image Reflection
    Separation with Perceptual Losses", CVPR 2018), as FBA applies it to F and B: per level
    and direction ``mean(tanh(g_a / 2)² tanh(lambda g_b / 2)²) ** 0.25`` with ``lambda`` the
    ratio of mean absolute gradients times 2; averaged over levels (2x2 average pooling
    between them), x and y summed. ``B x C x H x W`` -> 0-d tensor."""
    terms_x, terms_y = [], []
    for _ in range(levels):
        ax, ay = image_gradient(a)
        bx, by = image_gradient(b)
        lam_x = 2.0 * ax.abs().mean() / (bx.abs().mean() + MASK_EPS)
        lam_y = 2.0 * ay.abs().mean() / (by.abs().mean() + MASK_EPS)
        # 2 sigmoid(g) - 1 = tanh(g / 2)
        sx = (torch.tanh(ax / 2) ** 2 * torch.tanh(bx * lam_x / 2) ** 2).mean(dim=(1, 2, 3)) + MASK_EPS
        sy = (torch.tanh(ay / 2) ** 2 * torch.tanh(by * lam_y / 2) ** 2).mean(dim=(1, 2, 3)) + MASK_EPS
        terms_x.append(sx**0.25)
        terms_y.append(sy**0.25)
        a = F.avg_pool2d(a, 2, stride=2)
        b = F.avg_pool2d(b, 2, stride=2)
    return (torch.stack(terms_x).mean(0)).mean() + (torch.stack(terms_y).mean(0)).mean()


def refine_colours(pred_fg: Tensor, pred_bg: Tensor, fg: Tensor, bg: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Predicted F and B inside the mask, the true ones outside (``B x 3 x H x W``; mask ``B x 1``)."""
    m = mask.bool().expand_as(pred_fg)
    return torch.where(m, pred_fg, fg), torch.where(m, pred_bg, bg)


def fba_image_loss(
    pred: Tensor,
    pred_fg: Tensor,
    pred_bg: Tensor,
    gt: Tensor,
    mask: Tensor,
    fg: Tensor,
    bg: Tensor,
    image: Tensor,
    *,
    terms: tuple[str, ...] = FBA_TERMS,
) -> dict[str, Tensor]:
    """FBA's L_im terms, each with the reference's weight, on one frame (refined alpha ``a``,
    refined ``F'`` and ``B'``: prediction in the mask, truth outside; means over the frame):

    - ``alpha``: ``mean |a - g|``;
    - ``composition``: ``mean |F' g + B' (1 - g) - I| + 0.25 mean |F a + B (1 - a) - I|``;
    - ``fb``: ``0.25 (mean |F' - F| + mean |B' - B|)``;
    - ``gradient``: mean L1 of the gradient magnitudes of ``a`` and ``g``;
    - ``exclusion``: ``0.25`` :func:`exclusion_loss` of ``F'`` and ``B'``;
    - ``laplacian``: :func:`laplacian_loss` of ``a`` + ``0.25`` (that of ``F'`` and ``B'``).

    Args:
        pred: ``B x 1 x H x W`` predicted alpha; pred_fg, pred_bg: ``B x 3 x H x W`` predicted
            F and B; gt, mask: ``B x 1 x H x W``; fg, bg, image: ``B x 3 x H x W`` in [0, 1].

    Returns:
        ``{term: 0-d tensor}`` for the terms asked for; L_im is their sum.
    """
    unknown = [t for t in terms if t not in FBA_TERMS]
    if unknown or not terms:
        raise ValueError(f"FBA image loss terms must be among {FBA_TERMS}, got {terms}")
    w = FBA_FB_WEIGHT
    a = refine(pred, gt, mask)
    f, b = refine_colours(pred_fg, pred_bg, fg, bg, mask)
    out: dict[str, Tensor] = {}
    if "alpha" in terms:
        out["alpha"] = masked_l1(a, gt, None)
    if "composition" in terms:
        out["composition"] = (masked_l1(f * gt + b * (1 - gt), image, None)
                              + w * masked_l1(fg * a + bg * (1 - a), image, None))
    if "fb" in terms:
        out["fb"] = w * (masked_l1(f, fg, None) + masked_l1(b, bg, None))
    if "gradient" in terms:
        out["gradient"] = gradient_l1(a, gt, None)
    if "exclusion" in terms:
        out["exclusion"] = w * exclusion_loss(f, b)
    if "laplacian" in terms:
        out["laplacian"] = laplacian_loss(a, gt) + w * (laplacian_loss(f, fg) + laplacian_loss(b, bg))
    return out


def temporal_coherence_loss(preds: Tensor, gts: Tensor, masks: Tensor) -> Tensor:
    """L_tc over consecutive predicted frames.

    Args:
        preds: ``B x T x 1 x H x W`` refined predictions (:func:`refine`) of T >= 2
            consecutive frames, in [0, 1].
        gts: ``B x T x 1 x H x W`` ground truth.
        masks: ``B x T x 1 x H x W`` training masks; pair (t, t+1) uses frame t's.

    Returns:
        0-d tensor: the mean over the T-1 pairs of
        ``masked_l1(a_t - a_{t+1}, g_t - g_{t+1}, mask_t)``.
    """
    if preds.shape[1] < 2:
        raise ValueError(f"L_tc needs at least two frames, got {preds.shape[1]}")
    terms = [
        masked_l1(preds[:, t] - preds[:, t + 1], gts[:, t] - gts[:, t + 1], masks[:, t])
        for t in range(preds.shape[1] - 1)
    ]
    return torch.stack(terms).mean()


def fba_temporal_loss(alphas: Tensor, fgs: Tensor, bgs: Tensor, gts: Tensor, true_fgs: Tensor, true_bgs: Tensor,
                      masks: Tensor) -> Tensor:
    """FBA's L_tc: :func:`temporal_coherence_loss` of the refined alphas plus 0.25 times that
    of the refined F and B (``B x T x 3 x H x W``, against the true ones; mask of frame t
    on the three channels, divided by its pixel count)."""
    return (temporal_coherence_loss(alphas, gts, masks)
            + FBA_FB_WEIGHT * (temporal_coherence_loss(fgs, true_fgs, masks)
                               + temporal_coherence_loss(bgs, true_bgs, masks)))


def affinity_targets(
    gt_centre: Tensor, gt_neighbour: Tensor, window: int = 7, theta: float = 0.3, target: float = 0.8
) -> Tensor:
    """Target affinities G_f of Eq. 4.

    Args:
        gt_centre, gt_neighbour: ``B x 1 x H x W`` ground-truth alpha in [0, 1] of frame t
            and of the neighbour (H, W multiples of 8).
        window: the TAM window (7).

    Returns:
        ``B x window² x (H/8 * W/8)``: ``target`` where ``|pool(g_t)(p) - pool(g_f)(p + d)| <
        theta``, else 0, with the 8x8-average-pooled alphas; the neighbour's pooled alpha is
        zero-padded at the border (as the keys are). Offset index ``ky * window + kx``.
    """
    centre = F.avg_pool2d(gt_centre, TAM_STRIDE, stride=TAM_STRIDE)
    nb = F.avg_pool2d(gt_neighbour, TAM_STRIDE, stride=TAM_STRIDE)
    b, _, h, w = centre.shape
    nb_win = F.unfold(nb, window, padding=window // 2).reshape(b, window * window, h * w)
    diff = (centre.reshape(b, 1, h * w) - nb_win).abs()
    return (diff < theta).to(gt_centre.dtype) * target


def affinity_loss(
    logits_prev: Tensor,
    logits_next: Tensor,
    gt_prev: Tensor,
    gt_centre: Tensor,
    gt_next: Tensor,
    unknown: Tensor,
    *,
    theta: float = 0.3,
    target: float = 0.8,
) -> Tensor:
    """L_af (Eq. 5) for one centre frame, averaged over its two neighbours.

    Args:
        logits_prev, logits_next: ``B x window² x (h*w)`` raw TAM logits against frame t-1
            and t+1 (:meth:`tcvom.models.tam.TemporalAggregation.forward_with_logits`).
        gt_prev, gt_centre, gt_next: ``B x 1 x H x W`` ground-truth alphas, ``H = 8h``.
        unknown: ``B x 1 x h x w`` the TAM's 1/8 unknown mask of frame t.

    Returns:
        0-d tensor: mean BCE-with-logits over the window positions of every unknown
        position, ``(L_prev + L_next) / 2``; exactly 0 (with a gradient path) when the mask
        is empty.
    """
    window = round(logits_prev.shape[1] ** 0.5)
    b = logits_prev.shape[0]
    m = unknown.reshape(b, -1).bool()
    if not bool(m.any()):
        return (logits_prev.sum() + logits_next.sum()) * 0.0
    losses = []
    for logits, gt_nb in ((logits_prev, gt_prev), (logits_next, gt_next)):
        tgt = affinity_targets(gt_centre, gt_nb, window, theta, target)
        sel_logits = logits.permute(1, 0, 2)[:, m]  # window² x U
        sel_tgt = tgt.permute(1, 0, 2)[:, m]
        losses.append(F.binary_cross_entropy_with_logits(sel_logits, sel_tgt))
    return (losses[0] + losses[1]) / 2.0


def total_loss(l_im: Tensor, l_tc: Tensor | None, l_af: Tensor | None, weights: LossWeights) -> Tensor:
    """Eq. 6: ``w_im L_im + w_tc L_tc + w_af L_af`` (a missing term counts 0)."""
    total = weights.image * l_im
    if l_tc is not None:
        total = total + weights.temporal * l_tc
    if l_af is not None:
        total = total + weights.affinity * l_af
    return total
