"""GCA+TAM network: state-dict layout, spectral norm, chunked GCA attention, TAM window
attention, input/output contract. Small tensors; golden comparisons are in test_gca_golden.py."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tcvom.models import (
    GcaSingle,
    GcaTam,
    GuidedContextualAttention,
    SpectralNorm,
    TemporalAggregation,
    composite,
    make_input,
    pad_to_multiple,
)
from tcvom.weights import checkpoints

torch.set_num_threads(1)


def read_manifest(path):
    rows = []
    for line in Path(path).read_text().splitlines():
        if line.strip():
            key, shape = line.rstrip("\n").split("\t")
            rows.append((key, [int(d) for d in shape.strip("[]").split(",") if d.strip()]))
    return rows




# --- state-dict layout -------------------------------------------------------------------


def test_manifest_keys_and_shapes_load_strict(shared_dir):
    rows = read_manifest(shared_dir / "reference" / "tcvom_gca_tam_state_dict.tsv")
    model = GcaTam()
    state = model.state_dict()
    assert [k for k, _ in rows] == list(state), "keys (and their order) differ from the manifest"
    for key, shape in rows:
        assert list(state[key].shape) == shape, key
    # A state dict built from the manifest loads strictly.
    generated = {k: torch.full(s, 0.5) if s else torch.tensor(0) for k, s in rows}
    checkpoints.load_into(GcaTam(), generated, what="GCA+TAM")
    assert len(rows) == 584
    assert sum(math.prod(s) for _, s in rows) == 25_734_528


def test_single_gca_is_manifest_minus_fam(shared_dir):
    rows = read_manifest(shared_dir / "reference" / "tcvom_gca_tam_state_dict.tsv")
    expected = [k for k, _ in rows if not k.startswith("decoder.fam.")]
    assert list(GcaSingle().state_dict()) == expected
    assert len(expected) == 578


def test_saved_checkpoint_keeps_exactly_the_keys(tmp_path, gca_factory):
    model = gca_factory(seed=3)
    path = tmp_path / "gca_tam.pth"
    torch.save(model.state_dict(), path)
    state = checkpoints.read_state_dict(path)
    assert list(state) == list(GcaTam().state_dict())
    assert checkpoints.identify(state) == "gca_tam"
    fresh = checkpoints.load_into(GcaTam().eval(), state, what="GCA+TAM", path=path)
    x = make_input(torch.rand(1, 3, 32, 32), torch.full((1, 1, 32, 32), 128, dtype=torch.uint8))
    with torch.inference_mode():
        assert torch.equal(fresh(x, x, x), model(x, x, x))


def test_single_weights_do_not_fit_gca_tam(gca_factory):
    state = gca_factory(temporal=False).state_dict()
    with pytest.raises(Exception, match=r"6 missing key\(s\): decoder\.fam\.key_conv\.weight"):
        checkpoints.load_into(GcaTam(), state, what="GCA+TAM")


# --- spectral norm -----------------------------------------------------------------------


def test_spectral_norm_eval_uses_stored_vectors_and_training_iterates():
    conv = torch.nn.Conv2d(4, 6, 3, padding=1, bias=False)
    sn = SpectralNorm(conv).eval()
    w = sn.module.weight_bar.detach().clone()
    u, v = sn.module.weight_u.detach().clone(), sn.module.weight_v.detach().clone()
    x = torch.randn(1, 4, 5, 5)
    expected_sigma = torch.dot(u, w.reshape(6, -1) @ v)
    out = sn(x)
    assert torch.allclose(out, F.conv2d(x, w / expected_sigma, padding=1), atol=1e-5)
    assert torch.equal(sn.module.weight_u, u)  # eval: no iteration
    sn.train()
    sn(x)
    v_new = w.reshape(6, -1).t() @ u
    v_new = v_new / (v_new.norm() + 1e-12)
    assert torch.allclose(sn.module.weight_v, v_new, atol=1e-6)
    assert not torch.equal(sn.module.weight_u, u)


def test_spectral_norm_transposed_uses_input_channels_as_rows():
    deconv = torch.nn.ConvTranspose2d(3, 5, 4, stride=2, padding=1, bias=False)
    sn = SpectralNorm(deconv).eval()
    assert sn.module.weight_u.shape == (3,) and sn.module.weight_v.shape == (5 * 16,)
    x = torch.randn(1, 3, 4, 4)
    w = sn.module.weight_bar.detach()
    sigma = torch.dot(sn.module.weight_u, w.reshape(3, -1) @ sn.module.weight_v)
    assert torch.allclose(sn(x), F.conv_transpose2d(x, w / sigma, stride=2, padding=1), atol=1e-5)


# --- GCA block: chunked == naive N x N ------------------------------------------------------


def naive_gca(block: GuidedContextualAttention, guidance, features, unknown):
    """The block written literally as in GCA_TAM_NOTES: full N x N scores, conv_transpose2d."""
    g = block.guidance_conv(guidance)[:, :, ::2, ::2]
    m = unknown[:, :, ::2, ::2]
    outs = []
    for i in range(g.shape[0]):
        gi, fi, mi = g[i : i + 1], features[i : i + 1], m[i : i + 1]
        _, c, h, w = gi.shape
        n = h * w
        pad = F.pad(gi, (1, 1, 1, 1), mode="reflect")
        kernels = pad.unfold(2, 3, 1).unfold(3, 3, 1).permute(0, 2, 3, 1, 4, 5).reshape(n, c, 3, 3)
        norm = kernels.pow(2).sum(dim=(1, 2, 3), keepdim=True).sqrt().clamp_min(1e-4)
        scores = F.conv2d(pad, kernels / norm)  # 1 x N(source) x h x w
        mpatch = F.pad(mi, (1, 1, 1, 1), mode="reflect").unfold(2, 3, 1).unfold(3, 3, 1).reshape(n, 9).mean(1)
        touches = (mpatch > 0).float().view(1, n, 1, 1)
        u = mi.mean()
        us = torch.clamp(torch.sqrt(u / (1 - u)), 0.1, 10)
        ks = torch.clamp(torch.sqrt((1 - u) / u), 0.1, 10)
        scores = scores * (us * touches + ks * (1 - touches))
        eye = torch.eye(n).view(n, h, w).unsqueeze(0) * -1e4
        scores = torch.softmax(scores + eye * touches, dim=1)
        fpad = F.pad(fi, (1, 1, 1, 1), mode="reflect")
        cf = fi.shape[1]
        patches = fpad.unfold(2, 4, 2).unfold(3, 4, 2).permute(0, 2, 3, 1, 4, 5).reshape(n, cf, 4, 4)
        outs.append(F.conv_transpose2d(scores, patches, stride=2, padding=1) / 4.0)
    return block.W(torch.cat(outs)) + features


@pytest.mark.parametrize("unknown_kind", ["mixed", "none", "all"])
def test_gca_block_chunked_equals_naive(unknown_kind):
    torch.manual_seed(1)
    block = GuidedContextualAttention(16, 8, chunk_elements=50).eval()  # tiny chunks: many of them
    with torch.no_grad():
        block.W[1].weight.fill_(1.0)
        block.W[1].running_var.fill_(1.0)
    guidance = torch.randn(2, 8, 12, 16)
    features = torch.randn(2, 16, 12, 16)
    unknown = {
        "mixed": (torch.rand(2, 1, 12, 16) > 0.6).float(),
        "none": torch.zeros(2, 1, 12, 16),
        "all": torch.ones(2, 1, 12, 16),
    }[unknown_kind]
    with torch.no_grad():
        got = block(guidance, features, unknown)
        ref = naive_gca(block, guidance, features, unknown)
        block.chunk_elements = 1 << 30
        whole = block(guidance, features, unknown)
    assert torch.isfinite(got).all()
    assert torch.allclose(got, ref, atol=2e-5), (got - ref).abs().max()
    assert torch.allclose(got, whole, atol=1e-6)
    assert (got - features).abs().max() > 1e-3  # the attention did something


# --- TAM: offset loop == unfold window ------------------------------------------------------


def naive_tam(tam: TemporalAggregation, prev, cur, nxt, mask):
    b, c, h, w = cur.shape
    q = tam.query_conv(cur).reshape(b, c, 1, h * w)
    out = tam.value_conv(cur)
    for nb in (prev, nxt):
        k = F.unfold(tam.key_conv(nb), tam.window, padding=tam.window // 2).reshape(b, c, -1, h * w)
        att = torch.softmax((q * k).sum(1, keepdim=True) / math.sqrt(c), dim=2)
        out = out + (att * k).sum(2).reshape(b, c, h, w) * mask
    return out


def _tam_case(seed: int, channels: int = 16, shape: tuple[int, int, int] = (2, 9, 11), known: float = 0.5):
    """A random TAM (window 7) with features of t-1, t, t+1 and an unknown mask
    (``known``: the share of known positions)."""
    torch.manual_seed(seed)
    tam = TemporalAggregation(channels, 7).eval()
    b, h, w = shape
    prev, cur, nxt = (torch.randn(b, channels, h, w) for _ in range(3))
    return tam, prev, cur, nxt, (torch.rand(b, 1, h, w) > known).float()


def test_tam_equals_unfold_reference_and_masks_known_region():
    tam, prev, cur, nxt, mask = _tam_case(2)
    with torch.no_grad():
        got = tam(prev, cur, nxt, mask)
        ref = naive_tam(tam, prev, cur, nxt, mask)
        value = tam.value_conv(cur)
        out, lp, ln = tam.forward_with_logits(prev, cur, nxt, mask)
    assert torch.allclose(got, ref, atol=1e-5)
    assert torch.equal(out, got)
    known = mask.expand_as(got) == 0
    assert torch.equal(got[known], value[known])
    assert (got - value)[~known].abs().max() > 1e-3
    assert lp.shape == (2, 49, 99) and ln.shape == (2, 49, 99)
    assert torch.all(lp[mask.reshape(2, 1, 99).expand_as(lp) == 0] == 0)


def test_tam_neighbours_are_symmetric():
    torch.manual_seed(4)
    tam = TemporalAggregation(8, 7).eval()
    prev, cur, nxt = (torch.randn(1, 8, 6, 6) for _ in range(3))
    mask = torch.ones(1, 1, 6, 6)
    with torch.no_grad():
        assert torch.allclose(tam(prev, cur, nxt, mask), tam(nxt, cur, prev, mask), atol=1e-5)


# --- input / output contract --------------------------------------------------------------


@pytest.mark.parametrize("shape", [(72, 200), (32, 64), (10, 7), (1, 40)])
def test_pad_to_multiple_is_numpy_reflect(shape):
    h, w = shape
    x = torch.arange(h * w, dtype=torch.float32).reshape(1, 1, h, w)
    got = pad_to_multiple(x)
    ref = np.pad(x[0, 0].numpy(), ((0, (-h) % 32), (0, (-w) % 32)), mode="reflect" if h > 1 else "edge")
    if h == 1:  # numpy cannot reflect a single row; tcvom repeats it
        ref = np.pad(x[0, 0].numpy(), ((0, 31), (0, 0)), mode="edge")
        ref = np.pad(ref, ((0, 0), (0, (-w) % 32)), mode="reflect")
    assert got.shape[-2] % 32 == 0 and got.shape[-1] % 32 == 0
    assert np.array_equal(got[0, 0].numpy(), ref)


def test_make_input_normalises_and_one_hot_order():
    image = torch.zeros(1, 3, 2, 3)
    image[:, 0] = 1.0
    trimap = torch.tensor([[[[0, 128, 255], [255, 0, 128]]]], dtype=torch.uint8)
    x = make_input(image, trimap)
    assert x.shape == (1, 6, 32, 32)
    assert torch.allclose(x[0, 0, 0, 0], torch.tensor((1 - 0.485) / 0.229))
    assert torch.allclose(x[0, 1, 0, 0], torch.tensor(-0.456 / 0.224))
    assert x[0, 3:, 0, 0].tolist() == [1, 0, 0]  # background
    assert x[0, 3:, 0, 1].tolist() == [0, 1, 0]  # unknown
    assert x[0, 3:, 0, 2].tolist() == [0, 0, 1]  # foreground


def test_composite_replaces_known_pixels_and_crops():
    raw = torch.full((1, 1, 32, 32), 0.3)
    trimap = torch.tensor([[[[0, 128, 255]]]], dtype=torch.uint8)
    out = composite(raw, trimap)
    assert out.shape == (1, 1, 1, 3)
    assert out.flatten().tolist() == pytest.approx([0.0, 0.3, 1.0])


def test_decoder_upsampling_shortcut_runs_its_pointwise_part_first_in_eval_only():
    """Eval: the 1x1 convolution and BatchNorm before the nearest upsampling, the values of
    the declared order; training: the declared order (BatchNorm's statistics count pixels)."""
    from tcvom.models.gca_decoder import DecoderBlock

    torch.manual_seed(3)
    block = DecoderBlock(8, 4, upsample=True)
    bn = block.upsample[2]
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    x = torch.randn(2, 8, 5, 7)
    calls = []
    block.upsample[0].register_forward_hook(lambda m, i, o: calls.append(tuple(i[0].shape)))
    block.eval()
    with torch.no_grad():
        got = block.shortcut(x)
        want = block.upsample(x)
    assert calls == [(2, 4, 5, 7), (2, 8, 5, 7)]  # eval upsamples the 4 output channels
    assert got.shape == (2, 4, 10, 14)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    block.train()
    calls.clear()
    block.shortcut(x)
    assert calls == [(2, 8, 5, 7)]


@pytest.mark.parametrize("size", [(40, 56), (64, 32)])
def test_forward_shapes_range_and_part_split(size, gca_factory):
    model = gca_factory(seed=5)
    h, w = size
    frames = [make_input(torch.rand(1, 3, h, w), torch.randint(0, 3, (1, 1, h, w)).mul(127.5).to(torch.uint8))
              for _ in range(3)]
    with torch.inference_mode():
        raw = model(*frames)
        a, b, c = (model.encode(f) for f in frames)
        split = model.decode(b, a.features, c.features)
    assert raw.shape == (1, 1, frames[0].shape[2], frames[0].shape[3])
    assert float(raw.min()) >= 0 and float(raw.max()) <= 1 and torch.isfinite(raw).all()
    assert torch.equal(raw, split)
    assert b.features.shape[1:] == (128, raw.shape[2] // 8, raw.shape[3] // 8)
    assert b.shortcut1.shape[1] == 32 and b.shortcut3.shape[2] == raw.shape[2] // 4


def test_tam_chunks_empty_mask_gradients_and_export_form():
    """The unknown-only TAM: chunked gathers give the same output as one chunk and as the
    unfold reference, a mask with no unknown position gives value_conv alone, gradients
    flow, and the export quirk's form (a loop over the window's offsets) agrees, empty mask included."""
    from tcvom.export.quirks import tam_attend_gathered

    torch.manual_seed(5)
    tam = TemporalAggregation(16, 7).eval()
    prev, cur, nxt = (torch.randn(2, 16, 9, 11) for _ in range(3))
    mask = (torch.rand(2, 1, 9, 11) > 0.6).float()
    with torch.no_grad():
        whole = tam(prev, cur, nxt, mask)
        tam.chunk_elements = 7 * 49 * 16  # 7 positions per chunk
        chunked = tam(prev, cur, nxt, mask)
        ref = naive_tam(tam, prev, cur, nxt, mask)
        assert torch.equal(tam(prev, cur, nxt, torch.zeros_like(mask)), tam.value_conv(cur))
        query = tam.query_conv(cur)
        agg, logits = tam.attend(query, prev, mask)
        agg_x, logits_x = tam_attend_gathered(tam, query, prev, mask)
        empty = tam_attend_gathered(tam, query, prev, torch.zeros_like(mask))
    assert all(torch.equal(t, torch.zeros_like(t)) for t in empty)
    assert torch.allclose(chunked, whole, atol=1e-6) and torch.allclose(chunked, ref, atol=1e-5)
    assert torch.allclose(agg, agg_x, atol=1e-5) and torch.allclose(logits, logits_x, atol=1e-5)
    cur.requires_grad_(True)
    out, lp, _ = tam.forward_with_logits(prev, cur, nxt, mask)
    (out.sum() + lp.sum()).backward()
    assert cur.grad is not None and cur.grad.abs().sum() > 0


def test_tam_cpu_chunks_are_bounded_and_give_the_same_values():
    """On the CPU the TAM's chunks are bounded by cpu_chunk_elements (elsewhere by
    chunk_elements alone), and any chunking gives the one-chunk values."""
    tam, prev, cur, nxt, mask = _tam_case(7, known=0.5)
    keys = torch.empty(1, 16, 9, 11)
    assert tam.chunk_positions(keys) == min(tam.chunk_elements, tam.cpu_chunk_elements) // (49 * 16)
    assert tam.chunk_positions(keys.to("meta")) == tam.chunk_elements // (49 * 16)
    with torch.no_grad():
        tam.cpu_chunk_elements = tam.chunk_elements = 1 << 30
        whole = tam(prev, cur, nxt, mask)
        tam.cpu_chunk_elements = 3 * 49 * 16
        assert tam.chunk_positions(keys) == 3
        chunked = tam(prev, cur, nxt, mask)
    assert torch.allclose(chunked, whole, atol=1e-6)


def test_tam_every_position_form_equals_unknown_only():
    """The static-shape form (every position computed, the known ones zeroed; what a CUDA
    graph capture or torch.compile runs) gives the unknown-only TAM's values, empty mask included."""
    tam, prev, cur, nxt, some = _tam_case(6, known=0.6)
    tam.chunk_elements = 5 * 49 * 16  # 5 positions per chunk
    query = tam.query_conv(cur).detach()
    for mask in (some, torch.zeros_like(some), torch.ones_like(some)):
        with torch.no_grad():
            sparse, sparse_logits = tam.attend(query, prev, mask)
            plain = tam(prev, cur, nxt, mask)
            tam.every_position = True
            dense, dense_logits = tam.attend(query, prev, mask)
            static = tam(prev, cur, nxt, mask)
            tam.every_position = False
        assert torch.allclose(dense, sparse, atol=1e-6) and torch.allclose(dense_logits, sparse_logits, atol=1e-6)
        assert torch.allclose(static, plain, atol=1e-6)
        assert torch.equal(dense[mask.expand_as(dense) == 0], torch.zeros(int((mask == 0).sum()) * 16))


@pytest.mark.slow
def test_tam_compiles_without_graph_breaks():
    """Under torch.compile the TAM takes the static-shape form: one graph (fullgraph), the
    eager values."""
    tam, prev, cur, nxt, mask = _tam_case(7, channels=8, shape=(1, 6, 7))
    with torch.no_grad():
        want = tam(prev, cur, nxt, mask)
        got = torch.compile(tam, fullgraph=True, dynamic=False)(prev, cur, nxt, mask)
    assert torch.allclose(got, want, atol=1e-5)
