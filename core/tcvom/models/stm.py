"""STM: Space-Time Memory network, as TCVOM's trimap generation module uses it.

Oh, Lee, Xu and Kim, "Video Object Segmentation using Space-Time Memory Networks",
ICCV 2019; used for trimap propagation by Zhang et al., "Attention-guided Temporally
Coherent Video Object Matting", ACM MM 2021 (TCVOM, section 3.4 / TGM). The
computation follows ``shared/reference/STM_NOTES.md``; parameter names follow the
official state dict (``shared/reference/stm_state_dict.tsv``, 558 tensors), so
``Encoder_M``, ``KV_Q_r4`` etc. keep their official capitalised names.

Trimap classes are tracked as STM "objects": K = 3 slots, slot 0 background, object 1
= unknown, object 2 = foreground. The network is split into three export-friendly
parts with tensors in and out only:

- :meth:`STM.memorize` - encode memory frames with their class probabilities into keys
  and values (``N x 128 x T x h x w`` and ``N x 512 x T x h x w``);
- :meth:`STM.encode_query` - encode the frame to segment;
- :meth:`STM.read_decode` - memory read, decoder and soft aggregation to log-odds.

:meth:`STM.forward` composes the three. Frames must be ``H, W`` multiples of 16 (the
propagator reflect-pads to 32, which makes STM's own centred zero padding a no-op).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from tcvom.models.devices import resolve_device
from tcvom.models.stm_resnet import TruncatedResNet50

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
KEY_DIM = 128
VALUE_DIM = 512
DECODER_DIM = 256
NUM_OBJECTS = 2  # unknown and foreground; background is slot 0
PROB_EPS = 1e-7
STRIDE = 16
# Query positions per memory-read block: at 1080p (8160 positions at 1/16) with 10 memory
# frames the unblocked affinity would take 5 GB; blocks of 1024 take 0.7 GB.
READ_CHUNK = 1024


class _NormalisingEncoder(TruncatedResNet50):
    def __init__(self) -> None:
        super().__init__()
        # Part of the official state dict; the encoders normalise their input with them.
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def normalise(self, frame: torch.Tensor) -> torch.Tensor:
        return (frame - self.mean) / self.std


class MemoryEncoder(_NormalisingEncoder):
    """``Encoder_M``: frame + object mask + other-objects mask -> ``res4`` features.

    ``frame`` T x 3 x H x W, ``mask`` and ``other`` B x 1 x H x W in [0, 1] with B a
    multiple of T: samples ``i * B/T ... (i + 1) * B/T - 1`` are frame i with their masks
    (one per object); returns B x 1024 x H/16 x W/16.

    The stem input is ``conv1(frame) + conv1_m(mask) + conv1_o(other)``. The reference
    feeds a copy of the frame per object; here ``conv1`` runs once per frame and is
    added to each of its samples, and the two one-channel mask convolutions run as one
    two-channel convolution (the same sums up to float rounding).
    """

    #: ``bn1`` normalises the sum of the three stem convolutions (tcvom.models.bn_folding).
    FOLDABLE_BN = ((("conv1", "conv1_m", "conv1_o"), "bn1"),)

    def __init__(self) -> None:
        super().__init__()
        self.conv1_m = nn.Conv2d(1, 64, 7, stride=2, padding=3, bias=False)
        self.conv1_o = nn.Conv2d(1, 64, 7, stride=2, padding=3, bias=False)

    def forward(self, frame: torch.Tensor, mask: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        masks = torch.cat([mask, other], dim=1)
        if frame.is_contiguous(memory_format=torch.channels_last):
            masks = masks.contiguous(memory_format=torch.channels_last)  # as the frame's conv output
        conv_m, conv_o = self.conv1_m, self.conv1_o
        bias = conv_m.bias  # both bias-free as built and as folded (bn1's shift goes to conv1)
        if conv_o.bias is not None:
            bias = conv_o.bias if bias is None else bias + conv_o.bias
        weight = torch.cat([conv_m.weight, conv_o.weight], dim=1)
        stem = F.conv2d(masks, weight, bias, stride=conv_m.stride, padding=conv_m.padding)
        # frame t's conv1 added to its samples; in place on the unflattened tensor itself
        # (not through a view of ``stem``, which an ONNX trace would not see)
        per_frame = stem.unflatten(0, (frame.shape[0], -1))
        per_frame.add_(self.conv1(self.normalise(frame)).unsqueeze(1))
        return self.stages(per_frame.flatten(0, 1))[0]


class QueryEncoder(_NormalisingEncoder):
    """``Encoder_Q``: frame B x 3 x H x W -> (r4 1/16 x 1024, r3 1/8 x 512, r2 1/4 x 256)."""

    #: conv -> BatchNorm pairs of forward (tcvom.models.bn_folding).
    FOLDABLE_BN = ((("conv1",), "bn1"),)

    def forward(self, frame: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.stages(self.conv1(self.normalise(frame)))


class KeyValue(nn.Module):
    """3x3 key (1024 -> 128) and value (1024 -> 512) projections of ``res4`` features."""

    def __init__(self, indim: int = 1024, keydim: int = KEY_DIM, valdim: int = VALUE_DIM) -> None:
        super().__init__()
        self.Key = nn.Conv2d(indim, keydim, 3, padding=1)
        self.Value = nn.Conv2d(indim, valdim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.Key(x), self.Value(x)


class ResBlock(nn.Module):
    """Pre-activation residual block, ``x + conv2(relu(conv1(relu(x))))``, 3x3 convs.

    The inner ReLU and the residual add run in place on the fresh convolution outputs
    (no full-size temporaries; autograd-safe, as no backward reads those outputs); ``x``
    itself is never modified.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, 3, padding=1)
        self.conv2 = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.conv1(F.relu(x))
        r = self.conv2(F.relu_(r))
        return r.add_(x)


