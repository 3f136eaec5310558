"""STM trimap propagation against the reference implementation's outputs.

``shared/reference/golden/README.md`` section 4: official TCVOM-TGM ``test_mf_2.py`` with
weights ``det_weights.stm_state_dict(stm_state_dict.tsv, seed=11, scale=0.68)``, frame 0
as the only keyframe, mem_every 5, no cap, no fine-tuning. Tolerances from section 8.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
REFERENCE = SHARED / "reference"
GOLDEN = REFERENCE / "golden"

pytestmark = [
    pytest.mark.golden,
    pytest.mark.skipif(
        not (GOLDEN / "stm_probs.npy").is_file(),
        reason=f"the reference golden data is absent ({GOLDEN}); clone shared/ beside the repo",
    ),
]


@pytest.fixture(scope="module")
def golden_run() -> dict[int, tuple[np.ndarray, np.ndarray]]:
    from tcvom.io import open_frames, open_trimaps
    from tcvom.models.stm import load_stm_model
    from tcvom.propagation.scheduler import KeyframeSchedule
    from tcvom.propagation.stm import StmPropagator

    sys.path.insert(0, str(REFERENCE))
    try:
        import det_weights
    finally:
        sys.path.remove(str(REFERENCE))
    assert torch.get_default_dtype() == torch.float32
    state = det_weights.stm_state_dict(str(REFERENCE / "stm_state_dict.tsv"), seed=11, scale=0.68)
    frames = open_frames(str(GOLDEN / "frame_%04d.png"))
    trimaps = open_trimaps(str(GOLDEN / "trimap_%04d.png"), frames="0")
    keyframes = {0: trimaps.read(0)}
    schedule = KeyframeSchedule(frames.frame_numbers, keyframes)
    (pass_,) = schedule.passes  # one keyframe at frame 0: a single forward tail pass
    assert pass_.frames == (0, 1, 2, 3)
    propagator = StmPropagator(
        load_stm_model(state), mem_every=5, max_memory=None, finetune_steps=0
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        floats = dict(propagator.probabilities(frames, keyframes, pass_))
        quantised = dict(propagator.run_pass(frames, keyframes, pass_))
    finally:
        torch.set_num_threads(threads)
    return {f: (floats[f], quantised[f]) for f in pass_.frames}


def test_probabilities_match_reference(
    golden_run: dict[int, tuple[np.ndarray, np.ndarray]],
) -> None:
    reference = np.load(GOLDEN / "stm_probs.npy")
    mine = np.stack([golden_run[f][0] for f in (1, 2, 3)])
    assert mine.shape == reference.shape == (3, 3, 72, 200)
    assert mine.dtype == np.float32
    np.testing.assert_allclose(mine, reference, rtol=0, atol=1e-4)


def test_quantised_output_is_truncated_probabilities(
    golden_run: dict[int, tuple[np.ndarray, np.ndarray]],
) -> None:
    reference = (np.load(GOLDEN / "stm_probs.npy") * np.float32(255)).astype(np.uint8)
    mine = np.stack([golden_run[f][1] for f in (1, 2, 3)])
    assert mine.dtype == np.uint8
    # values that sit on an integer boundary may truncate either way (atol 1e-4 * 255 < 1)
    assert np.abs(mine.astype(int) - reference).max() <= 1
    assert (mine != reference).mean() < 1e-3


def test_trimap_matches_reference_away_from_ties(
    golden_run: dict[int, tuple[np.ndarray, np.ndarray]],
) -> None:
    probs = np.load(GOLDEN / "stm_probs.npy")
    expected = np.load(GOLDEN / "stm_trimap.npy")
    top2 = np.sort(probs, axis=1)[:, -2:]
    decided = (top2[:, 1] - top2[:, 0]) >= 1e-3
    mine = np.stack([golden_run[f][0] for f in (1, 2, 3)])
    labels = np.array([0, 128, 255], np.uint8)[mine.argmax(axis=1)]
    assert decided.sum() > 0.99 * decided.size
    np.testing.assert_array_equal(labels[decided], expected[decided])


def test_keyframe_reproduces_its_trimap(
    golden_run: dict[int, tuple[np.ndarray, np.ndarray]],
) -> None:
    from tcvom.io import open_trimaps
    from tcvom.io.trimap import one_hot

    trimap = open_trimaps(str(GOLDEN / "trimap_%04d.png"), frames="0").read(0)
    np.testing.assert_array_equal(golden_run[0][1], (one_hot(trimap) * 255).astype(np.uint8))
