"""Content hashes: the one place tcvom computes a file's or a network's SHA-256.

- :func:`file_identity` names a file's content cheaply (real path, device, inode, size,
  modification time): a file replaced or rewritten gets another identity;
  :func:`as_recorded` asks whether a file still has the size and time a record keeps (or,
  moved in time only, its bytes).
- :func:`file_sha256` hashes a file once per identity in a process (a chunked run or a farm
  worker that looks a weight file up many times reads it once); ``remember=False`` always
  reads the file (outputs that may be rewritten within the file system's time resolution).
- :func:`state_sha256` hashes a network's state dict (names, dtypes, shapes and bytes, in
  name order), for weights that did not come from a file and for cache keys.
- :func:`array_sha256` hashes an array (dtype, shape and values) and :func:`value_sha256`
  a JSON-able value (keys sorted): the keys of what an output was made from
  (:mod:`tcvom.farm.records`).

The host client (:mod:`tcvom.hosts.client`) keeps its own standard-library hashing: it is
copied into the Blender add-on and the Nuke plug-in, which cannot import tcvom.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from torch import Tensor, nn

FileIdentity = tuple[str, int, int, int, int]

_CHUNK = 1 << 20
_SHA256: dict[FileIdentity, str] = {}


def file_identity(path: str | Path) -> FileIdentity:
    """(real path, device, inode, size, mtime in ns) of ``path``; raises OSError if missing."""
    real = os.path.realpath(path)
    st = os.stat(real)
    return (real, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def as_recorded(state: Mapping[str, object], path: str | Path) -> bool:
    """Whether ``path`` still holds what ``state`` (a record of the file,
    :mod:`tcvom.farm.records`) keeps: its ``size`` and ``mtime_ns``, or where only the time
    moved (the output copied, or touched) its recorded ``sha256``. A file rewritten since
    with other bytes is not."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    if state.get("size") != st.st_size:
        return False
    if state.get("mtime_ns") == st.st_mtime_ns:
        return True
    recorded = state.get("sha256")
    return isinstance(recorded, str) and recorded.removeprefix("sha256:") == file_sha256(path)


def _read_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | Path, *, remember: bool = True) -> str:
    """Hex SHA-256 of a file's bytes, computed once per :func:`file_identity` in a process
    (``remember=False``: read every time)."""
    if not remember:
        return _read_sha256(path)
    key = file_identity(path)
    known = _SHA256.get(key)
    if known is None:
        known = _SHA256[key] = _read_sha256(path)
    return known


def state_sha256(state: nn.Module | Mapping[str, Tensor]) -> str:
    """Hex SHA-256 of a module's (or a state dict's) tensors: names, dtypes, shapes and raw
    bytes in name order, so equal weights give equal digests whatever their order."""
    import torch

    items = state.state_dict() if isinstance(state, torch.nn.Module) else state
    digest = hashlib.sha256()
    for name, tensor in sorted(items.items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def array_sha256(array: np.ndarray) -> str:
    """Hex SHA-256 of an array's dtype, shape and values (C order)."""
    import numpy as np

    data = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{data.dtype.str}:{data.shape}".encode())
    digest.update(data.tobytes())
    return digest.hexdigest()


def value_sha256(value: object) -> str:
    """Hex SHA-256 of a JSON-able value, written with sorted keys and no spaces (so equal
    values give equal digests whatever their dict order)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()
