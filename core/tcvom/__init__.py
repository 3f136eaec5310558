"""tcvom: temporally coherent video object matting (TCVOM, ACM MM 2021) for compositors.

The Python API mirrors the command line (flags map 1:1 to keyword arguments)."""

from __future__ import annotations

__version__ = "0.1.0"
