"""Frame I/O: image sequences (OpenImageIO + fileseq), movies (PyAV), colour
(OpenColorIO) and atomic writers. Sources and writers are the only code that touches files."""

from tcvom.io.atomic import atomic_output, ensure_writable_folder
from tcvom.io.colour import ColourConverter, colour_spaces
from tcvom.io.images import ImageInfo, image_info, read_image, write_image
from tcvom.io.sequence import (
    ImageSequence,
    format_range,
    frame_path,
    output_pattern,
    parse_frame_range,
)
from tcvom.io.sources import (
    ArrayFrames,
    FrameReader,
    FrameSource,
    MovieFrames,
    SequenceFrames,
    TrimapFiles,
    TrimapSource,
    open_frames,
    open_trimaps,
)
from tcvom.io.writers import ALPHA_FORMATS, AlphaWriter, ProbabilityWriter, TrimapWriter

__all__ = [
    "ALPHA_FORMATS",
    "AlphaWriter",
    "ArrayFrames",
    "ColourConverter",
    "FrameReader",
    "FrameSource",
    "ImageInfo",
    "ImageSequence",
    "MovieFrames",
    "ProbabilityWriter",
    "SequenceFrames",
    "TrimapFiles",
    "TrimapSource",
    "TrimapWriter",
    "atomic_output",
    "colour_spaces",
    "ensure_writable_folder",
    "format_range",
    "frame_path",
    "image_info",
    "open_frames",
    "open_trimaps",
    "output_pattern",
    "parse_frame_range",
    "read_image",
    "write_image",
]
