from pathlib import Path

import numpy as np
import pytest

from tcvom.errors import InputError, MissingFrameError
from tcvom.io import ImageSequence, frame_path, output_pattern, parse_frame_range
from tcvom.io.sequence import format_openjd_range


def write_sequence(folder: Path, name: str, frames: range, shape: tuple[int, int], seed: int = 0) -> list[Path]:
    """Random sRGB PNG frames ``folder/name.####.png`` (8-bit), returned in frame order."""
    from tcvom.io import write_image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for frame in frames:
        path = folder / f"{name}.{frame:04d}.png"
        write_image(path, rng.random((*shape, 3), dtype=np.float32), pixel_type="uint8")
        paths.append(path)
    return paths



@pytest.fixture
def plate(tmp_path: Path) -> Path:
    write_sequence(tmp_path, "plate", range(1001, 1006), (8, 12))
    return tmp_path


@pytest.mark.parametrize("name", ["plate.####.png", "plate.%04d.png", "plate.@.png", "plate.$F4.png", "plate.#.png"])
def test_vfx_patterns_find_the_frames_on_disk(plate: Path, name: str) -> None:
    seq = ImageSequence(plate / name)
    assert seq.frame_numbers == [1001, 1002, 1003, 1004, 1005]
    assert seq.path(1003) == plate / "plate.1003.png"


def test_range_in_the_name_and_range_flag(plate: Path) -> None:
    assert ImageSequence(plate / "plate.1002-1004####.png").frame_numbers == [1002, 1003, 1004]
    assert ImageSequence(plate / "plate.####.png", "1001-1005x2").frame_numbers == [1001, 1003, 1005]
    assert ImageSequence(plate / "plate.####.png", [1004, 1002]).frame_numbers == [1002, 1004]


def test_single_file_is_a_one_frame_sequence(plate: Path) -> None:
    seq = ImageSequence(plate / "plate.1003.png")
    assert seq.frame_numbers == [1003]


def test_missing_frames_are_named(plate: Path) -> None:
    (plate / "plate.1003.png").unlink()
    with pytest.raises(MissingFrameError) as err:
        ImageSequence(plate / "plate.####.png")
    assert "1003" in str(err.value) and err.value.frame == 1003 and err.value.exit_code == 2
    with pytest.raises(MissingFrameError, match="1003"):
        ImageSequence(plate / "plate.####.png", "1001-1005")
    assert ImageSequence(plate / "plate.####.png", "1004-1005").frame_numbers == [1004, 1005]


def test_no_match_and_bad_range(tmp_path: Path) -> None:
    with pytest.raises(MissingFrameError, match="no plate frames"):
        ImageSequence(tmp_path / "nothing.####.exr")
    with pytest.raises(InputError, match="not a frame range"):
        parse_frame_range("10-x")
    with pytest.raises(InputError, match="not a frame range"):
        parse_frame_range("1001-1009:")


def test_open_job_description_steps_are_steps_not_fileseq_stagger() -> None:
    # An OpenJD chunk of a shot on twos; fileseq alone reads ':' as every frame, staggered.
    assert parse_frame_range("1001-1009:2") == parse_frame_range("1001-1009x2") == [1001, 1003, 1005, 1007, 1009]
    assert parse_frame_range("1001-1005:2, 1010") == [1001, 1003, 1005, 1010]
    assert parse_frame_range("-5--1:2") == [-5, -3, -1]
    assert format_openjd_range([1001, 1003, 1005, 1007, 1010]) == "1001-1007:2,1010"
    assert format_openjd_range(list(range(1001, 1101))) == "1001-1100"
    assert parse_frame_range(format_openjd_range([1, 4, 7, 8, 9, 20])) == [1, 4, 7, 8, 9, 20]


def test_open_job_description_steps_down_and_ranges_too_large() -> None:
    """Farm QA: OpenJD's `1010-1001:-2` (1010, 1008, ... 1002) selected every frame 1001-1010
    (fileseq's stagger); a step away from the last frame is no range in OpenJD; a range of
    more frames than fileseq takes was "not a frame range" with a hint in the form given."""
    assert parse_frame_range("1010-1001:-2") == [1002, 1004, 1006, 1008, 1010]
    assert parse_frame_range("-2--10:-4") == [-10, -6, -2]
    for text, said in (("1001-1010:-2", "steps by -2 away from its last frame"), ("1010-1001:2", "steps by 2"),
                       ("1-5:0", "has a step of 0")):
        with pytest.raises(InputError, match=said):
            parse_frame_range(text)
    with pytest.raises(InputError, match="holds more than 10,000,000 frames"):
        parse_frame_range("1001-20000000")


