import numpy as np
import pytest

from tcvom.errors import InputError
from tcvom.io import trimap


def test_classification_thresholds() -> None:
    values = np.array([[0.0, 0.099, 0.1, 0.5, 0.9, 0.901, 1.0]], np.float32)
    assert trimap.classify(values).tolist() == [[0, 0, 128, 128, 128, 255, 255]]


def test_reference_values_and_integer_images() -> None:
    ref = np.array([[0, 128, 255]], np.uint8)
    assert trimap.from_image(ref).tolist() == [[0, 128, 255]]
    assert trimap.from_image(ref.astype(np.uint16) * 257).tolist() == [[0, 128, 255]]


def test_antialiased_painting() -> None:
    painted = np.array([[3, 20, 40, 120, 200, 235, 252]], np.uint8)  # soft brush edges
    assert trimap.from_image(painted).tolist() == [[0, 0, 128, 128, 128, 255, 255]]


def test_multichannel_reduction() -> None:
    grey = np.dstack([np.array([[0.0, 0.5, 1.0]], np.float32)] * 3)
    assert trimap.from_image(grey).tolist() == [[0, 128, 255]]
    rgba = np.dstack([grey, np.array([[1.0, 0.0, 0.5]], np.float32)])
    assert trimap.from_image(rgba).tolist() == [[0, 128, 255]]  # alpha ignored by default
    assert trimap.from_image(rgba, channel="A").tolist() == [[255, 0, 128]]
    red = np.zeros((1, 2, 3), np.float32)
    red[0, 1, 0] = 1.0
    assert trimap.from_image(red, channel="R").tolist() == [[0, 255]]
    with pytest.raises(InputError, match="no A channel"):
        trimap.from_image(grey, channel="A")


def test_one_hot_order_and_from_alpha() -> None:
    alpha = np.zeros((9, 9), np.float32)
    alpha[2:7, 2:7] = 1.0
    alpha[4, 4] = 0.5
    tri = trimap.from_alpha(alpha, kernel=3)
    assert tri[4, 4] == 128 and tri[3, 3] == 128 and tri[2, 2] == 255 and tri[0, 0] == 0
    assert trimap.class_counts(tri) == {"background": 56, "unknown": 9, "foreground": 16, "edge": 32,
                                        "edge_background": 32, "edge_foreground": 0}
    hot = trimap.one_hot(tri)
    assert hot.shape == (3, 9, 9) and hot[1, 4, 4] == 1 and hot[2, 2, 2] == 1 and hot[0, 0, 0] == 1
    assert (hot.sum(0) == 1).all()


def test_nan_trimap_is_rejected() -> None:
    with pytest.raises(InputError, match="NaN"):
        trimap.classify(np.array([[np.nan]], np.float32))


def test_one_hot_forms_share_one_encoding() -> None:
    """The propagators' uint8 0/255 form, the class-index form and the channels-last form
    are the same encoding as the float one."""
    tri = np.array([[0, 128, 255], [255, 0, 128]], np.uint8)
    hot = trimap.one_hot(tri)
    assert hot.dtype == np.float32 and hot.shape == (3, 2, 3)
    assert (trimap.CLASS_VALUES[hot.argmax(0)] == tri).all()
    u8 = trimap.one_hot(tri, dtype=np.uint8, on=255)
    assert u8.dtype == np.uint8 and (u8 == hot.astype(np.uint8) * 255).all()
    assert (trimap.one_hot(tri, axis=-1) == hot.transpose(1, 2, 0)).all()
    labels = trimap.class_labels(tri)
    assert labels.tolist() == [[0, 1, 2], [2, 0, 1]]
    batch = trimap.one_hot_labels(np.stack([labels, labels]), axis=1)
    assert batch.shape == (2, 3, 2, 3) and (batch[1] == hot).all()


