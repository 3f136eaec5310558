"""Reading network checkpoints and loading them strictly, with errors that say what is wrong.

Network-agnostic: the same functions serve every matting base (GCA, FBA, DIM, IndexNet, each
with and without the TAM) and STM.

- :func:`read_state_dict` reads a ``.pth`` file with ``torch.load(weights_only=True)`` and
  accepts the three layouts the released files use: a flat state_dict, a
  ``{"state_dict": ...}`` wrapper and keys with a ``module.`` prefix (DataParallel).
- :func:`load_into` loads strictly and raises :class:`tcvom.errors.WeightsError` that lists
  missing keys, unexpected keys and shape differences by name.
- :func:`identify` tells the network a state_dict belongs to from its key signature
  (the manifests in ``shared/reference/*.tsv``); :func:`describe` summarises a file for
  ``tcvom info --weights FILE``.
- :func:`kind_of` remembers its answer for each file (by path, size and modification time,
  :func:`tcvom.io.hashing.file_identity`), as :func:`tcvom.io.hashing.file_sha256` does,
  so a process that looks a weight file up many times (a chunked run, a farm worker)
  reads and hashes it once.
"""

from __future__ import annotations

import errno
import io
import os
import pickle
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from tcvom.errors import InputError, ReadError, WeightsError
from tcvom.io.atomic import atomic_output, said_when_full
from tcvom.io.hashing import FileIdentity, file_identity, file_sha256
from tcvom.models import bases
from tcvom.models.bases import MATTING_KINDS

#: Names :func:`identify` returns: the matting kinds of :mod:`tcvom.models.bases`, STM, unknown.
KINDS: tuple[str, ...] = (*MATTING_KINDS, "stm", "unknown")

# Key signatures from the manifests: a state_dict is of a kind when it holds all of these.
_GCA_SIGNATURE = (
    "encoder.conv1.module.weight_bar",
    "encoder.gca.guidance_conv.weight",
    "decoder.gca.guidance_conv.weight",
    "decoder.conv2.weight",
)
_TAM_PREFIX = "decoder.fam."  # the TAM of every base
# The other bases (fba_tam_state_dict.tsv, dim_tam_state_dict.tsv, index_tam_state_dict.tsv,
# dim_single_state_dict.tsv); their TAM is the same ``decoder.fam.*`` as GCA's.
_BASE_SIGNATURES: dict[str, tuple[str, ...]] = {
    "fba": ("encoder.layer4.2.conv3.weight", "decoder.ppm.0.1.weight", "decoder.conv_up4.4.weight"),
    "dim": ("encoder.conv11.weight", "encoder.conv6.weight", "decoder.dconv6.weight", "decoder.alpha_pred.weight"),
    "index": ("encoder.index0.indexnet1.0.weight", "encoder.dconv_pp.aspp1.atrous_conv.0.weight", "decoder.pred.1.weight"),
}
_DIM_SINGLE_SIGNATURE = ("conv11.weight", "conv6.weight", "dconv6.weight", "alpha_pred.weight")
_STM_SIGNATURE = (
    "Encoder_M.conv1_m.weight",
    "Encoder_Q.conv1.weight",
    "Decoder.pred2.weight",
)

_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "network")
#: What training code puts before every key: DataParallel's ``module.``, the attribute a
#: Lightning module or a trainer holds the network in (no tcvom network has one first name
#: for all of its keys, so a shared one is never a layer's).
_KEY_PREFIXES = ("module.", "model.", "net.", "network.")
_MAX_LISTED = 8


def _short_list(names: list[str], limit: int = _MAX_LISTED) -> str:
    """``a, b, c and 12 more`` so a message stays readable for a wholly wrong file."""
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit])} and {len(names) - limit} more"


