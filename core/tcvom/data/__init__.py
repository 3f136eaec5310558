"""Evaluation data: the synthetic shot generator and the VideoMatting108 loader.

- :mod:`tcvom.data.synthetic`: seeded synthetic shots with exact ground truth
  (:class:`~tcvom.data.synthetic.SyntheticShot`) and a benchmark writer
  (:func:`~tcvom.data.synthetic.write_benchmark`) in the VideoMatting108 layout.
- :mod:`tcvom.data.vm108`: a streaming reader of that layout.
"""

from __future__ import annotations

from tcvom.data.synthetic import ShotConfig, SyntheticFrame, SyntheticShot, write_benchmark
from tcvom.data.vm108 import TRIMAP_KERNELS, Clip, ClipFrame, VideoMatting108

__all__ = [
    "TRIMAP_KERNELS",
    "Clip",
    "ClipFrame",
    "ShotConfig",
    "SyntheticFrame",
    "SyntheticShot",
    "VideoMatting108",
    "write_benchmark",
]
