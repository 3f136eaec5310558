"""BatchNorm folding (tcvom.models.bn_folding): parity of folded STM and GCA+TAM, what is
folded and what is not, and that the source model is left unchanged."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tcvom.models import make_input
from tcvom.models.bn_folding import FOLD_TOLERANCE, fold_batchnorm, folded_copy
from tcvom.models.spectral_norm import SpectralNorm
from tcvom.models.stm import build_stm
from tcvom.models.weight_standardization import WsConv2d


def _vary_batchnorms(model: nn.Module, seed: int = 0) -> None:
    """BatchNorm statistics and affine parameters far from identity, so a wrong fold shows."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.rand(c, generator=generator) - 0.5)
                m.running_var.copy_(0.5 + 1.5 * torch.rand(c, generator=generator))
                m.weight.copy_(0.5 + torch.rand(c, generator=generator))
                m.bias.copy_(0.4 * torch.rand(c, generator=generator) - 0.2)


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / max(1.0, float(b.abs().max())))


def _count_bn(model: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_stm_folded_matches_unfolded_and_source_is_unchanged():
    torch.manual_seed(3)
    model = build_stm()
    _vary_batchnorms(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded = folded_copy(model)
    assert _count_bn(model) == 86 and _count_bn(folded) == 0  # every BN of both encoders
    assert model.state_dict().keys() == before.keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())

    generator = torch.Generator().manual_seed(1)
    frames = torch.randn(2, 3, 32, 48, generator=generator)
    probs = torch.softmax(torch.randn(2, 3, 32, 48, generator=generator), dim=1)
    with torch.inference_mode():
        key, value = model.memorize(frames, probs)
        fkey, fvalue = folded.memorize(frames, probs)
        logits = model(frames, probs, frames[:1])
        flogits = folded(frames, probs, frames[:1])
    # keys and values run to tens: relative to their size, as the export parity check
    assert _relative(fkey, key) < FOLD_TOLERANCE
    assert _relative(fvalue, value) < FOLD_TOLERANCE
    assert _relative(flogits, logits) < FOLD_TOLERANCE


def test_gca_tam_folded_matches_unfolded(gca_factory):
    model = gca_factory()
    _vary_batchnorms(model, seed=2)
    folded = folded_copy(model)
    # the shortcut and guidance-head BatchNorms follow a ReLU: not foldable, kept
    kept = [n for n, m in folded.named_modules() if isinstance(m, nn.BatchNorm2d)]
    assert kept and all(".shortcut." in n or ".guidance_head." in n for n in kept)
    assert _count_bn(model) - len(kept) > 40
    # the decoder's transposed convolutions were folded too
    assert isinstance(folded.decoder.conv1, nn.ConvTranspose2d)
    assert isinstance(folded.decoder.bn1, nn.Identity)
    assert isinstance(model.decoder.conv1, SpectralNorm)

    generator = torch.Generator().manual_seed(4)
    trimap = torch.zeros(1, 1, 64, 96, dtype=torch.uint8)
    trimap[..., 12:52, 20:80] = 128
    trimap[..., 24:40, 36:64] = 255
    xs = [make_input(torch.rand(1, 3, 64, 96, generator=generator), trimap) for _ in range(3)]
    with torch.inference_mode():
        alpha = model(*xs)
        falpha = folded(*xs)
    assert float((falpha - alpha).abs().max()) < FOLD_TOLERANCE


def test_sequential_folds_only_a_batchnorm_right_after_a_convolution():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(8),
        WsConv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8),
    ).eval()
    _vary_batchnorms(model)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        expected = model(x)
        assert fold_batchnorm(model) == 1
        assert fold_batchnorm(model) == 0  # idempotent
        got = model(x)
    assert isinstance(model[1], nn.Identity)
    assert isinstance(model[5], nn.BatchNorm2d)  # after a ReLU
    assert isinstance(model[7], nn.BatchNorm2d)  # after a weight-standardised convolution
    assert _relative(got, expected) < FOLD_TOLERANCE


def test_half_precision_model_is_folded_in_its_dtype():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)).eval()
    _vary_batchnorms(model)
    half = folded_copy(model.to(torch.bfloat16))
    assert half[0].weight.dtype == torch.bfloat16 and half[0].bias.dtype == torch.bfloat16
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        expected = model.float()(x)
        got = half.float()(x)
    assert _relative(got, expected) < 2e-2  # bf16 weights: 8-bit mantissa


def test_training_model_is_refused():
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)).train())