def strip_prefix(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Drop a training wrapper's prefix (:data:`_KEY_PREFIXES`, also nested as in
    ``module.model.``) from the keys when every key has it."""
    out = dict(state)
    while out:
        prefix = next((p for p in _KEY_PREFIXES if all(key.startswith(p) for key in out)), None)
        if prefix is None:
            break
        out = {key[len(prefix):]: value for key, value in out.items()}
    return out


def normalise_state_dict(obj: Any, *, path: str | Path | None = None) -> dict[str, Tensor]:
    """A flat ``{name: tensor}`` dict from what ``torch.load`` returned.

    Accepts a flat dict, a ``{"state_dict": ...}`` (or ``model_state_dict`` / ``model`` /
    ``net`` / ``network``) wrapper, or any one dict of tensors at the top level (whatever
    else the checkpoint holds beside it: an epoch, a loss tensor), and a training prefix
    (``module.``, ``model.``...) on every key. Raises :class:`WeightsError` otherwise.
    """
    if isinstance(obj, Mapping):
        # A training checkpoint: the weights under a wrapper key, beside the epoch, the
        # optimizer, and often the loss as a tensor of its own (PyTorch's tutorial).
        for key in _WRAPPER_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping) and any(isinstance(v, Tensor) for v in inner.values()):
                obj = inner
                break
        else:
            nested = [v for v in obj.values() if isinstance(v, Mapping) and any(isinstance(t, Tensor)
                                                                                 for t in v.values())]
            loose = sum(isinstance(v, Tensor) for v in obj.values())  # a loss or a step count beside it
            if len(nested) == 1 and loose < sum(isinstance(t, Tensor) for t in nested[0].values()):
                obj = nested[0]  # the one dict of tensors, under a name of its own
            elif len(nested) > 1 and not loose:  # {params, params_ema}: "no tensors" was said
                names = [str(k) for k, v in obj.items() if any(v is n for n in nested)]
                raise WeightsError(
                    f"the file holds {len(nested)} sets of weights ({', '.join(names)}), and tcvom cannot tell "
                    "which to use", path=path,
                    hint="save the one you want (the network's, e.g. the averaged one of a training run) as a plain "
                    "state_dict: torch.save(torch.load(FILE, weights_only=True)[NAME], 'weights.pth'), NAME one of "
                    f"{', '.join(names)}")
    if not isinstance(obj, Mapping):
        raise WeightsError(
            f"expected a state_dict (a dict of tensors), found {type(obj).__name__}",
            path=path,
            hint="tcvom reads plain PyTorch state_dict files (.pth)",
        )
    tensors = {k: v for k, v in obj.items() if isinstance(v, Tensor)}
    if not tensors:
        keys = ", ".join(map(str, list(obj)[:5]))
        raise WeightsError(
            f"the file holds no tensors (top-level keys: {keys or 'none'})",
            path=path,
            hint="tcvom reads plain PyTorch state_dict files (.pth)",
        )
    non_str = [k for k in tensors if not isinstance(k, str)]
    if non_str:
        raise WeightsError(f"state_dict keys must be strings, found {non_str[0]!r}", path=path)
    return strip_prefix(tensors)


def _clip(text: str, limit: int = 300) -> str:
    """``text`` cut to about ``limit`` characters at the end of a sentence or word, marked
    with an ellipsis when cut."""
    text = text.strip()
    if len(text) <= limit:
        return text
    head = text[:limit]
    cut = head.rfind(". ")
    if cut < limit // 2:
        cut = head.rfind(" ")
    return (head[: cut + 1] if cut > 0 else head).rstrip() + " ..."


EXPORT_SUFFIXES = (".onnx", ".json", ".engine", ".plan")
"""Files of an export (:mod:`tcvom.export`, the TensorRT engines), which are no weight files."""


class _Sink(io.RawIOBase):
    """A file torch.save writes through, keeping the OSError of a failed write: torch
    replaces it with a RuntimeError that names no file and no errno ("unexpected pos")."""

    def __init__(self, handle: io.BufferedWriter) -> None:
        super().__init__()
        self.handle = handle
        self.error: OSError | None = None

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        try:
            return self.handle.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        if not self.handle.closed:  # also called when the sink is collected, after the file's close
            self.handle.flush()


def save_torch(obj: Any, final: str | Path, saver: Callable[[Any, Any], None] = torch.save) -> Path:
    """``torch.save(obj)`` (or ``saver``: ``torch.jit.save`` of a TorchScript module) to
    ``final`` through a temporary name (readers see the old file or the whole new one).
    Returns ``final`` as a Path.

    Raises:
        OutputError: the disk is full or a file size limit is reached (``FULL_HINT``).
    """
    final = Path(final)
    with atomic_output(final) as tmp, said_when_full(final), open(tmp, "wb") as handle:
        sink = _Sink(handle)
        try:
            saver(obj, sink)
        except RuntimeError:
            if sink.error is not None:
                raise sink.error from None
            raise
    return final


def _refuse_other_formats(p: Path) -> None:
    """A TorchScript model (``tcvom nuke torchscript`` writes them) or a safetensors file
    given as weights: said as what it is, not as a corrupt download (torch.load's warning
    and error on them named neither)."""
    import zipfile

    script = False
    try:
        with open(p, "rb") as handle:  # one opening (a share's round trip) for both looks
            head = handle.read(9)
            size = os.fstat(handle.fileno()).st_size
            archive = zipfile.is_zipfile(handle)
            if archive:
                handle.seek(0)
                with zipfile.ZipFile(handle) as opened:
                    script = any(name.rsplit("/", 1)[-1] == "constants.pkl" for name in opened.namelist())
    except (OSError, zipfile.BadZipFile):
        return  # torch.load says what is wrong
    if archive:
        if script:
            raise InputError("this is a TorchScript model (tcvom nuke torchscript writes these), not a weight file",
                             path=p, hint="give the .pth weights it was made from")
        return
    # safetensors: an 8-byte little-endian header length, then the JSON header
    if p.suffix.lower() == ".safetensors" or (len(head) == 9 and head[8:9] == b"{"
                                              and int.from_bytes(head[:8], "little") < size):
        raise InputError("this is a safetensors file; tcvom reads PyTorch checkpoints (.pth)", path=p,
                         hint="convert it with the safetensors package: torch.save(safetensors.torch.load_file(FILE), "
                              "'weights.pth')")


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read a checkpoint file into a flat ``{name: tensor}`` dict on the CPU.

    Uses ``torch.load(weights_only=True)``: no code in the file is ever run.

    Raises:
        WeightsError: the file does not exist (exit code 2, as every weight path the user
            names; ``MissingWeightsError``, exit 3, is for weights no place holds).
        ReadError: the file cannot be read, or is not a readable PyTorch file (truncated,
            corrupt, not a checkpoint).
        WeightsError: it is readable but holds no state_dict.
    """
    p = Path(path)
    if not p.exists():
        raise WeightsError("the weight file does not exist", path=p, hint="check the path, or see 'tcvom weights list'")
    if p.is_dir():
        raise InputError("expected a weight file, found a folder", path=p,
                         hint="name the .pth file inside it, or point $TCVOM_WEIGHTS at the folder")
    if p.suffix.lower() in EXPORT_SUFFIXES:  # was "truncated or corrupt; download it again"
        raise InputError("this is a file of an export (tcvom export, ONNX or TensorRT), not a weight file", path=p,
                         hint="give the .pth weights it was made from; an export folder goes to --export-dir")
    _refuse_other_formats(p)
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except OSError as exc:  # the file is there but cannot be read: not a download problem
        if exc.errno == errno.EINVAL:  # torch's zip reader on a file cut short (4-40 KB kept)
            raise ReadError("not a readable PyTorch checkpoint (its archive is incomplete)", path=p,
                            hint="the download may be truncated or corrupt; download it again") from exc
        raise ReadError(f"the weight file cannot be read ({exc.strerror or exc})", path=p,
                        hint="check its permissions" if isinstance(exc, PermissionError)
                        else "check the disk or network share it is on") from exc
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Unsupported global" in text or "unsupported GLOBAL" in text:  # a class, or a blocked module's function
            glob = next((line.strip() for line in text.splitlines()
                         if "Unsupported global" in line or "GLOBAL" in line), "")
            raise ReadError(
                f"the file holds Python objects other than tensors and is not loaded, for safety ({_clip(glob)})",
                path=p,
                hint="re-save it as a plain state_dict: torch.save(model.state_dict(), path)",
            ) from exc
        raise ReadError(
            "not a readable PyTorch checkpoint (the data cannot be decoded)",
            path=p,
            hint="the download may be truncated or corrupt; download it again",
        ) from exc
    except Exception as exc:  # the unpickler raises many types on garbage (IndexError, KeyError...)
        first = _clip(str(exc).splitlines()[0]) if str(exc) else ""
        raise ReadError(
            f"not a readable PyTorch checkpoint ({type(exc).__name__}: {first})",
            path=p,
            hint="the download may be truncated or corrupt; download it again",
        ) from exc
    return normalise_state_dict(obj, path=p)


