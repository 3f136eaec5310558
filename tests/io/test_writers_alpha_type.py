"""The alpha writer takes float alphas (API QA: a uint8 alpha of 200 was written as 1.0)."""

from __future__ import annotations

import numpy as np
import pytest

from tcvom.errors import InputError
from tcvom.io import AlphaWriter


def test_an_integer_alpha_is_refused(tmp_path) -> None:
    writer = AlphaWriter(tmp_path / "a")
    with pytest.raises(InputError, match="an alpha is float in \\[0, 1\\], not uint8"):
        writer.write(1, np.full((4, 6), 200, np.uint8))
    assert not list((tmp_path / "a").glob("*.exr"))
    writer.write(1, np.full((4, 6), 0.5, np.float16))
    assert (tmp_path / "a" / "alpha.0001.exr").is_file()
