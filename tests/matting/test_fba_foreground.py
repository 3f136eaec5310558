"""FBA's own foreground colour in RGBA output (issue 19): ``tcvom matte --output rgba`` with
FBA weights writes the network's predicted foreground (premultiplied), not an estimate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tcvom import cli
from tcvom.io import read_image, write_image
from tcvom.io.sources import ArrayFrames
from tcvom.matting.gca_session import MattingSession
from tcvom.models.bases import build_matting

H, W = 40, 56


def test_fba_rgba_is_the_networks_premultiplied_foreground(tmp_path: Path) -> None:
    torch.manual_seed(1)
    torch.set_num_threads(1)
    model = build_matting("fba_tam")
    weights = tmp_path / "FBA_TAM.pth"
    torch.save(model.state_dict(), weights)
    rng = np.random.default_rng(2)
    plates, tris = {}, {}
    for frame in (1001, 1002, 1003):
        plate = (rng.random((H, W, 3)) * 255).round().astype(np.float32) / 255
        tri = np.zeros((H, W), np.float32)
        tri[6:34, 8:48] = 128 / 255
        tri[14:26, 18:38] = 1.0
        write_image(tmp_path / f"plate.{frame}.png", plate, pixel_type="uint8")
        write_image(tmp_path / f"tri.{frame}.png", tri, pixel_type="uint8")
        plates[frame], tris[frame] = plate, (tri * 255).round().astype(np.uint8)
    code = cli.main(["matte", "--plate", str(tmp_path / "plate.####.png"), "--trimaps", str(tmp_path / "tri.####.png"),
                     "--out", str(tmp_path / "out"), "--method", "tcvom", "--weights", str(weights),
                     "--output", "rgba", "--alpha-format", "png16", "--progress", "none"])
    assert code == 0
    session = MattingSession(ArrayFrames(plates), ArrayFrames(tris), model)
    layers = session.layers(1002)
    rgba, _ = read_image(tmp_path / "out" / "alpha.1002.png")
    rgba = np.asarray(rgba, np.float32).reshape(H, W, 4)
    alpha = np.clip(layers["alpha"], 0, 1)
    assert np.abs(rgba[..., 3] - alpha).max() < 2 / 65535
    want = layers["foreground"] * alpha[..., None]
    # a PNG stores straight (unassociated) colour: premultiply what is read back
    assert np.abs(rgba[..., :3] * rgba[..., 3:] - want).max() < 3 / 65535
    # the network's colour, not the plate's, in the unknown region where alpha > 0
    unknown = (tris[1002] == 128) & (alpha > 0.05)
    assert np.abs(layers["foreground"][unknown] - plates[1002][unknown]).max() > 0.05