def compare(model_state: Mapping[str, Tensor], state: Mapping[str, Tensor]) -> tuple[list[str], list[str], list[str]]:
    """(missing, unexpected, shape differences) of ``state`` against ``model_state``."""
    missing = [k for k in model_state if k not in state]
    unexpected = [k for k in state if k not in model_state]
    shapes = [
        f"{k} {list(state[k].shape)} (expected {list(model_state[k].shape)})"
        for k in model_state
        if k in state and tuple(state[k].shape) != tuple(model_state[k].shape)
    ]
    return missing, unexpected, shapes


def load_into(
    model: nn.Module,
    state: Mapping[str, Tensor],
    *,
    what: str,
    path: str | Path | None = None,
) -> nn.Module:
    """Load ``state`` into ``model`` strictly; return the model.

    ``what`` names the network in messages ("GCA+TAM", "STM"). Missing keys, unexpected
    keys and shape differences are all listed (long lists truncated) in one
    :class:`WeightsError`, together with what the file looks like (:func:`identify`).
    """
    state = strip_prefix(state)
    missing, unexpected, shapes = compare(model.state_dict(), state)
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s): {_short_list(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s): {_short_list(unexpected)}")
        if shapes:
            parts.append(f"{len(shapes)} shape difference(s): {_short_list(shapes, 5)}")
        kind = identify(state)
        looks = f"; the file looks like {_KIND_NAMES[kind]}" if kind != "unknown" and _KIND_NAMES[kind] != what else ""
        network = what if what.startswith("the ") else f"the {what} network"
        raise WeightsError(
            f"the weights do not fit {network}: {'; '.join(parts)}{looks}",
            path=path,
            hint="check that the file is a checkpoint of this network (tcvom info --weights FILE)",
        )
    floating = [k for k, v in state.items() if not (v.is_floating_point() or k.endswith("num_batches_tracked"))]
    if floating:
        raise WeightsError(f"non-floating tensors where weights are expected: {_short_list(floating)}", path=path)
    nonfinite = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if nonfinite:
        raise WeightsError(f"tensors with NaN or infinite values: {_short_list(nonfinite)}", path=path)
    model.load_state_dict(dict(state), strict=True)
    return model


_KIND_NAMES = {
    **{kind: bases.kind_name(kind) for kind in MATTING_KINDS},
    "stm": "STM (trimap propagation)",
    "unknown": "an unknown network",
}


def identify(state: Mapping[str, Tensor]) -> str:
    """The network a state_dict belongs to: a matting kind (``"gca_tam"``, ``"gca"``,
    ``"fba_tam"``, ``"fba"``, ``"dim_tam"``, ``"dim"``, ``"index_tam"``, ``"index"``),
    ``"stm"`` or ``"unknown"``.

    Decided from key signatures of the manifests (a ``module.`` prefix is ignored).
    """
    keys = set(strip_prefix(state))
    temporal = any(k.startswith(_TAM_PREFIX) for k in keys)  # a part of it missing: load names the keys
    if all(k in keys for k in _GCA_SIGNATURE):
        return "gca_tam" if temporal else "gca"
    for base, signature in _BASE_SIGNATURES.items():
        if all(k in keys for k in signature):
            return f"{base}_tam" if temporal else base
    if all(k in keys for k in _DIM_SINGLE_SIGNATURE):
        return "dim"
    if all(k in keys for k in _STM_SIGNATURE):
        return "stm"
    return "unknown"


def closest_matting_kind(state: Mapping[str, Tensor]) -> str | None:
    """The video network whose key signature a state_dict that :func:`identify` does not
    recognise shares most of (a partial download, an encoder alone), None if it shares none:
    a load against it names the keys that are really missing, not another base's."""
    keys = set(strip_prefix(state))
    signatures = {"gca": _GCA_SIGNATURE, **_BASE_SIGNATURES}
    shares = {base: sum(k in keys for k in signature) / len(signature) for base, signature in signatures.items()}
    best = max(shares, key=lambda base: shares[base])
    return f"{best}_tam" if shares[best] > 0 else None


def kind_name(kind: str) -> str:
    """A human-readable name for a kind from :func:`identify`."""
    return _KIND_NAMES.get(kind, kind)


_KIND: dict[FileIdentity, str] = {}


def kind_of(path: str | Path) -> str:
    """:func:`identify` of a weight file, read once per file identity in a process.

    Raises:
        ReadError / WeightsError: as :func:`read_state_dict`.
    """
    try:
        key = file_identity(path)
    except OSError:
        return identify(read_state_dict(path))  # raises WeightsError naming a missing file
    if key not in _KIND:
        _KIND[key] = identify(read_state_dict(path))
    return _KIND[key]


def _build_model(kind: str) -> nn.Module | None:
    """The tcvom model for a kind (None for ``"unknown"``)."""
    if kind in MATTING_KINDS:
        return bases.build_matting(kind)
    if kind == "stm":
        from tcvom.models.stm import build_stm

        return build_stm()
    return None


def describe(path: str | Path) -> dict[str, Any]:
    """What a weight file is, for ``tcvom info --weights FILE``.

    Returns ``path``, ``kind`` (see :func:`identify`), ``name``, ``base`` (the matting base,
    or None), ``tensors``, ``parameters``
    (number of values), ``bytes``, ``sha256``, ``loads`` (True/False, or None when tcvom
    has no model for the kind) and ``problem`` (why it does not load, or None).
    Raises the errors of :func:`read_state_dict` for missing or unreadable files.
    """
    from tcvom.io.sequence import path_text

    p = Path(path_text(path, "the weight file", "give the .pth file"))
    state = read_state_dict(p)
    kind = identify(state)
    info: dict[str, Any] = {
        "path": str(p),
        "kind": kind,
        "name": kind_name(kind),
        "base": bases.base_of(kind) if kind in MATTING_KINDS else None,
        "tensors": len(state),
        "parameters": int(sum(v.numel() for v in state.values())),
        "bytes": p.stat().st_size,
        "sha256": file_sha256(p),
        "loads": None,
        "problem": None,
    }
    model = _build_model(kind)
    if model is None:
        info["problem"] = ("its keys match none of the networks tcvom runs (STM, or GCA, FBA, DIM or IndexNet "
                           "with or without the TAM)")
    else:
        try:
            load_into(model, state, what=kind_name(kind), path=p)
            info["loads"] = True
        except WeightsError as exc:
            info["loads"] = False
            info["problem"] = exc.message  # the file is named beside it
    return info
