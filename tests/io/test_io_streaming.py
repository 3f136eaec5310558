"""Memory stays flat with shot length: frames are streamed, never collected."""

import tracemalloc
from pathlib import Path

import numpy as np

from tcvom.io import AlphaWriter, open_frames, write_image


def peak_for(folder: Path, count: int) -> int:
    frames = open_frames(folder / "p.####.exr", f"1-{count}")
    writer = AlphaWriter(folder / f"out{count}")
    tracemalloc.start()
    for frame in frames.frame_numbers:
        image = frames.read(frame)
        writer.write(frame, image[:, :, 0])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_peak_memory_does_not_grow_when_the_shot_doubles(tmp_path: Path) -> None:
    pixels = np.random.default_rng(0).random((180, 320, 3), dtype=np.float32)
    for frame in range(1, 25):
        write_image(tmp_path / f"p.{frame:04d}.exr", pixels, pixel_type="half")
    short = peak_for(tmp_path, 12)
    long = peak_for(tmp_path, 24)
    frame_bytes = pixels.nbytes
    assert long < short + frame_bytes / 2, (short, long)
    assert long < 12 * frame_bytes  # far from holding the shot