class Refine(nn.Module):
    """Skip feature ``f`` (1 or B x inplanes x 2h x 2w) + x2 upsampled ``pm`` (B x planes x h x w).

    The skip branch depends on ``f`` only: given one sample it runs once and broadcasts
    over the B objects of ``pm`` (added in place into the fresh upsampled ``pm``).
    """

    def __init__(self, inplanes: int, planes: int) -> None:
        super().__init__()
        self.convFS = nn.Conv2d(inplanes, planes, 3, padding=1)
        self.ResFS = ResBlock(planes)
        self.ResMM = ResBlock(planes)

    def forward(self, f: torch.Tensor, pm: torch.Tensor) -> torch.Tensor:
        s = self.ResFS(self.convFS(f))
        m = F.interpolate(pm, scale_factor=2.0, mode="bilinear", align_corners=False)
        return self.ResMM(m.add_(s))


class Decoder(nn.Module):
    """Memory read-out N x 512 x h x w + query value (1 or N) x 512 x h x w (1/16) and
    skip features r3, r2 (1 or N samples) -> N x 2 x H x W logits.

    The reference runs ``convFM`` on ``cat([read-out, query value])`` per object. The
    convolution is linear in its input channels, so it is computed as the read-out half
    (per object) plus the query-value half, which is the same for every object and runs
    once (the same sum up to float rounding).
    """

    def __init__(self, mdim: int = DECODER_DIM) -> None:
        super().__init__()
        self.convFM = nn.Conv2d(1024, mdim, 3, padding=1)
        self.ResMM = ResBlock(mdim)
        self.RF3 = Refine(512, mdim)
        self.RF2 = Refine(256, mdim)
        self.pred2 = nn.Conv2d(mdim, 2, 3, padding=1)

    def forward(self, read: torch.Tensor, q_value: torch.Tensor, r3: torch.Tensor, r2: torch.Tensor) -> torch.Tensor:
        cv = read.shape[1]
        weight = self.convFM.weight
        pad = self.convFM.padding
        m4 = F.conv2d(read, weight[:, :cv], self.convFM.bias, padding=pad)
        m4 = self.ResMM(m4.add_(F.conv2d(q_value, weight[:, cv:], padding=pad)))
        m3 = self.RF3(r3, m4)
        m2 = self.RF2(r2, m3)
        p2 = self.pred2(F.relu_(m2))  # m2 is ResMM's fresh output, used only here
        return F.interpolate(p2, scale_factor=4.0, mode="bilinear", align_corners=False)


