"""The cached split every FBA, DIM and IndexNet matting network follows (with or without the TAM).

Y. Zhang et al., "Attention-guided Temporally Coherent Video Object Matting", ACM MM 2021:
each base runs frames t-1, t, t+1 through its encoder and the first part of its decoder,
the TAM (:class:`tcvom.models.tam.TemporalAggregation`) mixes them at output stride 8,
and the rest of the decoder runs for the centre frame.

- :meth:`SplitMatting.part_a`: one frame's inputs -> ``(features, unknown, *skips)``:
  the TAM-input features ``B x C x H/8 x W/8``, the unknown mask ``B x 1 x H/8 x W/8``
  (the trimap's unknown region sampled at pixel (8i, 8j), as the reference's nearest
  interpolation) and what the rest of the decoder needs of the frame. Runs once per frame.
- :meth:`SplitMatting.part_b`: ``(prev_features, features, next_features, unknown, *skips)``
  (TAM variants) or ``(features, *skips)`` (single-image baselines) -> the outputs.

Names and shapes of the inputs, skips and outputs are class attributes, from which
:mod:`tcvom.export.graphs` builds the graph table, so the session, the engines and the
exports know nothing base-specific. Input encodings (:meth:`SplitMatting.make_inputs`) use
the shared contract of :mod:`tcvom.models.gca_tam`: ImageNet normalisation and reflect
padding to multiples of 32 at the bottom/right (the trimap is padded before it is encoded,
as the reference pads the 8-bit files).
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import torch
from torch import Tensor, nn

from tcvom.models.gca_tam import IMAGENET_MEAN, IMAGENET_STD, pad_to_multiple
from tcvom.models.tam import TemporalAggregation


class Port(NamedTuple):
    """A named tensor of the split: ``B x channels x H/stride x W/stride``."""

    name: str
    channels: int
    stride: int


class SplitMatting(nn.Module):
    """Base class of the FBA, DIM and IndexNet networks (TAM variants and baselines).

    Subclasses set the class attributes, build ``self.encoder`` / ``self.decoder`` (the
    decoder has ``fam``, the TAM, or None) and implement :meth:`make_inputs`,
    :meth:`_encode` and :meth:`_head`.
    """

    #: "fba", "dim" or "index".
    base: ClassVar[str]
    #: The part A inputs (the encoded frame, for FBA also the RGB image).
    inputs: ClassVar[tuple[Port, ...]]
    #: Channels of the TAM-input features (at stride 8).
    feature_channels: ClassVar[int]
    #: What part B needs of the centre frame besides its features.
    skips: ClassVar[tuple[Port, ...]]
    #: The part B outputs (full resolution, padded size).
    outputs: ClassVar[tuple[Port, ...]] = (Port("alpha", 1, 1),)

    encoder: nn.Module
    decoder: nn.Module

    def __init__(self, *, temporal: bool) -> None:
        super().__init__()
        self.temporal = temporal

    @property
    def network(self) -> str:
        """``"<base>_tam"`` or ``"<base>"`` (the single-image baseline)."""
        return f"{self.base}_tam" if self.temporal else self.base

    @property
    def fam(self) -> TemporalAggregation | None:
        return getattr(self.decoder, "fam", None)

    # --- to implement -------------------------------------------------------------------

    @classmethod
    def make_inputs(cls, image: Tensor, trimap: Tensor) -> dict[str, Tensor]:
        """One frame's part A inputs.

        Args:
            image: ``B x 3 x H x W`` float sRGB RGB in [0, 1].
            trimap: ``B x 1 x H x W`` uint8 in 0 / 128 / 255.

        Returns:
            name -> float32 tensor, padded to multiples of 32 (names of :attr:`inputs`).
        """
        raise NotImplementedError

    def _encode(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        raise NotImplementedError

    def _head(self, x: Tensor, *skips: Tensor) -> tuple[Tensor, ...]:
        raise NotImplementedError

    # --- the split ----------------------------------------------------------------------

    def part_a(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        """Part A: the tensors of :attr:`inputs` -> ``(features, unknown, *skips)``."""
        return self._encode(*inputs)

    def head(self, x: Tensor, *skips: Tensor) -> tuple[Tensor, ...]:
        """The decoder after the TAM: the TAM output (or, without the TAM, the features)
        ``B x C x H/8 x W/8`` and the centre frame's skips -> the tensors of :attr:`outputs`
        (training calls it after :meth:`TemporalAggregation.forward_with_logits`)."""
        return self._head(x, *skips)

    def part_b(self, *args: Tensor) -> tuple[Tensor, ...]:
        """Part B: ``(prev_features, features, next_features, unknown, *skips)`` with the
        TAM, ``(features, *skips)`` without -> the tensors of :attr:`outputs`."""
        if self.temporal:
            prev, cur, nxt, unknown, *skips = args
            fam = self.fam
            assert fam is not None
            x = fam(prev, cur, nxt, unknown)
        else:
            x, *skips = args
        return self.head(x, *skips)

    def forward(self, *frames: dict[str, Tensor]) -> tuple[Tensor, ...]:
        """Frames t-1, t, t+1 (TAM variants) or one frame (baselines), each as
        :meth:`make_inputs` returns them -> the outputs of the centre frame."""
        expected = 3 if self.temporal else 1
        if len(frames) != expected:
            raise ValueError(f"the {self.network} network takes {expected} frame(s), not {len(frames)}")
        names = [p.name for p in self.inputs]
        encoded = [self.part_a(*(f[n] for n in names)) for f in frames]
        if not self.temporal:
            features, _unknown, *skips = encoded[0]
            return self.part_b(features, *skips)
        features, unknown, *skips = encoded[1]
        return self.part_b(encoded[0][0], features, encoded[2][0], unknown, *skips)


# --- shared pieces of the input encodings --------------------------------------------------


def normalise_rgb(image: Tensor) -> Tensor:
    """``B x 3 x H x W`` RGB in [0, 1] -> ImageNet-normalised float32."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32, device=image.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32, device=image.device).view(1, 3, 1, 1)
    return (image.to(torch.float32) - mean) / std


def pad_frame(image: Tensor, trimap: Tensor) -> tuple[Tensor, Tensor]:
    """Image and trimap reflect-padded to multiples of 32: (float32 RGB, float32 trimap in 0..255)."""
    return pad_to_multiple(image.to(torch.float32)), pad_to_multiple(trimap.to(device=image.device, dtype=torch.float32))


def scaled_trimap_input(image: Tensor, trimap: Tensor) -> Tensor:
    """The 4-channel input of DIM and IndexNet: normalised RGB and ``trimap / 255`` (0, 0.502, 1),
    padded: ``B x 4 x Hp x Wp``."""
    rgb, tri = pad_frame(image, trimap)
    return torch.cat([normalise_rgb(rgb), tri * (1.0 / 255)], dim=1)


def unknown_from_scaled(x: Tensor, channel: int = 3) -> Tensor:
    """The stride-8 unknown mask from the ``trimap / 255`` channel of a 4-channel input:
    ``0 < trimap < 255`` sampled at pixel (8i, 8j), float ``B x 1 x H/8 x W/8``."""
    t = x[:, channel : channel + 1, ::8, ::8]
    return ((t > 0.5 / 255) & (t < 254.5 / 255)).to(x.dtype)
