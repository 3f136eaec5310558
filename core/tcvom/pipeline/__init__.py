"""The jobs behind the command line, and the documented Python API.

``import tcvom.pipeline as tp; tp.run(...)``: :func:`run` (both stages), :func:`trimaps`
(stage 1, propagation) and :func:`matte` (stage 2, matting); keyword arguments are the
command's flags. :mod:`tcvom.pipeline.jobs` holds them, :mod:`tcvom.pipeline.methods`
picks the propagator and session of each method and back-end.
"""

from __future__ import annotations

from tcvom.pipeline.jobs import EXECUTORS, JobResult, matte, run, trimaps

__all__ = ["EXECUTORS", "JobResult", "matte", "run", "trimaps"]
