from pathlib import Path

import av
import numpy as np
import pytest

from tcvom.errors import MissingFrameError
from tcvom.io import MovieFrames, open_frames


def make_movie(path: Path, count: int, size=(64, 48)) -> list[np.ndarray]:
    """Frames whose mean grey level encodes the frame index (robust to compression)."""
    frames = []
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"g": "8", "crf": "10"}
        for i in range(count):
            level = 20 + 8 * i
            img = np.full((size[1], size[0], 3), level, np.uint8)
            frames.append(img)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return frames


@pytest.mark.parametrize("suffix", [".mp4", ".mov"])
def test_movie_random_access(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"plate{suffix}"
    truth = make_movie(path, 20)
    movie = open_frames(path)
    assert isinstance(movie, MovieFrames)
    assert movie.frame_numbers == list(range(1, 21)) and (movie.width, movie.height) == (64, 48)
    for frame in (1, 2, 3, 15, 4, 20, 10, 11):  # sequential, forward jumps and backward seeks
        got = movie.read(frame).mean() * 255
        assert abs(got - truth[frame - 1].mean()) < 2.0, frame


def test_movie_range_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "plate.mp4"
    make_movie(path, 6)
    assert open_frames(path, "2-4").frame_numbers == [2, 3, 4]
    assert open_frames(path, movie_first_frame=1001).frame_numbers[0] == 1001
    with pytest.raises(MissingFrameError, match="outside"):
        open_frames(path, "5-9")
    with pytest.raises(MissingFrameError):
        open_frames(tmp_path / "none.mov")