def test_output_patterns(tmp_path: Path) -> None:
    assert output_pattern(tmp_path, "alpha.####.exr") == str(tmp_path / "alpha.####.exr")
    assert output_pattern(tmp_path / "m.%05d.exr", "alpha.####.exr") == str(tmp_path / "m.%05d.exr")
    assert frame_path(str(tmp_path / "m.%05d.exr"), 12) == tmp_path / "m.00012.exr"
    assert frame_path(str(tmp_path / "a.####.exr"), 1001) == tmp_path / "a.1001.exr"
    # QA: `matte --out o/a.exr` made a folder named a.exr without a word
    with pytest.raises(InputError, match="the output names one image file") as caught:
        output_pattern(tmp_path / "a.exr", "alpha.####.png")
    assert caught.value.hint is not None and "a.####.png" in caught.value.hint
    assert output_pattern(f"{tmp_path / 'new.exr'}/", "alpha.####.exr") == str(tmp_path / "new.exr" / "alpha.####.exr")
    (tmp_path / "kept.exr").mkdir()  # a folder so named (an earlier run's) is still a folder
    assert output_pattern(tmp_path / "kept.exr", "alpha.####.exr") == str(tmp_path / "kept.exr" / "alpha.####.exr")


def test_frames_whose_extension_has_another_case_are_named(tmp_path: Path, caplog) -> None:
    """Odd-inputs QA: plate.0005.PNG and plate.0006.PNG beside plate.0001-0004.png (a render
    from another machine) were left out of the shot without a word, exit 0."""
    import shutil

    write_sequence(tmp_path, "plate", range(1, 7), (4, 4))
    for n in (5, 6):
        shutil.move(tmp_path / f"plate.{n:04d}.png", tmp_path / f"plate.{n:04d}.PNG")
    with caplog.at_level("WARNING", logger="tcvom"):
        assert ImageSequence(tmp_path / "plate.####.png").frame_numbers == [1, 2, 3, 4]
    assert "2 file(s) of this name have another padding or extension case" in caplog.text
    assert "plate.0005.PNG, plate.0006.PNG" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="tcvom"):
        assert ImageSequence(tmp_path / "plate.####.PNG").frame_numbers == [5, 6]
    assert "plate.0001.png, plate.0002.png, plate.0003.png, ..." in caplog.text


def test_files_of_another_padding_are_named(tmp_path: Path) -> None:
    """Frames -2 and -1 written plate.-0002.exr beside plate.0000.exr were dropped without
    a word (the keyframe on -2 with them); plate.####.exr over plate.1.exr said only that
    nothing matched; a hole's hint offered the frames before it only."""
    import logging

    from tcvom.io import write_image

    for n in (-2, -1, 0, 1, 2):
        write_image(tmp_path / (f"plate.{n:05d}.exr" if n < 0 else f"plate.{n:04d}.exr"),
                    np.zeros((4, 4, 3), np.float32))
    messages: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("tcvom").addHandler(handler)
    try:
        assert ImageSequence(tmp_path / "plate.####.exr").frame_numbers == [0, 1, 2]
    finally:
        logging.getLogger("tcvom").removeHandler(handler)
    assert any("plate.-0001.exr, plate.-0002.exr" in m and "plate.-001.exr" in m for m in messages), messages
    for n in (1, 2, 3):
        write_image(tmp_path / f"short.{n}.exr", np.zeros((4, 4, 3), np.float32))
    with pytest.raises(MissingFrameError, match=r"another padding or extension case exist: short\.1\.exr, short\.2\.exr"):
        ImageSequence(tmp_path / "short.####.exr")
    write_sequence(tmp_path / "gap", "plate", range(1001, 1006), (4, 4))
    (tmp_path / "gap" / "plate.1003.png").unlink()
    with pytest.raises(MissingFrameError) as err:
        ImageSequence(tmp_path / "gap" / "plate.####.png")
    assert "--shot-range 1001-1002,1004-1005" in str(err.value)


def test_a_folder_whose_name_holds_a_padding_mark_is_named(tmp_path: Path) -> None:
    """/mnt/user@nas/plate.####.exr failed with fileseq's parse error, not naming the cause."""
    folder = tmp_path / "user@nas"
    write_sequence(folder, "plate", range(1, 3), (4, 4))
    with pytest.raises(InputError, match=r"user@nas holds '@'.*symbolic link"):
        ImageSequence(folder / "plate.####.png")
    with pytest.raises(InputError, match=r"user@nas holds '@'"):
        output_pattern(folder / "alpha.####.exr", "alpha.####.exr")