def test_a_filters_overshoot_is_anti_aliasing_and_a_refusal_says_where() -> None:
    """A float trimap resized with a sharpening filter (1.05 and -0.05 along its edges) was
    refused with "divide it by 255"; a refused blurred area was "90 (0 % of pixels)", with
    nothing to look for."""
    tri = np.zeros((40, 60), np.float32)
    tri[:, 20:40], tri[:, 40:] = 0.5, 1.0
    tri[:, 39], tri[:, 40], tri[:, 19] = 0.45, 1.05, -0.05  # ringing on both edges
    trimap.check_painted(tri)
    assert trimap.classify(tri)[0, 40] == 255 and trimap.classify(tri)[0, 19] == 0
    with pytest.raises(InputError, match=r"values up to 267\.8") as caught:
        trimap.check_painted(tri * 255)
    assert "divide it by 255" in str(caught.value)
    with pytest.raises(InputError, match=r"values up to 2\.1") as caught:
        trimap.check_painted(tri * 2)
    assert "divide it by 255" not in str(caught.value)
    blurred = np.zeros((40, 60), np.float32)
    blurred[10:20, 30:45] = 90 / 255
    with pytest.raises(InputError) as caught:
        trimap.check_painted(blurred)
    assert "150 pixels within x 30-44, y 10-19" in str(caught.value) and "90 (150 pixels)" in str(caught.value)


def test_an_area_past_one_is_named_in_the_float_convention() -> None:
    """A float trimap whose foreground is 1.2 was said to hold "306" and told to paint 255."""
    tri = np.zeros((40, 60), np.float32)
    tri[:, 20:40], tri[:, 40:] = 0.5, 1.2
    with pytest.raises(InputError, match=r"values up to 1\.2; a floating-point trimap is read as is"):
        trimap.check_painted(tri)


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_nan_or_infinity_is_said_as_such(bad: float) -> None:
    """QA: a keyframe EXR holding +inf was said to hold "values up to inf"."""
    tri = np.zeros((8, 8), np.float32)
    tri[2:4, 2:4], tri[5, 5] = 1.0, bad
    with pytest.raises(InputError, match=r"holds 1 NaN or infinite value\(s\)") as caught:
        trimap.check_painted(tri, path="key.1001.exr", frame=1001)
    assert "up to" not in str(caught.value) and caught.value.frame == 1001


def test_a_trimap_read_as_srgb_is_said_to_be_linearised() -> None:
    """Nuke QA: painted PNG trimaps through a Read left at its sRGB default hold 0.216 for
    the unknown 128: refused with "paint 0, 0.5 and 1", which the artist had done."""
    from tcvom.io.trimap import LINEARISED_UNKNOWN, check_painted

    tri = np.zeros((40, 60), np.float32)
    tri[10:30, 10:50] = ((128 / 255 + 0.055) / 1.055) ** 2.4
    tri[15:25, 20:40] = 1.0
    assert abs(LINEARISED_UNKNOWN - 0.2159) < 1e-3
    with pytest.raises(InputError, match=r"0\.216 is 128/255 taken as sRGB") as caught:
        check_painted(tri, floating=True)
    assert "Read's colorspace raw" in str(caught.value.hint) and "Non-Color" in str(caught.value.hint)
    grey = tri.copy()
    grey[10:30, 10:50] = 0.35  # another wrong level: not said to be linearised
    grey[15:25, 20:40] = 1.0
    with pytest.raises(InputError) as caught:
        check_painted(grey, floating=True)
    assert "sRGB" not in str(caught.value)
    # an 8-bit file holding 55: written through a conversion, said in its own scale (code review)
    with pytest.raises(InputError, match=r"55 is 128 converted from sRGB to linear") as caught:
        check_painted(np.round(tri * 255) / 255)
    assert "Nuke" not in str(caught.value.hint) and "write the trimap as data" in str(caught.value.hint)


def test_8_bit_codes_in_a_16_bit_file_are_said_as_such() -> None:
    """Odd-inputs QA: numpy's astype(uint16) of an 8-bit trimap (0 / 128 / 255 out of 65535)
    was called a 0/1/2 label map, and its advice (multiply by 127.5) was refused again."""
    from tcvom.io.trimap import check_painted

    codes = np.zeros((20, 30), np.float32)
    codes[:, 10:20], codes[:, 20:] = 128.0, 255.0
    with pytest.raises(InputError, match=r"0, 128 and 255 out of 65535 \(8-bit values in a 16-bit file\?\)") as caught:
        check_painted(codes / 65535.0)
    assert caught.value.hint is not None and "multiply it by 257" in caught.value.hint
    check_painted(codes * 257 / 65535.0)  # the advice taken: a 16-bit trimap
    with pytest.raises(InputError, match="a class label map"):  # a 0/1/2 label map stays one
        check_painted(np.floor(codes / 127.0) / 255.0)
