"""Benchmark variants in processes of their own, still interleaved step by step.

In one process, a variant that allocates large blocks (the reference's whole-memory
affinity, three part-A passes a frame) was measured to slow the variant timed after it by
10-60 % (heap state, page faults, caches: docs/BENCHMARKS.md). :class:`Isolated` runs each
variant in a spawned process of its own; the parent still asks every variant for step
``i`` in turn, so the machine's load hits them alike.

``factory(*args)`` runs in the child and returns ``run(i) -> (seconds, output array)``; it
must be a module-level function (spawned children import it by name).
"""

from __future__ import annotations

import multiprocessing
import resource
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

Run = Callable[[int], tuple[float, np.ndarray]]

#: A variant named ``<variant>_system_malloc`` is ``<variant>`` in a process with glibc's
#: default allocator (``--isolate`` only: the allocator is per process).
SYSTEM_MALLOC = "_system_malloc"


def base_variant(name: str) -> str:
    """The variant that ``name`` runs (``cached_system_malloc`` -> ``cached``)."""
    return name.removesuffix(SYSTEM_MALLOC)


def runs_as_tcvom(name: str, reference: str) -> bool:
    """Whether variant ``name`` runs in a process set up as the ``tcvom`` command does:
    not the ``reference`` variant, not a ``*_system_malloc`` one."""
    return name != reference and not name.endswith(SYSTEM_MALLOC)


def check_variants(names: list[str], isolate: bool) -> None:
    """``*_system_malloc`` variants mean something only in processes of their own."""
    if not isolate and any(name.endswith(SYSTEM_MALLOC) for name in names):
        raise SystemExit(f"the *{SYSTEM_MALLOC} variants need --isolate (the allocator is per process)")


def _serve(conn: Connection, factory: Callable[..., Run], args: tuple[Any, ...], tcvom_process: bool) -> None:
    if tcvom_process:
        from tcvom.allocator import retain_freed_memory

        retain_freed_memory()
    run = factory(*args)
    conn.send("ready")
    while (i := conn.recv()) is not None:
        conn.send(run(i))
    conn.send(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # peak RSS, MiB (Linux: KiB)


class Isolated:
    """One variant in its own process. ``tcvom_process``: set the process up as the
    ``tcvom`` command does (:func:`tcvom.allocator.retain_freed_memory`); False for the
    reference-style variants, which run as the reference code would."""

    def __init__(self, name: str, factory: Callable[..., Run], *args: Any, tcvom_process: bool = True) -> None:
        context = multiprocessing.get_context("spawn")
        self.name = name
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, factory, args, tcvom_process), daemon=True)
        self.process.start()
        if self.conn.recv() != "ready":
            raise RuntimeError(f"variant {name}: its process did not start")

    def run(self, i: int) -> tuple[float, np.ndarray]:
        self.conn.send(i)
        return self.conn.recv()

    def close(self) -> float:
        """Stop the process; returns its peak resident memory in MiB."""
        self.conn.send(None)
        peak = float(self.conn.recv())
        self.process.join(timeout=60)
        return peak


def facts(names: list[str], isolate: bool, tcvom_process: Callable[[str], bool], peaks: dict[str, int]) -> dict:
    """The results' account of how the variants ran: processes, each one's allocator and
    peak resident memory (MiB, ``--isolate`` only)."""
    return {
        "processes": "one per variant" if isolate else "one",
        "peak_rss_mib": peaks,
        "allocator": {
            name: "retains freed memory (tcvom command)" if isolate and tcvom_process(name) else "glibc default"
            for name in names
        },
    }