def test_frames_asked_for_that_none_of_the_files_are_name_the_files(tmp_path: Path) -> None:
    """Trimaps numbered 1-3 for a plate 1001-1003 were reported as 3 missing frames only."""
    write_sequence(tmp_path, "trimap", range(1, 4), (4, 4))
    with pytest.raises(MissingFrameError, match=r"3 plate frame\(s\) missing.*its files are frames 1-3"):
        ImageSequence(tmp_path / "trimap.####.png", [1001, 1002, 1003])


def test_a_folder_or_dead_link_in_a_frames_place_is_said(tmp_path: Path) -> None:
    """Inputs QA: a folder or a broken link in place of a frame was only "1 frame(s) missing"."""
    from tcvom.io.sequence import ImageSequence

    for n in (1, 2, 3):
        (tmp_path / f"p.{n:04d}.png").write_bytes(b"x")
    (tmp_path / "p.0002.png").unlink()
    (tmp_path / "p.0002.png").mkdir()
    with pytest.raises(MissingFrameError, match="1 plate frame\\(s\\) missing: 2 \\(a folder is there, not an image"):
        ImageSequence(tmp_path / "p.####.png", frames="1-3", what="plate")
    (tmp_path / "p.0002.png").rmdir()
    (tmp_path / "p.0002.png").symlink_to(tmp_path / "gone.png")
    with pytest.raises(MissingFrameError, match="a link to nothing is there"):
        ImageSequence(tmp_path / "p.####.png", frames="1-3", what="plate")


def test_frame_numbers_beyond_32_bits_are_refused_up_front(tmp_path: Path) -> None:
    """Odd-inputs QA: a plate numbered from 2147483645 wrote trimaps and the alphas up to
    2147483647, then failed with a bare std::bad_cast (exit 1) stamping the next EXR."""
    from tcvom.io import open_frames

    write_sequence(tmp_path, "plate", range(2147483646, 2147483649), (8, 12))
    with pytest.raises(InputError, match="frame 2147483648 is beyond the frame numbers tcvom handles") as caught:
        open_frames(tmp_path / "plate.@.png")
    assert caught.value.exit_code == 2
    assert open_frames(tmp_path / "plate.@.png", "2147483646-2147483647").frame_numbers == [2147483646, 2147483647]


def test_a_folder_whose_name_holds_a_line_break_is_said_so(tmp_path: Path) -> None:
    """Safety QA: fileseq cannot list a folder whose name holds a line break: the plate was
    refused as "files of this name with another padding exist", naming files of the right padding."""
    from tcvom.io import open_frames

    folder = tmp_path / "nl\nshot"
    write_sequence(folder, "plate", range(1001, 1003), (4, 4))
    with pytest.raises(InputError, match="the folder name holds a line break") as caught:
        open_frames(str(folder / "plate.####.png"))
    assert "another padding" not in str(caught.value)
    write_sequence(tmp_path, "pl\nate", range(1001, 1003), (4, 4))  # code review: the file name's too
    with pytest.raises(InputError, match=r"the file name holds a line break.*rename the files"):
        open_frames(str(tmp_path / "pl\nate.####.png"))


@pytest.mark.parametrize("mark", ["####", "%04d", "$F4", "1001-1002####"])
def test_a_frame_number_mark_inside_the_name_is_said_so(tmp_path: Path, mark: str) -> None:
    """Plates QA: shot_####_v2.png (the frame number before a suffix) was read as one file
    named so, "1 plate frame(s) missing: 1"; shot_%04d_v2.png gave fileseq's parser text."""
    from tcvom.io import open_frames

    for frame in (1001, 1002):
        (tmp_path / f"shot_{frame}_v2.png").touch()  # refused by the name, before any is read
    with pytest.raises(InputError, match="frame number mark is not just before the extension") as caught:
        open_frames(str(tmp_path / f"shot_{mark}_v2.png"))
    assert "name.####.v2.ext" in str(caught.value) and "missing" not in str(caught.value)


def test_a_single_file_whose_name_holds_a_mark_is_read_as_the_file(tmp_path: Path) -> None:
    """Code review: logo@2x.png or key_50%.png, given as one file, was refused as a
    misplaced frame number mark."""
    from tcvom.io import open_frames

    for name in ("logo@2x", "key_50%", "shot#3"):
        path = write_sequence(tmp_path, "x", range(1), (4, 4))[0].rename(tmp_path / f"{name}.png")
        assert open_frames(str(path)).frame_numbers == [1], name
