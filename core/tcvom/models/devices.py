"""Where the networks run: a torch device from what a user typed, checked before any work."""

from __future__ import annotations

import torch

from tcvom.errors import InputError


def resolve_device(device: str | torch.device, *, setting: str = "--device {}") -> torch.device:
    """A torch device, checking that CUDA is there when asked for; the errors' hints name
    ``setting``, where the user chose the device (a flag, or a config key; ``{}`` stands
    for the device)."""
    dev = parse_device(device, setting=setting)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"CUDA was asked for ({device}) but no CUDA device is available",
                             hint=f"use {setting.format('cpu')}")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(f"there is no CUDA device {dev.index} ({torch.cuda.device_count()} found)",
                             hint=f"use {setting.format('cpu')}, or cuda:N for one of those found")
    return dev


def parse_device(device: str | torch.device, *, setting: str = "--device {}") -> torch.device:
    """``device`` as a torch device of a type tcvom runs on (cpu, cuda, cuda:N), whether or
    not it is there; another name is an InputError (``setting`` as in :func:`resolve_device`)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"unknown device {device!r}", hint=f"use {setting.format('cpu')} (or cuda, cuda:N)") from exc
    if dev.type not in ("cpu", "cuda"):
        raise InputError(f"unsupported device {device!r}", hint=f"use {setting.format('cpu')} (or cuda, cuda:N)")
    return dev
