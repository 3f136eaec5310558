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


def test_an_alpha_holding_nan_is_refused(tmp_path) -> None:
    """Known since session 18: a script calling the writer with NaN wrote NaN into the matte."""
    writer = AlphaWriter(tmp_path / "a")
    alpha = np.full((4, 6), 0.5, np.float32)
    alpha[1, 2:4] = np.nan
    with pytest.raises(InputError, match="the alpha holds NaN at 2 pixels") as caught:
        writer.write(7, alpha)
    assert caught.value.frame == 7
    assert not list((tmp_path / "a").glob("*.exr"))
