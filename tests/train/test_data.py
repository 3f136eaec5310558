"""Training datasets: shapes, value ranges, determinism per sample, masks and windows."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tcvom.data.vm108 import VideoMatting108
from tcvom.errors import FrameSizeError, InputError, ReadError
from tcvom.train.data import (
    AffineTripletDataset,
    ImageMattingFiles,
    StmImageDataset,
    StmVideoDataset,
    VideoWindowDataset,
    read_alpha,
    reflect_index,
    training_mask,
    training_trimap,
)


def test_reflect_index_mirrors_without_repeating_the_edge() -> None:
    assert [reflect_index(k, 5) for k in (-2, -1, 0, 4, 5, 6)] == [2, 1, 0, 4, 3, 2]
    assert reflect_index(3, 1) == 0


def test_training_mask_and_trimap() -> None:
    alpha = np.zeros((7, 7), np.float32)
    alpha[3, 3] = 0.5
    alpha[0, 0] = 1.0
    mask = training_mask(alpha, radius=1)
    assert mask.sum() == 9 and mask[2:5, 2:5].all()
    assert training_mask(alpha, radius=0).sum() == 1
    # eps snapping: 0.995 counts as 1 with eps 1e-2, so no soft pixel there.
    assert training_mask(np.full((3, 3), 0.995, np.float32), 1, eps=1e-2).sum() == 0
    tri = training_trimap(alpha, mask)
    assert tri[0, 0] == 255 and tri[3, 3] == 128 and tri[6, 6] == 0


def test_video_windows(video_root: Path) -> None:
    ds = VideoWindowDataset(video_root, crop=32, length=4, seed=1, max_radius=3)
    item = ds[2]
    assert item["image"].shape == (5, 3, 32, 32) and item["alpha"].shape == (5, 1, 32, 32)
    assert item["trimap"].dtype == torch.uint8
    assert float(item["image"].min()) >= 0 and float(item["image"].max()) <= 1
    # The composite is F a + B (1 - a) of the (augmented) layers returned with it.
    a = item["alpha"]
    assert torch.allclose(item["image"], item["fg"] * a + item["bg"] * (1 - a), atol=1e-5)
    # The mask covers every soft pixel and is unknown in the trimap.
    soft = (a > 0) & (a < 1)
    assert bool((item["mask"][soft] == 1).all())
    assert bool((item["trimap"][item["mask"] > 0] == 128).all())
    again = VideoWindowDataset(video_root, crop=32, length=4, seed=1, max_radius=3)[2]
    assert all(torch.equal(item[k], again[k]) for k in item)
    other = VideoWindowDataset(video_root, crop=32, length=4, seed=2, max_radius=3)[2]
    assert not torch.equal(item["image"], other["image"])
    with pytest.raises(InputError, match="smaller than the training crop"):
        VideoWindowDataset(video_root, crop=64, length=1)[0]


def test_video_windows_snap_alpha_by_the_configured_eps(video_root: Path) -> None:
    """data.eps was recorded in config.json but video windows always snapped with 0."""
    from tcvom.train.config import gca_tam_config_from_dict
    from tcvom.train.loops import build_gca_dataset

    def dataset(eps: float) -> VideoWindowDataset:
        cfg = gca_tam_config_from_dict({"out": "o", "steps": 2, "seed": 1, "data": {
            "root": str(video_root), "crop": 32, "max_radius": 0, "eps": eps, "colour": False, "jpeg_probability": 0}})
        made = build_gca_dataset(cfg)
        assert isinstance(made, VideoWindowDataset)
        return made

    plain, snapped = dataset(0.0)[0], dataset(0.45)[0]
    assert torch.equal(plain["alpha"], snapped["alpha"])  # the same window, snapped differently
    assert int(snapped["mask"].sum()) < int(plain["mask"].sum())
    with pytest.raises(InputError, match=r"data\.eps"):
        dataset(0.5)


def test_affine_triplets(image_folders: dict[str, Path]) -> None:
    files = ImageMattingFiles.from_folders(image_folders["fg"], image_folders["alpha"], image_folders["bg"])
    assert len(files.foregrounds) == 3 and len(files.backgrounds) == 2
    item = AffineTripletDataset(files, crop=32, length=2, seed=0, max_radius=2)[1]
    assert item["image"].shape == (3, 3, 32, 32) and item["mask"].shape == (3, 1, 32, 32)
    # The three frames differ (warped), but show the same object.
    assert not torch.equal(item["alpha"][0], item["alpha"][2])


def test_image_folders_errors(tmp_path: Path, image_folders: dict[str, Path]) -> None:
    with pytest.raises(InputError, match="does not exist"):
        ImageMattingFiles.from_folders(tmp_path / "nope", image_folders["alpha"], image_folders["bg"])
    (tmp_path / "fg").mkdir()
    import shutil

    shutil.copy(image_folders["fg"] / "item0.png", tmp_path / "fg" / "orphan.png")
    with pytest.raises(InputError, match=r"no alpha matte for the foreground orphan\.png"):
        ImageMattingFiles.from_folders(tmp_path / "fg", image_folders["alpha"], image_folders["bg"])


def test_stm_datasets(video_root: Path, image_folders: dict[str, Path]) -> None:
    files = ImageMattingFiles.from_folders(image_folders["fg"], image_folders["alpha"], image_folders["bg"])
    item = StmImageDataset(files, crop=32, length=1, seed=0)[0]
    assert item["image"].shape == (3, 3, 32, 32) and item["classes"].shape == (3, 32, 32)
    assert set(item["classes"].unique().tolist()) <= {0, 1, 2, 255}
    ds = StmVideoDataset(video_root, crop=32, length=8, batch_size=2, max_skip=4, skip_start=1, skip_growth_steps=2)
    assert [ds.skip_at(s) for s in (0, 1, 2, 5, 100)] == [1, 1, 2, 3, 4]
    v = ds[3]
    assert v["image"].shape == (3, 3, 32, 32) and set(v["classes"].unique().tolist()) <= {0, 1, 2}


def test_a_window_of_frames_of_two_sizes_is_refused(video_root: Path, tmp_path: Path) -> None:
    """One crop box cuts every frame of a window: a frame of another size trained on a
    misplaced (or truncated and stretched) crop, silently."""
    import shutil

    root = tmp_path / "root"
    shutil.copytree(video_root, root)
    clip = next(iter(VideoMatting108(root, split="train")))
    for path in (clip.fg_path(2), clip.bg_path(2)):
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        cv2.imwrite(str(path), cv2.resize(image, (96, 72)))
    dataset = VideoWindowDataset(root, crop=32, length=16, seed=1, max_radius=3, clips=[clip.name])
    refused = 0
    for index in range(16):  # the windows that hold frame 2, reversed ones (starting at it) too
        try:
            dataset[index]
        except FrameSizeError as caught:  # the odd frame is named, not the window's other first frame
            refused += 1
            assert re.search(f"the frame is 96x72; frames [0-9, ]+ of clip {re.escape(clip.name)} .* are 64x48",
                             caught.message), caught.message
            assert caught.path == str(clip.fg_path(2)) and caught.frame == 2
    assert refused >= 2


def test_a_clip_smaller_than_the_crop_is_refused_before_training(video_root: Path, tmp_path: Path) -> None:
    """Training QA: found only by the step that drew the clip (hours in), naming the
    dataset folder alone."""
    import shutil

    root = tmp_path / "root"
    shutil.copytree(video_root, root)
    clip = list(VideoMatting108(root, split="train"))[1]
    for index in range(len(clip)):
        for path in (clip.fg_path(index), clip.bg_path(index)):
            cv2.imwrite(str(path), cv2.resize(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), (32, 24)))
    for dataset in (VideoWindowDataset, StmVideoDataset):
        extra = {"batch_size": 1} if dataset is StmVideoDataset else {}
        with pytest.raises(InputError, match=f"the frames of clip {re.escape(clip.name)} \\(32x24\\) are smaller "
                           "than the training crop 32") as caught:
            dataset(root, crop=32, length=4, **extra)
        assert caught.value.path == str(clip.fg_path(0)) and "leave the clip out" in str(caught.value)
    assert len(VideoWindowDataset(root, crop=16, length=4)) == 4


def test_a_missing_file_is_refused_before_training(video_root: Path, tmp_path: Path) -> None:
    """A missing frame was found only by the step that drew it (hours in, or never)."""
    import shutil

    root = tmp_path / "root"
    shutil.copytree(video_root, root)
    clip = list(VideoMatting108(root, split="train"))[1]
    clip.bg_path(4).unlink()
    with pytest.raises(ReadError, match=f"frame 4 of clip {re.escape(clip.name)} does not exist") as caught:
        VideoWindowDataset(root, crop=32, length=1)
    assert caught.value.path == str(clip.bg_path(4)) and caught.value.path.startswith(str(root))


def test_both_image_datasets_refuse_an_alpha_of_another_size(image_folders: dict[str, Path], tmp_path: Path) -> None:
    """Training QA: STM pre-training cropped a 100x128 alpha from elsewhere than its
    foreground (exit 0) or broke on broadcasting (exit 1); GCA's refused it."""
    import shutil

    for name in ("fg", "bg"):
        shutil.copytree(image_folders[name], tmp_path / name)
    (tmp_path / "alpha").mkdir()
    for i in range(3):
        alpha = cv2.imread(str(image_folders["alpha"] / f"item{i}.png"), cv2.IMREAD_UNCHANGED)
        cv2.imwrite(str(tmp_path / "alpha" / f"item{i}.png"), alpha[:40] if i == 1 else alpha)
    files = ImageMattingFiles.from_folders(tmp_path / "fg", tmp_path / "alpha", tmp_path / "bg")
    for dataset in (StmImageDataset(files, crop=32, length=8, seed=0),
                    AffineTripletDataset(files, crop=32, length=8, seed=0, max_radius=2)):
        with pytest.raises(InputError, match="the alpha is 64x40, the foreground 64x48") as caught:
            for index in range(8):
                dataset[index]
        assert caught.value.path == str(tmp_path / "alpha" / "item1.png")


