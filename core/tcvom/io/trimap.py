"""Trimaps: one convention for the whole of tcvom.

A trimap is a single-channel image with values in [0, 1] (or 8/16-bit integers scaled
to it): **low = background, high = foreground, in between = unknown**. Painted trimaps
are anti-aliased, so classification uses thresholds: values below 0.1 are background,
values above 0.9 are foreground, everything else is unknown. The reference data's
0 / 128 / 255 trimaps classify as background / unknown / foreground.

Inside tcvom a classified trimap is a ``uint8`` array ``H x W`` holding exactly
``0`` (background), ``128`` (unknown) and ``255`` (foreground), the form the networks and
the reference implementation use.

Images with several channels are reduced to one (:func:`to_single_channel`):

- 1 channel: used as it is;
- 2 channels (luminance + alpha): the first;
- 3 or 4 channels (RGB, RGBA): the Rec. 709 luminance of RGB (a grey trimap stays
  itself); the alpha channel is ignored.

``channel="R"|"G"|"B"|"A"`` picks one channel instead, for trimaps painted into an
alpha channel or a single colour.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tcvom.errors import FrameSizeError, InputError, check_choice

BACKGROUND = 0
UNKNOWN = 128
FOREGROUND = 255
BG_THRESHOLD = 0.1
FG_THRESHOLD = 0.9

TRIMAP_CHANNELS: tuple[str, ...] = ("luma", "R", "G", "B", "A")
_REC709 = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


def check_channel(channel: str) -> None:
    """Refuse a ``channel`` that is none of :data:`TRIMAP_CHANNELS` (an InputError)."""
    check_choice(channel, TRIMAP_CHANNELS, "trimap channel")


def to_single_channel(image: np.ndarray, channel: str = "luma", names: Sequence[str] | None = None) -> np.ndarray:
    """Reduce an ``H x W`` or ``H x W x C`` trimap image to ``H x W`` float32.

    Integer images are scaled to [0, 1] by their type's maximum. ``names`` (the file's
    channel names, in the image's order) make ``channel`` a name: the channel called so, or
    the one ``LAYER.<channel>`` (an EXR's alpha alone, or after depth); without names the
    channels are taken as R, G, B(, A) by position.
    """
    check_channel(channel)
    data = np.asarray(image)
    if np.issubdtype(data.dtype, np.integer):
        data = data.astype(np.float32) / float(np.iinfo(data.dtype).max)
    else:
        data = data.astype(np.float32, copy=False)
    if data.ndim == 2:
        return data
    if data.ndim != 3:
        raise InputError(f"a trimap must be H x W or H x W x C, got an array of shape {data.shape}")
    count = data.shape[2]
    if channel != "luma" and names is not None and len(names) == count:
        matches = [i for i, name in enumerate(names) if name == channel]
        matches = matches or [i for i, name in enumerate(names) if name.rpartition(".")[2] == channel]
        if not matches and channel in "RGB":  # a grey file: its grey is each of R, G and B
            matches = [i for i, name in enumerate(names) if name in ("Y", "L")]
        if len(matches) != 1:
            found = "no" if not matches else "more than one"
            raise InputError(f"the trimap has {found} {channel} channel (its channels: {', '.join(names)})",
                             hint="pass --trimap-channel with one of its channels (R, G, B, A), or leave it out "
                             "to read the luminance")
        return data[:, :, matches[0]]
    if channel != "luma":
        index = "RGBA".index(channel)
        if channel == "A" and count in (2, 4):
            return data[:, :, count - 1]
        if index >= count or (channel == "A" and count not in (2, 4)):
            raise InputError(f"the trimap has {count} channel(s); it has no {channel} channel")
        return data[:, :, index]
    if count == 1 or count == 2:
        return data[:, :, 0]
    return data[:, :, :3] @ _REC709


def classify(values: np.ndarray) -> np.ndarray:
    """Classify a single-channel trimap in [0, 1] into the uint8 0 / 128 / 255 form."""
    data = np.asarray(values, dtype=np.float32)
    if data.ndim != 2:
        raise InputError(f"classify() needs a single-channel H x W trimap, got shape {data.shape}")
    if not np.isfinite(data).all():
        raise InputError("the trimap holds NaN or infinite values")
    out = np.full(data.shape, UNKNOWN, dtype=np.uint8)
    out[data < BG_THRESHOLD] = BACKGROUND
    out[data > FG_THRESHOLD] = FOREGROUND
    return out


PAINT_TOLERANCE = 0.03
"""How far (in [0, 1]) a painted value may be from 0, 128/255 or 1 and still be that class."""
ANTIALIAS_WIDTH = 4
"""Widest band (pixels) of in-between values taken as anti-aliasing of a painted edge."""
OVERSHOOT = 1.5
"""Largest value of a floating-point trimap taken as 0-1 data: above it (0-255 data, a
linearised one) it is refused; up to it, values past 1 are a filter's overshoot, allowed in
anti-aliasing bands like any other in-between value."""
LABEL_AREA = 0.01
"""Share of the pixels valued 1 to 3 (of 255) that makes a trimap with nothing above them a
class label map (0 / 1 / 2) rather than a background with noise."""


def check_painted(values: np.ndarray, *, path: object = None, frame: int | None = None,
                  what: str = "keyframe trimap", floating: bool = False) -> None:
    """Refuse a painted trimap whose values are not the convention's 0 / 128 / 255
    (``floating``: a float file's, said as 0 / 0.5 / 1, the scale its painter shows).

    ``values``: single-channel ``H x W`` float in [0, 1]. Values further than
    :data:`PAINT_TOLERANCE` from 0, 128/255 and 1 are allowed only in bands at most
    :data:`ANTIALIAS_WIDTH` pixels wide (anti-aliased edges); a wider area of them (a trimap
    painted 0 / 64 / 200, a blurred or a photographic one) would be classified silently
    into a wrong trimap, so it is an :class:`InputError` naming the values found.
    """
    import cv2

    data = np.asarray(values, dtype=np.float32)
    bad = int(data.size - np.count_nonzero(np.isfinite(data)))
    if bad:  # before the range: +inf is no value "up to" which a trimap is scaled
        raise InputError(f"the {what} holds {bad} NaN or infinite value(s)", path=None if path is None else str(path),
                         frame=frame, hint="write it as background 0, unknown 0.5, foreground 1 "
                                           "(or as an 8- or 16-bit PNG)")
    top = float(data.max(initial=0.0))
    past_one = InputError(
        f"the {what} holds values up to {top:.4g}; a floating-point trimap is read as is: background 0, "
        "unknown 0.5, foreground 1", path=None if path is None else str(path), frame=frame,
        hint="divide it by 255 if it holds 0 / 128 / 255, or write it as an 8- or 16-bit PNG" if top > 127
        else "write it as background 0, unknown 0.5, foreground 1 (or as an 8- or 16-bit PNG)",
    )
    if top > OVERSHOOT:  # a filter's overshoot of a 0-1 trimap (1.05) is anti-aliasing, checked below
        raise past_one
    codes = np.round(data * 65535.0)
    if not floating and top <= 255.5 / 65535 and (codes == 255).any() and np.isin(codes, (0, UNKNOWN, 255)).all():
        raise InputError(  # odd-inputs QA: numpy's astype(uint16) of an 8-bit trimap was called a label map
            f"the {what} holds 0, 128 and 255 out of 65535 (8-bit values in a 16-bit file?); classified as a trimap "
            "it is background everywhere", path=None if path is None else str(path), frame=frame,
            hint="multiply it by 257 (a 16-bit trimap holds 0, 32896 and 65535), or write it as an 8-bit PNG")
    labels = (data > 0.5 / 255) & (data < 3.5 / 255)
    if data.max(initial=0.0) < 3.5 / 255 and labels.mean() >= LABEL_AREA:
        raise InputError(
            f"the {what} holds only the values 0 to 3 (a class label map?); classified as a trimap it is "
            "background everywhere", path=None if path is None else str(path), frame=frame,
            hint="write trimaps as background 0, unknown 128, foreground 255 (a 0/1/2 label map: multiply by 127.5)",
        )
    off = np.ones(data.shape, dtype=bool)
    for level in (0.0, UNKNOWN / 255.0, 1.0):
        off &= np.abs(data - level) > PAINT_TOLERANCE
    if not off.any():
        return
    size = ANTIALIAS_WIDTH + 1
    wide = cv2.erode(off.astype(np.uint8), np.ones((size, size), np.uint8), borderType=cv2.BORDER_REPLICATE) > 0
    if not wide.any():
        return
    # the pixels of those areas: the eroded cores grown back by the band's half width
    area = off & (cv2.dilate(wide.astype(np.uint8), np.ones((size, size), np.uint8)) > 0)
    if (data[area] > 1.0 + PAINT_TOLERANCE).any():  # areas past 1, not an edge's overshoot: said as the file holds them
        raise past_one
    levels, counts = np.unique(np.round(data[area] * 255).astype(np.int64), return_counts=True)
    order = np.argsort(-counts)[:4]
    shown_level = (lambda v: f"{v / 255:.3g}") if floating else (lambda v: str(v))
    found = ", ".join(f"{shown_level(int(levels[i]))} ({int(counts[i])} pixel{'s' if counts[i] != 1 else ''})"
                      for i in order)
    ys, xs = np.nonzero(area)
    convention = "0, 0.5 and 1" if floating else "0, 128 and 255"
    hint = ("paint background 0, unknown 0.5 and foreground 1" if floating else
            "paint background 0, unknown 128 and foreground 255") + " (anti-aliased edges are fine)"
    if np.mean(np.abs(data[area] - LINEARISED_UNKNOWN) <= PAINT_TOLERANCE) >= 0.9:  # a Read's sRGB default
        if floating:  # a host's render of the trimap: read through a colour conversion
            found += (f"; {LINEARISED_UNKNOWN:.3g} is 128/255 taken as sRGB and converted to linear: the trimap's "
                      "painted 128 was read with a colour conversion")
            hint = ("read the trimap file as data, with no colour conversion (Nuke: its Read's colorspace raw; "
                    "Blender: its image's Color Space Non-Color), or " + hint)
        else:
            found += (f"; {round(LINEARISED_UNKNOWN * 255)} is 128 converted from sRGB to linear: the file was "
                      "written through a colour conversion")
            hint = "write the trimap as data, with no colour conversion, or " + hint
    raise InputError(
        f"the {what} holds values other than {convention} over areas wider than anti-aliasing ({int(area.sum())} "
        f"pixels within x {xs.min()}-{xs.max()}, y {ys.min()}-{ys.max()} from the top left): {found}",
        path=None if path is None else str(path),
        frame=frame,
        hint=hint,
    )


LINEARISED_UNKNOWN = ((UNKNOWN / 255.0 + 0.055) / 1.055) ** 2.4
"""The unknown level (128/255) of a painted trimap read as sRGB and converted to linear
(0.216), as a Nuke Read's default colour space for 8-bit files does."""


def holds_painted_unknown(values: np.ndarray) -> bool:
    """Whether one channel (``H x W`` float in [0, 1]) holds a painted trimap with an unknown
    band: values of the convention (:func:`check_painted` passes), at least
    :data:`LABEL_AREA` of the picture at the unknown level (more than anti-aliased edges
    cross) and some foreground or background. Used to tell a trimap painted in the alpha
    channel (as a layer's opacity) from an alpha that only cuts a grey trimap out."""
    data = np.asarray(values, dtype=np.float32)
    if np.count_nonzero(np.abs(data - UNKNOWN / 255.0) <= PAINT_TOLERANCE) < LABEL_AREA * data.size:
        return False
    if not ((data < BG_THRESHOLD).any() or (data > FG_THRESHOLD).any()):
        return False
    try:
        check_painted(data)
    except InputError:
        return False
    return True


def check_keyframe_classes(keyframes: dict[int, np.ndarray], paths: dict[int, object] | None = None) -> list[str]:
    """Check the classified keyframe trimaps of a shot before any work.

    A keyframe that is all unknown, or a shot whose keyframes hold no foreground (every
    matte would be 0) or no background (every matte would be 1), is an
    :class:`InputError` naming the file and frame. A single keyframe without foreground or
    without background (the object is out of shot, or fills it) is allowed; the returned
    warnings name it.
    """
    return check_class_counts({frame: class_counts(tri) for frame, tri in keyframes.items()}, paths)


INVERTED_EDGE = 0.9
"""The share of a trimap's border pixels that are foreground (with none background, and
background inside) from which it is said to be painted inverted (:func:`inverted_warning`)."""


def mask_warning(counts: dict[int, dict[str, int]], paths: dict[int, object] | None = None,
                 what: str = "keyframe trimap") -> str:
    """One warning naming the trimaps (of their :func:`class_counts`) that have foreground and
    background but no unknown: a roto mask handed in as a trimap, whose matte follows its
    hard edge (odd-inputs QA: said by nothing); "" where there are none."""
    from tcvom.io.sequence import format_range

    frames = sorted(f for f, c in counts.items() if c["unknown"] == 0 and c["foreground"] and c["background"])
    if not frames:
        return ""
    first = f"{paths[frames[0]]}: " if paths and frames[0] in paths else ""
    return (f"{first}frame{'' if len(frames) == 1 else 's'} {format_range(frames)}: the {what}"
            f"{'' if len(frames) == 1 else 's'} {'has' if len(frames) == 1 else 'have'} no unknown (128) region, only "
            "foreground and background: a mask, not a trimap; the matte follows its hard edge (paint an unknown band "
            "over the object's edges, where hair and motion blur are, for a soft matte)")


def check_class_counts(counts: dict[int, dict[str, int]], paths: dict[int, object] | None = None, *,
                       what: str = "keyframe trimap", shot: bool = True) -> list[str]:
    """:func:`check_keyframe_classes` from each trimap's :func:`class_counts` (so that a
    whole shot's trimaps can be checked one at a time): the errors, and the warnings.
    ``shot=False`` (trimaps of part of a shot) checks each trimap alone."""
    paths = paths or {}
    warnings: list[str] = []
    for frame, count in counts.items():
        where = f"{paths[frame]}: frame {frame}" if frame in paths else f"frame {frame}"
        if count["foreground"] == 0 and count["background"] == 0:
            raise InputError(
                f"the {what} is all unknown (128): nothing tells the foreground from the background",
                path=None if frame not in paths else str(paths[frame]),
                frame=frame,
                hint="paint the background 0 and the foreground 255",
            )
        for cls, value, near, right in (("foreground", FOREGROUND, "empty", "is out of shot"),
                                        ("background", BACKGROUND, "solid", "fills the frame")):
            if count[cls] == 0:
                warnings.append(f"{where}: the {what} has no {cls} ({value}): the matte near it will be {near} "
                                f"(right only if the object {right} there)")
    masks = mask_warning(counts, paths, what)
    if masks:
        warnings.append(masks)
    inverted = inverted_warning(counts, paths, what)
    if inverted:
        warnings.append(inverted)
    for cls, value, matte in (("foreground", FOREGROUND, 0), ("background", BACKGROUND, 1)):
        if shot and counts and all(count[cls] == 0 for count in counts.values()):
            first = min(counts)
            raise InputError(
                f"no {what} has {cls} ({value}): every matte would be {matte}; found only "
                + ", ".join(k for k in ("background", "unknown", "foreground") if counts[first][k]),
                path=None if first not in paths else str(paths[first]),
                frame=first,
                hint="trimaps are low = background (0), 128 = unknown, high = foreground (255)",
            )
    return warnings


def from_image(image: np.ndarray, channel: str = "luma") -> np.ndarray:
    """Any trimap image (1-4 channels, integer or float) to the uint8 0 / 128 / 255 form."""
    return classify(to_single_channel(image, channel))


def check_classified(
    trimap: np.ndarray, shape: tuple[int, int] | None = None, *, frame: int | None = None, what: str = "trimap"
) -> np.ndarray:
    """``trimap`` as a uint8 ``H x W`` array holding only 0 / 128 / 255, of size ``shape``
    (``H, W``) when given; otherwise an error naming ``frame``."""
    tri = np.asarray(trimap)
    hint = "classify it first with tcvom.io.trimap.from_image"
    if tri.dtype != np.uint8 or tri.ndim != 2:
        raise InputError(
            f"a {what} must be a uint8 H x W array holding 0, 128 and 255, got {tri.dtype} {tri.shape}",
            frame=frame,
            hint=hint,
        )
    if shape is not None and tri.shape != tuple(shape):
        raise FrameSizeError(
            f"the {what} is {tri.shape[1]}x{tri.shape[0]}, the frames are {shape[1]}x{shape[0]}", frame=frame
        )
    if ((tri != BACKGROUND) & (tri != UNKNOWN) & (tri != FOREGROUND)).any():
        raise InputError(f"the {what} holds values other than 0, 128 and 255", frame=frame, hint=hint)
    return tri


#: The classified values in class order: class ``i`` is ``CLASS_VALUES[i]``.
CLASS_VALUES = np.array([BACKGROUND, UNKNOWN, FOREGROUND], dtype=np.uint8)


def class_labels(trimap: np.ndarray) -> np.ndarray:
    """int8 class indices of a classified trimap: 0 background, 1 unknown, 2 foreground."""
    tri = np.asarray(trimap)
    return (tri >= UNKNOWN).astype(np.int8) + (tri == FOREGROUND)


def one_hot_labels(labels: np.ndarray, *, dtype: type = np.float32, axis: int = 0, on: float = 1) -> np.ndarray:
    """One-hot of class indices (0 / 1 / 2, any shape): a class axis of length 3 inserted
    at ``axis``, holding ``on`` on the pixel's class and 0 elsewhere (other indices: all 0)."""
    lab = np.asarray(labels)
    out = np.stack([lab == cls for cls in range(len(CLASS_VALUES))], axis=axis).astype(dtype)
    if on != 1:
        out *= np.asarray(on, dtype=dtype)
    return out


def one_hot(trimap: np.ndarray, *, dtype: type = np.float32, axis: int = 0, on: float = 1) -> np.ndarray:
    """One-hot ``3 x H x W`` (class axis at ``axis``) in the order [background, unknown,
    foreground] of a classified trimap: float32 0 / 1 by default; ``dtype=np.uint8, on=255``
    for the 0 / 255 probabilities of the propagators."""
    return one_hot_labels(class_labels(trimap), dtype=dtype, axis=axis, on=on)


def from_alpha(alpha: np.ndarray, kernel: int) -> np.ndarray:
    """The reference trimap of a ground-truth alpha: unknown = 0 < alpha < 1 dilated by a
    ``kernel x kernel`` square; foreground = alpha == 1 outside it; the rest background.

    ``alpha`` is ``H x W`` in [0, 1] (float) or uint8 (0..255). Kernels 11 / 25 / 41 give
    the narrow / medium / wide trimaps of the VideoMatting108 evaluation.
    """
    import cv2

    a = np.asarray(alpha)
    if np.issubdtype(a.dtype, np.integer):
        a = a.astype(np.float32) / float(np.iinfo(a.dtype).max)
    soft = ((a > 0) & (a < 1)).astype(np.uint8)
    if kernel > 1:
        soft = cv2.dilate(soft, np.ones((kernel, kernel), np.uint8))
    out = np.where(a >= 1, FOREGROUND, BACKGROUND).astype(np.uint8)
    out[soft > 0] = UNKNOWN
    return out


def class_counts(trimap: np.ndarray) -> dict[str, int]:
    """Pixel counts of background, unknown and foreground, and of the frame's border pixels
    (``edge``) those of background and foreground (``edge_background``, ``edge_foreground``)."""
    tri = np.asarray(trimap)
    border = np.concatenate([tri[0], tri[-1], tri[1:-1, 0], tri[1:-1, -1]]) if tri.ndim == 2 and tri.size else tri
    return {
        "background": int((tri == BACKGROUND).sum()),
        "unknown": int((tri == UNKNOWN).sum()),
        "foreground": int((tri == FOREGROUND).sum()),
        "edge": int(border.size),
        "edge_background": int((border == BACKGROUND).sum()),
        "edge_foreground": int((border == FOREGROUND).sum()),
    }


def inverted_warning(counts: dict[int, dict[str, int]], paths: dict[int, object] | None = None,
                     what: str = "keyframe trimap") -> str:
    """One warning naming the trimaps (of their :func:`class_counts`) whose foreground runs
    round the frame's border while their background lies inside, touching it nowhere: painted
    white for background, as an alpha is (odd-inputs QA: an inverted matte on every frame,
    unsaid); "" where there are none. A subject filling the frame is right as it is."""
    from tcvom.io.sequence import format_range

    frames = sorted(f for f, c in counts.items() if c.get("edge") and c["background"] and not c["edge_background"]
                    and c["edge_foreground"] >= INVERTED_EDGE * c["edge"])
    if not frames:
        return ""
    first = f"{paths[frames[0]]}: " if paths and frames[0] in paths else ""
    many = len(frames) > 1
    whose = f"{what}s'" if many else f"{what}'s"
    return (f"{first}frame{'s' if many else ''} {format_range(frames)}: the {whose} foreground "
            "(255) runs round the frame's border and the background (0) lies inside it, touching no border: painted "
            "white for background, as an alpha is? tcvom trimaps are background 0 (black), foreground 255 (white): "
            "invert it, unless the subject fills the frame")
