"""Keep freed memory inside the process, so that the large tensors of every frame do not
page-fault anew (glibc only).

glibc's ``malloc`` serves each block larger than its mmap threshold (at most 32 MiB) with a
fresh ``mmap`` and unmaps it on ``free``: every feature map of a 1080p frame is then
zero-filled page by page by the kernel, each frame again. PyTorch's CPU tuning guide
recommends an allocator that reuses memory (jemalloc, TCMalloc) for this reason; those
need ``LD_PRELOAD``. :func:`retain_freed_memory` gets the same reuse from glibc itself with
``mallopt``: allocations come from the heap (``M_MMAP_MAX`` 0), and freed memory is never
given back to the system (``M_TRIM_THRESHOLD`` -1, glibc's documented "trimming off"), so
after the first frames a frame's blocks reuse the previous frame's. The cost is resident
memory: the process keeps its peak (figures in docs/BENCHMARKS.md, "CPU speed"). A finite
threshold (1 GiB until session 9) was not enough: ONNX Runtime's 1080p GCA+TAM frames
free more than that at the heap's top, glibc gave it back, and most frames faulted
0.6-1.1 GB in again (docs/BENCHMARKS.md, "Decoder shortcuts, the heap's trimming").
Threads other than the main one still get ``mmap`` for blocks larger than their 64 MiB
arenas (glibc falls back to ``mmap`` there), so nothing can fail for want of it.

The ``tcvom`` command calls it at start (not the library: an application embedding tcvom,
such as Nuke, keeps its own allocator settings). ``TCVOM_RETAIN_FREED_MEMORY=0`` turns it
off. Where it is applied (:func:`retaining`), ONNX Runtime's CPU sessions run without
their own memory arena (:func:`tcvom.export.onnx_export.ort_session`): the heap already
keeps freed memory, and the arena's power-of-two growth only added to the peak (6.2 against
3.5-4.1 GB for GCA+TAM at 1080p, docs/BENCHMARKS.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

#: Environment variable that turns the setting off when ``0``.
ENV = "TCVOM_RETAIN_FREED_MEMORY"
#: ``M_TRIM_THRESHOLD``: free memory at the heap's top that glibc keeps before it gives
#: any back; -1 turns trimming off.
TRIM_THRESHOLD = -1

_M_TRIM_THRESHOLD = -1  # glibc malloc.h
_M_MMAP_MAX = -4
_applied = False


def retain_freed_memory() -> bool:
    """Apply the setting to this process; True if applied (Linux with glibc, not turned
    off through :data:`ENV`)."""
    if os.environ.get(ENV, "1").strip() == "0" or not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    global _applied
    _applied = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _applied


def retaining() -> bool:
    """True once :func:`retain_freed_memory` has been applied to this process."""
    return _applied