def test_a_matte_shuffled_into_rgb_with_an_opaque_alpha_is_read_from_rgb(image_folders: dict[str, Path],
                                                                        tmp_path: Path) -> None:
    """Training QA: a grey matte saved as RGBA with A = 255 (a matte "shuffled to rgb")
    trained on alpha 1 everywhere; its RGB is the matte. A cut-out's alpha channel (RGB
    colour, A the matte) and an opaque cut-out (colour, A = 255) stay read from A."""
    matte = cv2.imread(str(image_folders["alpha"] / "item0.png"), cv2.IMREAD_UNCHANGED)
    opaque = np.full_like(matte, 255)
    cv2.imwrite(str(tmp_path / "shuffled.png"), np.dstack([matte, matte, matte, opaque]))
    assert np.array_equal(read_alpha(tmp_path / "shuffled.png"), matte / np.float32(255))
    colour = cv2.imread(str(image_folders["fg"] / "item0.png"))
    cv2.imwrite(str(tmp_path / "cutout.png"), np.dstack([colour, matte]))
    assert np.array_equal(read_alpha(tmp_path / "cutout.png"), matte / np.float32(255))
    cv2.imwrite(str(tmp_path / "opaque.png"), np.dstack([colour, opaque]))
    assert read_alpha(tmp_path / "opaque.png").min() == 1.0
    red = np.dstack([np.zeros_like(matte), np.zeros_like(matte), matte])  # B, G, R: a matte in red only
    cv2.imwrite(str(tmp_path / "red.png"), red)
    assert np.array_equal(read_alpha(tmp_path / "red.png"), matte / np.float32(255))  # docs QA: read blue (0)
    grey = np.dstack([matte, matte, matte, np.zeros_like(matte)])  # a grey cut-out, fully transparent
    cv2.imwrite(str(tmp_path / "clear.png"), grey)
    assert read_alpha(tmp_path / "clear.png").max() == 0.0


