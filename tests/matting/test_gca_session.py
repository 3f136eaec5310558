"""The per-shot GCA+TAM session: cache reuse gives the recomputed result, bounded cache
and eviction, mirrored ends, odd sizes, one-frame shots, degenerate trimaps, input errors,
model loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tcvom.errors import FrameSizeError, InputError, MissingFrameError, WeightsError
from tcvom.io.sources import ArrayFrames
from tcvom.matting.gca_session import GcaTamSession, build_session, load_gca_model
from tcvom.models import GcaSingle, GcaTam, composite, make_input
from tcvom.weights import checkpoints

torch.set_num_threads(1)




@pytest.fixture(scope="module")
def model(gca_factory):
    return gca_factory(seed=7)


class Memory(ArrayFrames):
    """An in-memory source that records which frames the session read."""

    def __init__(self, arrays: dict[int, np.ndarray]) -> None:
        super().__init__(arrays)
        self.reads: list[int] = []

    def read(self, frame: int) -> np.ndarray:
        self.reads.append(frame)
        return super().read(frame)


def make_shot(frames: list[int], h: int = 40, w: int = 56, seed: int = 0, trimap: str = "mixed"):
    rng = np.random.default_rng(seed)
    images, trimaps = {}, {}
    for i, f in enumerate(frames):
        images[f] = rng.random((h, w, 3), dtype=np.float32)
        if trimap == "mixed":
            tri = np.zeros((h, w), np.uint8)
            tri[:, w // 2 + i :] = 255
            tri[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4 + i] = 128
        elif trimap == "known":
            tri = np.where(rng.random((h, w)) > 0.5, 255, 0).astype(np.uint8)
        else:
            tri = np.full((h, w), 128, np.uint8)
        trimaps[f] = tri
    return Memory(images), Memory(trimaps)


def direct(model, frames, trimaps, window):
    """Alpha of the centre of ``window`` straight from the model (all three recomputed)."""
    xs = []
    for f in window:
        img = torch.from_numpy(frames.arrays[f]).permute(2, 0, 1)[None]
        xs.append(make_input(img, torch.from_numpy(trimaps.arrays[f])[None, None]))
    with torch.inference_mode():
        raw = model(*xs) if model.temporal else model(xs[0])
    return composite(raw, torch.from_numpy(trimaps.arrays[window[1] if model.temporal else window[0]])[None, None])[0, 0].numpy()


def test_cached_equals_recomputed_and_direct(model):
    frames, trimaps = make_shot([1001, 1002, 1003, 1004, 1005])
    cached = GcaTamSession(frames, trimaps, model)
    recompute = GcaTamSession(frames, trimaps, model, reuse_features=False)
    got = dict(cached.alphas())
    ref = dict(recompute.alphas())
    assert list(got) == frames.frame_numbers
    for f in frames.frame_numbers:
        assert got[f].dtype == np.float32 and got[f].shape == (40, 56)
        np.testing.assert_allclose(got[f], ref[f], atol=1e-5, rtol=0)
        np.testing.assert_allclose(got[f], direct(model, frames, trimaps, cached.window(f)), atol=1e-5, rtol=0)
    assert cached.encoded == 5  # part A once per frame
    assert recompute.encoded == 2 + 3 * 3 + 2  # every window recomputed (ends have 2 distinct frames)
    # The result depends on the neighbours: TAM is active.
    single_window = direct(model, frames, trimaps, (1003, 1003, 1003))
    assert np.abs(got[1003] - single_window).max() > 1e-4


def test_mirrored_windows_and_gaps(model):
    frames, trimaps = make_shot([10, 11, 13, 14])  # frame 12 missing: neighbours are source-adjacent
    session = GcaTamSession(frames, trimaps, model)
    assert session.window(10) == (11, 10, 11)
    assert session.window(11) == (10, 11, 13)
    assert session.window(14) == (13, 14, 13)
    with pytest.raises(MissingFrameError):
        session.window(12)


def test_cache_is_bounded_and_evicts_outside_the_window(model):
    frames, trimaps = make_shot(list(range(6)), h=32, w=32)
    session = GcaTamSession(frames, trimaps, model, cache_size=3)
    history = []
    for _frame, _alpha in session.alphas():
        assert len(session.cache) <= 3
        history.append(sorted(session.cache))
    assert history == [[0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5], [3, 4, 5]]
    # Each frame read once from each source on a sequential pass.
    assert sorted(frames.reads) == list(range(6))
    assert session.encoded == 6
    # Random access still gives the same alpha (the centre's skips are recomputed when needed).
    again = session.alpha(2)
    np.testing.assert_allclose(again, direct(model, frames, trimaps, (1, 2, 3)), atol=1e-5)
    assert sorted(session.cache) == [1, 2, 3]
    session.clear()
    assert len(session.cache) == 0


def test_reverse_order_matches_forward(model):
    frames, trimaps = make_shot([1, 2, 3, 4], h=32, w=40)
    forward = dict(GcaTamSession(frames, trimaps, model).alphas())
    session = GcaTamSession(frames, trimaps, model)
    backward = dict(session.alphas([4, 3, 2, 1]))
    for f in forward:
        np.testing.assert_allclose(backward[f], forward[f], atol=1e-5)
    assert session.encoded == 4


@pytest.mark.parametrize("size", [(33, 65), (8, 12), (64, 32)])
def test_sizes_not_multiples_of_32(model, size):
    frames, trimaps = make_shot([1, 2], h=size[0], w=size[1])
    session = GcaTamSession(frames, trimaps, model)
    alpha = session.alpha(1)
    assert alpha.shape == size
    assert np.isfinite(alpha).all() and alpha.min() >= 0 and alpha.max() <= 1
    np.testing.assert_allclose(alpha, direct(model, frames, trimaps, (2, 1, 2)), atol=1e-5)


def test_one_frame_shot(model):
    frames, trimaps = make_shot([1001])
    session = GcaTamSession(frames, trimaps, model)
    assert session.window(1001) == (1001, 1001, 1001)
    alpha = session.alpha(1001)
    np.testing.assert_allclose(alpha, direct(model, frames, trimaps, (1001, 1001, 1001)), atol=1e-5)
    assert session.encoded == 1 and len(session.cache) == 1


def test_trimap_without_unknown_gives_the_trimap(model):
    frames, trimaps = make_shot([1, 2, 3], trimap="known")
    for f, alpha in GcaTamSession(frames, trimaps, model).alphas():
        assert np.array_equal(alpha, trimaps.arrays[f].astype(np.float32) / 255)


def test_all_unknown_trimap(model):
    frames, trimaps = make_shot([1, 2, 3], trimap="unknown")
    session = GcaTamSession(frames, trimaps, model)
    for f, alpha in session.alphas():
        assert np.isfinite(alpha).all() and alpha.min() >= 0 and alpha.max() <= 1
        np.testing.assert_allclose(alpha, session.raw_alpha(f), atol=1e-6)
        assert alpha.std() > 1e-4  # a prediction, not a constant


def test_single_gca_session(gca_factory):
    model = gca_factory(temporal=False, seed=2)
    frames, trimaps = make_shot([1, 2, 3])
    session = GcaTamSession(frames, trimaps, model, cache_size=1)
    assert session.window(2) == (2,)
    for f, alpha in session.alphas():
        np.testing.assert_allclose(alpha, direct(model, frames, trimaps, (f,)), atol=1e-5)
    assert session.encoded == 3 and len(session.cache) <= 1


def test_input_errors(model):
    frames, trimaps = make_shot([1, 2, 3])
    with pytest.raises(InputError, match="precision"):
        GcaTamSession(frames, trimaps, model, dtype="int8")
    with pytest.raises(InputError, match="at least 3"):
        GcaTamSession(frames, trimaps, model, cache_size=2)
    with pytest.raises(InputError, match="device"):
        GcaTamSession(frames, trimaps, model, device="tpu")
    bad = Memory({**trimaps.arrays, 2: trimaps.arrays[2][:-1]})
    with pytest.raises(FrameSizeError) as err:
        GcaTamSession(frames, bad, model).alpha(2)
    assert err.value.frame == 2
    odd = Memory({**trimaps.arrays, 3: np.full((40, 56), 77, np.uint8)})
    with pytest.raises(InputError, match="0, 128 and 255") as err:
        GcaTamSession(frames, odd, model).alpha(2)  # frame 3 is a neighbour of 2
    assert err.value.frame == 3
    floats = Memory({f: t.astype(np.float32) / 255 for f, t in trimaps.arrays.items()})
    with pytest.raises(InputError, match="uint8"):
        GcaTamSession(frames, floats, model).alpha(1)
    nan = Memory({**frames.arrays, 1: np.full((40, 56, 3), np.nan, np.float32)})
    with pytest.raises(InputError, match="NaN"):
        GcaTamSession(nan, trimaps, model).alpha(1)


def test_load_gca_model_detects_the_network(tmp_path, model, gca_factory):
    path = tmp_path / "tam.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, path)
    loaded = load_gca_model(path)
    assert isinstance(loaded, GcaTam) and not loaded.training
    single_state = gca_factory(temporal=False, seed=1).state_dict()
    assert isinstance(load_gca_model(single_state), GcaSingle)
    frames, trimaps = make_shot([1, 2])
    session = build_session(frames, trimaps, path)
    np.testing.assert_allclose(session.alpha(1), direct(model, frames, trimaps, (2, 1, 2)), atol=1e-5)
    stm_like = {"Encoder_M.conv1_m.weight": torch.zeros(1), "Encoder_Q.conv1.weight": torch.zeros(1),
                "Decoder.pred2.weight": torch.zeros(1)}
    with pytest.raises(WeightsError, match="STM"):
        load_gca_model(stm_like)
    broken = dict(model.state_dict())
    broken["decoder.conv2.weight"] = torch.zeros(2, 32, 3, 3)
    with pytest.raises(WeightsError, match=r"decoder\.conv2\.weight \[2, 32, 3, 3\] \(expected \[1, 32, 3, 3\]\)"):
        load_gca_model(broken)
    assert checkpoints.identify(broken) == "gca_tam"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype,atol", [(torch.float32, 1e-4), (torch.float16, 2e-2), (torch.bfloat16, 6e-2)])
def test_cuda_matches_cpu(model, dtype, atol, gca_factory):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    frames, trimaps = make_shot([1, 2, 3], h=64, w=96)
    cpu = dict(GcaTamSession(frames, trimaps, gca_factory(seed=7)).alphas())
    gpu = dict(GcaTamSession(frames, trimaps, gca_factory(seed=7), device="cuda", dtype=dtype).alphas())
    for f in cpu:
        assert np.abs(gpu[f] - cpu[f]).max() < atol


def test_a_session_in_another_dtype_leaves_the_callers_model_as_it_was(model):
    """API QA: a float16 session converted the caller's model in place; a later float32
    session on it gave alphas 4.5e-3 away (the weights had been rounded)."""
    frames, trimaps = make_shot([1, 2, 3])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    reference = GcaTamSession(frames, trimaps, model).alpha(2)
    half = GcaTamSession(frames, trimaps, model, dtype="bfloat16")
    assert half.model is not model and next(half.model.parameters()).dtype == torch.bfloat16
    assert all(v.dtype == before[k].dtype and torch.equal(v, before[k]) for k, v in model.state_dict().items())
    same = GcaTamSession(frames, trimaps, model)
    assert same.model is model  # already float32 on the CPU: no copy
    assert np.array_equal(same.alpha(2), reference)
