"""tcvom.allocator: with the setting, a large block freed and allocated again is reused
instead of being mapped and zero-filled anew (measured in minor page faults); the
``tcvom`` command applies it, the library does not; ONNX Runtime's CPU arena follows it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tcvom.allocator import ENV

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")

# Allocate (the process's malloc, which torch's CPU allocator calls), touch, free a block
# (64 MiB unless a size in MiB follows) three times; report whether the setting was applied
# and the last round's minor faults.
PROBE = """
import ctypes, ctypes.util, json, resource, sys
from tcvom.allocator import retain_freed_memory
applied = retain_freed_memory() if sys.argv[1] == "apply" else False
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
libc.memset.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t)
size = (int(sys.argv[2]) if len(sys.argv) > 2 else 64) << 20
faults = []
for _ in range(3):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = libc.malloc(size)
    libc.memset(block, 1, size)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    libc.free(block)
print(json.dumps({"applied": applied, "faults": faults[-1]}))
"""


def _probe(mode: str, *size_mib: str, **env: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, mode, *size_mib], capture_output=True, text=True,
                          check=True, env={**os.environ, **env})
    return json.loads(done.stdout)


def test_freed_memory_is_reused_not_faulted_again():
    pages = (64 << 20) // os.sysconf("SC_PAGE_SIZE")
    plain = _probe("none")
    kept = _probe("apply")
    assert kept["applied"] is True
    assert plain["faults"] > pages // 2  # glibc maps and zero-fills the block each time
    assert kept["faults"] < pages // 20  # reused from the heap


def test_a_freed_block_larger_than_a_gibibyte_stays_in_the_heap():
    """Trimming is off: a 1.25 GiB block freed at the heap's top (what ONNX Runtime frees
    after a 1080p frame) is not given back, so allocating it again faults nothing in."""
    pages = (1280 << 20) // os.sysconf("SC_PAGE_SIZE")
    kept = _probe("apply", "1280")
    assert kept["applied"] is True
    assert kept["faults"] < pages // 20


def test_turned_off_through_the_environment():
    off = _probe("apply", **{ENV: "0"})
    assert off["applied"] is False
    assert off["faults"] > (64 << 20) // os.sysconf("SC_PAGE_SIZE") // 2


ARENA = """
import json, sys
from tcvom.allocator import retain_freed_memory, retaining
from tcvom.export.onnx_export import ort_session
before = retaining()
applied = retain_freed_memory() if sys.argv[2] == "apply" else False
session = ort_session(sys.argv[1])
print(json.dumps({"before": before, "retaining": retaining(), "applied": applied,
                  "arena": session.get_session_options().enable_cpu_mem_arena}))
"""


def test_onnxruntime_drops_its_arena_only_where_the_heap_retains(gca_export):
    """ONNX Runtime's CPU arena is off where the process keeps freed memory, on elsewhere."""
    graph = str(gca_export.graph_file("part_b"))
    states = {}
    for mode in ("apply", "none"):
        done = subprocess.run([sys.executable, "-c", ARENA, graph, mode], capture_output=True, text=True,
                              check=True, env=os.environ)
        states[mode] = json.loads(done.stdout)
    assert states["apply"] == {"before": False, "retaining": True, "applied": True, "arena": False}
    assert states["none"] == {"before": False, "retaining": False, "applied": False, "arena": True}


def test_network_commands_apply_it_and_others_do_not():
    from tcvom.cli import COMMANDS, NETWORK_COMMANDS

    assert {"run", "trimaps", "matte"} <= NETWORK_COMMANDS <= set(COMMANDS)
    assert "info" not in NETWORK_COMMANDS
