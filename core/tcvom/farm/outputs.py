"""Is a frame's output complete? The test a resumed or repeated task uses to skip it.

tcvom's writers never leave a partial file under a final name, but a file copied by
hand, an interrupted ``rsync`` or a full disk on another tool's side can. A header alone
proves little (a truncated EXR or PNG still opens), so a frame counts as done only when
its whole image decodes and has the shot's size and the expected channels.
"""

from __future__ import annotations

from pathlib import Path

from tcvom.errors import TcvomError
from tcvom.io.images import read_image


def is_complete(path: str | Path, *, width: int, height: int, channels: int | None = None) -> bool:
    """True if ``path`` is an image that decodes fully, ``width`` x ``height``, with
    ``channels`` channels (any number if None)."""
    file = Path(path)
    if not file.is_file():
        return False
    try:
        pixels, info = read_image(file)
    except TcvomError:
        return False
    if (info.width, info.height) != (width, height):
        return False
    return channels is None or pixels.shape[2] == channels
