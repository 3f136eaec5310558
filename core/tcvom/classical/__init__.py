"""The built-in ``classical`` method: a complete matte pipeline that needs no weights.

keyframe trimaps -> :class:`FlowPropagator` (DIS optical flow, driven by the shared
keyframe scheduler and ensemble) -> trimaps for every frame -> :class:`ClassicalSession`
(per-frame pymatting alpha on tiles around the unknown band, then attention over the
flow-aligned neighbours, :class:`TemporalAggregator`) -> alpha per frame.
See ``docs/classical.md``.
"""

from tcvom.classical.flow import FlowEstimator
from tcvom.classical.propagate import FlowPropagator
from tcvom.classical.session import ClassicalSession
from tcvom.classical.solve import AlphaSolver
from tcvom.classical.temporal import TemporalAggregator

__all__ = ["AlphaSolver", "ClassicalSession", "FlowEstimator", "FlowPropagator", "TemporalAggregator"]
