"""Keyframe trimap propagation: the shared keyframe scheduler and the propagators."""

from tcvom.propagation.scheduler import KeyframeSchedule, Pass, Segment

__all__ = ["KeyframeSchedule", "Pass", "Segment"]