def memory_read(
    mem_key: torch.Tensor,
    mem_value: torch.Tensor,
    q_key: torch.Tensor,
    chunk: int | None = None,
) -> torch.Tensor:
    """Space-time memory read, per object.

    ``mem_key`` N x Ck x T x h x w, ``mem_value`` N x Cv x T x h x w, ``q_key`` N x Ck x h x w
    -> read-out N x Cv x h x w (the reference concatenates the query value after it; the
    decoder takes the two apart). The softmax runs over all T*h*w memory positions
    jointly for each query position. ``chunk`` query positions at a time bound the
    affinity matrix (N x chunk x T*h*w floats) without changing the result, since each
    query position's softmax is independent.

    The affinity is computed query-major (chunk x T*h*w, the softmax over its last,
    contiguous axis, which is faster than the reference's softmax over the memory axis
    of T*h*w x chunk) and read through a transposed view; the 1/sqrt(Ck) scale is
    applied to the small query key instead of the affinity. Both change only the float
    rounding.
    """
    n, ck, t, h, w = mem_key.shape
    cv = mem_value.shape[1]
    mi = mem_key.reshape(n, ck, t * h * w)
    mo = mem_value.reshape(n, cv, t * h * w)
    qi = q_key.reshape(n, ck, h * w).transpose(1, 2) * (1.0 / math.sqrt(ck))
    step = h * w if chunk is None else chunk
    reads = []
    for start in range(0, h * w, step):
        affinity = torch.bmm(qi[:, start : start + step], mi)  # N x chunk x T*h*w
        reads.append(torch.bmm(mo, F.softmax(affinity, dim=2).transpose(1, 2)))
    read = reads[0] if len(reads) == 1 else torch.cat(reads, dim=2)
    return read.reshape(n, cv, h, w)


def soft_aggregation(object_probs: torch.Tensor) -> torch.Tensor:
    """N x H x W independent object probabilities -> 1 x (N+1) x H x W clamped log-odds.

    Background = prod(1 - p_o); every slot is clamped to [1e-7, 1 - 1e-7] before
    ``log(q / (1 - q))``. A softmax over the slots gives the class probabilities.
    """
    background = torch.prod(1 - object_probs, dim=0, keepdim=True)
    em = torch.cat([background, object_probs], dim=0).clamp(PROB_EPS, 1 - PROB_EPS)
    return torch.log(em / (1 - em)).unsqueeze(0)


