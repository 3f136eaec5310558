"""The paper's metrics (tcvom.evaluation.metrics): hand-computed cases, edge cases and the golden."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from tcvom.data.synthetic import encode_flow_png
from tcvom.errors import FrameSizeError, InputError, ReadError
from tcvom.evaluation import metrics as M

GOLDEN = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference" / "golden" / "metrics"

A = np.array([[0.5, 1.0], [0.0, 1.0]])
G = np.array([[0.25, 1.0], [0.5, 0.0]])
TRI = np.array([[128, 255], [128, 0]], np.uint8)  # unknown at (0,0) and (1,0); (1,1) is known


def test_alpha_metrics_by_hand() -> None:
    m = M.unknown_region(TRI)
    assert m.tolist() == [[True, False], [True, False]]
    # Differences in the unknown region: 0.25 and -0.5; the known pixel (1,1) is ignored.
    assert M.mse(A, G, m) == pytest.approx((0.0625 + 0.25) / 2)
    assert M.sad(A, G, m) == pytest.approx(0.375)
    assert M.ssda(A, G, m) == pytest.approx(math.sqrt(0.3125))


def test_uint8_inputs_are_scaled() -> None:
    m = M.unknown_region(TRI)
    a8 = np.round(A * 255).astype(np.uint8)
    g8 = np.round(G * 255).astype(np.uint8)
    assert M.sad(a8, g8, m) == pytest.approx((abs(128 - 64) + 128) / 255 / 2)


def test_dtssd_by_hand() -> None:
    a0, a1 = np.array([[0.2, 0.4]]), np.array([[0.3, 0.4]])
    g0, g1 = np.array([[0.2, 0.5]]), np.array([[0.2, 0.1]])
    m = np.array([[True, True]])
    # (a0 - a1) - (g0 - g1) = [-0.1 - 0, 0 - 0.4]
    assert M.dtssd(a0, g0, a1, g1, m) == pytest.approx(math.sqrt(0.01 + 0.16))
    assert M.dtssd(a0, g0, a1, g1, np.array([[True, False]])) == pytest.approx(0.1)


def test_messddt_integer_and_subpixel_flow() -> None:
    a0, g0 = np.full((1, 3), 0.5), np.zeros((1, 3))
    a1, g1 = np.array([[0.1, 0.2, 0.3]]), np.zeros((1, 3))
    m = np.ones((1, 3), bool)
    flow = np.zeros((1, 3, 2))
    flow[..., 0] = 1.0
    # Sampled next frame: [0.2, 0.3, 0 (outside: zero padding)]; (a-g)^2 = 0.25 everywhere.
    err = M.messddt(a0, g0, a1, g1, m, flow)
    assert err.count == 3
    assert err.messddt == pytest.approx(0.21 + 0.16 + 0.25)
    assert err.messddt_l1 == pytest.approx(0.3 + 0.2 + 0.5)
    flow[..., 0] = 0.5  # bilinear: [0.15, 0.25, 0.15]
    assert M.messddt(a0, g0, a1, g1, m, flow).messddt == pytest.approx(0.2275 + 0.1875 + 0.2275)


def test_messddt_invalid_flow_pixels_are_excluded() -> None:
    a0, g0 = np.full((1, 3), 0.5), np.zeros((1, 3))
    a1, g1 = np.array([[0.1, 0.2, 0.3]]), np.zeros((1, 3))
    flow = np.zeros((1, 3, 2))
    flow[..., 0] = 1.0
    valid = np.array([[True, False, True]])
    err = M.messddt(a0, g0, a1, g1, np.ones((1, 3), bool), flow, valid)
    assert err.count == 2 and err.messddt == pytest.approx(0.21 + 0.25)
    flow[0, 0] = np.nan  # non-finite flow is invalid as well
    err = M.messddt(a0, g0, a1, g1, np.ones((1, 3), bool), flow, valid)
    assert err.count == 1 and err.messddt == pytest.approx(0.25)
    # Outside the unknown mask nothing counts.
    assert M.messddt(a0, g0, a1, g1, np.zeros((1, 3), bool), flow).count == 0


def test_empty_unknown_region_scores_zero() -> None:
    tri = np.array([[0, 255], [255, 0]], np.uint8)
    scorer = M.ClipScorer(image_metrics=True)
    scorer.add(0, A, G, tri)
    scorer.add(1, G, A, tri)
    scores = scorer.finish()
    for s in scores:
        assert s.pixel_count == 0
        for k in M.METRIC_NAMES:
            assert getattr(s, k) == 0.0, k


def test_a_clip_scored_over_no_pixel_has_no_score_and_is_left_out_of_the_mean() -> None:
    """Metrics QA: truth trimaps with no unknown region (a matte given as the trimap) made a
    table of perfect 0s."""
    tri = np.array([[0, 255], [255, 0]], np.uint8)
    scorer = M.ClipScorer(image_metrics=False)
    scorer.add(0, A, G, tri)
    empty = M.average_frames(scorer.finish())
    assert empty["pixel_count"] == 0 and not set(M.METRIC_NAMES) & set(empty)
    other = M.ClipScorer(image_metrics=False)
    other.add(0, A, G, TRI)
    scored = M.average_frames(other.finish())
    mean = M.average_clips([empty, scored])
    # the counts are of what was averaged (eval QA: the summary said 2 clips for a mean of 1)
    assert mean["mse"] == scored["mse"] and mean["clips"] == 1 and mean["unscored_clips"] == 1
    assert mean["frames"] == scored["frames"] == 1
    assert "mse" not in M.average_clips([empty])
    assert "unscored_clips" not in M.average_clips([scored, scored])
    from tcvom.evaluation.mattes import format_table

    assert "| 1 (+1 not scored) | 1 |" in format_table({"narrow": mean})


def test_python_inputs_that_would_score_wrongly_are_refused() -> None:
    """Metrics QA: a uint16 trimap (or 0/128/255 as floats) was scored over no pixel, and an
    int64 alpha was divided by 2**63."""
    tri16 = (TRI.astype(np.uint16) * 257)
    assert np.array_equal(M.unknown_region(tri16), M.unknown_region(TRI))
    with pytest.raises(InputError, match="a float trimap holds values in"):
        M.unknown_region(TRI.astype(np.float32))
    with pytest.raises(InputError, match="not int64"):
        M.sad(A.astype(np.int64), G, TRI)


def test_connectivity_thresholds_are_matlabs() -> None:
    """Metrics QA: np.arange's 0.6000000000000001 failed a 153/255 pixel at 0.6, so uint8 and
    float input of one matte scored differently (MATLAB's 0:0.1:1 holds 0.6)."""
    alpha = np.ones((20, 20))
    alpha[5:10, 5:10] = 153 / 255
    truth, mask = np.ones((20, 20)), np.ones((20, 20), bool)
    as_uint8 = M.connectivity_error(np.round(alpha * 255).astype(np.uint8), truth, mask)
    assert as_uint8 == M.connectivity_error(alpha.astype(np.float32), truth, mask)


def test_one_frame_clip() -> None:
    scorer = M.ClipScorer(image_metrics=False)
    assert scorer.add(7, A, G, TRI) is None
    (only,) = scorer.finish()
    assert only.frame == 7 and only.dtssd == 0 and only.messddt == 0
    avg = M.average_frames([only])
    assert avg["mse"] == pytest.approx(0.15625) and avg["frames"] == 1
    assert scorer.flow_source == "none"


def test_clip_average_counts_last_frame_in_denominator() -> None:
    a1 = A.copy()
    a1[0, 0] = 0.75
    scorer = M.ClipScorer(image_metrics=False)
    scorer.add(0, A, G, TRI)
    scorer.add(1, a1, G, TRI)
    scores = scorer.finish()
    assert scores[0].dtssd == pytest.approx(0.25) and scores[1].dtssd == 0
    avg = M.average_frames(scores)
    assert avg["dtssd"] == pytest.approx(0.125)
    assert avg["pixel_count"] == 4
    both = M.average_clips([avg, {**avg, "dtssd": 0.375}])
    assert both["dtssd"] == pytest.approx(0.25) and both["clips"] == 2 and both["pixel_count"] == 8


def test_a_clip_with_no_valid_flow_pixel_has_no_messddt() -> None:
    """Eval QA: flow valid on no pixel gave MESSDdt n/a in summary.md but 0.0 in the JSON, a
    perfect score; and it went into the mean over clips as one."""
    invalid = (np.zeros((*A.shape, 2), np.float32), np.zeros(A.shape, bool))
    valid = (np.zeros((*A.shape, 2), np.float32), np.ones(A.shape, bool))
    clips = []
    for flow in (invalid, valid):
        scorer = M.ClipScorer(flow=lambda a, b, flow=flow: flow, image_metrics=False)
        scorer.add(0, A, G, TRI)
        scorer.add(1, G, G, TRI)
        clips.append(M.average_frames(scorer.finish()))
    assert "messddt" not in clips[0] and "messddt_l1" not in clips[0] and clips[0]["flow_pixel_count"] == 0
    assert clips[1]["messddt"] > 0 and clips[1]["flow_pixel_count"] > 0
    both = M.average_clips(clips)
    assert both["messddt"] == pytest.approx(clips[1]["messddt"]) and both["messddt_clips"] == 1 and both["clips"] == 2
    assert "messddt" not in M.average_clips([clips[0], clips[0]])
    from tcvom.evaluation.mattes import format_table

    # the table said it as the mean of both (session 33's Left)
    assert f"| {both['messddt']:.4g} (1 of 2 clips) |" in format_table({"narrow": both})


def test_size_mismatch_is_an_input_error() -> None:
    with pytest.raises(FrameSizeError):
        M.mse(A, np.zeros((3, 2)), np.ones((2, 2), bool))


def _reference_gradient_constant(sigma: float) -> float:
    """d/dx response of the normalised DIM kernel to a unit ramp, from the definition."""
    half = 4  # ceil(1.4 * sqrt(-2 ln(sqrt(2 pi) 1.4 0.01))) = ceil(3.62)
    gauss = [math.exp(-(u * u) / (2 * sigma * sigma)) / (sigma * math.sqrt(2 * math.pi)) for u in range(-half, half + 1)]
    dgauss = [-(u) * gauss[u + half] / (sigma * sigma) for u in range(-half, half + 1)]
    hx = [[gauss[i] * dgauss[j] for j in range(2 * half + 1)] for i in range(2 * half + 1)]
    norm = math.sqrt(sum(v * v for row in hx for v in row))
    # convolution with a ramp x: sum hx[i][j] * (x - (j - half)) = -sum hx[i][j] (j - half)
    return -sum(hx[i][j] * (j - half) for i in range(2 * half + 1) for j in range(2 * half + 1)) / norm


def test_gradient_error_by_hand() -> None:
    ramp = np.tile(np.arange(20, dtype=np.float64) * 0.02, (20, 1))
    k = _reference_gradient_constant(1.4)
    mag = M.gradient_magnitude(ramp)
    assert mag[10, 10] == pytest.approx(0.02 * k, rel=1e-9)
    mask = np.zeros((20, 20), bool)
    mask[6:14, 6:14] = True
    assert M.gradient_error(np.zeros((20, 20)), ramp, mask) == pytest.approx(64 * (0.02 * k) ** 2, rel=1e-9)
    assert M.gradient_error(ramp, ramp, mask) == 0.0


def test_connectivity_error_by_hand() -> None:
    m = np.ones((1, 5), bool)
    g = np.array([[1.0, 1.0, 0.0, 0.0, 0.0]])
    # An isolated opaque pixel in the prediction: its level is 0, phi_a = 1 - 1 = 0.
    assert M.connectivity_error(np.array([[1.0, 1.0, 0.0, 0.0, 1.0]]), g, m) == pytest.approx(1.0)
    assert M.connectivity_error(np.array([[1.0, 1.0, 0.0, 0.0, 0.5]]), g, m) == pytest.approx(0.5)
    # Below 0.15 above its level a pixel is not penalised.
    assert M.connectivity_error(np.array([[1.0, 1.0, 0.0, 0.0, 0.1]]), g, m) == 0.0
    # Pixels that drop out of the common component at different thresholds.
    a = np.array([[1.0, 0.65, 0.35]])
    assert M.connectivity_error(a, np.ones((1, 3)), np.ones((1, 3), bool)) == pytest.approx(0.4 + 0.7)
    assert M.connectivity_error(g, g, m) == 0.0


def test_trimap_iou_by_hand() -> None:
    pred = np.array([[0, 128], [255, 255]], np.uint8)
    gt = np.array([[0, 128], [128, 255]], np.uint8)
    counts = M.trimap_class_counts(pred, gt)
    assert counts == {"background": (1, 1), "unknown": (1, 2), "foreground": (1, 2)}
    iou = M.trimap_iou([counts])
    assert iou["background"] == 1.0 and iou["unknown"] == 0.5 and iou["foreground"] == 0.5
    assert iou["mean"] == pytest.approx(2 / 3)
    # Summed over frames (per-video IoU), and a class absent everywhere scores 1.
    empty = M.trimap_class_counts(np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8))
    assert M.trimap_iou([empty])["unknown"] == 1.0
    assert M.trimap_iou([counts, empty])["background"] == 1.0