def test_exr_alphas_pair_with_their_foregrounds(image_folders: dict[str, Path], tmp_path: Path) -> None:
    """Training QA: EXR mattes (a compositor's) were skipped, and the refusal said "any image
    extension". An EXR's lone A, its Y, or its A beside R, G, B is the matte."""
    from tcvom.io import write_image

    alphas = tmp_path / "alpha"
    alphas.mkdir()
    mattes = [cv2.imread(str(image_folders["alpha"] / f"item{i}.png"), cv2.IMREAD_UNCHANGED) / np.float32(255)
              for i in range(3)]
    over = mattes[0] * np.float32(1.02) - np.float32(0.01)  # a filtered matte's over- and undershoots
    write_image(alphas / "item0.exr", over[:, :, None], channels=("A",), pixel_type="float")
    write_image(alphas / "item1.exr", mattes[1][:, :, None], channels=("Y",))
    colour = np.dstack([np.full_like(mattes[2], 0.3)] * 3)
    write_image(alphas / "item2.exr", np.dstack([colour, mattes[2]]), channels=("R", "G", "B", "A"))
    files = ImageMattingFiles.from_folders(image_folders["fg"], alphas, image_folders["bg"])
    assert [p.name for p in files.alphas] == ["item0.exr", "item1.exr", "item2.exr"]
    assert np.array_equal(files.pair(0)[1], np.clip(over, 0, 1))
    assert np.allclose(files.pair(1)[1], mattes[1], atol=1e-3) and np.allclose(files.pair(2)[1], mattes[2], atol=1e-3)
    # code review: a grey matte with an opaque A (Y, A) is read from Y, as its PNG is
    write_image(alphas / "item1.exr", np.dstack([mattes[1], np.ones_like(mattes[1])]), channels=("Y", "A"))
    assert np.allclose(files.pair(1)[1], mattes[1], atol=1e-3)
    (alphas / "item2.exr").unlink()
    with pytest.raises(InputError, match=r"no alpha matte for the foreground item2\.png") as caught:
        ImageMattingFiles.from_folders(image_folders["fg"], alphas, image_folders["bg"])
    assert ".exr" in caught.value.hint and "any image extension" not in caught.value.hint