class STM(nn.Module):
    """The STM network with ``num_objects`` objects (TCVOM: 2, unknown and foreground).

    All frames are ``1 x 3 x H x W`` float32, already prepared by the caller (TGM feeds
    ImageNet-normalised frames that the encoders normalise a second time), with H and W
    multiples of 16. Probability maps are ``1 x K x H x W`` (K = num_objects + 1, slot 0
    background, which memorize never reads). ``read_chunk`` bounds the memory read's
    working memory (query positions per block; None for one block).
    """

    def __init__(self, num_objects: int = NUM_OBJECTS, read_chunk: int | None = READ_CHUNK) -> None:
        super().__init__()
        self.num_objects = num_objects
        self.read_chunk = read_chunk
        self.Encoder_M = MemoryEncoder()
        self.Encoder_Q = QueryEncoder()
        self.KV_M_r4 = KeyValue()
        self.KV_Q_r4 = KeyValue()
        self.Decoder = Decoder()

    @staticmethod
    def release_order(keys: list[str]) -> list[str]:
        """``keys`` of an STM state dict in the published file's order: the reference builds
        ``Encoder_M``'s mask convolutions before its ResNet stem, so they come before its
        ``conv1`` (here the stem is the base class's, built first)."""
        masks = [k for k in keys if k.startswith(("Encoder_M.conv1_m.", "Encoder_M.conv1_o."))]
        rest = [k for k in keys if k not in masks]
        at = rest.index("Encoder_M.conv1.weight") if "Encoder_M.conv1.weight" in rest else len(rest)
        return rest[:at] + masks + rest[at:]

    def memorize(
        self, frames: torch.Tensor, probs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode T memory frames.

        ``frames`` T x 3 x H x W, ``probs`` T x K x H x W (one-hot trimaps or soft
        probabilities) -> key N x 128 x T x h x w, value N x 512 x T x h x w (h = H/16).
        Each frame is encoded once per object o with mask = probs[:, o] and "other
        objects" = clamp(sum of the other object channels, 0, 1).
        """
        t = frames.shape[0]
        n = self.num_objects
        masks, others = [], []
        for o in range(1, n + 1):
            masks.append(probs[:, o : o + 1])
            other = torch.zeros_like(probs[:, :1])
            for j in range(1, n + 1):
                if j != o:
                    other = other + probs[:, j : j + 1]
            others.append(other.clamp(0, 1))
        # batch index = t * N + (o - 1); the encoder shares each frame among its N samples
        mask = torch.stack(masks, dim=1).flatten(0, 1)
        other = torch.stack(others, dim=1).flatten(0, 1)
        r4 = self.Encoder_M(frames, mask, other)
        key, value = self.KV_M_r4(r4)
        key = key.reshape(t, n, *key.shape[1:]).permute(1, 2, 0, 3, 4)
        value = value.reshape(t, n, *value.shape[1:]).permute(1, 2, 0, 3, 4)
        return key.contiguous(), value.contiguous()

    def encode_query(
        self, frame: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``frame`` 1 x 3 x H x W -> (key 1 x 128 x h x w, value 1 x 512 x h x w,
        r3 1 x 512 x H/8 x W/8, r2 1 x 256 x H/4 x W/4)."""
        r4, r3, r2 = self.Encoder_Q(frame)
        key, value = self.KV_Q_r4(r4)
        return key, value, r3, r2

    def read_decode(
        self,
        mem_key: torch.Tensor,
        mem_value: torch.Tensor,
        q_key: torch.Tensor,
        q_value: torch.Tensor,
        r3: torch.Tensor,
        r2: torch.Tensor,
    ) -> torch.Tensor:
        """Memory read + decoder + soft aggregation -> log-odds 1 x K x H x W.

        ``softmax(dim=1)`` of the result gives the class probabilities (bg, unknown, fg).
        """
        n = self.num_objects
        read = memory_read(mem_key, mem_value, q_key.expand(n, -1, -1, -1), self.read_chunk)
        # q_value, r3 and r2 stay one sample: the decoder's query-value half of convFM
        # and its skip branches depend on the query only, so they run once and broadcast
        # over the objects (the reference runs them once per object, on N copies).
        logits = self.Decoder(read, q_value, r3, r2)
        object_probs = F.softmax(logits, dim=1)[:, 1]
        return soft_aggregation(object_probs)

    def segment(
        self, frame: torch.Tensor, mem_key: torch.Tensor, mem_value: torch.Tensor
    ) -> torch.Tensor:
        """Query ``frame`` 1 x 3 x H x W against a memory -> log-odds 1 x K x H x W."""
        return self.read_decode(mem_key, mem_value, *self.encode_query(frame))

    def forward(
        self, memory_frames: torch.Tensor, memory_probs: torch.Tensor, frame: torch.Tensor
    ) -> torch.Tensor:
        """The whole network: T memory frames (T x 3 x H x W) with their probabilities
        (T x K x H x W) and a query frame (1 x 3 x H x W) -> log-odds 1 x K x H x W."""
        key, value = self.memorize(memory_frames, memory_probs)
        return self.segment(frame, key, value)


def build_stm() -> STM:
    """A new STM with the trimap configuration (2 objects), random weights, eval mode."""
    return STM(NUM_OBJECTS).eval()


def load_stm_model(
    path_or_state: str | Path | Mapping[str, torch.Tensor], *, device: str | torch.device = "cpu"
) -> STM:
    """An STM with the official trimap weights from a file or a state dict, in eval mode.

    Every key and shape of the manifest must match (strict); a training prefix (``module.``)
    and wrapper (``{"state_dict": ...}``) are accepted, from a file or a loaded dict. Raises
    :class:`tcvom.errors.WeightsError` for a missing file or one that does not fit.
    """
    from tcvom.errors import WeightsError
    from tcvom.weights import checkpoints

    model = build_stm()
    if isinstance(path_or_state, (str, Path)):
        path: Path | None = Path(path_or_state)
        state = checkpoints.read_state_dict(path)
    else:
        path = None
        state = checkpoints.normalise_state_dict(path_or_state)  # as a file's: wrapper and prefix dropped
    kind = checkpoints.identify(state)
    if kind not in ("stm", "unknown"):
        raise WeightsError(
            f"this checkpoint holds the {checkpoints.kind_name(kind)} network, not the STM trimap-propagation one",
            path=path,
            hint="pass it as the matting weights (`run --matting-weights`, `matte --weights`); the trimaps need "
                 "the STM weights (`run --weights`, `trimaps --weights`)")
    checkpoints.load_into(model, state, what="STM trimap propagation", path=path)
    return model.to(resolve_device(device)).eval()  # a device that is not there: exit 2, not a traceback