def test_read_flow_png(tmp_path: Path) -> None:
    flow = np.array([[[1.5, -2.25], [-0.01, 300.0]]], np.float32)
    path = tmp_path / "flow.png"
    cv2.imwrite(str(path), encode_flow_png(flow, np.array([[True, False]])))
    decoded, valid = M.read_flow_png(path)
    assert valid.tolist() == [[True, False]]
    np.testing.assert_allclose(decoded[0, 0], [1.5, -2.25], atol=1e-6)
    assert np.isnan(decoded[0, 1]).all()
    cv2.imwrite(str(tmp_path / "eight.png"), np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(ReadError):
        M.read_flow_png(tmp_path / "eight.png")
    with pytest.raises(ReadError):
        M.read_flow_png(tmp_path / "missing.png")


def test_dis_flow_finds_a_shift() -> None:
    rng = np.random.default_rng(0)
    tex = cv2.GaussianBlur(rng.random((96, 128, 3)).astype(np.float32), (0, 0), 2.0)
    tex = (tex - tex.min()) / (tex.max() - tex.min())
    moved = np.roll(tex, (1, 2), axis=(0, 1))  # content moves +2 px in x, +1 px in y
    flow, valid = M.dis_flow(tex, moved)
    inner = (slice(10, -10), slice(10, -10))
    assert valid[inner].mean() > 0.9
    assert np.median(flow[inner][..., 0]) == pytest.approx(2.0, abs=0.2)
    assert np.median(flow[inner][..., 1]) == pytest.approx(1.0, abs=0.2)


def test_clip_scorer_uses_dis_without_flow_files() -> None:
    rng = np.random.default_rng(1)
    img = cv2.GaussianBlur(rng.random((32, 32, 3)).astype(np.float32), (0, 0), 1.5)
    tri = np.full((32, 32), 128, np.uint8)
    scorer = M.ClipScorer(image_metrics=False)
    scorer.add(0, np.full((32, 32), 0.5), np.zeros((32, 32)), tri, image=img)
    scorer.add(1, np.full((32, 32), 0.5), np.zeros((32, 32)), tri, image=img)
    scores = scorer.finish()
    assert scorer.flow_source == "dis"
    assert scores[0].flow_pixel_count > 0
    # Identical error in both frames: MESSDdt is 0 wherever the sample stays inside.
    assert scores[0].messddt < 0.25 * 32


@pytest.mark.golden
def test_golden_reference_metrics() -> None:
    if not GOLDEN.is_dir():
        pytest.skip(f"the shared reference folder is absent ({GOLDEN})")
    expected = json.loads((GOLDEN / "expected.json").read_text())
    names = {"mse": "MSE", "sad": "mSAD", "ssda": "SSDA", "dtssd": "dtSSD", "messddt": "MESSDdt", "messddt_l1": "MESSDdt_fix"}

    def flow(a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        return M.read_flow_png(GOLDEN / f"flow_{a:04d}_{b:04d}.png")

    scorer = M.ClipScorer(flow=flow, image_metrics=False)
    for t in range(4):
        pred = cv2.imread(str(GOLDEN / f"pred_{t:04d}.png"), cv2.IMREAD_GRAYSCALE)
        gt = cv2.imread(str(GOLDEN / f"gt_{t:04d}.png"), cv2.IMREAD_GRAYSCALE)
        tri = cv2.imread(str(GOLDEN / f"tri_{t:04d}.png"), cv2.IMREAD_GRAYSCALE)
        scorer.add(t, pred, gt, tri)
    scores = scorer.finish()
    assert scorer.flow_source == "png"
    for s in scores:
        ref = expected["per_frame"][f"{s.frame:04d}"]
        for mine, theirs in names.items():
            assert getattr(s, mine) == pytest.approx(ref[theirs], rel=1e-5, abs=1e-9), (s.frame, mine)
        assert s.pixel_count == ref["pixel_count"] and s.flow_pixel_count == ref["flow_pixel_count"]
    clip = M.average_frames(scores)
    ref = expected["per_clip_average"]
    for mine, theirs in names.items():
        assert clip[mine] == pytest.approx(ref[theirs], rel=1e-5), mine
    assert clip["pixel_count"] == ref["pixel_count"] and clip["flow_pixel_count"] == ref["flow_pixel_count"]
    overall = M.average_clips([clip])
    for mine, theirs in names.items():
        assert overall[mine] == pytest.approx(expected["all_videos_average"][theirs], rel=1e-5), mine
