"""Per-frame matting sessions with the shared neighbour window and frame cache."""

from tcvom.matting.window import FrameCache, neighbour_window

__all__ = ["FrameCache", "neighbour_window"]
